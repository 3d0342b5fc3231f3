//! SQLite backend of [`ConsoleStore`]: a connection of its own to the vote store's file, so that
//! a console query never waits for the flusher's mutex (WAL mode lets readers run beside the
//! writer; writers take turns through the busy timeout).

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use super::{
    keyset, like_escape, period_plan, search_filter, Account, AccountDetails, AccountStatus, AllowedDomain, ApiKey,
    AuditEntry, AvisFilter, AvisRow, CatalogueRow, Claim, Comment, ConsoleStore, Criteria, Cursor, Dated,
    DemarcheDetails, DemarcheRow, EmailRetry, EnLigne, ImportCounts, Invite, Merged, NewAccount, OutboxMail,
    OutboxStats, PorteurRequest, ProConnectIdentity, ProConnectLink, ProConnectLogIn, SessionRow, SignUp, TokenKind,
    TokenState,
};
use super::{
    notify_counts, CommentSince, CommentWatch, DigestFrequency, DigestLine, DisarmedAlert, DueNotification,
    NotificationSettings, PeriodComment, SourceWindow, Subscription, Switches, NOTIFY_COLUMNS,
};
use crate::stats::Counts;
use crate::store::sqlite::BlockingConnection;
use crate::store::{StoreError, DAILY_COLUMNS};

/// Console store on SQLite.
pub struct SqliteConsoleStore {
    conn: BlockingConnection,
    /// The database file, for the read-only connections of exports.
    path: String,
}

/// Times as fixed-width RFC 3339 text (milliseconds, `Z`), so that they compare as strings.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

const ACCOUNT_COLUMNS: &str =
    "a.id, a.email, a.name, a.administration, a.password_hash, a.status, a.is_admin, a.created_at";

/// Reads [`ACCOUNT_COLUMNS`] starting at column `at`.
fn read_account(r: &Row, at: usize) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(at)?,
        email: r.get(at + 1)?,
        name: r.get(at + 2)?,
        administration: r.get(at + 3)?,
        password_hash: r.get(at + 4)?,
        status: AccountStatus::parse(&r.get::<_, String>(at + 5)?),
        is_admin: r.get(at + 6)?,
        created_at: parse_ts(&r.get::<_, String>(at + 7)?),
    })
}

fn read_mail(r: &Row) -> rusqlite::Result<OutboxMail> {
    Ok(OutboxMail {
        id: r.get(0)?,
        to: r.get(1)?,
        subject: r.get(2)?,
        body: r.get(3)?,
        created_at: parse_ts(&r.get::<_, String>(4)?),
        sent_at: r.get::<_, Option<String>>(5)?.as_deref().map(parse_ts),
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        retry_since: parse_ts(&r.get::<_, String>(8)?),
        next_attempt_at: r.get::<_, Option<String>>(9)?.as_deref().map(parse_ts),
        given_up_at: r.get::<_, Option<String>>(10)?.as_deref().map(parse_ts),
        html: r.get(11)?,
        unsubscribe: r.get(12)?,
    })
}

const MAIL_COLUMNS: &str = "id, to_address, subject, body, created_at, sent_at, attempts, last_error, \
     coalesce(resent_at, created_at), next_attempt_at, given_up_at, html, unsubscribe";

/// The columns [`read_demarche`] reads, in its order, for `demarche d`.
const DEMARCHE_COLUMNS: &str = "d.id, d.name, d.administration, d.url, d.volume_annuel, d.en_ligne, d.franceconnect, \
     d.mobile, d.support_qualite, d.disponibilite, d.privacy_controller, d.privacy_dpo, d.high_volume_approved, \
     d.active, d.merged_into, d.created_at";

/// Reads [`DEMARCHE_COLUMNS`] starting at column `at`.
fn read_demarche(r: &Row, at: usize) -> rusqlite::Result<DemarcheRow> {
    Ok(DemarcheRow {
        id: r.get(at)?,
        details: DemarcheDetails {
            name: r.get(at + 1)?,
            administration: r.get(at + 2)?,
            url: r.get(at + 3)?,
            volume_annuel: r.get(at + 4)?,
            criteria: Criteria {
                en_ligne: r.get::<_, Option<String>>(at + 5)?.as_deref().and_then(EnLigne::parse),
                franceconnect: r.get(at + 6)?,
                mobile: r.get(at + 7)?,
                support_qualite: r.get(at + 8)?,
                disponibilite: r.get(at + 9)?,
            },
            privacy_controller: r.get(at + 10)?,
            privacy_dpo: r.get(at + 11)?,
        },
        high_volume_approved: r.get(at + 12)?,
        active: r.get(at + 13)?,
        merged_into: r.get(at + 14)?,
        created_at: parse_ts(&r.get::<_, String>(at + 15)?),
    })
}

/// A request with its démarche's name and its account; [`read_request`] reads it.
const REQUEST_SELECT: &str = "SELECT r.id, r.demarche_id, d.name, r.created_at, r.reason, a.id, a.email, a.name, \
     a.administration, a.password_hash, a.status, a.is_admin, a.created_at \
     FROM porteur_request r JOIN account a ON a.id = r.account_id JOIN demarche d ON d.id = r.demarche_id";

fn read_request(r: &Row) -> rusqlite::Result<PorteurRequest> {
    Ok(PorteurRequest {
        id: r.get(0)?,
        demarche_id: r.get(1)?,
        demarche_name: r.get(2)?,
        created_at: parse_ts(&r.get::<_, String>(3)?),
        reason: r.get(4)?,
        account: read_account(r, 5)?,
    })
}

fn is_porteur(conn: &Connection, account_id: i64, demarche_id: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM porteur WHERE account_id = ?1 AND demarche_id = ?2",
            params![account_id, demarche_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// See [`ConsoleStore::open_to_first_claim`].
fn open_to_first_claim(conn: &Connection, demarche_id: i64) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT NOT had_porteur AND NOT EXISTS (SELECT 1 FROM avis_daily WHERE demarche_id = ?1) \
         FROM demarche WHERE id = ?1",
        [demarche_id],
        |r| r.get(0),
    )
    .optional()
    .map(|open| open.unwrap_or(false))
}

/// A day as `avis_daily.day` stores it.
fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Reads an `avis_daily.day` column.
fn parse_day(r: &Row, at: usize) -> rusqlite::Result<NaiveDate> {
    let s: String = r.get(at)?;
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, Box::new(e)))
}

/// Adds the `avis_daily` rows of démarche ?1 to those of démarche ?2 (same day and source).
fn merge_daily_sql() -> String {
    let cols = DAILY_COLUMNS.join(", ");
    let updates = DAILY_COLUMNS.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO avis_daily (demarche_id, day, source, {cols}) \
         SELECT ?2, day, source, {cols} FROM avis_daily WHERE demarche_id = ?1 \
         ON CONFLICT (demarche_id, day, source) DO UPDATE SET {updates}"
    )
}

/// Why a link that is not valid is not: used, revoked, expired or unknown.
fn token_state(conn: &Connection, hash: &[u8; 32], kind: TokenKind, now: &str) -> rusqlite::Result<TokenState> {
    let row: Option<(i64, Option<String>, Option<String>, String)> = conn
        .query_row(
            "SELECT account_id, used_at, revoked_at, expires_at FROM email_token WHERE token_hash = ?1 AND kind = ?2",
            params![&hash[..], kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    Ok(match row {
        None => TokenState::Unknown,
        Some((_, Some(_), _, _)) => TokenState::Used,
        Some((_, None, Some(_), _)) => TokenState::Revoked,
        Some((_, None, None, expires)) if expires.as_str() <= now => TokenState::Expired,
        Some((account, None, None, _)) => TokenState::Valid(account),
    })
}

/// Uses the link `hash` of `kind` if it is valid at `now`: the account, or why not. Inside the
/// caller's IMMEDIATE transaction, so that two posts cannot both use it.
fn take_link(tx: &Connection, hash: &[u8; 32], kind: TokenKind, now: &str) -> rusqlite::Result<TokenState> {
    let taken: Option<i64> = tx
        .query_row(
            "UPDATE email_token SET used_at = ?3 WHERE token_hash = ?1 AND kind = ?2 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > ?3 RETURNING account_id",
            params![&hash[..], kind.as_str(), now],
            |r| r.get(0),
        )
        .optional()?;
    match taken {
        Some(account) => {
            // One link used voids its siblings: an older e-mail cannot be used after it.
            revoke_links(tx, account, kind, now)?;
            Ok(TokenState::Valid(account))
        }
        None => token_state(tx, hash, kind, now),
    }
}

/// Revokes the unused links of `kind` of an account.
fn revoke_links(tx: &Connection, account: i64, kind: TokenKind, now: &str) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE email_token SET revoked_at = ?3 WHERE account_id = ?1 AND kind = ?2 AND used_at IS NULL \
         AND revoked_at IS NULL",
        params![account, kind.as_str(), now],
    )
}

/// The columns [`read_avis`] reads, in its order.
const AVIS_COLUMNS: &str = "id, received_at, source, satisfaction, facilite, clarte, aide, commentaire, langue";

/// Reads [`AVIS_COLUMNS`].
fn read_avis(r: &Row) -> rusqlite::Result<AvisRow> {
    let id: String = r.get(0)?;
    Ok(AvisRow {
        id: uuid::Uuid::parse_str(&id)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?,
        received_at: parse_ts(&r.get::<_, String>(1)?),
        source: r.get(2)?,
        satisfaction: r.get(3)?,
        facilite: r.get(4)?,
        clarte: r.get(5)?,
        aide: r.get(6)?,
        commentaire: r.get(7)?,
        langue: r.get(8)?,
    })
}

/// Adds `value` to `params`; its placeholder.
fn bind(params: &mut Vec<Value>, value: impl Into<Value>) -> String {
    params.push(value.into());
    format!("?{}", params.len())
}

