//! « Créer un compte » (`/inscription`) and the e-mail confirmation (`/confirmation`).
//!
//! The answer to a sign-up is the same whether the address is new or already has an account
//! (the mailbox learns which, not the visitor). The confirmation link's GET only shows a button:
//! mail scanners fetch links, and a GET must change nothing.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{domain_trusted, normalize_email, text_field, Fields, Params};
use crate::console::layout::{csrf_field, see_other, Errors, Input};
use crate::console::limit::Action;
use crate::console::password::check_new;
use crate::console::secret::{self, SecretToken};
use crate::console::store::{AccountDetails, AccountStatus, AuditEntry, NewAccount, SignUp, TokenKind, TokenState};
use crate::console::{emails, Answer, Ctx, Problem, CONFIRM_VALIDITY};

/// The sign-up form as posted.
#[derive(Deserialize, Default)]
pub struct SignUpForm {
    #[serde(default)]
    nom: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    administration: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    confirmation: String,
}

fn signup_form(ctx: &Ctx, f: &SignUpForm, errors: &Errors) -> Markup {
    html! {
        h1 { "Créer un compte porteur" }
        (errors.summary("Le compte n'a pas pu être créé"))
        p { "Un compte vous permet de vous déclarer porteur de vos démarches, d'obtenir le code du bouton «\u{a0}Je donne mon avis\u{a0}» et de suivre la satisfaction des usagers." }
        p.indication { "Les adresses se terminant par .gouv.fr sont actives dès qu'elles sont confirmées. Pour les autres, un administrateur valide le compte." }
        p.mention { "Tous les champs sont obligatoires." }
        form method="post" action="/inscription" novalidate {
            (csrf_field(ctx.viewer.csrf()))
            (Input { id: "nom", label: "Prénom et nom", kind: "text", value: &f.nom, autocomplete: "name", hint: None, required: true }.render(errors))
            (Input { id: "email", label: "Adresse e-mail professionnelle", kind: "email", value: &f.email, autocomplete: "email",
                     hint: Some("Par exemple prenom.nom@ministere.gouv.fr"), required: true }.render(errors))
            (Input { id: "administration", label: "Administration", kind: "text", value: &f.administration, autocomplete: "organization",
                     hint: Some("Ministère, direction, opérateur ou collectivité"), required: true }.render(errors))
            (Input { id: "mot_de_passe", label: "Mot de passe", kind: "password", value: "", autocomplete: "new-password",
                     hint: Some("12 caractères au minimum. Une phrase de passe est plus facile à retenir."), required: true }.render(errors))
            (Input { id: "confirmation", label: "Confirmation du mot de passe", kind: "password", value: "", autocomplete: "new-password",
                     hint: None, required: true }.render(errors))
            button.bouton type="submit" { "Créer mon compte" }
        }
        p { "Vous avez déjà un compte\u{a0}? " a href="/connexion" { "Se connecter" } }
    }
}

/// The empty form.
pub async fn signup_get(ctx: Ctx) -> Response {
    let main = signup_form(&ctx, &SignUpForm::default(), &Errors::default());
    ctx.render(StatusCode::OK, "Créer un compte", main)
}

/// Validates, rate-limits, hashes, records, mails; then the same answer for every address.
pub async fn signup_post(ctx: Ctx, Fields(f): Fields<SignUpForm>) -> Answer {
    let mut errors = Errors::default();
    let name = text_field(&f.nom, 100);
    let administration = text_field(&f.administration, 150);
    if name.is_empty() {
        errors.add("nom", "Prénom et nom", "Indiquez votre prénom et votre nom.");
    }
    let email = normalize_email(&f.email).map_err(|m| errors.add("email", "Adresse e-mail", m)).ok();
    if administration.is_empty() {
        errors.add("administration", "Administration", "Indiquez votre administration.");
    }
    if let Err(m) = check_new(&f.mot_de_passe) {
        errors.add("mot_de_passe", "Mot de passe", m);
    } else if f.confirmation != f.mot_de_passe {
        errors.add("confirmation", "Confirmation", "Les deux mots de passe ne sont pas identiques.");
    }
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        let main = signup_form(&ctx, &f, &errors);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Créer un compte", main));
    };
    ctx.console.limits.check(Action::SignUp, ctx.client, &email).map_err(Problem::too_many)?;
    let c = &ctx.console;
    let password_hash = c.passwords.hash(f.mot_de_passe).await?;
    let now = Utc::now();
    let details = AccountDetails { name, administration, password_hash };
    let new = NewAccount {
        email: email.clone(),
        name: details.name.clone(),
        administration: details.administration.clone(),
        password_hash: details.password_hash.clone(),
    };
    let (operator, url) = (&c.settings.operator_name, &c.settings.public_url);
    let outcome = c.store.sign_up(new, now).await?;
    match outcome {
        SignUp::Created(id) | SignUp::Unconfirmed(id) => {
            // A link for an account already waiting carries this sign-up's details: whoever
            // confirms gets the password they chose, never someone else's.
            let details = matches!(outcome, SignUp::Unconfirmed(_)).then_some(details);
            let token = SecretToken::generate();
            c.store.insert_token(token.hash(), id, TokenKind::Confirm, now, now + CONFIRM_VALIDITY, details).await?;
            c.mailer.send(&email, emails::confirm(operator, url, token.expose())).await?;
        }
        SignUp::Exists(_) => c.mailer.send(&email, emails::already_registered(operator, url)).await?,
    }
    Ok(see_other("/inscription/envoyee"))
}

