//! « Administration » (`/console/admin`): accounts waiting for validation (accept, optionally
//! allowing their domain, or refuse; an e-mail either way), the allowed-domain list, and the
//! latest audit entries. Reached only through the administrator guard.

use axum::http::StatusCode;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::demarche::thousands;
use super::{normalize_domain, Fields, Id, Params};
use crate::catalogue::HIGH_VOLUME;
use crate::console::layout::{csrf_field, notice, paris_time, see_other, Errors, Input};
use crate::console::store::{AccountStatus, AuditEntry};
use crate::console::{emails, Answer, Console, Ctx, Problem};

#[derive(Deserialize, Default)]
pub struct AdminQuery {
    info: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ApproveForm {
    autoriser_domaine: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DomainForm {
    #[serde(default)]
    domaine: String,
}

async fn admin_page(
    ctx: &Ctx,
    domain_value: &str,
    domain_errors: &Errors,
    info: Option<&str>,
) -> Result<Markup, Problem> {
    admin_page_with(ctx, domain_value, domain_errors, &Errors::default(), info).await
}

async fn admin_page_with(
    ctx: &Ctx,
    domain_value: &str,
    domain_errors: &Errors,
    demarche_errors: &Errors,
    info: Option<&str>,
) -> Result<Markup, Problem> {
    let store = &ctx.console.store;
    let pending = store.pending_accounts().await?;
    let high_volume = store.high_volume_pending(HIGH_VOLUME).await?;
    let requests = store.pending_requests(None).await?;
    let domains = store.allowed_domains().await?;
    let audit = store.audit_log(20).await?;
    let undelivered = super::admin_emails::undelivered(ctx).await?;
    // Names rather than numbers: each account and démarche of the page, read once.
    let mut people = std::collections::HashMap::new();
    let mut demarches = std::collections::HashMap::new();
    for (_, e) in &audit {
        for id in [e.actor_id, e.account_id].into_iter().flatten() {
            if let std::collections::hash_map::Entry::Vacant(slot) = people.entry(id) {
                slot.insert(store.account_by_id(id).await?.map(|a| format!("{} ({})", a.name, a.email)));
            }
        }
        if let Some(id) = e.demarche_id {
            if let std::collections::hash_map::Entry::Vacant(slot) = demarches.entry(id) {
                if let Some(d) = store.demarche(id).await? {
                    slot.insert(d.details.name);
                }
            }
        }
    }
    let who = |id: i64| -> String {
        people.get(&id).cloned().flatten().unwrap_or_else(|| format!("compte supprimé (n°\u{a0}{id})"))
    };
    let csrf = ctx.viewer.csrf();
    Ok(html! {
        (notice(info))
        (super::admin_emails::notice(info))
        h1 { "Administration" }
        (super::admin_emails::section(&undelivered, csrf))
        section.carte #comptes {
            h2 { "Comptes en attente de validation" }
            @if pending.is_empty() {
                p { "Aucun compte n'attend de validation." }
            } @else {
                div.tableau-defilant role="region" tabindex="0" aria-label="Comptes en attente de validation" {
                    table.tableau {
                        caption { (pending.len()) " compte" @if pending.len() > 1 { "s" } " en attente" }
                        thead { tr { th scope="col" { "Nom" } th scope="col" { "Adresse e-mail" } th scope="col" { "Administration" } th scope="col" { "Inscrit le" } th scope="col" { "Décision" } } }
                        tbody {
                            @for a in &pending {
                                tr {
                                    td { (a.name) }
                                    td { (a.email) }
                                    td { (a.administration) }
                                    td { (paris_time(a.created_at)) }
                                    td {
                                        div.actions {
                                            form method="post" action={ "/console/admin/comptes/" (a.id) "/accepter" } {
                                                (csrf_field(csrf))
                                                div.case {
                                                    input type="checkbox" id={ "domaine-" (a.id) } name="autoriser_domaine" value="oui";
                                                    label for={ "domaine-" (a.id) } { "Autoriser aussi le domaine @" (a.domain()) }
                                                }
                                                button.bouton-secondaire type="submit" { "Accepter " span.sr-only { (a.email) } }
                                            }
                                            form method="post" action={ "/console/admin/comptes/" (a.id) "/refuser" } {
                                                (csrf_field(csrf))
                                                button.bouton-secondaire.bouton-danger type="submit" { "Refuser " span.sr-only { (a.email) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.carte #fort-volume {
            h2 { "Démarches à fort volume" }
            @if high_volume.is_empty() {
                p { "Aucune démarche à fort volume n'attend de validation." }
            } @else {
                p { "Ces démarches déclarent plus de 5\u{a0}000\u{a0}000 d'usagers par an\u{a0}: leur bouton reste fermé jusqu'à votre validation." }
                div.tableau-defilant role="region" tabindex="0" aria-label="Démarches à fort volume à valider" {
                    table.tableau {
                        thead { tr { th scope="col" { "Démarche" } th scope="col" { "Volume annuel" } th scope="col" { "Décision" } } }
                        tbody {
                            @for d in &high_volume {
                                tr {
                                    td { a href={ "/console/demarches/" (d.id) } { (d.details.name) } " (n°\u{a0}" (d.id) ")" }
                                    td { (d.details.volume_annuel.map(thousands).unwrap_or_default()) }
                                    td {
                                        form method="post" action={ "/console/admin/demarches/" (d.id) "/valider-volume" } {
                                            (csrf_field(csrf))
                                            button.bouton-secondaire type="submit" { "Valider " span.sr-only { (d.details.name) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.carte #demandes {
            h2 { "Demandes pour porter une démarche" }
            @if requests.is_empty() {
                p { "Aucune demande en attente." }
            } @else {
                div.tableau-defilant role="region" tabindex="0" aria-label="Demandes pour porter une démarche" {
                    table.tableau {
                        thead { tr { th scope="col" { "Démarche" } th scope="col" { "Demandeur" } th scope="col" { "Motif" } th scope="col" { "Décision" } } }
                        tbody {
                            @for r in &requests {
                                tr {
                                    td { a href={ "/console/demarches/" (r.demarche_id) "/porteurs" } { (r.demarche_name) } }
                                    td { (r.account.name) br; (r.account.email) }
                                    td.motif { (r.reason) }
                                    td { div.actions {
                                        form method="post" action={ "/console/demarches/" (r.demarche_id) "/demandes/" (r.id) "/accepter" } {
                                            (csrf_field(csrf))
                                            button.bouton-secondaire type="submit" { "Accepter " span.sr-only { (r.account.email) } }
                                        }
                                        form method="post" action={ "/console/demarches/" (r.demarche_id) "/demandes/" (r.id) "/refuser" } {
                                            (csrf_field(csrf))
                                            button.bouton-secondaire.bouton-danger type="submit" { "Refuser " span.sr-only { (r.account.email) } }
                                        }
                                    } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.carte #gestion {
            h2 { "Gérer les démarches" }
            (demarche_errors.summary("L'opération n'a pas été faite"))
            div.grille {
                form method="post" action="/console/admin/demarches/activation" novalidate {
                    h3 { "Activer ou désactiver" }
                    p.indication { "Le formulaire d'une démarche désactivée répond «\u{a0}lien non valide\u{a0}»\u{a0}; ses avis sont conservés." }
                    (csrf_field(csrf))
                    (Input { id: "demarche", label: "Numéro de la démarche", kind: "text", value: "", autocomplete: "off", hint: None, required: true }.render(demarche_errors))
                    fieldset.question.erreur-champ[demarche_errors.get("actif-non").is_some()] {
                        legend { "Action" }
                        @if let Some(m) = demarche_errors.get("actif-non") { p.message-erreur { (m) } }
                        div.choix { input type="radio" id="actif-non" name="actif" value="non"; label for="actif-non" { "Désactiver" } }
                        div.choix { input type="radio" id="actif-oui" name="actif" value="oui"; label for="actif-oui" { "Réactiver" } }
                    }
                    button.bouton-secondaire type="submit" { "Appliquer" }
                }
                form method="post" action="/console/admin/demarches/fusion" novalidate {
                    h3 { "Fusionner un doublon" }
                    p.indication { "Les porteurs et les avis du doublon passent à l'autre démarche. Les liens du doublon déjà collés continuent de fonctionner et enregistrent les avis dans l'autre démarche." }
                    (csrf_field(csrf))
                    (Input { id: "doublon", label: "Numéro du doublon", kind: "text", value: "", autocomplete: "off", hint: None, required: true }.render(demarche_errors))
                    (Input { id: "cible", label: "Numéro de la démarche à garder", kind: "text", value: "", autocomplete: "off", hint: None, required: true }.render(demarche_errors))
                    button.bouton-secondaire type="submit" { "Fusionner" }
                }
            }
        }
        section.carte #domaines {
            h2 { "Domaines autorisés" }
            p { "Les adresses de ces domaines (et de leurs sous-domaines) sont actives dès qu'elles sont confirmées, comme celles en .gouv.fr." }
            @if domains.is_empty() {
                p { "Aucun domaine autorisé en plus de gouv.fr." }
            } @else {
                div.tableau-defilant role="region" tabindex="0" aria-label="Domaines autorisés" {
                    table.tableau {
                        caption { "Domaines autorisés" }
                        thead { tr { th scope="col" { "Domaine" } th scope="col" { "Ajouté le" } th scope="col" { "Action" } } }
                        tbody {
                            @for d in &domains {
                                tr {
                                    td { (d.domain) }
                                    td { (paris_time(d.added_at)) }
                                    td {
                                        form method="post" action="/console/admin/domaines/retirer" {
                                            (csrf_field(csrf))
                                            input type="hidden" name="domaine" value=(d.domain);
                                            button.bouton-secondaire type="submit" { "Retirer " span.sr-only { (d.domain) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (domain_errors.summary("Le domaine n'a pas été ajouté"))
            form method="post" action="/console/admin/domaines" novalidate {
                (csrf_field(csrf))
                (Input { id: "domaine", label: "Ajouter un domaine", kind: "text", value: domain_value, autocomplete: "off",
                         hint: Some("Par exemple ademe.fr"), required: true }.render(domain_errors))
                button.bouton-secondaire type="submit" { "Ajouter le domaine" }
            }
        }
        section.carte #journal {
            h2 { "Dernières actions" }
            @if audit.is_empty() {
                p { "Aucune action enregistrée." }
            } @else {
                div.tableau-defilant role="region" tabindex="0" aria-label="Les 20 dernières actions" {
                    table.tableau {
                        caption { "Les 20 dernières actions" }
                        thead { tr { th scope="col" { "Date" } th scope="col" { "Action" } th scope="col" { "Par" } th scope="col" { "Concerne" } } }
                        tbody {
                            @for (at, e) in &audit {
                                tr {
                                    td { (paris_time(*at)) }
                                    td { (action_label(&e.action)) @if let Some(more) = detail_label(&e.detail) { br; span.indication { (more) } } }
                                    td { @match e.actor_id { Some(id) => (who(id)), None => "un opérateur (ligne de commande)" } }
                                    td {
                                        @if let Some(id) = e.account_id.filter(|id| Some(*id) != e.actor_id) { (who(id)) br; }
                                        @if let Some(id) = e.demarche_id {
                                            a href={ "/console/demarches/" (id) } { (demarches.get(&id).map_or("démarche supprimée", String::as_str)) } " (n°\u{a0}" (id) ")"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

pub async fn admin_get(ctx: Ctx, Params(q): Params<AdminQuery>) -> Answer {
    let main = admin_page(&ctx, "", &Errors::default(), q.info.as_deref()).await?;
    Ok(ctx.render(StatusCode::OK, "Administration", main))
}

/// An audit action in French words.
pub fn action_label(action: &str) -> &str {
    match action {
        "account.approve" => "Compte validé",
        "account.refuse" => "Compte refusé",
        "account.admin" => "Compte nommé administrateur",
        "account.delete" => "Compte supprimé",
        "account.confirm.active" => "Adresse confirmée, compte actif",
        "account.confirm.pending" => "Adresse confirmée, compte en attente de validation",
        "account.password.change" => "Mot de passe changé",
        "account.password.reset" => "Mot de passe réinitialisé",
        "api_key.create" => "Clé d'API créée",
        "api_key.revoke" => "Clé d'API révoquée",
        "domain.add" => "Domaine autorisé ajouté",
        "domain.remove" => "Domaine autorisé retiré",
        "demarche.create" => "Démarche ajoutée au catalogue",
        "demarche.update" => "Fiche de la démarche modifiée",
        "demarche.activate" => "Démarche réactivée",
        "demarche.deactivate" => "Démarche désactivée",
        "demarche.merge" => "Démarche fusionnée dans une autre",
        "demarche.high_volume.approve" => "Démarche à fort volume validée",
        "porteur.grant" => "Devient porteur",
        "porteur.request" => "Demande à devenir porteur",
        "porteur.refuse" => "Demande de porteur refusée",
        "porteur.invite" => "Invitation envoyée",
        "porteur.invite.cancel" => "Invitation annulée",
        "porteur.leave" => "Ne porte plus la démarche",
        "porteur.remove" => "Porteur retiré par un administrateur",
        other => other,
    }
}

/// The detail of an audit line, as a reader wants it: `into 12` becomes « dans la démarche
/// n° 12 », `invitation` « par invitation », the command line's mark is dropped.
fn detail_label(detail: &str) -> Option<String> {
    let detail = detail.trim();
    if detail.is_empty() || detail.ends_with("(widget-server account)") {
        return None;
    }
    Some(match detail.strip_prefix("into ") {
        Some(id) => format!("dans la démarche n°\u{a0}{id}"),
        None if detail == "invitation" => "par invitation".into(),
        None => detail.to_string(),
    })
}

fn audit(actor: i64, action: &str, account_id: Option<i64>, detail: String) -> AuditEntry {
    AuditEntry { actor_id: Some(actor), action: action.into(), account_id, demarche_id: None, detail }
}

/// Accepts a waiting account, optionally allowing its domain; mails its owner.
pub async fn approve_post(ctx: Ctx, Id(id): Id, Fields(f): Fields<ApproveForm>) -> Answer {
    let admin = ctx.account()?;
    let c: &Console = &ctx.console;
    let now = Utc::now();
    let Some(account) = c.store.account_by_id(id).await? else { return Err(Problem::not_found()) };
    if !c.store.set_status(id, AccountStatus::Pending, AccountStatus::Active, now).await? {
        return Err(already_decided());
    }
    c.store.audit(audit(admin.id, "account.approve", Some(id), account.email.clone()), now).await?;
    if f.autoriser_domaine.is_some() {
        let domain = account.domain().to_string();
        if c.store.add_allowed_domain(domain.clone(), Some(admin.id), now).await? {
            c.store.audit(audit(admin.id, "domain.add", None, domain), now).await?;
        }
    }
    c.mailer.send(&account.email, emails::approved(&c.settings.operator_name, &c.settings.public_url)).await?;
    Ok(see_other("/console/admin?info=compte-accepte"))
}

/// Refuses a waiting account: it is deleted and its owner told.
pub async fn refuse_post(ctx: Ctx, Id(id): Id) -> Answer {
    let admin = ctx.account()?;
    let c: &Console = &ctx.console;
    let now = Utc::now();
    let account = match c.store.account_by_id(id).await? {
        Some(a) if a.status == AccountStatus::Pending => a,
        Some(_) => return Err(already_decided()),
        None => return Err(Problem::not_found()),
    };
    if !c.store.delete_pending_account(id).await? {
        return Err(already_decided());
    }
    c.store.audit(audit(admin.id, "account.refuse", Some(id), account.email.clone()), now).await?;
    c.mailer.send(&account.email, emails::refused(&c.settings.operator_name)).await?;
    Ok(see_other("/console/admin?info=compte-refuse"))
}

fn already_decided() -> Problem {
    Problem {
        link: Some(("Retour à l'administration", "/console/admin")),
        ..Problem::new(StatusCode::CONFLICT, "Compte déjà traité", "Ce compte n'attend plus de validation.")
    }
}

pub async fn domain_add_post(ctx: Ctx, Fields(f): Fields<DomainForm>) -> Answer {
    let admin = ctx.account()?;
    let Some(domain) = normalize_domain(&f.domaine) else {
        let mut errors = Errors::default();
        errors.add("domaine", "Domaine", "Indiquez un nom de domaine, par exemple ademe.fr.");
        let main = admin_page(&ctx, &f.domaine, &errors, None).await?;
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Administration", main));
    };
    let now = Utc::now();
    if ctx.console.store.add_allowed_domain(domain.clone(), Some(admin.id), now).await? {
        ctx.console.store.audit(audit(admin.id, "domain.add", None, domain), now).await?;
    }
    Ok(see_other("/console/admin?info=domaine-ajoute#domaines"))
}

pub async fn domain_remove_post(ctx: Ctx, Fields(f): Fields<DomainForm>) -> Answer {
    let admin = ctx.account()?;
    let domain = f.domaine.trim().to_ascii_lowercase();
    if ctx.console.store.remove_allowed_domain(domain.clone()).await? {
        ctx.console.store.audit(audit(admin.id, "domain.remove", None, domain), Utc::now()).await?;
    }
    Ok(see_other("/console/admin?info=domaine-retire#domaines"))
}

fn demarche_audit(admin: i64, action: &str, demarche: i64, detail: String) -> AuditEntry {
    AuditEntry { actor_id: Some(admin), action: action.into(), account_id: None, demarche_id: Some(demarche), detail }
}

/// Opens the button of a démarche declared over 5,000,000 a year.
pub async fn approve_volume_post(ctx: Ctx, Id(id): Id) -> Answer {
    let admin = ctx.account()?;
    let c = &ctx.console;
    c.store.demarche(id).await?.ok_or_else(Problem::not_found)?;
    c.store.approve_high_volume(id).await?;
    c.store.audit(demarche_audit(admin.id, "demarche.high_volume.approve", id, String::new()), Utc::now()).await?;
    c.reload_catalogue().await?;
    Ok(see_other("/console/admin?info=volume-valide#fort-volume"))
}

#[derive(Deserialize, Default)]
pub struct ActivationForm {
    #[serde(default)]
    demarche: String,
    #[serde(default)]
    actif: String,
}

async fn demarche_error(ctx: &Ctx, field: &'static str, label: &'static str, msg: &str) -> Answer {
    let mut errors = Errors::default();
    errors.add(field, label, msg);
    let main = admin_page_with(ctx, "", &Errors::default(), &errors, None).await?;
    Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Administration", main))
}

/// An existing démarche's number from a form field.
async fn demarche_number(ctx: &Ctx, raw: &str) -> Result<Option<i64>, Problem> {
    let Ok(id) = raw.trim().parse::<i64>() else { return Ok(None) };
    Ok(ctx.console.store.demarche(id).await?.map(|d| d.id))
}

/// Deactivates (its form answers 404, its avis stay) or reactivates a démarche.
pub async fn activation_post(ctx: Ctx, Fields(f): Fields<ActivationForm>) -> Answer {
    let admin = ctx.account()?;
    let Some(id) = demarche_number(&ctx, &f.demarche).await? else {
        return demarche_error(&ctx, "demarche", "Numéro de la démarche", "Aucune démarche ne porte ce numéro.").await;
    };
    let active = match f.actif.as_str() {
        "oui" => true,
        "non" => false,
        _ => {
            return demarche_error(&ctx, "actif-non", "Action", "Choisissez de désactiver ou de réactiver la démarche.")
                .await
        }
    };
    let c = &ctx.console;
    c.store.set_demarche_active(id, active).await?;
    let action = if active { "demarche.activate" } else { "demarche.deactivate" };
    c.store.audit(demarche_audit(admin.id, action, id, String::new()), Utc::now()).await?;
    c.reload_catalogue().await?;
    let info = if active { "demarche-activee" } else { "demarche-desactivee" };
    Ok(see_other(&format!("/console/admin?info={info}#gestion")))
}

#[derive(Deserialize, Default)]
pub struct MergeForm {
    #[serde(default)]
    doublon: String,
    #[serde(default)]
    cible: String,
}

/// Merges a duplicate into the démarche to keep.
pub async fn merge_post(ctx: Ctx, Fields(f): Fields<MergeForm>) -> Answer {
    let admin = ctx.account()?;
    let Some(duplicate) = demarche_number(&ctx, &f.doublon).await? else {
        return demarche_error(&ctx, "doublon", "Numéro du doublon", "Aucune démarche ne porte ce numéro.").await;
    };
    let Some(target) = demarche_number(&ctx, &f.cible).await? else {
        return demarche_error(&ctx, "cible", "Démarche à garder", "Aucune démarche ne porte ce numéro.").await;
    };
    let c = &ctx.console;
    let names = (c.store.demarche(duplicate).await?, c.store.demarche(target).await?);
    let Some(merged) = c.store.merge_demarche(duplicate, target).await? else {
        return demarche_error(
            &ctx,
            "cible",
            "Démarche à garder",
            "Ces deux démarches ne peuvent pas être fusionnées (même numéro, ou démarche à garder elle-même fusionnée).",
        )
        .await;
    };
    c.store.audit(demarche_audit(admin.id, "demarche.merge", duplicate, format!("into {target}")), Utc::now()).await?;
    c.reload_catalogue().await?;
    // Whoever waited on the duplicate (a request, an invitation) now waits on the kept one: say so.
    if let (Some(dup), Some(kept)) = names {
        let (operator, url) = (&c.settings.operator_name, &c.settings.public_url);
        let (dup, kept) = ((dup.details.name.as_str(), duplicate), (kept.details.name.as_str(), target));
        for (to, invitation) in
            merged.requesters.iter().map(|e| (e, false)).chain(merged.invitees.iter().map(|e| (e, true)))
        {
            c.mailer.send(to, emails::merged_into(operator, url, dup, kept, invitation)).await?;
        }
    }
    Ok(see_other("/console/admin?info=demarches-fusionnees#gestion"))
}
