//! The optional write-ahead journal (`--journal DIR`): every accepted vote is appended and
//! fsynced before its 303, so even a SIGKILL or a power cut loses nothing acknowledged.
//!
//! One writer thread does group commit: it takes every vote waiting, writes them as JSON lines
//! in one `write`, calls `fdatasync` once, then acknowledges them all. Votes go into numbered
//! segment files (`journal-{start}-{n}.jsonl`); a segment is closed when it grows past
//! [`SEGMENT_BYTES`], and deleted once it is closed and every vote in it has been stored (the
//! flushers report commits). Segments left by a previous run are replayed at start, like spill
//! files, idempotently.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::vote::Vote;

/// A segment is closed past this size.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Most votes written by one group commit.
const MAX_GROUP: usize = 4096;
/// Votes waiting for the writer before appends wait too (backpressure on the hot path).
const QUEUE: usize = 65_536;

struct Append {
    line: Vec<u8>,
    done: oneshot::Sender<Result<u32, String>>,
}

#[derive(Default)]
struct SegmentState {
    path: PathBuf,
    /// Votes written and not yet reported stored.
    pending: usize,
    closed: bool,
}

/// Live segments, shared by the writer (adds, closes) and the flushers (commits).
#[derive(Default)]
struct Segments(Mutex<HashMap<u32, SegmentState>>);

impl Segments {
    fn update(&self, id: u32, f: impl FnOnce(&mut SegmentState)) {
        let Ok(mut map) = self.0.lock() else { return };
        let Some(state) = map.get_mut(&id) else { return };
        f(state);
        if state.closed && state.pending == 0 {
            let path = std::mem::take(&mut state.path);
            map.remove(&id);
            drop(map);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "stored journal segment not removed");
            }
        }
    }
}

/// The journal's handle: cheap to clone, shared by intake and flushers.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Append>,
    segments: Arc<Segments>,
}

/// Journal files of any run in `dir`.
pub fn is_journal_file(name: &str) -> bool {
    name.starts_with("journal-") && name.ends_with(".jsonl")
}

impl Journal {
    /// Starts the writer thread on `dir` (created if needed). Segments already there are left
    /// for [`crate::flush::replay_files`]: list them before calling this.
    pub fn start(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let segments = Arc::new(Segments::default());
        let writer = Writer { dir: dir.to_path_buf(), run: uuid::Uuid::now_v7(), next: 1, segments: segments.clone() };
        std::thread::Builder::new().name("journal".into()).spawn(move || writer.run(rx))?;
        Ok(Journal { tx, segments })
    }

    /// Appends `vote` and waits until it is on disk; returns its segment.
    pub async fn append(&self, vote: &Vote) -> Result<u32, String> {
        let mut line = serde_json::to_vec(vote).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let (done, wait) = oneshot::channel();
        self.tx.send(Append { line, done }).await.map_err(|_| "journal writer stopped".to_string())?;
        wait.await.map_err(|_| "journal writer stopped".to_string())?
    }

    /// The store committed these votes: their segments may be deleted.
    pub fn committed(&self, votes: &[Vote]) {
        let mut per_segment: HashMap<u32, usize> = HashMap::new();
        for v in votes.iter().filter(|v| v.journal_segment != 0) {
            *per_segment.entry(v.journal_segment).or_default() += 1;
        }
        for (id, n) in per_segment {
            self.segments.update(id, |s| s.pending = s.pending.saturating_sub(n));
        }
    }

    /// Closes every segment (at shutdown, once everything is stored they are deleted; what is
    /// not stored stays for the next start).
    pub fn close(&self) {
        let ids: Vec<u32> = self.segments.0.lock().map(|m| m.keys().copied().collect()).unwrap_or_default();
        for id in ids {
            self.segments.update(id, |s| s.closed = true);
        }
    }
}

struct Writer {
    dir: PathBuf,
    /// Names this run's segments apart from any other run's.
    run: uuid::Uuid,
    next: u32,
    segments: Arc<Segments>,
}

impl Writer {
    fn open_segment(&mut self) -> std::io::Result<(u32, std::fs::File)> {
        let id = self.next;
        self.next += 1;
        let path = self.dir.join(format!("journal-{}-{id:06}.jsonl", self.run));
        let file = std::fs::OpenOptions::new().create_new(true).append(true).open(&path)?;
        // The new name must survive a crash too.
        std::fs::File::open(&self.dir)?.sync_all()?;
        if let Ok(mut map) = self.segments.0.lock() {
            map.insert(id, SegmentState { path, pending: 0, closed: false });
        }
        Ok((id, file))
    }

    fn run(mut self, mut rx: mpsc::Receiver<Append>) {
        let mut current: Option<(u32, std::fs::File, u64)> = None;
        let mut buf = Vec::with_capacity(1 << 20);
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(a) => group.push(a),
                    Err(_) => break,
                }
            }
            buf.clear();
            for a in &group {
                buf.extend_from_slice(&a.line);
            }
            let result = (|| -> std::io::Result<u32> {
                if current.is_none() {
                    let (id, file) = self.open_segment()?;
                    current = Some((id, file, 0));
                }
                let Some((id, file, size)) = current.as_mut() else {
                    return Err(std::io::Error::other("no journal segment"));
                };
                let written = file.write_all(&buf).and_then(|_| file.sync_data());
                if let Err(e) = written {
                    // Nothing of a refused group may stay on disk to be replayed later: the
                    // citizen was answered 503 and will vote again.
                    let _ = file.set_len(*size).and_then(|_| file.sync_data());
                    return Err(e);
                }
                *size += buf.len() as u64;
                Ok(*id)
            })();
            match result {
                Ok(id) => {
                    self.segments.update(id, |s| s.pending += group.len());
                    for a in group {
                        let _ = a.done.send(Ok(id));
                    }
                    if current.as_ref().is_some_and(|(_, _, size)| *size >= SEGMENT_BYTES) {
                        if let Some((id, _, _)) = current.take() {
                            self.segments.update(id, |s| s.closed = true);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, votes = group.len(), "journal write failed; votes refused with 503");
                    // Start a fresh segment next time: the failed one may hold a torn line.
                    if let Some((id, _, _)) = current.take() {
                        self.segments.update(id, |s| s.closed = true);
                    }
                    for a in group {
                        let _ = a.done.send(Err(e.to_string()));
                    }
                }
            }
        }
    }
}
