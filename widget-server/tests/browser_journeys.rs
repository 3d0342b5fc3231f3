//! The whole product driven in a real headless Chromium, as its users drive it: a porteur signs
//! up, confirms from the e-mail, logs in, adds a démarche and copies its button code; a citizen
//! opens the link in that code, fills the form with the keyboard only and lands on the
//! thank-you page; after the flush the porteur sees the vote on the dashboard, and the vote is in
//! the store; a page of another site that posts a vote for its visitor gets the French refusal.
//! axe-core runs on every page visited (zero violations). A public agent also logs in and out with
//! ProConnect, through the provider scripts/test.sh starts.
//!
//! With `MONAVIS_SCREENSHOTS=DIR`, screenshots of the form (360 px and desktop), the dashboard
//! and the observatory are written there (README shows those in docs/screenshots/).

mod common;

use common::browser::{link, Mailbox};
use common::oidc;
use common::webdriver::Chromium;
use common::{wait_for_avis, Server};
use fantoccini::key::Key;
use serde_json::json;

const PW: &str = "une phrase de passe solide";
const EMAIL: &str = "camille.martin@interieur.gouv.fr";

/// Runs axe on the page shown; panics with the violations.
async fn axe(c: &Chromium, what: &str) {
    let found = c.axe().await;
    assert!(found.is_empty(), "{what} ({}): {}", c.url().await, found.join("\n"));
}

/// Presses Tab until the focused element matches `css`; fails after 40 presses.
async fn tab_to(c: &Chromium, css: &str) {
    for _ in 0..40 {
        let focused = c
            .script("return !!document.activeElement && document.activeElement.matches(arguments[0])", vec![json!(css)])
            .await;
        if focused == json!(true) {
            return;
        }
        c.client.active_element().await.unwrap().send_keys(&Key::Tab).await.unwrap();
    }
    panic!("Tab never reached {css} on {}", c.url().await);
}

/// Types `keys` into the focused element.
async fn press(c: &Chromium, keys: &str) {
    c.client.active_element().await.unwrap().send_keys(keys).await.unwrap();
}

