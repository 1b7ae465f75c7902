//! Which endpoint a request is for: its path and method, the channel or
//! user named in the path, and the query parameters of `history`.

use percent_encoding::percent_decode_str;

use super::http::Method;
use crate::metrics::ApiEndpoint;

/// Every path of the API starts with this (the WebSocket handshake hands
/// such requests to an API session).
pub const PREFIX: &str = "/api/";
/// The version 1 paths.
const V1: &str = "/api/v1/";

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The endpoint.
    pub endpoint: ApiEndpoint,
    /// The channel or user named by the path, percent-decoded (not yet
    /// validated), for the GET endpoints.
    pub target: Option<String>,
}

/// Why a request has no endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// Unknown path: 404.
    NotFound,
    /// Known path, other method: 405 with `Allow`.
    MethodNotAllowed {
        /// The method the path takes.
        allow: &'static str,
    },
}

/// The endpoint of `method` on `path`.
pub fn route(method: Method, path: &str) -> Result<Routed, RouteError> {
    let rest = path.strip_prefix(V1).ok_or(RouteError::NotFound)?;
    let write = match rest {
        "publish" => Some(ApiEndpoint::Publish),
        "send" => Some(ApiEndpoint::Send),
        "broadcast" => Some(ApiEndpoint::Broadcast),
        "disconnect" => Some(ApiEndpoint::Disconnect),
        "subscribe" => Some(ApiEndpoint::Subscribe),
        "unsubscribe" => Some(ApiEndpoint::Unsubscribe),
        "batch" => Some(ApiEndpoint::Batch),
        _ => None,
    };
    if let Some(endpoint) = write {
        return only(method, Method::Post, "POST").map(|()| Routed {
            endpoint,
            target: None,
        });
    }
    let (endpoint, raw) = if let Some(user) = rest.strip_prefix("users/") {
        (ApiEndpoint::User, user)
    } else if let Some(channel) = rest.strip_prefix("channels/") {
        // The last segment names the feature; a channel name may hold `/`
        // (encoded as %2F or not).
        match channel.rsplit_once('/') {
            Some((c, "presence")) => (ApiEndpoint::Presence, c),
            Some((c, "history")) => (ApiEndpoint::History, c),
            _ => return Err(RouteError::NotFound),
        }
    } else {
        return Err(RouteError::NotFound);
    };
    if raw.is_empty() || (endpoint == ApiEndpoint::User && raw.contains('/')) {
        return Err(RouteError::NotFound);
    }
    only(method, Method::Get, "GET")?;
    Ok(Routed {
        endpoint,
        target: Some(decode(raw)),
    })
}

fn only(method: Method, wanted: Method, allow: &'static str) -> Result<(), RouteError> {
    if method == wanted {
        Ok(())
    } else {
        Err(RouteError::MethodNotAllowed { allow })
    }
}

/// Percent-decodes a path segment or query component (invalid UTF-8 is
/// replaced, and then fails validation as a name).
fn decode(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// The first value of query parameter `name`, decoded (`+` is a space).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| decode(&key.replace('+', " ")) == name)
        .map(|(_, value)| decode(&value.replace('+', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: Method, path: &str) -> (ApiEndpoint, Option<String>) {
        let r = route(method, path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        (r.endpoint, r.target)
    }

    #[test]
    fn writes_are_posts_and_reads_are_gets() {
        assert_eq!(ok(Method::Post, "/api/v1/publish").0, ApiEndpoint::Publish);
        assert_eq!(ok(Method::Post, "/api/v1/batch").0, ApiEndpoint::Batch);
        assert_eq!(
            route(Method::Get, "/api/v1/send"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            ok(Method::Get, "/api/v1/channels/chat:1/presence"),
            (ApiEndpoint::Presence, Some("chat:1".into()))
        );
        assert_eq!(
            ok(Method::Get, "/api/v1/channels/a%2Fb/c/history"),
            (ApiEndpoint::History, Some("a/b/c".into()))
        );
        assert_eq!(
            ok(Method::Get, "/api/v1/users/al%40ice"),
            (ApiEndpoint::User, Some("al@ice".into()))
        );
        assert_eq!(
            route(Method::Post, "/api/v1/users/alice"),
            Err(RouteError::MethodNotAllowed { allow: "GET" })
        );
    }

    #[test]
    fn anything_else_is_not_found() {
        for path in [
            "/api/",
            "/api/v1/",
            "/api/v2/publish",
            "/api/v1/publish/",
            "/api/v1/users/",
            "/api/v1/users/a/b",
            "/api/v1/channels/c/members",
            "/api/v1/channels//history",
            "/api/v1/channels/history",
        ] {
            assert_eq!(
                route(Method::Get, path),
                Err(RouteError::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn query_parameters_are_decoded() {
        let q = Some("since=7&epoch=a%2Bb&limit=&x");
        assert_eq!(query_param(q, "since").as_deref(), Some("7"));
        assert_eq!(query_param(q, "epoch").as_deref(), Some("a+b"));
        assert_eq!(query_param(q, "limit").as_deref(), Some(""));
        assert_eq!(query_param(q, "x").as_deref(), Some(""));
        assert_eq!(query_param(q, "y"), None);
        assert_eq!(query_param(None, "since"), None);
    }
}
