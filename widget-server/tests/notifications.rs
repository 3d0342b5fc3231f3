//! Notifications (DESIGN §15) end to end, on both stores, through the real binary and the real
//! SMTP sink of scripts/test.sh: the settings page, the digest of each frequency at the right
//! Paris hour (a week across the end of summer time included) with its figures, nothing when
//! nothing arrived, each digest once however many runs, two processes running the same minute
//! against one PostgreSQL, and one-click unsubscribe by a plain POST with no cookie.

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::browser::{porteur, Mailbox};
use common::{Server, BIN};
use hyper::{Method, StatusCode};
use std::process::{Command, Stdio};
use widget_server::catalogue::{Demarche, PrivacyNotice};
use widget_server::console::store::{self as console, ConsoleStore, DigestFrequency};
use widget_server::store::Store;
use widget_server::vote::{Answers, Level, Source, Vote};

const PW: &str = "une phrase de passe solide";
const DEMARCHE: i64 = 4242;

/// A mail of the sink: (subject, List-Unsubscribe, List-Unsubscribe-Post, text part, HTML part).
#[derive(Debug, Clone)]
struct Sent {
    subject: String,
    unsubscribe: Option<String>,
    one_click: Option<String>,
    text: String,
    html: String,
}

/// Every mail to `to` in the sink whose subject starts with `prefix`.
fn sent(dir: &Path, to: &str, prefix: &str) -> Vec<Sent> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("new")).unwrap().flatten() {
        let raw = std::fs::read(entry.path()).unwrap();
        let mail = mailparse::parse_mail(&raw).unwrap();
        let header =
            |name: &str| mail.headers.iter().find(|h| h.get_key().eq_ignore_ascii_case(name)).map(|h| h.get_value());
        let subject = header("Subject").unwrap_or_default();
        if header("To").as_deref() != Some(to) || !subject.starts_with(prefix) {
            continue;
        }
        let part = |mime: &str| {
            mail.subparts
                .iter()
                .find(|p| p.ctype.mimetype == mime)
                .map(|p| p.get_body().unwrap().replace("\r\n", "\n"))
                .unwrap_or_default()
        };
        out.push(Sent {
            subject,
            unsubscribe: header("List-Unsubscribe"),
            one_click: header("List-Unsubscribe-Post"),
            text: part("text/plain"),
            html: part("text/html"),
        });
    }
    out
}

