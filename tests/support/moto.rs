//! A real moto server (a local CloudWatch) for tests, and blocking helpers to
//! read back what was pushed (`support::moto`).
//!
//! moto is found at `$MOTO_SERVER`, else `<crate>/.venv/bin/moto_server`
//! (`tests/run-all.sh` creates that venv); a test that needs it fails with a
//! clear message when it is missing, never skips.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, DimensionFilter, Metric, StandardUnit, Statistic};
use aws_sdk_cloudwatch::Client;

/// How long moto may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Ports tried before giving up.
const START_ATTEMPTS: usize = 3;

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    /// The server process.
    child: Child,
    /// `http://127.0.0.1:<port>`, for `endpoint_url` / `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// moto's stderr, shown when it fails to start; removed on drop.
    log: PathBuf,
}

impl Moto {
    /// Starts moto and waits until it answers HTTP. Also sets the fake
    /// credentials and region moto wants in this process' environment.
    ///
    /// A TCP connect alone proves nothing about who listens, so readiness is
    /// an HTTP answer while our child is still alive; a child that exits
    /// early (port taken meanwhile) is retried on another port.
    pub fn start() -> Self {
        set_test_credentials();
        let bin = moto_binary();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&bin) {
                Ok(moto) => return moto,
                Err(why) => failures.push(why),
            }
        }
        panic!("moto_server did not start: {failures:#?}");
    }

    /// One attempt on one free port.
    fn try_start(bin: &std::path::Path) -> Result<Self, String> {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("moto-{}-{port}.log", std::process::id()));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto at {}: {e}", bin.display()));
        let mut moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log: log.clone(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let answered = answers_http(port);
            match moto.child.try_wait() {
                Ok(None) if answered => return Ok(moto),
                Ok(None) => {}
                Ok(Some(status)) => {
                    let out = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(format!("port {port}: exited with {status}: {out}"));
                }
                Err(e) => return Err(format!("port {port}: wait: {e}")),
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "port {port}: no HTTP answer within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A blocking CloudWatch reader against this server.
    pub fn reader(&self) -> Reader {
        Reader::new(&self.endpoint)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Whether something on `port` answers an HTTP request with a status line.
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// `$MOTO_SERVER`, else the crate's `.venv`; panics with how to fix it.
pub fn moto_binary() -> PathBuf {
    let path = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"));
    assert!(
        path.is_file(),
        "moto_server not found at {} (set MOTO_SERVER, or create it: \
         python3 -m venv .venv && .venv/bin/pip install 'moto[server]')",
        path.display()
    );
    path
}

/// Fake credentials and region, and no instance-metadata lookups.
pub fn set_test_credentials() {
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    // Below the ephemeral range (no outgoing connection can take it), and
    // distinct within this test process (parallel tests never pick the same
    // port before either has bound it).
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = *BASE.get_or_init(|| rand::random_range(10_000..25_000));
    for _ in 0..1000 {
        let port = (base + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 7_000) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port for moto");
}

/// First candidate port of this process.
static BASE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Statistics of one metric stream over the whole test window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Datapoints CloudWatch (moto) returned.
    pub datapoints: usize,
    /// Sum of `Sum` over datapoints.
    pub sum: f64,
    /// Sum of `SampleCount` over datapoints.
    pub samples: f64,
    /// Smallest `Minimum`.
    pub min: Option<f64>,
    /// Largest `Maximum`.
    pub max: Option<f64>,
    /// Units the datapoints carried.
    pub units: Vec<StandardUnit>,
}

/// Blocking reads of CloudWatch data through the SDK.
pub struct Reader {
    /// Drives the SDK's futures.
    rt: tokio::runtime::Runtime,
    /// The SDK client.
    client: Client,
}

impl Reader {
    /// A reader for `endpoint` (region us-east-1, test credentials).
    pub fn new(endpoint: &str) -> Self {
        set_test_credentials();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conf = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .endpoint_url(endpoint)
            .build();
        Self {
            rt,
            client: Client::from_conf(conf),
        }
    }

    /// Statistics of `metric` over the last hour (and the next minute);
    /// `server_id` selects the `ServerID` stream, `None` asks without dimensions.
    pub fn stats(&self, namespace: &str, metric: &str, server_id: Option<&str>) -> Stats {
        let now = SystemTime::now();
        let dims =
            server_id.map(|id| vec![Dimension::builder().name("ServerID").value(id).build()]);
        let out = self
            .rt
            .block_on(
                self.client
                    .get_metric_statistics()
                    .namespace(namespace)
                    .metric_name(metric)
                    .set_dimensions(dims)
                    .start_time(DateTime::from(now - Duration::from_secs(3600)))
                    .end_time(DateTime::from(now + Duration::from_secs(60)))
                    .period(7200)
                    .statistics(Statistic::Sum)
                    .statistics(Statistic::SampleCount)
                    .statistics(Statistic::Minimum)
                    .statistics(Statistic::Maximum)
                    .send(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "GetMetricStatistics {metric}: {}",
                    aws_sdk_cloudwatch::error::DisplayErrorContext(e)
                )
            });
        let mut s = Stats::default();
        for p in out.datapoints() {
            s.datapoints += 1;
            s.sum += p.sum().unwrap_or(0.0);
            s.samples += p.sample_count().unwrap_or(0.0);
            s.min = p.minimum().map(|m| s.min.map_or(m, |x: f64| x.min(m)));
            s.max = p.maximum().map(|m| s.max.map_or(m, |x: f64| x.max(m)));
            s.units.extend(p.unit().cloned());
        }
        s
    }

    /// Every stream of `metric` (its dimension sets) that ListMetrics knows.
    pub fn list(&self, namespace: &str, metric: &str) -> Vec<Metric> {
        let out = self
            .rt
            .block_on(
                self.client
                    .list_metrics()
                    .namespace(namespace)
                    .metric_name(metric)
                    .send(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "ListMetrics {metric}: {}",
                    aws_sdk_cloudwatch::error::DisplayErrorContext(e)
                )
            });
        out.metrics().to_vec()
    }

    /// Streams of `metric` with the `ServerID` dimension set to `server_id`.
    pub fn list_for_server(&self, namespace: &str, metric: &str, server_id: &str) -> Vec<Metric> {
        let filter = DimensionFilter::builder()
            .name("ServerID")
            .value(server_id)
            .build();
        let out = self
            .rt
            .block_on(
                self.client
                    .list_metrics()
                    .namespace(namespace)
                    .metric_name(metric)
                    .dimensions(filter)
                    .send(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "ListMetrics {metric}: {}",
                    aws_sdk_cloudwatch::error::DisplayErrorContext(e)
                )
            });
        out.metrics().to_vec()
    }

    /// Polls `stats` until `done` holds, or panics after `timeout` with the
    /// last statistics and `what` was awaited.
    #[track_caller]
    pub fn wait_for(
        &self,
        namespace: &str,
        metric: &str,
        server_id: Option<&str>,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Stats) -> bool,
    ) -> Stats {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stats(namespace, metric, server_id);
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {metric} ({what}); last: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
