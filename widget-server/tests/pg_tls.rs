//! TLS to PostgreSQL (`sslmode`, `sslrootcert` in the database URL) against a cluster of its own
//! started by `scripts/pg.sh start --ssl`: a certificate for `localhost` only, signed by a CA the
//! script makes, and a role, `monavis_tls`, that the server accepts over TLS only (pg_hba.conf).
//! Without TLS on that cluster these tests fail; they never skip.

mod common;

use std::time::Duration;

use common::*;
use widget_server::store::pg_tls;

/// `base` (a URL without query) with `query` appended.
fn with_query(base: &str, query: &str) -> String {
    format!("{base}?{query}")
}

/// Whether the session of `client` is encrypted, as the server sees it.
async fn session_is_tls(client: &tokio_postgres::Client) -> bool {
    let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap();
    row.get(0)
}

/// The error of connecting to `url`, which must fail.
async fn connect_error(url: &str) -> String {
    match pg_tls::connect(url).await {
        Ok(_) => panic!("connecting to {url} should have failed"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn sslmodes_against_a_tls_only_role() {
    let cluster = tokio::task::spawn_blocking(OwnCluster::start_tls).await.unwrap();
    let tls_url = cluster.var("MONAVIS_TEST_PG_TLS_URL");
    let ca = cluster.var("MONAVIS_TEST_PG_CA");
    let wrong_ca = cluster.var("MONAVIS_TEST_PG_WRONG_CA");
    let by_ip = tls_url.replace("@localhost:", "@127.0.0.1:");
    assert_ne!(by_ip, tls_url, "the TLS URL names localhost");

    // require: encrypted, certificate not checked (it is for localhost, we dial 127.0.0.1).
    let client = pg_tls::connect(&with_query(&by_ip, "sslmode=require")).await.expect("sslmode=require connects");
    assert!(session_is_tls(&client).await, "sslmode=require: pg_stat_ssl says the session is encrypted");

    // prefer (no sslmode): TLS since the server offers it; else the TLS-only role is refused.
    let client = pg_tls::connect(&by_ip).await.expect("default sslmode (prefer) connects");
    assert!(session_is_tls(&client).await, "default sslmode: TLS when the server offers it");

    // verify-full with the right CA and the certificate's name.
    let full = with_query(&tls_url, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let client = pg_tls::connect(&full).await.expect("verify-full to localhost with the CA connects");
    assert!(session_is_tls(&client).await);

    // verify-full by IP address: the certificate is for localhost only.
    let e = connect_error(&with_query(&by_ip, &format!("sslmode=verify-full&sslrootcert={ca}"))).await;
    assert!(e.contains("certificate not valid for name") && e.contains("127.0.0.1"), "verify-full by IP: {e}");

    // verify-ca by IP address: the chain is checked, the name is not.
    let client = pg_tls::connect(&with_query(&by_ip, &format!("sslmode=verify-ca&sslrootcert={ca}")))
        .await
        .expect("verify-ca ignores the name");
    assert!(session_is_tls(&client).await);

    // The wrong CA, in verify-full, verify-ca and require-with-a-root (as libpq: the chain is checked).
    for mode in ["verify-full", "verify-ca", "require"] {
        let e = connect_error(&with_query(&tls_url, &format!("sslmode={mode}&sslrootcert={wrong_ca}"))).await;
        assert!(e.contains("invalid peer certificate") && e.contains("UnknownIssuer"), "{mode} with the wrong CA: {e}");
    }

    // disable: the server refuses the TLS-only role, and says why.
    let e = connect_error(&with_query(&by_ip, "sslmode=disable")).await;
    assert!(e.contains("pg_hba.conf rejects connection") && e.contains("no encryption"), "sslmode=disable: {e}");

    // The stores go through the same function: a refused certificate is reported as such, at once.
    let e =
        match widget_server::store::open(&with_query(&by_ip, &format!("sslmode=verify-full&sslrootcert={ca}"))).await {
            Ok(_) => panic!("store::open with a certificate for another name should fail"),
            Err(e) => e.to_string(),
        };
    assert!(e.contains("certificate not valid for name"), "store::open: {e}");
    let store = widget_server::store::open(&full).await.expect("store::open with verify-full");
    store.migrate().await.expect("migrate over TLS");
    assert_eq!(store.count_avis().await.unwrap(), 0);
    let console = widget_server::console::store::open(&with_query(
        &by_ip,
        &format!("sslmode=verify-full&sslrootcert={wrong_ca}"),
    ))
    .await;
    let e = console.err().expect("console store with the wrong CA should fail").to_string();
    assert!(e.contains("UnknownIssuer"), "console store: {e}");
}

#[tokio::test]
async fn url_errors_name_the_setting() {
    // No cluster needed: these fail before connecting.
    let e = widget_server::store::open("postgres://monavis:s3cret@localhost:1/db?sslmode=verify_full")
        .await
        .err()
        .expect("a bad sslmode is refused")
        .to_string();
    assert!(e.contains("sslmode \"verify_full\"") && e.contains("verify-full") && !e.contains("s3cret"), "{e}");
    let e = widget_server::store::open("postgres://localhost:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
        .await
        .err()
        .expect("a missing sslrootcert is refused")
        .to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
}

#[tokio::test]
async fn server_over_verify_full_stores_votes() {
    let cluster = tokio::task::spawn_blocking(OwnCluster::start_tls).await.unwrap();
    let url = with_query(
        &cluster.var("MONAVIS_TEST_PG_TLS_URL"),
        &format!("sslmode=verify-full&sslrootcert={}", cluster.var("MONAVIS_TEST_PG_CA")),
    );
    let tmp = tempfile::tempdir().unwrap();
    cli(tmp.path(), &url, &["demarche", "add", "--id", "7", "--name", "Démarche chiffrée"]);
    // The server opens the vote store and the console's store at start: it listens only if both did.
    let mut server = Server::start_in(tmp.path(), &url, &["--flush-interval-ms", "100"]);
    let (status, _, body) = get(&server.url("/readyz"), &[]).await;
    assert_eq!(status, 200, "/readyz: {}", text(&body));
    let key = server.signer().sign(7);
    for i in 0..5 {
        let (status, _, _) = post_vote(&server, 7, &varied_vote(&key, i)).await;
        assert_eq!(status, 303, "vote {i} accepted");
    }
    assert_eq!(wait_for_avis(&url, 5, Duration::from_secs(20)).await, 5, "the votes reached PostgreSQL over TLS");
    assert!(server.terminate().success(), "clean shutdown");
}
