//! Votes end to end over real sockets, the real binary and a real PostgreSQL: every vote
//! answered 303 is stored exactly once; every refusal has its status, its page and its metric,
//! and stores nothing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hyper::Method;

const OPEN_LIMITS: [&str; 4] = ["--rate-per-minute", "1000000000", "--rate-per-minute-demarche", "1000000000"];

async fn pg_server(db: &str, demarches: &[i64], extra: &[&str]) -> (Server, tempfile::TempDir) {
    let url = fresh_pg_database(db).await;
    let tmp = tempfile::tempdir().unwrap();
    for id in demarches {
        cli(tmp.path(), &url, &["demarche", "add", "--id", &id.to_string(), "--name", &format!("Démarche {id}")]);
    }
    (Server::start_in(tmp.path(), &url, extra), tmp)
}

#[tokio::test]
async fn concurrent_votes_are_all_stored_once() {
    let mut extra = OPEN_LIMITS.to_vec();
    extra.extend(["--flush-max-votes", "200", "--flush-interval-ms", "100"]);
    let (mut server, _tmp) = pg_server("e2e_concurrent", &[1, 2], &extra).await;
    let keys = [server.signer().sign(1), server.signer().sign(2)];
    let answered = Arc::new(AtomicUsize::new(0));
    let base = server.url("");
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (answered, keys, base) = (answered.clone(), keys.clone(), base.clone());
            tokio::spawn(async move {
                let client = client();
                for i in 0..150 {
                    let d = (t + i) % 2;
                    let url = format!("{base}/Demarches/{}/avis", d + 1);
                    let (status, h, _) =
                        try_post_form(&client, &url, varied_vote(&keys[d], t * 1000 + i)).await.unwrap();
                    assert_eq!(status, 303);
                    assert_eq!(h["location"], format!("/Demarches/{}/merci", d + 1).as_str());
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    assert_eq!(answered, 16 * 150);
    assert_eq!(server.metric("monavis_votes_accepted_total").await as usize, answered);
    stop_and_check_stored(&mut server, &[1, 2], answered).await;
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_stores_nothing() {
    let (mut server, _tmp) = pg_server("e2e_bad_input", &[1], &OPEN_LIMITS).await;
    let key = server.signer().sign(1);
    let form = "application/x-www-form-urlencoded";
    let post = |path: &str, ct: &str, body: String| {
        let url = server.url(path);
        let ct = ct.to_string();
        async move { request(Method::POST, &url, &[("content-type", &ct)], body).await }
    };
    let long_comment = "a".repeat(2001);
    // (body, expected status, text expected on the page)
    let invalid_cases: Vec<(String, u16, &str)> = vec![
        (format!("key={key}"), 422, "Indiquez comment s'est passée la démarche."),
        (format!("key={key}&satisfaction="), 422, "Indiquez comment s'est passée la démarche."),
        (format!("key={key}&satisfaction=excellent"), 422, "Choisissez une des réponses proposées."),
        (format!("key={key}&satisfaction=bien&satisfaction=moyen"), 422, "Choisissez une seule réponse."),
        (format!("key={key}&satisfaction=bien&facilite=bien"), 422, "Choisissez une des réponses proposées."),
        (format!("key={key}&satisfaction=bien&clarte=clair&clarte=clair"), 422, "Choisissez une seule réponse."),
        (format!("key={key}&satisfaction=bien&aide=voisin"), 422, "Choisissez parmi les réponses proposées."),
        (
            format!("key={key}&satisfaction=bien&commentaire={long_comment}"),
            422,
            "Votre commentaire compte 2001 caractères",
        ),
        (format!("key={key}&satisfaction=bien&commentaire=%FF%FEabc"), 422, "caractères illisibles"),
        (format!("key={key}&satisfaction=bien&commentaire=a&commentaire=b"), 422, "envoyé deux fois"),
        (format!("key=0000{}&satisfaction=bien", &key[4..]), 404, "Ce lien d'avis n'est pas valide"),
        ("satisfaction=bien".to_string(), 404, "Ce lien d'avis n'est pas valide"),
    ];
    for (body, status, message) in &invalid_cases {
        let (got, h, page) = post("/Demarches/1/avis", form, body.clone()).await;
        assert_eq!(got.as_u16(), *status, "{body:.80}");
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["cache-control"], "no-store");
        let page = text(&page);
        assert!(page.contains(message), "{body:.80} → page lacks {message:?}");
    }
    // A re-rendered form keeps what the citizen answered.
    let (status, _, page) = post(
        "/Demarches/1/avis",
        form,
        format!("key={key}&nd_source=email&satisfaction=moyen&clarte=nope&aide=proche&aide=agent&commentaire=Mon+avis+%C3%A0+garder"),
    )
    .await;
    assert_eq!(status, 422);
    let page = text(&page);
    assert!(page.contains("id=\"satisfaction-moyen\" name=\"satisfaction\" value=\"moyen\" checked"));
    assert!(page.contains("value=\"proche\" checked") && page.contains("value=\"agent\" checked"));
    assert!(!page.contains("value=\"aucune\" checked"));
    assert!(page.contains(">Mon avis à garder</textarea>"));
    assert!(page.contains("name=\"nd_source\" value=\"email\""));
    assert!(page.contains("aria-invalid=\"true\""));
    assert!(page.contains("<title>Erreur"));

    // Transport-level refusals.
    let (status, _, page) = post("/Demarches/1/avis", "application/json", format!("{{\"key\":\"{key}\"}}")).await;
    assert_eq!(status, 415);
    assert!(text(&page).contains("Envoi non reconnu"));
    let (status, _, _) = post("/Demarches/1/avis", "text/plain", format!("key={key}&satisfaction=bien")).await;
    assert_eq!(status, 415);
    let (status, _, page) =
        post("/Demarches/1/avis", form, format!("key={key}&satisfaction=bien&commentaire={}", "x".repeat(30_000)))
            .await;
    assert_eq!(status, 413);
    assert!(text(&page).contains("Votre avis est trop long"));
    // A legal comment of 2,000 accented characters is 12,000 bytes encoded: accepted.
    let accented = "%C3%A9".repeat(2000);
    let (status, _, _) =
        post("/Demarches/1/avis", form, format!("key={key}&satisfaction=bien&commentaire={accented}")).await;
    assert_eq!(status, 303, "a legal comment must never be too large");
    // Unknown démarche, garbage id, wrong method.
    let (status, _, _) = post("/Demarches/999/avis", form, format!("key={key}&satisfaction=bien")).await;
    assert_eq!(status, 404);
    let (status, _, _) = post("/Demarches/x1/avis", form, format!("key={key}&satisfaction=bien")).await;
    assert_eq!(status, 404);
    let (status, h, _) = get(&server.url("/Demarches/1/avis"), &[]).await;
    assert_eq!(status, 405);
    assert_eq!(h["allow"], "POST");
    // The honeypot: answered like a success, never stored.
    let (status, h, _) =
        post("/Demarches/1/avis", form, format!("key={key}&satisfaction=bien&site_web=http%3A%2F%2Fspam")).await;
    assert_eq!(status, 303);
    assert_eq!(h["location"], "/Demarches/1/merci");

    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"honeypot\"}").await, 1.0);
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"invalid\"}").await, 11.0);
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"bad_key\"}").await, 2.0);
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"unsupported_media_type\"}").await, 2.0);
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"too_large\"}").await, 1.0);
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"not_found\"}").await, 2.0);
    assert_eq!(server.metric("monavis_votes_accepted_total").await, 1.0);

    // Only the one valid vote (the long accented comment) is stored.
    stop_and_check_stored(&mut server, &[1], 1).await;
}

