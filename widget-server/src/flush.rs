//! [`Flusher`]: moves votes from the buffer to the store, in batches, exactly once.
//!
//! Batching is bounded by count (`--flush-max-votes`) and by wait (`--flush-interval-ms`),
//! whichever comes first. A drained batch stays owned here until the store confirms it; a failed
//! attempt is retried with capped exponential backoff while intake goes on (up to the buffer's
//! bound). At shutdown the flusher keeps trying until the deadline, then writes what is left to a
//! spill file in the data directory, replayed idempotently at the next start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::buffer::BufferedVotes;
use crate::journal::{self, Journal};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::vote::Vote;

/// First retry delay; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest single store attempt: a hung connection must not stall flushing forever. During
/// shutdown the attempt is also cut at the deadline.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a flusher ended.
#[derive(Debug, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Every accepted vote is in the store.
    AllStored,
    /// The store could not be reached in time: these many votes are in the spill file.
    Spilled { votes: usize, path: PathBuf },
    /// The spill file could not be written, but these votes are all in the journal
    /// (`--journal`): replayed at next start, like a spill.
    Journaled { votes: usize },
    /// Not even the spill file could be written: these votes are lost. Logged loudly.
    Lost { votes: usize, error: String },
}

impl FlushOutcome {
    /// The outcome of two flushers together: the worse of the two; counts of the same kind add up.
    pub fn and(self, other: FlushOutcome) -> FlushOutcome {
        use FlushOutcome::*;
        match (self, other) {
            (AllStored, o) | (o, AllStored) => o,
            (Lost { votes: a, error }, Lost { votes: b, .. }) => Lost { votes: a + b, error },
            (lost @ Lost { .. }, Spilled { .. }) | (Spilled { .. }, lost @ Lost { .. }) => lost,
            (lost @ Lost { .. }, Journaled { .. }) | (Journaled { .. }, lost @ Lost { .. }) => lost,
            (Spilled { votes: a, path }, Spilled { votes: b, .. })
            | (Spilled { votes: a, path }, Journaled { votes: b })
            | (Journaled { votes: b }, Spilled { votes: a, path }) => Spilled { votes: a + b, path },
            (Journaled { votes: a }, Journaled { votes: b }) => Journaled { votes: a + b },
        }
    }
}

/// What bounds a flusher's batches and where it spills.
#[derive(Clone, Debug)]
pub struct FlushSettings {
    /// Largest batch written at once (`--flush-max-votes`).
    pub max_batch: usize,
    /// Longest wait between flushes (`--flush-interval-ms`).
    pub interval: Duration,
    /// Where spill files go at shutdown.
    pub data_dir: PathBuf,
}

/// Moves votes from [`BufferedVotes`] to a [`Store`].
pub struct Flusher {
    buffer: Arc<BufferedVotes>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    settings: FlushSettings,
    /// `Some(deadline)` once shutdown has begun.
    shutdown: watch::Receiver<Option<Instant>>,
    /// Told of every commit, so stored journal segments can go.
    journal: Option<Journal>,
}

impl Flusher {
    pub fn new(
        buffer: Arc<BufferedVotes>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        mut settings: FlushSettings,
        shutdown: watch::Receiver<Option<Instant>>,
        journal: Option<Journal>,
    ) -> Flusher {
        settings.max_batch = settings.max_batch.max(1);
        Flusher { buffer, store, metrics, settings, shutdown, journal }
    }

