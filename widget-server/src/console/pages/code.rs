//! « Code à intégrer » (`/console/demarches/{id}/code`): both buttons, bleu or blanc, an
//! optional source label and new window; the snippet (built by the `snippet` crate, the same
//! HTML as `widget-server snippet`) in a read-only text area, with a live preview; each source
//! label already seen with its last avis. A GET form: no JavaScript needed.

use axum::http::StatusCode;
use maud::{html, PreEscaped};
use serde::Deserialize;

use super::demarche::{carried, header, Tab};
use super::{Id, Params};
use crate::catalogue::HIGH_VOLUME;
use crate::console::layout::{notice, source_label, Errors, Input};
use crate::console::store::SourceWindow;
use crate::console::{Answer, Ctx};
use crate::stats::Counts;
use chrono::Utc;

#[derive(Deserialize, Default)]
pub struct CodeQuery {
    info: Option<String>,
    style: Option<String>,
    source: Option<String>,
    fenetre: Option<String>,
}

pub async fn code_get(ctx: Ctx, Id(id): Id, Params(q): Params<CodeQuery>) -> Answer {
    let d = carried(&ctx, id).await?;
    let c = &ctx.console;
    let style = match q.style.as_deref() {
        Some("blanc") => Some(snippet::Style::Blanc),
        Some("bleu") => Some(snippet::Style::Bleu),
        _ => None,
    };
    let source = q.source.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or(snippet::DEFAULT_SOURCE);
    let mut errors = Errors::default();
    if !snippet::is_valid_source(source) {
        errors.add(
            "source",
            "Étiquette de provenance",
            "De 1 à 32 caractères parmi les lettres minuscules sans accent, les chiffres et le tiret, par exemple guichet ou courriel-relance.",
        );
    }
    let new_window = q.fenetre.is_some();
    let awaiting = d.details.volume_annuel.is_some_and(|v| v > HIGH_VOLUME) && !d.high_volume_approved;
    let snippet = match style {
        Some(style) if errors.is_empty() && !awaiting && d.active => Some(
            snippet::Snippet::new(&c.settings.public_url, id as u64, style)
                .source(source)
                .new_window(new_window)
                .html(&c.signer),
        ),
        _ => None,
    };
    let sources = c.store.sources(id).await?;
    // « Bouton silencieux » (DESIGN §15): the same rule as the alert, from this démarche's days.
    let (from, split, today) =
        crate::console::notifications::silent_window(Utc::now().with_timezone(&chrono_tz::Europe::Paris).date_naive());
    let mut silent = std::collections::HashMap::new();
    for (s, last) in &sources {
        let mut w = SourceWindow {
            demarche_id: id,
            source: s.clone(),
            before: Counts::default(),
            after: Counts::default(),
            last_day: *last,
        };
        for (day, counts) in c.store.day_counts(id, from, today, Some(s.clone())).await? {
            if day < split {
                w.before.add(&counts)
            } else {
                w.after.add(&counts)
            }
        }
        if let Some(day) = crate::console::notifications::silent_since(&w) {
            // Silent from the day after its last avis.
            silent.insert(s.clone(), day.succ_opt().unwrap_or(day));
        }
    }
    let checked = |s: snippet::Style| style.unwrap_or(snippet::Style::Bleu) == s;
    let button_src = |s: &str| format!("{}/static/bouton-{s}.svg", c.settings.public_url);
    let main = html! {
        (notice(q.info.as_deref()))
        (header(&d, Some(Tab::Code)))
        // The result first, full width, where the page opens (the form's action ends in #code):
        // GOV.UK's notification banner, no script needed.
        @if let Some(code) = &snippet {
            section.bandeau-succes #code aria-labelledby="code-titre" {
                h2 #code-titre { "Votre code est prêt" }
                p { "Copiez ce code et collez-le à la fin du parcours de votre démarche." }
                div.champ {
                    label for="snippet" { "Code HTML à copier" }
                    textarea #snippet readonly rows="6" { (code) }
                }
                h3 { "Aperçu" }
                div.apercu { (PreEscaped(code)) }
            }
        }
        h2 { "Code à intégrer" }
        @if !d.active {
            div.alerte { p { "Cette démarche a été désactivée par un administrateur\u{a0}: son formulaire n'accepte plus d'avis." } }
        } @else if awaiting {
            div.alerte {
                h3 { "Conditions particulières" }
                p { "Cette démarche déclare plus de 5\u{a0}000\u{a0}000 d'usagers par an. Le bouton d'une démarche de cette taille n'est ouvert qu'après la validation d'un administrateur du service, qui a été prévenu. Le code apparaîtra ici dès qu'il l'aura validée." }
            }
        } @else {
            p { "Collez ce code à la fin du parcours de votre démarche (page de confirmation, ou e-mail d'accusé de réception). Sur Démarches simplifiées, utilisez le champ prévu pour le bouton MonAvis." }
            (errors.summary("Le code n'a pas pu être généré"))
            form method="get" action={ "/console/demarches/" (id) "/code#code" } {
                fieldset.question {
                    legend { "Choisissez le bouton" }
                    div.choix {
                        input type="radio" id="style-bleu" name="style" value="bleu" checked[checked(snippet::Style::Bleu)];
                        label for="style-bleu" { "Bleu, pour les pages claires " img src=(button_src("bleu")) alt="" width="232" height="48"; }
                    }
                    div.choix {
                        input type="radio" id="style-blanc" name="style" value="blanc" checked[checked(snippet::Style::Blanc)];
                        label for="style-blanc" { "Blanc, pour les pages foncées ou chargées " img src=(button_src("blanc")) alt="" width="232" height="48"; }
                    }
                }
                (Input { id: "source", label: "Étiquette de provenance (facultatif)", kind: "text", value: if source == snippet::DEFAULT_SOURCE { "" } else { source },
                         autocomplete: "off", hint: Some("Pour comparer les emplacements du bouton (site, courriel, guichet…). Laissez vide pour l'étiquette par défaut, «\u{a0}Bouton\u{a0}», que Démarches simplifiées remplace par «\u{a0}site\u{a0}» ou «\u{a0}email\u{a0}»."), required: false }.render(&errors))
                div.case {
                    input type="checkbox" id="fenetre" name="fenetre" value="oui" checked[new_window];
                    label for="fenetre" { "Ouvrir le formulaire dans une nouvelle fenêtre (inutile sur Démarches simplifiées)" }
                }
                button.bouton type="submit" { "Générer le code" }
            }
        }
        section.carte {
            h3 { "Provenances déjà vues" }
            @if sources.is_empty() {
                p { "Aucun avis reçu pour l'instant. Une fois le bouton en place, chaque provenance apparaîtra ici avec la date de son dernier avis." }
            } @else {
                div.tableau-defilant role="region" tabindex="0" aria-label="Provenances déjà vues" {
                    table.tableau {
                        thead { tr { th scope="col" { "Provenance" } th scope="col" { "Dernier avis reçu le" } } }
                        tbody { @for (s, day) in &sources { tr {
                            td { (source_label(s)) }
                            td {
                                (day.format("%d/%m/%Y"))
                                @if let Some(since) = silent.get(s) {
                                    " " strong.silencieux { "silencieux depuis le " (since.format("%d/%m/%Y")) }
                                }
                            }
                        } } }
                    }
                }
            }
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render(status, &format!("Code à intégrer – {}", d.details.name), main))
}
