//! `loadtest`: drives a monavis `widget-server` on this machine with a mix of button, form and
//! vote requests, reports latency and throughput per kind, and can check afterwards that every
//! accepted vote reached PostgreSQL.
//!
//! # Layout
//!
//! - [`target`]: the `--target` URL, refused unless it is a loopback address.
//! - [`mix`]: the request kinds and the weighted `--mix`.
//! - [`traffic`]: what each kind of request looks like, vote bodies included.
//! - [`client`]: one keep-alive connection from a chosen loopback source address.
//! - [`schedule`]: the open model's fixed timetable.
//! - [`run`]: the workers of the closed and open models.
//! - [`report`]: histograms and status counts, as a table and as JSON.
//! - [`check`]: `--check-postgres`, the end-to-end count of stored votes.
//!
//! Exit status: 0 when the run (and the check, if asked) went through, 2 when the check found
//! the store inconsistent with the answers, 1 on any other error.
//!
//! # Examples
//!
//! ```text
//! # closed model: 16 connections back to back for 10 s, the default mix
//! loadtest --target http://127.0.0.1:8080 --demarches 42 --secret-file data/secret --duration 10s
//! # open model: 5,000 req/s of votes over up to 64 connections from 64 source addresses
//! loadtest --target http://127.0.0.1:8080 --demarches 42,43 --mix vote=1 --rate 5000 \
//!          --concurrency 64 --source-ips 64 --duration 30s --json result.json
//! # then check that PostgreSQL holds every vote answered 303
//! loadtest … --check-postgres postgres://postgres@127.0.0.1:5432/monavis
//! ```

mod check;
mod client;
mod mix;
mod report;
mod rng;
mod run;
mod schedule;
mod target;
mod traffic;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use clap::{ArgGroup, Parser};
use hyper::header::{self, HeaderValue};
use hyper::StatusCode;

use crate::client::{Connector, MAX_SOURCE_IPS};
use crate::mix::{Kind, Mix, DEFAULT_MIX};
use crate::report::RunInfo;
use crate::schedule::Schedule;
use crate::target::{parse_target, Target};
use crate::traffic::{Traffic, BUTTON_PATHS, MAX_XFF};

/// Longest run, whatever `--duration` says: a forgotten load generator must stop by itself.
const MAX_DURATION: Duration = Duration::from_secs(600);

