//! [`ConfigError`]: why the configuration was refused. Every variant about a
//! value names its setting (the environment variable, plus the flag in the
//! message) so that an operator knows what to change.

use std::path::PathBuf;

use clap::CommandFactory;

use super::cli::Args;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line could not be parsed, or `--help` / `--version` was
    /// asked for (kinds `DisplayHelp` / `DisplayVersion`: render it with
    /// `err.exit()` or `err.render()`; [`super::load`] does so itself).
    #[error("{0}")]
    Cli(#[from] clap::Error),

    /// An environment variable (or an env-file line) holds a value its
    /// setting cannot take (a number that does not parse, an unknown mode).
    #[error("invalid {setting}={value:?} ({}): {reason}", flag_for(setting))]
    Env {
        /// The variable, e.g. `WSS_PORT`.
        setting: String,
        /// Its value (`<hidden>` for secrets).
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A value out of range, or inconsistent with another setting.
    #[error("invalid {setting} ({}): {reason}", flag_for(setting))]
    Invalid {
        /// The environment variable naming the setting, e.g. `MAX_MESSAGE_BYTES`.
        setting: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },

    /// The env file (`--env-file`, or `.env.local` when present) could not
    /// be read or parsed.
    #[error("cannot read env file {}: {reason}", path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// Why (never the content of a line: it may hold a secret).
        reason: String,
    },

    /// One of our variables is set in the process environment to bytes that
    /// are not UTF-8.
    #[error("environment variable {name} is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        name: String,
    },
}

impl ConfigError {
    /// The environment variable naming the refused setting, when there is one.
    pub fn setting(&self) -> Option<&str> {
        match self {
            ConfigError::Env { setting, .. } => Some(setting),
            ConfigError::Invalid { setting, .. } => Some(setting),
            ConfigError::NotUnicode { name } => Some(name),
            ConfigError::Cli(_) | ConfigError::EnvFile { .. } => None,
        }
    }

    /// Whether this is clap's `--help` or `--version` output rather than an
    /// error (the caller prints it and exits 0).
    pub fn is_help(&self) -> bool {
        matches!(self, ConfigError::Cli(e) if matches!(
            e.kind(),
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
        ))
    }
}

/// Shorthand for [`ConfigError::Invalid`].
pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The flag of the setting whose environment variable is `env`, e.g.
/// `--port` for `WSS_PORT` (only computed when an error is displayed).
pub(crate) fn flag_for(env: &str) -> String {
    Args::command()
        .get_arguments()
        .find(|a| a.get_env().is_some_and(|e| e == env))
        .and_then(|a| a.get_long())
        .map_or_else(|| "no flag".to_owned(), |long| format!("--{long}"))
}
