//! The console at scale (issue 10): the porteurs' pages, the API, the exports and the vote path
//! of a real `widget-server` over a synthetic history of millions of avis.
//!
//! 1. Loads a fresh PostgreSQL database (after `widget-server migrate`): démarche 1 with `--avis`
//!    avis spread uniformly over the last three years, démarche 2 with 100, démarche 3 empty (for
//!    votes); the monthly partitions of `avis` created first, then binary COPY with the `avis`
//!    indexes dropped and rebuilt from their own definitions on every partition, `avis_daily` by
//!    one `INSERT … SELECT … GROUP BY` on the Paris day, then `VACUUM ANALYZE`. Sizes are summed
//!    over the partitions.
//!    An active administrator, porteur of the three démarches, with a session and an API key,
//!    written directly in SQL.
//! 2. Starts the real server and times each console page and the API stats call, sequentially on
//!    one keep-alive HTTP/1 connection (W warm-up requests, then R timed ones), for démarche 1
//!    and démarche 2; p50, p99 and the ratio between them.
//! 3. Times the CSV and XLSX exports of 12 months of démarche 1, sampling the server's RSS.
//! 4. Measures votes/s with C keep-alive clients, without and then during a CSV export.
//! 5. The same pages on SQLite with `--sqlite-avis` avis.
//!
//! Prints a Markdown section on stdout (`## Console at scale`), and JSON with `--json FILE`.
//! Loopback only; every phase is bounded in time. `scripts/consolebench-smoke.sh` runs it small in
//! CI and checks the JSON, so it cannot rot unnoticed again.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context};
use bytes::Bytes;
use chrono::{Days, NaiveDate, Utc};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use monavis_benches::synthetic::{comment, Rng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use uuid::Uuid;
use widget_server::store::{recount_expressions, DAILY_COLUMNS};
use widget_server::vote::paris_day;

#[derive(Parser)]
#[command(about = "The porteurs' console at scale: pages, API, exports and votes over millions of avis")]
struct Args {
    /// A fresh PostgreSQL database (it is migrated, then loaded).
    #[arg(long)]
    database_url: String,
    /// The widget-server binary (release build).
    #[arg(long, default_value = "target/release/widget-server")]
    bin: PathBuf,
    /// Scratch directory (server working directories, SQLite file).
    #[arg(long, default_value = "/tmp/monavis-consolebench")]
    work: PathBuf,
    /// Avis of démarche 1 (PostgreSQL).
    #[arg(long, default_value_t = 10_000_000)]
    avis: u64,
    /// Avis of démarche 1 on SQLite; 0 skips the SQLite part.
    #[arg(long, default_value_t = 1_000_000)]
    sqlite_avis: u64,
    /// Warm-up requests before each timed series.
    #[arg(long, default_value_t = 30)]
    warmup: usize,
    /// Timed requests per series.
    #[arg(long, default_value_t = 200)]
    repeat: usize,
    /// Time budget of one series (warm-up included), in seconds: a slow page stops early.
    #[arg(long, default_value_t = 60)]
    series_seconds: u64,
    /// Concurrent keep-alive clients posting votes.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Seconds of each vote measurement.
    #[arg(long, default_value_t = 5)]
    vote_seconds: u64,
    /// Longest an export may take, in seconds.
    #[arg(long, default_value_t = 900)]
    export_timeout: u64,
    /// Parallel COPY streams when loading PostgreSQL.
    #[arg(long, default_value_t = 2)]
    load_parallel: u64,
    /// Keep an already loaded database (same avis count) instead of loading it again.
    #[arg(long)]
    reuse: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

// ---------------------------------------------------------------- synthetic avis

struct Avis {
    id: Uuid,
    demarche_id: i64,
    source: &'static str,
    received_ms: i64,
    satisfaction: &'static str,
    facilite: Option<&'static str>,
    clarte: Option<&'static str>,
    aide: i16,
    commentaire: Option<String>,
}

fn make_avis(rng: &mut Rng, demarche_id: i64, received_ms: i64) -> Avis {
    let satisfaction = rng.pick(&[(62, "bien"), (24, "moyen"), (14, "pas-bien")]);
    let facilite = rng.pick(&[(55, Some("facile")), (22, Some("moyen")), (13, Some("difficile")), (10, None)]);
    let clarte = rng.pick(&[(58, Some("clair")), (20, Some("moyen")), (10, Some("pas-clair")), (12, None)]);
    // Bits of AIDE: aucune, proche, association, agent, internet, autre; 0: not answered.
    let aide = rng.pick(&[(48, 1i16), (15, 0), (12, 2), (5, 4), (8, 8), (6, 16), (3, 32), (3, 2 | 8)]);
    let commentaire = comment(rng);
    let source = rng.pick(&[(55, "button"), (25, "site"), (12, "email"), (8, "guichet")]);
    let mut rand = [0u8; 10];
    rand[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    rand[8..].copy_from_slice(&rng.next_u64().to_le_bytes()[..2]);
    let id = uuid::Builder::from_unix_timestamp_millis(received_ms as u64, &rand).into_uuid();
    Avis { id, demarche_id, source, received_ms, satisfaction, facilite, clarte, aide, commentaire }
}

/// The `i`-th of `n` instants spread uniformly over `start..end` (ms), in order, with jitter.
fn instant(rng: &mut Rng, start: i64, end: i64, i: u64, n: u64) -> i64 {
    let step = (end - start) as f64 / n as f64;
    start + (i as f64 * step) as i64 + rng.below(step.max(1.0) as u64) as i64
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

const THREE_YEARS_MS: i64 = 3 * 365 * 86_400_000;

fn random_hex32() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("OS random source");
    hex::encode(b)
}

fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

/// What a run needs to sign in: the session cookie value and the API key.
struct Credentials {
    session: String,
    api_key: String,
}

// ---------------------------------------------------------------- PostgreSQL loading

async fn pg(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    Ok(widget_server::store::pg_tls::connect(url).await?)
}

fn migrate(bin: &Path, dir: &Path, url: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let out = Command::new(bin)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .args(["--database-url", url, "--log", "warn", "migrate"])
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    ensure!(out.status.success(), "widget-server migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// COPY of démarche `demarche_id`'s avis number `from..to` of `n` over `start..end`.
async fn copy_part(
    url: String,
    demarche_id: i64,
    from: u64,
    to: u64,
    n: u64,
    start: i64,
    end: i64,
) -> anyhow::Result<()> {
    let client = pg(&url).await?;
    client.batch_execute("SET synchronous_commit = off").await?;
    let (columns, types) = widget_server::store::postgres::avis_copy_layout();
    let sink = client.copy_in(&format!("COPY avis ({columns}) FROM STDIN (FORMAT binary)")).await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    futures_util::pin_mut!(writer);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (from + 1).wrapping_mul(0xA24B_AED4_963E_E407) ^ demarche_id as u64);
    for i in from..to {
        let at_ms = instant(&mut rng, start, end, i, n);
        let a = make_avis(&mut rng, demarche_id, at_ms);
        let at = UNIX_EPOCH + Duration::from_millis(a.received_ms as u64);
        writer
            .as_mut()
            .write(&[
                &a.id,
                &a.demarche_id,
                &a.source,
                &at,
                &a.satisfaction,
                &a.facilite,
                &a.clarte,
                &a.aide,
                &a.commentaire.as_deref(),
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

async fn insert_demarches(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    for (id, name, administration) in [
        (1i64, "Demande de carte d'identité", "Ministère de l'Intérieur"),
        (2i64, "Inscription à la cantine scolaire", "Mairie de Saint-Martin-d'Hères"),
        (3i64, "Démarche de test des votes", "monavis"),
    ] {
        client
            .execute(
                "INSERT INTO demarche (id, name, administration, search) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                &[&id, &name, &administration, &widget_server::search::key(name, administration)],
            )
            .await?;
    }
    Ok(())
}

/// Loads the PostgreSQL history; timings of each step.
async fn load_postgres(args: &Args) -> anyhow::Result<(Value, Credentials)> {
    let url = &args.database_url;
    let t = Instant::now();
    migrate(&args.bin, &args.work.join("pg"), url)?;
    let migrate_s = t.elapsed().as_secs_f64();
    let client = pg(url).await?;
    let existing: i64 = client.query_one("SELECT count(*) FROM avis WHERE demarche_id = 1", &[]).await?.get(0);
    let mut steps = serde_json::Map::new();
    steps.insert("migrate_s".into(), json!(migrate_s));
    if args.reuse && existing == args.avis as i64 {
        eprintln!("consolebench: reusing the {existing} avis already loaded");
        steps.insert("reused".into(), json!(true));
    } else {
        ensure!(
            existing == 0,
            "the database already holds avis: give a fresh database (or --reuse with the same --avis)"
        );
        insert_demarches(&client).await?;
        let total = Instant::now();
        let end = now_ms() - 60_000;
        let start = end - THREE_YEARS_MS;
        // `avis` is partitioned by month (migration 7): every month of the history needs its
        // partition before COPY, or COPY fails (« no partition of relation "avis" found »).
        let t = Instant::now();
        client
            .execute(
                "SELECT monavis_avis_partition(m AT TIME ZONE 'UTC') \
                 FROM generate_series(date_trunc('month', to_timestamp($1::float8 / 1000) AT TIME ZONE 'UTC'), \
                                      date_trunc('month', to_timestamp($2::float8 / 1000) AT TIME ZONE 'UTC'), \
                                      interval '1 month') AS m",
                &[&(start as f64), &(end as f64)],
            )
            .await?;
        let partitions: i64 =
            client.query_one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'avis'::regclass", &[]).await?.get(0);
        steps.insert("partitions".into(), json!(partitions));
        steps.insert("partitions_s".into(), json!(t.elapsed().as_secs_f64()));
        // The indexes of `avis`, as the migrations made them, dropped for the load. On a
        // partitioned table `pg_indexes` reads `CREATE INDEX … ON ONLY avis`, which makes an
        // invalid parent index and builds nothing on the partitions: without `ONLY`, the same
        // statement builds the index on every partition and attaches each.
        let defs: Vec<(String, String)> = client
            .query(
                "SELECT indexname, replace(indexdef, ' ON ONLY ', ' ON ') FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename = 'avis' AND indexname <> 'avis_pkey' ORDER BY indexname",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        // The primary key as the migrations made it: (id, received_at) once partitioned, since
        // a unique index must hold the partition key.
        let pkey_def: String = client
            .query_one(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'avis'::regclass AND conname = 'avis_pkey'",
                &[],
            )
            .await?
            .get(0);
        client.batch_execute("ALTER TABLE avis DROP CONSTRAINT avis_pkey").await?;
        for (name, _) in &defs {
            client.batch_execute(&format!("DROP INDEX {name}")).await?;
        }
        eprintln!("consolebench: COPY of {} avis ({} streams, {partitions} partitions)", args.avis, args.load_parallel);
        let t = Instant::now();
        let parts = args.load_parallel.max(1);
        let mut tasks = Vec::new();
        for p in 0..parts {
            let (from, to) = (args.avis * p / parts, args.avis * (p + 1) / parts);
            tasks.push(tokio::spawn(copy_part(url.clone(), 1, from, to, args.avis, start, end)));
        }
        tasks.push(tokio::spawn(copy_part(url.clone(), 2, 0, 100, 100, start, end)));
        for task in tasks {
            task.await??;
        }
        let copy_s = t.elapsed().as_secs_f64();
        steps.insert("copy_s".into(), json!(copy_s));
        steps.insert("copy_rows_per_s".into(), json!((args.avis + 100) as f64 / copy_s));
        client.batch_execute("SET maintenance_work_mem = '1GB'").await?;
        let t = Instant::now();
        eprintln!("consolebench: ALTER TABLE avis ADD CONSTRAINT avis_pkey {pkey_def}");
        client.batch_execute(&format!("ALTER TABLE avis ADD CONSTRAINT avis_pkey {pkey_def}")).await?;
        let mut index_s = vec![json!({"index": "avis_pkey", "s": t.elapsed().as_secs_f64()})];
        for (name, def) in &defs {
            eprintln!("consolebench: {def}");
            let t = Instant::now();
            client.batch_execute(def).await?;
            index_s.push(json!({"index": name, "s": t.elapsed().as_secs_f64()}));
        }
        steps.insert("indexes".into(), json!(index_s));
        let t = Instant::now();
        let cols = DAILY_COLUMNS.join(", ");
        client
            .batch_execute(&format!(
                "INSERT INTO avis_daily (demarche_id, day, source, {cols}) \
                 SELECT demarche_id, (received_at AT TIME ZONE 'Europe/Paris')::date, source, {} \
                 FROM avis GROUP BY demarche_id, (received_at AT TIME ZONE 'Europe/Paris')::date, source",
                recount_expressions()
            ))
            .await?;
        steps.insert("avis_daily_s".into(), json!(t.elapsed().as_secs_f64()));
        let t = Instant::now();
        client.batch_execute("VACUUM ANALYZE").await?;
        steps.insert("vacuum_analyze_s".into(), json!(t.elapsed().as_secs_f64()));
        steps.insert("total_s".into(), json!(total.elapsed().as_secs_f64()));
    }
    // Sizes. A partitioned table and its indexes hold no storage of their own (their sizes
    // read 0): each figure sums the partitions' relations, found through `pg_partition_tree`
    // (the table itself when unpartitioned).
    let row = client
        .query_one(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::int8 FROM pg_partition_tree('avis')), \
             (SELECT coalesce(sum(pg_relation_size(relid)), 0)::int8 FROM pg_partition_tree('avis')), \
             (SELECT coalesce(sum(pg_indexes_size(relid)), 0)::int8 FROM pg_partition_tree('avis')), \
             pg_total_relation_size('avis_daily'), (SELECT count(*) FROM avis_daily), \
             (SELECT count(*) FROM avis WHERE commentaire IS NOT NULL AND demarche_id = 1), \
             (SELECT count(*) FROM pg_partition_tree('avis') WHERE isleaf)",
            &[],
        )
        .await?;
    steps.insert("avis_total_bytes".into(), json!(row.get::<_, i64>(0)));
    steps.insert("avis_heap_bytes".into(), json!(row.get::<_, i64>(1)));
    steps.insert("avis_indexes_bytes".into(), json!(row.get::<_, i64>(2)));
    steps.insert("avis_daily_bytes".into(), json!(row.get::<_, i64>(3)));
    steps.insert("avis_daily_rows".into(), json!(row.get::<_, i64>(4)));
    steps.insert("comments_d1".into(), json!(row.get::<_, i64>(5)));
    steps.insert("partitions".into(), json!(row.get::<_, i64>(6)));
    // Each index of `avis`, its partitions' indexes summed.
    let mut sizes = Vec::new();
    for r in client
        .query(
            "SELECT i.indexrelid::regclass::text, \
             (SELECT coalesce(sum(pg_relation_size(t.relid)), 0)::int8 FROM pg_partition_tree(i.indexrelid) t) \
             FROM pg_index i WHERE i.indrelid = 'avis'::regclass ORDER BY 1",
            &[],
        )
        .await?
    {
        sizes.push(json!({"index": r.get::<_, String>(0), "bytes": r.get::<_, i64>(1)}));
    }
    steps.insert("index_sizes".into(), json!(sizes));
    let creds = pg_credentials(&client).await?;
    Ok((Value::Object(steps), creds))
}

/// An active administrator, porteur of démarches 1 to 3, with a fresh session and API key.
async fn pg_credentials(client: &tokio_postgres::Client) -> anyhow::Result<Credentials> {
    insert_demarches(client).await?;
    let id: i64 = client
        .query_one(
            "INSERT INTO account (email, name, administration, password_hash, status, is_admin, created_at, status_at) \
             VALUES ('banc@monavis.test', 'Banc d''essai', 'monavis', '!', 'active', true, now(), now()) \
             ON CONFLICT (email) DO UPDATE SET status = 'active', is_admin = true RETURNING id",
            &[],
        )
        .await?
        .get(0);
    let session = random_hex32();
    client
        .execute(
            "INSERT INTO session (token_hash, account_id, csrf, created_at, last_seen_at) VALUES ($1, $2, $3, now(), now())",
            &[&sha256(&session), &id, &random_hex32()],
        )
        .await?;
    let api_key = format!("mav_{}", random_hex32());
    client
        .execute(
            "INSERT INTO api_key (token_hash, account_id, name, created_at) VALUES ($1, $2, 'consolebench', now())",
            &[&sha256(&api_key), &id],
        )
        .await?;
    for d in [1i64, 2, 3] {
        client
            .execute(
                "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES ($1, $2, now()) ON CONFLICT DO NOTHING",
                &[&id, &d],
            )
            .await?;
    }
    Ok(Credentials { session, api_key })
}

// ---------------------------------------------------------------- SQLite loading

fn sqlite_ts(ms: i64) -> String {
    chrono::DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn load_sqlite(args: &Args, dir: &Path) -> anyhow::Result<(Value, Credentials, String)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("monavis.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    migrate(&args.bin, dir, &url)?;
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    let total = Instant::now();
    let tx = conn.transaction()?;
    for (id, name, administration) in [
        (1i64, "Demande de carte d'identité", "Ministère de l'Intérieur"),
        (2i64, "Inscription à la cantine scolaire", "Mairie de Saint-Martin-d'Hères"),
        (3i64, "Démarche de test des votes", "monavis"),
    ] {
        tx.execute(
            "INSERT INTO demarche (id, name, administration, search) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, name, administration, widget_server::search::key(name, administration)],
        )?;
    }
    let mut daily: HashMap<(i64, NaiveDate, &'static str), [i64; 16]> = HashMap::new();
    {
        let mut insert = tx.prepare(
            "INSERT INTO avis (id, demarche_id, source, received_at, satisfaction, facilite, clarte, aide, commentaire) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let end = now_ms() - 60_000;
        let start = end - THREE_YEARS_MS;
        let mut rng = Rng(0x5151_0000_2222_3333);
        for (demarche_id, n) in [(1i64, args.sqlite_avis), (2, 100)] {
            for i in 0..n {
                let at_ms = instant(&mut rng, start, end, i, n);
                let a = make_avis(&mut rng, demarche_id, at_ms);
                insert.execute(rusqlite::params![
                    a.id.hyphenated().to_string(),
                    a.demarche_id,
                    a.source,
                    sqlite_ts(a.received_ms),
                    a.satisfaction,
                    a.facilite,
                    a.clarte,
                    a.aide,
                    a.commentaire,
                ])?;
                let c = daily.entry((demarche_id, paris_day(a.received_ms), a.source)).or_insert([0; 16]);
                c[0] += 1;
                c[1 + ["bien", "moyen", "pas-bien"].iter().position(|v| *v == a.satisfaction).unwrap_or(0)] += 1;
                if let Some(f) = a.facilite {
                    c[4 + ["facile", "moyen", "difficile"].iter().position(|v| *v == f).unwrap_or(0)] += 1;
                }
                if let Some(cl) = a.clarte {
                    c[7 + ["clair", "moyen", "pas-clair"].iter().position(|v| *v == cl).unwrap_or(0)] += 1;
                }
                for bit in 0..6 {
                    if a.aide & (1 << bit) != 0 {
                        c[10 + bit] += 1;
                    }
                }
            }
        }
        let cols = DAILY_COLUMNS.join(", ");
        let marks = (4..4 + DAILY_COLUMNS.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let mut insert_daily = tx.prepare(&format!(
            "INSERT INTO avis_daily (demarche_id, day, source, {cols}) VALUES (?1, ?2, ?3, {marks})"
        ))?;
        for ((d, day, source), c) in &daily {
            let day = day.format("%Y-%m-%d").to_string();
            let mut p: Vec<&dyn rusqlite::ToSql> = vec![d, &day, source];
            p.extend(c.iter().map(|v| v as &dyn rusqlite::ToSql));
            insert_daily.execute(p.as_slice())?;
        }
    }
    let now = sqlite_ts(now_ms());
    tx.execute(
        "INSERT INTO account (email, name, administration, password_hash, status, is_admin, created_at, status_at) \
         VALUES ('banc@monavis.test', 'Banc d''essai', 'monavis', '!', 'active', 1, ?1, ?1)",
        [&now],
    )?;
    let account = tx.last_insert_rowid();
    let session = random_hex32();
    tx.execute(
        "INSERT INTO session (token_hash, account_id, csrf, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        rusqlite::params![sha256(&session), account, random_hex32(), now],
    )?;
    let api_key = format!("mav_{}", random_hex32());
    tx.execute(
        "INSERT INTO api_key (token_hash, account_id, name, created_at) VALUES (?1, ?2, 'consolebench', ?3)",
        rusqlite::params![sha256(&api_key), account, now],
    )?;
    for d in [1i64, 2, 3] {
        tx.execute(
            "INSERT INTO porteur (account_id, demarche_id, created_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![account, d, now],
        )?;
    }
    tx.commit()?;
    let load_s = total.elapsed().as_secs_f64();
    let t = Instant::now();
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    let analyze_s = t.elapsed().as_secs_f64();
    drop(conn);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok((
        json!({"avis": args.sqlite_avis, "load_s": load_s, "rows_per_s": (args.sqlite_avis + 100) as f64 / load_s,
               "analyze_s": analyze_s, "file_bytes": bytes, "avis_daily_rows": daily.len()}),
        Credentials { session, api_key },
        url,
    ))
}

// ---------------------------------------------------------------- the server

struct Server {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Server {
    fn start(bin: &Path, dir: &Path, url: &str) -> anyhow::Result<Server> {
        std::fs::create_dir_all(dir)?;
        let stderr = std::fs::File::create(dir.join("server.err"))?;
        let mut child = Command::new(bin)
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .args(["--listen", "127.0.0.1:0", "--database-url", url, "--log", "warn"])
            .args(["--rate-per-minute", "100000000", "--rate-per-minute-demarche", "100000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse()?,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "widget-server did not start: {}",
                    std::fs::read_to_string(dir.join("server.err")).unwrap_or_default()
                )
            }
        };
        Ok(Server { child, addr, dir: dir.to_path_buf() })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after 30 s.
    fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS`, `VmHWM` of a process, in KiB.
fn proc_mem(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Samples VmRSS every 20 ms until stopped; the peak, in KiB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(proc_mem(pid).0);
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(proc_mem(pid).0)
        });
        RssSampler { stop, handle }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

// ---------------------------------------------------------------- HTTP/1 keep-alive client

/// One keep-alive HTTP/1 connection (reopened if the server closes it).
struct Conn {
    addr: SocketAddr,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, sender: None }
    }

    async fn sender(&mut self) -> anyhow::Result<&mut hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
        let alive = matches!(&self.sender, Some(s) if !s.is_closed());
        if !alive {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().ok_or_else(|| anyhow!("no connection"))?;
        sender.ready().await?;
        Ok(sender)
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let mut req = Request::builder().method(method).uri(path).header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body))?;
        let sender = self.sender().await?;
        Ok(sender.send_request(req).await?)
    }

    /// GET, whole body.
    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<(StatusCode, Bytes)> {
        let res = self.send(Method::GET, path, headers, Bytes::new()).await?;
        let status = res.status();
        Ok((status, res.into_body().collect().await?.to_bytes()))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// W warm-up requests then R timed ones, in sequence on one connection; stops early when the
/// series' time budget is spent.
async fn series(conn: &mut Conn, path: &str, headers: &[(&str, &str)], args: &Args) -> anyhow::Result<Value> {
    let budget = Duration::from_secs(args.series_seconds);
    let began = Instant::now();
    let mut times = Vec::with_capacity(args.repeat);
    let (mut status, mut bytes) = (StatusCode::OK, 0usize);
    let mut warm = 0;
    for i in 0..args.warmup + args.repeat {
        if began.elapsed() > budget && times.len() >= 5 {
            break;
        }
        let t = Instant::now();
        let (s, body) = conn.get(path, headers).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        status = s;
        bytes = body.len();
        if !s.is_success() {
            break;
        }
        if i < args.warmup {
            warm += 1;
        } else {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(json!({
        "path": path,
        "status": status.as_u16(),
        "bytes": bytes,
        "warmup": warm,
        "n": times.len(),
        "p50_ms": percentile(&times, 50.0),
        "p99_ms": percentile(&times, 99.0),
        "max_ms": times.last().copied().unwrap_or(f64::NAN),
    }))
}

/// The `href` of the « Avis suivants » link of a page, unescaped.
fn next_link(html: &str) -> Option<String> {
    let at = html.find(">Avis suivants<")?;
    let before = &html[..at];
    let start = before.rfind("href=\"")? + 6;
    let end = start + before[start..].find('"')?;
    Some(before[start..end].replace("&amp;", "&"))
}

/// The requests of the comparison, for démarche `id`: (key, label, path). The deep page is
/// found by following « Avis suivants » up to 20 times.
async fn console_requests(
    conn: &mut Conn,
    id: i64,
    cookie: &str,
) -> anyhow::Result<Vec<(&'static str, String, String)>> {
    let list = format!("/console/demarches/{id}/avis");
    let mut deep = list.clone();
    let mut pages = 1;
    for _ in 0..20 {
        let (status, body) = conn.get(&deep, &[("cookie", cookie)]).await?;
        ensure!(status == StatusCode::OK, "{deep} answered {status}");
        match next_link(&String::from_utf8_lossy(&body)) {
            Some(next) => {
                deep = next;
                pages += 1;
            }
            None => break,
        }
    }
    Ok(vec![
        (
            "dashboard",
            "Tableau de bord « Satisfaction », 12 mois".into(),
            format!("/console/demarches/{id}/satisfaction"),
        ),
        ("list", "« Tous les avis », 1re page".into(), list.clone()),
        ("deep", format!("« Tous les avis », page {pages} (« Avis suivants » suivi {} fois)", pages - 1), deep),
        (
            "filtered",
            "Filtre `?satisfaction=pas-bien&commentaire=oui`".into(),
            format!("{list}?satisfaction=pas-bien&commentaire=oui"),
        ),
        ("search", "Recherche `?q=agent` (≈ 1 commentaire sur 8)".into(), format!("{list}?q=agent")),
        ("search_two", "Recherche `?q=agent+mairie` (deux mots, ≈ 1 sur 30)".into(), format!("{list}?q=agent+mairie")),
        (
            "search_rare",
            "Recherche `?q=récépissé` (≈ 1 sur 10 000)".into(),
            format!("{list}?q=r%C3%A9c%C3%A9piss%C3%A9"),
        ),
        (
            "search_absent",
            "Recherche `?q=introuvable` (dans aucun commentaire)".into(),
            format!("{list}?q=introuvable"),
        ),
        (
            "search_filtered",
            "Recherche `?q=mairie&satisfaction=pas-bien`".into(),
            format!("{list}?q=mairie&satisfaction=pas-bien"),
        ),
        ("api_stats", "API `GET /api/v1/demarches/{id}/stats`".into(), format!("/api/v1/demarches/{id}/stats")),
    ])
}

/// Every request for démarches 1 and 2 on `server`: one JSON object per request key.
async fn measure_console(server: &Server, creds: &Credentials, args: &Args) -> anyhow::Result<Value> {
    let cookie = format!("monavis_session={}", creds.session);
    let bearer = format!("Bearer {}", creds.api_key);
    let mut conn = Conn::new(server.addr);
    let mut out = serde_json::Map::new();
    for id in [1i64, 2] {
        let mut per = serde_json::Map::new();
        for (key, label, path) in console_requests(&mut conn, id, &cookie).await? {
            let headers: Vec<(&str, &str)> =
                if key == "api_stats" { vec![("authorization", &bearer)] } else { vec![("cookie", &cookie)] };
            eprintln!("consolebench: démarche {id}: {path}");
            let mut r = series(&mut conn, &path, &headers, args).await?;
            r["label"] = json!(label);
            eprintln!("consolebench:   {r}");
            per.insert(key.into(), r);
        }
        out.insert(id.to_string(), Value::Object(per));
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------- exports

/// Downloads `path`, counting bytes and CRLF-terminated lines as they stream, with the server's
/// RSS sampled meanwhile.
async fn export(server: &Server, path: &str, cookie: &str, timeout: Duration) -> anyhow::Result<Value> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rest = proc_mem(server.pid()).0;
    let sampler = RssSampler::start(server.pid());
    let mut conn = Conn::new(server.addr);
    let t = Instant::now();
    let result = tokio::time::timeout(timeout, async {
        let res = conn.send(Method::GET, path, &[("cookie", cookie)], Bytes::new()).await?;
        let status = res.status();
        let first = t.elapsed();
        let mut body = res.into_body();
        let (mut bytes, mut crlf, mut last_cr, mut head) = (0u64, 0u64, false, Vec::new());
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(data) = frame.data_ref() {
                if head.len() < 4 {
                    head.extend_from_slice(&data[..data.len().min(4)]);
                }
                bytes += data.len() as u64;
                for &b in data.iter() {
                    if b == b'\n' && last_cr {
                        crlf += 1;
                    }
                    last_cr = b == b'\r';
                }
            }
        }
        anyhow::Ok((status, first, bytes, crlf, head))
    })
    .await;
    let elapsed = t.elapsed().as_secs_f64();
    let peak = sampler.finish();
    let hwm = proc_mem(server.pid()).1;
    let (status, first, bytes, crlf, head) = match result {
        Ok(r) => r?,
        Err(_) => bail!("{path}: no end after {timeout:?}"),
    };
    Ok(json!({
        "path": path, "status": status.as_u16(), "seconds": elapsed, "first_byte_ms": first.as_secs_f64() * 1000.0,
        "bytes": bytes, "crlf_lines": crlf, "starts_with_pk": head.starts_with(b"PK"),
        "rss_rest_kib": rest, "rss_peak_kib": peak, "vm_hwm_kib": hwm,
    }))
}

// ---------------------------------------------------------------- votes

/// C clients posting valid votes for `seconds`: (303 answers, other answers, p50 ms, p99 ms).
async fn votes(addr: SocketAddr, key: &str, clients: usize, seconds: u64) -> anyhow::Result<Value> {
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (ok, bad, key) = (ok.clone(), bad.clone(), key.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut lat = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                let body = format!(
                    "key={key}&nd_source=button&satisfaction={}&facilite=facile&clarte=clair&aide=aucune",
                    ["bien", "moyen", "pas-bien"][i % 3]
                );
                i += 1;
                let t = Instant::now();
                match conn
                    .send(
                        Method::POST,
                        "/Demarches/3/avis",
                        &[("content-type", "application/x-www-form-urlencoded")],
                        Bytes::from(body),
                    )
                    .await
                {
                    Ok(res) => {
                        let status = res.status();
                        let _ = res.into_body().collect().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        if status == StatusCode::SEE_OTHER {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        bad.fetch_add(1, Ordering::Relaxed);
                        conn = Conn::new(addr);
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let ok = ok.load(Ordering::Relaxed);
    Ok(json!({
        "seconds": elapsed, "accepted": ok, "other": bad.load(Ordering::Relaxed),
        "votes_per_s": ok as f64 / elapsed, "p50_ms": percentile(&lat, 50.0), "p99_ms": percentile(&lat, 99.0),
    }))
}

async fn vote_phase(server: &Server, cookie: &str, export_path: &str, args: &Args) -> anyhow::Result<Value> {
    let secret = std::fs::read(server.dir.join("data/secret")).context("reading the server's secret")?;
    let key = snippet::KeySigner::new(&secret).sign(3);
    // The form link must open (démarche 3 active, key valid).
    let mut conn = Conn::new(server.addr);
    let (status, _) =
        conn.get(&format!("/Demarches/3?view-mode=formulaire-avis&nd_source=button&key={key}"), &[]).await?;
    ensure!(status == StatusCode::OK, "the form of démarche 3 answered {status}");
    let _ = votes(server.addr, &key, args.concurrency, 1).await?; // warm-up
    let alone = votes(server.addr, &key, args.concurrency, args.vote_seconds).await?;
    // Exports of démarche 1 back to back until the vote window is over.
    let stop = Arc::new(AtomicBool::new(false));
    let exports = Arc::new(AtomicU64::new(0));
    let exporter = {
        let (stop, exports, addr, path, cookie) =
            (stop.clone(), exports.clone(), server.addr, export_path.to_string(), cookie.to_string());
        tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut rows = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let res = conn.send(Method::GET, &path, &[("cookie", &cookie)], Bytes::new()).await?;
                ensure!(res.status() == StatusCode::OK, "export answered {}", res.status());
                let mut body = res.into_body();
                while let Some(frame) = body.frame().await {
                    if let Some(d) = frame?.data_ref() {
                        rows += d.iter().filter(|&&b| b == b'\n').count() as u64;
                    }
                    if stop.load(Ordering::Relaxed) {
                        return anyhow::Ok(rows);
                    }
                }
                exports.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(rows)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await; // the export is streaming
    let during = votes(server.addr, &key, args.concurrency, args.vote_seconds).await?;
    stop.store(true, Ordering::Relaxed);
    let export_rows =
        tokio::time::timeout(Duration::from_secs(30), exporter).await.ok().and_then(|r| r.ok()).transpose()?;
    let ratio = during["votes_per_s"].as_f64().unwrap_or(0.0) / alone["votes_per_s"].as_f64().unwrap_or(1.0);
    Ok(json!({
        "clients": args.concurrency, "alone": alone, "during_export": during, "ratio": ratio,
        "exports_completed_in_window": exports.load(Ordering::Relaxed), "export_lines_streamed": export_rows,
    }))
}

// ---------------------------------------------------------------- report

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(kib: &Value) -> String {
    format!("{:.1}", f(kib) / 1024.0)
}

/// The 10M-vs-100 table of `results` (per démarche then per request), with the slow flags.
fn comparison(l: &mut Vec<String>, results: &Value, big: &str, slow: &mut Vec<String>, engine: &str, repeat: usize) {
    l.push(format!("| request | p50 ms, {big} | p99 ms, {big} | p50 ms, 100 | p99 ms, 100 | ratio p50 | ratio p99 |"));
    l.push("|---|---:|---:|---:|---:|---:|---:|".into());
    for key in [
        "dashboard",
        "list",
        "deep",
        "filtered",
        "search",
        "search_two",
        "search_rare",
        "search_absent",
        "search_filtered",
        "api_stats",
    ] {
        let (a, b) = (&results["1"][key], &results["2"][key]);
        if a.is_null() {
            continue;
        }
        let label = a["label"].as_str().unwrap_or(key);
        let missing = |r: &Value| r["status"].as_u64() == Some(404);
        if missing(a) || missing(b) {
            l.push(format!("| {label} | **missing: 404** | | | | | |"));
            slow.push(format!("{engine}: {label} answered 404 (not there yet)."));
            continue;
        }
        let bad = |r: &Value| r["status"].as_u64().is_none_or(|s| !(200..300).contains(&s));
        if bad(a) || bad(b) {
            l.push(format!("| {label} | status {} | | status {} | | | |", a["status"], b["status"]));
            slow.push(format!("{engine}: {label} answered {} / {}.", a["status"], b["status"]));
            continue;
        }
        let (r50, r99) = (f(&a["p50_ms"]) / f(&b["p50_ms"]), f(&a["p99_ms"]) / f(&b["p99_ms"]));
        let short = if a["n"].as_u64().unwrap_or(0) < repeat as u64 || b["n"].as_u64().unwrap_or(0) < repeat as u64 {
            format!(" ({} / {} timed)", a["n"], b["n"])
        } else {
            String::new()
        };
        l.push(format!(
            "| {label}{short} | {} | {} | {} | {} | {:.1}× | {:.1}× |",
            ms(f(&a["p50_ms"])),
            ms(f(&a["p99_ms"])),
            ms(f(&b["p50_ms"])),
            ms(f(&b["p99_ms"])),
            r50,
            r99
        ));
        if f(&a["p99_ms"]) > 100.0 || r50 > 2.0 {
            slow.push(format!(
                "{engine}: {label}: p99 {} ms at {big}, p50 {:.1}× the 100-avis case.",
                ms(f(&a["p99_ms"])),
                r50
            ));
        }
    }
}

fn markdown(r: &Value, args: &Args) -> String {
    let mut l = Vec::new();
    let big = thousands(args.avis as f64).to_string();
    let mut slow = Vec::new();
    l.push("## Console at scale\n".into());
    l.push(format!(
        "Produced by `scripts/consolebench.sh` (`benches/src/bin/consolebench.rs`) on {}: démarche 1 holds {big} avis spread over \
         three years (a comment on one in five, from 40 French sentences), démarche 2 holds 100; the real widget-server over \
         loopback, one keep-alive HTTP/1 connection, {} warm-up then {} timed requests per line, in sequence. Same machine and \
         caveats as above: read the ratios.\n",
        Utc::now().date_naive(),
        args.warmup,
        args.repeat
    ));
    let load = &r["postgres"]["load"];
    l.push("### Loading PostgreSQL\n".into());
    if load["reused"].as_bool() == Some(true) {
        l.push("- Database loaded by an earlier run (reused).".into());
    } else {
        l.push(format!(
            "- Monthly partitions of `avis` created first ({} partitions, {:.1} s).",
            load["partitions"],
            f(&load["partitions_s"])
        ));
        l.push(format!(
            "- Binary COPY of {} avis ({} streams, `avis` indexes dropped): **{:.0} s**, {} rows/s.",
            thousands((args.avis + 100) as f64),
            args.load_parallel,
            f(&load["copy_s"]),
            thousands(f(&load["copy_rows_per_s"]))
        ));
        let idx: Vec<String> = load["indexes"]
            .as_array()
            .map(|a| {
                a.iter().map(|i| format!("`{}` {:.0} s", i["index"].as_str().unwrap_or("?"), f(&i["s"]))).collect()
            })
            .unwrap_or_default();
        l.push(format!("- Indexes rebuilt from the migrations' definitions, on every partition: {}.", idx.join(", ")));
        l.push(format!(
            "- `avis_daily` by one `INSERT … SELECT … GROUP BY` on the Paris day: {:.0} s ({} rows); `VACUUM ANALYZE`: {:.0} s.",
            f(&load["avis_daily_s"]),
            thousands(f(&load["avis_daily_rows"])),
            f(&load["vacuum_analyze_s"])
        ));
        l.push(format!("- **Total load: {:.1} min**.", f(&load["total_s"]) / 60.0));
    }
    let sizes: Vec<String> = load["index_sizes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| format!("`{}` {:.0} MiB", i["index"].as_str().unwrap_or("?"), f(&i["bytes"]) / 1048576.0))
                .collect()
        })
        .unwrap_or_default();
    l.push(format!(
        "- Sizes, summed over the {} partitions: `avis` {:.2} GiB in all (heap {:.2} GiB, indexes {:.2} GiB: {}); `avis_daily` {:.1} MiB. {} comments on démarche 1.\n",
        load["partitions"],
        f(&load["avis_total_bytes"]) / 1073741824.0,
        f(&load["avis_heap_bytes"]) / 1073741824.0,
        f(&load["avis_indexes_bytes"]) / 1073741824.0,
        sizes.join(", "),
        f(&load["avis_daily_bytes"]) / 1048576.0,
        thousands(f(&load["comments_d1"]))
    ));
    l.push(format!("### Pages and API on PostgreSQL: {big} avis vs 100\n"));
    comparison(&mut l, &r["postgres"]["requests"], &big, &mut slow, "PostgreSQL", args.repeat);
    let d = &r["postgres"]["daily_rows_12m"];
    l.push(String::new());
    l.push(format!(
        "The dashboard and the API read `avis_daily` only: their work follows the (day, source) rows of the period and of \
         the previous one ({} for démarche 1, {} for démarche 2 over 24 months), not the number of avis; their ratio is that of \
         those rows, and stays the same from 200,000 avis up.",
        d["1"], d["2"]
    ));
    l.push(String::new());
    l.push("### Exports of démarche 1, 12 months (PostgreSQL)\n".into());
    l.push(
        "| export | rows | MiB | seconds | rows/s | first byte ms | RSS at rest MiB | RSS peak MiB | VmHWM MiB |"
            .into(),
    );
    l.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|".into());
    for (key, name) in [("csv", "CSV"), ("xlsx", "XLSX")] {
        let e = &r["postgres"]["exports"][key];
        if e.is_null() {
            continue;
        }
        if let Some(err) = e["error"].as_str() {
            l.push(format!("| {name} | failed: {err} | | | | | | | |"));
            continue;
        }
        let rows = f(&e["rows"]);
        l.push(format!(
            "| {name} (HTTP {}) | {} | {:.0} | {:.1} | {} | {:.0} | {} | {} | {} |",
            e["status"],
            thousands(rows),
            f(&e["bytes"]) / 1048576.0,
            f(&e["seconds"]),
            thousands(rows / f(&e["seconds"])),
            f(&e["first_byte_ms"]),
            mib(&e["rss_rest_kib"]),
            mib(&e["rss_peak_kib"]),
            mib(&e["vm_hwm_kib"])
        ));
    }
    let ex = &r["postgres"]["exports"];
    l.push(String::new());
    l.push(format!(
        "CSV rows are the CRLF-terminated lines minus the header. The 12 months hold {} avis in SQL; the XLSX holds them \
         all, {} sheet(s) of at most 1,048,575 data rows (« Avis », « Avis (2) »…; its rows are that count, not counted in \
         the file). VmHWM is the process's peak since it started.\n",
        thousands(f(&ex["sql_rows"])),
        (f(&ex["sql_rows"]) / 1_048_575.0).ceil().max(1.0)
    ));
    let v = &r["postgres"]["votes"];
    if !v.is_null() {
        l.push(format!("### Votes during an export ({} keep-alive clients, démarche 3)\n", v["clients"]));
        l.push("| | votes/s | p50 ms | p99 ms | other answers |".into());
        l.push("|---|---:|---:|---:|---:|".into());
        for (key, name) in [
            ("alone", format!("{} s, no export", args.vote_seconds)),
            ("during_export", format!("{} s, CSV export of démarche 1 streaming", args.vote_seconds)),
        ] {
            let x = &v[key];
            l.push(format!(
                "| {name} | {} | {} | {} | {} |",
                thousands(f(&x["votes_per_s"])),
                ms(f(&x["p50_ms"])),
                ms(f(&x["p99_ms"])),
                x["other"]
            ));
        }
        l.push(format!(
            "\n- During / without: **{:.2}×** (exports completed inside the window: {}; the export shares the two cores with the \
             server, PostgreSQL and the clients).\n",
            f(&v["ratio"]),
            v["exports_completed_in_window"]
        ));
    }
    if let Some(s) = r.get("sqlite").filter(|s| !s.is_null()) {
        let sb = thousands(f(&s["load"]["avis"]));
        l.push(format!("### SQLite: {sb} avis vs 100\n"));
        l.push(format!(
            "Loaded in one transaction of prepared INSERTs (FTS5 trigger included) in {:.0} s ({} rows/s), `avis_daily` from \
             Paris days computed in Rust; file {:.0} MiB.\n",
            f(&s["load"]["load_s"]),
            thousands(f(&s["load"]["rows_per_s"])),
            f(&s["load"]["file_bytes"]) / 1048576.0
        ));
        comparison(&mut l, &s["requests"], &sb, &mut slow, "SQLite", args.repeat);
        l.push(String::new());
    }
    l.push("### Slow spots\n".into());
    if slow.is_empty() {
        l.push("None: every p99 under 100 ms and every p50 within 2× of the 100-avis case.\n".into());
    } else {
        for s in &slow {
            l.push(format!("- {s}"));
        }
        l.push(String::new());
    }
    l.join("\n")
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `tokio_postgres::Error` displays as « db error » alone: the server's message,
            // SQLSTATE and detail are what tell an operator what broke.
            eprintln!("consolebench: error: {e}");
            for cause in e.chain() {
                if let Some(pg) = cause.downcast_ref::<tokio_postgres::Error>() {
                    eprintln!("  PostgreSQL: {}", widget_server::store::postgres_text(pg));
                } else if !std::ptr::eq(cause, e.as_ref()) {
                    eprintln!("  caused by: {cause}");
                }
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let mut args = Args::parse();
    ensure!(args.bin.exists(), "{} not found: cargo build --release -p widget-server", args.bin.display());
    // The server runs in its own working directory.
    args.bin = std::fs::canonicalize(&args.bin)?;
    std::fs::create_dir_all(&args.work)?;
    args.work = std::fs::canonicalize(&args.work)?;
    let mut report = serde_json::Map::new();

    // 1. Load.
    let (load, creds) = load_postgres(&args).await?;
    eprintln!("consolebench: loaded: {load}");
    let client = pg(&args.database_url).await?;

    // 2. Pages and API.
    let server = Server::start(&args.bin, &args.work.join("pg"), &args.database_url)?;
    eprintln!("consolebench: server on {}", server.addr);
    let requests = measure_console(&server, &creds, &args).await?;

    // 3. Exports: 12 months, as the dashboard's default period.
    let today = paris_day(now_ms());
    let du = today - Days::new(364);
    let export_path = format!("/console/demarches/1/avis.csv?du={du}&au={today}");
    let sql_rows: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM avis WHERE demarche_id = 1 \
                 AND received_at >= ('{du}'::date)::timestamp AT TIME ZONE 'Europe/Paris' \
                 AND received_at < ('{today}'::date + 1)::timestamp AT TIME ZONE 'Europe/Paris'"
            ),
            &[],
        )
        .await?
        .get(0);
    let cookie = format!("monavis_session={}", creds.session);
    let timeout = Duration::from_secs(args.export_timeout);
    let mut exports = serde_json::Map::new();
    exports.insert("sql_rows".into(), json!(sql_rows));
    eprintln!("consolebench: CSV export ({sql_rows} rows in SQL)");
    let mut csv = match export(&server, &export_path, &cookie, timeout).await {
        Ok(v) => v,
        Err(e) => json!({"error": e.to_string()}),
    };
    csv["rows"] = json!(csv["crlf_lines"].as_u64().map(|n| n.saturating_sub(1)));
    eprintln!("consolebench:   {csv}");
    exports.insert("csv".into(), csv);
    eprintln!("consolebench: XLSX export");
    let mut xlsx = match export(&server, &export_path.replace("avis.csv", "avis.xlsx"), &cookie, timeout).await {
        Ok(v) => v,
        Err(e) => json!({"error": e.to_string()}),
    };
    // Every row, in sheets of 1,048,575 (« Avis », « Avis (2) »…); not counted in the file.
    xlsx["rows"] = json!(sql_rows);
    eprintln!("consolebench:   {xlsx}");
    exports.insert("xlsx".into(), xlsx);

    // 4. Votes, without and during an export.
    eprintln!("consolebench: votes");
    let votes = vote_phase(&server, &cookie, &export_path, &args).await?;
    eprintln!("consolebench:   {votes}");
    server.stop();
    let mut daily_rows = serde_json::Map::new();
    for d in [1i64, 2] {
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM avis_daily WHERE demarche_id = $1 AND day >= '{}'::date",
                    du - Days::new(365)
                ),
                &[&d],
            )
            .await?
            .get(0);
        daily_rows.insert(d.to_string(), json!(n));
    }
    report.insert(
        "postgres".into(),
        json!({"avis": args.avis, "load": load, "requests": requests, "exports": Value::Object(exports), "votes": votes,
               "daily_rows_12m": Value::Object(daily_rows)}),
    );

    // 5. SQLite.
    if args.sqlite_avis > 0 {
        eprintln!("consolebench: SQLite, {} avis", args.sqlite_avis);
        let dir = args.work.join("sqlite");
        let (load, creds, url) = load_sqlite(&args, &dir)?;
        eprintln!("consolebench: loaded: {load}");
        let server = Server::start(&args.bin, &dir, &url)?;
        let requests = measure_console(&server, &creds, &args).await?;
        server.stop();
        report.insert("sqlite".into(), json!({"load": load, "requests": requests}));
    }

    let report = Value::Object(report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    println!("{}", markdown(&report, &args));
    Ok(())
}
