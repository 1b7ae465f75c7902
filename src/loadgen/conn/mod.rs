//! One connection: connect (optionally from a chosen source IP), wait for the
//! welcome, subscribe (channels scenario), then heartbeat, send what the
//! driver asks for, and account for everything received. One task per
//! connection, small buffers.
//!
//! # Layout
//! - `wire`: opening a connection (TCP, upgrade, welcome, failure reasons)
//!   and framing what it sends.
//! - `tally`: accounting of every received frame.

mod tally;
mod wire;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::channels::subs::Subs;
use crate::shared::Shared;
use tally::Tally;
use wire::{bump, connect, Writer, Ws};

/// What the driver asks a connection to send.
#[derive(Debug, Clone, Copy)]
pub enum Out {
    /// `chat_message` to user `to`.
    Chat { seq: u64, to: u32 },
    /// `broadcast`.
    Broadcast { seq: u64 },
    /// `publish` to channel `channel`, its `n`-th publication of the run.
    Publish { seq: u64, channel: u32, n: u64 },
}

/// Capacity of a connection's outgoing queue (driver → connection).
pub const OUT_QUEUE: usize = 256;

pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
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
    let plan = sh.plan.as_ref();
    let mut tally = Tally::new(Subs::new(plan.into_iter().flat_map(|p| p.channels_of(idx))));
    // Wanted before established: the driver's subscribe wait starts once
    // every connection is established and must see all of them.
    sh.sub_wanted.fetch_add(tally.subs.len() as u64, Relaxed);
    sh.user_alive[user].fetch_add(1, Relaxed);
    sh.client_alive[idx].store(true, Relaxed);
    sh.alive.fetch_add(1, Relaxed);
    sh.established.fetch_add(1, Relaxed);
    // On failure the read side reports the close.
    let _ = subscribe(&sh, &mut ws, &tally).await;
    let mut client_closing = false;

    let mut writer = Writer::new(
        idx as u64,
        sh.run_id,
        plan.and_then(|p| p.publisher_of(idx)).unwrap_or(0),
    );
    let hb_sleep = tokio::time::sleep(jitter(hb_ms, 0.5));
    tokio::pin!(hb_sleep);

    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown), if !client_closing => {
                client_closing = true;
                // The snapshot is taken: hand in the subscriptions' results now.
                tally.subs.finish(&sh);
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
                        if let Some(reply) = tally.on_text(&sh, t.as_str()) {
                            if !client_closing {
                                let _ = ws.send(Message::text(reply)).await;
                            }
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
                let text = writer.frame(&sh, out);
                // On failure the read side reports the close.
                let _ = ws.send(Message::text(text)).await;
            }
            _ = &mut hb_sleep, if !client_closing => {
                tally.hb_sent = Some(Instant::now());
                let _ = ws.send(Message::text("{\"type\":\"heartbeat\"}")).await;
                hb_sleep.as_mut().reset(tokio::time::Instant::now() + jitter(hb_ms, 0.8));
            }
        }
    }
    tally.subs.finish(&sh);
    sh.client_alive[idx].store(false, Relaxed);
    sh.user_alive[user].fetch_sub(1, Relaxed);
    sh.alive.fetch_sub(1, Relaxed);
    sh.closed.fetch_add(1, Relaxed);
}

/// Sends the connection's `subscribe` requests, in one flush.
async fn subscribe(
    sh: &Shared,
    ws: &mut Ws,
    tally: &Tally,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    if tally.subs.is_empty() {
        return Ok(());
    }
    for req in tally.subs.requests(&sh.args.channels.channel_prefix) {
        ws.feed(Message::text(req)).await?;
    }
    ws.flush().await
}
