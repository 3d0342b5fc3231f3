//! « Créer un compte » (`/inscription`) and the e-mail confirmation (`/confirmation`).
//!
//! The answer to a sign-up is the same whether the address is new or already has an account
//! (the mailbox learns which, not the visitor). A sign-up sets no password: the confirmation
//! page does, so whoever reads the mailbox chooses it, and each new sign-up of an unconfirmed
//! address revokes its earlier links. The link's GET only shows the form: mail scanners fetch
//! links, and a GET must change nothing.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{domain_trusted, name_field, normalize_email, Fields, Params};
use crate::console::layout::{check_new_password, csrf_field, see_other, Errors, Input};
use crate::console::limit::Action;
use crate::console::secret::{self, SecretToken};
use crate::console::store::{AccountDetails, AccountStatus, AuditEntry, NewAccount, SignUp, TokenKind, TokenState};
use crate::console::{emails, Answer, Ctx, Problem, CONFIRM_VALIDITY};

/// The sign-up form as posted. No password: it is chosen on the confirmation page, so that
/// whoever reads the mailbox chooses it (signing up first with someone else's address gains
/// nothing).
#[derive(Deserialize, Default)]
pub struct SignUpForm {
    #[serde(default)]
    nom: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    administration: String,
}

fn signup_form(ctx: &Ctx, f: &SignUpForm, errors: &Errors) -> Markup {
    html! {
        h1 { "Créer un compte porteur" }
        (errors.summary("Le compte n'a pas pu être créé"))
        p { "Un compte vous permet de vous déclarer porteur de vos démarches, d'obtenir le code du bouton «\u{a0}Je donne mon avis\u{a0}» et de suivre la satisfaction des usagers." }
        // ProConnect first (DESIGN §16): a first log-in makes the account.
        @if ctx.console.proconnect.is_some() {
            p { "Agent public\u{a0}? Votre compte est créé dès votre première connexion avec ProConnect, sans mot de passe à choisir." }
            (super::proconnect::button(None))
            h2.separateur { "Ou créez un compte avec votre adresse e-mail" }
        }
        p.indication { "Vous recevrez un e-mail avec un lien pour confirmer votre adresse et choisir votre mot de passe. Les adresses se terminant par .gouv.fr sont actives dès qu'elles sont confirmées\u{a0}; pour les autres, un administrateur valide le compte." }
        p.mention { "Tous les champs sont obligatoires." }
        form method="post" action="/inscription" novalidate {
            (csrf_field(ctx.viewer.csrf()))
            (Input { id: "nom", label: "Prénom et nom", kind: "text", value: &f.nom, autocomplete: "name", hint: None, required: true }.render(errors))
            (Input { id: "email", label: "Adresse e-mail professionnelle", kind: "email", value: &f.email, autocomplete: "email",
                     hint: Some("Par exemple prenom.nom@ministere.gouv.fr"), required: true }.render(errors))
            (Input { id: "administration", label: "Administration", kind: "text", value: &f.administration, autocomplete: "organization",
                     hint: Some("Ministère, direction, opérateur ou collectivité"), required: true }.render(errors))
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

/// Checks a name and an administration as typed, adding their French messages to `errors`.
pub(super) fn check_details(nom: &str, administration: &str, errors: &mut Errors) -> AccountDetails {
    let name = match name_field(nom, 100) {
        Ok(n) if n.is_empty() => {
            errors.add("nom", "Prénom et nom", "Indiquez votre prénom et votre nom.");
            n
        }
        Ok(n) => n,
        Err(m) => {
            errors.add("nom", "Prénom et nom", format!("Le nom {m}"));
            String::new()
        }
    };
    let administration = match name_field(administration, 150) {
        Ok(a) if a.is_empty() => {
            errors.add("administration", "Administration", "Indiquez votre administration.");
            a
        }
        Ok(a) => a,
        Err(m) => {
            errors.add("administration", "Administration", format!("L'administration {m}"));
            String::new()
        }
    };
    AccountDetails { name, administration }
}

/// Validates, rate-limits, records the account and its one live confirmation link, mails it;
/// then the same answer for every address.
pub async fn signup_post(ctx: Ctx, Fields(f): Fields<SignUpForm>) -> Answer {
    let mut errors = Errors::default();
    let details = check_details(&f.nom, &f.administration, &mut errors);
    let email = normalize_email(&f.email).map_err(|m| errors.add("email", "Adresse e-mail", m)).ok();
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        let main = signup_form(&ctx, &f, &errors);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Créer un compte", main));
    };
    ctx.console.limits.check(Action::SignUp, ctx.client, &email).map_err(Problem::too_many)?;
    let c = &ctx.console;
    let now = Utc::now();
    let new = NewAccount { email: email.clone(), name: details.name, administration: details.administration };
    let (operator, url) = (&c.settings.operator_name, &c.settings.public_url);
    let token = SecretToken::generate();
    match c.store.sign_up(new, token.hash(), now, now + CONFIRM_VALIDITY).await? {
        // The link is the only live one: an earlier sign-up's mail no longer works.
        SignUp::Created(_) | SignUp::Unconfirmed(_) => {
            c.mailer.send(&email, emails::confirm(operator, url, token.expose())).await?
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
        TokenState::Revoked => (
            StatusCode::GONE,
            "Ce lien a été annulé",
            "Ce lien n'est plus valable\u{a0}: un lien plus récent l'a remplacé, ou le droit qu'il donnait a pris fin.",
        ),
        _ => (StatusCode::NOT_FOUND, "Ce lien n'est pas valide", "Vérifiez que vous avez copié le lien en entier."),
    };
    Problem { link: Some(again), ..Problem::new(status, title, text) }
}

fn token_of(q: &TokenQuery) -> Option<[u8; 32]> {
    q.jeton.as_deref().and_then(secret::hash_if_well_formed)
}

const SIGN_UP_AGAIN: (&str, &str) = ("Recevoir un nouveau lien\u{a0}: recommencer l'inscription", "/inscription");

/// The confirmation form as posted: the link, the details (prefilled from the sign-up) and the
/// password chosen.
#[derive(Deserialize, Default)]
pub struct ConfirmForm {
    #[serde(default)]
    jeton: String,
    #[serde(default)]
    nom: String,
    #[serde(default)]
    administration: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    confirmation: String,
}

fn confirm_form(ctx: &Ctx, f: &ConfirmForm, errors: &Errors) -> Markup {
    html! {
        h1 { "Confirmer votre adresse et choisir votre mot de passe" }
        (errors.summary("Le compte n'a pas pu être confirmé"))
        p { "Vérifiez votre nom et votre administration, puis choisissez le mot de passe de votre compte." }
        p.mention { "Tous les champs sont obligatoires." }
        form method="post" action="/confirmation" novalidate {
            (csrf_field(ctx.viewer.csrf()))
            input type="hidden" name="jeton" value=(f.jeton);
            (Input { id: "nom", label: "Prénom et nom", kind: "text", value: &f.nom, autocomplete: "name", hint: None, required: true }.render(errors))
            (Input { id: "administration", label: "Administration", kind: "text", value: &f.administration, autocomplete: "organization",
                     hint: Some("Ministère, direction, opérateur ou collectivité"), required: true }.render(errors))
            (Input { id: "mot_de_passe", label: "Mot de passe", kind: "password", value: "", autocomplete: "new-password",
                     hint: Some("12 caractères au minimum. Une phrase de passe est plus facile à retenir."), required: true }.render(errors))
            (Input { id: "confirmation", label: "Confirmation du mot de passe", kind: "password", value: "", autocomplete: "new-password",
                     hint: None, required: true }.render(errors))
            button.bouton type="submit" { "Confirmer et créer mon compte" }
        }
    }
}

/// Shows the form that confirms the address and chooses the password (a GET changes nothing:
/// mail scanners fetch links).
pub async fn confirm_get(ctx: Ctx, Params(q): Params<TokenQuery>) -> Answer {
    let (state, details) = match token_of(&q) {
        Some(hash) => ctx.console.store.peek_token(hash, TokenKind::Confirm, Utc::now()).await?,
        None => (TokenState::Unknown, None),
    };
    if !matches!(state, TokenState::Valid(_)) {
        return Err(bad_link(state, SIGN_UP_AGAIN));
    }
    let details = details.unwrap_or_default();
    let f = ConfirmForm {
        jeton: q.jeton.unwrap_or_default(),
        nom: details.name,
        administration: details.administration,
        ..ConfirmForm::default()
    };
    let main = confirm_form(&ctx, &f, &Errors::default());
    Ok(ctx.render(StatusCode::OK, "Confirmer votre adresse", main))
}

/// Uses the link with the details and password chosen: the account becomes active (trusted
/// domain) or waits for an administrator.
pub async fn confirm_post(ctx: Ctx, Fields(f): Fields<ConfirmForm>) -> Answer {
    let c = &ctx.console;
    let Some(hash) = secret::hash_if_well_formed(&f.jeton) else {
        return Err(bad_link(TokenState::Unknown, SIGN_UP_AGAIN));
    };
    let (state, _) = c.store.peek_token(hash, TokenKind::Confirm, Utc::now()).await?;
    if !matches!(state, TokenState::Valid(_)) {
        return Err(bad_link(state, SIGN_UP_AGAIN));
    }
    let mut errors = Errors::default();
    let details = check_details(&f.nom, &f.administration, &mut errors);
    check_new_password(&f.mot_de_passe, &f.confirmation, "Mot de passe", &mut errors);
    if !errors.is_empty() {
        let main = confirm_form(&ctx, &f, &errors);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Confirmer votre adresse", main));
    }
    let password_hash = c.passwords.hash(f.mot_de_passe).await?;
    let now = Utc::now();
    let TokenState::Valid(id) = c.store.confirm_account(hash, details, password_hash, now).await? else {
        // Used, or replaced by a newer sign-up, between the check and now.
        let (state, _) = c.store.peek_token(hash, TokenKind::Confirm, now).await?;
        return Err(bad_link(
            if matches!(state, TokenState::Valid(_)) { TokenState::Used } else { state },
            SIGN_UP_AGAIN,
        ));
    };
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
