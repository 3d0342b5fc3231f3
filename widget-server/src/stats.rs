//! The read path of satisfaction: counts per day from `avis_daily`, and the scores of DESIGN §5.
//!
//! Dashboards read aggregates only, so a dashboard costs O(days), never O(avis).

use chrono::NaiveDate;

use crate::vote::{Lang, Level, Vote, AIDE};

/// Counts of answers, as one `avis_daily` row holds them (or any sum of rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Number of avis.
    pub n: i64,
    /// Per [`Level`] of `satisfaction`, `facilite`, `clarte`; unanswered optional questions count
    /// in none.
    pub satisfaction: [i64; 3],
    pub facilite: [i64; 3],
    pub clarte: [i64; 3],
    /// Per value of [`AIDE`].
    pub aide: [i64; 6],
}

impl Counts {
    /// Adds one vote.
    pub fn add_vote(&mut self, v: &Vote) {
        self.n += 1;
        self.satisfaction[v.satisfaction.index()] += 1;
        if let Some(l) = v.facilite {
            self.facilite[l.index()] += 1;
        }
        if let Some(l) = v.clarte {
            self.clarte[l.index()] += 1;
        }
        for (i, slot) in self.aide.iter_mut().enumerate() {
            *slot += i64::from(v.aide >> i & 1);
        }
    }

    /// Adds another set of counts.
    pub fn add(&mut self, o: &Counts) {
        self.n += o.n;
        for i in 0..3 {
            self.satisfaction[i] += o.satisfaction[i];
            self.facilite[i] += o.facilite[i];
            self.clarte[i] += o.clarte[i];
        }
        for i in 0..AIDE.len() {
            self.aide[i] += o.aide[i];
        }
    }

    /// The 16 counters in `avis_daily` column order (n, sat_*, fac_*, cla_*, aide_*).
    pub fn columns(&self) -> [i64; 16] {
        let mut c = [0i64; 16];
        c[0] = self.n;
        c[1..4].copy_from_slice(&self.satisfaction);
        c[4..7].copy_from_slice(&self.facilite);
        c[7..10].copy_from_slice(&self.clarte);
        c[10..16].copy_from_slice(&self.aide);
        c
    }

    /// The inverse of [`Counts::columns`].
    pub fn from_columns(c: [i64; 16]) -> Counts {
        let mut out = Counts { n: c[0], ..Counts::default() };
        out.satisfaction.copy_from_slice(&c[1..4]);
        out.facilite.copy_from_slice(&c[4..7]);
        out.clarte.copy_from_slice(&c[7..10]);
        out.aide.copy_from_slice(&c[10..16]);
        out
    }

    /// Satisfaction index /10: mean of `bien` 10, `moyen` 5, `pas-bien` 0.
    pub fn satisfaction_index(&self) -> Option<f64> {
        index(&self.satisfaction)
    }

    /// Ease index /10, over those who answered the question.
    pub fn facilite_index(&self) -> Option<f64> {
        index(&self.facilite)
    }

    /// Clarity index /10, over those who answered the question.
    pub fn clarte_index(&self) -> Option<f64> {
        index(&self.clarte)
    }

    /// Autonomy: share of avis that ticked « Je n'ai pas eu besoin d'aide ». Counted over all avis:
    /// ticks of a multiple-choice question do not tell how many people answered it.
    pub fn autonomy(&self) -> Option<f64> {
        (self.n > 0).then(|| self.aide[0] as f64 / self.n as f64)
    }

    /// Whether there are enough avis to show scores (DESIGN §5: at least 100).
    pub fn enough(&self) -> bool {
        self.n >= MIN_AVIS_FOR_SCORE
    }
}

/// Fewer avis than this: the public pages say « Nombre d'avis insuffisant »; porteurs (console,
/// API, e-mails) see the figures marked « indicatif » ([`indicative`]).
pub const MIN_AVIS_FOR_SCORE: i64 = 100;

/// Whether figures over `n` avis are only indicative (fewer than [`MIN_AVIS_FOR_SCORE`]): the one
/// rule of every figure porteurs read, in tiles, tables, charts, the API and e-mails alike.
pub fn indicative(n: i64) -> bool {
    n < MIN_AVIS_FOR_SCORE
}

/// One decimal, halves away from zero (6.25 → 6.3): how every index is shown and served.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// An index /10 as French text, rounded by [`round1`]: « 6,3 ».
pub fn index_text(v: f64) -> String {
    format!("{:.1}", round1(v)).replace('.', ",")
}

/// A share (0 to 1) as a whole percentage, halves away from zero: « 50 % ».
pub fn percent_text(share: f64) -> String {
    format!("{}\u{a0}%", (share * 100.0).round() as i64)
}

/// A share rounded as [`percent_text`] shows it, as a share (0.5 for « 50 % »), for the API.
pub fn round_share(share: f64) -> f64 {
    (share * 100.0).round() / 100.0
}

