//! The porteurs' console (DESIGN §10): accounts, and the pages every later screen lives in.
//! Never imported by the hot path: `server::route` hands it every request that is not a button,
//! a form, a vote or a probe, and it answers through axum (extractors, per-group guards).
//!
//! # Layout
//!
//! - [`routes`]: every URL of the console in one table, grouped by who may reach it.
//! - [`guard`]: the layers: security headers, session loading, the `Origin`/CSRF check of every
//!   state-changing request, « signed in » and « administrator » guards.
//! - [`pages`]: one module per screen, handlers named `<screen>_get` / `<screen>_post`.
//! - [`layout`]: the French layout and shared form pieces.
//! - [`store`]: the [`store::ConsoleStore`] trait and its PostgreSQL and SQLite backends.
//! - [`api`]: the JSON API (`/api/v1/…`), read with Bearer keys created in « Mon compte ».
//! - [`import`]: `widget-server demarche import`, an operator's catalogue file checked row by row.
//! - [`password`], [`secret`], [`limit`], [`mail`], [`emails`]: argon2id, random secrets stored
//!   hashed, rate limits of the account forms, the mail backend and the French e-mails.
//! - [`cookies`]: the cookies' names (`__Host-` behind https), the signed pre-log-in CSRF
//!   cookie, the « appareil connu » device cookie and the ProConnect flow cookie.
//! - [`proconnect`]: ProConnect's relying party (DESIGN §16): discovery, tokens, log-out URL; its
//!   pages are [`pages::proconnect`].
//! - [`observatory`], [`open_data`]: the public observatory's figures; its open data's columns
//!   and their Table Schema.
//! - [`spreadsheet`]: the cells of exports and open data, never read as formulas.
//! - [`notifications`]: digests and alerts mailed to porteurs, once each, and unsubscribe links.

pub mod api;
pub mod chart;
pub mod cookies;
pub mod emails;
pub mod guard;
pub mod import;
pub mod layout;
pub mod limit;
pub mod mail;
pub mod notifications;
pub mod observatory;
pub mod open_data;
pub mod pages;
pub mod password;
pub mod proconnect;
pub mod routes;
pub mod secret;
pub mod spreadsheet;
pub mod store;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use ipnet::IpNet;
use maud::Markup;
use tower::ServiceExt;

use self::cookies::{CookieNames, CookieSigner};
use self::layout::Chrome;
use self::mail::Mailer;
use self::password::Passwords;
use self::store::{Account, ConsoleStore, SessionRow};
use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::store::Store;
use snippet::KeySigner;

/// Largest form body the console reads.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// How long a confirmation link is valid.
pub const CONFIRM_VALIDITY: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// How long a reset link is valid.
pub const RESET_VALIDITY: chrono::TimeDelta = chrono::TimeDelta::hours(2);

/// What the console takes from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--public-url` without a trailing slash: links in e-mails.
    pub public_url: String,
    /// Its origin (`scheme://host[:port]`), which `Origin` headers must match.
    pub public_origin: String,
    /// `Secure` cookies: the public URL is https.
    pub secure_cookies: bool,
    /// The cookies' names: `__Host-` prefixed with `secure_cookies`.
    pub cookies: CookieNames,
    pub operator_name: String,
    pub operator_marianne: bool,
    pub session_idle: Duration,
    pub session_max_age: Duration,
    pub trusted_proxies: Vec<IpNet>,
}

