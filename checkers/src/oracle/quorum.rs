//! The quorum of protocol.md §1: `q(n) = floor(2n/3) + 1`, the smallest number of
//! votes of which any two sets intersect in more than a third of `n`.

/// `q(n) = floor(2n/3) + 1` (protocol.md §1: n=4 → 3, n=5 → 4, n=6 → 5, n=7 → 5).
pub fn quorum(n: usize) -> usize {
    n * 2 / 3 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_spec_table() {
        // protocol.md §1, the `quorum q(n)` row.
        for (n, q) in [(4, 3), (5, 4), (6, 5), (7, 5)] {
            assert_eq!(quorum(n), q, "q({n})");
        }
        // Seed 003 [0104]: with six nodes, "no less than 2×6/3+1 = 5" precommits.
        assert_eq!(quorum(6), 5);
    }

    #[test]
    fn is_the_least_count_above_two_thirds() {
        // An independent reading of the formula: q is the smallest integer with
        // 3q > 2n, so two quorums always share more than n/3 members.
        for n in 1..=300usize {
            let q = quorum(n);
            assert!(3 * q > 2 * n, "q({n}) = {q} is not above 2n/3");
            assert!(3 * (q - 1) <= 2 * n, "q({n}) = {q} is not the least");
            assert!(q <= n, "q({n}) = {q} exceeds n");
        }
    }
}
