//! The order in which to try a tenant's replicas for a read: the session's sticky replica
//! first (read-your-writes reads never go back in time), the rest fewest readers per
//! weight first (ties in random order).

use rand::seq::SliceRandom;

/// An eligible replica: its index, weight, and the sessions reading from it now (the
/// asking session not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub index: usize,
    pub weight: u32,
    pub readers: u32,
}

/// Eligible replicas in the order to try them. Fewest readers per weight first: a weighted
/// random choice put 6 or more of 8 sessions on one of two replicas almost one time in
/// three (docs/design.md, replica choice). Counted, sessions split as evenly as the weights
/// allow, and a session choosing again (itself not counted) stays unless its replica is
/// busier than another. One allocation: the candidates are ordered in place.
pub fn replica_order(
    candidates: impl Iterator<Item = Candidate>,
    sticky: Option<usize>,
) -> Vec<Candidate> {
    let mut order: Vec<Candidate> = candidates.collect();
    let mut start = 0;
    if let Some(pos) = sticky.and_then(|s| order.iter().position(|c| c.index == s)) {
        order.swap(0, pos);
        start = 1;
    }
    let rest = &mut order[start..];
    rest.shuffle(&mut rand::rng());
    // Stable: equally loaded replicas keep the random order.
    rest.sort_by_key(busyness);
    order
}

/// Readers per weight, as a fraction compared without division: the load a candidate would
/// have with the asking session added, over its weight (0 counts as 1). u128: a u32 load
/// times a u32 weight, times the other's weight, never overflows.
fn busyness(c: &Candidate) -> Fraction {
    Fraction {
        num: u64::from(c.readers) + 1,
        den: u64::from(c.weight.max(1)),
    }
}

#[derive(Clone, Copy)]
struct Fraction {
    num: u64,
    den: u64,
}

impl Ord for Fraction {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (u128::from(self.num) * u128::from(other.den))
            .cmp(&(u128::from(other.num) * u128::from(self.den)))
    }
}

impl PartialOrd for Fraction {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Fraction {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Fraction {}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, weight: u32, readers: u32) -> Candidate {
        Candidate {
            index,
            weight,
            readers,
        }
    }

    fn first(cands: &[Candidate], sticky: Option<usize>) -> usize {
        replica_order(cands.iter().copied(), sticky)[0].index
    }

    #[test]
    fn huge_weights_and_loads_do_not_overflow() {
        let cands = [
            c(0, u32::MAX, u32::MAX),
            c(1, 1 << 31, 0),
            c(2, u32::MAX, 7),
        ];
        assert_eq!(first(&cands, None), 1);
    }

    #[test]
    fn the_replica_with_fewest_readers_per_weight_comes_first() {
        assert_eq!(first(&[c(0, 1, 3), c(1, 1, 2)], None), 1);
        // Weight 3 against 1: three readers there weigh as one here.
        assert_eq!(first(&[c(0, 1, 0), c(1, 3, 1)], None), 1);
        assert_eq!(first(&[c(0, 1, 0), c(1, 3, 3)], None), 0);
        // A weight of 0 counts as 1.
        assert_eq!(first(&[c(0, 0, 0), c(1, 1, 1)], None), 0);
    }

    #[test]
    fn sessions_choosing_one_after_another_split_by_weight() {
        // Each choice seats a session: 8 sessions over weights 1 and 3 split 2/6.
        let mut readers = [0u32; 2];
        for _ in 0..8 {
            let cands = [c(0, 1, readers[0]), c(1, 3, readers[1])];
            readers[first(&cands, None)] += 1;
        }
        assert_eq!(readers, [2, 6]);
    }

    #[test]
    fn ties_are_broken_at_random() {
        let mut seen = [0usize; 3];
        for _ in 0..300 {
            seen[first(&[c(0, 2, 1), c(1, 2, 1), c(2, 2, 1)], None)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 30), "{seen:?}");
    }

    #[test]
    fn the_sticky_replica_comes_first_and_every_candidate_once() {
        for _ in 0..100 {
            let o = replica_order([c(0, 5, 0), c(3, 5, 9), c(7, 5, 1)].into_iter(), Some(3));
            let ids: Vec<usize> = o.iter().map(|c| c.index).collect();
            assert_eq!(ids, [3, 0, 7]);
        }
    }

    #[test]
    fn a_sticky_replica_that_is_not_eligible_is_ignored() {
        let o = replica_order([c(0, 1, 4)].into_iter(), Some(2));
        assert_eq!(o, [c(0, 1, 4)]);
    }
}
