//! The console's data access: one trait, [`ConsoleStore`], and its two backends.
//!
//! - [`postgres`]: a small bb8 pool of its own, so that a console query never waits behind (or
//!   holds up) the flushers' connections.
//! - [`sqlite`]: a connection of its own to the same file (WAL mode lets it read while a flush
//!   writes), driven from blocking threads.
//!
//! The tables are created by the vote store's migrations (`crate::store`), which hold every
//! schema version of both backends in one list each. Times are UTC; SQLite keeps them as
//! fixed-width RFC 3339 text so that they compare as strings. Secrets (session, confirmation and
//! reset tokens) are only ever stored as their SHA-256.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::BoxFuture;

use crate::stats::Counts;
use crate::store::StoreError;

/// Where an account stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    /// Signed up; the e-mail address is not confirmed yet.
    Unconfirmed,
    /// Confirmed, but the domain is not trusted: waits for an administrator.
    Pending,
    /// May log in.
    Active,
}

impl AccountStatus {
    /// The value stored in `account.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Unconfirmed => "unconfirmed",
            AccountStatus::Pending => "pending",
            AccountStatus::Active => "active",
        }
    }

    /// Reads a stored value; anything unknown is the least trusted status.
    pub fn parse(s: &str) -> AccountStatus {
        match s {
            "active" => AccountStatus::Active,
            "pending" => AccountStatus::Pending,
            _ => AccountStatus::Unconfirmed,
        }
    }
}

/// A porteur's (or administrator's) account.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    /// Lower-cased, validated address; unique.
    pub email: String,
    pub name: String,
    pub administration: String,
    /// PHC string (argon2id).
    pub password_hash: String,
    pub status: AccountStatus,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Account {
    // The password hash stays out of debug output and therefore out of any log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// What a sign-up form gives. No password: it is chosen on the confirmation page, by whoever
/// reads the mailbox (DESIGN §10).
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub email: String,
    pub name: String,
    pub administration: String,
}

/// The name and administration a confirmation link proposes (those of the sign-up that sent
/// it), and that its confirmation page sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountDetails {
    pub name: String,
    pub administration: String,
}

/// What [`ConsoleStore::sign_up`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignUp {
    /// A new, unconfirmed account with this id, and its confirmation link.
    Created(i64),
    /// The address has an unconfirmed account: the new link is now its only live one (earlier
    /// links are revoked), carrying this sign-up's details.
    Unconfirmed(i64),
    /// The address has a confirmed account; nothing changed and no link was recorded.
    Exists(i64),
}

/// What a single-use e-mail link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Confirms the address after sign-up (24 h).
    Confirm,
    /// Sets a new password (2 h).
    Reset,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Confirm => "confirm",
            TokenKind::Reset => "reset",
        }
    }
}

/// The state of an e-mail link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    /// Valid for this account (and, for the calls that use a link, now used).
    Valid(i64),
    Expired,
    Used,
    /// Voided before use: a newer sign-up replaced it, the password changed, the invitation was
    /// cancelled or its author no longer carries the démarche.
    Revoked,
    Unknown,
}

/// A signed-in session with its account.
#[derive(Clone)]
pub struct SessionRow {
    pub account: Account,
    /// The per-session CSRF token every form of this session carries.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The ID token of a session opened through ProConnect (DESIGN §16), for its log-out there.
    pub id_token: Option<String>,
}

impl std::fmt::Debug for SessionRow {
    // The CSRF token and the ID token stay out of debug output and therefore out of any log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("account", &self.account)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("proconnect", &self.id_token.is_some())
            .finish_non_exhaustive()
    }
}

/// A verified ProConnect log-in (DESIGN §16), as [`ConsoleStore::proconnect_log_in`] records it.
#[derive(Clone)]
pub struct ProConnectLogIn {
    /// The identity: ProConnect's issuer and the agent's `sub` there.
    pub issuer: String,
    pub sub: String,
    /// The agent's identity provider (`idp_id`), for the audit.
    pub idp_id: String,
    /// The address of the claims, lower-cased and valid: what a first log-in links by.
    pub email: String,
    /// Name and administration of an account made now, from the claims (checked).
    pub details: AccountDetails,
    /// The new session: the hash of its token, its CSRF token, and the ID token kept for the
    /// log-out.
    pub session: [u8; 32],
    pub csrf: String,
    pub id_token: String,
}

impl std::fmt::Debug for ProConnectLogIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProConnectLogIn")
            .field("issuer", &self.issuer)
            .field("idp_id", &self.idp_id)
            .finish_non_exhaustive()
    }
}

/// How a ProConnect log-in found its account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProConnectLink {
    /// The identity (issuer, `sub`) had logged in before.
    Known,
    /// Its first log-in: linked to the confirmed account of its address (activated if it was
    /// waiting for an administrator: ProConnect serves public agents).
    Linked,
    /// Its first log-in: a new active account named from the claims, without password. An
    /// unconfirmed account of the address (whoever signed up never proved the mailbox) is taken
    /// over the same way: the claims' details, active, its confirmation links revoked.
    Created,
}

impl ProConnectLink {
    /// The audit action of a log-in found this way.
    pub fn audit_action(self) -> &'static str {
        match self {
            ProConnectLink::Known => "account.proconnect.login",
            ProConnectLink::Linked => "account.proconnect.link",
            ProConnectLink::Created => "account.proconnect.create",
        }
    }
}

/// A ProConnect identity of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProConnectIdentity {
    pub issuer: String,
    pub sub: String,
    pub idp_id: String,
    pub created_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
}

/// A domain whose addresses are active as soon as they are confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedDomain {
    pub domain: String,
    pub added_at: DateTime<Utc>,
}

