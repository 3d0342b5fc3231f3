//! « Mon nom et mon administration » (`/console/compte/profil`): the account's name and
//! administration, as its owner corrects them. A first ProConnect log-in lands here, since it
//! made them from ProConnect's claims (DESIGN §16: the administration comes from a SIRET number).

use axum::http::StatusCode;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::signup::check_details;
use super::{Fields, Params};
use crate::console::layout::{csrf_field, see_other, Errors, Input};
use crate::console::store::AuditEntry;
use crate::console::{Answer, Ctx};

#[derive(Deserialize, Default)]
pub struct ProfileQuery {
    info: Option<String>,
}

/// The form as posted.
#[derive(Deserialize, Default)]
pub struct ProfileForm {
    #[serde(default)]
    nom: String,
    #[serde(default)]
    administration: String,
}

fn profile_form(ctx: &Ctx, f: &ProfileForm, errors: &Errors, info: Option<&str>) -> Markup {
    let notice = match info.unwrap_or("") {
        "proconnect-compte-cree" => Some((
            "info",
            "Votre compte a été créé avec ProConnect. Vérifiez votre nom et votre administration\u{a0}: ils viennent \
             des informations transmises par ProConnect.",
        )),
        "profil-enregistre" => Some(("succes", "Votre nom et votre administration sont enregistrés.")),
        _ => None,
    };
    html! {
        @if let Some((class, text)) = notice { div class=(class) role="status" { p { (text) } } }
        h1 { "Mon nom et mon administration" }
        (errors.summary("Les informations n'ont pas été enregistrées"))
        p { "Ils apparaissent aux autres porteurs de vos démarches et dans les e-mails qu'ils reçoivent." }
        p.mention { "Tous les champs sont obligatoires." }
        form method="post" action="/console/compte/profil" novalidate {
            (csrf_field(ctx.viewer.csrf()))
            (Input { id: "nom", label: "Prénom et nom", kind: "text", value: &f.nom, autocomplete: "name", hint: None, required: true }.render(errors))
            (Input { id: "administration", label: "Administration", kind: "text", value: &f.administration, autocomplete: "organization",
                     hint: Some("Ministère, direction, opérateur ou collectivité"), required: true }.render(errors))
            button.bouton type="submit" { "Enregistrer" }
        }
        p { a href="/console/compte" { "Retour à mon compte" } }
    }
}

/// The form, filled with the account's details.
pub async fn profile_get(ctx: Ctx, Params(q): Params<ProfileQuery>) -> Answer {
    let a = ctx.account()?;
    let f = ProfileForm { nom: a.name.clone(), administration: a.administration.clone() };
    let main = profile_form(&ctx, &f, &Errors::default(), q.info.as_deref());
    Ok(ctx.render(StatusCode::OK, "Mon nom et mon administration", main))
}

/// Checks and records them.
pub async fn profile_post(ctx: Ctx, Fields(f): Fields<ProfileForm>) -> Answer {
    let id = ctx.account()?.id;
    let mut errors = Errors::default();
    let details = check_details(&f.nom, &f.administration, &mut errors);
    if !errors.is_empty() {
        let main = profile_form(&ctx, &f, &errors, None);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Mon nom et mon administration", main));
    }
    let c = &ctx.console;
    c.store.update_account_details(id, details).await?;
    let entry = AuditEntry {
        actor_id: Some(id),
        action: "account.details".into(),
        account_id: Some(id),
        demarche_id: None,
        detail: String::new(),
    };
    c.store.audit(entry, Utc::now()).await?;
    Ok(see_other("/console/compte/profil?info=profil-enregistre"))
}
