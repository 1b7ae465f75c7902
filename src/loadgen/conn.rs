//! One connection: connect (optionally from a chosen source IP), wait for the
//! welcome, then heartbeat, send what the driver asks for, and account for
//! everything received. One task per connection, small buffers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::shared::Shared;

/// What the driver asks a connection to send.
#[derive(Debug, Clone, Copy)]
pub enum Out {
    /// `chat_message` to user `to`.
    Chat { seq: u64, to: u32 },
    /// `broadcast`.
    Broadcast { seq: u64 },
}

/// Capacity of a connection's outgoing queue (driver → connection).
pub const OUT_QUEUE: usize = 256;

pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct In {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    payload: Option<Payload>,
    #[serde(rename = "heartbeatIntervalMs", default)]
    heartbeat_interval_ms: Option<u64>,
}

/// Our payload; foreign payloads (other shapes) fail to parse into it and are ignored.
#[derive(Deserialize)]
#[serde(untagged)]
enum Payload {
    Ours {
        lg: u64,
        t: u64,
        #[serde(default)]
        r: Option<u64>,
    },
    #[allow(dead_code)]
    Foreign(serde::de::IgnoredAny),
}

/// Seqs a connection has seen: chunk (seq / 64) → bitmask. Dense for
/// broadcast (one bit per message), a few words per message when sparse.
#[derive(Default)]
struct Seen(HashMap<u64, u64>);

impl Seen {
    /// True when `seq` is new.
    fn insert(&mut self, seq: u64) -> bool {
        let w = self.0.entry(seq >> 6).or_insert(0);
        let bit = 1u64 << (seq & 63);
        let new = *w & bit == 0;
        *w |= bit;
        new
    }
}

type Ws = WebSocketStream<TcpStream>;

fn bump(map: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>, key: &str) {
    *map.lock().unwrap().entry(key.to_string()).or_default() += 1;
}

