//! End-to-end tests of the JSON API and of the API keys of « Mon compte », over real sockets
//! against the real binary, on both stores: votes posted through a démarche's form link, a key
//! created (its secret shown once) and revoked in « Mon compte », `stats` and `avis` compared
//! number by number with a recount of the stored avis, the cursor walked to its end, and every
//! refusal (no key, bad key, revoked key, démarche not carried, bad parameters, unknown path).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::browser::{porteur, Browser, Mailbox};
use common::{cli, open_store, request, varied_vote, Server};
use hyper::{Method, StatusCode};
use serde_json::Value;
use widget_server::stats::{Counts, DailyRow};

const PW: &str = "une phrase de passe solide";
const OPEN_LIMITS: [&str; 6] =
    ["--flush-interval-ms", "50", "--rate-per-minute", "1000000", "--rate-per-minute-demarche", "1000000"];

/// One API call: (status, headers, JSON body).
async fn api(server: &Server, path: &str, key: Option<&str>) -> (StatusCode, hyper::HeaderMap, Value) {
    api_as(server, Method::GET, path, key.map(|k| format!("Bearer {k}")).as_deref()).await
}

/// One API call with any method and `Authorization` value.
async fn api_as(
    server: &Server,
    method: Method,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, hyper::HeaderMap, Value) {
    let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
    let (status, headers, body) = request(method, &server.url(path), &headers, Vec::new()).await;
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{path}: {status} {}",
        common::text(&body)
    );
    assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{path}");
    assert!(headers.get("set-cookie").is_none(), "{path}: the API sets no cookie");
    let json: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {e}: {}", common::text(&body)));
    (status, headers, json)
}

/// Asserts a JSON error answer: its status, and a message containing `needle`.
fn assert_error(path: &str, got: &(StatusCode, hyper::HeaderMap, Value), status: StatusCode, needle: &str) {
    assert_eq!(got.0, status, "{path}: {}", got.2);
    let msg = got.2["error"].as_str().unwrap_or_else(|| panic!("{path}: no error message in {}", got.2));
    assert!(msg.contains(needle), "{path}: {msg:?} should name {needle:?}");
    if status == StatusCode::UNAUTHORIZED {
        let auth = got.1.get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(auth.starts_with("Bearer"), "{path}: WWW-Authenticate {auth:?}");
    }
}

