//! Configuration: one [`Config`], built once at start from flags and `MONAVIS_*` environment
//! variables (DESIGN §9), then passed down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

/// monavis widget-server: « Je donne mon avis » buttons, avis form and vote intake.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when none is given.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Create or upgrade the store's tables, then exit.
    Migrate,
    /// Manage the démarche catalogue.
    #[command(subcommand)]
    Demarche(DemarcheCommand),
    /// Print the button code a porteur pastes at the end of a démarche.
    Snippet(SnippetArgs),
    /// Manage porteurs' accounts (the first administrator is made here).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Read the e-mail outbox (where e-mails stay when no --smtp-url is set).
    #[command(subcommand)]
    Email(EmailCommand),
    /// Porteurs' notifications (digests and alerts; `serve` runs them every minute).
    #[command(subcommand)]
    Notifications(NotificationsCommand),
}

/// `notifications …` subcommands.
#[derive(Subcommand, Debug)]
pub enum NotificationsCommand {
    /// Send what is due, once, as if at `--at` (default: now); what was sent is never sent again.
    Run {
        /// The instant to run at, RFC 3339 (e.g. 2026-12-07T08:00:00+01:00).
        #[arg(long)]
        at: Option<String>,
    },
}

/// `account …` subcommands.
#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Activate an account that waits for an administrator (or has not confirmed its address).
    Approve {
        /// The account's e-mail address.
        email: String,
    },
    /// Make an account an administrator (and active).
    Admin {
        /// The account's e-mail address.
        email: String,
    },
    /// List accounts waiting for an administrator.
    Pending,
}

/// `email …` subcommands.
#[derive(Subcommand, Debug)]
pub enum EmailCommand {
    /// Print the latest e-mails of the outbox, newest first, with their bodies.
    List {
        /// Only those sent to this address.
        #[arg(long)]
        to: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 10)]
        limit: i64,
    },
}

/// `demarche …` subcommands.
#[derive(Subcommand, Debug)]
pub enum DemarcheCommand {
    /// Add a démarche to the catalogue (or update its name and details).
    Add(DemarcheAdd),
    /// Load a catalogue file: UTF-8, `;` or `,`, a header row naming id, nom and optionally
    /// administration, url, volume. Idempotent; rejected rows are reported by line (exit 2).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// List the catalogue.
    List,
}

/// Arguments of `demarche add`.
#[derive(Args, Debug)]
pub struct DemarcheAdd {
    /// Numeric id of the démarche (as in its URL on the partner site).
    #[arg(long)]
    pub id: i64,
    /// Name shown to citizens on the form.
    #[arg(long)]
    pub name: String,
    /// Administration in charge, shown under the name.
    #[arg(long, default_value = "")]
    pub administration: String,
    /// Expected number of avis a year, if known.
    #[arg(long)]
    pub volume_annuel: Option<i64>,
    /// Add it inactive: its form links answer 404 until activated.
    #[arg(long)]
    pub inactive: bool,
}

/// Arguments of `snippet`.
#[derive(Args, Debug)]
pub struct SnippetArgs {
    /// Numeric id of the démarche.
    #[arg(long)]
    pub demarche: i64,
    /// Button style: bleu or blanc.
    #[arg(long, default_value = "bleu")]
    pub style: snippet::Style,
    /// `nd_source` label stored with each avis, [a-z0-9-]{1,32}.
    #[arg(long, default_value = snippet::DEFAULT_SOURCE)]
    pub source: String,
    /// Open the form in a new window (for sites other than demarches-simplifiees.fr).
    #[arg(long)]
    pub new_window: bool,
}

