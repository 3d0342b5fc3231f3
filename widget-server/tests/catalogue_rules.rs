//! Catalogue rules on the citizens' path, over real sockets against the real binary: a merged
//! démarche's links and pre-merge forms keep working and count for its target; a high-volume
//! démarche not yet approved (itself, or as a merge target) answers a 404 of its own.

mod common;

use common::*;
use widget_server::store::Store;

const TARGET: i64 = 10;
const DUPLICATE: i64 = 11;
const HIGH: i64 = 12;
const OPEN_LIMITS: [&str; 4] = ["--rate-per-minute", "1000000000", "--rate-per-minute-demarche", "1000000000"];
const NOT_OPEN: &str = "Ce formulaire n'est pas encore ouvert";
const INVALID: &str = "Ce lien d'avis n'est pas valide";

fn form_path(id: i64, key: &str) -> String {
    format!("/Demarches/{id}?view-mode=formulaire-avis&nd_source=button&key={key}")
}

/// Votes stored for `id`, from `avis_daily` (checked against a recount).
async fn stored_for(store: &std::sync::Arc<dyn Store>, id: i64) -> i64 {
    assert_aggregates(store, &[id]).await
}

/// A 404 page with `title`, not to be cached.
fn assert_404(res: (hyper::StatusCode, hyper::HeaderMap, bytes::Bytes), title: &str, what: &str) {
    let (status, h, body) = res;
    assert_eq!(status, 404, "{what}");
    assert_eq!(h["cache-control"], "no-store", "{what}");
    assert_eq!(h["content-type"], "text/html; charset=utf-8", "{what}");
    let page = text(&body);
    assert!(page.contains("lang=\"fr\"") && page.contains(title), "{what}: page lacks {title:?}");
}

