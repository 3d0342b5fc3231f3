//! The store: one small trait, [`Store`], and its two backends.
//!
//! - [`postgres`]: production, through bb8-postgres; batches go in by binary COPY.
//! - [`sqlite`]: the embedded default (`sqlite://data/monavis.db`), rusqlite on a blocking thread.
//!
//! Both keep the same tables (DESIGN §7) and the same guarantee: [`Store::store_batch`] is
//! idempotent on vote ids, and `avis_daily` grows by exactly the votes that were new, in the
//! same transaction, so a retried batch never counts twice.

pub mod pg_tls;
pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::BoxFuture;

use crate::catalogue::Demarche;
use crate::stats::{Counts, DailyRow};
use crate::vote::Vote;

/// Why the store could not do something. Precise, for operators' logs; never shown to citizens.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("postgres: {}", postgres_text(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store task failed: {0}")]
    Task(String),
    /// A first connection failed; the text holds every cause (the certificate refused, the
    /// server's FATAL message), which `Postgres` would only show as a source.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// A TLS setting of the database URL (`sslmode`, `sslrootcert`) that cannot be used.
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    #[error("bad database URL {0:?}: expected postgres://… or sqlite://path")]
    BadUrl(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(
        "cannot create {name}, the partition of avis for {month}: {error}. Votes of that month stay buffered \
         (then spilled) until it exists; as the owner of avis, run: SELECT monavis_avis_partition('{month}')"
    )]
    Partition { name: String, month: NaiveDate, error: String },
}

