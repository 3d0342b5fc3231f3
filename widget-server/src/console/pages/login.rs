//! « Se connecter » (`/connexion`) and « Se déconnecter » (`POST /deconnexion`).
//!
//! A wrong password and an unknown address get the same message after the same argon2 work, and
//! count against the log-in limits ([`crate::console::limit::LogInLimits`]); a successful log-in
//! never does. A successful log-in always starts a new session (the token is rotated), ending
//! the one the browser had, if any, and gives the browser a fresh « appareil connu » cookie for
//! that address, which keeps strangers' failures on the address from locking it out.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{normalize_email, proconnect, Fields, Params};
use crate::console::cookies::DEVICE_MAX_AGE;
use crate::console::guard::{clear_cookie, cookie_value, safe_return_path, set_cookie};
use crate::console::layout::{csrf_field, notice, see_other, Errors, Input};
use crate::console::secret::SecretToken;
use crate::console::store::AccountStatus;
use crate::console::{Answer, Ctx, Problem, Viewer};

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    info: Option<String>,
    suite: Option<String>,
    /// Why a ProConnect log-in failed ([`proconnect::error_notice`]).
    erreur: Option<String>,
}

/// The log-in form as posted.
#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    mot_de_passe: String,
    suite: Option<String>,
}

fn login_form(ctx: &Ctx, email: &str, suite: Option<&str>, errors: &Errors, info: Option<&str>) -> Markup {
    login_page(ctx, email, suite, errors, info, None)
}

fn login_page(
    ctx: &Ctx,
    email: &str,
    suite: Option<&str>,
    errors: &Errors,
    info: Option<&str>,
    proconnect_error: Option<&str>,
) -> Markup {
    let with_proconnect = ctx.console.proconnect.is_some();
    html! {
        (notice(info))
        (proconnect::error_notice(proconnect_error))
        h1 { "Se connecter à l'espace porteurs" }
        (errors.summary("Connexion impossible"))
        // ProConnect first (DESIGN §16); passwords stay for everyone else.
        @if with_proconnect {
            (proconnect::button(suite))
            p.separateur { "Ou, avec votre adresse e-mail et votre mot de passe\u{a0}:" }
        }
        form method="post" action="/connexion" novalidate {
            (csrf_field(ctx.viewer.csrf()))
            @if let Some(s) = suite { input type="hidden" name="suite" value=(safe_return_path(Some(s))); }
            (Input { id: "email", label: "Adresse e-mail", kind: "email", value: email, autocomplete: "username", hint: None, required: true }.render(errors))
            (Input { id: "mot_de_passe", label: "Mot de passe", kind: "password", value: "", autocomplete: "current-password", hint: None, required: true }.render(errors))
            p { a href="/mot-de-passe-oublie" { "Mot de passe oublié\u{a0}?" } }
            button.bouton type="submit" { "Se connecter" }
        }
        p { "Pas encore de compte\u{a0}? " a href="/inscription" { "Créer un compte porteur" } }
    }
}

/// The form (with a notice after a redirect).
pub async fn login_get(ctx: Ctx, Params(q): Params<LoginQuery>) -> Response {
    let main = login_page(&ctx, "", q.suite.as_deref(), &Errors::default(), q.info.as_deref(), q.erreur.as_deref());
    ctx.render(StatusCode::OK, "Se connecter", main)
}

/// Checks the password and opens a session.
pub async fn login_post(ctx: Ctx, headers: HeaderMap, Fields(f): Fields<LoginForm>) -> Answer {
    let c = &ctx.console;
    let suite = f.suite.as_deref();
    let mut errors = Errors::default();
    let email = match normalize_email(&f.email) {
        Ok(e) => e,
        Err(m) => {
            errors.add("email", "Adresse e-mail", m);
            let main = login_form(&ctx, &f.email, suite, &errors, None);
            return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Se connecter", main));
        }
    };
    let names = c.settings.cookies;
    let now = Utc::now();
    let device = cookie_value(&headers, names.device)
        .and_then(|value| c.cookie_signer.known_device(value, &email, now.timestamp()));
    // Refused here, before any argon2 work, while locked out. The try counts until it is known
    // not to be a failure: then it is given back (dropped), also on a store error.
    let attempt = c.limits.log_in.start(ctx.client, &email, device).map_err(Problem::too_many)?;
    let account = c.store.account_by_email(email.clone()).await?;
    let ok = c.passwords.verify(f.mot_de_passe, account.as_ref().map(|a| a.password_hash.clone())).await;
    let account = match account {
        Some(a) if ok => a,
        _ => {
            attempt.failed();
            errors.add("mot_de_passe", "Connexion", "Adresse e-mail ou mot de passe incorrect.");
            let main = login_form(&ctx, &f.email, suite, &errors, None);
            return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Se connecter", main));
        }
    };
    // The password was right: the try is given back, whatever the account's status.
    drop(attempt);
    match account.status {
        AccountStatus::Active => {}
        AccountStatus::Unconfirmed => {
            // No new link from here: a link sent now would confirm the details stored on the
            // account, which may be those of whoever signed up first with this address. Signing
            // up again sends a link carrying the signer's own details.
            return Err(Problem {
                link: Some(("Recevoir un nouveau lien\u{a0}: recommencer l'inscription", "/inscription")),
                ..Problem::new(
                    StatusCode::FORBIDDEN,
                    "Adresse e-mail à confirmer",
                    "Votre adresse e-mail n'est pas encore confirmée. Ouvrez le lien de l'e-mail de confirmation \
                     (valable 24\u{a0}heures), ou recommencez l'inscription pour en recevoir un nouveau.",
                )
            });
        }
        AccountStatus::Pending => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "Compte en attente de validation",
                "Votre compte attend la validation d'un administrateur. Vous recevrez un e-mail dès que ce sera fait.",
            ))
        }
    }
    if let Viewer::SignedIn { token_hash, .. } = &ctx.viewer {
        c.store.delete_session(*token_hash).await?;
    }
    let token = SecretToken::generate();
    c.store.create_session(token.hash(), account.id, SecretToken::generate().expose().to_string(), now).await?;
    let mut res = see_other(safe_return_path(suite));
    let session = set_cookie(c, names.session, token.expose(), Some(c.settings.session_max_age));
    res.headers_mut().append(header::SET_COOKIE, session);
    let device = c.cookie_signer.new_device(&email, now.timestamp());
    res.headers_mut().append(header::SET_COOKIE, set_cookie(c, names.device, &device, Some(DEVICE_MAX_AGE)));
    Ok(res)
}

/// Ends this session; one opened through ProConnect then goes on to ProConnect's log-out
/// (DESIGN §16), which comes back to `/connexion?info=deconnecte`.
pub async fn logout_post(ctx: Ctx) -> Answer {
    let mut location = "/connexion?info=deconnecte".to_string();
    if let Viewer::SignedIn { token_hash, session } = &ctx.viewer {
        ctx.console.store.delete_session(*token_hash).await?;
        if let (Some(pc), Some(id_token)) = (&ctx.console.proconnect, &session.id_token) {
            if let Some(url) = pc.logout_url(id_token, SecretToken::generate().expose()).await {
                location = url.to_string();
            }
        }
    }
    let mut res = see_other(&location);
    res.headers_mut().append(header::SET_COOKIE, clear_cookie(&ctx.console, ctx.console.settings.cookies.session));
    Ok(res)
}
