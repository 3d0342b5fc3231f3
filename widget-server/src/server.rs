//! The running server: [`route`] (method and path to handler) over the shared [`App`],
//! and [`serve`], which wires store, catalogue, buffer, flusher and background tasks together and
//! shuts them down in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::app::App;
use crate::catalogue::Lookup;
use crate::flush::{self, FlushOutcome, FlushSettings, Flusher};
use crate::form::{self, FieldErrors, FormView};
use crate::http::{self, html, shared_page, text, Body};
use crate::intake::{self, Refusal};
use crate::metrics::{Metrics, Rejection, RouteClass};
use crate::store::Store;
use crate::vote::Answers;

/// Cache-Control of the form and thank-you pages: they hold no per-visitor data.
const CACHE_PAGE: &str = "max-age=300, s-maxage=3600";
const PARTITIONS_CHECK: Duration = Duration::from_secs(3600);
const LIMITER_PRUNE: Duration = Duration::from_secs(60);
const STORE_PING: Duration = Duration::from_secs(2);
/// `/readyz` fails above this share of `--buffer-max-votes`, so a load balancer steers away
/// before citizens get 503s.
const READY_BUFFER_SHARE: f64 = 0.9;

/// The routes.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Static,
    Form(i64),
    Vote(i64),
    Merci(i64),
    /// `/Demarches/…` with an id that is not a démarche id.
    BadDemarche,
    Healthz,
    Readyz,
    Metrics,
    Other(&'a str),
}