/// `url` without its password, for messages and logs: `postgres://user:***@host/db`, or as it
/// is when it holds none.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _password)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// A PostgreSQL error as operators need it: the server's message, SQLSTATE and detail, or the
/// client's error with its cause (`tokio_postgres::Error` alone prints only "db error").
pub fn postgres_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What the server needs from a database.
pub trait Store: Send + Sync + 'static {
    /// Creates or upgrades the tables. Safe to run concurrently from several replicas.
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Makes sure votes received from the month holding `now` to `months_ahead` months later can
    /// be stored: on PostgreSQL, creates the monthly partitions of `avis` missing (DESIGN §14);
    /// the names of those it created. Nothing to do on SQLite.
    fn prepare_partitions(
        &self,
        now: DateTime<Utc>,
        months_ahead: u32,
    ) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;

    /// Cheap round trip, for `/readyz`.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Stores votes not stored yet and adds exactly those to `avis_daily`, atomically.
    /// Returns how many were new. Calling it again with the same votes changes nothing.
    fn store_batch<'a>(&'a self, votes: &'a [Vote]) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// The whole catalogue.
    fn demarches(&self) -> BoxFuture<'_, Result<Vec<Demarche>, StoreError>>;

    /// Adds a démarche, or updates its name, administration, volume and active flag.
    fn upsert_demarche<'a>(&'a self, d: &'a Demarche) -> BoxFuture<'a, Result<(), StoreError>>;

    /// `avis_daily` rows of a démarche for days in `from..=to`, ordered by day then source.
    fn daily(
        &self,
        demarche_id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<DailyRow>, StoreError>>;

    /// Recounts a démarche's `avis` rows the way `avis_daily` should hold them. For checks and
    /// tests: it reads every row.
    fn recount(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<DailyRow>, StoreError>>;

    /// The `avis_monthly` rows of a démarche (the observatory's rollup: every source together, by
    /// first day of the month), in month order. For checks and tests: the rollup must equal
    /// [`Store::daily`] summed by month.
    fn monthly(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<(NaiveDate, Counts)>, StoreError>>;

    /// The `avis_daily_langue` rows of a démarche (avis per day in each language other than
    /// French), ordered by day then language. For checks and tests.
    fn daily_langues(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<LangueDay>, StoreError>>;

    /// Recounts a démarche's `avis` rows the way `avis_daily_langue` should hold them. For
    /// checks and tests: it reads every row.
    fn recount_langues(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<LangueDay>, StoreError>>;

    /// Number of rows in `avis` (for checks and tests).
    fn count_avis(&self) -> BoxFuture<'_, Result<i64, StoreError>>;

    /// Erases the comments of avis received before `cutoff` (DESIGN §13, `--retention-months`):
    /// `commentaire` becomes NULL, as for an avis sent without one, so the console's lists,
    /// filters, exports and comment search no longer hold them; the answers and `avis_daily`
    /// stay. Goes démarche by démarche along the `(demarche_id, received_at, id)` index of
    /// commented avis, in statements of at most `batch` rows, each its own short transaction:
    /// flushes go on meanwhile, and stopping between two batches loses nothing. Returns how many
    /// comments it erased; a second call with the same cutoff erases none.
    fn erase_comments_before(&self, cutoff: DateTime<Utc>, batch: usize) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// Opens the store named by `url` (`postgres://…`, `postgresql://…` or `sqlite://path`).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(sqlite::SqliteStore::open(path).await?))
    } else {
        Err(StoreError::BadUrl(redact(url)))
    }
}

/// The per-(démarche, day, source) counts of `votes`, as added to `avis_daily`.
pub fn aggregate(votes: &[&Vote]) -> Vec<DailyRow> {
    let mut map: HashMap<(i64, NaiveDate, &str), Counts> = HashMap::new();
    for v in votes {
        map.entry((v.demarche_id, v.day(), v.source.as_str())).or_default().add_vote(v);
    }
    let mut rows: Vec<DailyRow> = map
        .into_iter()
        .map(|((demarche_id, day, source), counts)| DailyRow { demarche_id, day, source: source.to_string(), counts })
        .collect();
    rows.sort_by(|a, b| (a.demarche_id, a.day, &a.source).cmp(&(b.demarche_id, b.day, &b.source)));
    rows
}

/// Avis of one démarche on one (Paris) day in one language: a row of `avis_daily_langue`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LangueDay {
    pub demarche_id: i64,
    pub day: NaiveDate,
    /// The language's code (`en`, `ar`…): never `fr`, which is `avis_daily.n` minus the others.
    pub langue: String,
    pub n: i64,
}

/// The per-(démarche, day, language) counts of `votes` in languages other than French, as added
/// to `avis_daily_langue`, in key order (so concurrent flushes lock rows in the same order).
/// Empty for a batch of French votes, the usual case: the flush then has nothing more to write.
pub fn aggregate_langues(votes: &[&Vote]) -> Vec<LangueDay> {
    let mut map: std::collections::BTreeMap<(i64, NaiveDate, &'static str), i64> = Default::default();
    for v in votes.iter().filter(|v| v.langue != crate::vote::Lang::Fr) {
        *map.entry((v.demarche_id, v.day(), v.langue.code())).or_default() += 1;
    }
    map.into_iter()
        .map(|((demarche_id, day, langue), n)| LangueDay { demarche_id, day, langue: langue.to_string(), n })
        .collect()
}

/// `rows` summed by démarche and calendar month (first day), what `avis_monthly` holds.
pub fn by_month(rows: &[DailyRow]) -> Vec<(i64, NaiveDate, Counts)> {
    use chrono::Datelike;
    let mut map: std::collections::BTreeMap<(i64, NaiveDate), Counts> = std::collections::BTreeMap::new();
    for r in rows {
        let month = r.day.with_day(1).unwrap_or(r.day);
        map.entry((r.demarche_id, month)).or_default().add(&r.counts);
    }
    map.into_iter().map(|((d, m), c)| (d, m, c)).collect()
}

/// The `avis_daily` counter columns, in [`Counts::columns`] order.
pub const DAILY_COLUMNS: [&str; 16] = [
    "n",
    "sat_bien",
    "sat_moyen",
    "sat_pas_bien",
    "fac_facile",
    "fac_moyen",
    "fac_difficile",
    "cla_clair",
    "cla_moyen",
    "cla_pas_clair",
    "aide_aucune",
    "aide_proche",
    "aide_association",
    "aide_agent",
    "aide_internet",
    "aide_autre",
];

/// SQL expressions computing the counter columns from `avis` rows (both dialects accept them).
pub fn recount_expressions() -> String {
    let mut e = vec!["count(*)".to_string()];
    for (col, values) in [
        ("satisfaction", ["bien", "moyen", "pas-bien"]),
        ("facilite", ["facile", "moyen", "difficile"]),
        ("clarte", ["clair", "moyen", "pas-clair"]),
    ] {
        for v in values {
            e.push(format!("sum(CASE WHEN {col} = '{v}' THEN 1 ELSE 0 END)"));
        }
    }
    for i in 0..6 {
        e.push(format!("sum(CASE WHEN (aide & {}) <> 0 THEN 1 ELSE 0 END)", 1 << i));
    }
    e.join(", ")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("postgres://monavis:s3cr%40t@db:5432/monavis"), "postgres://monavis:***@db:5432/monavis");
        assert_eq!(
            redact("postgres://monavis@db/monavis?sslmode=verify-full"),
            "postgres://monavis@db/monavis?sslmode=verify-full"
        );
        assert_eq!(redact("sqlite://data/monavis.db"), "sqlite://data/monavis.db");
        assert_eq!(redact("mysql://u:p@h/db"), "mysql://u:***@h/db");
    }
}
