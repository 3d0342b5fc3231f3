//! A démarche's page (`/console/demarches/{id}`) and « Je suis porteur de cette démarche »
//! (`POST /console/demarches/{id}/porteur`), plus what its tabs share: who may open them (its
//! porteurs and administrators: 403 for other accounts, 404 for unknown démarches), the tab
//! bar, and how an index is shown.

use axum::http::StatusCode;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{Fields, Id, Params};
use crate::console::layout::{csrf_field, notice, see_other, Errors, TextArea};
use crate::console::limit::Action;
use crate::console::store::{AuditEntry, Claim, DemarcheRow};
use crate::console::{emails, Answer, Ctx, Problem};
use crate::stats::{colour, index_text, indicative, Colour, Counts};

#[derive(Deserialize, Default)]
pub struct InfoQuery {
    pub info: Option<String>,
}

/// The démarche, or a French 404.
pub async fn find(ctx: &Ctx, id: i64) -> Result<DemarcheRow, Problem> {
    ctx.console.store.demarche(id).await?.ok_or_else(|| Problem {
        link: Some(("Chercher une démarche", "/console/demarches")),
        ..Problem::new(StatusCode::NOT_FOUND, "Démarche introuvable", "Aucune démarche ne porte ce numéro.")
    })
}

/// The démarche, if the viewer carries it or administers the service; 403 otherwise.
pub async fn carried(ctx: &Ctx, id: i64) -> Result<DemarcheRow, Problem> {
    let account = ctx.account()?;
    let d = find(ctx, id).await?;
    if account.is_admin || ctx.console.store.is_porteur(account.id, id).await? {
        Ok(d)
    } else {
        Err(Problem {
            link: Some(("Aller à la page de la démarche", "/console/demarches")),
            ..Problem::new(
                StatusCode::FORBIDDEN,
                "Vous n'êtes pas porteur de cette démarche",
                "Seuls les porteurs de cette démarche et les administrateurs ont accès à cette page. \
                 Déclarez-vous porteur depuis la page de la démarche.",
            )
        })
    }
}

/// The tabs of a carried démarche.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Satisfaction,
    Avis,
    Code,
    Fiche,
    Porteurs,
}

/// Title, administration and tab bar of a carried démarche.
pub fn header(d: &DemarcheRow, current: Option<Tab>) -> Markup {
    let tab = |t: Tab, href: String, text: &str| {
        html! { li { a href=(href) aria-current=[(current == Some(t)).then_some("page")] { (text) } } }
    };
    html! {
        p.fil { a href="/console" { "Mes démarches" } " › n°\u{a0}" (d.id) }
        h1 { (d.details.name) }
        @if !d.details.administration.is_empty() { p.administration { (d.details.administration) } }
        nav.onglets aria-label="Onglets de la démarche" {
            ul {
                (tab(Tab::Satisfaction, format!("/console/demarches/{}/satisfaction", d.id), "Satisfaction"))
                (tab(Tab::Avis, format!("/console/demarches/{}/avis", d.id), "Tous les avis"))
                (tab(Tab::Code, format!("/console/demarches/{}/code", d.id), "Code à intégrer"))
                (tab(Tab::Fiche, format!("/console/demarches/{}/fiche", d.id), "Fiche"))
                (tab(Tab::Porteurs, format!("/console/demarches/{}/porteurs", d.id), "Porteurs"))
            }
        }
    }
}

/// The satisfaction index /10 of `counts` as [`score_badge`] shows it.
pub fn index_badge(counts: &Counts) -> Markup {
    score_badge(counts.satisfaction_index(), counts.n)
}

