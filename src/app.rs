//! Wiring: configuration → logging → coordination layer → server → signals.
//! `main` is one call to [`main`].

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::{self, Config, ResolvedAuth};
use crate::coordinator::{Coordinator, Embedded};
use crate::instance::MailboxRouter;
use crate::metrics::{spawn_cloudwatch, CloudWatchConfig, CloudWatchHandle, MetricsRegistry};
use crate::redis_coord::{ClusterMode, RedisConfig};
use crate::server::{CoordinatorFactory, Server, ServerError};

/// Runs the server until a signal stops it; the process exit code.
pub fn main() -> ExitCode {
    let config = match config::load() {
        Ok(c) => c,
        Err(config::ConfigError::Cli(e)) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Starts everything from a validated configuration and blocks until shutdown.
pub fn run(config: Config) -> Result<(), ServerError> {
    tracing::info!("starting: {}", config.summary());
    let auth = authenticator(&config);
    let cloudwatch = config.cloudwatch.clone();
    let server_id = config.settings.server_id.clone();
    let server = Server::start(config.settings.clone(), auth, coordinator_factory(&config))?;
    let pusher =
        cloudwatch.and_then(|cw| start_cloudwatch(cw, server_id, server.instance.metrics.clone()));
    let result = server.run_until_signal().map_err(ServerError::Signals);
    if let Some(p) = pusher {
        p.shutdown_and_flush(Duration::from_secs(10));
    }
    result
}

fn authenticator(config: &Config) -> Authenticator {
    let origins = config.allowed_origins.clone();
    match &config.auth {
        ResolvedAuth::Token { secret } => {
            Authenticator::token(secret, origins).with_leeway(config.hardening.jwt_leeway)
        }
        ResolvedAuth::Insecure { explicit } => {
            if *explicit {
                tracing::warn!("INSECURE MODE (AUTH_MODE=insecure): clients choose their identity with ?userId=; anyone can read anyone's messages. Set JWT_SECRET for production.");
            } else {
                tracing::warn!("insecure mode: no JWT_SECRET, so clients choose their identity with ?userId= (allowed because the server listens on loopback only)");
            }
            if config.settings.echo_path.is_some() {
                tracing::warn!(path = ?config.settings.echo_path, "ECHO_PATH is set: conformance-test echo endpoint enabled");
            }
            Authenticator::insecure(origins)
        }
    }
}

fn coordinator_factory(config: &Config) -> CoordinatorFactory {
    let Some(redis) = config.redis.clone() else {
        return Box::new(
            |_router: Arc<MailboxRouter>, _metrics: Arc<MetricsRegistry>| {
                tracing::info!("coordination: embedded (single instance, no Redis)");
                Ok(Arc::new(Embedded) as Arc<dyn Coordinator>)
            },
        );
    };
    let cfg = RedisConfig {
        uri: redis.uri.clone(),
        cluster: match redis.cluster {
            config::Switch::Auto => ClusterMode::Auto,
            config::Switch::On => ClusterMode::On,
            config::Switch::Off => ClusterMode::Off,
        },
        server_id: config.settings.server_id.clone(),
        liveness_ttl: redis.liveness_ttl,
        sweep_interval: redis.sweep_interval,
        delivery_timeout: config.settings.delivery_timeout,
    };
    Box::new(
        move |router: Arc<MailboxRouter>, metrics: Arc<MetricsRegistry>| {
            tracing::info!("coordination: Redis ({})", redis.redacted());
            crate::redis_coord::start(cfg, router, metrics.coordinator())
                .map_err(|e| ServerError::Coordinator(e.to_string()))
        },
    )
}

fn start_cloudwatch(
    cw: config::CloudWatchSettings,
    server_id: String,
    registry: Arc<MetricsRegistry>,
) -> Option<CloudWatchHandle> {
    let mut cfg = CloudWatchConfig::new(server_id);
    cfg.namespace = cw.namespace;
    cfg.interval = cw.interval;
    cfg.region = cw.region;
    cfg.endpoint_url = std::env::var("AWS_ENDPOINT_URL").ok();
    match spawn_cloudwatch(cfg, registry) {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::error!(error = %e, "CloudWatch push not started");
            None
        }
    }
}
