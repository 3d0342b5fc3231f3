//! Every route, as every kind of visitor reaches it, carries the security headers of DESIGN §8
//! and issue 12: on HTML, a strict Content-Security-Policy (nothing but our own stylesheet and
//! images, no script at all, forms posting to ourselves, `frame-ancestors 'none'`: no page of
//! ours is meant to be framed — the button is a link, not an iframe), a Referrer-Policy, nosniff
//! and no inline script in the body; on everything else, nosniff. The list of routes is checked
//! against the console's router source and the hot path's routes, so a new page cannot be added
//! without being walked here.

mod common;

use common::browser::{porteur, Browser, Mailbox};
use common::{cli, Server};
use hyper::{Method, StatusCode};

const PW: &str = "une phrase de passe solide";
const ID: i64 = 45;

/// The router's GET routes (templates) in widget-server/src/console/routes.rs.
fn console_get_routes() -> Vec<String> {
    let src = include_str!("../src/console/routes.rs");
    src.split(".route(\"")
        .skip(1)
        .filter_map(|s| {
            let (path, rest) = s.split_once('"')?;
            let handler = rest.trim_start_matches([',', ' ']);
            (handler.starts_with("get(") || handler.starts_with("any(")).then(|| path.to_string())
        })
        .collect()
}

struct Checked {
    templates: Vec<&'static str>,
    html_pages: usize,
}

fn check(what: &str, status: StatusCode, headers: &hyper::HeaderMap, body: &[u8]) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(h("x-content-type-options"), "nosniff", "{what} ({status}): nosniff");
    if !h("content-type").starts_with("text/html") {
        return false;
    }
    let csp = h("content-security-policy");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for needed in ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"] {
        assert!(directives.contains(&needed), "{what} ({status}): CSP without « {needed} »: {csp}");
    }
    assert!(!csp.contains("unsafe") && !csp.contains("script-src"), "{what} ({status}): CSP allows script: {csp}");
    assert!(
        ["no-referrer", "same-origin"].contains(&h("referrer-policy").as_str()),
        "{what} ({status}): referrer-policy « {} »",
        h("referrer-policy")
    );
    let body = String::from_utf8_lossy(body).to_ascii_lowercase();
    assert!(!body.contains("<script"), "{what}: inline script");
    assert!(!body.contains("javascript:"), "{what}: javascript: URL");
    true
}

impl Checked {
    async fn get(&mut self, b: &mut Browser, template: &'static str, path: &str) {
        let page = b.get(path).await;
        if check(path, page.status, &page.headers, page.body.as_bytes()) {
            self.html_pages += 1;
        }
        self.templates.push(template);
    }

