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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("hello listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req| async {
                let mut res = Response::new(Full::new(Bytes::from_static(SVG)));
                res.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("image/svg+xml"));
                res.headers_mut().insert(header::ETAG, header::HeaderValue::from_static("\"hello\""));
                Ok::<_, Infallible>(res)
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
