//! The storage benchmark of `scripts/bench.sh`: the same votes written three ways into one
//! PostgreSQL, measured in the same run.
//!
//! 1. `Store::store_batch`, the flusher's path (binary COPY + aggregate upsert), in batches;
//! 2. the naive alternative: one `INSERT` per vote in autocommit (a sample, it is slow);
//! 3. the ceiling: `psql \copy` of the same rows from a CSV file straight into `avis`.
//!
//! Prints one JSON object with rows/s for each, on stdout.
//!
//! With `--prefill N`, instead: this month's partition of `avis` first filled with N avis whose
//! comments vary (consolebench's sentences, one avis in five) and every console index built,
//! then, in rounds, the flusher's path and `\copy` of the same new votes into it, each round's
//! rows taken out again before the next (the case that matters: a month already holding
//! millions, see [`prefilled`]).
//!
//! With `--compare-partitioning`, instead: the flusher's path into the month-partitioned `avis`
//! of `--database-url` (every migration) and into the unpartitioned `avis` of
//! `--plain-database-url` (migrated only up to [`UNPARTITIONED_VERSION`]), the same votes, in
//! alternating rounds, with the server's CPU per row when `--server-pid` is given, then the size
//! of a month's primary-key index against the old `avis_pkey`. See [`compare_partitioning`].

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use clap::Parser;
use futures_util::{StreamExt, TryStreamExt};
use monavis_benches::synthetic::{comment, Rng};
use serde_json::{json, Value};
use widget_server::store::postgres::{avis_copy_layout, partition_name, PgStore, UNPARTITIONED_VERSION};
use widget_server::store::{self, Store};
use widget_server::vote::{Answers, Level, Question, Source, Vote};

#[derive(Parser)]
struct Args {
    /// A PostgreSQL database this benchmark may empty (its avis tables are truncated).
    #[arg(long)]
    database_url: String,
    /// Votes written by the batched path and by \copy.
    #[arg(long, default_value_t = 1_000_000)]
    votes: usize,
    /// Batch size of the batched path (the flusher's --flush-max-votes).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Batches in flight at once on the batched path (the flusher's --flush-parallelism).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Votes written one INSERT at a time.
    #[arg(long, default_value_t = 20_000)]
    naive: usize,
    /// Scratch CSV file for \copy.
    #[arg(long, default_value = "/tmp/monavis-flushbench.csv")]
    csv: std::path::PathBuf,
    /// Compare the flusher's path into the partitioned `avis` (--database-url) with the
    /// unpartitioned one (--plain-database-url) instead of the three ways above.
    #[arg(long, requires = "plain_database_url")]
    compare_partitioning: bool,
    /// A second database this benchmark may empty, migrated only up to the last migration
    /// before `avis` was partitioned (it must not have been migrated further).
    #[arg(long)]
    plain_database_url: Option<String>,
    /// Rounds of the comparison; each writes the votes once into each table, in alternating order.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Half the votes (every other one) received in the previous month: batches hit two partitions.
    #[arg(long)]
    two_months: bool,
    /// Leave autovacuum on for the tables written during the comparison (off by default).
    #[arg(long)]
    autovacuum: bool,
    /// The postmaster's pid: the server's CPU (it and its children, from /proc) per row stored.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Fill this month's partition with this many avis first, then measure the flusher's path
    /// against \copy into it, in `--rounds` rounds (see `prefilled`).
    #[arg(long, conflicts_with = "compare_partitioning")]
    prefill: Option<u64>,
    /// With --prefill: keep the partition filled by an earlier run (same --prefill) instead of
    /// filling it again.
    #[arg(long)]
    reuse_prefill: bool,
}

