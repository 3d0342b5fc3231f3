//! The two load models, driven by the same workers.
//!
//! - Closed: `--concurrency` workers, each with one keep-alive connection, send back to back.
//!   Throughput is whatever the server sustains; latency is from send to last byte.
//! - Open: requests are due on a fixed timetable ([`Schedule`]); up to `--concurrency` workers
//!   take the next due request in turn, wait for its due time and send it. A request that is
//!   taken late because all connections were busy is timed from its due time.
//!
//! Either way the run stops after `--requests` or at the deadline, whichever comes first; no
//! new request starts after the deadline, and the ones in flight are bounded by `--timeout`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{source_ip, Client, Connector};
use crate::mix::Mix;
use crate::report::Stats;
use crate::rng::Rng;
use crate::schedule::Schedule;
use crate::traffic::Traffic;

/// Pause of a closed-model worker after its connection attempt failed.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// How to drive the load.
#[derive(Clone, Debug)]
pub struct Plan {
    pub connector: Connector,
    /// `Some` for the open model.
    pub schedule: Option<Schedule>,
    pub concurrency: usize,
    /// Stop after this many requests.
    pub requests: Option<u64>,
    /// Stop starting requests after this long.
    pub duration: Duration,
    /// Longest wait for one answer.
    pub timeout: Duration,
    /// Bind worker i to [`source_ip`]`(i % n)`; 0 leaves the source to the kernel.
    pub source_ips: u32,
    pub seed: u64,
}

/// What every worker shares.
struct Shared {
    plan: Plan,
    traffic: Traffic,
    mix: Mix,
    start: Instant,
    deadline: Instant,
    /// The next request number to take; numbers are the tickets of the open timetable.
    next_ticket: AtomicU64,
    /// Requests finished, for the progress line.
    done: AtomicU64,
    /// Set by Ctrl-C: finish what is in flight and stop.
    stop: AtomicBool,
}

/// A finished run.
pub struct Outcome {
    pub stats: Stats,
    pub elapsed: Duration,
    pub interrupted: bool,
}

/// Runs `plan`. `progress` is called about once a second with the requests done so far.
pub async fn run(
    plan: Plan,
    traffic: Traffic,
    mix: Mix,
    progress: impl Fn(Duration, u64) + Send + 'static,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        deadline: start + plan.duration,
        plan,
        traffic,
        mix,
        start,
        next_ticket: AtomicU64::new(0),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let workers: Vec<_> = (0..shared.plan.concurrency).map(|i| tokio::spawn(worker(shared.clone(), i))).collect();
    let watcher = tokio::spawn({
        let shared = shared.clone();
        async move {
            let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => progress(shared.start.elapsed(), shared.done.load(Ordering::Relaxed)),
                    interrupted = tokio::signal::ctrl_c() => {
                        if interrupted.is_ok() {
                            eprintln!("interrupted: finishing the requests in flight");
                            shared.stop.store(true, Ordering::Relaxed);
                        }
                        return;
                    }
                }
            }
        }
    });
    let mut stats = Stats::default();
    for w in workers {
        stats.merge(&w.await?);
    }
    let elapsed = start.elapsed();
    watcher.abort();
    Ok(Outcome { stats, elapsed, interrupted: shared.stop.load(Ordering::Relaxed) })
}

async fn worker(shared: Arc<Shared>, index: usize) -> Stats {
    let plan = &shared.plan;
    let mut connector = plan.connector;
    if plan.source_ips > 0 {
        connector.source = Some(source_ip(index as u32 % plan.source_ips).into());
    }
    let mut client = Client::new(connector, plan.timeout);
    let mut rng = Rng::new(plan.seed, index as u64);
    let mut stats = Stats::default();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let ticket = shared.next_ticket.fetch_add(1, Ordering::Relaxed);
        if plan.requests.is_some_and(|max| ticket >= max) {
            break;
        }
        let taken = Instant::now();
        // The time the latency counts from: the due time if the request was taken late (it
        // queued behind busy connections, as a real visitor would have), else the send itself
        // (a wait for the timer is the generator's, not the server's).
        let due = match plan.schedule {
            Some(schedule) => {
                let due = shared.start + schedule.due(ticket);
                if due >= shared.deadline {
                    break;
                }
                tokio::time::sleep_until(due).await;
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                Some(due)
            }
            None if taken >= shared.deadline => break,
            None => None,
        };
        let kind = shared.mix.pick(rng.below(shared.mix.total()));
        let req = match shared.traffic.request(kind, &mut rng) {
            Ok(req) => req,
            // Built from validated parts only; if one ever fails, the run says so loudly.
            Err(e) => {
                eprintln!("cannot build a {kind} request: {e}");
                break;
            }
        };
        let sent = Instant::now();
        let outcome = client.send(req).await;
        let from = match due {
            Some(due) if taken > due => {
                stats.record_lag(sent - due);
                due
            }
            _ => sent,
        };
        stats.record(kind, &outcome, from.elapsed());
        shared.done.fetch_add(1, Ordering::Relaxed);
        if due.is_none() && outcome.as_ref().is_err_and(|e| !e.maybe_delivered()) {
            // The server is not taking connections (stopped, or its backlog is full): retrying at
            // once would only spin and pile up errors; the open model is paced by its timetable.
            tokio::time::sleep(CONNECT_RETRY_PAUSE).await;
        }
    }
    stats
}
