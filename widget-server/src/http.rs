//! The HTTP edge: the accept loop (connection limits, timeouts, graceful shutdown) and small
//! response helpers. Routing lives in [`crate::server::route`]: a plain `match` on method and
//! path, no framework.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Every response body: bytes known in full on the hot path (pages are small and rendered at
/// once), or the console's body (axum's, which may stream).
pub type Body = Either<Full<Bytes>, axum::body::Body>;

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(bytes.into()))
}

/// Longest wait for a request's headers, including the wait for the next request on an idle
/// keep-alive connection: slow or idle clients do not hold a connection for long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a vote's body once its headers arrived.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections served at once; further ones wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 16_384;
/// Largest request head (request line and headers) read; a larger one gets 431. A browser's
/// head with our cookies is under 2 KiB; nginx's default allows a single header line of 8 KiB.
/// Without it hyper reads heads of over 100 kB before refusing them (its buffer limit), which
/// thousands of connections could turn into memory.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// `Content-Security-Policy` of our HTML pages: our own stylesheet, posts to ourselves, nothing
/// else; no framing (clickjacking a vote is pointless, but so is allowing it).
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                            frame-ancestors 'none'; base-uri 'none'";

/// An HTML response with the headers every page carries.
pub fn html(status: StatusCode, markup: maud::Markup, cache_control: &'static str) -> Response<Body> {
    let mut res = Response::new(full(markup.into_string()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// A page that is the same for everyone who opens the same URL (the form, merci): [`html`] with a
/// strong `ETag` of its bytes, and `304 Not Modified` to a client (a CDN revalidating a stale
/// copy) that already holds them. Costs one SHA-256 of the page, paid only on a CDN miss.
pub fn shared_page(req: &hyper::HeaderMap, markup: maud::Markup, cache_control: &'static str) -> Response<Body> {
    use sha2::{Digest, Sha256};
    let body = markup.into_string();
    let hash = hex::encode(&Sha256::digest(body.as_bytes())[..16]);
    let etag = HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a valid header value");
    let fresh = req.get_all(header::IF_NONE_MATCH).iter().any(|v| if_none_match_hits(v.as_bytes(), &hash));
    let mut res = html(StatusCode::OK, maud::PreEscaped(body), cache_control);
    if fresh {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        *res.body_mut() = full(Bytes::new());
        res.headers_mut().remove(header::CONTENT_TYPE);
    }
    res.headers_mut().insert(header::ETAG, etag);
    res
}

/// A plain-text response (health, metrics, operator-facing errors).
pub fn text(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// Serves connections from `listener` with `handler` until `shutdown` completes, then stops
/// accepting and lets in-flight requests finish for at most `drain`.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: impl Future<Output = ()>, drain: Duration)
where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let fut = handler(peer, req);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .keep_alive(true)
            .max_header_size(MAX_HEAD_BYTES)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("stopped accepting; finishing in-flight requests");
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(seconds = drain.as_secs(), "in-flight requests still running after the drain time; closing");
    }
}

/// Whether an `If-None-Match` list names any variant of the asset whose identity hash is `hash`
/// (weak comparison, as RFC 9110 §13.1.2 requires for If-None-Match). Variants differ only by
/// content coding, so a client holding the gzip variant is up to date for the brotli one too.
/// Whether an `If-None-Match` value names our entity tag `"{hash}"` (or one of its `-gz`/`-br`
/// variants, weak or strong, or `*`).
pub fn if_none_match_hits(inm: &[u8], hash: &str) -> bool {
    let Ok(inm) = std::str::from_utf8(inm) else { return false };
    inm.split(',').any(|tag| {
        let tag = tag.trim();
        if tag == "*" {
            return true;
        }
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
            return false;
        };
        let base = inner.strip_suffix("-gz").or_else(|| inner.strip_suffix("-br")).unwrap_or(inner);
        base == hash
    })
}
