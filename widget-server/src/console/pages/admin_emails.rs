//! « E-mails non remis » on `/console/admin` (issue 23): the mails whose SMTP retries ended
//! after 3 days ([`crate::console::mail::GIVE_UP_AFTER`]), each with « Renvoyer », which tries
//! it again at once and for 3 more days. Kept apart from `admin.rs`, whose page shows this
//! section and its notice.

use chrono::Utc;
use maud::{html, Markup};

use super::Id;
use crate::console::layout::{csrf_field, paris_time, see_other};
use crate::console::store::{AuditEntry, OutboxMail};
use crate::console::{Answer, Ctx, Problem};

/// The most mails listed.
const LISTED: i64 = 50;

/// The mails given up, newest first.
pub async fn undelivered(ctx: &Ctx) -> Result<Vec<OutboxMail>, Problem> {
    Ok(ctx.console.store.undelivered_emails(LISTED).await?)
}

/// The notice shown at the top of the page after « Renvoyer ».
pub fn notice(info: Option<&str>) -> Markup {
    html! {
        @if info == Some("courriel-renvoye") {
            div.succes role="status" { p { "L'e-mail est renvoyé\u{a0}: il est essayé de nouveau pendant 3\u{a0}jours." } }
        }
    }
}

/// The section: nothing when every mail left.
pub fn section(mails: &[OutboxMail], csrf: &str) -> Markup {
    html! {
        @if !mails.is_empty() {
            section.carte #courriels {
                h2 { "E-mails non remis" }
                p { "Le serveur de messagerie a refusé ou n'a pas pu recevoir ces e-mails pendant 3\u{a0}jours. Vérifiez le serveur (le journal donne ses réponses), puis renvoyez-les." }
                table.tableau {
                    caption { (mails.len()) " e-mail" @if mails.len() > 1 { "s" } " non remis" }
                    thead { tr { th scope="col" { "Destinataire" } th scope="col" { "Objet" } th scope="col" { "Créé le" } th scope="col" { "Tentatives" } th scope="col" { "Dernière erreur" } th scope="col" { "Action" } } }
                    tbody {
                        @for m in mails {
                            tr {
                                td { (m.to) }
                                td { (m.subject) }
                                td { (paris_time(m.created_at)) }
                                td { (m.attempts) }
                                td { (m.last_error.as_deref().unwrap_or("")) }
                                td {
                                    form method="post" action={ "/console/admin/courriels/" (m.id) "/renvoyer" } {
                                        (csrf_field(csrf))
                                        button.bouton-secondaire type="submit" { "Renvoyer " span.sr-only { "l'e-mail à " (m.to) } }
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

/// « Renvoyer »: the mail is tried again now (a no-op if it left meanwhile); audited.
pub async fn resend_post(ctx: Ctx, Id(id): Id) -> Answer {
    let admin = ctx.account()?;
    let c = &ctx.console;
    if c.mailer.resend(id).await? {
        let entry = AuditEntry {
            actor_id: Some(admin.id),
            action: "email.resend".into(),
            account_id: None,
            demarche_id: None,
            detail: format!("mail {id}"),
        };
        c.store.audit(entry, Utc::now()).await?;
    }
    Ok(see_other("/console/admin?info=courriel-renvoye"))
}
