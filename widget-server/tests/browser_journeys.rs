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

/// The e-mail to `to` most recently printed in the server's log (`--log-emails`, on by default
/// on loopback without SMTP): the link it holds to `path`.
fn link_from_log(server: &Server, to: &str, path: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = server.log();
        if let Some(mail) =
            log.rsplit(&format!("e-mail to {to}")).next().filter(|_| log.contains(&format!("e-mail to {to}")))
        {
            if let Some(at) = mail.find(&format!("{path}?")) {
                let url = mail[..at].rsplit(char::is_whitespace).next().unwrap_or("").to_string()
                    + mail[at..].split_whitespace().next().unwrap_or("");
                return url;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no mail to {to} with a link to {path} in the log:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Where an element's top is, relative to the viewport (px): inside the first screen when below
/// the window's inner height.
async fn top_of(c: &Chromium, css: &str) -> (f64, f64) {
    let v = c
        .script(
            "const e = document.querySelector(arguments[0]); if (!e) return [null, innerHeight];\
             return [e.getBoundingClientRect().top, innerHeight];",
            vec![json!(css)],
        )
        .await;
    (v[0].as_f64().unwrap_or(f64::MAX), v[1].as_f64().unwrap_or(0.0))
}

/// Asserts that `css` starts inside the first screen, as the page opened (no scroll by hand).
async fn in_first_screen(c: &Chromium, css: &str, what: &str) {
    let (top, height) = top_of(c, css).await;
    assert!(top >= 0.0 && top < height - 40.0, "{what}: {css} starts at {top} px, the screen is {height} px high");
}

/// Words broken inside, over two lines, in the page shown (each word of each text node is
/// measured with a Range: one broken inside has two line boxes). Code, fields and hidden text
/// are left out, and so are web and e-mail addresses (longer than a phone is wide, they must
/// break somewhere).
async fn broken_words(c: &Chromium) -> Vec<String> {
    let v = c
        .script(
            "const out = []; const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);\
             while (w.nextNode()) { const n = w.currentNode; const p = n.parentElement;\
               if (!p || p.closest('textarea,code,pre,script,style,.sr-only,svg,option') || !p.offsetParent) continue;\
               const re = /\\S+/g; let m; while ((m = re.exec(n.data))) { const r = document.createRange();\
                 r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);\
                 const tops = new Set(Array.from(r.getClientRects()).filter(x => x.width > 0).map(x => Math.round(x.top)));\
                 if (tops.size > 1 && !/:\\/\\/|@/.test(m[0])) out.push(m[0]); } }\
             return out;",
            vec![],
        )
        .await;
    v.as_array().map(|a| a.iter().filter_map(|w| w.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// The English word « button » in the French text a person reads (not in code).
async fn english_button(c: &Chromium) -> bool {
    let v = c
        .script(
            "const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); let found = false;\
             while (w.nextNode()) { const p = w.currentNode.parentElement;\
               if (p && !p.closest('textarea,code,pre,script,style') && /\\bbutton\\b/i.test(w.currentNode.data)) found = true; }\
             return found;",
            vec![],
        )
        .await;
    v == json!(true)
}

/// README's « Your first hour » followed literally on a laptop: no --public-url, no SMTP (the
/// mails are read from the server's log), then the whole product as a newcomer meets it, at
/// 1280×800 and on a 360 px phone, with axe on every page.
#[tokio::test(flavor = "multi_thread")]
async fn a_porteur_and_a_citizen_in_a_real_browser() {
    let (tmp, url) = Server::sqlite_dir();
    let server = Server::start_logged(
        tmp.path(),
        &url,
        &["--flush-interval-ms", "100", "--operator-name", "Ministère de l'Exemple", "--operator-marianne"],
    );
    let log = server.log();
    assert!(log.contains(&format!("public_url=http://{}", server.addr)), "the public URL is the address bound: {log}");
    let c = Chromium::start(1280, 800).await;

    // The porteur signs up: no password asked here.
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

    // … reads the confirmation e-mail in the terminal, opens its link and chooses a password
    // there …
    let confirm = link_from_log(&server, EMAIL, "/confirmation");
    assert!(confirm.starts_with(&format!("http://{}/confirmation?jeton=", server.addr)), "{confirm}");
    c.goto(&confirm).await;
    axe(&c, "confirmation").await;
    c.fill("input[name=mot_de_passe]", PW).await;
    c.fill("input[name=confirmation]", PW).await;
    c.click("main form button[type=submit]").await;
    assert!(c.url().await.contains("/connexion"), "{}", c.url().await);

    // … becomes the first administrator from the command line (README), logs in …
    common::cli(tmp.path(), &url, &["account", "admin", EMAIL]);
    axe(&c, "log-in").await;
    c.fill("input[name=email]", EMAIL).await;
    c.fill("input[name=mot_de_passe]", PW).await;
    c.click("main form button[type=submit]").await;
    assert!(c.url().await.ends_with("/console"), "{}", c.url().await);
    axe(&c, "my démarches").await;

    // … finds the catalogue empty, said so, and « Ajouter une démarche manquante » offered at once;
    // as an administrator, keeps the number the démarche had in the legacy service.
    c.goto(&server.url("/console/demarches")).await;
    axe(&c, "search").await;
    assert!(c.client.source().await.unwrap().contains("Le catalogue des démarches est vide"));
    c.click("#ajouter a[href^='/console/demarches/nouvelle']").await;
    axe(&c, "new démarche").await;
    let prefilled = c.script("return document.querySelector('input[name=administration]').value", vec![]).await;
    assert_eq!(prefilled, json!("Direction des titres"), "administration prefilled from the account");
    let numeric = c.script("return document.querySelector('input[name=volume]').inputMode", vec![]).await;
    assert_eq!(numeric, json!("numeric"), "a phone brings the numeric keyboard");
    c.fill("input[name=numero]", "4521").await;
    c.fill("input[name=nom]", "Permis de chasser").await;
    c.fill("input[name=administration]", "Office français de la biodiversité").await;
    c.click("main form button[type=submit]").await;
    let code_url = c.url().await;
    assert!(code_url.contains("/console/demarches/4521/code"), "the legacy number is kept: {code_url}");
    axe(&c, "button code").await;
    assert!(!english_button(&c).await, "no « button » in the French text of the code page");
    let id = 4521;

    // … generates its code (the white button): the code is in view, full width, where the page
    // opens.
    c.script("document.querySelector('#style-blanc').click()", vec![]).await;
    c.click("main form[method=get] button[type=submit]").await;
    axe(&c, "button code generated").await;
    in_first_screen(&c, "#snippet", "the generated code at 1280×800").await;
    let widths = c
        .script(
            "return [document.querySelector('#snippet').offsetWidth, document.querySelector('main').clientWidth]",
            vec![],
        )
        .await;
    assert!(widths[0].as_f64().unwrap() >= widths[1].as_f64().unwrap() * 0.9, "the code is full width: {widths}");
    let snippet = c.script("return document.querySelector('#snippet').value", vec![]).await;
    let snippet = snippet.as_str().unwrap().to_string();
    assert!(snippet.contains("bouton-blanc.svg"), "{snippet}");
    assert!(
        snippet.contains(&format!("http://{}/Demarches/{id}?", server.addr)),
        "links use the port bound: {snippet}"
    );
    let href = snippet.split("href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let path = href.split_once("://").unwrap().1.split_once('/').map(|(_, p)| format!("/{p}")).unwrap();
    assert!(path.starts_with(&format!("/Demarches/{id}?")), "{path}");
    c.resize(360, 740).await;
    c.goto(&server.url(&format!("/console/demarches/{id}/code?style=bleu#code"))).await;
    in_first_screen(&c, "#snippet", "the generated code at 360 px").await;
    c.resize(1280, 800).await;

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

    // The porteur sees it on the dashboard: the figures first, then the chart.
    let dashboard = server.url(&format!("/console/demarches/{id}/satisfaction"));
    c.goto(&dashboard).await;
    axe(&c, "dashboard").await;
    let n = c.script("return document.querySelector('#nombre-avis').textContent.trim()", vec![]).await;
    assert_eq!(n, json!("1"), "the dashboard counts the vote");
    in_first_screen(&c, "#nombre-avis", "the first figure at 1280×800").await;
    in_first_screen(&c, ".graphique-large", "the chart at 1280×800").await;
    screenshot(&c, "tableau-de-bord.png").await;
    // One index everywhere: the tile, the trend table and the API say the same, marked indicative
    // (one avis).
    let tile = c
        .script(
            "return document.querySelectorAll('.chiffre .valeur')[1].textContent.replace(/\\s+/g, ' ').trim()",
            vec![],
        )
        .await;
    assert_eq!(tile, json!("10,0 / 10 indicatif (moins de 100 avis)"), "the satisfaction tile");
    let table = c
        .script("return Array.from(document.querySelectorAll('details table tbody td em')).map(e => e.firstChild.textContent)", vec![])
        .await;
    assert_eq!(table, json!(["10,0"]), "the trend table (one month with avis, indicative)");

    // A new API key: shown once, in view, full width; the API says the same index.
    c.goto(&server.url("/console/compte")).await;
    axe(&c, "my account").await;
    c.fill("input[name=nom_cle]", "Tableau de bord").await;
    c.click("#cles form button[type=submit]").await;
    axe(&c, "a new API key").await;
    in_first_screen(&c, "#cle-secrete", "the new API key at 1280×800").await;
    let key = c.script("return document.querySelector('#cle-secrete').value", vec![]).await;
    let key = key.as_str().unwrap().to_string();
    let (status, _, body) = common::request(
        hyper::Method::GET,
        &server.url(&format!("/api/v1/demarches/{id}/stats")),
        &[("authorization", &format!("Bearer {key}"))],
        "",
    )
    .await;
    assert_eq!(status, hyper::StatusCode::OK);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["total"]["satisfaction_index"], json!(10.0), "{stats}");
    assert_eq!(stats["total"]["indicative"], json!(true));
    let (_, _, body) = common::request(
        hyper::Method::GET,
        &server.url("/api/v1/demarches"),
        &[("authorization", &format!("Bearer {key}"))],
        "",
    )
    .await;
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(list["demarches"].as_array().unwrap().iter().any(|d| d["id"] == json!(id)), "{list}");

    c.goto(&server.url(&format!("/console/demarches/{id}/avis"))).await;
    axe(&c, "every avis").await;
    let page = c.client.source().await.unwrap();
    assert!(page.contains("Très simple, merci."), "the comment is listed");
    assert!(page.contains("<strong>1</strong> avis correspond"), "the number of results");
    c.goto(&server.url(&format!("/console/demarches/{id}/avis?q=simpl"))).await;
    assert!(c.client.source().await.unwrap().contains("Très simple, merci."), "found from the start of a word");

    // On a phone: the dashboard's first figure and chart come first; no word breaks inside;
    // no English « button »; on every page of the porteur's path.
    c.resize(360, 740).await;
    c.goto(&dashboard).await;
    in_first_screen(&c, "#nombre-avis", "the first figure at 360 px").await;
    let (chart, _) = top_of(&c, ".graphique-etroit").await;
    assert!(chart < 1000.0, "the chart comes soon after the figures at 360 px: {chart} px");
    let label = c.script("return parseFloat(getComputedStyle(document.querySelector('.graphique-etroit text')).fontSize) * document.querySelector('.graphique-etroit').getBoundingClientRect().width / 300", vec![]).await;
    assert!(label.as_f64().unwrap() >= 11.0, "chart labels readable on a phone: {label} px");
    screenshot(&c, "tableau-de-bord-360.png").await;
    for path in [
        "/console".to_string(),
        "/console/demarches".into(),
        format!("/console/demarches/{id}/satisfaction"),
        format!("/console/demarches/{id}/avis"),
        format!("/console/demarches/{id}/code"),
        format!("/console/demarches/{id}/fiche"),
        format!("/console/demarches/{id}/porteurs"),
        "/console/compte".into(),
        "/console/admin".into(),
        "/observatoire".into(),
        format!("/Demarches/{id}"),
    ] {
        c.goto(&server.url(&path)).await;
        axe(&c, &format!("{path} at 360 px")).await;
        let broken = broken_words(&c).await;
        assert!(broken.is_empty(), "{path} at 360 px: words broken inside: {broken:?}");
        assert!(!english_button(&c).await, "{path}: « button » in French text");
    }
    c.resize(1280, 800).await;

    c.goto(&server.url("/observatoire")).await;
    axe(&c, "observatory").await;
    assert!(c.client.source().await.unwrap().contains("Les chiffres vont jusqu'à hier"), "the window is said");
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
