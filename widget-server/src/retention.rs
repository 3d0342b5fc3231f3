//! Comment retention (DESIGN §13): a comment is erased `--retention-months` calendar months after
//! it was received, by a task that runs shortly after start and then once a day. The avis and
//! its answers stay, and so does `avis_daily`: dashboards and the observatory do not change.
//!
//! Every replica runs it; they share the work safely (a comment erased by one is skipped by the
//! others), and after the first run each erases about one day of comments a day. A run that
//! fails (the store unreachable, a statement timeout) is tried again [`RETRY_AFTER_FAILURE`]
//! later, until one succeeds, rather than a day later: a store down at the hour of the run
//! would otherwise keep comments a day past their term.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Months, Utc};

use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Rows erased per statement, each in its own transaction. Erasing costs per row, not per
/// statement (about 35 µs on PostgreSQL, 160 µs on SQLite, which also takes each comment out of
/// its full-text index), so small batches cost no throughput: this one holds SQLite's write
/// lock, which flushes and the console wait for, about a third of a second.
pub const ERASE_BATCH: usize = 2_000;
/// The first run waits this long after start, so that it does not compete with the replay of
/// spill files and of the journal.
const FIRST_RUN_DELAY: Duration = Duration::from_secs(5);
const PERIOD: Duration = Duration::from_secs(24 * 60 * 60);
/// After a failed run, the wait before the next try: within the hour, not the next day.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10 * 60);

/// The instant before which comments are erased: `months` calendar months before `now`, on the
/// same day of the month, or that month's last day when it is shorter (31 March − 1 month is
/// 29 February in a leap year). `None` only for cut-offs out of chrono's range.
pub fn cutoff(now: DateTime<Utc>, months: u32) -> Option<DateTime<Utc>> {
    now.checked_sub_months(Months::new(months))
}

/// Erases the comments older than `months` months once; how many it erased.
pub async fn erase_once(store: &dyn Store, metrics: &Metrics, months: u32) -> Result<u64, StoreError> {
    let Some(before) = cutoff(Utc::now(), months) else { return Ok(0) };
    let started = Instant::now();
    let erased = store.erase_comments_before(before, ERASE_BATCH).await?;
    metrics.comments_erased.inc_by(erased);
    tracing::info!(
        erased,
        months,
        before = %before.format("%Y-%m-%dT%H:%M:%SZ"),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "retention: old comments erased"
    );
    Ok(erased)
}

/// Runs [`erase_once`] shortly after start, then every 24 hours, until aborted (at shutdown,
/// with the other background tasks of [`crate::server::serve`]). A failed run is logged and
/// tried again [`RETRY_AFTER_FAILURE`] later; what it erased before failing stays erased.
pub async fn run(store: Arc<dyn Store>, metrics: Arc<Metrics>, months: u32) {
    schedule(|| erase_once(store.as_ref(), &metrics, months)).await
}

/// Calls `attempt` after [`FIRST_RUN_DELAY`], then [`PERIOD`] after each success (counted from
/// its start, so the hour of the run does not drift) and [`RETRY_AFTER_FAILURE`] after each
/// failure, for ever.
async fn schedule<F, Fut>(mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut next = tokio::time::Instant::now() + FIRST_RUN_DELAY;
    let mut last_success: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep_until(next).await;
        let started = tokio::time::Instant::now();
        match attempt().await {
            Ok(_) => {
                last_success = Some(started);
                // After a run longer than the period, wait a full period rather than run again at once.
                next = (started + PERIOD).max(tokio::time::Instant::now() + FIRST_RUN_DELAY);
            }
            Err(e) => {
                next = tokio::time::Instant::now() + RETRY_AFTER_FAILURE;
                tracing::warn!(
                    error = %e,
                    retry_in_minutes = RETRY_AFTER_FAILURE.as_secs() / 60,
                    hours_since_last_success = last_success.map(|t| t.elapsed().as_secs() / 3600),
                    "retention: cannot erase old comments; trying again soon"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::Mutex;

    /// A store down at the hour of the run: the run is tried again within the hour, and once it
    /// succeeds the next is a day after that success. Tokio's clock is paused and advanced.
    #[tokio::test(start_paused = true)]
    async fn a_failed_run_is_retried_within_the_hour() {
        let t0 = tokio::time::Instant::now();
        let runs: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let task = {
            let runs = runs.clone();
            tokio::spawn(schedule(move || {
                let runs = runs.clone();
                async move {
                    let mut r = runs.lock().unwrap();
                    r.push(t0.elapsed());
                    // The store is down for the first two tries.
                    if r.len() <= 2 {
                        Err(StoreError::Pool("timed out waiting for a connection".into()))
                    } else {
                        Ok(3)
                    }
                }
            }))
        };
        tokio::time::sleep(Duration::from_secs(3 * 24 * 3600)).await;
        task.abort();
        let minutes: Vec<u64> = runs.lock().unwrap().iter().map(|d| d.as_secs() / 60).collect();
        let secs: Vec<u64> = runs.lock().unwrap().iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs[0], 5, "first run 5 s after start");
        assert_eq!(secs[1] - secs[0], 600, "a failed run is tried again 10 minutes later");
        assert_eq!(secs[2] - secs[1], 600, "and again");
        assert!(secs[2] < 3600, "the store back, the run succeeds within the hour of the first: {minutes:?}");
        assert_eq!(secs[3] - secs[2], 24 * 3600, "then daily, from the run that succeeded");
        assert_eq!(secs[4] - secs[3], 24 * 3600);
        assert_eq!(secs.len(), 5, "{minutes:?}");
    }

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().unwrap()
    }

    #[test]
    fn cutoff_is_calendar_months_back() {
        assert_eq!(cutoff(utc(2026, 5, 15, 9), 24), Some(utc(2024, 5, 15, 9)));
        assert_eq!(cutoff(utc(2026, 1, 10, 0), 1), Some(utc(2025, 12, 10, 0)));
        assert_eq!(cutoff(utc(2024, 3, 31, 12), 1), Some(utc(2024, 2, 29, 12)), "clamped to a leap February");
        assert_eq!(cutoff(utc(2025, 3, 31, 12), 1), Some(utc(2025, 2, 28, 12)));
        assert_eq!(cutoff(utc(2026, 5, 15, 9), 1200), Some(utc(1926, 5, 15, 9)), "the largest --retention-months");
    }
}
