//! deploy/prometheus/ against the real thing (DESIGN §11, issue 23): `promtool test rules` runs
//! the rules' unit tests; then Debian's Prometheus, on loopback with the rule file, scrapes a real
//! server (on a PostgreSQL cluster of the test's own) every second while votes, refused votes and
//! console requests come in. Every rule must evaluate without error, every query of the Grafana
//! dashboard must return data, and stopping PostgreSQL must fire MonavisStoreUnreachable.
//!
//! Needs `prometheus` and `promtool` (Debian's prometheus package; scripts/test.sh installs it).
//! Every wait is bounded. The rules are loaded with their `for:` durations cut to 3 s, so the
//! store alert fires in seconds rather than after its minute; the unit tests check the real ones.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

/// A Debian binary, or a loud failure saying how to get it.
fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: apt-get install prometheus (scripts/test.sh does)")
}

/// The Prometheus server, killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts on a free loopback port, scraping `target` every second and evaluating `rules`
    /// every second.
    async fn start(target: std::net::SocketAddr, rules: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alerts.yml"), rules).unwrap();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\n\
                 scrape_configs:\n  - job_name: monavis\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary("prometheus"))
            .current_dir(dir.path())
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let p = Prometheus { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready =
                try_request(&client(), hyper::Method::GET, &format!("{}/-/ready", p.base), &[], bytes::Bytes::new())
                    .await
                    .map(|r| r.0 == 200)
                    .unwrap_or(false);
            if ready {
                return p;
            }
            let log = std::fs::read_to_string(p._dir.path().join("prometheus.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "Prometheus did not become ready:\n{log}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `GET /api/v1/{path}`: its `data`.
    async fn api(&self, path: &str) -> Value {
        let (status, _, body) = get(&format!("{}/api/v1/{path}", self.base), &[]).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status.as_u16(), v["status"].as_str()), (200, Some("success")), "{path}: {v}");
        v["data"].clone()
    }

    /// An instant query's result vector.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let q = serde_urlencoded::to_string([("query", expr)]).unwrap();
        self.api(&format!("query?{q}")).await["result"].as_array().cloned().unwrap_or_default()
    }
}

/// The rule file with every `for:` cut to 3 s.
fn rules_for_the_test() -> String {
    let text = std::fs::read_to_string(deploy_dir().join("alerts.yml")).unwrap();
    let cut: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 3s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect();
    cut.join("\n") + "\n"
}

/// Every query of the dashboard, with Grafana's variables as a Prometheus query needs them.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy_dir().join("grafana-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let expr = expr.replace("$__rate_interval", "15s").replace("$instance", ".*");
            assert!(!expr.contains('$'), "a variable the test does not know: {expr}");
            out.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    out
}

#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    for args in [&["check", "rules", "alerts.yml"][..], &["test", "rules", "alerts.test.yml"][..]] {
        let out = Command::new(binary("promtool")).args(args).current_dir(deploy_dir()).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_evaluates_every_rule_and_dashboard_query_and_sees_the_store_go() {
    let cluster = Arc::new(tokio::task::spawn_blocking(OwnCluster::start).await.unwrap());
    let tmp = tempfile::tempdir().unwrap();
    cli(tmp.path(), &cluster.url, &["demarche", "add", "--id", "1", "--name", "Carte grise"]);
    let open = ["--rate-per-minute", "1000000000", "--rate-per-minute-demarche", "1000000000"];
    let server = Server::start_logged(tmp.path(), &cluster.url, &[&open[..], &["--flush-interval-ms", "100"]].concat());

    // Traffic of every kind the dashboard shows, until the test ends: votes (stored, so the
    // flush metrics move), refused votes, console, API and observatory pages.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, base, key) = (stop.clone(), server.url(""), server.signer().sign(1));
        tokio::spawn(async move {
            let c = client();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let vote = format!("{base}/Demarches/1/avis");
                let form = [("content-type", "application/x-www-form-urlencoded")];
                let _ = try_request(&c, hyper::Method::POST, &vote, &form, varied_vote(&key, i).into()).await;
                if i.is_multiple_of(5) {
                    let _ = try_request(&c, hyper::Method::POST, &vote, &form, "satisfaction=bien&key=0".into()).await;
                    let cross = [form[0], ("sec-fetch-site", "cross-site")];
                    let _ = try_request(&c, hyper::Method::POST, &vote, &cross, varied_vote(&key, i).into()).await;
                    for path in ["/connexion", "/api/v1/demarches", "/observatoire", "/static/bouton-bleu.svg"] {
                        let _ = try_request(&c, hyper::Method::GET, &format!("{base}{path}"), &[], bytes::Bytes::new())
                            .await;
                    }
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let prometheus = Prometheus::start(server.addr, &rules_for_the_test()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Scraped.
    loop {
        let up = prometheus.query("up{job=\"monavis\"}").await;
        if up.first().and_then(|s| s["value"][1].as_str()) == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus never scraped the server: {up:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Every rule evaluated, without error.
    let expected_rules = std::fs::read_to_string(deploy_dir().join("alerts.yml")).unwrap().matches("- alert: ").count();
    loop {
        let groups = prometheus.api("rules").await["groups"].clone();
        let rules: Vec<Value> =
            groups.as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap().clone()).collect();
        assert_eq!(rules.len(), expected_rules, "every rule of alerts.yml is loaded");
        for r in &rules {
            assert_ne!(r["health"], "err", "rule {} failed: {}", r["name"], r["lastError"]);
        }
        if rules.iter().all(|r| r["health"] == "ok") {
            break;
        }
        assert!(Instant::now() < deadline, "rules not evaluated in time: {rules:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Every query of the dashboard returns data (a few scrapes are needed for rates).
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let mut empty = queries.clone();
    while !empty.is_empty() {
        let mut still = Vec::new();
        for (title, expr) in empty {
            if prometheus.query(&expr).await.is_empty() {
                still.push((title, expr));
            }
        }
        empty = still;
        assert!(Instant::now() < deadline, "dashboard queries without data: {empty:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The store alert is not firing while PostgreSQL is up.
    let firing = |alerts: &Value, name: &str| {
        alerts["alerts"].as_array().unwrap().iter().any(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
    };
    assert!(!firing(&prometheus.api("alerts").await, "MonavisStoreUnreachable"));

    // PostgreSQL stops: the server notices within its 2 s ping, Prometheus fires the alert.
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.pause()).await.unwrap();
    let stopped = Instant::now();
    let deadline = stopped + Duration::from_secs(60);
    loop {
        let alerts = prometheus.api("alerts").await;
        if firing(&alerts, "MonavisStoreUnreachable") {
            let a = alerts["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["labels"]["alertname"] == "MonavisStoreUnreachable")
                .unwrap()
                .clone();
            assert_eq!(a["labels"]["severity"], "critical");
            assert_eq!(a["labels"]["instance"], server.addr.to_string());
            assert!(a["annotations"]["summary"].as_str().unwrap().contains("PostgreSQL unreachable"));
            break;
        }
        assert!(Instant::now() < deadline, "MonavisStoreUnreachable did not fire: {alerts}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("MonavisStoreUnreachable fired {:.1} s after PostgreSQL stopped", stopped.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
}
