//! Log-in limits and the console's cookies (DESIGN §10, issue 19 item 6), over real sockets
//! against the real binary, on one server behind « https » (`--public-url https://…`; the test
//! still talks http to the loopback socket) that trusts the loopback as its proxy, so that
//! `X-Forwarded-For` plays many client addresses. Each attack is reproduced and must now fail:
//!
//! 1. strangers' wrong passwords on an address, from many addresses, lock out browsers that
//!    address does not know, never the one that logged in before (« appareil connu » cookie);
//! 2. successful log-ins are never counted;
//! 3. a forged, tampered or other-address device cookie gives no exemption, and a known browser
//!    is still held by its own failures;
//! 4. behind https every cookie is `__Host-` (Secure, Path=/, no Domain) and the session works
//!    under that name only;
//! 5. a planted, unsigned CSRF cookie does not let a form through (log-in CSRF).

mod common;

use common::browser::{porteur, Browser, Mailbox, Page};
use common::Server;
use hyper::{Method, StatusCode};

const PW: &str = "une phrase de passe solide";
const SESSION: &str = "__Host-monavis_session";
const CSRF: &str = "__Host-monavis_csrf";
const DEVICE: &str = "__Host-monavis_appareil";

/// Every `Set-Cookie` of a page behind https: `__Host-` name, Secure, Path=/, no Domain.
fn check_set_cookies(page: &Page) {
    for v in page.headers.get_all("set-cookie") {
        let v = v.to_str().unwrap();
        assert!(v.starts_with("__Host-monavis_"), "{v}");
        let attributes: Vec<&str> = v.split("; ").skip(1).collect();
        for needed in ["Secure", "Path=/", "HttpOnly", "SameSite=Lax"] {
            assert!(attributes.contains(&needed), "{needed} in {v}");
        }
        assert!(!attributes.iter().any(|a| a.to_ascii_lowercase().starts_with("domain")), "{v}");
    }
}

/// Reads the log-in form and posts it from client address `ip`, as a browser behind the proxy.
async fn log_in_from(b: &mut Browser, ip: &str, email: &str, password: &str) -> Page {
    let xff = ("x-forwarded-for", ip);
    let form = b.send(Method::GET, "/connexion", String::new(), &[("sec-fetch-site", "same-origin"), xff]).await;
    assert_eq!(form.status, StatusCode::OK);
    check_set_cookies(&form);
    let csrf = form.csrf().expect("the form carries a CSRF token");
    let body = serde_urlencoded::to_string([("email", email), ("mot_de_passe", password), ("csrf", &csrf)]).unwrap();
    let origin = b.origin().to_string();
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
        xff,
    ];
    let page = b.send(Method::POST, "/connexion", body, &headers).await;
    check_set_cookies(&page);
    page
}

fn assert_logged_in(page: &Page, what: &str) {
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/console"), "{what}: {}", page.body);
}

fn assert_wrong(page: &Page, what: &str) {
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {}", page.body);
    assert!(page.body.contains("Adresse e-mail ou mot de passe incorrect."), "{what}");
}

fn assert_locked(page: &Page, what: &str) {
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{what}: {}", page.body);
    let retry: u64 = page.headers.get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry), "{what}: Retry-After {retry}");
    assert!(page.body.contains("Trop de tentatives"), "{what}");
}