    /// Flushes until shutdown begins, then flushes what is left until the deadline, then spills.
    pub async fn run(self) -> FlushOutcome {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + self.settings.interval, self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.shutdown.borrow().is_some() {
                break;
            }
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.buffer.flush_wanted() => {}
                _ = shutdown.changed() => {}
            }
            if let Err(left) = self.drain_once().await {
                return self.spill(left);
            }
        }
        // Shutdown: intake has stopped; one last drain gets everything.
        match self.drain_once().await {
            Ok(()) => FlushOutcome::AllStored,
            Err(left) => self.spill(left),
        }
    }

    /// Drains the buffer once and stores it batch by batch. Returns the votes it could not store
    /// before the shutdown deadline, if one passed.
    pub async fn drain_once(&self) -> Result<(), Vec<Vote>> {
        let votes = self.buffer.drain();
        let mut start = 0;
        while start < votes.len() {
            let end = (start + self.settings.max_batch).min(votes.len());
            if !self.store_with_retry(&votes[start..end]).await {
                let mut left = votes;
                left.drain(..start);
                left.extend(self.buffer.drain());
                return Err(left);
            }
            self.buffer.committed(end - start);
            if let Some(journal) = &self.journal {
                journal.committed(&votes[start..end]);
            }
            start = end;
        }
        Ok(())
    }

    /// Stores one batch, retrying until it commits (`true`) or the shutdown deadline passes.
    async fn store_with_retry(&self, batch: &[Vote]) -> bool {
        let mut backoff = MIN_BACKOFF;
        loop {
            let started = Instant::now();
            let limit = match *self.shutdown.borrow() {
                Some(deadline) => deadline.saturating_duration_since(started).min(ATTEMPT_TIMEOUT),
                None => ATTEMPT_TIMEOUT,
            };
            // A timed-out attempt is dropped, which rolls its transaction back; if its commit
            // did land, the retry (or the spill replay) finds the ids stored and counts nothing.
            let attempt = match tokio::time::timeout(limit, self.store.store_batch(batch)).await {
                Ok(result) => result,
                Err(_) => {
                    Err(crate::store::StoreError::Task(format!("no answer from the store in {} ms", limit.as_millis())))
                }
            };
            match attempt {
                Ok(fresh) => {
                    let took = started.elapsed();
                    self.metrics.flush_batches.inc();
                    self.metrics.flush_rows.inc_by(fresh);
                    self.metrics.flush_seconds.observe(took.as_secs_f64());
                    self.metrics.store_reachable.set(1);
                    tracing::info!(votes = batch.len(), new = fresh, ms = took.as_millis() as u64, "flushed");
                    return true;
                }
                Err(e) => {
                    self.metrics.flush_errors.inc();
                    self.metrics.store_reachable.set(0);
                    tracing::warn!(votes = batch.len(), error = %e, retry_in_ms = backoff.as_millis() as u64, "flush failed");
                }
            }
            let deadline = *self.shutdown.borrow();
            match deadline {
                Some(d) if Instant::now() + backoff >= d => return false,
                Some(_) => tokio::time::sleep(backoff).await,
                None => {
                    let mut shutdown = self.shutdown.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        // Shutdown began: retry now, then under the deadline.
                        _ = shutdown.changed() => {}
                    }
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn spill(&self, votes: Vec<Vote>) -> FlushOutcome {
        let n = votes.len();
        if n == 0 {
            return FlushOutcome::AllStored;
        }
        match write_spill(&self.settings.data_dir, &votes) {
            Ok(path) => {
                tracing::error!(votes = n, path = %path.display(), "store unreachable at shutdown: votes spilled to disk, replayed at next start");
                FlushOutcome::Spilled { votes: n, path }
            }
            Err(e) if votes.iter().all(|v| v.journal_segment != 0) => {
                tracing::error!(votes = n, error = %e, "store unreachable and spill file not written: the votes stay in the journal, replayed at next start");
                FlushOutcome::Journaled { votes: n }
            }
            Err(e) => {
                tracing::error!(votes = n, error = %e, "store unreachable and spill file not written: votes lost");
                FlushOutcome::Lost { votes: n, error: e.to_string() }
            }
        }
    }
}

/// Spill files are `spill-*.jsonl` in the data directory: one vote per line, JSON.
fn is_spill_file(name: &str) -> bool {
    name.starts_with("spill-") && name.ends_with(".jsonl")
}

/// Writes votes to a new spill file atomically (temporary name, fsync, rename, fsync of the
/// directory), so a crash leaves either the whole file or none.
pub fn write_spill(dir: &Path, votes: &[Vote]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let name = format!("spill-{}.jsonl", uuid::Uuid::now_v7());
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(&name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for v in votes {
        serde_json::to_writer(&mut out, v)?;
        out.write_all(b"\n")?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

/// Reads a spill or journal file. A last line cut short (a crash mid-write of a journal group,
/// never acknowledged) is skipped; a bad line anywhere else is an error.
pub fn read_votes(path: &Path) -> std::io::Result<Vec<Vote>> {
    let text = String::from_utf8_lossy(&std::fs::read(path)?).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut votes = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(v) => votes.push(v),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {
                tracing::warn!(path = %path.display(), "torn last line skipped (never acknowledged)");
            }
            Err(e) => return Err(std::io::Error::other(format!("line {}: {e}", i + 1))),
        }
    }
    Ok(votes)
}

/// Files in `dir` whose name passes `wanted`, oldest name first.
pub fn files_matching(dir: &Path, wanted: fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(wanted))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Spill files waiting in `dir`, oldest first.
pub fn spill_files(dir: &Path) -> Vec<PathBuf> {
    files_matching(dir, is_spill_file)
}

/// Journal segments in `dir` (left by earlier runs when listed before the journal starts).
pub fn journal_files(dir: &Path) -> Vec<PathBuf> {
    files_matching(dir, journal::is_journal_file)
}

/// Stores the votes of each file, retrying with backoff until each is stored, then removes the
/// file. Idempotent: a file replayed twice counts once. Runs in the background at start; a file
/// not finished before the next shutdown is simply replayed again.
pub async fn replay_files(files: Vec<PathBuf>, store: Arc<dyn Store>, max_batch: usize) {
    for path in files {
        let votes = match read_votes(&path) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "unreadable vote file left in place");
                continue;
            }
        };
        let mut stored = 0u64;
        for chunk in votes.chunks(max_batch.max(1)) {
            let mut backoff = MIN_BACKOFF;
            loop {
                match store.store_batch(chunk).await {
                    Ok(n) => {
                        stored += n;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "replay failed, retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(path = %path.display(), votes = votes.len(), new = stored, "replayed"),
            Err(e) => tracing::error!(path = %path.display(), error = %e, "replayed but not removed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vote::{Answers, Level, Source};

    #[test]
    fn spill_round_trip() {
        let dir = std::env::temp_dir().join(format!("monavis-spill-{}", std::process::id()));
        let a = Answers {
            commentaire: Some("Très « bien »\nmerci".into()),
            aide: 0b101,
            clarte: Some(Level::Bad),
            ..Default::default()
        };
        let votes = vec![
            Vote::accept(1, Source::new("guichet").unwrap(), Level::Medium, a),
            Vote::accept(2, Source::default(), Level::Good, Answers::default()),
        ];
        let path = write_spill(&dir, &votes).unwrap();
        assert_eq!(spill_files(&dir), vec![path.clone()]);
        assert_eq!(read_votes(&path).unwrap(), votes);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_last_line_is_skipped_but_not_a_bad_middle_line() {
        let dir = std::env::temp_dir().join(format!("monavis-torn-{}", std::process::id()));
        let votes = vec![Vote::accept(1, Source::default(), Level::Good, Answers::default())];
        let path = write_spill(&dir, &votes).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"id\":\"01");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_votes(&path).unwrap(), votes);
        std::fs::write(&path, format!("{{oops\n{text}\n")).unwrap();
        assert!(read_votes(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
