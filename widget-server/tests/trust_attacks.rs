//! The attacks of the trust review (issue 19), each replayed as the attacker played it, through
//! the real server over real sockets, on both stores: it must now fail. One server per store for
//! the whole file; each attack uses addresses and démarches of its own.
//!
//! 1. Signing up first with someone else's address, to own the account once they confirm.
//! 2. Coming back through an invitation after being removed (or after leaving).
//! 4. Keeping an API key through a password reset.
//! 5. Using a reset link mailed before a password change.
//! 8. Claiming a démarche with history (its past comments) by being the first to ask; and
//!    names that carry a link into other people's mailboxes.
//!
//! Attacks 3 (formulas in the open data), 6 (locking a porteur out) and 7 (cross-site votes)
//! have their tests beside the code they exercise: `observatory.rs`, `login_limits.rs`,
//! `votes_e2e.rs`.

mod common;

use common::browser::{confirm_link, field_value, link, live_and_revoked, porteur, Browser, Mailbox, Page};
use common::{cli, exec_sql, request, Server};
use hyper::{Method, StatusCode};

const PW: &str = "une phrase de passe solide";
const PW2: &str = "une autre phrase tout aussi solide";
const INTRUDER_PW: &str = "le mot de passe de l'intrus";

/// Signs up `email` with `name` as a visitor would (with a password field too: an old form, or
/// an attacker's; the server must ignore it).
async fn sign_up(server: &Server, name: &str, email: &str, password: Option<&str>) -> Page {
    let mut b = Browser::new(server);
    let mut fields = vec![("nom", name), ("email", email), ("administration", "Direction des tests")];
    if let Some(pw) = password {
        fields.extend([("mot_de_passe", pw), ("confirmation", pw)]);
    }
    let page = b.submit("/inscription", "/inscription", &fields).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/inscription/envoyee"), "{}", page.body);
    page
}

async fn log_in_status(server: &Server, email: &str, password: &str) -> StatusCode {
    let mut b = Browser::new(server);
    b.submit("/connexion", "/connexion", &[("email", email), ("mot_de_passe", password)]).await.status
}

/// Accepts the invitation `link` as the account signed in on `b`.
async fn accept(b: &mut Browser, link: &str) -> Page {
    let token = link.split("jeton=").nth(1).expect("a jeton").to_string();
    b.submit(link, "/console/invitation", &[("jeton", &token)]).await
}

/// The key shown once after its creation.
fn shown_key(body: &str) -> String {
    let at = body.find("value=\"mav_").expect("the new key is shown") + "value=\"".len();
    body[at..].split('"').next().unwrap().to_string()
}

async fn api_status(server: &Server, path: &str, key: &str) -> StatusCode {
    let auth = format!("Bearer {key}");
    request(Method::GET, &server.url(path), &[("authorization", &auth)], Vec::new()).await.0
}

