//! What a run measured: latency histograms and status counts per request kind, printed as a
//! table and written as JSON for the benchmark script.
//!
//! Each worker fills its own [`Stats`] (no locking on the hot loop); they are merged at the end.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use hdrhistogram::Histogram;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::client::{Answer, RequestError};
use crate::mix::Kind;

/// Longest latency told apart from the rest, in microseconds (an hour; longer saturates).
const MAX_TRACKED_US: u64 = 3_600_000_000;
/// How late a send may be against its due time before it counts as behind schedule: the
/// timer's granularity.
pub const LATE_AFTER: Duration = Duration::from_millis(1);

/// Figures of one request kind.
#[derive(Clone, Debug)]
pub struct KindStats {
    /// Latency of answered requests, in microseconds.
    latency: Histogram<u64>,
    /// Answers by status code.
    statuses: BTreeMap<u16, u64>,
    /// Failures by [`RequestError::class`].
    errors: BTreeMap<&'static str, u64>,
}

impl KindStats {
    fn new() -> KindStats {
        // Constant, valid bounds: creation cannot fail.
        let latency = Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).unwrap_or_else(|_| unreachable!());
        KindStats { latency, statuses: BTreeMap::new(), errors: BTreeMap::new() }
    }

    /// Requests sent, answered or not.
    pub fn count(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors.values().sum::<u64>()
    }

    /// Answers with `status`.
    pub fn status(&self, status: StatusCode) -> u64 {
        self.statuses.get(&status.as_u16()).copied().unwrap_or(0)
    }

    fn merge(&mut self, other: &KindStats) {
        // Same bounds on both sides, so adding cannot fail; saturate rather than panic anyway.
        for v in other.latency.iter_recorded() {
            self.latency.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        for (e, n) in &other.errors {
            *self.errors.entry(e).or_default() += n;
        }
    }

    /// Latency at `quantile` in milliseconds (0 when nothing was answered).
    fn ms(&self, quantile: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }

    /// `200: 12345, 304: 67, errors: timeout 2`.
    fn outcomes(&self) -> String {
        let mut parts: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        if !self.errors.is_empty() {
            let errors: Vec<String> = self.errors.iter().map(|(e, n)| format!("{e} {n}")).collect();
            parts.push(format!("errors: {}", errors.join(", ")));
        }
        parts.join(", ")
    }

    fn json(&self, name: &str, elapsed: Duration) -> Value {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({
            "kind": name,
            "count": self.count(),
            "rps": round(rate(self.count(), elapsed)),
            "latency_ms": {
                "p50": round(self.ms(0.50)),
                "p90": round(self.ms(0.90)),
                "p99": round(self.ms(0.99)),
                "p999": round(self.ms(0.999)),
                "max": round(self.max_ms()),
            },
            "status": self.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "errors": self.errors.iter().map(|(e, n)| (e.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// Everything a run (or one worker of it) measured.
#[derive(Clone, Debug)]
pub struct Stats {
    kinds: Vec<KindStats>,
    /// Votes that failed in a way that may have reached the server (see
    /// [`RequestError::maybe_delivered`]): each may or may not be stored.
    pub votes_uncertain: u64,
    /// Open model: requests sent more than [`LATE_AFTER`] after their due time, because every
    /// connection was busy.
    pub late: u64,
    /// Open model: the largest delay between a request's due time and its send.
    pub max_lag: Duration,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            kinds: Kind::ALL.iter().map(|_| KindStats::new()).collect(),
            votes_uncertain: 0,
            late: 0,
            max_lag: Duration::ZERO,
        }
    }
}

impl Stats {
    /// Records one request of `kind`; `latency` counts only for answered requests.
    pub fn record(&mut self, kind: Kind, outcome: &Result<Answer, RequestError>, latency: Duration) {
        let k = &mut self.kinds[kind.index()];
        match outcome {
            Ok(answer) => {
                *k.statuses.entry(answer.status().as_u16()).or_default() += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
                k.latency.saturating_record(us);
            }
            Err(e) => {
                *k.errors.entry(e.class()).or_default() += 1;
                if kind == Kind::Vote && e.maybe_delivered() {
                    self.votes_uncertain += 1;
                }
            }
        }
    }

    /// Records how late a request left against its due time (open model).
    pub fn record_lag(&mut self, lag: Duration) {
        if lag > LATE_AFTER {
            self.late += 1;
        }
        self.max_lag = self.max_lag.max(lag);
    }

    /// Adds another worker's figures.
    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.kinds.iter_mut().zip(&other.kinds) {
            mine.merge(theirs);
        }
        self.votes_uncertain += other.votes_uncertain;
        self.late += other.late;
        self.max_lag = self.max_lag.max(other.max_lag);
    }

    /// The figures of `kind`.
    pub fn kind(&self, kind: Kind) -> &KindStats {
        &self.kinds[kind.index()]
    }

    /// Votes answered 303: each must end up in the store.
    pub fn votes_accepted(&self) -> u64 {
        self.kind(Kind::Vote).status(StatusCode::SEE_OTHER)
    }

    /// All kinds together.
    pub fn total(&self) -> KindStats {
        let mut total = KindStats::new();
        for k in &self.kinds {
            total.merge(k);
        }
        total
    }
}

/// How the run was driven, for the report header.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub target: String,
    pub mix: String,
    pub concurrency: usize,
    /// `Some` for the open model.
    pub rate: Option<f64>,
    /// Open model: requests the timetable held for the run.
    pub planned: Option<u64>,
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
    /// The `--seed` that repeats the run's choices.
    pub seed: u64,
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Prints the table.
pub fn print(out: &mut impl Write, info: &RunInfo, stats: &Stats) -> io::Result<()> {
    let total = stats.total();
    let model = match info.rate {
        Some(r) => format!("open model, {r} req/s scheduled over up to {} connections", info.concurrency),
        None => format!("closed model, {} connections", info.concurrency),
    };
    writeln!(out, "target {}  mix {}  seed {}", info.target, info.mix, info.seed)?;
    writeln!(
        out,
        "{model}: {} requests in {:.2} s = {:.1} req/s{}",
        total.count(),
        info.elapsed.as_secs_f64(),
        rate(total.count(), info.elapsed),
        if info.interrupted { " (interrupted)" } else { "" }
    )?;
    if let Some(planned) = info.planned {
        writeln!(
            out,
            "schedule: {planned} planned, {} sent more than {} ms late, largest lag {:.2} ms{}",
            stats.late,
            LATE_AFTER.as_millis(),
            stats.max_lag.as_secs_f64() * 1000.0,
            if stats.late > 0 { " (latency counts from the due time)" } else { "" }
        )?;
    }
    writeln!(
        out,
        "{:<12} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}  outcomes",
        "kind", "count", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    )?;
    let rows = Kind::ALL.iter().map(|k| (k.name(), stats.kind(*k))).filter(|(_, s)| s.count() > 0);
    for (name, s) in rows.chain(std::iter::once(("total", &total))) {
        writeln!(
            out,
            "{:<12} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {}",
            name,
            s.count(),
            rate(s.count(), info.elapsed),
            s.ms(0.50),
            s.ms(0.90),
            s.ms(0.99),
            s.ms(0.999),
            s.max_ms(),
            s.outcomes()
        )?;
    }
    if stats.kind(Kind::Vote).count() > 0 {
        writeln!(
            out,
            "votes: {} accepted (303), {} unanswered that may have reached the server",
            stats.votes_accepted(),
            stats.votes_uncertain
        )?;
    }
    Ok(())
}

/// The same figures as JSON.
pub fn json(info: &RunInfo, stats: &Stats) -> Value {
    let kinds: Vec<Value> = Kind::ALL
        .iter()
        .filter(|k| stats.kind(**k).count() > 0)
        .map(|k| stats.kind(*k).json(k.name(), info.elapsed))
        .collect();
    let total = stats.total();
    let mut v = json!({
        "target": info.target,
        "mix": info.mix,
        "model": if info.rate.is_some() { "open" } else { "closed" },
        "concurrency": info.concurrency,
        "rate": info.rate,
        "elapsed_s": info.elapsed.as_secs_f64(),
        "interrupted": info.interrupted,
        "seed": info.seed,
        "requests": total.count(),
        "rps": rate(total.count(), info.elapsed),
        "kinds": kinds,
        "total": total.json("total", info.elapsed),
        "votes": { "accepted": stats.votes_accepted(), "uncertain": stats.votes_uncertain },
    });
    if let Some(planned) = info.planned {
        v["schedule"] = json!({
            "planned": planned,
            "late": stats.late,
            "max_lag_ms": stats.max_lag.as_secs_f64() * 1000.0,
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Response;

    fn answer(status: u16) -> Result<Answer, RequestError> {
        let mut res = Response::new(());
        *res.status_mut() = StatusCode::from_u16(status).unwrap();
        Ok(res)
    }

    #[test]
    fn records_merges_and_reports() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for i in 1..=100u64 {
            a.record(Kind::Button, &answer(200), Duration::from_micros(i * 10));
        }
        b.record(Kind::Vote, &answer(303), Duration::from_millis(2));
        b.record(Kind::Vote, &answer(429), Duration::from_millis(1));
        b.record(Kind::Vote, &Err(RequestError::Timeout), Duration::from_secs(10));
        b.record(Kind::Vote, &Err(RequestError::Connect(io::ErrorKind::ConnectionRefused.into())), Duration::ZERO);
        b.record_lag(Duration::from_millis(5));
        a.merge(&b);
        assert_eq!(a.kind(Kind::Button).count(), 100);
        assert_eq!(a.kind(Kind::Vote).count(), 4);
        assert_eq!(a.votes_accepted(), 1);
        assert_eq!(a.votes_uncertain, 1, "a refused connection cannot have delivered the vote");
        assert_eq!(a.late, 1);
        assert_eq!(a.total().count(), 104);
        let p50 = a.kind(Kind::Button).ms(0.5);
        assert!((0.49..=0.51).contains(&p50), "{p50}");

        let info = RunInfo {
            target: "http://127.0.0.1:1".into(),
            mix: "button=1,vote=1".into(),
            concurrency: 2,
            rate: Some(100.0),
            planned: Some(104),
            elapsed: Duration::from_secs(2),
            interrupted: false,
            seed: 1,
        };
        let mut out = Vec::new();
        print(&mut out, &info, &a).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("303: 1, 429: 1, errors: connect 1, timeout 1"), "{text}");
        assert!(text.contains("104 requests in 2.00 s = 52.0 req/s"), "{text}");
        let j = json(&info, &a);
        assert_eq!(j["kinds"][0]["kind"], "button");
        assert_eq!(j["kinds"][0]["rps"], 50.0);
        assert_eq!(j["kinds"][1]["status"]["303"], 1);
        assert_eq!(j["total"]["count"], 104);
        assert_eq!(j["schedule"]["late"], 1);
    }
}