/// One e-mail of `email_outbox`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: i64,
    pub to: String,
    pub subject: String,
    /// Emptied once the mail is handed to the SMTP server (it may hold a single-use link).
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Delivery attempts so far (a claim counts as one).
    pub attempts: i32,
    /// The SMTP server's answer to the last failed attempt.
    pub last_error: Option<String>,
    /// When the retries started: the mail's creation, or the last « Renvoyer ».
    pub retry_since: DateTime<Utc>,
    /// Not tried again before then (after a failure).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Retries ended (`mail::GIVE_UP_AFTER` after `retry_since`): shown to administrators, who
    /// may send it again.
    pub given_up_at: Option<DateTime<Utc>>,
    /// The HTML part of a notification (emptied with the body once sent).
    pub html: Option<String>,
    /// A notification's one-click unsubscribe link (`List-Unsubscribe`, RFC 8058).
    pub unsubscribe: Option<String>,
}

/// What happens to a mail after a failed delivery attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailRetry {
    /// Tried again from then on.
    At(DateTime<Utc>),
    /// No more tries: the mail waits for an administrator's « Renvoyer ».
    GiveUp(DateTime<Utc>),
}

/// The outbox at a glance, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Unsent mails still being tried.
    pub waiting: i64,
    /// The creation of the oldest of them.
    pub oldest_waiting: Option<DateTime<Utc>>,
    /// Unsent mails whose retries ended.
    pub given_up: i64,
}

/// How often an account gets its digest (DESIGN §15).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DigestFrequency {
    Aucune,
    Quotidienne,
    #[default]
    Hebdomadaire,
    Mensuelle,
}

impl DigestFrequency {
    pub const ALL: [DigestFrequency; 4] = [
        DigestFrequency::Aucune,
        DigestFrequency::Quotidienne,
        DigestFrequency::Hebdomadaire,
        DigestFrequency::Mensuelle,
    ];

    /// The value stored in `notify_account.digest` (and posted by the settings form).
    pub fn as_str(self) -> &'static str {
        match self {
            DigestFrequency::Aucune => "aucune",
            DigestFrequency::Quotidienne => "quotidienne",
            DigestFrequency::Hebdomadaire => "hebdomadaire",
            DigestFrequency::Mensuelle => "mensuelle",
        }
    }

    pub fn parse(s: &str) -> Option<DigestFrequency> {
        DigestFrequency::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// An account's switches on one démarche it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switches {
    /// « Nouveaux commentaires ».
    pub comments: bool,
    /// « Baisse de satisfaction ».
    pub drop_alert: bool,
    /// « Bouton silencieux ».
    pub silent: bool,
}

impl Default for Switches {
    /// What a porteur who joins a démarche gets.
    fn default() -> Switches {
        Switches { comments: false, drop_alert: true, silent: true }
    }
}

/// « Notifications » of one account: its digest and its switches per carried démarche (by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationSettings {
    pub digest: DigestFrequency,
    pub demarches: Vec<(i64, String, Switches)>,
}

/// One démarche of one account's digest: its figures over the period and the one before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestLine {
    pub account_id: i64,
    /// Binds the account's unsubscribe links to it (an id can be reused after a deletion).
    pub account_created_at: DateTime<Utc>,
    pub email: String,
    pub demarche_id: i64,
    pub demarche_name: String,
    pub counts: Counts,
    pub previous: Counts,
}

/// What notifications read of `avis_daily`: the count and the satisfaction answers (the first
/// columns of [`crate::store::DAILY_COLUMNS`]); their [`Counts`] hold only these. Summing the
/// other twelve too made the hourly checks several times slower at 50,000 démarches.
pub const NOTIFY_COLUMNS: usize = 4;

/// [`Counts`] from the [`NOTIFY_COLUMNS`] first daily columns.
pub fn notify_counts(c: &[i64]) -> Counts {
    let mut all = [0i64; 16];
    all[..NOTIFY_COLUMNS].copy_from_slice(&c[..NOTIFY_COLUMNS]);
    Counts::from_columns(all)
}

/// (démarche, how many comments it received in the period, one of the latest of them).
pub type PeriodComment = (i64, i64, Comment);

/// A notification due: its unique key (account, kind, démarche, period) and its mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueNotification {
    pub account_id: i64,
    pub kind: String,
    /// 0 for a mail about every carried démarche (the digest).
    pub demarche_id: i64,
    pub period: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub html: String,
    pub unsubscribe: String,
    /// For a drop or silent alert: the source (`""` for the whole démarche) whose alert is
    /// disarmed, in the same transaction, until [`ConsoleStore::rearm_alerts`].
    pub disarm: Option<(String, chrono::NaiveDate)>,
}

/// An alert fired and not re-armed: (account, démarche, source, `""` for the démarche).
pub type DisarmedAlert = (i64, i64, String);

/// A porteur's switches on one démarche, with where to write (active accounts only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub account_id: i64,
    /// Binds the account's unsubscribe links to it (an id can be reused after a deletion).
    pub account_created_at: DateTime<Utc>,
    pub email: String,
    pub demarche_id: i64,
    pub demarche_name: String,
    pub switches: Switches,
}

/// A « Nouveaux commentaires » subscription and its last alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentWatch {
    pub subscription: Subscription,
    /// The `period` of the last alert: the instant of the newest comment it listed.
    pub last_until: Option<String>,
    /// When the last alert was queued.
    pub last_sent: Option<DateTime<Utc>>,
}

/// (démarche, the instant listed from, one of the newest comments since then).
pub type CommentSince = (i64, DateTime<Utc>, Comment);

/// One source of one démarche over two adjacent windows of days, from `avis_daily`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceWindow {
    pub demarche_id: i64,
    pub source: String,
    /// Days before the split.
    pub before: Counts,
    /// Days from the split on.
    pub after: Counts,
    /// The last day with avis in the whole window.
    pub last_day: chrono::NaiveDate,
}

/// One line of the audit trail: who did what to which account or démarche.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// The account that acted (`None`: an operator's command or the system).
    pub actor_id: Option<i64>,
    /// `account.approve`, `account.refuse`, `account.delete`, `domain.add`, …
    pub action: String,
    pub account_id: Option<i64>,
    pub demarche_id: Option<i64>,
    /// Free text for the reader (an address, a domain); never a secret.
    pub detail: String,
}