/// Realistic votes: all answers varied, a comment in one vote out of five, from consolebench's
/// sentences (varied words for the full-text index).
fn make_votes(n: usize) -> Vec<Vote> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut words = Rng(0x5EED_0FC0_77E7);
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let level = |k: u64| Level::ALL[(k % 3) as usize];
            let answers = Answers {
                satisfaction: None,
                facilite: (!x.is_multiple_of(4)).then(|| level(x >> 5)),
                clarte: (!x.is_multiple_of(5)).then(|| level(x >> 9)),
                aide: ((x >> 13) % 64) as u8 & 0b10_1011,
                commentaire: comment(&mut words).map(String::into_boxed_str),
            };
            let source = Source::new(["button", "site", "email"][(x >> 21) as usize % 3]).unwrap_or_default();
            Vote::accept(1 + (i % 10) as i64, source, level(x >> 25), answers)
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn write_csv(path: &std::path::Path, votes: &[Vote]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for v in votes {
        let at = chrono::DateTime::from_timestamp_millis(v.received_at_ms).unwrap_or_default();
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            v.id,
            v.demarche_id,
            v.source.as_str(),
            at.format("%Y-%m-%d %H:%M:%S%.3f+00"),
            Question::Satisfaction.value(v.satisfaction),
            v.facilite.map(|l| Question::Facilite.value(l)).unwrap_or(""),
            v.clarte.map(|l| Question::Clarte.value(l)).unwrap_or(""),
            v.aide,
            v.commentaire.as_deref().map(csv_field).unwrap_or_default(),
        )?;
    }
    out.flush()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.compare_partitioning {
        return compare_partitioning(&args).await;
    }
    if let Some(n) = args.prefill {
        return prefilled(&args, n).await;
    }
    let store = store::open(&args.database_url).await?;
    store.migrate().await?;
    let client = widget_server::store::pg_tls::connect(&args.database_url).await?;
    let truncate = || client.batch_execute("TRUNCATE avis, avis_daily");

    let votes = make_votes(args.votes);

    // 1. The flusher's path.
    truncate().await?;
    let batched = flush_all(store.as_ref(), &votes, args.batch, args.parallel).await?;
    anyhow::ensure!(store.count_avis().await? as usize == votes.len(), "batched path lost rows");

    // 2. One INSERT per vote, autocommit.
    truncate().await?;
    let insert = client
        .prepare(
            "INSERT INTO avis (id, demarche_id, source, received_at, satisfaction, facilite, clarte, aide, commentaire) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    let naive_votes = &votes[..args.naive.min(votes.len())];
    let started = Instant::now();
    for v in naive_votes {
        let at = UNIX_EPOCH + Duration::from_millis(v.received_at_ms as u64);
        client
            .execute(
                &insert,
                &[
                    &v.id,
                    &v.demarche_id,
                    &v.source.as_str(),
                    &at,
                    &Question::Satisfaction.value(v.satisfaction),
                    &v.facilite.map(|l| Question::Facilite.value(l)),
                    &v.clarte.map(|l| Question::Clarte.value(l)),
                    &i16::from(v.aide),
                    &v.commentaire.as_deref(),
                ],
            )
            .await?;
    }
    let naive = started.elapsed();

    // 3. psql \copy of the same rows.
    truncate().await?;
    write_csv(&args.csv, &votes)?;
    let started = Instant::now();
    let status = std::process::Command::new("psql")
        .arg(&args.database_url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!(
            "\\copy avis (id, demarche_id, source, received_at, satisfaction, facilite, clarte, aide, commentaire) \
             FROM '{}' WITH (FORMAT csv)",
            args.csv.display()
        ))
        .status()?;
    let copy = started.elapsed();
    anyhow::ensure!(status.success(), "psql \\copy failed");
    anyhow::ensure!(store.count_avis().await? as usize == votes.len(), "\\copy lost rows");
    let _ = std::fs::remove_file(&args.csv);
    truncate().await?;

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let out = json!({
        "votes": votes.len(),
        "batch": args.batch,
        "parallel": args.parallel,
        "batched_rows_per_s": rate(votes.len(), batched),
        "batched_seconds": batched.as_secs_f64(),
        "naive_votes": naive_votes.len(),
        "naive_rows_per_s": rate(naive_votes.len(), naive),
        "copy_rows_per_s": rate(votes.len(), copy),
        "copy_seconds": copy.as_secs_f64(),
    });
    println!("{out}");
    Ok(())
}

/// Writes `votes` through `Store::store_batch` in batches of `batch`, `parallel` in flight: the
/// flusher's path. Returns the time it took.
async fn flush_all(store: &dyn Store, votes: &[Vote], batch: usize, parallel: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    futures_util::stream::iter(votes.chunks(batch.max(1)))
        .map(|chunk| store.store_batch(chunk))
        .buffer_unordered(parallel.max(1))
        .try_collect::<Vec<u64>>()
        .await?;
    Ok(started.elapsed())
}

/// The first day of the UTC month holding `at_ms`.
fn month_of(at_ms: i64) -> NaiveDate {
    let day = DateTime::from_timestamp_millis(at_ms).unwrap_or_default().date_naive();
    day.with_day(1).unwrap_or(day)
}

fn month_start_ms(month: NaiveDate) -> i64 {
    month.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis()
}

/// Moves every other vote into the previous month (same offset from the month's start, wrapped
/// into its length); ids stay as they are, hence unique.
fn spread_over_two_months(votes: &mut [Vote]) {
    for v in votes.iter_mut().skip(1).step_by(2) {
        let this = month_of(v.received_at_ms);
        let previous = this - chrono::Months::new(1);
        let (this_ms, previous_ms) = (month_start_ms(this), month_start_ms(previous));
        v.received_at_ms = previous_ms + (v.received_at_ms - this_ms).rem_euclid(this_ms - previous_ms);
    }
}

