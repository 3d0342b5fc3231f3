//! A real headless Chromium driven over WebDriver (Debian's chromium and chromium-driver,
//! through fantoccini), and axe-core run inside the pages it shows. scripts/test.sh installs
//! all three and says where they are (`MONAVIS_TEST_CHROMIUM`, `MONAVIS_TEST_CHROMEDRIVER`,
//! `MONAVIS_TEST_AXE_JS`); without them a test fails loudly, it is never skipped.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the tests with scripts/test.sh, which installs Chromium, chromedriver and axe-core"
        )
    })
}

/// A chromedriver process and one Chromium session; both end on drop.
pub struct Chromium {
    pub client: Client,
    driver: Child,
    /// chromedriver's URL, and the session's.
    session: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session
    /// `width` × `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Chromium {
        let (chromium, chromedriver) = (required("MONAVIS_TEST_CHROMIUM"), required("MONAVIS_TEST_CHROMEDRIVER"));
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(&chromedriver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".to_string()])
            // Its own process group, killed whole on drop (Chromium with it); no inherited
            // output, which a stray Chromium would hold open after the test.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{chromedriver}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        // The flags keep Chromium off the network: this machine has none but loopback.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--lang=fr-FR",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--window-size={width},{height}"),
        ];
        let caps = json!({ "goog:chromeOptions": { "binary": chromium, "args": args } });
        let caps = caps.as_object().unwrap().clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session from {chromedriver} with {chromium}: {e}"),
            }
        };
        let id = client.session_id().await.unwrap().expect("a WebDriver session");
        let c = Chromium { client, driver, session: format!("{url}/session/{id}"), _profile: profile };
        c.resize(width, height).await;
        c
    }

    /// A Chrome DevTools command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let body = json!({ "cmd": cmd, "params": params }).to_string();
        let url = format!("{}/goog/cdp/execute", self.session);
        let headers = [("content-type", "application/json")];
        let (status, _, body) =
            super::try_request(&super::client(), hyper::Method::POST, &url, &headers, body.into()).await.unwrap();
        assert!(status.is_success(), "{cmd}: {status} {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// Makes the viewport `width` × `height` CSS pixels, as a phone's below 600 (Chromium's
    /// windows have a minimum width larger than a phone's).
    pub async fn resize(&self, width: u32, height: u32) {
        let mobile = width < 600;
        let metrics = json!({ "width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile });
        self.cdp("Emulation.setDeviceMetricsOverride", metrics).await;
    }

    /// How wide the page is laid out, in CSS pixels: the viewport's width unless something
    /// overflows it (a phone then zooms out, or scrolls sideways), with the widest element's
    /// description.
    pub async fn laid_out_width(&self) -> (u64, String) {
        let v = self
            .script(
                "const w = document.documentElement.clientWidth; let widest = null, right = 0;\
                 for (const e of document.body.querySelectorAll('*')) { const r = e.getBoundingClientRect().right;\
                 if (r > right) { right = r; widest = e; } }\
                 return [Math.max(window.innerWidth, document.documentElement.scrollWidth),\
                 widest ? widest.outerHTML.slice(0, 120) + ' ends at ' + Math.round(right) + ' px' : ''];",
                vec![],
            )
            .await;
        (v[0].as_u64().unwrap_or(0), v[1].as_str().unwrap_or("").to_string())
    }

    pub async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Types `text` into the field matched by `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks the element matched by `css`; when that loads another page, waits for it.
    pub async fn click(&self, css: &str) {
        let marker = self.script("return window.__monavis_page = Math.random()", vec![]).await;
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        el.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.settle(&marker).await;
    }

    /// Types `keys` into the focused element; when that loads another page (Enter on a submit
    /// button), waits for it.
    pub async fn press_and_settle(&self, keys: &str) {
        let marker = self.script("return window.__monavis_page = Math.random()", vec![]).await;
        self.client.active_element().await.unwrap().send_keys(keys).await.unwrap();
        self.settle(&marker).await;
    }

    /// Submits the form holding the element `css` the way the server sees a browser without
    /// its own checks (`novalidate`): the server's answer to bad input is what is shown.
    pub async fn submit_unchecked(&self, css: &str) {
        let marker = self.script("return window.__monavis_page = Math.random()", vec![]).await;
        let found = self
            .script(
                "const b = document.querySelector(arguments[0]); if (!b) return false; \
                 b.form.noValidate = true; b.click(); return true;",
                vec![json!(css)],
            )
            .await;
        assert_eq!(found, json!(true), "no {css} on {}", self.url().await);
        self.settle(&marker).await;
    }

    /// Waits until the page that held `marker` is replaced by a loaded one.
    async fn settle(&self, marker: &Value) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let state =
                self.client.execute("return [window.__monavis_page || null, document.readyState]", vec![]).await;
            if let Ok(v) = state {
                if v[0] != *marker && v[1] == "complete" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no new page after a click on {}", self.url().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A PNG of the whole page, beyond the viewport.
    pub async fn full_screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let shot = self.cdp("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
        let data = shot["value"]["data"].as_str().expect("a screenshot");
        base64::engine::general_purpose::STANDARD.decode(data).unwrap()
    }

    /// Runs axe-core on the page shown, with the WCAG 2.0/2.1/2.2 A and AA rules and the best
    /// practices; its violations, one line each, with the elements and what to fix.
    pub async fn axe(&self) -> Vec<String> {
        let source = std::fs::read_to_string(required("MONAVIS_TEST_AXE_JS")).expect("axe.min.js");
        // The source goes with the call (WebDriver scripts are not subject to the page's CSP);
        // the call returns axe.run's promise, which WebDriver awaits.
        let script = format!(
            "{source}\n;return axe.run(document, {{ runOnly: {{ type: 'tag', values: \
             ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] }}, \
             resultTypes: ['violations'] }}).then(r => r.violations.map(v => ({{ id: v.id, impact: v.impact, \
             help: v.help, nodes: v.nodes.map(n => n.target.join(' ') + ' → ' + n.html.slice(0, 160) + \
             ' (' + (n.failureSummary || '').replace(/\\s+/g, ' ') + ')') }})))"
        );
        let found = self.client.execute(&script, vec![]).await.unwrap_or_else(|e| panic!("axe.run: {e}"));
        found
            .as_array()
            .expect("axe answers a list")
            .iter()
            .map(|v| {
                let nodes: Vec<&str> = v["nodes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
                format!("{} ({}): {}\n      {}", v["id"], v["impact"], v["help"], nodes.join("\n      "))
            })
            .collect()
    }
}

impl Chromium {
    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group chromedriver leads.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}