/// Another site cannot make its visitors vote (issue 19, item 7). A browser says where a post
/// comes from in `Sec-Fetch-Site`, which no page can set: `cross-site` and `same-site` posts get
/// the French 403, count as `cross_site` and are not stored, and are answered without their body
/// being waited for; posts from our form (`same-origin`), typed ones (`none`) and old browsers'
/// (no header) are taken as before. On SQLite: the hot path is the same for both stores.
#[tokio::test]
async fn votes_posted_from_other_sites_are_refused_and_not_stored() {
    let (tmp, url) = Server::sqlite_dir();
    cli(tmp.path(), &url, &["demarche", "add", "--id", "1", "--name", "Démarche visée"]);
    let mut server = Server::start_in(tmp.path(), &url, &OPEN_LIMITS);
    let vote_url = server.url("/Demarches/1/avis");
    let form = ("content-type", "application/x-www-form-urlencoded");
    for (i, site) in ["cross-site", "same-site", "CROSS-SITE"].into_iter().enumerate() {
        let body = vote_body(&server, 1, &format!("satisfaction=bien&commentaire=refus{i}"));
        let (status, h, page) = request(Method::POST, &vote_url, &[form, ("sec-fetch-site", site)], body).await;
        assert_eq!(status, 403, "{site}");
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h.get("location").is_none());
        let page = text(&page);
        assert!(page.contains("lang=\"fr\"") && page.contains("href=\"/static/avis."), "the citizen pages' look");
        assert!(page.contains("Votre avis n'a pas été enregistré"), "{page}");
        assert!(page.contains("depuis le formulaire du service") && page.contains("Je donne mon avis"), "{page}");
        assert!(!page.contains(&server.signer().sign(1)), "no key handed out");
    }
    // Refused on its headers: the answer comes at once although the body never does (a read of
    // it would wait for the 15 s body timeout).
    let addr = server.addr;
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(
            b"POST /Demarches/1/avis HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000\r\nSec-Fetch-Site: cross-site\r\n\r\nkey=",
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "answered before the body came: {answer:?}");

    // Our form's posts, typed ones and old browsers' are taken.
    for (i, site) in [Some("same-origin"), Some("none"), None].into_iter().enumerate() {
        let body = vote_body(&server, 1, &format!("satisfaction=moyen&commentaire=garde{i}"));
        let mut headers = vec![form];
        headers.extend(site.map(|s| ("sec-fetch-site", s)));
        let (status, h, _) = request(Method::POST, &vote_url, &headers, body).await;
        assert_eq!(status, 303, "{site:?}");
        assert_eq!(h["location"], "/Demarches/1/merci");
    }
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"cross_site\"}").await, 4.0);
    assert_eq!(server.metric("monavis_votes_accepted_total").await, 3.0);
    stop_and_check_stored(&mut server, &[1], 3).await;
    let db = rusqlite::Connection::open(tmp.path().join("monavis.db")).unwrap();
    let comments: Vec<String> = db
        .prepare("SELECT commentaire FROM avis ORDER BY commentaire")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(comments.len(), 3, "{comments:?}");
    assert!(comments.iter().all(|c| c.starts_with("garde")), "only the accepted votes: {comments:?}");
}

