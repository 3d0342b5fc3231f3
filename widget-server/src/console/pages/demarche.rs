//! A démarche's page (`/console/demarches/{id}`) and « Je suis porteur de cette démarche »
//! (`POST /console/demarches/{id}/porteur`), plus what its tabs share: who may open them (its
//! porteurs and administrators: 403 for other accounts, 404 for unknown démarches), the tab
//! bar, and how an index is shown.

use axum::http::StatusCode;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{Id, Params};
use crate::console::layout::{csrf_field, notice, see_other};
use crate::console::limit::Action;
use crate::console::store::{AuditEntry, Claim, DemarcheRow};
use crate::console::{emails, Answer, Ctx, Problem};
use crate::stats::{colour, Colour, Counts};

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

/// An index /10 with its colour, « Nombre d'avis insuffisant » under 100 avis (DESIGN §5), or
/// « Aucun avis ».
pub fn score_badge(index: Option<f64>, n: i64) -> Markup {
    match index {
        None => html! { span.badge { "Aucun avis" } },
        Some(_) if n < crate::stats::MIN_AVIS_FOR_SCORE => html! { span.badge { "Nombre d'avis insuffisant" } },
        Some(i) => {
            let (class, word) = match colour(i) {
                Colour::Green => ("badge vert", "bon"),
                Colour::Orange => ("badge orange", "moyen"),
                Colour::Red => ("badge rouge", "faible"),
            };
            html! { span class=(class) { (format!("{:.1}", i).replace('.', ",")) "\u{a0}/\u{a0}10" span.sr-only { " (" (word) ")" } } }
        }
    }
}

/// The démarche's page: what it is, and the way to carry it.
pub async fn demarche_get(ctx: Ctx, Id(id): Id, Params(q): Params<InfoQuery>) -> Answer {
    let account = ctx.account()?;
    let d = find(&ctx, id).await?;
    if let Some(target) = d.merged_into {
        return Ok(see_other(&format!("/console/demarches/{target}")));
    }
    let store = &ctx.console.store;
    let porteur = store.is_porteur(account.id, id).await?;
    let requested = store.pending_requests(Some(id)).await?.iter().any(|r| r.account.id == account.id);
    let carried = !store.porteurs_of(id).await?.is_empty();
    let main = html! {
        (notice(q.info.as_deref()))
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
            section.carte {
                h2 { "Je suis porteur de cette démarche" }
                @if carried {
                    p { "Cette démarche a déjà un ou plusieurs porteurs. Votre demande leur sera transmise par e-mail\u{a0}; l'un d'eux, ou un administrateur, l'acceptera ou la refusera." }
                } @else {
                    p { "Cette démarche n'a pas encore de porteur\u{a0}: vous le deviendrez tout de suite." }
                }
                form method="post" action={ "/console/demarches/" (d.id) "/porteur" } {
                    (csrf_field(ctx.viewer.csrf()))
                    button.bouton type="submit" { "Je suis porteur de cette démarche" }
                }
            }
        }
    };
    Ok(ctx.render(StatusCode::OK, &d.details.name, main))
}

/// « Je suis porteur »: granted when nobody carries it, else a request mailed to its porteurs.
pub async fn claim_post(ctx: Ctx, Id(id): Id) -> Answer {
    let account = ctx.account()?;
    let c = &ctx.console;
    let d = find(&ctx, id).await?;
    if d.merged_into.is_some() || !d.active {
        return Err(Problem::new(StatusCode::CONFLICT, "Démarche fermée", "Cette démarche n'accepte plus de porteur."));
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
    match c.store.claim(id, account.id, now).await? {
        Claim::Granted => {
            c.store.audit(audit("porteur.grant"), now).await?;
            Ok(see_other(&format!("/console/demarches/{id}/code?info=porteur")))
        }
        Claim::Requested(_) => {
            c.store.audit(audit("porteur.request"), now).await?;
            let (operator, url) = (&c.settings.operator_name, &c.settings.public_url);
            for p in c.store.porteurs_of(id).await? {
                let mail = emails::porteur_request(operator, url, &account.name, &account.email, &d.details.name, id);
                c.mailer.send(&p.email, mail).await?;
            }
            c.mailer.send(&account.email, emails::porteur_request_sent(operator, &d.details.name)).await?;
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
        assert!(index_badge(&c).into_string().contains("Nombre d'avis insuffisant"));
        c.n = 100;
        c.satisfaction = [90, 10, 0];
        let s = index_badge(&c).into_string();
        assert!(s.contains("9,5") && s.contains("vert"), "{s}");
        assert!(index_badge(&Counts::default()).into_string().contains("Aucun avis"));
    }
}