/// Connects and waits for the welcome; returns the stream and heartbeat interval.
async fn connect(sh: &Shared, idx: usize) -> Result<(Ws, u64), String> {
    let target = &sh.targets[idx % sh.targets.len()];
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
                if let Ok(m) = serde_json::from_str::<In>(t.as_str()) {
                    if m.ty == "welcome" {
                        return Ok((ws, m.heartbeat_interval_ms.unwrap_or(30_000).max(100)));
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

/// Resolves once the run is stopping (holds no borrow across awaits).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn jitter(ms: u64, lo: f64) -> Duration {
    let f = lo + (1.0 - lo) * rand::random::<f64>();
    Duration::from_micros((ms as f64 * 1000.0 * f) as u64)
}

/// The connection task.
pub async fn run(sh: Arc<Shared>, idx: usize, mut rx: mpsc::Receiver<Out>) {
    let user = idx % sh.users;
    let mut shutdown = sh.shutdown_rx.clone();
    sh.attempted.fetch_add(1, Relaxed);
    let started = Instant::now();
    let res = tokio::select! {
        r = tokio::time::timeout(sh.args.connect_timeout, connect(&sh, idx)) => match r {
            Ok(r) => r,
            Err(_) => Err("timeout".into()),
        },
        _ = stopped(&mut shutdown) => Err("interrupted".into()),
    };
    let (mut ws, hb_ms) = match res {
        Ok(x) => x,
        Err(reason) => {
            sh.failed.fetch_add(1, Relaxed);
            bump(&sh.failures, &reason);
            return;
        }
    };
    let _ = sh
        .connect_hist
        .lock()
        .unwrap()
        .record(started.elapsed().as_micros().max(1) as u64);
    sh.user_alive[user].fetch_add(1, Relaxed);
    sh.client_alive[idx].store(true, Relaxed);
    sh.alive.fetch_add(1, Relaxed);
    sh.established.fetch_add(1, Relaxed);

    let mut seen = Seen::default();
    let me = idx as u64;
    let run_id = sh.run_id;
    let hb_sleep = tokio::time::sleep(jitter(hb_ms, 0.5));
    tokio::pin!(hb_sleep);
    let mut hb_sent: Option<Instant> = None;
    let mut buf = String::with_capacity(256);
    let mut client_closing = false;

    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown), if !client_closing => {
                client_closing = true;
                let _ = ws
                    .send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })))
                    .await;
                // Read until the server's close echo (bounded by the caller's wait).
            }
            m = ws.next() => {
                let m = match m {
                    Some(Ok(m)) => m,
                    Some(Err(_)) | None => {
                        if !client_closing {
                            bump(&sh.closes, "1006");
                        }
                        break;
                    }
                };
                match m {
                    Message::Text(t) => {
                        let recv_us = unix_micros();
                        let Ok(m) = serde_json::from_str::<In>(t.as_str()) else { continue };
                        match m.ty.as_str() {
                            "chat_message" | "broadcast" => {
                                if let Some(Payload::Ours { lg, t, r }) = m.payload {
                                    if r != Some(run_id) || lg < sh.count_from.load(Relaxed) {
                                        continue;
                                    }
                                    if seen.insert(lg) {
                                        sh.delivered.fetch_add(1, Relaxed);
                                        let _ = sh.lat_hist.lock().unwrap()
                                            .record(recv_us.saturating_sub(t).max(1));
                                    } else {
                                        sh.duplicates.fetch_add(1, Relaxed);
                                    }
                                }
                            }
                            "ack" => {
                                let Some(seq) = m.id.as_deref().and_then(|s| s.parse::<u64>().ok()) else { continue };
                                if seq < sh.count_from.load(Relaxed) {
                                    continue;
                                }
                                sh.answered.fetch_add(1, Relaxed);
                                match m.status.as_deref() {
                                    Some("delivered") => sh.ack_delivered.fetch_add(1, Relaxed),
                                    Some("offline") => sh.ack_offline.fetch_add(1, Relaxed),
                                    Some("failed") => sh.ack_failed.fetch_add(1, Relaxed),
                                    Some("rate_limited") => sh.ack_rate_limited.fetch_add(1, Relaxed),
                                    _ => 0,
                                };
                            }
                            "heartbeat_ack" => {
                                if let Some(at) = hb_sent.take() {
                                    sh.heartbeats.fetch_add(1, Relaxed);
                                    let rtt = at.elapsed();
                                    let _ = sh.hb_hist.lock().unwrap().record(rtt.as_micros().max(1) as u64);
                                    if sh.args.latency_reports && !client_closing {
                                        let ms = (rtt.as_secs_f64() * 1e6).round() / 1e3;
                                        let text = format!("{{\"type\":\"latency_report\",\"payload\":{ms}}}");
                                        if ws.send(Message::text(text)).await.is_err() {
                                            continue;
                                        }
                                    }
                                }
                            }
                            "error" => {
                                if let Some(seq) = m.id.as_deref().and_then(|s| s.parse::<u64>().ok()) {
                                    if seq >= sh.count_from.load(Relaxed) {
                                        sh.answered.fetch_add(1, Relaxed);
                                    }
                                }
                                bump(&sh.errors, m.code.as_deref().unwrap_or("unknown"));
                            }
                            _ => {}
                        }
                    }
                    Message::Close(f) => {
                        if !client_closing {
                            let code = f.map_or(1005, |f| u16::from(f.code));
                            bump(&sh.closes, &code.to_string());
                        }
                        // Keep polling so tungstenite answers the close, until the stream ends.
                        client_closing = true;
                    }
                    _ => {}
                }
            }
            out = rx.recv(), if !client_closing => {
                let Some(out) = out else { continue };
                buf.clear();
                let t = unix_micros();
                use std::fmt::Write;
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
                };
                if ws.send(Message::text(buf.clone())).await.is_err() {
                    // The read side reports the close.
                    continue;
                }
            }
            _ = &mut hb_sleep, if !client_closing => {
                hb_sent = Some(Instant::now());
                let _ = ws.send(Message::text("{\"type\":\"heartbeat\"}")).await;
                hb_sleep.as_mut().reset(tokio::time::Instant::now() + jitter(hb_ms, 0.8));
            }
        }
    }
    sh.client_alive[idx].store(false, Relaxed);
    sh.user_alive[user].fetch_sub(1, Relaxed);
    sh.alive.fetch_sub(1, Relaxed);
    sh.closed.fetch_add(1, Relaxed);
}
