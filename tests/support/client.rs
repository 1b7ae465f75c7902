//! A blocking WebSocket test client (tungstenite) with bounded reads.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::handshake::client::Request;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use super::WAIT;

/// A connected client.
pub struct Client {
    /// The socket.
    pub ws: WebSocket<TcpStream>,
}

/// What the server answered to an upgrade it refused.
#[derive(Debug)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: String,
}

impl Client {
    /// Opens `ws://addr{path}`.
    pub fn connect(addr: SocketAddr, path: &str) -> Result<Self, Refused> {
        Self::connect_with(addr, path, &[])
    }

    /// Opens `ws://addr{path}` with extra request headers.
    pub fn connect_with(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, Refused> {
        let stream = TcpStream::connect(addr).expect("tcp connect");
        Self::handshake(stream, addr, path, headers)
    }

    /// Opens `ws://addr{path}` on a socket whose receive buffer is about
    /// `rcvbuf` bytes, so that what the server sends faster than the test
    /// reads waits in the server's send queue, not in this kernel's buffer.
    pub fn connect_small_buffer(addr: SocketAddr, path: &str, rcvbuf: usize) -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        // Before connect: the window is negotiated in the handshake.
        socket.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
        socket.connect(&addr.into()).expect("tcp connect");
        Self::handshake(socket.into(), addr, path, &[]).expect("upgrade")
    }

    fn handshake(
        stream: TcpStream,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, Refused> {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut req = Request::builder()
            .uri(format!("ws://{addr}{path}"))
            .header("Host", addr.to_string())
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header(
                "Sec-WebSocket-Key",
                tungstenite::handshake::client::generate_key(),
            );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match tungstenite::client(req.body(()).unwrap(), stream) {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                Err(Refused {
                    status: resp.status().as_u16(),
                    body: resp
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                })
            }
            Err(e) => panic!("handshake failed: {e}"),
        }
    }

    /// Sends a JSON value as a text frame.
    pub fn send(&mut self, v: &Value) {
        self.ws.send(Message::text(v.to_string())).expect("send");
    }

    /// Sends raw text.
    pub fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s)).expect("send");
    }

    /// Sends any message.
    pub fn send_msg(&mut self, m: Message) {
        self.ws.send(m).expect("send");
    }

    /// Next message of any kind, or None on timeout/close.
    pub fn next(&mut self, limit: Duration) -> Option<Message> {
        self.ws.get_ref().set_read_timeout(Some(limit)).unwrap();
        match self.ws.read() {
            Ok(m) => Some(m),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("connection failed: {e}"),
        }
    }

    /// Next JSON text message (skipping pings/pongs); panics after the wait.
    pub fn recv(&mut self) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no message within {WAIT:?}");
            match self.next(left) {
                Some(Message::Text(t)) => {
                    return serde_json::from_str(&t).expect("server sent JSON")
                }
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Next JSON message, which must have `type == ty`.
    pub fn recv_type(&mut self, ty: &str) -> Value {
        let v = self.recv();
        assert_eq!(v["type"], ty, "expected {ty}, got {v}");
        v
    }

    /// True if no message arrives within `limit`.
    pub fn silent_for(&mut self, limit: Duration) -> bool {
        match self.next(limit) {
            None => true,
            Some(m) => panic!("expected silence, got {m:?}"),
        }
    }

    /// Reads until the server's close frame; returns its code.
    pub fn expect_close(&mut self) -> u16 {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no close frame within {WAIT:?}");
            self.ws.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => return u16::from(f.code),
                Ok(Message::Close(None)) => return 1005,
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed) => panic!("closed without a close frame"),
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    }

    /// Closes normally.
    pub fn close(mut self) {
        let _ = self.ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = self.ws.flush();
    }
}