/// « Réalisable en ligne » (DESIGN §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnLigne {
    Oui,
    Partiel,
    Non,
}

impl EnLigne {
    /// The value stored in `demarche.en_ligne`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnLigne::Oui => "oui",
            EnLigne::Partiel => "partiel",
            EnLigne::Non => "non",
        }
    }

    pub fn parse(s: &str) -> Option<EnLigne> {
        match s {
            "oui" => Some(EnLigne::Oui),
            "partiel" => Some(EnLigne::Partiel),
            "non" => Some(EnLigne::Non),
            _ => None,
        }
    }
}

/// The observatory criteria a porteur declares on the « Fiche » (DESIGN §12); `None`: not
/// declared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Criteria {
    pub en_ligne: Option<EnLigne>,
    pub franceconnect: Option<bool>,
    pub mobile: Option<bool>,
    /// At least two contact means and human help.
    pub support_qualite: Option<bool>,
    pub disponibilite: Option<bool>,
}

/// What a porteur edits on the « Fiche ».
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemarcheDetails {
    pub name: String,
    pub administration: String,
    pub url: String,
    pub volume_annuel: Option<i64>,
    pub criteria: Criteria,
    /// Privacy notice (DESIGN §13): the data controller, and how to reach its DPO.
    pub privacy_controller: String,
    pub privacy_dpo: String,
}

/// A démarche as the console knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemarcheRow {
    pub id: i64,
    pub details: DemarcheDetails,
    pub high_volume_approved: bool,
    pub active: bool,
    pub merged_into: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// One row of a catalogue file (`widget-server demarche import`), checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueRow {
    pub id: i64,
    pub name: String,
    pub administration: String,
    pub url: String,
    pub volume_annuel: Option<i64>,
    /// The folded name and administration (`crate::search::key`).
    pub search: String,
}

/// What [`ConsoleStore::import_demarches`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What [`ConsoleStore::claim`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The démarche never had a porteur and holds no avis: the account now carries it.
    Granted,
    /// A request (this id) waits for a porteur or, when none is left, an administrator.
    Requested(i64),
    /// The démarche is not granted at once and no reason was given: nothing done.
    ReasonNeeded,
    /// The account already carries it.
    AlreadyPorteur,
    /// The account already has a pending request (this id).
    AlreadyRequested(i64),
}

/// A pending « Je suis porteur » request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PorteurRequest {
    pub id: i64,
    pub demarche_id: i64,
    pub demarche_name: String,
    pub account: Account,
    /// Why the requester says they carry it, for whoever decides.
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// A live invitation (unused, not cancelled, unexpired, its author still carrying the démarche
/// or an administrator), as the Porteurs tab lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The stored hash of its link (not the link's secret), to name it in « Annuler ».
    pub hash: [u8; 32],
    pub email: String,
    /// The name of whoever sent it.
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Who a merge concerns beyond the porteurs: the requests and invitations it moved to the kept
/// démarche (DESIGN §10), so that they can be told.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// Addresses whose pending « Je suis porteur » request now concerns the kept démarche.
    pub requesters: Vec<String>,
    /// Addresses whose live invitation now concerns the kept démarche.
    pub invitees: Vec<String>,
}

/// A comment of an avis, for the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub received_at: DateTime<Utc>,
    pub source: String,
    /// The stored value of the general satisfaction (`bien`, `moyen`, `pas-bien`).
    pub satisfaction: String,
    pub text: String,
}

/// What « Tous les avis », its exports and the API select. Every field narrows; the default
/// selects every avis of the démarche.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AvisFilter {
    /// Received at or after.
    pub from: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    /// Stored values (`bien`, `moyen`, `pas-bien`; `facile`…; `clair`…).
    pub satisfaction: Option<String>,
    pub facilite: Option<String>,
    pub clarte: Option<String>,
    pub source: Option<String>,
    /// The form's language (`fr`, `en`…).
    pub langue: Option<String>,
    pub with_comment: bool,
    /// Words to find in comments, as the porteur typed them: accents and case ignored, every
    /// word, each as a word or the start of one from 3 letters on (« merc » finds « merci »;
    /// [`search_words`]). PostgreSQL: French full text with unaccent, `to_tsquery` prefixes;
    /// SQLite: FTS5 prefix phrases. Implies `with_comment`.
    pub text: Option<String>,
}

/// One avis with all its answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvisRow {
    pub id: uuid::Uuid,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub satisfaction: String,
    pub facilite: Option<String>,
    pub clarte: Option<String>,
    /// Bitmask over [`crate::vote::AIDE`].
    pub aide: i64,
    pub commentaire: Option<String>,
    /// The language of the form it was given in (`fr`, `en`…, DESIGN §17).
    pub langue: String,
}

/// The longest a count of avis may take ([`ConsoleStore::count_avis`]).
/// 10 ms: at 10 million avis, 40 ms made a page of two answers' filter 8.5× slower than at 100
/// avis (consolebench, 2026-12-07); what a count cannot do in that time, it says it did not.
pub const COUNT_BUDGET: std::time::Duration = std::time::Duration::from_millis(10);

/// Where a keyset page starts: the `(received_at, id)` of the row before it.
pub type Cursor = (DateTime<Utc>, uuid::Uuid);

/// An API key as « Mon compte » lists it (the secret itself is shown once, never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Something with the time it happened.
pub type Dated<T> = (DateTime<Utc>, T);

