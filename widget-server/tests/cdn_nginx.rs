//! A CDN in front (issue 12): nginx with `proxy_cache`, a stand-in edge, between the test and a
//! real `widget-server`. What the edge keeps, and for how long, is decided by the origin's own
//! `Cache-Control`, `ETag` and `Set-Cookie`; the edge has no path rules.
//!
//! - The buttons (stable and hashed URLs), the citizen form and the observatory (page, CSV, JSON,
//!   a démarche's public page) are a MISS once, then HITs that never reach the origin.
//! - Once stale they are revalidated with a conditional request the origin answers 304
//!   (REVALIDATED), and while the origin is down they are still served (STALE).
//! - Votes and console pages always reach the origin and are never kept; a vote through the
//!   edge is stored, and with the origin down it fails (502), never a fake success.
//!
//! Every request nginx makes to the origin passes through [`OriginTap`], a byte-for-byte relay
//! that notes it: the test counts origin hits itself instead of trusting `X-Cache-Status`.
//! Run with `--nocapture` to see the `X-Cache-Status` of every request.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use hyper::header::HeaderMap;
use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where Debian's `nginx` package puts the binary (`scripts/test.sh` installs it).
const NGINX: &str = "/usr/sbin/nginx";

/// Entries of the short-lived edge go stale this long after they were stored. nginx counts in
/// whole seconds, so an entry stored for `1s` is stale at most two seconds later.
const SHORT_TTL_WAIT: Duration = Duration::from_millis(2_200);

/// One request nginx made to the origin, as the tap saw it.
#[derive(Clone, Debug)]
struct OriginHit {
    method: String,
    /// Request target: path and query.
    target: String,
    /// Carried `If-None-Match` or `If-Modified-Since`.
    conditional: bool,
    /// The origin's status code.
    status: u16,
    /// The request head, lower-cased, for header checks.
    head: String,
}

/// A transparent TCP relay in front of the origin that records each request passing through.
/// nginx speaks HTTP/1.0 to its upstream unless told otherwise, so each connection carries one
/// request: its head is the first bytes in, the status line the first bytes out.
struct OriginTap {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<OriginHit>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl OriginTap {
    async fn start(origin: SocketAddr) -> OriginTap {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let hits = hits.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(relay(client, origin, hits.clone()));
                }
            })
        };
        OriginTap { addr, hits, accept }
    }

    /// The origin's requests for `target` so far.
    fn hits(&self, target: &str) -> Vec<OriginHit> {
        self.hits.lock().unwrap().iter().filter(|h| h.target == target).cloned().collect()
    }

    fn count(&self, target: &str) -> usize {
        self.hits(target).len()
    }

    fn last(&self, target: &str) -> OriginHit {
        self.hits(target).pop().unwrap_or_else(|| panic!("the origin never saw {target}"))
    }

    /// Stops listening: from now on nginx's connections to the origin are refused, as they are
    /// when the origin is down.
    async fn close(self) {
        self.accept.abort();
        // The listener is dropped once the aborted task is.
        let _ = self.accept.await;
    }
}

/// Relays one connection, noting its request line and the status line of the answer. A
/// connection the origin refuses is closed unanswered.
async fn relay(mut client: TcpStream, origin: SocketAddr, hits: Arc<Mutex<Vec<OriginHit>>>) {
    let Ok(mut upstream) = TcpStream::connect(origin).await else { return };
    let mut buf = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    if upstream.write_all(&head).await.is_err() {
        return;
    }
    let (mut client_in, mut client_out) = client.into_split();
    let (mut origin_in, mut origin_out) = upstream.into_split();
    let body = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_in, &mut origin_out).await;
        let _ = origin_out.shutdown().await;
    });
    let mut answer = Vec::new();
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match origin_in.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut request_line = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (request_line.next().unwrap_or(""), request_line.next().unwrap_or(""));
    let lower = head.to_lowercase();
    let status = String::from_utf8_lossy(&answer).split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    // Noted before nginx sees a byte of the answer, so a test that has its response sees the hit.
    hits.lock().unwrap().push(OriginHit {
        method: method.to_string(),
        target: target.to_string(),
        conditional: lower.contains("\r\nif-none-match:") || lower.contains("\r\nif-modified-since:"),
        status,
        head: lower,
    });
    if client_out.write_all(&answer).await.is_ok() {
        let _ = tokio::io::copy(&mut origin_in, &mut client_out).await;
    }
    let _ = client_out.shutdown().await;
    body.abort();
}

