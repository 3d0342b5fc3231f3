//! The ProConnect-like OpenID Connect provider of the tests (`scripts/oidc/provider.js`, panva's
//! oidc-provider): the one `scripts/test.sh` starts (`MONAVIS_TEST_OIDC_ISSUER`), or one of a
//! test's own (`MONAVIS_TEST_OIDC_PROVIDER`, to stop it, rotate its keys or shorten its codes);
//! and [`Agent`], an HTTP client with a cookie jar per origin that goes through the provider's own
//! log-in, consent and log-out forms as a browser would.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use hyper::header::{HeaderMap, SET_COOKIE};
use hyper::{Method, StatusCode};

use super::{client, try_request, Server};

/// The client whose ID tokens are RS256 and userinfo ES256.
pub const CLIENT: &str = "monavis";
/// The client whose ID tokens are ES256 and userinfo RS256.
pub const CLIENT_ES256: &str = "monavis-es256";
/// Both clients' secret.
pub const SECRET: &str = "monavis-test-secret-0123456789abcdef";

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with scripts/test.sh, which installs and starts the OpenID Connect provider")
    })
}

/// The issuer of the provider scripts/test.sh started.
pub fn shared_issuer() -> String {
    required("MONAVIS_TEST_OIDC_ISSUER")
}

/// A provider of this test's own; stopped when dropped.
pub struct OwnProvider {
    child: Option<Child>,
    pub issuer: String,
    pub port: u16,
}

impl OwnProvider {
    /// Starts `provider.js` on a free port with `env` (`OIDC_CODE_TTL`, `OIDC_JWKS`…).
    pub fn start(env: &[(&str, &str)]) -> OwnProvider {
        Self::start_on(0, env)
    }

    /// The same on `port` (0: any free one).
    pub fn start_on(port: u16, env: &[(&str, &str)]) -> OwnProvider {
        let script = required("MONAVIS_TEST_OIDC_PROVIDER");
        let mut child = Command::new("node")
            .arg(&script)
            .env("OIDC_PORT", port.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("node {script}: {e}"));
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        // Whatever it prints later is read (and dropped), never left to fill or break the pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("oidc-provider listening on ")
            .unwrap_or_else(|| panic!("{script} did not start: {line:?}"))
            .to_string();
        let port = issuer.split(':').nth(2).unwrap().split('/').next().unwrap().parse().unwrap();
        OwnProvider { child: Some(child), issuer, port }
    }

    /// Stops it (its port is then refused).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many discovery, JWKS, token, userinfo and end-session requests the provider of `issuer`
/// answered.
pub async fn stats(issuer: &str) -> serde_json::Value {
    let base = issuer.trim_end_matches("/api/v2");
    let (status, _, body) = super::get(&format!("{base}/__test/stats"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).unwrap()
}

/// The server flags of ProConnect with `issuer` and `client`, the secret written in `dir`.
pub fn flags(dir: &Path, issuer: &str, client: &str) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let secret = dir.join("proconnect-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    vec![
        "--proconnect-issuer".into(),
        issuer.into(),
        "--proconnect-client-id".into(),
        client.into(),
        "--proconnect-client-secret-file".into(),
        secret.display().to_string(),
    ]
}

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<String> {
        let l = self.headers.get("location")?.to_str().ok()?;
        Some(absolute(&self.url, l))
    }
}

/// `location` made absolute against `base`.
fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else {
        let origin: String = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        format!("{origin}{location}")
    }
}

/// `scheme://host:port` of a URL.
pub fn origin(url: &str) -> String {
    url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&").replace("&quot;", "\"").replace("&#x2F;", "/").replace("&#39;", "'")
}

/// A browser enough for OpenID Connect: cookies kept per origin, forms read and posted.
#[derive(Default)]
pub struct Agent {
    pub cookies: BTreeMap<(String, String), String>,
}

impl Agent {
    pub fn new() -> Agent {
        Agent::default()
    }

