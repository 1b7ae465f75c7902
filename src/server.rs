//! Starting and stopping an instance: listeners, shard threads, signals.
//!
//! Accepting uses one `SO_REUSEPORT` listener per shard, all bound here on
//! the main thread before any shard starts (so a busy port fails at start
//! with a clear error, and `--port 0` yields one port shared by every
//! shard). The kernel spreads new connections across the listeners.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use socket2::{Domain, Protocol, Socket, Type};

use crate::admission::Admission;
use crate::auth::Authenticator;
use crate::config::RedisSettings;
use crate::coordinator::{Coordinator, Embedded};
use crate::instance::{Instance, MailboxRouter};
use crate::metrics::MetricsRegistry;
use crate::redis_coord::{self, RedisError};
use crate::settings::{IoDriver, Settings};
use crate::shard::{run_shard, CloseAll, ShardMsg};

/// Errors that stop an instance from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// io_uring was required but is not available.
    #[error("IO_DRIVER=uring but io_uring is unavailable on this kernel or sandbox")]
    UringUnavailable,
    /// A thread could not be started or failed.
    #[error("shard thread: {0}")]
    Thread(io::Error),
    /// Signal handlers could not be installed.
    #[error("signal handling: {0}")]
    Signals(io::Error),
    /// The coordination layer could not be set up.
    #[error("coordination layer: {0}")]
    Coordinator(#[from] RedisError),
}

/// A running instance.
pub struct Server {
    /// The instance's shared state.
    pub instance: Arc<Instance>,
    /// The bound address (the real port when 0 was asked).
    pub local_addr: SocketAddr,
    /// Shard threads.
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Binds, starts the coordination layer (Redis when `redis` is given,
    /// else the embedded broker) and every shard, and returns once they run.
    pub fn start(
        settings: Settings,
        auth: Authenticator,
        redis: Option<RedisSettings>,
    ) -> Result<Self, ServerError> {
        check_driver(settings.io_driver)?;
        let listeners = bind_listeners(settings.listen, settings.shards)?;
        let local_addr = listeners[0]
            .local_addr()
            .map_err(|source| ServerError::Bind {
                addr: settings.listen,
                source,
            })?;
        let metrics = MetricsRegistry::new(settings.shards);
        // Mailboxes first: the coordinator delivers into them from its own
        // thread as soon as it runs (messages wait there for the shards).
        let mailboxes = Arc::new(MailboxRouter::new(settings.shards));
        let coordinator = start_coordinator(redis, &mailboxes, &metrics)?;
        let admission = Admission::new(settings.max_connections, settings.ready_resume_percent);
        let instance = Arc::new(Instance {
            mailboxes,
            settings,
            auth,
            metrics,
            coordinator,
            accepting: AtomicBool::new(true),
            connections: AtomicUsize::new(0),
            admission,
            boot_id: boot_id(),
        });
        let threads = spawn_shards(&instance, listeners)?;
        tracing::info!(addr = %local_addr, shards = instance.shard_count(), "listening");
        Ok(Self {
            instance,
            local_addr,
            threads,
        })
    }

    /// Blocks until SIGTERM/SIGINT (graceful shutdown) or SIGUSR1 (drain,
    /// then shutdown), then stops the instance. SIGHUP is logged and
    /// ignored: every setting is read once at start, so there is nothing to
    /// reload, and its default action (exit without close frames or route
    /// clean-up) would be the worst answer. A SIGTERM/SIGINT during a drain
    /// cuts the drain short: the connections left get 1001 at once.
    pub fn run_until_signal(self) -> io::Result<()> {
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGUSR1, SIGHUP])?;
        tracing::info!("signals: SIGTERM/SIGINT shut down, SIGUSR1 drains, SIGHUP is ignored");
        loop {
            let signal = signals.forever().next().unwrap_or(SIGTERM);
            match signal {
                SIGHUP => log_sighup(),
                SIGUSR1 => {
                    tracing::info!("SIGUSR1: draining");
                    let stop = self.drain_until(|| shutdown_signal_pending(&mut signals));
                    if let Some(signal) = stop {
                        tracing::info!(
                            signal,
                            "shutdown signal during the drain: shutting down now"
                        );
                    }
                    break;
                }
                _ => {
                    tracing::info!(signal, "shutting down");
                    break;
                }
            }
        }
        self.shutdown()
    }

    /// Closes every connection with 1012 at the configured pace, and waits
    /// until none is left (bounded by the pace plus the shutdown timeout).
    pub fn drain(&self) {
        self.drain_until(|| None);
    }

    /// [`Server::drain`], polling `stop` while it waits: the drain ends early
    /// with what `stop` returned (a signal number) as soon as it returns one.
    fn drain_until(&self, mut stop: impl FnMut() -> Option<i32>) -> Option<i32> {
        let instance = &self.instance;
        instance.accepting.store(false, Ordering::Release);
        let shards = instance.shard_count() as u32;
        let per_sec = (instance.settings.drain_rate / shards).max(1);
        for shard in 0..shards as u16 {
            instance.send(shard, ShardMsg::CloseAll(CloseAll::Drain { per_sec }));
        }
        let open = instance.connections.load(Ordering::Acquire) as u64;
        let bound = Duration::from_secs(open / u64::from(per_sec * shards) + 1)
            + instance.settings.shutdown_timeout;
        let started = Instant::now();
        while instance.connections.load(Ordering::Acquire) > 0 && started.elapsed() < bound {
            if let Some(signal) = stop() {
                return Some(signal);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Graceful shutdown: stop accepting, close every connection with 1001,
    /// wait for the shards (bounded), stop the coordination layer.
    pub fn shutdown(self) -> io::Result<()> {
        let instance = &self.instance;
        instance.accepting.store(false, Ordering::Release);
        for shard in 0..instance.shard_count() as u16 {
            instance.send(shard, ShardMsg::CloseAll(CloseAll::Shutdown));
        }
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "shard failed"),
                Err(_) => tracing::error!("shard panicked"),
            }
        }
        instance.coordinator.shutdown();
        tracing::info!("stopped");
        Ok(())
    }
}