/// Everything the server is configured with.
#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "MONAVIS_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,
    /// Public base URL, as citizens and porteurs reach it (links in snippets and e-mails).
    /// Default: http:// and the address the server listens on (said in the start-up log).
    #[arg(long, env = "MONAVIS_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Store: postgres://… or sqlite://path (also read from DATABASE_URL).
    #[arg(long, env = "MONAVIS_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Console reads (dashboards, lists of avis, exports, API, observatory) from this PostgreSQL
    /// streaming replica instead of --database-url; writes and sign-in stay on the primary.
    #[arg(long, env = "MONAVIS_DATABASE_READ_URL", global = true)]
    pub database_read_url: Option<String>,
    /// How often each replica re-reads the démarches' catalogue, to pick up what other replicas
    /// changed (e.g. 30s, 1m).
    #[arg(long, env = "MONAVIS_CATALOGUE_REFRESH", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub catalogue_refresh: Duration,
    /// Server secret used to sign form links; created with 32 random bytes if missing.
    #[arg(long, env = "MONAVIS_SECRET_FILE", default_value = "data/secret", global = true)]
    pub secret_file: PathBuf,
    /// Directory for the spill file written at shutdown when the store is unreachable.
    #[arg(long, env = "MONAVIS_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// Journal directory: every accepted vote is appended and fsynced (group commit) before its
    /// 303, so a crash or SIGKILL loses nothing acknowledged; replayed at next start. Off by
    /// default. One directory per server process: a starting server replays all it finds there.
    #[arg(long, env = "MONAVIS_JOURNAL", global = true)]
    pub journal: Option<PathBuf>,
    /// Flush at least this often, in milliseconds.
    #[arg(long, env = "MONAVIS_FLUSH_INTERVAL_MS", default_value_t = 1000, global = true)]
    pub flush_interval_ms: u64,
    /// Flush as soon as this many votes are pending; also the largest batch written at once.
    #[arg(long, env = "MONAVIS_FLUSH_MAX_VOTES", default_value_t = 10_000, global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub flush_max_votes: u64,
    /// Flushers draining the buffer side by side, each with its own store connection. Two keep
    /// PostgreSQL busy on two cores while a batch commits (about 1.4× the rows/s of one).
    #[arg(long, env = "MONAVIS_FLUSH_PARALLELISM", default_value_t = 2, global = true,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub flush_parallelism: u64,
    /// Votes held in memory (buffered or being flushed) before new ones get 503.
    #[arg(long, env = "MONAVIS_BUFFER_MAX_VOTES", default_value_t = 1_000_000, global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub buffer_max_votes: u64,
    /// Votes a minute allowed per client IP (IPv6: per /64).
    #[arg(long, env = "MONAVIS_RATE_PER_MINUTE", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_per_minute: u32,
    /// Votes a minute allowed per client IP and démarche.
    #[arg(long, env = "MONAVIS_RATE_PER_MINUTE_DEMARCHE", default_value_t = 5, global = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_per_minute_demarche: u32,
    /// Comma-separated CIDRs of proxies whose Forwarded / X-Forwarded-For headers are trusted.
    #[arg(long, env = "MONAVIS_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<IpNet>,
    /// How long shutdown may spend flushing before spilling to disk (e.g. 30s, 2m).
    #[arg(long, env = "MONAVIS_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_timeout: Duration,
    /// After SIGTERM, go on serving this long with /readyz answering 503, so that a load
    /// balancer's health checks take the replica out before its socket closes (e.g. 5s).
    /// Counted within --shutdown-timeout, and shorter than it.
    #[arg(long, env = "MONAVIS_SHUTDOWN_DRAIN", default_value = "0s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_drain: Duration,
    /// Name of the service, shown in every page header and in e-mails.
    #[arg(long, env = "MONAVIS_OPERATOR_NAME", default_value = "monavis", global = true)]
    pub operator_name: String,
    /// Show the « République française » block in page headers (only the State may use it).
    #[arg(long, env = "MONAVIS_OPERATOR_MARIANNE", global = true)]
    pub operator_marianne: bool,
    /// How citizens reach the operator's data protection officer (an address or a URL), in the
    /// privacy notice of forms whose porteurs filled in none.
    #[arg(long, env = "MONAVIS_OPERATOR_DPO", default_value = "", global = true)]
    pub operator_dpo: String,
    /// Comments are erased this many calendar months after they were received, by a daily task;
    /// the answers and daily counts stay. Shown in the forms' privacy notice. 1 to 1200.
    #[arg(long, env = "MONAVIS_RETENTION_MONTHS", default_value_t = 24, global = true,
          value_parser = clap::value_parser!(u32).range(1..=1200))]
    pub retention_months: u32,
    /// SMTP server for the console's e-mails: smtp://host:25, smtp://user:pass@host:587?tls=required,
    /// smtps://host:465. Without it, e-mails stay in the email_outbox table (and the log says so).
    #[arg(long, env = "MONAVIS_SMTP_URL", global = true)]
    pub smtp_url: Option<String>,
    /// Print each e-mail (recipient, subject, body with its links) to the log, like Django's
    /// console e-mail backend: auto (when listening on loopback without --smtp-url), yes, no.
    #[arg(long, env = "MONAVIS_LOG_EMAILS", default_value = "auto", global = true)]
    pub log_emails: LogEmails,
    /// Sender of the console's e-mails; default "operator name" <ne-pas-repondre@host of --public-url>.
    #[arg(long, env = "MONAVIS_SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,
    /// A console session ends after this long without a request (e.g. 7d, 12h).
    #[arg(long, env = "MONAVIS_SESSION_IDLE_TIMEOUT", default_value = "7d", value_parser = humantime::parse_duration, global = true)]
    pub session_idle_timeout: Duration,
    /// A console session ends this long after log-in, however active.
    #[arg(long, env = "MONAVIS_SESSION_MAX_AGE", default_value = "30d", value_parser = humantime::parse_duration, global = true)]
    pub session_max_age: Duration,
    /// ProConnect (the State's identity federation for public agents): its issuer URL, which ends
    /// in /api/v2 (ProConnect gives it with the client id). With --proconnect-client-id and
    /// --proconnect-client-secret-file, « S'identifier avec ProConnect » is offered at log-in and
    /// sign-up; without them, nothing changes.
    #[arg(long, env = "MONAVIS_PROCONNECT_ISSUER", global = true)]
    pub proconnect_issuer: Option<String>,
    /// The client id ProConnect gave this service.
    #[arg(long, env = "MONAVIS_PROCONNECT_CLIENT_ID", global = true)]
    pub proconnect_client_id: Option<String>,
    /// A file holding the client secret ProConnect gave this service (surrounding blanks ignored).
    #[arg(long, env = "MONAVIS_PROCONNECT_CLIENT_SECRET_FILE", global = true)]
    pub proconnect_client_secret_file: Option<PathBuf>,
    /// The acr value(s) to ask ProConnect for (comma-separated, e.g. eidas1), through the claims
    /// parameter; the ID token must carry one of them. None asked by default.
    #[arg(long, env = "MONAVIS_PROCONNECT_ACR", value_delimiter = ',', global = true)]
    pub proconnect_acr: Vec<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. info or widget_server=debug.
    #[arg(long, env = "MONAVIS_LOG", default_value = "info,tokio_postgres=warn", global = true)]
    pub log: String,
}

