//! The vote: what a citizen answered, as the buffer, the flusher and the stores carry it.
//!
//! Kept small and allocation-free except for the comment, because up to `--buffer-max-votes`
//! of them sit in memory at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
pub use snippet::Lang;
use uuid::Uuid;

/// A question with one answer among three, scored 10 / 5 / 0 (DESIGN §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// « Très bien », « Facile », « Clair ».
    Good,
    /// « Moyen », « Ni facile ni difficile », « Moyennement clair ».
    Medium,
    /// « Pas bien », « Difficile », « Pas clair ».
    Bad,
}

impl Level {
    /// All levels, best first.
    pub const ALL: [Level; 3] = [Level::Good, Level::Medium, Level::Bad];

    /// Index in [`Level::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The three single-choice questions and their stored values (DESIGN §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    /// « De façon générale, comment s'est passée cette démarche ? » (required)
    Satisfaction,
    /// « La démarche était-elle facile ? »
    Facilite,
    /// « Le langage employé était-il clair ? »
    Clarte,
}

impl Question {
    /// Form field and column name.
    pub fn field(self) -> &'static str {
        match self {
            Question::Satisfaction => "satisfaction",
            Question::Facilite => "facilite",
            Question::Clarte => "clarte",
        }
    }

    /// Stored values, in [`Level::ALL`] order.
    pub fn values(self) -> [&'static str; 3] {
        match self {
            Question::Satisfaction => ["bien", "moyen", "pas-bien"],
            Question::Facilite => ["facile", "moyen", "difficile"],
            Question::Clarte => ["clair", "moyen", "pas-clair"],
        }
    }

    /// The stored value of `level` for this question.
    pub fn value(self, level: Level) -> &'static str {
        self.values()[level.index()]
    }

    /// Parses a stored value.
    pub fn parse(self, value: &str) -> Option<Level> {
        let v = self.values();
        Level::ALL.into_iter().find(|l| v[l.index()] == value)
    }
}

/// « Avez-vous eu besoin d'aide ? »: several answers, stored as a bitmask (bit i = `AIDE[i]`).
pub const AIDE: [&str; 6] = ["aucune", "proche", "association", "agent", "internet", "autre"];

/// Bit of an `aide` value in the mask.
pub fn aide_bit(value: &str) -> Option<u8> {
    AIDE.iter().position(|v| *v == value).map(|i| 1 << i)
}

/// Maximum length of a comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// An `nd_source` label, `[a-z0-9-]{1,32}`, stored inline so a vote needs no allocation for it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    len: u8,
    bytes: [u8; 32],
}

impl Source {
    /// The label if valid (see [`snippet::is_valid_source`]).
    pub fn new(label: &str) -> Option<Source> {
        if !snippet::is_valid_source(label) {
            return None;
        }
        let mut bytes = [0u8; 32];
        bytes[..label.len()].copy_from_slice(label.as_bytes());
        Some(Source { len: label.len() as u8, bytes })
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        // Only built from validated ASCII in `new`.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or(snippet::DEFAULT_SOURCE)
    }
}

impl Default for Source {
    fn default() -> Self {
        Source::new(snippet::DEFAULT_SOURCE).unwrap_or_else(|| unreachable!())
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Source::new(&s).ok_or_else(|| serde::de::Error::custom("invalid source label"))
    }
}

/// What a citizen answered, once validated.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Answers {
    /// Required in a valid vote; `None` only while a form is being re-rendered.
    pub satisfaction: Option<Level>,
    pub facilite: Option<Level>,
    pub clarte: Option<Level>,
    /// Bitmask over [`AIDE`].
    pub aide: u8,
    /// Trimmed, CRLF normalised, at most [`MAX_COMMENT_CHARS`] characters; `None` when empty.
    pub commentaire: Option<Box<str>>,
}

/// An accepted vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// UUIDv7, assigned on acceptance: the idempotency key of every store write.
    pub id: Uuid,
    pub demarche_id: i64,
    /// Milliseconds since the Unix epoch, UTC.
    pub received_at_ms: i64,
    pub source: Source,
    pub satisfaction: Level,
    pub facilite: Option<Level>,
    pub clarte: Option<Level>,
    pub aide: u8,
    pub commentaire: Option<Box<str>>,
    /// The language of the form it was given in (DESIGN §17). Journal and spill lines written
    /// before languages existed have none: French.
    #[serde(default, with = "langue")]
    pub langue: Lang,
    /// The journal segment holding this vote (`--journal`), 0 when none: the segment can be
    /// deleted once every vote in it is stored.
    #[serde(skip)]
    pub journal_segment: u32,
}

