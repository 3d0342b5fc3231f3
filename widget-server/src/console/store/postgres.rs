//! PostgreSQL backend of [`super::ConsoleStore`].
//!
//! A bb8 pool of its own (four connections at most), never the vote store's: a slow console
//! query cannot hold up a flush, and a flush cannot hold up a page of the console. The tables
//! are those of the vote store's second and third migrations (`crate::store::postgres`).
//!
//! Every method is one statement or one short transaction, always parameterised. Where two
//! callers may race (two sign-ups with one address, two posts of one link, two replicas claiming
//! one mail) the decision is taken by a single conditional statement, so that exactly one wins.

use std::time::Duration;

use bb8_postgres::PostgresConnectionManager;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::{keyset, like_escape, period_plan, search_filter, Comment};
use super::{
    notify_counts, CommentSince, CommentWatch, DigestFrequency, DigestLine, DisarmedAlert, DueNotification,
    NotificationSettings, PeriodComment, SourceWindow, Subscription, Switches, NOTIFY_COLUMNS,
};
use super::{
    Account, AccountDetails, AccountStatus, AllowedDomain, ApiKey, AuditEntry, AvisFilter, AvisRow, CatalogueRow,
    Claim, ConsoleStore, Criteria, Cursor, Dated, DemarcheDetails, DemarcheRow, EmailRetry, EnLigne, ImportCounts,
    Invite, Merged, NewAccount, OutboxMail, OutboxStats, PorteurRequest, ProConnectIdentity, ProConnectLink,
    ProConnectLogIn, SessionRow, SignUp, TokenKind, TokenState,
};
use crate::stats::Counts;
use crate::store::pg_tls::{self, Tls};
use crate::store::{StoreError, DAILY_COLUMNS};

type Pool = bb8::Pool<PostgresConnectionManager<Tls>>;

/// The columns [`read_account`] reads, in its order.
const ACCOUNT_COLUMNS: &str = "id, email, name, administration, password_hash, status, is_admin, created_at";
/// The same, qualified for a join with `account a`.
const ACCOUNT_COLUMNS_A: &str =
    "a.id, a.email, a.name, a.administration, a.password_hash, a.status, a.is_admin, a.created_at";
/// The columns [`read_mail`] reads, in its order.
const MAIL_COLUMNS: &str = "id, to_address, subject, body, created_at, sent_at, attempts, last_error, \
     coalesce(resent_at, created_at), next_attempt_at, given_up_at, html, unsubscribe";

/// The columns [`read_demarche`] reads, in its order, for `demarche d`.
const DEMARCHE_COLUMNS: &str = "d.id, d.name, d.administration, d.url, d.volume_annuel, d.en_ligne, d.franceconnect, \
     d.mobile, d.support_qualite, d.disponibilite, d.privacy_controller, d.privacy_dpo, d.high_volume_approved, \
     d.active, d.merged_into, d.created_at";

/// A request with its démarche's name and its account; [`read_request`] reads it.
const REQUEST_SELECT: &str = "SELECT r.id, r.demarche_id, d.name, r.created_at, r.reason, a.id, a.email, a.name, \
     a.administration, a.password_hash, a.status, a.is_admin, a.created_at \
     FROM porteur_request r JOIN account a ON a.id = r.account_id JOIN demarche d ON d.id = r.demarche_id";

/// How many times [`ConsoleStore::sign_up`] starts over when the account it saw vanished under it.
const SIGN_UP_ATTEMPTS: usize = 3;

/// Longest a console statement may run on PostgreSQL.
const CONSOLE_STATEMENT_TIMEOUT_MS: u64 = 5_000;

/// The console's PostgreSQL store.
pub struct PgConsoleStore {
    pool: Pool,
    /// The pool of [`PgConsoleStore::read_conn`]: `pool` itself, or the read replica's.
    reads: Pool,
}

/// The columns [`read_avis`] reads, in its order.
const AVIS_COLUMNS: &str = "id, received_at, source, satisfaction, facilite, clarte, aide, commentaire, langue";

/// An avis from `row`, whose columns are [`AVIS_COLUMNS`].
fn read_avis(row: &Row) -> Result<AvisRow, tokio_postgres::Error> {
    Ok(AvisRow {
        id: row.try_get(0)?,
        received_at: row.try_get(1)?,
        source: row.try_get(2)?,
        satisfaction: row.try_get(3)?,
        facilite: row.try_get(4)?,
        clarte: row.try_get(5)?,
        aide: i64::from(row.try_get::<_, i16>(6)?),
        commentaire: row.try_get(7)?,
        langue: row.try_get(8)?,
    })
}

/// Parameters of a statement built piece by piece (owned, so that an export's stream can keep
/// them).
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// Adds `value` to `params`; its placeholder.
fn bind(params: &mut Params, value: impl ToSql + Sync + Send + 'static) -> String {
    params.push(Box::new(value));
    format!("${}", params.len())
}

/// `params` as `query` takes them.
fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// `FROM avis WHERE` the démarche and every condition of `filter` but its words (only that the
/// avis has a comment), values bound in `params`; the caller adds its columns, [`text_match`],
/// cursor, order and limit.
fn avis_from(demarche_id: i64, filter: &AvisFilter, params: &mut Params) -> String {
    let mut sql = format!("FROM avis WHERE demarche_id = {}", bind(params, demarche_id));
    if let Some(from) = filter.from {
        sql.push_str(&format!(" AND received_at >= {}", bind(params, from)));
    }
    if let Some(until) = filter.until {
        sql.push_str(&format!(" AND received_at < {}", bind(params, until)));
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
    sql
}

/// The text condition of `filter`, its words bound in `params`; empty without words.
fn text_match(filter: &AvisFilter, params: &mut Params) -> String {
    match &filter.text {
        Some(text) => format!(" AND commentaire_tsv @@ to_tsquery('monavis_fr', {})", bind(params, ts_query(text))),
        None => String::new(),
    }
}

/// A `to_tsquery` text: every word of [`super::search_words`] (letters and digits only), quoted,
/// `:*` for a prefix, joined by `&`. No word at all: an empty query, which matches nothing.
fn ts_query(text: &str) -> String {
    let words: Vec<String> = super::search_words(text)
        .into_iter()
        .map(|(w, prefix)| format!("'{w}'{}", if prefix { ":*" } else { "" }))
        .collect();
    if words.is_empty() {
        String::new()
    } else {
        words.join(" & ")
    }
}

/// Comments a page of a text search reads in order, at most, before it asks the GIN index
/// (see [`PgConsoleStore::keyset_page`]): a few milliseconds.
const TEXT_WALK_ROWS: i64 = 5_000;
/// Matches that walk must have met, page not filled, for the search to go on walking rather
/// than ask the GIN index: one comment in 1,000 or more, so at most some 50,000 more comments.
const TEXT_WALK_DENSE: usize = 5;

/// Matches an export's text search counts at most before choosing its plan (see
/// [`plan_text_search`]).
///
/// Below it, fetching every match through the GIN index and sorting them costs at most this
/// many rows before the first; at it, matches are at least this dense among the démarche's
/// comments (2,000,000 comments: one in 400 or more), so the walk of its comments newest first
/// streams them. The count itself costs up to ~130 ms for a word in one comment in eight at
/// 10,000,000 avis (its GIN bitmap goes lossy), once per export.
const TEXT_SEARCH_CAP: i64 = 5_000;

/// Chooses the plan of an export's text search, inside the transaction open on `client`, for
/// the rows `from` (an [`avis_from`] and its [`text_match`], values in `params`). The word's
/// comments are read in the stored `commentaire_tsv` of migration 5, behind its GIN index.
///
/// Left to itself, the planner walks `avis_demarche_commented` newest first for any word,
/// hoping to meet a page of matches early: for a word in no comment it reads every comment of
/// the démarche before its first row. So first count the matches, up to [`TEXT_SEARCH_CAP`],
/// through the GIN index only (a bitmap scan: index scans and sequential scans off); under the
/// cap, keep those settings for the cursor (a bitmap scan and a sort of under the cap rows); at
/// the cap, walk a btree in order instead (bitmap scans off), reading each comment's stored
/// tsvector.
async fn plan_text_search(
    client: &impl GenericClient,
    from: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_seqscan = off",
        )
        .await?;
    let sql = format!("SELECT count(*) FROM (SELECT 1 {from} LIMIT {TEXT_SEARCH_CAP}) matches");
    let matches: i64 = client.query_one(&sql, params).await?.try_get(0)?;
    if matches >= TEXT_SEARCH_CAP {
        client
            .batch_execute(
                "SET LOCAL enable_indexscan TO DEFAULT; SET LOCAL enable_indexonlyscan TO DEFAULT; \
                 SET LOCAL enable_bitmapscan = off",
            )
            .await?;
    }
    Ok(())
}

/// Rows an export fetches at a time.
const EXPORT_BATCH: usize = 1000;
/// An export's order: newest first.
const EXPORT_ORDER: &str = "ORDER BY received_at DESC, id DESC";

/// A pooled connection inside the read-only transaction of an export. Dropped before the end
/// (the stream abandoned, an error), it is rolled back before going back to the pool.
struct OpenCursor(Option<bb8::PooledConnection<'static, PostgresConnectionManager<Tls>>>);

impl Drop for OpenCursor {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    // A broken connection is discarded by the pool anyway.
                    let _ = conn.batch_execute("ROLLBACK").await;
                });
            }
        }
    }
}

/// The state of an export's stream: a server-side cursor opened on first use, read
/// [`EXPORT_BATCH`] rows at a time.
struct Export {
    pool: Pool,
    /// An [`avis_from`] and its [`text_match`].
    from: String,
    /// Whether it searches text (and needs [`plan_text_search`]).
    text: bool,
    params: Params,
    cursor: Option<OpenCursor>,
    done: bool,
}

impl Export {
    async fn next_batch(mut self) -> Result<Option<(Vec<AvisRow>, Export)>, StoreError> {
        if self.done {
            return Ok(None);
        }
        if self.cursor.is_none() {
            let conn = self.pool.get_owned().await?;
            conn.batch_execute("BEGIN READ ONLY").await?;
            let cursor = OpenCursor(Some(conn));
            if let Some(conn) = &cursor.0 {
                if self.text {
                    plan_text_search(&**conn, &self.from, &refs(&self.params)).await?;
                }
                let declare = format!(
                    "DECLARE avis_export NO SCROLL CURSOR FOR SELECT {AVIS_COLUMNS} {} {EXPORT_ORDER}",
                    self.from
                );
                conn.execute(&declare, &refs(&self.params)).await?;
            }
            self.cursor = Some(cursor);
        }
        let Some(conn) = self.cursor.as_mut().and_then(|c| c.0.as_ref()) else { return Ok(None) };
        let rows = conn.query(&format!("FETCH {EXPORT_BATCH} FROM avis_export"), &[]).await?;
        let batch = rows.iter().map(read_avis).collect::<Result<Vec<_>, _>>()?;
        if rows.len() < EXPORT_BATCH {
            conn.batch_execute("COMMIT").await?;
            // Committed: back to the pool as it is.
            if let Some(mut cursor) = self.cursor.take() {
                drop(cursor.0.take());
            }
            self.done = true;
        }
        Ok(Some((batch, self)))
    }
}

