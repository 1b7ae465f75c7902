//! The CloudWatch push settings (`CLOUDWATCH_ENABLED`, `CLOUDWATCH_NAMESPACE`,
//! `METRICS_INTERVAL_SECS`, `AWS_REGION`, `AWS_ENDPOINT_URL`): validated
//! here, once, into the [`CloudWatchSettings`] that
//! `metrics::spawn_cloudwatch` takes as they are.
//!
//! Credentials are not settings of ours: the AWS SDK reads them from its
//! standard chain (environment, profile, SSO, instance role).

use std::time::Duration;

use super::cli::CloudWatchArgs;
use super::error::{invalid, ConfigError};
use super::validate::range;

/// Everything the CloudWatch push needs, validated; present when
/// `CLOUDWATCH_ENABLED` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchSettings {
    /// `CLOUDWATCH_NAMESPACE`, within CloudWatch's rules.
    pub namespace: String,
    /// The `ServerID` dimension: the instance's `SERVER_ID`.
    pub server_id: String,
    /// `METRICS_INTERVAL_SECS`: time between pushes, 1 s to 1 h.
    pub interval: Duration,
    /// `AWS_REGION`; `None` leaves it to the SDK's chain, then `us-east-1`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: an `http(s)://` endpoint replacing the region's
    /// (a VPC endpoint, a local test server); `None` for the region's.
    pub endpoint_url: Option<String>,
}

/// Validates the CloudWatch settings of `a` (even when the push is off, so
/// that a typo shows before the day it is turned on); `None` when off.
/// `server_id` is the instance's, validated already.
pub(super) fn settings(
    a: &CloudWatchArgs,
    server_id: &str,
) -> Result<Option<CloudWatchSettings>, ConfigError> {
    let interval = range("METRICS_INTERVAL_SECS", a.metrics_interval_secs, 1, 3600)?;
    let namespace = namespace(&a.cloudwatch_namespace)?;
    let region = region(a.aws_region.as_deref())?;
    let endpoint_url = endpoint_url(a.aws_endpoint_url.as_deref())?;
    Ok(a.cloudwatch_enabled.then(|| CloudWatchSettings {
        namespace,
        server_id: server_id.to_owned(),
        interval: Duration::from_secs(interval),
        region,
        endpoint_url,
    }))
}

fn namespace(ns: &str) -> Result<String, ConfigError> {
    let ok = (1..=255).contains(&ns.len())
        && !ns.starts_with("AWS/")
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"./-_#: ".contains(&b));
    if !ok {
        return Err(invalid(
            "CLOUDWATCH_NAMESPACE",
            format!("{ns:?} must be 1 to 255 of A-Z a-z 0-9 . - _ / # : and space, not starting with AWS/"),
        ));
    }
    Ok(ns.to_owned())
}

fn region(raw: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(r) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if !r
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(
            "AWS_REGION",
            format!("{r:?} is not a region name like us-east-1"),
        ));
    }
    Ok(Some(r.to_owned()))
}

/// `http://` or `https://`, a host, no spaces, and no credentials (the URL
/// is logged, and an error never quotes one); the SDK parses the rest.
fn endpoint_url(raw: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(url) = raw.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let (scheme, rest) = url.split_once("://").unwrap_or_default();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(invalid(
            "AWS_ENDPOINT_URL",
            "must not carry a user or password (credentials come from the AWS chain)",
        ));
    }
    if !matches!(scheme, "http" | "https")
        || authority.is_empty()
        || url.contains(char::is_whitespace)
    {
        return Err(invalid(
            "AWS_ENDPOINT_URL",
            format!("{url:?} is not an endpoint like https://monitoring.us-east-1.amazonaws.com or http://127.0.0.1:5000"),
        ));
    }
    Ok(Some(url.to_owned()))
}
