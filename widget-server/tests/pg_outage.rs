//! The store goes away: votes keep being accepted (up to the buffer bound), nothing accepted is
//! lost, and what cannot be stored by the shutdown deadline is spilled to disk and replayed at
//! the next start. Each test runs its own PostgreSQL cluster, since it stops it.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const OPEN_LIMITS: [&str; 4] = ["--rate-per-minute", "1000000000", "--rate-per-minute-demarche", "1000000000"];

fn spill_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("data"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("spill-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_outage_mid_run_loses_nothing() {
    let cluster = Arc::new(tokio::task::spawn_blocking(OwnCluster::start).await.unwrap());
    let tmp = tempfile::tempdir().unwrap();
    cli(tmp.path(), &cluster.url, &["demarche", "add", "--id", "1", "--name", "Carte grise"]);
    let mut extra = OPEN_LIMITS.to_vec();
    extra.extend(["--flush-interval-ms", "100"]);
    let mut server = Server::start_in(tmp.path(), &cluster.url, &extra);
    let key = server.signer().sign(1);
    let url = server.url("/Demarches/1/avis");
    let (answered, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let senders: Vec<_> = (0..6)
        .map(|t| {
            let (answered, stop, key, url) = (answered.clone(), stop.clone(), key.clone(), url.clone());
            tokio::spawn(async move {
                let client = client();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _, _) =
                        try_post_form(&client, &url, varied_vote(&key, t * 1_000_000 + i)).await.unwrap();
                    assert_eq!(status, 303, "the hot path does not need the store");
                    answered.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.pause()).await.unwrap();
    let paused_at = answered.load(Ordering::Relaxed);

    // While the store is down: still accepting, flushes failing, not ready.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = get(&server.url("/readyz"), &[]).await;
        if status == 503 {
            assert!(text(&body).contains("store unreachable"));
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never noticed the store was down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A flush attempt against a stopped server fails once its connection attempt times out.
    while server.metric("monavis_flush_errors_total").await < 1.0 {
        assert!(Instant::now() < deadline, "no flush error counted while the store was down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while answered.load(Ordering::Relaxed) < paused_at + 50 {
        assert!(Instant::now() < deadline, "votes must keep being accepted while the store is down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.resume()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    // Every 303 is stored, once.
    stop_and_check_stored(&mut server, &[1], answered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_down_at_shutdown_spills_and_replays_at_next_start() {
    let cluster = Arc::new(tokio::task::spawn_blocking(OwnCluster::start).await.unwrap());
    let tmp = tempfile::tempdir().unwrap();
    cli(tmp.path(), &cluster.url, &["demarche", "add", "--id", "3", "--name", "Passeport"]);
    let mut extra = OPEN_LIMITS.to_vec();
    extra.extend(["--flush-interval-ms", "100", "--shutdown-timeout", "2s"]);
    let mut server = Server::start_in(tmp.path(), &cluster.url, &extra);
    let key = server.signer().sign(3);
    // A few stored before the outage, the rest only in memory when we stop.
    for i in 0..20 {
        assert_eq!(post_vote(&server, 3, &varied_vote(&key, i)).await.0, 303);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.pause()).await.unwrap();
    for i in 20..70 {
        assert_eq!(post_vote(&server, 3, &varied_vote(&key, i)).await.0, 303);
    }
    let started = Instant::now();
    let status = server.terminate();
    assert_eq!(status.code(), Some(3), "exit status 3 says votes were spilled");
    assert!(started.elapsed() < Duration::from_secs(15), "shutdown honours --shutdown-timeout");
    // One spill file per flusher that held votes.
    let spills = spill_files(tmp.path());
    assert!(!spills.is_empty());
    let lines: usize = spills.iter().map(|f| std::fs::read_to_string(f).unwrap().lines().count()).sum();
    assert_eq!(lines, 50, "the 50 votes taken during the outage are in the spill files");

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.resume()).await.unwrap();
    let mut server = Server::start_in(tmp.path(), &cluster.url, &extra);
    let store = open_store(&cluster.url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.count_avis().await.unwrap() < 70 || !spill_files(tmp.path()).is_empty() {
        assert!(Instant::now() < deadline, "spill file not replayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_and_check_stored(&mut server, &[3], 70).await;
}
