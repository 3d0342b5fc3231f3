//! « Porteurs » (`/console/demarches/{id}/porteurs`): who carries the démarche, the pending
//! requests with their reason (accept or refuse, e-mail to the requester), invite an address
//! (e-mail with a single-use link, `/console/invitation`), the invitations still pending with
//! « Annuler », leave. An invitation is void once its author no longer carries the démarche
//! (their departure cancels it, and its use checks it again). Every grant, refusal, invitation,
//! cancellation and departure goes to `audit`.

use axum::extract::Path;
use axum::http::StatusCode;
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::demarche::{carried, find, header, Tab};
use super::signup::TokenQuery;
use super::{normalize_email, Fields, Id, Params};
use crate::console::layout::{csrf_field, notice, paris_time_a, see_other, Errors, Input};
use crate::console::limit::Action;
use crate::console::secret::{self, SecretToken};
use crate::console::store::{AuditEntry, TokenState};
use crate::console::{emails, Answer, Ctx, Problem};

/// How long an invitation link is valid.
const INVITE_VALIDITY: chrono::TimeDelta = chrono::TimeDelta::days(7);

#[derive(Deserialize, Default)]
pub struct InfoQuery {
    info: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
}

fn audit(actor: i64, action: &str, account: Option<i64>, demarche: i64, detail: String) -> AuditEntry {
    AuditEntry {
        actor_id: Some(actor),
        action: action.into(),
        account_id: account,
        demarche_id: Some(demarche),
        detail,
    }
}

