//! The public observatory (DESIGN §12): every démarche open to citizens with its indicators over
//! the 365 days ending yesterday (Europe/Paris) and the criteria its porteurs declared.
//!
//! The figures change once a day, so one [`Snapshot`] is computed from `avis_daily` (one
//! statement) and kept in memory for a few minutes; filtering, sorting and paging run on it. A
//! page view costs no store access at all while the snapshot is fresh, whatever the number of
//! avis.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use serde::Serialize;

use super::store::{ConsoleStore, Criteria, DemarcheRow, EnLigne};
use crate::catalogue::HIGH_VOLUME;
use crate::search::fold;
use crate::stats::{Counts, MIN_AVIS_FOR_SCORE};
use crate::store::StoreError;

/// How long a snapshot is served before it is computed again: criteria that porteurs change on
/// the « Fiche » show within this delay (the figures themselves change at midnight).
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(300);

/// The observatory's window: the 365 days ending yesterday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    /// The 365 days ending the day before `today` (a Paris date).
    pub fn ending_before(today: NaiveDate) -> Window {
        let to = today - Days::new(1);
        Window { from: to - Days::new(364), to }
    }
}

/// Where a démarche stands on the « at least 100 avis » rule (DESIGN §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No avis in the window: « À venir ».
    AVenir,
    /// Fewer than 100: « Nombre d'avis insuffisant ».
    Insuffisant,
    /// Indicators are published.
    Publie,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AVenir => "a_venir",
            Status::Insuffisant => "insuffisant",
            Status::Publie => "publie",
        }
    }
}

/// One démarche of the observatory.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub name: String,
    pub administration: String,
    pub volume_annuel: Option<i64>,
    pub counts: Counts,
    pub criteria: Criteria,
    /// `fold`ed name, administration and id, for the keyword filter.
    search: String,
    /// `fold`ed name and administration (trimmed), for sorting and the administration filter,
    /// folded once rather than at each comparison.
    sort_name: String,
    sort_administration: String,
}

impl Entry {
    /// From a démarche and its counts over the window.
    pub fn new(d: &DemarcheRow, counts: Counts) -> Entry {
        let x = &d.details;
        Entry {
            id: d.id,
            name: x.name.clone(),
            administration: x.administration.clone(),
            // A negative volume (possible from the command line before it refused one) means
            // nothing: shown as not declared, so the open data never holds a negative number.
            volume_annuel: x.volume_annuel.filter(|v| *v >= 0),
            counts,
            criteria: x.criteria.clone(),
            search: format!("{} {}", fold(&format!("{} {}", x.name, x.administration)), d.id),
            sort_name: fold(&x.name),
            sort_administration: fold(x.administration.trim()),
        }
    }

    pub fn status(&self) -> Status {
        match self.counts.n {
            0 => Status::AVenir,
            n if n < MIN_AVIS_FOR_SCORE => Status::Insuffisant,
            _ => Status::Publie,
        }
    }

    fn published(&self, index: Option<f64>) -> Option<f64> {
        (self.status() == Status::Publie).then_some(index).flatten()
    }

    /// Satisfaction /10, only with enough avis.
    pub fn satisfaction(&self) -> Option<f64> {
        self.published(self.counts.satisfaction_index())
    }

    /// Ease /10, only with enough avis.
    pub fn facilite(&self) -> Option<f64> {
        self.published(self.counts.facilite_index())
    }

    /// Clarity /10, only with enough avis.
    pub fn clarte(&self) -> Option<f64> {
        self.published(self.counts.clarte_index())
    }

    /// Share of « Je n'ai pas eu besoin d'aide », only with enough avis.
    pub fn autonomie(&self) -> Option<f64> {
        self.published(self.counts.autonomy())
    }
}

/// Whether a démarche belongs in the observatory: open to citizens (active, not merged, not a
/// high-volume one waiting for approval, whose button does not work yet, and with a positive id:
/// no link reaches any other).
pub fn listed(d: &DemarcheRow) -> bool {
    let waiting = !d.high_volume_approved && d.details.volume_annuel.is_some_and(|v| v > HIGH_VOLUME);
    d.id > 0 && d.active && d.merged_into.is_none() && !waiting
}

