//! Notifications (DESIGN §15): the console comes to porteurs who do not live in it.
//!
//! [`Notifier::run`] sends what is due at a given instant, once: `serve` calls it every minute,
//! `widget-server notifications run [--at …]` once. Exactly once rests on the store: every mail
//! due is recorded under (account, kind, démarche, period) in the transaction that queues it in
//! the outbox ([`ConsoleStore::record_notification`]); a second replica, or a run after a
//! restart, finds the key taken and queues nothing, and the outbox retries a failed send.
//!
//! Unsubscribe links carry `{account}.{kind}.{HMAC}`: derived from the server secret, so nothing
//! is stored at all (there is no table of tokens to leak); a link can only ever turn one kind
//! of mail off for one account, which is exactly what anyone holding the mail may do.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Timelike, Utc, Weekday};
use hmac::{Hmac, Mac};
use maud::{html, Markup, DOCTYPE};
use sha2::Sha256;

use super::emails;
use super::mail::Mailer;
use super::store::{
    Comment, ConsoleStore, DigestFrequency, DigestLine, DueNotification, SourceWindow, Subscription, Switches,
};
use crate::stats::{index_text, indicative, Counts};
use crate::store::StoreError;
use crate::vote::paris_midnight;

type HmacSha256 = Hmac<Sha256>;

/// Digests are sent from this hour, Europe/Paris.
pub const DIGEST_HOUR: u32 = 8;
/// A source averaging this many avis a week over 4 weeks is expected to keep receiving some.
const SILENT_WEEKLY_AVIS: i64 = 20;
/// « Nouveaux commentaires » waits this long after the newest comment…
const COMMENT_QUIET: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// …and this long after the previous alert.
const COMMENT_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(2);
/// The first alert lists the comments of this last while at most.
const COMMENT_FIRST_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// At most this many comments in one alert (the console has the rest).
const COMMENT_LIST: i64 = 20;
/// How many of the latest comments a digest quotes per démarche.
const LATEST_COMMENTS: i64 = 3;

/// What a notification is about; its name is stored in `notification.kind` and carried by
/// unsubscribe links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// « Synthèse »: the digest.
    Synthese,
    /// « Nouveaux commentaires ».
    Commentaires,
    /// « Baisse de satisfaction ».
    Baisse,
    /// « Bouton silencieux ».
    Silencieux,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Synthese, Kind::Commentaires, Kind::Baisse, Kind::Silencieux];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Synthese => "synthese",
            Kind::Commentaires => "commentaires",
            Kind::Baisse => "baisse",
            Kind::Silencieux => "silencieux",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What the unsubscribe page calls it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Synthese => "la synthèse des avis",
            Kind::Commentaires => "les alertes « Nouveaux commentaires »",
            Kind::Baisse => "les alertes « Baisse de satisfaction »",
            Kind::Silencieux => "les alertes « Bouton silencieux »",
        }
    }
}

/// A digest's period: Paris days `from` to `to` inclusive, compared with `previous_from` to the
/// day before `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub previous_from: NaiveDate,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// The key of the period in `notification.period`: an ISO 8601 interval of days.
    pub fn key(&self) -> String {
        format!("{}/{}", self.from, self.to)
    }
}

/// The period whose `frequency` digest is due at `at`: on its sending day (the day after it
/// ends: every day, Mondays, the 1st), from [`DIGEST_HOUR`] in Paris, whatever the UTC offset
/// of that day. A run later that day still sends it (a restart at 08:00 loses nothing); the next
/// day it is no longer due, so an account that switches frequency never receives an old one.
pub fn digest_period(frequency: DigestFrequency, at: DateTime<Utc>) -> Option<Period> {
    let local = at.with_timezone(&chrono_tz::Europe::Paris);
    if local.hour() < DIGEST_HOUR {
        return None;
    }
    let today = local.date_naive();
    let to = today.pred_opt()?;
    match frequency {
        DigestFrequency::Aucune => None,
        DigestFrequency::Quotidienne => Some(Period { previous_from: to.pred_opt()?, from: to, to }),
        DigestFrequency::Hebdomadaire => {
            (today.weekday() == Weekday::Mon).then_some(())?;
            let from = today.checked_sub_days(Days::new(7))?;
            Some(Period { previous_from: from.checked_sub_days(Days::new(7))?, from, to })
        }
        DigestFrequency::Mensuelle => {
            (today.day() == 1).then_some(())?;
            let from = to.with_day(1)?;
            Some(Period { previous_from: from.pred_opt()?.with_day(1)?, from, to })
        }
    }
}

