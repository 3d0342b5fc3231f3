//! Accessibility of every page a citizen, a porteur, an administrator or the public can reach,
//! checked by axe-core (WCAG 2.0, 2.1 and 2.2 A and AA, and its best practices) inside a real
//! headless Chromium at 1280 and at 360 CSS pixels: the home page, the observatory and a
//! démarche's public page, the form (blank, with errors) and its thank-you page, the citizen's
//! 404, every console page of a porteur and of an administrator, their error states (bad input,
//! bad links, 403, 404). One server and one Chromium session for the whole file; the pages are
//! reached the way their users reach them (links, forms filled and submitted in the browser).

mod common;

use common::browser::{link, porteur, Mailbox};
use common::webdriver::Chromium;
use common::{cli, exec_sql, post_vote, vote_body, wait_for_avis, Server};
use hyper::StatusCode;

const PW: &str = "une phrase de passe solide";
/// Carried by the porteur, 120 avis (published in the observatory).
const CARRIED: i64 = 31;
/// Not carried by the porteur, a few avis (« Nombre d'avis insuffisant »).
const OTHER: i64 = 32;
/// No avis (« À venir »).
const EMPTY: i64 = 33;

const WIDE: (u32, u32) = (1280, 900);
const NARROW: (u32, u32) = (360, 740);

fn vote(i: usize) -> String {
    let sat = ["bien", "bien", "moyen", "pas-bien"][i % 4];
    let mut body = format!("satisfaction={sat}&facilite={}", ["facile", "moyen", "difficile"][i % 3]);
    body +=
        &format!("&clarte={}&aide={}", ["clair", "moyen", "pas-clair"][i % 3], ["aucune", "proche", "agent"][i % 3]);
    if i.is_multiple_of(4) {
        body += "&commentaire=Tr%C3%A8s+bien+expliqu%C3%A9%2C+merci+%C3%A0+l%27agent";
    }
    body
}

/// What axe found, page by page.
#[derive(Default)]
struct Report {
    pages: usize,
    violations: Vec<String>,
}

impl Report {
    /// Runs axe on the page shown at both widths (the layout changes with the width, not the
    /// markup, so one load serves both); `what` names the page in the report.
    async fn check(&mut self, c: &Chromium, what: &str) {
        let url = c.url().await;
        for (w, h) in [WIDE, NARROW] {
            c.resize(w, h).await;
            let (laid_out, widest) = c.laid_out_width().await;
            if laid_out != u64::from(w) {
                self.violations.push(format!("{what} ({url}) at {w} px: laid out {laid_out} px wide: {widest}"));
            }
            for v in c.axe().await {
                self.violations.push(format!("{what} ({url}) at {w} px: {v}"));
            }
        }
        c.resize(WIDE.0, WIDE.1).await;
        self.pages += 1;
    }

    /// Opens `path` on `server` and checks it.
    async fn visit(&mut self, c: &Chromium, server: &Server, path: &str) {
        c.goto(&server.url(path)).await;
        let shown = c.url().await;
        assert!(!shown.contains("/connexion") || path.starts_with("/connexion"), "{path} sent us to log in: {shown}");
        self.check(c, path).await;
    }
}

