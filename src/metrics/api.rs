//! Server API metrics: requests by endpoint and status, and their latency.
//!
//! Each shard counts the requests its API sessions answer into an
//! [`ApiCells`] matrix (one `Relaxed` atomic per endpoint × status, written
//! only by that shard, like every other cell); readers sum them into an
//! [`ApiSnapshot`]. Prometheus shows one labelled series per non-zero cell
//! (`wss_api_requests_total{endpoint,status}`) and the latency histogram;
//! CloudWatch gets the interval's total, the non-zero cells as
//! `Endpoint`/`Status` dimensions, and the latency distribution.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::histogram::{AtomicHistogram, HistogramSnapshot};

/// What a server API request asked for (the `endpoint` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiEndpoint {
    /// `POST /api/v1/publish`.
    Publish,
    /// `POST /api/v1/send`.
    Send,
    /// `POST /api/v1/broadcast`.
    Broadcast,
    /// `POST /api/v1/disconnect`.
    Disconnect,
    /// `POST /api/v1/subscribe`.
    Subscribe,
    /// `POST /api/v1/unsubscribe`.
    Unsubscribe,
    /// `GET /api/v1/channels/<channel>/presence`.
    Presence,
    /// `GET /api/v1/channels/<channel>/history`.
    History,
    /// `GET /api/v1/users/<userId>`.
    User,
    /// `POST /api/v1/batch`.
    Batch,
    /// An unknown path, or a request cut before its path was known.
    Other,
}

impl ApiEndpoint {
    /// How many endpoints there are.
    pub const COUNT: usize = 11;

    /// Every endpoint, in index order.
    pub const ALL: [ApiEndpoint; ApiEndpoint::COUNT] = [
        ApiEndpoint::Publish,
        ApiEndpoint::Send,
        ApiEndpoint::Broadcast,
        ApiEndpoint::Disconnect,
        ApiEndpoint::Subscribe,
        ApiEndpoint::Unsubscribe,
        ApiEndpoint::Presence,
        ApiEndpoint::History,
        ApiEndpoint::User,
        ApiEndpoint::Batch,
        ApiEndpoint::Other,
    ];

    /// Position in the cell matrix.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The label value (and the batch `method` name for commands).
    pub const fn label(self) -> &'static str {
        match self {
            ApiEndpoint::Publish => "publish",
            ApiEndpoint::Send => "send",
            ApiEndpoint::Broadcast => "broadcast",
            ApiEndpoint::Disconnect => "disconnect",
            ApiEndpoint::Subscribe => "subscribe",
            ApiEndpoint::Unsubscribe => "unsubscribe",
            ApiEndpoint::Presence => "presence",
            ApiEndpoint::History => "history",
            ApiEndpoint::User => "user",
            ApiEndpoint::Batch => "batch",
            ApiEndpoint::Other => "other",
        }
    }
}

/// How a request ended (the `status` label): its HTTP status, or
/// `timeout` when it was cut before it fully arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiStatus {
    /// 200.
    Ok,
    /// 400 `bad_request`.
    BadRequest,
    /// 401 `unauthorized`.
    Unauthorized,
    /// 404 `not_found`.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 413 `too_large`.
    TooLarge,
    /// 429 `rate_limited`.
    RateLimited,
    /// 431: the request head is too large.
    HeadTooLarge,
    /// 503 `unavailable`.
    Unavailable,
    /// Cut after `API_REQUEST_TIMEOUT_MS` (no answer is sent).
    Timeout,
    /// Any other status (none is sent today).
    Other,
}

impl ApiStatus {
    /// How many statuses there are.
    pub const COUNT: usize = 11;

    /// Every status, in index order.
    pub const ALL: [ApiStatus; ApiStatus::COUNT] = [
        ApiStatus::Ok,
        ApiStatus::BadRequest,
        ApiStatus::Unauthorized,
        ApiStatus::NotFound,
        ApiStatus::MethodNotAllowed,
        ApiStatus::TooLarge,
        ApiStatus::RateLimited,
        ApiStatus::HeadTooLarge,
        ApiStatus::Unavailable,
        ApiStatus::Timeout,
        ApiStatus::Other,
    ];

    /// The status of an HTTP answer.
    pub const fn of(http: u16) -> ApiStatus {
        match http {
            200 => ApiStatus::Ok,
            400 => ApiStatus::BadRequest,
            401 => ApiStatus::Unauthorized,
            404 => ApiStatus::NotFound,
            405 => ApiStatus::MethodNotAllowed,
            413 => ApiStatus::TooLarge,
            429 => ApiStatus::RateLimited,
            431 => ApiStatus::HeadTooLarge,
            503 => ApiStatus::Unavailable,
            _ => ApiStatus::Other,
        }
    }

