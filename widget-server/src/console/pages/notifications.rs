//! « Notifications » (`/console/compte/notifications`, DESIGN §15): the digest's frequency and,
//! per carried démarche, the three alerts; and `/desabonnement?jeton=…`, the one-click
//! unsubscribe link every notification carries (RFC 8058).
//!
//! `/desabonnement` sits outside the session and CSRF layers on purpose: mail clients post to it
//! cross-site, with no cookie and no CSRF token (RFC 8058 one-click). What authorises the change
//! is the token, an HMAC over (account, kind) only mails to that account carry, and the only
//! thing it can do is turn that one kind of mail off. Its GET changes nothing (mail scanners
//! pre-fetch links); it shows the button that posts.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;

use super::{Fields, Params};
use crate::console::layout::{csrf_field, notice, see_other};
use crate::console::notifications::{Kind, UnsubscribeKey};
use crate::console::store::{DigestFrequency, Switches};
use crate::console::{Answer, Ctx, Problem};

#[derive(Deserialize, Default)]
pub struct InfoQuery {
    info: Option<String>,
}

fn frequency_label(f: DigestFrequency) -> &'static str {
    match f {
        DigestFrequency::Aucune => "Aucune synthèse",
        DigestFrequency::Quotidienne => "Quotidienne (chaque matin, les avis de la veille)",
        DigestFrequency::Hebdomadaire => "Hebdomadaire (le lundi matin, les avis de la semaine précédente)",
        DigestFrequency::Mensuelle => "Mensuelle (le 1er du mois, les avis du mois précédent)",
    }
}

/// The three switches of a démarche: (field suffix, label, value).
fn switches(s: Switches) -> [(&'static str, &'static str, bool); 3] {
    [
        ("commentaires", "Nouveaux commentaires", s.comments),
        ("baisse", "Baisse de satisfaction", s.drop_alert),
        ("silencieux", "Bouton silencieux", s.silent),
    ]
}

pub async fn notifications_get(ctx: Ctx, Params(q): Params<InfoQuery>) -> Answer {
    let a = ctx.account()?;
    let settings = ctx.console.store.notification_settings(a.id).await?;
    let csrf = ctx.viewer.csrf();
    let main = html! {
        (notice(q.info.as_deref()))
        h1 { "Notifications" }
        p { "Recevez par e-mail ce qui arrive sur les démarches que vous portez, sans ouvrir l'espace porteurs. Chaque e-mail contient un lien pour ne plus le recevoir." }
        form method="post" action="/console/compte/notifications" {
            (csrf_field(csrf))
            section.carte {
                h2 { "Synthèse des avis" }
                fieldset.question {
                    legend { "Fréquence de la synthèse " span.indication { "Un e-mail pour toutes vos démarches, envoyé à partir de 8\u{a0}h, seulement si des avis sont arrivés." } }
                    @for f in DigestFrequency::ALL {
                        div.choix {
                            input type="radio" id={ "synthese-" (f.as_str()) } name="synthese" value=(f.as_str()) checked[f == settings.digest];
                            label for={ "synthese-" (f.as_str()) } { (frequency_label(f)) }
                        }
                    }
                }
            }
            section.carte {
                h2 { "Alertes par démarche" }
                @if settings.demarches.is_empty() {
                    p { "Vous ne portez encore aucune démarche." }
                } @else {
                    ul.indication {
                        li { strong { "Nouveaux commentaires" } "\u{a0}: les commentaires reçus, 5\u{a0}minutes après le dernier, au plus un e-mail toutes les 2\u{a0}heures." }
                        li { strong { "Baisse de satisfaction" } "\u{a0}: l'indice des 7 derniers jours (100\u{a0}avis au moins) est inférieur d'un point ou plus à celui des 28 jours précédents." }
                        li { strong { "Bouton silencieux" } "\u{a0}: une provenance qui recevait au moins 20\u{a0}avis par semaine n'en reçoit plus depuis 3\u{a0}jours." }
                    }
                    @for (id, name, s) in &settings.demarches {
                        fieldset.question {
                            legend { (name) " " span.indication { "(n°\u{a0}" (id) ")" } }
                            @for (suffix, label, on) in switches(*s) {
                                div.case {
                                    input type="checkbox" id={ "d" (id) "-" (suffix) } name={ "d" (id) "-" (suffix) } value="oui" checked[on];
                                    label for={ "d" (id) "-" (suffix) } { (label) }
                                }
                            }
                        }
                    }
                }
            }
            button.bouton type="submit" { "Enregistrer mes notifications" }
        }
        p { a href="/console/compte" { "Retour à Mon compte" } }
    };
    Ok(ctx.render(StatusCode::OK, "Notifications", main))
}

