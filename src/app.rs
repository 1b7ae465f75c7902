//! Wiring: configuration → logging → server (mailboxes, coordination layer,
//! shards) → CloudWatch push → signals.
//! `main` is one call to [`main`].

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::{self, Config, ResolvedAuth};
use crate::metrics::{spawn_cloudwatch, CloudWatchHandle, MetricsRegistry};
use crate::server::{Server, ServerError};

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
    init_logging(&config.log, config.no_color);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, no_color: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    let ansi = !no_color && std::io::IsTerminal::is_terminal(&std::io::stderr());
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
    let server = Server::start(config.settings, auth, config.redis)?;
    let pusher = config
        .cloudwatch
        .and_then(|cw| start_cloudwatch(cw, server.instance.metrics.clone()));
    let result = server.run_until_signal().map_err(ServerError::Signals);
    if let Some(p) = pusher {
        p.shutdown_and_flush(Duration::from_secs(10));
    }
    result
}

fn authenticator(config: &Config) -> Authenticator {
    let origins = config.allowed_origins.clone();
    match &config.auth {
        ResolvedAuth::Token { secret, public_key } => {
            Authenticator::with_keys(secret.as_deref(), public_key.as_ref(), origins)
                .with_leeway(config.hardening.jwt_leeway)
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

fn start_cloudwatch(
    cw: config::CloudWatchSettings,
    registry: Arc<MetricsRegistry>,
) -> Option<CloudWatchHandle> {
    match spawn_cloudwatch(cw, registry) {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::error!(error = %e, "CloudWatch push not started");
            None
        }
    }
}
