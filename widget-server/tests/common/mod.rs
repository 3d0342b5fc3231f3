//! Shared helpers of the end-to-end tests: the real `widget-server` binary started as a child
//! process on a loopback port, a real HTTP client, and fresh PostgreSQL databases on the
//! ephemeral cluster that `scripts/test.sh` starts.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use snippet::KeySigner;

pub mod browser;
pub mod oidc;
pub mod webdriver;

pub const BIN: &str = env!("CARGO_BIN_EXE_widget-server");

/// The PostgreSQL cluster of the test run; PostgreSQL tests fail loudly without it.
pub fn pg_admin_url() -> String {
    std::env::var("MONAVIS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("MONAVIS_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, which starts an ephemeral PostgreSQL")
    })
}

/// A new, empty database on the test cluster; its URL.
pub async fn fresh_pg_database(name: &str) -> String {
    let admin = pg_admin_url();
    let client = widget_server::store::pg_tls::connect(&admin).await.expect("connect to the test cluster");
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("odd admin URL {admin}"),
    }
}

/// A PostgreSQL cluster of its own, for tests that stop and restart the database (they must not
/// disturb tests sharing the main cluster). Stopped when dropped.
pub struct OwnCluster {
    dir: tempfile::TempDir,
    pub url: String,
    /// What `pg.sh start` exported for it (name, value).
    exports: Vec<(String, String)>,
}

fn pg_script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh")
}

impl OwnCluster {
    pub fn start() -> OwnCluster {
        Self::start_with(&[])
    }

    /// A cluster with TLS on (`pg.sh start --ssl`): its certificate is for `localhost` only, signed
    /// by the CA of [`OwnCluster::var`]`("MONAVIS_TEST_PG_CA")`; the role `monavis_tls` of
    /// `MONAVIS_TEST_PG_TLS_URL` may connect over TLS only. Panics if it cannot be started.
    pub fn start_tls() -> OwnCluster {
        Self::start_with(&["--ssl"])
    }

    fn start_with(options: &[&str]) -> OwnCluster {
        let dir = tempfile::tempdir().unwrap();
        let cluster = dir.path().join("pg");
        let out = Command::new("bash").arg(pg_script_path()).arg("start").arg(&cluster).args(options).output().unwrap();
        assert!(out.status.success(), "pg.sh start {options:?}: {}", String::from_utf8_lossy(&out.stderr));
        let env = String::from_utf8(out.stdout).unwrap();
        let exports: Vec<(String, String)> = env
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut cluster = OwnCluster { dir, url: String::new(), exports };
        cluster.url = cluster.var("MONAVIS_TEST_DATABASE_URL");
        cluster
    }

    /// A streaming replica (hot standby) of this cluster (`pg.sh replica`), in a directory of
    /// its own; stopped when dropped. Panics if it cannot be made.
    pub fn replica(&self) -> OwnCluster {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(pg_script_path())
            .arg("replica")
            .arg(self.dir.path().join("pg"))
            .arg(dir.path().join("pg"))
            .output()
            .unwrap();
        assert!(out.status.success(), "pg.sh replica: {}", String::from_utf8_lossy(&out.stderr));
        let exports: Vec<(String, String)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut cluster = OwnCluster { dir, url: String::new(), exports };
        cluster.url = cluster.var("MONAVIS_TEST_DATABASE_URL");
        cluster
    }

    /// A variable `pg.sh start` exported for this cluster; panics if it did not.
    pub fn var(&self, name: &str) -> String {
        match self.exports.iter().find(|(k, _)| k == name) {
            Some((_, v)) => v.clone(),
            None => panic!("pg.sh start did not export {name}"),
        }
    }

    fn run(&self, cmd: &str) {
        let status =
            Command::new("bash").arg(pg_script_path()).arg(cmd).arg(self.dir.path().join("pg")).status().unwrap();
        assert!(status.success(), "pg.sh {cmd} failed");
    }

    /// Stops the server (the data stays).
    pub fn pause(&self) {
        self.run("pause");
    }

    /// Starts it again on the same port.
    pub fn resume(&self) {
        self.run("resume");
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(pg_script_path()).arg("stop").arg(self.dir.path().join("pg")).status();
    }
}

/// A widget-server process and its working directory (data dir, secret, SQLite file).
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub db_url: String,
    _tmp: Option<tempfile::TempDir>,
    stdout_lines: std::sync::mpsc::Receiver<String>,
}

