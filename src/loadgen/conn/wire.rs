//! The wire side of a connection: opening it (TCP, optionally from a chosen
//! source IP, the upgrade, and the server's welcome; failures named by a
//! short reason), and framing the messages it sends.

use std::fmt::Write as _;
use std::net::SocketAddr;

use futures_util::StreamExt;
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::{unix_micros, Out};
use crate::shared::Shared;

/// The part of the welcome a client needs.
#[derive(Deserialize)]
struct Welcome {
    #[serde(rename = "type")]
    ty: String,
    #[serde(rename = "heartbeatIntervalMs", default)]
    heartbeat_interval_ms: Option<u64>,
}

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// Adds one to `key` in a shared count map.
pub fn bump(map: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>, key: &str) {
    *map.lock().unwrap().entry(key.to_string()).or_default() += 1;
}

/// Connects and waits for the welcome; returns the stream and heartbeat interval.
pub async fn connect(sh: &Shared, idx: usize) -> Result<(Ws, u64), String> {
    let target = sh.target(idx);
    let sock = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| io_reason(&e))?;
    if let Some(src) = &sh.args.source_addrs {
        let ip = src.0[idx % src.0.len()];
        sock.bind(SocketAddr::new(ip, 0))
            .map_err(|e| io_reason(&e))?;
    }
    let stream = sock.connect(target.addr).await.map_err(|e| io_reason(&e))?;
    let _ = stream.set_nodelay(true);
    let url = sh.client_url(idx);
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let (mut ws, _resp) = tokio_tungstenite::client_async_with_config(url, stream, Some(cfg))
        .await
        .map_err(|e| match e {
            WsError::Http(resp) => format!("http_{}", resp.status().as_u16()),
            WsError::Io(e) => io_reason(&e),
            other => format!("ws_{}", short(&other.to_string())),
        })?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if let Ok(w) = serde_json::from_str::<Welcome>(t.as_str()) {
                    if w.ty == "welcome" {
                        return Ok((ws, w.heartbeat_interval_ms.unwrap_or(30_000).max(100)));
                    }
                }
            }
            Some(Ok(Message::Close(f))) => {
                return Err(format!("closed_{}", f.map_or(1005, |f| u16::from(f.code))))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("ws_{}", short(&e.to_string()))),
            None => return Err("eof_before_welcome".into()),
        }
    }
}

fn short(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join("_")
        .to_ascii_lowercase()
}

fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => "too_many_open_files".into(),
        Some(libc::EADDRNOTAVAIL) => "addr_not_available".into(),
        Some(libc::ECONNREFUSED) => "refused".into(),
        Some(libc::ECONNRESET) => "reset".into(),
        _ => format!("io_{:?}", e.kind()).to_ascii_lowercase(),
    }
}

/// What this connection sends: the driver's messages, framed with the
/// payload every scenario carries (`lg` seq, `t` send time in unix µs, `s`
/// sender, `r` run id; publications add `c`, `n`, `p`, `q`: see
/// docs/LOADGEN.md).
pub struct Writer {
    me: u64,
    run_id: u64,
    /// This connection's publisher number (channels scenario).
    publisher: u32,
    /// Publications this connection sent: the publisher's sequence number.
    q: u64,
    buf: String,
}

impl Writer {
    /// A writer for connection `me`, publisher number `publisher`.
    pub fn new(me: u64, run_id: u64, publisher: u32) -> Self {
        Writer {
            me,
            run_id,
            publisher,
            q: 0,
            buf: String::with_capacity(256),
        }
    }

    /// The text of `out`.
    pub fn frame(&mut self, sh: &Shared, out: Out) -> String {
        let Writer {
            me, run_id, buf, ..
        } = self;
        buf.clear();
        let t = unix_micros();
        let _ = match out {
            Out::Chat { seq, to } => write!(
                buf,
                "{{\"type\":\"chat_message\",\"id\":\"{seq}\",\"receiverID\":\"{}{to}\",\"payload\":{{\"lg\":{seq},\"t\":{t},\"s\":{me},\"r\":{run_id}}}}}",
                sh.args.user_prefix
            ),
            Out::Broadcast { seq } => write!(
                buf,
                "{{\"type\":\"broadcast\",\"id\":\"{seq}\",\"payload\":{{\"lg\":{seq},\"t\":{t},\"s\":{me},\"r\":{run_id}}}}}"
            ),
            Out::Publish { seq, channel, n } => {
                let (p, q) = (self.publisher, self.q);
                self.q += 1;
                write!(
                    buf,
                    "{{\"type\":\"publish\",\"channel\":\"{}{channel}\",\"id\":\"{seq}\",\"payload\":{{\"lg\":{seq},\"c\":{channel},\"n\":{n},\"p\":{p},\"q\":{q},\"t\":{t},\"s\":{me},\"r\":{run_id}}}}}",
                    sh.args.channels.channel_prefix
                )
            }
        };
        buf.clone()
    }
}
