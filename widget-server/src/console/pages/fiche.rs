//! « Fiche » (`/console/demarches/{id}/fiche`): name, administration, URL, volume, the
//! observatory criteria (DESIGN §12) and the privacy notice (DESIGN §13). A change reaches the
//! catalogue (and so the citizen form's header) at once in this process.

use axum::http::StatusCode;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::demarche::{carried, header, Tab};
use super::demarches::{fields, tell_admins_high_volume, validate, DemarcheForm};
use super::{text_field, Fields, Id, Params};
use crate::catalogue::HIGH_VOLUME;
use crate::console::layout::{csrf_field, notice, see_other, Errors, Input};
use crate::console::store::{AuditEntry, Criteria, DemarcheDetails, DemarcheRow, EnLigne};
use crate::console::{Answer, Ctx};

#[derive(Deserialize, Default)]
pub struct InfoQuery {
    info: Option<String>,
}

/// The whole fiche as posted.
#[derive(Deserialize, Default)]
pub struct FicheForm {
    #[serde(flatten)]
    base: DemarcheForm,
    #[serde(default)]
    en_ligne: String,
    #[serde(default)]
    franceconnect: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    support_qualite: String,
    #[serde(default)]
    disponibilite: String,
    #[serde(default)]
    privacy_controller: String,
    #[serde(default)]
    privacy_dpo: String,
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "oui" => Some(true),
        "non" => Some(false),
        _ => None,
    }
}

fn yes_no_value(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "oui",
        Some(false) => "non",
        None => "",
    }
}

fn form_of(d: &DemarcheRow) -> FicheForm {
    let x = &d.details;
    FicheForm {
        base: DemarcheForm {
            nom: x.name.clone(),
            administration: x.administration.clone(),
            url: x.url.clone(),
            volume: x.volume_annuel.map(|v| v.to_string()).unwrap_or_default(),
        },
        en_ligne: x.criteria.en_ligne.map(|e| e.as_str().to_string()).unwrap_or_default(),
        franceconnect: yes_no_value(x.criteria.franceconnect).into(),
        mobile: yes_no_value(x.criteria.mobile).into(),
        support_qualite: yes_no_value(x.criteria.support_qualite).into(),
        disponibilite: yes_no_value(x.criteria.disponibilite).into(),
        privacy_controller: x.privacy_controller.clone(),
        privacy_dpo: x.privacy_dpo.clone(),
    }
}

/// A question of the observatory with « non déclaré » first.
fn choice(id: &'static str, legend: &str, hint: Option<&str>, options: &[(&str, &str)], value: &str) -> Markup {
    html! {
        fieldset.question {
            legend { (legend) @if let Some(h) = hint { " " span.indication { (h) } } }
            @for (v, label) in [("", "Non déclaré")].iter().chain(options.iter()) {
                @let input_id = format!("{id}-{}", if v.is_empty() { "nd" } else { v });
                div.choix {
                    input type="radio" id=(input_id) name=(id) value=(v) checked[*v == value];
                    label for=(input_id) { (label) }
                }
            }
        }
    }
}

fn fiche_page(ctx: &Ctx, d: &DemarcheRow, f: &FicheForm, errors: &Errors, info: Option<&str>) -> Markup {
    let yn: [(&str, &str); 2] = [("oui", "Oui"), ("non", "Non")];
    html! {
        (notice(info))
        (header(d, Some(Tab::Fiche)))
        h2 { "Fiche de la démarche" }
        (errors.summary("La fiche n'a pas été enregistrée"))
        form method="post" action={ "/console/demarches/" (d.id) "/fiche" } novalidate {
            (csrf_field(ctx.viewer.csrf()))
            (fields(&f.base, errors))
            h3 { "Critères de qualité de l'observatoire" }
            p.indication { "Ces critères sont publiés dans l'observatoire de la qualité des démarches en ligne." }
            (choice("en_ligne", "Réalisable en ligne", None, &[("oui", "Oui"), ("partiel", "Partiellement"), ("non", "Non")], &f.en_ligne))
            (choice("franceconnect", "Identification FranceConnect", None, &yn, &f.franceconnect))
            (choice("mobile", "Compatible mobile", None, &yn, &f.mobile))
            (choice("support_qualite", "Support usager de qualité", Some("Au moins deux moyens de contact et une aide humaine."), &yn, &f.support_qualite))
            (choice("disponibilite", "Disponibilité", Some("Le service est disponible et répond rapidement."), &yn, &f.disponibilite))
            h3 { "Protection des données" }
            p.indication { "La mention d'information des usagers sur leurs données personnelles (responsable du traitement, contact du délégué à la protection des données)." }
            (Input { id: "privacy_controller", label: "Responsable du traitement", kind: "text", value: &f.privacy_controller, autocomplete: "off",
                     hint: Some("Par exemple\u{a0}: Direction générale des entreprises"), required: false }.render(errors))
            (Input { id: "privacy_dpo", label: "Contact du délégué à la protection des données", kind: "text", value: &f.privacy_dpo, autocomplete: "off",
                     hint: Some("Une adresse e-mail ou postale"), required: false }.render(errors))
            button.bouton type="submit" { "Enregistrer la fiche" }
        }
    }
}

pub async fn fiche_get(ctx: Ctx, Id(id): Id, Params(q): Params<InfoQuery>) -> Answer {
    let d = carried(&ctx, id).await?;
    let main = fiche_page(&ctx, &d, &form_of(&d), &Errors::default(), q.info.as_deref());
    Ok(ctx.render(StatusCode::OK, &format!("Fiche – {}", d.details.name), main))
}

pub async fn fiche_post(ctx: Ctx, Id(id): Id, Fields(f): Fields<FicheForm>) -> Answer {
    let account = ctx.account()?;
    let d = carried(&ctx, id).await?;
    let mut errors = Errors::default();
    let en_ligne = EnLigne::parse(&f.en_ligne);
    if !f.en_ligne.is_empty() && en_ligne.is_none() {
        errors.add("en_ligne-nd", "Réalisable en ligne", "Choisissez une des réponses proposées.");
    }
    let Some((name, administration, url, volume_annuel)) = validate(&f.base, &mut errors).filter(|_| errors.is_empty())
    else {
        let main = fiche_page(&ctx, &d, &f, &errors, None);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Fiche", main));
    };
    let details = DemarcheDetails {
        name,
        administration,
        url,
        volume_annuel,
        criteria: Criteria {
            en_ligne,
            franceconnect: yes_no(&f.franceconnect),
            mobile: yes_no(&f.mobile),
            support_qualite: yes_no(&f.support_qualite),
            disponibilite: yes_no(&f.disponibilite),
        },
        privacy_controller: text_field(&f.privacy_controller, 300),
        privacy_dpo: text_field(&f.privacy_dpo, 300),
    };
    let c = &ctx.console;
    let search = crate::search::key(&details.name, &details.administration);
    let became_high = volume_annuel.is_some_and(|v| v > HIGH_VOLUME)
        && d.details.volume_annuel.is_none_or(|v| v <= HIGH_VOLUME)
        && !d.high_volume_approved;
    c.store.update_demarche(id, details, search).await?;
    c.observatory.clear();
    let entry = AuditEntry {
        actor_id: Some(account.id),
        action: "demarche.update".into(),
        account_id: None,
        demarche_id: Some(id),
        detail: String::new(),
    };
    c.store.audit(entry, Utc::now()).await?;
    c.reload_catalogue().await?;
    if became_high {
        tell_admins_high_volume(c, id).await?;
    }
    Ok(see_other(&format!("/console/demarches/{id}/fiche?info=fiche-enregistree")))
}