impl Settings {
    /// From the server's configuration.
    pub fn from_config(config: &Config) -> Settings {
        let public_url = config.public_url().trim_end_matches('/').to_string();
        let public_origin = match public_url.find("://") {
            Some(i) => {
                let rest = &public_url[i + 3..];
                let host_end = rest.find('/').unwrap_or(rest.len());
                format!("{}{}", &public_url[..i + 3], &rest[..host_end]).to_ascii_lowercase()
            }
            None => public_url.clone(),
        };
        let secure_cookies = public_url.starts_with("https://");
        Settings {
            secure_cookies,
            cookies: CookieNames::new(secure_cookies),
            public_url,
            public_origin,
            operator_name: config.operator_name.clone(),
            operator_marianne: config.operator_marianne,
            session_idle: config.session_idle_timeout,
            session_max_age: config.session_max_age,
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }
}

/// The console's shared state.
pub struct Console {
    pub settings: Settings,
    pub store: Arc<dyn ConsoleStore>,
    pub mailer: Arc<Mailer>,
    pub passwords: Passwords,
    pub limits: limit::AuthLimits,
    /// Hashed URLs of avis.css and console.css.
    pub css: [String; 2],
    /// The démarche catalogue the hot path reads: reloaded at once when the console changes a
    /// démarche, so its form link works in this process without waiting for the refresh.
    pub catalogue: Arc<Catalogue>,
    /// The vote store, only to reload the catalogue (one small query).
    pub votes: Arc<dyn Store>,
    /// Signs form links, for the « Code à intégrer ».
    pub signer: KeySigner,
    /// Signs the pre-log-in CSRF cookie and the « appareil connu » device cookie.
    pub cookie_signer: CookieSigner,
    /// The public observatory's figures, computed at most every few minutes.
    pub observatory: Arc<observatory::Cache>,
    /// ProConnect log-in (DESIGN §16), when `--proconnect-*` are set.
    pub proconnect: Option<Arc<proconnect::ProConnect>>,
    /// Sends the notifications due (every minute: `server` spawns [`notifications::Notifier::every_minute`]).
    pub notifier: Arc<notifications::Notifier>,
    router: std::sync::OnceLock<axum::Router>,
}

/// Who is looking at a page: set on every console request by [`guard::load_session`].
#[derive(Clone, Debug)]
pub enum Viewer {
    /// Not signed in; `csrf` is the value of the (signed) CSRF cookie. `expired` when a session cookie
    /// came with the request but its session has ended.
    Anonymous {
        csrf: String,
        expired: bool,
    },
    SignedIn {
        session: Arc<SessionRow>,
        token_hash: [u8; 32],
    },
}

impl Viewer {
    /// The signed-in account, if any.
    pub fn account(&self) -> Option<&Account> {
        match self {
            Viewer::SignedIn { session, .. } => Some(&session.account),
            Viewer::Anonymous { .. } => None,
        }
    }

    /// The CSRF token forms of this page must carry.
    pub fn csrf(&self) -> &str {
        match self {
            Viewer::SignedIn { session, .. } => &session.csrf,
            Viewer::Anonymous { csrf, .. } => csrf,
        }
    }
}

/// The TCP peer of a console request (inserted by [`Console::handle`]).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// What most handlers need: the console, who is looking, the page path, the client address.
pub struct Ctx {
    pub console: Arc<Console>,
    pub viewer: Viewer,
    pub path: String,
    pub client: IpAddr,
}

impl FromRequestParts<Arc<Console>> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Self, Self::Rejection> {
        let viewer = parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .unwrap_or(Viewer::Anonymous { csrf: String::new(), expired: false });
        let peer = parts.extensions.get::<Peer>().map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
        let client = crate::limit::client_ip(peer, &parts.headers, &console.settings.trusted_proxies);
        Ok(Ctx { console: console.clone(), viewer, path: parts.uri.path().to_string(), client })
    }
}

impl Ctx {
    /// A page in the console's layout.
    pub fn render(&self, status: StatusCode, title: &str, main: Markup) -> Response {
        layout::respond(status, self.console.page(&self.viewer, &self.path, title, main))
    }

    /// The signed-in account (route guards guarantee there is one on signed-in routes).
    pub fn account(&self) -> Result<&Account, Problem> {
        self.viewer.account().ok_or_else(Problem::forbidden)
    }
}