/// Clock ticks of CPU (user + system) spent by the PostgreSQL server: the postmaster and its
/// children (backends, autovacuum, checkpointer, WAL writer…), and the children it reaped
/// (`cutime`, `cstime`: a backend that exits moves its time there).
fn server_cpu_ticks(postmaster: u32) -> anyhow::Result<u64> {
    let mut ticks = 0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        // A process may exit meanwhile: skip it (its time moves to the postmaster's cutime).
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command, which is in parentheses and may hold anything.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest starts at field 3 (state): ppid is field 4, utime..cstime fields 14..17.
        let field = |n: usize| f.get(n - 3).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        if pid == postmaster || field(4) == u64::from(postmaster) {
            found |= pid == postmaster;
            ticks += field(14) + field(15) + field(16) + field(17);
        }
    }
    anyhow::ensure!(found, "no process {postmaster} (--server-pid): give the postmaster's pid");
    Ok(ticks)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// The machine's load average over 1, 5 and 15 minutes, as `/proc/loadavg` gives it.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Median, minimum and maximum.
fn spread(values: &[f64]) -> Value {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    json!({ "median": median, "min": v[0], "max": v[n - 1] })
}

/// What `table` (the partition, or the unpartitioned `avis`) holds and weighs: rows, heap, each
/// index, its primary key's index as flushed and rebuilt (REINDEX: leaves packed to the
/// default fillfactor of 90, as ids that only grow leave them), and all of it with TOAST.
async fn table_sizes(client: &tokio_postgres::Client, table: &str) -> anyhow::Result<Value> {
    let rows: i64 = client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?.get(0);
    anyhow::ensure!(rows > 0, "{table} is empty: nothing to measure");
    let (heap, total): (i64, i64) = {
        let r = client
            .query_one("SELECT pg_relation_size(to_regclass($1)), pg_total_relation_size(to_regclass($1))", &[&table])
            .await?;
        (r.get(0), r.get(1))
    };
    // Each index by the name of the index on `avis` it is attached to (partitions' indexes are
    // named by PostgreSQL), with its own name and size.
    let indexes: BTreeMap<String, Value> = client
        .query(
            "SELECT coalesce((SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent \
                              WHERE i.inhrelid = c.oid), c.relname::text), c.relname::text, pg_relation_size(c.oid) \
             FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = to_regclass($1)",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), json!({ "name": r.get::<_, String>(1), "bytes": r.get::<_, i64>(2) })))
        .collect();
    let pk = client
        .query_one(
            "SELECT c.relname::text, pg_relation_size(c.oid), \
                    (SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid), \
                    pg_get_indexdef(c.oid) \
             FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = to_regclass($1) AND x.indisprimary",
            &[&table],
        )
        .await?;
    let (pk_name, pk_bytes, pk_parent, pk_def): (String, i64, Option<String>, String) =
        (pk.get(0), pk.get(1), pk.get(2), pk.get(3));
    client.batch_execute(&format!("REINDEX INDEX {pk_name}")).await?;
    let rebuilt: i64 = client.query_one("SELECT pg_relation_size(to_regclass($1))", &[&pk_name]).await?.get(0);
    let per_row = |b: i64| b as f64 / rows as f64;
    let mib_per_million = |b: i64| per_row(b) * 1e6 / 1048576.0;
    Ok(json!({
        "table": table,
        "rows": rows,
        "pk_index": pk_name,
        "pk_index_parent": pk_parent,
        "pk_definition": pk_def,
        "pk_bytes": pk_bytes,
        "pk_bytes_per_avis": per_row(pk_bytes),
        "pk_mib_per_million": mib_per_million(pk_bytes),
        "pk_mib_at_5_million": 5.0 * mib_per_million(pk_bytes),
        "pk_rebuilt_bytes": rebuilt,
        "pk_rebuilt_bytes_per_avis": per_row(rebuilt),
        "pk_rebuilt_mib_per_million": mib_per_million(rebuilt),
        "pk_rebuilt_mib_at_5_million": 5.0 * mib_per_million(rebuilt),
        "heap_bytes": heap,
        "indexes": indexes,
        "total_bytes": total,
        "total_bytes_per_avis": per_row(total),
        "total_mib_per_million": mib_per_million(total),
        "total_mib_at_5_million": 5.0 * mib_per_million(total),
    }))
}