/// An index /10 over `n` avis as porteurs see it: coloured from 100 avis; under 100, in grey and
/// marked « indicatif » (the one rule of [`crate::stats::indicative`]); « Aucun avis » without
/// any. The public pages keep « Nombre d'avis insuffisant » under 100 (DESIGN §5).
pub fn score_badge(index: Option<f64>, n: i64) -> Markup {
    match index {
        None => html! { span.badge { "Aucun avis" } },
        Some(i) if indicative(n) => html! {
            span.badge.indicatif { (index_text(i)) "\u{a0}/\u{a0}10" span.mention { " indicatif" } span.sr-only { " (moins de 100 avis)" } }
        },
        Some(i) => {
            let (class, word) = match colour(i) {
                Colour::Green => ("badge vert", "bon"),
                Colour::Orange => ("badge orange", "moyen"),
                Colour::Red => ("badge rouge", "faible"),
            };
            html! { span class=(class) { (index_text(i)) "\u{a0}/\u{a0}10" span.sr-only { " (" (word) ")" } } }
        }
    }
}

/// The démarche's page: what it is, and the way to carry it.
pub async fn demarche_get(ctx: Ctx, Id(id): Id, Params(q): Params<InfoQuery>) -> Answer {
    demarche_page(&ctx, id, q.info.as_deref(), "", &Errors::default()).await
}

/// The démarche's page, with the reason typed and its errors after a refused claim.
async fn demarche_page(ctx: &Ctx, id: i64, info: Option<&str>, reason: &str, errors: &Errors) -> Answer {
    let account = ctx.account()?;
    let d = find(ctx, id).await?;
    if let Some(target) = d.merged_into {
        return Ok(see_other(&format!("/console/demarches/{target}")));
    }
    let store = &ctx.console.store;
    let porteur = store.is_porteur(account.id, id).await?;
    let requested = store.pending_requests(Some(id)).await?.iter().any(|r| r.account.id == account.id);
    let carried = !store.porteurs_of(id).await?.is_empty();
    let at_once = store.open_to_first_claim(id).await?;
    let main = html! {
        (notice(info))
        @if porteur || account.is_admin {
            (header(&d, None))
        } @else {
            h1 { (d.details.name) }
            @if !d.details.administration.is_empty() { p.administration { (d.details.administration) } }
        }
        dl {
            dt { "Numéro" } dd { (d.id) }
            @if !d.details.url.is_empty() { dt { "Adresse" } dd { (d.details.url) } }
            @if let Some(v) = d.details.volume_annuel { dt { "Volume annuel déclaré" } dd { (thousands(v)) } }
            @if !d.active { dt { "État" } dd { "Désactivée par un administrateur" } }
        }
        @if porteur {
            div.succes { p { "Vous êtes porteur de cette démarche." } }
        } @else if requested {
            div.info { p { "Votre demande pour devenir porteur de cette démarche attend la réponse d'un de ses porteurs ou d'un administrateur." } }
        } @else {
            section.carte #porteur {
                h2 { "Je suis porteur de cette démarche" }
                @if at_once {
                    p { "Cette démarche est nouvelle\u{a0}: elle n'a jamais eu de porteur et n'a reçu aucun avis. Vous en deviendrez porteur tout de suite." }
                    form method="post" action={ "/console/demarches/" (d.id) "/porteur" } {
                        (csrf_field(ctx.viewer.csrf()))
                        button.bouton type="submit" { "Je suis porteur de cette démarche" }
                    }
                } @else {
                    @if carried {
                        p { "Cette démarche a déjà un ou plusieurs porteurs. Votre demande leur sera transmise\u{a0}; l'un d'eux, ou un administrateur, l'acceptera ou la refusera." }
                    } @else {
                        p { "Cette démarche a déjà eu un porteur ou a déjà reçu des avis\u{a0}: ses avis ne sont montrés qu'à ses porteurs. Votre demande sera examinée par un administrateur." }
                    }
                    (errors.summary("La demande n'a pas été envoyée"))
                    form method="post" action={ "/console/demarches/" (d.id) "/porteur" } novalidate {
                        (csrf_field(ctx.viewer.csrf()))
                        (TextArea { id: "motif", label: "Motif de votre demande", value: reason, rows: 4,
                                    hint: Some("Votre fonction et votre lien avec cette démarche, pour que la personne qui décide puisse vous reconnaître (1\u{a0}000 caractères au plus)."),
                                    required: true }.render(errors))
                        button.bouton type="submit" { "Demander à devenir porteur" }
                    }
                }
            }
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render(status, &d.details.name, main))
}