/// A problem page (404, 403, 429, 503…), rendered in the layout by [`guard::load_session`],
/// which knows the viewer.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub paragraphs: Vec<String>,
    /// `Retry-After` in seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// What to do next: (link text, path); the home page when `None`.
    pub link: Option<(&'static str, &'static str)>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, paragraph: impl Into<String>) -> Problem {
        Problem { status, title, paragraphs: vec![paragraph.into()], retry_after: None, link: None }
    }

    pub fn not_found() -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "Page introuvable", "Cette adresse ne correspond à aucune page.")
    }

    pub fn forbidden() -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "Accès refusé", "Votre compte ne permet pas d'accéder à cette page.")
    }

    /// Too many tries: 429 with `Retry-After`.
    pub fn too_many(wait: Duration) -> Problem {
        let secs = wait.as_secs().max(1);
        let minutes = secs.div_ceil(60);
        Problem {
            status: StatusCode::TOO_MANY_REQUESTS,
            title: "Trop de tentatives",
            paragraphs: vec![format!(
                "Vous avez fait trop de tentatives en peu de temps. Pour votre sécurité, réessayez dans {} minute{}.",
                minutes,
                if minutes > 1 { "s" } else { "" }
            )],
            retry_after: Some(secs),
            link: None,
        }
    }

    /// The store cannot be reached: 503 with `Retry-After`. The cause goes to the log.
    pub fn unavailable(error: &dyn std::fmt::Display) -> Problem {
        tracing::warn!(error = %error, "console: store unavailable");
        Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Service momentanément indisponible",
            paragraphs: vec![
                "L'espace porteurs ne peut pas répondre pour le moment. Réessayez dans quelques instants.".into(),
                "Les avis des usagers continuent d'être recueillis normalement.".into(),
            ],
            retry_after: Some(30),
            link: None,
        }
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        Problem::unavailable(&e)
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Problem {
        tracing::error!(error = %e, "console: internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Erreur du service",
            "Une erreur inattendue est survenue. Réessayez dans quelques instants.",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// Handlers answer a page or a problem.
pub type Answer = Result<Response, Problem>;

impl Console {
    /// Opens the console's own store connection(s), prepares passwords and mail.
    pub async fn start(
        config: &Config,
        listening: SocketAddr,
        css: [String; 2],
        catalogue: Arc<Catalogue>,
        votes: Arc<dyn Store>,
        secret: &[u8],
        metrics: Arc<crate::metrics::Metrics>,
    ) -> anyhow::Result<Arc<Console>> {
        let settings = Settings::from_config(config);
        let store = store::open_with_reads(&config.database_url(), config.database_read_url.as_deref()).await?;
        let from = config.smtp_from.clone().unwrap_or_else(|| default_from(&settings));
        let to_log = config.emails_to_log(listening);
        let mailer = Arc::new(Mailer::new(store.clone(), metrics.clone(), config.smtp_url.as_deref(), &from, to_log)?);
        if config.smtp_url.is_none() && !to_log {
            tracing::warn!(
                "no --smtp-url: the console's e-mails (confirmation and reset links, invitations) are NOT sent; \
                 they wait in the email_outbox table (widget-server email list). Set --smtp-url to send them."
            );
        } else if to_log {
            tracing::info!("e-mails are printed to this log (--log-emails)");
        }
        let proconnect = match config.proconnect()? {
            Some(pc) => {
                let pc = proconnect::ProConnect::new(pc, &settings.public_url)?;
                tracing::info!(
                    issuer = pc.issuer(),
                    redirect_uri = pc.redirect_uri(),
                    post_logout_redirect_uri = pc.post_logout_redirect_uri(),
                    "ProConnect log-in offered (declare these two URIs to ProConnect)"
                );
                Some(Arc::new(pc))
            }
            None => None,
        };
        let notifier = Arc::new(notifications::Notifier::new(
            store.clone(),
            mailer.clone(),
            &settings.public_url,
            &settings.operator_name,
            secret,
        ));
        let console = Arc::new(Console {
            notifier,
            settings,
            store,
            mailer,
            passwords: Passwords::new().await?,
            limits: limit::AuthLimits::default(),
            css,
            catalogue,
            votes,
            signer: KeySigner::new(secret),
            cookie_signer: CookieSigner::new(secret),
            observatory: Arc::default(),
            proconnect,
            router: std::sync::OnceLock::new(),
        });
        let _ = console.router.set(routes::router(console.clone()));
        Ok(console)
    }

    /// Answers one console request.
    pub async fn handle<B>(&self, peer: SocketAddr, req: axum::http::Request<B>) -> Response
    where
        B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let Some(router) = self.router.get() else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(Peer(peer));
        match router.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }

    /// A page in the layout, for `viewer`.
    pub fn page(&self, viewer: &Viewer, path: &str, title: &str, main: Markup) -> Markup {
        let chrome = Chrome {
            operator: &self.settings.operator_name,
            marianne: self.settings.operator_marianne,
            css: [&self.css[0], &self.css[1]],
            viewer,
            path,
        };
        layout::page(&chrome, title, main)
    }

    /// Reloads the catalogue after a change (this process at once; other replicas within their
    /// refresh interval).
    pub async fn reload_catalogue(&self) -> Result<(), crate::store::StoreError> {
        self.catalogue.replace(self.votes.demarches().await?);
        Ok(())
    }

    /// Background work: mail retries and the outbox's metrics, expired sessions and links,
    /// limiter pruning.
    pub fn spawn_background(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let purge = {
            let me = self.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    me.limits.prune();
                    let now = Utc::now();
                    let idle = chrono::TimeDelta::from_std(me.settings.session_idle).unwrap_or(chrono::TimeDelta::MAX);
                    let max =
                        chrono::TimeDelta::from_std(me.settings.session_max_age).unwrap_or(chrono::TimeDelta::MAX);
                    let (idle_before, created_before) =
                        (now.checked_sub_signed(idle).unwrap_or(now), now.checked_sub_signed(max).unwrap_or(now));
                    if let Err(e) = me.store.purge_expired(idle_before, created_before, now).await {
                        tracing::warn!(error = %e, "console: cannot purge expired sessions");
                    }
                }
            }
        };
        vec![
            tokio::spawn(self.mailer.clone().retry_unsent()),
            tokio::spawn(self.mailer.clone().outbox_metrics()),
            tokio::spawn(purge),
        ]
    }
}