/// The action of the form ending in `suffix` in the table row that mentions `needle`.
fn row_action(body: &str, needle: &str, suffix: &str) -> String {
    let row = body
        .split("<tr>")
        .find(|r| r.contains(needle) && r.contains(suffix))
        .unwrap_or_else(|| panic!("no row with {needle} and {suffix}"));
    row.split("action=\"")
        .find(|a| a.split('"').next().is_some_and(|a| a.ends_with(suffix)))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// Attack 1: the intruder signs up first with the victim's address (and would-be password);
/// the victim signs up too, and opens the older of the two mails.
async fn signing_up_first(server: &Server, mailbox: &Mailbox, tag: &str) {
    let victim = format!("victime.{tag}@interieur.gouv.fr");
    sign_up(server, "Intrus", &victim, Some(INTRUDER_PW)).await;
    sign_up(server, "Vraie Victime", &victim, None).await;
    // (Two mails through SMTP may arrive in either order: the server tells which is live.)
    let (newer, older) = live_and_revoked(server, mailbox, &victim).await;
    // The older mail (the intruder's sign-up) no longer works, for GET and POST alike.
    let mut b = Browser::new(server);
    let page = b.get(&older).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("Ce lien a été annulé"), "{}", page.body);
    let jeton = older.split("jeton=").nth(1).unwrap();
    b.get("/connexion").await;
    let post = b
        .post(
            "/confirmation",
            &[("jeton", jeton), ("nom", "X"), ("administration", "Y"), ("mot_de_passe", PW), ("confirmation", PW)],
        )
        .await;
    assert_eq!(post.status, StatusCode::GONE);
    // Nothing the intruder typed opens the account, before or after confirmation.
    assert_eq!(log_in_status(server, &victim, INTRUDER_PW).await, StatusCode::UNPROCESSABLE_ENTITY);
    let page = confirm_link(&mut Browser::new(server), &newer, None, PW).await;
    assert_eq!(page.location(), "/connexion?info=adresse-confirmee");
    assert_eq!(log_in_status(server, &victim, INTRUDER_PW).await, StatusCode::UNPROCESSABLE_ENTITY);
    let mut owner = Browser::new(server);
    owner.log_in(&victim, PW).await;
    assert!(owner.get("/console/compte").await.body.contains("Vraie Victime"));

    // The other order: the victim signs up, the intruder next. The intruder's sign-up only
    // mails the victim a link; the victim chooses the password and corrects the name.
    let victim2 = format!("victime2.{tag}@interieur.gouv.fr");
    sign_up(server, "Vraie Victime", &victim2, None).await;
    sign_up(server, "Intrus", &victim2, Some(INTRUDER_PW)).await;
    let (second, _first) = live_and_revoked(server, mailbox, &victim2).await;
    let mut b = Browser::new(server);
    let form = b.get(&second).await;
    assert_eq!(field_value(&form.body, "nom").as_deref(), Some("Intrus"), "the latest sign-up's name is proposed");
    assert!(!form.body.contains(INTRUDER_PW));
    let page = confirm_link(&mut b, &second, Some("Vraie Victime"), PW).await;
    assert_eq!(page.location(), "/connexion?info=adresse-confirmee");
    assert_eq!(log_in_status(server, &victim2, INTRUDER_PW).await, StatusCode::UNPROCESSABLE_ENTITY);
    let mut owner = Browser::new(server);
    owner.log_in(&victim2, PW).await;
    let account = owner.get("/console/compte").await.body;
    assert!(account.contains("Vraie Victime") && !account.contains("Intrus"));

    // Once confirmed, a sign-up changes nothing and mails the owner a notice.
    sign_up(server, "Intrus", &victim2, Some(INTRUDER_PW)).await;
    let notice = mailbox.wait_for(server, &victim2, "Vous avez déjà un compte", 1);
    assert!(notice.contains("réinitialisez-le"), "{notice}");
    owner.log_in(&victim2, PW).await;
}

