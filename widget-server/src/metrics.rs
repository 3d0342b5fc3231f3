//! Prometheus metrics (DESIGN §11), through prometheus-client. Counters are atomics, so the hot
//! path only increments; gauges that mirror other state are set when `/metrics` is scraped, or
//! by the background task that reads it (the e-mail outbox).
//!
//! Requests are counted by route class and status class only ([`RouteClass`], [`StatusClass`]):
//! never a path, an id, an address or anything else about a citizen. Their counters and duration
//! histograms are plain atomics in fixed arrays ([`Requests`]), so recording one costs a few
//! relaxed additions and no lock or map lookup (prometheus-client's own histogram takes a lock
//! per observation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
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

/// What kind of URL a request was for (DESIGN §11).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RouteClass {
    /// `/static/…`: the buttons and our other assets.
    button,
    /// The avis form (`/Demarches/{id}` with a key), and links to no démarche.
    form,
    /// `POST /Demarches/{id}/avis`.
    vote,
    /// `/Demarches/{id}/merci`.
    merci,
    /// The porteurs' console and account pages.
    console,
    /// `/api/…`.
    api,
    /// `/observatoire…` and `/Demarches/{id}` without a key.
    observatory,
    /// `/healthz`, `/readyz`, `/metrics`.
    probe,
}

impl RouteClass {
    /// Every class, in the order of [`Requests`]'s arrays.
    pub const ALL: [RouteClass; 8] = [
        RouteClass::button,
        RouteClass::form,
        RouteClass::vote,
        RouteClass::merci,
        RouteClass::console,
        RouteClass::api,
        RouteClass::observatory,
        RouteClass::probe,
    ];

    /// The class of a path that is neither a button, a form, a vote, a merci page nor a probe.
    pub fn of_other(path: &str) -> RouteClass {
        if path == "/api" || path.starts_with("/api/") {
            RouteClass::api
        } else if path.starts_with("/observatoire") {
            RouteClass::observatory
        } else {
            RouteClass::console
        }
    }
}

/// The first digit of a status code, as a label: `2xx`…
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct StatusClass(u8);