/// The key shown once on the page after its creation.
fn shown_key(body: &str) -> String {
    let at = body.find("value=\"mav_").expect("the new key is shown") + "value=\"".len();
    let key = body[at..].split('"').next().unwrap().to_string();
    assert_eq!(key.len(), 4 + 64, "{key}");
    assert!(key[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    key
}

/// The id of the key named `name` in « Mon compte » (from its « Révoquer » form).
fn key_id(body: &str, name: &str) -> String {
    let row = body.split("<tr>").find(|r| r.contains(&format!("<td>{name}</td>"))).expect("the key is listed");
    row.split("/console/compte/cles/").nth(1).unwrap().split('/').next().unwrap().to_string()
}

/// Asserts that the API's counts object equals `c`, number by number.
fn assert_counts(what: &str, j: &Value, c: &Counts) {
    assert_eq!(j["n"], c.n, "{what}: n");
    let keys = |names: &[&str], counts: &[i64], field: &str| {
        for (name, n) in names.iter().zip(counts) {
            assert_eq!(j[field][name.replace('-', "_")], *n, "{what}: {field}.{name}");
        }
        assert_eq!(j[field].as_object().unwrap().len(), names.len(), "{what}: {field} has no other key");
    };
    keys(&["bien", "moyen", "pas-bien"], &c.satisfaction, "satisfaction");
    keys(&["facile", "moyen", "difficile"], &c.facilite, "facilite");
    keys(&["clair", "moyen", "pas-clair"], &c.clarte, "clarte");
    keys(&["aucune", "proche", "association", "agent", "internet", "autre"], &c.aide, "aide");
    let f = |v: &Value| v.as_f64();
    // Rounded as the pages show them: one decimal for indexes, a whole percent for autonomy.
    let round1 = |v: Option<f64>| v.map(|v| (v * 10.0).round() / 10.0);
    assert_eq!(f(&j["satisfaction_index"]), round1(c.satisfaction_index()), "{what}: satisfaction_index");
    assert_eq!(f(&j["facilite_index"]), round1(c.facilite_index()), "{what}: facilite_index");
    assert_eq!(f(&j["clarte_index"]), round1(c.clarte_index()), "{what}: clarte_index");
    assert_eq!(f(&j["autonomy"]), c.autonomy().map(|v| (v * 100.0).round() / 100.0), "{what}: autonomy");
    assert_eq!(j["indicative"].as_bool(), Some(c.n < 100), "{what}: indicative under 100 avis");
    for k in ["satisfaction_index", "facilite_index", "clarte_index", "autonomy"] {
        assert!(j[k].is_null() || j[k].is_number(), "{what}: {k}");
    }
}

/// The recount summed over the days `from..=to` and the rows `keep` keeps.
fn recount_sum(rows: &[DailyRow], from: NaiveDate, to: NaiveDate, keep: impl Fn(&DailyRow) -> bool) -> Counts {
    let mut c = Counts::default();
    for r in rows.iter().filter(|r| (from..=to).contains(&r.day) && keep(r)) {
        c.add(&r.counts);
    }
    c
}

fn day(v: &Value) -> NaiveDate {
    NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap()
}

/// Checks a `stats` answer against the recount: the total, and every interval.
fn check_stats(what: &str, body: &Value, recount: &[DailyRow], source: Option<&str>) {
    let keep = |r: &DailyRow| source.is_none_or(|s| r.source == s);
    let (from, to) = (day(&body["from"]), day(&body["to"]));
    assert_counts(&format!("{what} total"), &body["total"], &recount_sum(recount, from, to, keep));
    let intervals = body["intervals"].as_array().unwrap();
    assert!(!intervals.is_empty());
    assert_eq!(day(&intervals[0]["start"]), from, "{what}: the first interval starts on `from`");
    assert_eq!(day(&intervals[intervals.len() - 1]["end"]), to, "{what}: the last ends on `to`");
    let mut expected_start = from;
    let mut sum = 0;
    for (i, b) in intervals.iter().enumerate() {
        let (start, end) = (day(&b["start"]), day(&b["end"]));
        assert_eq!(start, expected_start, "{what}: intervals follow each other");
        assert!(end >= start);
        assert_counts(&format!("{what} interval {i} ({start}..{end})"), b, &recount_sum(recount, start, end, keep));
        sum += b["n"].as_i64().unwrap();
        expected_start = end.succ_opt().unwrap();
    }
    assert_eq!(sum, body["total"]["n"].as_i64().unwrap(), "{what}: intervals add up to the total");
}

/// Posts `count` varied votes for démarche `id` through its form link (the form's own action
/// and key), as citizens would.
async fn vote_through_form(server: &Server, id: i64, count: usize, offset: usize) {
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

/// Waits until the store holds `n` avis (the flusher runs every 50 ms).
async fn wait_for_flush(db_url: &str, n: i64) {
    let store = open_store(db_url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stored = store.count_avis().await.unwrap();
        if stored == n {
            return;
        }
        assert!(Instant::now() < deadline, "{stored} avis stored, {n} expected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Walks `avis` with `limit` until `next` is null; every avis, in order.
async fn walk(server: &Server, id: i64, key: &str, limit: usize) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut since: Option<String> = None;
    for _ in 0..1000 {
        let path = match &since {
            Some(c) => format!("/api/v1/demarches/{id}/avis?limit={limit}&since={c}"),
            None => format!("/api/v1/demarches/{id}/avis?limit={limit}"),
        };
        let (status, _, body) = api(server, &path, Some(key)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page = body["avis"].as_array().unwrap();
        assert!(page.len() <= limit);
        all.extend(page.iter().cloned());
        match &body["next"] {
            Value::Null => {
                assert!(page.len() < limit, "next is null only on a short page");
                return all;
            }
            Value::String(c) => {
                assert_eq!(page.len(), limit, "a full page has a next cursor");
                since = Some(c.clone());
            }
            other => panic!("next: {other}"),
        }
    }
    panic!("the walk does not end");
}

/// Recounts avis as the API lists them.
fn counts_of(avis: &[Value]) -> Counts {
    let mut c = Counts::default();
    let level = |v: &Value, values: [&str; 3]| v.as_str().map(|s| values.iter().position(|x| *x == s).unwrap());
    for a in avis {
        c.n += 1;
        c.satisfaction[level(&a["satisfaction"], ["bien", "moyen", "pas-bien"]).unwrap()] += 1;
        if let Some(i) = level(&a["facilite"], ["facile", "moyen", "difficile"]) {
            c.facilite[i] += 1;
        }
        if let Some(i) = level(&a["clarte"], ["clair", "moyen", "pas-clair"]) {
            c.clarte[i] += 1;
        }
        for v in a["aide"].as_array().unwrap() {
            let all = ["aucune", "proche", "association", "agent", "internet", "autre"];
            c.aide[all.iter().position(|x| *x == v.as_str().unwrap()).unwrap()] += 1;
        }
    }
    c
}

async fn scenario(server: &Server, tag: &str) {
    let mailbox = Mailbox::Outbox;
    let email = |who: &str| format!("{who}.{tag}@interieur.gouv.fr");
    let mut alice = porteur(server, &mailbox, "Alice Porteuse", &email("alice"), PW).await;
    let mut bob = porteur(server, &mailbox, "Bob Porteur", &email("bob"), PW).await;
    for (b, id) in [(&mut alice, 101), (&mut bob, 102)] {
        let page =
            b.submit(&format!("/console/demarches/{id}"), &format!("/console/demarches/{id}/porteur"), &[]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    }

    // Citizens vote through the form links: 101 gets many varied avis, 102 a few.
    vote_through_form(server, 101, 53, 0).await;
    vote_through_form(server, 102, 4, 100).await;
    wait_for_flush(&server.db_url, 57).await;
    let store = open_store(&server.db_url).await;
    assert_eq!(common::assert_aggregates(&store, &[101, 102]).await, 57);
    let recount = store.recount(101).await.unwrap();

    // « Mon compte »: no key yet; a name is required and bounded, in French.
    let page = alice.get("/console/compte").await;
    assert!(page.body.contains("Vous n'avez encore aucune clé d'API"));
    let empty = alice.post("/console/compte/cles", &[("nom_cle", "  ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains("Indiquez un nom pour la clé") && !empty.body.contains("mav_"));
    let long = "x".repeat(61);
    let too_long = alice.post("/console/compte/cles", &[("nom_cle", &long)]).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(too_long.body.contains("ne peut pas dépasser 60"));

    // Created: the secret is on this page only (200, no redirect, not cached).
    let created = alice.post("/console/compte/cles", &[("nom_cle", "Tableau de bord")]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    let key = shown_key(&created.body);
    assert!(created.body.contains("elle ne sera plus jamais affichée"));
    let page = alice.get("/console/compte").await;
    assert!(!page.body.contains(&key) && !page.body.contains("value=\"mav_"), "shown once");
    assert!(page.body.contains("<td>Tableau de bord</td>") && page.body.contains("Jamais utilisée"));
    let alice_key_id = key_id(&page.body, "Tableau de bord");

    // stats, default period (the 12 months ending today) and interval (month).
    let path = "/api/v1/demarches/101/stats";
    let (status, _, body) = api(server, path, Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["demarche"]["id"].as_i64(), body["interval"].as_str()), (Some(101), Some("month")));
    assert_eq!(body["source"], Value::Null);
    let (from, to) = (day(&body["from"]), day(&body["to"]));
    assert_eq!((to - from).num_days(), 364);
    assert!(recount.iter().all(|r| (from..=to).contains(&r.day)), "today's votes are in the default period");
    assert_eq!(body["total"]["n"], 53);
    check_stats("default", &body, &recount, None);
    let last_use = alice.get("/console/compte").await;
    assert!(!last_use.body.contains("Jamais utilisée"), "the key's last use is shown");

    // Every interval, a source, and a period around today.
    let today = recount.iter().map(|r| r.day).max().unwrap();
    let (a, b) = (today - chrono::Days::new(20), today + chrono::Days::new(3));
    for (query, source) in [
        (format!("from={a}&to={b}&interval=day"), None),
        (format!("from={a}&to={b}&interval=week"), None),
        (format!("from={}&to={b}&interval=month", today - chrono::Days::new(400)), None),
        (format!("from={a}&to={b}&interval=day&source=site"), Some("site")),
        ("interval=week&source=email".to_string(), Some("email")),
        ("source=absent".to_string(), Some("absent")),
    ] {
        let p = format!("{path}?{query}");
        let (status, _, body) = api(server, &p, Some(&key)).await;
        assert_eq!(status, StatusCode::OK, "{p}: {body}");
        assert_eq!(body["source"].as_str(), source);
        check_stats(&p, &body, &recount, source);
    }
    let (_, _, days) = api(server, &format!("{path}?from={a}&to={b}&interval=day"), Some(&key)).await;
    assert_eq!(days["intervals"].as_array().unwrap().len(), 24);
    let (_, _, none) = api(server, &format!("{path}?source=absent"), Some(&key)).await;
    assert_eq!(none["total"]["n"], 0);
    assert!(none["total"]["satisfaction_index"].is_null() && none["total"]["autonomy"].is_null());

    // avis: every vote exactly once, oldest first, whatever the page size.
    let stored: i64 = recount.iter().map(|r| r.counts.n).sum();
    for limit in [7, 53, 1000] {
        let all = walk(server, 101, &key, limit).await;
        assert_eq!(all.len() as i64, stored, "limit {limit}");
        let ids: BTreeSet<&str> = all.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), all.len(), "limit {limit}: no avis twice");
        let order: Vec<(String, String)> = all
            .iter()
            .map(|a| {
                let at = chrono::DateTime::parse_from_rfc3339(a["received_at"].as_str().unwrap()).unwrap();
                (at.to_utc().to_rfc3339(), a["id"].as_str().unwrap().to_string())
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "limit {limit}: oldest first");
        let total = recount_sum(&recount, NaiveDate::MIN, NaiveDate::MAX, |_| true);
        assert_eq!(counts_of(&all), total, "limit {limit}: the avis listed recount to the store's");
        let mut per_source: BTreeMap<String, i64> = BTreeMap::new();
        for a in &all {
            *per_source.entry(a["source"].as_str().unwrap().to_string()).or_default() += 1;
        }
        for (s, n) in per_source {
            assert_eq!(recount_sum(&recount, NaiveDate::MIN, NaiveDate::MAX, |r| r.source == s).n, n, "source {s}");
        }
    }
    let (_, _, first) = api(server, "/api/v1/demarches/101/avis", Some(&key)).await;
    assert_eq!(first["avis"].as_array().unwrap().len(), 53, "limit defaults to 100");
    assert_eq!(first["next"], Value::Null);
    let with_comment = first["avis"].as_array().unwrap().iter().find(|a| !a["commentaire"].is_null()).unwrap();
    assert_eq!(with_comment["commentaire"], "Très bien expliqué, merci à l'agent.");
    let keys: BTreeSet<&str> = with_comment.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["id", "received_at", "source", "satisfaction", "facilite", "clarte", "aide", "commentaire"])
    );
    // A cursor past the last avis: an empty page.
    let (_, _, page) = api(server, "/api/v1/demarches/101/avis?limit=53", Some(&key)).await;
    let last = page["next"].as_str().unwrap().to_string();
    let (status, _, after) = api(server, &format!("/api/v1/demarches/101/avis?since={last}"), Some(&key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((after["avis"].as_array().unwrap().len(), &after["next"]), (0, &Value::Null));

    // A démarche the account does not carry, or that does not exist: the same 404.
    for p in [
        "/api/v1/demarches/102/stats",
        "/api/v1/demarches/102/avis",
        "/api/v1/demarches/999/stats",
        "/api/v1/demarches/abc/avis",
    ] {
        assert_error(p, &api(server, p, Some(&key)).await, StatusCode::NOT_FOUND, "not found");
    }
    // Bob's key reads 102, not 101.
    let bob_key = shown_key(&bob.submit("/console/compte", "/console/compte/cles", &[("nom_cle", "Bob")]).await.body);
    let (status, _, body) = api(server, "/api/v1/demarches/102/stats", Some(&bob_key)).await;
    assert_eq!((status, body["total"]["n"].as_i64()), (StatusCode::OK, Some(4)));
    check_stats("bob 102", &body, &store.recount(102).await.unwrap(), None);
    assert_eq!(walk(server, 102, &bob_key, 3).await.len(), 4);
    assert_error(path, &api(server, path, Some(&bob_key)).await, StatusCode::NOT_FOUND, "101");
    // Bob cannot revoke Alice's key: 404, and it still works.
    let refused = bob.post(&format!("/console/compte/cles/{alice_key_id}/revoquer"), &[]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(api(server, path, Some(&key)).await.0, StatusCode::OK);

    // An administrator's key reads every démarche.
    let mut carol = porteur(server, &mailbox, "Carol Admin", &email("carol"), PW).await;
    cli(&server.dir, &server.db_url, &["account", "admin", &email("carol")]);
    let carol_key =
        shown_key(&carol.submit("/console/compte", "/console/compte/cles", &[("nom_cle", "Admin")]).await.body);
    for id in [101, 102] {
        assert_eq!(api(server, &format!("/api/v1/demarches/{id}/stats"), Some(&carol_key)).await.0, StatusCode::OK);
    }

    // No key, a malformed key, an unknown key: 401.
    let unknown = format!("Bearer mav_{}", "0".repeat(64));
    let basic = format!("Basic {key}");
    let upper = format!("Bearer {}", key.to_uppercase());
    for (auth, needle) in [
        (None, "missing API key"),
        (Some("Bearer"), "malformed"),
        (Some("Bearer mav_1234"), "malformed"),
        (Some(basic.as_str()), "malformed"),
        (Some(upper.as_str()), "malformed"),
        (Some(unknown.as_str()), "unknown or revoked"),
    ] {
        let got = api_as(server, Method::GET, path, auth).await;
        assert_error(&format!("{auth:?}"), &got, StatusCode::UNAUTHORIZED, needle);
    }

    // Bad parameters: 400, naming the parameter.
    for (p, needle) in [
        (format!("{path}?from=2026-13-01"), "`from`"),
        (format!("{path}?to=31%2F01%2F2026"), "`to`"),
        (format!("{path}?from=2026-02-01&to=2026-01-01"), "`from`"),
        (format!("{path}?from=2010-01-01&to=2026-01-01"), "`from`..`to`"),
        (format!("{path}?interval=year"), "`interval`"),
        (format!("{path}?from=2024-01-01&to=2026-01-01&interval=day"), "`interval`"),
        (format!("{path}?source=Bouton%20bleu"), "`source`"),
        (format!("{path}?source={}", "a".repeat(33)), "`source`"),
        ("/api/v1/demarches/101/avis?limit=0".into(), "`limit`"),
        ("/api/v1/demarches/101/avis?limit=1001".into(), "`limit`"),
        ("/api/v1/demarches/101/avis?limit=dix".into(), "`limit`"),
        ("/api/v1/demarches/101/avis?since=hier".into(), "`since`"),
        ("/api/v1/demarches/101/avis?since=1_pas-un-uuid".into(), "`since`"),
    ] {
        assert_error(&p, &api(server, &p, Some(&key)).await, StatusCode::BAD_REQUEST, needle);
    }
    // The list of the key's démarches: the one its account carries, with its last 365 days,
    // rounded and marked as the pages show them.
    let (status, _, list) = api(server, "/api/v1/demarches", Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed: Vec<i64> = list["demarches"].as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert_eq!(listed, vec![101], "only the démarche the key's account carries: {list}");
    let d = &list["demarches"][0];
    assert_eq!(d["stats"], "/api/v1/demarches/101/stats");
    assert!(d["last_365_days"]["n"].as_i64().unwrap() > 0, "{d}");
    assert_eq!(d["last_365_days"]["indicative"], d["last_365_days"]["n"].as_i64().map(|n| n < 100).unwrap());
    // Unknown paths and other methods: JSON too.
    for p in ["/api/v1/demarche", "/api/v2/demarches/101/stats", "/api/v1/demarches/101/avis.csv", "/api"] {
        assert_error(p, &api(server, p, Some(&key)).await, StatusCode::NOT_FOUND, "no such endpoint");
    }
    let post = api_as(server, Method::POST, path, Some(&format!("Bearer {key}"))).await;
    assert_error("POST", &post, StatusCode::METHOD_NOT_ALLOWED, "GET");

    // Revoked in « Mon compte »: the very next call is refused.
    let revoked = alice.submit("/console/compte", &format!("/console/compte/cles/{alice_key_id}/revoquer"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(revoked.location(), "/console/compte?info=cle-revoquee#cles");
    assert_error("revoked", &api(server, path, Some(&key)).await, StatusCode::UNAUTHORIZED, "unknown or revoked");
    let page = alice.get("/console/compte?info=cle-revoquee").await;
    assert!(page.body.contains("La clé d'API est révoquée") && page.body.contains("Révoquée le"));
    assert!(!page.body.contains("/revoquer\""), "no « Révoquer » button on a revoked key");
    // Bob's key is untouched.
    assert_eq!(api(server, "/api/v1/demarches/102/avis", Some(&bob_key)).await.0, StatusCode::OK);

    // The audit trail (as the administration page shows it) names the keys, never their secrets.
    let audit = carol.get("/console/admin").await.body;
    assert!(audit.contains("Clé d'API créée") && audit.contains("Clé d'API révoquée"), "{audit}");
    assert!(audit.contains("Tableau de bord") && audit.contains(">Bob<"), "the keys' names: {audit}");
    for k in [&key, &bob_key, &carol_key] {
        assert!(!audit.contains(&k[4..]), "a secret in the audit trail");
    }
}

async fn run(db_url: &str, dir: &std::path::Path) {
    for (id, name) in [(101, "Demande de carte grise"), (102, "Aide à l'électricité")] {
        cli(dir, db_url, &["demarche", "add", "--id", &id.to_string(), "--name", name]);
    }
    let mut server = Server::start_in(dir, db_url, &OPEN_LIMITS);
    let tag = format!("k{}", server.addr.port());
    scenario(&server, &tag).await;
    let status = server.terminate();
    assert!(status.success());
    let store = open_store(db_url).await;
    assert_eq!(common::assert_aggregates(&store, &[101, 102]).await, 57);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_on_sqlite() {
    let (tmp, url) = Server::sqlite_dir();
    run(&url, tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_on_postgres() {
    let url = common::fresh_pg_database("console_api").await;
    let tmp = tempfile::tempdir().unwrap();
    run(&url, tmp.path()).await;
}
