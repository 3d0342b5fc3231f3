//! A tiny browser for the console's end-to-end tests: it keeps cookies, sends the headers a
//! real browser sends with a form (`Origin`, `Sec-Fetch-Site`), and fills in the CSRF token of
//! the last page it read. Plus the two mailboxes a test reads links from: the SMTP sink's
//! Maildir and the store's outbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderMap, SET_COOKIE};
use hyper::{Method, StatusCode};

use super::{client, try_request, Server};

/// One answer.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
        Some(self.body[at..].split('"').next()?.to_string())
    }
}

pub struct Browser {
    base: String,
    pub cookies: BTreeMap<String, String>,
    csrf: Option<String>,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser { base: format!("http://{}", server.addr), cookies: BTreeMap::new(), csrf: None }
    }

    /// The origin a page of this server has.
    pub fn origin(&self) -> &str {
        &self.base
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn take_cookies(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// A request with our cookies and `extra` headers; remembers cookies and the page's CSRF.
    pub async fn send(&mut self, method: Method, path: &str, body: String, extra: &[(&str, &str)]) -> Page {
        let cookie = self.cookie_header();
        let mut headers: Vec<(&str, &str)> = vec![("cookie", &cookie)];
        headers.extend_from_slice(extra);
        let url = format!("{}{}", self.base, path);
        let (status, headers, body) = try_request(&client(), method, &url, &headers, Bytes::from(body))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        self.take_cookies(&headers);
        let page = Page { status, headers, body: String::from_utf8_lossy(&body).into_owned() };
        if let Some(t) = page.csrf() {
            self.csrf = Some(t);
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, String::new(), &[("sec-fetch-site", "same-origin")]).await
    }

    /// Posts a form as a browser would from one of our pages, with the CSRF token of the last
    /// page read (unless `fields` has one).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf.clone().unwrap_or_default();
        if !fields.iter().any(|(k, _)| *k == "csrf") {
            all.push(("csrf", &csrf));
        }
        let body = serde_urlencoded::to_string(&all).unwrap();
        let origin = self.base.clone();
        self.send(
            Method::POST,
            path,
            body,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &origin),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await
    }

    /// Reads `path` first (for its CSRF token), then posts `fields` to `action`.
    pub async fn submit(&mut self, path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(path).await;
        assert!(page.status.is_success(), "GET {path}: {}", page.status);
        self.post(action, fields).await
    }

    /// Signs in; panics unless the log-in succeeds.
    pub async fn log_in(&mut self, email: &str, password: &str) {
        let page = self.submit("/connexion", "/connexion", &[("email", email), ("mot_de_passe", password)]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "log-in of {email}: {}", page.body);
        assert_eq!(page.location(), "/console");
    }
}

/// Where a test reads the e-mails a server sends.
#[derive(Clone, Debug)]
pub enum Mailbox {
    /// The SMTP sink started by scripts/test.sh (a Maildir).
    Smtp(PathBuf),
    /// The server's `email_outbox`, read with `widget-server email list`.
    Outbox,
}

impl Mailbox {
    /// The SMTP sink of the test run; fails loudly without it.
    pub fn smtp() -> (Mailbox, String) {
        let url = std::env::var("MONAVIS_TEST_SMTP_URL").unwrap_or_else(|_| {
            panic!("MONAVIS_TEST_SMTP_URL is not set: run the tests with scripts/test.sh, which starts an SMTP sink")
        });
        let dir =
            std::env::var("MONAVIS_TEST_MAILDIR").expect("MONAVIS_TEST_MAILDIR is set with MONAVIS_TEST_SMTP_URL");
        (Mailbox::Smtp(PathBuf::from(dir)), url)
    }

    /// Every (subject, body) sent to `to` so far, oldest first.
    pub fn mails(&self, server: &Server, to: &str) -> Vec<(String, String)> {
        match self {
            Mailbox::Smtp(dir) => {
                let mut found = Vec::new();
                for entry in std::fs::read_dir(dir.join("new")).unwrap().flatten() {
                    let raw = std::fs::read(entry.path()).unwrap();
                    let mail = mailparse::parse_mail(&raw).unwrap();
                    let header = |name: &str| {
                        mail.headers.iter().find(|h| h.get_key().eq_ignore_ascii_case(name)).map(|h| h.get_value())
                    };
                    if header("To").as_deref() == Some(to) {
                        let modified = entry.metadata().unwrap().modified().unwrap();
                        found.push((
                            modified,
                            entry.file_name(),
                            header("Subject").unwrap_or_default(),
                            mail.get_body().unwrap(),
                        ));
                    }
                }
                found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                found.into_iter().map(|(_, _, s, b)| (s, b)).collect()
            }
            Mailbox::Outbox => {
                let out = super::cli(&server.dir, &server.db_url, &["email", "list", "--to", to, "--limit", "100"]);
                let mut mails: Vec<(String, String)> = out
                    .split("--- #")
                    .skip(1)
                    .map(|m| {
                        let (_, rest) = m.split_once("\nSubject: ").unwrap();
                        let (subject, body) = rest.split_once("\n\n").unwrap();
                        (subject.to_string(), body.to_string())
                    })
                    .collect();
                mails.reverse();
                mails
            }
        }
    }

