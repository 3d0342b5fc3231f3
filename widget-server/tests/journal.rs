//! `--journal`: a vote answered 303 survives SIGKILL. The journal is replayed at the next start,
//! idempotently, and its segments are deleted once everything in them is stored.

mod common;

use std::time::{Duration, Instant};

use common::*;

const EXTRA: [&str; 4] = ["--rate-per-minute", "1000000000", "--rate-per-minute-demarche", "1000000000"];

fn journal_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_loses_nothing_acknowledged() {
    let url = fresh_pg_database("journal_sigkill").await;
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let journal_arg = journal.to_str().unwrap().to_string();
    cli(tmp.path(), &url, &["demarche", "add", "--id", "9", "--name", "Journal"]);

    // Votes stay in memory (no flush for an hour): only the journal has them.
    let mut args = EXTRA.to_vec();
    args.extend(["--journal", &journal_arg, "--flush-interval-ms", "3600000", "--flush-max-votes", "1000000"]);
    let mut server = Server::start_in(tmp.path(), &url, &args);
    let key = server.signer().sign(9);
    let vote_url = server.url("/Demarches/9/avis");
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (key, vote_url) = (key.clone(), vote_url.clone());
            tokio::spawn(async move {
                let client = client();
                for i in 0..30 {
                    let (status, _, _) =
                        try_post_form(&client, &vote_url, varied_vote(&key, t * 100 + i)).await.unwrap();
                    assert_eq!(status, 303);
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    server.kill_hard();
    let store = open_store(&url).await;
    assert_eq!(store.count_avis().await.unwrap(), 0, "nothing was flushed before the kill");
    assert!(!journal_files(&journal).is_empty(), "the journal holds the votes");

    // Next start: the journal is replayed; new votes are journaled and flushed as usual.
    let mut args = EXTRA.to_vec();
    args.extend(["--journal", &journal_arg, "--flush-interval-ms", "100"]);
    let mut server = Server::start_in(tmp.path(), &url, &args);
    for i in 0..30 {
        assert_eq!(post_vote(&server, 9, &varied_vote(&key, 1000 + i)).await.0, 303);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.count_avis().await.unwrap() < 150 {
        assert!(Instant::now() < deadline, "journal not replayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_and_check_stored(&mut server, &[9], 150).await;
    assert_eq!(journal_files(&journal), Vec::<std::path::PathBuf>::new(), "stored segments are deleted");
}