/// A browser holding only `cookie` as its device cookie.
fn browser_with_device(server: &Server, cookie: &str) -> Browser {
    let mut b = Browser::new(server);
    b.cookies.insert(DEVICE.into(), cookie.into());
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn login_limits_and_cookies() {
    let server =
        Server::sqlite_with(&[], &["--public-url", "https://avis.example.fr", "--trusted-proxies", "127.0.0.1/32"]);
    let mailbox = Mailbox::Outbox;
    let victim = "victime@interieur.gouv.fr";
    let intruder = "intrus@interieur.gouv.fr";
    let often = "souvent@interieur.gouv.fr";
    // The victim's own browser, which logged in at the end of its sign-up.
    let mut known = porteur(&server, &mailbox, "Victime", victim, PW).await;
    let known_device = known.cookies.get(DEVICE).cloned().expect("a device cookie after log-in");
    assert!(!known_device.contains("victime"), "the address is not in clear: {known_device}");
    let intruders_own = porteur(&server, &mailbox, "Intrus", intruder, PW).await;
    porteur(&server, &mailbox, "Souvent", often, PW).await;

    // 4. Behind https: `__Host-` names (checked on every Set-Cookie by `log_in_from`), and the
    // session works under that name only.
    let mut b = Browser::new(&server);
    let page = log_in_from(&mut b, "192.0.2.40", often, PW).await;
    assert_logged_in(&page, "https log-in");
    let names: Vec<&str> =
        page.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split('=').next().unwrap()).collect();
    assert_eq!(names, [SESSION, DEVICE]);
    assert!(b.cookies.contains_key(CSRF) && !b.cookies.keys().any(|k| k.starts_with("monavis")), "{:?}", b.cookies);
    let console = b.get("/console").await;
    assert_eq!(console.status, StatusCode::OK);
    assert!(console.body.contains("Souvent"));
    let mut unprefixed = Browser::new(&server);
    unprefixed.cookies.insert("monavis_session".into(), b.cookies[SESSION].clone());
    assert_eq!(unprefixed.get("/console").await.status, StatusCode::SEE_OTHER, "the unprefixed name is not read");

    // 2. Fifteen successful log-ins in a row, in one browser and in fresh ones: never refused.
    let mut same = Browser::new(&server);
    for i in 1..=15 {
        assert_logged_in(&log_in_from(&mut same, "192.0.2.50", often, PW).await, &format!("same browser, #{i}"));
        let mut fresh = Browser::new(&server);
        assert_logged_in(&log_in_from(&mut fresh, "192.0.2.50", often, PW).await, &format!("fresh browser, #{i}"));
    }

    // 1. An attacker tries wrong passwords on the victim's address from four addresses.
    let attackers = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"];
    let mut answered = 0;
    for i in 0..32 {
        let mut b = Browser::new(&server);
        let page = log_in_from(&mut b, attackers[i % 4], victim, &format!("essai numéro {i:02}")).await;
        match page.status {
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(answered, i, "try {i} answered after a refusal");
                assert_wrong(&page, "attacker");
                answered += 1;
            }
            _ => assert_locked(&page, &format!("attacker try {i}")),
        }
    }
    assert!((10..=20).contains(&answered), "{answered} wrong passwords answered before the lock");
    for ip in attackers {
        let page = log_in_from(&mut Browser::new(&server), ip, victim, "encore un essai").await;
        assert_locked(&page, &format!("attacker at {ip}"));
    }
    // A browser the address does not know is locked out too, even with the right password.
    assert_locked(&log_in_from(&mut Browser::new(&server), "203.0.113.7", victim, PW).await, "fresh browser");
    // The victim's own browser logs in at once, from anywhere, an attacker's address included
    // (a shared proxy).
    assert_logged_in(&log_in_from(&mut known, "203.0.113.7", victim, PW).await, "known browser");
    assert_logged_in(&log_in_from(&mut known, attackers[0], victim, PW).await, "known browser, attacker's address");
    assert_ne!(known.cookies[DEVICE], known_device, "a fresh device cookie at each log-in");

    // 3. Forged, tampered and other-address device cookies give no exemption (each tried with
    // the right password, from an address of its own).
    let fields: Vec<&str> = known_device.split('.').collect();
    assert_eq!(fields.len(), 3, "{known_device}");
    let flip = |s: &str| {
        let last = if s.ends_with('0') { '1' } else { '0' };
        format!("{}{last}", &s[..s.len() - 1])
    };
    let expiry: i64 = fields[1].parse().unwrap();
    let forged = [
        ("tampered MAC", format!("{}.{}.{}", fields[0], fields[1], flip(fields[2]))),
        ("another id", format!("{}.{}.{}", flip(fields[0]), fields[1], fields[2])),
        ("a later expiry", format!("{}.{}.{}", fields[0], expiry + 1, fields[2])),
        ("made up", format!("{}.{}.{}", "0".repeat(32), expiry, "0".repeat(64))),
        ("another address's", intruders_own.cookies[DEVICE].clone()),
        ("garbage", "n'importe-quoi".into()),
    ];
    for (i, (what, cookie)) in forged.iter().enumerate() {
        let mut b = browser_with_device(&server, cookie);
        assert_locked(&log_in_from(&mut b, &format!("203.0.113.{}", 20 + i), victim, PW).await, what);
    }
    // The genuine cookie, copied the same way, does exempt.
    let mut copy = browser_with_device(&server, &known_device);
    assert_logged_in(&log_in_from(&mut copy, "203.0.113.30", victim, PW).await, "genuine device cookie");

    // A known browser's own failures are still limited: ten, then locked, right password or not;
    // the victim's other known browser is not.
    for i in 1..=10 {
        assert_wrong(&log_in_from(&mut known, "203.0.113.31", victim, "je ne sais plus").await, &format!("own {i}"));
    }
    assert_locked(&log_in_from(&mut known, "203.0.113.31", victim, PW).await, "known browser, own failures");
    assert_logged_in(&log_in_from(&mut copy, "203.0.113.31", victim, PW).await, "the other known browser");

    // 5. A CSRF cookie planted by someone else (well-formed, unsigned), with the same value in
    // a form that logs the victim's browser into the intruder's account: refused, and replaced.
    let planted = "a".repeat(64);
    let mut b = Browser::new(&server);
    b.cookies.insert(CSRF.into(), planted.clone());
    let body = serde_urlencoded::to_string([("email", intruder), ("mot_de_passe", PW), ("csrf", &planted)]).unwrap();
    let ct = ("content-type", "application/x-www-form-urlencoded");
    let page = b.send(Method::POST, "/connexion", body, &[ct, ("sec-fetch-site", "same-origin")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "planted CSRF cookie: {}", page.body);
    check_set_cookies(&page);
    assert!(page.body.contains("La vérification de sécurité de ce formulaire a échoué"));
    assert!(!b.cookies.contains_key(SESSION), "not logged in");
    let replaced = b.cookies[CSRF].clone();
    assert_ne!(replaced, planted, "the planted value is replaced");
    // A page read with the planted cookie does not adopt it either.
    let mut b2 = Browser::new(&server);
    b2.cookies.insert(CSRF.into(), planted.clone());
    let form = b2.get("/connexion").await;
    assert_ne!(form.csrf().unwrap(), planted);
    assert_eq!(form.csrf().unwrap(), b2.cookies[CSRF], "the form carries the new signed value");
    // The signed value the server issued works, as the same double submit.
    let body = serde_urlencoded::to_string([("email", intruder), ("mot_de_passe", PW), ("csrf", &replaced)]).unwrap();
    let page = b.send(Method::POST, "/connexion", body, &[ct, ("sec-fetch-site", "same-origin")]).await;
    assert_logged_in(&page, "signed CSRF cookie");
}