/// The observatory at one moment.
#[derive(Debug)]
pub struct Snapshot {
    pub window: Window,
    /// In id order.
    pub entries: Vec<Entry>,
    /// The administrations named, sorted, for the filter.
    pub administrations: Vec<String>,
    computed_at: Instant,
    /// The [`Cache`] generation it was computed in.
    generation: u64,
    /// The entries' order for each sort (column × direction), as indexes into `entries`, made
    /// at the first page that asks for it: 20,000 entries sort in a few milliseconds, which a
    /// page served from the snapshot need not pay again.
    orders: Vec<std::sync::OnceLock<Vec<u32>>>,
    /// The open data of the whole snapshot (`/observatoire.json`, `/observatoire.csv` without
    /// filters), bytes and strong `ETag`, made at its first request: 12 MB of JSON at 20,000
    /// démarches is not serialized and hashed again for every download.
    pub json: std::sync::OnceLock<(bytes::Bytes, String)>,
    pub csv: std::sync::OnceLock<(bytes::Bytes, String)>,
}

impl Snapshot {
    /// From the store's rows.
    pub fn new(window: Window, rows: &[(DemarcheRow, Counts)]) -> Snapshot {
        let entries: Vec<Entry> = rows.iter().filter(|(d, _)| listed(d)).map(|(d, c)| Entry::new(d, *c)).collect();
        let mut administrations: Vec<String> =
            entries.iter().map(|e| e.administration.trim().to_string()).filter(|a| !a.is_empty()).collect();
        administrations.sort_by_key(|a| fold(a));
        administrations.dedup();
        Snapshot {
            window,
            entries,
            administrations,
            computed_at: Instant::now(),
            generation: 0,
            orders: (0..Column::ALL.len() * 2).map(|_| std::sync::OnceLock::new()).collect(),
            json: std::sync::OnceLock::new(),
            csv: std::sync::OnceLock::new(),
        }
    }

    /// The entry of démarche `id`, if listed.
    pub fn entry(&self, id: i64) -> Option<&Entry> {
        self.entries.binary_search_by_key(&id, |e| e.id).ok().map(|i| &self.entries[i])
    }

    /// The entries matching `filter`, in the order of `sort` (the snapshot's order for that
    /// sort, filtered).
    pub fn select(&self, filter: &Filter, sort: Sort) -> Vec<&Entry> {
        let administration = filter.administration.as_deref().map(|a| fold(a.trim())).filter(|a| !a.is_empty());
        let terms: Vec<String> =
            filter.q.as_deref().map(fold).unwrap_or_default().split_whitespace().map(String::from).collect();
        self.order(sort)
            .iter()
            .map(|&i| &self.entries[i as usize])
            .filter(|e| administration.as_ref().is_none_or(|a| e.sort_administration == *a))
            .filter(|e| terms.iter().all(|t| e.search.contains(t.as_str())))
            .collect()
    }

    /// Every entry's index in the order of `sort`, sorted once per snapshot.
    fn order(&self, sort: Sort) -> &[u32] {
        let slot = Column::ALL.iter().position(|c| *c == sort.column).unwrap_or(0) * 2 + usize::from(sort.descending);
        self.orders[slot].get_or_init(|| {
            let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
            order.sort_by(|&a, &b| sort.compare(&self.entries[a as usize], &self.entries[b as usize]));
            order
        })
    }
}

/// The observatory's filters (GET parameters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// One administration, as listed.
    pub administration: Option<String>,
    /// Words all found in the name, the administration or the id (accents and case ignored).
    pub q: Option<String>,
}

/// A sortable column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Nom,
    Administration,
    Volume,
    Avis,
    Satisfaction,
    Facilite,
    Clarte,
    Autonomie,
    EnLigne,
    FranceConnect,
    Mobile,
    Support,
    Disponibilite,
}

impl Column {
    pub const ALL: [Column; 13] = [
        Column::Nom,
        Column::Administration,
        Column::Volume,
        Column::Avis,
        Column::Satisfaction,
        Column::Facilite,
        Column::Clarte,
        Column::Autonomie,
        Column::EnLigne,
        Column::FranceConnect,
        Column::Mobile,
        Column::Support,
        Column::Disponibilite,
    ];

