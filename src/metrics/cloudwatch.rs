//! The CloudWatch push: a dedicated thread running a tokio current-thread
//! runtime, far from the shards. Every interval it sums the registry, turns
//! the delta since the last interval into datums ([`super::cloudwatch_data`])
//! and sends them with `PutMetricData`.
//!
//! Failures never reach the shards: each batch gets a few attempts with
//! exponential backoff, all within the interval; a batch that still fails is
//! counted ([`Counter::CloudWatchFailures`]), logged, and kept in a bounded
//! backlog that the next interval retries first (CloudWatch accepts
//! timestamps up to two weeks old), so a short outage loses nothing. On
//! shutdown the last partial interval is flushed within a caller-given bound.

use std::collections::VecDeque;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudwatch::types::MetricDatum;
use aws_sdk_cloudwatch::Client;
use tokio::sync::watch;

use super::cloudwatch_data::{batches, interval_datums};
use super::counter::Counter;
use super::shard_metrics::ShardMetrics;
use super::snapshot::Snapshot;
use super::MetricsRegistry;
use crate::config::CloudWatchSettings;

/// Attempts per batch and interval (the first try included).
const MAX_ATTEMPTS: u32 = 4;
/// First backoff; doubled after each failed attempt, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Bound of one `PutMetricData` call.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Undelivered batches kept for later (an hour at the default interval).
const MAX_BACKLOG: usize = 64;
/// Final-flush bound when the handle is dropped without `shutdown_and_flush`.
const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum CloudWatchError {
    /// A call failed in a way that may pass later (network, throttling, 5xx).
    #[error("PutMetricData failed: {0}")]
    Transient(String),
    /// CloudWatch refused the data itself; retrying cannot help.
    #[error("PutMetricData rejected: {0}")]
    Rejected(String),
    /// The call did not finish in time.
    #[error("PutMetricData timed out after {0:?}")]
    Timeout(Duration),
    /// Shutdown was asked during a backoff (the batch is flushed at shutdown).
    #[error("interrupted by shutdown")]
    Interrupted,
}

/// The running push thread.
pub struct CloudWatchHandle {
    /// The thread, joined once it has finished.
    thread: JoinHandle<()>,
    /// Carries the final-flush deadline; dropping it also stops the thread.
    stop: watch::Sender<Option<Instant>>,
    /// Disconnects when the thread ends: a join with a timeout.
    done: mpsc::Receiver<()>,
}

impl CloudWatchHandle {
    /// Pushes what was counted since the last interval and stops, waiting at
    /// most `timeout`; past it the thread is left to finish on its own.
    pub fn shutdown_and_flush(self, timeout: Duration) {
        let _ = self.stop.send(Some(Instant::now() + timeout));
        match self.done.recv_timeout(timeout + Duration::from_millis(250)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(?timeout, "CloudWatch final flush did not finish in time")
            }
            _ => {
                let _ = self.thread.join();
            }
        }
    }
}

/// Starts the push thread with settings the config layer validated. Fails
/// only if the thread or its runtime cannot be created.
pub fn spawn_cloudwatch(
    cfg: CloudWatchSettings,
    registry: Arc<MetricsRegistry>,
) -> std::io::Result<CloudWatchHandle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop, stop_rx) = watch::channel(None);
    let (done_tx, done) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("cloudwatch".into())
        .spawn(move || {
            let _done = done_tx;
            runtime.block_on(run(cfg, registry, stop_rx));
        })?;
    Ok(CloudWatchHandle { thread, stop, done })
}

/// The thread's loop: one collect-and-push per tick, a final one at shutdown.
async fn run(
    cfg: CloudWatchSettings,
    registry: Arc<MetricsRegistry>,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    tracing::info!(namespace = %cfg.namespace, interval = ?cfg.interval, "CloudWatch push started");
    let mut exporter = Exporter {
        client: client(&cfg).await,
        failures: registry.exporter(),
        registry,
        last: Snapshot::default(),
        backlog: VecDeque::new(),
        cfg,
    };
    let start = tokio::time::Instant::now() + exporter.cfg.interval;
    let mut ticker = tokio::time::interval_at(start, exporter.cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            deadline = stop_requested(&mut stop) => {
                exporter.collect();
                exporter.flush(deadline, None).await;
                tracing::info!(backlog = exporter.backlog.len(), "CloudWatch push stopped");
                return;
            }
            _ = ticker.tick() => {
                exporter.collect();
                exporter.flush(Instant::now() + exporter.cfg.interval, Some(&mut stop)).await;
            }
        }
    }
}

