//! `/metrics` over real sockets (DESIGN §11, issue 23): requests and their durations by route
//! class and status class, the e-mail outbox, build info; and nothing about a citizen.

mod common;

use common::*;

/// `(name, labels, value)` of every sample of the exposition.
fn samples(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n.to_string(), rest.trim_end_matches('}').to_string()),
                None => (series.to_string(), String::new()),
            };
            (name, labels, value.parse().unwrap())
        })
        .collect()
}

fn value(all: &[(String, String, f64)], name: &str, labels: &str) -> f64 {
    all.iter().find(|(n, l, _)| n == name && l == labels).map_or(0.0, |s| s.2)
}

#[tokio::test]
async fn requests_by_class_outbox_and_build() {
    let server = Server::sqlite_with(&[(7, "Carte grise")], &["--log-emails", "no"]);
    let key = server.signer().sign(7);
    let client = client();
    let get = |path: String| {
        let url = server.url(&path);
        let client = client.clone();
        async move { try_request(&client, hyper::Method::GET, &url, &[], bytes::Bytes::new()).await.unwrap().0 }
    };
    assert_eq!(get("/static/bouton-bleu.svg".into()).await, 200);
    assert_eq!(get("/static/bouton-inconnu.svg".into()).await, 404);
    assert_eq!(get(server.form_path(7)).await, 200);
    assert_eq!(get("/Demarches/7?key=0000".into()).await, 404);
    assert_eq!(post_vote(&server, 7, &vote_body(&server, 7, "satisfaction=bien")).await.0, 303);
    assert_eq!(post_vote(&server, 7, "satisfaction=bien&key=bad").await.0, 404);
    assert_eq!(get("/Demarches/7/merci".into()).await, 200);
    assert_eq!(get("/connexion".into()).await, 200);
    assert_eq!(get("/console".into()).await, 303);
    assert_eq!(get("/api/v1/demarches".into()).await, 401);
    assert_eq!(get("/observatoire".into()).await, 200);
    assert_eq!(get("/Demarches/7".into()).await, 200, "the démarche's public page");
    assert_eq!(get("/healthz".into()).await, 200);

    let (status, headers, body) = get_full(&server.url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = text(&body);
    let all = samples(&text);
    let requests = |route: &str, status: &str| {
        value(&all, "monavis_requests_total", &format!("route=\"{route}\",status=\"{status}\""))
    };
    for (route, status, n) in [
        ("button", "2xx", 1.0),
        ("button", "4xx", 1.0),
        ("form", "2xx", 1.0),
        ("form", "4xx", 1.0),
        ("vote", "3xx", 1.0),
        ("vote", "4xx", 1.0),
        ("merci", "2xx", 1.0),
        ("console", "2xx", 1.0),
        ("console", "3xx", 1.0),
        ("api", "4xx", 1.0),
        ("observatory", "2xx", 2.0),
        ("probe", "2xx", 1.0),
    ] {
        assert_eq!(requests(route, status), n, "{route} {status}\n{text}");
    }
    // Durations by route class: as many as requests, each bucket a running total.
    for (route, n) in [("button", 2.0), ("vote", 2.0), ("console", 2.0), ("observatory", 2.0)] {
        let count = value(&all, "monavis_request_duration_seconds_count", &format!("route=\"{route}\""));
        assert_eq!(count, n, "{route}");
        let inf = value(&all, "monavis_request_duration_seconds_bucket", &format!("le=\"+Inf\",route=\"{route}\""));
        assert_eq!(inf, n);
        assert!(value(&all, "monavis_request_duration_seconds_sum", &format!("route=\"{route}\"")) > 0.0);
    }
    // The outbox (no SMTP here: nothing waits to be sent) and the build.
    for name in ["monavis_emails_waiting", "monavis_emails_oldest_waiting_seconds", "monavis_emails_undelivered"] {
        assert!(all.iter().any(|(n, l, v)| n == name && l.is_empty() && *v == 0.0), "{name}");
    }
    for name in ["monavis_email_send_failures_total", "monavis_emails_given_up_total"] {
        assert!(all.iter().any(|(n, _, v)| n == name && *v == 0.0), "{name}");
    }
    let build = all.iter().find(|(n, _, _)| n == "monavis_build_info").expect("build info");
    assert!(build.1.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{}", build.1);
    let commit = build.1.split("commit=\"").nth(1).unwrap().split('"').next().unwrap();
    assert!(commit == "unknown" || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())), "{commit}");

    // Nothing about a citizen: label values come from closed sets, never a path, a démarche,
    // a source, an address or a key.
    let keys_allowed = ["route", "status", "reason", "le", "version", "commit", "kind"];
    for (name, labels, _) in &all {
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, _) = pair.split_once('=').unwrap();
            assert!(keys_allowed.contains(&k), "{name} has label {k}");
        }
    }
    for secret in [key.as_str(), "127.0.0.1", "Carte grise", "/Demarches/7", "source=", "demarche"] {
        assert!(!text.contains(secret), "/metrics holds {secret:?}");
    }
}

async fn get_full(url: &str) -> (hyper::StatusCode, hyper::HeaderMap, bytes::Bytes) {
    get(url, &[]).await
}