/// What the console needs from a database. Every call is one short transaction.
pub trait ConsoleStore: Send + Sync + 'static {
    // Accounts
    /// The account with this (lower-cased) address.
    fn account_by_email(&self, email: String) -> BoxFuture<'_, Result<Option<Account>, StoreError>>;
    fn account_by_id(&self, id: i64) -> BoxFuture<'_, Result<Option<Account>, StoreError>>;
    /// Signs up: creates an unconfirmed account (no password) or finds the address's, and, unless
    /// it is confirmed ([`SignUp::Exists`]), records `link` as its one live confirmation link
    /// (valid until `expires_at`, carrying `new`'s details) and revokes the earlier ones, in one
    /// transaction: of two sign-ups racing, exactly one link stays live.
    fn sign_up(
        &self,
        new: NewAccount,
        link: [u8; 32],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<SignUp, StoreError>>;
    /// Moves an account to `status` and says whether it was `from` (compare-and-set, so that two
    /// clicks or two administrators cannot both act).
    fn set_status(
        &self,
        id: i64,
        from: AccountStatus,
        status: AccountStatus,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Makes an account an administrator, and active whatever its status.
    fn make_admin(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// A password change from « Mon compte »: sets the password, ends the account's other
    /// sessions (all but `keep`) and revokes its unused reset links, in one transaction.
    fn change_password(
        &self,
        id: i64,
        password_hash: String,
        keep: Option<[u8; 32]>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Deletes the account with its sessions and links.
    fn delete_account(&self, id: i64) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Deletes the account only if it still waits for an administrator (a refusal racing an
    /// approval must not delete an account just made active); whether it did.
    fn delete_pending_account(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Confirmed accounts waiting for an administrator, oldest first.
    fn pending_accounts(&self) -> BoxFuture<'_, Result<Vec<Account>, StoreError>>;
    /// Active administrators, by address.
    fn admins(&self) -> BoxFuture<'_, Result<Vec<Account>, StoreError>>;

    // Allowed domains
    fn allowed_domains(&self) -> BoxFuture<'_, Result<Vec<AllowedDomain>, StoreError>>;
    /// Adds a domain (no-op if present); true when added.
    fn add_allowed_domain(
        &self,
        domain: String,
        by: Option<i64>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Removes a domain; true when it was there.
    fn remove_allowed_domain(&self, domain: String) -> BoxFuture<'_, Result<bool, StoreError>>;

    // Single-use e-mail links
    /// Records a reset link (confirmation links are recorded by [`ConsoleStore::sign_up`]).
    fn insert_token(
        &self,
        hash: [u8; 32],
        account_id: i64,
        kind: TokenKind,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// What this link is, without using it (for the page that shows the form), and for a
    /// confirmation link the details of the sign-up that sent it.
    fn peek_token(
        &self,
        hash: [u8; 32],
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(TokenState, Option<AccountDetails>), StoreError>>;
    /// Uses a confirmation link if it is valid, atomically (of two posts, one wins): sets
    /// `details` and the password on the account if it is still unconfirmed, and revokes its
    /// other confirmation links. The account's status is the caller's next step.
    fn confirm_account(
        &self,
        hash: [u8; 32],
        details: AccountDetails,
        password_hash: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<TokenState, StoreError>>;
    /// Uses a reset link if it is valid, atomically: sets the password, ends every session of
    /// the account, revokes every live API key and the other reset links, in one transaction
    /// (whoever had the old password keeps nothing). With the number of keys revoked.
    fn reset_password(
        &self,
        hash: [u8; 32],
        password_hash: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(TokenState, u64), StoreError>>;

    // ProConnect
    /// A verified ProConnect log-in, in one transaction (nothing half-done): finds the account of
    /// the identity (issuer, `sub`), or on its first log-in links it to the account of its
    /// address or makes one ([`ProConnectLink`]); opens the session with its ID token; records
    /// the log-in in the audit (`account.proconnect.login`, `.link` or `.create`, actor the
    /// account). The account as it now is, and how it was found.
    fn proconnect_log_in(
        &self,
        login: ProConnectLogIn,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(Account, ProConnectLink), StoreError>>;
    /// The ProConnect identities of an account, oldest first.
    fn proconnect_identities(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<ProConnectIdentity>, StoreError>>;
    /// Sets the name and administration of an account (« Mon compte », and after a ProConnect
    /// log-in made it from the claims).
    fn update_account_details(&self, id: i64, details: AccountDetails) -> BoxFuture<'_, Result<(), StoreError>>;

    // Sessions
    fn create_session(
        &self,
        hash: [u8; 32],
        account_id: i64,
        csrf: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The session and its account, if the session exists (expiry is the caller's rule).
    fn session(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Option<SessionRow>, StoreError>>;
    fn touch_session(&self, hash: [u8; 32], now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>>;
    fn delete_session(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Ends every session of an account but `keep`; how many ended.
    fn delete_sessions_of(&self, account_id: i64, keep: Option<[u8; 32]>) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Deletes sessions idle since before `idle_before` or created before `created_before`, and
    /// links expired before `now`; how many rows went.
    fn purge_expired(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    // E-mail outbox
    fn queue_email(
        &self,
        to: String,
        subject: String,
        body: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<i64, StoreError>>;
    /// Claims an unsent mail for sending (not claimed since `stale_before`); the mail if this
    /// caller got it. Replicas sharing the outbox never send a mail twice at once.
    fn claim_email(
        &self,
        id: i64,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<OutboxMail>, StoreError>>;
    /// Ids of unsent mails due at `now` (not given up, next attempt not later) and not claimed
    /// since `stale_before`, oldest first.
    fn unsent_emails(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<i64>, StoreError>>;
    /// Marks a mail sent and empties its body.
    fn mark_email_sent(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Records a failed attempt (the error is the SMTP server's, never the mail's content) and
    /// releases the claim: tried again from a given time, or given up.
    fn mark_email_failed(&self, id: i64, error: String, retry: EmailRetry) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Unsent mails whose retries ended, newest first.
    fn undelivered_emails(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OutboxMail>, StoreError>>;
    /// « Renvoyer »: a given-up mail is tried again at once, with `now` as the start of its
    /// retries. False if it was not given up (sent meanwhile, or resent by someone else).
    fn resend_email(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Counts of unsent mails, for the metrics.
    fn outbox_stats(&self) -> BoxFuture<'_, Result<OutboxStats, StoreError>>;
    /// The latest mails, newest first, optionally only those to `to`.
    fn outbox(&self, to: Option<String>, limit: i64) -> BoxFuture<'_, Result<Vec<OutboxMail>, StoreError>>;

    // Démarches
    /// Active, unmerged démarches whose folded `search` column holds every term (already
    /// folded), or whose id is `id`; by declared volume (largest first), then name. `limit + 1`
    /// rows tell the caller there is a next page.
    fn search_demarches(
        &self,
        terms: Vec<String>,
        id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>>;
    fn demarche(&self, id: i64) -> BoxFuture<'_, Result<Option<DemarcheRow>, StoreError>>;
    /// Creates a démarche with `creator` as its porteur, atomically: with the number `id` (a
    /// démarche moved from the legacy service keeps its number), or the next free one; its id,
    /// or `None` when `id` is taken. `search` is the folded name and administration.
    fn create_demarche(
        &self,
        details: DemarcheDetails,
        search: String,
        creator: i64,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;
    /// Loads catalogue rows (`widget-server demarche import`) in one transaction: a new id is
    /// added (active, nobody carries it), a known one gets the row's name, administration, URL
    /// and volume when they differ (its other fields, porteurs and avis are kept). Idempotent.
    fn import_demarches(&self, rows: Vec<CatalogueRow>) -> BoxFuture<'_, Result<ImportCounts, StoreError>>;
    /// Replaces the fiche of a démarche (and its search column).
    fn update_demarche(
        &self,
        id: i64,
        details: DemarcheDetails,
        search: String,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    fn set_demarche_active(&self, id: i64, active: bool) -> BoxFuture<'_, Result<(), StoreError>>;
    fn approve_high_volume(&self, id: i64) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Active démarches declared over `threshold` avis a year and not approved.
    fn high_volume_pending(&self, threshold: i64) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>>;
    /// Merges `duplicate` into `target` in one transaction: its porteurs become the target's
    /// (no duplicates), its pending requests and live invitations move to the target (a request
    /// from someone who now carries the target, or already asks for it, goes), its `avis` rows
    /// and `avis_daily` counts move to the target (counts added), and it becomes inactive with
    /// `merged_into = target`, as do the démarches merged into it before. `None` (nothing done)
    /// if either is missing, they are the same, or the target is itself merged.
    fn merge_demarche(&self, duplicate: i64, target: i64) -> BoxFuture<'_, Result<Option<Merged>, StoreError>>;

    // Porteurs
    /// The démarches an account carries, by name.
    fn carried_by(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>>;
    fn is_porteur(&self, account_id: i64, demarche_id: i64) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// The porteurs of a démarche, by name.
    fn porteurs_of(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<Account>, StoreError>>;
    /// Whether a claim of the démarche would be granted at once: it never had a porteur and
    /// holds no avis (a new démarche). Any other démarche is requested, with a reason.
    fn open_to_first_claim(&self, demarche_id: i64) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// « Je suis porteur »: granted when [`ConsoleStore::open_to_first_claim`], else a request
    /// with `reason` (none: [`Claim::ReasonNeeded`]); atomic, so two first claims cannot both be
    /// granted.
    fn claim(
        &self,
        demarche_id: i64,
        account_id: i64,
        reason: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Claim, StoreError>>;
    /// Pending requests of one démarche (or of all, with `None`), oldest first.
    fn pending_requests(&self, demarche_id: Option<i64>) -> BoxFuture<'_, Result<Vec<PorteurRequest>, StoreError>>;
    /// The pending requests this account may decide, oldest first: those of the démarches it
    /// carries and, for an administrator, those of démarches no one carries any more.
    fn requests_to_decide(
        &self,
        account_id: i64,
        is_admin: bool,
    ) -> BoxFuture<'_, Result<Vec<PorteurRequest>, StoreError>>;
    /// Accepts (the requester becomes porteur) or refuses a pending request; the request if it
    /// was pending (compare-and-set).
    fn decide_request(
        &self,
        request_id: i64,
        accept: bool,
        by: i64,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<PorteurRequest>, StoreError>>;
    /// Makes an account porteur (no-op if it is); true when added.
    fn add_porteur(
        &self,
        demarche_id: i64,
        account_id: i64,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// The account stops carrying the démarche, and the invitations it sent for it that are
    /// still unused are cancelled, in one transaction; true when it did carry it.
    fn leave(&self, demarche_id: i64, account_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Records an invitation link sent to `email`.
    fn insert_invite(
        &self,
        hash: [u8; 32],
        demarche_id: i64,
        email: String,
        by: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The live invitations of a démarche (see [`Invite`]), newest first.
    fn pending_invites(&self, demarche_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Invite>, StoreError>>;
    /// Cancels an unused invitation of this démarche; its address if it was live.
    fn cancel_invite(
        &self,
        demarche_id: i64,
        hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>>;
    /// Uses an invitation as the account with address `email`: it must be the invited address,
    /// unused, not cancelled, unexpired, and its author must still carry the démarche (or be an
    /// active administrator); the account then carries the démarche. The démarche id, or why not.
    fn take_invite(
        &self,
        hash: [u8; 32],
        account_id: i64,
        email: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Result<i64, TokenState>, StoreError>>;

    // What « Mes démarches » and « Code à intégrer » show
    /// When the démarche last received an avis (`max(received_at)`, from the index).
    fn last_avis(&self, demarche_id: i64) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>>;
    /// Each source label with the last day it received avis (from `avis_daily`), latest first.
    fn sources(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<(String, chrono::NaiveDate)>, StoreError>>;
    /// `avis_daily` counts of a démarche summed over `from..=to`.
    fn counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<crate::stats::Counts, StoreError>>;

    /// The counts of each day of `from..=to` that has avis (all sources summed, or only
    /// `source`), by day: one row a day, summed by the database.
    fn day_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<(chrono::NaiveDate, crate::stats::Counts)>, StoreError>>;
    /// Every démarche open to citizens (active, not merged) with its counts summed over
    /// `from..=to` (zero when it has none), in id order: the observatory's rows (DESIGN §12), in
    /// one statement: the whole months of the period from `avis_monthly`, the days before and
    /// after them from `avis_daily` (see [`whole_months`]).
    fn observatory(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(DemarcheRow, crate::stats::Counts)>, StoreError>>;
    /// The counts of each source over `from..=to`, most avis first.
    fn source_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(String, crate::stats::Counts)>, StoreError>>;
    /// Avis over `from..=to` in each language other than French (`avis_daily_langue`, all
    /// sources), most first: French is the period's total minus these. O(days).
    fn langue_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>>;
    /// The latest comments received in `from..until`, newest first, optionally of one source
    /// (walks the `(demarche_id, received_at)` index backwards: cheap however many avis).
    fn latest_comments(
        &self,
        demarche_id: i64,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        source: Option<String>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Comment>, StoreError>>;

    // Every avis (« Tous les avis », exports, API)
    /// Avis of a démarche matching `filter`, newest first (by `received_at`, then `id`), strictly
    /// after `cursor` in that order; at most `limit` (the caller asks one more than it shows, to
    /// know whether a next page exists). Uses the indexes of migration 4: cheap at any depth.
    fn avis_page(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<AvisRow>, StoreError>>;
    /// How many avis of a démarche match `filter`, counting at most `cap + 1` (so a caller
    /// tells « more than `cap` ») and for at most [`COUNT_BUDGET`] (`None`: not counted in
    /// time): bounded work however many avis there are, so a count never slows the list it
    /// goes with by more than that. Where the filter allows, callers count from `avis_daily`
    /// instead (see « Tous les avis »).
    fn count_avis(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
        cap: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;
    /// Avis of a démarche received strictly after `cursor` in `(received_at, id)` order,
    /// oldest first, at most `limit` (the API's incremental reading).
    fn avis_after(
        &self,
        demarche_id: i64,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<AvisRow>, StoreError>>;
    /// Every avis matching `filter`, newest first, as a stream read as it is consumed (a
    /// server-side cursor on PostgreSQL, a bounded channel from a blocking thread on SQLite):
    /// memory stays bounded whatever the number of rows.
    fn avis_export(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
    ) -> futures_util::stream::BoxStream<'static, Result<AvisRow, StoreError>>;

    // API keys
    /// Records a new key of an account; its id.
    fn create_api_key(
        &self,
        hash: [u8; 32],
        account_id: i64,
        name: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<i64, StoreError>>;
    /// The keys of an account, newest first (revoked ones too).
    fn api_keys(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<ApiKey>, StoreError>>;
    /// Revokes a key of this account; whether it was live.
    fn revoke_api_key(&self, id: i64, account_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// The live (not revoked) key with this hash and its account; records its use at `now`
    /// (at most once a minute).
    fn use_api_key(
        &self,
        hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<(i64, Account)>, StoreError>>;

    // Audit
    fn audit(&self, entry: AuditEntry, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The latest audit entries, newest first.
    fn audit_log(&self, limit: i64) -> BoxFuture<'_, Result<Vec<Dated<AuditEntry>>, StoreError>>;
    // Notifications (DESIGN §15)
    /// The account's digest frequency and its switches on every démarche it carries.
    fn notification_settings(&self, account_id: i64) -> BoxFuture<'_, Result<NotificationSettings, StoreError>>;
    fn set_digest(&self, account_id: i64, digest: DigestFrequency) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Sets the switches on a démarche; `false` when the account does not carry it.
    fn set_switches(
        &self,
        account_id: i64,
        demarche_id: i64,
        switches: Switches,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Every (active account at `digest`, carried démarche) with avis between `from` and `to`
    /// (Paris days, inclusive), with its counts there and over `previous_from` to the day before
    /// `from`: one statement over `avis_daily`.
    fn digest_lines(
        &self,
        digest: DigestFrequency,
        previous_from: chrono::NaiveDate,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<DigestLine>, StoreError>>;
    /// For every démarche in `demarche_ids`: how many comments arrived in `[from, until)` and the
    /// `latest` newest of them: one statement.
    fn comments_in(
        &self,
        demarche_ids: Vec<i64>,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        latest: i64,
    ) -> BoxFuture<'_, Result<Vec<PeriodComment>, StoreError>>;
    /// Turns `kind` (`commentaires`, `baisse`, `silencieux`) off or back on for the démarches
    /// the account will join: a démarche with no switches of its own follows this (an unsubscribe
    /// sticks; « Notifications » turns it back on).
    fn set_kind_off(&self, account_id: i64, kind: String, off: bool) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Every (active account, carried démarche) with its switches.
    fn subscriptions(&self) -> BoxFuture<'_, Result<Vec<Subscription>, StoreError>>;
    /// Every « Nouveaux commentaires » switched on (active accounts, carried démarches), with
    /// the last alert sent: one statement.
    fn comment_watches(&self) -> BoxFuture<'_, Result<Vec<CommentWatch>, StoreError>>;
    /// For each (démarche, instant) of `watches`: its `limit` newest comments received from that
    /// instant until `until` (excluded), newest first: one statement.
    fn comments_since(
        &self,
        watches: Vec<(i64, DateTime<Utc>)>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<CommentSince>, StoreError>>;
    /// Per (carried démarche, source), its counts over `from ..= to`, split at `split`: one
    /// statement over `avis_daily`.
    fn source_windows(
        &self,
        from: chrono::NaiveDate,
        split: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<SourceWindow>, StoreError>>;
    /// The alerts of `kind` disarmed: (account, démarche, source).
    fn disarmed_alerts(&self, kind: String) -> BoxFuture<'_, Result<Vec<DisarmedAlert>, StoreError>>;
    /// Re-arms alerts of `kind` (their cause is gone): one statement.
    fn rearm_alerts(&self, kind: String, alerts: Vec<DisarmedAlert>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Records every notification of `due` under its unique key and queues its mail, in one
    /// transaction: the outbox ids of the mails this call queued, in no particular order. A key
    /// already recorded (by another replica, or an earlier run) queues nothing; a replica
    /// recording the same keys at the same time waits for this transaction, then finds them.
    fn record_notifications(
        &self,
        due: Vec<DueNotification>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<i64>, StoreError>>;
    /// Claims scheduled work `job` for `due` (an hour, a digest's period) unless it was last done
    /// for `due`, or another run holds it until after `now`: `true` when this run does it,
    /// holding it until `lease_until`. (Only the last `due` is kept: `notifications run --at` an
    /// earlier instant runs again what was due then, and its mails' keys keep them single.)
    fn claim_run(
        &self,
        job: String,
        due: String,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Ends a [`ConsoleStore::claim_run`]: `done` records `due` as done; otherwise the claim is
    /// let go, for the next run to try again.
    fn finish_run(&self, job: String, due: String, done: bool) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// The words of a comment search, each with whether it is searched as a prefix (3 letters or
/// more: « merc » finds « merci »; a shorter one only as a whole word). Only letters and digits
/// survive, so no query syntax of either store can be injected.
pub fn search_words(text: &str) -> Vec<(String, bool)> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| (w.to_lowercase(), w.chars().count() >= 3))
        .collect()
}

// SQL helpers the two backends share (the dialects agree on LIKE … ESCAPE and on row values).

/// The keyset condition and order of a page of avis: newest first (« Tous les avis ») or
/// oldest first (the API), strictly past the cursor bound at `at`, `id`.
pub(crate) fn keyset(newest_first: bool, cursor: Option<(String, String)>) -> (String, &'static str) {
    let (cmp, order) = if newest_first { ("<", "received_at DESC, id DESC") } else { (">", "received_at, id") };
    let condition = cursor.map(|(at, id)| format!(" AND (received_at, id) {cmp} ({at}, {id})")).unwrap_or_default();
    (condition, order)
}

/// The condition on `porteur_invite i` of an invitation that can still be used at the time
/// bound at `now` (both dialects): unused, not cancelled, unexpired, its author carrying the
/// démarche or an active administrator. Only a placeholder goes into the SQL.
pub(crate) fn live_invite(now: &str) -> String {
    format!(
        "i.used_at IS NULL AND i.cancelled_at IS NULL AND i.expires_at > {now} AND (\
         EXISTS (SELECT 1 FROM porteur p WHERE p.account_id = i.invited_by AND p.demarche_id = i.demarche_id) \
         OR EXISTS (SELECT 1 FROM account x WHERE x.id = i.invited_by AND x.is_admin AND x.status = 'active'))"
    )
}

/// How the observatory sums `from..=to`: whole months from `avis_monthly`, plus and minus days
/// from `avis_daily` (every range inclusive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeriodPlan {
    /// Months `[start, end)` read from `avis_monthly`, edge months included when cheaper.
    pub months: Option<(NaiveDate, NaiveDate)>,
    /// Days added from `avis_daily`.
    pub plus: Vec<(NaiveDate, NaiveDate)>,
    /// Days taken away (of an edge month read whole, the days outside the period).
    pub minus: Vec<(NaiveDate, NaiveDate)>,
}

/// The plan for `from..=to` reading the fewest days: the whole months inside from the rollup;
/// a month the period only partly covers is read as its days inside, or as its month minus its
/// days outside when those are fewer. For the observatory's 365 days that is at most 31 days of
/// `avis_daily` (about 15 on average) instead of up to 61.
pub fn period_plan(from: NaiveDate, to: NaiveDate) -> PeriodPlan {
    use chrono::Datelike;
    let mut plan = PeriodPlan::default();
    if from > to {
        return plan;
    }
    let first_of = |d: NaiveDate| d.with_day(1).unwrap_or(d);
    let next_month = |d: NaiveDate| first_of(d).checked_add_months(chrono::Months::new(1)).unwrap_or(d);
    let last_of = |d: NaiveDate| next_month(d).pred_opt().unwrap_or(d);
    if first_of(from) == first_of(to) && (from.day() != 1 || to != last_of(to)) {
        // Within one month, not all of it.
        let inside = (to - from).num_days() + 1;
        let outside = (last_of(to) - first_of(from)).num_days() + 1 - inside;
        if outside < inside {
            plan.months = Some((first_of(from), next_month(from)));
            if from > first_of(from) {
                plan.minus.push((first_of(from), from.pred_opt().unwrap_or(from)));
            }
            if to < last_of(to) {
                plan.minus.push((to.succ_opt().unwrap_or(to), last_of(to)));
            }
        } else {
            plan.plus.push((from, to));
        }
        return plan;
    }
    let (mut start, mut end) = (next_month(from), first_of(to));
    if from.day() == 1 {
        start = from;
    } else {
        // The first month, partly: its days inside, or the month minus the days before `from`.
        let inside = (last_of(from) - from).num_days() + 1;
        let outside = (from - first_of(from)).num_days();
        if outside < inside {
            start = first_of(from);
            plan.minus.push((first_of(from), from.pred_opt().unwrap_or(from)));
        } else {
            plan.plus.push((from, last_of(from)));
        }
    }
    if to == last_of(to) {
        end = next_month(to);
    } else {
        let inside = (to - first_of(to)).num_days() + 1;
        let outside = (last_of(to) - to).num_days();
        if outside < inside {
            end = next_month(to);
            plan.minus.push((to.succ_opt().unwrap_or(to), last_of(to)));
        } else {
            plan.plus.push((first_of(to), to));
        }
    }
    if start < end {
        plan.months = Some((start, end));
    }
    plan
}

impl PeriodPlan {
    /// The rows to sum for this plan, as one `UNION ALL` of `SELECT demarche_id, {counters}`
    /// (taken-away days negated, each counter written as `cast` says, `{c}` standing for it),
    /// each part also restricted by `scope` when given (`demarche_id = $1`), and the dates it
    /// binds, in order, through `placeholder(i)` for i = 1, 2…
    pub fn union_sql(
        &self,
        columns: &[&str],
        cast: &str,
        scope: Option<&str>,
        placeholder: impl Fn(usize) -> String,
    ) -> (String, Vec<NaiveDate>) {
        let scope = scope.map(|s| format!(" AND {s}")).unwrap_or_default();
        let (mut parts, mut dates) = (Vec::new(), Vec::new());
        let mut bind = |d: NaiveDate| {
            dates.push(d);
            placeholder(dates.len())
        };
        let plain = columns.iter().map(|c| format!("{} AS {c}", cast.replace("{c}", c))).collect::<Vec<_>>().join(", ");
        if let Some((a, b)) = self.months {
            let (a, b) = (bind(a), bind(b));
            parts.push(format!(
                "SELECT demarche_id, {plain} FROM avis_monthly WHERE month >= {a} AND month < {b}{scope}"
            ));
        }
        for &(a, b) in &self.plus {
            let (a, b) = (bind(a), bind(b));
            parts.push(format!("SELECT demarche_id, {plain} FROM avis_daily WHERE day BETWEEN {a} AND {b}{scope}"));
        }
        let negated = columns
            .iter()
            .map(|c| format!("{} AS {c}", cast.replace("{c}", &format!("(-{c})"))))
            .collect::<Vec<_>>()
            .join(", ");
        for &(a, b) in &self.minus {
            let (a, b) = (bind(a), bind(b));
            parts.push(format!("SELECT demarche_id, {negated} FROM avis_daily WHERE day BETWEEN {a} AND {b}{scope}"));
        }
        if parts.is_empty() {
            parts.push(format!("SELECT demarche_id, {plain} FROM avis_daily WHERE false{scope}"));
        }
        (parts.join(" UNION ALL "), dates)
    }
}

/// `term` as a `LIKE` pattern piece that matches itself: `\`, `%` and `_` escaped with `\`
/// (every `LIKE` here says `ESCAPE '\'`).
pub(crate) fn like_escape(term: &str) -> String {
    let mut out = String::with_capacity(term.len());
    for ch in term.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The search condition on `demarche d` for both dialects: every term (escaped by
/// [`like_escape`], bound at `term(i)`) in `d.search`, or `d.id` equal to the one bound at `id`.
/// Without terms nor id, every row. Only placeholders go into the SQL, never values.
pub(crate) fn search_filter(terms: usize, id: Option<String>, term: impl Fn(usize) -> String) -> String {
    let mut any = Vec::new();
    if terms > 0 {
        let all = (0..terms)
            .map(|i| format!("d.search LIKE '%' || {} || '%' ESCAPE '\\'", term(i)))
            .collect::<Vec<_>>()
            .join(" AND ");
        any.push(format!("({all})"));
    }
    if let Some(id) = id {
        any.push(format!("d.id = {id}"));
    }
    if any.is_empty() {
        "1 = 1".into()
    } else {
        any.join(" OR ")
    }
}

/// Opens the console's own connection(s) to the store named by `url`.
pub async fn open(url: &str) -> Result<Arc<dyn ConsoleStore>, StoreError> {
    open_with_reads(url, None).await
}

/// As [`open`], with the console's heavy reads on `read_url` when given (`--database-read-url`,
/// a PostgreSQL streaming replica of `url`).
pub async fn open_with_reads(url: &str, read_url: Option<&str>) -> Result<Arc<dyn ConsoleStore>, StoreError> {
    let is_pg = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
    if let Some(read_url) = read_url {
        if !is_pg(url) || !is_pg(read_url) {
            return Err(StoreError::Config(format!(
                "--database-read-url needs PostgreSQL for both --database-url and itself (a streaming replica), got {}",
                if is_pg(url) {
                    "a read URL that is not postgres://…"
                } else {
                    "a database URL that is not postgres://…"
                }
            )));
        }
        return Ok(Arc::new(postgres::PgConsoleStore::connect_with_reads(url, read_url).await?));
    }
    if is_pg(url) {
        Ok(Arc::new(postgres::PgConsoleStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(sqlite::SqliteConsoleStore::open(path).await?))
    } else {
        Err(StoreError::BadUrl(crate::store::redact(url)))
    }
}

#[cfg(test)]
mod tests {
    use super::period_plan;
    use chrono::NaiveDate;

    /// Every period of up to 800 days starting in 2023–2025 (every fifth length): the plan's
    /// sum of a value per day equals the direct sum, and it reads at most 31 days; the
    /// observatory's years read about 15 on average.
    #[test]
    fn period_plans_are_exact() {
        let origin = NaiveDate::from_ymd_opt(2022, 12, 1).unwrap();
        let value = |i: i64| i * 7 + 3 + i % 11;
        // prefix[i] = sum of the values of the days before origin + i.
        let prefix: Vec<i64> = std::iter::once(0)
            .chain((0..2_000).scan(0, |acc, i| {
                *acc += value(i);
                Some(*acc)
            }))
            .collect();
        let at = |d: NaiveDate| (d - origin).num_days() as usize;
        let day_sum = |a: NaiveDate, b: NaiveDate| prefix[at(b) + 1] - prefix[at(a)];
        let first = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        let mut year_days = Vec::new();
        for start in 0..(3 * 365) {
            let from = first + chrono::Days::new(start);
            for len in (1..800u64).step_by(5).chain([365, 28, 29, 30, 31]) {
                let to = from + chrono::Days::new(len - 1);
                let plan = period_plan(from, to);
                let mut total = 0;
                if let Some((a, b)) = plan.months {
                    total += day_sum(a, b.pred_opt().unwrap());
                }
                total += plan.plus.iter().map(|&(a, b)| day_sum(a, b)).sum::<i64>();
                total -= plan.minus.iter().map(|&(a, b)| day_sum(a, b)).sum::<i64>();
                assert_eq!(total, day_sum(from, to), "{from} to {to}: {plan:?}");
                let days: i64 = plan.plus.iter().chain(&plan.minus).map(|&(a, b)| (b - a).num_days() + 1).sum();
                assert!(days <= 31, "{from} to {to}: {days} days read, {plan:?}");
                if len == 365 {
                    year_days.push(days);
                }
            }
        }
        let mean = year_days.iter().sum::<i64>() as f64 / year_days.len() as f64;
        assert!(mean < 17.0, "{mean} days on average");
    }
}