/// The « Je suis porteur » form as posted.
#[derive(Deserialize, Default)]
pub struct ClaimForm {
    #[serde(default)]
    motif: String,
}

/// Longest reason of a request, in characters.
const MAX_REASON: usize = 1000;

/// « Je suis porteur »: granted at once only for a new démarche (never carried, no avis: nobody
/// to read anything yet); else a request with its reason, shown to the démarche's porteurs or,
/// when none is left, to the administrators, who decide.
pub async fn claim_post(ctx: Ctx, Id(id): Id, Fields(f): Fields<ClaimForm>) -> Answer {
    let account = ctx.account()?;
    let c = &ctx.console;
    let d = find(&ctx, id).await?;
    if d.merged_into.is_some() || !d.active {
        return Err(Problem::new(StatusCode::CONFLICT, "Démarche fermée", "Cette démarche n'accepte plus de porteur."));
    }
    let reason: String = f.motif.trim().chars().filter(|c| !c.is_control() || *c == '\n').collect();
    if reason.chars().count() > MAX_REASON {
        let mut errors = Errors::default();
        errors.add("motif", "Motif", format!("Le motif ne peut pas dépasser {MAX_REASON} caractères."));
        return demarche_page(&ctx, id, None, &f.motif, &errors).await;
    }
    c.limits.check(Action::Mailing, ctx.client, &account.email).map_err(Problem::too_many)?;
    let now = Utc::now();
    let audit = |action: &str| AuditEntry {
        actor_id: Some(account.id),
        action: action.into(),
        account_id: Some(account.id),
        demarche_id: Some(id),
        detail: String::new(),
    };
    match c.store.claim(id, account.id, reason, now).await? {
        Claim::Granted => {
            c.store.audit(audit("porteur.grant"), now).await?;
            Ok(see_other(&format!("/console/demarches/{id}/code?info=porteur")))
        }
        Claim::ReasonNeeded => {
            let mut errors = Errors::default();
            errors.add("motif", "Motif", "Indiquez le motif de votre demande.");
            demarche_page(&ctx, id, None, &f.motif, &errors).await
        }
        Claim::Requested(_) => {
            c.store.audit(audit("porteur.request"), now).await?;
            let (operator, url) = (&c.settings.operator_name, &c.settings.public_url);
            // Its porteurs decide; when none is left, the administrators.
            let porteurs = c.store.porteurs_of(id).await?;
            let to_admin = porteurs.is_empty();
            let deciders = if to_admin { c.store.admins().await? } else { porteurs };
            for p in deciders {
                let mail = emails::porteur_request(
                    operator,
                    url,
                    &account.name,
                    &account.email,
                    &d.details.name,
                    id,
                    to_admin,
                );
                c.mailer.send(&p.email, mail).await?;
            }
            c.mailer.send(&account.email, emails::porteur_request_sent(operator, &d.details.name, id)).await?;
            Ok(see_other(&format!("/console/demarches/{id}?info=demande-envoyee")))
        }
        Claim::AlreadyPorteur => Ok(see_other(&format!("/console/demarches/{id}/code"))),
        Claim::AlreadyRequested(_) => Ok(see_other(&format!("/console/demarches/{id}?info=demande-envoyee"))),
    }
}

/// 5000000 → « 5 000 000 » (narrow no-break spaces, as French typography wants).
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(5_000_000), "5\u{202f}000\u{202f}000");
        assert_eq!(thousands(-1234), "-1\u{202f}234");
    }

    #[test]
    fn index_badges_follow_the_100_rule() {
        let mut c = Counts { n: 99, satisfaction: [99, 0, 0], ..Counts::default() };
        let s = index_badge(&c).into_string();
        assert!(s.contains("10,0") && s.contains("indicatif") && !s.contains("vert"), "{s}");
        c.n = 100;
        c.satisfaction = [90, 10, 0];
        let s = index_badge(&c).into_string();
        assert!(s.contains("9,5") && s.contains("vert"), "{s}");
        assert!(index_badge(&Counts::default()).into_string().contains("Aucun avis"));
    }
}