    async fn post(&mut self, b: &mut Browser, path: &str, fields: &[(&str, &str)]) {
        let page = b.post(path, fields).await;
        if check(&format!("POST {path}"), page.status, &page.headers, page.body.as_bytes()) {
            self.html_pages += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_carries_the_security_headers() {
    let server = Server::sqlite_with(
        &[(ID, "Démarche aux en-têtes")],
        &["--rate-per-minute", "1000", "--rate-per-minute-demarche", "1000"],
    );
    let mailbox = Mailbox::Outbox;
    let mut p = porteur(&server, &mailbox, "Porteuse", "porteuse@interieur.gouv.fr", PW).await;
    p.get(&format!("/console/demarches/{ID}")).await;
    p.post(&format!("/console/demarches/{ID}/porteur"), &[]).await;
    let admin_email = "admin@numerique.gouv.fr";
    porteur(&server, &mailbox, "Admin", admin_email, PW).await;
    cli(&server.dir, &server.db_url, &["account", "admin", admin_email]);
    let mut admin = Browser::new(&server);
    admin.log_in(admin_email, PW).await;
    let mut anon = Browser::new(&server);
    let mut c = Checked { templates: Vec::new(), html_pages: 0 };

    // The hot path.
    let form = server.form_path(ID);
    for (path, what) in [
        (form.as_str(), "the form"),
        (&format!("/Demarches/{ID}/merci") as &str, "merci"),
        (&format!("/Demarches/{ID}?view-mode=formulaire-avis&key=00"), "a bad key"),
        ("/Demarches/999999?view-mode=formulaire-avis&key=00", "an unknown démarche"),
        ("/Demarches/abc", "a bad id"),
        ("/static/bouton-bleu.svg", "a button"),
        ("/static/bouton-blanc.svg", "a button"),
        ("/static/../Cargo.toml", "a traversal"),
        ("/healthz", "health"),
        ("/readyz", "readiness"),
        ("/metrics", "metrics"),
    ] {
        let page = anon.get(path).await;
        if check(what, page.status, &page.headers, page.body.as_bytes()) {
            c.html_pages += 1;
        }
    }
    // A vote with errors (the form again), a vote refused for its key, one posted from another
    // site.
    let key = server.signer().sign(ID as u64);
    for (body, site) in [
        (format!("key={key}&nd_source=button"), "same-origin"),
        ("key=00&satisfaction=bien".to_string(), "same-origin"),
        (format!("key={key}&satisfaction=bien"), "cross-site"),
    ] {
        let path = format!("/Demarches/{ID}/avis");
        let headers = [("content-type", "application/x-www-form-urlencoded"), ("sec-fetch-site", site)];
        let page = anon.send(Method::POST, &path, body, &headers).await;
        assert!(page.status.is_client_error(), "{path}: {}", page.status);
        if check(&path, page.status, &page.headers, page.body.as_bytes()) {
            c.html_pages += 1;
        }
    }

    // The public and the console before log-in.
    c.get(&mut anon, "/", "/").await;
    c.get(&mut anon, "/inscription", "/inscription").await;
    c.get(&mut anon, "/inscription/envoyee", "/inscription/envoyee").await;
    c.get(&mut anon, "/confirmation", "/confirmation?jeton=abc").await;
    c.get(&mut anon, "/connexion", "/connexion").await;
    // ProConnect's URLs, 404s on this server without --proconnect-* (tests/proconnect.rs walks
    // them with a provider, and checks their CSP there).
    c.get(&mut anon, "/connexion/proconnect", "/connexion/proconnect").await;
    c.get(&mut anon, "/connexion/proconnect/retour", "/connexion/proconnect/retour?code=a&state=b").await;
    c.get(&mut anon, "/mot-de-passe-oublie", "/mot-de-passe-oublie").await;
    c.get(&mut anon, "/mot-de-passe", "/mot-de-passe?jeton=abc").await;
    c.get(&mut anon, "/observatoire", "/observatoire").await;
    c.get(&mut anon, "/observatoire.csv", "/observatoire.csv").await;
    c.get(&mut anon, "/observatoire.xlsx", "/observatoire.xlsx").await;
    c.get(&mut anon, "/desabonnement", "/desabonnement?jeton=1.synthese.0").await;
    c.get(&mut anon, "/observatoire.json", "/observatoire.json").await;
    c.get(&mut anon, "/observatoire.schema.json", "/observatoire.schema.json").await;
    c.get(&mut anon, "/Demarches/{id}", &format!("/Demarches/{ID}")).await;
    c.get(&mut anon, "/console", "/console").await;
    c.get(&mut anon, "/api", "/api").await;
    c.get(&mut anon, "/api/{*rest}", "/api/v2/rien").await;
    c.get(&mut anon, "/api/v1/demarches", "/api/v1/demarches").await;
    c.get(&mut anon, "/api/v1/demarches/{id}/stats", &format!("/api/v1/demarches/{ID}/stats")).await;
    c.get(&mut anon, "/api/v1/demarches/{id}/avis", &format!("/api/v1/demarches/{ID}/avis")).await;
    c.post(&mut anon, "/connexion", &[("email", "x@interieur.gouv.fr"), ("mot_de_passe", "faux")]).await;
    anon.get("/inscription").await;
    c.post(&mut anon, "/inscription", &[("email", "pas une adresse")]).await;
    let page = anon.get("/nulle-part").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(check("/nulle-part", page.status, &page.headers, page.body.as_bytes()));

    // A porteur.
    let d = format!("/console/demarches/{ID}");
    c.get(&mut p, "/console", "/console").await;
    c.get(&mut p, "/console/demarches", "/console/demarches?q=en-tetes").await;
    c.get(&mut p, "/console/demarches/nouvelle", "/console/demarches/nouvelle").await;
    c.get(&mut p, "/console/demarches/{id}", &d).await;
    c.get(&mut p, "/console/demarches/{id}/satisfaction", &format!("{d}/satisfaction")).await;
    c.get(&mut p, "/console/demarches/{id}/avis", &format!("{d}/avis")).await;
    c.get(&mut p, "/console/demarches/{id}/avis.csv", &format!("{d}/avis.csv")).await;
    c.get(&mut p, "/console/demarches/{id}/avis.xlsx", &format!("{d}/avis.xlsx")).await;
    c.get(&mut p, "/console/demarches/{id}/code", &format!("{d}/code")).await;
    c.get(&mut p, "/console/demarches/{id}/fiche", &format!("{d}/fiche")).await;
    c.get(&mut p, "/console/demarches/{id}/porteurs", &format!("{d}/porteurs")).await;
    c.get(&mut p, "/console/invitation", "/console/invitation?jeton=abc").await;
    c.get(&mut p, "/console/compte", "/console/compte").await;
    c.get(&mut p, "/console/compte/notifications", "/console/compte/notifications").await;
    c.get(&mut p, "/console/compte/profil", "/console/compte/profil").await;
    c.get(&mut p, "/console/demarches/{id}", "/console/demarches/999999").await;
    c.get(&mut p, "/console/admin", "/console/admin").await;
    p.get(&format!("{d}/fiche")).await;
    c.post(&mut p, &format!("{d}/fiche"), &[("url", "pas une adresse")]).await;
    c.post(&mut p, &format!("{d}/porteur"), &[("csrf", "faux")]).await;

    // An administrator.
    c.get(&mut admin, "/console/admin", "/console/admin").await;

    let mut missing: Vec<String> =
        console_get_routes().into_iter().filter(|r| !c.templates.contains(&r.as_str())).collect();
    missing.sort();
    assert!(missing.is_empty(), "GET routes of the console not walked here: {missing:?}");
    assert!(c.html_pages >= 30, "HTML pages checked: {}", c.html_pages);
}
