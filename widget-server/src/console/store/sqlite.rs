//! SQLite backend of [`ConsoleStore`]: a connection of its own to the vote store's file, so that
//! a console query never waits for the flusher's mutex (WAL mode lets readers run beside the
//! writer; writers take turns through the busy timeout).

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{
    Account, AccountDetails, AccountStatus, AllowedDomain, AuditEntry, ConsoleStore, Dated, NewAccount, OutboxMail,
    SessionRow, SignUp, TokenKind, TokenState,
};
use crate::store::sqlite::BlockingConnection;
use crate::store::StoreError;

/// Console store on SQLite.
pub struct SqliteConsoleStore {
    conn: BlockingConnection,
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
    })
}

const MAIL_COLUMNS: &str = "id, to_address, subject, body, created_at, sent_at";

/// Why a link that is not valid is not: used, expired or unknown.
fn token_state(conn: &Connection, hash: &[u8; 32], kind: TokenKind, now: &str) -> rusqlite::Result<TokenState> {
    let row: Option<(i64, Option<String>, String)> = conn
        .query_row(
            "SELECT account_id, used_at, expires_at FROM email_token WHERE token_hash = ?1 AND kind = ?2",
            params![&hash[..], kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match row {
        None => TokenState::Unknown,
        Some((_, Some(_), _)) => TokenState::Used,
        Some((_, None, expires)) if expires.as_str() <= now => TokenState::Expired,
        Some((account, None, _)) => TokenState::Valid(account),
    })
}

impl SqliteConsoleStore {
    /// Opens a connection of its own to the database file at `path` (already migrated).
    pub async fn open(path: &str) -> Result<SqliteConsoleStore, StoreError> {
        Ok(SqliteConsoleStore { conn: BlockingConnection::open(path).await? })
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

    fn sign_up(&self, new: NewAccount, now: DateTime<Utc>) -> BoxFuture<'_, Result<SignUp, StoreError>> {
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = ts(now);
            let existing: Option<(i64, String)> = tx
                .query_row("SELECT id, status FROM account WHERE email = ?1", [&new.email], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let outcome = match existing {
                None => {
                    tx.execute(
                        "INSERT INTO account (email, name, administration, password_hash, status, created_at, status_at) \
                         VALUES (?1, ?2, ?3, ?4, 'unconfirmed', ?5, ?5)",
                        params![new.email, new.name, new.administration, new.password_hash, now],
                    )?;
                    SignUp::Created(tx.last_insert_rowid())
                }
                Some((id, status)) if AccountStatus::parse(&status) == AccountStatus::Unconfirmed => SignUp::Unconfirmed(id),
                Some((id, _)) => SignUp::Exists(id),
            };
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

    fn set_password(&self, id: i64, password_hash: String) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute("UPDATE account SET password_hash = ?2 WHERE id = ?1", params![id, password_hash])?;
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
        details: Option<AccountDetails>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            let (name, administration, password_hash) = match details {
                Some(d) => (Some(d.name), Some(d.administration), Some(d.password_hash)),
                None => (None, None, None),
            };
            conn.execute(
                "INSERT INTO email_token (token_hash, account_id, kind, created_at, expires_at, name, administration, password_hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![&hash[..], account_id, kind.as_str(), ts(now), ts(expires_at), name, administration, password_hash],
            )?;
            Ok(())
        })
    }

    fn peek_token(
        &self,
        hash: [u8; 32],
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<TokenState, StoreError>> {
        self.conn.with(move |conn| Ok(token_state(conn, &hash, kind, &ts(now))?))
    }

    fn take_token(
        &self,
        hash: [u8; 32],
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<TokenState, StoreError>> {
        self.conn.with(move |conn| {
            let now = ts(now);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let taken: Option<i64> = tx
                .query_row(
                    "UPDATE email_token SET used_at = ?3 WHERE token_hash = ?1 AND kind = ?2 AND used_at IS NULL \
                     AND expires_at > ?3 RETURNING account_id",
                    params![&hash[..], kind.as_str(), now],
                    |r| r.get(0),
                )
                .optional()?;
            let state = match taken {
                Some(account) => {
                    // The details of the sign-up that sent this link, if it carries them.
                    tx.execute(
                        "UPDATE account SET (name, administration, password_hash) = \
                         (SELECT name, administration, password_hash FROM email_token WHERE token_hash = ?2) \
                         WHERE id = ?1 AND status = 'unconfirmed' AND \
                         (SELECT password_hash FROM email_token WHERE token_hash = ?2) IS NOT NULL",
                        params![account, &hash[..]],
                    )?;
                    // One link used voids its siblings: an older e-mail cannot be used after it.
                    tx.execute(
                        "UPDATE email_token SET used_at = ?3 WHERE account_id = ?1 AND kind = ?2 AND used_at IS NULL",
                        params![account, kind.as_str(), now],
                    )?;
                    TokenState::Valid(account)
                }
                None => token_state(&tx, &hash, kind, &now)?,
            };
            tx.commit()?;
            Ok(state)
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
                "SELECT s.csrf, s.created_at, s.last_seen_at, {ACCOUNT_COLUMNS} \
                 FROM session s JOIN account a ON a.id = s.account_id WHERE s.token_hash = ?1"
            );
            Ok(conn
                .query_row(&sql, [&hash[..]], |r| {
                    Ok(SessionRow {
                        csrf: r.get(0)?,
                        created_at: parse_ts(&r.get::<_, String>(1)?),
                        last_seen_at: parse_ts(&r.get::<_, String>(2)?),
                        account: read_account(r, 3)?,
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
                 WHERE id = ?1 AND sent_at IS NULL AND (claimed_at IS NULL OR claimed_at < ?3) RETURNING {MAIL_COLUMNS}"
            );
            Ok(conn.query_row(&sql, params![id, ts(now), ts(stale_before)], read_mail).optional()?)
        })
    }

    fn unsent_emails(&self, stale_before: DateTime<Utc>, limit: i64) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn.prepare(
                "SELECT id FROM email_outbox WHERE sent_at IS NULL AND (claimed_at IS NULL OR claimed_at < ?1) \
                 ORDER BY id LIMIT ?2",
            )?;
            let rows = st.query_map(params![ts(stale_before), limit], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn mark_email_sent(&self, id: i64, now: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute("UPDATE email_outbox SET sent_at = ?2, body = '' WHERE id = ?1", params![id, ts(now)])?;
            Ok(())
        })
    }

    fn mark_email_failed(&self, id: i64, error: String) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(move |conn| {
            conn.execute(
                "UPDATE email_outbox SET last_error = ?2, claimed_at = NULL WHERE id = ?1 AND sent_at IS NULL",
                params![id, error],
            )?;
            Ok(())
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
}
