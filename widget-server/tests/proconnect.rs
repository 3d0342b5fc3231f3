//! ProConnect log-in (DESIGN §16) through the real binary, against a real OpenID Connect
//! provider set up like ProConnect (scripts/oidc/provider.js, panva's oidc-provider): its own
//! log-in, consent and log-out forms, ES256 and RS256 keys, signed userinfo, `client_secret_post`,
//! ProConnect's claims, codes of 30 s. The provider of scripts/test.sh serves most tests; those
//! that stop a provider, rotate its keys or shorten its codes start their own.
//!
//! Every failure must land on `/connexion` with its French message and create nothing.

mod common;

use std::time::Duration;

use common::browser::{porteur, Mailbox};
use common::oidc::{self, jwt_payload, query, Agent, OwnProvider, CLIENT, CLIENT_ES256};
use common::{cli, Server};
use hyper::StatusCode;
use widget_server::console::store::{self as console, AccountStatus, ConsoleStore};

/// A server (SQLite unless `db_url`) with ProConnect at `issuer` for `client`, and the
/// directory holding its secret file.
fn server(issuer: &str, client: &str, db_url: Option<&str>, extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut flags = oidc::flags(dir.path(), issuer, client);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = match db_url {
        Some(url) => Server::start_in(&dir.path().join("server"), url, &flags),
        None => Server::sqlite_with(&[], &flags),
    };
    (server, dir)
}

async fn store(server: &Server) -> std::sync::Arc<dyn ConsoleStore> {
    console::open(&server.db_url).await.unwrap()
}

/// How many accounts the server's store holds.
async fn accounts(server: &Server) -> i64 {
    count(server, "SELECT count(*) FROM account").await
}

async fn count(server: &Server, sql: &str) -> i64 {
    if let Some(path) = server.db_url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    } else {
        let c = widget_server::store::pg_tls::connect(&server.db_url).await.unwrap();
        c.query_one(sql, &[]).await.unwrap().get(0)
    }
}

/// Starts a log-in at `server` (optionally coming back to `suite`): our redirect to the
/// provider's authorization endpoint.
async fn start(agent: &mut Agent, server: &Server, suite: Option<&str>) -> String {
    let path = match suite {
        Some(s) => format!("/connexion/proconnect?suite={s}"),
        None => "/connexion/proconnect".into(),
    };
    let a = agent.get(&server.url(&path)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    a.location().unwrap()
}

/// A whole log-in as `login` through the provider's forms: the provider's return URL (with
/// `code` and `state`), not followed yet.
async fn to_return(agent: &mut Agent, server: &Server, login: &str) -> String {
    let authorize = start(agent, server, None).await;
    let back = agent.log_in_at_provider(server, &authorize, login, true).await;
    back.location().unwrap()
}

/// Follows the return URL: where our server sends the browser.
async fn finish(agent: &mut Agent, return_url: &str) -> String {
    let a = agent.get(return_url).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}: {}", return_url, a.body);
    a.headers.get("location").unwrap().to_str().unwrap().to_string()
}