    /// Waits (up to 15 s) for the `nth` mail (from 1) to `to` whose subject starts with
    /// `subject`; its body.
    pub fn wait_for(&self, server: &Server, to: &str, subject: &str, nth: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mails: Vec<_> = self.mails(server, to).into_iter().filter(|(s, _)| s.starts_with(subject)).collect();
            if mails.len() >= nth {
                return mails[nth - 1].1.clone();
            }
            let all = self.mails(server, to);
            assert!(Instant::now() < deadline, "{to} received no mail #{nth} « {subject} »; all: {all:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The path and query of the first link to `path` in `body` (quoted-printable already decoded).
pub fn link(body: &str, path: &str) -> String {
    let at = body.find(&format!("{path}?")).unwrap_or_else(|| panic!("no link to {path} in {body}"));
    body[at..].split_whitespace().next().unwrap().to_string()
}

/// A new active account (a `.gouv.fr` address, or any address allowed on that server): signed
/// up, confirmed from its e-mail read in `mailbox`, and logged in.
pub async fn porteur(server: &Server, mailbox: &Mailbox, name: &str, email: &str, password: &str) -> Browser {
    let mut b = Browser::new(server);
    let fields = [("nom", name), ("email", email), ("administration", "Direction des tests")];
    let page = b.submit("/inscription", "/inscription", &fields).await;
    assert_eq!(page.location(), "/inscription/envoyee", "sign-up of {email}: {}", page.body);
    let body = mailbox.wait_for(server, email, "Confirmez votre adresse e-mail", 1);
    let l = link(&body, "/confirmation");
    let page = confirm_link(&mut b, &l, None, password).await;
    assert_eq!(page.location(), "/connexion?info=adresse-confirmee", "{email} is active once confirmed");
    b.log_in(email, password).await;
    b
}

/// The `value` of the field named `name` in a page.
pub fn field_value(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    let value = &body[at..body[at..].find('"')? + at];
    Some(value.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
}

/// Opens a confirmation link (its GET shows the form and changes nothing), then confirms with
/// `password` and the name the form proposes, or `name` when given, as the owner of the mailbox
/// chooses them.
pub async fn confirm_link(b: &mut Browser, link: &str, name: Option<&str>, password: &str) -> Page {
    let token = link.split("jeton=").nth(1).expect("a jeton in the link").to_string();
    let page = b.get(link).await;
    assert_eq!(page.status, StatusCode::OK, "{link}: {}", page.body);
    assert!(page.body.contains("choisir votre mot de passe"), "{}", page.body);
    let proposed = field_value(&page.body, "nom").expect("the name is proposed");
    let administration = field_value(&page.body, "administration").expect("the administration is proposed");
    b.post(
        "/confirmation",
        &[
            ("jeton", &token),
            ("nom", name.unwrap_or(&proposed)),
            ("administration", &administration),
            ("mot_de_passe", password),
            ("confirmation", password),
        ],
    )
    .await
}

/// The two confirmation links mailed to `email` after two sign-ups, as (live, revoked): SMTP may
/// deliver two mails in either order, so which is which is read from the server, not from the
/// order of arrival. Panics unless exactly one is live and the other says « annulé ».
pub async fn live_and_revoked(server: &Server, mailbox: &Mailbox, email: &str) -> (String, String) {
    mailbox.wait_for(server, email, "Confirmez votre adresse e-mail", 2);
    let mails = mailbox.mails(server, email);
    let links: Vec<String> = mails
        .iter()
        .filter(|(s, _)| s.starts_with("Confirmez votre adresse e-mail"))
        .map(|(_, b)| link(b, "/confirmation"))
        .collect();
    assert_eq!(links.len(), 2, "two confirmation mails to {email}");
    let mut b = Browser::new(server);
    let (a, z) = (b.get(&links[0]).await, b.get(&links[1]).await);
    match (a.status, z.status) {
        (StatusCode::OK, StatusCode::GONE) => {
            assert!(z.body.contains("Ce lien a été annulé"), "{}", z.body);
            (links[0].clone(), links[1].clone())
        }
        (StatusCode::GONE, StatusCode::OK) => {
            assert!(a.body.contains("Ce lien a été annulé"), "{}", a.body);
            (links[1].clone(), links[0].clone())
        }
        other => panic!("one live and one revoked link expected, got {other:?}"),
    }
}