/// After a sign-up.
pub async fn sent_get(ctx: Ctx) -> Response {
    let main = html! {
        h1 { "Vérifiez votre messagerie" }
        div.info role="status" {
            p { "Si cette adresse peut recevoir des e-mails, un message vient de lui être envoyé. Ouvrez le lien qu'il contient (valable 24\u{a0}heures) pour confirmer votre adresse." }
        }
        p { "Rien reçu après quelques minutes\u{a0}? Regardez dans les courriers indésirables, puis " a href="/inscription" { "recommencez l'inscription" } "." }
    };
    ctx.render(StatusCode::OK, "Vérifiez votre messagerie", main)
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    pub jeton: Option<String>,
}

/// The French page of a link that cannot be used.
pub fn bad_link(state: TokenState, again: (&'static str, &'static str)) -> Problem {
    let (status, title, text) = match state {
        TokenState::Expired => (StatusCode::GONE, "Ce lien a expiré", "Ce lien n'est plus valable."),
        TokenState::Used => (StatusCode::GONE, "Ce lien a déjà été utilisé", "Chaque lien ne peut servir qu'une fois."),
        _ => (StatusCode::NOT_FOUND, "Ce lien n'est pas valide", "Vérifiez que vous avez copié le lien en entier."),
    };
    Problem { link: Some(again), ..Problem::new(status, title, text) }
}

fn token_of(q: &TokenQuery) -> Option<[u8; 32]> {
    q.jeton.as_deref().and_then(secret::hash_if_well_formed)
}

const SIGN_UP_AGAIN: (&str, &str) = ("Recevoir un nouveau lien\u{a0}: recommencer l'inscription", "/inscription");

/// Shows the confirmation button (changes nothing).
pub async fn confirm_get(ctx: Ctx, Params(q): Params<TokenQuery>) -> Answer {
    let state = match token_of(&q) {
        Some(hash) => ctx.console.store.peek_token(hash, TokenKind::Confirm, Utc::now()).await?,
        None => TokenState::Unknown,
    };
    if !matches!(state, TokenState::Valid(_)) {
        return Err(bad_link(state, SIGN_UP_AGAIN));
    }
    let main = html! {
        h1 { "Confirmer votre adresse e-mail" }
        p { "Confirmez que cette adresse est bien la vôtre pour terminer la création de votre compte." }
        form method="post" action="/confirmation" {
            (csrf_field(ctx.viewer.csrf()))
            input type="hidden" name="jeton" value=(q.jeton.as_deref().unwrap_or(""));
            button.bouton type="submit" { "Confirmer mon adresse" }
        }
    };
    Ok(ctx.render(StatusCode::OK, "Confirmer votre adresse", main))
}

/// Uses the link: the account becomes active (trusted domain) or waits for an administrator.
pub async fn confirm_post(ctx: Ctx, Fields(q): Fields<TokenQuery>) -> Answer {
    let c = &ctx.console;
    let now = Utc::now();
    let state = match token_of(&q) {
        Some(hash) => c.store.take_token(hash, TokenKind::Confirm, now).await?,
        None => TokenState::Unknown,
    };
    let TokenState::Valid(id) = state else { return Err(bad_link(state, SIGN_UP_AGAIN)) };
    let Some(account) = c.store.account_by_id(id).await? else {
        return Err(bad_link(TokenState::Unknown, SIGN_UP_AGAIN));
    };
    let allowed: Vec<String> = c.store.allowed_domains().await?.into_iter().map(|d| d.domain).collect();
    let trusted = domain_trusted(account.domain(), &allowed);
    let next = if trusted { AccountStatus::Active } else { AccountStatus::Pending };
    let status = if c.store.set_status(id, AccountStatus::Unconfirmed, next, now).await? {
        c.store
            .audit(
                AuditEntry {
                    actor_id: Some(id),
                    action: format!("account.confirm.{}", next.as_str()),
                    account_id: Some(id),
                    demarche_id: None,
                    detail: String::new(),
                },
                now,
            )
            .await?;
        if next == AccountStatus::Pending {
            let (operator, url) = (&c.settings.operator_name, &c.settings.public_url);
            c.mailer.send(&account.email, emails::awaiting_approval(operator)).await?;
            for admin in c.store.admins().await? {
                let mail =
                    emails::approval_needed(operator, url, &account.name, &account.email, &account.administration);
                c.mailer.send(&admin.email, mail).await?;
            }
        }
        next
    } else {
        // Already moved on (an operator approved it first): say where it stands.
        account.status
    };
    if status == AccountStatus::Active {
        return Ok(see_other("/connexion?info=adresse-confirmee"));
    }
    let main = html! {
        h1 { "Adresse confirmée" }
        div.info role="status" {
            p { "Votre adresse e-mail est confirmée. Comme elle ne se termine pas par .gouv.fr ni par un domaine autorisé, un administrateur doit valider votre compte." }
            p { "Vous recevrez un e-mail dès que ce sera fait." }
        }
    };
    Ok(ctx.render(StatusCode::OK, "Adresse confirmée", main))
}
