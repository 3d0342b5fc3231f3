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
        section.carte #fort-volume {
            h2 { "Démarches à fort volume" }
            @if high_volume.is_empty() {
                p { "Aucune démarche à fort volume n'attend de validation." }
            } @else {
                p { "Ces démarches déclarent plus de 5\u{a0}000\u{a0}000 d'usagers par an\u{a0}: leur bouton reste fermé jusqu'à votre validation." }
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
        section.carte #demandes {
            h2 { "Demandes pour porter une démarche" }
            @if requests.is_empty() {
                p { "Aucune demande en attente." }
            } @else {
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
                table.tableau {
                    caption { "Les 20 dernières actions" }
                    thead { tr { th scope="col" { "Date" } th scope="col" { "Action" } th scope="col" { "Par" } th scope="col" { "Compte" } th scope="col" { "Détail" } } }
                    tbody {
                        @for (at, e) in &audit {
                            tr {
                                td { (paris_time(*at)) }
                                td { (e.action) }
                                td { @match e.actor_id { Some(id) => { "n°\u{a0}" (id) }, None => "opérateur" } }
                                td { @if let Some(id) = e.account_id { "n°\u{a0}" (id) } }
                                td { (e.detail) }
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