async fn screenshot(c: &Chromium, name: &str) {
    let Ok(dir) = std::env::var("MONAVIS_SCREENSHOTS") else { return };
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.full_screenshot().await;
    std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_porteur_and_a_citizen_in_a_real_browser() {
    let server = Server::sqlite_with(
        &[],
        &["--flush-interval-ms", "100", "--operator-name", "Ministère de l'Exemple", "--operator-marianne"],
    );
    let c = Chromium::start(1280, 900).await;

    // The porteur signs up.
    c.goto(&server.url("/")).await;
    axe(&c, "home").await;
    c.click("a[href='/inscription']").await;
    axe(&c, "sign-up").await;
    c.fill("input[name=nom]", "Camille Martin").await;
    c.fill("input[name=email]", EMAIL).await;
    c.fill("input[name=administration]", "Direction des titres").await;
    c.click("main form button[type=submit]").await;
    assert!(c.url().await.ends_with("/inscription/envoyee"), "{}", c.url().await);
    axe(&c, "sign-up sent").await;

    // … confirms from the e-mail …
    let mail = Mailbox::Outbox.wait_for(&server, EMAIL, "Confirmez votre adresse e-mail", 1);
    c.goto(&server.url(&link(&mail, "/confirmation"))).await;
    axe(&c, "confirmation").await;
    // … choosing the password there …
    c.fill("input[name=mot_de_passe]", PW).await;
    c.fill("input[name=confirmation]", PW).await;
    c.click("main form button[type=submit]").await;
    assert!(c.url().await.contains("/connexion"), "{}", c.url().await);

    // … logs in …
    axe(&c, "log-in").await;
    c.fill("input[name=email]", EMAIL).await;
    c.fill("input[name=mot_de_passe]", PW).await;
    c.click("main form button[type=submit]").await;
    assert!(c.url().await.ends_with("/console"), "{}", c.url().await);
    axe(&c, "my démarches").await;

    // … adds a démarche missing from the catalogue …
    c.goto(&server.url("/console/demarches?q=permis+de+chasser")).await;
    axe(&c, "search").await;
    c.click("a[href^='/console/demarches/nouvelle']").await;
    axe(&c, "new démarche").await;
    c.fill("input[name=nom]", "Permis de chasser").await;
    c.fill("input[name=administration]", "Office français de la biodiversité").await;
    c.click("main form button[type=submit]").await;
    let code_url = c.url().await;
    assert!(code_url.contains("/code"), "{code_url}");
    axe(&c, "button code").await;
    let id: i64 = code_url.split("/console/demarches/").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();

    // … generates its code (the white button) and copies it: the citizen follows its link.
    c.script("document.querySelector('#style-blanc').click()", vec![]).await;
    c.click("main form[method=get] button[type=submit]").await;
    axe(&c, "button code generated").await;
    let snippet = c.script("return document.querySelector('#snippet').value", vec![]).await;
    let snippet = snippet.as_str().unwrap().to_string();
    assert!(snippet.contains("bouton-blanc.svg"), "{snippet}");
    let href = snippet.split("href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let path = href.split_once("://").unwrap().1.split_once('/').map(|(_, p)| format!("/{p}")).unwrap();
    assert!(path.starts_with(&format!("/Demarches/{id}?")), "{path}");

    // The citizen, on a phone, with the keyboard only.
    c.resize(360, 740).await;
    c.goto(&server.url(&path)).await;
    axe(&c, "the form at 360 px").await;
    screenshot(&c, "formulaire-360.png").await;
    tab_to(&c, "input[name=satisfaction]").await;
    press(&c, " ").await; // the first choice of the group, « Bien »
    tab_to(&c, "input[name=facilite]").await;
    press(&c, &Key::Right).await; // arrows move within a radio group: « Moyen »… or the next
    tab_to(&c, "textarea[name=commentaire]").await;
    press(&c, "Très simple, merci.").await;
    tab_to(&c, "button[type=submit]").await;
    c.press_and_settle(&Key::Enter).await;
    assert!(c.url().await.contains(&format!("/Demarches/{id}/merci")), "after submit: {}", c.url().await);
    axe(&c, "merci at 360 px").await;
    c.resize(1280, 900).await;
    c.goto(&server.url(&path)).await;
    screenshot(&c, "formulaire-bureau.png").await;

    // In the store after the flush, with what was typed.
    assert_eq!(wait_for_avis(&server.db_url, 1, std::time::Duration::from_secs(5)).await, 1, "the vote is stored");
    let conn = rusqlite::Connection::open(server.db_url.strip_prefix("sqlite://").unwrap()).unwrap();
    let (sat, comment): (String, String) = conn
        .query_row("SELECT satisfaction, commentaire FROM avis WHERE demarche_id = ?1", [id], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((sat.as_str(), comment.as_str()), ("bien", "Très simple, merci."));

    // Another site cannot make its visitors vote (issue 19): a page that is not ours (a data:
    // URL, whose opaque origin is no site, so Chromium sends `Sec-Fetch-Site: cross-site`) posts
    // a valid vote when its visitor clicks; the visitor lands on the French refusal, and nothing
    // more is stored.
    let key = path.rsplit_once("key=").unwrap().1.split('&').next().unwrap();
    let trap = format!(
        "<!DOCTYPE html><html lang=fr><title>Jeu concours</title><form method=post action='{}'>\
         <input type=hidden name=key value={key}><input type=hidden name=satisfaction value=pas-bien>\
         <button type=submit>Participer</button></form>",
        server.url(&format!("/Demarches/{id}/avis"))
    );
    c.goto(&format!("data:text/html;charset=utf-8,{}", trap.replace(' ', "%20"))).await;
    c.click("button[type=submit]").await;
    let page = c.client.source().await.unwrap();
    assert!(page.contains("Votre avis n'a pas été enregistré"), "{}: {page}", c.url().await);
    axe(&c, "a vote from another site").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(wait_for_avis(&server.db_url, 2, std::time::Duration::from_millis(300)).await, 1, "not stored");

    // The porteur sees it on the dashboard.
    c.goto(&server.url(&format!("/console/demarches/{id}/satisfaction"))).await;
    axe(&c, "dashboard").await;
    let n = c.script("return document.querySelector('#nombre-avis').textContent.trim()", vec![]).await;
    assert_eq!(n, json!("1"), "the dashboard counts the vote");
    screenshot(&c, "tableau-de-bord.png").await;
    c.goto(&server.url(&format!("/console/demarches/{id}/avis"))).await;
    axe(&c, "every avis").await;
    let page = c.client.source().await.unwrap();
    assert!(page.contains("Très simple, merci."), "the comment is listed");

    c.goto(&server.url("/observatoire")).await;
    axe(&c, "observatory").await;
    screenshot(&c, "observatoire.png").await;
    c.quit().await;
}

/// A public agent logs in with ProConnect (DESIGN §16) in a real browser: the button first on
/// the sign-up and log-in pages, the provider's own forms (scripts/oidc/provider.js), the new
/// account's page, then « Se déconnecter » through ProConnect's log-out and back (the browser
/// enforces our `form-action` along those redirects); and the page of a failed return. axe runs
/// on each of our pages.
#[tokio::test(flavor = "multi_thread")]
async fn a_public_agent_logs_in_with_proconnect_in_a_real_browser() {
    let issuer = oidc::shared_issuer();
    let secrets = tempfile::tempdir().unwrap();
    let flags = oidc::flags(secrets.path(), &issuer, oidc::CLIENT);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::sqlite_with(&[], &flags);
    let c = Chromium::start(1280, 900).await;

    c.goto(&server.url("/inscription")).await;
    axe(&c, "sign-up with ProConnect").await;
    c.goto(&server.url("/connexion")).await;
    axe(&c, "log-in with ProConnect").await;
    c.resize(360, 740).await;
    axe(&c, "log-in with ProConnect at 360 px").await;
    c.resize(1280, 900).await;

    // ProConnect's own forms: its log-in, then its consent.
    c.click("button.proconnect-bouton").await;
    assert!(c.url().await.starts_with(&issuer), "at the provider: {}", c.url().await);
    c.fill("input[name=login]", "camille.agent@interieur.gouv.fr").await;
    c.fill("input[name=password]", "peu importe").await;
    c.click("button[type=submit]").await;
    c.click("button[type=submit]").await;
    assert!(c.url().await.ends_with("/console/compte/profil?info=proconnect-compte-cree"), "{}", c.url().await);
    axe(&c, "a new ProConnect account's details").await;
    let page = c.client.source().await.unwrap();
    assert!(page.contains("Camille Agent"), "named from the claims");

    // « Se déconnecter »: our session ends, ProConnect asks, and the browser comes back.
    c.click("form[action='/deconnexion'] button").await;
    assert!(c.url().await.starts_with(&format!("{issuer}/session/end")), "{}", c.url().await);
    c.click("button[name=logout]").await;
    assert!(c.url().await.starts_with(&server.url("/connexion?info=deconnecte")), "{}", c.url().await);
    let page = c.client.source().await.unwrap();
    assert!(page.contains("Vous êtes déconnecté."));
    axe(&c, "back from ProConnect's log-out").await;

    // A return this browser did not start: the French message, on the log-in page.
    c.goto(&server.url(&format!("/connexion/proconnect/retour?code=x&state={}", "a".repeat(64)))).await;
    assert!(c.url().await.ends_with("/connexion?erreur=proconnect-session"), "{}", c.url().await);
    axe(&c, "a failed ProConnect log-in").await;
    c.quit().await;
}
