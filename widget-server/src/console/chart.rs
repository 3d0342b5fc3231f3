//! The satisfaction trend: daily counts gathered into days, weeks or months, and drawn as an
//! inline SVG chart (bars: number of avis; line: satisfaction index /10). Pure functions; every
//! chart is shown with a text table that says the same (see the « Satisfaction » tab).

use chrono::{Datelike, Days, Months, NaiveDate};
use maud::{html, Markup};

use crate::stats::Counts;

/// How finely a period is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grain {
    Day,
    Week,
    Month,
}

impl Grain {
    /// Days up to 31 days, weeks up to 6 months, months beyond.
    pub fn for_period(from: NaiveDate, to: NaiveDate) -> Grain {
        let days = (to - from).num_days() + 1;
        if days <= 31 {
            Grain::Day
        } else if days <= 184 {
            Grain::Week
        } else {
            Grain::Month
        }
    }

    /// The first day of the bucket holding `day` (weeks start on Monday).
    pub fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Grain::Day => day,
            Grain::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
            Grain::Month => day.with_day(1).unwrap_or(day),
        }
    }

    fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Grain::Day => start + Days::new(1),
            Grain::Week => start + Days::new(7),
            Grain::Month => start + Months::new(1),
        }
    }

    /// How a bucket is named in the chart and its table.
    pub fn label(self, start: NaiveDate) -> String {
        const MONTHS: [&str; 12] =
            ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."];
        match self {
            Grain::Day => start.format("%d/%m").to_string(),
            Grain::Week => format!("sem. du {}", start.format("%d/%m")),
            Grain::Month => format!("{} {}", MONTHS[start.month0() as usize], start.year()),
        }
    }
}

/// One bar of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub start: NaiveDate,
    pub label: String,
    pub counts: Counts,
}

/// Every bucket of `from..=to` (empty ones too, so gaps show), with the days' counts summed.
pub fn buckets(days: &[(NaiveDate, Counts)], from: NaiveDate, to: NaiveDate, grain: Grain) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    let mut start = grain.start_of(from);
    while start <= to && out.len() < 400 {
        out.push(Bucket { start, label: grain.label(start), counts: Counts::default() });
        start = grain.next(start);
    }
    for (day, counts) in days.iter().filter(|(d, _)| (from..=to).contains(d)) {
        let s = grain.start_of(*day);
        if let Ok(i) = out.binary_search_by(|b| b.start.cmp(&s)) {
            out[i].counts.add(counts);
        }
    }
    out
}

/// Who reads a chart, which decides how an index over fewer than 100 avis is drawn (the one
/// rule of [`crate::stats::indicative`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers {
    /// Porteurs: every point, those over fewer than 100 avis hollow (« indicatif »).
    Porteurs,
    /// The public pages: only points over 100 avis or more (DESIGN §5).
    Public,
}

/// The two drawings of a chart: one for wide screens, one for phones, each with text a person
/// can read at that width (an SVG scales its text with it: 720 units shown 330 px wide would
/// make 10-unit labels 4.6 px).
struct Size {
    width: f64,
    height: f64,
    font: f64,
    /// At most this many labels under the axis.
    labels: usize,
    class: &'static str,
}

const WIDE: Size = Size { width: 720.0, height: 240.0, font: 11.0, labels: 12, class: "graphique graphique-large" };
const NARROW: Size = Size { width: 300.0, height: 220.0, font: 13.5, labels: 4, class: "graphique graphique-etroit" };