/// `widget-server notifications run --at AT`: how many mails it sent.
fn run_at(server: &Server, smtp: &str, at: &str) -> u64 {
    let out = common::cli(
        &server.dir,
        &server.db_url,
        &["notifications", "run", "--at", at, "--smtp-url", smtp, "--public-url", &server.url("")],
    );
    let first = out.lines().next().unwrap_or_default();
    first
        .rsplit_once(": ")
        .and_then(|(_, n)| n.strip_suffix(" sent"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output of notifications run: {out}"))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `n` votes at `t` (a minute apart), every `k`-th with a comment, satisfaction spread.
fn votes(t: DateTime<Utc>, n: usize, comments: &str) -> Vec<Vote> {
    (0..n)
        .map(|k| {
            let answers = Answers { satisfaction: None, facilite: None, clarte: None, aide: 0, commentaire: None };
            let mut v = Vote::accept(DEMARCHE, Source::new("button").unwrap(), Level::ALL[k % 3], answers);
            v.received_at_ms = (t + Duration::minutes(k as i64)).timestamp_millis();
            if !comments.is_empty() {
                v.commentaire = Some(format!("{comments} {k}").into());
            }
            v
        })
        .collect()
}

async fn journey(db_url: &str, dir: &Path, store_name: &str) {
    let (mailbox, smtp) = Mailbox::smtp();
    let Mailbox::Smtp(maildir) = mailbox.clone() else { unreachable!() };
    let server = Server::start_in(dir, db_url, &["--smtp-url", &smtp]);
    // Unique per run: the sink keeps the mails of earlier runs.
    let email = format!("alice.{store_name}.{}@exemple.gouv.fr", Utc::now().timestamp_millis());
    let mut b = porteur(&server, &mailbox, "Alice", &email, PW).await;

    let votes_store: Arc<dyn Store> = common::open_store(db_url).await;
    let d = Demarche {
        id: DEMARCHE,
        name: "Demande de bourse".into(),
        administration: "Ministère".into(),
        volume_annuel: None,
        high_volume_approved: false,
        active: true,
        merged_into: None,
        privacy: PrivacyNotice::default(),
    };
    votes_store.upsert_demarche(&d).await.unwrap();
    let store: Arc<dyn ConsoleStore> = console::open(db_url).await.unwrap();
    let account = store.account_by_email(email.clone()).await.unwrap().unwrap();
    assert!(store.add_porteur(DEMARCHE, account.id, Utc::now()).await.unwrap());

    // `serve` ran the scheduler once at start (then every minute): its duration is exported.
    assert!(server.metric("monavis_notifications_run_duration_seconds_count").await >= 1.0);

    // « Mon compte » links to the settings; they show the defaults.
    let page = b.get("/console/compte").await;
    assert!(page.body.contains("href=\"/console/compte/notifications\""), "{}", page.body);
    let page = b.get("/console/compte/notifications").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<legend>Fréquence de la synthèse"), "{}", page.body);
    assert!(page.body.contains("value=\"hebdomadaire\" checked"), "weekly by default: {}", page.body);
    assert!(page.body.contains("name=\"d4242-baisse\" value=\"oui\" checked"), "{}", page.body);
    assert!(!page.body.contains("name=\"d4242-commentaires\" value=\"oui\" checked"), "comments off by default");

    // The week of 19–25 October 2026 (summer time ends on the 25th): 120 avis, 5 comments;
    // the week before: 30 avis.
    let mut all = votes(at("2026-10-12T10:00:00Z"), 30, "");
    all.extend(votes(at("2026-10-19T10:00:00Z"), 115, ""));
    all.extend(votes(at("2026-10-25T22:30:00Z"), 5, "Très pratique"));
    votes_store.store_batch(&all).await.unwrap();

    // Monday 26 October, 08:00 in Paris is 07:00 UTC (winter time): not before.
    assert_eq!(run_at(&server, &smtp, "2026-10-26T06:59:00Z"), 0, "07:59 in Paris");
    assert!(sent(&maildir, &email, "Synthèse").is_empty());
    assert_eq!(run_at(&server, &smtp, "2026-10-26T07:00:00Z"), 1);
    assert_eq!(run_at(&server, &smtp, "2026-10-26T07:01:00Z"), 0, "once");
    let weekly = sent(&maildir, &email, "Synthèse");
    assert_eq!(weekly.len(), 1, "{weekly:?}");
    let m = &weekly[0];
    assert_eq!(m.subject, "Synthèse des avis du 19 octobre 2026 au 25 octobre 2026 : 120 avis");
    // 22:30 UTC on the 25th is 23:30 in Paris once summer time has ended: still that week.
    assert!(m.text.contains("« Demande de bourse » (n°\u{a0}4242)"), "{}", m.text);
    let unsubscribe = m.unsubscribe.clone().expect("List-Unsubscribe");
    assert!(unsubscribe.starts_with(&format!("<{}/desabonnement?jeton=", server.url(""))), "{unsubscribe}");
    assert_eq!(m.one_click.as_deref(), Some("List-Unsubscribe=One-Click"));
    assert!(m.html.contains("<html lang=\"fr\">") && m.html.contains("<h1"), "{}", m.html);
    assert!(!m.html.contains("<img"), "no remote image");
    for figure in [
        "- 120 avis\n",
        "+90 avis par rapport à la période précédente (30 avis)",
        "- 5 commentaires\n",
        "« Très pratique 4 »",
        "« Très pratique 2 »",
        &format!("Tableau de bord : {}/console/demarches/4242/satisfaction", server.url("")),
    ] {
        assert!(m.text.contains(figure), "{figure:?} in {}", m.text);
    }
    assert!(!m.text.contains("« Très pratique 1 »"), "three latest comments only");
    assert!(!m.text.contains("indicatif"), "120 avis: a full index");

    // Daily: the Sunday alone (5 avis: indicative), then nothing on Monday, nothing sent.
    let page = b
        .submit(
            "/console/compte/notifications",
            "/console/compte/notifications",
            &[
                ("synthese", "quotidienne"),
                ("d4242-baisse", "oui"),
                ("d4242-silencieux", "oui"),
                ("d4242-commentaires", "oui"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/console/compte/notifications?info=notifications-enregistrees");
    let page = b.get("/console/compte/notifications").await;
    assert!(page.body.contains("value=\"quotidienne\" checked"), "{}", page.body);
    assert!(page.body.contains("name=\"d4242-commentaires\" value=\"oui\" checked"), "{}", page.body);
    // With « Nouveaux commentaires » now on: the Sunday's comments in an alert too.
    assert_eq!(run_at(&server, &smtp, "2026-10-26T07:00:00Z"), 2);
    let alert = sent(&maildir, &email, "Nouveaux commentaires");
    assert_eq!(alert.len(), 1);
    assert!(
        alert[0].text.contains("5 nouveaux commentaires") && alert[0].text.contains("« Très pratique 0 »"),
        "{}",
        alert[0].text
    );
    let daily = sent(&maildir, &email, "Synthèse des avis du 25 octobre 2026");
    assert_eq!(daily.len(), 1);
    assert_eq!(daily[0].subject, "Synthèse des avis du 25 octobre 2026 : 5 avis");
    assert!(daily[0].text.contains("(indicatif, moins de 100 avis)"), "{}", daily[0].text);
    assert_eq!(run_at(&server, &smtp, "2026-10-27T07:30:00Z"), 0, "nothing arrived on the 26th");

    // Monthly: the 1st from 08:00 in Paris.
    b.submit("/console/compte/notifications", "/console/compte/notifications", &[("synthese", "mensuelle")]).await;
    assert_eq!(run_at(&server, &smtp, "2026-11-01T06:59:00Z"), 0);
    assert_eq!(run_at(&server, &smtp, "2026-11-01T07:00:00Z"), 1);
    let monthly = sent(&maildir, &email, "Synthèse des avis du 1er octobre 2026");
    assert_eq!(
        monthly.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        vec!["Synthèse des avis du 1er octobre 2026 au 31 octobre 2026 : 150 avis"]
    );

    // One-click unsubscribe: the link's GET shows a button and changes nothing; a plain POST
    // with no cookie, no Origin and no CSRF token (a mail client's) turns the digest off.
    let link = monthly[0].unsubscribe.clone().unwrap();
    let url = link.trim_start_matches('<').trim_end_matches('>').to_string();
    let (status, _, body) = common::get(&url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(common::text(&body).contains("<button"), "{}", common::text(&body));
    assert_eq!(store.notification_settings(account.id).await.unwrap().digest, DigestFrequency::Mensuelle);
    let forged = url.replacen("jeton=", "jeton=9", 1);
    let (status, _, _) = common::request(
        Method::POST,
        &forged,
        &[("content-type", "application/x-www-form-urlencoded")],
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a forged token does nothing");
    let (status, _, body) = common::request(
        Method::POST,
        &url,
        &[("content-type", "application/x-www-form-urlencoded"), ("sec-fetch-site", "cross-site")],
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", common::text(&body));
    assert_eq!(store.notification_settings(account.id).await.unwrap().digest, DigestFrequency::Aucune);
    votes_store.store_batch(&votes(at("2026-11-02T10:00:00Z"), 3, "")).await.unwrap();
    assert_eq!(run_at(&server, &smtp, "2026-11-03T07:00:00Z"), 0, "unsubscribed");

    // Two processes running the same minute against one store: one mail.
    store.set_digest(account.id, DigestFrequency::Quotidienne).await.unwrap();
    let spawn = || {
        Command::new(BIN)
            .current_dir(&server.dir)
            .env_remove("DATABASE_URL")
            .args(["--database-url", &server.db_url, "--log", "warn", "notifications", "run"])
            .args(["--at", "2026-11-03T07:00:00Z", "--smtp-url", &smtp, "--public-url", &server.url("")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (spawn(), spawn());
    let total: u64 = [one, two]
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            let text = String::from_utf8(out.stdout).unwrap();
            text.lines()
                .next()
                .and_then(|l| l.rsplit_once(": "))
                .and_then(|(_, n)| n.strip_suffix(" sent"))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap()
        })
        .sum();
    assert_eq!(total, 1, "{store_name}: sent once between two processes");
    assert_eq!(sent(&maildir, &email, "Synthèse des avis du 2 novembre 2026").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_notifications() {
    let (tmp, url) = Server::sqlite_dir();
    journey(&url, tmp.path(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notifications() {
    let url = common::fresh_pg_database("notifications").await;
    let tmp = tempfile::tempdir().unwrap();
    journey(&url, tmp.path(), "postgres").await;
}

/// `per_day` votes on `d` from `source` on each of `days` Paris days from `first` (10:00 UTC),
/// satisfaction from `level(k)`.
fn spread(d: i64, source: &str, first: &str, days: i64, per_day: usize, level: fn(usize) -> Level) -> Vec<Vote> {
    let start = at(&format!("{first}T10:00:00Z"));
    let mut out = Vec::new();
    for day in 0..days {
        for k in 0..per_day {
            let answers = Answers { satisfaction: None, facilite: None, clarte: None, aide: 0, commentaire: None };
            let mut v = Vote::accept(d, Source::new(source).unwrap(), level(k), answers);
            v.received_at_ms = (start + Duration::days(day) + Duration::minutes(k as i64)).timestamp_millis();
            out.push(v);
        }
    }
    out
}

/// « Bouton silencieux » from votes spread over the previous weeks, once, re-armed when avis
/// return; « Baisse de satisfaction » once.
async fn alerts(db_url: &str, dir: &Path, store_name: &str) {
    let (mailbox, smtp) = Mailbox::smtp();
    let Mailbox::Smtp(maildir) = mailbox.clone() else { unreachable!() };
    let server = Server::start_in(dir, db_url, &["--smtp-url", &smtp]);
    let email = format!("bob.{store_name}.{}@exemple.gouv.fr", Utc::now().timestamp_millis());
    let mut b = porteur(&server, &mailbox, "Bob", &email, PW).await;
    let votes_store: Arc<dyn Store> = common::open_store(db_url).await;
    let store: Arc<dyn ConsoleStore> = console::open(db_url).await.unwrap();
    let account = store.account_by_email(email.clone()).await.unwrap().unwrap();
    for (id, name) in [(4343, "Démarche au bouton muet"), (4344, "Démarche qui déçoit")] {
        let d = Demarche {
            id,
            name: name.into(),
            administration: "Ministère".into(),
            volume_annuel: None,
            high_volume_approved: false,
            active: true,
            merged_into: None,
            privacy: PrivacyNotice::default(),
        };
        votes_store.upsert_demarche(&d).await.unwrap();
        assert!(store.add_porteur(id, account.id, Utc::now()).await.unwrap());
    }
    // 4343, source « site »: 4 avis a day from 21 October to 14 November, then nothing.
    votes_store.store_batch(&spread(4343, "site", "2026-10-21", 25, 4, |_| Level::Good)).await.unwrap();
    // 4344: 200 « très bien » from 16 October to 12 November, then 126 mixed from 13 to 19 November.
    votes_store.store_batch(&spread(4344, "button", "2026-10-16", 25, 8, |_| Level::Good)).await.unwrap();
    votes_store.store_batch(&spread(4344, "button", "2026-11-13", 7, 18, |k| Level::ALL[k % 3])).await.unwrap();

    assert_eq!(run_at(&server, &smtp, "2026-11-20T09:05:00Z"), 0, "checked at the start of an hour");
    assert_eq!(run_at(&server, &smtp, "2026-11-20T09:00:00Z"), 2);
    let silent = sent(&maildir, &email, "Bouton silencieux");
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0].subject, "Bouton silencieux : « Démarche au bouton muet » (n°\u{a0}4343)");
    assert!(silent[0].text.contains("« site »") && silent[0].text.contains("14 novembre 2026"), "{}", silent[0].text);
    assert!(silent[0].unsubscribe.as_deref().unwrap_or_default().contains("silencieux"));
    let drop = sent(&maildir, &email, "Baisse de satisfaction");
    assert_eq!(drop.len(), 1, "{drop:?}");
    assert!(drop[0].subject.contains("4344"), "{}", drop[0].subject);
    assert!(drop[0].text.contains("5,0 /10 sur les 7 derniers jours (126 avis), contre 10,0 /10"), "{}", drop[0].text);
    // Once: the next hours and days send nothing more while nothing changes.
    assert_eq!(run_at(&server, &smtp, "2026-11-20T10:00:00Z"), 0);
    assert_eq!(run_at(&server, &smtp, "2026-11-21T09:00:00Z"), 0);

    // « Nouveaux commentaires » on 4343: 5 quiet minutes, then at most one mail per 2 hours with
    // the comments since the previous one.
    let mut on = store.notification_settings(account.id).await.unwrap().demarches[0].2;
    on.comments = true;
    assert!(store.set_switches(account.id, 4343, on).await.unwrap());
    let comment = |t: &str, text: &str| {
        let mut v = spread(4343, "site", "2026-12-01", 1, 1, |_| Level::Good).remove(0);
        v.received_at_ms = at(t).timestamp_millis();
        v.commentaire = Some(text.into());
        v
    };
    votes_store
        .store_batch(&[comment("2026-12-01T10:00:00Z", "premier"), comment("2026-12-01T10:01:00Z", "deuxième")])
        .await
        .unwrap();
    assert_eq!(run_at(&server, &smtp, "2026-12-01T10:04:00Z"), 0, "not quiet yet");
    assert_eq!(run_at(&server, &smtp, "2026-12-01T10:06:00Z"), 1);
    votes_store.store_batch(&[comment("2026-12-01T10:30:00Z", "troisième")]).await.unwrap();
    assert_eq!(run_at(&server, &smtp, "2026-12-01T10:40:00Z"), 0, "2 hours between alerts");
    assert_eq!(run_at(&server, &smtp, "2026-12-01T12:06:00Z"), 1);
    assert_eq!(run_at(&server, &smtp, "2026-12-01T14:10:00Z"), 0, "nothing new");
    let alerts = sent(&maildir, &email, "Nouveaux commentaires");
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(alerts.iter().any(|m| m.text.contains("2 nouveaux commentaires") && m.text.contains("« premier »")));
    assert!(alerts.iter().any(|m| m.text.contains("1 nouveau commentaire ")
        && m.text.contains("« troisième »")
        && !m.text.contains("« premier »")));

    // Avis come back on the 22nd (re-armed), then stop again: a new alert naming the 22nd.
    votes_store.store_batch(&spread(4343, "site", "2026-11-22", 1, 1, |_| Level::Good)).await.unwrap();
    assert_eq!(run_at(&server, &smtp, "2026-11-22T12:00:00Z"), 0);
    // (4344's button stopped on the 19th too: its own first alert.)
    assert_eq!(run_at(&server, &smtp, "2026-11-26T09:00:00Z"), 2);
    assert_eq!(sent(&maildir, &email, "Bouton silencieux : « Démarche qui déçoit »").len(), 1);
    let silent = sent(&maildir, &email, "Bouton silencieux : « Démarche au bouton muet »");
    assert_eq!(silent.len(), 2, "{silent:?}");
    assert!(silent.iter().any(|m| m.text.contains("22 novembre 2026")), "{silent:?}");

    // « Code à intégrer » shows the same state beside each source, as of today: « vitrine »
    // received 4 avis a day until 5 days ago.
    let today = Utc::now().with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let first = today - Duration::days(30);
    votes_store.store_batch(&spread(4343, "vitrine", &first.to_string(), 26, 4, |_| Level::Good)).await.unwrap();
    let page = b.get("/console/demarches/4343/code").await;
    let since = (today - Duration::days(4)).format("%d/%m/%Y").to_string();
    assert!(page.body.contains(&format!("silencieux depuis le {since}")), "{}", page.body);
    assert_eq!(page.body.matches("silencieux depuis le").count(), 1, "only « vitrine »");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_alerts() {
    let (tmp, url) = Server::sqlite_dir();
    alerts(&url, tmp.path(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_alerts() {
    let url = common::fresh_pg_database("notification_alerts").await;
    let tmp = tempfile::tempdir().unwrap();
    alerts(&url, tmp.path(), "postgres").await;
}