#[tokio::test]
async fn rate_limits_answer_429_and_count() {
    let extra = ["--rate-per-minute", "4", "--rate-per-minute-demarche", "2", "--trusted-proxies", "127.0.0.0/8"];
    let (mut server, _tmp) = pg_server("e2e_rate", &[1, 2], &extra).await;
    let key1 = server.signer().sign(1);
    let key2 = server.signer().sign(2);
    let send = |d: i64, key: &str, xff: Option<&str>| {
        let url = server.url(&format!("/Demarches/{d}/avis"));
        let body = format!("key={key}&satisfaction=bien");
        let xff = xff.map(str::to_string);
        async move {
            let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
            if let Some(x) = &xff {
                headers.push(("x-forwarded-for", x.as_str()));
            }
            request(Method::POST, &url, &headers, body).await
        }
    };
    let citizen = Some("203.0.113.9");
    assert_eq!(send(1, &key1, citizen).await.0, 303);
    assert_eq!(send(1, &key1, citizen).await.0, 303);
    let (status, h, page) = send(1, &key1, citizen).await;
    assert_eq!(status, 429, "third vote on one démarche within a minute");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(text(&page).contains("Trop d'avis envoyés"));
    assert_eq!(send(2, &key2, citizen).await.0, 303, "another démarche has its own allowance");
    assert_eq!(send(2, &key2, citizen).await.0, 303);
    assert_eq!(send(2, &key2, Some("198.51.100.1, 203.0.113.9")).await.0, 429, "per-IP limit, rightmost untrusted hop");
    assert_eq!(send(1, &key1, Some("198.51.100.77")).await.0, 303, "another citizen is not affected");
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"rate_limited\"}").await, 2.0);
    stop_and_check_stored(&mut server, &[1, 2], 5).await;
}

#[tokio::test]
async fn full_buffer_answers_503_and_keeps_what_it_accepted() {
    let extra = [
        &OPEN_LIMITS[..],
        &["--buffer-max-votes", "10", "--flush-interval-ms", "3600000", "--flush-max-votes", "1000000"],
    ]
    .concat();
    let (mut server, _tmp) = pg_server("e2e_backpressure", &[1], &extra).await;
    let key = server.signer().sign(1);
    for i in 0..10 {
        assert_eq!(post_vote(&server, 1, &varied_vote(&key, i)).await.0, 303, "vote {i}");
    }
    let (status, h, page) = post_vote(&server, 1, &varied_vote(&key, 10)).await;
    assert_eq!(status, 503);
    assert_eq!(h["retry-after"], "5");
    assert!(text(&page).contains("Service momentanément surchargé"));
    assert_eq!(post_vote(&server, 1, &varied_vote(&key, 11)).await.0, 503);
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"backpressure\"}").await, 2.0);
    assert_eq!(server.metric("monavis_votes_buffered").await, 10.0);
    let (status, _, body) = get(&server.url("/readyz"), &[]).await;
    assert_eq!(status, 503, "a full buffer is not ready: {}", text(&body));
    assert!(text(&body).contains("buffer at 10 of 10"));
    // The 10 accepted votes are flushed at shutdown.
    stop_and_check_stored(&mut server, &[1], 10).await;
}

