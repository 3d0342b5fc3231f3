//! « Satisfaction » (`/console/demarches/{id}/satisfaction`): the dashboard of a carried
//! démarche over a period (7 days, 30 days, 12 months by default, or chosen dates) and
//! optionally one source. Read from `avis_daily` only, plus the latest comments through the
//! index: it costs O(days), whatever the number of avis, and shows votes flushed a second ago.

use axum::http::StatusCode;
use chrono::{Days, NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::demarche::{carried, header, score_badge, thousands, Tab};
use super::{Id, Params};
use crate::console::chart::{buckets, trend_svg, Grain, Readers};
use crate::console::layout::{paris_time, source_label, Errors};
use crate::console::{Answer, Ctx};
use crate::form::{LABELS_AIDE, LABELS_CLARTE, LABELS_FACILITE, LABELS_SATISFACTION};
use crate::stats::{index_text, percent_text, round1, Counts};
use crate::vote::{paris_day, paris_midnight};

/// Longest custom period, in days (five years).
const MAX_DAYS: i64 = 5 * 366;

#[derive(Deserialize, Default)]
pub struct PeriodQuery {
    periode: Option<String>,
    du: Option<String>,
    au: Option<String>,
    source: Option<String>,
}

/// The period asked for, or French messages.
#[derive(Debug, PartialEq, Eq)]
pub struct Period {
    pub preset: &'static str,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// Parses the query against `today` (Europe/Paris).
    pub fn parse(q: &PeriodQuery, today: NaiveDate, errors: &mut Errors) -> Period {
        let back = |days: u64, preset| Period { preset, from: today - Days::new(days - 1), to: today };
        match q.periode.as_deref() {
            Some("7j") => back(7, "7j"),
            Some("30j") => back(30, "30j"),
            Some("perso") => {
                let date = |v: &Option<String>| {
                    v.as_deref().and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
                };
                let (from, to) = (date(&q.du), date(&q.au));
                if from.is_none() {
                    errors.add("du", "Du", "Indiquez la date de début, par exemple 2026-01-31.");
                }
                if to.is_none() {
                    errors.add("au", "Au", "Indiquez la date de fin, par exemple 2026-03-31.");
                }
                match (from, to) {
                    (Some(f), Some(t)) if f > t => {
                        errors.add("au", "Au", "La date de fin doit suivre la date de début.");
                        back(365, "12m")
                    }
                    (Some(f), Some(t)) if (t - f).num_days() >= MAX_DAYS => {
                        errors.add("du", "Du", "La période ne peut pas dépasser cinq ans.");
                        back(365, "12m")
                    }
                    (Some(from), Some(to)) => Period { preset: "perso", from, to },
                    _ => back(365, "12m"),
                }
            }
            _ => back(365, "12m"),
        }
    }

    /// The period of the same length just before.
    pub fn previous(&self) -> (NaiveDate, NaiveDate) {
        let len = (self.to - self.from).num_days() as u64 + 1;
        (self.from - Days::new(len), self.from - Days::new(1))
    }
}

fn percent(part: i64, whole: i64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        percent_text(part as f64 / whole as f64)
    }
}

fn change(now: i64, before: i64) -> String {
    if before == 0 {
        "pas d'avis sur la période précédente".into()
    } else {
        let share = (now - before) as f64 / before as f64;
        format!(
            "{}{} par rapport à la période précédente",
            if share >= 0.0 { "+" } else { "−" },
            percent_text(share.abs())
        )
    }
}

fn breakdown(legend: &str, labels: &[&str], counts: &[i64], whole: i64) -> Markup {
    html! {
        table.tableau {
            caption { (legend) }
            thead { tr { th scope="col" { "Réponse" } th scope="col" { "Avis" } th scope="col" { "Part" } } }
            tbody { @for (label, n) in labels.iter().zip(counts) { tr { td { (label) } td { (thousands(*n)) } td { (percent(*n, whole)) } } } }
        }
    }
}

fn sum(days: &[(NaiveDate, Counts)]) -> Counts {
    days.iter().fold(Counts::default(), |mut acc, (_, c)| {
        acc.add(c);
        acc
    })
}

