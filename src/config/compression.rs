//! The permessage-deflate settings (`COMPRESSION`, `COMPRESSION_MIN_BYTES`,
//! `COMPRESSION_LEVEL`): defaults in [`super::cli::CompressionArgs`] (taken from
//! [`DeflateConfig`]), validated here, in one place.

use super::cli::{CompressionArgs, OnOff};
use super::error::ConfigError;
use super::validate::range;
use crate::protocol::deflate::DeflateConfig;

/// Largest `COMPRESSION_MIN_BYTES`: above `MAX_MESSAGE_BYTES`'s own ceiling
/// it could only mean "never compress", which is `COMPRESSION=off`.
const MAX_MIN_BYTES: usize = 16 << 20;

/// The `COMPRESSION_*` block: checked even when off, so that a typo does not
/// wait for the day compression is turned on. `None` is off.
pub(super) fn settings(a: &CompressionArgs) -> Result<Option<DeflateConfig>, ConfigError> {
    let levels = DeflateConfig::LEVELS;
    let config = DeflateConfig {
        min_bytes: range(
            "COMPRESSION_MIN_BYTES",
            a.compression_min_bytes,
            0,
            MAX_MIN_BYTES,
        )?,
        level: range(
            "COMPRESSION_LEVEL",
            a.compression_level,
            *levels.start(),
            *levels.end(),
        )?,
    };
    Ok((a.compression == OnOff::On).then_some(config))
}