/// An FTS5 query finding every word of `text` (whatever is not a letter or a digit separates
/// words), each one a quoted string: no FTS5 syntax typed by a user reaches `MATCH`. `None` when
/// no word remains.
fn fts_query(text: &str) -> Option<String> {
    // Each word a quoted phrase (letters and digits only, see `search_words`), `*` for a prefix.
    let words: Vec<String> = super::search_words(text)
        .into_iter()
        .map(|(w, prefix)| format!("\"{w}\"{}", if prefix { " *" } else { "" }))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// A text search matching at least this many comments (in the whole store) is "frequent".
const FREQUENT_MATCHES: i64 = 1_000;
/// Commented avis read at a time by [`frequent_text_page`].
const WALK_CHUNK: i64 = 256;
/// The most commented avis [`frequent_text_page`] walks before it lets [`TextPlan::Ids`] finish
/// the page (a word frequent elsewhere and rare in this démarche).
const WALK_MAX: usize = 16 * 1024;

/// How the comment search of a list or an export is joined to `avis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextPlan {
    /// `id IN (SELECT id FROM avis_fts …)`: the matching avis ids first, each read from the
    /// index's content (about 1.5 µs a match), then the démarche's avis checked against them.
    /// Cheap for a rare word; for a word in one comment in eight at 1,000,000 avis it cost
    /// 45–110 ms a page, growing with the matches.
    Ids,
    /// For a frequent word: the démarche's commented avis walked newest first, checked against
    /// the matching rowids of the index (read from its lists, never its content): a page of
    /// [`frequent_text_page`], or, for an export that reads them all anyway,
    /// `(SELECT fts_rowid …) IN (SELECT rowid FROM avis_fts …)`. A rare word would walk every
    /// commented avis of the démarche for nothing, hence [`text_plan`].
    Rowids,
}

/// The plan for `filter`'s text: [`TextPlan::Rowids`] when the words match at least
/// [`FREQUENT_MATCHES`] comments, counted only that far (under a millisecond).
fn text_plan(conn: &Connection, filter: &AvisFilter) -> rusqlite::Result<TextPlan> {
    let Some(q) = filter.text.as_deref().and_then(fts_query) else { return Ok(TextPlan::Ids) };
    let matches: i64 = conn.query_row(
        "SELECT count(*) FROM (SELECT rowid FROM avis_fts WHERE avis_fts MATCH ?1 LIMIT ?2)",
        params![q, FREQUENT_MATCHES],
        |r| r.get(0),
    )?;
    Ok(if matches >= FREQUENT_MATCHES { TextPlan::Rowids } else { TextPlan::Ids })
}

/// `SELECT … FROM avis WHERE` the démarche and every condition of `filter`, values bound in
/// `params`, the text searched as `plan` says; the caller adds its cursor, order and limit.
fn avis_select(demarche_id: i64, filter: &AvisFilter, plan: TextPlan, params: &mut Vec<Value>) -> String {
    avis_select_columns(AVIS_COLUMNS, demarche_id, filter, plan, params)
}

/// [`avis_select`] with the given select list.
fn avis_select_columns(
    columns: &str,
    demarche_id: i64,
    filter: &AvisFilter,
    plan: TextPlan,
    params: &mut Vec<Value>,
) -> String {
    let mut sql = format!("SELECT {columns} FROM avis WHERE demarche_id = {}", bind(params, demarche_id));
    if let Some(from) = filter.from {
        sql.push_str(&format!(" AND received_at >= {}", bind(params, ts(from))));
    }
    if let Some(until) = filter.until {
        sql.push_str(&format!(" AND received_at < {}", bind(params, ts(until))));
    }
    for (column, value) in [
        ("satisfaction", &filter.satisfaction),
        ("facilite", &filter.facilite),
        ("clarte", &filter.clarte),
        ("source", &filter.source),
        ("langue", &filter.langue),
    ] {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {column} = {}", bind(params, value.clone())));
        }
    }
    if filter.with_comment || filter.text.is_some() {
        sql.push_str(" AND commentaire IS NOT NULL");
    }
    if let Some(text) = &filter.text {
        match fts_query(text) {
            Some(q) => {
                let q = bind(params, q);
                sql.push_str(&match plan {
                    TextPlan::Ids => format!(" AND id IN (SELECT id FROM avis_fts WHERE avis_fts MATCH {q})"),
                    TextPlan::Rowids => format!(
                        " AND (SELECT fts_rowid FROM avis_fts_rowid m WHERE m.id = avis.id) \
                         IN (SELECT rowid FROM avis_fts WHERE avis_fts MATCH {q})"
                    ),
                })
            }
            None => sql.push_str(" AND 0"),
        }
    }
    sql
}

/// A page (newest first) of the avis of `demarche_id` that `filter` keeps, `filter.text` being
/// frequent ([`TextPlan::Rowids`]). The démarche's commented avis that the other filters keep are
/// read [`WALK_CHUNK`] at a time, newest first, with the rowid of their comment in `avis_fts`;
/// the index gives the matching rowids between the chunk's smallest and largest only (comments
/// are indexed as they are flushed, so those span about the chunk's time: a few hundred rowids,
/// whatever the size of the store); the chunk's avis among them go to the page. A page of a word
/// in one comment in ten reads about 500 avis, where listing every match first read all of them
/// (12,690 at 1,000,000 avis, 45–110 ms). Past [`WALK_MAX`] avis read, [`TextPlan::Ids`] finishes
/// the page from where the walk stopped.
fn frequent_text_page(
    conn: &Connection,
    demarche_id: i64,
    filter: &AvisFilter,
    cursor: Option<Cursor>,
    limit: i64,
) -> Result<Vec<AvisRow>, StoreError> {
    let Some(q) = filter.text.as_deref().and_then(fts_query) else { return Ok(Vec::new()) };
    let others = AvisFilter { text: None, with_comment: true, ..filter.clone() };
    let limit = limit.max(0) as usize;
    let (mut page, mut after, mut walked) = (Vec::new(), cursor, 0usize);
    let mut matching =
        conn.prepare_cached("SELECT rowid FROM avis_fts WHERE avis_fts MATCH ?1 AND rowid >= ?2 AND rowid <= ?3")?;
    while page.len() < limit {
        if walked >= WALK_MAX {
            let rest = keyset_rows(conn, demarche_id, filter, TextPlan::Ids, after, (limit - page.len()) as i64, true)?;
            page.extend(rest);
            break;
        }
        // The walk reads keys only; the page's rows are read once found.
        let mut params = Vec::new();
        let columns = "received_at, id, (SELECT fts_rowid FROM avis_fts_rowid m WHERE m.id = avis.id)";
        let mut sql = avis_select_columns(columns, demarche_id, &others, TextPlan::Ids, &mut params);
        let bound = after.map(|(at, id)| (bind(&mut params, ts(at)), bind(&mut params, id.hyphenated().to_string())));
        let (condition, order) = keyset(true, bound);
        sql.push_str(&format!("{condition} ORDER BY {order} LIMIT {WALK_CHUNK}"));
        let mut st = conn.prepare_cached(&sql)?;
        let chunk: Vec<(String, String, Option<i64>)> = st
            .query_map(params_from_iter(params), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let Some(last) = chunk.last() else { break };
        let last_id =
            uuid::Uuid::parse_str(&last.1).map_err(|e| StoreError::Task(format!("avis id {}: {e}", last.1)))?;
        after = Some((parse_ts(&last.0), last_id));
        walked += chunk.len();
        let (lo, hi) =
            chunk.iter().filter_map(|c| c.2).fold((i64::MAX, i64::MIN), |(lo, hi), r| (lo.min(r), hi.max(r)));
        let hits: std::collections::HashSet<i64> = if lo <= hi {
            matching.query_map(params![q, lo, hi], |r| r.get(0))?.collect::<Result<_, _>>()?
        } else {
            Default::default()
        };
        let full = chunk.len() as i64 == WALK_CHUNK;
        let found: Vec<&String> = chunk
            .iter()
            .filter(|c| c.2.is_some_and(|r| hits.contains(&r)))
            .map(|c| &c.1)
            .take(limit - page.len())
            .collect();
        if !found.is_empty() {
            let marks = (1..=found.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
            let mut st = conn.prepare_cached(&format!(
                "SELECT {AVIS_COLUMNS} FROM avis WHERE id IN ({marks}) ORDER BY received_at DESC, id DESC"
            ))?;
            let rows = st.query_map(params_from_iter(found), read_avis)?;
            page.extend(rows.collect::<Result<Vec<_>, _>>()?);
        }
        if !full {
            break;
        }
    }
    Ok(page)
}

/// A keyset page of the avis `filter` keeps, its text searched as `plan` says.
fn keyset_rows(
    conn: &Connection,
    demarche_id: i64,
    filter: &AvisFilter,
    plan: TextPlan,
    cursor: Option<Cursor>,
    limit: i64,
    newest_first: bool,
) -> Result<Vec<AvisRow>, StoreError> {
    let mut params = Vec::new();
    let mut sql = avis_select(demarche_id, filter, plan, &mut params);
    let cursor = cursor.map(|(at, id)| (bind(&mut params, ts(at)), bind(&mut params, id.hyphenated().to_string())));
    let (condition, order) = keyset(newest_first, cursor);
    let limit = bind(&mut params, limit);
    sql.push_str(&format!("{condition} ORDER BY {order} LIMIT {limit}"));
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(params_from_iter(params), read_avis)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Sends every avis of `demarche_id` that `filter` keeps through `tx`, newest first, read on a
/// read-only connection of its own to `path`; stops early when the receiver is gone.
fn export_rows(
    path: &str,
    demarche_id: i64,
    filter: &AvisFilter,
    tx: &tokio::sync::mpsc::Sender<Result<AvisRow, StoreError>>,
) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut params = Vec::new();
    let mut sql = avis_select(demarche_id, filter, text_plan(&conn, filter)?, &mut params);
    sql.push_str(" ORDER BY received_at DESC, id DESC");
    let mut st = conn.prepare(&sql)?;
    let mut rows = st.query(params_from_iter(params))?;
    while let Some(r) = rows.next()? {
        if tx.blocking_send(Ok(read_avis(r)?)).is_err() {
            break;
        }
    }
    Ok(())
}

impl SqliteConsoleStore {
    /// A page of avis in keyset order (see [`keyset`]).
    fn keyset_page(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
        cursor: Option<Cursor>,
        limit: i64,
        newest_first: bool,
    ) -> BoxFuture<'static, Result<Vec<AvisRow>, StoreError>> {
        self.conn.with(move |conn| match text_plan(conn, &filter)? {
            TextPlan::Rowids if newest_first => frequent_text_page(conn, demarche_id, &filter, cursor, limit),
            plan => keyset_rows(conn, demarche_id, &filter, plan, cursor, limit, newest_first),
        })
    }

    /// Opens a connection of its own to the database file at `path` (already migrated).
    pub async fn open(path: &str) -> Result<SqliteConsoleStore, StoreError> {
        Ok(SqliteConsoleStore { conn: BlockingConnection::open(path).await?, path: path.to_string() })
    }

    fn account_where(
        &self,
        clause: &'static str,
        param: rusqlite::types::Value,
    ) -> BoxFuture<'static, Result<Option<Account>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account a WHERE {clause}");
            Ok(conn.query_row(&sql, [param], |r| read_account(r, 0)).optional()?)
        })
    }
}

