//! Comment retention (DESIGN §13), on both stores: comments received before the cut-off are
//! erased in batches, démarche by démarche; newer comments, every avis and its answers, and
//! `avis_daily` stay; comment search no longer finds the erased words; a second run erases
//! nothing. Then through the real binary: `--retention-months` is checked, shown in the form's
//! privacy notice, and the daily task erases an old comment shortly after start.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use widget_server::console::store::{self as console, AvisFilter, AvisRow, ConsoleStore};
use widget_server::store::{self, Store};
use widget_server::vote::{Answers, Level, Source, Vote};

/// Every avis before this instant loses its comment.
fn cutoff() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).single().unwrap()
}

/// A vote of démarche `demarche` received at `at`, with varied answers and maybe a comment.
fn vote(demarche: i64, at: DateTime<Utc>, i: usize, comment: Option<String>) -> Vote {
    let answers = Answers {
        satisfaction: None,
        facilite: (!i.is_multiple_of(3)).then_some(Level::ALL[i % 3]),
        clarte: (!i.is_multiple_of(4)).then_some(Level::ALL[(i / 2) % 3]),
        aide: (i % 64) as u8,
        commentaire: comment.map(String::into_boxed_str),
    };
    let mut v = Vote::accept(demarche, Source::new(["button", "site"][i % 2]).unwrap(), Level::ALL[i % 3], answers);
    v.received_at_ms = at.timestamp_millis();
    v
}

/// Démarche 1: 26 old comments (one a millisecond before the cut-off) and 10 old avis without
/// one, 15 newer comments (one exactly at the cut-off, which stays). Démarche 2: 8 old comments,
/// exactly two batches of 4. Démarche 3: only newer comments.
fn votes() -> Vec<Vote> {
    let c = cutoff();
    let mut v = Vec::new();
    for i in 0..25 {
        let at = c - TimeDelta::days(400) + TimeDelta::hours(i as i64 * 91);
        v.push(vote(1, at, i, Some(format!("Dossier perdu deux fois, numéro {i}"))));
    }
    v.push(vote(1, c - TimeDelta::milliseconds(1), 25, Some("Dossier perdu la veille".into())));
    for i in 0..10 {
        v.push(vote(1, c - TimeDelta::days(30 + i as i64), 30 + i, None));
    }
    v.push(vote(1, c, 40, Some("Formulaire clair, reçu à l'heure".into())));
    for i in 0..14 {
        let at = c + TimeDelta::days(1 + i as i64);
        v.push(vote(1, at, 41 + i, Some(format!("Formulaire clair et rapide, merci {i}"))));
    }
    for i in 0..8 {
        let at = c - TimeDelta::days(100) + TimeDelta::minutes(i as i64 * 7);
        v.push(vote(2, at, 60 + i, Some(format!("Attente interminable au guichet {i}"))));
    }
    for i in 0..3 {
        v.push(vote(2, c + TimeDelta::hours(i as i64), 70 + i, Some("Guichet rapide".into())));
    }
    for i in 0..5 {
        v.push(vote(3, c + TimeDelta::days(i as i64), 80 + i, Some("Très bien".into())));
    }
    v
}

async fn every_avis(console: &Arc<dyn ConsoleStore>, demarche: i64) -> Vec<AvisRow> {
    console.avis_page(demarche, AvisFilter::default(), None, 1_000).await.unwrap()
}

async fn found(console: &Arc<dyn ConsoleStore>, demarche: i64, words: &str) -> usize {
    let filter = AvisFilter { text: Some(words.into()), ..AvisFilter::default() };
    console.avis_page(demarche, filter, None, 1_000).await.unwrap().len()
}

async fn daily_and_recount(store: &Arc<dyn Store>, demarche: i64) -> Vec<widget_server::stats::DailyRow> {
    let (from, to) = (NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2100, 1, 1).unwrap());
    let daily = store.daily(demarche, from, to).await.unwrap();
    assert_eq!(daily, store.recount(demarche).await.unwrap(), "avis_daily of démarche {demarche} equals a recount");
    daily
}

