//! The démarche catalogue, held in memory so the hot path never asks the store whether a
//! démarche exists. Refreshed from the store when this process changes it and every 30 s for
//! changes made by other replicas.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

/// Declared avis a year above which a démarche opens to citizens only once an administrator
/// approves it.
pub const HIGH_VOLUME: i64 = 5_000_000;

/// A démarche as the catalogue knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demarche {
    pub id: i64,
    pub name: String,
    pub administration: String,
    /// Expected avis a year, as declared.
    pub volume_annuel: Option<i64>,
    /// Démarches over [`HIGH_VOLUME`] a year open only once an administrator approves.
    pub high_volume_approved: bool,
    /// Inactive démarches answer 404 on their form links.
    pub active: bool,
    /// Merged by an administrator into this other démarche (DESIGN §10, Administration).
    pub merged_into: Option<i64>,
    /// The privacy notice its porteurs filled in on the « Fiche » (DESIGN §13); empty: the
    /// operator's is shown.
    pub privacy: PrivacyNotice,
}

/// Who answers for the data citizens give on a form (DESIGN §13).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrivacyNotice {
    /// The data controller.
    pub controller: String,
    /// How to reach its data protection officer (an address, a URL, a postal address).
    pub dpo: String,
}

impl Demarche {
    /// Declared over [`HIGH_VOLUME`] and not yet approved: closed to citizens.
    pub fn awaiting_approval(&self) -> bool {
        !self.high_volume_approved && self.volume_annuel.is_some_and(|v| v > HIGH_VOLUME)
    }
}

/// What a citizen's link to a démarche id leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The démarche that shows its form and receives the vote: the one asked for, or the
    /// target of a merged one (its `id` then differs from the id asked for).
    Open(Arc<Demarche>),
    /// Known and reachable, but high-volume and not yet approved (itself, or its target).
    AwaitingApproval,
    /// Unknown, inactive, or merged into a démarche that cannot take votes.
    Unknown,
}

/// Snapshot-swapped map: readers take a lock-free snapshot; a refresh replaces it whole.
#[derive(Default)]
pub struct Catalogue {
    by_id: ArcSwap<HashMap<i64, Arc<Demarche>>>,
}

impl Catalogue {
    /// A catalogue holding `demarches`.
    pub fn new(demarches: Vec<Demarche>) -> Catalogue {
        let c = Catalogue::default();
        c.replace(demarches);
        c
    }

    /// Replaces the whole catalogue.
    pub fn replace(&self, demarches: Vec<Demarche>) {
        let map = demarches.into_iter().map(|d| (d.id, Arc::new(d))).collect();
        self.by_id.store(Arc::new(map));
    }

    /// Where a citizen's link to `id` leads (the link's key is the caller's to check, always
    /// against `id`). A merged démarche leads to its target, one hop only (a merge re-points the
    /// démarches merged before), whatever its own `active` flag says; the target must be active
    /// and not merged itself. An ordinary démarche costs one lookup and an `Arc` clone.
    pub fn for_citizens(&self, id: i64) -> Lookup {
        let map = self.by_id.load();
        let Some(asked) = map.get(&id) else { return Lookup::Unknown };
        let open = match asked.merged_into {
            None if asked.active => asked,
            None => return Lookup::Unknown,
            Some(target) => match map.get(&target) {
                Some(t) if t.active && t.merged_into.is_none() && t.id != id => t,
                _ => return Lookup::Unknown,
            },
        };
        if open.awaiting_approval() {
            Lookup::AwaitingApproval
        } else {
            Lookup::Open(open.clone())
        }
    }

    /// Number of démarches known, active or not.
    pub fn len(&self) -> usize {
        self.by_id.load().len()
    }

    /// Whether the catalogue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: i64, active: bool) -> Demarche {
        Demarche {
            id,
            name: format!("D{id}"),
            administration: String::new(),
            volume_annuel: None,
            high_volume_approved: false,
            active,
            merged_into: None,
            privacy: PrivacyNotice::default(),
        }
    }

    fn merged(id: i64, into: i64) -> Demarche {
        Demarche { merged_into: Some(into), ..d(id, false) }
    }

    fn volume(id: i64, v: i64, approved: bool) -> Demarche {
        Demarche { volume_annuel: Some(v), high_volume_approved: approved, ..d(id, true) }
    }

    fn open_id(c: &Catalogue, id: i64) -> Option<i64> {
        match c.for_citizens(id) {
            Lookup::Open(d) => Some(d.id),
            _ => None,
        }
    }

    #[test]
    fn only_active_are_reachable_and_replace_swaps() {
        let c = Catalogue::new(vec![d(1, true), d(2, false)]);
        assert_eq!(open_id(&c, 1), Some(1));
        assert_eq!(c.for_citizens(2), Lookup::Unknown);
        assert_eq!(c.for_citizens(3), Lookup::Unknown);
        c.replace(vec![d(2, true)]);
        assert_eq!(c.for_citizens(1), Lookup::Unknown);
        match c.for_citizens(2) {
            Lookup::Open(d) => assert_eq!(d.name, "D2"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn merged_leads_to_its_target_one_hop_only() {
        let c = Catalogue::new(vec![
            d(1, true),
            merged(2, 1),
            // Merged into a merged one (merges re-point chains, so this is stale): not followed.
            merged(3, 2),
            // Target inactive, unknown, or itself.
            d(4, false),
            merged(5, 4),
            merged(6, 99),
            merged(7, 7),
            // Still flagged active: merged wins.
            Demarche { merged_into: Some(1), ..d(8, true) },
        ]);
        assert_eq!(open_id(&c, 2), Some(1));
        assert_eq!(open_id(&c, 8), Some(1));
        for id in [3, 5, 6, 7] {
            assert_eq!(c.for_citizens(id), Lookup::Unknown, "{id}");
        }
    }

    #[test]
    fn high_volume_waits_for_approval() {
        let c = Catalogue::new(vec![
            volume(1, HIGH_VOLUME, false),
            volume(2, HIGH_VOLUME + 1, false),
            volume(3, HIGH_VOLUME + 1, true),
            merged(4, 2),
            merged(5, 3),
            Demarche { volume_annuel: Some(HIGH_VOLUME + 1), ..d(6, false) },
            // The duplicate's own volume does not matter, only its target's.
            Demarche { volume_annuel: Some(i64::MAX), ..merged(7, 1) },
        ]);
        assert_eq!(open_id(&c, 1), Some(1), "at the threshold: open");
        assert_eq!(c.for_citizens(2), Lookup::AwaitingApproval);
        assert_eq!(open_id(&c, 3), Some(3));
        assert_eq!(c.for_citizens(4), Lookup::AwaitingApproval, "a merged démarche's target waits");
        assert_eq!(open_id(&c, 5), Some(3));
        assert_eq!(c.for_citizens(6), Lookup::Unknown, "inactive comes first");
        assert_eq!(open_id(&c, 7), Some(1));
    }
}