impl StatusClass {
    const LABELS: [&'static str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

    /// The class of `status`.
    pub fn of(status: u16) -> StatusClass {
        StatusClass((status / 100).clamp(1, 5) as u8 - 1)
    }

    /// `2xx`, `3xx`…
    pub fn label(self) -> &'static str {
        Self::LABELS[self.0 as usize]
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatusLabels {
    route: RouteClass,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: RouteClass,
}

/// Upper bounds of the request duration buckets, in microseconds: 0.5 ms to 10 s.
const DURATION_BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// One lock-free histogram: a count per bucket (not cumulative: prometheus-client's encoder sums
/// them, as it does for its own histogram) and the sum in microseconds.
#[derive(Debug, Default)]
struct AtomicHistogram {
    /// The last slot is the `+Inf` bucket.
    buckets: [AtomicU64; DURATION_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl AtomicHistogram {
    fn observe(&self, us: u64) {
        let slot = DURATION_BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(DURATION_BOUNDS_US.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// `(sum in seconds, count, (upper bound, count in that bucket alone))`, as
    /// prometheus-client's encoder takes them.
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(DURATION_BOUNDS_US.len() + 1);
        for (i, slot) in self.buckets.iter().enumerate() {
            let n = slot.load(Ordering::Relaxed);
            count += n;
            let bound = DURATION_BOUNDS_US.get(i).map_or(f64::MAX, |&us| us as f64 / 1e6);
            buckets.push((bound, n));
        }
        (self.sum_us.load(Ordering::Relaxed) as f64 / 1e6, count, buckets)
    }
}

/// Requests by route class and status class, and their durations by route class (from the
/// request's head to the response's head: a streamed export's body is not in it).
#[derive(Debug, Default)]
pub struct Requests {
    counts: [[AtomicU64; 5]; RouteClass::ALL.len()],
    durations: [AtomicHistogram; RouteClass::ALL.len()],
}

impl Requests {
    /// One more request answered.
    pub fn record(&self, route: RouteClass, status: u16, took: Duration) {
        let r = route as usize;
        self.counts[r][StatusClass::of(status).0 as usize].fetch_add(1, Ordering::Relaxed);
        self.durations[r].observe(took.as_micros().min(u64::MAX as u128) as u64);
    }

    /// Requests of `route` answered with a status of `status`'s class so far.
    pub fn count(&self, route: RouteClass, status: u16) -> u64 {
        self.counts[route as usize][StatusClass::of(status).0 as usize].load(Ordering::Relaxed)
    }
}

/// `monavis_requests_total{route, status}`: the pairs seen so far.
#[derive(Debug)]
struct RequestCounts(std::sync::Arc<Requests>);

impl EncodeMetric for RequestCounts {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for route in RouteClass::ALL {
            for (s, count) in self.0.counts[route as usize].iter().enumerate() {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    let labels = RouteStatusLabels { route, status: StatusClass::LABELS[s] };
                    encoder.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// `monavis_request_duration_seconds{route}`: the classes seen so far.
#[derive(Debug)]
struct RequestDurations(std::sync::Arc<Requests>);

impl EncodeMetric for RequestDurations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for route in RouteClass::ALL {
            let (sum, count, buckets) = self.0.durations[route as usize].snapshot();
            if count > 0 {
                encoder
                    .encode_family(&RouteLabel { route })?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The build: `monavis_build_info{version, commit} 1`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// The commit the binary was built from (`build.rs`: `git rev-parse`, or `MONAVIS_COMMIT`), or
/// `unknown` when built outside a git checkout.
pub const COMMIT: &str = env!("MONAVIS_COMMIT");

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
    /// `--buffer-max-votes`: past it, votes get 503 (alerts compare the buffer to it).
    pub buffer_limit: Gauge,
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
    /// Requests by route class and status class, with their durations.
    pub requests: std::sync::Arc<Requests>,
    /// E-mails not sent yet and still tried (with `--smtp-url`; set by the console every 15 s).
    pub emails_waiting: Gauge,
    /// Age of the oldest of them, in seconds (0 when none waits).
    pub emails_oldest_waiting_seconds: Gauge,
    /// E-mails whose retries ended, waiting for an administrator's « Renvoyer ».
    pub emails_undelivered: Gauge,
    /// Failed SMTP delivery attempts (each is retried later, or given up).
    pub email_send_failures: Counter,
    /// E-mails given up after 3 days of failed attempts.
    pub emails_given_up: Counter,
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
            buffer_limit: Gauge::default(),
            flush_batches: Counter::default(),
            flush_rows: Counter::default(),
            flush_errors: Counter::default(),
            // 1 ms to ~33 s.
            flush_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            store_reachable: Gauge::default(),
            comments_erased: Counter::default(),
            partitions_ready: Gauge::default(),
            requests: std::sync::Arc::default(),
            emails_waiting: Gauge::default(),
            emails_oldest_waiting_seconds: Gauge::default(),
            emails_undelivered: Gauge::default(),
            email_send_failures: Counter::default(),
            emails_given_up: Counter::default(),
            notifications_sent: Family::default(),
            // 1 ms to ~33 s.
            notifications_run_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            registry: Registry::default(),
        };
        registry.register("votes_accepted", "Votes answered 303 and owned by the buffer", m.votes_accepted.clone());
        registry.register("votes_rejected", "Votes not accepted, by reason", m.votes_rejected.clone());
        registry.register("votes_buffered", "Votes held in memory (pending or being flushed)", m.buffered.clone());
        registry.register(
            "votes_buffer_limit",
            "Votes the buffer may hold (--buffer-max-votes); past it, votes are refused with 503",
            m.buffer_limit.clone(),
        );
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
        registry.register(
            "requests",
            "HTTP requests answered, by route class (button, form, vote, merci, console, api, observatory, probe) and status class",
            RequestCounts(m.requests.clone()),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's head to its response's head, by route class",
            RequestDurations(m.requests.clone()),
        );
        registry.register(
            "emails_waiting",
            "E-mails not sent yet and still tried (with --smtp-url)",
            m.emails_waiting.clone(),
        );
        registry.register(
            "emails_oldest_waiting_seconds",
            "Age of the oldest e-mail waiting to be sent, 0 when none waits (with --smtp-url)",
            m.emails_oldest_waiting_seconds.clone(),
        );
        registry.register(
            "emails_undelivered",
            "E-mails given up after 3 days of failures, waiting for an administrator's Renvoyer on /console/admin",
            m.emails_undelivered.clone(),
        );
        registry.register(
            "email_send_failures",
            "Failed SMTP delivery attempts (retried with backoff)",
            m.email_send_failures.clone(),
        );
        registry.register(
            "emails_given_up",
            "E-mails given up after 3 days of failed attempts",
            m.emails_given_up.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(BuildLabels { version: env!("CARGO_PKG_VERSION"), commit: COMMIT }),
        );
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

    /// One more request answered.
    pub fn request(&self, route: RouteClass, status: u16, took: Duration) {
        self.requests.record(route, status, took);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_exposition() {
        assert_eq!(RouteClass::of_other("/api/v1/demarches"), RouteClass::api);
        assert_eq!(RouteClass::of_other("/api"), RouteClass::api);
        assert_eq!(RouteClass::of_other("/apidoc"), RouteClass::console);
        assert_eq!(RouteClass::of_other("/observatoire.csv"), RouteClass::observatory);
        assert_eq!(RouteClass::of_other("/console/admin"), RouteClass::console);
        assert_eq!(RouteClass::of_other("/"), RouteClass::console);
        assert_eq!(
            [100, 204, 303, 404, 503, 999].map(|s| StatusClass::of(s).label()),
            ["1xx", "2xx", "3xx", "4xx", "5xx", "5xx"]
        );

        let m = Metrics::default();
        m.request(RouteClass::vote, 303, Duration::from_micros(700));
        m.request(RouteClass::vote, 303, Duration::from_millis(30));
        m.request(RouteClass::vote, 429, Duration::from_micros(200));
        m.request(RouteClass::probe, 200, Duration::from_secs(20));
        assert_eq!(m.requests.count(RouteClass::vote, 303), 2);
        let text = m.render();
        for line in [
            "monavis_requests_total{route=\"vote\",status=\"3xx\"} 2",
            "monavis_requests_total{route=\"vote\",status=\"4xx\"} 1",
            "monavis_requests_total{route=\"probe\",status=\"2xx\"} 1",
            "monavis_request_duration_seconds_bucket{le=\"0.0005\",route=\"vote\"} 1",
            "monavis_request_duration_seconds_bucket{le=\"0.001\",route=\"vote\"} 2",
            "monavis_request_duration_seconds_bucket{le=\"0.05\",route=\"vote\"} 3",
            "monavis_request_duration_seconds_bucket{le=\"+Inf\",route=\"vote\"} 3",
            "monavis_request_duration_seconds_count{route=\"vote\"} 3",
            "monavis_request_duration_seconds_sum{route=\"vote\"} 0.0309",
            "monavis_request_duration_seconds_bucket{le=\"10.0\",route=\"probe\"} 0",
            "monavis_request_duration_seconds_bucket{le=\"+Inf\",route=\"probe\"} 1",
            "monavis_emails_waiting 0",
            "monavis_email_send_failures_total 0",
            "monavis_emails_given_up_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("route=\"form\""), "classes never seen are not exposed");
        let build = format!("monavis_build_info{{version=\"{}\",commit=\"{COMMIT}\"}} 1", env!("CARGO_PKG_VERSION"));
        assert!(text.lines().any(|l| l == build), "{build} missing");
    }
}
