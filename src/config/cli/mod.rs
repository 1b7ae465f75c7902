//! The raw command-line layer: [`Args`], one field per setting, parsed by
//! clap and not yet checked against each other.
//!
//! Every field names its environment variable (`env = ...`) and its default,
//! and its doc comment is the one-line "why" shown by `--help`. The `env`
//! names are not read by clap itself: [`super::load`] strips them and feeds
//! the values from an explicit map instead, so that the same code path runs
//! in production and in tests without touching the process environment.
//!
//! # Layout
//!
//! Settings are grouped by concern into `#[command(flatten)]` structs, each
//! taken whole by the validator of that concern:
//! - `server.rs`: the instance ([`InstanceArgs`]), who may connect
//!   ([`AuthArgs`]), the connection lifecycle ([`LifecycleArgs`]) and
//!   messaging ([`MessagingArgs`]);
//! - `limits.rs`: per-connection limits ([`LimitsArgs`]), hardening
//!   ([`HardeningArgs`]) and the abuse limits of issue 17
//!   ([`AbuseLimitsArgs`]);
//! - `services.rs`: the systems around the server: Redis ([`RedisArgs`]),
//!   CloudWatch ([`CloudWatchArgs`]) and the HTTP server API ([`ApiArgs`]);
//! - `features.rs`: channels, inbox and token refresh ([`ChannelsArgs`]),
//!   and permessage-deflate ([`CompressionArgs`]).
//!
//! `--help` lists arguments in the order they are added, flattened groups
//! included, so the order of the groups and of the fields in them *is* the
//! `--help` order: keep each group contiguous and in place.

mod features;
mod limits;
mod server;
mod services;

use std::convert::Infallible;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::FalseyValueParser;
use clap::{ArgAction, Parser, ValueEnum};

use crate::settings::Dashboard;

pub use features::{ChannelsArgs, CompressionArgs};
pub use limits::{AbuseLimitsArgs, HardeningArgs, LimitsArgs};
pub use server::{AuthArgs, AuthMode, InstanceArgs, LifecycleArgs, MessagingArgs};
pub use services::{ApiArgs, CloudWatchArgs, RedisArgs};

/// Every setting as given on the command line or in the environment.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "websocket-app",
    version,
    about = "Thread-per-core WebSocket messaging server",
    long_about = None,
    after_help = "Precedence: flags, then the environment, then .env.local (or --env-file). \
                  An empty variable counts as unset. See docs/CONFIGURATION.md."
)]
pub struct Args {
    /// Read settings from this file instead of .env.local; variables already set win
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    #[command(flatten)]
    pub instance: InstanceArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    /// Deployment name, free text for logs and metrics (the original server's variable)
    #[arg(
        long,
        env = "ENVIRONMENT",
        default_value = "development",
        value_name = "NAME"
    )]
    pub environment: String,

    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub limits: LimitsArgs,

    #[command(flatten)]
    pub lifecycle: LifecycleArgs,

    #[command(flatten)]
    pub messaging: MessagingArgs,

    #[command(flatten)]
    pub cloudwatch: CloudWatchArgs,

    /// The page at /: chat demo and dashboard (on), dashboard only (readonly), or none (off)
    #[arg(long, env = "DASHBOARD", value_enum, default_value_t = Dashboard::On)]
    pub dashboard: Dashboard,

    /// Log filter in tracing EnvFilter syntax, e.g. info or websocket_app=debug
    #[arg(long, env = "RUST_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,

    /// Log lines without ANSI colours (used only on a terminal anyway); any value but 0/false/no/off
    #[arg(
        long = "no-color",
        env = "NO_COLOR",
        default_value = "false",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = FalseyValueParser::new(),
        action = ArgAction::Set
    )]
    pub no_color: bool,

    #[command(flatten)]
    pub channels: ChannelsArgs,

    #[command(flatten)]
    pub hardening: HardeningArgs,

    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub abuse: AbuseLimitsArgs,

    #[command(flatten)]
    pub compression: CompressionArgs,
}

/// A string that is or may contain a secret (`JWT_SECRET`, a password in
/// `REDIS_URI`); its `Debug` never shows the value, so `Args` can be logged
/// or printed in a panic.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes hidden>)", self.0.len())
    }
}

impl FromStr for Secret {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Secret(s.to_owned()))
    }
}

/// A plain two-way switch (`COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Disabled
    Off,
    /// Enabled
    On,
}
