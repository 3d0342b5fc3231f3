//! E-mail: every message is first written to `email_outbox` (so none is lost when the mail
//! server is down or the process stops), then handed to SMTP by lettre when `--smtp-url` is set.
//! Without it, the outbox is the mailbox: a laptop install needs no mail server, and
//! `widget-server email list` prints what was "sent".
//!
//! Once SMTP has taken a message, its body (which may hold a single-use link) is emptied in the
//! outbox. Logs name the outbox id and the kind of message, never the recipient or the body.
//!
//! A failed attempt is tried again after a wait that doubles from a minute to at most an hour
//! ([`after_failure`]); [`GIVE_UP_AFTER`] (3 days) after the mail was queued (or resent) the
//! next failure gives it up: it stays in the outbox, is counted in
//! `monavis_emails_given_up_total`, and administrators see it on `/console/admin` with
//! « Renvoyer », which starts its retries again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::store::{ConsoleStore, EmailRetry};
use crate::metrics::Metrics;
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
/// The first wait after a failed attempt; each further failure doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// The longest wait between two attempts.
const MAX_BACKOFF: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// How long a mail is tried before it is given up.
pub const GIVE_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(3);
/// How often the outbox's counts are read for the metrics.
const STATS_EVERY: Duration = Duration::from_secs(15);

/// What follows the failure, at `now`, of attempt number `attempts` of a mail whose retries
/// began at `since`: the next attempt after a wait that doubles from [`FIRST_BACKOFF`] to
/// [`MAX_BACKOFF`] (the last one at `since` + [`GIVE_UP_AFTER`] at the latest), or, once that
/// time has come, giving up.
pub fn after_failure(attempts: i32, since: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) -> EmailRetry {
    let deadline = since + GIVE_UP_AFTER;
    if now >= deadline {
        return EmailRetry::GiveUp(now);
    }
    let doublings = attempts.saturating_sub(1).clamp(0, 16) as u32;
    let wait = (FIRST_BACKOFF * 2i32.pow(doublings)).min(MAX_BACKOFF);
    EmailRetry::At((now + wait).min(deadline))
}

/// The mail backend, chosen at start.
pub struct Mailer {
    store: Arc<dyn ConsoleStore>,
    metrics: Arc<Metrics>,
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
        metrics: Arc<Metrics>,
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
        Ok(Mailer { store, metrics, smtp, from, to_log })
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
        let (attempts, since) = (mail.attempts, mail.retry_since);
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
                // Addresses are validated before they are stored; no retry could change this.
                tracing::error!(mail_id = id, error = %e, "e-mail cannot be built; given up");
                self.failed(id, format!("message not built: {e}"), EmailRetry::GiveUp(Utc::now())).await;
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
            Err(e) => {
                // Permanent refusals (5xx) are tried again too: a mail server misconfigured for
                // an hour answers 5xx as well, and the mail may be a password reset.
                let now = Utc::now();
                let retry = after_failure(attempts, since, now);
                match retry {
                    EmailRetry::At(at) => tracing::warn!(
                        mail_id = id, attempts, error = %e, permanent = e.is_permanent(),
                        next_attempt = %at.format("%Y-%m-%dT%H:%M:%SZ"), "SMTP delivery failed; will retry"
                    ),
                    EmailRetry::GiveUp(_) => tracing::error!(
                        mail_id = id, attempts, error = %e,
                        "SMTP delivery failed for 3 days; e-mail given up (administrators can send it again from /console/admin)"
                    ),
                }
                self.failed(id, e.to_string(), retry).await;
            }
        }
    }

    /// Records a failed attempt, in the outbox and the metrics.
    async fn failed(&self, id: i64, error: String, retry: EmailRetry) {
        self.metrics.email_send_failures.inc();
        if matches!(retry, EmailRetry::GiveUp(_)) {
            self.metrics.emails_given_up.inc();
        }
        if let Err(e) = self.store.mark_email_failed(id, error, retry).await {
            tracing::warn!(mail_id = id, error = %e, "cannot record a failed e-mail attempt");
        }
    }

    /// « Renvoyer »: tries a given-up mail again now, and from now on as a new one. False if
    /// it was not given up.
    pub async fn resend(self: &Arc<Self>, id: i64) -> Result<bool, StoreError> {
        if !self.store.resend_email(id, Utc::now()).await? {
            return Ok(false);
        }
        if self.smtp.is_some() {
            let me = self.clone();
            tokio::spawn(async move { me.deliver(id).await });
        }
        Ok(true)
    }

    /// Retries unsent mail every [`RETRY_EVERY`], for ever (with SMTP only): those due, oldest
    /// first.
    pub async fn retry_unsent(self: Arc<Self>) {
        if self.smtp.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(RETRY_EVERY);
        loop {
            tick.tick().await;
            let now = Utc::now();
            match self.store.unsent_emails(now, now - CLAIM_STALE, 100).await {
                Ok(ids) => {
                    for id in ids {
                        self.deliver(id).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list unsent e-mail"),
            }
        }
    }

    /// Keeps the outbox's gauges current (with SMTP only: without it every mail stays in the
    /// outbox by design, and nothing waits to be sent).
    pub async fn outbox_metrics(self: Arc<Self>) {
        if self.smtp.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(STATS_EVERY);
        loop {
            tick.tick().await;
            match self.store.outbox_stats().await {
                Ok(stats) => {
                    let age = stats.oldest_waiting.map_or(0, |t| (Utc::now() - t).num_seconds().max(0));
                    self.metrics.emails_waiting.set(stats.waiting);
                    self.metrics.emails_oldest_waiting_seconds.set(age);
                    self.metrics.emails_undelivered.set(stats.given_up);
                }
                Err(e) => tracing::warn!(error = %e, "cannot count the e-mail outbox"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    #[test]
    fn retries_back_off_then_give_up_after_three_days() {
        let since = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let waits: Vec<TimeDelta> = (1..=9)
            .map(|attempt| match after_failure(attempt, since, since) {
                EmailRetry::At(t) => t - since,
                EmailRetry::GiveUp(_) => panic!("given up at once"),
            })
            .collect();
        let minutes: Vec<i64> = waits.iter().map(|w| w.num_minutes()).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60], "doubling from a minute, at most an hour");
        assert_eq!(after_failure(1000, since, since), EmailRetry::At(since + TimeDelta::hours(1)));

        // The last attempt falls on the deadline itself; a failure from then on gives up.
        let deadline = since + TimeDelta::days(3);
        let late = deadline - TimeDelta::minutes(10);
        assert_eq!(after_failure(80, since, late), EmailRetry::At(deadline));
        assert_eq!(after_failure(81, since, deadline), EmailRetry::GiveUp(deadline));
        let later = deadline + TimeDelta::hours(5);
        assert_eq!(after_failure(2, since, later), EmailRetry::GiveUp(later));

        // Attempts over 3 days, failing every time: about one an hour once the backoff is at
        // its cap, so some 75, not the 8,640 of a retry every 30 seconds.
        let (mut now, mut attempts) = (since, 1);
        while let EmailRetry::At(next) = after_failure(attempts, since, now) {
            assert!(next > now);
            now = next;
            attempts += 1;
        }
        assert_eq!(now, deadline);
        assert!((70..=80).contains(&attempts), "{attempts} attempts");
    }
}
