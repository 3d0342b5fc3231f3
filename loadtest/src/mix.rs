//! The request kinds and the weighted mix given by `--mix button=40,vote=20,…`.

use std::fmt;
use std::str::FromStr;

/// What one request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `GET /static/bouton-*.svg`, nothing else: a CDN miss.
    Button,
    /// The same with `If-None-Match` of the ETag fetched at start: a revalidation, 304.
    Button304,
    /// The same with `Accept-Encoding: gzip`.
    ButtonGzip,
    /// `GET` of a signed form link.
    Form,
    /// `POST` of a valid vote.
    Vote,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [Kind::Button, Kind::Button304, Kind::ButtonGzip, Kind::Form, Kind::Vote];

    /// The name used in `--mix`, reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Button => "button",
            Kind::Button304 => "button304",
            Kind::ButtonGzip => "button-gzip",
            Kind::Form => "form",
            Kind::Vote => "vote",
        }
    }

    /// Index in [`Kind::ALL`], for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Relative weights of the kinds; a request is of kind k with probability weight(k) / total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: [u64; Kind::ALL.len()],
}

/// The mix used when `--mix` is not given.
pub const DEFAULT_MIX: &str = "button=40,button304=20,button-gzip=10,form=10,vote=20";

impl Mix {
    /// The weight of `kind` (0 when absent).
    pub fn weight(&self, kind: Kind) -> u64 {
        self.weights[kind.index()]
    }

    /// Whether any request of `kind` will be sent.
    pub fn contains(&self, kind: Kind) -> bool {
        self.weight(kind) > 0
    }

    /// Sum of the weights; never 0 for a parsed mix.
    pub fn total(&self) -> u64 {
        self.weights.iter().sum()
    }

    /// The kind for `roll` in `0..total()`: kinds take consecutive ranges of rolls in
    /// [`Kind::ALL`] order, each as wide as its weight.
    pub fn pick(&self, roll: u64) -> Kind {
        let mut upper = 0;
        for kind in Kind::ALL {
            upper += self.weight(kind);
            if roll < upper {
                return kind;
            }
        }
        // Only reached for a roll out of range; the last weighted kind is as good as any.
        Kind::ALL.into_iter().rev().find(|k| self.contains(*k)).unwrap_or(Kind::Button)
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `kind=weight` pairs separated by commas; kinds may be left out (weight 0), not repeated.
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut weights = [0u64; Kind::ALL.len()];
        let mut seen = [false; Kind::ALL.len()];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) =
                part.split_once('=').ok_or_else(|| format!("{part:?}: expected kind=weight, e.g. vote=20"))?;
            let kind = Kind::from_name(name.trim()).ok_or_else(|| {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("{:?}: unknown kind (expected one of {})", name.trim(), names.join(", "))
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number from 0 to {}", u32::MAX))?;
            if std::mem::replace(&mut seen[kind.index()], true) {
                return Err(format!("{kind} is given twice"));
            }
            weights[kind.index()] = u64::from(weight);
        }
        let mix = Mix { weights };
        if mix.total() == 0 {
            return Err(format!("{s:?}: at least one kind needs a weight above 0"));
        }
        Ok(mix)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            Kind::ALL.iter().filter(|k| self.contains(**k)).map(|k| format!("{k}={}", self.weight(*k))).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_and_round_trips() {
        let mix: Mix = DEFAULT_MIX.parse().unwrap();
        assert_eq!(mix.weight(Kind::Button), 40);
        assert_eq!(mix.weight(Kind::ButtonGzip), 10);
        assert_eq!(mix.total(), 100);
        assert_eq!(mix.to_string(), DEFAULT_MIX);
        let spaced: Mix = " vote = 3 , form=1 ,".parse().unwrap();
        assert_eq!(spaced.to_string(), "form=1,vote=3");
        assert!(!spaced.contains(Kind::Button));
    }

    #[test]
    fn refuses_bad_mixes() {
        for bad in ["", "button", "button=x", "button=-1", "bouton=1", "vote=1,vote=2", "vote=0", "vote=99999999999"] {
            assert!(bad.parse::<Mix>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn pick_follows_the_weights() {
        let mix: Mix = "button=2,form=0,vote=3".parse().unwrap();
        let picks: Vec<Kind> = (0..mix.total()).map(|r| mix.pick(r)).collect();
        assert_eq!(picks, [Kind::Button, Kind::Button, Kind::Vote, Kind::Vote, Kind::Vote]);
        assert_eq!(mix.pick(1000), Kind::Vote, "out-of-range rolls still give a weighted kind");
    }
}
