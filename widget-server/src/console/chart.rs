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

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 36.0;
const RIGHT: f64 = 36.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// The chart: a bar per bucket for the number of avis (right scale), and the satisfaction index
/// /10 as a line (left scale) where the bucket has avis. `title_id` names the element holding
/// the chart's title, for `aria-labelledby`.
pub fn trend_svg(buckets: &[Bucket], title_id: &str) -> Markup {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let band = plot_w / buckets.len().max(1) as f64;
    let max_n = buckets.iter().map(|b| b.counts.n).max().unwrap_or(0).max(1) as f64;
    let x = |i: usize| LEFT + band * (i as f64 + 0.5);
    let y_index = |v: f64| TOP + plot_h * (1.0 - v / 10.0);
    let points: Vec<String> = buckets
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.counts.satisfaction_index().map(|v| format!("{:.1},{:.1}", x(i), y_index(v))))
        .collect();
    // At most about 12 labels under the axis, whatever the number of buckets.
    let every = buckets.len().div_ceil(12).max(1);
    html! {
        svg.graphique xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby=(title_id) {
            @for v in [0.0, 5.0, 8.0, 10.0] {
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(format!("{:.1}", y_index(v))) y2=(format!("{:.1}", y_index(v))) stroke="#dddddd" stroke-width="1" {}
                text x=(LEFT - 6.0) y=(format!("{:.1}", y_index(v) + 4.0)) text-anchor="end" font-size="11" fill="#3a3a3a" { (v) }
            }
            @for (i, b) in buckets.iter().enumerate() {
                @let h = plot_h * b.counts.n as f64 / max_n;
                rect x=(format!("{:.1}", x(i) - band * 0.35)) y=(format!("{:.1}", TOP + plot_h - h)) width=(format!("{:.1}", band * 0.7)) height=(format!("{:.1}", h)) fill="#cacafb" {}
                @if i % every == 0 {
                    text x=(format!("{:.1}", x(i))) y=(HEIGHT - 10.0) text-anchor="middle" font-size="10" fill="#3a3a3a" { (b.label) }
                }
            }
            text x=(WIDTH - RIGHT + 6.0) y=(TOP + 8.0) font-size="11" fill="#3a3a3a" { (max_n) }
            @if points.len() > 1 {
                polyline points=(points.join(" ")) fill="none" stroke="#000091" stroke-width="2" {}
            }
            @for p in &points {
                @let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                circle cx=(cx) cy=(cy) r="3" fill="#000091" {}
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
        let svg = trend_svg(&b, "titre").into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "one bar per bucket, empty ones included");
        assert_eq!(svg.matches("<circle").count(), 2, "a point where there are avis");
        assert!(svg.contains(r#"aria-labelledby="titre""#) && svg.contains(r#"role="img""#));
        assert!(svg.contains("<polyline") && !svg.contains("style="), "no inline style (CSP)");
        // Index 10 sits on the top line, index 5 halfway.
        assert!(svg.contains(&format!("cy=\"{:.1}\"", TOP)));
        assert!(trend_svg(&[], "t").into_string().contains("<svg"));
    }
}
