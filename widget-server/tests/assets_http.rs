//! The buttons and assets over real sockets: caching, compression and security headers of
//! DESIGN §8, as a CDN and browsers see them.

mod common;

use std::io::Read;

use common::*;
use hyper::Method;

const STABLE_CACHE: &str = "max-age=86400, s-maxage=604800, stale-while-revalidate=86400, stale-if-error=604800";

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b).read_to_end(&mut out).unwrap();
    out
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn buttons_are_served_for_edge_caching() {
    let server = Server::sqlite_with(&[], &[]);
    for style in ["bleu", "blanc"] {
        let on_disk = std::fs::read(format!("{}/../assets/bouton-{style}.svg", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let url = server.url(&format!("/static/bouton-{style}.svg"));

        // Plain GET: the identity bytes, every header of DESIGN §8.
        let (status, h, body) = get(&url, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(body.to_vec(), on_disk);
        assert_eq!(h["content-type"], "image/svg+xml");
        assert_eq!(h["content-length"], on_disk.len().to_string().as_str());
        assert_eq!(h["cache-control"], STABLE_CACHE);
        assert_eq!(h["vary"], "Accept-Encoding");
        assert_eq!(h["content-security-policy"], "default-src 'none'");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
        assert!(h.get("content-encoding").is_none());
        let etag = h["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"), "strong etag: {etag}");

        // gzip and brotli variants decode to the same bytes, with their own strong ETags.
        let (status, h, gz) = get(&url, &[("accept-encoding", "gzip")]).await;
        assert_eq!(status, 200);
        assert_eq!(h["content-encoding"], "gzip");
        assert_eq!(h["content-length"], gz.len().to_string().as_str());
        assert_eq!(gunzip(&gz), on_disk);
        assert_ne!(h["etag"], etag.as_str());
        let (status, h, br) = get(&url, &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(status, 200);
        assert_eq!(h["content-encoding"], "br");
        assert_eq!(unbrotli(&br), on_disk);
        assert!(br.len() < on_disk.len());
        let (_, h, _) = get(&url, &[("accept-encoding", "br;q=0, gzip")]).await;
        assert_eq!(h["content-encoding"], "gzip", "q=0 refuses brotli");

        // Revalidation: 304, no body, still the caching headers.
        let (status, h, body) = get(&url, &[("if-none-match", &etag)]).await;
        assert_eq!(status, 304);
        assert!(body.is_empty());
        assert_eq!(h["etag"], etag.as_str());
        assert_eq!(h["cache-control"], STABLE_CACHE);
        assert_eq!(h["vary"], "Accept-Encoding");
        let (status, _, _) = get(&url, &[("if-none-match", "\"something-else\", W/\"nope\"")]).await;
        assert_eq!(status, 200);
        let (status, _, _) =
            get(&url, &[("if-none-match", &format!("\"x\", {etag}")), ("accept-encoding", "gzip")]).await;
        assert_eq!(status, 304, "the identity ETag validates the gzip variant too");

        // HEAD: same headers, no body.
        let (status, h, body) = request(Method::HEAD, &url, &[("accept-encoding", "gzip")], "").await;
        assert_eq!(status, 200);
        assert!(body.is_empty());
        assert_eq!(h["content-encoding"], "gzip");
        assert_eq!(h["content-length"], gz.len().to_string().as_str());
        assert_eq!(h["cache-control"], STABLE_CACHE);
    }
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_unknown_ones_404() {
    let server = Server::sqlite_with(&[(5, "Démarche test")], &[]);
    let (_, _, page) = get(&server.url(&server.form_path(5)), &[]).await;
    let page = text(&page);
    let href = page.split("href=\"/static/avis.").nth(1).expect("form links a hashed stylesheet");
    let css_path = format!("/static/avis.{}", &href[..href.find('"').unwrap()]);
    let (status, h, css) = get(&server.url(&css_path), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(h["cache-control"], "max-age=31536000, immutable");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/css"));
    let on_disk = std::fs::read(format!("{}/../assets/avis.css", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(css.to_vec(), on_disk);

    let (status, _, _) = get(&server.url("/static/avis.css"), &[]).await;
    assert_eq!(status, 404, "our CSS is only served at its hashed URL");
    let (status, _, _) = get(&server.url("/static/../Cargo.toml"), &[]).await;
    assert_eq!(status, 404);
    let (status, _, _) = request(Method::POST, &server.url("/static/bouton-bleu.svg"), &[], "x").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let server = Server::sqlite_with(&[], &[]);
    let (status, _, body) = get(&server.url("/healthz"), &[]).await;
    assert_eq!((status.as_u16(), text(&body).as_str()), (200, "ok\n"));
    let (status, _, body) = get(&server.url("/readyz"), &[]).await;
    assert_eq!((status.as_u16(), text(&body).as_str()), (200, "ready\n"));
    let (status, h, body) = get(&server.url("/nulle-part"), &[]).await;
    assert_eq!(status, 404);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(text(&body).contains("Page introuvable"));
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let server = Server::sqlite_with(&[], &[]);
    let addr = server.addr;
    // One connection says nothing; another sends half a request head and stalls (slowloris).
    let check = move |partial: &'static [u8]| {
        std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(partial).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let started = Instant::now();
            let mut buf = Vec::new();
            // Ends with EOF when the server closes; an error here would be our 20 s timeout.
            s.read_to_end(&mut buf).expect("the server must close the connection");
            (started.elapsed(), String::from_utf8_lossy(&buf).into_owned())
        })
    };
    let idle = check(b"");
    let slow = check(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for (what, handle) in [("idle", idle), ("slow", slow)] {
        let (took, answer) = handle.join().unwrap();
        assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(15), "{what} closed after {took:?}");
        assert!(!answer.contains("200 OK"), "{what}: {answer}");
    }
}