/// Runs a `widget-server` subcommand in `dir` against `db_url`; panics on failure; its stdout.
pub fn cli(dir: &Path, db_url: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .args(["--database-url", db_url, "--log", "warn"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "widget-server {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

impl Server {
    /// A fresh working directory with an SQLite store.
    pub fn sqlite_dir() -> (tempfile::TempDir, String) {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/monavis.db", tmp.path().display());
        (tmp, url)
    }

    /// Starts the server in `dir` (created if needed) against `db_url` with extra flags.
    pub fn start_in(dir: &Path, db_url: &str, extra: &[&str]) -> Server {
        Self::start_with_stderr(dir, db_url, extra, Stdio::inherit())
    }

    /// Like [`Server::start_in`], with the server's log written to `dir/server.log` (see
    /// [`Server::log`]), for tests that check what it logs.
    pub fn start_logged(dir: &Path, db_url: &str, extra: &[&str]) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        Self::start_with_stderr(dir, db_url, extra, Stdio::from(log))
    }

    /// What the server logged so far (servers started with [`Server::start_logged`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn start_with_stderr(dir: &Path, db_url: &str, extra: &[&str], stderr: Stdio) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .args(["--listen", "127.0.0.1:0", "--database-url", db_url, "--log", "info"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("server did not say it listens");
        let addr = line.rsplit("http://").next().unwrap().trim().parse().unwrap();
        Server {
            child: Some(child),
            addr,
            dir: dir.to_path_buf(),
            db_url: db_url.to_string(),
            _tmp: None,
            stdout_lines: rx,
        }
    }

    /// Starts a server on a fresh SQLite store holding the given démarches (id, name).
    pub fn sqlite_with(demarches: &[(i64, &str)], extra: &[&str]) -> Server {
        let (tmp, url) = Self::sqlite_dir();
        for (id, name) in demarches {
            cli(tmp.path(), &url, &["demarche", "add", "--id", &id.to_string(), "--name", name]);
        }
        let mut s = Server::start_in(tmp.path(), &url, extra);
        s._tmp = Some(tmp);
        s
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Its resident set size in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The link signer of this server (its secret file).
    pub fn signer(&self) -> KeySigner {
        KeySigner::new(&std::fs::read(self.dir.join("data/secret")).unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The form link of a démarche, as a snippet would carry it (path and query).
    pub fn form_path(&self, id: i64) -> String {
        format!("/Demarches/{id}?view-mode=formulaire-avis&nd_source=button&key={}", self.signer().sign(id as u64))
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal_term();
        self.wait_exit()
    }

    /// Sends SIGTERM and returns at once (see [`Server::wait_exit`]).
    pub fn signal_term(&self) {
        let child = self.child.as_ref().expect("already stopped");
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM could not be sent");
    }

    /// Waits (up to 90 s) for the server to exit, after [`Server::signal_term`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("already stopped");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop within 90 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown, no flush, no spill; what was only in memory is gone.
    pub fn kill_hard(&mut self) {
        let mut child = self.child.take().expect("already stopped");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A metric value from `/metrics` (the first sample whose line starts with `name`).
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, _, body) = get(&self.url("/metrics"), &[]).await;
        let text = String::from_utf8(body.to_vec()).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.split(' ').next() == Some(name))
            .and_then(|l| l.rsplit(' ').next())
            .map(|v| v.parse().unwrap())
            .unwrap_or(0.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One request; (status, headers, body). Panics on transport errors.
pub async fn request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (StatusCode, HeaderMap, Bytes) {
    try_request(&client(), method, url, headers, body.into()).await.unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// One request on `client`; transport errors returned.
pub async fn try_request(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let res = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    request(Method::GET, url, headers, Bytes::new()).await
}

/// Posts a form body to the vote URL of `id`.
pub async fn post_vote(server: &Server, id: i64, body: &str) -> (StatusCode, HeaderMap, Bytes) {
    request(
        Method::POST,
        &server.url(&format!("/Demarches/{id}/avis")),
        &[("content-type", "application/x-www-form-urlencoded")],
        body.to_string(),
    )
    .await
}

/// A valid vote body for démarche `id` of `server`.
pub fn vote_body(server: &Server, id: i64, rest: &str) -> String {
    format!("key={}&nd_source=button&{rest}", server.signer().sign(id as u64))
}

pub fn text(b: &Bytes) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// The `i`-th of a family of varied valid vote bodies (all answers, optional parts, accents).
pub fn varied_vote(key: &str, i: usize) -> String {
    let sat = ["bien", "moyen", "pas-bien"][i % 3];
    let mut body = format!("key={key}&nd_source={}&satisfaction={sat}", ["button", "site", "email"][i % 3 / 2 + i % 2]);
    if !i.is_multiple_of(4) {
        body += &format!("&facilite={}", ["facile", "moyen", "difficile"][i / 3 % 3]);
    }
    if !i.is_multiple_of(5) {
        body += &format!("&clarte={}", ["clair", "moyen", "pas-clair"][i / 7 % 3]);
    }
    for (j, aide) in ["aucune", "proche", "association", "agent", "internet", "autre"].iter().enumerate() {
        if (i >> j) & 1 == 1 && i.is_multiple_of(3) {
            body += &format!("&aide={aide}");
        }
    }
    if i.is_multiple_of(6) {
        body += "&commentaire=Tr%C3%A8s+bien+expliqu%C3%A9%2C+merci+%C3%A0+l%27agent.";
    }
    body
}

/// Opens the store of `url` from the test, to count and recount.
pub async fn open_store(url: &str) -> std::sync::Arc<dyn widget_server::store::Store> {
    widget_server::store::open(url).await.unwrap()
}

/// Asserts `avis_daily` equals a recount from `avis` for each démarche, and the observatory's
/// rollup `avis_monthly` equals `avis_daily` summed by month; returns the total n.
pub async fn assert_aggregates(store: &std::sync::Arc<dyn widget_server::store::Store>, demarches: &[i64]) -> i64 {
    let mut n = 0;
    for &d in demarches {
        let daily = assert_rollup(store, d).await;
        assert_eq!(daily, store.recount(d).await.unwrap(), "aggregates of démarche {d} equal a recount");
        n += widget_server::stats::total(&daily).n;
    }
    n
}

/// Asserts `avis_monthly` of démarche `d` equals its `avis_daily` summed by month (no month
/// left over, none missing, none empty); returns its `avis_daily` rows.
pub async fn assert_rollup(
    store: &std::sync::Arc<dyn widget_server::store::Store>,
    d: i64,
) -> Vec<widget_server::stats::DailyRow> {
    let from = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let to = chrono::NaiveDate::from_ymd_opt(2100, 1, 1).unwrap();
    let daily = store.daily(d, from, to).await.unwrap();
    let expected: Vec<_> =
        widget_server::store::by_month(&daily).into_iter().map(|(_, month, counts)| (month, counts)).collect();
    assert_eq!(store.monthly(d).await.unwrap(), expected, "avis_monthly of démarche {d} equals avis_daily by month");
    daily
}

/// Posts a form body to `url` on `client`; transport errors returned.
pub async fn try_post_form(
    client: &HttpClient,
    url: &str,
    body: String,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    try_request(client, Method::POST, url, &[("content-type", "application/x-www-form-urlencoded")], Bytes::from(body))
        .await
}

/// Stops `server` with SIGTERM, expects a clean exit (every accepted vote stored), then checks
/// that the store holds exactly `expected` votes and that `avis_daily` agrees with a recount.
pub async fn stop_and_check_stored(server: &mut Server, demarches: &[i64], expected: usize) {
    let status = server.terminate();
    assert!(status.success(), "clean shutdown: {status}");
    let store = open_store(&server.db_url).await;
    assert_eq!(store.count_avis().await.unwrap() as usize, expected, "votes stored");
    assert_eq!(assert_aggregates(&store, demarches).await as usize, expected, "votes counted in avis_daily");
}

/// Waits (up to `within`) until the store of `db_url` holds at least `n` avis; how many it holds.
pub async fn wait_for_avis(db_url: &str, n: i64, within: Duration) -> i64 {
    let store = open_store(db_url).await;
    let deadline = Instant::now() + within;
    loop {
        let stored = store.count_avis().await.unwrap();
        if stored >= n || Instant::now() >= deadline {
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs SQL statements on the store of `db_url` from the test (to age a link, say).
pub async fn exec_sql(db_url: &str, sql: &str) {
    if let Some(path) = db_url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute_batch(sql).unwrap();
    } else {
        let client = widget_server::store::pg_tls::connect(db_url).await.unwrap();
        client.batch_execute(sql).await.unwrap();
    }
}
