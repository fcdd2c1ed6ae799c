//! Per-name entries made on first use and dropped again when nobody holds them: tenants an
//! open cluster makes come from what clients send (`USE wf_<anything>`), so the maps keyed by
//! tenant must not grow with every name ever tried.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

/// Entries below this many are never pruned: configs name up to this many tenants cheaply.
const PRUNE_FROM: usize = 4096;

/// A map whose idle entries are pruned whenever it doubles since the last prune.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, Arc<V>>,
    /// The size at which the next insert prunes.
    limit: usize,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded {
            map: HashMap::new(),
            limit: PRUNE_FROM,
        }
    }
}

impl<K: Eq + Hash, V: Default> Bounded<K, V> {
    pub fn get<Q>(&self, key: &Q) -> Option<&Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    /// The entry for `key`, made if missing. Making one in a full map first drops every
    /// entry no session holds for which `idle` says it carries nothing worth keeping
    /// (`idle` is asked of those only, and each it answers true for is dropped).
    pub fn entry(&mut self, key: K, idle: impl Fn(&K, &V) -> bool) -> Arc<V> {
        if !self.map.contains_key(&key) && self.map.len() >= self.limit {
            self.map
                .retain(|k, v| Arc::strong_count(v) > 1 || !idle(k, v));
            self.limit = PRUNE_FROM.max(self.map.len() * 2);
        }
        Arc::clone(self.map.entry(key).or_default())
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &Arc<V>)> {
        self.map.iter()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_entries_go_held_and_busy_ones_stay() {
        let mut m: Bounded<usize, u8> = Bounded::default();
        let held = m.entry(0, |_, _| true);
        for k in 1..PRUNE_FROM {
            m.entry(k, |_, _| true);
        }
        assert_eq!(m.len(), PRUNE_FROM);
        m.entry(PRUNE_FROM, |_, _| true);
        assert_eq!(m.len(), 2, "only the held entry and the new one stay");
        assert!(m.get(&0).is_some());
        drop(held);
        // Entries that carry something worth keeping stay even when no one holds them.
        let mut m: Bounded<usize, u8> = Bounded::default();
        for k in 0..PRUNE_FROM * 3 {
            m.entry(k, |_, _| false);
        }
        assert_eq!(m.len(), PRUNE_FROM * 3);
    }
}