/// The client, with the SDK's own retries off (ours are bounded and counted).
async fn client(cfg: &CloudWatchSettings) -> Client {
    let region = match &cfg.region {
        Some(r) => RegionProviderChain::first_try(Region::new(r.clone())),
        None => RegionProviderChain::default_provider().or_else(Region::from_static("us-east-1")),
    };
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .build(),
        )
        .load()
        .await;
    let mut builder = aws_sdk_cloudwatch::config::Builder::from(&shared);
    if let Some(url) = &cfg.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

/// Resolves when shutdown is asked, to the final flush's deadline. Asking
/// again after it resolved resolves at once (the state is level, not edge).
async fn stop_requested(stop: &mut watch::Receiver<Option<Instant>>) -> Instant {
    loop {
        if let Some(deadline) = *stop.borrow_and_update() {
            return deadline;
        }
        if stop.changed().await.is_err() {
            return Instant::now() + DROP_FLUSH_TIMEOUT;
        }
    }
}

/// The push thread's state.
struct Exporter {
    /// Where, how often, which dimension.
    cfg: CloudWatchSettings,
    /// CloudWatch API client.
    client: Client,
    /// What is summed each interval.
    registry: Arc<MetricsRegistry>,
    /// The registry's cells for this thread (`CloudWatchFailures`).
    failures: Arc<ShardMetrics>,
    /// The snapshot the last interval ended with: the next delta's base.
    last: Snapshot,
    /// Batches not yet accepted, oldest first, at most [`MAX_BACKLOG`].
    backlog: VecDeque<Vec<MetricDatum>>,
}

impl Exporter {
    /// Turns what happened since the last call into batches at the backlog's end.
    fn collect(&mut self) {
        let now = self.registry.snapshot();
        let extremes = self.registry.take_latency_report_extremes();
        let delta = now.delta_since(&self.last);
        self.last = now;
        let datums = interval_datums(&delta, extremes, &self.cfg.server_id, SystemTime::now());
        self.backlog.extend(batches(datums));
        while self.backlog.len() > MAX_BACKLOG {
            self.backlog.pop_front();
            tracing::error!("CloudWatch backlog full: dropped the oldest undelivered batch");
        }
    }

    /// Sends the backlog in order until done, a batch fails, or `deadline`.
    async fn flush(
        &mut self,
        deadline: Instant,
        mut stop: Option<&mut watch::Receiver<Option<Instant>>>,
    ) {
        while let Some(batch) = self.backlog.front() {
            match put(
                &self.client,
                &self.cfg.namespace,
                batch,
                deadline,
                stop.as_deref_mut(),
            )
            .await
            {
                Ok(()) => {}
                Err(CloudWatchError::Interrupted) => return,
                Err(e @ CloudWatchError::Rejected(_)) => {
                    self.failures.incr(Counter::CloudWatchFailures);
                    tracing::error!(error = %e, datums = batch.len(), "CloudWatch batch dropped");
                }
                Err(e) => {
                    self.failures.incr(Counter::CloudWatchFailures);
                    tracing::warn!(error = %e, backlog = self.backlog.len(), "CloudWatch push failed; kept for the next interval");
                    return;
                }
            }
            self.backlog.pop_front();
        }
    }
}

/// One batch with bounded retries and exponential backoff with jitter.
async fn put(
    client: &Client,
    namespace: &str,
    batch: &[MetricDatum],
    deadline: Instant,
    mut stop: Option<&mut watch::Receiver<Option<Instant>>>,
) -> Result<(), CloudWatchError> {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let bound = left.min(ATTEMPT_TIMEOUT);
        let call = client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(batch.to_vec()))
            .send();
        let err = match tokio::time::timeout(bound, call).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if is_rejection(&e) => {
                return Err(CloudWatchError::Rejected(
                    DisplayErrorContext(&e).to_string(),
                ))
            }
            Ok(Err(e)) => CloudWatchError::Transient(DisplayErrorContext(&e).to_string()),
            Err(_) => CloudWatchError::Timeout(bound),
        };
        let pause = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        if attempt == MAX_ATTEMPTS || Instant::now() + pause >= deadline {
            return Err(err);
        }
        tracing::debug!(attempt, error = %err, "CloudWatch push attempt failed; retrying");
        match stop.as_deref_mut() {
            Some(stop) => tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop_requested(stop) => return Err(CloudWatchError::Interrupted),
            },
            None => tokio::time::sleep(pause).await,
        }
        backoff *= 2;
    }
    Err(CloudWatchError::Timeout(ATTEMPT_TIMEOUT))
}

/// Whether CloudWatch refused the request itself (bad parameters): no retry.
fn is_rejection<E: ProvideErrorMetadata, R>(e: &aws_sdk_cloudwatch::error::SdkError<E, R>) -> bool {
    let code = match e {
        aws_sdk_cloudwatch::error::SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    };
    code.is_some_and(|c| c.starts_with("InvalidParameter") || c.starts_with("Missing"))
}
