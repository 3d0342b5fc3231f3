//! The démarche catalogue, held in memory so the hot path never asks the store whether a
//! démarche exists. Refreshed from the store when this process changes it and every 30 s for
//! changes made by other replicas.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

/// A démarche as the catalogue knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demarche {
    pub id: i64,
    pub name: String,
    pub administration: String,
    /// Expected avis a year, as declared.
    pub volume_annuel: Option<i64>,
    /// Démarches over 5,000,000 a year get their code only once an administrator approves.
    pub high_volume_approved: bool,
    /// Inactive démarches answer 404 on their form links.
    pub active: bool,
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

    /// The démarche `id` if it exists and is active: the only ones citizens can reach.
    pub fn active(&self, id: i64) -> Option<Arc<Demarche>> {
        self.by_id.load().get(&id).filter(|d| d.active).cloned()
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
        }
    }

    #[test]
    fn only_active_are_reachable_and_replace_swaps() {
        let c = Catalogue::new(vec![d(1, true), d(2, false)]);
        assert!(c.active(1).is_some());
        assert!(c.active(2).is_none());
        assert!(c.active(3).is_none());
        c.replace(vec![d(2, true)]);
        assert!(c.active(1).is_none());
        assert_eq!(c.active(2).unwrap().name, "D2");
        assert_eq!(c.len(), 1);
    }
}
