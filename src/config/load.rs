//! Where settings come from: the command line, the environment and an env
//! file, merged with flags over environment over file.
//!
//! Testability without touching the process environment: [`load_from`] takes
//! the environment as a map. clap's own `env = ...` lookup reads the process
//! environment directly, so [`command`] strips it from every argument and
//! instead prepends `--flag=value` for each variable found in the map whose
//! flag is not on the command line. The `--help` text keeps naming the
//! variables (`[env: NAME]`). [`load`] is that same path fed with the real
//! process environment, after exporting the env file into it (as the original
//! server did, so that AWS credentials kept in `.env.local` reach the SDK).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use super::cli::Args;
use super::error::ConfigError;
use super::Config;

/// The env file read at start when present and `--env-file` is not given.
pub const DEFAULT_ENV_FILE: &str = ".env.local";

/// Variables whose value is never echoed (help text, error messages).
const SECRET_VARS: [&str; 3] = ["JWT_SECRET", "REDIS_URI", "API_KEYS"];

/// Loads the configuration of this process: exports `--env-file PATH` (or
/// `.env.local` when present) into the environment without overriding
/// variables already set, then parses `std::env::args` with the environment
/// and validates. `--help` and `--version` are printed here and the process
/// exits 0, like clap's `Parser::parse`.
///
/// Call it at start, before other threads exist (it sets variables).
pub fn load() -> Result<Config, ConfigError> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let file = env_file_flag(&argv).or_else(|| {
        let default = PathBuf::from(DEFAULT_ENV_FILE);
        default.is_file().then_some(default)
    });
    if let Some(path) = &file {
        export_env_file(path)?;
    }
    match load_from(argv, &process_env()?) {
        Err(ConfigError::Cli(e)) if !e.use_stderr() => e.exit(),
        other => other,
    }
}

/// Loads a configuration from `args` (the first item is the program name)
/// and `env` (the environment, as a map) without reading or changing the
/// process environment. `--env-file PATH` in `args` is read and merged under
/// `env`; `.env.local` is not read here (that is [`load`]'s job), so tests do
/// not depend on the working directory. `--help` comes back as
/// [`ConfigError::Cli`] (see [`ConfigError::is_help`]).
pub fn load_from<I, T>(args: I, env: &HashMap<String, String>) -> Result<Config, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut env = env.clone();
    if let Some(path) = env_file_flag(&argv) {
        merge_env_file(&mut env, &path)?;
    }
    let mut full = Vec::with_capacity(argv.len() + env.len());
    full.extend(argv.first().cloned());
    // Argument display ("--port <PORT>") -> variable, for values taken from `env`.
    let mut from_env = HashMap::new();
    let mut raw = Args::command();
    raw.build(); // Arg's Display (used in clap's error context) needs a built command
    for arg in raw.get_arguments() {
        let (Some(var), Some(long)) = (env_name(arg), arg.get_long()) else {
            continue;
        };
        match env.get(&var) {
            Some(value) if !value.is_empty() && !on_command_line(&argv, long) => {
                full.push(format!("--{long}={value}").into());
                from_env.insert(arg.to_string(), var);
            }
            _ => {}
        }
    }
    full.extend(argv.iter().skip(1).cloned());
    let matches = command()
        .try_get_matches_from(full)
        .map_err(|e| attribute(e, &from_env, &env))?;
    Config::from_args(Args::from_arg_matches(&matches)?)
}