impl Vote {
    /// A vote accepted now, with a fresh UUIDv7 whose timestamp is `received_at`.
    /// French until [`Vote::given_in`] says otherwise.
    pub fn accept(demarche_id: i64, source: Source, satisfaction: Level, answers: Answers) -> Vote {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, now.as_secs(), now.subsec_nanos());
        Vote {
            id: Uuid::new_v7(ts),
            demarche_id,
            received_at_ms: now.as_millis() as i64,
            source,
            satisfaction,
            facilite: answers.facilite,
            clarte: answers.clarte,
            aide: answers.aide,
            commentaire: answers.commentaire,
            langue: Lang::Fr,
            journal_segment: 0,
        }
    }

    /// The vote, given in the form of `langue`.
    pub fn given_in(mut self, langue: Lang) -> Vote {
        self.langue = langue;
        self
    }

    /// The calendar day (Europe/Paris) the vote counts for in `avis_daily`.
    pub fn day(&self) -> chrono::NaiveDate {
        paris_day(self.received_at_ms)
    }
}

/// `langue` as its code in the journal and spill files (`"fr"`, `"ar"`…).
mod langue {
    use serde::{Deserialize, Deserializer, Serializer};
    use snippet::Lang;

    pub fn serialize<S: Serializer>(lang: &Lang, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(lang.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Lang, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Lang::from_code(&code).ok_or_else(|| serde::de::Error::custom(format!("unknown langue {code:?}")))
    }
}

/// Midnight in Paris starting `day`, as a UTC instant (the first instant of [`paris_day`]'s day).
pub fn paris_midnight(day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    chrono_tz::Europe::Paris
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| chrono::Utc.from_utc_datetime(&midnight))
}

/// The Europe/Paris calendar day of a UTC instant in milliseconds. Days are French days because
/// porteurs read their dashboards in French time: a vote at 00:30 in Paris belongs to that day.
pub fn paris_day(ms: i64) -> chrono::NaiveDate {
    use chrono::TimeZone;
    chrono_tz::Europe::Paris.timestamp_millis_opt(ms).single().map(|t| t.date_naive()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_values_round_trip() {
        for q in [Question::Satisfaction, Question::Facilite, Question::Clarte] {
            for l in Level::ALL {
                assert_eq!(q.parse(q.value(l)), Some(l));
            }
            assert_eq!(q.parse("nope"), None);
        }
        assert_eq!(Question::Satisfaction.parse("pas-bien"), Some(Level::Bad));
        assert_eq!(Question::Clarte.parse("bien"), None);
    }

    #[test]
    fn aide_bits_are_distinct() {
        let all: u8 = AIDE.iter().map(|v| aide_bit(v).unwrap()).fold(0, |a, b| {
            assert_eq!(a & b, 0);
            a | b
        });
        assert_eq!(all, 0b11_1111);
        assert_eq!(aide_bit("rien"), None);
    }

    #[test]
    fn source_inline() {
        assert_eq!(Source::default().as_str(), "button");
        assert_eq!(Source::new("guichet-2").unwrap().as_str(), "guichet-2");
        assert!(Source::new("Pas Bon").is_none());
    }

    #[test]
    fn langue_is_written_as_its_code_and_french_when_missing() {
        let mut v = Vote::accept(1, Source::default(), Level::Good, Answers::default()).given_in(Lang::Ar);
        let line = serde_json::to_string(&v).unwrap();
        assert!(line.contains(r#""langue":"ar""#), "{line}");
        assert_eq!(serde_json::from_str::<Vote>(&line).unwrap(), v);
        let old = line.replace(r#","langue":"ar""#, "");
        assert!(!old.contains("langue"));
        v.langue = Lang::Fr;
        assert_eq!(serde_json::from_str::<Vote>(&old).unwrap(), v, "a line from before languages is French");
        assert!(serde_json::from_str::<Vote>(&line.replace(r#""ar""#, r#""xx""#)).is_err());
    }

    #[test]
    fn paris_days() {
        // 2026-01-01T23:30:00Z is already 2 January in Paris (UTC+1 in winter).
        assert_eq!(paris_day(1_767_310_200_000).to_string(), "2026-01-02");
        // 2026-07-01T21:59:00Z is still 1 July in Paris (UTC+2 in summer).
        assert_eq!(paris_day(1_782_943_140_000).to_string(), "2026-07-01");
    }

    #[test]
    fn accepted_vote_id_carries_its_time() {
        let v = Vote::accept(1, Source::default(), Level::Good, Answers::default());
        let (secs, _) = v.id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64, v.received_at_ms / 1000);
        assert_eq!(v.id.get_version_num(), 7);
    }
}
