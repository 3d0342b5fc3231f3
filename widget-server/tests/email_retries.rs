//! E-mail retries end (issue 23): a mail the SMTP server keeps refusing is retried with backoff
//! and given up 3 days after it was queued; it is counted in `/metrics`, listed on
//! `/console/admin` under « E-mails non remis », and « Renvoyer » sends it. Over real sockets,
//! against a small SMTP server of the test's own that refuses or accepts on demand.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::browser::{confirm_link, link, Browser};
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// An SMTP server that answers `421` to every connection while `refusing`, and otherwise
/// takes every message (kept whole in `received`).
#[derive(Clone, Default)]
struct FakeSmtp {
    refusing: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<String>>>,
}

impl FakeSmtp {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let me = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let _ = me.session(stream).await;
                });
            }
        });
        url
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        if self.refusing.load(Ordering::SeqCst) {
            write.write_all(b"421 4.3.2 Service indisponible, essayez plus tard\r\n").await?;
            return Ok(());
        }
        write.write_all(b"220 fake ESMTP\r\n").await?;
        let mut lines = BufReader::new(read).lines();
        let (mut in_data, mut message) = (false, String::new());
        while let Some(line) = lines.next_line().await? {
            if in_data {
                if line == "." {
                    in_data = false;
                    self.received.lock().unwrap().push(std::mem::take(&mut message));
                    write.write_all(b"250 2.0.0 OK\r\n").await?;
                } else {
                    message.push_str(&line);
                    message.push('\n');
                }
                continue;
            }
            let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            let answer: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 fake\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 Go ahead\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 Bye\r\n").await?;
                    return Ok(());
                }
                _ => b"250 OK\r\n",
            };
            write.write_all(answer).await?;
        }
        Ok(())
    }

    fn messages_to(&self, to: &str) -> Vec<String> {
        let header = format!("To: {to}");
        self.received.lock().unwrap().iter().filter(|m| m.lines().any(|l| l == header)).cloned().collect()
    }

    /// Waits (up to 15 s) for a message to `to` holding `needle`.
    async fn wait_for(&self, to: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(m) = self.messages_to(to).into_iter().find(|m| m.contains(needle)) {
                return m;
            }
            assert!(Instant::now() < deadline, "no message to {to} with {needle:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn wait_metric(server: &Server, name: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.metric(name).await < at_least {
        assert!(Instant::now() < deadline, "{name} never reached {at_least}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_refused_for_three_days_is_given_up_shown_and_resent() {
    let smtp = FakeSmtp::default();
    smtp.refusing.store(true, Ordering::SeqCst);
    let smtp_url = smtp.start().await;
    let (tmp, db_url) = Server::sqlite_dir();
    cli(tmp.path(), &db_url, &["migrate"]);
    // Queued 3 days and a minute ago (its earlier attempts failed while the server was down),
    // and one queued a minute ago.
    let ago = |minutes: i64| (chrono::Utc::now() - chrono::Duration::minutes(minutes)).format("%Y-%m-%dT%H:%M:%S%.3fZ");
    exec_sql(
        &db_url,
        &format!(
            "INSERT INTO email_outbox (to_address, subject, body, created_at, attempts) \
             VALUES ('lent@exemple.gouv.fr', 'Votre démarche', 'Bonjour, texte du message.', '{}', 70); \
             INSERT INTO email_outbox (to_address, subject, body, created_at) \
             VALUES ('recent@exemple.gouv.fr', 'Message récent', 'Bonjour.', '{}');",
            ago(3 * 24 * 60 + 1),
            ago(1)
        ),
    )
    .await;
    let server = Server::start_logged(tmp.path(), &db_url, &["--smtp-url", &smtp_url]);

    // At start the retry pass tries both: refused. The old one is given up, the recent one
    // waits a minute for its next attempt.
    wait_metric(&server, "monavis_emails_given_up_total", 1.0).await;
    wait_metric(&server, "monavis_email_send_failures_total", 2.0).await;
    let state = |to: &'static str| {
        let path = db_url.strip_prefix("sqlite://").unwrap().to_string();
        move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.query_row(
                "SELECT given_up_at IS NOT NULL, next_attempt_at, last_error, sent_at IS NOT NULL FROM email_outbox \
                 WHERE to_address = ?1",
                [to],
                |r| {
                    Ok((
                        r.get::<_, bool>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                },
            )
            .unwrap()
        }
    };
    let (given_up, next, error, sent) = state("lent@exemple.gouv.fr")();
    assert!(given_up && next.is_none() && !sent);
    assert!(error.contains("421"), "{error}");
    let (given_up, next, _, _) = state("recent@exemple.gouv.fr")();
    assert!(!given_up);
    let next = chrono::DateTime::parse_from_rfc3339(&next.expect("a next attempt")).unwrap();
    let wait = next.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(wait > chrono::Duration::seconds(40) && wait <= chrono::Duration::seconds(60), "backoff {wait}");
    assert!(server.log().contains("e-mail given up"), "the log says so");

    // The mail server is back. An administrator signs up (the mail of this new sign-up is
    // sent at once) and sees the given-up mail on /console/admin.
    smtp.refusing.store(false, Ordering::SeqCst);
    let admin = "admin.courriel@exemple.gouv.fr";
    let mut b = Browser::new(&server);
    let fields = [("nom", "Alice Admin"), ("email", admin), ("administration", "Direction des tests")];
    assert_eq!(b.submit("/inscription", "/inscription", &fields).await.location(), "/inscription/envoyee");
    let mail = smtp.wait_for(admin, "/confirmation?").await;
    let page = confirm_link(
        &mut b,
        &link(&mail.replace("=\n", "").replace("=3D", "="), "/confirmation"),
        None,
        "un mot de passe assez long",
    )
    .await;
    assert_eq!(page.location(), "/connexion?info=adresse-confirmee");
    cli(tmp.path(), &db_url, &["account", "admin", admin]);
    b.log_in(admin, "un mot de passe assez long").await;
    let page = b.get("/console/admin").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("E-mails non remis"), "{}", page.body);
    let section = page.body.split("E-mails non remis").nth(1).unwrap();
    assert!(section.contains("lent@exemple.gouv.fr") && section.contains("Votre démarche"));
    assert!(!section.contains("recent@exemple.gouv.fr"), "a mail still tried is not listed");
    assert!(section.contains("421"), "its last error is shown");
    let id: i64 = {
        let at = section.find("/console/admin/courriels/").unwrap() + "/console/admin/courriels/".len();
        section[at..].split('/').next().unwrap().parse().unwrap()
    };

    // « Renvoyer »: sent at once, gone from the list, audited.
    let page = b.post(&format!("/console/admin/courriels/{id}/renvoyer"), &[]).await;
    assert_eq!(page.location(), "/console/admin?info=courriel-renvoye");
    smtp.wait_for("lent@exemple.gouv.fr", "texte du message").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !state("lent@exemple.gouv.fr")().3 {
        assert!(Instant::now() < deadline, "the resent mail is never marked sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = b.get("/console/admin?info=courriel-renvoye").await;
    assert!(page.body.contains("L'e-mail est renvoyé"));
    assert!(!page.body.contains("E-mails non remis"), "nothing left undelivered");
    assert!(page.body.contains("email.resend"), "audited");
    // A second « Renvoyer » (another tab) changes nothing.
    let page = b.post(&format!("/console/admin/courriels/{id}/renvoyer"), &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(smtp.messages_to("lent@exemple.gouv.fr").len(), 1, "sent once");
    // Someone not signed in cannot resend.
    let mut other = Browser::new(&server);
    assert_eq!(other.post(&format!("/console/admin/courriels/{id}/renvoyer"), &[]).await.status, 403);
}
