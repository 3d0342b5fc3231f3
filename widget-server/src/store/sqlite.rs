//! The embedded store: SQLite through rusqlite, WAL mode, one connection driven from blocking
//! threads. Good for a laptop and small deployments; production uses PostgreSQL.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use rusqlite::{params, Connection, OptionalExtension};

use super::{aggregate, recount_expressions, LangueDay, Store, StoreError, DAILY_COLUMNS};
use crate::catalogue::{Demarche, PrivacyNotice};
use crate::stats::{Counts, DailyRow};
use crate::vote::{paris_day, Question, Vote};

/// Schema versions, applied in order, each in its own transaction.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE demarche (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    administration TEXT NOT NULL DEFAULT '',
    volume_annuel INTEGER,
    high_volume_approved INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE avis (
    id TEXT PRIMARY KEY,
    demarche_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    satisfaction TEXT NOT NULL CHECK (satisfaction IN ('bien', 'moyen', 'pas-bien')),
    facilite TEXT CHECK (facilite IN ('facile', 'moyen', 'difficile')),
    clarte TEXT CHECK (clarte IN ('clair', 'moyen', 'pas-clair')),
    aide INTEGER NOT NULL DEFAULT 0,
    commentaire TEXT
) WITHOUT ROWID;
CREATE INDEX avis_demarche_received ON avis (demarche_id, received_at);
CREATE TABLE avis_daily (
    demarche_id INTEGER NOT NULL,
    day TEXT NOT NULL,
    source TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    sat_bien INTEGER NOT NULL DEFAULT 0, sat_moyen INTEGER NOT NULL DEFAULT 0, sat_pas_bien INTEGER NOT NULL DEFAULT 0,
    fac_facile INTEGER NOT NULL DEFAULT 0, fac_moyen INTEGER NOT NULL DEFAULT 0, fac_difficile INTEGER NOT NULL DEFAULT 0,
    cla_clair INTEGER NOT NULL DEFAULT 0, cla_moyen INTEGER NOT NULL DEFAULT 0, cla_pas_clair INTEGER NOT NULL DEFAULT 0,
    aide_aucune INTEGER NOT NULL DEFAULT 0, aide_proche INTEGER NOT NULL DEFAULT 0, aide_association INTEGER NOT NULL DEFAULT 0,
    aide_agent INTEGER NOT NULL DEFAULT 0, aide_internet INTEGER NOT NULL DEFAULT 0, aide_autre INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (demarche_id, day, source)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE account (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    administration TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('unconfirmed', 'pending', 'active')),
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    status_at TEXT NOT NULL
);
CREATE TABLE session (
    token_hash BLOB PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX session_account ON session (account_id);
CREATE TABLE email_token (
    token_hash BLOB PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('confirm', 'reset')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    -- A confirmation link carries the details of the sign-up that sent it.
    name TEXT,
    administration TEXT,
    password_hash TEXT
) WITHOUT ROWID;
CREATE INDEX email_token_account ON email_token (account_id);
CREATE TABLE allowed_domain (
    domain TEXT PRIMARY KEY,
    added_by INTEGER REFERENCES account (id) ON DELETE SET NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE email_outbox (
    id INTEGER PRIMARY KEY,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    claimed_at TEXT,
    sent_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX email_outbox_unsent ON email_outbox (id) WHERE sent_at IS NULL;
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor_id INTEGER,
    action TEXT NOT NULL,
    account_id INTEGER,
    demarche_id INTEGER,
    detail TEXT NOT NULL DEFAULT ''
);
"#,
    r#"
ALTER TABLE demarche ADD COLUMN url TEXT NOT NULL DEFAULT '';
-- Name and administration folded in Rust (lower case, no accents), searched with LIKE.
ALTER TABLE demarche ADD COLUMN search TEXT NOT NULL DEFAULT '';
ALTER TABLE demarche ADD COLUMN created_by INTEGER;
ALTER TABLE demarche ADD COLUMN merged_into INTEGER;
-- Observatory criteria declared by porteurs (DESIGN §12); NULL: not declared.
ALTER TABLE demarche ADD COLUMN en_ligne TEXT CHECK (en_ligne IN ('oui', 'partiel', 'non'));
ALTER TABLE demarche ADD COLUMN franceconnect INTEGER;
ALTER TABLE demarche ADD COLUMN mobile INTEGER;
ALTER TABLE demarche ADD COLUMN support_qualite INTEGER;
ALTER TABLE demarche ADD COLUMN disponibilite INTEGER;
-- Privacy notice shown on the form (DESIGN §13).
ALTER TABLE demarche ADD COLUMN privacy_controller TEXT NOT NULL DEFAULT '';
ALTER TABLE demarche ADD COLUMN privacy_dpo TEXT NOT NULL DEFAULT '';
CREATE TABLE porteur (
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    demarche_id INTEGER NOT NULL REFERENCES demarche (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, demarche_id)
) WITHOUT ROWID;
CREATE INDEX porteur_demarche ON porteur (demarche_id);
CREATE TABLE porteur_request (
    id INTEGER PRIMARY KEY,
    demarche_id INTEGER NOT NULL REFERENCES demarche (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'refused')),
    created_at TEXT NOT NULL,
    decided_by INTEGER,
    decided_at TEXT
);
CREATE UNIQUE INDEX porteur_request_pending ON porteur_request (demarche_id, account_id) WHERE status = 'pending';
CREATE TABLE porteur_invite (
    token_hash BLOB PRIMARY KEY,
    demarche_id INTEGER NOT NULL REFERENCES demarche (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    invited_by INTEGER,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
) WITHOUT ROWID;
"#,
    r#"
-- « Tous les avis »: newest first in keyset pages, by démarche, with or without filters.
CREATE INDEX avis_demarche_received_id ON avis (demarche_id, received_at, id);
DROP INDEX avis_demarche_received;
CREATE INDEX avis_demarche_satisfaction ON avis (demarche_id, satisfaction, received_at, id);
CREATE INDEX avis_demarche_commented ON avis (demarche_id, received_at, id) WHERE commentaire IS NOT NULL;
-- Full-text search in comments, accents ignored (FTS5, unicode61 without diacritics), kept by
-- triggers; rowid-less `avis` rows are found back by id.
CREATE VIRTUAL TABLE avis_fts USING fts5(commentaire, id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO avis_fts (commentaire, id) SELECT commentaire, id FROM avis WHERE commentaire IS NOT NULL;
CREATE TRIGGER avis_fts_insert AFTER INSERT ON avis WHEN new.commentaire IS NOT NULL BEGIN
    INSERT INTO avis_fts (commentaire, id) VALUES (new.commentaire, new.id);
END;
CREATE TRIGGER avis_fts_update AFTER UPDATE OF commentaire ON avis BEGIN
    DELETE FROM avis_fts WHERE id = old.id;
    INSERT INTO avis_fts (commentaire, id) SELECT new.commentaire, new.id WHERE new.commentaire IS NOT NULL;
END;
CREATE TRIGGER avis_fts_delete AFTER DELETE ON avis BEGIN
    DELETE FROM avis_fts WHERE id = old.id;
END;
CREATE TABLE api_key (
    id INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_key_account ON api_key (account_id);
"#,
    r#"
-- Every index on `avis` is paid by every flushed vote: this one cost the flush about 30 %
-- (flushbench, same machine, one run), and a satisfaction filter reads at most three times
-- the rows of its page walking `avis_demarche_received_id` instead.
DROP INDEX avis_demarche_satisfaction;
"#,
    r#"
-- Erasing a comment (retention, DESIGN §13) or deleting an avis found its `avis_fts` row by
-- reading all of `avis_fts` (`id` is UNINDEXED, and rowid-less `avis` has no rowid to share):
-- 13 ms a comment with 20,000 comments stored, growing with them, all under the write lock.
-- Each `avis_fts` row's rowid is now kept by avis id, so that is one lookup; a commented vote
-- pays one more small insert.
CREATE TABLE avis_fts_rowid (id TEXT PRIMARY KEY, fts_rowid INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR REPLACE INTO avis_fts_rowid (id, fts_rowid) SELECT id, rowid FROM avis_fts;
DROP TRIGGER avis_fts_insert;
DROP TRIGGER avis_fts_update;
DROP TRIGGER avis_fts_delete;
CREATE TRIGGER avis_fts_insert AFTER INSERT ON avis WHEN new.commentaire IS NOT NULL BEGIN
    INSERT INTO avis_fts (commentaire, id) VALUES (new.commentaire, new.id);
    INSERT INTO avis_fts_rowid (id, fts_rowid) VALUES (new.id, last_insert_rowid());
END;
CREATE TRIGGER avis_fts_update AFTER UPDATE OF commentaire ON avis BEGIN
    DELETE FROM avis_fts WHERE rowid = (SELECT fts_rowid FROM avis_fts_rowid WHERE id = old.id);
    DELETE FROM avis_fts_rowid WHERE id = old.id;
    INSERT INTO avis_fts (commentaire, id) SELECT new.commentaire, new.id WHERE new.commentaire IS NOT NULL;
    INSERT INTO avis_fts_rowid (id, fts_rowid) SELECT new.id, last_insert_rowid() WHERE new.commentaire IS NOT NULL;
END;
CREATE TRIGGER avis_fts_delete AFTER DELETE ON avis BEGIN
    DELETE FROM avis_fts WHERE rowid = (SELECT fts_rowid FROM avis_fts_rowid WHERE id = old.id);
    DELETE FROM avis_fts_rowid WHERE id = old.id;
END;
"#,
    r#"
-- Trust hardening (DESIGN §10).
-- A link voided before use: a newer sign-up replaced it, or the password changed.
ALTER TABLE email_token ADD COLUMN revoked_at TEXT;
-- An invitation cancelled from the Porteurs tab, or when its author stopped carrying the démarche.
ALTER TABLE porteur_invite ADD COLUMN cancelled_at TEXT;
-- Why the requester says they carry the démarche, for whoever decides.
ALTER TABLE porteur_request ADD COLUMN reason TEXT NOT NULL DEFAULT '';
-- Whether the démarche ever had a porteur: only one that never had one, and holds no avis, goes
-- to its first claimant at once. Kept by a trigger on every way a porteur is added.
ALTER TABLE demarche ADD COLUMN had_porteur INTEGER NOT NULL DEFAULT 0;
UPDATE demarche SET had_porteur = 1
WHERE created_by IS NOT NULL
   OR id IN (SELECT demarche_id FROM porteur)
   OR id IN (SELECT demarche_id FROM audit WHERE demarche_id IS NOT NULL AND action LIKE 'porteur.%');
CREATE TRIGGER porteur_had AFTER INSERT ON porteur BEGIN
    UPDATE demarche SET had_porteur = 1 WHERE id = new.demarche_id AND had_porteur = 0;
END;
"#,
    r#"
-- ProConnect (DESIGN §16): the identities an account logs in with, by (issuer, sub); an agent
-- may have several (ProConnect's sub differs per identity provider).
CREATE TABLE proconnect_identity (
    issuer TEXT NOT NULL,
    sub TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    idp_id TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_login_at TEXT NOT NULL,
    PRIMARY KEY (issuer, sub)
) WITHOUT ROWID;
CREATE INDEX proconnect_identity_account ON proconnect_identity (account_id);
-- The ID token of a session opened through ProConnect, for its log-out there (id_token_hint).
ALTER TABLE session ADD COLUMN id_token TEXT;
"#,
    r#"
-- E-mail retries back off and end (issue 23): after a failed attempt a mail waits until
-- next_attempt_at (1 minute, doubling, at most an hour); 3 days after retry_since (its creation,
-- or an administrator's « Renvoyer », resent_at) it is given up and shown on /console/admin.
ALTER TABLE email_outbox ADD COLUMN next_attempt_at TEXT;
ALTER TABLE email_outbox ADD COLUMN given_up_at TEXT;
ALTER TABLE email_outbox ADD COLUMN resent_at TEXT;
DROP INDEX email_outbox_unsent;
CREATE INDEX email_outbox_unsent ON email_outbox (id) WHERE sent_at IS NULL AND given_up_at IS NULL;
CREATE INDEX email_outbox_given_up ON email_outbox (id) WHERE sent_at IS NULL AND given_up_at IS NOT NULL;
"#,
    r#"
-- Notifications (DESIGN §15). Every row goes with its account. No row in notify_account: the default digest, weekly; no row in
-- notify_demarche: the defaults (comments off, drop and silent alerts on), so whoever joins a
-- démarche has them without a write.
CREATE TABLE notify_account (
    account_id INTEGER PRIMARY KEY REFERENCES account (id) ON DELETE CASCADE,
    digest TEXT NOT NULL CHECK (digest IN ('aucune', 'quotidienne', 'hebdomadaire', 'mensuelle'))
);
CREATE TABLE notify_demarche (
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    demarche_id INTEGER NOT NULL,
    comments INTEGER NOT NULL,
    drop_alert INTEGER NOT NULL,
    silent INTEGER NOT NULL,
    PRIMARY KEY (account_id, demarche_id)
) WITHOUT ROWID;
-- Every notification due, exactly once: inserted in the transaction that queues its mail.
-- demarche_id 0: a mail about every carried démarche (the digest).
CREATE TABLE notification (
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    demarche_id INTEGER NOT NULL,
    period TEXT NOT NULL,
    email_id INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, demarche_id, period)
) WITHOUT ROWID;
-- A drop or silent-button alert that fired and has not recovered since: none is sent again
-- until the row is gone (re-armed). source '' for a démarche-wide alert.
CREATE TABLE notify_alert (
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    demarche_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    fired_on TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, demarche_id, source)
);
-- A notification's HTML part and its one-click unsubscribe link (RFC 8058).
ALTER TABLE email_outbox ADD COLUMN html TEXT;
ALTER TABLE email_outbox ADD COLUMN unsubscribe TEXT;
"#,
    r#"
-- The observatory's rollup (issue 23): avis_daily summed by démarche and calendar month
-- ('YYYY-MM-01'), every source together, kept by triggers on avis_daily in the transaction that
-- changes it (see the PostgreSQL migration).
CREATE TABLE avis_monthly (
    demarche_id INTEGER NOT NULL,
    month TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0, sat_bien INTEGER NOT NULL DEFAULT 0,
    sat_moyen INTEGER NOT NULL DEFAULT 0, sat_pas_bien INTEGER NOT NULL DEFAULT 0,
    fac_facile INTEGER NOT NULL DEFAULT 0, fac_moyen INTEGER NOT NULL DEFAULT 0,
    fac_difficile INTEGER NOT NULL DEFAULT 0, cla_clair INTEGER NOT NULL DEFAULT 0,
    cla_moyen INTEGER NOT NULL DEFAULT 0, cla_pas_clair INTEGER NOT NULL DEFAULT 0,
    aide_aucune INTEGER NOT NULL DEFAULT 0, aide_proche INTEGER NOT NULL DEFAULT 0,
    aide_association INTEGER NOT NULL DEFAULT 0, aide_agent INTEGER NOT NULL DEFAULT 0,
    aide_internet INTEGER NOT NULL DEFAULT 0, aide_autre INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (demarche_id, month)
) WITHOUT ROWID;
INSERT INTO avis_monthly (demarche_id, month, n, sat_bien, sat_moyen, sat_pas_bien, fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair, aide_aucune, aide_proche, aide_association, aide_agent, aide_internet, aide_autre)
SELECT demarche_id, strftime('%Y-%m-01', day), sum(n), sum(sat_bien), sum(sat_moyen), sum(sat_pas_bien), sum(fac_facile), sum(fac_moyen), sum(fac_difficile), sum(cla_clair), sum(cla_moyen), sum(cla_pas_clair), sum(aide_aucune), sum(aide_proche), sum(aide_association), sum(aide_agent), sum(aide_internet), sum(aide_autre)
FROM avis_daily GROUP BY 1, 2;
CREATE TRIGGER avis_daily_monthly_insert AFTER INSERT ON avis_daily BEGIN
    INSERT INTO avis_monthly (demarche_id, month, n, sat_bien, sat_moyen, sat_pas_bien, fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair, aide_aucune, aide_proche, aide_association, aide_agent, aide_internet, aide_autre)
    VALUES (new.demarche_id, strftime('%Y-%m-01', new.day), new.n, new.sat_bien, new.sat_moyen, new.sat_pas_bien, new.fac_facile, new.fac_moyen, new.fac_difficile, new.cla_clair, new.cla_moyen, new.cla_pas_clair, new.aide_aucune, new.aide_proche, new.aide_association, new.aide_agent, new.aide_internet, new.aide_autre)
    ON CONFLICT (demarche_id, month) DO UPDATE SET n = n + excluded.n, sat_bien = sat_bien + excluded.sat_bien, sat_moyen = sat_moyen + excluded.sat_moyen, sat_pas_bien = sat_pas_bien + excluded.sat_pas_bien, fac_facile = fac_facile + excluded.fac_facile, fac_moyen = fac_moyen + excluded.fac_moyen, fac_difficile = fac_difficile + excluded.fac_difficile, cla_clair = cla_clair + excluded.cla_clair, cla_moyen = cla_moyen + excluded.cla_moyen, cla_pas_clair = cla_pas_clair + excluded.cla_pas_clair, aide_aucune = aide_aucune + excluded.aide_aucune, aide_proche = aide_proche + excluded.aide_proche, aide_association = aide_association + excluded.aide_association, aide_agent = aide_agent + excluded.aide_agent, aide_internet = aide_internet + excluded.aide_internet, aide_autre = aide_autre + excluded.aide_autre;
END;
CREATE TRIGGER avis_daily_monthly_update AFTER UPDATE ON avis_daily BEGIN
    UPDATE avis_monthly SET n = n - old.n, sat_bien = sat_bien - old.sat_bien, sat_moyen = sat_moyen - old.sat_moyen, sat_pas_bien = sat_pas_bien - old.sat_pas_bien, fac_facile = fac_facile - old.fac_facile, fac_moyen = fac_moyen - old.fac_moyen, fac_difficile = fac_difficile - old.fac_difficile, cla_clair = cla_clair - old.cla_clair, cla_moyen = cla_moyen - old.cla_moyen, cla_pas_clair = cla_pas_clair - old.cla_pas_clair, aide_aucune = aide_aucune - old.aide_aucune, aide_proche = aide_proche - old.aide_proche, aide_association = aide_association - old.aide_association, aide_agent = aide_agent - old.aide_agent, aide_internet = aide_internet - old.aide_internet, aide_autre = aide_autre - old.aide_autre
    WHERE demarche_id = old.demarche_id AND month = strftime('%Y-%m-01', old.day);
    INSERT INTO avis_monthly (demarche_id, month, n, sat_bien, sat_moyen, sat_pas_bien, fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair, aide_aucune, aide_proche, aide_association, aide_agent, aide_internet, aide_autre)
    VALUES (new.demarche_id, strftime('%Y-%m-01', new.day), new.n, new.sat_bien, new.sat_moyen, new.sat_pas_bien, new.fac_facile, new.fac_moyen, new.fac_difficile, new.cla_clair, new.cla_moyen, new.cla_pas_clair, new.aide_aucune, new.aide_proche, new.aide_association, new.aide_agent, new.aide_internet, new.aide_autre)
    ON CONFLICT (demarche_id, month) DO UPDATE SET n = n + excluded.n, sat_bien = sat_bien + excluded.sat_bien, sat_moyen = sat_moyen + excluded.sat_moyen, sat_pas_bien = sat_pas_bien + excluded.sat_pas_bien, fac_facile = fac_facile + excluded.fac_facile, fac_moyen = fac_moyen + excluded.fac_moyen, fac_difficile = fac_difficile + excluded.fac_difficile, cla_clair = cla_clair + excluded.cla_clair, cla_moyen = cla_moyen + excluded.cla_moyen, cla_pas_clair = cla_pas_clair + excluded.cla_pas_clair, aide_aucune = aide_aucune + excluded.aide_aucune, aide_proche = aide_proche + excluded.aide_proche, aide_association = aide_association + excluded.aide_association, aide_agent = aide_agent + excluded.aide_agent, aide_internet = aide_internet + excluded.aide_internet, aide_autre = aide_autre + excluded.aide_autre;
    DELETE FROM avis_monthly WHERE demarche_id = old.demarche_id AND month = strftime('%Y-%m-01', old.day) AND n = 0;
END;
CREATE TRIGGER avis_daily_monthly_delete AFTER DELETE ON avis_daily BEGIN
    UPDATE avis_monthly SET n = n - old.n, sat_bien = sat_bien - old.sat_bien, sat_moyen = sat_moyen - old.sat_moyen, sat_pas_bien = sat_pas_bien - old.sat_pas_bien, fac_facile = fac_facile - old.fac_facile, fac_moyen = fac_moyen - old.fac_moyen, fac_difficile = fac_difficile - old.fac_difficile, cla_clair = cla_clair - old.cla_clair, cla_moyen = cla_moyen - old.cla_moyen, cla_pas_clair = cla_pas_clair - old.cla_pas_clair, aide_aucune = aide_aucune - old.aide_aucune, aide_proche = aide_proche - old.aide_proche, aide_association = aide_association - old.aide_association, aide_agent = aide_agent - old.aide_agent, aide_internet = aide_internet - old.aide_internet, aide_autre = aide_autre - old.aide_autre
    WHERE demarche_id = old.demarche_id AND month = strftime('%Y-%m-01', old.day);
    DELETE FROM avis_monthly WHERE demarche_id = old.demarche_id AND month = strftime('%Y-%m-01', old.day) AND n = 0;
END;
-- The days at the ends of the observatory's year, across démarches.
CREATE INDEX avis_daily_day ON avis_daily (day);
"#,
    r#"
-- The language of the form each avis was given in (DESIGN §17): every avis before was French.
ALTER TABLE avis ADD COLUMN langue TEXT NOT NULL DEFAULT 'fr';
-- Avis per (démarche, Paris day) in each language other than French (French is avis_daily.n
-- minus these), kept by the flush like avis_daily.
CREATE TABLE avis_daily_langue (
    demarche_id INTEGER NOT NULL,
    day TEXT NOT NULL,
    langue TEXT NOT NULL CHECK (langue <> 'fr'),
    n INTEGER NOT NULL,
    PRIMARY KEY (demarche_id, day, langue)
) WITHOUT ROWID;
"#,
    r#"
-- Notifications' bookkeeping (issue 21). notify_clock: the last hour checked for drops and silent
-- buttons, the last period of each digest sent, and the run holding each until lease_until: a
-- scheduler that missed a minute catches up, replicas do each once. notify_account.*_off: an
-- unsubscribe from an alert kind also holds for the démarches the account joins later.
CREATE TABLE notify_clock (
    job TEXT PRIMARY KEY,
    done TEXT NOT NULL,
    lease_until TEXT
);
ALTER TABLE notify_account ADD COLUMN comments_off INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notify_account ADD COLUMN drop_alert_off INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notify_account ADD COLUMN silent_off INTEGER NOT NULL DEFAULT 0;
"#,
];

/// The next démarche (by id, after `?1`) that has an avis with a comment: one probe of the
/// partial index `avis_demarche_commented`, however many avis it has.
const NEXT_COMMENTED_DEMARCHE: &str =
    "SELECT demarche_id FROM avis WHERE commentaire IS NOT NULL AND demarche_id > ?1 ORDER BY demarche_id LIMIT 1";

/// Erases one batch of old comments of démarche `?1`: at most `?5` avis received before `?2`,
/// strictly after `(?3, ?4)` in `(received_at, id)` order, oldest first, along the partial index
/// `avis_demarche_commented` (the PostgreSQL store explains why no index of its own). The
/// triggers of migration 6 take each comment out of `avis_fts`.
const ERASE_COMMENTS: &str = "UPDATE avis SET commentaire = NULL WHERE id IN (\
     SELECT id FROM avis WHERE demarche_id = ?1 AND commentaire IS NOT NULL AND received_at < ?2 \
     AND (received_at, id) > (?3, ?4) ORDER BY received_at, id LIMIT ?5) \
     RETURNING received_at, id";

/// One SQLite connection, driven from blocking threads (rusqlite is synchronous). The vote
/// store and the console each open their own to the same file: in WAL mode readers never wait
/// for the writer, and writers take turns through the busy timeout.
#[derive(Clone)]
pub struct BlockingConnection(Arc<Mutex<Connection>>);

impl BlockingConnection {
    /// Opens (creating if needed) the database file at `path`, and its directory.
    pub async fn open(path: &str) -> Result<BlockingConnection, StoreError> {
        let path = path.to_string();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            if let Some(dir) = Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let conn = Connection::open(&path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // WAL with synchronous=NORMAL loses nothing on a process crash; FULL also survives
            // power loss, which is what "never lose an accepted vote" asks of a single machine.
            conn.pragma_update(None, "synchronous", "FULL")?;
            // The console's tables rely on ON DELETE CASCADE; SQLite checks foreign keys only
            // when each connection asks.
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(BlockingConnection(Arc::new(Mutex::new(conn))))
    }

    /// Runs `f` with the connection on a blocking thread.
    pub fn with<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.0.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut guard = conn.lock().map_err(|_| StoreError::Task("sqlite mutex poisoned".into()))?;
                f(&mut guard)
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
        }
        .boxed()
    }
}

/// SQLite store.
pub struct SqliteStore {
    conn: BlockingConnection,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, and its directory.
    pub async fn open(path: &str) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore { conn: BlockingConnection::open(path).await? })
    }
}

fn rfc3339_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn upsert_daily_sql() -> String {
    let cols = DAILY_COLUMNS.join(", ");
    let placeholders = (4..4 + DAILY_COLUMNS.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let updates = DAILY_COLUMNS.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO avis_daily (demarche_id, day, source, {cols}) VALUES (?1, ?2, ?3, {placeholders}) \
         ON CONFLICT (demarche_id, day, source) DO UPDATE SET {updates}"
    )
}

fn read_daily(row: &rusqlite::Row) -> rusqlite::Result<DailyRow> {
    let mut c = [0i64; 16];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = row.get(3 + i)?;
    }
    let day: String = row.get(1)?;
    Ok(DailyRow {
        demarche_id: row.get(0)?,
        day: NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap_or_default(),
        source: row.get(2)?,
        counts: Counts::from_columns(c),
    })
}