fn parse_route(path: &str) -> Route<'_> {
    if path.starts_with("/static/") {
        return Route::Static;
    }
    match path {
        "/healthz" => return Route::Healthz,
        "/readyz" => return Route::Readyz,
        "/metrics" => return Route::Metrics,
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/Demarches/") else { return Route::Other(path) };
    let (id, tail) = rest.split_once('/').map_or((rest, None), |(a, b)| (a, Some(b)));
    // Digits only (no sign, no spaces), positive, fits the store's bigint.
    let id = match id.parse::<i64>() {
        Ok(n) if n > 0 && id.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Route::BadDemarche,
    };
    match tail {
        None | Some("") => Route::Form(id),
        Some("avis") => Route::Vote(id),
        Some("merci") => Route::Merci(id),
        Some(_) => Route::Other(path),
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n", "text/plain; charset=utf-8");
    res.headers_mut().insert(hyper::header::ALLOW, hyper::header::HeaderValue::from_static(allow));
    res
}

/// Answers one request, and counts it by route class and status class (DESIGN §11).
pub async fn route(app: Arc<App>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let (class, res) = dispatch(&app, peer, req).await;
    app.metrics.request(class, res.status().as_u16(), started.elapsed());
    res
}

/// The response to one request, and the class of its route.
async fn dispatch(app: &Arc<App>, peer: SocketAddr, req: Request<Incoming>) -> (RouteClass, Response<Body>) {
    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    match parse_route(req.uri().path()) {
        Route::Static if is_read => (
            RouteClass::button,
            app.assets
                .serve(req.uri().path(), req.headers())
                .unwrap_or_else(|| text(StatusCode::NOT_FOUND, "not found\n", "text/plain; charset=utf-8")),
        ),
        Route::Form(id) if is_read => {
            let link = form::parse_form_link(req.uri().query().unwrap_or(""));
            match &app.console {
                // No key: the démarche's public page, off the hot path (it reads the store).
                Some(console) if !link.wants_form => {
                    (RouteClass::observatory, console.handle(peer, req).await.map(http_body_util::Either::Right))
                }
                _ => (RouteClass::form, form_page(app, id, link, req.headers())),
            }
        }
        Route::Vote(id) if req.method() == Method::POST => {
            (RouteClass::vote, intake::post_vote(app, peer, id, req).await)
        }
        Route::Merci(id) if is_read => (
            RouteClass::merci,
            match app.catalogue.for_citizens(id) {
                Lookup::Open(d) => shared_page(req.headers(), form::merci_page(&app.chrome, &d), CACHE_PAGE),
                Lookup::AwaitingApproval => Refusal::NotYetOpen.response(app),
                Lookup::Unknown => Refusal::InvalidLink(Rejection::not_found).response(app),
            },
        ),
        Route::BadDemarche if is_read || req.method() == Method::POST => {
            let class = if req.method() == Method::POST {
                app.metrics.rejected(Rejection::not_found);
                RouteClass::vote
            } else {
                RouteClass::form
            };
            (class, Refusal::InvalidLink(Rejection::not_found).response(app))
        }
        Route::Healthz if is_read => (RouteClass::probe, text(StatusCode::OK, "ok\n", "text/plain; charset=utf-8")),
        Route::Readyz if is_read => (RouteClass::probe, readyz(app)),
        Route::Metrics if is_read => {
            app.metrics.buffered.set(app.buffer.held() as i64);
            (
                RouteClass::probe,
                text(
                    StatusCode::OK,
                    app.metrics.render(),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )
        }
        Route::Vote(_) => (RouteClass::vote, method_not_allowed("POST")),
        Route::Merci(_) => (RouteClass::merci, method_not_allowed("GET, HEAD")),
        Route::Form(_) | Route::BadDemarche => (RouteClass::form, method_not_allowed("GET, HEAD")),
        Route::Static => (RouteClass::button, method_not_allowed("GET, HEAD")),
        Route::Healthz | Route::Readyz | Route::Metrics => (RouteClass::probe, method_not_allowed("GET, HEAD")),
        Route::Other(path) => {
            let class = RouteClass::of_other(path);
            let res = match &app.console {
                Some(console) => console.handle(peer, req).await.map(http_body_util::Either::Right),
                None => html(
                    StatusCode::NOT_FOUND,
                    form::problem_page(
                        &app.chrome,
                        "Page introuvable",
                        &["Cette adresse ne correspond à aucune page."],
                    ),
                    "no-store",
                ),
            };
            (class, res)
        }
    }
}

/// The form of démarche `id`, or of its target if it was merged: the key always verifies
/// against `id`, and a target's form carries the target's own key, so the vote is its.
fn form_page(app: &App, id: i64, link: form::FormLink, req: &hyper::HeaderMap) -> Response<Body> {
    let demarche = match app.catalogue.for_citizens(id) {
        Lookup::Unknown => return Refusal::InvalidLink(Rejection::not_found).response(app),
        _ if !app.signer.verify(id as u64, &link.key) => return Refusal::InvalidLink(Rejection::bad_key).response(app),
        Lookup::AwaitingApproval => return Refusal::NotYetOpen.response(app),
        Lookup::Open(d) => d,
    };
    let target_key;
    let key = if demarche.id == id {
        &link.key
    } else {
        target_key = app.signer.sign(demarche.id as u64);
        &target_key
    };
    let view = FormView {
        chrome: &app.chrome,
        demarche: &demarche,
        key,
        source: link.source,
        answers: &Answers::default(),
        errors: &FieldErrors::default(),
    };
    shared_page(req, form::form_page(&view), CACHE_PAGE)
}

fn readyz(app: &App) -> Response<Body> {
    let mut problems = Vec::new();
    if app.is_shutting_down() {
        problems.push("shutting down".to_string());
    }
    if app.metrics.store_reachable.get() != 1 {
        problems.push("store unreachable".to_string());
    }
    let (held, max) = (app.buffer.held(), app.buffer.max_votes());
    if held as f64 >= max as f64 * READY_BUFFER_SHARE {
        problems.push(format!("buffer at {held} of {max} votes"));
    }
    if problems.is_empty() {
        text(StatusCode::OK, "ready\n", "text/plain; charset=utf-8")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, problems.join("; ") + "\n", "text/plain; charset=utf-8")
    }
}

/// Serves on `listener` until `shutdown` completes, then drains, flushes and (if it must) spills.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> FlushOutcome {
    let (deadline_tx, deadline_rx) = watch::channel(None);
    // Each flusher drains whatever is pending when it wakes, so several share the load without
    // coordination, and each owns the votes it drained until its store commits them.
    let flushers: Vec<_> = (0..app.config.flush_parallelism)
        .map(|_| {
            let flusher = Flusher::new(
                app.buffer.clone(),
                app.store.clone(),
                app.metrics.clone(),
                FlushSettings {
                    max_batch: app.config.flush_max_votes as usize,
                    interval: app.config.flush_interval(),
                    data_dir: app.config.data_dir.clone(),
                },
                deadline_rx.clone(),
                app.journal.clone(),
            );
            tokio::spawn(flusher.run())
        })
        .collect();
    let mut background = vec![
        tokio::spawn(refresh_catalogue(app.clone())),
        tokio::spawn(prune_limits(app.clone())),
        tokio::spawn(ping_store(app.clone())),
        tokio::spawn(crate::retention::run(app.store.clone(), app.metrics.clone(), app.config.retention_months)),
        tokio::spawn(prepare_partitions(app.store.clone(), app.metrics.clone())),
        tokio::spawn(flush::replay_files(
            flush::spill_files(&app.config.data_dir),
            app.store.clone(),
            app.config.flush_max_votes as usize,
        )),
    ];
    if let Some(console) = &app.console {
        background.extend(console.spawn_background());
        background.push(tokio::spawn(console.notifier.clone().every_minute(app.metrics.clone())));
    }
    let signalled = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let shutdown = {
        let (app, signalled) = (app.clone(), signalled.clone());
        async move {
            shutdown.await;
            app.begin_shutdown();
            if let Ok(mut s) = signalled.lock() {
                *s = Some(Instant::now());
            }
            let drain = app.config.shutdown_drain;
            if drain.is_zero() {
                tracing::info!("shutdown requested");
            } else {
                // Still listening and answering (votes included); only /readyz says we go.
                tracing::info!(drain = ?drain, "shutdown requested; /readyz answers 503 while requests are still served");
                tokio::time::sleep(drain).await;
                tracing::info!("drain over; closing the listening socket");
            }
        }
    };
    let timeout = app.config.shutdown_timeout;
    let handler = {
        let app = app.clone();
        move |peer, req| route(app.clone(), peer, req)
    };
    http::serve(listener, handler, shutdown, timeout.min(Duration::from_secs(10))).await;
    // Intake has stopped: from now on the flusher may give up at the deadline.
    let started = signalled.lock().ok().and_then(|s| *s).unwrap_or_else(Instant::now);
    let _ = deadline_tx.send(Some(started + timeout));
    for task in background {
        task.abort();
    }
    let mut outcome = FlushOutcome::AllStored;
    for flusher in flushers {
        let one = match flusher.await {
            Ok(outcome) => outcome,
            Err(e) => FlushOutcome::Lost { votes: 0, error: format!("flusher task failed: {e}") },
        };
        outcome = outcome.and(one);
    }
    if let Some(journal) = &app.journal {
        // Segments whose votes are all stored go now; any others stay for the next start.
        journal.close();
    }
    tracing::info!(?outcome, accepted = app.metrics.accepted_total(), "stopped");
    outcome
}