    /// The `tri` parameter's value.
    pub fn param(self) -> &'static str {
        match self {
            Column::Nom => "nom",
            Column::Administration => "administration",
            Column::Volume => "volume",
            Column::Avis => "avis",
            Column::Satisfaction => "satisfaction",
            Column::Facilite => "facilite",
            Column::Clarte => "clarte",
            Column::Autonomie => "autonomie",
            Column::EnLigne => "en_ligne",
            Column::FranceConnect => "franceconnect",
            Column::Mobile => "mobile",
            Column::Support => "support",
            Column::Disponibilite => "disponibilite",
        }
    }

    pub fn parse(s: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.param() == s)
    }

    /// The column's heading.
    pub fn label(self) -> &'static str {
        match self {
            Column::Nom => "Démarche",
            Column::Administration => "Administration",
            Column::Volume => "Volume annuel",
            Column::Avis => "Avis sur 12 mois",
            Column::Satisfaction => "Satisfaction",
            Column::Facilite => "Facilité",
            Column::Clarte => "Clarté du langage",
            Column::Autonomie => "Autonomie",
            Column::EnLigne => "Réalisable en ligne",
            Column::FranceConnect => "Identification FranceConnect",
            Column::Mobile => "Compatible mobile",
            Column::Support => "Support usager de qualité",
            Column::Disponibilite => "Disponibilité",
        }
    }

    /// The order a first click on the heading gives: names A to Z, figures best first.
    pub fn natural_descending(self) -> bool {
        !matches!(self, Column::Nom | Column::Administration)
    }

    /// The value compared, `None` when absent (always listed last).
    fn key(self, e: &Entry) -> Key<'_> {
        let yes_no = |v: Option<bool>| v.map(|b| Key::Num(if b { 1.0 } else { 0.0 })).unwrap_or(Key::None);
        match self {
            Column::Nom => Key::Text(&e.sort_name),
            Column::Administration if e.sort_administration.is_empty() => Key::None,
            Column::Administration => Key::Text(&e.sort_administration),
            Column::Volume => e.volume_annuel.map_or(Key::None, |v| Key::Num(v as f64)),
            Column::Avis => Key::Num(e.counts.n as f64),
            Column::Satisfaction => e.satisfaction().map_or(Key::None, Key::Num),
            Column::Facilite => e.facilite().map_or(Key::None, Key::Num),
            Column::Clarte => e.clarte().map_or(Key::None, Key::Num),
            Column::Autonomie => e.autonomie().map_or(Key::None, Key::Num),
            Column::EnLigne => e.criteria.en_ligne.map_or(Key::None, |v| {
                Key::Num(match v {
                    EnLigne::Oui => 2.0,
                    EnLigne::Partiel => 1.0,
                    EnLigne::Non => 0.0,
                })
            }),
            Column::FranceConnect => yes_no(e.criteria.franceconnect),
            Column::Mobile => yes_no(e.criteria.mobile),
            Column::Support => yes_no(e.criteria.support_qualite),
            Column::Disponibilite => yes_no(e.criteria.disponibilite),
        }
    }
}

enum Key<'a> {
    None,
    Num(f64),
    Text(&'a str),
}

/// A column and a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub column: Column,
    pub descending: bool,
}

impl Default for Sort {
    /// Volume, then avis (DESIGN §12).
    fn default() -> Sort {
        Sort { column: Column::Volume, descending: true }
    }
}

impl Sort {
    /// From the `tri` and `ordre` parameters; the default for anything else.
    pub fn parse(tri: Option<&str>, ordre: Option<&str>) -> Sort {
        match tri.and_then(Column::parse) {
            Some(column) => Sort {
                column,
                descending: match ordre {
                    Some("asc") => false,
                    Some("desc") => true,
                    _ => column.natural_descending(),
                },
            },
            None => Sort::default(),
        }
    }