/// Attack 2: a porteur invites an address they control, is removed by an administrator (or
/// leaves), then accepts the invitation; and pending invitations are listed and cancellable.
async fn removal_sticks(server: &Server, mailbox: &Mailbox, admin: &mut Browser, tag: &str) {
    let (a, a2, b_mail) = (
        format!("retire.{tag}@culture.gouv.fr"),
        format!("retire.alias.{tag}@culture.gouv.fr"),
        format!("reste.{tag}@culture.gouv.fr"),
    );
    let mut removed = porteur(server, mailbox, "Porteur retiré", &a, PW).await;
    let mut alias = porteur(server, mailbox, "Son autre compte", &a2, PW).await;
    let mut stays = porteur(server, mailbox, "Porteur qui reste", &b_mail, PW).await;
    // 601 is new: granted at once to the first; the second is invited.
    removed.get("/console/demarches/601").await;
    let page = removed.post("/console/demarches/601/porteur", &[]).await;
    assert_eq!(page.location(), "/console/demarches/601/code?info=porteur", "{} {}", page.status, page.body);
    removed.post("/console/demarches/601/inviter", &[("email", &b_mail)]).await;
    let body = mailbox.wait_for(server, &b_mail, "Invitation à porter", 1);
    let page = accept(&mut stays, &link(&body, "/console/invitation")).await;
    assert_eq!(page.location(), "/console/demarches/601/code?info=porteur", "{} {}", page.status, page.body);

    // The porteur invites their other address, then is removed by an administrator.
    removed.post("/console/demarches/601/inviter", &[("email", &a2)]).await;
    let to_alias = link(&mailbox.wait_for(server, &a2, "Invitation à porter", 1), "/console/invitation");
    let tab = stays.get("/console/demarches/601/porteurs").await;
    assert!(tab.body.contains("Invitations en attente") && tab.body.contains(&a2), "listed on the tab");
    let porteurs = admin.get("/console/demarches/601/porteurs").await.body;
    let page = admin.post(&row_action(&porteurs, &format!("<td>{a}</td>"), "/retirer"), &[]).await;
    assert_eq!(page.location(), "/console/demarches/601/porteurs?info=porteur-retire");
    // Accepting now: refused, and nothing is carried.
    let page = accept(&mut alias, &to_alias).await;
    assert_eq!(page.status, StatusCode::GONE, "{}", page.body);
    assert!(page.body.contains("Invitation annulée"));
    assert_eq!(alias.get("/console/demarches/601/avis").await.status, StatusCode::FORBIDDEN);
    assert_eq!(removed.get("/console/demarches/601/avis").await.status, StatusCode::FORBIDDEN);
    assert!(!stays.get("/console/demarches/601/porteurs").await.body.contains(&a2), "no longer listed");

    // Leaving does the same: an invitation to one's own address dies with the departure.
    stays.post("/console/demarches/601/inviter", &[("email", &a)]).await;
    let to_self = link(&mailbox.wait_for(server, &a, "Invitation à porter", 1), "/console/invitation");
    let other_invite = format!("tiers.{tag}@culture.gouv.fr");
    stays.post("/console/demarches/601/inviter", &[("email", &other_invite)]).await;
    // « Annuler » from the tab: that one's link dies too.
    let tab = stays.get("/console/demarches/601/porteurs").await.body;
    let cancel = row_action(&tab, &other_invite, "/annuler");
    let page = stays.post(&cancel, &[]).await;
    assert_eq!(page.location(), "/console/demarches/601/porteurs?info=invitation-annulee");
    assert_eq!(stays.post(&cancel, &[]).await.status, StatusCode::CONFLICT, "once");
    // An outsider cannot cancel another démarche's invitation by its address.
    let outsider_cancel = cancel.replace("/601/", "/602/");
    assert_eq!(alias.post(&outsider_cancel, &[]).await.status, StatusCode::FORBIDDEN);
    let left = stays.post("/console/demarches/601/quitter", &[]).await;
    assert_eq!(left.location(), "/console?info=demarche-quittee");
    let page = accept(&mut removed, &to_self).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert_eq!(removed.get("/console/demarches/601/satisfaction").await.status, StatusCode::FORBIDDEN);
    // The audit keeps it all.
    let audit = admin.get("/console/admin").await.body;
    assert!(audit.contains("Invitation annulée") && audit.contains("Porteur retiré par un administrateur"), "audited");
    assert!(
        audit.contains("Carte d&#39;identité") || audit.contains("Carte d'identité"),
        "the démarche concerned is named"
    );
}