/// The days of the silent-button check on `today` (Paris): the 4 weeks before, from `from` to
/// the day before `split`, and the last 3 days and today, from `split` to `today`.
pub fn silent_window(today: NaiveDate) -> (NaiveDate, NaiveDate, NaiveDate) {
    let days = |n: u64| today.checked_sub_days(Days::new(n)).unwrap_or(today);
    (days(31), days(3), today)
}

/// Whether a source is silent (≥ 20 avis a week over the 4 weeks before, none since): the
/// day of its last avis then.
pub fn silent_since(window: &SourceWindow) -> Option<NaiveDate> {
    (window.after.n == 0 && window.before.n >= 4 * SILENT_WEEKLY_AVIS).then_some(window.last_day)
}

/// What one run sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Mails queued by this run, by kind.
    pub sent: BTreeMap<&'static str, u64>,
}

/// Sends the notifications due.
pub struct Notifier {
    store: Arc<dyn ConsoleStore>,
    mailer: Arc<Mailer>,
    public_url: String,
    operator: String,
    unsubscribe: UnsubscribeKey,
}

/// Signs and checks unsubscribe tokens: `{account}.{kind}.{HMAC}`, nothing stored.
#[derive(Clone)]
pub struct UnsubscribeKey(HmacSha256);

impl UnsubscribeKey {
    /// A key of its own, derived like the cookie keys: HMAC(secret, purpose).
    pub fn new(secret: &[u8]) -> UnsubscribeKey {
        let key = HmacSha256::new_from_slice(secret)
            .map(|m| m.chain_update(b"monavis unsubscribe link").finalize().into_bytes())
            .unwrap_or_default();
        UnsubscribeKey(HmacSha256::new_from_slice(&key).unwrap_or_else(|_| unreachable!()))
    }

    /// The token of `account`'s link turning `kind` off.
    pub fn token(&self, account_id: i64, kind: Kind) -> String {
        let payload = format!("{account_id}.{}", kind.as_str());
        let mac = self.0.clone().chain_update(payload.as_bytes()).finalize().into_bytes();
        format!("{payload}.{}", hex::encode(mac))
    }

    /// The account and kind of a genuine token (the MAC compared in constant time).
    pub fn verify(&self, token: &str) -> Option<(i64, Kind)> {
        let (payload, mac) = token.rsplit_once('.')?;
        let (account, kind) = payload.split_once('.')?;
        let (account, kind) = (account.parse::<i64>().ok()?, Kind::parse(kind)?);
        let mut expected = [0u8; 32];
        hex::decode_to_slice(mac, &mut expected).ok()?;
        self.0.clone().chain_update(payload.as_bytes()).verify_slice(&expected).ok()?;
        Some((account, kind))
    }
}

impl Notifier {
    pub fn new(
        store: Arc<dyn ConsoleStore>,
        mailer: Arc<Mailer>,
        public_url: &str,
        operator: &str,
        secret: &[u8],
    ) -> Notifier {
        Notifier {
            store,
            mailer,
            public_url: public_url.trim_end_matches('/').to_string(),
            operator: operator.to_string(),
            unsubscribe: UnsubscribeKey::new(secret),
        }
    }

    /// The key of the unsubscribe links.
    pub fn unsubscribe_key(&self) -> &UnsubscribeKey {
        &self.unsubscribe
    }

    /// Turns `kind` off for `account_id`: the digest, or that switch on every démarche it carries.
    pub async fn turn_off(&self, account_id: i64, kind: Kind) -> Result<(), StoreError> {
        if kind == Kind::Synthese {
            return self.store.set_digest(account_id, DigestFrequency::Aucune).await;
        }
        for (demarche_id, _, s) in self.store.notification_settings(account_id).await?.demarches {
            let off = match kind {
                Kind::Commentaires => Switches { comments: false, ..s },
                Kind::Baisse => Switches { drop_alert: false, ..s },
                Kind::Silencieux | Kind::Synthese => Switches { silent: false, ..s },
            };
            self.store.set_switches(account_id, demarche_id, off).await?;
        }
        Ok(())
    }