/// The chart: a bar per bucket for the number of avis (right scale), and the satisfaction index
/// /10 as a line (left scale) where the bucket has avis; drawn twice (wide screens and phones,
/// one shown by CSS), followed by its legend. `title_id` names the element holding the chart's
/// title, for `aria-labelledby`.
pub fn trend_svg(buckets: &[Bucket], title_id: &str, readers: Readers) -> Markup {
    html! {
        (drawing(buckets, title_id, readers, &WIDE))
        (drawing(buckets, title_id, readers, &NARROW))
        ul.legende {
            li { span.cle.cle-barre aria-hidden="true" {} "Nombre d'avis (échelle de droite)" }
            li { span.cle.cle-ligne aria-hidden="true" {} "Indice de satisfaction sur 10 (échelle de gauche)" }
            @if readers == Readers::Porteurs {
                li { span.cle.cle-creux aria-hidden="true" {} "Point creux\u{a0}: moins de 100 avis, indicatif" }
            }
        }
    }
}

fn drawing(buckets: &[Bucket], title_id: &str, readers: Readers, size: &Size) -> Markup {
    const LEFT: f64 = 36.0;
    const RIGHT: f64 = 40.0;
    const TOP: f64 = 12.0;
    let bottom = size.font * 2.5;
    let plot_w = size.width - LEFT - RIGHT;
    let plot_h = size.height - TOP - bottom;
    let band = plot_w / buckets.len().max(1) as f64;
    let most = buckets.iter().map(|b| b.counts.n).max().unwrap_or(0);
    let max_n = most.max(1) as f64;
    let x = |i: usize| LEFT + band * (i as f64 + 0.5);
    let y_index = |v: f64| TOP + plot_h * (1.0 - v / 10.0);
    // (x, y, indicative) of each bucket whose index is drawn.
    let points: Vec<(f64, f64, bool)> = buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| readers == Readers::Porteurs || !crate::stats::indicative(b.counts.n))
        .filter_map(|(i, b)| {
            b.counts
                .satisfaction_index()
                .map(|v| (x(i), y_index(crate::stats::round1(v)), crate::stats::indicative(b.counts.n)))
        })
        .collect();
    let every = buckets.len().div_ceil(size.labels).max(1);
    let f = |v: f64| format!("{v:.1}");
    html! {
        svg class=(size.class) xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (size.width) " " (size.height) } role="img" aria-labelledby=(title_id) {
            @for v in [0.0, 5.0, 8.0, 10.0] {
                line x1=(LEFT) x2=(size.width - RIGHT) y1=(f(y_index(v))) y2=(f(y_index(v))) stroke="#dddddd" stroke-width="1" {}
                text x=(LEFT - 6.0) y=(f(y_index(v) + size.font / 3.0)) text-anchor="end" font-size=(size.font) fill="#3a3a3a" { (v) }
            }
            @for (i, b) in buckets.iter().enumerate() {
                @let h = plot_h * b.counts.n as f64 / max_n;
                rect x=(f(x(i) - band * 0.35)) y=(f(TOP + plot_h - h)) width=(f(band * 0.7)) height=(f(h)) fill="#cacafb" {}
                @if i % every == 0 {
                    text x=(f(x(i))) y=(f(size.height - size.font * 0.8)) text-anchor="middle" font-size=(size.font) fill="#3a3a3a" { (b.label) }
                }
            }
            // The right scale's top: the most avis of a bucket (nothing when there are none).
            @if most > 0 {
                text x=(size.width - RIGHT + 4.0) y=(TOP + size.font * 0.8) font-size=(size.font) fill="#3a3a3a" { (crate::console::pages::demarche::thousands(most)) }
            }
            @if points.len() > 1 {
                polyline points=(points.iter().map(|(x, y, _)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ")) fill="none" stroke="#000091" stroke-width="2" {}
            }
            @for (cx, cy, hollow) in &points {
                circle cx=(f(*cx)) cy=(f(*cy)) r="3.5" fill=(if *hollow { "#ffffff" } else { "#000091" }) stroke="#000091" stroke-width="1.5" {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn c(n: i64, bien: i64) -> Counts {
        Counts { n, satisfaction: [bien, 0, n - bien], ..Counts::default() }
    }

    #[test]
    fn grain_follows_the_period_length() {
        assert_eq!(Grain::for_period(d("2026-11-01"), d("2026-11-30")), Grain::Day);
        assert_eq!(Grain::for_period(d("2026-10-01"), d("2026-10-31")), Grain::Day);
        assert_eq!(Grain::for_period(d("2026-10-01"), d("2026-11-01")), Grain::Week);
        assert_eq!(Grain::for_period(d("2026-06-01"), d("2026-11-30")), Grain::Week);
        assert_eq!(Grain::for_period(d("2025-11-24"), d("2026-11-23")), Grain::Month);
    }

    #[test]
    fn buckets_cover_the_period_and_sum_days() {
        let days = [
            (d("2026-11-02"), c(3, 3)),
            (d("2026-11-08"), c(1, 0)),
            (d("2026-11-09"), c(2, 1)),
            (d("2026-12-01"), c(9, 9)),
        ];
        let b = buckets(&days, d("2026-11-02"), d("2026-11-15"), Grain::Week);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].start, b[0].counts.n, b[0].label.as_str()), (d("2026-11-02"), 4, "sem. du 02/11"));
        assert_eq!((b[1].start, b[1].counts.n), (d("2026-11-09"), 2));
        let m = buckets(&days, d("2026-10-15"), d("2026-12-31"), Grain::Month);
        assert_eq!(
            m.iter().map(|b| (b.label.as_str(), b.counts.n)).collect::<Vec<_>>(),
            [("oct. 2026", 0), ("nov. 2026", 6), ("déc. 2026", 9)]
        );
        let days_only = buckets(&days, d("2026-11-08"), d("2026-11-09"), Grain::Day);
        assert_eq!(
            days_only.iter().map(|b| b.counts.n).collect::<Vec<_>>(),
            [1, 2],
            "days outside the period are left out"
        );
    }

    #[test]
    fn the_chart_draws_bars_and_the_index_line() {
        let days = [(d("2026-11-02"), c(4, 4)), (d("2026-11-04"), c(2, 1))];
        let b = buckets(&days, d("2026-11-02"), d("2026-11-04"), Grain::Day);
        let svg = trend_svg(&b, "titre", Readers::Porteurs).into_string();
        assert_eq!(svg.matches("<svg").count(), 2, "a drawing for wide screens, one for phones");
        assert_eq!(svg.matches("<rect").count(), 6, "one bar per bucket, empty ones included, in each");
        assert_eq!(svg.matches("<circle").count(), 4, "a point where there are avis, in each");
        assert_eq!(svg.matches(r##"fill="#ffffff""##).count(), 4, "under 100 avis: hollow, indicative");
        assert!(svg.contains(r#"aria-labelledby="titre""#) && svg.contains(r#"role="img""#));
        assert!(svg.contains("<polyline") && !svg.contains("style="), "no inline style (CSP)");
        assert!(svg.contains("Nombre d'avis (échelle de droite)") && svg.contains("indicatif"), "a legend");
        // Index 10 sits on the top line (y = 12).
        assert!(svg.contains("cy=\"12.0\""));
        // The public pages draw no point over fewer than 100 avis.
        let public = trend_svg(&b, "titre", Readers::Public).into_string();
        assert_eq!(public.matches("<circle").count(), 0);
        let many = [(d("2026-11-02"), c(150, 150))];
        let b = buckets(&many, d("2026-11-02"), d("2026-11-02"), Grain::Day);
        assert_eq!(trend_svg(&b, "t", Readers::Public).into_string().matches(r##"fill="#000091" stroke"##).count(), 2);
        // No avis at all: no stray « 1 » on the right scale.
        let empty = buckets(&[], d("2026-11-02"), d("2026-11-04"), Grain::Day);
        let svg = trend_svg(&empty, "t", Readers::Public).into_string();
        assert!(!svg.contains(">1</text>"), "{svg}");
        assert!(trend_svg(&[], "t", Readers::Porteurs).into_string().contains("<svg"));
    }
}
