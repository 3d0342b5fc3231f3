//! Prometheus metrics (DESIGN §11), through prometheus-client. Counters are atomics, so the hot
//! path only increments; gauges that mirror other state are set when `/metrics` is scraped.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Why a vote was not accepted.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Rejection {
    /// Failed validation (422).
    invalid,
    /// Forged or mistyped link key (404).
    bad_key,
    /// Unknown or inactive démarche, or one not yet open to citizens (404).
    not_found,
    /// Over a rate limit (429).
    rate_limited,
    /// Buffer full (503).
    backpressure,
    /// Honeypot filled: answered like a success, never stored.
    honeypot,
    /// Body over the size limit (413).
    too_large,
    /// Not a form post (415).
    unsupported_media_type,
    /// Body not received in time (408).
    body_timeout,
    /// The journal could not write the vote (503).
    journal,
    /// Posted by a browser from a page of another site (`Sec-Fetch-Site`) (403).
    cross_site,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: Rejection,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    votes_accepted: Counter,
    votes_rejected: Family<ReasonLabel, Counter>,
    /// Votes held in memory, set at scrape time.
    pub buffered: Gauge,
    pub flush_batches: Counter,
    pub flush_rows: Counter,
    pub flush_errors: Counter,
    pub flush_seconds: Histogram,
    /// 1 if the last contact with the store succeeded.
    pub store_reachable: Gauge,
    /// Comments erased by the retention task (`--retention-months`).
    pub comments_erased: Counter,
    /// 1 if the last check found or made the partitions of `avis` for this month and the next
    /// ones (always 1 on SQLite, which has none); -1 until the first check, just after start.
    pub partitions_ready: Gauge,
    /// Notifications queued for porteurs, by kind (DESIGN §15).
    notifications_sent: Family<KindLabel, Counter>,
    /// Time of one notifications run (digests and alerts).
    notifications_run_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("monavis");
        let m = Metrics {
            votes_accepted: Counter::default(),
            votes_rejected: Family::default(),
            buffered: Gauge::default(),
            flush_batches: Counter::default(),
            flush_rows: Counter::default(),
            flush_errors: Counter::default(),
            // 1 ms to ~33 s.
            flush_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            store_reachable: Gauge::default(),
            comments_erased: Counter::default(),
            partitions_ready: Gauge::default(),
            notifications_sent: Family::default(),
            // 1 ms to ~33 s.
            notifications_run_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            registry: Registry::default(),
        };
        registry.register("votes_accepted", "Votes answered 303 and owned by the buffer", m.votes_accepted.clone());
        registry.register("votes_rejected", "Votes not accepted, by reason", m.votes_rejected.clone());
        registry.register("votes_buffered", "Votes held in memory (pending or being flushed)", m.buffered.clone());
        registry.register("flush_batches", "Batches committed to the store", m.flush_batches.clone());
        registry.register("flush_rows", "Votes newly stored by flushes", m.flush_rows.clone());
        registry.register("flush_errors", "Failed flush attempts (retried)", m.flush_errors.clone());
        registry.register("flush_duration_seconds", "Time to commit one batch", m.flush_seconds.clone());
        registry.register("store_reachable", "1 if the last store contact succeeded", m.store_reachable.clone());
        registry.register(
            "comments_erased",
            "Comments erased for being older than --retention-months",
            m.comments_erased.clone(),
        );
        registry.register(
            "partitions_ready",
            "1 if avis has its partitions for this month and the next 3 at the last hourly check, 0 if not, -1 before the first",
            m.partitions_ready.clone(),
        );
        registry.register(
            "notifications_sent",
            "Notifications queued for porteurs, by kind",
            m.notifications_sent.clone(),
        );
        registry.register(
            "notifications_run_duration_seconds",
            "Time of one notifications run (digests and alerts)",
            m.notifications_run_seconds.clone(),
        );
        // Not checked yet: neither ready nor missing, so that no alert fires at start.
        m.partitions_ready.set(-1);
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// One more accepted vote.
    pub fn accepted(&self) {
        self.votes_accepted.inc();
    }

    /// One more rejected vote.
    pub fn rejected(&self, reason: Rejection) {
        self.votes_rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A notifications run: what it queued, by kind, and how long it took.
    pub fn notifications_run(&self, sent: &std::collections::BTreeMap<&'static str, u64>, seconds: f64) {
        for (kind, n) in sent {
            self.notifications_sent.get_or_create(&KindLabel { kind: (*kind).to_string() }).inc_by(*n);
        }
        self.notifications_run_seconds.observe(seconds);
    }

    /// Accepted votes so far.
    pub fn accepted_total(&self) -> u64 {
        self.votes_accepted.get()
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