/// The coordination layer: Redis when configured, else the embedded broker.
fn start_coordinator(
    redis: Option<RedisSettings>,
    mailboxes: &Arc<MailboxRouter>,
    metrics: &MetricsRegistry,
) -> Result<Arc<dyn Coordinator>, ServerError> {
    let Some(redis) = redis else {
        tracing::info!("coordination: embedded (single instance, no Redis)");
        return Ok(Arc::new(Embedded));
    };
    tracing::info!("coordination: Redis ({})", redis.redacted());
    Ok(redis_coord::start(
        redis,
        mailboxes.clone(),
        metrics.coordinator(),
    )?)
}

fn log_sighup() {
    tracing::info!("SIGHUP: ignored (settings are read once at start; restart to change them)");
}

/// The first SIGTERM/SIGINT among the signals received since the last look;
/// others are handled on the way (SIGHUP logged, a repeated SIGUSR1 ignored).
fn shutdown_signal_pending(signals: &mut signal_hook::iterator::Signals) -> Option<i32> {
    for signal in signals.pending() {
        match signal {
            SIGTERM | SIGINT => return Some(signal),
            SIGHUP => log_sighup(),
            _ => tracing::info!(signal, "already draining; signal ignored"),
        }
    }
    None
}

fn check_driver(driver: IoDriver) -> Result<(), ServerError> {
    let uring = monoio::utils::detect_uring();
    match (driver, uring) {
        (IoDriver::Uring, false) => Err(ServerError::UringUnavailable),
        (IoDriver::Auto, false) => {
            tracing::warn!("io_uring unavailable: falling back to the epoll (legacy) driver");
            Ok(())
        }
        (IoDriver::Legacy, _) => {
            tracing::info!("io driver: epoll (legacy), as configured");
            Ok(())
        }
        (_, true) => {
            tracing::info!("io driver: io_uring");
            Ok(())
        }
    }
}

/// Binds one `SO_REUSEPORT` listener per shard on the same address.
fn bind_listeners(addr: SocketAddr, shards: usize) -> Result<Vec<TcpListener>, ServerError> {
    let mut addr_used = addr;
    let mut out = Vec::with_capacity(shards);
    for _ in 0..shards {
        let l = bind_one(addr_used).map_err(|source| ServerError::Bind { addr, source })?;
        addr_used = l
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        out.push(l);
    }
    Ok(out)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

fn spawn_shards(
    instance: &Arc<Instance>,
    listeners: Vec<TcpListener>,
) -> Result<Vec<JoinHandle<io::Result<()>>>, ServerError> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let instance = instance.clone();
            let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
            std::thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    run_shard(i as u16, instance, listener)
                })
                .map_err(ServerError::Thread)
        })
        .collect()
}

/// A per-process random id, so connection ids never repeat across restarts.
fn boot_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64 ^ rand::random::<u64>()) & 0xffff_ffff_ffff
}
