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

/// A place held in the buffer for one vote (see [`BufferedVotes::reserve`]).
#[must_use]
pub struct Reservation<'a> {
    buffer: &'a BufferedVotes,
    /// This vote's rank in the held count, to wake the flusher every `flush_at` votes.
    position: usize,
}

impl Reservation<'_> {
    /// Puts the vote in the place reserved for it.
    pub fn insert(self, vote: Vote) {
        let buffer = self.buffer;
        buffer.pending.entry(vote.demarche_id).or_default().push(vote);
        if self.position.is_multiple_of(buffer.flush_at) {
            buffer.flush_wanted.notify_one();
        }
        std::mem::forget(self);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.buffer.held.fetch_sub(1, Ordering::AcqRel);
    }
}

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
        self.reserve()?.insert(vote);
        Ok(())
    }

    /// Reserves a place for one vote, so that a vote can be journaled before it is buffered and
    /// never be journaled yet refused. Dropping the reservation unused gives the place back.
    pub fn reserve(&self) -> Result<Reservation<'_>, BufferFull> {
        // Reserve first, so concurrent pushes can never overshoot the bound.
        let before = self.held.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_votes {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return Err(BufferFull);
        }
        Ok(Reservation { buffer: self, position: before + 1 })
    }

    /// Takes every pending vote. They stay counted as held until [`Self::committed`].
    pub fn drain(&self) -> Vec<Vote> {
        // Each démarche's votes are swapped out under its shard's lock (a pointer swap, nothing
        // copied); they are put together afterwards, with no lock held, so an intake push never
        // waits behind the copy, even if the flusher's thread is descheduled meanwhile.
        let mut parts: Vec<Vec<Vote>> = Vec::new();
        for mut shard in self.pending.iter_mut() {
            if !shard.value().is_empty() {
                parts.push(std::mem::take(shard.value_mut()));
            }
        }
        let mut parts = parts.into_iter();
        let mut out = parts.next().unwrap_or_default();
        out.reserve(parts.as_slice().iter().map(Vec::len).sum());
        for mut part in parts {
            out.append(&mut part);
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
    fn unused_reservation_gives_its_place_back() {
        let b = BufferedVotes::new(1, 100);
        let r = b.reserve().unwrap();
        assert_eq!(b.push(vote(1)), Err(BufferFull));
        drop(r);
        assert_eq!(b.held(), 0);
        b.reserve().unwrap().insert(vote(1));
        assert_eq!((b.held(), b.drain().len()), (1, 1));
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