/// The clap command with the environment lookup stripped and each
/// variable's name added to its argument's help (`[env: NAME]`).
pub fn command() -> clap::Command {
    Args::command().mut_args(|arg| {
        let Some(var) = env_name(&arg) else {
            return arg;
        };
        let why = arg.get_help().map(ToString::to_string).unwrap_or_default();
        arg.env(None::<&'static str>)
            .help(format!("{why} [env: {var}]"))
    })
}

/// Every environment variable a setting is read from, in `--help` order.
pub fn env_names() -> Vec<String> {
    Args::command()
        .get_arguments()
        .filter_map(env_name)
        .collect()
}

/// Our variables from the process environment (others are left out). An
/// empty value counts as unset later, as in most `.env` conventions.
pub fn process_env() -> Result<HashMap<String, String>, ConfigError> {
    let mut env = HashMap::new();
    for name in env_names() {
        if let Some(value) = std::env::var_os(&name) {
            let value = value
                .into_string()
                .map_err(|_| ConfigError::NotUnicode { name: name.clone() })?;
            env.insert(name, value);
        }
    }
    Ok(env)
}

/// Adds the variables of the env file at `path` to `env`, keeping every
/// variable `env` already has; returns how many were added.
pub fn merge_env_file(
    env: &mut HashMap<String, String>,
    path: &Path,
) -> Result<usize, ConfigError> {
    let iter = dotenvy::from_path_iter(path).map_err(|e| env_file_error(path, e))?;
    let mut added = 0;
    for item in iter {
        let (key, value) = item.map_err(|e| env_file_error(path, e))?;
        if let std::collections::hash_map::Entry::Vacant(slot) = env.entry(key) {
            slot.insert(value);
            added += 1;
        }
    }
    Ok(added)
}

/// Sets the variables of the env file at `path` in the process environment,
/// except those already set (dotenvy's rule). Only for [`load`], at start.
pub fn export_env_file(path: &Path) -> Result<(), ConfigError> {
    dotenvy::from_path(path).map_err(|e| env_file_error(path, e))
}

/// The `--env-file` value in `argv`, looked up before clap runs because the
/// file feeds the values clap parses.
fn env_file_flag(argv: &[OsString]) -> Option<PathBuf> {
    let mut items = argv.iter().skip(1);
    while let Some(item) = items.next() {
        let item = item.to_string_lossy();
        if item == "--" {
            return None;
        }
        if item == "--env-file" {
            return items.next().map(PathBuf::from);
        }
        if let Some(path) = item.strip_prefix("--env-file=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Whether `--long` is given in `argv` (as `--long`, `--long VALUE` or
/// `--long=VALUE`), so that its variable must not be used.
fn on_command_line(argv: &[OsString], long: &str) -> bool {
    let flag = format!("--{long}");
    argv.iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| {
            a == flag
                || a.strip_prefix(flag.as_str())
                    .is_some_and(|r| r.starts_with('='))
        })
}

fn env_name(arg: &clap::Arg) -> Option<String> {
    arg.get_env().map(|e| e.to_string_lossy().into_owned())
}

/// Turns clap's error about a value that came from a variable into
/// [`ConfigError::Env`] naming that variable; other errors stay clap's.
fn attribute(
    err: clap::Error,
    from_env: &HashMap<String, String>,
    env: &HashMap<String, String>,
) -> ConfigError {
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return err.into();
    };
    let Some(var) = from_env.get(shown).cloned() else {
        return err.into();
    };
    let value = if SECRET_VARS.contains(&var.as_str()) {
        "<hidden>".to_owned()
    } else {
        env.get(&var).cloned().unwrap_or_default()
    };
    let reason = match (std::error::Error::source(&err), err.kind()) {
        (Some(source), _) => source.to_string(),
        (None, ErrorKind::InvalidValue) => match err.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!("expected one of {}", valid.join(", ")),
            _ => "not an accepted value".to_owned(),
        },
        (None, kind) => kind.to_string(),
    };
    ConfigError::Env {
        setting: var,
        value,
        reason,
    }
}

/// An env-file error without the offending line (it may hold a secret):
/// only the variable name, when the line has one.
fn env_file_error(path: &Path, err: dotenvy::Error) -> ConfigError {
    let reason = match &err {
        dotenvy::Error::LineParse(line, _) => match line.split_once('=') {
            Some((key, _)) => format!("cannot parse the line of {}", key.trim()),
            None => "cannot parse a line without '='".to_owned(),
        },
        dotenvy::Error::Io(io) => io.to_string(),
        _ => "invalid content".to_owned(),
    };
    ConfigError::EnvFile {
        path: path.to_path_buf(),
        reason,
    }
}
