//! Faults (issue 12), against the real binary and a PostgreSQL cluster of the test's own:
//! - PostgreSQL stopped for 30 s under steady load, the buffer filling: votes accepted up to the
//!   bound, then 503 with Retry-After (never a silent loss); the console and the observatory
//!   answer a French 503 while the vote path keeps going; PostgreSQL back → both recover with no
//!   restart, and rows = votes answered 303.
//! - The flusher's connections killed while their COPY runs (`pg_terminate_backend`): no loss,
//!   no double count.
//! - A data directory that cannot be created: a clear error and a non-zero exit.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const OPEN_LIMITS: [&str; 4] = ["--rate-per-minute", "1000000000", "--rate-per-minute-demarche", "1000000000"];

/// `n` senders posting votes to démarche 1 until `stop`; counts the 303s, and the 503s (each
/// with its Retry-After).
fn load(
    server: &Server,
    n: usize,
    stop: &Arc<AtomicBool>,
) -> (Arc<AtomicUsize>, Arc<AtomicUsize>, Vec<tokio::task::JoinHandle<()>>) {
    let (accepted, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let key = server.signer().sign(1);
    let url = server.url("/Demarches/1/avis");
    let senders = (0..n)
        .map(|t| {
            let (accepted, refused, stop, key, url) =
                (accepted.clone(), refused.clone(), stop.clone(), key.clone(), url.clone());
            tokio::spawn(async move {
                let client = client();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (status, headers, body) =
                        try_post_form(&client, &url, varied_vote(&key, t * 10_000_000 + i)).await.unwrap();
                    match status.as_u16() {
                        303 => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        503 => {
                            assert!(headers.contains_key("retry-after"), "503 without Retry-After");
                            assert!(text(&body).contains("momentanément"), "a French page: {}", text(&body));
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("vote answered {other}: {}", text(&body)),
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    (accepted, refused, senders)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_down_until_the_buffer_is_full_then_back() {
    let cluster = Arc::new(tokio::task::spawn_blocking(OwnCluster::start).await.unwrap());
    let tmp = tempfile::tempdir().unwrap();
    cli(tmp.path(), &cluster.url, &["demarche", "add", "--id", "1", "--name", "Carte grise"]);
    let mut extra = OPEN_LIMITS.to_vec();
    extra.extend(["--flush-interval-ms", "100", "--buffer-max-votes", "300"]);
    let mut server = Server::start_in(tmp.path(), &cluster.url, &extra);
    let mut porteur = common::browser::porteur(
        &server,
        &common::browser::Mailbox::Outbox,
        "Porteuse",
        "p@interieur.gouv.fr",
        "une phrase de passe solide",
    )
    .await;
    assert_eq!(porteur.get("/console").await.status, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let (accepted, refused, senders) = load(&server, 4, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The observatory read the store once: what it shows while the store is down is not cached.
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.pause()).await.unwrap();
    let paused = Instant::now();

    // The buffer fills: 503 + Retry-After beyond it.
    let deadline = Instant::now() + Duration::from_secs(40);
    while refused.load(Ordering::Relaxed) < 20 {
        assert!(Instant::now() < deadline, "no 503 while the store was down and the buffer full");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The console and the observatory: a French 503, not an error page of the framework.
    for path in ["/observatoire", "/Demarches/1", "/console/demarches?q=carte"] {
        let (status, headers, body) = get(&server.url(path), &[]).await;
        if path.starts_with("/console") {
            // Not signed in: the log-in page, which needs no store.
            assert!(status == 303 || status == 200, "{path}: {status}");
            continue;
        }
        assert_eq!(status, 503, "{path}: {}", text(&body));
        assert!(headers.contains_key("retry-after"), "{path}");
        assert!(text(&body).contains("momentanément indisponible"), "{path}: {}", text(&body));
    }

    // A signed-in porteur: the same French 503 (the session cannot be read).
    let page = porteur.get("/console").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("Les avis des usagers continuent d'être recueillis"), "{}", page.body);

    // Down for 30 s under steady load, as the issue asks.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(paused.elapsed())).await;

    // Back: votes accepted again, the observatory and the console answer, no restart.
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.resume()).await.unwrap();
    let accepted_at_resume = accepted.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.load(Ordering::Relaxed) < accepted_at_resume + 200 {
        assert!(Instant::now() < deadline, "votes not accepted again after the store came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let (status, _, _) = get(&server.url("/observatoire"), &[]).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the observatory did not recover: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(porteur.get("/console").await.status, 200, "the porteur's session survived the outage");
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.load(Ordering::Relaxed);
    eprintln!("accepted {accepted}, refused {} (503)", refused.load(Ordering::Relaxed));
    stop_and_check_stored(&mut server, &[1], accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flusher_connections_killed_mid_copy_lose_nothing() {
    let cluster = Arc::new(tokio::task::spawn_blocking(OwnCluster::start).await.unwrap());
    let tmp = tempfile::tempdir().unwrap();
    cli(tmp.path(), &cluster.url, &["demarche", "add", "--id", "1", "--name", "Carte grise"]);
    let mut extra = OPEN_LIMITS.to_vec();
    extra.extend(["--flush-interval-ms", "20"]);
    let mut server = Server::start_in(tmp.path(), &cluster.url, &extra);
    let stop = Arc::new(AtomicBool::new(false));
    let (accepted, _, senders) = load(&server, 6, &stop);

    // Kill every backend caught running a COPY, for a few seconds.
    let (killer, conn) = tokio_postgres::connect(&cluster.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let mut killed = 0;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until || killed < 3 {
        let rows = killer
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND state = 'active' AND query ILIKE 'COPY%'",
                &[],
            )
            .await
            .unwrap();
        killed += rows.iter().filter(|r| r.get::<_, bool>(0)).count();
        assert!(Instant::now() < until + Duration::from_secs(30), "no COPY caught running ({killed} killed)");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("{killed} backends killed mid-COPY");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.load(Ordering::Relaxed);
    assert!(server.metric("monavis_flush_errors_total").await >= 1.0, "the kills made flushes fail");
    // Every 303 stored exactly once, and counted once in avis_daily.
    stop_and_check_stored(&mut server, &[1], accepted).await;
}

#[test]
fn a_data_directory_that_cannot_be_made_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a-file"), b"").unwrap();
    let data = tmp.path().join("a-file/data");
    let out = std::process::Command::new(BIN)
        .current_dir(tmp.path())
        .env_remove("DATABASE_URL")
        .args(["--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("sqlite://{}/monavis.db", tmp.path().display()))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success(), "it must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a-file/data"), "the error names the directory: {stderr}");
    assert!(stderr.contains("data directory"), "and says what it is: {stderr}");
}