/// The ports of the three edges nginx runs, all in front of the same origin, each with a cache
/// of its own.
struct EdgePorts {
    /// As production runs it: the origin's headers alone decide what is kept and how long.
    main: u16,
    /// Test only, for public URLs only: every 200 goes stale after a second (the origin's
    /// Cache-Control is ignored, which would also keep no-store answers), so that revalidation and
    /// stale-if-error show within the test. Background updates off: the request that revalidates
    /// reports it in X-Cache-Status.
    short: u16,
    /// Test only, like `short` but with background updates, as production: once stale, a request
    /// gets the stale copy (STALE) and the revalidation happens after it.
    short_background: u16,
}

/// One edge's `server` block: pass to the origin with the client's host and address, keep
/// what the origin allows, revalidate with validators, serve stale copies on errors.
fn edge_server(port: u16, zone: &str, extra: &str) -> String {
    format!(
        "    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://monavis;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_cache {zone};
            proxy_cache_revalidate on;
            proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
{extra}
        }}
    }}
"
    )
}

/// nginx.conf for the edges in front of `origin`, with every file of nginx under `dir`.
fn nginx_config(dir: &Path, origin: SocketAddr, ports: &EdgePorts) -> String {
    let d = dir.display();
    // In the foreground, one process (no workers to orphan if the test dies). As root, nginx
    // would hand its cache and temp directories to `nobody`: keep them root's, like the temp dir.
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let user = if unsafe { libc::geteuid() } == 0 { "user root;" } else { "" };
    let short = "            proxy_ignore_headers Cache-Control Expires;\n            proxy_cache_valid 200 1s;\n";
    let edges = [
        (ports.main, "main", "            proxy_cache_background_update on;".to_string()),
        (ports.short, "short", format!("{short}            proxy_cache_background_update off;")),
        (ports.short_background, "short_background", format!("{short}            proxy_cache_background_update on;")),
    ];
    let mut caches = String::new();
    let mut servers = String::new();
    for (port, zone, extra) in &edges {
        caches += &format!(
            "    proxy_cache_path {d}/cache-{zone} levels=1:2 keys_zone={zone}:1m max_size=64m inactive=7d \
             use_temp_path=off;\n"
        );
        servers += &edge_server(*port, zone, extra);
    }
    format!(
        "daemon off;
master_process off;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    upstream monavis {{ server {origin}; }}
{caches}{servers}}}
"
    )
}

/// The nginx binary, or a loud failure.
fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect::<Vec<_>>())
        .unwrap_or_default();
    std::iter::once(PathBuf::from(NGINX)).chain(on_path).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("nginx not found ({NGINX} nor on PATH): run the tests with scripts/test.sh, which installs it")
    })
}

/// nginx running in the foreground as our child, its edges' addresses (see [`EdgePorts`]);
/// killed when dropped.
struct Edge {
    child: Child,
    dir: tempfile::TempDir,
    main: EdgeAddr,
    short: EdgeAddr,
    short_background: EdgeAddr,
}

/// Where one edge listens, and its name in the test's output.
#[derive(Clone, Copy)]
struct EdgeAddr {
    name: &'static str,
    addr: SocketAddr,
}