#[tokio::test]
async fn merged_and_high_volume_demarches() {
    let (tmp, url) = Server::sqlite_dir();
    for (id, name, volume) in
        [(TARGET, "Démarche cible", "1000"), (DUPLICATE, "Doublon", "1000"), (HIGH, "Très gros volume", "6000000")]
    {
        let id = id.to_string();
        cli(tmp.path(), &url, &["demarche", "add", "--id", &id, "--name", name, "--volume-annuel", volume]);
    }
    exec_sql(&url, &format!("UPDATE demarche SET active = 0, merged_into = {TARGET} WHERE id = {DUPLICATE}")).await;

    // First start: DUPLICATE merged into TARGET; HIGH awaits approval.
    let mut server = Server::start_in(tmp.path(), &url, &OPEN_LIMITS);
    let signer = server.signer();
    let (key_t, key_d, key_h) = (signer.sign(TARGET as u64), signer.sign(DUPLICATE as u64), signer.sign(HIGH as u64));

    // The duplicate's link shows the target's form, posting to the target with its key.
    let (status, _, body) = get(&server.url(&form_path(DUPLICATE, &key_d)), &[]).await;
    assert_eq!(status, 200);
    let page = text(&body);
    assert!(page.contains("Démarche cible") && !page.contains("Doublon"), "the target's name");
    assert!(page.contains(&format!("action=\"/Demarches/{TARGET}/avis\"")), "posts to the target");
    assert!(page.contains(&format!("name=\"key\" value=\"{key_t}\"")), "with the target's key");
    assert!(!page.contains(&key_d));

    // The key always verifies against the id in the URL.
    for (path, what) in [
        (form_path(DUPLICATE, &key_t), "the target's key on the duplicate's link"),
        (form_path(DUPLICATE, "0000"), "a bad key on the duplicate's link"),
        (form_path(TARGET, &key_d), "the duplicate's key on the target's link"),
    ] {
        assert_404(get(&server.url(&path), &[]).await, INVALID, what);
    }
    let res = post_vote(&server, DUPLICATE, &format!("key={key_t}&satisfaction=bien")).await;
    assert_404(res, INVALID, "a vote on the duplicate's URL with the target's key");

    // A form rendered before the merge: posted to the duplicate with its key, counted for the target.
    let (status, h, _) =
        post_vote(&server, DUPLICATE, &format!("key={key_d}&nd_source=button&satisfaction=bien")).await;
    assert_eq!(status, 303);
    assert_eq!(h["location"], format!("/Demarches/{TARGET}/merci").as_str());
    // Invalid, it comes back as the target's form, with the target's key.
    let (status, _, body) = post_vote(&server, DUPLICATE, &format!("key={key_d}&satisfaction=excellent")).await;
    assert_eq!(status, 422);
    let page = text(&body);
    assert!(page.contains("Démarche cible"));
    assert!(page.contains(&format!("action=\"/Demarches/{TARGET}/avis\"")));
    assert!(page.contains(&format!("name=\"key\" value=\"{key_t}\"")));

    // The duplicate's thank-you page is the target's.
    let (status, _, body) = get(&server.url(&format!("/Demarches/{DUPLICATE}/merci")), &[]).await;
    assert_eq!(status, 200);
    let page = text(&body);
    assert!(page.contains("Merci pour votre avis") && page.contains("Démarche cible"));

    // High volume, not approved: its own 404, for the form and the vote; nothing stored.
    assert_404(get(&server.url(&form_path(HIGH, &key_h)), &[]).await, NOT_OPEN, "high-volume form");
    let (_, _, body) = get(&server.url(&form_path(HIGH, &key_h)), &[]).await;
    assert!(text(&body).contains("attend la validation des administrateurs"));
    let rejected_before = server.metric("monavis_votes_rejected_total{reason=\"not_found\"}").await;
    let res = post_vote(&server, HIGH, &format!("key={key_h}&nd_source=button&satisfaction=bien")).await;
    assert_404(res, NOT_OPEN, "high-volume vote");
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"not_found\"}").await, rejected_before + 1.0);
    assert_404(get(&server.url(&form_path(HIGH, &key_t)), &[]).await, INVALID, "high-volume, bad key");

    let status = server.terminate();
    assert!(status.success(), "clean shutdown: {status}");
    let store = open_store(&url).await;
    assert_eq!(store.count_avis().await.unwrap(), 1, "only the duplicate's vote");
    assert_eq!(stored_for(&store, TARGET).await, 1, "stored under the target");
    assert_eq!(stored_for(&store, DUPLICATE).await, 0);
    assert_eq!(stored_for(&store, HIGH).await, 0);
    drop(store);

    // Second start: HIGH approved; TARGET now declared high-volume and not approved.
    exec_sql(
        &url,
        &format!(
            "UPDATE demarche SET high_volume_approved = 1 WHERE id = {HIGH}; \
             UPDATE demarche SET volume_annuel = 6000000 WHERE id = {TARGET}"
        ),
    )
    .await;
    let mut server = Server::start_in(tmp.path(), &url, &OPEN_LIMITS);
    let (status, _, body) = get(&server.url(&form_path(HIGH, &key_h)), &[]).await;
    assert_eq!(status, 200, "approved: open");
    assert!(text(&body).contains("Très gros volume"));
    let (status, _, _) = post_vote(&server, HIGH, &format!("key={key_h}&nd_source=button&satisfaction=moyen")).await;
    assert_eq!(status, 303);
    // A merged démarche whose target awaits approval gets the same page.
    assert_404(get(&server.url(&form_path(DUPLICATE, &key_d)), &[]).await, NOT_OPEN, "merged into high-volume");
    assert_404(get(&server.url(&form_path(TARGET, &key_t)), &[]).await, NOT_OPEN, "target high-volume");
    let res = post_vote(&server, DUPLICATE, &format!("key={key_d}&nd_source=button&satisfaction=bien")).await;
    assert_404(res, NOT_OPEN, "vote on merged into high-volume");

    stop_and_check_stored(&mut server, &[TARGET, DUPLICATE, HIGH], 2).await;
    let store = open_store(&url).await;
    assert_eq!(stored_for(&store, TARGET).await, 1);
    assert_eq!(stored_for(&store, HIGH).await, 1);
}
