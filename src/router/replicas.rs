//! The order in which to try a tenant's replicas for a read: the session's sticky replica
//! first (read-your-writes reads never go back in time), the rest in weighted random order.

use rand::Rng;

/// Eligible replicas as (index, weight), in the order to try them. One allocation: the
/// candidates are ordered in place.
pub fn replica_order(
    candidates: impl Iterator<Item = (usize, u32)>,
    sticky: Option<usize>,
) -> Vec<(usize, u32)> {
    let mut order: Vec<(usize, u32)> = candidates.map(|(i, w)| (i, w.max(1))).collect();
    let mut start = 0;
    if let Some(pos) = sticky.and_then(|s| order.iter().position(|(i, _)| *i == s)) {
        order.swap(0, pos);
        start = 1;
    }
    let mut rng = rand::rng();
    for k in start..order.len() {
        let pick = k + weighted_pick(&order[k..], &mut rng);
        order.swap(k, pick);
    }
    order
}

/// An index into `c`, chosen with probability proportional to its weight. Sums are u64:
/// a u32 weight may be as large as the type allows, and several of them overflow a u32.
fn weighted_pick(c: &[(usize, u32)], rng: &mut impl Rng) -> usize {
    if c.len() < 2 {
        return 0;
    }
    let total: u64 = c.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (idx, (_, w)) in c.iter().enumerate() {
        let w = u64::from(*w);
        if x < w {
            return idx;
        }
        x -= w;
    }
    c.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_weights_do_not_overflow() {
        let c = [(0, u32::MAX), (1, 1 << 31), (2, u32::MAX)];
        let mut rng = rand::rng();
        for _ in 0..1000 {
            assert!(weighted_pick(&c, &mut rng) < 3);
        }
    }

    #[test]
    fn weights_are_respected() {
        // A weight of 0 counts as 1, so compare 1 against a heavy one.
        let mut first = [0usize; 2];
        for _ in 0..2000 {
            let o = replica_order([(0, 1), (1, 99)].into_iter(), None);
            first[o[0].0] += 1;
        }
        assert!(first[1] > 1800, "{first:?}");
    }

    #[test]
    fn the_sticky_replica_comes_first_and_every_candidate_once() {
        for _ in 0..100 {
            let o = replica_order([(0, 5), (3, 5), (7, 5)].into_iter(), Some(3));
            assert_eq!(o[0].0, 3);
            let mut ids: Vec<usize> = o.iter().map(|c| c.0).collect();
            ids.sort_unstable();
            assert_eq!(ids, [0, 3, 7]);
        }
    }

    #[test]
    fn a_sticky_replica_that_is_not_eligible_is_ignored() {
        let o = replica_order([(0, 1)].into_iter(), Some(2));
        assert_eq!(o, [(0, 1)]);
    }
}
