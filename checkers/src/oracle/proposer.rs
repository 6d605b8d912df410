//! Proposer rotation of protocol.md §1: the proposer of `(h, r)` is
//! `roster[(h + r) mod n]` (0-based), so it moves on after every block and every
//! failed round.

/// The 0-based roster index of the proposer of `(height, round)` in a roster of
/// `n` entries; `None` for an empty roster.
pub fn proposer_index(height: u64, round: u32, n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    // u128: h + r cannot overflow, whatever a dump holds.
    let i = (u128::from(height) + u128::from(round)) % n as u128;
    Some(i as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_with_height_and_round() {
        // protocol.md §1: roster[(h + r) mod n], 0-based.
        assert_eq!(proposer_index(0, 0, 4), Some(0));
        assert_eq!(proposer_index(1, 0, 4), Some(1));
        assert_eq!(proposer_index(1, 1, 4), Some(2));
        assert_eq!(proposer_index(3, 2, 4), Some(1));
        assert_eq!(proposer_index(7, 0, 7), Some(0));
        assert_eq!(proposer_index(u64::MAX, u32::MAX, 5), {
            Some(((u128::from(u64::MAX) + u128::from(u32::MAX)) % 5) as usize)
        });
        assert_eq!(proposer_index(5, 0, 0), None);
    }

    #[test]
    fn every_member_proposes_once_per_n_heights() {
        // "The proposer moves on after every block": n consecutive heights at
        // round 0 visit every index exactly once.
        for n in 1..=9usize {
            for start in [1u64, 17, 1000] {
                let mut seen: Vec<usize> = (start..start + n as u64)
                    .filter_map(|h| proposer_index(h, 0, n))
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n {n} from {start}");
            }
        }
    }

    #[test]
    fn a_failed_round_moves_to_the_next_member() {
        for h in 1..20u64 {
            for r in 0..6u32 {
                let here = proposer_index(h, r, 5).map(|i| (i + 1) % 5);
                assert_eq!(proposer_index(h, r + 1, 5), here);
            }
        }
    }
}
