//! « Mon compte » (`/console/compte`): who I am, change my password (ending my other
//! sessions), delete my account.

use axum::http::{header, StatusCode};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{Fields, Params};
use crate::console::guard::clear_cookie;
use crate::console::layout::{csrf_field, notice, see_other, Errors, Input};
use crate::console::password::check_new;
use crate::console::store::{Account, AuditEntry};
use crate::console::{emails, Answer, Ctx, Viewer, SESSION_COOKIE};

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    info: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    actuel: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    confirmation: String,
}

#[derive(Deserialize, Default)]
pub struct DeleteForm {
    #[serde(default)]
    mot_de_passe_suppression: String,
}

fn account_page(
    ctx: &Ctx,
    a: &Account,
    password_errors: &Errors,
    delete_errors: &Errors,
    info: Option<&str>,
) -> Markup {
    let csrf = ctx.viewer.csrf();
    html! {
        (notice(info))
        h1 { "Mon compte" }
        section.carte {
            h2 { "Mes informations" }
            dl {
                dt { "Nom" } dd { (a.name) }
                dt { "Adresse e-mail" } dd { (a.email) }
                dt { "Administration" } dd { (a.administration) }
                dt { "Rôle" } dd { @if a.is_admin { "Administrateur" } @else { "Porteur" } }
            }
        }
        section.carte #mot-de-passe {
            h2 { "Changer de mot de passe" }
            (password_errors.summary("Le mot de passe n'a pas été changé"))
            p { "Vos autres sessions (autres navigateurs, autres appareils) seront fermées." }
            form method="post" action="/console/compte/mot-de-passe" novalidate {
                (csrf_field(csrf))
                (Input { id: "actuel", label: "Mot de passe actuel", kind: "password", value: "", autocomplete: "current-password", hint: None, required: true }.render(password_errors))
                (Input { id: "mot_de_passe", label: "Nouveau mot de passe", kind: "password", value: "", autocomplete: "new-password",
                         hint: Some("12 caractères au minimum."), required: true }.render(password_errors))
                (Input { id: "confirmation", label: "Confirmation du nouveau mot de passe", kind: "password", value: "", autocomplete: "new-password", hint: None, required: true }.render(password_errors))
                button.bouton type="submit" { "Changer mon mot de passe" }
            }
        }
        section.carte #suppression {
            h2 { "Supprimer mon compte" }
            (delete_errors.summary("Le compte n'a pas été supprimé"))
            p { "La suppression est définitive. Les avis des usagers sur vos démarches sont conservés." }
            form method="post" action="/console/compte/suppression" novalidate {
                (csrf_field(csrf))
                (Input { id: "mot_de_passe_suppression", label: "Mot de passe, pour confirmer", kind: "password", value: "",
                         autocomplete: "current-password", hint: None, required: true }.render(delete_errors))
                button.bouton-secondaire.bouton-danger type="submit" { "Supprimer définitivement mon compte" }
            }
        }
    }
}

pub async fn account_get(ctx: Ctx, Params(q): Params<AccountQuery>) -> Answer {
    let a = ctx.account()?;
    let main = account_page(&ctx, a, &Errors::default(), &Errors::default(), q.info.as_deref());
    Ok(ctx.render(StatusCode::OK, "Mon compte", main))
}

/// Changes the password; every other session of the account ends.
pub async fn password_post(ctx: Ctx, Fields(f): Fields<PasswordForm>) -> Answer {
    let a = ctx.account()?;
    let c = &ctx.console;
    let mut errors = Errors::default();
    if !c.passwords.verify(f.actuel, Some(a.password_hash.clone())).await {
        errors.add("actuel", "Mot de passe actuel", "Le mot de passe actuel est incorrect.");
    }
    if let Err(m) = check_new(&f.mot_de_passe) {
        errors.add("mot_de_passe", "Nouveau mot de passe", m);
    } else if f.confirmation != f.mot_de_passe {
        errors.add("confirmation", "Confirmation", "Les deux mots de passe ne sont pas identiques.");
    }
    if !errors.is_empty() {
        let main = account_page(&ctx, a, &errors, &Errors::default(), None);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Mon compte", main));
    }
    let hash = c.passwords.hash(f.mot_de_passe).await?;
    c.store.set_password(a.id, hash).await?;
    let keep = match &ctx.viewer {
        Viewer::SignedIn { token_hash, .. } => Some(*token_hash),
        Viewer::Anonymous { .. } => None,
    };
    c.store.delete_sessions_of(a.id, keep).await?;
    let now = Utc::now();
    let entry = AuditEntry {
        actor_id: Some(a.id),
        action: "account.password.change".into(),
        account_id: Some(a.id),
        demarche_id: None,
        detail: String::new(),
    };
    c.store.audit(entry, now).await?;
    c.mailer.send(&a.email, emails::password_changed(&c.settings.operator_name, &c.settings.public_url)).await?;
    Ok(see_other("/console/compte?info=mot-de-passe-change"))
}

/// Deletes the account (password required), with its sessions.
pub async fn delete_post(ctx: Ctx, Fields(f): Fields<DeleteForm>) -> Answer {
    let a = ctx.account()?;
    let c = &ctx.console;
    if !c.passwords.verify(f.mot_de_passe_suppression, Some(a.password_hash.clone())).await {
        let mut errors = Errors::default();
        errors.add("mot_de_passe_suppression", "Mot de passe", "Le mot de passe est incorrect.");
        let main = account_page(&ctx, a, &Errors::default(), &errors, None);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Mon compte", main));
    }
    c.store.delete_account(a.id).await?;
    let entry = AuditEntry {
        actor_id: Some(a.id),
        action: "account.delete".into(),
        account_id: Some(a.id),
        demarche_id: None,
        detail: a.email.clone(),
    };
    c.store.audit(entry, Utc::now()).await?;
    c.mailer.send(&a.email, emails::deleted(&c.settings.operator_name)).await?;
    let mut res = see_other("/?info=compte-supprime");
    res.headers_mut().append(header::SET_COOKIE, clear_cookie(c, SESSION_COOKIE));
    Ok(res)
}