    /// Missing values last whatever the direction; ties by avis (most first), then name, then id.
    fn compare(self, a: &Entry, b: &Entry) -> Ordering {
        let primary = match (self.column.key(a), self.column.key(b)) {
            (Key::None, Key::None) => Ordering::Equal,
            (Key::None, _) => Ordering::Greater,
            (_, Key::None) => Ordering::Less,
            (Key::Num(x), Key::Num(y)) => directed(x.total_cmp(&y), self.descending),
            (Key::Text(x), Key::Text(y)) => directed(x.cmp(y), self.descending),
            _ => Ordering::Equal,
        };
        primary
            .then_with(|| b.counts.n.cmp(&a.counts.n))
            .then_with(|| a.sort_name.cmp(&b.sort_name))
            .then_with(|| a.id.cmp(&b.id))
    }
}

fn directed(o: Ordering, descending: bool) -> Ordering {
    if descending {
        o.reverse()
    } else {
        o
    }
}

/// The snapshot in memory. A visitor never waits for a computation but the first of a day (the
/// window moved) or of a process: past [`SNAPSHOT_TTL`] the old snapshot is served while one
/// background task computes the next (one statement over a year of `avis_daily`: half a second
/// for 1,000 démarches with three sources each, see docs/BENCHMARKS.md).
#[derive(Default)]
pub struct Cache {
    current: arc_swap::ArcSwapOption<Snapshot>,
    /// A background refresh is under way.
    refreshing: Arc<std::sync::atomic::AtomicBool>,
    /// One inline computation at a time.
    computing: tokio::sync::Mutex<()>,
    /// Bumped by [`Cache::clear`]: a snapshot older than the last clear is stale.
    generation: std::sync::atomic::AtomicU64,
}

impl Cache {
    /// The snapshot for `today` (a Paris date).
    pub async fn get(
        self: &Arc<Self>,
        store: &Arc<dyn ConsoleStore>,
        today: NaiveDate,
    ) -> Result<Arc<Snapshot>, StoreError> {
        use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
        let window = Window::ending_before(today);
        if let Some(s) = self.current.load_full().filter(|s| s.window == window) {
            let fresh = s.computed_at.elapsed() < SNAPSHOT_TTL && s.generation == self.generation.load(Acquire);
            if !fresh && !self.refreshing.swap(true, AcqRel) {
                let (me, store) = (self.clone(), store.clone());
                tokio::spawn(async move {
                    if let Err(e) = me.compute(store.as_ref(), window).await {
                        tracing::warn!(error = %e, "observatory: refresh failed; serving the previous figures");
                    }
                    me.refreshing.store(false, Release);
                });
            }
            return Ok(s);
        }
        let _one = self.computing.lock().await;
        if let Some(s) = self.current.load_full().filter(|s| s.window == window) {
            return Ok(s);
        }
        self.compute(store.as_ref(), window).await
    }

    async fn compute(&self, store: &dyn ConsoleStore, window: Window) -> Result<Arc<Snapshot>, StoreError> {
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let rows = store.observatory(window.from, window.to).await?;
        let mut snapshot = Snapshot::new(window, &rows);
        snapshot.generation = generation;
        let fresh = Arc::new(snapshot);
        self.current.store(Some(fresh.clone()));
        Ok(fresh)
    }