async fn porteurs_page(ctx: &Ctx, id: i64, invite: &str, errors: &Errors, info: Option<&str>) -> Answer {
    let d = carried(ctx, id).await?;
    let store = &ctx.console.store;
    let porteurs = store.porteurs_of(id).await?;
    let requests = store.pending_requests(Some(id)).await?;
    let invites = store.pending_invites(id, Utc::now()).await?;
    let me = ctx.account()?;
    let csrf = ctx.viewer.csrf();
    let main = html! {
        (notice(info))
        (header(&d, Some(Tab::Porteurs)))
        h2 { "Porteurs" }
        div.tableau-defilant role="region" tabindex="0" aria-label="Les porteurs de cette démarche" {
            table.tableau {
                caption { "Les porteurs de cette démarche" }
                thead { tr {
                    th scope="col" { "Nom" } th scope="col" { "Adresse e-mail" } th scope="col" { "Administration" }
                    @if me.is_admin { th scope="col" { "Administration du service" } }
                } }
                tbody { @for p in &porteurs { tr {
                    td { (p.name) @if p.id == me.id { " (vous)" } } td { (p.email) } td { (p.administration) }
                    @if me.is_admin { td {
                        form method="post" action={ "/console/admin/demarches/" (id) "/porteurs/" (p.id) "/retirer" } {
                            (csrf_field(csrf))
                            button.bouton-secondaire.bouton-danger type="submit" { "Retirer " span.sr-only { (p.email) } }
                        }
                    } }
                } } }
            }
        }
        section.carte #demandes {
            h3 { "Demandes en attente" }
            @if requests.is_empty() {
                p { "Aucune demande en attente." }
            } @else {
                div.tableau-defilant role="region" tabindex="0" aria-label="Demandes en attente" {
                    table.tableau {
                        thead { tr { th scope="col" { "Demandeur" } th scope="col" { "Administration" } th scope="col" { "Motif" } th scope="col" { "Décision" } } }
                        tbody {
                            @for r in &requests {
                                tr {
                                    td { (r.account.name) br; (r.account.email) }
                                    td { (r.account.administration) }
                                    td.motif { (r.reason) }
                                    td { div.actions {
                                        form method="post" action={ "/console/demarches/" (id) "/demandes/" (r.id) "/accepter" } {
                                            (csrf_field(csrf))
                                            button.bouton-secondaire type="submit" { "Accepter " span.sr-only { (r.account.email) } }
                                        }
                                        form method="post" action={ "/console/demarches/" (id) "/demandes/" (r.id) "/refuser" } {
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
        section.carte #invitations {
            h3 { "Invitations en attente" }
            @if invites.is_empty() {
                p { "Aucune invitation en attente." }
            } @else {
                div.tableau-defilant role="region" tabindex="0" aria-label="Invitations en attente" {
                    table.tableau {
                        thead { tr { th scope="col" { "Adresse invitée" } th scope="col" { "Envoyée par" } th scope="col" { "Valable jusqu'au" } th scope="col" { "Action" } } }
                        tbody {
                            @for i in &invites {
                                tr {
                                    td { (i.email) }
                                    td { (i.invited_by) br; (paris_time_a(i.created_at)) }
                                    td { (paris_time_a(i.expires_at)) }
                                    td {
                                        form method="post" action={ "/console/demarches/" (id) "/invitations/" (hex::encode(i.hash)) "/annuler" } {
                                            (csrf_field(csrf))
                                            button.bouton-secondaire.bouton-danger type="submit" { "Annuler " span.sr-only { "l'invitation de " (i.email) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.carte #inviter {
            h3 { "Inviter un porteur" }
            (errors.summary("L'invitation n'a pas été envoyée"))
            form method="post" action={ "/console/demarches/" (id) "/inviter" } novalidate {
                (csrf_field(csrf))
                (Input { id: "email", label: "Adresse e-mail de la personne à inviter", kind: "email", value: invite, autocomplete: "off",
                         hint: Some("Elle recevra un lien valable 7 jours. Sans compte, elle devra d'abord en créer un avec cette adresse."), required: true }.render(errors))
                button.bouton-secondaire type="submit" { "Envoyer l'invitation" }
            }
        }
        @if porteurs.iter().any(|p| p.id == me.id) {
            section.carte #quitter {
                h3 { "Ne plus porter cette démarche" }
                form method="post" action={ "/console/demarches/" (id) "/quitter" } {
                    (csrf_field(csrf))
                    button.bouton-secondaire.bouton-danger type="submit" { "Quitter cette démarche" }
                }
            }
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render(status, &format!("Porteurs – {}", d.details.name), main))
}

pub async fn porteurs_get(ctx: Ctx, Id(id): Id, Params(q): Params<InfoQuery>) -> Answer {
    porteurs_page(&ctx, id, "", &Errors::default(), q.info.as_deref()).await
}

/// Accepts or refuses a request (a porteur of the démarche or an administrator).
async fn decide(ctx: Ctx, (id, request): (String, String), accept: bool) -> Answer {
    let me = ctx.account()?;
    let id: i64 = id.parse().map_err(|_| Problem::not_found())?;
    let d = carried(&ctx, id).await?;
    let c = &ctx.console;
    let request: i64 = request.parse().map_err(|_| Problem::not_found())?;
    // The request must be one of this démarche: a porteur of A cannot decide for B.
    if !c.store.pending_requests(Some(id)).await?.iter().any(|r| r.id == request) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "Demande déjà traitée",
            "Cette demande n'attend plus de réponse.",
        ));
    }
    let now = Utc::now();
    let Some(r) = c.store.decide_request(request, accept, me.id, now).await? else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "Demande déjà traitée",
            "Cette demande n'attend plus de réponse.",
        ));
    };
    let action = if accept { "porteur.grant" } else { "porteur.refuse" };
    c.store.audit(audit(me.id, action, Some(r.account.id), id, r.account.email.clone()), now).await?;
    let mail = emails::porteur_decision(&c.settings.operator_name, &c.settings.public_url, &d.details.name, id, accept);
    c.mailer.send(&r.account.email, mail).await?;
    let info = if accept { "demande-acceptee" } else { "demande-refusee" };
    Ok(see_other(&format!("/console/demarches/{id}/porteurs?info={info}")))
}

pub async fn accept_post(ctx: Ctx, Path(ids): Path<(String, String)>) -> Answer {
    decide(ctx, ids, true).await
}

pub async fn refuse_post(ctx: Ctx, Path(ids): Path<(String, String)>) -> Answer {
    decide(ctx, ids, false).await
}

/// Sends an invitation link to an address.
pub async fn invite_post(ctx: Ctx, Id(id): Id, Fields(f): Fields<InviteForm>) -> Answer {
    let me = ctx.account()?;
    let d = carried(&ctx, id).await?;
    let email = match normalize_email(&f.email) {
        Ok(e) => e,
        Err(m) => {
            let mut errors = Errors::default();
            errors.add("email", "Adresse e-mail", m);
            return porteurs_page(&ctx, id, &f.email, &errors, None).await;
        }
    };
    ctx.console.limits.check(Action::Mailing, ctx.client, &me.email).map_err(Problem::too_many)?;
    let c = &ctx.console;
    let now = Utc::now();
    let token = SecretToken::generate();
    c.store.insert_invite(token.hash(), id, email.clone(), me.id, now, now + INVITE_VALIDITY).await?;
    c.store.audit(audit(me.id, "porteur.invite", None, id, email.clone()), now).await?;
    let mail = emails::porteur_invite(
        &c.settings.operator_name,
        &c.settings.public_url,
        &me.name,
        &d.details.name,
        id,
        token.expose(),
    );
    c.mailer.send(&email, mail).await?;
    Ok(see_other(&format!("/console/demarches/{id}/porteurs?info=invitation-envoyee")))
}

/// Cancels a pending invitation (a porteur of the démarche or an administrator).
pub async fn invite_cancel_post(ctx: Ctx, Path((id, invite)): Path<(String, String)>) -> Answer {
    let me = ctx.account()?;
    let id: i64 = id.parse().map_err(|_| Problem::not_found())?;
    carried(&ctx, id).await?;
    let hash: [u8; 32] = hex::decode(&invite).ok().and_then(|h| h.try_into().ok()).ok_or_else(Problem::not_found)?;
    let now = Utc::now();
    // Only an invitation of this démarche: a porteur of A cannot cancel B's.
    match ctx.console.store.cancel_invite(id, hash, now).await? {
        Some(email) => {
            ctx.console.store.audit(audit(me.id, "porteur.invite.cancel", None, id, email), now).await?;
            Ok(see_other(&format!("/console/demarches/{id}/porteurs?info=invitation-annulee")))
        }
        None => Err(Problem::new(
            StatusCode::CONFLICT,
            "Invitation déjà close",
            "Cette invitation a déjà été acceptée ou annulée.",
        )),
    }
}

/// Stops carrying the démarche; the invitations sent for it end with it.
pub async fn leave_post(ctx: Ctx, Id(id): Id) -> Answer {
    let me = ctx.account()?;
    find(&ctx, id).await?;
    let now = Utc::now();
    if ctx.console.store.leave(id, me.id, now).await? {
        ctx.console.store.audit(audit(me.id, "porteur.leave", Some(me.id), id, String::new()), now).await?;
    }
    Ok(see_other("/console?info=demarche-quittee"))
}

const BAD_INVITE: (&str, &str) = ("Mes démarches", "/console");

/// The invitation link: shows a button (a GET changes nothing).
pub async fn invitation_get(ctx: Ctx, Params(q): Params<TokenQuery>) -> Answer {
    if q.jeton.as_deref().and_then(secret::hash_if_well_formed).is_none() {
        return Err(super::signup::bad_link(TokenState::Unknown, BAD_INVITE));
    }
    let main = html! {
        h1 { "Invitation à porter une démarche" }
        p { "Acceptez l'invitation pour devenir porteur de la démarche avec votre compte." }
        form method="post" action="/console/invitation" {
            (csrf_field(ctx.viewer.csrf()))
            input type="hidden" name="jeton" value=(q.jeton.as_deref().unwrap_or(""));
            button.bouton type="submit" { "Accepter l'invitation" }
        }
    };
    Ok(ctx.render(StatusCode::OK, "Invitation", main))
}

pub async fn invitation_post(ctx: Ctx, Fields(q): Fields<TokenQuery>) -> Answer {
    let me = ctx.account()?;
    let Some(hash) = q.jeton.as_deref().and_then(secret::hash_if_well_formed) else {
        return Err(super::signup::bad_link(TokenState::Unknown, BAD_INVITE));
    };
    let now = Utc::now();
    match ctx.console.store.take_invite(hash, me.id, me.email.clone(), now).await? {
        Ok(id) => {
            ctx.console.store.audit(audit(me.id, "porteur.grant", Some(me.id), id, "invitation".into()), now).await?;
            Ok(see_other(&format!("/console/demarches/{id}/code?info=porteur")))
        }
        Err(TokenState::Revoked) => Err(Problem {
            link: Some(BAD_INVITE),
            ..Problem::new(
                StatusCode::GONE,
                "Invitation annulée",
                "Cette invitation n'est plus valable\u{a0}: elle a été annulée, ou la personne qui l'a envoyée ne porte \
                 plus cette démarche. Demandez une nouvelle invitation à un porteur de la démarche.",
            )
        }),
        Err(TokenState::Unknown) => Err(Problem {
            link: Some(BAD_INVITE),
            ..Problem::new(
                StatusCode::FORBIDDEN,
                "Invitation non valable pour ce compte",
                "Ce lien n'invite pas l'adresse de ce compte, ou n'existe pas. Connectez-vous avec l'adresse e-mail \
                 qui a reçu l'invitation, puis ouvrez à nouveau le lien en entier.",
            )
        }),
        Err(state) => Err(super::signup::bad_link(state, BAD_INVITE)),
    }
}

/// An administrator removes a porteur (a démarche taken by someone who does not carry it).
pub async fn remove_post(ctx: Ctx, Path((id, account)): Path<(String, String)>) -> Answer {
    let admin = ctx.account()?;
    let (Ok(id), Ok(account)) = (id.parse::<i64>(), account.parse::<i64>()) else { return Err(Problem::not_found()) };
    find(&ctx, id).await?;
    let c = &ctx.console;
    let now = Utc::now();
    if c.store.leave(id, account, now).await? {
        c.store.audit(audit(admin.id, "porteur.remove", Some(account), id, String::new()), now).await?;
    }
    Ok(see_other(&format!("/console/demarches/{id}/porteurs?info=porteur-retire")))
}