    /// For `widget-server notifications run`: the store, outbox and SMTP `serve` would use.
    pub async fn for_command(config: &crate::config::Config, secret: &[u8]) -> anyhow::Result<Notifier> {
        let settings = super::Settings::from_config(config);
        let store = super::store::open(&config.database_url()).await?;
        let from = config.smtp_from.clone().unwrap_or_else(|| super::default_from(&settings));
        let to_log = matches!(config.log_emails, crate::config::LogEmails::Yes);
        // A one-shot command: its own metrics, which nobody scrapes.
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let mailer = Arc::new(Mailer::new(store.clone(), metrics, config.smtp_url.as_deref(), &from, to_log)?);
        Ok(Notifier::new(store, mailer, &settings.public_url, &settings.operator_name, secret))
    }

    /// `serve`'s scheduler: a run at the start of every minute, for ever. Replicas all run it;
    /// the store's unique keys make each mail go once.
    pub async fn every_minute(self: Arc<Self>, metrics: Arc<crate::metrics::Metrics>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            match self.run(Utc::now()).await {
                Ok(report) => {
                    metrics.notifications_run(&report.sent, started.elapsed().as_secs_f64());
                    if !report.sent.is_empty() {
                        tracing::info!(sent = ?report.sent, "notifications sent");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "notifications: run failed; retried next minute"),
            }
        }
    }

    /// Sends every notification due at `at` that no run has sent yet, and waits for the
    /// deliveries it started (a mail SMTP refuses stays in the outbox, retried as any other).
    pub async fn run(&self, at: DateTime<Utc>) -> Result<RunReport, StoreError> {
        let mut report = RunReport::default();
        for frequency in [DigestFrequency::Quotidienne, DigestFrequency::Hebdomadaire, DigestFrequency::Mensuelle] {
            if let Some(period) = digest_period(frequency, at) {
                let n = self.digests(frequency, period, at).await?;
                *report.sent.entry(Kind::Synthese.as_str()).or_default() += n;
            }
        }
        let comments = self.comment_alerts(at).await?;
        *report.sent.entry(Kind::Commentaires.as_str()).or_default() += comments;
        if at.minute() == 0 {
            let (drops, silences) = self.day_alerts(at).await?;
            *report.sent.entry(Kind::Baisse.as_str()).or_default() += drops;
            *report.sent.entry(Kind::Silencieux.as_str()).or_default() += silences;
        }
        report.sent.retain(|_, n| *n > 0);
        Ok(report)
    }

