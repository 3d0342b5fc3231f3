//! A bare hyper server: the ceiling of our stack, for `scripts/bench.sh`.
//!
//! Same runtime, same hyper http1 connection settings as widget-server, answering every request
//! with the blue button's bytes and nothing else: no routing, no headers beyond hyper's own but
//! a content type and a fixed ETag (so that our loadtest, which fetches ETags at start, can drive
//! it as a same-run baseline for latency).
//! Whatever widget-server does on top of this is what the ratio in docs/BENCHMARKS.md measures.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

const SVG: &[u8] = include_bytes!("../../../assets/bouton-bleu.svg");

#[derive(Parser)]
struct Args {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Diagnosis: send the same headers as widget-server's button and use its connection
    /// settings (10 s header-read timeout, 16 KiB head, 64 KiB buffer), to measure what those
    /// cost on their own.
    #[arg(long)]
    like_widget_server: bool,
}

/// The headers widget-server sends with a button (DESIGN §8), values as it sends them
/// (`Content-Length` hyper adds by itself, as for widget-server).
const BUTTON_HEADERS: [(&str, &str); 6] = [
    ("etag", "\"a4dfb9e7cf91db1e56956bce4bc5cb6370a0047a4ccdd565a61b56dfa993cc0e\""),
    ("cache-control", "max-age=86400, s-maxage=604800, stale-while-revalidate=86400, stale-if-error=604800"),
    ("vary", "Accept-Encoding"),
    ("x-content-type-options", "nosniff"),
    ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'"),
    ("cross-origin-resource-policy", "cross-origin"),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("hello listening on http://{}", listener.local_addr()?);
    let like = args.like_widget_server;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |_req| async move {
                let mut res = Response::new(Full::new(Bytes::from_static(SVG)));
                let h = res.headers_mut();
                h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("image/svg+xml"));
                if like {
                    for (name, value) in BUTTON_HEADERS {
                        h.insert(header::HeaderName::from_static(name), header::HeaderValue::from_static(value));
                    }
                } else {
                    h.insert(header::ETAG, header::HeaderValue::from_static("\"hello\""));
                }
                Ok::<_, Infallible>(res)
            });
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).keep_alive(true);
            if like {
                builder
                    .header_read_timeout(widget_server::http::HEADER_READ_TIMEOUT)
                    .max_header_size(widget_server::http::MAX_HEAD_BYTES)
                    .max_buf_size(64 * 1024);
            }
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