impl Edge {
    fn start(origin: SocketAddr) -> Edge {
        let nginx = nginx_binary();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let ports = EdgePorts { main: free_port(), short: free_port(), short_background: free_port() };
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_config(dir.path(), origin, &ports)).unwrap();
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nginx.display()));
        let local = |name, port| EdgeAddr { name, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        let mut edge = Edge {
            child,
            dir,
            main: local("main", ports.main),
            short: local("short", ports.short),
            short_background: local("short_background", ports.short_background),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while [edge.main, edge.short, edge.short_background]
            .iter()
            .any(|e| std::net::TcpStream::connect(e.addr).is_err())
        {
            if let Ok(Some(status)) = edge.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", edge.error_log());
            }
            assert!(Instant::now() < deadline, "nginx did not listen within 10 s:\n{}", edge.error_log());
            std::thread::sleep(Duration::from_millis(20));
        }
        edge
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer from the edge.
struct Answer {
    status: StatusCode,
    /// `X-Cache-Status`, empty when absent (the cache was not consulted).
    cache: String,
    headers: HeaderMap,
    body: Bytes,
}

/// One request to an edge, printed with its `X-Cache-Status`.
async fn via(edge: EdgeAddr, method: Method, path: &str, headers_sent: &[(&str, &str)], body: &str) -> Answer {
    let (status, headers, body) =
        request(method.clone(), &format!("http://{}{path}", edge.addr), headers_sent, body.to_string()).await;
    let cache = headers.get("x-cache-status").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let shown = if cache.is_empty() { "(none)" } else { &cache };
    let sent: String = headers_sent.iter().map(|(k, v)| format!(" [{k}: {v}]")).collect();
    println!("{:<16} {method} {path}{sent} -> {} X-Cache-Status: {shown}", edge.name, status.as_u16());
    Answer { status, cache, headers, body }
}

async fn get_via(edge: EdgeAddr, path: &str) -> Answer {
    via(edge, Method::GET, path, &[], "").await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// Never kept: the cache was not consulted (POST), or was and missed (no-store answers).
fn assert_not_cached(a: &Answer, what: &str) {
    assert!(["", "MISS", "BYPASS"].contains(&a.cache.as_str()), "{what}: X-Cache-Status {}", a.cache);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_in_front_caches_what_the_origin_allows() {
    let started = Instant::now();
    let mut server = Server::sqlite_with(
        &[(1, "Demande de carte grise"), (2, "Aide au logement")],
        &[
            "--flush-interval-ms",
            "50",
            "--rate-per-minute",
            "1000000",
            "--rate-per-minute-demarche",
            "1000000",
            "--trusted-proxies",
            "127.0.0.1/32",
        ],
    );
    let tap = OriginTap::start(server.addr).await;
    let edge = Edge::start(tap.addr);

    // What the edge may keep, by the origin's headers; `hashed_href` is the URL the snippets
    // and pages use for the content-hashed copies.
    let mut cacheable = vec!["/static/bouton-bleu.svg".to_string(), "/static/bouton-blanc.svg".to_string()];
    for stem in ["bouton-bleu", "bouton-blanc", "avis"] {
        cacheable.push(widget_server::assets::hashed_href(stem).expect("hashed asset URL"));
    }
    let mut citizen_pages = vec![server.form_path(1), "/Demarches/1/merci".to_string()];
    // Each language of the form is a URL of its own (DESIGN §17), so a cache entry of its own:
    // MISS once, HIT after, revalidated with 304 below, like the French one.
    for lang in snippet::Lang::ALL.into_iter().skip(1) {
        citizen_pages.push(format!("{}&lang={}", server.form_path(1), lang.code()));
    }
    citizen_pages.push("/Demarches/1/merci?lang=ar".to_string());
    cacheable.extend(citizen_pages.iter().cloned());
    for path in
        ["/observatoire", "/observatoire.csv", "/observatoire.json", "/observatoire.schema.json", "/Demarches/1"]
    {
        cacheable.push(path.to_string());
    }

    // The origin's own answers (straight, not through the tap), to compare with the edge's.
    let mut origin = Vec::new();
    for path in &cacheable {
        let (status, h, body) = get(&server.url(path), &[]).await;
        assert_eq!(status, 200, "{path} at the origin");
        let cc = header(&h, "cache-control");
        assert!(cc.contains("max-age") && !cc.contains("no-store") && !cc.contains("private"), "{path}: {cc}");
        assert!(h.get("set-cookie").is_none(), "{path} sets no cookie");
        assert!(h.contains_key("etag"), "{path} carries an ETag, so the edge can revalidate it");
        if let Some((_, code)) = path.split_once("lang=") {
            let page = String::from_utf8_lossy(&body).into_owned();
            assert!(page.contains(&format!("<html lang=\"{code}\"")), "{path} is in its language");
            assert!(
                !header(&h, "vary").to_ascii_lowercase().contains("accept-language"),
                "{path}: no Vary on the language"
            );
        }
        origin.push((path.clone(), body));
    }

    // 1. The production edge: a MISS that reaches the origin once, then HITs that do not.
    for (path, body) in &origin {
        let first = get_via(edge.main, path).await;
        assert_eq!((first.status, first.cache.as_str()), (StatusCode::OK, "MISS"), "{path}, first");
        assert_eq!(&first.body, body, "{path}: the origin's bytes");
        let hit = tap.last(path);
        assert_eq!((tap.count(path), hit.method.as_str(), hit.status), (1, "GET", 200), "{path}");
        for _ in 0..2 {
            let again = get_via(edge.main, path).await;
            assert_eq!((again.status, again.cache.as_str()), (StatusCode::OK, "HIT"), "{path}, again");
            assert_eq!(&again.body, body, "{path}: the same bytes from the cache");
        }
        assert_eq!(tap.count(path), 1, "{path}: HITs never reach the origin");
    }
    // The client's address and the public host reach the origin (without proxy_set_header Host,
    // nginx would send the upstream's name, `monavis`).
    let hit = tap.last("/observatoire");
    assert!(hit.head.contains("\r\nhost: 127.0.0.1\r\n"), "Host passed: {}", hit.head);
    assert!(hit.head.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"), "X-Forwarded-For set: {}", hit.head);

    // Vary: Accept-Encoding is part of the key: brotli is a variant of its own, kept beside the
    // identity bytes.
    let br = [("accept-encoding", "br")];
    let first = via(edge.main, Method::GET, "/static/bouton-bleu.svg", &br, "").await;
    assert_eq!((first.cache.as_str(), header(&first.headers, "content-encoding")), ("MISS", "br"));
    let again = via(edge.main, Method::GET, "/static/bouton-bleu.svg", &br, "").await;
    assert_eq!((again.cache.as_str(), header(&again.headers, "content-encoding")), ("HIT", "br"));
    assert_eq!(again.body, first.body);
    let plain = get_via(edge.main, "/static/bouton-bleu.svg").await;
    assert_eq!((plain.cache.as_str(), header(&plain.headers, "content-encoding")), ("HIT", ""));
    assert_eq!(tap.count("/static/bouton-bleu.svg"), 2, "one origin request per variant");

    // 2. Console pages: no-store (and a fresh CSRF cookie each time), so every request reaches
    // the origin and no visitor ever gets another's cookie.
    for path in ["/connexion", "/inscription", "/console"] {
        let mut cookies = Vec::new();
        for n in 1..=3 {
            let a = get_via(edge.main, path).await;
            assert_not_cached(&a, path);
            assert!(header(&a.headers, "cache-control").contains("no-store"), "{path}: the origin says no-store");
            assert_eq!(tap.count(path), n, "{path}: request {n} reached the origin");
            if path == "/console" {
                assert_eq!(a.status, StatusCode::SEE_OTHER, "/console without a session");
            } else {
                assert_eq!(a.status, StatusCode::OK, "{path}");
                cookies.push(header(&a.headers, "set-cookie").to_string());
            }
        }
        cookies.sort();
        cookies.dedup();
        assert_eq!(cookies.len(), if path == "/console" { 0 } else { 3 }, "{path}: a cookie of its own each time");
    }

    // 3. Votes: never from the cache, always to the origin, 303 and stored.
    let vote_path = "/Demarches/1/avis";
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let with_xff = [form[0], ("x-forwarded-for", "198.51.100.7")];
    for (n, (headers, answers)) in
        [(&form[..], "satisfaction=bien"), (&with_xff[..], "satisfaction=moyen")].iter().enumerate()
    {
        let a = via(edge.main, Method::POST, vote_path, headers, &vote_body(&server, 1, answers)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "vote {}: {}", n + 1, text(&a.body));
        assert_eq!(header(&a.headers, "location"), "/Demarches/1/merci");
        assert_not_cached(&a, "a vote");
        let hit = tap.last(vote_path);
        assert_eq!((tap.count(vote_path), hit.method.as_str(), hit.status), (n + 1, "POST", 303));
    }
    // nginx appends the address it saw to the client's X-Forwarded-For; the origin trusts the
    // 127.0.0.1 hops (--trusted-proxies) and takes the first address before them.
    let hit = tap.last(vote_path);
    assert!(hit.head.contains("\r\nx-forwarded-for: 198.51.100.7, 127.0.0.1\r\n"), "{}", hit.head);
    // The edge passes the browser's Sec-Fetch-Site on: a vote posted from another site is
    // refused by the origin behind it too.
    let cross_site = [form[0], ("sec-fetch-site", "cross-site")];
    let a = via(edge.main, Method::POST, vote_path, &cross_site, &vote_body(&server, 1, "satisfaction=bien")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", text(&a.body));
    assert_not_cached(&a, "a vote from another site");
    assert_eq!((tap.count(vote_path), tap.last(vote_path).status), (3, 403));
    assert_eq!(server.metric("monavis_votes_rejected_total{reason=\"cross_site\"}").await, 1.0);
    assert_eq!(wait_for_avis(&server.db_url, 2, Duration::from_secs(10)).await, 2, "both votes stored, once each");
    assert_eq!(server.metric("monavis_votes_accepted_total").await, 2.0);

    // 4. Revalidation, on the edges whose entries go stale after a second.
    for short in [edge.short, edge.short_background] {
        for (path, body) in &origin {
            let before = tap.count(path);
            let first = get_via(short, path).await;
            assert_eq!((first.cache.as_str(), &first.body), ("MISS", body), "{path}, first on {}", short.name);
            let again = get_via(short, path).await;
            assert_eq!((again.cache.as_str(), &again.body), ("HIT", body), "{path}, again on {}", short.name);
            assert_eq!(tap.count(path), before + 1, "{path}");
        }
    }
    tokio::time::sleep(SHORT_TTL_WAIT).await;
    // In the background, as production does it: the stale copy at once, then the same request
    // to the origin as below.
    for (path, body) in &origin {
        let before = tap.count(path);
        let stale = get_via(edge.short_background, path).await;
        assert_eq!((stale.status, stale.cache.as_str(), &stale.body), (StatusCode::OK, "STALE", body), "{path}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while tap.count(path) == before {
            assert!(Instant::now() < deadline, "{path}: no background revalidation within 5 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let hit = tap.last(path);
        assert_eq!((hit.conditional, hit.status), (true, 304), "{path}: revalidated with 304");
        // The entry is updated once the background request is done.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let fresh = get_via(edge.short_background, path).await;
            assert_eq!(&fresh.body, body, "{path}");
            if fresh.cache == "HIT" {
                break;
            }
            assert!(Instant::now() < deadline, "{path} not fresh again after its background update: {}", fresh.cache);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(tap.count(path), before + 1, "{path}: one background request");
    }
    // In the foreground: the request that revalidates says so.
    for (path, body) in &origin {
        let before = tap.count(path);
        let stale = get_via(edge.short, path).await;
        assert_eq!((stale.status, &stale.body), (StatusCode::OK, body), "{path} once stale");
        assert_eq!(tap.count(path), before + 1, "{path}: one request to the origin");
        let hit = tap.last(path);
        // The stored ETag sent back as If-None-Match; nothing changed, so 304 and no body.
        assert_eq!(stale.cache, "REVALIDATED", "{path}");
        assert!(hit.conditional && hit.status == 304, "{path}: conditional request answered 304: {hit:?}");
        let fresh = get_via(edge.short, path).await;
        assert_eq!((fresh.cache.as_str(), &fresh.body), ("HIT", body), "{path}, fresh again");
    }

    // 5. The origin goes down once the short edge's copies are stale.
    tokio::time::sleep(SHORT_TTL_WAIT).await;
    let status = server.terminate();
    assert!(status.success(), "clean shutdown: {status}");
    tap.close().await;
    for (path, body) in &origin {
        // stale-if-error: the last good copy, whole.
        let stale = get_via(edge.short, path).await;
        assert_eq!((stale.status, stale.cache.as_str()), (StatusCode::OK, "STALE"), "{path} with the origin down");
        assert_eq!(&stale.body, body, "{path}: the last good bytes");
        // Still fresh on the production edge (s-maxage of an hour or a week).
        let hit = get_via(edge.main, path).await;
        assert_eq!((hit.status, hit.cache.as_str(), &hit.body), (StatusCode::OK, "HIT", body), "{path}");
    }
    // Nothing stale to fall back on for what is never kept: errors, never a fake success.
    let vote = via(edge.main, Method::POST, vote_path, &form, &vote_body(&server, 1, "satisfaction=bien")).await;
    assert!(matches!(vote.status.as_u16(), 502 | 504), "a vote with the origin down: {}", vote.status);
    assert_not_cached(&vote, "a vote with the origin down");
    let login = get_via(edge.main, "/connexion").await;
    assert!(matches!(login.status.as_u16(), 502 | 504), "/connexion with the origin down: {}", login.status);
    assert_eq!(open_store(&server.db_url).await.count_avis().await.unwrap(), 2, "no vote was invented");

    assert!(edge.error_log().contains("upstream"), "nginx logged the origin failures");
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
}