async fn refresh_catalogue(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.config.catalogue_refresh.max(Duration::from_millis(100)));
    tick.tick().await;
    loop {
        tick.tick().await;
        match app.store.demarches().await {
            Ok(list) => app.catalogue.replace(list),
            Err(e) => tracing::warn!(error = %e, "catalogue refresh failed; keeping the last one"),
        }
    }
}

/// Keeps the partitions of the coming months of `avis` ready (PostgreSQL), at start and then
/// every hour: the month after next exists long before its first vote, whatever replica
/// restarts when. `monavis_partitions_ready` says how the last check went.
async fn prepare_partitions(store: Arc<dyn Store>, metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval(PARTITIONS_CHECK);
    loop {
        tick.tick().await;
        match store.prepare_partitions(chrono::Utc::now(), crate::store::postgres::PARTITIONS_AHEAD).await {
            Ok(_) => {
                metrics.partitions_ready.set(1);
            }
            Err(e) => {
                metrics.partitions_ready.set(0);
                tracing::error!(error = %e, "partitions of the coming months not created; trying again in an hour");
            }
        }
    }
}

async fn prune_limits(app: Arc<App>) {
    let mut tick = tokio::time::interval(LIMITER_PRUNE);
    loop {
        tick.tick().await;
        app.limits.prune();
    }
}

async fn ping_store(app: Arc<App>) {
    let mut tick = tokio::time::interval(STORE_PING);
    loop {
        tick.tick().await;
        let ok = matches!(tokio::time::timeout(STORE_PING, app.store.ping()).await, Ok(Ok(())));
        app.metrics.store_reachable.set(i64::from(ok));
    }
}

/// Resolves on SIGTERM or SIGINT.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    // Registered now, not when first polled: a SIGTERM that comes while the server is still
    // migrating or loading its catalogue must start a clean shutdown, not kill it outright.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match term {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT will stop the server");
                    let _ = ctrl_c.await;
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(parse_route("/static/x"), Route::Static);
        assert_eq!(parse_route("/Demarches/42"), Route::Form(42));
        assert_eq!(parse_route("/Demarches/42/"), Route::Form(42));
        assert_eq!(parse_route("/Demarches/42/avis"), Route::Vote(42));
        assert_eq!(parse_route("/Demarches/42/merci"), Route::Merci(42));
        assert_eq!(parse_route("/Demarches/42/autre"), Route::Other("/Demarches/42/autre"));
        for bad in [
            "/Demarches/abc",
            "/Demarches/-1",
            "/Demarches/0",
            "/Demarches/+5",
            "/Demarches/99999999999999999999",
            "/Demarches/",
        ] {
            assert_eq!(parse_route(bad), Route::BadDemarche, "{bad}");
        }
        assert_eq!(parse_route("/healthz"), Route::Healthz);
        assert_eq!(parse_route("/"), Route::Other("/"));
    }
}