async fn log_in(c: &Chromium, server: &Server, email: &str) {
    c.client.delete_all_cookies().await.unwrap();
    c.goto(&server.url("/connexion")).await;
    c.fill("input[name=email]", email).await;
    c.fill("input[name=mot_de_passe]", PW).await;
    c.click("form button[type=submit]").await;
    assert!(c.url().await.ends_with("/console"), "{email} logged in: {}", c.url().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_passes_axe_at_1280_and_360_px() {
    let (tmp, url) = Server::sqlite_dir();
    for (id, name) in
        [(CARRIED, "Demande de carte grise"), (OTHER, "Inscription à la cantine"), (EMPTY, "Permis de pêche")]
    {
        cli(tmp.path(), &url, &["demarche", "add", "--id", &id.to_string(), "--name", name]);
    }
    let server = Server::start_in(
        tmp.path(),
        &url,
        &[
            "--flush-interval-ms",
            "50",
            "--rate-per-minute",
            "100000",
            "--rate-per-minute-demarche",
            "100000",
            "--operator-name",
            "Ministère de l'Exemple",
            "--operator-marianne",
            "--operator-dpo",
            "dpd@exemple.gouv.fr",
        ],
    );

    // The porteur claims CARRIED while it is new (no avis yet: granted at once).
    let mailbox = Mailbox::Outbox;
    let porteuse = "porteuse@interieur.gouv.fr";
    let mut p = porteur(&server, &mailbox, "Porteuse Exemple", porteuse, PW).await;
    p.get(&format!("/console/demarches/{CARRIED}")).await;
    let claimed = p.post(&format!("/console/demarches/{CARRIED}/porteur"), &[]).await;
    assert_eq!(claimed.location(), format!("/console/demarches/{CARRIED}/code?info=porteur"));

    // Avis for the dashboard, the list and the observatory, counted on a past day.
    for i in 0..120 {
        assert_eq!(post_vote(&server, CARRIED, &vote_body(&server, CARRIED, &vote(i))).await.0, StatusCode::SEE_OTHER);
    }
    for i in 0..5 {
        assert_eq!(post_vote(&server, OTHER, &vote_body(&server, OTHER, &vote(i))).await.0, StatusCode::SEE_OTHER);
    }
    assert_eq!(wait_for_avis(&server.db_url, 125, std::time::Duration::from_secs(10)).await, 125, "votes flushed");
    exec_sql(&server.db_url, "UPDATE avis_daily SET day = date(day, '-3 day');").await;

    // A second porteur asking to carry it too (with a reason), a pending invitation, an
    // administrator, and an account waiting for the administrator.
    let mut second = porteur(&server, &mailbox, "Second Porteur", "second@interieur.gouv.fr", PW).await;
    second.get(&format!("/console/demarches/{CARRIED}")).await;
    let asked = second
        .post(&format!("/console/demarches/{CARRIED}/porteur"), &[("motif", "Adjoint au chef de bureau des titres")])
        .await;
    assert_eq!(asked.location(), format!("/console/demarches/{CARRIED}?info=demande-envoyee"));
    p.post(&format!("/console/demarches/{CARRIED}/inviter"), &[("email", "invitee@interieur.gouv.fr")]).await;
    let admin = "admin@numerique.gouv.fr";
    porteur(&server, &mailbox, "Admin Exemple", admin, PW).await;
    cli(&server.dir, &server.db_url, &["account", "admin", admin]);
    let mut waiting = common::browser::Browser::new(&server);
    waiting
        .submit(
            "/inscription",
            "/inscription",
            &[("nom", "Prestataire"), ("email", "prestataire@exemple.fr"), ("administration", "Prestataire privé")],
        )
        .await;
    let confirmation = link(
        &mailbox.wait_for(&server, "prestataire@exemple.fr", "Confirmez votre adresse e-mail", 1),
        "/confirmation",
    );

    let c = Chromium::start(WIDE.0, WIDE.1).await;
    let mut report = Report::default();

    // axe finds what it should: an image without text and a field without label, added to a
    // page, are two violations.
    c.goto(&server.url("/")).await;
    c.script(
        "document.querySelector('main').insertAdjacentHTML('beforeend', \
         '<img src=\"/static/bouton-bleu.svg\"><input type=\"text\">')",
        vec![],
    )
    .await;
    let found = c.axe().await;
    assert!(found.iter().any(|v| v.starts_with("\"image-alt\"")), "axe sees an image without alt: {found:?}");
    assert!(found.iter().any(|v| v.starts_with("\"label\"")), "axe sees a field without label: {found:?}");

    // The public and the citizen.
    for path in [
        "/",
        "/observatoire",
        "/observatoire?tri=satisfaction&ordre=desc&q=carte",
        &format!("/Demarches/{CARRIED}"),
        &format!("/Demarches/{OTHER}"),
        &format!("/Demarches/{EMPTY}"),
        "/nulle-part",
        &format!("/Demarches/{CARRIED}?view-mode=formulaire-avis&nd_source=button&key=00"),
        "/inscription",
        "/connexion",
        "/mot-de-passe-oublie",
        "/mot-de-passe?jeton=abc",
        "/confirmation?jeton=abc",
        &confirmation,
    ] {
        report.visit(&c, &server, path).await;
    }
    c.goto(&server.url(&confirmation)).await;
    c.fill("input[name=mot_de_passe]", "court").await;
    c.submit_unchecked("main form button[type=submit]").await;
    report.check(&c, "confirmation with errors").await;
    report.visit(&c, &server, &server.form_path(CARRIED)).await;
    c.submit_unchecked("form button[type=submit]").await;
    report.check(&c, "the form with errors").await;
    c.script("document.querySelector('input[name=satisfaction][value=bien]').click()", vec![]).await;
    c.click("form button[type=submit]").await;
    assert!(c.url().await.contains("merci"), "the vote lands on merci: {}", c.url().await);
    report.check(&c, "merci").await;

    // Error states of the public forms.
    c.goto(&server.url("/connexion")).await;
    c.fill("input[name=email]", porteuse).await;
    c.fill("input[name=mot_de_passe]", "pas le bon mot de passe").await;
    c.click("form button[type=submit]").await;
    report.check(&c, "log-in refused").await;
    c.goto(&server.url("/inscription")).await;
    c.submit_unchecked("form button[type=submit]").await;
    report.check(&c, "sign-up with errors").await;
    c.goto(&server.url("/mot-de-passe-oublie")).await;
    c.fill("input[name=email]", porteuse).await;
    c.click("form button[type=submit]").await;
    report.check(&c, "password reset asked").await;

    // The porteur.
    log_in(&c, &server, porteuse).await;
    let d = format!("/console/demarches/{CARRIED}");
    for path in [
        "/console",
        "/console/demarches?q=carte",
        "/console/demarches?q=aucune+correspondance",
        "/console/demarches/nouvelle",
        &d,
        &format!("{d}/satisfaction"),
        &format!("{d}/satisfaction?periode=12-mois"),
        &format!("{d}/avis"),
        &format!("{d}/avis?q=agent&satisfaction=bien"),
        &format!("{d}/code"),
        &format!("{d}/fiche"),
        &format!("{d}/porteurs"),
        &format!("/console/demarches/{OTHER}"),
        &format!("/console/demarches/{EMPTY}"),
        &format!("/console/demarches/{OTHER}/avis"),
        "/console/demarches/999999",
        "/console/compte",
        "/console/compte/notifications",
        "/desabonnement?jeton=abc",
        "/console/invitation?jeton=abc",
        "/console/nulle-part",
    ] {
        report.visit(&c, &server, path).await;
    }
    c.goto(&server.url("/console/demarches/nouvelle")).await;
    c.submit_unchecked("main form button[type=submit]").await;
    report.check(&c, "new démarche with errors").await;
    c.goto(&server.url(&format!("{d}/fiche"))).await;
    c.fill("input[name=url]", "pas une adresse").await;
    c.submit_unchecked("main form button[type=submit]").await;
    report.check(&c, "fiche with errors").await;
    c.goto(&server.url(&format!("{d}/fiche"))).await;
    c.click("main form button[type=submit]").await;
    report.check(&c, "fiche saved").await;
    c.goto(&server.url("/console/compte/notifications")).await;
    c.click("main form button[type=submit]").await;
    report.check(&c, "notifications saved").await;

    // The administrator.
    log_in(&c, &server, admin).await;
    report.visit(&c, &server, "/console/admin").await;

    c.quit().await;
    assert!(report.pages >= 40, "pages checked: {}", report.pages);
    assert!(
        report.violations.is_empty(),
        "{} axe violations:\n{}",
        report.violations.len(),
        report.violations.join("\n")
    );
}