pub async fn satisfaction_get(ctx: Ctx, Id(id): Id, Params(q): Params<PeriodQuery>) -> Answer {
    let d = carried(&ctx, id).await?;
    let store = &ctx.console.store;
    let today = paris_day(Utc::now().timestamp_millis());
    let mut errors = Errors::default();
    let period = Period::parse(&q, today, &mut errors);
    let (prev_from, _) = period.previous();
    let source = q.source.as_deref().map(str::trim).filter(|s| snippet::is_valid_source(s)).map(str::to_string);
    // Summed by the database: one row a day of each period and one a source, whatever the
    // number of avis and of sources.
    let days = store.day_counts(id, period.from, period.to, source.clone()).await?;
    let total = sum(&days);
    let before = sum(&store.day_counts(id, prev_from, period.from - Days::new(1), source.clone()).await?);
    let grain = Grain::for_period(period.from, period.to);
    let trend = buckets(&days, period.from, period.to, grain);
    let per_source = store.source_counts(id, period.from, period.to).await?;
    let comments = store
        .latest_comments(id, paris_midnight(period.from), paris_midnight(period.to + Days::new(1)), source.clone(), 5)
        .await?;
    let base = format!("/console/demarches/{id}/satisfaction");
    // The period as one compact control: plain links (no JavaScript), the current one marked.
    let preset_link = |value: &'static str, label: &str| {
        let mut query = vec![("periode", value)];
        if let Some(s) = &source {
            query.push(("source", s.as_str()));
        }
        let href = format!("{base}?{}", serde_urlencoded::to_string(&query).unwrap_or_default());
        html! { li { a href=(href) aria-current=[(period.preset == value).then_some("true")] { (label) } } }
    };
    let score = |title: &str, index: Option<f64>| html! { div.chiffre { p.libelle { (title) } p.valeur { (score_badge(index, total.n)) } } };
    let grain_word = match grain {
        Grain::Day => "par jour",
        Grain::Week => "par semaine",
        Grain::Month => "par mois",
    };
    let indicative = crate::stats::indicative(total.n);
    let main = html! {
        (header(&d, Some(Tab::Satisfaction)))
        nav.periodes aria-label="Période" {
            ul {
                (preset_link("7j", "7 jours"))
                (preset_link("30j", "30 jours"))
                (preset_link("12m", "12 mois"))
                li { a href="#filtres" aria-current=[(period.preset == "perso").then_some("true")] { "Dates choisies" } }
            }
        }
        h2.periode-titre { "Du " (period.from.format("%d/%m/%Y")) " au " (period.to.format("%d/%m/%Y")) @if let Some(s) = &source { " – provenance «\u{a0}" (source_label(s)) "\u{a0}»" } }
        (errors.summary("La période n'a pas pu être lue"))
        div.chiffres {
            div.chiffre { p.libelle { "Nombre d'avis" } p.valeur #nombre-avis { (thousands(total.n)) } p.indication { (change(total.n, before.n)) } }
            (score("Satisfaction", total.satisfaction_index()))
            (score("Facilité", total.facilite_index()))
            (score("Clarté du langage", total.clarte_index()))
            div.chiffre {
                p.libelle { "Autonomie" }
                p.valeur {
                    @match total.autonomy() {
                        Some(a) if indicative => span.badge.indicatif { (percent_text(a)) span.mention { " indicatif" } span.sr-only { " (moins de 100 avis)" } },
                        Some(a) => (percent_text(a)),
                        None => "–",
                    }
                }
            }
        }
        @if indicative && total.n > 0 {
            p.indication { "Moins de 100 avis\u{a0}: indices indicatifs (l'observatoire public les montre à partir de 100 avis)." }
        }
        @if let (Some(now), Some(then)) = (total.satisfaction_index(), before.satisfaction_index()) {
            @if total.enough() && before.enough() {
                @let delta = round1(now) - round1(then);
                p { "Indice de satisfaction\u{a0}: " (if delta >= 0.0 { "+" } else { "−" }) (index_text(delta.abs())) " point sur la période précédente (" (index_text(then)) "\u{a0}/\u{a0}10)." }
            }
        }
        section.carte {
            h3 #tendance { "Tendance " (grain_word) }
            (trend_svg(&trend, "tendance", Readers::Porteurs))
            p.indication { "En direct\u{a0}: les avis reçus il y a quelques secondes sont comptés." }
            details {
                summary { "Les chiffres de la tendance, en tableau" }
                table.tableau {
                    caption { "Tendance " (grain_word) " (en italique\u{a0}: moins de 100 avis, indicatif)" }
                    thead { tr { th scope="col" { "Période" } th scope="col" { "Avis" } th scope="col" { "Satisfaction /10" } } }
                    tbody {
                        @for b in &trend {
                            tr {
                                td { (b.label) }
                                td { (thousands(b.counts.n)) }
                                td {
                                    @match b.counts.satisfaction_index() {
                                        Some(i) if crate::stats::indicative(b.counts.n) => em.indicatif { (index_text(i)) span.sr-only { " (indicatif)" } },
                                        Some(i) => (index_text(i)),
                                        None => "–",
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        details.carte #filtres open[!errors.is_empty() || period.preset == "perso"] {
            summary { "Choisir des dates ou une provenance" }
            form.periode method="get" action=(base) {
                input type="hidden" name="periode" value="perso";
                div.grille {
                    div.champ.erreur-champ[errors.get("du").is_some()] {
                        label for="du" { "Du" }
                        @if let Some(m) = errors.get("du") { p.message-erreur { (m) } }
                        input type="date" id="du" name="du" value=(period.from.format("%Y-%m-%d"));
                    }
                    div.champ.erreur-champ[errors.get("au").is_some()] {
                        label for="au" { "Au" }
                        @if let Some(m) = errors.get("au") { p.message-erreur { (m) } }
                        input type="date" id="au" name="au" value=(period.to.format("%Y-%m-%d"));
                    }
                }
                div.champ {
                    label for="source" { "Provenance" }
                    select id="source" name="source" {
                        option value="" selected[source.is_none()] { "Toutes" }
                        @for (s, _) in &per_source { option value=(s) selected[source.as_deref() == Some(s.as_str())] { (source_label(s)) } }
                    }
                }
                button.bouton-secondaire type="submit" { "Afficher" }
            }
        }
        section.carte {
            h3 { "Réponses" }
            div.grille {
                (breakdown("De façon générale, comment s'est passée cette démarche\u{a0}?", &LABELS_SATISFACTION, &total.satisfaction, total.n))
                (breakdown("La démarche était-elle facile\u{a0}?", &LABELS_FACILITE, &total.facilite, total.facilite.iter().sum()))
                (breakdown("Le langage employé était-il clair\u{a0}?", &LABELS_CLARTE, &total.clarte, total.clarte.iter().sum()))
                (breakdown("Avez-vous eu besoin d'aide\u{a0}? (plusieurs réponses possibles)", &LABELS_AIDE, &total.aide, total.n))
            }
        }
        section.carte {
            h3 { "Par provenance" }
            @if per_source.is_empty() {
                p { "Aucun avis sur cette période." }
            } @else {
                table.tableau {
                    thead { tr { th scope="col" { "Provenance" } th scope="col" { "Avis" } th scope="col" { "Satisfaction" } } }
                    tbody { @for (s, c) in &per_source { tr { td { (source_label(s)) } td { (thousands(c.n)) } td { (score_badge(c.satisfaction_index(), c.n)) } } } }
                }
            }
        }
        section.carte {
            h3 { "Derniers commentaires" }
            @if comments.is_empty() {
                p { "Aucun commentaire sur cette période." }
            } @else {
                ul.commentaires {
                    @for c in &comments {
                        li {
                            p.indication { (paris_time(c.received_at)) " · " (source_label(&c.source)) " · "
                                (match c.satisfaction.as_str() { "bien" => "Très bien", "moyen" => "Moyen", _ => "Pas bien" }) }
                            p { (c.text) }
                        }
                    }
                }
            }
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render(status, &format!("Satisfaction – {}", d.details.name), main))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn q(periode: &str, du: &str, au: &str) -> PeriodQuery {
        PeriodQuery { periode: Some(periode.into()), du: Some(du.into()), au: Some(au.into()), source: None }
    }

    #[test]
    fn presets_and_previous_periods() {
        let today = d("2026-11-23");
        let mut e = Errors::default();
        let p = Period::parse(&PeriodQuery::default(), today, &mut e);
        assert_eq!((p.preset, p.from, p.to), ("12m", d("2025-11-24"), today));
        assert_eq!(p.previous(), (d("2024-11-24"), d("2025-11-23")));
        let p = Period::parse(&q("7j", "", ""), today, &mut e);
        assert_eq!((p.from, p.previous()), (d("2026-11-17"), (d("2026-11-10"), d("2026-11-16"))));
        assert_eq!(Period::parse(&q("30j", "", ""), today, &mut e).from, d("2026-10-25"));
        assert!(e.is_empty());
        let p = Period::parse(&q("perso", "2026-01-01", "2026-01-31"), today, &mut e);
        assert_eq!((p.preset, p.from, p.to), ("perso", d("2026-01-01"), d("2026-01-31")));
        assert_eq!(p.previous(), (d("2025-12-01"), d("2025-12-31")));
    }

    #[test]
    fn bad_dates_get_french_messages() {
        let today = d("2026-11-23");
        for (du, au, field) in
            [("hier", "2026-01-01", "du"), ("2026-02-01", "2026-01-01", "au"), ("2010-01-01", "2026-01-01", "du")]
        {
            let mut e = Errors::default();
            let p = Period::parse(&q("perso", du, au), today, &mut e);
            assert!(e.get(field).is_some(), "{du} {au}");
            assert_eq!(p.preset, "12m", "falls back to the default period");
        }
    }

    #[test]
    fn paris_midnight_follows_summer_time() {
        assert_eq!(paris_midnight(d("2026-07-01")).to_rfc3339(), "2026-06-30T22:00:00+00:00");
        assert_eq!(paris_midnight(d("2026-01-01")).to_rfc3339(), "2025-12-31T23:00:00+00:00");
    }
}
