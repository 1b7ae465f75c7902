//! Starting a shard: its runtime, accept loop, readiness and flush loops,
//! mailbox loop and sweep.

use std::io;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::TcpListener;

use crate::instance::Instance;
use crate::settings::IoDriver;

use super::{handshake, read, write, CloseAll, Shard, ShardMsg};

/// Mailbox messages handled per turn before yielding to connections.
const MAILBOX_BATCH: usize = 256;
/// io_uring submission queue entries per shard.
const URING_ENTRIES: u32 = 4096;

/// Runs shard `index` on the current thread until shutdown completes.
pub fn run_shard(index: u16, instance: Arc<Instance>, listener: StdListener) -> io::Result<()> {
    match instance.settings.io_driver {
        IoDriver::Auto => monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .with_entries(URING_ENTRIES)
            .enable_timer()
            .build()?
            .block_on(shard_main(index, instance, listener)),
        IoDriver::Uring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(URING_ENTRIES)
            .enable_timer()
            .build()?
            .block_on(shard_main(index, instance, listener)),
        IoDriver::Legacy => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()?
            .block_on(shard_main(index, instance, listener)),
    }
}

async fn shard_main(index: u16, instance: Arc<Instance>, listener: StdListener) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let shard = Rc::new(Shard::new(index, instance)?);
    // Before accepting: a shard that could not read its sockets must not
    // take connections at all.
    let waiter = read::readiness_waiter(&shard)?;
    monoio::spawn(read::readiness_loop(shard.clone(), waiter));
    monoio::spawn(write::flush_loop(shard.clone()));
    monoio::spawn(accept_loop(shard.clone(), listener));
    monoio::spawn(sweep_loop(shard.clone()));
    monoio::select! {
        _ = mailbox_loop(shard.clone()) => {}
        _ = shutdown_complete(shard.clone()) => {}
    }
    Ok(())
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                monoio::spawn(handshake::serve(shard.clone(), stream));
            }
            Err(e) => {
                // EMFILE and friends: back off (bounded), say not ready, log
                // rarely; see `accept`.
                let pause = shard.accept_failed(&e);
                monoio::time::sleep(pause).await;
            }
        }
    }
}

async fn mailbox_loop(shard: Rc<Shard>) {
    let mailbox = &shard.instance.mailboxes[usize::from(shard.index)];
    let mut batch = Vec::with_capacity(MAILBOX_BATCH);
    loop {
        mailbox.recv_batch(&mut batch, MAILBOX_BATCH).await;
        for msg in batch.drain(..) {
            match msg {
                ShardMsg::CloseAll(how) => shard.begin_close_all(how),
                msg => shard.with_core(|core| core.on_message(msg)),
            }
        }
    }
}

async fn sweep_loop(shard: Rc<Shard>) {
    let period = shard.sweep_period();
    loop {
        monoio::time::sleep(period).await;
        shard.sweep();
    }
}

/// Resolves once shutdown began and every connection of the instance is
/// gone, or the shutdown timeout passed. A shard whose own connections are
/// gone keeps its listener (answering `/ready` with 503) until the others are
/// done too, so that no part of the port refuses connections early.
async fn shutdown_complete(shard: Rc<Shard>) {
    let started = loop {
        if shard.closing_all.get() == Some(CloseAll::Shutdown) {
            break Instant::now();
        }
        monoio::time::sleep(Duration::from_millis(20)).await;
    };
    let limit = shard.instance.settings.shutdown_timeout;
    let instance_has_connections = || shard.instance.connections.load(Ordering::Acquire) > 0;
    while instance_has_connections() && started.elapsed() < limit {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = shard.conns.borrow().len();
    if left > 0 {
        tracing::warn!(
            shard = shard.index,
            left,
            "shutdown timeout: dropping remaining connections"
        );
    }
}
