//! The open model's timetable: request `i` is due at `start + i / rate`, whatever happened to
//! the ones before it.
//!
//! This is what keeps the open model honest (Gil Tene's "coordinated omission"): a closed loop
//! that waits for each answer sends less when the server slows down, so the slow moments are
//! under-sampled. Here the timetable does not wait; a request that could not be sent on time
//! because every connection was busy is timed from its due time, so the queueing it suffered
//! counts in its latency.
//!
//! Timers tick every millisecond, so requests due within the same millisecond leave together:
//! at high rates the load arrives in small bursts rather than evenly spaced.

use std::time::Duration;

/// A fixed-rate timetable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    rate: f64,
}

/// Highest accepted `--rate`: far above what one machine sends, low enough that due times
/// stay exact in nanoseconds over the longest run.
pub const MAX_RATE: f64 = 10_000_000.0;

impl Schedule {
    /// A timetable of `rate` requests per second.
    pub fn new(rate: f64) -> Result<Schedule, String> {
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            return Err(format!(
                "--rate {rate}: expected a number of requests per second above 0 and at most {MAX_RATE}"
            ));
        }
        Ok(Schedule { rate })
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When request `ticket` (numbered from 0) is due, counted from the start of the run.
    pub fn due(&self, ticket: u64) -> Duration {
        Duration::from_nanos((ticket as f64 * 1e9 / self.rate).round() as u64)
    }

    /// How many requests are due strictly before `duration` has elapsed.
    pub fn due_within(&self, duration: Duration) -> u64 {
        let n = (duration.as_secs_f64() * self.rate).ceil() as u64;
        // Correct the float estimate by the exact test `due(i) < duration`.
        let mut n = n.saturating_sub(1);
        while self.due(n) < duration {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_evenly_spaced() {
        let s = Schedule::new(4.0).unwrap();
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(1), Duration::from_millis(250));
        assert_eq!(s.due(4), Duration::from_secs(1));
        let fast = Schedule::new(1_000_000.0).unwrap();
        assert_eq!(fast.due(600_000_000), Duration::from_secs(600), "exact at the duration cap");
        assert_eq!(fast.due(1), Duration::from_micros(1));
    }

    #[test]
    fn counts_the_requests_of_a_window() {
        let s = Schedule::new(4.0).unwrap();
        assert_eq!(s.due_within(Duration::from_secs(1)), 4, "0, 250, 500, 750 ms; 1 s is past the window");
        assert_eq!(s.due_within(Duration::from_millis(1001)), 5);
        assert_eq!(s.due_within(Duration::ZERO), 0);
        assert_eq!(Schedule::new(3.0).unwrap().due_within(Duration::from_secs(10)), 30);
        assert_eq!(Schedule::new(0.5).unwrap().due_within(Duration::from_secs(3)), 2);
    }

    #[test]
    fn refuses_impossible_rates() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
            assert!(Schedule::new(bad).is_err(), "{bad}");
        }
    }
}