    /// « Baisse de satisfaction » and « Bouton silencieux », checked at the start of every hour
    /// (they are about days): two statements over `avis_daily` for every carried démarche, one
    /// for the subscriptions, one per kind for the alerts disarmed; then one transaction per mail.
    async fn day_alerts(&self, at: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
        let today = at.with_timezone(&chrono_tz::Europe::Paris).date_naive();
        let days = |n: u64| today.checked_sub_days(Days::new(n)).unwrap_or(today);
        let subscriptions = self.store.subscriptions().await?;
        if subscriptions.is_empty() {
            return Ok((0, 0));
        }
        // Drop: the last 7 days (ending yesterday) against the 28 before.
        let mut windows: BTreeMap<i64, (Counts, Counts)> = BTreeMap::new();
        for w in self.store.source_windows(days(35), days(7), days(1)).await? {
            let e = windows.entry(w.demarche_id).or_default();
            e.0.add(&w.before);
            e.1.add(&w.after);
        }
        let dropped = |d: i64| -> Option<bool> {
            let (before, last) = windows.get(&d)?;
            let (before, last) = (before.satisfaction_index()?, last.satisfaction_index()?);
            let n = windows.get(&d)?.1.n;
            (!indicative(n)).then_some(last <= before - 1.0)
        };
        let mut drops = 0;
        let disarmed: Vec<(i64, i64, String)> = self.store.disarmed_alerts(Kind::Baisse.as_str().into()).await?;
        for (account, d, source) in &disarmed {
            if dropped(*d) == Some(false) {
                self.store.rearm_alert(*account, Kind::Baisse.as_str().into(), *d, source.clone()).await?;
            }
        }
        for sub in subscriptions.iter().filter(|s| s.switches.drop_alert) {
            if dropped(sub.demarche_id) != Some(true)
                || disarmed.iter().any(|(a, d, _)| (*a, *d) == (sub.account_id, sub.demarche_id))
            {
                continue;
            }
            let Some((before, last)) = windows.get(&sub.demarche_id) else { continue };
            let name = emails::demarche(&sub.demarche_name, sub.demarche_id);
            let text = format!(
                "L'indice de satisfaction de {name} est de {} /10 sur les 7 derniers jours ({} avis), contre {} /10 sur les 28 jours précédents ({} avis).",
                last.satisfaction_index().map(index_text).unwrap_or_default(),
                last.n,
                before.satisfaction_index().map(index_text).unwrap_or_default(),
                before.n
            );
            let link = format!("{}/console/demarches/{}/satisfaction", self.public_url, sub.demarche_id);
            let due = self.alert(
                sub,
                Kind::Baisse,
                format!("Baisse de satisfaction : {name}"),
                text,
                ("Voir le tableau de bord", link),
                today.to_string(),
                String::new(),
                today,
            );
            if let Some(id) = self.store.record_notification(due, at).await? {
                self.mailer.deliver(id).await;
                drops += 1;
            }
        }

        // Silent: a source with ≥ 20 avis a week over the 4 weeks before the last 3 days, and
        // none in those 3 days and today.
        let (from, split, to) = silent_window(today);
        let silent_windows = self.store.source_windows(from, split, to).await?;
        let disarmed = self.store.disarmed_alerts(Kind::Silencieux.as_str().into()).await?;
        for (account, d, source) in &disarmed {
            if silent_windows.iter().any(|w| w.demarche_id == *d && &w.source == source && w.after.n > 0) {
                self.store.rearm_alert(*account, Kind::Silencieux.as_str().into(), *d, source.clone()).await?;
            }
        }
        let mut silences = 0;
        for w in silent_windows.iter().filter(|w| silent_since(w).is_some()) {
            for sub in subscriptions.iter().filter(|s| s.demarche_id == w.demarche_id && s.switches.silent) {
                if disarmed
                    .iter()
                    .any(|(a, d, s)| (*a, *d, s.as_str()) == (sub.account_id, w.demarche_id, w.source.as_str()))
                {
                    continue;
                }
                let name = emails::demarche(&sub.demarche_name, sub.demarche_id);
                let text = format!(
                    "Le bouton de {name} de provenance « {} » ne reçoit plus d'avis : le dernier date du {}, alors qu'il en recevait en moyenne {} par semaine les 4 semaines précédentes. Vérifiez que le code du bouton est toujours en place sur la page.",
                    w.source,
                    french_day(w.last_day),
                    w.before.n / 4
                );
                let link = format!("{}/console/demarches/{}/code", self.public_url, sub.demarche_id);
                let due = self.alert(
                    sub,
                    Kind::Silencieux,
                    format!("Bouton silencieux : {name}"),
                    text,
                    ("Voir le code à intégrer", link),
                    format!("{}@{today}", w.source),
                    w.source.clone(),
                    today,
                );
                if let Some(id) = self.store.record_notification(due, at).await? {
                    self.mailer.deliver(id).await;
                    silences += 1;
                }
            }
        }
        Ok((drops, silences))
    }

