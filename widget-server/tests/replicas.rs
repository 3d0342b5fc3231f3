//! Several replicas on one PostgreSQL (DESIGN §14): three `widget-server` processes, one
//! database, one secret file copied to each. Votes go through every replica at once, links
//! signed with the shared secret are accepted by all; one replica gets SIGTERM mid-run and
//! stores what it accepted before exiting; a démarche a porteur adds through one replica's
//! console reaches the others' catalogues within `--catalogue-refresh`. At the end the rows in
//! `avis` are exactly the votes answered 303, across all replicas, and `avis_daily` agrees.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::browser::{porteur, Mailbox};
use common::{cli, client, try_post_form, varied_vote, Server};
use hyper::StatusCode;

const REFRESH: Duration = Duration::from_secs(1);
const VOTES_PER_REPLICA: usize = 400;

fn start(dir: &std::path::Path, url: &str) -> Server {
    Server::start_logged(
        dir,
        url,
        &[
            "--catalogue-refresh",
            "1s",
            "--flush-interval-ms",
            "50",
            "--rate-per-minute",
            "1000000",
            "--rate-per-minute-demarche",
            "1000000",
        ],
    )
}

/// Posts `VOTES_PER_REPLICA` votes to `server_url` for démarches 101–103 (links signed by
/// `signer`, the shared secret), counting 303s in `accepted`, until done or the replica is gone.
async fn post_votes(server_url: String, keys: Vec<(i64, String)>, offset: usize, accepted: Arc<AtomicUsize>) -> usize {
    let http = client();
    let mut mine = 0;
    for i in 0..VOTES_PER_REPLICA {
        let (id, key) = &keys[i % keys.len()];
        let url = format!("{server_url}/Demarches/{id}/avis");
        match try_post_form(&http, &url, varied_vote(key, offset + i)).await {
            Ok((StatusCode::SEE_OTHER, _, _)) => {
                mine += 1;
                accepted.fetch_add(1, Ordering::SeqCst);
            }
            Ok((status, _, body)) => {
                // A replica shutting down answers 503 with Retry-After: not accepted, not stored.
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", common::text(&body));
            }
            Err(_) => break, // the replica has exited: connection refused
        }
    }
    mine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_one_database() {
    let url = common::fresh_pg_database("replicas").await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for (id, name) in [(101, "Demande de carte grise"), (102, "Aide à l'électricité"), (103, "Permis de conduire")] {
        cli(dirs[0].path(), &url, &["demarche", "add", "--id", &id.to_string(), "--name", name]);
    }
    let a = start(dirs[0].path(), &url);
    // One secret for all: the file A created, copied before B and C start.
    let secret = std::fs::read(dirs[0].path().join("data/secret")).unwrap();
    for d in &dirs[1..] {
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(d.path().join("data/secret"), &secret).unwrap();
    }
    let b = start(dirs[1].path(), &url);
    let mut c = start(dirs[2].path(), &url);
    let signer = a.signer();
    let keys: Vec<(i64, String)> = [101, 102, 103].iter().map(|&id| (id, signer.sign(id as u64))).collect();

    // Votes through every replica at once; C gets SIGTERM once it has accepted 100.
    let accepted = Arc::new(AtomicUsize::new(0));
    let on_c = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (k, server) in [&a, &b].into_iter().enumerate() {
        tasks.push(tokio::spawn(post_votes(server.url(""), keys.clone(), k * 10_000, accepted.clone())));
    }
    let c_task = tokio::spawn(post_votes(c.url(""), keys.clone(), 20_000, on_c.clone()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while on_c.load(Ordering::SeqCst) < 100 {
        assert!(Instant::now() < deadline, "replica C accepted too few votes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = c.terminate();
    assert!(status.success(), "C stopped cleanly, everything it accepted stored: {status:?}");
    let c_accepted = c_task.await.unwrap();
    assert!((100..VOTES_PER_REPLICA).contains(&c_accepted), "C was stopped mid-run ({c_accepted})");
    let mut ab_accepted = 0;
    for t in tasks {
        ab_accepted += t.await.unwrap();
    }
    assert_eq!(ab_accepted, 2 * VOTES_PER_REPLICA, "A and B accepted every vote");
    assert_eq!(accepted.load(Ordering::SeqCst) + on_c.load(Ordering::SeqCst), ab_accepted + c_accepted);

    // A démarche added through A's console reaches B's catalogue within the refresh interval.
    let mut alice = porteur(
        &a,
        &Mailbox::Outbox,
        "Alice Porteuse",
        "alice.replicas@interieur.gouv.fr",
        "une phrase de passe solide",
    )
    .await;
    let fields = [
        ("nom", "Permis de construire"),
        ("administration", "Ministère de la Transition écologique"),
        ("url", "https://www.demarches-simplifiees.fr/commencer/permis"),
        ("volume", "120 000"),
    ];
    let added = alice.submit("/console/demarches/nouvelle", "/console/demarches/nouvelle", &fields).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let created_at = Instant::now();
    let id: i64 =
        added.location().trim_start_matches("/console/demarches/").split(['/', '?']).next().unwrap().parse().unwrap();
    let form = |s: &Server| s.url(&s.form_path(id));
    assert_eq!(common::get(&form(&a), &[]).await.0, StatusCode::OK, "A knows it at once");
    loop {
        let (status, _, _) = common::get(&form(&b), &[]).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(created_at.elapsed() < REFRESH * 3, "B did not pick the new démarche up within its refresh interval");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And B takes votes for it.
    let key = signer.sign(id as u64);
    let (status, _, _) =
        try_post_form(&client(), &b.url(&format!("/Demarches/{id}/avis")), varied_vote(&key, 0)).await.unwrap();
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Every vote answered 303, by any replica, is a row; none more.
    let (mut a, mut b) = (a, b);
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    let expected = ab_accepted + c_accepted + 1;
    let store = common::open_store(&url).await;
    assert_eq!(common::assert_aggregates(&store, &[101, 102, 103, id]).await, expected as i64);
    assert_eq!(store.count_avis().await.unwrap(), expected as i64);
}