impl ConsoleStore for SqliteConsoleStore {
    fn account_by_email(&self, email: String) -> BoxFuture<'_, Result<Option<Account>, StoreError>> {
        self.account_where("a.email = ?1", email.into())
    }

    fn account_by_id(&self, id: i64) -> BoxFuture<'_, Result<Option<Account>, StoreError>> {
        self.account_where("a.id = ?1", id.into())
    }

    fn sign_up(
        &self,
        new: NewAccount,
        link: [u8; 32],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<SignUp, StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = ts(now);
            let existing: Option<(i64, String)> = tx
                .query_row("SELECT id, status FROM account WHERE email = ?1", [&new.email], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let outcome = match existing {
                None => {
                    // No password until the confirmation page sets one.
                    tx.execute(
                        "INSERT INTO account (email, name, administration, password_hash, status, created_at, status_at) \
                         VALUES (?1, ?2, ?3, '', 'unconfirmed', ?4, ?4)",
                        params![new.email, new.name, new.administration, now],
                    )?;
                    SignUp::Created(tx.last_insert_rowid())
                }
                Some((id, status)) if AccountStatus::parse(&status) == AccountStatus::Unconfirmed => SignUp::Unconfirmed(id),
                Some((id, _)) => SignUp::Exists(id),
            };
            if let SignUp::Created(id) | SignUp::Unconfirmed(id) = outcome {
                revoke_links(&tx, id, TokenKind::Confirm, &now)?;
                tx.execute(
                    "INSERT INTO email_token (token_hash, account_id, kind, created_at, expires_at, name, administration) \
                     VALUES (?1, ?2, 'confirm', ?3, ?4, ?5, ?6)",
                    params![&link[..], id, now, ts(expires_at), new.name, new.administration],
                )?;
            }
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn set_status(
        &self,
        id: i64,
        from: AccountStatus,
        status: AccountStatus,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| {
            let n = conn.execute(
                "UPDATE account SET status = ?3, status_at = ?4 WHERE id = ?1 AND status = ?2",
                params![id, from.as_str(), status.as_str(), ts(now)],
            )?;
            Ok(n == 1)
        })
    }

    fn make_admin(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "UPDATE account SET is_admin = 1, \
                 status_at = CASE WHEN status = 'active' THEN status_at ELSE ?2 END, status = 'active' WHERE id = ?1",
                params![id, ts(now)],
            )?;
            Ok(())
        })
    }

    fn change_password(
        &self,
        id: i64,
        password_hash: String,
        keep: Option<[u8; 32]>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("UPDATE account SET password_hash = ?2 WHERE id = ?1", params![id, password_hash])?;
            tx.execute(
                "DELETE FROM session WHERE account_id = ?1 AND (?2 IS NULL OR token_hash <> ?2)",
                params![id, keep.as_ref().map(|k| &k[..])],
            )?;
            revoke_links(&tx, id, TokenKind::Reset, &ts(now))?;
            tx.commit()?;
            Ok(())
        })
    }

    fn delete_account(&self, id: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        // Sessions and links go with it (ON DELETE CASCADE, foreign keys on for this connection).
        self.conn.with(move |conn| {
            conn.execute("DELETE FROM account WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    fn delete_pending_account(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn
            .with(move |conn| Ok(conn.execute("DELETE FROM account WHERE id = ?1 AND status = 'pending'", [id])? == 1))
    }

    fn pending_accounts(&self) -> BoxFuture<'_, Result<Vec<Account>, StoreError>> {
        self.conn.with(|conn| {
            let sql = format!(
                "SELECT {ACCOUNT_COLUMNS} FROM account a WHERE a.status = 'pending' ORDER BY a.status_at, a.id"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map([], |r| read_account(r, 0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn admins(&self) -> BoxFuture<'_, Result<Vec<Account>, StoreError>> {
        self.conn.with(|conn| {
            let sql = format!(
                "SELECT {ACCOUNT_COLUMNS} FROM account a WHERE a.is_admin AND a.status = 'active' ORDER BY a.email"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map([], |r| read_account(r, 0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn allowed_domains(&self) -> BoxFuture<'_, Result<Vec<AllowedDomain>, StoreError>> {
        self.conn.with(|conn| {
            let mut st = conn.prepare("SELECT domain, added_at FROM allowed_domain ORDER BY domain")?;
            let rows = st.query_map([], |r| {
                Ok(AllowedDomain { domain: r.get(0)?, added_at: parse_ts(&r.get::<_, String>(1)?) })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn add_allowed_domain(
        &self,
        domain: String,
        by: Option<i64>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| {
            let n = conn.execute(
                "INSERT INTO allowed_domain (domain, added_by, added_at) VALUES (?1, ?2, ?3) ON CONFLICT (domain) DO NOTHING",
                params![domain, by, ts(now)],
            )?;
            Ok(n == 1)
        })
    }

    fn remove_allowed_domain(&self, domain: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| Ok(conn.execute("DELETE FROM allowed_domain WHERE domain = ?1", [domain])? == 1))
    }

    fn insert_token(
        &self,
        hash: [u8; 32],
        account_id: i64,
        kind: TokenKind,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "INSERT INTO email_token (token_hash, account_id, kind, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&hash[..], account_id, kind.as_str(), ts(now), ts(expires_at)],
            )?;
            Ok(())
        })
    }

    fn peek_token(
        &self,
        hash: [u8; 32],
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(TokenState, Option<AccountDetails>), StoreError>> {
        self.conn.with(move |conn| {
            let state = token_state(conn, &hash, kind, &ts(now))?;
            let details = conn
                .query_row(
                    "SELECT name, administration FROM email_token WHERE token_hash = ?1 AND kind = ?2 AND name IS NOT NULL",
                    params![&hash[..], kind.as_str()],
                    |r| Ok(AccountDetails { name: r.get(0)?, administration: r.get::<_, Option<String>>(1)?.unwrap_or_default() }),
                )
                .optional()?;
            Ok((state, details))
        })
    }

    fn confirm_account(
        &self,
        hash: [u8; 32],
        details: AccountDetails,
        password_hash: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<TokenState, StoreError>> {
        self.conn.with(move |conn| {
            let now = ts(now);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let state = take_link(&tx, &hash, TokenKind::Confirm, &now)?;
            if let TokenState::Valid(account) = state {
                tx.execute(
                    "UPDATE account SET name = ?2, administration = ?3, password_hash = ?4 \
                     WHERE id = ?1 AND status = 'unconfirmed'",
                    params![account, details.name, details.administration, password_hash],
                )?;
            }
            tx.commit()?;
            Ok(state)
        })
    }

    fn reset_password(
        &self,
        hash: [u8; 32],
        password_hash: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(TokenState, u64), StoreError>> {
        self.conn.with(move |conn| {
            let now = ts(now);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let state = take_link(&tx, &hash, TokenKind::Reset, &now)?;
            let mut keys = 0;
            if let TokenState::Valid(account) = state {
                tx.execute("UPDATE account SET password_hash = ?2 WHERE id = ?1", params![account, password_hash])?;
                tx.execute("DELETE FROM session WHERE account_id = ?1", [account])?;
                keys = tx.execute(
                    "UPDATE api_key SET revoked_at = ?2 WHERE account_id = ?1 AND revoked_at IS NULL",
                    params![account, now],
                )? as u64;
            }
            tx.commit()?;
            Ok((state, keys))
        })
    }

    fn proconnect_log_in(
        &self,
        login: ProConnectLogIn,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(Account, ProConnectLink), StoreError>> {
        self.conn.with(move |conn| {
            let now = ts(now);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let known: Option<i64> = tx
                .query_row(
                    "SELECT account_id FROM proconnect_identity WHERE issuer = ?1 AND sub = ?2",
                    params![login.issuer, login.sub],
                    |r| r.get(0),
                )
                .optional()?;
            let (account_id, link) = match known {
                Some(id) => {
                    tx.execute(
                        "UPDATE proconnect_identity SET last_login_at = ?3, idp_id = ?4 WHERE issuer = ?1 AND sub = ?2",
                        params![login.issuer, login.sub, now, login.idp_id],
                    )?;
                    (id, ProConnectLink::Known)
                }
                None => {
                    let existing: Option<(i64, String)> = tx
                        .query_row("SELECT id, status FROM account WHERE email = ?1", [&login.email], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()?;
                    let found = match existing {
                        Some((id, status)) => match AccountStatus::parse(&status) {
                            AccountStatus::Unconfirmed => {
                                tx.execute(
                                    "UPDATE account SET name = ?2, administration = ?3, status = 'active', status_at = ?4 \
                                     WHERE id = ?1",
                                    params![id, login.details.name, login.details.administration, now],
                                )?;
                                revoke_links(&tx, id, TokenKind::Confirm, &now)?;
                                (id, ProConnectLink::Created)
                            }
                            AccountStatus::Pending => {
                                tx.execute(
                                    "UPDATE account SET status = 'active', status_at = ?2 WHERE id = ?1",
                                    params![id, now],
                                )?;
                                (id, ProConnectLink::Linked)
                            }
                            AccountStatus::Active => (id, ProConnectLink::Linked),
                        },
                        None => {
                            // No password: its owner sets one through the reset flow, if ever.
                            tx.execute(
                                "INSERT INTO account (email, name, administration, password_hash, status, created_at, status_at) \
                                 VALUES (?1, ?2, ?3, '', 'active', ?4, ?4)",
                                params![login.email, login.details.name, login.details.administration, now],
                            )?;
                            (tx.last_insert_rowid(), ProConnectLink::Created)
                        }
                    };
                    tx.execute(
                        "INSERT INTO proconnect_identity (issuer, sub, account_id, idp_id, created_at, last_login_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        params![login.issuer, login.sub, found.0, login.idp_id, now],
                    )?;
                    found
                }
            };
            tx.execute(
                "INSERT INTO session (token_hash, account_id, csrf, created_at, last_seen_at, id_token) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![&login.session[..], account_id, login.csrf, now, login.id_token],
            )?;
            tx.execute(
                "INSERT INTO audit (at, actor_id, action, account_id, demarche_id, detail) VALUES (?1, ?2, ?3, ?2, NULL, ?4)",
                params![now, account_id, link.audit_action(), format!("ProConnect, fournisseur d'identité {}", login.idp_id)],
            )?;
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account a WHERE a.id = ?1");
            let account = tx.query_row(&sql, [account_id], |r| read_account(r, 0))?;
            tx.commit()?;
            Ok((account, link))
        })
    }

    fn proconnect_identities(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<ProConnectIdentity>, StoreError>> {
        self.conn.with(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT issuer, sub, idp_id, created_at, last_login_at FROM proconnect_identity \
                 WHERE account_id = ?1 ORDER BY created_at, issuer, sub",
            )?;
            let rows = stmt.query_map([account_id], |r| {
                Ok(ProConnectIdentity {
                    issuer: r.get(0)?,
                    sub: r.get(1)?,
                    idp_id: r.get(2)?,
                    created_at: parse_ts(&r.get::<_, String>(3)?),
                    last_login_at: parse_ts(&r.get::<_, String>(4)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn update_account_details(&self, id: i64, details: AccountDetails) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "UPDATE account SET name = ?2, administration = ?3 WHERE id = ?1",
                params![id, details.name, details.administration],
            )?;
            Ok(())
        })
    }

    fn create_session(
        &self,
        hash: [u8; 32],
        account_id: i64,
        csrf: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "INSERT INTO session (token_hash, account_id, csrf, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![&hash[..], account_id, csrf, ts(now)],
            )?;
            Ok(())
        })
    }

    fn session(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Option<SessionRow>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT s.csrf, s.created_at, s.last_seen_at, s.id_token, {ACCOUNT_COLUMNS} \
                 FROM session s JOIN account a ON a.id = s.account_id WHERE s.token_hash = ?1"
            );
            Ok(conn
                .query_row(&sql, [&hash[..]], |r| {
                    Ok(SessionRow {
                        csrf: r.get(0)?,
                        created_at: parse_ts(&r.get::<_, String>(1)?),
                        last_seen_at: parse_ts(&r.get::<_, String>(2)?),
                        id_token: r.get(3)?,
                        account: read_account(r, 4)?,
                    })
                })
                .optional()?)
        })
    }

    fn touch_session(&self, hash: [u8; 32], now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute("UPDATE session SET last_seen_at = ?2 WHERE token_hash = ?1", params![&hash[..], ts(now)])?;
            Ok(())
        })
    }

    fn delete_session(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute("DELETE FROM session WHERE token_hash = ?1", [&hash[..]])?;
            Ok(())
        })
    }

    fn delete_sessions_of(&self, account_id: i64, keep: Option<[u8; 32]>) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.conn.with(move |conn| {
            // A zero hash matches no session (hashes are SHA-256 of random tokens).
            let keep = keep.unwrap_or([0; 32]);
            let n = conn.execute(
                "DELETE FROM session WHERE account_id = ?1 AND token_hash <> ?2",
                params![account_id, &keep[..]],
            )?;
            Ok(n as u64)
        })
    }

    fn purge_expired(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction()?;
            let sessions = tx.execute(
                "DELETE FROM session WHERE last_seen_at < ?1 OR created_at < ?2",
                params![ts(idle_before), ts(created_before)],
            )?;
            let tokens = tx.execute("DELETE FROM email_token WHERE expires_at < ?1", [ts(now)])?;
            tx.commit()?;
            Ok((sessions + tokens) as u64)
        })
    }

    fn queue_email(
        &self,
        to: String,
        subject: String,
        body: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "INSERT INTO email_outbox (to_address, subject, body, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![to, subject, body, ts(now)],
            )?;
            Ok(conn.last_insert_rowid())
        })
    }

    fn claim_email(
        &self,
        id: i64,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<OutboxMail>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "UPDATE email_outbox SET claimed_at = ?2, attempts = attempts + 1 \
                 WHERE id = ?1 AND sent_at IS NULL AND given_up_at IS NULL AND (claimed_at IS NULL OR claimed_at < ?3) \
                 RETURNING {MAIL_COLUMNS}"
            );
            Ok(conn.query_row(&sql, params![id, ts(now), ts(stale_before)], read_mail).optional()?)
        })
    }

    fn unsent_emails(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare(
                "SELECT id FROM email_outbox WHERE sent_at IS NULL AND given_up_at IS NULL \
                 AND (claimed_at IS NULL OR claimed_at < ?1) AND (next_attempt_at IS NULL OR next_attempt_at <= ?3) \
                 ORDER BY id LIMIT ?2",
            )?;
            let rows = st.query_map(params![ts(stale_before), limit, ts(now)], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn mark_email_sent(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "UPDATE email_outbox SET sent_at = ?2, body = '', html = NULL WHERE id = ?1",
                params![id, ts(now)],
            )?;
            Ok(())
        })
    }

    fn mark_email_failed(&self, id: i64, error: String, retry: EmailRetry) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            let (next, given_up) = match retry {
                EmailRetry::At(t) => (Some(ts(t)), None),
                EmailRetry::GiveUp(t) => (None, Some(ts(t))),
            };
            conn.execute(
                "UPDATE email_outbox SET last_error = ?2, claimed_at = NULL, next_attempt_at = ?3, given_up_at = ?4 \
                 WHERE id = ?1 AND sent_at IS NULL",
                params![id, error, next, given_up],
            )?;
            Ok(())
        })
    }

    fn undelivered_emails(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OutboxMail>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT {MAIL_COLUMNS} FROM email_outbox WHERE given_up_at IS NOT NULL AND sent_at IS NULL \
                 ORDER BY id DESC LIMIT ?1"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(params![limit], read_mail)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn resend_email(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| {
            let n = conn.execute(
                "UPDATE email_outbox SET given_up_at = NULL, resent_at = ?2, next_attempt_at = NULL, claimed_at = NULL \
                 WHERE id = ?1 AND given_up_at IS NOT NULL AND sent_at IS NULL",
                params![id, ts(now)],
            )?;
            Ok(n == 1)
        })
    }

    fn outbox_stats(&self) -> BoxFuture<'_, Result<OutboxStats, StoreError>> {
        self.conn.with(move |conn| {
            Ok(conn.query_row(
                "SELECT count(*) FILTER (WHERE given_up_at IS NULL), min(created_at) FILTER (WHERE given_up_at IS NULL), \
                 count(*) FILTER (WHERE given_up_at IS NOT NULL) FROM email_outbox WHERE sent_at IS NULL",
                [],
                |r| {
                    Ok(OutboxStats {
                        waiting: r.get(0)?,
                        oldest_waiting: r.get::<_, Option<String>>(1)?.as_deref().map(parse_ts),
                        given_up: r.get(2)?,
                    })
                },
            )?)
        })
    }

    fn outbox(&self, to: Option<String>, limit: i64) -> BoxFuture<'_, Result<Vec<OutboxMail>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT {MAIL_COLUMNS} FROM email_outbox WHERE (?1 IS NULL OR to_address = ?1) ORDER BY id DESC LIMIT ?2"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(params![to, limit], read_mail)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn search_demarches(
        &self,
        terms: Vec<String>,
        id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>> {
        self.conn.with(move |conn| {
            // ?1 limit, ?2 offset, ?3 the id (if any), then one placeholder per term.
            let first_term = if id.is_some() { 4 } else { 3 };
            let filter = search_filter(terms.len(), id.map(|_| "?3".into()), |i| format!("?{}", first_term + i));
            let sql = format!(
                "SELECT {DEMARCHE_COLUMNS} FROM demarche d WHERE d.active AND d.merged_into IS NULL AND ({filter}) \
                 ORDER BY d.volume_annuel DESC NULLS LAST, d.name, d.id LIMIT ?1 OFFSET ?2"
            );
            let mut values: Vec<rusqlite::types::Value> = vec![limit.into(), offset.into()];
            values.extend(id.map(Into::into));
            values.extend(terms.iter().map(|t| like_escape(t).into()));
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(values), |r| read_demarche(r, 0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn demarche(&self, id: i64) -> BoxFuture<'_, Result<Option<DemarcheRow>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!("SELECT {DEMARCHE_COLUMNS} FROM demarche d WHERE d.id = ?1");
            Ok(conn.query_row(&sql, [id], |r| read_demarche(r, 0)).optional()?)
        })
    }

    fn create_demarche(
        &self,
        details: DemarcheDetails,
        search: String,
        creator: i64,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        self.conn.with(move |conn| {
            // IMMEDIATE: no other writer between reading max(id) (or checking `id`) and inserting.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = ts(now);
            let id: i64 = match id {
                Some(id) => {
                    if tx.query_row("SELECT 1 FROM demarche WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some() {
                        return Ok(None);
                    }
                    id
                }
                None => tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM demarche", [], |r| r.get(0))?,
            };
            tx.execute(
                "INSERT INTO demarche (id, name, created_by, created_at, active, high_volume_approved) \
                 VALUES (?1, ?2, ?3, ?4, 1, 0)",
                params![id, details.name, creator, now],
            )?;
            write_details(&tx, id, &details, &search)?;
            tx.execute(
                "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES (?1, ?2, ?3)",
                params![creator, id, now],
            )?;
            tx.commit()?;
            Ok(Some(id))
        })
    }

    fn import_demarches(&self, rows: Vec<CatalogueRow>) -> BoxFuture<'_, Result<ImportCounts, StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut counts = ImportCounts::default();
            {
                let mut add = tx.prepare(
                    "INSERT INTO demarche (id, name, administration, url, volume_annuel, search, active, high_volume_approved, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) ON CONFLICT (id) DO NOTHING",
                )?;
                let mut update = tx.prepare(
                    "UPDATE demarche SET name = ?2, administration = ?3, url = ?4, volume_annuel = ?5, search = ?6 \
                     WHERE id = ?1 AND (name, administration, url, coalesce(volume_annuel, -1)) IS NOT (?2, ?3, ?4, coalesce(?5, -1))",
                )?;
                for r in &rows {
                    let p = params![r.id, r.name, r.administration, r.url, r.volume_annuel, r.search];
                    if add.execute(p)? == 1 {
                        counts.added += 1;
                    } else if update.execute(p)? == 1 {
                        counts.updated += 1;
                    } else {
                        counts.unchanged += 1;
                    }
                }
            }
            tx.commit()?;
            Ok(counts)
        })
    }

    fn update_demarche(
        &self,
        id: i64,
        details: DemarcheDetails,
        search: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| Ok(write_details(conn, id, &details, &search)?))
    }

    fn set_demarche_active(&self, id: i64, active: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute("UPDATE demarche SET active = ?2 WHERE id = ?1", params![id, active])?;
            Ok(())
        })
    }

    fn approve_high_volume(&self, id: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute("UPDATE demarche SET high_volume_approved = 1 WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    fn high_volume_pending(&self, threshold: i64) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT {DEMARCHE_COLUMNS} FROM demarche d \
                 WHERE d.active AND NOT d.high_volume_approved AND d.volume_annuel > ?1 \
                 ORDER BY d.volume_annuel DESC, d.name, d.id"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map([threshold], |r| read_demarche(r, 0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn merge_demarche(&self, duplicate: i64, target: i64) -> BoxFuture<'_, Result<Option<Merged>, StoreError>> {
        self.conn.with(move |conn| {
            if duplicate == target {
                return Ok(None);
            }
            // IMMEDIATE: the flusher cannot add to the duplicate's counts between the copy and
            // the deletion below.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let target_merged: Option<Option<i64>> =
                tx.query_row("SELECT merged_into FROM demarche WHERE id = ?1", [target], |r| r.get(0)).optional()?;
            let duplicate_exists =
                tx.query_row("SELECT 1 FROM demarche WHERE id = ?1", [duplicate], |_| Ok(())).optional()?.is_some();
            if target_merged != Some(None) || !duplicate_exists {
                return Ok(None);
            }
            tx.execute(
                "INSERT OR IGNORE INTO porteur (account_id, demarche_id, created_at) \
                 SELECT account_id, ?2, created_at FROM porteur WHERE demarche_id = ?1",
                params![duplicate, target],
            )?;
            tx.execute("DELETE FROM porteur WHERE demarche_id = ?1", [duplicate])?;
            // Requests from people who now carry the target, or already ask for it, have their
            // answer; the others wait on the target.
            tx.execute(
                "DELETE FROM porteur_request WHERE demarche_id = ?1 AND status = 'pending' AND (\
                 account_id IN (SELECT account_id FROM porteur WHERE demarche_id = ?2) \
                 OR account_id IN (SELECT account_id FROM porteur_request WHERE demarche_id = ?2 AND status = 'pending'))",
                params![duplicate, target],
            )?;
            // And those on the target from people who now carry it through the duplicate.
            tx.execute(
                "DELETE FROM porteur_request WHERE demarche_id = ?1 AND status = 'pending' \
                 AND account_id IN (SELECT account_id FROM porteur WHERE demarche_id = ?1)",
                [target],
            )?;
            let requesters = {
                let mut st = tx.prepare(
                    "UPDATE porteur_request SET demarche_id = ?2 WHERE demarche_id = ?1 AND status = 'pending' \
                     RETURNING (SELECT email FROM account WHERE id = account_id)",
                )?;
                let rows = st.query_map(params![duplicate, target], |r| r.get::<_, String>(0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let invitees = {
                let mut st = tx.prepare(
                    "UPDATE porteur_invite SET demarche_id = ?2 \
                     WHERE demarche_id = ?1 AND used_at IS NULL AND cancelled_at IS NULL RETURNING email",
                )?;
                let rows = st.query_map(params![duplicate, target], |r| r.get::<_, String>(0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            tx.execute("UPDATE avis SET demarche_id = ?2 WHERE demarche_id = ?1", params![duplicate, target])?;
            tx.execute(&merge_daily_sql(), params![duplicate, target])?;
            tx.execute("DELETE FROM avis_daily WHERE demarche_id = ?1", [duplicate])?;
            tx.execute(
                "INSERT INTO avis_daily_langue (demarche_id, day, langue, n) \
                 SELECT ?2, day, langue, n FROM avis_daily_langue WHERE demarche_id = ?1 \
                 ON CONFLICT (demarche_id, day, langue) DO UPDATE SET n = n + excluded.n",
                params![duplicate, target],
            )?;
            tx.execute("DELETE FROM avis_daily_langue WHERE demarche_id = ?1", [duplicate])?;
            tx.execute("UPDATE demarche SET active = 0, merged_into = ?2 WHERE id = ?1", params![duplicate, target])?;
            tx.execute("UPDATE demarche SET merged_into = ?2 WHERE merged_into = ?1", params![duplicate, target])?;
            tx.commit()?;
            Ok(Some(Merged { requesters, invitees }))
        })
    }

    fn carried_by(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT {DEMARCHE_COLUMNS} FROM porteur p JOIN demarche d ON d.id = p.demarche_id \
                 WHERE p.account_id = ?1 ORDER BY d.name, d.id"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map([account_id], |r| read_demarche(r, 0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn is_porteur(&self, account_id: i64, demarche_id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| Ok(is_porteur(conn, account_id, demarche_id)?))
    }

    fn porteurs_of(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<Account>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT {ACCOUNT_COLUMNS} FROM porteur p JOIN account a ON a.id = p.account_id \
                 WHERE p.demarche_id = ?1 ORDER BY a.name, a.id"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map([demarche_id], |r| read_account(r, 0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn open_to_first_claim(&self, demarche_id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| Ok(open_to_first_claim(conn, demarche_id)?))
    }

    fn claim(
        &self,
        demarche_id: i64,
        account_id: i64,
        reason: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Claim, StoreError>> {
        self.conn.with(move |conn| {
            // IMMEDIATE: two first claims take turns, so the second sees the first's porteur.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = ts(now);
            let outcome = if is_porteur(&tx, account_id, demarche_id)? {
                Claim::AlreadyPorteur
            } else if let Some(id) = tx
                .query_row(
                    "SELECT id FROM porteur_request WHERE demarche_id = ?1 AND account_id = ?2 AND status = 'pending'",
                    params![demarche_id, account_id],
                    |r| r.get(0),
                )
                .optional()?
            {
                Claim::AlreadyRequested(id)
            } else if open_to_first_claim(&tx, demarche_id)? {
                tx.execute(
                    "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES (?1, ?2, ?3)",
                    params![account_id, demarche_id, now],
                )?;
                Claim::Granted
            } else if reason.trim().is_empty() {
                Claim::ReasonNeeded
            } else {
                tx.execute(
                    "INSERT INTO porteur_request (demarche_id, account_id, status, created_at, reason) \
                     VALUES (?1, ?2, 'pending', ?3, ?4)",
                    params![demarche_id, account_id, now, reason],
                )?;
                Claim::Requested(tx.last_insert_rowid())
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn pending_requests(&self, demarche_id: Option<i64>) -> BoxFuture<'_, Result<Vec<PorteurRequest>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "{REQUEST_SELECT} WHERE r.status = 'pending' AND (?1 IS NULL OR r.demarche_id = ?1) \
                 ORDER BY r.created_at, r.id"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map([demarche_id], read_request)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn requests_to_decide(
        &self,
        account_id: i64,
        is_admin: bool,
    ) -> BoxFuture<'_, Result<Vec<PorteurRequest>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "{REQUEST_SELECT} WHERE r.status = 'pending' AND (\
                 EXISTS (SELECT 1 FROM porteur p WHERE p.demarche_id = r.demarche_id AND p.account_id = ?1) \
                 OR (?2 AND NOT EXISTS (SELECT 1 FROM porteur p WHERE p.demarche_id = r.demarche_id))) \
                 ORDER BY r.created_at, r.id"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(params![account_id, is_admin], read_request)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn decide_request(
        &self,
        request_id: i64,
        accept: bool,
        by: i64,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<PorteurRequest>, StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = ts(now);
            let sql = format!("{REQUEST_SELECT} WHERE r.id = ?1 AND r.status = 'pending'");
            let Some(request) = tx.query_row(&sql, [request_id], read_request).optional()? else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE porteur_request SET status = ?2, decided_by = ?3, decided_at = ?4 \
                 WHERE id = ?1 AND status = 'pending'",
                params![request_id, if accept { "accepted" } else { "refused" }, by, now],
            )?;
            if accept {
                tx.execute(
                    "INSERT OR IGNORE INTO porteur (account_id, demarche_id, created_at) VALUES (?1, ?2, ?3)",
                    params![request.account.id, request.demarche_id, now],
                )?;
            }
            tx.commit()?;
            Ok(Some(request))
        })
    }

    fn add_porteur(
        &self,
        demarche_id: i64,
        account_id: i64,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| {
            let n = conn.execute(
                "INSERT OR IGNORE INTO porteur (account_id, demarche_id, created_at) VALUES (?1, ?2, ?3)",
                params![account_id, demarche_id, ts(now)],
            )?;
            Ok(n == 1)
        })
    }

    fn leave(&self, demarche_id: i64, account_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE porteur_invite SET cancelled_at = ?3 \
                 WHERE demarche_id = ?1 AND invited_by = ?2 AND used_at IS NULL AND cancelled_at IS NULL",
                params![demarche_id, account_id, ts(now)],
            )?;
            let n = tx.execute(
                "DELETE FROM porteur WHERE account_id = ?1 AND demarche_id = ?2",
                params![account_id, demarche_id],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn insert_invite(
        &self,
        hash: [u8; 32],
        demarche_id: i64,
        email: String,
        by: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "INSERT INTO porteur_invite (token_hash, demarche_id, email, invited_by, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![&hash[..], demarche_id, email, by, ts(now), ts(expires_at)],
            )?;
            Ok(())
        })
    }

    fn pending_invites(&self, demarche_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Invite>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT i.token_hash, i.email, coalesce(a.name, ''), i.created_at, i.expires_at \
                 FROM porteur_invite i LEFT JOIN account a ON a.id = i.invited_by \
                 WHERE i.demarche_id = ?1 AND {} ORDER BY i.created_at DESC, i.email",
                super::live_invite("?2")
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(params![demarche_id, ts(now)], |r| {
                let hash: Vec<u8> = r.get(0)?;
                Ok(Invite {
                    hash: hash.try_into().unwrap_or([0; 32]),
                    email: r.get(1)?,
                    invited_by: r.get(2)?,
                    created_at: parse_ts(&r.get::<_, String>(3)?),
                    expires_at: parse_ts(&r.get::<_, String>(4)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn cancel_invite(
        &self,
        demarche_id: i64,
        hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        self.conn.with(move |conn| {
            Ok(conn
                .query_row(
                    "UPDATE porteur_invite SET cancelled_at = ?3 \
                     WHERE token_hash = ?1 AND demarche_id = ?2 AND used_at IS NULL AND cancelled_at IS NULL \
                     RETURNING email",
                    params![&hash[..], demarche_id, ts(now)],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    fn take_invite(
        &self,
        hash: [u8; 32],
        account_id: i64,
        email: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Result<i64, TokenState>, StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = ts(now);
            let sql = format!(
                "SELECT i.demarche_id, i.email, i.expires_at, i.used_at, i.cancelled_at, {} \
                 FROM porteur_invite i WHERE i.token_hash = ?1",
                super::live_invite("?2")
            );
            // (démarche, invited address, expires_at, used_at, cancelled_at, live)
            type InviteRow = (i64, String, String, Option<String>, Option<String>, bool);
            let row: Option<InviteRow> = tx
                .query_row(&sql, params![&hash[..], now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })
                .optional()?;
            let outcome = match row {
                None => Err(TokenState::Unknown),
                Some((_, _, _, Some(_), _, _)) => Err(TokenState::Used),
                Some((_, _, _, None, Some(_), _)) => Err(TokenState::Revoked),
                Some((_, _, expires, None, None, _)) if expires <= now => Err(TokenState::Expired),
                Some((_, invited, _, None, None, _)) if invited.to_lowercase() != email.to_lowercase() => {
                    Err(TokenState::Unknown)
                }
                // Its author left (or was removed, or deleted) since: the right they passed on
                // ended with theirs.
                Some((_, _, _, None, None, false)) => Err(TokenState::Revoked),
                Some((demarche_id, _, _, None, None, true)) => {
                    tx.execute(
                        "UPDATE porteur_invite SET used_at = ?2 WHERE token_hash = ?1",
                        params![&hash[..], now],
                    )?;
                    tx.execute(
                        "INSERT OR IGNORE INTO porteur (account_id, demarche_id, created_at) VALUES (?1, ?2, ?3)",
                        params![account_id, demarche_id, now],
                    )?;
                    Ok(demarche_id)
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn last_avis(&self, demarche_id: i64) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>> {
        self.conn.with(move |conn| {
            let last: Option<String> =
                conn.query_row("SELECT max(received_at) FROM avis WHERE demarche_id = ?1", [demarche_id], |r| {
                    r.get(0)
                })?;
            Ok(last.as_deref().map(parse_ts))
        })
    }

    fn sources(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<(String, chrono::NaiveDate)>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare(
                "SELECT source, max(day) FROM avis_daily WHERE demarche_id = ?1 GROUP BY source ORDER BY 2 DESC, 1",
            )?;
            let rows = st.query_map([demarche_id], |r| Ok((r.get(0)?, parse_day(r, 1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<crate::stats::Counts, StoreError>> {
        self.conn.with(move |conn| {
            // Whole months from the rollup, the days around them from avis_daily.
            let sums = DAILY_COLUMNS.iter().map(|c| format!("coalesce(sum({c}), 0)")).collect::<Vec<_>>().join(", ");
            let (rows_sql, dates) =
                period_plan(from, to)
                    .union_sql(&DAILY_COLUMNS, "{c}", Some("demarche_id = ?1"), |i| format!("?{}", i + 1));
            let sql = format!("SELECT {sums} FROM ({rows_sql})");
            use rusqlite::types::Value;
            let values =
                std::iter::once(Value::Integer(demarche_id)).chain(dates.into_iter().map(|d| Value::Text(day(d))));
            Ok(conn.query_row(&sql, params_from_iter(values), |r| counts_from(r, 0))?)
        })
    }

    fn day_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<(chrono::NaiveDate, Counts)>, StoreError>> {
        self.conn.with(move |conn| {
            let sums = DAILY_COLUMNS.iter().map(|c| format!("sum({c})")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT day, {sums} FROM avis_daily WHERE demarche_id = ?1 AND day BETWEEN ?2 AND ?3 \
                 AND (?4 IS NULL OR source = ?4) GROUP BY day ORDER BY day"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(params![demarche_id, day(from), day(to), source], |r| {
                let d: String = r.get(0)?;
                Ok((chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").unwrap_or_default(), counts_from(r, 1)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn observatory(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(DemarcheRow, Counts)>, StoreError>> {
        self.conn.with(move |conn| {
            let sums = DAILY_COLUMNS.iter().map(|c| format!("sum({c}) AS {c}")).collect::<Vec<_>>().join(", ");
            let totals = DAILY_COLUMNS.iter().map(|c| format!("coalesce(a.{c}, 0)")).collect::<Vec<_>>().join(", ");
            let (rows_sql, dates) = period_plan(from, to).union_sql(&DAILY_COLUMNS, "{c}", None, |i| format!("?{i}"));
            let sql = format!(
                "SELECT {DEMARCHE_COLUMNS}, {totals} FROM demarche d LEFT JOIN \
                 (SELECT demarche_id, {sums} FROM ({rows_sql}) GROUP BY demarche_id) a \
                 ON a.demarche_id = d.id WHERE d.active AND d.merged_into IS NULL ORDER BY d.id"
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(params_from_iter(dates.into_iter().map(day)), |r| {
                Ok((read_demarche(r, 0)?, counts_from(r, 16)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn source_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(String, Counts)>, StoreError>> {
        self.conn.with(move |conn| {
            let sums = DAILY_COLUMNS.iter().map(|c| format!("sum({c})")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT source, {sums} FROM avis_daily WHERE demarche_id = ?1 AND day BETWEEN ?2 AND ?3 \
                 GROUP BY source ORDER BY sum(n) DESC, source"
            );
            let mut st = conn.prepare(&sql)?;
            let rows =
                st.query_map(params![demarche_id, day(from), day(to)], |r| Ok((r.get(0)?, counts_from(r, 1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn langue_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare(
                "SELECT langue, sum(n) FROM avis_daily_langue WHERE demarche_id = ?1 AND day BETWEEN ?2 AND ?3 \
                 GROUP BY langue ORDER BY 2 DESC, 1",
            )?;
            let rows = st.query_map(params![demarche_id, day(from), day(to)], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn latest_comments(
        &self,
        demarche_id: i64,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        source: Option<String>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Comment>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare(
                "SELECT received_at, source, satisfaction, commentaire FROM avis \
                 WHERE demarche_id = ?1 AND received_at >= ?2 AND received_at < ?3 AND commentaire IS NOT NULL \
                 AND (?4 IS NULL OR source = ?4) ORDER BY received_at DESC LIMIT ?5",
            )?;
            let rows = st.query_map(params![demarche_id, ts(from), ts(until), source, limit], |r| {
                Ok(Comment {
                    received_at: parse_ts(&r.get::<_, String>(0)?),
                    source: r.get(1)?,
                    satisfaction: r.get(2)?,
                    text: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    // Every avis (« Tous les avis », exports, API)
    fn avis_page(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<AvisRow>, StoreError>> {
        self.keyset_page(demarche_id, filter, cursor, limit, true)
    }

    fn count_avis(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
        cap: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        self.conn.with(move |conn| {
            let mut params = Vec::new();
            let plan = text_plan(conn, &filter)?;
            let select = avis_select(demarche_id, &filter, plan, &mut params);
            let limit = bind(&mut params, cap.saturating_add(1));
            let sql = format!("SELECT count(*) FROM ({select} LIMIT {limit})");
            // Interrupted past the budget (checked every thousand virtual machine steps).
            let deadline = std::time::Instant::now() + super::COUNT_BUDGET;
            conn.progress_handler(1000, Some(move || std::time::Instant::now() > deadline));
            let counted = conn.query_row(&sql, params_from_iter(params), |r| r.get(0));
            conn.progress_handler(1000, None::<fn() -> bool>);
            match counted {
                Ok(n) => Ok(Some(n)),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::OperationInterrupted => {
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn avis_after(
        &self,
        demarche_id: i64,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<AvisRow>, StoreError>> {
        self.keyset_page(demarche_id, AvisFilter::default(), cursor, limit, false)
    }

    fn avis_export(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
    ) -> futures_util::stream::BoxStream<'static, Result<AvisRow, StoreError>> {
        let path = self.path.clone();
        // The thread starts when the stream is first polled (inside the runtime), on a read-only
        // connection of its own: the console's connection (and its mutex) stays free meanwhile.
        futures_util::stream::once(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(1024);
            tokio::task::spawn_blocking(move || {
                if let Err(e) = export_rows(&path, demarche_id, &filter, &tx) {
                    // The receiver may be gone already: nobody to tell then.
                    let _ = tx.blocking_send(Err(e));
                }
            });
            futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
        })
        .flatten()
        .boxed()
    }

    // API keys
    fn create_api_key(
        &self,
        hash: [u8; 32],
        account_id: i64,
        name: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "INSERT INTO api_key (token_hash, account_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![&hash[..], account_id, name, ts(now)],
            )?;
            Ok(conn.last_insert_rowid())
        })
    }

    fn api_keys(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<ApiKey>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare(
                "SELECT id, name, created_at, last_used_at, revoked_at FROM api_key WHERE account_id = ?1 \
                 ORDER BY created_at DESC, id DESC",
            )?;
            let rows = st.query_map([account_id], |r| {
                Ok(ApiKey {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: parse_ts(&r.get::<_, String>(2)?),
                    last_used_at: r.get::<_, Option<String>>(3)?.as_deref().map(parse_ts),
                    revoked_at: r.get::<_, Option<String>>(4)?.as_deref().map(parse_ts),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn revoke_api_key(&self, id: i64, account_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| {
            let n = conn.execute(
                "UPDATE api_key SET revoked_at = ?3 WHERE id = ?1 AND account_id = ?2 AND revoked_at IS NULL",
                params![id, account_id, ts(now)],
            )?;
            Ok(n == 1)
        })
    }

    fn use_api_key(
        &self,
        hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<(i64, Account)>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT k.id, {ACCOUNT_COLUMNS} FROM api_key k JOIN account a ON a.id = k.account_id \
                 WHERE k.token_hash = ?1 AND k.revoked_at IS NULL"
            );
            let found = conn
                .query_row(&sql, [&hash[..]], |r| Ok((r.get::<_, i64>(0)?, read_account(r, 1)?)))
                .optional()?;
            if let Some((id, _)) = &found {
                conn.execute(
                    "UPDATE api_key SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
                    params![id, ts(now), ts(now - chrono::Duration::seconds(60))],
                )?;
            }
            Ok(found)
        })
    }

    fn audit(&self, entry: AuditEntry, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "INSERT INTO audit (at, actor_id, action, account_id, demarche_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![ts(now), entry.actor_id, entry.action, entry.account_id, entry.demarche_id, entry.detail],
            )?;
            Ok(())
        })
    }

    fn audit_log(&self, limit: i64) -> BoxFuture<'_, Result<Vec<Dated<AuditEntry>>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare(
                "SELECT at, actor_id, action, account_id, demarche_id, detail FROM audit ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([limit], |r| {
                Ok((
                    parse_ts(&r.get::<_, String>(0)?),
                    AuditEntry {
                        actor_id: r.get(1)?,
                        action: r.get(2)?,
                        account_id: r.get(3)?,
                        demarche_id: r.get(4)?,
                        detail: r.get(5)?,
                    },
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
    // Notifications (DESIGN §15)
    fn notification_settings(&self, account_id: i64) -> BoxFuture<'_, Result<NotificationSettings, StoreError>> {
        self.conn.with(move |conn| {
            let digest: Option<String> = conn
                .query_row("SELECT digest FROM notify_account WHERE account_id = ?1", params![account_id], |r| r.get(0))
                .optional()?;
            let d = Switches::default();
            let mut st = conn.prepare(&format!(
                "SELECT d.id, d.name, {SWITCHES} \
                 FROM porteur p JOIN demarche d ON d.id = p.demarche_id \
                 LEFT JOIN notify_demarche s ON s.account_id = p.account_id AND s.demarche_id = p.demarche_id \
                 LEFT JOIN notify_account na ON na.account_id = p.account_id \
                 WHERE p.account_id = ?1 ORDER BY d.name, d.id"
            ))?;
            let rows = st.query_map(params![account_id, d.comments, d.drop_alert, d.silent], |r| {
                Ok((r.get(0)?, r.get(1)?, Switches { comments: r.get(2)?, drop_alert: r.get(3)?, silent: r.get(4)? }))
            })?;
            Ok(NotificationSettings {
                digest: digest.as_deref().and_then(DigestFrequency::parse).unwrap_or_default(),
                demarches: rows.collect::<Result<_, _>>()?,
            })
        })
    }

    fn set_digest(&self, account_id: i64, digest: DigestFrequency) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "INSERT INTO notify_account (account_id, digest) VALUES (?1, ?2) \
                 ON CONFLICT (account_id) DO UPDATE SET digest = excluded.digest",
                params![account_id, digest.as_str()],
            )?;
            Ok(())
        })
    }

    fn set_kind_off(&self, account_id: i64, kind: String, off: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            let column = kind_off_column(&kind)?;
            conn.execute(
                &format!(
                    "INSERT INTO notify_account (account_id, digest, {column}) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (account_id) DO UPDATE SET {column} = excluded.{column}"
                ),
                params![account_id, DigestFrequency::default().as_str(), off],
            )?;
            Ok(())
        })
    }

    fn set_switches(
        &self,
        account_id: i64,
        demarche_id: i64,
        switches: Switches,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| {
            let n = conn.execute(
                "INSERT INTO notify_demarche (account_id, demarche_id, comments, drop_alert, silent) \
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS \
                 (SELECT 1 FROM porteur WHERE account_id = ?1 AND demarche_id = ?2) \
                 ON CONFLICT (account_id, demarche_id) DO UPDATE SET comments = excluded.comments, \
                 drop_alert = excluded.drop_alert, silent = excluded.silent",
                params![account_id, demarche_id, switches.comments, switches.drop_alert, switches.silent],
            )?;
            Ok(n == 1)
        })
    }

    fn digest_lines(
        &self,
        digest: DigestFrequency,
        previous_from: NaiveDate,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<DigestLine>, StoreError>> {
        self.conn.with(move |conn| {
            let sums = |cmp: &str| {
                DAILY_COLUMNS[..NOTIFY_COLUMNS]
                    .iter()
                    .map(|c| format!("sum(CASE WHEN x.day {cmp} ?3 THEN x.{c} ELSE 0 END)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sql = format!(
                "SELECT a.id, a.email, d.id, d.name, {}, {}, a.created_at \
                 FROM account a JOIN porteur p ON p.account_id = a.id JOIN demarche d ON d.id = p.demarche_id \
                 JOIN avis_daily x ON x.demarche_id = p.demarche_id AND x.day BETWEEN ?2 AND ?4 \
                 LEFT JOIN notify_account s ON s.account_id = a.id \
                 WHERE a.status = 'active' AND coalesce(s.digest, '{}') = ?1 \
                 GROUP BY a.id, a.email, d.id, d.name HAVING sum(CASE WHEN x.day >= ?3 THEN x.n ELSE 0 END) > 0 \
                 ORDER BY a.id, d.name, d.id",
                sums(">="),
                sums("<"),
                DigestFrequency::default().as_str()
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(params![digest.as_str(), day(previous_from), day(from), day(to)], |r| {
                Ok(DigestLine {
                    account_id: r.get(0)?,
                    account_created_at: parse_ts(&r.get::<_, String>(4 + 2 * NOTIFY_COLUMNS)?),
                    email: r.get(1)?,
                    demarche_id: r.get(2)?,
                    demarche_name: r.get(3)?,
                    counts: narrow(r, 4)?,
                    previous: narrow(r, 4 + NOTIFY_COLUMNS)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn comments_in(
        &self,
        demarche_ids: Vec<i64>,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        latest: i64,
    ) -> BoxFuture<'_, Result<Vec<PeriodComment>, StoreError>> {
        self.conn.with(move |conn| {
            let ids = format!("[{}]", demarche_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
            let mut st = conn.prepare(
                "SELECT demarche_id, total, received_at, source, satisfaction, commentaire FROM ( \
                 SELECT demarche_id, count(*) OVER (PARTITION BY demarche_id) AS total, \
                 row_number() OVER (PARTITION BY demarche_id ORDER BY received_at DESC, id DESC) AS rank, \
                 received_at, source, satisfaction, commentaire FROM avis \
                 WHERE demarche_id IN (SELECT value FROM json_each(?1)) AND received_at >= ?2 AND received_at < ?3 \
                 AND commentaire IS NOT NULL) WHERE rank <= ?4 ORDER BY demarche_id, received_at DESC",
            )?;
            let rows = st.query_map(params![ids, ts(from), ts(until), latest], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    Comment {
                        received_at: parse_ts(&r.get::<_, String>(2)?),
                        source: r.get(3)?,
                        satisfaction: r.get(4)?,
                        text: r.get(5)?,
                    },
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn subscriptions(&self) -> BoxFuture<'_, Result<Vec<Subscription>, StoreError>> {
        self.conn.with(move |conn| {
            let d = Switches::default();
            let mut st = conn.prepare(&format!(
                "SELECT a.id, a.email, d.id, d.name, {SWITCHES}, a.created_at \
                 FROM porteur p JOIN account a ON a.id = p.account_id JOIN demarche d ON d.id = p.demarche_id \
                 LEFT JOIN notify_demarche s ON s.account_id = p.account_id AND s.demarche_id = p.demarche_id \
                 LEFT JOIN notify_account na ON na.account_id = p.account_id \
                 WHERE a.status = 'active' ORDER BY a.id, d.id"
            ))?;
            // ?1 is the account of the settings' statement, unused here.
            let rows = st.query_map(params![0, d.comments, d.drop_alert, d.silent], |r| {
                Ok(Subscription {
                    account_id: r.get(0)?,
                    account_created_at: parse_ts(&r.get::<_, String>(7)?),
                    email: r.get(1)?,
                    demarche_id: r.get(2)?,
                    demarche_name: r.get(3)?,
                    switches: Switches { comments: r.get(4)?, drop_alert: r.get(5)?, silent: r.get(6)? },
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn comment_watches(&self) -> BoxFuture<'_, Result<Vec<CommentWatch>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare(
                "SELECT s.account_id, a.email, s.demarche_id, d.name, \
                 (SELECT max(n.period) FROM notification n WHERE n.account_id = s.account_id \
                 AND n.kind = 'commentaires' AND n.demarche_id = s.demarche_id), \
                 (SELECT max(n.created_at) FROM notification n WHERE n.account_id = s.account_id \
                 AND n.kind = 'commentaires' AND n.demarche_id = s.demarche_id), a.created_at \
                 FROM notify_demarche s JOIN porteur p ON p.account_id = s.account_id AND p.demarche_id = s.demarche_id \
                 JOIN account a ON a.id = s.account_id JOIN demarche d ON d.id = s.demarche_id \
                 WHERE s.comments AND a.status = 'active' ORDER BY s.account_id, s.demarche_id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(CommentWatch {
                    subscription: Subscription {
                        account_id: r.get(0)?,
                        account_created_at: parse_ts(&r.get::<_, String>(6)?),
                        email: r.get(1)?,
                        demarche_id: r.get(2)?,
                        demarche_name: r.get(3)?,
                        switches: Switches { comments: true, ..Switches::default() },
                    },
                    last_until: r.get(4)?,
                    last_sent: r.get::<_, Option<String>>(5)?.as_deref().map(parse_ts),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn comments_since(
        &self,
        watches: Vec<(i64, DateTime<Utc>)>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<CommentSince>, StoreError>> {
        self.conn.with(move |conn| {
            // In-process: one prepared probe per démarche costs no round trip.
            let mut st = conn.prepare_cached(
                "SELECT received_at, source, satisfaction, commentaire FROM avis \
                 WHERE demarche_id = ?1 AND received_at >= ?2 AND received_at < ?3 AND commentaire IS NOT NULL \
                 ORDER BY received_at DESC LIMIT ?4",
            )?;
            let mut out = Vec::new();
            for (demarche_id, since) in watches {
                let rows = st.query_map(params![demarche_id, ts(since), ts(until), limit], |r| {
                    Ok(Comment {
                        received_at: parse_ts(&r.get::<_, String>(0)?),
                        source: r.get(1)?,
                        satisfaction: r.get(2)?,
                        text: r.get(3)?,
                    })
                })?;
                for c in rows {
                    out.push((demarche_id, since, c?));
                }
            }
            Ok(out)
        })
    }

    fn source_windows(
        &self,
        from: NaiveDate,
        split: NaiveDate,
        to: NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<SourceWindow>, StoreError>> {
        self.conn.with(move |conn| {
            let sums = |cmp: &str| {
                DAILY_COLUMNS[..NOTIFY_COLUMNS]
                    .iter()
                    .map(|c| format!("sum(CASE WHEN x.day {cmp} ?2 THEN x.{c} ELSE 0 END)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sql = format!(
                "SELECT x.demarche_id, x.source, {}, {}, max(x.day) FROM avis_daily x \
                 WHERE x.day BETWEEN ?1 AND ?3 AND x.demarche_id IN (SELECT demarche_id FROM porteur) \
                 GROUP BY x.demarche_id, x.source ORDER BY x.demarche_id, x.source",
                sums("<"),
                sums(">=")
            );
            let mut st = conn.prepare(&sql)?;
            let n = NOTIFY_COLUMNS;
            let rows = st.query_map(params![day(from), day(split), day(to)], |r| {
                let last: String = r.get(2 + 2 * n)?;
                Ok(SourceWindow {
                    demarche_id: r.get(0)?,
                    source: r.get(1)?,
                    before: narrow(r, 2)?,
                    after: narrow(r, 2 + n)?,
                    last_day: NaiveDate::parse_from_str(&last, "%Y-%m-%d").unwrap_or_default(),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn disarmed_alerts(&self, kind: String) -> BoxFuture<'_, Result<Vec<DisarmedAlert>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare("SELECT account_id, demarche_id, source FROM notify_alert WHERE kind = ?1")?;
            let rows = st.query_map(params![kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn rearm_alerts(&self, kind: String, alerts: Vec<DisarmedAlert>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut st = tx.prepare_cached(
                    "DELETE FROM notify_alert WHERE account_id = ?1 AND kind = ?2 AND demarche_id = ?3 AND source = ?4",
                )?;
                for (account_id, demarche_id, source) in alerts {
                    st.execute(params![account_id, kind, demarche_id, source])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn record_notifications(
        &self,
        due: Vec<DueNotification>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut ids = Vec::new();
            for due in due {
                let n = tx.execute(
                    "INSERT INTO notification (account_id, kind, demarche_id, period, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![due.account_id, due.kind, due.demarche_id, due.period, ts(now)],
                )?;
                if n == 0 {
                    continue;
                }
                tx.execute(
                    "INSERT INTO email_outbox (to_address, subject, body, html, unsubscribe, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![due.to, due.subject, due.body, due.html, due.unsubscribe, ts(now)],
                )?;
                let id = tx.last_insert_rowid();
                if let Some((source, day)) = &due.disarm {
                    tx.execute(
                        "INSERT INTO notify_alert (account_id, kind, demarche_id, source, fired_on) \
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                        params![due.account_id, due.kind, due.demarche_id, source, self::day(*day)],
                    )?;
                }
                tx.execute(
                    "UPDATE notification SET email_id = ?5 \
                     WHERE account_id = ?1 AND kind = ?2 AND demarche_id = ?3 AND period = ?4",
                    params![due.account_id, due.kind, due.demarche_id, due.period, id],
                )?;
                ids.push(id);
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    fn claim_run(
        &self,
        job: String,
        due: String,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.conn.with(move |conn| {
            let n = conn.execute(
                "INSERT INTO notify_clock (job, done, lease_until) VALUES (?1, '', ?4) \
                 ON CONFLICT (job) DO UPDATE SET lease_until = excluded.lease_until \
                 WHERE notify_clock.done <> ?2 AND (notify_clock.lease_until IS NULL OR notify_clock.lease_until <= ?3)",
                params![job, due, ts(now), ts(lease_until)],
            )?;
            Ok(n == 1)
        })
    }

    fn finish_run(&self, job: String, due: String, done: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "UPDATE notify_clock SET lease_until = NULL, \
                 done = CASE WHEN ?3 THEN ?2 ELSE done END WHERE job = ?1",
                params![job, due, done],
            )?;
            Ok(())
        })
    }
}

/// A carried démarche's switches: its own (`s`, notify_demarche), or the defaults `?2`, `?3`, `?4`
/// unless the account (`na`, notify_account) turned that kind off.
const SWITCHES: &str = "coalesce(s.comments, ?2 AND NOT coalesce(na.comments_off, 0)), \
     coalesce(s.drop_alert, ?3 AND NOT coalesce(na.drop_alert_off, 0)), \
     coalesce(s.silent, ?4 AND NOT coalesce(na.silent_off, 0))";

/// The column of notify_account turning `kind` off for the démarches joined later.
fn kind_off_column(kind: &str) -> Result<&'static str, StoreError> {
    match kind {
        "commentaires" => Ok("comments_off"),
        "baisse" => Ok("drop_alert_off"),
        "silencieux" => Ok("silent_off"),
        _ => Err(StoreError::Config(format!("no alert kind {kind:?}"))),
    }
}

/// The 16 counters of [`DAILY_COLUMNS`] read from column `at` on.
fn counts_from(r: &Row, at: usize) -> rusqlite::Result<Counts> {
    let mut c = [0i64; 16];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = r.get(at + i)?;
    }
    Ok(Counts::from_columns(c))
}

/// Writes a démarche's fiche (and its search key): shared by its creation and its edits.
fn write_details(conn: &Connection, id: i64, details: &DemarcheDetails, search: &str) -> rusqlite::Result<()> {
    let c = &details.criteria;
    conn.execute(
        "UPDATE demarche SET name = ?2, administration = ?3, url = ?4, volume_annuel = ?5, en_ligne = ?6, \
         franceconnect = ?7, mobile = ?8, support_qualite = ?9, disponibilite = ?10, \
         privacy_controller = ?11, privacy_dpo = ?12, search = ?13 WHERE id = ?1",
        params![
            id,
            details.name,
            details.administration,
            details.url,
            details.volume_annuel,
            c.en_ligne.map(EnLigne::as_str),
            c.franceconnect,
            c.mobile,
            c.support_qualite,
            c.disponibilite,
            details.privacy_controller,
            details.privacy_dpo,
            search,
        ],
    )?;
    Ok(())
}

/// The [`NOTIFY_COLUMNS`] sums starting at column `at`.
fn narrow(r: &Row, at: usize) -> rusqlite::Result<Counts> {
    let mut c = [0i64; NOTIFY_COLUMNS];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = r.get(at + i)?;
    }
    Ok(notify_counts(&c))
}