#[tokio::test]
async fn sigterm_mid_run_loses_nothing() {
    let mut extra = OPEN_LIMITS.to_vec();
    extra.extend(["--flush-interval-ms", "50"]);
    let (mut server, _tmp) = pg_server("e2e_sigterm", &[1], &extra).await;
    let key = server.signer().sign(1);
    let url = server.url("/Demarches/1/avis");
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (answered, key, url) = (answered.clone(), key.clone(), url.clone());
            tokio::spawn(async move {
                let client = client();
                for i in 0.. {
                    match try_post_form(&client, &url, varied_vote(&key, t * 100_000 + i)).await {
                        Ok((status, _, _)) if status == 303 => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((status, _, _)) => panic!("unexpected {status}"),
                        // The server stopped accepting: this client is done.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = answered.load(Ordering::Relaxed);
    assert!(before > 100, "votes were flowing: {before}");
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server)
    })
    .await
    .unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let (status, server) = status;
    assert!(status.success(), "{status}");
    let answered = answered.load(Ordering::Relaxed);
    let store = open_store(&server.db_url).await;
    assert_eq!(store.count_avis().await.unwrap() as usize, answered, "every 303 is stored");
    assert_eq!(assert_aggregates(&store, &[1]).await as usize, answered);
}

/// Behind a load balancer: after SIGTERM the server goes on serving for --shutdown-drain, votes
/// included, with /readyz at 503 so that health checks take it out; then it stops as usual.
#[tokio::test]
async fn shutdown_drain_serves_on_with_readyz_503_then_stops() {
    let mut extra = OPEN_LIMITS.to_vec();
    extra.extend(["--shutdown-drain", "2s", "--flush-interval-ms", "50"]);
    let (mut server, _tmp) = pg_server("e2e_drain", &[1], &extra).await;
    let key = server.signer().sign(1);
    assert_eq!(post_vote(&server, 1, &varied_vote(&key, 0)).await.0, 303);
    assert_eq!(get(&server.url("/readyz"), &[]).await.0, 200);
    let signalled = std::time::Instant::now();
    server.signal_term();
    let readyz = loop {
        let (status, _, body) = get(&server.url("/readyz"), &[]).await;
        if status != 200 {
            break (status, text(&body));
        }
        assert!(signalled.elapsed() < Duration::from_secs(2), "/readyz still 200 after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(readyz.0, 503);
    assert!(readyz.1.contains("shutting down"), "{}", readyz.1);
    // Still serving: new connections (each request of this client may open one), votes, pages.
    for i in 1..=5 {
        assert_eq!(post_vote(&server, 1, &varied_vote(&key, i)).await.0, 303, "vote {i} during the drain");
    }
    assert_eq!(get(&server.url(&server.form_path(1)), &[]).await.0, 200);
    assert!(signalled.elapsed() < Duration::from_secs(2), "the checks above ran during the drain");
    let (status, server) = tokio::task::spawn_blocking(move || (server.wait_exit(), server)).await.unwrap();
    assert!(status.success(), "{status}");
    assert!(signalled.elapsed() >= Duration::from_secs(2), "the server stopped before its drain was over");
    let store = open_store(&server.db_url).await;
    assert_eq!(store.count_avis().await.unwrap(), 6, "the votes of the drain are stored too");
    assert_eq!(assert_aggregates(&store, &[1]).await, 6);
}

#[tokio::test]
async fn shutdown_drain_longer_than_the_timeout_is_refused_at_start() {
    let url = fresh_pg_database("e2e_drain_bad").await;
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .current_dir(tmp.path())
        .args([
            "--database-url",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--shutdown-drain",
            "30s",
            "--shutdown-timeout",
            "30s",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--shutdown-drain (30s) must be shorter than --shutdown-timeout (30s)"), "{err}");
}