/// `"{operator}" <ne-pas-repondre@{host of --public-url}>`, or `@localhost` when that host is
/// an address rather than a name.
pub(crate) fn default_from(s: &Settings) -> String {
    let host = s.public_origin.split("://").nth(1).unwrap_or("localhost");
    let host =
        host.rsplit_once(':').map_or(host, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
    let host =
        if host.parse::<IpAddr>().is_ok() || host.starts_with('[') || !host.contains('.') { "localhost" } else { host };
    let name: String = s.operator_name.chars().filter(|c| !matches!(c, '"' | '\\' | '<' | '>')).collect();
    format!("\"{name}\" <ne-pas-repondre@{host}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> Settings {
        let cli = crate::config::Cli::parse_from([&["widget-server"][..], args].concat());
        Settings::from_config(&cli.config)
    }

    #[test]
    fn origin_and_cookie_security_follow_the_public_url() {
        let s = settings(&["--public-url", "https://Avis.Example.fr/base/"]);
        assert_eq!(
            (s.public_url.as_str(), s.public_origin.as_str()),
            ("https://Avis.Example.fr/base", "https://avis.example.fr")
        );
        assert!(s.secure_cookies);
        assert_eq!(s.cookies.session, "__Host-monavis_session");
        let s = settings(&["--public-url", "http://127.0.0.1:8080"]);
        assert_eq!(s.public_origin, "http://127.0.0.1:8080");
        assert!(!s.secure_cookies);
        assert_eq!(s.cookies.session, "monavis_session");
    }

    #[test]
    fn sender_defaults_to_the_public_host() {
        assert_eq!(
            default_from(&settings(&["--public-url", "https://avis.example.fr", "--operator-name", "Mon \"avis\""])),
            "\"Mon avis\" <ne-pas-repondre@avis.example.fr>"
        );
        assert_eq!(default_from(&settings(&[])), "\"monavis\" <ne-pas-repondre@localhost>");
    }
}