/// Rows of `avis` by the table that holds them (the partition, or `avis` itself).
async fn rows_by_table(client: &tokio_postgres::Client) -> anyhow::Result<BTreeMap<String, i64>> {
    Ok(client
        .query("SELECT c.relname::text, count(*) FROM avis a JOIN pg_class c ON c.oid = a.tableoid GROUP BY 1", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The server's current WAL position, as text (`pg_lsn`).
async fn wal_lsn(c: &tokio_postgres::Client) -> anyhow::Result<String> {
    Ok(c.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0))
}

async fn relkind(c: &tokio_postgres::Client) -> anyhow::Result<String> {
    Ok(c.query_one("SELECT relkind::text FROM pg_class WHERE oid = 'avis'::regclass", &[]).await?.get(0))
}

/// Fails unless `avis` holds `n` rows (by partition as `expected` says, when given) and
/// `avis_daily` counts `n` avis.
async fn check_rows(
    which: &str,
    db: &tokio_postgres::Client,
    n: i64,
    expected: Option<&BTreeMap<String, i64>>,
) -> anyhow::Result<()> {
    let by_table = rows_by_table(db).await?;
    let stored: i64 = by_table.values().sum();
    anyhow::ensure!(stored == n, "{which}: avis holds {stored} rows, {n} votes were written");
    let daily: i64 = db.query_one("SELECT coalesce(sum(n), 0)::bigint FROM avis_daily", &[]).await?.get(0);
    anyhow::ensure!(daily == n, "{which}: avis_daily counts {daily} avis, {n} votes were written");
    if let Some(expected) = expected {
        anyhow::ensure!(&by_table == expected, "{which}: rows by partition {by_table:?}, expected {expected:?}");
    }
    Ok(())
}

/// `--compare-partitioning`: the same votes through the flusher's path into the partitioned
/// and the unpartitioned `avis`, on the same server, in rounds. Each round empties both tables,
/// then writes the votes into one then the other (unpartitioned first in odd rounds,
/// partitioned first in even ones, so that a slow moment or what one path leaves behind, such
/// as checkpoints, falls on both alike), after a CHECKPOINT before each (the previous path's
/// dirty pages are not written on the next one's time), and checks the rows each table holds.
/// Reports rows/s, the paired ratio partitioned / unpartitioned of each round (also split by
/// which went first), WAL bytes per row (server-wide, so with whatever else ran), server CPU per
/// row with `--server-pid`; then the sizes of the last round's tables.
async fn compare_partitioning(args: &Args) -> anyhow::Result<()> {
    let plain_url = args.plain_database_url.as_deref().unwrap_or_default();
    let partitioned = PgStore::connect(&args.database_url).await?;
    partitioned.migrate().await?;
    let plain = PgStore::connect(plain_url).await?;
    plain.migrate_up_to(UNPARTITIONED_VERSION).await?;
    let pc = store::pg_tls::connect(&args.database_url).await?;
    let uc = store::pg_tls::connect(plain_url).await?;
    anyhow::ensure!(relkind(&pc).await? == "p", "--database-url: avis is not partitioned");
    anyhow::ensure!(
        relkind(&uc).await? == "r",
        "--plain-database-url: avis is partitioned (that database was migrated past version {UNPARTITIONED_VERSION}): \
         give an empty database"
    );

    let load_before = loadavg();
    let mut votes = make_votes(args.votes);
    anyhow::ensure!(!votes.is_empty(), "--votes 0");
    if args.two_months {
        spread_over_two_months(&mut votes);
    }
    // The partitions these votes need, and the rows each must end up with.
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for v in &votes {
        *expected.entry(partition_name(month_of(v.received_at_ms))).or_default() += 1;
    }
    let mut months: Vec<NaiveDate> = votes.iter().map(|v| month_of(v.received_at_ms)).collect();
    months.sort_unstable();
    months.dedup();
    for m in &months {
        partitioned.prepare_partitions(m.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc(), 0).await?;
    }
    let n = votes.len() as i64;
    let truncate = || async {
        pc.batch_execute("TRUNCATE avis, avis_daily").await?;
        uc.batch_execute("TRUNCATE avis, avis_daily").await?;
        anyhow::Ok(())
    };
    let checkpoint_warned = std::sync::atomic::AtomicBool::new(false);
    let checkpoint = || async {
        if let Err(e) = pc.batch_execute("CHECKPOINT").await {
            if !checkpoint_warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("flushbench: CHECKPOINT refused ({}); going on without", store::postgres_text(&e));
            }
        }
    };
    let cpu = || args.server_pid.map(server_cpu_ticks).transpose();
    let tick = 1.0 / clock_ticks_per_second();

    // Autovacuum off on the tables written, unless --autovacuum: TRUNCATE leaves each table
    // new, so autovacuum would visit it after its first 1,000 rows, at whatever moment its
    // database's turn comes (every autovacuum_naptime / databases), often in step with the
    // rounds and so on the same path round after round; that is noise, not the flush's cost.
    let tables_written: Vec<(&tokio_postgres::Client, String)> = expected
        .keys()
        .map(|t| (&pc, t.clone()))
        .chain([(&pc, "avis_daily".to_string()), (&uc, "avis".to_string()), (&uc, "avis_daily".to_string())])
        .collect();
    if !args.autovacuum {
        for (c, t) in &tables_written {
            c.batch_execute(&format!("ALTER TABLE {t} SET (autovacuum_enabled = off)")).await?;
        }
    }

    // Warm-up: a first batch into each (connections, plans, catalogue caches).
    truncate().await?;
    let first = &votes[..args.batch.clamp(1, votes.len())];
    flush_all(&plain, first, args.batch, args.parallel).await?;
    flush_all(&partitioned, first, args.batch, args.parallel).await?;

    let mut rounds = Vec::new();
    let (mut ratios, mut cpu_ratios, mut plain_rates, mut part_rates) = (vec![], vec![], vec![], vec![]);
    let mut wal_ratios = vec![];
    // Paired ratios by which table was written first in the round.
    let mut by_order: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 1..=args.rounds.max(1) {
        truncate().await?;
        let order = if round % 2 == 1 { ["plain", "partitioned"] } else { ["partitioned", "plain"] };
        let mut rate = BTreeMap::new();
        let mut cpu_per_row = BTreeMap::new();
        let mut wal_per_row = BTreeMap::new();
        for which in order {
            let (store, client) = if which == "plain" { (&plain, &uc) } else { (&partitioned, &pc) };
            checkpoint().await;
            let wal_before = wal_lsn(client).await?;
            let before = cpu()?;
            let took = flush_all(store, &votes, args.batch, args.parallel).await?;
            let after = cpu()?;
            let wal: f64 = client
                .query_one("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::float8", &[&wal_before])
                .await?
                .get(0);
            wal_per_row.insert(which, wal / n as f64);
            check_rows(which, client, n, (which == "partitioned").then_some(&expected)).await?;
            rate.insert(which, n as f64 / took.as_secs_f64());
            if let (Some(b), Some(a)) = (before, after) {
                cpu_per_row.insert(which, (a - b) as f64 * tick / n as f64 * 1e6);
            }
            eprintln!(
                "flushbench: round {round}, {which}: {:.0} rows/s, {:.0} WAL bytes per row{}",
                rate[which],
                wal_per_row[which],
                cpu_per_row.get(which).map(|us| format!(", server {us:.2} µs CPU per row")).unwrap_or_default()
            );
        }
        let ratio = rate["partitioned"] / rate["plain"];
        ratios.push(ratio);
        plain_rates.push(rate["plain"]);
        part_rates.push(rate["partitioned"]);
        let cpu_ratio = match (cpu_per_row.get("partitioned"), cpu_per_row.get("plain")) {
            (Some(p), Some(u)) if *u > 0.0 => Some(p / u),
            _ => None,
        };
        cpu_ratios.extend(cpu_ratio);
        rounds.push(json!({
            "round": round,
            "first": order[0],
            "plain_rows_per_s": rate["plain"],
            "partitioned_rows_per_s": rate["partitioned"],
            "ratio": ratio,
            "plain_server_cpu_us_per_row": cpu_per_row.get("plain"),
            "partitioned_server_cpu_us_per_row": cpu_per_row.get("partitioned"),
            "server_cpu_ratio": cpu_ratio,
            "plain_wal_bytes_per_row": wal_per_row["plain"],
            "partitioned_wal_bytes_per_row": wal_per_row["partitioned"],
        }));
        wal_ratios.push(wal_per_row["partitioned"] / wal_per_row["plain"]);
        by_order.entry(order[0]).or_default().push(ratio);
    }

    if !args.autovacuum {
        for (c, t) in &tables_written {
            c.batch_execute(&format!("ALTER TABLE {t} RESET (autovacuum_enabled)")).await?;
        }
    }

    // Sizes of what the last round left (kept in both databases, for inspection).
    let mut partitions = Vec::new();
    for table in expected.keys() {
        partitions.push(table_sizes(&pc, table).await?);
    }
    let unpartitioned = table_sizes(&uc, "avis").await?;
    let pk_per_avis = |t: &Value, k: &str| t[k].as_f64().unwrap_or(f64::NAN);
    let pk_vs_plain: Vec<Value> = partitions
        .iter()
        .map(|p| {
            json!({
                "table": p["table"],
                "as_flushed": pk_per_avis(p, "pk_bytes_per_avis") / pk_per_avis(&unpartitioned, "pk_bytes_per_avis"),
                "rebuilt": pk_per_avis(p, "pk_rebuilt_bytes_per_avis") / pk_per_avis(&unpartitioned, "pk_rebuilt_bytes_per_avis"),
                "total": pk_per_avis(p, "total_bytes_per_avis") / pk_per_avis(&unpartitioned, "total_bytes_per_avis"),
            })
        })
        .collect();
    let server_version: String = pc.query_one("SHOW server_version", &[]).await?.get(0);
    let out = json!({
        "mode": "compare-partitioning",
        "votes": n,
        "batch": args.batch,
        "parallel": args.parallel,
        "rounds": args.rounds.max(1),
        "two_months": args.two_months,
        "autovacuum": args.autovacuum,
        "server_version": server_version,
        "rows_by_partition": expected,
        "per_round": rounds,
        "plain_rows_per_s": spread(&plain_rates),
        "partitioned_rows_per_s": spread(&part_rates),
        "ratio": spread(&ratios),
        "ratio_plain_first": spread(by_order.get("plain").map(Vec::as_slice).unwrap_or_default()),
        "ratio_partitioned_first": spread(by_order.get("partitioned").map(Vec::as_slice).unwrap_or_default()),
        "wal_ratio": spread(&wal_ratios),
        "server_cpu_measured": args.server_pid.is_some(),
        "server_cpu_ratio": spread(&cpu_ratios),
        "partitions": partitions,
        "unpartitioned": unpartitioned,
        "partition_vs_unpartitioned_bytes_per_avis": pk_vs_plain,
        "measured_at": Utc::now().to_rfc3339(),
        // The machine's load (1, 5, 15 minutes) before and after the rounds: other work on it.
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    });
    println!("{out}");
    Ok(())
}

/// Binary COPY of `n` synthetic avis into `table`, received between `start_ms` and `end_ms`
/// (in order), over 1,000 démarches (a tenth of them getting most avis), comments from
/// consolebench's sentences; seeded by `seed`.
async fn copy_synthetic(
    url: String,
    table: String,
    n: u64,
    start_ms: i64,
    end_ms: i64,
    seed: u64,
) -> anyhow::Result<()> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    let client = store::pg_tls::connect(&url).await?;
    client.batch_execute("SET synchronous_commit = off").await?;
    let (columns, types) = avis_copy_layout();
    let sink = client.copy_in(&format!("COPY {table} ({columns}) FROM STDIN (FORMAT binary)")).await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    futures_util::pin_mut!(writer);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let step = (end_ms - start_ms).max(1) as f64 / n.max(1) as f64;
    for i in 0..n {
        let at_ms = start_ms + (i as f64 * step) as i64;
        let demarche: i64 = if rng.below(10) < 7 { 1 + rng.below(100) as i64 } else { 101 + rng.below(900) as i64 };
        let satisfaction = rng.pick(&[(62, "bien"), (24, "moyen"), (14, "pas-bien")]);
        let facilite = rng.pick(&[(55, Some("facile")), (22, Some("moyen")), (13, Some("difficile")), (10, None)]);
        let clarte = rng.pick(&[(58, Some("clair")), (20, Some("moyen")), (10, Some("pas-clair")), (12, None)]);
        let aide = rng.pick(&[(48, 1i16), (15, 0), (12, 2), (5, 4), (8, 8), (6, 16), (3, 32)]);
        let source = rng.pick(&[(55, "button"), (25, "site"), (12, "email"), (8, "guichet")]);
        let text = comment(&mut rng);
        let mut rand = [0u8; 10];
        rand[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        rand[8..].copy_from_slice(&rng.next_u64().to_le_bytes()[..2]);
        let id = uuid::Builder::from_unix_timestamp_millis(at_ms as u64, &rand).into_uuid();
        let at = UNIX_EPOCH + Duration::from_millis(at_ms as u64);
        writer
            .as_mut()
            .write(&[&id, &demarche, &source, &at, &satisfaction, &facilite, &clarte, &aide, &text.as_deref()])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// `--prefill N`: the flush where it matters. This month's partition is rebuilt holding N avis
/// received since the month began (binary COPY into a new table without indexes, attached to
/// `avis`, which builds every index `avis` has on it: the primary key, the console's two
/// btrees and the GIN index of comments; `avis_daily` and its rollup recounted from it;
/// `VACUUM ANALYZE`), as a month of a national service holds them. Then, in `--rounds` rounds,
/// the flusher's path (`Store::store_batch`, `--batch`, `--parallel` in flight) and `psql \copy`
/// (CSV, the ceiling) each write the same `--votes` new votes into it, in alternating order;
/// after each, its rows are deleted again, today's `avis_daily` recounted, and the partition
/// vacuumed, so every measurement starts from the same N avis. Prints JSON: rows/s of each per
/// round, the paired ratio flusher / \copy, the server's CPU per row with `--server-pid`.
async fn prefilled(args: &Args, n: u64) -> anyhow::Result<()> {
    let pg = PgStore::connect(&args.database_url).await?;
    pg.migrate().await?;
    let store: &dyn Store = &pg;
    let client = store::pg_tls::connect(&args.database_url).await?;
    let now = Utc::now();
    let month = month_of(now.timestamp_millis());
    let partition = partition_name(month);
    let (month_start, month_end) = (month_start_ms(month), month_start_ms(month + chrono::Months::new(1)));
    // The new votes are received now; the prefill ends a minute before the first of them.
    let prefill_end = now.timestamp_millis() - 60_000;
    anyhow::ensure!(prefill_end > month_start + 3_600_000, "the month began less than an hour ago: run it later");
    let held: i64 = client.query_one(&format!("SELECT count(*) FROM {partition}"), &[]).await?.get(0);
    let load_before = loadavg();
    let mut load = serde_json::Map::new();
    if !(args.reuse_prefill && held as u64 == n) {
        let started = Instant::now();
        client.batch_execute("TRUNCATE avis, avis_daily").await?;
        // The partition rebuilt without indexes, filled, then attached: ATTACH builds each of
        // avis's indexes on it (far faster than COPY into indexed tables, and the indexes come
        // out as a REINDEX leaves them).
        let bounds = format!(
            "'{}' AND received_at < '{}'",
            DateTime::from_timestamp_millis(month_start).unwrap_or_default().to_rfc3339(),
            DateTime::from_timestamp_millis(month_end).unwrap_or_default().to_rfc3339()
        );
        client
            .batch_execute(&format!(
                "ALTER TABLE avis DETACH PARTITION {partition}; DROP TABLE {partition}; \
                 CREATE TABLE {partition} (LIKE avis INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED); \
                 ALTER TABLE {partition} ADD CONSTRAINT {partition}_bounds CHECK (received_at >= {bounds})"
            ))
            .await?;
        let t = Instant::now();
        let streams = 2u64;
        let mut tasks = Vec::new();
        for k in 0..streams {
            let (from, to) = (n * k / streams, n * (k + 1) / streams);
            let span = (prefill_end - month_start) as f64 / n.max(1) as f64;
            let (a, b) = (month_start + (from as f64 * span) as i64, month_start + (to as f64 * span) as i64);
            tasks.push(tokio::spawn(copy_synthetic(
                args.database_url.clone(),
                partition.clone(),
                to - from,
                a,
                b,
                k + 1,
            )));
        }
        for t in tasks {
            t.await??;
        }
        load.insert("copy_s".into(), json!(t.elapsed().as_secs_f64()));
        let t = Instant::now();
        client
            .batch_execute(&format!(
                "SET maintenance_work_mem = '1GB'; \
                 ALTER TABLE avis ATTACH PARTITION {partition} FOR VALUES FROM ('{}') TO ('{}'); \
                 ALTER TABLE {partition} DROP CONSTRAINT {partition}_bounds",
                DateTime::from_timestamp_millis(month_start).unwrap_or_default().to_rfc3339(),
                DateTime::from_timestamp_millis(month_end).unwrap_or_default().to_rfc3339()
            ))
            .await?;
        load.insert("attach_and_index_s".into(), json!(t.elapsed().as_secs_f64()));
        let t = Instant::now();
        let cols = store::DAILY_COLUMNS.join(", ");
        client
            .batch_execute(&format!(
                "INSERT INTO avis_daily (demarche_id, day, source, {cols}) \
                 SELECT demarche_id, (received_at AT TIME ZONE 'Europe/Paris')::date, source, {} \
                 FROM avis GROUP BY 1, 2, 3",
                store::recount_expressions()
            ))
            .await?;
        // One statement each: VACUUM cannot run in the implicit transaction of several.
        for sql in [format!("VACUUM ANALYZE {partition}"), "VACUUM ANALYZE avis_daily".into(), "CHECKPOINT".into()] {
            client.batch_execute(&sql).await?;
        }
        load.insert("daily_and_vacuum_s".into(), json!(t.elapsed().as_secs_f64()));
        load.insert("total_s".into(), json!(started.elapsed().as_secs_f64()));
    } else {
        load.insert("reused".into(), json!(true));
    }
    let sizes = table_sizes_light(&client, &partition).await?;

    let votes = make_votes(args.votes);
    let first_new = votes.iter().map(|v| v.received_at_ms).min().unwrap_or(0);
    anyhow::ensure!(
        first_new > prefill_end && first_new < month_end,
        "the votes must fall in this month, after the prefill"
    );
    let rows_before: i64 = client.query_one("SELECT count(*) FROM avis", &[]).await?.get(0);
    let daily_before: i64 = client.query_one("SELECT coalesce(sum(n), 0)::bigint FROM avis_daily", &[]).await?.get(0);
    anyhow::ensure!(rows_before == n as i64 && daily_before == n as i64, "the prefill holds {rows_before} avis");
    let cut = DateTime::from_timestamp_millis(prefill_end).unwrap_or_default();
    let today = widget_server::vote::paris_day(first_new);
    let cols = store::DAILY_COLUMNS.join(", ");
    // Takes the measured rows out again: the same N avis for the next measurement.
    let restore = || async {
        client.execute("DELETE FROM avis WHERE received_at > $1", &[&cut]).await?;
        client.execute("DELETE FROM avis_daily WHERE day >= $1", &[&today]).await?;
        client
            .execute(
                &format!(
                    "INSERT INTO avis_daily (demarche_id, day, source, {cols}) \
                     SELECT demarche_id, (received_at AT TIME ZONE 'Europe/Paris')::date, source, {} \
                     FROM avis WHERE (received_at AT TIME ZONE 'Europe/Paris')::date >= $1 GROUP BY 1, 2, 3",
                    store::recount_expressions()
                ),
                &[&today],
            )
            .await?;
        for sql in [format!("VACUUM {partition}"), "VACUUM avis_daily".into(), "CHECKPOINT".into()] {
            client.batch_execute(&sql).await?;
        }
        let (rows, daily): (i64, i64) = {
            let r = client
                .query_one(
                    "SELECT (SELECT count(*) FROM avis), (SELECT coalesce(sum(n), 0)::bigint FROM avis_daily)",
                    &[],
                )
                .await?;
            (r.get(0), r.get(1))
        };
        anyhow::ensure!(rows == n as i64 && daily == n as i64, "after a round: {rows} avis, avis_daily counts {daily}");
        anyhow::Ok(())
    };
    write_csv(&args.csv, &votes)?;
    let cpu = || args.server_pid.map(server_cpu_ticks).transpose();
    let tick = 1.0 / clock_ticks_per_second();
    // Warm-up: one batch each way.
    flush_all(store, &votes[..args.batch.min(votes.len())], args.batch, args.parallel).await?;
    restore().await?;

    let mut rounds = Vec::new();
    let (mut ratios, mut flush_rates, mut copy_rates) = (vec![], vec![], vec![]);
    for round in 1..=args.rounds.max(1) {
        let order = if round % 2 == 1 { ["flusher", "copy"] } else { ["copy", "flusher"] };
        let mut r = serde_json::Map::new();
        for which in order {
            let (cpu0, t) = (cpu()?, Instant::now());
            if which == "flusher" {
                flush_all(store, &votes, args.batch, args.parallel).await?;
            } else {
                let status = std::process::Command::new("psql")
                    .arg(&args.database_url)
                    .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
                    .arg(format!(
                        "\\copy avis ({}) FROM '{}' WITH (FORMAT csv)",
                        avis_copy_layout().0,
                        args.csv.display()
                    ))
                    .status()?;
                anyhow::ensure!(status.success(), "psql \\copy failed");
            }
            let took = t.elapsed().as_secs_f64();
            let cpu_us = match (cpu0, cpu()?) {
                (Some(a), Some(b)) => Some((b - a) as f64 * tick * 1e6 / votes.len() as f64),
                _ => None,
            };
            let stored: i64 =
                client.query_one("SELECT count(*) FROM avis WHERE received_at > $1", &[&cut]).await?.get(0);
            anyhow::ensure!(stored as usize == votes.len(), "{which}: {stored} rows stored of {}", votes.len());
            r.insert(
                which.into(),
                json!({"rows_per_s": votes.len() as f64 / took, "seconds": took, "server_cpu_us_per_row": cpu_us}),
            );
            restore().await?;
        }
        let (f, c) =
            (r["flusher"]["rows_per_s"].as_f64().unwrap_or(0.0), r["copy"]["rows_per_s"].as_f64().unwrap_or(1.0));
        flush_rates.push(f);
        copy_rates.push(c);
        ratios.push(f / c);
        r.insert("round".into(), json!(round));
        r.insert("first".into(), json!(order[0]));
        r.insert("ratio".into(), json!(f / c));
        eprintln!("flushbench: round {round}: flusher {f:.0} rows/s, \\copy {c:.0} rows/s, ratio {:.2}", f / c);
        rounds.push(Value::Object(r));
    }
    let _ = std::fs::remove_file(&args.csv);
    let out = json!({
        "mode": "prefill",
        "measured_at": Utc::now().to_rfc3339(),
        "prefill": n,
        "partition": partition,
        "load": Value::Object(load),
        "partition_sizes": sizes,
        "votes": votes.len(),
        "batch": args.batch,
        "parallel": args.parallel,
        "rounds": rounds,
        "flusher_rows_per_s": spread(&flush_rates),
        "copy_rows_per_s": spread(&copy_rates),
        "flusher_over_copy": spread(&ratios),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    });
    println!("{out}");
    Ok(())
}

/// The partition's rows and sizes (heap, each index by the `avis` index it belongs to, all).
async fn table_sizes_light(client: &tokio_postgres::Client, table: &str) -> anyhow::Result<Value> {
    let r = client
        .query_one(
            &format!("SELECT count(*), pg_relation_size('{table}'), pg_total_relation_size('{table}') FROM {table}"),
            &[],
        )
        .await?;
    let indexes: BTreeMap<String, i64> = client
        .query(
            "SELECT (SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid), \
                    pg_relation_size(c.oid) \
             FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = to_regclass($1)",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| (r.get::<_, Option<String>>(0).unwrap_or_default(), r.get(1)))
        .collect();
    Ok(
        json!({"rows": r.get::<_, i64>(0), "heap_bytes": r.get::<_, i64>(1), "total_bytes": r.get::<_, i64>(2), "indexes": indexes}),
    )
}
