//! `widget-server`: see `widget-server --help`. Exit status of `serve`: 0 when every accepted
//! vote is stored, 3 when some had to be spilled to disk (replayed at next start), 4 when some
//! could not even be spilled, 1 on a start-up or command error.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use widget_server::catalogue::{Catalogue, Demarche};
use widget_server::config::{
    AccountCommand, Cli, Command, Config, DemarcheCommand, EmailCommand, NotificationsCommand,
};
use widget_server::flush::FlushOutcome;
use widget_server::{secret, server, store};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(help) = widget_server::config::scoped_help(&args) {
        print!("{help}");
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.config.log).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Every connection is a file descriptor: a soft limit of 1,024 (a common default) would
    // stop accepts long before http::MAX_CONNECTIONS. Raise it to the hard limit the operator set.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 4096 => {
            tracing::warn!(limit = n, "few file descriptors allowed (ulimit -n): few connections at once")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the file-descriptor limit"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("widget-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("widget-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            open_store(&config).await?;
            println!("schema up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demarche(DemarcheCommand::Add(add)) => {
            anyhow::ensure!(add.id > 0, "--id must be a positive number");
            anyhow::ensure!(!add.name.trim().is_empty(), "--name must not be empty");
            anyhow::ensure!(add.volume_annuel.is_none_or(|v| v >= 0), "--volume-annuel must not be negative");
            let store = open_store(&config).await?;
            let d = Demarche {
                id: add.id,
                name: add.name.trim().to_string(),
                administration: add.administration.trim().to_string(),
                volume_annuel: add.volume_annuel,
                high_volume_approved: false,
                active: !add.inactive,
                merged_into: None,
                privacy: Default::default(),
            };
            store.upsert_demarche(&d).await?;
            println!("démarche {} saved: {}", d.id, d.name);
            Ok(ExitCode::SUCCESS)
        }
        Command::Demarche(DemarcheCommand::Import { file }) => {
            let text = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let text = String::from_utf8(text).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not UTF-8 (byte {}): save it as UTF-8 and try again",
                    file.display(),
                    e.utf8_error().valid_up_to()
                )
            })?;
            let (rows, rejected) =
                widget_server::console::import::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            open_store(&config).await?;
            let console = widget_server::console::store::open(&config.database_url()).await?;
            let read = rows.len();
            let counts = console.import_demarches(rows).await?;
            println!(
                "{}: {read} rows loaded ({} new, {} updated, {} unchanged), {} rejected",
                file.display(),
                counts.added,
                counts.updated,
                counts.unchanged,
                rejected.len()
            );
            for r in &rejected {
                println!("line {}: {}", r.line, r.reason);
            }
            Ok(if rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Demarche(DemarcheCommand::List) => {
            let store = open_store(&config).await?;
            for d in store.demarches().await? {
                let state = if d.active { "active" } else { "inactive" };
                println!("{}\t{}\t{}\t{}", d.id, state, d.name, d.administration);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Account(command) => account_command(&config, command).await,
        Command::Email(EmailCommand::List { to, limit }) => {
            open_store(&config).await?;
            let console = widget_server::console::store::open(&config.database_url()).await?;
            for m in console.outbox(to.map(|t| t.trim().to_lowercase()), limit.max(1)).await? {
                let state = match m.sent_at {
                    Some(at) => format!("sent {}", at.format("%Y-%m-%d %H:%M:%S")),
                    None => "not sent".to_string(),
                };
                println!(
                    "--- #{} to {} ({state}), {}\nSubject: {}\n\n{}",
                    m.id,
                    m.to,
                    m.created_at.format("%Y-%m-%d %H:%M:%S"),
                    m.subject,
                    m.body
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Notifications(NotificationsCommand::Run { at }) => {
            let at = match at {
                Some(at) => chrono::DateTime::parse_from_rfc3339(&at)
                    .with_context(|| format!("--at {at:?}: expected an RFC 3339 instant"))?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            open_store(&config).await?;
            let secret = secret::load_or_create(&config.secret_file)?;
            let notifier = widget_server::console::notifications::Notifier::for_command(&config, &secret).await?;
            let report = notifier.run(at).await?;
            let total: u64 = report.sent.values().sum();
            println!("notifications at {}: {total} sent", at.to_rfc3339());
            for (kind, n) in &report.sent {
                println!("{kind}\t{n}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Snippet(args) => {
            anyhow::ensure!(
                snippet::is_valid_source(&args.source),
                "--source {:?}: expected 1 to 32 characters among a-z, 0-9 and -",
                args.source
            );
            let store = open_store(&config).await?;
            let known = store.demarches().await?.into_iter().any(|d| d.id == args.demarche);
            anyhow::ensure!(known, "démarche {} is not in the catalogue: add it with `demarche add`", args.demarche);
            let secret = secret::load_or_create(&config.secret_file)?;
            let signer = snippet::KeySigner::new(&secret);
            let public_url = config.public_url();
            let html = snippet::Snippet::new(&public_url, args.demarche as u64, args.style)
                .source(&args.source)
                .new_window(args.new_window)
                .html(&signer);
            println!("{html}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `account …`: what operators do to accounts, recorded in the audit trail.
async fn account_command(config: &Config, command: AccountCommand) -> anyhow::Result<ExitCode> {
    use widget_server::console::store::{AccountStatus, AuditEntry};
    open_store(config).await?;
    let console = widget_server::console::store::open(&config.database_url()).await?;
    let now = chrono::Utc::now();
    let find = |email: &str| {
        let email = email.trim().to_lowercase();
        let console = console.clone();
        async move {
            console
                .account_by_email(email.clone())
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account has the address {email}"))
        }
    };
    let audit = |action: &str, id: i64, email: &str| AuditEntry {
        actor_id: None,
        action: action.into(),
        account_id: Some(id),
        demarche_id: None,
        detail: format!("{email} (widget-server account)"),
    };
    match command {
        AccountCommand::Approve { email } => {
            let account = find(&email).await?;
            if account.status == AccountStatus::Active {
                println!("{} is already active", account.email);
                return Ok(ExitCode::SUCCESS);
            }
            anyhow::ensure!(
                console.set_status(account.id, account.status, AccountStatus::Active, now).await?,
                "the account of {} changed meanwhile; try again",
                account.email
            );
            console.audit(audit("account.approve", account.id, &account.email), now).await?;
            let mail = widget_server::console::emails::approved(
                &config.operator_name,
                config.public_url().trim_end_matches('/'),
            );
            console.queue_email(account.email.clone(), mail.subject, mail.body, now).await?;
            println!(
                "{} is now active (an e-mail tells them; it leaves with the running server's mailer)",
                account.email
            );
        }
        AccountCommand::Admin { email } => {
            let account = find(&email).await?;
            console.make_admin(account.id, now).await?;
            console.audit(audit("account.admin", account.id, &account.email), now).await?;
            println!("{} is now an administrator (and active)", account.email);
        }
        AccountCommand::Pending => {
            let pending = console.pending_accounts().await?;
            if pending.is_empty() {
                println!("no account waits for an administrator");
            }
            for a in pending {
                println!("{}\t{}\t{}\t{}", a.email, a.name, a.administration, a.created_at.format("%Y-%m-%d %H:%M"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn store::Store>> {
    let url = config.database_url();
    let store = store::open(&url).await.with_context(|| format!("opening the store {}", store::redact(&url)))?;
    store.migrate().await.context("migrating the store")?;
    Ok(store)
}

/// The data directory (spill files) must be writable before the first vote is accepted: a spill
/// is the last resort of votes the store cannot take, too late to find out it cannot be written.
fn writable_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| format!("the data directory {} is not writable", dir.display()))
}

async fn serve(mut config: Config) -> anyhow::Result<ExitCode> {
    let shutdown = server::shutdown_signal();
    anyhow::ensure!(
        config.shutdown_drain < config.shutdown_timeout,
        "--shutdown-drain ({}) must be shorter than --shutdown-timeout ({}): the drain is counted in it, and the buffer needs time to flush",
        humantime::format_duration(config.shutdown_drain),
        humantime::format_duration(config.shutdown_timeout)
    );
    writable_dir(&config.data_dir)?;
    let store = open_store(&config).await?;
    let secret = secret::load_or_create(&config.secret_file)?;
    let catalogue = Arc::new(Catalogue::new(store.demarches().await.context("loading the catalogue")?));
    let css = ["avis", "console"].map(|stem| widget_server::assets::hashed_href(stem).unwrap_or_default());
    // Bound before the console starts: without --public-url, links (e-mails, snippets) use the
    // address actually bound, port included.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url_for(addr);
    if config.public_url.is_none() {
        if addr.ip().is_loopback() {
            tracing::info!(%public_url, "no --public-url: links in e-mails and snippets use the listening address");
        } else {
            tracing::warn!(
                %public_url,
                "listening beyond loopback without --public-url: links in e-mails and snippets point to this \
                 address, which citizens and porteurs may not reach; set --public-url to the address they use"
            );
        }
    }
    config.public_url = Some(public_url.clone());
    // One set of metrics, shared by the hot path and the console (its e-mail outbox).
    let metrics = Arc::new(widget_server::metrics::Metrics::default());
    let console = widget_server::console::Console::start(
        &config,
        addr,
        css,
        catalogue.clone(),
        store.clone(),
        &secret,
        metrics.clone(),
    )
    .await
    .context("starting the porteurs' console")?;
    tracing::info!(
        %addr,
        %public_url,
        store = %store::redact(&config.database_url()),
        console_reads = %config.database_read_url.as_deref().map(store::redact).unwrap_or_else(|| "the store".into()),
        demarches = catalogue.len(),
        "listening"
    );
    // A plain line on stdout, for scripts and tests that start us on port 0.
    println!("widget-server listening on http://{addr}");
    // Journal segments of earlier runs are listed before this run writes its own.
    let old_journal = config.journal.as_deref().map(widget_server::flush::journal_files).unwrap_or_default();
    let journal = match &config.journal {
        Some(dir) => Some(
            widget_server::journal::Journal::start(dir)
                .with_context(|| format!("cannot open the journal in {}", dir.display()))?,
        ),
        None => None,
    };
    let max_batch = config.flush_max_votes as usize;
    let mut app = server::App::new(config, store.clone(), catalogue, &secret, metrics);
    app.journal = journal;
    app.console = Some(console);
    let app = Arc::new(app);
    if !old_journal.is_empty() {
        tracing::info!(files = old_journal.len(), "replaying the journal of an earlier run");
        tokio::spawn(widget_server::flush::replay_files(old_journal, store, max_batch));
    }
    app.metrics.store_reachable.set(1);
    Ok(match server::serve(app, listener, shutdown).await {
        FlushOutcome::AllStored => ExitCode::SUCCESS,
        FlushOutcome::Spilled { .. } | FlushOutcome::Journaled { .. } => ExitCode::from(3),
        FlushOutcome::Lost { .. } => ExitCode::from(4),
    })
}
