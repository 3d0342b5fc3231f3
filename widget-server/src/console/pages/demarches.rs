//! « Mes démarches » (`/console`), the search (`/console/demarches?q=`) and « Ajouter une
//! démarche manquante » (`/console/demarches/nouvelle`).

use axum::http::StatusCode;
use chrono::{Datelike, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::demarche::{index_badge, thousands};
use super::{fold, name_field, Fields, Params};
use crate::console::layout::{csrf_field, notice, paris_time_a, see_other, Errors, Input};
use crate::console::limit::Action;
use crate::console::store::{AuditEntry, DemarcheDetails, DemarcheRow};
use crate::console::{emails, Answer, Ctx, Problem};
use crate::vote::paris_day;

/// Results per page of the search.
const PAGE: i64 = 20;

#[derive(Deserialize, Default)]
pub struct InfoQuery {
    info: Option<String>,
}

/// « Mes démarches »: each carried démarche with its index over 12 months, avis this month and
/// the last avis received (all from `avis_daily` and one index lookup: O(days), not O(avis)).
pub async fn console_get(ctx: Ctx, Params(q): Params<InfoQuery>) -> Answer {
    let account = ctx.account()?;
    let store = &ctx.console.store;
    let today = paris_day(Utc::now().timestamp_millis());
    let year_ago = today - chrono::Days::new(364);
    let month_start = today.with_day(1).unwrap_or(today);
    let mut rows = Vec::new();
    for d in store.carried_by(account.id).await? {
        let year = store.counts(d.id, year_ago, today).await?;
        let month = store.counts(d.id, month_start, today).await?;
        let last = store.last_avis(d.id).await?;
        rows.push((d, year, month.n, last));
    }
    // Requests this account decides: for the démarches it carries, and for an administrator
    // those of démarches no one carries any more. Shown here, not only mailed.
    let requests = store.requests_to_decide(account.id, account.is_admin).await?;
    let main = html! {
        (notice(q.info.as_deref()))
        h1 { "Mes démarches" }
        @if !requests.is_empty() {
            section.carte #demandes-a-traiter {
                h2 { "Demandes à traiter" }
                p { (requests.len()) @if requests.len() > 1 { " personnes demandent" } @else { " personne demande" } " à devenir porteur d'une démarche dont vous décidez." }
                div.tableau-defilant role="region" tabindex="0" aria-label="Demandes pour devenir porteur, à accepter ou refuser" {
                    table.tableau {
                        caption.sr-only { "Demandes pour devenir porteur, à accepter ou refuser" }
                        thead { tr { th scope="col" { "Démarche" } th scope="col" { "Demandeur" } th scope="col" { "Motif" } th scope="col" { "Reçue le" } } }
                        tbody {
                            @for r in &requests {
                                tr {
                                    td { a href={ "/console/demarches/" (r.demarche_id) "/porteurs#demandes" } { (r.demarche_name) } br; span.indication { "n°\u{a0}" (r.demarche_id) } }
                                    td { (r.account.name) br; (r.account.email) }
                                    td.motif { (r.reason) }
                                    td { (paris_time_a(r.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() {
            p { "Bonjour " (account.name) ". Vous ne portez encore aucune démarche." }
            p { "Cherchez votre démarche dans le catalogue, déclarez-vous porteur, puis intégrez le bouton «\u{a0}Je donne mon avis\u{a0}» à la fin de son parcours." }
        } @else {
            div.tableau-defilant role="region" tabindex="0" aria-label="Les démarches que vous portez" {
                table.tableau {
                    caption { "Les démarches que vous portez" }
                    thead { tr {
                        th scope="col" { "Démarche" }
                        th scope="col" { "Satisfaction (12 mois)" }
                        th scope="col" { "Avis du mois" }
                        th scope="col" { "Dernier avis reçu" }
                    } }
                    tbody {
                        @for (d, year, month, last) in &rows {
                            tr {
                                td { a href={ "/console/demarches/" (d.id) "/satisfaction" } { (d.details.name) } br; span.indication { "n°\u{a0}" (d.id) " · " (d.details.administration) } }
                                td { (index_badge(year)) }
                                td { (thousands(*month)) }
                                td { @match last { Some(t) => (paris_time_a(*t)), None => "Aucun avis pour l'instant" } }
                            }
                        }
                    }
                }
            }
        }
        p { a.bouton-secondaire href="/console/demarches" { "Chercher une démarche" } }
    };
    Ok(ctx.render(StatusCode::OK, "Mes démarches", main))
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    q: Option<String>,
    page: Option<i64>,
}

/// The search terms of a query (folded words) and the id it may be.
fn terms(q: &str) -> (Vec<String>, Option<i64>) {
    let folded = fold(q);
    let id = q.trim().trim_start_matches("n°").trim().parse::<i64>().ok().filter(|n| *n > 0);
    let words = folded.split(' ').filter(|w| !w.is_empty()).take(8).map(str::to_string).collect();
    (if id.is_some() { Vec::new() } else { words }, id)
}

fn results_table(found: &[DemarcheRow]) -> Markup {
    html! {
        div.tableau-defilant role="region" tabindex="0" aria-label="Démarches trouvées" {
            table.tableau {
                caption.sr-only { "Démarches trouvées" }
                thead { tr { th scope="col" { "Démarche" } th scope="col" { "Administration" } th scope="col" { "Numéro" } th scope="col" { "Volume annuel" } } }
                tbody {
                    @for d in found {
                        tr {
                            td { a href={ "/console/demarches/" (d.id) } { (d.details.name) } }
                            td { (d.details.administration) }
                            td { (d.id) }
                            td { @if let Some(v) = d.details.volume_annuel { (thousands(v)) } }
                        }
                    }
                }
            }
        }
    }
}

/// Search by name, administration or number; accents and case do not matter.
pub async fn search_get(ctx: Ctx, Params(q): Params<SearchQuery>) -> Answer {
    let query: String = q.q.unwrap_or_default().chars().take(200).collect();
    let page = q.page.unwrap_or(1).clamp(1, 1000);
    let (words, id) = terms(&query);
    let searched = !query.trim().is_empty();
    let mut found = if searched {
        ctx.console.store.search_demarches(words, id, PAGE + 1, (page - 1) * PAGE).await?
    } else {
        Vec::new()
    };
    let more = found.len() as i64 > PAGE;
    found.truncate(PAGE as usize);
    // A catalogue still empty says so (a new install), and offers to add a démarche at once.
    let empty_catalogue = !searched && ctx.console.store.search_demarches(Vec::new(), None, 1, 0).await?.is_empty();
    let link = |p: i64| {
        format!(
            "/console/demarches?{}",
            serde_urlencoded::to_string([("q", query.as_str()), ("page", &p.to_string())]).unwrap_or_default()
        )
    };
    let main = html! {
        h1 { "Chercher une démarche" }
        form.recherche method="get" action="/console/demarches" role="search" {
            div.champ {
                label for="q" { "Nom, administration ou numéro de la démarche" }
                input type="search" id="q" name="q" value=(query);
            }
            button.bouton type="submit" { "Rechercher" }
        }
        @if searched {
            h2 { @if found.is_empty() { "Aucune démarche trouvée" } @else { "Résultats" } }
            @if !found.is_empty() { (results_table(&found)) }
            nav.pagination aria-label="Pages de résultats" {
                @if page > 1 { a href=(link(page - 1)) { "Page précédente" } }
                @if more { a href=(link(page + 1)) { "Page suivante" } }
            }
        } @else if empty_catalogue {
            div.info { p { "Le catalogue des démarches est vide pour l'instant\u{a0}: ajoutez la vôtre ci-dessous. Un administrateur peut aussi charger un catalogue entier (" code { "widget-server demarche import" } ")." } }
        }
        div.carte #ajouter {
            h2 { @if searched { "Votre démarche n'est pas dans la liste\u{a0}?" } @else { "Votre démarche n'est pas dans le catalogue\u{a0}?" } }
            p { "Ajoutez-la\u{a0}: vous en deviendrez le porteur." }
            a.bouton-secondaire href={ "/console/demarches/nouvelle?" (serde_urlencoded::to_string([("nom", query.as_str())]).unwrap_or_default()) } { "Ajouter une démarche manquante" }
        }
    };
    Ok(ctx.render(StatusCode::OK, "Chercher une démarche", main))
}

#[derive(Deserialize, Default)]
pub struct NewQuery {
    nom: Option<String>,
}

/// « Ajouter une démarche » as posted: the fiche's first fields, and for an administrator the
/// number (a démarche moved from the legacy service keeps it: its pasted links carry it).
#[derive(Deserialize, Default, Clone)]
pub struct NewForm {
    #[serde(flatten)]
    pub fiche: DemarcheForm,
    #[serde(default)]
    pub numero: String,
}

/// The fiche's first fields as posted (also used by the « Fiche » tab).
#[derive(Deserialize, Default, Clone)]
pub struct DemarcheForm {
    #[serde(default)]
    pub nom: String,
    #[serde(default)]
    pub administration: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub volume: String,
}

/// Validates the name, administration, URL and volume; French messages per field.
pub fn validate(f: &DemarcheForm, errors: &mut Errors) -> Option<(String, String, String, Option<i64>)> {
    // Names travel in e-mails and in the public open data: no link, no formula (DESIGN §10).
    let name = name_field(&f.nom, 200).unwrap_or_else(|m| {
        errors.add("nom", "Nom", format!("Le nom de la démarche {m}"));
        String::new()
    });
    let administration = name_field(&f.administration, 200).unwrap_or_else(|m| {
        errors.add("administration", "Administration", format!("L'administration {m}"));
        String::new()
    });
    let url = f.url.trim().to_string();
    if name.chars().count() < 3 {
        errors.add("nom", "Nom", "Indiquez le nom de la démarche, tel que les usagers le voient.");
    }
    if administration.is_empty() {
        errors.add("administration", "Administration", "Indiquez l'administration qui porte la démarche.");
    }
    let url_ok = url.is_empty()
        || (url.len() <= 500
            && (url.starts_with("https://") || url.starts_with("http://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>'));
    if !url_ok {
        errors.add("url", "Adresse", "Indiquez l'adresse complète de la démarche, commençant par https://.");
    }
    let volume_text: String =
        f.volume.chars().filter(|c| !c.is_whitespace() && *c != '\u{202f}' && *c != '\u{a0}' && *c != '.').collect();
    let volume = if volume_text.is_empty() {
        None
    } else {
        match volume_text.parse::<i64>() {
            Ok(v) if (0..=1_000_000_000).contains(&v) => Some(v),
            _ => {
                errors.add(
                    "volume",
                    "Volume annuel",
                    "Indiquez un nombre entier de dossiers par an, par exemple 12\u{a0}000.",
                );
                None
            }
        }
    };
    errors.is_empty().then_some((name, administration, url, volume))
}

/// The four fields, for the new démarche and the fiche.
pub fn fields(f: &DemarcheForm, errors: &Errors) -> Markup {
    html! {
        (Input { id: "nom", label: "Nom de la démarche", kind: "text", value: &f.nom, autocomplete: "off", hint: Some("Tel que les usagers le voient."), required: true }.render(errors))
        (Input { id: "administration", label: "Administration", kind: "text", value: &f.administration, autocomplete: "organization", hint: None, required: true }.render(errors))
        (Input { id: "url", label: "Adresse de la démarche", kind: "url", value: &f.url, autocomplete: "url", hint: Some("Par exemple https://exemple.gouv.fr/ma-demarche"), required: false }.render(errors))
        (Input { id: "volume", label: "Volume annuel", kind: "numeric", value: &f.volume, autocomplete: "off",
                 hint: Some("Nombre de dossiers par an, environ, par exemple 12\u{a0}000. Au-delà de 5\u{a0}000\u{a0}000, le bouton n'est ouvert qu'après validation d'un administrateur."), required: false }.render(errors))
    }
}

async fn new_page(ctx: &Ctx, form: &NewForm, errors: &Errors) -> Result<Markup, crate::console::Problem> {
    let f = &form.fiche;
    let admin = ctx.account()?.is_admin;
    let (words, _) = terms(&f.nom);
    // Close names first: every démarche sharing a word of the name, the most shared first.
    let mut close: Vec<(usize, DemarcheRow)> = Vec::new();
    for w in words.iter().filter(|w| w.chars().count() >= 4).take(5) {
        for d in ctx.console.store.search_demarches(vec![w.clone()], None, 10, 0).await? {
            match close.iter_mut().find(|(_, c)| c.id == d.id) {
                Some((n, _)) => *n += 1,
                None => close.push((1, d)),
            }
        }
    }
    close.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.details.name.cmp(&b.1.details.name)));
    let close: Vec<DemarcheRow> = close.into_iter().take(10).map(|(_, d)| d).collect();
    Ok(html! {
        h1 { "Ajouter une démarche manquante" }
        @if !close.is_empty() {
            div.info {
                h2 { "Est-ce l'une de ces démarches\u{a0}?" }
                p { "Pour éviter les doublons, vérifiez qu'elle n'est pas déjà dans le catalogue. Si c'est le cas, ouvrez-la et déclarez-vous porteur." }
                (results_table(&close))
            }
        }
        (errors.summary("La démarche n'a pas été ajoutée"))
        form method="post" action="/console/demarches/nouvelle" novalidate {
            (csrf_field(ctx.viewer.csrf()))
            @if admin {
                (Input { id: "numero", label: "Numéro (facultatif)", kind: "numeric", value: &form.numero, autocomplete: "off",
                         hint: Some("Pour une démarche reprise de l'ancien service\u{a0}: son numéro, que portent les liens déjà collés. Laissé vide, le prochain numéro libre."),
                         required: false }.render(errors))
            }
            (fields(f, errors))
            button.bouton type="submit" { "Ajouter la démarche" }
        }
    })
}

pub async fn new_get(ctx: Ctx, Params(q): Params<NewQuery>) -> Answer {
    // « Administration » starts as the account's.
    let administration = ctx.account()?.administration.clone();
    let fiche = DemarcheForm {
        nom: q.nom.unwrap_or_default().chars().take(200).collect(),
        administration,
        ..DemarcheForm::default()
    };
    let main = new_page(&ctx, &NewForm { fiche, numero: String::new() }, &Errors::default()).await?;
    Ok(ctx.render(StatusCode::OK, "Ajouter une démarche", main))
}

/// Creates the démarche with its creator as porteur; its form link works at once here.
pub async fn new_post(ctx: Ctx, Fields(form): Fields<NewForm>) -> Answer {
    let account = ctx.account()?;
    let mut errors = Errors::default();
    // Only an administrator chooses the number; a porteur gets the next free one.
    let numero: String = form.numero.chars().filter(|c| !c.is_whitespace()).collect();
    let chosen = if account.is_admin && !numero.is_empty() {
        match numero.parse::<i64>() {
            Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Some(n),
            _ => {
                errors.add("numero", "Numéro", "Indiquez un numéro entier positif, par exemple 4521, ou laissez vide.");
                None
            }
        }
    } else {
        None
    };
    let validated = validate(&form.fiche, &mut errors);
    let Some((name, administration, url, volume_annuel)) = validated.filter(|_| errors.is_empty()) else {
        let main = new_page(&ctx, &form, &errors).await?;
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Ajouter une démarche", main));
    };
    ctx.console.limits.check(Action::Mailing, ctx.client, &account.email).map_err(Problem::too_many)?;
    let c = &ctx.console;
    let now = Utc::now();
    let search = crate::search::key(&name, &administration);
    let details = DemarcheDetails { name, administration, url, volume_annuel, ..DemarcheDetails::default() };
    let Some(id) = c.store.create_demarche(details, search, account.id, chosen, now).await? else {
        errors.add("numero", "Numéro", "Ce numéro est déjà celui d'une démarche du catalogue.");
        let main = new_page(&ctx, &form, &errors).await?;
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Ajouter une démarche", main));
    };
    let entry = AuditEntry {
        actor_id: Some(account.id),
        action: "demarche.create".into(),
        account_id: Some(account.id),
        demarche_id: Some(id),
        detail: String::new(),
    };
    c.store.audit(entry, now).await?;
    c.reload_catalogue().await?;
    if volume_annuel.is_some_and(|v| v > crate::catalogue::HIGH_VOLUME) {
        tell_admins_high_volume(c, id).await?;
    }
    Ok(see_other(&format!("/console/demarches/{id}/code?info=demarche-ajoutee")))
}

/// Administrators learn by e-mail that a démarche over 5,000,000 a year waits for them.
pub async fn tell_admins_high_volume(c: &crate::console::Console, id: i64) -> Result<(), Problem> {
    let Some(d) = c.store.demarche(id).await? else { return Ok(()) };
    for admin in c.store.admins().await? {
        let mail = emails::high_volume(&c.settings.operator_name, &c.settings.public_url, &d.details.name, id);
        c.mailer.send(&admin.email, mail).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_words_or_an_id() {
        assert_eq!(terms("Carte GRISE, Île"), (vec!["carte".into(), "grise".into(), "ile".into()], None));
        assert_eq!(terms(" 1234 "), (vec![], Some(1234)));
        assert_eq!(terms("n° 77"), (vec![], Some(77)));
        assert_eq!(terms("%_"), (vec![], None));
    }

    #[test]
    fn the_fiche_fields_are_checked() {
        let mut e = Errors::default();
        let f = DemarcheForm {
            nom: "Carte grise".into(),
            administration: "ANTS".into(),
            url: "https://x.fr/a".into(),
            volume: "12 000".into(),
        };
        assert_eq!(
            validate(&f, &mut e),
            Some(("Carte grise".into(), "ANTS".into(), "https://x.fr/a".into(), Some(12000)))
        );
        let bad = DemarcheForm {
            nom: "ab".into(),
            administration: " ".into(),
            url: "javascript:alert(1)".into(),
            volume: "beaucoup".into(),
        };
        let mut e = Errors::default();
        assert_eq!(validate(&bad, &mut e), None);
        for field in ["nom", "administration", "url", "volume"] {
            assert!(e.get(field).is_some(), "{field}");
        }
    }
}