/// Saves the frequency and every carried démarche's switches (an unchecked box is absent).
pub async fn notifications_post(ctx: Ctx, Fields(f): Fields<HashMap<String, String>>) -> Answer {
    let a = ctx.account()?;
    let store = &ctx.console.store;
    let digest = f.get("synthese").and_then(|s| DigestFrequency::parse(s)).ok_or_else(|| {
        Problem::new(StatusCode::BAD_REQUEST, "Formulaire illisible", "Choisissez une fréquence pour la synthèse.")
    })?;
    store.set_digest(a.id, digest).await?;
    for (id, _, _) in store.notification_settings(a.id).await?.demarches {
        let on = |suffix: &str| f.contains_key(&format!("d{id}-{suffix}"));
        let s = Switches { comments: on("commentaires"), drop_alert: on("baisse"), silent: on("silencieux") };
        store.set_switches(a.id, id, s).await?;
    }
    Ok(see_other("/console/compte/notifications?info=notifications-enregistrees"))
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    jeton: String,
}

#[derive(Deserialize, Default)]
pub struct UnsubscribeForm {
    #[serde(default)]
    jeton: String,
}

fn invalid_link() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Lien de désabonnement invalide",
        "Ce lien n'est pas valable. Vous pouvez choisir vos notifications depuis « Mon compte » dans l'espace porteurs.",
    )
}

fn key(ctx: &Ctx) -> &UnsubscribeKey {
    ctx.console.notifier.unsubscribe_key()
}

/// Shows the one button; changes nothing.
pub async fn unsubscribe_get(ctx: Ctx, Params(q): Params<TokenQuery>) -> Answer {
    let (_, kind) = key(&ctx).verify(&q.jeton).ok_or_else(invalid_link)?;
    let main = html! {
        h1 { "Se désabonner" }
        p { "Vous ne recevrez plus " (kind.label()) " pour votre compte." }
        form method="post" action="/desabonnement" {
            input type="hidden" name="jeton" value=(q.jeton);
            button.bouton type="submit" { "Ne plus recevoir " (kind.label()) }
        }
        p { "Vous pourrez les réactiver dans «\u{a0}Mon compte\u{a0}» › «\u{a0}Notifications\u{a0}»." }
    };
    Ok(ctx.render(StatusCode::OK, "Se désabonner", main))
}

/// The button's POST (token in the form) and the mail client's one-click POST (token in the
/// query, body `List-Unsubscribe=One-Click`): that kind goes off.
/// The body is read leniently: RFC 8058 lets the client send it as multipart/form-data, which
/// holds no `jeton`; the one in the query is used then.
pub async fn unsubscribe_post(ctx: Ctx, Params(q): Params<TokenQuery>, body: Bytes) -> Answer {
    let form: UnsubscribeForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let token = if form.jeton.is_empty() { q.jeton } else { form.jeton };
    let (account_id, kind) = key(&ctx).verify(&token).ok_or_else(invalid_link)?;
    // A link of a deleted account: nothing left to turn off.
    ctx.console.store.account_by_id(account_id).await?.ok_or_else(invalid_link)?;
    ctx.console.notifier.turn_off(account_id, kind).await?;
    Ok(ctx.render(StatusCode::OK, "Désabonnement enregistré", done(kind)))
}

fn done(kind: Kind) -> Markup {
    html! {
        h1 { "Désabonnement enregistré" }
        div.succes role="status" { p { "Vous ne recevrez plus " (kind.label()) "." } }
        p { "Vous pouvez les réactiver dans «\u{a0}Mon compte\u{a0}» › " a href="/console/compte/notifications" { "«\u{a0}Notifications\u{a0}»" } "." }
    }
}