    /// « Nouveaux commentaires »: for every switch on, the comments since the last alert, once
    /// the newest is [`COMMENT_QUIET`] old and the last alert [`COMMENT_EVERY`] old. The key is
    /// the newest comment's instant: the next alert starts after it.
    async fn comment_alerts(&self, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut sent = 0;
        for watch in self.store.comment_watches().await? {
            if watch.last_sent.is_some_and(|t| t > at - COMMENT_EVERY) {
                continue;
            }
            let since = match watch.last_until.as_deref().and_then(|p| DateTime::parse_from_rfc3339(p).ok()) {
                Some(t) => t.with_timezone(&Utc) + chrono::TimeDelta::milliseconds(1),
                None => at - COMMENT_FIRST_WINDOW,
            };
            let sub = &watch.subscription;
            let until = at + chrono::TimeDelta::milliseconds(1);
            let comments = self.store.latest_comments(sub.demarche_id, since, until, None, COMMENT_LIST).await?;
            let Some(newest) = comments.first() else { continue };
            if newest.received_at > at - COMMENT_QUIET {
                continue;
            }
            let name = emails::demarche(&sub.demarche_name, sub.demarche_id);
            let n = comments.len();
            let mut text = format!(
                "{n} nouveau{} commentaire{} sur {name} :",
                if n > 1 { "x" } else { "" },
                if n > 1 { "s" } else { "" }
            );
            for c in &comments {
                text.push_str(&format!("\n« {} »", one_line(&c.text)));
            }
            let link = format!("{}/console/demarches/{}/avis?commentaire=oui", self.public_url, sub.demarche_id);
            let period = newest.received_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            let mut due = self.alert(
                sub,
                Kind::Commentaires,
                format!("Nouveaux commentaires : {name}"),
                text,
                ("Voir tous les avis", link),
                period,
                String::new(),
                at.date_naive(),
            );
            due.disarm = None;
            if let Some(id) = self.store.record_notification(due, at).await? {
                self.mailer.deliver(id).await;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// An alert's mail, recorded under (account, kind, démarche, `period`), disarming `source`.
    #[allow(clippy::too_many_arguments)]
    fn alert(
        &self,
        sub: &Subscription,
        kind: Kind,
        subject: String,
        text: String,
        (link_text, link): (&str, String),
        period: String,
        source: String,
        today: NaiveDate,
    ) -> DueNotification {
        let unsubscribe =
            format!("{}/desabonnement?jeton={}", self.public_url, self.unsubscribe.token(sub.account_id, kind));
        let settings = format!("{}/console/compte/notifications", self.public_url);
        let body = format!(
            "Bonjour,\n\n{text}\n\n{link_text} : {link}\n\nChoisir vos notifications : {settings}\nNe plus recevoir ces alertes : {unsubscribe}\n\n-- \nL'équipe {}\nCe message est envoyé automatiquement, merci de ne pas y répondre.\n",
            self.operator
        );
        let html = html! {
            (DOCTYPE)
            html lang="fr" {
                head { meta charset="utf-8"; title { (subject) } }
                body style="font-family: Marianne, Arial, sans-serif; color: #161616; line-height: 1.5" {
                    h1 style="font-size: 1.4em" { (subject) }
                    p { "Bonjour," }
                    p { (text) }
                    p { a href=(link) { (link_text) } }
                    hr;
                    p { a href=(settings) { "Choisir vos notifications" } " · " a href=(unsubscribe) { "Ne plus recevoir ces alertes" } }
                    p { "L'équipe " (self.operator) ". Ce message est envoyé automatiquement, merci de ne pas y répondre." }
                }
            }
        };
        DueNotification {
            account_id: sub.account_id,
            kind: kind.as_str().to_string(),
            demarche_id: sub.demarche_id,
            period,
            to: sub.email.clone(),
            subject,
            body,
            html: html.into_string(),
            unsubscribe,
            disarm: Some((source, today)),
        }
    }

    /// The digests of every account at `frequency` for `period`: two statements, then one
    /// transaction per mail.
    async fn digests(&self, frequency: DigestFrequency, period: Period, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let lines = self.store.digest_lines(frequency, period.previous_from, period.from, period.to).await?;
        if lines.is_empty() {
            return Ok(0);
        }
        let mut ids: Vec<i64> = lines.iter().map(|l| l.demarche_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let until = paris_midnight(period.to.succ_opt().unwrap_or(period.to));
        let mut comments: BTreeMap<i64, (i64, Vec<Comment>)> = BTreeMap::new();
        for (demarche_id, total, comment) in
            self.store.comments_in(ids, paris_midnight(period.from), until, LATEST_COMMENTS).await?
        {
            let entry = comments.entry(demarche_id).or_default();
            entry.0 = total;
            entry.1.push(comment);
        }
        let mut sent = 0;
        let mut start = 0;
        while start < lines.len() {
            let account_id = lines[start].account_id;
            let end = lines[start..].iter().position(|l| l.account_id != account_id).map_or(lines.len(), |i| start + i);
            let account_lines = &lines[start..end];
            start = end;
            let unsubscribe = format!(
                "{}/desabonnement?jeton={}",
                self.public_url,
                self.unsubscribe.token(account_id, Kind::Synthese)
            );
            let mail = digest_mail(
                &self.operator,
                &self.public_url,
                frequency,
                period,
                account_lines,
                &comments,
                &unsubscribe,
            );
            let due = DueNotification {
                account_id,
                kind: Kind::Synthese.as_str().to_string(),
                demarche_id: 0,
                period: period.key(),
                to: account_lines[0].email.clone(),
                subject: mail.subject,
                body: mail.body,
                html: mail.html.into_string(),
                unsubscribe,
                disarm: None,
            };
            if let Some(id) = self.store.record_notification(due, at).await? {
                self.mailer.deliver(id).await;
                sent += 1;
            }
        }
        Ok(sent)
    }
}

/// A notification's two parts.
pub struct NotificationMail {
    pub subject: String,
    pub body: String,
    pub html: Markup,
}

/// French day as mails write it: « 7 décembre 2026 ».
pub fn french_day(day: NaiveDate) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let day_number = if day.day() == 1 { "1er".to_string() } else { day.day().to_string() };
    format!("{day_number} {} {}", MONTHS[day.month0() as usize], day.year())
}

fn period_text(frequency: DigestFrequency, p: Period) -> String {
    match frequency {
        DigestFrequency::Quotidienne => format!("du {}", french_day(p.from)),
        _ => format!("du {} au {}", french_day(p.from), french_day(p.to)),
    }
}

/// « 8,4 /10 », marked indicative under 100 avis, or « sans réponse ».
fn index_line(line: &Counts) -> String {
    match line.satisfaction_index() {
        Some(i) if indicative(line.n) => format!("{} /10 (indicatif, moins de 100 avis)", index_text(i)),
        Some(i) => format!("{} /10", index_text(i)),
        None => "pas encore d'indice".to_string(),
    }
}

/// Change of the count and of the index against the previous period.
fn change_line(line: &DigestLine) -> String {
    let count = line.counts.n - line.previous.n;
    let mut s = format!("{count:+} avis par rapport à la période précédente ({} avis)", line.previous.n);
    if let (Some(now), Some(before)) = (line.counts.satisfaction_index(), line.previous.satisfaction_index()) {
        let delta = crate::stats::round1(now) - crate::stats::round1(before);
        s.push_str(&format!(", indice {}{}", if delta < 0.0 { "-" } else { "+" }, index_text(delta.abs())));
    }
    s
}

/// The digest of one account.
fn digest_mail(
    operator: &str,
    public_url: &str,
    frequency: DigestFrequency,
    period: Period,
    lines: &[DigestLine],
    comments: &BTreeMap<i64, (i64, Vec<Comment>)>,
    unsubscribe: &str,
) -> NotificationMail {
    let when = period_text(frequency, period);
    let total: i64 = lines.iter().map(|l| l.counts.n).sum();
    let subject = format!("Synthèse des avis {when} : {total} avis");
    let settings = format!("{public_url}/console/compte/notifications");
    let mut body = format!("Bonjour,\n\nVoici les avis reçus {when} sur les démarches que vous portez.\n");
    for l in lines {
        let (n_comments, latest) = comments.get(&l.demarche_id).map_or((0, &[][..]), |(n, c)| (*n, c.as_slice()));
        body.push_str(&format!(
            "\n{}\n- {} avis\n- Satisfaction : {}\n- {}\n- {} commentaire{}\n",
            emails::demarche(&l.demarche_name, l.demarche_id),
            l.counts.n,
            index_line(&l.counts),
            change_line(l),
            n_comments,
            if n_comments > 1 { "s" } else { "" }
        ));
        for c in latest {
            body.push_str(&format!("  « {} »\n", one_line(&c.text)));
        }
        body.push_str(&format!("Tableau de bord : {public_url}/console/demarches/{}/satisfaction\n", l.demarche_id));
    }
    body.push_str(&format!(
        "\nChoisir vos notifications : {settings}\nNe plus recevoir cette synthèse : {unsubscribe}\n\n-- \nL'équipe {operator}\nCe message est envoyé automatiquement, merci de ne pas y répondre.\n"
    ));
    let html = html! {
        (DOCTYPE)
        html lang="fr" {
            head { meta charset="utf-8"; title { (subject) } }
            body style="font-family: Marianne, Arial, sans-serif; color: #161616; line-height: 1.5" {
                h1 style="font-size: 1.4em" { "Synthèse des avis " (when) }
                p { "Bonjour, voici les avis reçus " (when) " sur les démarches que vous portez." }
                @for l in lines {
                    @let (n_comments, latest) = comments.get(&l.demarche_id).map_or((0, &[][..]), |(n, c)| (*n, c.as_slice()));
                    h2 style="font-size: 1.2em" { (emails::demarche(&l.demarche_name, l.demarche_id)) }
                    ul {
                        li { (l.counts.n) " avis" }
                        li { "Satisfaction\u{a0}: " (index_line(&l.counts)) }
                        li { (change_line(l)) }
                        li { (n_comments) " commentaire" @if n_comments > 1 { "s" } }
                    }
                    @if !latest.is_empty() {
                        h3 style="font-size: 1em" { "Derniers commentaires" }
                        @for c in latest { blockquote { p { (c.text) } } }
                    }
                    p { a href={ (public_url) "/console/demarches/" (l.demarche_id) "/satisfaction" } { "Tableau de bord de " (emails::demarche(&l.demarche_name, l.demarche_id)) } }
                }
                hr;
                p { a href=(settings) { "Choisir vos notifications" } " · " a href=(unsubscribe) { "Ne plus recevoir cette synthèse" } }
                p { "L'équipe " (operator) ". Ce message est envoyé automatiquement, merci de ne pas y répondre." }
            }
        }
    };
    NotificationMail { subject, body, html }
}

/// A comment on one line of a plain-text mail.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn digests_are_due_from_eight_in_paris_across_dst() {
        // Monday 26 October 2026, the day after summer time ended: 08:00 in Paris is 07:00 UTC.
        assert_eq!(digest_period(DigestFrequency::Hebdomadaire, at("2026-10-26T06:59:00Z")), None);
        let week = digest_period(DigestFrequency::Hebdomadaire, at("2026-10-26T07:00:00Z"));
        assert_eq!(week, Some(Period { previous_from: d("2026-10-12"), from: d("2026-10-19"), to: d("2026-10-25") }));
        // Monday 30 March 2026, after summer time began: 08:00 in Paris is 06:00 UTC.
        assert!(digest_period(DigestFrequency::Hebdomadaire, at("2026-03-30T06:00:00Z")).is_some());
        assert!(digest_period(DigestFrequency::Hebdomadaire, at("2026-03-30T05:59:00Z")).is_none());
        // Not on a Tuesday, nor the next day for a month.
        assert!(digest_period(DigestFrequency::Hebdomadaire, at("2026-10-27T09:00:00Z")).is_none());
        let month = digest_period(DigestFrequency::Mensuelle, at("2026-03-01T07:00:00Z"));
        assert_eq!(month, Some(Period { previous_from: d("2026-01-01"), from: d("2026-02-01"), to: d("2026-02-28") }));
        assert!(digest_period(DigestFrequency::Mensuelle, at("2026-03-02T07:00:00Z")).is_none());
        let day = digest_period(DigestFrequency::Quotidienne, at("2026-12-07T07:00:00Z"));
        assert_eq!(day, Some(Period { previous_from: d("2026-12-05"), from: d("2026-12-06"), to: d("2026-12-06") }));
        assert_eq!(digest_period(DigestFrequency::Aucune, Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()), None);
    }

    #[test]
    fn runs_are_measured_by_kind() {
        let metrics = crate::metrics::Metrics::default();
        let sent = BTreeMap::from([(Kind::Synthese.as_str(), 2), (Kind::Silencieux.as_str(), 1)]);
        metrics.notifications_run(&sent, 0.25);
        metrics.notifications_run(&BTreeMap::from([(Kind::Synthese.as_str(), 1)]), 0.5);
        let text = metrics.render();
        assert!(text.contains("monavis_notifications_sent_total{kind=\"synthese\"} 3"), "{text}");
        assert!(text.contains("monavis_notifications_sent_total{kind=\"silencieux\"} 1"), "{text}");
        assert!(text.contains("monavis_notifications_run_duration_seconds_count 2"), "{text}");
    }

    #[test]
    fn unsubscribe_tokens_are_bound_to_account_and_kind() {
        let key = UnsubscribeKey::new(b"secret");
        let token = key.token(42, Kind::Baisse);
        assert_eq!(key.verify(&token), Some((42, Kind::Baisse)));
        assert_eq!(UnsubscribeKey::new(b"other").verify(&token), None);
        let forged = token.replacen("42.", "43.", 1);
        assert_eq!(key.verify(&forged), None);
        assert_eq!(key.verify(&token.replace("baisse", "synthese")), None);
        assert_eq!(key.verify("42.baisse.zz"), None);
    }
}
