//! « Mot de passe oublié » (`/mot-de-passe-oublie`) and the reset link (`/mot-de-passe`).
//!
//! The request always gets the same answer, at the same speed: whether the address has an
//! account is looked up after the answer, in a task of its own. A new password set through a
//! reset link ends every session of the account and revokes every API key, in one transaction:
//! whoever had the old password keeps no way in (DESIGN §10).

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::signup::{bad_link, TokenQuery};
use super::{normalize_email, Fields, Params};
use crate::console::layout::{check_new_password, csrf_field, notice, see_other, Errors, Input};
use crate::console::limit::Action;
use crate::console::secret::{self, SecretToken};
use crate::console::store::{AccountStatus, AuditEntry, TokenKind, TokenState};
use crate::console::{emails, Answer, Ctx, Problem, RESET_VALIDITY};

#[derive(Deserialize, Default)]
pub struct ForgotQuery {
    info: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

fn forgot_form(ctx: &Ctx, email: &str, errors: &Errors, info: Option<&str>) -> Markup {
    html! {
        (notice(info))
        h1 { "Mot de passe oublié" }
        (errors.summary("La demande n'a pas pu être envoyée"))
        p { "Indiquez l'adresse e-mail de votre compte. Vous recevrez un lien pour choisir un nouveau mot de passe." }
        form method="post" action="/mot-de-passe-oublie" novalidate {
            (csrf_field(ctx.viewer.csrf()))
            (Input { id: "email", label: "Adresse e-mail", kind: "email", value: email, autocomplete: "username", hint: None, required: true }.render(errors))
            button.bouton type="submit" { "Recevoir un lien" }
        }
        p { a href="/connexion" { "Retour à la connexion" } }
    }
}

pub async fn forgot_get(ctx: Ctx, Params(q): Params<ForgotQuery>) -> Response {
    let main = forgot_form(&ctx, "", &Errors::default(), q.info.as_deref());
    ctx.render(StatusCode::OK, "Mot de passe oublié", main)
}

pub async fn forgot_post(ctx: Ctx, Fields(f): Fields<ForgotForm>) -> Answer {
    let email = match normalize_email(&f.email) {
        Ok(e) => e,
        Err(m) => {
            let mut errors = Errors::default();
            errors.add("email", "Adresse e-mail", m);
            let main = forgot_form(&ctx, &f.email, &errors, None);
            return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Mot de passe oublié", main));
        }
    };
    ctx.console.limits.check(Action::Reset, ctx.client, &email).map_err(Problem::too_many)?;
    let c = ctx.console.clone();
    tokio::spawn(async move {
        let now = Utc::now();
        let result = async {
            // Unconfirmed accounts sign up again instead: their owner never proved the address.
            let Some(account) =
                c.store.account_by_email(email).await?.filter(|a| a.status != AccountStatus::Unconfirmed)
            else {
                return Ok(());
            };
            let token = SecretToken::generate();
            c.store.insert_token(token.hash(), account.id, TokenKind::Reset, now, now + RESET_VALIDITY).await?;
            let mail = emails::reset(&c.settings.operator_name, &c.settings.public_url, token.expose());
            c.mailer.send(&account.email, mail).await
        };
        if let Err(e) = result.await {
            tracing::warn!(error = %e, "console: reset link not sent");
        }
    });
    Ok(see_other("/mot-de-passe-oublie?info=lien-envoye"))
}

#[derive(Deserialize, Default)]
pub struct ResetForm {
    #[serde(default)]
    jeton: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    confirmation: String,
}

const ASK_AGAIN: (&str, &str) = ("Demander un nouveau lien", "/mot-de-passe-oublie");

fn reset_form(ctx: &Ctx, jeton: &str, errors: &Errors) -> Markup {
    html! {
        h1 { "Choisir un nouveau mot de passe" }
        (errors.summary("Le mot de passe n'a pas pu être changé"))
        div.info {
            p { "Le nouveau mot de passe fermera toutes les sessions ouvertes sur ce compte et révoquera toutes ses clés d'API\u{a0}: les programmes qui les utilisent devront recevoir une nouvelle clé, à créer dans «\u{a0}Mon compte\u{a0}»." }
        }
        form method="post" action="/mot-de-passe" novalidate {
            (csrf_field(ctx.viewer.csrf()))
            input type="hidden" name="jeton" value=(jeton);
            (Input { id: "mot_de_passe", label: "Nouveau mot de passe", kind: "password", value: "", autocomplete: "new-password",
                     hint: Some("12 caractères au minimum."), required: true }.render(errors))
            (Input { id: "confirmation", label: "Confirmation du mot de passe", kind: "password", value: "", autocomplete: "new-password",
                     hint: None, required: true }.render(errors))
            button.bouton type="submit" { "Changer mon mot de passe" }
        }
    }
}

/// The form, if the link is valid (changes nothing).
pub async fn reset_get(ctx: Ctx, Params(q): Params<TokenQuery>) -> Answer {
    let jeton = q.jeton.unwrap_or_default();
    let state = match secret::hash_if_well_formed(&jeton) {
        Some(hash) => ctx.console.store.peek_token(hash, TokenKind::Reset, Utc::now()).await?.0,
        None => TokenState::Unknown,
    };
    if !matches!(state, TokenState::Valid(_)) {
        return Err(bad_link(state, ASK_AGAIN));
    }
    let main = reset_form(&ctx, &jeton, &Errors::default());
    Ok(ctx.render(StatusCode::OK, "Nouveau mot de passe", main))
}

/// Uses the link: sets the password, ends every session, revokes every API key.
pub async fn reset_post(ctx: Ctx, Fields(f): Fields<ResetForm>) -> Answer {
    let c = &ctx.console;
    let Some(hash) = secret::hash_if_well_formed(&f.jeton) else {
        return Err(bad_link(TokenState::Unknown, ASK_AGAIN));
    };
    let (state, _) = c.store.peek_token(hash, TokenKind::Reset, Utc::now()).await?;
    if !matches!(state, TokenState::Valid(_)) {
        return Err(bad_link(state, ASK_AGAIN));
    }
    let mut errors = Errors::default();
    check_new_password(&f.mot_de_passe, &f.confirmation, "Nouveau mot de passe", &mut errors);
    if !errors.is_empty() {
        let main = reset_form(&ctx, &f.jeton, &errors);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Nouveau mot de passe", main));
    }
    let password_hash = c.passwords.hash(f.mot_de_passe).await?;
    let now = Utc::now();
    let (state, keys) = c.store.reset_password(hash, password_hash, now).await?;
    let TokenState::Valid(id) = state else {
        // Used or revoked by a concurrent request between the check and now.
        return Err(bad_link(if state == TokenState::Expired { state } else { TokenState::Used }, ASK_AGAIN));
    };
    let entry = AuditEntry {
        actor_id: Some(id),
        action: "account.password.reset".into(),
        account_id: Some(id),
        demarche_id: None,
        detail: format!("{keys} clé(s) d'API révoquée(s)"),
    };
    c.store.audit(entry, now).await?;
    if let Some(account) = c.store.account_by_id(id).await? {
        let mail = emails::password_reset(&c.settings.operator_name, &c.settings.public_url, keys);
        c.mailer.send(&account.email, mail).await?;
    }
    Ok(see_other("/connexion?info=mot-de-passe-reinitialise"))
}
