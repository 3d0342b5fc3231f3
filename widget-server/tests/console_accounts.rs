//! End-to-end tests of the console's accounts, over real sockets against the real binary, on
//! both stores: one server per journey (SQLite with the outbox, PostgreSQL with a real SMTP
//! server), each walking sign-up, confirmation, approval, log-in, reset, log-out, account
//! deletion, and every way in that must stay shut. At the end, the log must hold nothing a
//! user typed and no secret.

mod common;

use common::browser::{confirm_link, link, live_and_revoked, Browser, Mailbox, Page};
use common::{cli, exec_sql, Server};
use hyper::{Method, StatusCode};

const PW: &str = "une phrase de passe solide";
const PW2: &str = "une autre phrase tout aussi solide";

fn jeton(link: &str) -> String {
    link.split("jeton=").nth(1).expect("a jeton in the link").to_string()
}

async fn sign_up(server: &Server, name: &str, email: &str) -> Page {
    let mut b = Browser::new(server);
    let fields = [("nom", name), ("email", email), ("administration", "Direction des tests")];
    let page = b.submit("/inscription", "/inscription", &fields).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "sign-up of {email}: {}", page.body);
    assert_eq!(page.location(), "/inscription/envoyee");
    page
}

/// Opens the `nth` mail to `email`, follows its confirmation link (GET shows the form, changes
/// nothing), then chooses the password `PW` there.
async fn confirm(server: &Server, mailbox: &Mailbox, email: &str, nth: usize) -> Page {
    let body = mailbox.wait_for(server, email, "Confirmez votre adresse e-mail", nth);
    let l = link(&body, "/confirmation");
    let mut b = Browser::new(server);
    let page2 = b.get(&l).await;
    assert_eq!(page2.status, StatusCode::OK, "a GET does not use the link");
    confirm_link(&mut b, &l, None, PW).await
}

async fn log_in_page(server: &Server, email: &str, password: &str) -> Page {
    let mut b = Browser::new(server);
    b.submit("/connexion", "/connexion", &[("email", email), ("mot_de_passe", password)]).await
}