impl PgConsoleStore {
    /// Connects a small pool of its own to `url` (TLS as its `sslmode` says, see [`pg_tls`]).
    /// Fails, with the reason, if a first connection cannot be made.
    pub async fn connect(url: &str) -> Result<PgConsoleStore, StoreError> {
        let (mut config, tls) = pg_tls::connect_config(url)?;
        // No console statement may hold one of these four connections for long: a search the
        // planner gets wrong fails after 5 s (a 503 page) instead of queuing every porteur
        // behind it. Exports read by cursor, 1,000 rows a statement, so they are not cut.
        config.options(format!(
            "{} -c statement_timeout={CONSOLE_STATEMENT_TIMEOUT_MS}",
            config.get_options().unwrap_or("")
        ));
        pg_tls::probe(&config, &tls).await?;
        let manager = PostgresConnectionManager::new(config, tls);
        let pool = bb8::Pool::builder()
            .max_size(4)
            .connection_timeout(Duration::from_secs(5))
            .error_sink(Box::new(pg_tls::LogErrors("console")))
            .build(manager)
            .await?;
        Ok(PgConsoleStore { reads: pool.clone(), pool })
    }

    /// As [`PgConsoleStore::connect`], with the heavy reads — dashboards, lists of avis,
    /// exports, the API, the observatory — on a pool of their own to `read_url` (a streaming
    /// replica, DESIGN §14). Everything that writes, and what must see a write at once
    /// (accounts, sessions, porteurs, the démarches' fiches), stays on `url`.
    pub async fn connect_with_reads(url: &str, read_url: &str) -> Result<PgConsoleStore, StoreError> {
        let primary = Self::connect(url).await?;
        let replica = Self::connect(read_url).await?;
        Ok(PgConsoleStore { pool: primary.pool, reads: replica.pool })
    }

    async fn conn(&self) -> Result<bb8::PooledConnection<'_, PostgresConnectionManager<Tls>>, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// A connection for the console's heavy reads: the read replica's pool when
    /// `--database-read-url` is set, else the same pool as everything else.
    async fn read_conn(&self) -> Result<bb8::PooledConnection<'_, PostgresConnectionManager<Tls>>, StoreError> {
        Ok(self.reads.get().await?)
    }

    /// A page of avis in keyset order (see [`keyset`]).
    ///
    /// With words to find, the planner left to itself walks the démarche's comments in order,
    /// hoping to meet a page of matches early: for a word in no comment it reads them all (20 s
    /// at 2,000,000). So, in one read-only transaction: walk at most [`TEXT_WALK_ROWS`] comments
    /// of the range in order, reading each one's stored tsvector (a frequent word fills its page
    /// there); if the range holds more, either it matched often enough to keep walking
    /// ([`TEXT_WALK_DENSE`]), or the word is rare here: ask the GIN index for every match (a
    /// bitmap scan, index and sequential scans off) and sort them.
    async fn keyset_page(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
        cursor: Option<Cursor>,
        limit: i64,
        newest_first: bool,
    ) -> Result<Vec<AvisRow>, StoreError> {
        let mut params = Params::new();
        let mut range = avis_from(demarche_id, &filter, &mut params);
        let cursor = cursor.map(|(at, id)| (bind(&mut params, at), bind(&mut params, id)));
        let (condition, order) = keyset(newest_first, cursor);
        range.push_str(&condition);
        let in_range = params.len();
        let text = text_match(&filter, &mut params);
        let limit_at = bind(&mut params, limit);
        let sql = format!("SELECT {AVIS_COLUMNS} {range}{text} ORDER BY {order} LIMIT {limit_at}");
        let mut conn = self.read_conn().await?;
        if filter.text.is_none() {
            let rows = conn.query(&sql, &refs(&params)).await?;
            return Ok(rows.iter().map(read_avis).collect::<Result<_, _>>()?);
        }
        let tx = conn.build_transaction().read_only(true).start().await?;
        let walk = format!(
            "SELECT {AVIS_COLUMNS} FROM (SELECT {AVIS_COLUMNS}, commentaire_tsv {range} ORDER BY {order} \
             LIMIT {TEXT_WALK_ROWS}) walk WHERE true{text} ORDER BY {order} LIMIT {limit_at}"
        );
        let mut rows = tx.query(&walk, &refs(&params)).await?;
        if (rows.len() as i64) < limit {
            let more = format!("SELECT 1 {range} ORDER BY {order} OFFSET {TEXT_WALK_ROWS} LIMIT 1");
            if tx.query_opt(&more, &refs(&params)[..in_range]).await?.is_some() {
                // The plan's settings last until the end of this transaction.
                let settings = if rows.len() >= TEXT_WALK_DENSE {
                    "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off"
                } else {
                    "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; \
                     SET LOCAL enable_seqscan = off"
                };
                tx.batch_execute(settings).await?;
                rows = tx.query(&sql, &refs(&params)).await?;
            }
        }
        tx.commit().await?;
        Ok(rows.iter().map(read_avis).collect::<Result<_, _>>()?)
    }

    /// One statement on a pooled connection; the rows it changed.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        Ok(self.conn().await?.execute(sql, params).await?)
    }
}

/// An account from `row`, whose columns from `at` on are [`ACCOUNT_COLUMNS`].
fn read_account(row: &Row, at: usize) -> Result<Account, tokio_postgres::Error> {
    Ok(Account {
        id: row.try_get(at)?,
        email: row.try_get(at + 1)?,
        name: row.try_get(at + 2)?,
        administration: row.try_get(at + 3)?,
        password_hash: row.try_get(at + 4)?,
        status: AccountStatus::parse(row.try_get(at + 5)?),
        is_admin: row.try_get(at + 6)?,
        created_at: row.try_get(at + 7)?,
    })
}

/// A mail from `row`, whose columns are [`MAIL_COLUMNS`].
fn read_mail(row: &Row) -> Result<OutboxMail, tokio_postgres::Error> {
    Ok(OutboxMail {
        id: row.try_get(0)?,
        to: row.try_get(1)?,
        subject: row.try_get(2)?,
        body: row.try_get(3)?,
        created_at: row.try_get(4)?,
        sent_at: row.try_get(5)?,
        attempts: row.try_get(6)?,
        last_error: row.try_get(7)?,
        retry_since: row.try_get(8)?,
        next_attempt_at: row.try_get(9)?,
        given_up_at: row.try_get(10)?,
        html: row.try_get(11)?,
        unsubscribe: row.try_get(12)?,
    })
}

/// A démarche from `row`, whose columns from `at` on are [`DEMARCHE_COLUMNS`].
fn read_demarche(row: &Row, at: usize) -> Result<DemarcheRow, tokio_postgres::Error> {
    Ok(DemarcheRow {
        id: row.try_get(at)?,
        details: DemarcheDetails {
            name: row.try_get(at + 1)?,
            administration: row.try_get(at + 2)?,
            url: row.try_get(at + 3)?,
            volume_annuel: row.try_get(at + 4)?,
            criteria: Criteria {
                en_ligne: row.try_get::<_, Option<&str>>(at + 5)?.and_then(EnLigne::parse),
                franceconnect: row.try_get(at + 6)?,
                mobile: row.try_get(at + 7)?,
                support_qualite: row.try_get(at + 8)?,
                disponibilite: row.try_get(at + 9)?,
            },
            privacy_controller: row.try_get(at + 10)?,
            privacy_dpo: row.try_get(at + 11)?,
        },
        high_volume_approved: row.try_get(at + 12)?,
        active: row.try_get(at + 13)?,
        merged_into: row.try_get(at + 14)?,
        created_at: row.try_get(at + 15)?,
    })
}

/// A request from `row`, whose columns are those of [`REQUEST_SELECT`].
fn read_request(row: &Row) -> Result<PorteurRequest, tokio_postgres::Error> {
    Ok(PorteurRequest {
        id: row.try_get(0)?,
        demarche_id: row.try_get(1)?,
        demarche_name: row.try_get(2)?,
        created_at: row.try_get(3)?,
        reason: row.try_get(4)?,
        account: read_account(row, 5)?,
    })
}

/// Uses the link `hash` of `kind` if it is valid at `now`, inside the caller's transaction:
/// the account, or why not. Takes of one account's links queue up on its row: two sibling links
/// posted at once cannot lock each other's rows in opposite orders (a deadlock); the second one
/// waits, then finds its link revoked by the first. NO KEY UPDATE leaves foreign-key checks
/// (new sessions and links of the account) unblocked.
async fn take_link(
    tx: &tokio_postgres::Transaction<'_>,
    hash: &[u8],
    kind: TokenKind,
    now: DateTime<Utc>,
) -> Result<TokenState, tokio_postgres::Error> {
    let kind = kind.as_str();
    let Some(owner) =
        tx.query_opt("SELECT account_id FROM email_token WHERE token_hash = $1 AND kind = $2", &[&hash, &kind]).await?
    else {
        return Ok(TokenState::Unknown);
    };
    let owner: i64 = owner.try_get(0)?;
    tx.execute("SELECT 1 FROM account WHERE id = $1 FOR NO KEY UPDATE", &[&owner]).await?;
    let taken = tx
        .query_opt(
            "UPDATE email_token SET used_at = $3 WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $3 RETURNING account_id",
            &[&hash, &kind, &now],
        )
        .await?;
    if let Some(row) = taken {
        let account_id: i64 = row.try_get(0)?;
        // Using one link voids its unused siblings of the same kind.
        revoke_links(tx, account_id, kind, now).await?;
        return Ok(TokenState::Valid(account_id));
    }
    let row = tx
        .query_opt(
            "SELECT account_id, expires_at, used_at, revoked_at FROM email_token WHERE token_hash = $1 AND kind = $2",
            &[&hash, &kind],
        )
        .await?;
    Ok(match token_state(row.as_ref(), now)? {
        // Not taken above, so not valid: it cannot be anything but these.
        TokenState::Valid(_) => TokenState::Used,
        state => state,
    })
}

/// Revokes the unused links of `kind` of an account.
async fn revoke_links(
    tx: &impl GenericClient,
    account_id: i64,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<u64, tokio_postgres::Error> {
    tx.execute(
        "UPDATE email_token SET revoked_at = $3 WHERE account_id = $1 AND kind = $2 AND used_at IS NULL \
         AND revoked_at IS NULL",
        &[&account_id, &kind, &now],
    )
    .await
}

/// See [`ConsoleStore::open_to_first_claim`].
async fn open_to_first_claim(client: &impl GenericClient, demarche_id: i64) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT NOT had_porteur AND NOT EXISTS (SELECT 1 FROM avis_daily WHERE demarche_id = $1) \
             FROM demarche WHERE id = $1",
            &[&demarche_id],
        )
        .await?;
    row.map_or(Ok(false), |r| r.try_get(0))
}

/// Moves the `avis_daily` rows of démarche $1 onto démarche $2, adding to the rows of the same
/// day and source: what it deletes is exactly what it adds.
fn merge_daily_sql() -> String {
    let cols = DAILY_COLUMNS.join(", ");
    let updates =
        DAILY_COLUMNS.iter().map(|c| format!("{c} = avis_daily.{c} + excluded.{c}")).collect::<Vec<_>>().join(", ");
    format!(
        "WITH moved AS (DELETE FROM avis_daily WHERE demarche_id = $1 RETURNING day, source, {cols}) \
         INSERT INTO avis_daily (demarche_id, day, source, {cols}) SELECT $2, day, source, {cols} FROM moved \
         ON CONFLICT (demarche_id, day, source) DO UPDATE SET {updates}"
    )
}

/// [`merge_daily_sql`] for `avis_daily_langue`.
const MERGE_LANGUES: &str =
    "WITH moved AS (DELETE FROM avis_daily_langue WHERE demarche_id = $1 RETURNING day, langue, n) \
     INSERT INTO avis_daily_langue (demarche_id, day, langue, n) SELECT $2, day, langue, n FROM moved \
     ON CONFLICT (demarche_id, day, langue) DO UPDATE SET n = avis_daily_langue.n + excluded.n";

