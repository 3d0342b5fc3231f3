//! E-mail: every message is first written to `email_outbox` (so none is lost when the mail
//! server is down or the process stops), then handed to SMTP by lettre when `--smtp-url` is set.
//! Without it, the outbox is the mailbox: a laptop install needs no mail server, and
//! `widget-server email list` prints what was "sent".
//!
//! Once SMTP has taken a message, its body (which may hold a single-use link) is emptied in the
//! outbox. Logs name the outbox id and the kind of message, never the recipient or the body.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::store::ConsoleStore;
use crate::store::StoreError;

/// A message to send: plain French text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub body: String,
}

/// How long an SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often unsent mail is retried.
pub const RETRY_EVERY: Duration = Duration::from_secs(30);
/// A mail claimed by a sender for this long without an outcome (the sender died) is retried.
const CLAIM_STALE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The mail backend, chosen at start.
pub struct Mailer {
    store: Arc<dyn ConsoleStore>,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// Print every mail, body included, to the log (`--log-emails`: a laptop without SMTP).
    to_log: bool,
}

impl Mailer {
    /// With `smtp_url` (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://host:465`), messages go out through it; without, they stay in the outbox.
    /// With `to_log`, each mail is also printed whole to the log (see [`crate::config::LogEmails`]).
    pub fn new(
        store: Arc<dyn ConsoleStore>,
        smtp_url: Option<&str>,
        from: &str,
        to_log: bool,
    ) -> anyhow::Result<Mailer> {
        let from: Mailbox = from.parse().map_err(|e| anyhow::anyhow!("--smtp-from {from:?} is not an address: {e}"))?;
        let smtp = match smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("--smtp-url is not a valid SMTP URL: {e}"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => None,
        };
        Ok(Mailer { store, smtp, from, to_log })
    }

    /// Whether messages leave through SMTP.
    pub fn uses_smtp(&self) -> bool {
        self.smtp.is_some()
    }

    /// Queues `mail` to `to` and, with SMTP, starts delivering it. Returns once it is in the
    /// outbox.
    pub async fn send(self: &Arc<Self>, to: &str, mail: Email) -> Result<(), StoreError> {
        if self.to_log {
            // Asked for (a laptop, or an operator's explicit --log-emails yes): the whole mail,
            // links included, so that a newcomer follows them from the terminal.
            tracing::info!(
                "e-mail to {to}\nSubject: {}\n\n{}\n-- end of e-mail (--log-emails; --smtp-url sends them)",
                mail.subject,
                mail.body
            );
        }
        let id = self.store.queue_email(to.to_string(), mail.subject, mail.body, Utc::now()).await?;
        if self.smtp.is_some() {
            let me = self.clone();
            tokio::spawn(async move { me.deliver(id).await });
        } else if !self.to_log {
            // The subject may hold a démarche's name, typed by a porteur: the id is enough.
            tracing::info!(mail_id = id, "no --smtp-url: e-mail kept in email_outbox (widget-server email list)");
        }
        Ok(())
    }

    /// Sends outbox mail `id` if nobody else is sending it (at once, with SMTP; otherwise it
    /// stays in the outbox).
    pub async fn deliver(&self, id: i64) {
        let Some(smtp) = &self.smtp else { return };
        let now = Utc::now();
        let mail = match self.store.claim_email(id, now, now - CLAIM_STALE).await {
            Ok(Some(mail)) => mail,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(mail_id = id, error = %e, "cannot claim an e-mail for sending");
                return;
            }
        };
        let message = match mail.to.parse::<Mailbox>().map_err(|e| e.to_string()).and_then(|to| {
            let mut builder = Message::builder().from(self.from.clone()).to(to).subject(mail.subject);
            if let Some(url) = &mail.unsubscribe {
                // RFC 8058: the mail client's one-click POST reaches /desabonnement with no log-in.
                builder = builder
                    .raw_header(HeaderValue::new(
                        HeaderName::new_from_ascii_str("List-Unsubscribe"),
                        format!("<{url}>"),
                    ))
                    .raw_header(HeaderValue::new(
                        HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                        "List-Unsubscribe=One-Click".to_string(),
                    ));
            }
            match mail.html {
                Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.body, html)),
                None => builder.header(ContentType::TEXT_PLAIN).body(mail.body),
            }
            .map_err(|e| e.to_string())
        }) {
            Ok(m) => m,
            Err(e) => {
                // Addresses are validated before they are stored; this cannot be retried anyway.
                tracing::error!(mail_id = id, error = %e, "e-mail cannot be built; left unsent");
                return;
            }
        };
        match smtp.send(message).await {
            Ok(_) => {
                if let Err(e) = self.store.mark_email_sent(id, Utc::now()).await {
                    tracing::warn!(mail_id = id, error = %e, "e-mail sent but not marked sent");
                }
                tracing::info!(mail_id = id, "e-mail sent");
            }
            Err(e) if e.is_permanent() => {
                // Left claimed: retried only once the claim is stale, not every few seconds.
                tracing::warn!(mail_id = id, error = %e, "SMTP refused the e-mail; retrying later");
            }
            Err(e) => {
                tracing::warn!(mail_id = id, error = %e, "SMTP delivery failed; will retry");
                let _ = self.store.mark_email_failed(id, e.to_string()).await;
            }
        }
    }

    /// Retries unsent mail every [`RETRY_EVERY`], for ever (with SMTP only).
    pub async fn retry_unsent(self: Arc<Self>) {
        if self.smtp.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(RETRY_EVERY);
        loop {
            tick.tick().await;
            match self.store.unsent_emails(Utc::now() - CLAIM_STALE, 100).await {
                Ok(ids) => {
                    for id in ids {
                        self.deliver(id).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list unsent e-mail"),
            }
        }
    }
}