/// Load generator for monavis widget-server, over loopback only.
#[derive(Parser, Debug)]
#[command(version, about, group(ArgGroup::new("bound").args(["requests", "duration"]).multiple(true).required(true)))]
struct Cli {
    /// The server: http://HOST:PORT where HOST is 127.x.y.z, [::1] or localhost.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_parser = parse_target)]
    target: Target,
    /// Request kinds and their weights: button, button304, button-gzip, form, vote.
    #[arg(long, default_value = DEFAULT_MIX)]
    mix: Mix,
    /// Connections: one per worker in the closed model, the pool size in the open model.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: u32,
    /// Open model: this many requests per second in total, on a fixed timetable. Without it,
    /// the closed model: each connection sends back to back.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many requests.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Stop after this long (e.g. 10s, 2m); never more than 10 minutes.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Longest wait for one answer; a request still unanswered then counts as a timeout error
    /// (errors are counted, not included in the latency percentiles).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Spread connections over this many source addresses 127.1.0.1, 127.1.0.2, … (connection i
    /// uses address i mod N; IPv4 targets only). 0: let the kernel choose.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=MAX_SOURCE_IPS as i64))]
    source_ips: u32,
    /// Send X-Forwarded-For with one of this many synthetic client addresses in 198.18.0.0/15,
    /// for a server started with --trusted-proxies 127.0.0.0/8. 0: no header.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=MAX_XFF as i64))]
    xff: u32,
    /// Share of votes that carry a comment, in percent (0 for the memory figure "per vote
    /// without comment").
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100))]
    comment_percent: u32,
    /// Démarche ids for form and vote requests, comma-separated (they must be in the server's
    /// catalogue and active).
    #[arg(long, value_delimiter = ',')]
    demarches: Vec<u64>,
    /// The server's secret file, to sign the form links and votes' keys.
    #[arg(long, default_value = "data/secret")]
    secret_file: PathBuf,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// After the run, check in this PostgreSQL database (the server's) that every vote answered
    /// 303 is stored and that avis_daily agrees with avis.
    #[arg(long)]
    check_postgres: Option<String>,
    /// How long the check waits for the votes to be flushed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    check_timeout: Duration,
    /// How long the check keeps watching once the votes are in, for rows that should not be.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    check_settle: Duration,
    /// Runtime threads (default: one per CPU). The server runs on the same CPUs.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    /// Seed of the request and answer choices, to repeat a run (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    // Usage errors exit 1, not clap's 2: 2 means that the store check failed.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        builder.worker_threads(n as usize);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs everything; `Ok(false)` when the store check failed.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let needs_demarches = cli.mix.contains(Kind::Form) || cli.mix.contains(Kind::Vote) || cli.check_postgres.is_some();
    ensure!(
        !needs_demarches || !cli.demarches.is_empty(),
        "--demarches is needed for form and vote requests and for --check-postgres"
    );
    ensure!(
        cli.demarches.iter().all(|&id| id > 0 && i64::try_from(id).is_ok()),
        "--demarches: ids are positive numbers below 2^63"
    );
    ensure!(
        cli.source_ips == 0 || cli.target.addr.is_ipv4(),
        "--source-ips needs an IPv4 target such as http://127.0.0.1:PORT"
    );
    if cli.source_ips > cli.concurrency {
        eprintln!(
            "note: only {} of the {} source addresses are used, one per connection",
            cli.concurrency, cli.source_ips
        );
    }
    let schedule = cli.rate.map(Schedule::new).transpose().map_err(anyhow::Error::msg)?;
    let duration = match cli.duration {
        Some(d) if d > MAX_DURATION => {
            eprintln!("note: --duration {} is capped at 10 minutes", humantime::format_duration(d));
            MAX_DURATION
        }
        Some(d) => d,
        None => MAX_DURATION,
    };
    let seed =
        cli.seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));

    let secret = if needs_demarches {
        std::fs::read(&cli.secret_file).with_context(|| {
            format!("reading --secret-file {} (the server's secret, to sign form links)", cli.secret_file.display())
        })?
    } else {
        Vec::new()
    };
    let signer = snippet::KeySigner::new(&secret);
    let mut traffic = Traffic::new(&cli.target.authority, &cli.demarches, &signer, cli.xff)
        .map_err(anyhow::Error::msg)?
        .with_comment_percent(cli.comment_percent);
    let connector = Connector { target: cli.target.addr, source: None };
    probe(connector, cli.timeout, &mut traffic, needs_demarches).await?;

    let mut store_check = match &cli.check_postgres {
        Some(url) => {
            let check = check::StoreCheck::connect(url, &cli.demarches).await?;
            let before = check.totals().await?;
            Some((check, before))
        }
        None => None,
    };

    let plan = run::Plan {
        connector,
        schedule,
        concurrency: cli.concurrency as usize,
        requests: cli.requests,
        duration,
        timeout: cli.timeout,
        source_ips: cli.source_ips,
        seed,
    };
    let show_progress = std::io::stderr().is_terminal();
    let outcome = run::run(plan, traffic, cli.mix.clone(), move |elapsed, done| {
        if show_progress {
            eprint!("\r{:>4} s  {done} requests ", elapsed.as_secs());
        }
    })
    .await?;
    if show_progress {
        eprintln!();
    }

    let info = RunInfo {
        target: format!("http://{}", cli.target.authority),
        mix: cli.mix.to_string(),
        concurrency: cli.concurrency as usize,
        rate: schedule.map(|s| s.rate()),
        planned: schedule.map(|s| {
            let within = s.due_within(duration);
            cli.requests.map_or(within, |r| r.min(within))
        }),
        elapsed: outcome.elapsed,
        interrupted: outcome.interrupted,
        seed,
    };
    let mut stdout = std::io::stdout().lock();
    report::print(&mut stdout, &info, &outcome.stats)?;
    let mut json = report::json(&info, &outcome.stats);

    let mut passed = true;
    if let Some((check, before)) = store_check.as_mut() {
        let (accepted, uncertain) = (outcome.stats.votes_accepted(), outcome.stats.votes_uncertain);
        let verify = check.verify(*before, accepted, uncertain, cli.check_timeout, cli.check_settle);
        let verdict = tokio::select! {
            v = verify => v?,
            _ = tokio::signal::ctrl_c() => bail!("interrupted while waiting for the store"),
        };
        verdict.print(&mut stdout)?;
        passed = verdict.problems().is_empty();
        json["check"] = verdict.json();
    }
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&json)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(passed)
}

/// Before loading the server: checks that it answers, fetches the buttons' ETags for
/// `button304`, and when démarches are used, that their form links are accepted, so that a
/// wrong secret or a missing démarche fails at once rather than as thousands of 404s.
async fn probe(
    connector: Connector,
    timeout: Duration,
    traffic: &mut Traffic,
    check_forms: bool,
) -> anyhow::Result<()> {
    let mut client = client::Client::new(connector, timeout);
    let mut etags = Vec::with_capacity(BUTTON_PATHS.len());
    for path in BUTTON_PATHS {
        let answer = client
            .send(traffic.get(path)?)
            .await
            .with_context(|| format!("cannot reach the server at {}", connector.target))?;
        ensure!(answer.status() == StatusCode::OK, "GET {path} answered {}, expected 200", answer.status());
        let etag: HeaderValue = answer
            .headers()
            .get(header::ETAG)
            .cloned()
            .with_context(|| format!("GET {path} answered without an ETag"))?;
        etags.push(etag);
    }
    if let Ok(etags) = <[HeaderValue; 2]>::try_from(etags) {
        traffic.set_etags(etags);
    }
    if check_forms {
        let links: Vec<String> = traffic.form_links().map(str::to_string).collect();
        for link in links {
            let answer = client.send(traffic.get(&link)?).await.with_context(|| format!("GET {link}"))?;
            match answer.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => bail!(
                    "GET {link} answered 404: the démarche is not in the server's catalogue or is inactive, \
                     or --secret-file is not the server's secret"
                ),
                other => bail!("GET {link} answered {other}, expected 200"),
            }
        }
    }
    Ok(())
}