/// Asserts `/connexion` shows the French message of `code`.
async fn shows(agent: &mut Agent, server: &Server, location: &str, code: &str, words: &str) {
    assert_eq!(location, format!("/connexion?erreur={code}"));
    let page = agent.get(&server.url(location)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Connexion avec ProConnect impossible"), "{}", page.body);
    assert!(page.body.contains(words), "{code}: {}", page.body);
    assert!(page.body.contains("S'identifier avec"), "the button is offered again");
}

/// The whole journey of a public agent, on `db_url`'s store: the button first on both pages,
/// the exact authorization request, the provider's forms, an account made, found again by its
/// `sub`, and the log-out at ProConnect with the right parameters.
async fn journey(issuer: &str, client: &str, db_url: Option<&str>) {
    let (server, _dir) = server(issuer, client, db_url, &[]);
    let mut agent = Agent::new();

    // « S'identifier avec ProConnect » first, with its explanation; passwords stay.
    for path in ["/connexion", "/inscription"] {
        let page = agent.get(&server.url(path)).await;
        let (button, password_form) =
            (page.body.find("S'identifier avec").unwrap(), page.body.find("name=\"email\"").unwrap());
        assert!(button < password_form, "{path}: ProConnect first");
        assert!(page.body.contains(r#"href="https://www.proconnect.gouv.fr/" target="_blank" rel="noopener""#));
        assert!(page.body.contains("Qu'est-ce que ProConnect\u{a0}?"));
        let csp = page.headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains(&format!("form-action 'self' {}", oidc::origin(issuer))), "{csp}");
    }

    // Exactly ProConnect's parameters, `state` and `nonce` of 64 characters, bound to the
    // browser by a short-lived cookie.
    let authorize = start(&mut agent, &server, Some("/console/compte")).await;
    assert!(authorize.starts_with(&format!("{issuer}/auth?")), "{authorize}");
    let q = query(&authorize);
    assert_eq!(
        q.keys().map(String::as_str).collect::<Vec<_>>(),
        ["client_id", "nonce", "redirect_uri", "response_type", "scope", "state"]
    );
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], client);
    assert_eq!(q["scope"], "openid email given_name usual_name siret uid idp_id");
    assert_eq!(q["redirect_uri"], server.url("/connexion/proconnect/retour"));
    assert!(q["state"].len() >= 32 && q["nonce"].len() >= 32 && q["state"] != q["nonce"]);
    let flow = agent.cookie(&server.url("/"), "monavis_proconnect").expect("the flow cookie").clone();
    assert!(flow.starts_with(&q["state"]), "the cookie holds the state");

    // The provider's own forms, then back.
    let back = agent.log_in_at_provider(&server, &authorize, "camille.martin@interieur.gouv.fr", true).await;
    let back = back.location().unwrap();
    let r = query(&back);
    assert_eq!((r["state"].as_str(), r["iss"].as_str()), (q["state"].as_str(), issuer));
    assert!(r.contains_key("code"));
    // A new account: its owner checks what ProConnect's claims gave.
    assert_eq!(finish(&mut agent, &back).await, "/console/compte/profil?info=proconnect-compte-cree");
    assert!(agent.cookie(&server.url("/"), "monavis_proconnect").is_none(), "the flow cookie is gone");
    assert!(agent.cookie(&server.url("/"), "monavis_session").is_some());
    let page = agent.get(&server.url("/console/compte/profil?info=proconnect-compte-cree")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Votre compte a été créé avec ProConnect"), "{}", page.body);
    assert!(page.body.contains(r#"value="Camille Martin""#) && page.body.contains(r#"value="SIRET 13002526500013""#));

    let s = store(&server).await;
    let account = s.account_by_email("camille.martin@interieur.gouv.fr".into()).await.unwrap().unwrap();
    assert_eq!((account.status, account.password_hash.as_str()), (AccountStatus::Active, ""), "active, no password");
    let identities = s.proconnect_identities(account.id).await.unwrap();
    assert_eq!(identities.len(), 1);
    assert_eq!((identities[0].issuer.as_str(), identities[0].idp_id.as_str()), (issuer, "fia1v2"));

    // The name can be corrected.
    let page = agent.get(&server.url("/console/compte/profil")).await;
    let csrf = common::browser::field_value(&page.body, "csrf").unwrap();
    let fields =
        [("csrf", csrf.as_str()), ("nom", "Camille Martin-Durand"), ("administration", "Direction des titres")];
    let saved = agent.post(&server.url("/console/compte/profil"), &fields, &server.url("/")).await;
    assert_eq!(saved.location().unwrap(), server.url("/console/compte/profil?info=profil-enregistre"));

    // Another browser, the same agent: found by (issuer, sub), brought back where it asked.
    let mut other = Agent::new();
    let authorize = start(&mut other, &server, Some("/console/compte")).await;
    let back = other.log_in_at_provider(&server, &authorize, "camille.martin@interieur.gouv.fr", true).await;
    assert_eq!(finish(&mut other, &back.location().unwrap()).await, "/console/compte");
    assert_eq!(accounts(&server).await, 1);
    let page = other.get(&server.url("/console/compte")).await;
    assert!(page.body.contains("Camille Martin-Durand"), "the corrected name stays");
    let audit: Vec<String> = s.audit_log(10).await.unwrap().into_iter().map(|(_, e)| e.action).collect();
    assert!(audit.contains(&"account.proconnect.create".to_string()), "{audit:?}");
    assert!(audit.contains(&"account.proconnect.login".to_string()), "{audit:?}");

    // « Se déconnecter »: our session ends, then ProConnect's log-out with the ID token of the
    // session, a state and our post-log-out URI.
    let csrf = common::browser::field_value(&page.body, "csrf").unwrap();
    let out = other.post(&server.url("/deconnexion"), &[("csrf", csrf.as_str())], &server.url("/")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let end = out.location().unwrap();
    assert!(end.starts_with(&format!("{issuer}/session/end?")), "{end}");
    let e = query(&end);
    assert_eq!(
        e.keys().map(String::as_str).collect::<Vec<_>>(),
        ["id_token_hint", "post_logout_redirect_uri", "state"]
    );
    assert_eq!(e["post_logout_redirect_uri"], server.url("/connexion?info=deconnecte"));
    assert!(e["state"].len() >= 32);
    let hint = jwt_payload(&e["id_token_hint"]);
    assert_eq!((hint["iss"].as_str(), hint["aud"].as_str()), (Some(issuer), Some(client)));
    assert_eq!(hint["sub"].as_str(), Some(identities[0].sub.as_str()));
    assert!(other.cookie(&server.url("/"), "monavis_session").is_none(), "our session cookie is gone");
    assert_eq!(count(&server, "SELECT count(*) FROM session").await, 1, "only the first browser's session is left");
    // ProConnect asks, logs out, and sends the browser back to our page.
    let back = other.confirm_log_out(&end).await;
    let back = back.location().unwrap();
    assert!(back.starts_with(&server.url("/connexion?info=deconnecte")), "{back}");
    assert_eq!(query(&back)["state"], e["state"]);
    let page = other.get(&back).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Vous êtes déconnecté."));

    // The first browser's session ends the same way.
    let page = agent.get(&server.url("/console")).await;
    let csrf = common::browser::field_value(&page.body, "csrf").unwrap();
    let out = agent.post(&server.url("/deconnexion"), &[("csrf", csrf.as_str())], &server.url("/")).await;
    assert!(out.location().unwrap().starts_with(&format!("{issuer}/session/end?")));
    assert_eq!(count(&server, "SELECT count(*) FROM session").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_agent_logs_in_and_out_with_proconnect_sqlite() {
    journey(&oidc::shared_issuer(), CLIENT, None).await;
}

/// The same on PostgreSQL, with ES256 ID tokens and RS256 userinfo.
#[tokio::test(flavor = "multi_thread")]
async fn a_public_agent_logs_in_and_out_with_proconnect_postgres() {
    let url = common::fresh_pg_database("monavis_proconnect").await;
    journey(&oidc::shared_issuer(), CLIENT_ES256, Some(&url)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_log_in_links_the_confirmed_account_of_its_address() {
    let issuer = oidc::shared_issuer();
    let (server, _dir) = server(&issuer, CLIENT, None, &[]);
    let email = "dominique.durand@culture.gouv.fr";
    let mut b = porteur(&server, &Mailbox::Outbox, "Dominique Durand", email, "une phrase de passe solide").await;
    let before = store(&server).await.account_by_email(email.into()).await.unwrap().unwrap();

    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, &email.to_uppercase()).await;
    assert_eq!(finish(&mut agent, &back).await, "/console", "linked: straight to « Mes démarches »");
    let page = agent.get(&server.url("/console")).await;
    assert!(page.body.contains("Dominique Durand"), "the account's own name");
    let s = store(&server).await;
    let after = s.account_by_email(email.into()).await.unwrap().unwrap();
    assert_eq!(after, before, "the same account, its password and details unchanged");
    assert_eq!(accounts(&server).await, 1);
    assert_eq!(s.proconnect_identities(before.id).await.unwrap().len(), 1);
    assert_eq!(s.audit_log(1).await.unwrap()[0].1.action, "account.proconnect.link");
    // The password still works.
    b.log_in(email, "une phrase de passe solide").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_missing_or_foreign_state_creates_nothing() {
    let issuer = oidc::shared_issuer();
    let (server, _dir) = server(&issuer, CLIENT, None, &[]);
    let retour = server.url("/connexion/proconnect/retour");

    // No flow cookie at all.
    let mut stranger = Agent::new();
    let to = finish(&mut stranger, &format!("{retour}?code=abc&state={}", "a".repeat(64))).await;
    shows(&mut stranger, &server, &to, "proconnect-session", "n'a pas été commencée depuis ce navigateur").await;

    // A real return, replayed by another browser that has started its own flow (or none):
    // refused before the code is used, which then still works for its own browser.
    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, "alix.bernard@justice.gouv.fr").await;
    let mut attacker = Agent::new();
    start(&mut attacker, &server, None).await;
    let to = finish(&mut attacker, &back).await;
    shows(&mut attacker, &server, &to, "proconnect-session", "Recommencez").await;
    let mut bare = Agent::new();
    assert_eq!(finish(&mut bare, &back).await, "/connexion?erreur=proconnect-session");

    // A forged state, and a flow cookie that is not ours.
    let q = query(&back);
    let forged = format!("{retour}?code={}&state={}", q["code"], "b".repeat(64));
    assert_eq!(finish(&mut agent, &forged).await, "/connexion?erreur=proconnect-session");
    assert_eq!(accounts(&server).await, 0, "nothing created");
    let mut tampered = Agent::new();
    let flow = format!("{}.{}.{}..{}", q["state"], "c".repeat(64), i64::MAX, "d".repeat(64));
    tampered.cookies.insert((oidc::origin(&retour), "monavis_proconnect".into()), flow);
    assert_eq!(finish(&mut tampered, &back).await, "/connexion?erreur=proconnect-session");
    // The refusals spent nothing: the flow cookie went with the forged attempt, so start again.
    let back = to_return(&mut agent, &server, "alix.bernard@justice.gouv.fr").await;
    assert_eq!(finish(&mut agent, &back).await, "/console/compte/profil?info=proconnect-compte-cree");
    assert_eq!(accounts(&server).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_code_is_refused() {
    let issuer = oidc::shared_issuer();
    let (server, _dir) = server(&issuer, CLIENT, None, &[]);
    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, "noa.lefebvre@armees.gouv.fr").await;
    let flow = agent.cookie(&back, "monavis_proconnect").unwrap().clone();
    assert!(finish(&mut agent, &back).await.starts_with("/console"));
    let sessions = count(&server, "SELECT count(*) FROM session").await;

    // The same return again, with the flow cookie it had (as whoever copied both would).
    let mut replay = Agent::new();
    replay.cookies.insert((oidc::origin(&back), "monavis_proconnect".into()), flow);
    let to = finish(&mut replay, &back).await;
    shows(&mut replay, &server, &to, "proconnect-echec", "ProConnect n'a pas pu confirmer votre identité").await;
    assert!(replay.cookie(&back, "monavis_session").is_none());
    assert_eq!(count(&server, "SELECT count(*) FROM session").await, sessions, "no session opened");
    assert_eq!(accounts(&server).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_is_refused() {
    let provider = OwnProvider::start(&[("OIDC_CODE_TTL", "1")]);
    let (server, _dir) = server(&provider.issuer, CLIENT, None, &[]);
    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, "lou.garnier@sante.gouv.fr").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let to = finish(&mut agent, &back).await;
    shows(&mut agent, &server, &to, "proconnect-echec", "Recommencez").await;
    assert_eq!(accounts(&server).await, 0);
    assert_eq!(oidc::stats(&provider.issuer).await["token"], 1, "the code was tried once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_consent_creates_nothing() {
    let issuer = oidc::shared_issuer();
    let (server, _dir) = server(&issuer, CLIENT, None, &[]);
    let mut agent = Agent::new();
    let authorize = start(&mut agent, &server, None).await;
    let back = agent.log_in_at_provider(&server, &authorize, "sam.roux@agriculture.gouv.fr", false).await;
    let back = back.location().unwrap();
    assert_eq!(query(&back)["error"], "access_denied");
    let to = finish(&mut agent, &back).await;
    shows(&mut agent, &server, &to, "proconnect-refus", "a été annulée").await;
    assert_eq!(accounts(&server).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_signed_by_an_unknown_key_is_refused_after_one_more_fetch_of_the_keys() {
    // This provider publishes keys it never signs with.
    let provider = OwnProvider::start(&[("OIDC_JWKS", "decoy")]);
    let (server, _dir) = server(&provider.issuer, CLIENT, None, &[]);
    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, "eden.moreau@ecologie.gouv.fr").await;
    let to = finish(&mut agent, &back).await;
    shows(&mut agent, &server, &to, "proconnect-echec", "ProConnect n'a pas pu confirmer").await;
    assert_eq!(accounts(&server).await, 0);
    assert_eq!(count(&server, "SELECT count(*) FROM session").await, 0);
    let stats = oidc::stats(&provider.issuer).await;
    assert_eq!((stats["discovery"].as_i64(), stats["jwks"].as_i64()), (Some(1), Some(2)), "one more fetch: {stats}");
    assert_eq!(stats["userinfo"], 0, "the ID token was refused first");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_keys_are_fetched_again_once() {
    let mut first = OwnProvider::start(&[]);
    let (server, _dir) = server(&first.issuer, CLIENT_ES256, None, &[]);
    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, "jo.lambert@interieur.gouv.fr").await;
    assert!(finish(&mut agent, &back).await.starts_with("/console"));
    assert_eq!(oidc::stats(&first.issuer).await["jwks"], 1);

    // The same issuer with new keys (a restart makes new ones): the server's cached keys do not
    // know the new key id, fetches them once, and the agent gets in.
    let port = first.port;
    first.stop();
    let second = OwnProvider::start_on(port, &[]);
    assert_eq!(second.issuer, first.issuer);
    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, "jo.lambert@interieur.gouv.fr").await;
    assert_eq!(finish(&mut agent, &back).await, "/console", "the same account, found by its sub");
    let stats = oidc::stats(&second.issuer).await;
    assert_eq!((stats["discovery"].as_i64(), stats["jwks"].as_i64()), (Some(0), Some(1)), "{stats}");
    assert_eq!(accounts(&server).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_provider_down_leaves_passwords_working() {
    let mut provider = OwnProvider::start(&[]);
    let (server, _dir) = server(&provider.issuer, CLIENT, None, &[]);
    let port = provider.port;
    provider.stop();

    // Down before any use: the pages still show, the button says ProConnect does not answer.
    let mut agent = Agent::new();
    let page = agent.get(&server.url("/connexion")).await;
    assert_eq!(page.status, StatusCode::OK);
    let to = finish(&mut agent, &server.url("/connexion/proconnect")).await;
    shows(&mut agent, &server, &to, "proconnect-indisponible", "ProConnect ne répond pas").await;

    // Up for the log-in, down when the code is to be exchanged.
    let mut provider = OwnProvider::start_on(port, &[]);
    let back = to_return(&mut agent, &server, "ines.faure@education.gouv.fr").await;
    provider.stop();
    let to = finish(&mut agent, &back).await;
    shows(&mut agent, &server, &to, "proconnect-indisponible", "Réessayez dans quelques instants").await;
    assert_eq!(accounts(&server).await, 0);

    // Passwords are unaffected.
    porteur(&server, &Mailbox::Outbox, "Inès Faure", "ines.faure@education.gouv.fr", "une phrase de passe solide")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_are_checked_like_typed_names_and_an_address_is_required() {
    let issuer = oidc::shared_issuer();
    let (server, _dir) = server(&issuer, CLIENT, None, &[]);

    // Hostile names fall back on the address; an unusable SIRET gives no administration.
    let hostile = r#"{"email":"Sacha.Petit@Travail.gouv.fr","given_name":"=HYPERLINK(\"http://evil.example\")","usual_name":"Petit","siret":"nope"}"#;
    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, hostile).await;
    assert_eq!(finish(&mut agent, &back).await, "/console/compte/profil?info=proconnect-compte-cree");
    let a = store(&server).await.account_by_email("sacha.petit@travail.gouv.fr".into()).await.unwrap().unwrap();
    assert_eq!((a.name.as_str(), a.administration.as_str()), ("Sacha Petit", ""));

    // No usable address: refused, nothing created.
    let mut agent = Agent::new();
    let back = to_return(&mut agent, &server, r#"{"email":"pas une adresse","given_name":"A","usual_name":"B"}"#).await;
    let to = finish(&mut agent, &back).await;
    shows(&mut agent, &server, &to, "proconnect-adresse", "pas transmis d'adresse e-mail valide").await;
    assert_eq!(accounts(&server).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acr_is_asked_through_claims_and_found_in_the_id_token() {
    let issuer = oidc::shared_issuer();
    let (server, _dir) = server(&issuer, CLIENT, None, &["--proconnect-acr", "eidas1"]);
    let mut agent = Agent::new();
    let authorize = start(&mut agent, &server, None).await;
    let q = query(&authorize);
    assert_eq!(
        q.keys().map(String::as_str).collect::<Vec<_>>(),
        ["claims", "client_id", "nonce", "redirect_uri", "response_type", "scope", "state"]
    );
    let claims: serde_json::Value = serde_json::from_str(&q["claims"]).unwrap();
    assert_eq!(claims, serde_json::json!({ "id_token": { "acr": { "essential": true, "value": "eidas1" } } }));
    let back = agent.log_in_at_provider(&server, &authorize, "max.girard@interieur.gouv.fr", true).await;
    assert!(finish(&mut agent, &back.location().unwrap()).await.starts_with("/console"));
    assert_eq!(accounts(&server).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_proconnect_flags_nothing_changes() {
    let server = Server::sqlite_with(&[], &[]);
    let mut agent = Agent::new();
    for path in ["/connexion", "/inscription"] {
        let page = agent.get(&server.url(path)).await;
        assert!(!page.body.contains("ProConnect"), "{path}");
        let csp = page.headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("form-action 'self';"), "{csp}");
    }
    for path in ["/connexion/proconnect", "/connexion/proconnect/retour?code=a&state=b"] {
        assert_eq!(agent.get(&server.url(path)).await.status, StatusCode::NOT_FOUND, "{path}");
    }

    // Some of the three required flags only: the server refuses to start, naming what is missing.
    let (tmp, url) = Server::sqlite_dir();
    cli(tmp.path(), &url, &["migrate"]);
    let out = std::process::Command::new(common::BIN)
        .current_dir(tmp.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
            "--proconnect-issuer",
            "https://auth.example.gouv.fr/api/v2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--proconnect-client-id, --proconnect-client-secret-file"), "{stderr}");
}