/// Mean of 10 / 5 / 0 weighted by the three counts, `None` when nobody answered.
pub fn index(c: &[i64; 3]) -> Option<f64> {
    let total = c[0] + c[1] + c[2];
    (total > 0).then(|| (10 * c[Level::Good.index()] + 5 * c[Level::Medium.index()]) as f64 / total as f64)
}

/// How an index is shown: green ≥ 8, orange 5–8, red < 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    Green,
    Orange,
    Red,
}

/// The colour of an index /10, as shown (rounded by [`round1`]: « 8,0 » is green).
pub fn colour(index: f64) -> Colour {
    let index = round1(index);
    if index >= 8.0 {
        Colour::Green
    } else if index >= 5.0 {
        Colour::Orange
    } else {
        Colour::Red
    }
}

/// One `avis_daily` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyRow {
    pub demarche_id: i64,
    pub day: NaiveDate,
    pub source: String,
    pub counts: Counts,
}

/// Sums rows per day (all sources together), in day order.
pub fn per_day(rows: &[DailyRow]) -> Vec<(NaiveDate, Counts)> {
    let mut map = std::collections::BTreeMap::<NaiveDate, Counts>::new();
    for r in rows {
        map.entry(r.day).or_default().add(&r.counts);
    }
    map.into_iter().collect()
}

/// Sums all rows.
pub fn total(rows: &[DailyRow]) -> Counts {
    rows.iter().fold(Counts::default(), |mut acc, r| {
        acc.add(&r.counts);
        acc
    })
}

/// Avis per language, most first: French is `total` minus the others (`avis_daily_langue`
/// holds those only). Empty when there is no avis.
pub fn langue_rows(total: i64, others: Vec<(String, i64)>) -> Vec<(Lang, i64)> {
    let mut rows: Vec<(Lang, i64)> =
        others.iter().filter_map(|(code, n)| Lang::from_code(code).map(|l| (l, *n))).collect();
    let french = total - others.iter().map(|(_, n)| n).sum::<i64>();
    if french > 0 {
        rows.push((Lang::Fr, french));
    }
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_is_the_rest() {
        assert_eq!(langue_rows(0, vec![]), vec![]);
        assert_eq!(langue_rows(10, vec![]), vec![(Lang::Fr, 10)]);
        assert_eq!(
            langue_rows(10, vec![("ar".into(), 6), ("en".into(), 1)]),
            vec![(Lang::Ar, 6), (Lang::Fr, 3), (Lang::En, 1)]
        );
        assert_eq!(langue_rows(2, vec![("uk".into(), 2)]), vec![(Lang::Uk, 2)]);
    }

    #[test]
    fn index_formula() {
        assert_eq!(index(&[0, 0, 0]), None);
        assert_eq!(index(&[1, 0, 0]), Some(10.0));
        assert_eq!(index(&[0, 1, 0]), Some(5.0));
        assert_eq!(index(&[0, 0, 7]), Some(0.0));
        // 60 bien, 30 moyen, 10 pas bien: (600 + 150) / 100 = 7.5
        assert_eq!(index(&[60, 30, 10]), Some(7.5));
        assert_eq!(index(&[2, 1, 0]), Some(25.0 / 3.0));
    }

    #[test]
    fn one_rounding_everywhere() {
        assert_eq!(round1(6.25), 6.3);
        assert_eq!(round1(20.0 / 3.0), 6.7);
        assert_eq!(index_text(6.25), "6,3");
        assert_eq!(index_text(10.0), "10,0");
        assert_eq!(percent_text(0.5), "50\u{a0}%");
        assert_eq!(percent_text(0.125), "13\u{a0}%");
        assert_eq!(round_share(2.0 / 3.0), 0.67);
        assert!(indicative(99) && !indicative(100));
        assert_eq!(colour(7.96), Colour::Green, "shown as 8,0");
    }

    #[test]
    fn colours() {
        assert_eq!(colour(8.0), Colour::Green);
        assert_eq!(colour(7.94), Colour::Orange);
        assert_eq!(colour(5.0), Colour::Orange);
        assert_eq!(colour(4.94), Colour::Red);
    }

    #[test]
    fn counts_columns_round_trip_and_scores() {
        let mut c = Counts::default();
        let mut v = Vote::accept(1, Default::default(), Level::Good, Default::default());
        v.facilite = Some(Level::Bad);
        v.aide = 0b100001;
        c.add_vote(&v);
        v.satisfaction = Level::Medium;
        v.facilite = None;
        v.aide = 0;
        c.add_vote(&v);
        assert_eq!(c.n, 2);
        assert_eq!(c.satisfaction, [1, 1, 0]);
        assert_eq!(c.facilite, [0, 0, 1]);
        assert_eq!(c.aide, [1, 0, 0, 0, 0, 1]);
        assert_eq!(Counts::from_columns(c.columns()), c);
        assert_eq!(c.satisfaction_index(), Some(7.5));
        assert_eq!(c.facilite_index(), Some(0.0));
        assert_eq!(c.clarte_index(), None);
        assert_eq!(c.autonomy(), Some(0.5));
        assert!(!c.enough());
    }
}