/// Stores [`votes`] in `url`'s store (already migrated), erases with batches of 4, and checks.
async fn erase_and_check(url: &str) {
    let store = store::open(url).await.unwrap();
    let console = console::open(url).await.unwrap();
    let all = votes();
    assert_eq!(store.store_batch(&all).await.unwrap(), all.len() as u64);

    let demarches = [1, 2, 3];
    let mut before = Vec::new();
    for d in demarches {
        before.push((every_avis(&console, d).await, daily_and_recount(&store, d).await));
    }
    assert_eq!(found(&console, 1, "perdu").await, 26);
    assert_eq!(found(&console, 1, "clair").await, 15);
    assert_eq!(found(&console, 2, "guichet").await, 11);

    let old_comments = all.iter().filter(|v| v.commentaire.is_some() && v.received_at_ms < cutoff().timestamp_millis());
    let expected = old_comments.count() as u64;
    assert_eq!(expected, 34);
    assert_eq!(store.erase_comments_before(cutoff(), 4).await.unwrap(), expected);

    for (d, (rows, daily)) in demarches.into_iter().zip(before) {
        let kept: Vec<AvisRow> = rows
            .into_iter()
            .map(|r| if r.received_at < cutoff() { AvisRow { commentaire: None, ..r } } else { r })
            .collect();
        assert_eq!(every_avis(&console, d).await, kept, "démarche {d}: every avis and answer stays, old comments go");
        assert_eq!(daily_and_recount(&store, d).await, daily, "démarche {d}: avis_daily unchanged");
        common::assert_rollup(&store, d).await;
    }
    assert_eq!(store.count_avis().await.unwrap(), all.len() as i64);
    assert_eq!(found(&console, 1, "perdu").await, 0, "erased words are not found any more");
    assert_eq!(found(&console, 1, "dossier").await, 0);
    assert_eq!(found(&console, 1, "clair").await, 15, "newer comments are still found");
    assert_eq!(found(&console, 2, "interminable").await, 0);
    assert_eq!(found(&console, 2, "guichet").await, 3);
    assert_eq!(found(&console, 3, "bien").await, 5);
    let with_comment = AvisFilter { with_comment: true, ..AvisFilter::default() };
    assert_eq!(console.avis_page(1, with_comment, None, 1_000).await.unwrap().len(), 15);

    assert_eq!(store.erase_comments_before(cutoff(), 4).await.unwrap(), 0, "a second run erases nothing");
    assert_eq!(store.erase_comments_before(cutoff(), 10_000).await.unwrap(), 0);
    // A later cut-off takes the next ones, whatever the batch size.
    let later = cutoff() + TimeDelta::days(2) + TimeDelta::seconds(1);
    assert_eq!(store.erase_comments_before(later, 10_000).await.unwrap(), 3 + 3 + 3);
}

/// `avis_fts` holds exactly the stored comments, each once, and knows each one's rowid.
fn assert_fts_consistent(url: &str) {
    let conn = rusqlite::Connection::open(url.strip_prefix("sqlite://").unwrap()).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let comments = count("SELECT count(*) FROM avis WHERE commentaire IS NOT NULL");
    assert_eq!(count("SELECT count(*) FROM avis_fts"), comments);
    assert_eq!(count("SELECT count(*) FROM avis_fts_rowid"), comments);
    let matching = "SELECT count(*) FROM avis a JOIN avis_fts_rowid m ON m.id = a.id \
                    JOIN avis_fts f ON f.rowid = m.fts_rowid AND f.id = a.id AND f.commentaire = a.commentaire";
    assert_eq!(count(matching), comments, "each comment's avis_fts row is found by its rowid");
}

