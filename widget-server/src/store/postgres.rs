//! PostgreSQL, for production: bb8-postgres pool, binary COPY for batches.
//!
//! A batch takes the fast path first: binary COPY straight into `avis`, plus the `avis_daily`
//! upsert computed from the batch, in one transaction. If any id is already stored (a retried
//! batch whose first commit did reach the database, or a replayed spill file), the COPY fails
//! whole with a unique violation and the batch goes through the staging path instead: COPY into
//! a temporary table, `INSERT … ON CONFLICT DO NOTHING RETURNING id`, and the upsert of only
//! the returned votes, again in one transaction. Either way a vote counts once.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, UNIX_EPOCH};

use bb8_postgres::PostgresConnectionManager;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures_util::future::BoxFuture;
use futures_util::{pin_mut, FutureExt};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::pg_tls::{self, Tls};
use super::{aggregate, recount_expressions, LangueDay, Store, StoreError, DAILY_COLUMNS};
use crate::catalogue::{Demarche, PrivacyNotice};
use crate::stats::{Counts, DailyRow};
use crate::vote::{Question, Vote};

type Pool = bb8::Pool<PostgresConnectionManager<Tls>>;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE demarche (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    administration text NOT NULL DEFAULT '',
    volume_annuel bigint,
    high_volume_approved boolean NOT NULL DEFAULT false,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE avis (
    id uuid PRIMARY KEY,
    demarche_id bigint NOT NULL,
    source text NOT NULL,
    received_at timestamptz NOT NULL,
    satisfaction text NOT NULL CHECK (satisfaction IN ('bien', 'moyen', 'pas-bien')),
    facilite text CHECK (facilite IN ('facile', 'moyen', 'difficile')),
    clarte text CHECK (clarte IN ('clair', 'moyen', 'pas-clair')),
    aide smallint NOT NULL DEFAULT 0,
    commentaire text
);
CREATE INDEX avis_demarche_received ON avis (demarche_id, received_at);
CREATE TABLE avis_daily (
    demarche_id bigint NOT NULL,
    day date NOT NULL,
    source text NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    sat_bien bigint NOT NULL DEFAULT 0, sat_moyen bigint NOT NULL DEFAULT 0, sat_pas_bien bigint NOT NULL DEFAULT 0,
    fac_facile bigint NOT NULL DEFAULT 0, fac_moyen bigint NOT NULL DEFAULT 0, fac_difficile bigint NOT NULL DEFAULT 0,
    cla_clair bigint NOT NULL DEFAULT 0, cla_moyen bigint NOT NULL DEFAULT 0, cla_pas_clair bigint NOT NULL DEFAULT 0,
    aide_aucune bigint NOT NULL DEFAULT 0, aide_proche bigint NOT NULL DEFAULT 0, aide_association bigint NOT NULL DEFAULT 0,
    aide_agent bigint NOT NULL DEFAULT 0, aide_internet bigint NOT NULL DEFAULT 0, aide_autre bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (demarche_id, day, source)
);
"#,
    r#"
CREATE TABLE account (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    administration text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    status text NOT NULL CHECK (status IN ('unconfirmed', 'pending', 'active')),
    is_admin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    status_at timestamptz NOT NULL
);
CREATE TABLE session (
    token_hash bytea PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    csrf text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX session_account ON session (account_id);
CREATE TABLE email_token (
    token_hash bytea PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('confirm', 'reset')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    -- A confirmation link carries the details of the sign-up that sent it.
    name text,
    administration text,
    password_hash text
);
CREATE INDEX email_token_account ON email_token (account_id);
CREATE TABLE allowed_domain (
    domain text PRIMARY KEY,
    added_by bigint REFERENCES account (id) ON DELETE SET NULL,
    added_at timestamptz NOT NULL
);
CREATE TABLE email_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_address text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL,
    claimed_at timestamptz,
    sent_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX email_outbox_unsent ON email_outbox (id) WHERE sent_at IS NULL;
CREATE TABLE audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    actor_id bigint,
    action text NOT NULL,
    account_id bigint,
    demarche_id bigint,
    detail text NOT NULL DEFAULT ''
);
"#,
    r#"
ALTER TABLE demarche ADD COLUMN url text NOT NULL DEFAULT '';
-- Name and administration folded in Rust (lower case, no accents), searched with LIKE.
ALTER TABLE demarche ADD COLUMN search text NOT NULL DEFAULT '';
ALTER TABLE demarche ADD COLUMN created_by bigint;
ALTER TABLE demarche ADD COLUMN merged_into bigint;
-- Observatory criteria declared by porteurs (DESIGN §12); NULL: not declared.
ALTER TABLE demarche ADD COLUMN en_ligne text CHECK (en_ligne IN ('oui', 'partiel', 'non'));
ALTER TABLE demarche ADD COLUMN franceconnect boolean;
ALTER TABLE demarche ADD COLUMN mobile boolean;
ALTER TABLE demarche ADD COLUMN support_qualite boolean;
ALTER TABLE demarche ADD COLUMN disponibilite boolean;
-- Privacy notice shown on the form (DESIGN §13).
ALTER TABLE demarche ADD COLUMN privacy_controller text NOT NULL DEFAULT '';
ALTER TABLE demarche ADD COLUMN privacy_dpo text NOT NULL DEFAULT '';
CREATE TABLE porteur (
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    demarche_id bigint NOT NULL REFERENCES demarche (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, demarche_id)
);
CREATE INDEX porteur_demarche ON porteur (demarche_id);
CREATE TABLE porteur_request (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    demarche_id bigint NOT NULL REFERENCES demarche (id) ON DELETE CASCADE,
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    status text NOT NULL CHECK (status IN ('pending', 'accepted', 'refused')),
    created_at timestamptz NOT NULL,
    decided_by bigint,
    decided_at timestamptz
);
CREATE UNIQUE INDEX porteur_request_pending ON porteur_request (demarche_id, account_id) WHERE status = 'pending';
CREATE TABLE porteur_invite (
    token_hash bytea PRIMARY KEY,
    demarche_id bigint NOT NULL REFERENCES demarche (id) ON DELETE CASCADE,
    email text NOT NULL,
    invited_by bigint,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
"#,
    r#"
-- « Tous les avis »: newest first in keyset pages, by démarche, with or without filters.
CREATE INDEX avis_demarche_received_id ON avis (demarche_id, received_at, id);
DROP INDEX avis_demarche_received;
CREATE INDEX avis_demarche_satisfaction ON avis (demarche_id, satisfaction, received_at, id);
CREATE INDEX avis_demarche_commented ON avis (demarche_id, received_at, id) WHERE commentaire IS NOT NULL;
-- Full-text search in comments: the French configuration, accents removed (unaccent ships
-- with PostgreSQL and is a trusted extension), behind a GIN index.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION monavis_fr (COPY = french);
ALTER TEXT SEARCH CONFIGURATION monavis_fr ALTER MAPPING FOR hword, hword_part, word WITH unaccent, french_stem;
CREATE INDEX avis_commentaire_fts ON avis USING gin (to_tsvector('monavis_fr', commentaire)) WHERE commentaire IS NOT NULL;
CREATE TABLE api_key (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_key_account ON api_key (account_id);
"#,
    r#"
-- Full-text search reads the comment's tsvector instead of parsing the comment again for each
-- row it checks (~30 µs a comment): stored, computed by PostgreSQL on INSERT and COPY (which
-- name their columns, so they need not change), NULL without a comment. The GIN index moves
-- onto it. Rewrites `avis` once.
ALTER TABLE avis ADD COLUMN commentaire_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('monavis_fr', commentaire)) STORED;
CREATE INDEX avis_commentaire_tsv ON avis USING gin (commentaire_tsv) WHERE commentaire IS NOT NULL;
DROP INDEX avis_commentaire_fts;
"#,
    r#"
-- Every index on `avis` is paid by every flushed vote: this one cost the flush about 30 %
-- (flushbench, same machine, one run), and a satisfaction filter reads at most three times
-- the rows of its page walking `avis_demarche_received_id` instead.
DROP INDEX avis_demarche_satisfaction;
"#,
    r#"
-- `avis` partitioned by month of `received_at` (UTC month bounds), partitions `avis_YYYY_MM`
-- (DESIGN §14): each month's indexes stay the size of a month, retention and maintenance
-- (VACUUM, REINDEX, backups) go partition by partition, and an old month can be detached.
-- PostgreSQL wants the partition key in every unique index, so the primary key becomes
-- (id, received_at): a vote's `received_at` is stamped once, when it is accepted, and travels
-- with it through buffer, spill file and journal, so a retried or replayed vote carries the same
-- pair and still meets its stored copy (the flusher's exactly-once check is unchanged).
-- Rewrites `avis` once, in this migration's transaction.
ALTER TABLE avis RENAME TO avis_unpartitioned;
ALTER INDEX avis_pkey RENAME TO avis_unpartitioned_pkey;
ALTER INDEX avis_demarche_received_id RENAME TO avis_unpartitioned_demarche_received_id;
ALTER INDEX avis_demarche_commented RENAME TO avis_unpartitioned_demarche_commented;
ALTER INDEX avis_commentaire_tsv RENAME TO avis_unpartitioned_commentaire_tsv;
CREATE TABLE avis (
    id uuid NOT NULL,
    demarche_id bigint NOT NULL,
    source text NOT NULL,
    received_at timestamptz NOT NULL,
    satisfaction text NOT NULL CHECK (satisfaction IN ('bien', 'moyen', 'pas-bien')),
    facilite text CHECK (facilite IN ('facile', 'moyen', 'difficile')),
    clarte text CHECK (clarte IN ('clair', 'moyen', 'pas-clair')),
    aide smallint NOT NULL DEFAULT 0,
    commentaire text,
    commentaire_tsv tsvector GENERATED ALWAYS AS (to_tsvector('monavis_fr', commentaire)) STORED,
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX avis_demarche_received_id ON avis (demarche_id, received_at, id);
CREATE INDEX avis_demarche_commented ON avis (demarche_id, received_at, id) WHERE commentaire IS NOT NULL;
CREATE INDEX avis_commentaire_tsv ON avis USING gin (commentaire_tsv) WHERE commentaire IS NOT NULL;
-- Creates the partition of the month holding `at` (UTC) if missing: its name, or NULL when it
-- existed. Also for
-- operators: `SELECT monavis_avis_partition('2031-01-01')` as the owner of `avis`.
-- Created empty then attached: ATTACH PARTITION takes only a SHARE UPDATE EXCLUSIVE lock on
-- `avis`, so COPY and reads go on, where CREATE TABLE … PARTITION OF would queue an ACCESS
-- EXCLUSIVE lock behind a long export and every flush behind it. The CHECK constraint matching
-- the bounds spares ATTACH its scan.
CREATE FUNCTION monavis_avis_partition(at timestamptz) RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    first timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
    lo timestamptz := first AT TIME ZONE 'UTC';
    hi timestamptz := (first + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'avis_' || to_char(first, 'YYYY_MM');
BEGIN
    IF to_regclass(quote_ident(name)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE avis INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED)', name);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (received_at >= %L AND received_at < %L)',
                       name, name || '_bounds', lo, hi);
        EXECUTE format('ALTER TABLE avis ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_bounds');
        RETURN name;
    END IF;
    RETURN NULL;
END
$fn$;
SELECT monavis_avis_partition(m AT TIME ZONE 'UTC')
FROM generate_series(
    date_trunc('month', coalesce((SELECT min(received_at) FROM avis_unpartitioned), now()) AT TIME ZONE 'UTC'),
    date_trunc('month', greatest((SELECT max(received_at) FROM avis_unpartitioned), now()) AT TIME ZONE 'UTC'),
    interval '1 month'
) AS m;
INSERT INTO avis (id, demarche_id, source, received_at, satisfaction, facilite, clarte, aide, commentaire)
SELECT id, demarche_id, source, received_at, satisfaction, facilite, clarte, aide, commentaire FROM avis_unpartitioned;
DROP TABLE avis_unpartitioned;
"#,
    r#"
-- Trust hardening (DESIGN §10).
-- A link voided before use: a newer sign-up replaced it, or the password changed.
ALTER TABLE email_token ADD COLUMN revoked_at timestamptz;
-- An invitation cancelled from the Porteurs tab, or when its author stopped carrying the démarche.
ALTER TABLE porteur_invite ADD COLUMN cancelled_at timestamptz;
-- Why the requester says they carry the démarche, for whoever decides.
ALTER TABLE porteur_request ADD COLUMN reason text NOT NULL DEFAULT '';
-- Whether the démarche ever had a porteur: only one that never had one, and holds no avis, goes
-- to its first claimant at once. Kept by a trigger on every way a porteur is added.
ALTER TABLE demarche ADD COLUMN had_porteur boolean NOT NULL DEFAULT false;
UPDATE demarche SET had_porteur = true
WHERE created_by IS NOT NULL
   OR id IN (SELECT demarche_id FROM porteur)
   OR id IN (SELECT demarche_id FROM audit WHERE demarche_id IS NOT NULL AND action LIKE 'porteur.%');
CREATE FUNCTION monavis_porteur_had() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE demarche SET had_porteur = true WHERE id = NEW.demarche_id AND NOT had_porteur;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER porteur_had AFTER INSERT ON porteur FOR EACH ROW EXECUTE FUNCTION monavis_porteur_had();
"#,
    r#"
-- ProConnect (DESIGN §16): the identities an account logs in with, by (issuer, sub); an agent
-- may have several (ProConnect's sub differs per identity provider).
CREATE TABLE proconnect_identity (
    issuer text NOT NULL,
    sub text NOT NULL,
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    idp_id text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    last_login_at timestamptz NOT NULL,
    PRIMARY KEY (issuer, sub)
);
CREATE INDEX proconnect_identity_account ON proconnect_identity (account_id);
-- The ID token of a session opened through ProConnect, for its log-out there (id_token_hint).
ALTER TABLE session ADD COLUMN id_token text;
"#,
    r#"
-- E-mail retries back off and end (issue 23): after a failed attempt a mail waits until
-- next_attempt_at (1 minute, doubling, at most an hour); 3 days after retry_since (its creation,
-- or an administrator's « Renvoyer », resent_at) it is given up and shown on /console/admin.
ALTER TABLE email_outbox ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE email_outbox ADD COLUMN given_up_at timestamptz;
ALTER TABLE email_outbox ADD COLUMN resent_at timestamptz;
DROP INDEX email_outbox_unsent;
CREATE INDEX email_outbox_unsent ON email_outbox (id) WHERE sent_at IS NULL AND given_up_at IS NULL;
CREATE INDEX email_outbox_given_up ON email_outbox (id) WHERE sent_at IS NULL AND given_up_at IS NOT NULL;
"#,
    r#"
-- Notifications (DESIGN §15). Every row goes with its account. No row in notify_account: the default digest, weekly; no row in
-- notify_demarche: the defaults (comments off, drop and silent alerts on), so whoever joins a
-- démarche has them without a write.
CREATE TABLE notify_account (
    account_id bigint PRIMARY KEY REFERENCES account (id) ON DELETE CASCADE,
    digest text NOT NULL CHECK (digest IN ('aucune', 'quotidienne', 'hebdomadaire', 'mensuelle'))
);
CREATE TABLE notify_demarche (
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    demarche_id bigint NOT NULL,
    comments boolean NOT NULL,
    drop_alert boolean NOT NULL,
    silent boolean NOT NULL,
    PRIMARY KEY (account_id, demarche_id)
);
-- Every notification due, exactly once: inserted in the transaction that queues its mail.
-- demarche_id 0: a mail about every carried démarche (the digest).
CREATE TABLE notification (
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    kind text NOT NULL,
    demarche_id bigint NOT NULL,
    period text NOT NULL,
    email_id bigint,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, kind, demarche_id, period)
);
-- A drop or silent-button alert that fired and has not recovered since: none is sent again
-- until the row is gone (re-armed). source '' for a démarche-wide alert.
CREATE TABLE notify_alert (
    account_id bigint NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    kind text NOT NULL,
    demarche_id bigint NOT NULL,
    source text NOT NULL,
    fired_on date NOT NULL,
    PRIMARY KEY (account_id, kind, demarche_id, source)
);
-- A notification's HTML part and its one-click unsubscribe link (RFC 8058).
ALTER TABLE email_outbox ADD COLUMN html text;
ALTER TABLE email_outbox ADD COLUMN unsubscribe text;
"#,
    r#"
-- The observatory's rollup (issue 23): avis_daily summed by démarche and calendar month, every
-- source together. The observatory's year reads the whole months inside it here and only the
-- days of the two months at its ends from avis_daily: a few hundred thousand rows instead of
-- millions at 20,000 démarches. Kept by triggers on avis_daily, in the transaction that changes
-- it, so whatever writes avis_daily (a flush, a merge, an operator's SQL, a TRUNCATE) keeps the
-- rollup exact. A flush upserts its daily rows in (démarche, day, source) order, so its monthly
-- rows are locked in (démarche, month) order too: two flushers cannot deadlock on them.
CREATE TABLE avis_monthly (
    demarche_id bigint NOT NULL,
    month date NOT NULL,
    n bigint NOT NULL DEFAULT 0, sat_bien bigint NOT NULL DEFAULT 0,
    sat_moyen bigint NOT NULL DEFAULT 0, sat_pas_bien bigint NOT NULL DEFAULT 0,
    fac_facile bigint NOT NULL DEFAULT 0, fac_moyen bigint NOT NULL DEFAULT 0,
    fac_difficile bigint NOT NULL DEFAULT 0, cla_clair bigint NOT NULL DEFAULT 0,
    cla_moyen bigint NOT NULL DEFAULT 0, cla_pas_clair bigint NOT NULL DEFAULT 0,
    aide_aucune bigint NOT NULL DEFAULT 0, aide_proche bigint NOT NULL DEFAULT 0,
    aide_association bigint NOT NULL DEFAULT 0, aide_agent bigint NOT NULL DEFAULT 0,
    aide_internet bigint NOT NULL DEFAULT 0, aide_autre bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (demarche_id, month)
);
INSERT INTO avis_monthly (demarche_id, month, n, sat_bien, sat_moyen, sat_pas_bien, fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair, aide_aucune, aide_proche, aide_association, aide_agent, aide_internet, aide_autre)
SELECT demarche_id, date_trunc('month', day)::date, sum(n), sum(sat_bien), sum(sat_moyen), sum(sat_pas_bien), sum(fac_facile), sum(fac_moyen), sum(fac_difficile), sum(cla_clair), sum(cla_moyen), sum(cla_pas_clair), sum(aide_aucune), sum(aide_proche), sum(aide_association), sum(aide_agent), sum(aide_internet), sum(aide_autre)
FROM avis_daily GROUP BY 1, 2;
CREATE FUNCTION monavis_avis_monthly() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.demarche_id = NEW.demarche_id
       AND date_trunc('month', OLD.day) = date_trunc('month', NEW.day) THEN
        UPDATE avis_monthly SET n = n + NEW.n - OLD.n, sat_bien = sat_bien + NEW.sat_bien - OLD.sat_bien, sat_moyen = sat_moyen + NEW.sat_moyen - OLD.sat_moyen, sat_pas_bien = sat_pas_bien + NEW.sat_pas_bien - OLD.sat_pas_bien, fac_facile = fac_facile + NEW.fac_facile - OLD.fac_facile, fac_moyen = fac_moyen + NEW.fac_moyen - OLD.fac_moyen, fac_difficile = fac_difficile + NEW.fac_difficile - OLD.fac_difficile, cla_clair = cla_clair + NEW.cla_clair - OLD.cla_clair, cla_moyen = cla_moyen + NEW.cla_moyen - OLD.cla_moyen, cla_pas_clair = cla_pas_clair + NEW.cla_pas_clair - OLD.cla_pas_clair, aide_aucune = aide_aucune + NEW.aide_aucune - OLD.aide_aucune, aide_proche = aide_proche + NEW.aide_proche - OLD.aide_proche, aide_association = aide_association + NEW.aide_association - OLD.aide_association, aide_agent = aide_agent + NEW.aide_agent - OLD.aide_agent, aide_internet = aide_internet + NEW.aide_internet - OLD.aide_internet, aide_autre = aide_autre + NEW.aide_autre - OLD.aide_autre
        WHERE demarche_id = NEW.demarche_id AND month = date_trunc('month', NEW.day)::date;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE avis_monthly SET n = n - OLD.n, sat_bien = sat_bien - OLD.sat_bien, sat_moyen = sat_moyen - OLD.sat_moyen, sat_pas_bien = sat_pas_bien - OLD.sat_pas_bien, fac_facile = fac_facile - OLD.fac_facile, fac_moyen = fac_moyen - OLD.fac_moyen, fac_difficile = fac_difficile - OLD.fac_difficile, cla_clair = cla_clair - OLD.cla_clair, cla_moyen = cla_moyen - OLD.cla_moyen, cla_pas_clair = cla_pas_clair - OLD.cla_pas_clair, aide_aucune = aide_aucune - OLD.aide_aucune, aide_proche = aide_proche - OLD.aide_proche, aide_association = aide_association - OLD.aide_association, aide_agent = aide_agent - OLD.aide_agent, aide_internet = aide_internet - OLD.aide_internet, aide_autre = aide_autre - OLD.aide_autre
        WHERE demarche_id = OLD.demarche_id AND month = date_trunc('month', OLD.day)::date;
        DELETE FROM avis_monthly
        WHERE demarche_id = OLD.demarche_id AND month = date_trunc('month', OLD.day)::date AND n = 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO avis_monthly (demarche_id, month, n, sat_bien, sat_moyen, sat_pas_bien, fac_facile, fac_moyen, fac_difficile, cla_clair, cla_moyen, cla_pas_clair, aide_aucune, aide_proche, aide_association, aide_agent, aide_internet, aide_autre)
        VALUES (NEW.demarche_id, date_trunc('month', NEW.day)::date, NEW.n, NEW.sat_bien, NEW.sat_moyen, NEW.sat_pas_bien, NEW.fac_facile, NEW.fac_moyen, NEW.fac_difficile, NEW.cla_clair, NEW.cla_moyen, NEW.cla_pas_clair, NEW.aide_aucune, NEW.aide_proche, NEW.aide_association, NEW.aide_agent, NEW.aide_internet, NEW.aide_autre)
        ON CONFLICT (demarche_id, month) DO UPDATE SET n = avis_monthly.n + excluded.n, sat_bien = avis_monthly.sat_bien + excluded.sat_bien, sat_moyen = avis_monthly.sat_moyen + excluded.sat_moyen, sat_pas_bien = avis_monthly.sat_pas_bien + excluded.sat_pas_bien, fac_facile = avis_monthly.fac_facile + excluded.fac_facile, fac_moyen = avis_monthly.fac_moyen + excluded.fac_moyen, fac_difficile = avis_monthly.fac_difficile + excluded.fac_difficile, cla_clair = avis_monthly.cla_clair + excluded.cla_clair, cla_moyen = avis_monthly.cla_moyen + excluded.cla_moyen, cla_pas_clair = avis_monthly.cla_pas_clair + excluded.cla_pas_clair, aide_aucune = avis_monthly.aide_aucune + excluded.aide_aucune, aide_proche = avis_monthly.aide_proche + excluded.aide_proche, aide_association = avis_monthly.aide_association + excluded.aide_association, aide_agent = avis_monthly.aide_agent + excluded.aide_agent, aide_internet = avis_monthly.aide_internet + excluded.aide_internet, aide_autre = avis_monthly.aide_autre + excluded.aide_autre;
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER avis_daily_monthly AFTER INSERT OR UPDATE OR DELETE ON avis_daily
    FOR EACH ROW EXECUTE FUNCTION monavis_avis_monthly();
CREATE FUNCTION monavis_avis_monthly_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    TRUNCATE avis_monthly;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER avis_daily_monthly_truncate AFTER TRUNCATE ON avis_daily
    FOR EACH STATEMENT EXECUTE FUNCTION monavis_avis_monthly_truncate();
-- The days at the ends of the observatory's year, across démarches.
CREATE INDEX avis_daily_day ON avis_daily (day);
"#,
    r#"
-- The language of the form each avis was given in (DESIGN §17): every avis before was French.
-- A constant default: PostgreSQL records it in the catalogue and rewrites no partition.
ALTER TABLE avis ADD COLUMN langue text NOT NULL DEFAULT 'fr';
-- Avis per (démarche, Paris day) in each language other than French, kept by the flush in the
-- transaction that stores them, like avis_daily: the dashboard counts languages from it in
-- O(days). French is avis_daily.n minus these rows, so a flush of French votes (nearly all of
-- them) writes nothing more.
CREATE TABLE avis_daily_langue (
    demarche_id bigint NOT NULL,
    day date NOT NULL,
    langue text NOT NULL CHECK (langue <> 'fr'),
    n bigint NOT NULL,
    PRIMARY KEY (demarche_id, day, langue)
);
"#,
    r#"
-- Notifications' bookkeeping (issue 21). notify_clock: the last hour checked for drops and silent
-- buttons, the last period of each digest sent, and the run holding each until lease_until: a
-- scheduler that missed a minute catches up, replicas do each once. notify_account.*_off: an
-- unsubscribe from an alert kind also holds for the démarches the account joins later.
CREATE TABLE notify_clock (
    job text PRIMARY KEY,
    done text NOT NULL,
    lease_until timestamptz
);
ALTER TABLE notify_account ADD COLUMN comments_off boolean NOT NULL DEFAULT false;
ALTER TABLE notify_account ADD COLUMN drop_alert_off boolean NOT NULL DEFAULT false;
ALTER TABLE notify_account ADD COLUMN silent_off boolean NOT NULL DEFAULT false;
"#,
    r#"
-- One b-tree fewer for every flushed vote (issue 23): the primary key becomes
-- (demarche_id, received_at, id), the order « Tous les avis » reads, and replaces both the key
-- (id, received_at) and the index avis_demarche_received_id on the same three columns. Each
-- index on `avis` is paid by every vote flushed: this one cost about 18 % of the server's CPU a
-- row in a month of 5,000,000 avis (docs/BENCHMARKS.md), and 190 MiB of such a month.
-- A vote's démarche, like its id and received_at, is fixed when it is accepted, except by a
-- merge, which moves a duplicate's avis to its target: a flush writes a merged démarche's votes
-- under its target (the merge and the flushes take turns on MERGE_FENCE), so a retried or
-- replayed vote still meets its stored copy. Rebuilds the key of every partition, locking
-- `avis` meanwhile: about a second per million avis.
DROP INDEX avis_demarche_received_id;
ALTER TABLE avis DROP CONSTRAINT avis_pkey;
ALTER TABLE avis ADD CONSTRAINT avis_pkey PRIMARY KEY (demarche_id, received_at, id);
"#,
];

/// The migration that adds `avis.langue`: a store migrated only below it (the flush benchmark's
/// unpartitioned table, the partitioning test) stores votes without their language.
pub const LANGUE_VERSION: usize = 13;

/// The last migration before `avis` was partitioned (for the flush benchmark's comparison).
pub const UNPARTITIONED_VERSION: usize = 6;

/// Column types of `avis`, in COPY order ([`avis_columns`]; `langue` last).
const AVIS_TYPES: [Type; 10] = [
    Type::UUID,
    Type::INT8,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
];

/// The columns a flush writes: with `langue` once the schema has it ([`LANGUE_VERSION`]).
fn avis_columns(langue: bool) -> &'static str {
    if langue {
        "id, demarche_id, source, received_at, satisfaction, facilite, clarte, aide, commentaire, langue"
    } else {
        "id, demarche_id, source, received_at, satisfaction, facilite, clarte, aide, commentaire"
    }
}

/// The binary COPY layout of `avis`, without `langue` (every avis before it was French): its
/// columns and their types, in order. For the benchmarks, which load avis of their own.
pub fn avis_copy_layout() -> (&'static str, &'static [Type]) {
    (avis_columns(false), &AVIS_TYPES[..9])
}

/// The next démarche (by id, after `$1`) of partition `{p}` that has an avis with a comment:
/// one probe of its partial index `(demarche_id, received_at, id) WHERE commentaire IS NOT NULL`,
/// however many avis it has.
const NEXT_COMMENTED_DEMARCHE: &str =
    "SELECT demarche_id FROM {p} WHERE commentaire IS NOT NULL AND demarche_id > $1 ORDER BY demarche_id LIMIT 1";

/// Erases one batch of old comments of démarche `$1` in partition `{p}`: at most `$5` avis
/// received before `$2`, strictly after `($3, $4)` in `(received_at, id)` order, oldest first.
///
/// Retention goes partition by partition (DESIGN §13, §14): months wholly after the cut-off are
/// not read at all, and each statement touches one partition's indexes only. No index of its
/// own: `received_at < $2` alone would need one on `received_at`, which every flushed vote would
/// pay for (each index on `avis` is, see migration 6). The partial index of commented avis
/// answers it démarche by démarche instead; the keyset bound lets each batch start where the
/// last stopped rather than walk the index entries it left dead. The batch is erased as the range
/// of that index it spans, up to its last avis, rather than by a list of keys (the planner may
/// hash a list of thousands against a sequential scan, as it once did with 700,000 rows). The
/// outer `commentaire IS NOT NULL` is checked again on a row another replica erased meanwhile,
/// so such a row is neither erased twice nor counted twice. `commentaire_tsv`, a generated
/// column, becomes NULL with the comment, and leaves the GIN index with it.
const ERASE_COMMENTS: &str = "UPDATE {p} SET commentaire = NULL \
     WHERE demarche_id = $1 AND commentaire IS NOT NULL AND received_at < $2 AND (received_at, id) > ($3, $4) \
     AND (received_at, id) <= (SELECT received_at, id FROM (\
         SELECT received_at, id FROM {p} WHERE demarche_id = $1 AND commentaire IS NOT NULL AND received_at < $2 \
         AND (received_at, id) > ($3, $4) ORDER BY received_at, id LIMIT $5) batch \
     ORDER BY received_at DESC, id DESC LIMIT 1) \
     RETURNING received_at, id";

/// How many months ahead of the current one the server keeps partitions of `avis`.
pub const PARTITIONS_AHEAD: u32 = 3;
/// How long creating a partition may wait for its lock on `avis` (held against it by a running
/// COPY or export) before giving up until the next try.
const PARTITION_LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// The partitions of `avis`, by name.
const PARTITIONS: &str = "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
     WHERE i.inhparent = 'avis'::regclass ORDER BY 1";

/// `avis_YYYY_MM`, the partition holding the month that starts on `month`.
pub fn partition_name(month: NaiveDate) -> String {
    format!("avis_{}", month.format("%Y_%m"))
}

/// The first day of the month `k` months after the one holding `now` (UTC).
fn month_start(now: DateTime<Utc>, k: u32) -> Option<NaiveDate> {
    now.date_naive().with_day(1)?.checked_add_months(chrono::Months::new(k))
}

/// The month a partition named like [`partition_name`] holds; `None` for other names (a
/// partition an operator made by hand).
fn partition_month(name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix("avis_")?;
    NaiveDate::parse_from_str(&format!("{rest}_01"), "%Y_%m_%d").ok()
}

/// PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    upsert_daily: String,
    /// Whether `avis` has `langue`: true unless this process migrated it only below
    /// [`LANGUE_VERSION`].
    langue: std::sync::atomic::AtomicBool,
}

impl PgStore {
    /// Connects a pool to `url` (TLS as its `sslmode` says, see [`pg_tls`]). Fails, with the
    /// reason, if a first connection cannot be made.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let (config, tls) = pg_tls::connect_config(url)?;
        pg_tls::probe(&config, &tls).await?;
        let manager = PostgresConnectionManager::new(config, tls);
        let pool = bb8::Pool::builder()
            .max_size(8)
            .connection_timeout(Duration::from_secs(5))
            .error_sink(Box::new(pg_tls::LogErrors("store")))
            .build(manager)
            .await?;
        let cols = DAILY_COLUMNS.join(", ");
        let arrays = (4..4 + DAILY_COLUMNS.len()).map(|i| format!("${i}::bigint[]")).collect::<Vec<_>>().join(", ");
        let updates =
            DAILY_COLUMNS.iter().map(|c| format!("{c} = avis_daily.{c} + excluded.{c}")).collect::<Vec<_>>().join(", ");
        let upsert_daily = format!(
            "INSERT INTO avis_daily (demarche_id, day, source, {cols}) \
             SELECT * FROM unnest($1::bigint[], $2::date[], $3::text[], {arrays}) \
             ON CONFLICT (demarche_id, day, source) DO UPDATE SET {updates}"
        );
        Ok(PgStore { pool, upsert_daily, langue: true.into() })
    }

    /// Runs the migrations not run yet, up to `version` (all of them: `MIGRATIONS.len()`).
    /// Replicas starting together take turns on an advisory lock.
    pub async fn migrate_up_to(&self, version: usize) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        // Replicas starting together take turns.
        tx.execute("SELECT pg_advisory_xact_lock(7428)", &[]).await?;
        tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await?;
        let done: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await?.get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().take(version).skip(done as usize) {
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&(i as i32 + 1)]).await?;
        }
        self.langue.store(version.max(done as usize) >= LANGUE_VERSION, std::sync::atomic::Ordering::Relaxed);
        // Search keys are folded in Rust, which SQL cannot do: fill those still empty
        // (démarches from before migration 3).
        for row in tx.query("SELECT id, name, administration FROM demarche WHERE search = ''", &[]).await? {
            let (id, name, administration): (i64, String, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let key = crate::search::key(&name, &administration);
            tx.execute("UPDATE demarche SET search = $2 WHERE id = $1", &[&id, &key]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Creates the partitions of `avis` missing for the months starting on `months` (UTC);
    /// the names of those it created. Cheap when none is missing (one catalogue query).
    ///
    /// Replicas take turns on an advisory lock, and give up after [`PARTITION_LOCK_TIMEOUT`]
    /// waiting for `avis`'s lock rather than queue every flush behind them: the task tries again
    /// later, months ahead of need.
    async fn ensure_partitions(&self, months: &[NaiveDate]) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn().await?;
        let existing: HashSet<String> =
            conn.query(PARTITIONS, &[]).await?.iter().map(|r| r.try_get::<_, String>(0)).collect::<Result<_, _>>()?;
        let missing: Vec<NaiveDate> =
            months.iter().copied().filter(|m| !existing.contains(&partition_name(*m))).collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let mut created = Vec::new();
        for month in missing {
            let tx = conn.transaction().await?;
            let made = async {
                tx.batch_execute(&format!(
                    "SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_xact_lock(7429)",
                    PARTITION_LOCK_TIMEOUT.as_millis()
                ))
                .await?;
                let first = month.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
                let name: Option<String> =
                    tx.query_one("SELECT monavis_avis_partition($1)", &[&first]).await?.try_get(0)?;
                tx.commit().await?;
                Ok::<_, tokio_postgres::Error>(name)
            }
            .await;
            match made {
                Ok(Some(name)) => {
                    tracing::info!(partition = %name, "partition of avis created");
                    created.push(name);
                }
                Ok(None) => {} // another replica was first
                Err(e) => {
                    return Err(StoreError::Partition {
                        name: partition_name(month),
                        month,
                        error: super::postgres_text(&e),
                    })
                }
            }
        }
        Ok(created)
    }

    /// [`LangueDay`] rows of `sql` (columns démarche, day, langue, n; `$1` the démarche).
    fn langue_days(&self, sql: &'static str, demarche_id: i64) -> BoxFuture<'_, Result<Vec<LangueDay>, StoreError>> {
        async move {
            let rows = self.conn().await?.query(sql, &[&demarche_id]).await?;
            rows.iter()
                .map(|r| {
                    Ok(LangueDay {
                        demarche_id: r.try_get(0)?,
                        day: r.try_get(1)?,
                        langue: r.try_get(2)?,
                        n: r.try_get(3)?,
                    })
                })
                .collect()
        }
        .boxed()
    }

    async fn conn(&self) -> Result<bb8::PooledConnection<'_, PostgresConnectionManager<Tls>>, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))
    }

    fn has_langue(&self) -> bool {
        self.langue.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds `votes` (all new) to `avis_daily`, in one statement, and those not in French to
    /// `avis_daily_langue`, in one more only when there are some.
    async fn upsert_daily(&self, tx: &Transaction<'_>, votes: &[&Vote]) -> Result<(), StoreError> {
        let langues = super::aggregate_langues(votes);
        if !langues.is_empty() && self.has_langue() {
            let ids: Vec<i64> = langues.iter().map(|r| r.demarche_id).collect();
            let days: Vec<NaiveDate> = langues.iter().map(|r| r.day).collect();
            let codes: Vec<&str> = langues.iter().map(|r| r.langue.as_str()).collect();
            let counts: Vec<i64> = langues.iter().map(|r| r.n).collect();
            tx.execute(
                "INSERT INTO avis_daily_langue (demarche_id, day, langue, n) \
                 SELECT * FROM unnest($1::bigint[], $2::date[], $3::text[], $4::bigint[]) \
                 ON CONFLICT (demarche_id, day, langue) DO UPDATE SET n = avis_daily_langue.n + excluded.n",
                &[&ids, &days, &codes, &counts],
            )
            .await?;
        }
        let rows = aggregate(votes);
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.demarche_id).collect();
        let days: Vec<NaiveDate> = rows.iter().map(|r| r.day).collect();
        let sources: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
        let columns: Vec<[i64; 16]> = rows.iter().map(|r| r.counts.columns()).collect();
        let counters: Vec<Vec<i64>> = (0..16).map(|c| columns.iter().map(|row| row[c]).collect()).collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&ids, &days, &sources];
        params.extend(counters.iter().map(|c| c as &(dyn ToSql + Sync)));
        tx.execute(self.upsert_daily.as_str(), &params).await?;
        Ok(())
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for StoreError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        match e {
            bb8::RunError::User(e) => StoreError::Postgres(e),
            bb8::RunError::TimedOut => StoreError::Pool("timed out waiting for a connection".into()),
        }
    }
}

/// Writes `votes` into `table` (same columns as `avis`) with binary COPY; their `langue` too
/// when `langue`.
async fn copy_votes(
    tx: &Transaction<'_>,
    table: &str,
    votes: &[Vote],
    langue: bool,
) -> Result<(), tokio_postgres::Error> {
    let columns = avis_columns(langue);
    let sink = tx.copy_in(&format!("COPY {table} ({columns}) FROM STDIN (FORMAT binary)")).await?;
    let types = if langue { &AVIS_TYPES[..] } else { &AVIS_TYPES[..9] };
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    for v in votes {
        let received_at = UNIX_EPOCH + Duration::from_millis(v.received_at_ms.max(0) as u64);
        let aide = i16::from(v.aide);
        let facilite = v.facilite.map(|l| Question::Facilite.value(l));
        let clarte = v.clarte.map(|l| Question::Clarte.value(l));
        let satisfaction = Question::Satisfaction.value(v.satisfaction);
        let (source, commentaire, code) = (v.source.as_str(), v.commentaire.as_deref(), v.langue.code());
        let row: [&(dyn ToSql + Sync); 10] = [
            &v.id,
            &v.demarche_id,
            &source,
            &received_at,
            &satisfaction,
            &facilite,
            &clarte,
            &aide,
            &commentaire,
            &code,
        ];
        writer.as_mut().write(&row[..types.len()]).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Takes the advisory lock that merges and flushes take turns on: every flush transaction holds it
/// shared, and a merge takes it exclusively for its last step (the console store's
/// `merge_demarche`). So a flush either commits before that step, and the merge moves its votes
/// with the rest, or starts after the merge committed, and [`follow_merges`] writes them under
/// the target. Either way a merged démarche's votes all end under its target, where the primary
/// key `(demarche_id, received_at, id)` finds them again when a vote is retried or replayed.
pub const MERGE_FENCE: &str = "SELECT pg_advisory_xact_lock(7430)";
/// [`MERGE_FENCE`] as a flush takes it.
const FENCE_SHARED: &str = "SELECT pg_advisory_xact_lock_shared(7430)";

/// `votes` with each vote of a merged démarche moved to the démarche it was merged into (one
/// hop: a merge moves those merged into the duplicate along). Holds [`MERGE_FENCE`] shared for
/// the rest of `tx`. Borrows `votes` when none is merged, the normal case.
async fn follow_merges<'v>(tx: &Transaction<'_>, votes: &'v [Vote]) -> Result<Cow<'v, [Vote]>, tokio_postgres::Error> {
    let mut ids: Vec<i64> = votes.iter().map(|v| v.demarche_id).collect();
    ids.sort_unstable();
    ids.dedup();
    // The lock first: the read's snapshot is taken once it is held.
    tx.batch_execute(FENCE_SHARED).await?;
    let merged = tx
        .query("SELECT id, merged_into FROM demarche WHERE id = ANY($1) AND merged_into IS NOT NULL", &[&ids])
        .await?;
    if merged.is_empty() {
        return Ok(Cow::Borrowed(votes));
    }
    let into: HashMap<i64, i64> =
        merged.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, tokio_postgres::Error>>()?;
    Ok(Cow::Owned(
        votes
            .iter()
            .map(|v| match into.get(&v.demarche_id) {
                Some(&target) => Vote { demarche_id: target, ..v.clone() },
                None => v.clone(),
            })
            .collect(),
    ))
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// COPY or INSERT met a row whose month has no partition of `avis`.
fn is_missing_partition(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::CHECK_VIOLATION)
        && e.as_db_error().is_some_and(|d| d.message().starts_with("no partition of relation"))
}

fn read_daily(row: &tokio_postgres::Row) -> DailyRow {
    let mut c = [0i64; 16];
    for (i, slot) in c.iter_mut().enumerate() {
        *slot = row.get(3 + i);
    }
    DailyRow { demarche_id: row.get(0), day: row.get(1), source: row.get(2), counts: Counts::from_columns(c) }
}

impl Store for PgStore {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.migrate_up_to(MIGRATIONS.len()).await?;
            // This month's partition, without which no vote can be stored, or a clear error;
            // then the months ahead, which the server tries again every hour.
            let now = Utc::now();
            self.prepare_partitions(now, 0).await?;
            if let Err(e) = self.prepare_partitions(now, PARTITIONS_AHEAD).await {
                tracing::error!(error = %e, "partitions of the coming months not created; trying again in an hour");
            }
            Ok(())
        }
        .boxed()
    }

    fn prepare_partitions(
        &self,
        now: DateTime<Utc>,
        months_ahead: u32,
    ) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        async move {
            let months: Vec<NaiveDate> = (0..=months_ahead).filter_map(|k| month_start(now, k)).collect();
            self.ensure_partitions(&months).await
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.conn().await?.simple_query("SELECT 1").await?;
            Ok(())
        }
        .boxed()
    }

    fn store_batch<'a>(&'a self, votes: &'a [Vote]) -> BoxFuture<'a, Result<u64, StoreError>> {
        async move {
            if votes.is_empty() {
                return Ok(0);
            }
            let mut conn = self.conn().await?;
            // Fast path: every vote is new (the normal case).
            {
                let tx = conn.transaction().await?;
                let votes = follow_merges(&tx, votes).await?;
                match copy_votes(&tx, "avis", &votes, self.has_langue()).await {
                    Ok(()) => {
                        let all: Vec<&Vote> = votes.iter().collect();
                        self.upsert_daily(&tx, &all).await?;
                        tx.commit().await?;
                        return Ok(votes.len() as u64);
                    }
                    Err(e) if is_unique_violation(&e) => {
                        tracing::info!(votes = votes.len(), "batch holds stored votes; storing through staging");
                        tx.rollback().await?;
                    }
                    Err(e) if is_missing_partition(&e) => {
                        // A month without partition: a vote replayed from long ago, or the
                        // task that creates them ahead could not. Create them, then go on
                        // through the staging path, which stores whatever the COPY did not.
                        tx.rollback().await?;
                        let mut months: Vec<NaiveDate> = votes
                            .iter()
                            .filter_map(|v| DateTime::from_timestamp_millis(v.received_at_ms.max(0)))
                            .filter_map(|at| month_start(at, 0))
                            .collect();
                        months.sort_unstable();
                        months.dedup();
                        drop(conn);
                        self.ensure_partitions(&months).await?;
                        conn = self.conn().await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            // Staging path: some votes are stored already.
            let tx = conn.transaction().await?;
            let votes = follow_merges(&tx, votes).await?;
            tx.batch_execute(
                "CREATE TEMP TABLE IF NOT EXISTS avis_staging (LIKE avis INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
            )
            .await?;
            let langue = self.has_langue();
            copy_votes(&tx, "avis_staging", &votes, langue).await?;
            let columns = avis_columns(langue);
            let rows = tx
                .query(
                    &format!(
                        "INSERT INTO avis ({columns}) SELECT {columns} FROM avis_staging \
                         ON CONFLICT DO NOTHING RETURNING id"
                    ),
                    &[],
                )
                .await?;
            let fresh_ids: HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
            let fresh: Vec<&Vote> = votes.iter().filter(|v| fresh_ids.contains(&v.id)).collect();
            self.upsert_daily(&tx, &fresh).await?;
            tx.commit().await?;
            Ok(fresh.len() as u64)
        }
        .boxed()
    }

    fn demarches(&self) -> BoxFuture<'_, Result<Vec<Demarche>, StoreError>> {
        async move {
            let conn = self.conn().await?;
            let rows = conn
                .query(
                    "SELECT id, name, administration, volume_annuel, high_volume_approved, active, merged_into, \
                     privacy_controller, privacy_dpo FROM demarche ORDER BY id",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Demarche {
                    id: r.get(0),
                    name: r.get(1),
                    administration: r.get(2),
                    volume_annuel: r.get(3),
                    high_volume_approved: r.get(4),
                    active: r.get(5),
                    merged_into: r.get(6),
                    privacy: PrivacyNotice { controller: r.get(7), dpo: r.get(8) },
                })
                .collect())
        }
        .boxed()
    }

    fn upsert_demarche<'a>(&'a self, d: &'a Demarche) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            self.conn()
                .await?
                .execute(
                    "INSERT INTO demarche (id, name, administration, volume_annuel, high_volume_approved, active, search) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                     administration = excluded.administration, volume_annuel = excluded.volume_annuel, \
                     high_volume_approved = excluded.high_volume_approved, active = excluded.active, search = excluded.search",
                    &[
                        &d.id,
                        &d.name,
                        &d.administration,
                        &d.volume_annuel,
                        &d.high_volume_approved,
                        &d.active,
                        &crate::search::key(&d.name, &d.administration),
                    ],
                )
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn daily(
        &self,
        demarche_id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<DailyRow>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT demarche_id, day, source, {} FROM avis_daily WHERE demarche_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day, source",
                DAILY_COLUMNS.join(", ")
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&demarche_id, &from, &to]).await?;
            Ok(rows.iter().map(read_daily).collect())
        }
        .boxed()
    }

    fn recount(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<DailyRow>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT demarche_id, (received_at AT TIME ZONE 'Europe/Paris')::date AS day, source, {} \
                 FROM avis WHERE demarche_id = $1 GROUP BY 1, 2, 3 ORDER BY 2, 3",
                recount_expressions()
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&demarche_id]).await?;
            Ok(rows.iter().map(read_daily).collect())
        }
        .boxed()
    }

    fn monthly(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<(NaiveDate, Counts)>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT month, {} FROM avis_monthly WHERE demarche_id = $1 ORDER BY month",
                DAILY_COLUMNS.join(", ")
            );
            let rows = self.conn().await?.query(sql.as_str(), &[&demarche_id]).await?;
            rows.iter()
                .map(|r| {
                    let mut c = [0i64; 16];
                    for (i, slot) in c.iter_mut().enumerate() {
                        *slot = r.try_get(1 + i)?;
                    }
                    Ok((r.try_get(0)?, Counts::from_columns(c)))
                })
                .collect()
        }
        .boxed()
    }

    fn daily_langues(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<LangueDay>, StoreError>> {
        self.langue_days(
            "SELECT demarche_id, day, langue, n FROM avis_daily_langue WHERE demarche_id = $1 ORDER BY day, langue",
            demarche_id,
        )
    }

    fn recount_langues(&self, demarche_id: i64) -> BoxFuture<'_, Result<Vec<LangueDay>, StoreError>> {
        self.langue_days(
            "SELECT demarche_id, (received_at AT TIME ZONE 'Europe/Paris')::date AS day, langue, count(*) \
             FROM avis WHERE demarche_id = $1 AND langue <> 'fr' GROUP BY 1, 2, 3 ORDER BY 2, 3",
            demarche_id,
        )
    }

    fn count_avis(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        async move { Ok(self.conn().await?.query_one("SELECT count(*) FROM avis", &[]).await?.get(0)) }.boxed()
    }

    fn erase_comments_before(&self, cutoff: DateTime<Utc>, batch: usize) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            let limit = batch.max(1) as i64;
            let conn = self.conn().await?;
            let mut erased = 0u64;
            for row in conn.query(PARTITIONS, &[]).await? {
                let partition: String = row.try_get(0)?;
                let first_day = partition_month(&partition).and_then(|m| m.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
                if first_day.is_some_and(|first| first >= cutoff) {
                    continue;
                }
                let table = format!("\"{}\"", partition.replace('"', "\"\""));
                let next_demarche = conn.prepare(&NEXT_COMMENTED_DEMARCHE.replace("{p}", &table)).await?;
                let erase = conn.prepare(&ERASE_COMMENTS.replace("{p}", &table)).await?;
                let mut previous = i64::MIN;
                while let Some(row) = conn.query_opt(&next_demarche, &[&previous]).await? {
                    let demarche_id: i64 = row.try_get(0)?;
                    previous = demarche_id;
                    // No stored avis is older than the epoch (votes are stamped when accepted).
                    let mut after: (DateTime<Utc>, Uuid) = (DateTime::UNIX_EPOCH, Uuid::nil());
                    loop {
                        let rows = conn.query(&erase, &[&demarche_id, &cutoff, &after.0, &after.1, &limit]).await?;
                        erased += rows.len() as u64;
                        for r in &rows {
                            after = after.max((r.try_get(0)?, r.try_get(1)?));
                        }
                        if (rows.len() as i64) < limit {
                            break;
                        }
                    }
                }
            }
            Ok(erased)
        }
        .boxed()
    }
}