    /// Marks the snapshot stale (a fiche changed): the next visitor triggers a refresh.
    pub fn clear(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::store::DemarcheDetails;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn row(id: i64, name: &str, admin: &str, volume: Option<i64>, n: i64, bien: i64) -> (DemarcheRow, Counts) {
        let demarche = DemarcheRow {
            id,
            details: DemarcheDetails {
                name: name.into(),
                administration: admin.into(),
                volume_annuel: volume,
                ..DemarcheDetails::default()
            },
            high_volume_approved: false,
            active: true,
            merged_into: None,
            created_at: chrono::Utc::now(),
        };
        let counts = Counts { n, satisfaction: [bien, 0, n - bien], ..Counts::default() };
        (demarche, counts)
    }

    fn ids(entries: &[&Entry]) -> Vec<i64> {
        entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn the_window_is_the_365_days_ending_yesterday() {
        let w = Window::ending_before(d("2026-12-02"));
        assert_eq!((w.from, w.to), (d("2025-12-02"), d("2026-12-01")));
        assert_eq!((w.to - w.from).num_days() + 1, 365);
        let leap = Window::ending_before(d("2028-03-01"));
        assert_eq!((leap.from, leap.to), (d("2027-03-02"), d("2028-02-29")));
    }

    #[test]
    fn status_and_published_indexes_follow_the_100_rule() {
        let s = Snapshot::new(
            Window::ending_before(d("2026-12-02")),
            &[row(1, "A", "", None, 0, 0), row(2, "B", "", None, 99, 99), row(3, "C", "", None, 100, 80)],
        );
        let st: Vec<_> = s.entries.iter().map(|e| (e.status(), e.satisfaction())).collect();
        assert_eq!(st, [(Status::AVenir, None), (Status::Insuffisant, None), (Status::Publie, Some(8.0))]);
        assert_eq!(s.entries[2].facilite(), None, "nobody answered the optional question");
    }

    #[test]
    fn unlisted_demarches_stay_out() {
        let mut inactive = row(1, "Inactive", "", None, 5, 5);
        inactive.0.active = false;
        let mut merged = row(2, "Doublon", "", None, 5, 5);
        merged.0.merged_into = Some(3);
        let waiting = row(4, "Gros volume", "", Some(HIGH_VOLUME + 1), 0, 0);
        let mut approved = row(5, "Gros volume validé", "", Some(HIGH_VOLUME + 1), 0, 0);
        approved.0.high_volume_approved = true;
        let zero = row(0, "Sans lien", "", None, 0, 0);
        let negative = row(-6, "Sans lien non plus", "", None, 0, 0);
        let s = Snapshot::new(
            Window::ending_before(d("2026-12-02")),
            &[negative, zero, inactive, merged, waiting, approved],
        );
        assert_eq!(s.entries.iter().map(|e| e.id).collect::<Vec<_>>(), [5]);
        assert!(s.entry(5).is_some() && s.entry(4).is_none());
    }

    #[test]
    fn a_negative_volume_is_not_declared() {
        let s = Snapshot::new(
            Window::ending_before(d("2026-12-02")),
            &[row(1, "A", "", Some(-5), 0, 0), row(2, "B", "", Some(0), 0, 0)],
        );
        assert_eq!(s.entries.iter().map(|e| e.volume_annuel).collect::<Vec<_>>(), [None, Some(0)]);
    }

    #[test]
    fn filters_and_sorts() {
        let s = Snapshot::new(
            Window::ending_before(d("2026-12-02")),
            &[
                row(1, "Carte grise", "ANTS", Some(1_000), 150, 150),
                row(2, "Permis de conduire", "ANTS", Some(5_000), 120, 30),
                row(3, "Aide au logement", "Caisse d'allocations familiales", None, 200, 100),
                row(4, "Élection : inscription", "Ministère de l'Intérieur", Some(5_000), 0, 0),
            ],
        );
        assert_eq!(s.administrations, ["ANTS", "Caisse d'allocations familiales", "Ministère de l'Intérieur"]);
        // Default: volume (most first, none last), then avis.
        assert_eq!(ids(&s.select(&Filter::default(), Sort::default())), [2, 4, 1, 3]);
        let by = |tri: &str, ordre: Option<&str>| ids(&s.select(&Filter::default(), Sort::parse(Some(tri), ordre)));
        assert_eq!(by("satisfaction", None), [1, 3, 2, 4], "best first, unpublished last");
        assert_eq!(by("satisfaction", Some("asc")), [2, 3, 1, 4], "still last when ascending");
        assert_eq!(by("nom", None), [3, 1, 4, 2], "accents ignored");
        assert_eq!(by("avis", Some("asc")), [4, 2, 1, 3]);
        assert_eq!(Sort::parse(Some("n'importe"), Some("asc")), Sort::default());
        let f = |administration: Option<&str>, q: Option<&str>| {
            ids(&s.select(
                &Filter { administration: administration.map(String::from), q: q.map(String::from) },
                Sort::default(),
            ))
        };
        assert_eq!(f(Some("ANTS"), None), [2, 1]);
        assert_eq!(f(Some("ants"), Some("CARTE")), [1]);
        assert_eq!(f(None, Some("election")), [4], "keyword without accent");
        assert_eq!(f(None, Some("3")), [3], "by id");
        assert_eq!(f(None, Some("inconnue")), Vec::<i64>::new());
    }
}