    /// Position in the cell matrix.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            ApiStatus::Ok => "200",
            ApiStatus::BadRequest => "400",
            ApiStatus::Unauthorized => "401",
            ApiStatus::NotFound => "404",
            ApiStatus::MethodNotAllowed => "405",
            ApiStatus::TooLarge => "413",
            ApiStatus::RateLimited => "429",
            ApiStatus::HeadTooLarge => "431",
            ApiStatus::Unavailable => "503",
            ApiStatus::Timeout => "timeout",
            ApiStatus::Other => "other",
        }
    }

    /// An error answer (4xx, 5xx) or a cut request.
    pub const fn is_error(self) -> bool {
        !matches!(self, ApiStatus::Ok)
    }
}

/// One shard's API cells.
pub struct ApiCells {
    /// Requests per endpoint × status.
    requests: [[AtomicU64; ApiStatus::COUNT]; ApiEndpoint::COUNT],
    /// Time from a request's first byte to its answer written, in µs.
    latency: AtomicHistogram,
}

impl Default for ApiCells {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: AtomicHistogram::new(),
        }
    }
}

impl ApiCells {
    /// Counts one request; `micros` is its latency when it was answered.
    #[inline]
    pub fn record(&self, endpoint: ApiEndpoint, status: ApiStatus, micros: Option<u64>) {
        self.requests[endpoint.index()][status.index()].fetch_add(1, Relaxed);
        if let Some(us) = micros {
            self.latency.record(us);
        }
    }

    /// Adds the current values into `into`.
    pub fn add_to(&self, into: &mut ApiSnapshot) {
        for (row, cells) in into.requests.iter_mut().zip(&self.requests) {
            for (total, cell) in row.iter_mut().zip(cells) {
                *total += cell.load(Relaxed);
            }
        }
        self.latency.add_to(&mut into.latency);
    }
}

/// API requests summed over shards (or the change over an interval).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiSnapshot {
    /// Requests per endpoint × status.
    requests: [[u64; ApiStatus::COUNT]; ApiEndpoint::COUNT],
    /// Latency of answered requests, in µs.
    latency: HistogramSnapshot,
}

impl ApiSnapshot {
    /// Requests of one endpoint that ended with one status.
    pub fn get(&self, endpoint: ApiEndpoint, status: ApiStatus) -> u64 {
        self.requests[endpoint.index()][status.index()]
    }

    /// Every request.
    pub fn total(&self) -> u64 {
        self.requests.iter().flatten().sum()
    }

    /// Requests answered with an error or cut.
    pub fn errors(&self) -> u64 {
        self.cells()
            .filter(|(_, s, _)| s.is_error())
            .map(|(_, _, n)| n)
            .sum()
    }

    /// The non-zero cells.
    pub fn cells(&self) -> impl Iterator<Item = (ApiEndpoint, ApiStatus, u64)> + '_ {
        ApiEndpoint::ALL.into_iter().flat_map(move |e| {
            ApiStatus::ALL
                .into_iter()
                .map(move |s| (e, s, self.get(e, s)))
                .filter(|(_, _, n)| *n > 0)
        })
    }

    /// Latency of answered requests (µs).
    pub fn latency(&self) -> &HistogramSnapshot {
        &self.latency
    }

    /// `self - prev`, saturating.
    pub fn delta_since(&self, prev: &ApiSnapshot) -> ApiSnapshot {
        ApiSnapshot {
            requests: std::array::from_fn(|e| {
                std::array::from_fn(|s| self.requests[e][s].saturating_sub(prev.requests[e][s]))
            }),
            latency: self.latency.delta_since(&prev.latency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_in_index_order() {
        for (i, e) in ApiEndpoint::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        for (i, s) in ApiStatus::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
            if let Ok(code) = s.label().parse::<u16>() {
                assert_eq!(ApiStatus::of(code), *s);
            }
        }
        assert_eq!(ApiStatus::of(418), ApiStatus::Other);
    }

    #[test]
    fn cells_sum_and_subtract() {
        let (a, b) = (ApiCells::default(), ApiCells::default());
        a.record(ApiEndpoint::Publish, ApiStatus::Ok, Some(100));
        b.record(ApiEndpoint::Publish, ApiStatus::Ok, Some(300));
        b.record(ApiEndpoint::Other, ApiStatus::Timeout, None);
        let mut first = ApiSnapshot::default();
        a.add_to(&mut first);
        b.add_to(&mut first);
        assert_eq!(first.get(ApiEndpoint::Publish, ApiStatus::Ok), 2);
        assert_eq!((first.total(), first.errors()), (3, 1));
        assert_eq!(first.latency().count(), 2, "a cut request has no latency");
        a.record(ApiEndpoint::Send, ApiStatus::Unauthorized, Some(5));
        let mut second = ApiSnapshot::default();
        a.add_to(&mut second);
        b.add_to(&mut second);
        let d = second.delta_since(&first);
        assert_eq!(
            d.cells().collect::<Vec<_>>(),
            vec![(ApiEndpoint::Send, ApiStatus::Unauthorized, 1)]
        );
    }
}