/// Attacks 4 and 5: a key made by whoever had the password outlives a reset; a reset link
/// mailed before a password change still resets.
async fn reset_ends_everything(server: &Server, mailbox: &Mailbox, tag: &str) {
    let email = format!("cles.{tag}@travail.gouv.fr");
    let mut owner = porteur(server, mailbox, "Porteuse des clés", &email, PW).await;
    let page = owner.submit("/console/demarches/602", "/console/demarches/602/porteur", &[]).await;
    assert_eq!(page.location(), "/console/demarches/602/code?info=porteur");
    let key = shown_key(&owner.submit("/console/compte", "/console/compte/cles", &[("nom_cle", "Tableau")]).await.body);
    let stats = "/api/v1/demarches/602/stats";
    assert_eq!(api_status(server, stats, &key).await, StatusCode::OK);

    // The reset page says what a reset ends; then the reset.
    let mut b = Browser::new(server);
    b.submit("/mot-de-passe-oublie", "/mot-de-passe-oublie", &[("email", &email)]).await;
    let reset = link(&mailbox.wait_for(server, &email, "Choisissez un nouveau mot de passe", 1), "/mot-de-passe");
    let page = b.get(&reset).await;
    assert!(page.body.contains("révoquera toutes ses clés d'API"), "{}", page.body);
    let jeton = reset.split("jeton=").nth(1).unwrap().to_string();
    let done = b.post("/mot-de-passe", &[("jeton", &jeton), ("mot_de_passe", PW2), ("confirmation", PW2)]).await;
    assert_eq!(done.location(), "/connexion?info=mot-de-passe-reinitialise");
    // The key is dead, the session too; the mail says so.
    assert_eq!(api_status(server, stats, &key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(owner.get("/console").await.status, StatusCode::SEE_OTHER);
    let mail = mailbox.wait_for(server, &email, "Votre mot de passe a été réinitialisé", 1);
    assert!(mail.contains("clé d'API a été révoquée"), "{mail}");
    owner.log_in(&email, PW2).await;
    let account = owner.get("/console/compte").await.body;
    assert!(account.contains("Tableau"), "the revoked key is still listed, as revoked");
    let fresh =
        shown_key(&owner.submit("/console/compte", "/console/compte/cles", &[("nom_cle", "Nouveau")]).await.body);
    assert_eq!(api_status(server, stats, &fresh).await, StatusCode::OK);

    // 5. A reset link is mailed (perhaps to whoever knew the password); the owner then changes
    // the password from « Mon compte »: the link is dead.
    let mut b = Browser::new(server);
    b.submit("/mot-de-passe-oublie", "/mot-de-passe-oublie", &[("email", &email)]).await;
    let stale = link(&mailbox.wait_for(server, &email, "Choisissez un nouveau mot de passe", 2), "/mot-de-passe");
    assert_eq!(b.get(&stale).await.status, StatusCode::OK, "valid until the change");
    let changed = owner
        .submit(
            "/console/compte",
            "/console/compte/mot-de-passe",
            &[("actuel", PW2), ("mot_de_passe", PW), ("confirmation", PW)],
        )
        .await;
    assert_eq!(changed.location(), "/console/compte?info=mot-de-passe-change");
    let page = b.get(&stale).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("Ce lien a été annulé"));
    let jeton = stale.split("jeton=").nth(1).unwrap().to_string();
    let used = b
        .post("/mot-de-passe", &[("jeton", &jeton), ("mot_de_passe", INTRUDER_PW), ("confirmation", INTRUDER_PW)])
        .await;
    assert_eq!(used.status, StatusCode::GONE);
    assert_eq!(log_in_status(server, &email, INTRUDER_PW).await, StatusCode::UNPROCESSABLE_ENTITY);
    Browser::new(server).log_in(&email, PW).await;
}

/// Posts one vote on démarche `id` through its signed form link.
async fn vote(server: &Server, id: i64, comment: &str) {
    let body = common::vote_body(server, id, &format!("satisfaction=pas-bien&commentaire={comment}"));
    let (status, _, _) = common::post_vote(server, id, &body).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// Attack 8: a démarche with past comments, or whose last porteur left, goes to whoever asks
/// first; and names carry phishing into other people's mailboxes.
async fn history_is_not_first_come(
    server: &Server,
    mailbox: &Mailbox,
    admin: &mut Browser,
    admin_email: &str,
    tag: &str,
) {
    // 603 was never carried but holds avis (its history came with the catalogue).
    vote(server, 603, "Mon+num%C3%A9ro+de+dossier+est+perdu").await;
    common::wait_for_avis(&server.db_url, 1, std::time::Duration::from_secs(10)).await;
    let newcomer = format!("curieux.{tag}@finances.gouv.fr");
    let mut c = porteur(server, mailbox, "Nouveau venu", &newcomer, PW).await;
    let page = c.get("/console/demarches/603").await;
    assert!(page.body.contains("Motif de votre demande"), "a reason is asked: {}", page.body);
    // Without a reason: a French error, nothing granted or recorded.
    let refused = c.post("/console/demarches/603/porteur", &[("motif", "")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Indiquez le motif de votre demande"));
    assert_eq!(c.get("/console/demarches/603/avis").await.status, StatusCode::FORBIDDEN);
    // With one: a request, decided by an administrator (no porteur is left to decide).
    let asked = c.post("/console/demarches/603/porteur", &[("motif", "Cheffe du bureau des titres")]).await;
    assert_eq!(asked.location(), "/console/demarches/603?info=demande-envoyee");
    let page = c.get("/console/demarches/603/avis").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "the past comments stay closed");
    assert!(!page.body.contains("dossier est perdu"));
    let home = admin.get("/console").await.body;
    assert!(home.contains("Demandes à traiter") && home.contains("Cheffe du bureau des titres"), "{home}");
    let to_admins = mailbox.wait_for(server, admin_email, "Demande pour porter", 1);
    assert!(to_admins.contains("administrateur") && !to_admins.contains("Cheffe du bureau"), "{to_admins}");
    let tab = admin.get("/console/demarches/603/porteurs").await.body;
    assert!(tab.contains("Cheffe du bureau des titres"), "the reason is shown to whoever decides");
    admin.post(&row_action(&tab, &newcomer, "/accepter"), &[]).await;
    assert_eq!(c.get("/console/demarches/603/avis").await.status, StatusCode::OK);

    // The last porteur leaves: the next claimant asks too, and the porteurs of other démarches
    // do not see that request; the administrators do.
    c.post("/console/demarches/603/quitter", &[]).await;
    let other = format!("suivant.{tag}@finances.gouv.fr");
    let mut d = porteur(server, mailbox, "Suivant", &other, PW).await;
    let page = d.submit("/console/demarches/603", "/console/demarches/603/porteur", &[("motif", "")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    d.post("/console/demarches/603/porteur", &[("motif", "Adjoint au chef de bureau")]).await;
    assert_eq!(d.get("/console/demarches/603/avis").await.status, StatusCode::FORBIDDEN);
    assert!(admin.get("/console").await.body.contains("Adjoint au chef de bureau"));
    assert!(!c.get("/console").await.body.contains("Adjoint au chef de bureau"));

    // Names refuse links and formulas, with a French message.
    let mut b = Browser::new(server);
    let page = b
        .submit(
            "/inscription",
            "/inscription",
            &[("nom", "=HYPERLINK(\"http://evil.example\")"), ("email", "x@y.gouv.fr"), ("administration", "+33")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("ne peut pas commencer par =, +, - ou @"), "{}", page.body);
    let phishing = "URGENT : reconnectez-vous sur https://evil.example/login";
    let fiche = c.get("/console/demarches/601/fiche").await;
    assert_eq!(fiche.status, StatusCode::FORBIDDEN, "c does not carry 601");
    let page = admin
        .post(
            "/console/demarches/603/fiche",
            &[("nom", phishing), ("administration", "Ministère"), ("url", ""), ("volume", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("ne peut pas contenir d") && page.body.contains("adresse web"), "{}", page.body);
    // A name stored before the rule (an operator's import) still never travels in a mail.
    exec_sql(&server.db_url, &format!("UPDATE demarche SET name = '{phishing}' WHERE id = 603")).await;
    let invited = format!("invite.{tag}@finances.gouv.fr");
    admin.post("/console/demarches/603/inviter", &[("email", &invited)]).await;
    let mails = {
        mailbox.wait_for(server, &invited, "Invitation à porter", 1);
        mailbox.mails(server, &invited)
    };
    let (subject, body) = &mails[0];
    assert!(!subject.contains("evil") && !body.contains("evil"), "{subject}\n{body}");
    assert!(subject.contains("n°\u{a0}603") || subject.contains("n° 603"), "{subject}");
}

async fn run(db_url: &str, dir: &std::path::Path, mailbox: Mailbox, smtp: Option<&str>) {
    for (id, name) in [(601, "Carte d'identité"), (602, "Permis de conduire"), (603, "Titre de séjour")] {
        cli(dir, db_url, &["demarche", "add", "--id", &id.to_string(), "--name", name]);
    }
    let mut flags = vec!["--flush-interval-ms", "50"];
    if let Some(url) = smtp {
        flags.extend(["--smtp-url", url]);
    }
    let server = Server::start_in(dir, db_url, &flags);
    let tag = format!("t{}", server.addr.port());
    // The administrator of the service (the operator's command makes the first one).
    let admin_email = format!("admin.{tag}@numerique.gouv.fr");
    let mut admin = porteur(&server, &mailbox, "Administratrice", &admin_email, PW).await;
    cli(dir, db_url, &["account", "admin", &admin_email]);
    admin.log_in(&admin_email, PW).await;

    signing_up_first(&server, &mailbox, &tag).await;
    removal_sticks(&server, &mailbox, &mut admin, &tag).await;
    reset_ends_everything(&server, &mailbox, &tag).await;
    history_is_not_first_come(&server, &mailbox, &mut admin, &admin_email, &tag).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attacks_fail_on_sqlite() {
    let (tmp, url) = Server::sqlite_dir();
    run(&url, tmp.path(), Mailbox::Outbox, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attacks_fail_on_postgres() {
    let url = common::fresh_pg_database("trust_attacks").await;
    let tmp = tempfile::tempdir().unwrap();
    let (mailbox, smtp) = Mailbox::smtp();
    run(&url, tmp.path(), mailbox, Some(&smtp)).await;
}
