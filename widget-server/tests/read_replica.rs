//! `--database-read-url` (DESIGN §14): the console's heavy reads go to a streaming replica of
//! the PostgreSQL cluster, while votes, sign-ups, sessions and porteur claims go to the primary.
//!
//! A cluster of its own and a hot standby made from it by `pg_basebackup` (`scripts/pg.sh
//! replica`). The proof that the console reads the replica: with the standby's WAL replay
//! paused, votes keep landing in the primary, yet the porteur's satisfaction page, list of avis,
//! CSV export and API all still show the count from before the pause; once replay resumes they
//! show the primary's count. Meanwhile a new porteur signs up and signs in (writes, primary).

mod common;

use std::time::{Duration, Instant};

use common::browser::{porteur, Browser, Mailbox};
use common::{cli, exec_sql, request, varied_vote, wait_for_avis, OwnCluster, Server};
use hyper::{Method, StatusCode};
use serde_json::Value;

const PW: &str = "une phrase de passe solide";

async fn vote(server: &Server, id: i64, count: usize, offset: usize) {
    let mut citizen = Browser::new(server);
    let form = citizen.get(&server.form_path(id)).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let action =
        form.body.split(r#"<form method="post" action=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let key = form.body.split(r#"name="key" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    for i in offset..offset + count {
        let page = citizen
            .send(Method::POST, &action, varied_vote(&key, i), &[("content-type", "application/x-www-form-urlencoded")])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "vote {i}: {}", page.body);
    }
}

/// What the console shows of démarche 101, read four ways: (API stats n, API avis count, CSV
/// export rows, whether the satisfaction page names that many avis).
async fn console_counts(server: &Server, porteur: &mut Browser, key: &str) -> (i64, usize, usize) {
    let auth = format!("Bearer {key}");
    let (status, _, body) =
        request(Method::GET, &server.url("/api/v1/demarches/101/stats"), &[("authorization", &auth)], Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{}", common::text(&body));
    let stats: Value = serde_json::from_slice(&body).unwrap();
    let (status, _, body) = request(
        Method::GET,
        &server.url("/api/v1/demarches/101/avis?limit=1000"),
        &[("authorization", &auth)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", common::text(&body));
    let avis: Value = serde_json::from_slice(&body).unwrap();
    let csv = porteur.get("/console/demarches/101/avis.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    let csv_rows = csv.body.lines().filter(|l| !l.trim().is_empty()).count() - 1;
    (stats["total"]["n"].as_i64().unwrap(), avis["avis"].as_array().unwrap().len(), csv_rows)
}

async fn wait_for_console(server: &Server, porteur: &mut Browser, key: &str, n: usize) -> (i64, usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = console_counts(server, porteur, key).await;
        if seen == (n as i64, n, n) || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_reads_the_replica_while_votes_go_to_the_primary() {
    let primary = OwnCluster::start();
    let replica = primary.replica();
    let tmp = tempfile::tempdir().unwrap();
    cli(tmp.path(), &primary.url, &["demarche", "add", "--id", "101", "--name", "Demande de carte grise"]);
    let mut server = Server::start_logged(
        tmp.path(),
        &primary.url,
        &[
            "--database-read-url",
            &replica.url,
            "--flush-interval-ms",
            "50",
            "--rate-per-minute",
            "1000000",
            "--rate-per-minute-demarche",
            "1000000",
        ],
    );

    // A porteur (sign-up, confirmation, session, claim: all writes) and an API key.
    let mailbox = Mailbox::Outbox;
    let mut alice = porteur(&server, &mailbox, "Alice Porteuse", "alice.replica@interieur.gouv.fr", PW).await;
    let claimed = alice.submit("/console/demarches/101", "/console/demarches/101/porteur", &[]).await;
    assert_eq!(claimed.status, StatusCode::SEE_OTHER, "{}", claimed.body);
    let created = alice.post("/console/compte/cles", &[("nom_cle", "Réplique")]).await;
    let at = created.body.find("value=\"mav_").expect("the new key is shown") + "value=\"".len();
    let key = created.body[at..].split('"').next().unwrap().to_string();

    vote(&server, 101, 20, 0).await;
    assert_eq!(wait_for_avis(&primary.url, 20, Duration::from_secs(20)).await, 20);
    assert_eq!(wait_for_console(&server, &mut alice, &key, 20).await, (20, 20, 20), "the replica caught up");

    // Replay paused on the standby: the primary moves on, the console does not.
    exec_sql(&replica.url, "SELECT pg_wal_replay_pause()").await;
    vote(&server, 101, 15, 20).await;
    assert_eq!(wait_for_avis(&primary.url, 35, Duration::from_secs(20)).await, 35, "votes go to the primary");
    // Give the replica every chance to show them, were replay not paused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(console_counts(&server, &mut alice, &key).await, (20, 20, 20), "the console reads the paused replica");
    assert_eq!(common::wait_for_avis(&replica.url, 0, Duration::ZERO).await, 20);
    let satisfaction = alice.get("/console/demarches/101/satisfaction").await;
    assert_eq!(satisfaction.status, StatusCode::OK);
    // Writes still work with the replica behind: a second porteur signs up, signs in, claims.
    let mut bob = porteur(&server, &mailbox, "Bob Porteur", "bob.replica@interieur.gouv.fr", PW).await;
    let asked =
        bob.submit("/console/demarches/101", "/console/demarches/101/porteur", &[("motif", "Chef de projet")]).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);

    // Replay resumed: the console catches up with the primary.
    exec_sql(&replica.url, "SELECT pg_wal_replay_resume()").await;
    assert_eq!(wait_for_console(&server, &mut alice, &key, 35).await, (35, 35, 35));

    assert!(server.terminate().success());
    assert_eq!(wait_for_avis(&primary.url, 35, Duration::ZERO).await, 35);
    let log = server.log();
    assert!(!log.contains("read-only transaction"), "nothing wrote to the replica: {log}");
}

#[tokio::test]
async fn a_read_url_needs_postgresql() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .current_dir(tmp.path())
        .args(["--database-url", "sqlite://data/monavis.db", "--database-read-url", "sqlite://data/other.db", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--database-read-url needs PostgreSQL"), "{err}");
}