/// Comments read with two keys before them: columns (key, key, received_at, source,
/// satisfaction, commentaire).
fn keyed_comments<A, B>(rows: &[Row]) -> Result<Vec<(A, B, Comment)>, tokio_postgres::Error>
where
    A: for<'a> tokio_postgres::types::FromSql<'a>,
    B: for<'a> tokio_postgres::types::FromSql<'a>,
{
    rows.iter()
        .map(|r| {
            let comment = Comment {
                received_at: r.try_get(2)?,
                source: r.try_get(3)?,
                satisfaction: r.try_get(4)?,
                text: r.try_get(5)?,
            };
            Ok((r.try_get(0)?, r.try_get(1)?, comment))
        })
        .collect()
}

/// Why a link cannot be used, from its `account_id, expires_at, used_at, revoked_at` row (none:
/// no such link of this kind).
fn token_state(row: Option<&Row>, now: DateTime<Utc>) -> Result<TokenState, tokio_postgres::Error> {
    let Some(row) = row else { return Ok(TokenState::Unknown) };
    let account_id: i64 = row.try_get(0)?;
    let expires_at: DateTime<Utc> = row.try_get(1)?;
    let used_at: Option<DateTime<Utc>> = row.try_get(2)?;
    let revoked_at: Option<DateTime<Utc>> = row.try_get(3)?;
    Ok(if used_at.is_some() {
        TokenState::Used
    } else if revoked_at.is_some() {
        TokenState::Revoked
    } else if expires_at <= now {
        TokenState::Expired
    } else {
        TokenState::Valid(account_id)
    })
}