#[tokio::test]
async fn sqlite_erases_old_comments() {
    let (tmp, url) = common::Server::sqlite_dir();
    store::open(&url).await.unwrap().migrate().await.unwrap();
    erase_and_check(&url).await;
    assert_fts_consistent(&url);
    drop(tmp);
}

#[tokio::test]
async fn postgres_erases_old_comments() {
    let url = common::fresh_pg_database("retention").await;
    store::open(&url).await.unwrap().migrate().await.unwrap();
    erase_and_check(&url).await;
    // The stored tsvector went with each comment.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let stale: i64 = client
        .query_one("SELECT count(*) FROM avis WHERE (commentaire IS NULL) <> (commentaire_tsv IS NULL)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stale, 0);
}

/// Comments stored before SQLite migration 6 (triggers without `avis_fts_rowid`) are erased from
/// the search index as well as those stored after it.
#[tokio::test]
async fn sqlite_comments_from_before_migration_6_are_erased_from_search() {
    let (tmp, url) = common::Server::sqlite_dir();
    let store = store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    // Back to schema version 5: migrations 11 (observatory rollup), 10 (notifications), 9 (e-mail
    // retries), 8 (ProConnect) and 7 (trust) undone, then the triggers of migration 4.
    common::exec_sql(
        &url,
        "DROP INDEX avis_daily_day;
         DROP TRIGGER avis_daily_monthly_insert;
         DROP TRIGGER avis_daily_monthly_update;
         DROP TRIGGER avis_daily_monthly_delete;
         DROP TABLE avis_monthly;
         DELETE FROM schema_migrations WHERE version = 11;
         DROP TABLE notify_account; DROP TABLE notify_demarche; DROP TABLE notification; DROP TABLE notify_alert;
         ALTER TABLE email_outbox DROP COLUMN html;
         ALTER TABLE email_outbox DROP COLUMN unsubscribe;
         DELETE FROM schema_migrations WHERE version = 10;
         DROP INDEX email_outbox_given_up;
         DROP INDEX email_outbox_unsent;
         ALTER TABLE email_outbox DROP COLUMN next_attempt_at;
         ALTER TABLE email_outbox DROP COLUMN given_up_at;
         ALTER TABLE email_outbox DROP COLUMN resent_at;
         CREATE INDEX email_outbox_unsent ON email_outbox (id) WHERE sent_at IS NULL;
         DELETE FROM schema_migrations WHERE version = 9;
         DROP TABLE proconnect_identity;
         ALTER TABLE session DROP COLUMN id_token;
         DELETE FROM schema_migrations WHERE version = 8;
         DROP TRIGGER porteur_had;
         ALTER TABLE demarche DROP COLUMN had_porteur;
         ALTER TABLE porteur_request DROP COLUMN reason;
         ALTER TABLE porteur_invite DROP COLUMN cancelled_at;
         ALTER TABLE email_token DROP COLUMN revoked_at;
         DELETE FROM schema_migrations WHERE version = 7;
         DROP TABLE avis_fts_rowid;
         DROP TRIGGER avis_fts_insert; DROP TRIGGER avis_fts_update; DROP TRIGGER avis_fts_delete;
         CREATE TRIGGER avis_fts_insert AFTER INSERT ON avis WHEN new.commentaire IS NOT NULL BEGIN
             INSERT INTO avis_fts (commentaire, id) VALUES (new.commentaire, new.id);
         END;
         CREATE TRIGGER avis_fts_update AFTER UPDATE OF commentaire ON avis BEGIN
             DELETE FROM avis_fts WHERE id = old.id;
             INSERT INTO avis_fts (commentaire, id) SELECT new.commentaire, new.id WHERE new.commentaire IS NOT NULL;
         END;
         CREATE TRIGGER avis_fts_delete AFTER DELETE ON avis BEGIN
             DELETE FROM avis_fts WHERE id = old.id;
         END;
         DELETE FROM schema_migrations WHERE version = 6;",
    )
    .await;
    let all = votes();
    let (early, late) = all.split_at(all.len() / 2);
    store.store_batch(early).await.unwrap();
    store.migrate().await.unwrap();
    assert_fts_consistent(&url);
    for d in [1, 2, 3] {
        common::assert_rollup(&store, d).await; // migration 9 rolled up what was there
    }
    store.store_batch(late).await.unwrap();
    assert_fts_consistent(&url);
    let console = console::open(&url).await.unwrap();
    assert_eq!(found(&console, 1, "perdu").await, 26);
    assert_eq!(store.erase_comments_before(cutoff(), 4).await.unwrap(), 34);
    assert_eq!(found(&console, 1, "perdu").await, 0);
    assert_eq!(found(&console, 2, "interminable").await, 0);
    assert_eq!(found(&console, 1, "clair").await, 15);
    assert_fts_consistent(&url);
    drop(tmp);
}

/// `--retention-months` must be 1 to 1200, as a flag or as `MONAVIS_RETENTION_MONTHS`.
#[test]
fn retention_months_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: Option<&str>| {
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.current_dir(dir.path()).env_remove("DATABASE_URL").env_remove("MONAVIS_RETENTION_MONTHS");
        if let Some(value) = env {
            cmd.env("MONAVIS_RETENTION_MONTHS", value);
        }
        let out = cmd.args(["--database-url", "sqlite://monavis.db"]).args(args).arg("migrate").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for (args, env) in [
        (&["--retention-months", "0"][..], None),
        (&["--retention-months", "1201"], None),
        (&["--retention-months", "deux"], None),
        (&[], Some("0")),
    ] {
        let (ok, stderr) = run(args, env);
        assert!(!ok, "{args:?} {env:?} refused");
        assert!(stderr.contains("--retention-months"), "{args:?} {env:?}: the error names the flag: {stderr}");
    }
    assert!(run(&["--retention-months", "1"], None).0);
    assert!(run(&[], Some("36")).0);
}

/// The real binary with `--retention-months 1`: the form says so, and an avis received three
/// months ago loses its comment within seconds of start; a recent one keeps it.
#[tokio::test]
async fn server_erases_old_comments_after_start() {
    let (tmp, url) = common::Server::sqlite_dir();
    common::cli(tmp.path(), &url, &["demarche", "add", "--id", "5", "--name", "Carte grise"]);
    let now = Utc::now();
    let old = vote(5, now - TimeDelta::days(95), 1, Some("Ancien commentaire à effacer".into()));
    let recent = vote(5, now - TimeDelta::days(3), 2, Some("Commentaire récent à garder".into()));
    {
        let store = store::open(&url).await.unwrap();
        store.store_batch(&[old.clone(), recent.clone()]).await.unwrap();
    }
    let mut server = common::Server::start_logged(tmp.path(), &url, &["--retention-months", "1"]);

    let (status, _, body) = common::get(&server.url(&server.form_path(5)), &[]).await;
    assert_eq!(status, 200);
    assert!(common::text(&body).contains("Les commentaires sont effacés après 1\u{a0}mois."));

    let db = rusqlite::Connection::open(url.strip_prefix("sqlite://").unwrap()).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let comment = |v: &Vote| -> Option<String> {
        db.query_row("SELECT commentaire FROM avis WHERE id = ?1", [v.id.hyphenated().to_string()], |r| r.get(0))
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while comment(&old).is_some() {
        assert!(Instant::now() < deadline, "the old comment is still there 30 s after start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(comment(&recent).as_deref(), Some("Commentaire récent à garder"));
    assert_eq!(server.metric("monavis_comments_erased_total").await, 1.0);
    let log = server.log();
    assert!(log.contains("retention: old comments erased") && log.contains("erased=1"), "{log}");
    assert!(!log.contains("Ancien commentaire"), "no comment in the log");
    assert!(server.terminate().success());
    drop(tmp);
}