/// The whole account journey on one server. `tag` keeps addresses apart in the shared sink.
async fn journey(server: &Server, mailbox: &Mailbox, tag: &str) {
    // The SMTP sink outlives a run when tests are re-run by hand: addresses differ per server.
    let tag = &format!("{tag}{}", server.addr.port());
    let gouv = format!("marie.{tag}@interieur.gouv.fr");
    let other = format!("jean.{tag}@exemple-{tag}.org");
    let third = format!("lea.{tag}@exemple-{tag}.org");
    let refused = format!("spam.{tag}@ailleurs-{tag}.org");

    // The home page speaks French and leads to the porteurs' space.
    let mut visitor = Browser::new(server);
    let home = visitor.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Espace porteurs") && home.body.contains(r#"href="/inscription""#));

    // Sign-up with a .gouv.fr address: confirmed from the mail, active at once.
    sign_up(server, "Marie Curie", &gouv).await;
    let page = confirm(server, mailbox, &gouv, 1).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/connexion?info=adresse-confirmee"));
    // The used link is dead, for GET and POST alike.
    let body = mailbox.wait_for(server, &gouv, "Confirmez votre adresse e-mail", 1);
    let used = link(&body, "/confirmation");
    let mut b = Browser::new(server);
    let page = b.get(&used).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("déjà été utilisé"));
    b.get("/connexion").await;
    assert_eq!(b.post("/confirmation", &[("jeton", &jeton(&used))]).await.status, StatusCode::GONE);
    assert_eq!(b.get("/confirmation?jeton=0123").await.status, StatusCode::NOT_FOUND);

    // Wrong password and unknown address: the same answer.
    let wrong = log_in_page(server, &gouv, "pas le bon mot de passe").await;
    let unknown = log_in_page(server, &format!("personne.{tag}@interieur.gouv.fr"), PW).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("Adresse e-mail ou mot de passe incorrect."));
    assert!(unknown.body.contains("Adresse e-mail ou mot de passe incorrect."));

    // Log-in lands on the console home, which knows who is there.
    let mut marie = Browser::new(server);
    let page = marie.submit("/connexion", "/connexion", &[("email", &gouv), ("mot_de_passe", PW)]).await;
    assert_eq!(page.location(), "/console");
    let cookie = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"), "{cookie}");
    let console = marie.get("/console").await;
    assert_eq!(console.status, StatusCode::OK);
    assert!(console.body.contains("Mes démarches") && console.body.contains("Marie Curie"));
    // A porteur is no administrator.
    let admin = marie.get("/console/admin").await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN);
    assert!(admin.body.contains("réservée aux administrateurs"));

    // Another domain waits for an administrator; the operator's command lets it in.
    sign_up(server, "Jean Valjean", &other).await;
    let page = confirm(server, mailbox, &other, 1).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("un administrateur doit valider votre compte"));
    mailbox.wait_for(server, &other, "Votre compte attend une validation", 1);
    let waiting = log_in_page(server, &other, PW).await;
    assert_eq!(waiting.status, StatusCode::FORBIDDEN);
    assert!(waiting.body.contains("attend la validation"));
    assert!(cli(&server.dir, &server.db_url, &["account", "pending"]).contains(&other));
    cli(&server.dir, &server.db_url, &["account", "approve", &other]);
    Browser::new(server).log_in(&other, PW).await;

    // Marie becomes the administrator; the next waiting account reaches her by e-mail and on
    // the administration page, where she accepts it with its domain.
    cli(&server.dir, &server.db_url, &["account", "admin", &gouv]);
    sign_up(server, "Léa Seydoux", &third).await;
    confirm(server, mailbox, &third, 1).await;
    let body = mailbox.wait_for(server, &gouv, "Un compte attend votre validation", 1);
    assert!(body.contains(&third));
    let admin = marie.get("/console/admin").await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    assert!(admin.body.contains(&third));
    let id = admin.body.split("/console/admin/comptes/").nth(1).unwrap().split('/').next().unwrap().to_string();
    let page = marie.post(&format!("/console/admin/comptes/{id}/accepter"), &[("autoriser_domaine", "oui")]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/console/admin?info=compte-accepte"));
    mailbox.wait_for(server, &third, "Votre compte est validé", 1);
    Browser::new(server).log_in(&third, PW).await;
    let admin = marie.get("/console/admin").await;
    assert!(admin.body.contains(&format!("exemple-{tag}.org")), "the domain is on the list");
    assert!(
        admin.body.contains("Compte validé") && admin.body.contains("Domaine autorisé ajouté"),
        "audited, in French"
    );
    assert!(!admin.body.contains("account.approve"), "no raw code");
    // Accepting twice is refused; a garbage or unknown id is a 404.
    for bad in ["abc", "-1", "99999999999999999999", "987654"] {
        let page = marie.post(&format!("/console/admin/comptes/{bad}/accepter"), &[]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{bad}");
    }
    let again = marie.post(&format!("/console/admin/comptes/{id}/accepter"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // The domain now lets its addresses in at once.
    let fourth = format!("paul.{tag}@sous.exemple-{tag}.org");
    sign_up(server, "Paul", &fourth).await;
    let page = confirm(server, mailbox, &fourth, 1).await;
    assert_eq!(page.location(), "/connexion?info=adresse-confirmee");

    // A refused account is deleted, and told.
    sign_up(server, "Spam", &refused).await;
    confirm(server, mailbox, &refused, 1).await;
    let admin = marie.get("/console/admin").await;
    let id = admin.body.split("/console/admin/comptes/").nth(1).unwrap().split('/').next().unwrap().to_string();
    assert!(admin.body.contains(&refused));
    let page = marie.post(&format!("/console/admin/comptes/{id}/refuser"), &[]).await;
    assert_eq!(page.location(), "/console/admin?info=compte-refuse");
    mailbox.wait_for(server, &refused, "Votre demande de compte n'a pas été acceptée", 1);
    assert_eq!(log_in_page(server, &refused, PW).await.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Sign-up again with a confirmed address: same answer, and a mail to its owner only.
    sign_up(server, "Imposteur", &gouv).await;
    mailbox.wait_for(server, &gouv, "Vous avez déjà un compte", 1);
    Browser::new(server).log_in(&gouv, PW).await;

    // Somebody signs up first with an address that is not theirs; its owner signs up next.
    // Sign-up takes no password, so the intruder holds nothing; the owner's older mail (the
    // intruder's sign-up) no longer works, and the newer one lets the owner choose the
    // password and correct the name.
    let squatted = format!("cible.{tag}@culture.gouv.fr");
    sign_up(server, "Squatteur", &squatted).await;
    sign_up(server, "Vraie Cible", &squatted).await;
    let early = log_in_page(server, &squatted, PW2).await;
    assert_eq!(early.status, StatusCode::UNPROCESSABLE_ENTITY, "no password exists yet: {}", early.body);
    let (live, first) = live_and_revoked(server, mailbox, &squatted).await;
    let page = confirm_link(&mut Browser::new(server), &live, None, PW).await;
    assert_eq!(page.location(), "/connexion?info=adresse-confirmee");
    assert_eq!(log_in_page(server, &squatted, PW2).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut owner = Browser::new(server);
    owner.log_in(&squatted, PW).await;
    assert!(owner.get("/console/compte").await.body.contains("Vraie Cible"), "the owner's sign-up, confirmed");
    assert_eq!(Browser::new(server).get(&first).await.status, StatusCode::GONE);

    // Forgotten password: the same answer for a known and an unknown address.
    let mut b = Browser::new(server);
    let known = b.submit("/mot-de-passe-oublie", "/mot-de-passe-oublie", &[("email", &other)]).await;
    let unknown = b.post("/mot-de-passe-oublie", &[("email", &format!("inconnu.{tag}@interieur.gouv.fr"))]).await;
    assert_eq!((known.status, known.location()), (unknown.status, unknown.location()));
    assert_eq!(known.location(), "/mot-de-passe-oublie?info=lien-envoye");
    let mut jean = Browser::new(server);
    jean.log_in(&other, PW).await;
    let body = mailbox.wait_for(server, &other, "Choisissez un nouveau mot de passe", 1);
    let reset = link(&body, "/mot-de-passe");
    let page = b.get(&reset).await;
    assert_eq!(page.status, StatusCode::OK);
    // A too-short password is refused without using the link.
    let short = b
        .post("/mot-de-passe", &[("jeton", &jeton(&reset)), ("mot_de_passe", "court"), ("confirmation", "court")])
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("au moins 12 caractères"));
    let done =
        b.post("/mot-de-passe", &[("jeton", &jeton(&reset)), ("mot_de_passe", PW2), ("confirmation", PW2)]).await;
    assert_eq!(done.location(), "/connexion?info=mot-de-passe-reinitialise");
    // Every session of the account ended; the old password is dead, the new one works.
    assert_eq!(jean.get("/console").await.status, StatusCode::SEE_OTHER);
    assert_eq!(log_in_page(server, &other, PW).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    jean.log_in(&other, PW2).await;
    // The link, once used, cannot be used again (a stolen link is worthless).
    let mut thief = Browser::new(server);
    assert_eq!(thief.get(&reset).await.status, StatusCode::GONE);
    thief.get("/connexion").await;
    let stolen =
        thief.post("/mot-de-passe", &[("jeton", &jeton(&reset)), ("mot_de_passe", PW), ("confirmation", PW)]).await;
    assert_eq!(stolen.status, StatusCode::GONE);
    jean.log_in(&other, PW2).await;

    // An expired link gets its own page.
    let late = format!("tard.{tag}@interieur.gouv.fr");
    sign_up(server, "En retard", &late).await;
    exec_sql(
        &server.db_url,
        "UPDATE email_token SET expires_at = created_at WHERE used_at IS NULL AND kind = 'confirm'",
    )
    .await;
    let body = mailbox.wait_for(server, &late, "Confirmez votre adresse e-mail", 1);
    let page = Browser::new(server).get(&link(&body, "/confirmation")).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("Ce lien a expiré"));

    // Log-out ends the session server-side: the old cookie is worthless.
    let mut b = Browser::new(server);
    b.log_in(&third, PW).await;
    let cookie = b.cookies.get("monavis_session").cloned().unwrap();
    assert_eq!(b.get("/console").await.status, StatusCode::OK);
    let out = b.post("/deconnexion", &[]).await;
    assert_eq!(out.location(), "/connexion?info=deconnecte");
    assert!(!b.cookies.contains_key("monavis_session"), "the cookie is cleared");
    b.cookies.insert("monavis_session".into(), cookie);
    let page = b.get("/console").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().starts_with("/connexion?suite=%2Fconsole"), "{}", page.location());

    // Log-in rotates the session: the cookie of before is ended.
    let mut b = Browser::new(server);
    b.log_in(&third, PW).await;
    let before = b.cookies.get("monavis_session").cloned().unwrap();
    b.log_in(&third, PW).await;
    let after = b.cookies.get("monavis_session").cloned().unwrap();
    assert_ne!(before, after);
    let mut old = Browser::new(server);
    old.cookies.insert("monavis_session".into(), before);
    assert_eq!(old.get("/console").await.status, StatusCode::SEE_OTHER);

    // Changing the password from « Mon compte » ends the other sessions, not this one.
    let mut here = Browser::new(server);
    let mut there = Browser::new(server);
    here.log_in(&fourth, PW).await;
    there.log_in(&fourth, PW).await;
    let wrong = here
        .submit(
            "/console/compte",
            "/console/compte/mot-de-passe",
            &[("actuel", "faux mot de passe!"), ("mot_de_passe", PW2), ("confirmation", PW2)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("Le mot de passe actuel est incorrect."));
    let changed = here
        .post("/console/compte/mot-de-passe", &[("actuel", PW), ("mot_de_passe", PW2), ("confirmation", PW2)])
        .await;
    assert_eq!(changed.location(), "/console/compte?info=mot-de-passe-change");
    assert_eq!(here.get("/console/compte").await.status, StatusCode::OK);
    assert_eq!(there.get("/console").await.status, StatusCode::SEE_OTHER);
    mailbox.wait_for(server, &fourth, "Votre mot de passe a été changé", 1);

    // Account deletion needs the password, then nothing of the account works.
    let refused_delete =
        here.submit("/console/compte", "/console/compte/suppression", &[("mot_de_passe_suppression", PW)]).await;
    assert_eq!(refused_delete.status, StatusCode::UNPROCESSABLE_ENTITY, "the old password no longer works");
    let deleted = here.post("/console/compte/suppression", &[("mot_de_passe_suppression", PW2)]).await;
    assert_eq!(deleted.location(), "/?info=compte-supprime");
    assert_eq!(here.get("/console").await.status, StatusCode::SEE_OTHER);
    assert_eq!(log_in_page(server, &fourth, PW2).await.status, StatusCode::UNPROCESSABLE_ENTITY);

    forged_requests(server, &gouv).await;
    brute_force(server, tag).await;

    // Nothing a user typed, and no secret, reached the log.
    let log = server.log();
    assert!(log.contains("listening"), "the log is captured");
    for secret in [PW, PW2, "une+phrase", "Marie Curie", "Valjean", &gouv, &other, &third, &refused, &fourth] {
        assert!(!log.contains(secret), "the log holds {secret:?}");
    }
    for token in [jeton(&used), jeton(&reset)] {
        assert!(!log.contains(&token), "the log holds a link token");
    }
    for cookie in marie.cookies.values().chain(jean.cookies.values()) {
        assert!(!log.contains(cookie.as_str()), "the log holds a cookie value");
    }
}

/// State-changing requests that do not come from our pages, or without the right token: 403.
async fn forged_requests(server: &Server, email: &str) {
    let mut b = Browser::new(server);
    b.get("/connexion").await;
    let form = [("email", email), ("mot_de_passe", PW)];
    let forms = |csrf: Option<&str>| {
        let mut f: Vec<(&str, &str)> = form.to_vec();
        if let Some(c) = csrf {
            f.push(("csrf", c));
        }
        serde_urlencoded::to_string(&f).unwrap()
    };
    let ct = ("content-type", "application/x-www-form-urlencoded");
    let good = b.cookies.get("monavis_csrf").cloned().unwrap();
    // No token, a wrong token, a token without its cookie.
    for (body, label) in [(forms(None), "no token"), (forms(Some(&"0".repeat(64))), "wrong token")] {
        let page = b.send(Method::POST, "/connexion", body, &[ct]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{label}");
        assert!(page.body.contains("La vérification de sécurité de ce formulaire a échoué"), "{label}");
    }
    let mut cookieless = Browser::new(server);
    let page = cookieless.send(Method::POST, "/connexion", forms(Some(&good)), &[ct]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "a token without its cookie");
    // The right token from a foreign page.
    let page = b.send(Method::POST, "/connexion", forms(Some(&good)), &[ct, ("origin", "https://evil.example")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "foreign Origin");
    let page = b.send(Method::POST, "/connexion", forms(Some(&good)), &[ct, ("origin", "null")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "opaque Origin");
    let page = b.send(Method::POST, "/connexion", forms(Some(&good)), &[ct, ("sec-fetch-site", "cross-site")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "cross-site fetch");
    // The right token from our page (no Origin, as older browsers): accepted.
    let page = b.send(Method::POST, "/connexion", forms(Some(&good)), &[ct]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    // Signed in, the session's token is required: the pre-log-in one no longer does.
    let page = b.send(Method::POST, "/deconnexion", format!("csrf={good}"), &[ct]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/console").await.status, StatusCode::OK, "still signed in");
    // Every console page carries the strict CSP and friends, and is never cached.
    for path in ["/", "/inscription", "/connexion", "/console", "/console/compte", "/console/admin", "/nulle-part"] {
        let page = b.get(path).await;
        let h = |n: &str| page.headers.get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(
            h("content-security-policy").contains("default-src 'none'")
                && !h("content-security-policy").contains("unsafe"),
            "{path}"
        );
        assert!(h("content-security-policy").contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("referrer-policy"), "same-origin", "{path}");
        assert_eq!(h("cache-control"), "no-store", "{path}");
        assert!(!page.body.contains("<script"), "{path}");
    }
    let cookie = b.cookies.get("monavis_session").unwrap().clone();
    assert_eq!(cookie.len(), 64);
    let token = b.get("/console").await.csrf().unwrap();
    let set = b.send(Method::POST, "/deconnexion", format!("csrf={token}"), &[ct]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER);
    let page = Browser::new(server).get("/nulle-part").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Page introuvable"));
}

/// Ten wrong passwords in a row are answered; the eleventh gets 429 with Retry-After.
async fn brute_force(server: &Server, tag: &str) {
    let target = format!("cible.{tag}@interieur.gouv.fr");
    let mut b = Browser::new(server);
    b.get("/connexion").await;
    for i in 1..=10 {
        let page = b.post("/connexion", &[("email", &target), ("mot_de_passe", &format!("essai numéro {i:02}"))]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "try {i}");
    }
    let page = b.post("/connexion", &[("email", &target), ("mot_de_passe", "essai numéro 11")]).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = page.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    assert!(page.body.contains("Trop de tentatives"));
}

#[tokio::test(flavor = "multi_thread")]
async fn journey_on_sqlite_with_the_outbox() {
    let (tmp, url) = Server::sqlite_dir();
    // Not the laptop's console backend: this log must hold no link (`--log-emails auto` would
    // print the mails, loopback without SMTP).
    let server = Server::start_logged(tmp.path(), &url, &["--log-emails", "no"]);
    journey(&server, &Mailbox::Outbox, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn journey_on_postgres_with_smtp() {
    let (mailbox, smtp_url) = Mailbox::smtp();
    let url = common::fresh_pg_database("console_accounts").await;
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_logged(tmp.path(), &url, &["--smtp-url", &smtp_url]);
    journey(&server, &mailbox, "postgres").await;
    // Mail that went out through SMTP keeps no body (and so no link) in the outbox.
    let out = cli(&server.dir, &server.db_url, &["email", "list", "--limit", "1000"]);
    assert!(out.contains("(sent ") && !out.contains("jeton="), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_when_idle_and_when_too_old() {
    let (tmp, url) = Server::sqlite_dir();
    let server = Server::start_logged(
        tmp.path(),
        &url,
        &["--session-idle-timeout", "2s", "--session-max-age", "5s", "--public-url", "https://avis.example.fr"],
    );
    let email = "temps@interieur.gouv.fr";
    sign_up(&server, "Chronos", email).await;
    confirm(&server, &Mailbox::Outbox, email, 1).await;

    // Behind https, cookies are Secure and `__Host-` (and always HttpOnly, SameSite=Lax, whole
    // site).
    let mut b = Browser::new(&server);
    let page = b.submit("/connexion", "/connexion", &[("email", email), ("mot_de_passe", PW)]).await;
    let cookie = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.starts_with("__Host-monavis_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=5"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{attribute} in {cookie}");
    }

    // Active every 1.2 s: the idle limit never hits, the absolute one does after 5 s.
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_millis(4500) {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert_eq!(b.get("/console").await.status, StatusCode::OK, "active at {:?}", start.elapsed());
    }
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let page = b.get("/console").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/connexion?suite=%2Fconsole&info=session-expiree");

    // Idle for longer than 2 s: ended.
    b.log_in(email, PW).await;
    assert_eq!(b.get("/console").await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let page = b.get("/console/compte").await;
    assert_eq!(page.location(), "/connexion?suite=%2Fconsole%2Fcompte&info=session-expiree");
    let login = b.get(page.location()).await;
    assert!(login.body.contains("Votre session a expiré"));
    // A form posted after the session ended goes back to log-in, not to « action refusée ».
    b.log_in(email, PW).await;
    let form = b.get("/console/compte").await;
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let late = b.post("/console/compte/mot-de-passe", &[("csrf", &form.csrf().unwrap()), ("actuel", PW)]).await;
    assert_eq!((late.status, late.location()), (StatusCode::SEE_OTHER, "/connexion?info=session-expiree"));
    // Back to where the porteur was after logging in again.
    let page = b
        .submit("/connexion", "/connexion", &[("email", email), ("mot_de_passe", PW), ("suite", "/console/compte")])
        .await;
    assert_eq!(page.location(), "/console/compte");
}
