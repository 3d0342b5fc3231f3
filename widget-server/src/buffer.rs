//! [`BufferedVotes`]: accepted votes waiting for the store.
//!
//! A `DashMap` keyed by démarche spreads pushes over shards; a global atomic count bounds what
//! is held. The count covers votes from the moment they are pushed until the store commits them
//! (the flusher calls [`BufferedVotes::committed`]), so memory stays bounded even while the
//! store is down: once `--buffer-max-votes` are held, new votes are refused with
//! [`BufferFull`] (503 + Retry-After), never dropped silently.

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::vote::Vote;

/// The buffer is full: answer 503 and let the citizen retry.
#[derive(Debug, PartialEq, Eq)]
pub struct BufferFull;

/// Votes held in memory until stored.
pub struct BufferedVotes {
    pending: DashMap<i64, Vec<Vote>>,
    /// Votes pushed and not yet committed (pending here or owned by the flusher).
    held: AtomicUsize,
    max_votes: usize,
    flush_at: usize,
    /// Wakes the flusher when `flush_at` votes are pending.
    flush_wanted: Notify,
}

impl BufferedVotes {
    /// A buffer holding at most `max_votes`, asking for a flush once `flush_at` are pending.
    pub fn new(max_votes: usize, flush_at: usize) -> BufferedVotes {
        BufferedVotes {
            pending: DashMap::new(),
            held: AtomicUsize::new(0),
            max_votes: max_votes.max(1),
            flush_at: flush_at.max(1),
            flush_wanted: Notify::new(),
        }
    }

    /// Takes ownership of an accepted vote, or refuses it if the buffer is full.
    pub fn push(&self, vote: Vote) -> Result<(), BufferFull> {
        // Reserve a place first, so concurrent pushes can never overshoot the bound.
        let before = self.held.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_votes {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return Err(BufferFull);
        }
        self.pending.entry(vote.demarche_id).or_default().push(vote);
        if (before + 1).is_multiple_of(self.flush_at) {
            self.flush_wanted.notify_one();
        }
        Ok(())
    }

    /// Takes every pending vote. They stay counted as held until [`Self::committed`].
    pub fn drain(&self) -> Vec<Vote> {
        let mut out = Vec::new();
        for mut shard in self.pending.iter_mut() {
            if out.is_empty() {
                out = std::mem::take(shard.value_mut());
            } else {
                out.append(shard.value_mut());
            }
        }
        out
    }

    /// The store committed `n` drained votes: they no longer count against the bound.
    pub fn committed(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }

    /// Votes held: pending, or drained and not yet committed.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The bound on [`Self::held`].
    pub fn max_votes(&self) -> usize {
        self.max_votes
    }

    /// Waits until a flush is wanted because `flush_at` votes were pushed.
    pub async fn flush_wanted(&self) {
        self.flush_wanted.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vote::{Answers, Level, Source};

    fn vote(d: i64) -> Vote {
        Vote::accept(d, Source::default(), Level::Good, Answers::default())
    }

    #[test]
    fn bound_holds_until_committed() {
        let b = BufferedVotes::new(3, 100);
        for d in [1, 2, 1] {
            b.push(vote(d)).unwrap();
        }
        assert_eq!(b.push(vote(1)), Err(BufferFull));
        let drained = b.drain();
        assert_eq!(drained.len(), 3);
        assert_eq!(b.held(), 3, "drained votes still count until committed");
        assert_eq!(b.push(vote(1)), Err(BufferFull));
        b.committed(3);
        assert_eq!(b.held(), 0);
        b.push(vote(1)).unwrap();
        assert!(b.drain().len() == 1 && b.drain().is_empty());
    }

    #[test]
    fn concurrent_pushes_never_overshoot_and_lose_nothing() {
        let b = std::sync::Arc::new(BufferedVotes::new(10_000, 1_000_000));
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (b, accepted) = (b.clone(), accepted.clone());
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        if b.push(vote((t * 7 + i) % 13)).is_ok() {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(accepted.load(Ordering::Relaxed), 10_000);
        let drained = b.drain();
        assert_eq!(drained.len(), 10_000);
        let ids: std::collections::HashSet<_> = drained.iter().map(|v| v.id).collect();
        assert_eq!(ids.len(), 10_000, "ids are unique");
    }
}
