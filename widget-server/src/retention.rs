//! Comment retention (DESIGN §13): a comment is erased `--retention-months` calendar months after
//! it was received, by a task that runs shortly after start and then once a day. The avis and
//! its answers stay, and so does `avis_daily`: dashboards and the observatory do not change.
//!
//! Every replica runs it; they share the work safely (a comment erased by one is skipped by the
//! others), and after the first run each erases about one day of comments a day.

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
/// tried again at the next one; what it erased before failing stays erased.
pub async fn run(store: Arc<dyn Store>, metrics: Arc<Metrics>, months: u32) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + FIRST_RUN_DELAY, PERIOD);
    // After a long run, wait a full period rather than running again at once.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = erase_once(store.as_ref(), &metrics, months).await {
            tracing::warn!(error = %e, "retention: cannot erase old comments; trying again in 24 hours");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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
