//! What Redis pushes to the coordination engine: channel publications
//! (`P1 <sent_at_us> <offset> <epoch>\n<json>` on `ch:{<channel>}`) and
//! the binary envelopes of other instances (direct messages, user
//! operations, confirmations, broadcasts) on `server:<id>`.
//!
//! Byte 0 picks the pub/sub channel (a channel's, ours, or bytes taken from
//! the input); the rest is the payload.
//!
//! Invariants: nothing panics; the engine hands the shards exactly what the
//! decoders accept (a publication with its JSON framed once, a direct
//! message or operation for a valid user, a broadcast unless it is our
//! own) and drops the rest; every envelope the decoder accepts is the one
//! the encoder writes, byte for byte; a publication written back reads
//! back the same.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use websocket_app::coordinator::{
    Appended, IdempotencyAnswer, LocalRouter, PresencePage, PublishOutcome, RemoteOutcome, ReplyTo,
    StreamPage, UserOp,
};
use websocket_app::metrics::shard_metrics::ShardMetrics;
use websocket_app::protocol::channel::ChannelName;
use websocket_app::protocol::frame::text_frame_with;
use websocket_app::protocol::UserId;
use websocket_app::redis_coord::engine::Engine;
use websocket_app::redis_coord::envelope::{self, Envelope};
use websocket_app::redis_coord::fuzzing::engine_config;
use websocket_app::redis_coord::publication;

const ME: &str = "me";

/// What the engine handed the shards.
#[derive(Debug, PartialEq)]
enum Call {
    Direct(UserId, Bytes, bool),
    Broadcast(Bytes),
    Publication(ChannelName, Bytes, Option<u64>),
    UserOp(UserId, UserOp, bool),
    Other,
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Call>>);

impl Recorder {
    fn push(&self, c: Call) {
        self.0.lock().unwrap().push(c);
    }
}

impl LocalRouter for Recorder {
    fn deliver_direct(&self, user: UserId, frame: Bytes, reply: Option<ReplyTo>, _: u64) {
        self.push(Call::Direct(user, frame, reply.is_some()));
    }
    fn deliver_broadcast(&self, frame: Bytes, _: u64) {
        self.push(Call::Broadcast(frame));
    }
    fn remote_outcome(&self, _: u16, _: u64, _: RemoteOutcome) {
        self.push(Call::Other);
    }
    fn route_added(&self, _: u16, _: u64) {
        self.push(Call::Other);
    }
    fn reregister_routes(&self) {}
    fn channel_subscribed(&self, _: u16, _: u64) {
        self.push(Call::Other);
    }
    fn deliver_publication(&self, c: ChannelName, frame: Bytes, offset: Option<u64>, _: u64) {
        self.push(Call::Publication(c, frame, offset));
    }
    fn published(&self, _: u16, _: u64, _: PublishOutcome) {
        self.push(Call::Other);
    }
    fn stream_read(&self, _: u16, _: u64, _: Option<StreamPage>) {
        self.push(Call::Other);
    }
    fn inbox_appended(&self, _: u16, _: u64, _: Option<Appended>) {
        self.push(Call::Other);
    }
    fn presence_read(&self, _: u16, _: u64, _: Option<PresencePage>) {
        self.push(Call::Other);
    }
    fn deliver_user_op(&self, user: UserId, op: UserOp, reply: Option<ReplyTo>) {
        self.push(Call::UserOp(user, op, reply.is_some()));
    }
    fn user_servers(&self, _: u16, _: u64, _: Option<Vec<String>>) {
        self.push(Call::Other);
    }
    fn idempotency_answer(&self, _: u16, _: u64, _: Option<IdempotencyAnswer>) {
        self.push(Call::Other);
    }
}

fn engine() -> (Engine, Arc<Recorder>, Instant) {
    let now = Instant::now();
    let rec = Arc::new(Recorder::default());
    let cfg = engine_config();
    assert_eq!(cfg.server_id, ME);
    let mut e = Engine::new(cfg, rec.clone(), Arc::new(ShardMetrics::new()), now);
    e.connected(vec![None], false, now);
    (e, rec, now)
}

/// The envelope the encoder writes for `env`.
fn encode(env: &Envelope) -> Bytes {
    match env {
        Envelope::Direct {
            origin,
            token,
            sent_at_us,
            user,
            frame,
        } => envelope::encode_direct(origin, *token, *sent_at_us, user, frame),
        Envelope::Confirm {
            origin,
            token,
            connections,
        } => envelope::encode_confirm(origin, *token, *connections),
        Envelope::UserOp {
            origin,
            token,
            user,
            op,
        } => envelope::encode_user_op(origin, *token, user, op),
        Envelope::Broadcast {
            origin,
            sent_at_us,
            frame,
        } => envelope::encode_broadcast(origin, *sent_at_us, frame),
    }
}

/// What the engine must hand the shards for `payload` on `channel`.
fn expected(channel: &[u8], payload: &Bytes) -> Vec<Call> {
    if let Some(name) = publication::channel_of(channel) {
        return match publication::decode(payload.clone()) {
            Some(p) => {
                let frame = text_frame_with(|out| out.extend_from_slice(&p.json));
                vec![Call::Publication(name, frame, p.offset)]
            }
            None => Vec::new(),
        };
    }
    match envelope::decode(payload.clone()) {
        Ok(Envelope::Direct {
            token, user, frame, ..
        }) => vec![Call::Direct(user, frame, token != 0)],
        Ok(Envelope::UserOp {
            token, user, op, ..
        }) => vec![Call::UserOp(user, op, token != 0)],
        Ok(Envelope::Broadcast { origin, frame, .. }) if origin != ME => {
            vec![Call::Broadcast(frame)]
        }
        // A confirmation of nothing we sent, or our own broadcast: dropped.
        Ok(_) | Err(_) => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (channel, payload): (Vec<u8>, &[u8]) = match pick % 4 {
        0 => (b"ch:{chat:1}".to_vec(), rest),
        1 => (format!("server:{ME}").into_bytes(), rest),
        2 => (b"broadcast".to_vec(), rest),
        _ => {
            // The channel name is the input up to a newline.
            let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            (
                rest[..cut].to_vec(),
                rest.get(cut + 1..).unwrap_or_default(),
            )
        }
    };
    let payload = Bytes::copy_from_slice(payload);

    if let Ok(env) = envelope::decode(payload.clone()) {
        assert_eq!(encode(&env), payload, "not canonical: {env:?}");
    }
    if let Some(p) = publication::decode(payload.clone()) {
        assert!(!p.json.is_empty());
        let again = publication::decode(Bytes::from(publication::encode(p.sent_at_us, &p.json)))
            .expect("written publications read back");
        assert_eq!((again.sent_at_us, &again.json), (p.sent_at_us, &p.json));
        assert_eq!((again.offset, again.epoch), (None, None));
    }
    if let Some(name) = publication::channel_of(&channel) {
        assert_eq!(publication::redis_channel(&name).as_bytes(), &channel[..]);
    }

    let (mut engine, rec, now) = engine();
    let want = expected(&channel, &payload);
    engine.on_push(&channel, payload, now);
    let got = std::mem::take(&mut *rec.0.lock().unwrap());
    assert_eq!(got, want);
});