/// Whether e-mails are printed to the log (`--log-emails`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogEmails {
    /// On a laptop: listening on loopback with no SMTP server.
    Auto,
    Yes,
    No,
}

/// The default store: an embedded SQLite file, so that a bare `cargo run` works.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/monavis.db";

impl Config {
    /// The store URL: `--database-url` / `MONAVIS_DATABASE_URL`, else `DATABASE_URL`, else the
    /// embedded default.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
    }

    /// The flush interval.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms.max(1))
    }

    /// `--public-url`, or http:// and `listening` (the address bound: with `--listen …:0`, the
    /// port chosen), `127.0.0.1` standing for an unspecified address (`0.0.0.0`, `::`).
    pub fn public_url_for(&self, listening: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => {
                let ip = match listening.ip() {
                    ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
                    ip => ip,
                };
                format!("http://{}", SocketAddr::new(ip, listening.port()))
            }
        }
    }

    /// The public URL for commands that run without a listener (`snippet`, `account approve`):
    /// that of a server started with the same flags.
    pub fn public_url(&self) -> String {
        self.public_url_for(self.listen)
    }

    /// The ProConnect settings: `None` when no `--proconnect-*` flag is set, an error when only
    /// some of the three required ones are, or the secret file cannot be read.
    pub fn proconnect(&self) -> anyhow::Result<Option<crate::console::proconnect::Settings>> {
        let (issuer, id, secret) =
            (&self.proconnect_issuer, &self.proconnect_client_id, &self.proconnect_client_secret_file);
        let (Some(issuer), Some(client_id), Some(secret_file)) = (issuer, id, secret) else {
            anyhow::ensure!(
                issuer.is_none() && id.is_none() && secret.is_none() && self.proconnect_acr.is_empty(),
                "ProConnect needs --proconnect-issuer, --proconnect-client-id and --proconnect-client-secret-file \
                 together (missing: {})",
                [
                    issuer.is_none().then_some("--proconnect-issuer"),
                    id.is_none().then_some("--proconnect-client-id"),
                    secret.is_none().then_some("--proconnect-client-secret-file"),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ")
            );
            return Ok(None);
        };
        let client_secret = std::fs::read_to_string(secret_file)
            .map_err(|e| anyhow::anyhow!("--proconnect-client-secret-file {}: {e}", secret_file.display()))?
            .trim()
            .to_string();
        Ok(Some(crate::console::proconnect::Settings {
            issuer: issuer.clone(),
            client_id: client_id.trim().to_string(),
            client_secret,
            acr: self.proconnect_acr.iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect(),
        }))
    }

    /// Whether e-mails go to the log: `--log-emails`, `auto` meaning on loopback without SMTP.
    pub fn emails_to_log(&self, listening: SocketAddr) -> bool {
        match self.log_emails {
            LogEmails::Yes => true,
            LogEmails::No => false,
            LogEmails::Auto => self.smtp_url.is_none() && listening.ip().is_loopback(),
        }
    }
}