impl ConsoleStore for PgConsoleStore {
    fn account_by_email(&self, email: String) -> BoxFuture<'_, Result<Option<Account>, StoreError>> {
        async move {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE email = $1");
            let row = self.conn().await?.query_opt(sql.as_str(), &[&email]).await?;
            Ok(row.map(|r| read_account(&r, 0)).transpose()?)
        }
        .boxed()
    }

    fn account_by_id(&self, id: i64) -> BoxFuture<'_, Result<Option<Account>, StoreError>> {
        async move {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE id = $1");
            let row = self.conn().await?.query_opt(sql.as_str(), &[&id]).await?;
            Ok(row.map(|r| read_account(&r, 0)).transpose()?)
        }
        .boxed()
    }

    fn sign_up(
        &self,
        new: NewAccount,
        link: [u8; 32],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<SignUp, StoreError>> {
        async move {
            // The account's new link, the only live one: inserted in the transaction that found
            // or made the account, with its row locked, so of two sign-ups at once the second
            // waits and revokes the first's link.
            async fn link_only(
                tx: &tokio_postgres::Transaction<'_>,
                id: i64,
                new: &NewAccount,
                link: &[u8],
                now: DateTime<Utc>,
                expires_at: DateTime<Utc>,
            ) -> Result<(), tokio_postgres::Error> {
                revoke_links(tx, id, "confirm", now).await?;
                tx.execute(
                    "INSERT INTO email_token (token_hash, account_id, kind, created_at, expires_at, name, administration) \
                     VALUES ($1, $2, 'confirm', $3, $4, $5, $6)",
                    &[&link, &id, &now, &expires_at, &new.name, &new.administration],
                )
                .await?;
                Ok(())
            }
            let mut conn = self.conn().await?;
            for _ in 0..SIGN_UP_ATTEMPTS {
                let tx = conn.transaction().await?;
                // A concurrent sign-up with the same address makes this wait for it, then do
                // nothing: exactly one of the two creates the account.
                // No password until the confirmation page sets one.
                let created = tx
                    .query_opt(
                        "INSERT INTO account (email, name, administration, password_hash, status, created_at, status_at) \
                         VALUES ($1, $2, $3, '', 'unconfirmed', $4, $4) ON CONFLICT (email) DO NOTHING RETURNING id",
                        &[&new.email, &new.name, &new.administration, &now],
                    )
                    .await?;
                if let Some(row) = created {
                    let id: i64 = row.try_get(0)?;
                    link_only(&tx, id, &new, &link, now, expires_at).await?;
                    tx.commit().await?;
                    return Ok(SignUp::Created(id));
                }
                let existing =
                    tx.query_opt("SELECT id, status FROM account WHERE email = $1 FOR UPDATE", &[&new.email]).await?;
                let Some(row) = existing else {
                    // Deleted between the two statements: start over.
                    tx.rollback().await?;
                    continue;
                };
                let id: i64 = row.try_get(0)?;
                let status = AccountStatus::parse(row.try_get(1)?);
                if status != AccountStatus::Unconfirmed {
                    tx.commit().await?;
                    return Ok(SignUp::Exists(id));
                }
                link_only(&tx, id, &new, &link, now, expires_at).await?;
                tx.commit().await?;
                return Ok(SignUp::Unconfirmed(id));
            }
            Err(StoreError::Task(format!("sign-up kept racing with the deletion of its account ({SIGN_UP_ATTEMPTS} attempts)")))
        }
        .boxed()
    }

    fn set_status(
        &self,
        id: i64,
        from: AccountStatus,
        status: AccountStatus,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let n = self
                .conn()
                .await?
                .execute(
                    "UPDATE account SET status = $3, status_at = $4 WHERE id = $1 AND status = $2",
                    &[&id, &from.as_str(), &status.as_str(), &now],
                )
                .await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn make_admin(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute(
                "UPDATE account SET is_admin = true, status = 'active', \
                     status_at = CASE WHEN status = 'active' THEN status_at ELSE $2 END WHERE id = $1",
                &[&id, &now],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn change_password(
        &self,
        id: i64,
        password_hash: String,
        keep: Option<[u8; 32]>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            // The account's row first, as the uses of its links do (see `take_link`).
            tx.execute("UPDATE account SET password_hash = $2 WHERE id = $1", &[&id, &password_hash]).await?;
            let keep = keep.as_ref().map(|k| k.as_slice());
            tx.execute(
                "DELETE FROM session WHERE account_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)",
                &[&id, &keep],
            )
            .await?;
            revoke_links(&tx, id, "reset", now).await?;
            tx.commit().await?;
            Ok(())
        }
        .boxed()
    }

    fn delete_account(&self, id: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            // Sessions and links go with it (ON DELETE CASCADE); domains it added keep no author.
            self.conn().await?.execute("DELETE FROM account WHERE id = $1", &[&id]).await?;
            Ok(())
        }
        .boxed()
    }

    fn delete_pending_account(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move { Ok(self.execute("DELETE FROM account WHERE id = $1 AND status = 'pending'", &[&id]).await? == 1) }
            .boxed()
    }

    fn pending_accounts(&self) -> BoxFuture<'_, Result<Vec<Account>, StoreError>> {
        async move {
            // Oldest first: the longest waiting, since `status_at` (confirmation) for a pending account.
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE status = 'pending' ORDER BY status_at, id");
            let rows = self.conn().await?.query(sql.as_str(), &[]).await?;
            Ok(rows.iter().map(|r| read_account(r, 0)).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn admins(&self) -> BoxFuture<'_, Result<Vec<Account>, StoreError>> {
        async move {
            let sql =
                format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE is_admin AND status = 'active' ORDER BY email");
            let rows = self.conn().await?.query(sql.as_str(), &[]).await?;
            Ok(rows.iter().map(|r| read_account(r, 0)).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn allowed_domains(&self) -> BoxFuture<'_, Result<Vec<AllowedDomain>, StoreError>> {
        async move {
            let rows =
                self.conn().await?.query("SELECT domain, added_at FROM allowed_domain ORDER BY domain", &[]).await?;
            Ok(rows
                .iter()
                .map(|r| Ok(AllowedDomain { domain: r.try_get(0)?, added_at: r.try_get(1)? }))
                .collect::<Result<_, tokio_postgres::Error>>()?)
        }
        .boxed()
    }

    fn add_allowed_domain(
        &self,
        domain: String,
        by: Option<i64>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let n = self
                .conn()
                .await?
                .execute(
                    "INSERT INTO allowed_domain (domain, added_by, added_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (domain) DO NOTHING",
                    &[&domain, &by, &now],
                )
                .await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn remove_allowed_domain(&self, domain: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let n = self.conn().await?.execute("DELETE FROM allowed_domain WHERE domain = $1", &[&domain]).await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn insert_token(
        &self,
        hash: [u8; 32],
        account_id: i64,
        kind: TokenKind,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute(
                "INSERT INTO email_token (token_hash, account_id, kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[&hash.as_slice(), &account_id, &kind.as_str(), &now, &expires_at],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn peek_token(
        &self,
        hash: [u8; 32],
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(TokenState, Option<AccountDetails>), StoreError>> {
        async move {
            let row = self
                .conn()
                .await?
                .query_opt(
                    "SELECT account_id, expires_at, used_at, revoked_at, name, administration FROM email_token \
                     WHERE token_hash = $1 AND kind = $2",
                    &[&hash.as_slice(), &kind.as_str()],
                )
                .await?;
            let state = token_state(row.as_ref(), now)?;
            let details = match &row {
                Some(r) => r.try_get::<_, Option<String>>(4)?.map(|name| AccountDetails {
                    name,
                    administration: r.try_get::<_, Option<String>>(5).ok().flatten().unwrap_or_default(),
                }),
                None => None,
            };
            Ok((state, details))
        }
        .boxed()
    }

    fn confirm_account(
        &self,
        hash: [u8; 32],
        details: AccountDetails,
        password_hash: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<TokenState, StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            let state = take_link(&tx, hash.as_slice(), TokenKind::Confirm, now).await?;
            if let TokenState::Valid(account) = state {
                tx.execute(
                    "UPDATE account SET name = $2, administration = $3, password_hash = $4 \
                     WHERE id = $1 AND status = 'unconfirmed'",
                    &[&account, &details.name, &details.administration, &password_hash],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(state)
        }
        .boxed()
    }

    fn reset_password(
        &self,
        hash: [u8; 32],
        password_hash: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(TokenState, u64), StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            let state = take_link(&tx, hash.as_slice(), TokenKind::Reset, now).await?;
            let mut keys = 0;
            if let TokenState::Valid(account) = state {
                tx.execute("UPDATE account SET password_hash = $2 WHERE id = $1", &[&account, &password_hash]).await?;
                tx.execute("DELETE FROM session WHERE account_id = $1", &[&account]).await?;
                keys = tx
                    .execute(
                        "UPDATE api_key SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL",
                        &[&account, &now],
                    )
                    .await?;
            }
            tx.commit().await?;
            Ok((state, keys))
        }
        .boxed()
    }

    fn proconnect_log_in(
        &self,
        login: ProConnectLogIn,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(Account, ProConnectLink), StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            // Two first log-ins of one identity at once: the second waits on the address's
            // account row, then finds the identity the first inserted (ON CONFLICT below).
            let known = tx
                .query_opt(
                    "UPDATE proconnect_identity SET last_login_at = $3, idp_id = $4 WHERE issuer = $1 AND sub = $2 \
                     RETURNING account_id",
                    &[&login.issuer, &login.sub, &now, &login.idp_id],
                )
                .await?;
            let (account_id, link) = match known {
                Some(row) => (row.try_get::<_, i64>(0)?, ProConnectLink::Known),
                None => {
                    // No password: its owner sets one through the reset flow, if ever.
                    let created = tx
                        .query_opt(
                            "INSERT INTO account (email, name, administration, password_hash, status, created_at, status_at) \
                             VALUES ($1, $2, $3, '', 'active', $4, $4) ON CONFLICT (email) DO NOTHING RETURNING id",
                            &[&login.email, &login.details.name, &login.details.administration, &now],
                        )
                        .await?;
                    let found = match created {
                        Some(row) => (row.try_get::<_, i64>(0)?, ProConnectLink::Created),
                        None => {
                            let row = tx
                                .query_one("SELECT id, status FROM account WHERE email = $1 FOR UPDATE", &[&login.email])
                                .await?;
                            let id: i64 = row.try_get(0)?;
                            match AccountStatus::parse(row.try_get(1)?) {
                                AccountStatus::Unconfirmed => {
                                    tx.execute(
                                        "UPDATE account SET name = $2, administration = $3, status = 'active', \
                                         status_at = $4 WHERE id = $1",
                                        &[&id, &login.details.name, &login.details.administration, &now],
                                    )
                                    .await?;
                                    revoke_links(&tx, id, "confirm", now).await?;
                                    (id, ProConnectLink::Created)
                                }
                                AccountStatus::Pending => {
                                    tx.execute(
                                        "UPDATE account SET status = 'active', status_at = $2 WHERE id = $1",
                                        &[&id, &now],
                                    )
                                    .await?;
                                    (id, ProConnectLink::Linked)
                                }
                                AccountStatus::Active => (id, ProConnectLink::Linked),
                            }
                        }
                    };
                    let inserted = tx
                        .execute(
                            "INSERT INTO proconnect_identity (issuer, sub, account_id, idp_id, created_at, last_login_at) \
                             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (issuer, sub) DO NOTHING",
                            &[&login.issuer, &login.sub, &found.0, &login.idp_id, &now],
                        )
                        .await?;
                    if inserted == 0 {
                        // Linked by a log-in of the same identity a moment ago: its account.
                        let row = tx
                            .query_one(
                                "SELECT account_id FROM proconnect_identity WHERE issuer = $1 AND sub = $2",
                                &[&login.issuer, &login.sub],
                            )
                            .await?;
                        (row.try_get(0)?, ProConnectLink::Known)
                    } else {
                        found
                    }
                }
            };
            tx.execute(
                "INSERT INTO session (token_hash, account_id, csrf, created_at, last_seen_at, id_token) \
                 VALUES ($1, $2, $3, $4, $4, $5)",
                &[&login.session.as_slice(), &account_id, &login.csrf, &now, &login.id_token],
            )
            .await?;
            let detail = format!("ProConnect, fournisseur d'identité {}", login.idp_id);
            tx.execute(
                "INSERT INTO audit (at, actor_id, action, account_id, demarche_id, detail) \
                 VALUES ($1, $2, $3, $2, NULL, $4)",
                &[&now, &account_id, &link.audit_action(), &detail],
            )
            .await?;
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE id = $1");
            let account = read_account(&tx.query_one(sql.as_str(), &[&account_id]).await?, 0)?;
            tx.commit().await?;
            Ok((account, link))
        }
        .boxed()
    }

    fn proconnect_identities(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<ProConnectIdentity>, StoreError>> {
        async move {
            let rows = self
                .conn()
                .await?
                .query(
                    "SELECT issuer, sub, idp_id, created_at, last_login_at FROM proconnect_identity \
                     WHERE account_id = $1 ORDER BY created_at, issuer, sub",
                    &[&account_id],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    Ok(ProConnectIdentity {
                        issuer: r.try_get(0)?,
                        sub: r.try_get(1)?,
                        idp_id: r.try_get(2)?,
                        created_at: r.try_get(3)?,
                        last_login_at: r.try_get(4)?,
                    })
                })
                .collect::<Result<_, tokio_postgres::Error>>()?)
        }
        .boxed()
    }

    fn update_account_details(&self, id: i64, details: AccountDetails) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute(
                "UPDATE account SET name = $2, administration = $3 WHERE id = $1",
                &[&id, &details.name, &details.administration],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn create_session(
        &self,
        hash: [u8; 32],
        account_id: i64,
        csrf: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute(
                "INSERT INTO session (token_hash, account_id, csrf, created_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                &[&hash.as_slice(), &account_id, &csrf, &now],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn session(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<Option<SessionRow>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT {ACCOUNT_COLUMNS_A}, s.csrf, s.created_at, s.last_seen_at, s.id_token \
                 FROM session s JOIN account a ON a.id = s.account_id WHERE s.token_hash = $1"
            );
            let row = self.conn().await?.query_opt(sql.as_str(), &[&hash.as_slice()]).await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(SessionRow {
                account: read_account(&row, 0)?,
                csrf: row.try_get(8)?,
                created_at: row.try_get(9)?,
                last_seen_at: row.try_get(10)?,
                id_token: row.try_get(11)?,
            }))
        }
        .boxed()
    }

    fn touch_session(&self, hash: [u8; 32], now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute("UPDATE session SET last_seen_at = $2 WHERE token_hash = $1", &[&hash.as_slice(), &now])
                .await
                .map(drop)
        }
        .boxed()
    }

    fn delete_session(&self, hash: [u8; 32]) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.conn().await?.execute("DELETE FROM session WHERE token_hash = $1", &[&hash.as_slice()]).await?;
            Ok(())
        }
        .boxed()
    }

    fn delete_sessions_of(&self, account_id: i64, keep: Option<[u8; 32]>) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            let keep: Option<&[u8]> = keep.as_ref().map(|k| k.as_slice());
            let n = self
                .conn()
                .await?
                .execute(
                    "DELETE FROM session WHERE account_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)",
                    &[&account_id, &keep],
                )
                .await?;
            Ok(n)
        }
        .boxed()
    }

    fn purge_expired(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            let sessions = tx
                .execute(
                    "DELETE FROM session WHERE last_seen_at < $1 OR created_at < $2",
                    &[&idle_before, &created_before],
                )
                .await?;
            let tokens = tx.execute("DELETE FROM email_token WHERE expires_at < $1", &[&now]).await?;
            tx.commit().await?;
            Ok(sessions + tokens)
        }
        .boxed()
    }

    fn queue_email(
        &self,
        to: String,
        subject: String,
        body: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<i64, StoreError>> {
        async move {
            let row = self
                .conn()
                .await?
                .query_one(
                    "INSERT INTO email_outbox (to_address, subject, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&to, &subject, &body, &now],
                )
                .await?;
            Ok(row.try_get(0)?)
        }
        .boxed()
    }

    fn claim_email(
        &self,
        id: i64,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<OutboxMail>, StoreError>> {
        async move {
            // One statement: of two replicas claiming at once, the second waits for the first's
            // row lock, re-reads `claimed_at` and gets nothing.
            let sql = format!(
                "UPDATE email_outbox SET claimed_at = $2, attempts = attempts + 1 \
                 WHERE id = $1 AND sent_at IS NULL AND given_up_at IS NULL AND (claimed_at IS NULL OR claimed_at < $3) \
                 RETURNING {MAIL_COLUMNS}"
            );
            let row = self.conn().await?.query_opt(sql.as_str(), &[&id, &now, &stale_before]).await?;
            Ok(row.as_ref().map(read_mail).transpose()?)
        }
        .boxed()
    }

    fn unsent_emails(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        async move {
            let rows = self
                .conn()
                .await?
                .query(
                    "SELECT id FROM email_outbox WHERE sent_at IS NULL AND given_up_at IS NULL \
                     AND (claimed_at IS NULL OR claimed_at < $1) AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
                     ORDER BY id LIMIT $2",
                    &[&stale_before, &limit, &now],
                )
                .await?;
            Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn mark_email_sent(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute("UPDATE email_outbox SET sent_at = $2, body = '', html = NULL WHERE id = $1", &[&id, &now])
                .await
                .map(drop)
        }
        .boxed()
    }

    fn mark_email_failed(&self, id: i64, error: String, retry: EmailRetry) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let (next, given_up) = match retry {
                EmailRetry::At(t) => (Some(t), None),
                EmailRetry::GiveUp(t) => (None, Some(t)),
            };
            self.execute(
                "UPDATE email_outbox SET last_error = $2, claimed_at = NULL, next_attempt_at = $3, given_up_at = $4 \
                 WHERE id = $1 AND sent_at IS NULL",
                &[&id, &error, &next, &given_up],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn undelivered_emails(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OutboxMail>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT {MAIL_COLUMNS} FROM email_outbox WHERE given_up_at IS NOT NULL AND sent_at IS NULL \
                 ORDER BY id DESC LIMIT $1"
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&limit]).await?;
            Ok(rows.iter().map(read_mail).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn resend_email(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let n = self
                .execute(
                    "UPDATE email_outbox SET given_up_at = NULL, resent_at = $2, next_attempt_at = NULL, claimed_at = NULL \
                     WHERE id = $1 AND given_up_at IS NOT NULL AND sent_at IS NULL",
                    &[&id, &now],
                )
                .await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn outbox_stats(&self) -> BoxFuture<'_, Result<OutboxStats, StoreError>> {
        async move {
            let row = self
                .conn()
                .await?
                .query_one(
                    "SELECT count(*) FILTER (WHERE given_up_at IS NULL), min(created_at) FILTER (WHERE given_up_at IS NULL), \
                     count(*) FILTER (WHERE given_up_at IS NOT NULL) FROM email_outbox WHERE sent_at IS NULL",
                    &[],
                )
                .await?;
            Ok(OutboxStats { waiting: row.try_get(0)?, oldest_waiting: row.try_get(1)?, given_up: row.try_get(2)? })
        }
        .boxed()
    }

    fn outbox(&self, to: Option<String>, limit: i64) -> BoxFuture<'_, Result<Vec<OutboxMail>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT {MAIL_COLUMNS} FROM email_outbox WHERE ($1::text IS NULL OR to_address = $1) \
                 ORDER BY id DESC LIMIT $2"
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&to, &limit]).await?;
            Ok(rows.iter().map(read_mail).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn search_demarches(
        &self,
        terms: Vec<String>,
        id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>> {
        async move {
            // $1 limit, $2 offset, $3 the id (if any), then one placeholder per term.
            let first_term = if id.is_some() { 4 } else { 3 };
            let filter = search_filter(terms.len(), id.map(|_| "$3".into()), |i| format!("${}", first_term + i));
            let sql = format!(
                "SELECT {DEMARCHE_COLUMNS} FROM demarche d WHERE d.active AND d.merged_into IS NULL AND ({filter}) \
                 ORDER BY d.volume_annuel DESC NULLS LAST, d.name, d.id LIMIT $1 OFFSET $2"
            );
            let patterns: Vec<String> = terms.iter().map(|t| like_escape(t)).collect();
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&limit, &offset];
            if let Some(id) = &id {
                params.push(id);
            }
            params.extend(patterns.iter().map(|p| p as &(dyn ToSql + Sync)));
            let rows = self.conn().await?.query(sql.as_str(), &params).await?;
            Ok(rows.iter().map(|r| read_demarche(r, 0)).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn demarche(&self, id: i64) -> BoxFuture<'_, Result<Option<DemarcheRow>, StoreError>> {
        async move {
            let sql = format!("SELECT {DEMARCHE_COLUMNS} FROM demarche d WHERE d.id = $1");
            let row = self.conn().await?.query_opt(sql.as_str(), &[&id]).await?;
            Ok(row.map(|r| read_demarche(&r, 0)).transpose()?)
        }
        .boxed()
    }

    fn create_demarche(
        &self,
        details: DemarcheDetails,
        search: String,
        creator: i64,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            // Two creations (or a catalogue import) cannot pick the same id: the lock conflicts
            // with itself and with any writer of the table, not with readers.
            tx.batch_execute("LOCK TABLE demarche IN SHARE ROW EXCLUSIVE MODE").await?;
            let id: i64 = match id {
                Some(id) => {
                    if tx.query_opt("SELECT 1 FROM demarche WHERE id = $1", &[&id]).await?.is_some() {
                        tx.rollback().await?;
                        return Ok(None);
                    }
                    id
                }
                None => tx.query_one("SELECT coalesce(max(id), 0) + 1 FROM demarche", &[]).await?.try_get(0)?,
            };
            tx.execute(
                "INSERT INTO demarche (id, name, created_by, created_at, active, high_volume_approved) \
                 VALUES ($1, $2, $3, $4, true, false)",
                &[&id, &details.name, &creator, &now],
            )
            .await?;
            write_details(&tx, id, &details, &search).await?;
            tx.execute(
                "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES ($1, $2, $3)",
                &[&creator, &id, &now],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(id))
        }
        .boxed()
    }

    fn import_demarches(&self, rows: Vec<CatalogueRow>) -> BoxFuture<'_, Result<ImportCounts, StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            // As a creation does: no other creation picks an id meanwhile.
            tx.batch_execute("LOCK TABLE demarche IN SHARE ROW EXCLUSIVE MODE").await?;
            let add = tx
                .prepare(
                    "INSERT INTO demarche (id, name, administration, url, volume_annuel, search, active, high_volume_approved, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, true, false, now()) ON CONFLICT (id) DO NOTHING",
                )
                .await?;
            let update = tx
                .prepare(
                    "UPDATE demarche SET name = $2, administration = $3, url = $4, volume_annuel = $5, search = $6 \
                     WHERE id = $1 AND (name, administration, url, volume_annuel) IS DISTINCT FROM ($2, $3, $4, $5)",
                )
                .await?;
            let mut counts = ImportCounts::default();
            for r in &rows {
                let p: [&(dyn ToSql + Sync); 6] = [&r.id, &r.name, &r.administration, &r.url, &r.volume_annuel, &r.search];
                if tx.execute(&add, &p).await? == 1 {
                    counts.added += 1;
                } else if tx.execute(&update, &p).await? == 1 {
                    counts.updated += 1;
                } else {
                    counts.unchanged += 1;
                }
            }
            tx.commit().await?;
            Ok(counts)
        }
        .boxed()
    }

    fn update_demarche(
        &self,
        id: i64,
        details: DemarcheDetails,
        search: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move { write_details(&*self.conn().await?, id, &details, &search).await }.boxed()
    }

    fn set_demarche_active(&self, id: i64, active: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        async move { self.execute("UPDATE demarche SET active = $2 WHERE id = $1", &[&id, &active]).await.map(drop) }
            .boxed()
    }

    fn approve_high_volume(&self, id: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute("UPDATE demarche SET high_volume_approved = true WHERE id = $1", &[&id]).await.map(drop)
        }
        .boxed()
    }

    fn high_volume_pending(&self, threshold: i64) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT {DEMARCHE_COLUMNS} FROM demarche d \
                 WHERE d.active AND NOT d.high_volume_approved AND d.volume_annuel > $1 \
                 ORDER BY d.volume_annuel DESC, d.name, d.id"
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&threshold]).await?;
            Ok(rows.iter().map(|r| read_demarche(r, 0)).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn merge_demarche(&self, duplicate: i64, target: i64) -> BoxFuture<'_, Result<Option<Merged>, StoreError>> {
        async move {
            if duplicate == target {
                return Ok(None);
            }
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            // Both rows locked, in id order (no deadlock between two merges): a merge into the
            // duplicate, or of the target, waits for this one and then sees its outcome. Flushes
            // lock no démarche row (avis and avis_daily have no foreign key): they go on until the
            // fence below.
            let rows = tx
                .query(
                    "SELECT id, merged_into FROM demarche WHERE id = $1 OR id = $2 ORDER BY id FOR UPDATE",
                    &[&duplicate, &target],
                )
                .await?;
            let mut target_free = false;
            let mut duplicate_exists = false;
            for row in &rows {
                let id: i64 = row.try_get(0)?;
                let merged_into: Option<i64> = row.try_get(1)?;
                if id == target {
                    target_free = merged_into.is_none();
                } else {
                    duplicate_exists = true;
                }
            }
            if !target_free || !duplicate_exists {
                tx.rollback().await?;
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO porteur (account_id, demarche_id, created_at) \
                 SELECT account_id, $2, created_at FROM porteur WHERE demarche_id = $1 ON CONFLICT DO NOTHING",
                &[&duplicate, &target],
            )
            .await?;
            tx.execute("DELETE FROM porteur WHERE demarche_id = $1", &[&duplicate]).await?;
            // Requests from people who now carry the target, or already ask for it, have their
            // answer; the others wait on the target.
            tx.execute(
                "DELETE FROM porteur_request WHERE demarche_id = $1 AND status = 'pending' AND (\
                 account_id IN (SELECT account_id FROM porteur WHERE demarche_id = $2) \
                 OR account_id IN (SELECT account_id FROM porteur_request WHERE demarche_id = $2 AND status = 'pending'))",
                &[&duplicate, &target],
            )
            .await?;
            // And those on the target from people who now carry it through the duplicate.
            tx.execute(
                "DELETE FROM porteur_request WHERE demarche_id = $1 AND status = 'pending' \
                 AND account_id IN (SELECT account_id FROM porteur WHERE demarche_id = $1)",
                &[&target],
            )
            .await?;
            let requesters = tx
                .query(
                    "UPDATE porteur_request r SET demarche_id = $2 WHERE demarche_id = $1 AND status = 'pending' \
                     RETURNING (SELECT email FROM account WHERE id = r.account_id)",
                    &[&duplicate, &target],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<Vec<String>, _>>()?;
            let invitees = tx
                .query(
                    "UPDATE porteur_invite SET demarche_id = $2 \
                     WHERE demarche_id = $1 AND used_at IS NULL AND cancelled_at IS NULL RETURNING email",
                    &[&duplicate, &target],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<Vec<String>, _>>()?;
            // The duplicate's avis moved while votes are still flushed; then, flushes held off by
            // the fence (those running finish first), the few they stored meanwhile, and the
            // counts. Once this commits, flushes write the duplicate's votes under the target
            // (`store::postgres::MERGE_FENCE`): none is left behind, none counted twice when
            // replayed.
            let move_avis = "UPDATE avis SET demarche_id = $2 WHERE demarche_id = $1";
            tx.execute(move_avis, &[&duplicate, &target]).await?;
            tx.batch_execute(crate::store::postgres::MERGE_FENCE).await?;
            tx.execute(move_avis, &[&duplicate, &target]).await?;
            tx.execute(&merge_daily_sql(), &[&duplicate, &target]).await?;
            tx.execute(MERGE_LANGUES, &[&duplicate, &target]).await?;
            tx.execute("UPDATE demarche SET active = false, merged_into = $2 WHERE id = $1", &[&duplicate, &target])
                .await?;
            tx.execute("UPDATE demarche SET merged_into = $2 WHERE merged_into = $1", &[&duplicate, &target]).await?;
            tx.commit().await?;
            Ok(Some(Merged { requesters, invitees }))
        }
        .boxed()
    }

    fn carried_by(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<DemarcheRow>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT {DEMARCHE_COLUMNS} FROM porteur p JOIN demarche d ON d.id = p.demarche_id \
                 WHERE p.account_id = $1 ORDER BY d.name, d.id"
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&account_id]).await?;
            Ok(rows.iter().map(|r| read_demarche(r, 0)).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn is_porteur(&self, account_id: i64, demarche_id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let row = self
                .conn()
                .await?
                .query_opt(
                    "SELECT 1 FROM porteur WHERE account_id = $1 AND demarche_id = $2",
                    &[&account_id, &demarche_id],
                )
                .await?;
            Ok(row.is_some())
        }
        .boxed()
    }

    fn porteurs_of(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<Account>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT {ACCOUNT_COLUMNS_A} FROM porteur p JOIN account a ON a.id = p.account_id \
                 WHERE p.demarche_id = $1 ORDER BY a.name, a.id"
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&demarche_id]).await?;
            Ok(rows.iter().map(|r| read_account(r, 0)).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn open_to_first_claim(&self, demarche_id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move { Ok(open_to_first_claim(&*self.conn().await?, demarche_id).await?) }.boxed()
    }

    fn claim(
        &self,
        demarche_id: i64,
        account_id: i64,
        reason: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Claim, StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            // Claims of one démarche queue up on its row: of two first claims, the second waits
            // and then sees the first's porteur. NO KEY UPDATE leaves foreign-key checks (votes,
            // porteurs added elsewhere) unblocked.
            let found = tx.query_opt("SELECT 1 FROM demarche WHERE id = $1 FOR NO KEY UPDATE", &[&demarche_id]).await?;
            if found.is_none() {
                tx.rollback().await?;
                return Err(StoreError::Task(format!("claim of démarche {demarche_id}, which does not exist")));
            }
            let mine = tx
                .query_opt(
                    "SELECT 1 FROM porteur WHERE account_id = $1 AND demarche_id = $2",
                    &[&account_id, &demarche_id],
                )
                .await?;
            let requested = tx
                .query_opt(
                    "SELECT id FROM porteur_request WHERE demarche_id = $1 AND account_id = $2 AND status = 'pending'",
                    &[&demarche_id, &account_id],
                )
                .await?;
            let outcome = if mine.is_some() {
                Claim::AlreadyPorteur
            } else if let Some(row) = requested {
                Claim::AlreadyRequested(row.try_get(0)?)
            } else if open_to_first_claim(&tx, demarche_id).await? {
                tx.execute(
                    "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES ($1, $2, $3)",
                    &[&account_id, &demarche_id, &now],
                )
                .await?;
                Claim::Granted
            } else if reason.trim().is_empty() {
                Claim::ReasonNeeded
            } else {
                let row = tx
                    .query_one(
                        "INSERT INTO porteur_request (demarche_id, account_id, status, created_at, reason) \
                         VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
                        &[&demarche_id, &account_id, &now, &reason],
                    )
                    .await?;
                Claim::Requested(row.try_get(0)?)
            };
            tx.commit().await?;
            Ok(outcome)
        }
        .boxed()
    }

    fn pending_requests(&self, demarche_id: Option<i64>) -> BoxFuture<'_, Result<Vec<PorteurRequest>, StoreError>> {
        async move {
            let sql = format!(
                "{REQUEST_SELECT} WHERE r.status = 'pending' AND ($1::bigint IS NULL OR r.demarche_id = $1) \
                 ORDER BY r.created_at, r.id"
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&demarche_id]).await?;
            Ok(rows.iter().map(read_request).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn requests_to_decide(
        &self,
        account_id: i64,
        is_admin: bool,
    ) -> BoxFuture<'_, Result<Vec<PorteurRequest>, StoreError>> {
        async move {
            let sql = format!(
                "{REQUEST_SELECT} WHERE r.status = 'pending' AND (\
                 EXISTS (SELECT 1 FROM porteur p WHERE p.demarche_id = r.demarche_id AND p.account_id = $1) \
                 OR ($2 AND NOT EXISTS (SELECT 1 FROM porteur p WHERE p.demarche_id = r.demarche_id))) \
                 ORDER BY r.created_at, r.id"
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&account_id, &is_admin]).await?;
            Ok(rows.iter().map(read_request).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn decide_request(
        &self,
        request_id: i64,
        accept: bool,
        by: i64,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<PorteurRequest>, StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            // Compare-and-set: of two decisions at once, the second waits for the row, re-reads
            // its status and changes nothing.
            let status = if accept { "accepted" } else { "refused" };
            let decided = tx
                .query_opt(
                    "UPDATE porteur_request SET status = $2, decided_by = $3, decided_at = $4 \
                     WHERE id = $1 AND status = 'pending' RETURNING id",
                    &[&request_id, &status, &by, &now],
                )
                .await?;
            if decided.is_none() {
                tx.rollback().await?;
                return Ok(None);
            }
            let sql = format!("{REQUEST_SELECT} WHERE r.id = $1");
            let request = read_request(&tx.query_one(sql.as_str(), &[&request_id]).await?)?;
            if accept {
                tx.execute(
                    "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&request.account.id, &request.demarche_id, &now],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(Some(request))
        }
        .boxed()
    }

    fn add_porteur(
        &self,
        demarche_id: i64,
        account_id: i64,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let n = self
                .execute(
                    "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&account_id, &demarche_id, &now],
                )
                .await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn leave(&self, demarche_id: i64, account_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            // Invitations first, then the porteur row: the order `take_invite` locks them in, so
            // an acceptance racing a departure waits for it and then finds its invitation void.
            tx.execute(
                "UPDATE porteur_invite SET cancelled_at = $3 \
                 WHERE demarche_id = $1 AND invited_by = $2 AND used_at IS NULL AND cancelled_at IS NULL",
                &[&demarche_id, &account_id, &now],
            )
            .await?;
            let n = tx
                .execute("DELETE FROM porteur WHERE account_id = $1 AND demarche_id = $2", &[&account_id, &demarche_id])
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        }
        .boxed()
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
        async move {
            self.execute(
                "INSERT INTO porteur_invite (token_hash, demarche_id, email, invited_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&hash.as_slice(), &demarche_id, &email, &by, &now, &expires_at],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn pending_invites(&self, demarche_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Invite>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT i.token_hash, i.email, coalesce(a.name, ''), i.created_at, i.expires_at \
                 FROM porteur_invite i LEFT JOIN account a ON a.id = i.invited_by \
                 WHERE i.demarche_id = $1 AND {} ORDER BY i.created_at DESC, i.email",
                super::live_invite("$2")
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&demarche_id, &now]).await?;
            rows.iter()
                .map(|r| {
                    let hash: &[u8] = r.try_get(0)?;
                    Ok(Invite {
                        hash: hash.try_into().unwrap_or([0; 32]),
                        email: r.try_get(1)?,
                        invited_by: r.try_get(2)?,
                        created_at: r.try_get(3)?,
                        expires_at: r.try_get(4)?,
                    })
                })
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(StoreError::from)
        }
        .boxed()
    }

    fn cancel_invite(
        &self,
        demarche_id: i64,
        hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        async move {
            let row = self
                .conn()
                .await?
                .query_opt(
                    "UPDATE porteur_invite SET cancelled_at = $3 \
                     WHERE token_hash = $1 AND demarche_id = $2 AND used_at IS NULL AND cancelled_at IS NULL \
                     RETURNING email",
                    &[&hash.as_slice(), &demarche_id, &now],
                )
                .await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        }
        .boxed()
    }

    fn take_invite(
        &self,
        hash: [u8; 32],
        account_id: i64,
        email: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Result<i64, TokenState>, StoreError>> {
        async move {
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await?;
            let hash = hash.as_slice();
            // Locked: of two uses at once, the second waits and then finds it used.
            let row = tx
                .query_opt(
                    "SELECT demarche_id, email, expires_at, used_at, cancelled_at, invited_by FROM porteur_invite \
                     WHERE token_hash = $1 FOR UPDATE",
                    &[&hash],
                )
                .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(Err(TokenState::Unknown));
            };
            let demarche_id: i64 = row.try_get(0)?;
            let invited: String = row.try_get(1)?;
            let expires_at: DateTime<Utc> = row.try_get(2)?;
            let used_at: Option<DateTime<Utc>> = row.try_get(3)?;
            let cancelled_at: Option<DateTime<Utc>> = row.try_get(4)?;
            let invited_by: Option<i64> = row.try_get(5)?;
            // Its author must still carry the démarche (their porteur row locked against a
            // concurrent departure, which cancels this invitation first) or be an administrator.
            let author_still_carries = tx
                .query_opt(
                    "SELECT 1 FROM porteur WHERE account_id = $1 AND demarche_id = $2 FOR KEY SHARE",
                    &[&invited_by, &demarche_id],
                )
                .await?
                .is_some()
                || tx
                    .query_opt(
                        "SELECT 1 FROM account WHERE id = $1 AND is_admin AND status = 'active' FOR KEY SHARE",
                        &[&invited_by],
                    )
                    .await?
                    .is_some();
            let refusal = if used_at.is_some() {
                Some(TokenState::Used)
            } else if cancelled_at.is_some() {
                Some(TokenState::Revoked)
            } else if expires_at <= now {
                Some(TokenState::Expired)
            } else if invited.to_lowercase() != email.to_lowercase() {
                Some(TokenState::Unknown)
            } else if !author_still_carries {
                Some(TokenState::Revoked)
            } else {
                None
            };
            if let Some(state) = refusal {
                tx.rollback().await?;
                return Ok(Err(state));
            }
            tx.execute("UPDATE porteur_invite SET used_at = $2 WHERE token_hash = $1", &[&hash, &now]).await?;
            tx.execute(
                "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&account_id, &demarche_id, &now],
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(demarche_id))
        }
        .boxed()
    }

    fn last_avis(&self, demarche_id: i64) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>> {
        async move {
            let row = self
                .conn()
                .await?
                .query_one("SELECT max(received_at) FROM avis WHERE demarche_id = $1", &[&demarche_id])
                .await?;
            Ok(row.try_get(0)?)
        }
        .boxed()
    }

    fn sources(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<(String, chrono::NaiveDate)>, StoreError>> {
        async move {
            let rows = self
                .conn()
                .await?
                .query(
                    "SELECT source, max(day) FROM avis_daily WHERE demarche_id = $1 GROUP BY source ORDER BY 2 DESC, 1",
                    &[&demarche_id],
                )
                .await?;
            Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, tokio_postgres::Error>>()?)
        }
        .boxed()
    }

    fn counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<crate::stats::Counts, StoreError>> {
        async move {
            // Whole months from the rollup, the days around them from avis_daily: O(months),
            // not O(days × sources). sum(bigint) is numeric: back to bigint.
            let sums =
                DAILY_COLUMNS.iter().map(|c| format!("coalesce(sum({c}), 0)::bigint")).collect::<Vec<_>>().join(", ");
            let (rows_sql, dates) =
                period_plan(from, to)
                    .union_sql(&DAILY_COLUMNS, "{c}", Some("demarche_id = $1"), |i| format!("${}", i + 1));
            let sql = format!("SELECT {sums} FROM ({rows_sql}) x");
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&demarche_id];
            params.extend(dates.iter().map(|d| d as &(dyn ToSql + Sync)));
            let row = self.read_conn().await?.query_one(sql.as_str(), &params).await?;
            counts_from(&row, 0)
        }
        .boxed()
    }

    fn day_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<(chrono::NaiveDate, Counts)>, StoreError>> {
        async move {
            // sum(bigint) is numeric: back to bigint.
            let sums = DAILY_COLUMNS.iter().map(|c| format!("sum({c})::bigint")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT day, {sums} FROM avis_daily WHERE demarche_id = $1 AND day BETWEEN $2 AND $3 \
                 AND ($4::text IS NULL OR source = $4) GROUP BY day ORDER BY day"
            );
            let rows = self.read_conn().await?.query(sql.as_str(), &[&demarche_id, &from, &to, &source]).await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, counts_from(r, 1)?))).collect()
        }
        .boxed()
    }

    fn observatory(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(DemarcheRow, Counts)>, StoreError>> {
        async move {
            let sums = DAILY_COLUMNS.iter().map(|c| format!("sum({c}) AS {c}")).collect::<Vec<_>>().join(", ");
            let totals = DAILY_COLUMNS.iter().map(|c| format!("coalesce(a.{c}, 0)")).collect::<Vec<_>>().join(", ");
            // Summed as int4 (sum(int4) is bigint, with a plain 64-bit accumulator, where
            // sum(bigint) accumulates in 128 bits: 1.5 to 1.9 times slower over these rows). A
            // démarche's count for one month fits in 31 bits by far.
            let (rows_sql, dates) =
                period_plan(from, to).union_sql(&DAILY_COLUMNS, "{c}::int4", None, |i| format!("${i}"));
            let sql = format!(
                "SELECT {DEMARCHE_COLUMNS}, {totals} FROM demarche d LEFT JOIN \
                 (SELECT demarche_id, {sums} FROM ({rows_sql}) x GROUP BY demarche_id) a \
                 ON a.demarche_id = d.id WHERE d.active AND d.merged_into IS NULL ORDER BY d.id"
            );
            let params: Vec<&(dyn ToSql + Sync)> = dates.iter().map(|d| d as &(dyn ToSql + Sync)).collect();
            // One statement over a few hundred thousand rows: JIT compilation would cost more
            // (about 100 ms) than it saves, and the aggregate of 20,000 démarches wants more
            // than the default 4 MB not to spill to disk.
            let mut conn = self.read_conn().await?;
            let tx = conn.build_transaction().read_only(true).start().await?;
            tx.batch_execute("SET LOCAL jit = off; SET LOCAL work_mem = '64MB'").await?;
            let rows = tx.query(sql.as_str(), &params).await?;
            tx.commit().await?;
            rows.iter().map(|r| Ok((read_demarche(r, 0)?, counts_from(r, 16)?))).collect()
        }
        .boxed()
    }

    fn source_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(String, Counts)>, StoreError>> {
        async move {
            let sums = DAILY_COLUMNS.iter().map(|c| format!("sum({c})::bigint")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT source, {sums} FROM avis_daily WHERE demarche_id = $1 AND day BETWEEN $2 AND $3 \
                 GROUP BY source ORDER BY sum(n) DESC, source"
            );
            let rows = self.read_conn().await?.query(sql.as_str(), &[&demarche_id, &from, &to]).await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, counts_from(r, 1)?))).collect()
        }
        .boxed()
    }

    fn langue_counts(
        &self,
        demarche_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>> {
        async move {
            let rows = self
                .read_conn()
                .await?
                .query(
                    "SELECT langue, sum(n)::bigint FROM avis_daily_langue WHERE demarche_id = $1 AND day BETWEEN $2 AND $3 \
                     GROUP BY langue ORDER BY 2 DESC, 1",
                    &[&demarche_id, &from, &to],
                )
                .await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
        }
        .boxed()
    }

    fn latest_comments(
        &self,
        demarche_id: i64,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        source: Option<String>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Comment>, StoreError>> {
        async move {
            let rows = self
                .conn()
                .await?
                .query(
                    "SELECT received_at, source, satisfaction, commentaire FROM avis \
                     WHERE demarche_id = $1 AND received_at >= $2 AND received_at < $3 AND commentaire IS NOT NULL \
                     AND ($4::text IS NULL OR source = $4) ORDER BY received_at DESC LIMIT $5",
                    &[&demarche_id, &from, &until, &source, &limit],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(Comment {
                    received_at: r.try_get(0)?,
                    source: r.try_get(1)?,
                    satisfaction: r.try_get(2)?,
                    text: r.try_get(3)?,
                });
            }
            Ok(out)
        }
        .boxed()
    }

    // Every avis (« Tous les avis », exports, API)
    fn avis_page(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<AvisRow>, StoreError>> {
        self.keyset_page(demarche_id, filter, cursor, limit, true).boxed()
    }

    fn count_avis(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
        cap: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        async move {
            let mut params = Params::new();
            let from = avis_from(demarche_id, &filter, &mut params);
            let text = text_match(&filter, &mut params);
            let limit = bind(&mut params, cap.saturating_add(1));
            // Without words, counted newest first, as the page reads them: the planner left to
            // itself expects the matches spread evenly and scans old months in parallel (40 to
            // 110 ms at 10,000,000 avis for « pas bien » with a comment, past the budget), where
            // the newest months hold the cap's worth in a few milliseconds.
            let order = if filter.text.is_none() { EXPORT_ORDER } else { "" };
            let sql = format!("SELECT count(*) FROM (SELECT 1 {from}{text} {order} LIMIT {limit}) matches");
            let mut conn = self.read_conn().await?;
            let tx = conn.build_transaction().read_only(true).start().await?;
            tx.batch_execute(&format!("SET LOCAL statement_timeout = {}", super::COUNT_BUDGET.as_millis())).await?;
            if filter.text.is_some() {
                // Words are counted through the GIN index only (a bitmap scan), as
                // `plan_text_search` does, never by walking every comment.
                tx.batch_execute(
                    "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_seqscan = off",
                )
                .await?;
            }
            let n: i64 = match tx.query_one(&sql, &refs(&params)).await {
                Ok(row) => row.try_get(0)?,
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            tx.commit().await?;
            Ok(Some(n))
        }
        .boxed()
    }

    fn avis_after(
        &self,
        demarche_id: i64,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<AvisRow>, StoreError>> {
        self.keyset_page(demarche_id, AvisFilter::default(), cursor, limit, false).boxed()
    }

    fn avis_export(
        &self,
        demarche_id: i64,
        filter: AvisFilter,
    ) -> futures_util::stream::BoxStream<'static, Result<AvisRow, StoreError>> {
        let mut params = Params::new();
        let mut from = avis_from(demarche_id, &filter, &mut params);
        from.push_str(&text_match(&filter, &mut params));
        let text = filter.text.is_some();
        let state = Export { pool: self.reads.clone(), from, text, params, cursor: None, done: false };
        futures_util::stream::try_unfold(state, Export::next_batch)
            .map_ok(|batch| futures_util::stream::iter(batch.into_iter().map(Ok)))
            .try_flatten()
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
        async move {
            let row = self
                .conn()
                .await?
                .query_one(
                    "INSERT INTO api_key (token_hash, account_id, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&&hash[..], &account_id, &name, &now],
                )
                .await?;
            Ok(row.try_get(0)?)
        }
        .boxed()
    }

    fn api_keys(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<ApiKey>, StoreError>> {
        async move {
            let rows = self
                .conn()
                .await?
                .query(
                    "SELECT id, name, created_at, last_used_at, revoked_at FROM api_key WHERE account_id = $1 \
                     ORDER BY created_at DESC, id DESC",
                    &[&account_id],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    Ok(ApiKey {
                        id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        created_at: r.try_get(2)?,
                        last_used_at: r.try_get(3)?,
                        revoked_at: r.try_get(4)?,
                    })
                })
                .collect::<Result<_, tokio_postgres::Error>>()?)
        }
        .boxed()
    }

    fn revoke_api_key(&self, id: i64, account_id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let n = self
                .execute(
                    "UPDATE api_key SET revoked_at = $3 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
                    &[&id, &account_id, &now],
                )
                .await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn use_api_key(
        &self,
        hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<(i64, Account)>, StoreError>> {
        async move {
            let conn = self.conn().await?;
            let row = conn
                .query_opt(
                    &format!(
                        "SELECT k.id, {ACCOUNT_COLUMNS_A} FROM api_key k JOIN account a ON a.id = k.account_id \
                         WHERE k.token_hash = $1 AND k.revoked_at IS NULL"
                    ),
                    &[&&hash[..]],
                )
                .await?;
            let Some(row) = row else { return Ok(None) };
            let id: i64 = row.try_get(0)?;
            let account = read_account(&row, 1)?;
            let a_minute_ago = now - chrono::Duration::seconds(60);
            conn.execute(
                "UPDATE api_key SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
                &[&id, &now, &a_minute_ago],
            )
            .await?;
            Ok(Some((id, account)))
        }
        .boxed()
    }

    fn audit(&self, entry: AuditEntry, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute(
                "INSERT INTO audit (at, actor_id, action, account_id, demarche_id, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                &[&now, &entry.actor_id, &entry.action, &entry.account_id, &entry.demarche_id, &entry.detail],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn audit_log(&self, limit: i64) -> BoxFuture<'_, Result<Vec<Dated<AuditEntry>>, StoreError>> {
        async move {
            let rows = self
                .conn()
                .await?
                .query(
                    "SELECT at, actor_id, action, account_id, demarche_id, detail FROM audit ORDER BY id DESC LIMIT $1",
                    &[&limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let entry = AuditEntry {
                        actor_id: r.try_get(1)?,
                        action: r.try_get(2)?,
                        account_id: r.try_get(3)?,
                        demarche_id: r.try_get(4)?,
                        detail: r.try_get(5)?,
                    };
                    Ok((r.try_get(0)?, entry))
                })
                .collect::<Result<_, tokio_postgres::Error>>()?)
        }
        .boxed()
    }
    // Notifications (DESIGN §15)
    fn notification_settings(&self, account_id: i64) -> BoxFuture<'_, Result<NotificationSettings, StoreError>> {
        async move {
            let conn = self.conn().await?;
            let digest: Option<String> = conn
                .query_opt("SELECT digest FROM notify_account WHERE account_id = $1", &[&account_id])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            let d = Switches::default();
            let rows = conn
                .query(
                    &format!(
                        "SELECT d.id, d.name, {SWITCHES} \
                         FROM porteur p JOIN demarche d ON d.id = p.demarche_id \
                         LEFT JOIN notify_demarche s ON s.account_id = p.account_id AND s.demarche_id = p.demarche_id \
                         LEFT JOIN notify_account na ON na.account_id = p.account_id \
                         WHERE p.account_id = $1 ORDER BY d.name, d.id"
                    ),
                    &[&account_id, &d.comments, &d.drop_alert, &d.silent],
                )
                .await?;
            let mut demarches = Vec::with_capacity(rows.len());
            for r in &rows {
                demarches.push((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    Switches { comments: r.try_get(2)?, drop_alert: r.try_get(3)?, silent: r.try_get(4)? },
                ));
            }
            Ok(NotificationSettings {
                digest: digest.as_deref().and_then(DigestFrequency::parse).unwrap_or_default(),
                demarches,
            })
        }
        .boxed()
    }

    fn set_digest(&self, account_id: i64, digest: DigestFrequency) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute(
                "INSERT INTO notify_account (account_id, digest) VALUES ($1, $2) \
                 ON CONFLICT (account_id) DO UPDATE SET digest = excluded.digest",
                &[&account_id, &digest.as_str()],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn set_kind_off(&self, account_id: i64, kind: String, off: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let column = kind_off_column(&kind)?;
            self.execute(
                &format!(
                    "INSERT INTO notify_account (account_id, digest, {column}) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id) DO UPDATE SET {column} = excluded.{column}"
                ),
                &[&account_id, &DigestFrequency::default().as_str(), &off],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn set_switches(
        &self,
        account_id: i64,
        demarche_id: i64,
        switches: Switches,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let n = self
                .execute(
                    "INSERT INTO notify_demarche (account_id, demarche_id, comments, drop_alert, silent) \
                     SELECT $1, $2, $3, $4, $5 WHERE EXISTS \
                     (SELECT 1 FROM porteur WHERE account_id = $1 AND demarche_id = $2) \
                     ON CONFLICT (account_id, demarche_id) DO UPDATE SET comments = excluded.comments, \
                     drop_alert = excluded.drop_alert, silent = excluded.silent",
                    &[&account_id, &demarche_id, &switches.comments, &switches.drop_alert, &switches.silent],
                )
                .await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn digest_lines(
        &self,
        digest: DigestFrequency,
        previous_from: chrono::NaiveDate,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<DigestLine>, StoreError>> {
        async move {
            let sums = |cmp: &str| {
                DAILY_COLUMNS[..NOTIFY_COLUMNS]
                    .iter()
                    .map(|c| format!("sum(CASE WHEN x.day {cmp} $3 THEN x.{c} ELSE 0 END)::bigint"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sql = format!(
                "SELECT a.id, a.email, d.id, d.name, {}, {}, a.created_at \
                 FROM account a JOIN porteur p ON p.account_id = a.id JOIN demarche d ON d.id = p.demarche_id \
                 JOIN avis_daily x ON x.demarche_id = p.demarche_id AND x.day BETWEEN $2 AND $4 \
                 LEFT JOIN notify_account s ON s.account_id = a.id \
                 WHERE a.status = 'active' AND coalesce(s.digest, '{}') = $1 \
                 GROUP BY a.id, a.email, d.id, d.name HAVING sum(CASE WHEN x.day >= $3 THEN x.n ELSE 0 END) > 0 \
                 ORDER BY a.id, d.name, d.id",
                sums(">="),
                sums("<"),
                DigestFrequency::default().as_str()
            );
            let rows =
                self.read_conn().await?.query(sql.as_str(), &[&digest.as_str(), &previous_from, &from, &to]).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(DigestLine {
                    account_id: r.try_get(0)?,
                    account_created_at: r.try_get(4 + 2 * NOTIFY_COLUMNS)?,
                    email: r.try_get(1)?,
                    demarche_id: r.try_get(2)?,
                    demarche_name: r.try_get(3)?,
                    counts: narrow(r, 4)?,
                    previous: narrow(r, 4 + NOTIFY_COLUMNS)?,
                });
            }
            Ok(out)
        }
        .boxed()
    }

    fn comments_in(
        &self,
        demarche_ids: Vec<i64>,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        latest: i64,
    ) -> BoxFuture<'_, Result<Vec<PeriodComment>, StoreError>> {
        async move {
            let rows = self
                .read_conn()
                .await?
                .query(
                    "SELECT demarche_id, total, received_at, source, satisfaction, commentaire FROM ( \
                     SELECT demarche_id, count(*) OVER (PARTITION BY demarche_id) AS total, \
                     row_number() OVER (PARTITION BY demarche_id ORDER BY received_at DESC, id DESC) AS rank, \
                     received_at, source, satisfaction, commentaire FROM avis \
                     WHERE demarche_id = ANY($1) AND received_at >= $2 AND received_at < $3 \
                     AND commentaire IS NOT NULL) t WHERE rank <= $4 ORDER BY demarche_id, received_at DESC",
                    &[&demarche_ids, &from, &until, &latest],
                )
                .await?;
            Ok(keyed_comments(&rows)?)
        }
        .boxed()
    }

    fn subscriptions(&self) -> BoxFuture<'_, Result<Vec<Subscription>, StoreError>> {
        async move {
            let d = Switches::default();
            let rows = self
                .conn()
                .await?
                .query(
                    &format!(
                        "SELECT a.id, a.email, d.id, d.name, {}, a.created_at \
                         FROM porteur p JOIN account a ON a.id = p.account_id JOIN demarche d ON d.id = p.demarche_id \
                         LEFT JOIN notify_demarche s ON s.account_id = p.account_id AND s.demarche_id = p.demarche_id \
                         LEFT JOIN notify_account na ON na.account_id = p.account_id \
                         WHERE a.status = 'active' ORDER BY a.id, d.id",
                        SWITCHES.replace("$2", "$1").replace("$3", "$2").replace("$4", "$3")
                    ),
                    &[&d.comments, &d.drop_alert, &d.silent],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(Subscription {
                    account_id: r.try_get(0)?,
                    account_created_at: r.try_get(7)?,
                    email: r.try_get(1)?,
                    demarche_id: r.try_get(2)?,
                    demarche_name: r.try_get(3)?,
                    switches: Switches { comments: r.try_get(4)?, drop_alert: r.try_get(5)?, silent: r.try_get(6)? },
                });
            }
            Ok(out)
        }
        .boxed()
    }

    fn comment_watches(&self) -> BoxFuture<'_, Result<Vec<CommentWatch>, StoreError>> {
        async move {
            let rows = self
                .conn()
                .await?
                .query(
                    "SELECT s.account_id, a.email, s.demarche_id, d.name, \
                 (SELECT max(n.period) FROM notification n WHERE n.account_id = s.account_id \
                 AND n.kind = 'commentaires' AND n.demarche_id = s.demarche_id), \
                 (SELECT max(n.created_at) FROM notification n WHERE n.account_id = s.account_id \
                 AND n.kind = 'commentaires' AND n.demarche_id = s.demarche_id), a.created_at \
                 FROM notify_demarche s JOIN porteur p ON p.account_id = s.account_id AND p.demarche_id = s.demarche_id \
                 JOIN account a ON a.id = s.account_id JOIN demarche d ON d.id = s.demarche_id \
                 WHERE s.comments AND a.status = 'active' ORDER BY s.account_id, s.demarche_id",
                    &[],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(CommentWatch {
                    subscription: Subscription {
                        account_id: r.try_get(0)?,
                        account_created_at: r.try_get(6)?,
                        email: r.try_get(1)?,
                        demarche_id: r.try_get(2)?,
                        demarche_name: r.try_get(3)?,
                        switches: Switches { comments: true, ..Switches::default() },
                    },
                    last_until: r.try_get(4)?,
                    last_sent: r.try_get(5)?,
                });
            }
            Ok(out)
        }
        .boxed()
    }

    fn comments_since(
        &self,
        watches: Vec<(i64, DateTime<Utc>)>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<CommentSince>, StoreError>> {
        async move {
            let (ids, since): (Vec<i64>, Vec<DateTime<Utc>>) = watches.into_iter().unzip();
            // One index probe of each démarche's newest comments, in one statement.
            let rows = self
                .read_conn()
                .await?
                .query(
                    "SELECT w.demarche_id, w.since, c.received_at, c.source, c.satisfaction, c.commentaire \
                     FROM unnest($1::bigint[], $2::timestamptz[]) AS w(demarche_id, since) \
                     CROSS JOIN LATERAL (SELECT received_at, source, satisfaction, commentaire FROM avis \
                     WHERE demarche_id = w.demarche_id AND received_at >= w.since AND received_at < $3 \
                     AND commentaire IS NOT NULL ORDER BY received_at DESC LIMIT $4) c",
                    &[&ids, &since, &until, &limit],
                )
                .await?;
            Ok(keyed_comments(&rows)?)
        }
        .boxed()
    }

    fn source_windows(
        &self,
        from: chrono::NaiveDate,
        split: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<SourceWindow>, StoreError>> {
        async move {
            let sums = |cmp: &str| {
                DAILY_COLUMNS[..NOTIFY_COLUMNS]
                    .iter()
                    .map(|c| format!("sum(CASE WHEN x.day {cmp} $2 THEN x.{c} ELSE 0 END)::bigint"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sql = format!(
                "SELECT x.demarche_id, x.source, {}, {}, max(x.day) FROM avis_daily x \
                 WHERE x.day BETWEEN $1 AND $3 AND x.demarche_id IN (SELECT demarche_id FROM porteur) \
                 GROUP BY x.demarche_id, x.source ORDER BY x.demarche_id, x.source",
                sums("<"),
                sums(">=")
            );
            let rows = self.read_conn().await?.query(sql.as_str(), &[&from, &split, &to]).await?;
            let n = NOTIFY_COLUMNS;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(SourceWindow {
                    demarche_id: r.try_get(0)?,
                    source: r.try_get(1)?,
                    before: narrow(r, 2)?,
                    after: narrow(r, 2 + n)?,
                    last_day: r.try_get(2 + 2 * n)?,
                });
            }
            Ok(out)
        }
        .boxed()
    }

    fn disarmed_alerts(&self, kind: String) -> BoxFuture<'_, Result<Vec<DisarmedAlert>, StoreError>> {
        async move {
            let rows = self
                .conn()
                .await?
                .query("SELECT account_id, demarche_id, source FROM notify_alert WHERE kind = $1", &[&kind])
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
            }
            Ok(out)
        }
        .boxed()
    }

    fn rearm_alerts(&self, kind: String, alerts: Vec<DisarmedAlert>) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            if alerts.is_empty() {
                return Ok(());
            }
            let mut accounts = Vec::with_capacity(alerts.len());
            let mut demarches = Vec::with_capacity(alerts.len());
            let mut sources = Vec::with_capacity(alerts.len());
            for (a, d, source) in alerts {
                accounts.push(a);
                demarches.push(d);
                sources.push(source);
            }
            self.execute(
                "DELETE FROM notify_alert n USING unnest($2::bigint[], $3::bigint[], $4::text[]) AS r(a, d, s) \
                 WHERE n.kind = $1 AND n.account_id = r.a AND n.demarche_id = r.d AND n.source = r.s",
                &[&kind, &accounts, &demarches, &sources],
            )
            .await
            .map(drop)
        }
        .boxed()
    }

    fn record_notifications(
        &self,
        due: Vec<DueNotification>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        async move {
            if due.is_empty() {
                return Ok(Vec::new());
            }
            let n = due.len();
            let (mut accounts, mut kinds, mut demarches, mut periods) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut to, mut subjects, mut bodies, mut htmls, mut unsubscribes) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut sources, mut fired): (Vec<Option<String>>, Vec<Option<chrono::NaiveDate>>) =
                (Vec::with_capacity(n), Vec::with_capacity(n));
            for d in due {
                accounts.push(d.account_id);
                kinds.push(d.kind);
                demarches.push(d.demarche_id);
                periods.push(d.period);
                to.push(d.to);
                subjects.push(d.subject);
                bodies.push(d.body);
                htmls.push(d.html);
                unsubscribes.push(d.unsubscribe);
                let (source, day) = d.disarm.unzip();
                sources.push(source);
                fired.push(day);
            }
            // One statement: every key inserted in the batch's order, each with the outbox id
            // taken for it beforehand; the mails and disarmed alerts of the keys this statement
            // inserted only. A replica inserting the same keys waits for this transaction on
            // the primary key, then inserts none of them.
            let rows = self
                .conn()
                .await?
                .query(
                    "WITH due AS MATERIALIZED (SELECT u.*, nextval(pg_get_serial_sequence('email_outbox', 'id')) AS email_id \
                     FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
                     $8::text[], $9::text[], $10::text[], $11::date[]) WITH ORDINALITY \
                     AS u(account_id, kind, demarche_id, period, to_address, subject, body, html, unsubscribe, source, fired_on, ord)), \
                     fresh AS (INSERT INTO notification (account_id, kind, demarche_id, period, email_id, created_at) \
                     SELECT account_id, kind, demarche_id, period, email_id, $12 FROM due ORDER BY ord \
                     ON CONFLICT DO NOTHING RETURNING email_id), \
                     alert AS (INSERT INTO notify_alert (account_id, kind, demarche_id, source, fired_on) \
                     SELECT d.account_id, d.kind, d.demarche_id, d.source, d.fired_on FROM due d JOIN fresh f USING (email_id) \
                     WHERE d.source IS NOT NULL ON CONFLICT DO NOTHING) \
                     INSERT INTO email_outbox (id, to_address, subject, body, html, unsubscribe, created_at) \
                     OVERRIDING SYSTEM VALUE \
                     SELECT d.email_id, d.to_address, d.subject, d.body, d.html, d.unsubscribe, $12 \
                     FROM due d JOIN fresh f USING (email_id) ORDER BY d.ord RETURNING id",
                    &[
                        &accounts,
                        &kinds,
                        &demarches,
                        &periods,
                        &to,
                        &subjects,
                        &bodies,
                        &htmls,
                        &unsubscribes,
                        &sources,
                        &fired,
                        &now,
                    ],
                )
                .await?;
            Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
        }
        .boxed()
    }

    fn claim_run(
        &self,
        job: String,
        due: String,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            // A replica claiming at the same time waits for this row, then sees the lease.
            let n = self
                .execute(
                    "INSERT INTO notify_clock (job, done, lease_until) VALUES ($1, '', $4) \
                     ON CONFLICT (job) DO UPDATE SET lease_until = excluded.lease_until \
                     WHERE notify_clock.done <> $2 AND (notify_clock.lease_until IS NULL OR notify_clock.lease_until <= $3)",
                    &[&job, &due, &now, &lease_until],
                )
                .await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn finish_run(&self, job: String, due: String, done: bool) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.execute(
                "UPDATE notify_clock SET lease_until = NULL, \
                 done = CASE WHEN $3 THEN $2 ELSE done END WHERE job = $1",
                &[&job, &due, &done],
            )
            .await
            .map(drop)
        }
        .boxed()
    }
}

/// The 16 counters of [`DAILY_COLUMNS`] read from column `at` on.
fn counts_from(r: &Row, at: usize) -> Result<Counts, StoreError> {
    let mut c = [0i64; 16];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = r.try_get(at + i)?;
    }
    Ok(Counts::from_columns(c))
}

/// Writes a démarche's fiche (and its search key): shared by its creation and its edits.
async fn write_details(
    client: &impl tokio_postgres::GenericClient,
    id: i64,
    details: &DemarcheDetails,
    search: &str,
) -> Result<(), StoreError> {
    let c = &details.criteria;
    client
        .execute(
            "UPDATE demarche SET name = $2, administration = $3, url = $4, volume_annuel = $5, en_ligne = $6, \
             franceconnect = $7, mobile = $8, support_qualite = $9, disponibilite = $10, \
             privacy_controller = $11, privacy_dpo = $12, search = $13 WHERE id = $1",
            &[
                &id,
                &details.name,
                &details.administration,
                &details.url,
                &details.volume_annuel,
                &c.en_ligne.map(EnLigne::as_str),
                &c.franceconnect,
                &c.mobile,
                &c.support_qualite,
                &c.disponibilite,
                &details.privacy_controller,
                &details.privacy_dpo,
                &search,
            ],
        )
        .await?;
    Ok(())
}

/// A carried démarche's switches: its own (`s`, notify_demarche), or the defaults `$2`, `$3`, `$4`
/// unless the account (`na`, notify_account) turned that kind off.
const SWITCHES: &str = "coalesce(s.comments, $2 AND NOT coalesce(na.comments_off, false)), \
     coalesce(s.drop_alert, $3 AND NOT coalesce(na.drop_alert_off, false)), \
     coalesce(s.silent, $4 AND NOT coalesce(na.silent_off, false))";

/// The column of notify_account turning `kind` off for the démarches joined later.
fn kind_off_column(kind: &str) -> Result<&'static str, StoreError> {
    match kind {
        "commentaires" => Ok("comments_off"),
        "baisse" => Ok("drop_alert_off"),
        "silencieux" => Ok("silent_off"),
        _ => Err(StoreError::Config(format!("no alert kind {kind:?}"))),
    }
}

/// The [`NOTIFY_COLUMNS`] sums starting at column `at`.
fn narrow(r: &Row, at: usize) -> Result<Counts, StoreError> {
    let mut c = [0i64; NOTIFY_COLUMNS];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = r.try_get(at + i)?;
    }
    Ok(notify_counts(&c))
}