impl Store for SqliteStore {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(|conn| {
            conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let done: i64 = tx.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    [i as i64 + 1],
                )?;
            }
            // Search keys are folded in Rust, which SQL cannot do: fill those still empty
            // (démarches from before migration 3).
            let missing: Vec<(i64, String, String)> = tx
                .prepare("SELECT id, name, administration FROM demarche WHERE search = ''")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            for (id, name, administration) in missing {
                tx.execute("UPDATE demarche SET search = ?2 WHERE id = ?1", params![id, crate::search::key(&name, &administration)])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.conn.with(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map(|_| ())?))
    }

    fn prepare_partitions(
        &self,
        _now: DateTime<Utc>,
        _months_ahead: u32,
    ) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        async { Ok(Vec::new()) }.boxed()
    }

    fn store_batch<'a>(&'a self, votes: &'a [Vote]) -> BoxFuture<'a, Result<u64, StoreError>> {
        // The blocking thread needs owned data; a clone per flush is small next to the fsync.
        let mut votes = votes.to_vec();
        self.conn.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // A merged démarche's votes go to its target: one writer at a time, so a merge either
            // committed before (and is seen here) or comes after and moves them with the rest.
            let into: HashMap<i64, i64> = tx
                .prepare_cached("SELECT id, merged_into FROM demarche WHERE merged_into IS NOT NULL")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if !into.is_empty() {
                for v in &mut votes {
                    if let Some(&target) = into.get(&v.demarche_id) {
                        v.demarche_id = target;
                    }
                }
            }
            let mut fresh = Vec::with_capacity(votes.len());
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO avis (id, demarche_id, source, received_at, satisfaction, facilite, clarte, aide, commentaire, langue) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for v in &votes {
                    let changed = insert.execute(params![
                        v.id.hyphenated().to_string(),
                        v.demarche_id,
                        v.source.as_str(),
                        rfc3339_ms(v.received_at_ms),
                        Question::Satisfaction.value(v.satisfaction),
                        v.facilite.map(|l| Question::Facilite.value(l)),
                        v.clarte.map(|l| Question::Clarte.value(l)),
                        v.aide,
                        v.commentaire.as_deref(),
                        v.langue.code(),
                    ])?;
                    if changed == 1 {
                        fresh.push(v);
                    }
                }
                let mut upsert = tx.prepare_cached(&upsert_daily_sql())?;
                for row in aggregate(&fresh) {
                    let c = row.counts.columns();
                    let day = row.day.format("%Y-%m-%d").to_string();
                    let mut p: Vec<&dyn rusqlite::ToSql> = vec![&row.demarche_id, &day, &row.source];
                    p.extend(c.iter().map(|x| x as &dyn rusqlite::ToSql));
                    upsert.execute(p.as_slice())?;
                }
                let langues = super::aggregate_langues(&fresh);
                if !langues.is_empty() {
                    let mut upsert = tx.prepare_cached(
                        "INSERT INTO avis_daily_langue (demarche_id, day, langue, n) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (demarche_id, day, langue) DO UPDATE SET n = n + excluded.n",
                    )?;
                    for r in langues {
                        upsert.execute(params![r.demarche_id, r.day.format("%Y-%m-%d").to_string(), r.langue, r.n])?;
                    }
                }
            }
            tx.commit()?;
            Ok(fresh.len() as u64)
        })
    }

    fn demarches(&self) -> BoxFuture<'_, Result<Vec<Demarche>, StoreError>> {
        self.conn.with(|conn| {
            let mut st = conn.prepare(
                "SELECT id, name, administration, volume_annuel, high_volume_approved, active, merged_into, \
                     privacy_controller, privacy_dpo FROM demarche ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(Demarche {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    administration: r.get(2)?,
                    volume_annuel: r.get(3)?,
                    high_volume_approved: r.get(4)?,
                    active: r.get(5)?,
                    merged_into: r.get(6)?,
                    privacy: PrivacyNotice { controller: r.get(7)?, dpo: r.get(8)? },
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn upsert_demarche<'a>(&'a self, d: &'a Demarche) -> BoxFuture<'a, Result<(), StoreError>> {
        let d = d.clone();
        self.conn.with(move |conn| {
            conn.execute(
                "INSERT INTO demarche (id, name, administration, volume_annuel, high_volume_approved, active, search) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 administration = excluded.administration, volume_annuel = excluded.volume_annuel, \
                 high_volume_approved = excluded.high_volume_approved, active = excluded.active, search = excluded.search",
                params![
                    d.id,
                    d.name,
                    d.administration,
                    d.volume_annuel,
                    d.high_volume_approved,
                    d.active,
                    crate::search::key(&d.name, &d.administration)
                ],
            )?;
            Ok(())
        })
    }

    fn daily(
        &self,
        demarche_id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<DailyRow>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT demarche_id, day, source, {} FROM avis_daily WHERE demarche_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day, source",
                DAILY_COLUMNS.join(", ")
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(
                params![demarche_id, from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string()],
                read_daily,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn recount(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<DailyRow>, StoreError>> {
        self.conn.with(move |conn| {
            // Days are Paris days, which SQLite cannot compute: group by received_at in Rust.
            let sql = format!(
                "SELECT received_at, source, {} FROM avis WHERE demarche_id = ?1 GROUP BY received_at, source",
                recount_expressions()
            );
            let mut st = conn.prepare(&sql)?;
            let mut map = std::collections::BTreeMap::<(NaiveDate, String), Counts>::new();
            let mut rows = st.query([demarche_id])?;
            while let Some(r) = rows.next()? {
                let at: String = r.get(0)?;
                let ms = chrono::DateTime::parse_from_rfc3339(&at).map(|t| t.timestamp_millis()).unwrap_or(0);
                let mut c = [0i64; 16];
                for (i, slot) in c.iter_mut().enumerate() {
                    *slot = r.get(2 + i)?;
                }
                map.entry((paris_day(ms), r.get(1)?)).or_default().add(&Counts::from_columns(c));
            }
            Ok(map.into_iter().map(|((day, source), counts)| DailyRow { demarche_id, day, source, counts }).collect())
        })
    }

    fn daily_langues(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<LangueDay>, StoreError>> {
        self.conn.with(move |conn| {
            let mut st = conn
                .prepare("SELECT day, langue, n FROM avis_daily_langue WHERE demarche_id = ?1 ORDER BY day, langue")?;
            let rows = st.query_map([demarche_id], |r| {
                let day: String = r.get(0)?;
                Ok(LangueDay {
                    demarche_id,
                    day: NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap_or_default(),
                    langue: r.get(1)?,
                    n: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn recount_langues(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<LangueDay>, StoreError>> {
        self.conn.with(move |conn| {
            // Paris days, in Rust (see `recount`).
            let mut st = conn.prepare(
                "SELECT received_at, langue, count(*) FROM avis WHERE demarche_id = ?1 AND langue <> 'fr' \
                 GROUP BY received_at, langue",
            )?;
            let mut map = std::collections::BTreeMap::<(NaiveDate, String), i64>::new();
            let mut rows = st.query([demarche_id])?;
            while let Some(r) = rows.next()? {
                let at: String = r.get(0)?;
                let ms = chrono::DateTime::parse_from_rfc3339(&at).map(|t| t.timestamp_millis()).unwrap_or(0);
                *map.entry((paris_day(ms), r.get(1)?)).or_default() += r.get::<_, i64>(2)?;
            }
            Ok(map.into_iter().map(|((day, langue), n)| LangueDay { demarche_id, day, langue, n }).collect())
        })
    }

    fn monthly(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<(NaiveDate, Counts)>, StoreError>> {
        self.conn.with(move |conn| {
            let sql = format!(
                "SELECT month, {} FROM avis_monthly WHERE demarche_id = ?1 ORDER BY month",
                DAILY_COLUMNS.join(", ")
            );
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map([demarche_id], |r| {
                let mut c = [0i64; 16];
                for (i, slot) in c.iter_mut().enumerate() {
                    *slot = r.get(1 + i)?;
                }
                let month: String = r.get(0)?;
                let month = NaiveDate::parse_from_str(&month, "%Y-%m-%d").map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
                })?;
                Ok((month, Counts::from_columns(c)))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn count_avis(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.conn.with(|conn| Ok(conn.query_row("SELECT count(*) FROM avis", [], |r| r.get(0))?))
    }
    fn erase_comments_before(&self, cutoff: DateTime<Utc>, batch: usize) -> BoxFuture<'_, Result<u64, StoreError>> {
        let cutoff = rfc3339_ms(cutoff.timestamp_millis());
        let limit = batch.max(1) as i64;
        async move {
            let mut erased = 0u64;
            let mut previous = i64::MIN;
            loop {
                let next = self.conn.with(move |conn| {
                    Ok(conn.query_row(NEXT_COMMENTED_DEMARCHE, [previous], |r| r.get::<_, i64>(0)).optional()?)
                });
                let Some(demarche_id) = next.await? else { break };
                previous = demarche_id;
                // Times are fixed-width text: "" sorts before every one, as "" before every id.
                let mut after = (String::new(), String::new());
                loop {
                    // One blocking call per batch: the flushers take the connection in between,
                    // and an aborted task stops at the next batch.
                    let (cutoff, from) = (cutoff.clone(), after.clone());
                    let (n, last) = self
                        .conn
                        .with(move |conn| {
                            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                            let mut n = 0i64;
                            let mut last = from.clone();
                            {
                                let mut erase = tx.prepare_cached(ERASE_COMMENTS)?;
                                let mut rows = erase.query(params![demarche_id, cutoff, from.0, from.1, limit])?;
                                while let Some(r) = rows.next()? {
                                    n += 1;
                                    last = last.max((r.get(0)?, r.get(1)?));
                                }
                            }
                            tx.commit()?;
                            Ok((n, last))
                        })
                        .await?;
                    erased += n as u64;
                    after = last;
                    if n < limit {
                        break;
                    }
                }
            }
            Ok(erased)
        }
        .boxed()
    }
}