/// The flags each command other than `serve` reads; its `--help` lists only those (every flag
/// is accepted anywhere, so that a command line may put them before or after the command).
const COMMAND_FLAGS: &[(&str, &[&str])] = &[
    ("migrate", &["database_url", "log"]),
    ("demarche", &["database_url", "log"]),
    ("snippet", &["public_url", "listen", "secret_file", "log"]),
    ("account", &["database_url", "public_url", "listen", "operator_name", "log"]),
    ("email", &["database_url", "log"]),
    (
        "notifications",
        &[
            "database_url",
            "public_url",
            "listen",
            "secret_file",
            "smtp_url",
            "smtp_from",
            "log_emails",
            "operator_name",
            "log",
        ],
    ),
];

/// The help of a command other than `serve` (or of one of its subcommands) when `args` ask for
/// it: that command with its own options and only the server flags it reads.
pub fn scoped_help(args: &[String]) -> Option<String> {
    use clap::CommandFactory;
    if !args.iter().any(|a| a == "--help" || a == "-h") {
        return None;
    }
    let words: Vec<&str> = args.iter().skip(1).map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    let top = Cli::command();
    let (name, flags) = COMMAND_FLAGS.iter().find(|(name, _)| words.first() == Some(name))?;
    let mut cmd = top.find_subcommand(name)?.clone();
    let mut path = vec![format!("{} {name}", top.get_name())];
    if let Some(sub) = words.get(1).and_then(|w| cmd.find_subcommand(w)).cloned() {
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    for arg in top.get_arguments().filter(|a| flags.contains(&a.get_id().as_str())) {
        cmd = cmd.arg(arg.clone().global(false));
    }
    let mut cmd = cmd.bin_name(path.join(" ")).disable_help_subcommand(true);
    Some(cmd.render_help().to_string())
}