    /// The value of cookie `name` of the origin of `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<&String> {
        self.cookies.get(&(origin(url), name.to_string()))
    }

    fn keep_cookies(&mut self, url: &str, headers: &HeaderMap) {
        let o = origin(url);
        for v in headers.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let attrs = attrs.to_ascii_lowercase();
            if attrs.contains("max-age=0") || attrs.contains("expires=thu, 01 jan 1970") || value.is_empty() {
                self.cookies.remove(&(o.clone(), name.to_string()));
            } else {
                self.cookies.insert((o.clone(), name.to_string()), value.to_string());
            }
        }
    }

    /// One request with the cookies of its origin; no redirect followed.
    pub async fn send(&mut self, method: Method, url: &str, body: String, extra: &[(&str, &str)]) -> Answer {
        let o = origin(url);
        let cookie: String = self
            .cookies
            .iter()
            .filter(|((co, _), _)| *co == o)
            .map(|((_, k), v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers: Vec<(&str, &str)> = vec![("cookie", &cookie)];
        headers.extend_from_slice(extra);
        let (status, headers, body) = try_request(&client(), method, url, &headers, Bytes::from(body))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        self.keep_cookies(url, &headers);
        Answer { url: url.to_string(), status, headers, body: String::from_utf8_lossy(&body).into_owned() }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        self.send(Method::GET, url, String::new(), &[]).await
    }

    /// Posts a form to `url`; `origin` is the page's (our server checks it).
    pub async fn post(&mut self, url: &str, fields: &[(&str, &str)], from: &str) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let site = if origin(url) == origin(from) { "same-origin" } else { "cross-site" };
        let from = origin(from);
        let headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", from.as_str()),
            ("sec-fetch-site", site),
        ];
        self.send(Method::POST, url, body, &headers).await
    }

    /// Follows redirects from `url` (GET) until an answer that is not one, or a redirect to
    /// `stop` (a URL prefix), which is returned unfollowed.
    pub async fn follow(&mut self, url: &str, stop: &str) -> Answer {
        let mut url = url.to_string();
        for _ in 0..20 {
            let a = self.get(&url).await;
            match a.location() {
                Some(next) if a.status.is_redirection() => {
                    if next.starts_with(stop) {
                        return a;
                    }
                    url = next;
                }
                _ => return a,
            }
        }
        panic!("more than 20 redirects from {url}");
    }

    /// From `start` (our `/connexion/proconnect`, or the authorization URL), through the
    /// provider's own forms as `login` (see scripts/oidc/provider.js), consenting or not: the
    /// provider's redirect back to `server`'s redirect URI, unfollowed (its `Location` is the
    /// return URL with `code` and `state`).
    pub async fn log_in_at_provider(&mut self, server: &Server, start: &str, login: &str, consent: bool) -> Answer {
        let ours = format!("http://{}/connexion/proconnect/retour", server.addr);
        let cancel = regex::Regex::new(r#"<a href="([^"]+)">\[ Cancel \]</a>"#).unwrap();
        let mut a = self.follow(start, &ours).await;
        for _ in 0..6 {
            if a.status.is_redirection() {
                return a;
            }
            assert_eq!(a.status, StatusCode::OK, "{}: {}", a.url, a.body);
            let action = form_action(&a.body).unwrap_or_else(|| panic!("no form on {}: {}", a.url, a.body));
            let action = absolute(&a.url, &action);
            let next = if a.body.contains(r#"name="prompt" value="login""#) {
                self.post(&action, &[("prompt", "login"), ("login", login), ("password", "n'importe")], &a.url).await
            } else if a.body.contains(r#"name="prompt" value="consent""#) {
                if consent {
                    self.post(&action, &[("prompt", "consent")], &a.url).await
                } else {
                    let href = unescape(&cancel.captures(&a.body).expect("a Cancel link")[1]);
                    self.get(&absolute(&a.url, &href)).await
                }
            } else {
                panic!("an unexpected form on {}: {}", a.url, a.body);
            };
            a = match next.location() {
                Some(l) if next.status.is_redirection() && !l.starts_with(&ours) => self.follow(&l, &ours).await,
                _ => next,
            };
        }
        panic!("the provider never sent the browser back: {} {}", a.url, a.body);
    }

    /// At ProConnect's end-session page reached from `url`, confirms the log-out: the
    /// provider's redirect (to our `post_logout_redirect_uri`), unfollowed.
    pub async fn confirm_log_out(&mut self, url: &str) -> Answer {
        let page = self.get(url).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
        let action = absolute(&page.url, &form_action(&page.body).expect("the log-out form"));
        let xsrf = regex::Regex::new(r#"name="xsrf" value="([^"]+)""#).unwrap();
        let xsrf = xsrf.captures(&page.body).expect("xsrf")[1].to_string();
        self.post(&action, &[("xsrf", &xsrf), ("logout", "yes")], &page.url).await
    }
}

/// The `action` of the first form of a page.
fn form_action(body: &str) -> Option<String> {
    let re = regex::Regex::new(r#"<form[^>]*\saction="([^"]+)""#).unwrap();
    re.captures(body).map(|c| unescape(&c[1]))
}

/// The query parameters of a URL, decoded.
pub fn query(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap().into_iter().collect()
}

/// The payload of a JWT, unverified (to read what a test sent).
pub fn jwt_payload(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
