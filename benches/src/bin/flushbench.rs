//! The storage benchmark of `scripts/bench.sh`: the same votes written three ways into one
//! PostgreSQL, measured in the same run.
//!
//! 1. `Store::store_batch`, the flusher's path (binary COPY + aggregate upsert), in batches;
//! 2. the naive alternative: one `INSERT` per vote in autocommit (a sample, it is slow);
//! 3. the ceiling: `psql \copy` of the same rows from a CSV file straight into `avis`.
//!
//! Prints one JSON object with rows/s for each, on stdout.

use std::io::Write;
use std::time::{Duration, Instant, UNIX_EPOCH};

use clap::Parser;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;
use widget_server::store;
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
}

/// Realistic votes: all answers varied, a comment in one vote out of five.
fn make_votes(n: usize) -> Vec<Vote> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
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
                commentaire: x
                    .is_multiple_of(5)
                    .then(|| "Démarche claire, mais l'attente au téléphone était trop longue.".into()),
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
    let store = store::open(&args.database_url).await?;
    store.migrate().await?;
    let client = widget_server::store::pg_tls::connect(&args.database_url).await?;
    let truncate = || client.batch_execute("TRUNCATE avis, avis_daily");

    let votes = make_votes(args.votes);

    // 1. The flusher's path.
    truncate().await?;
    let started = Instant::now();
    futures_util::stream::iter(votes.chunks(args.batch.max(1)))
        .map(|chunk| store.store_batch(chunk))
        .buffer_unordered(args.parallel.max(1))
        .try_collect::<Vec<u64>>()
        .await?;
    let batched = started.elapsed();
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
