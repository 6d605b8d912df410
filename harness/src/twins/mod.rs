//! Twins mode (issue 12; Bano, Sonnino, Chursin, Perelman, Malkhi: "Twins: BFT
//! Systems Made Robust", OPODIS 2021): one validator (or more, beyond the fault
//! model) runs as two processes with one key, and a scenario says, phase by phase,
//! which processes can talk and which copy of each twinned validator may propose.
//! Scenarios are enumerated in a fixed order and, when there are more than the
//! bound, sampled with a seed ([`sample`]), so scenario `i` of a search is the same
//! whenever it is asked for; each is run on the simulator as an explicit fault
//! schedule ([`schedule`]) that `test.json` records, so `rollcall replay`
//! reproduces it.
//!
//! Tendermint's rounds are timer-driven and its proposer is fixed by `(h, r)`
//! (protocol.md §1), so a phase is a slice of simulated time one failed round 0
//! long ([`phase_ns`]), and the proposer choice of Twins becomes which copy's
//! proposals the network carries during the phase (the `mute-proposals` fault);
//! docs/DESIGN.md "Twins" says more.

pub mod search;

use crate::options::TestOptions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rollcall_node_core::consensus::Timeouts;
use rollcall_workloads::faults::partition_groups;
use rollcall_workloads::{Fault, NemesisKind, PlannedFault};
use std::collections::BTreeSet;
use std::fmt;

/// Which copies of a twinned validator may propose during a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proposer {
    /// Both copies' proposals pass (Twins' default: one identity, two leaders).
    Both,
    /// Only the original's (`nI`) proposals pass.
    Original,
    /// Only the twin's (`nI-dup`) proposals pass.
    Twin,
}

impl Proposer {
    /// Every choice, in enumeration order.
    pub const ALL: [Proposer; 3] = [Proposer::Both, Proposer::Original, Proposer::Twin];
}

/// One phase of a scenario: who can talk, and who may propose.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phase {
    /// Groups of processes that talk inside only; one group is full connectivity.
    pub groups: Vec<Vec<String>>,
    /// Per twinned validator (in [`Space::pairs`] order), which copy proposes.
    pub proposers: Vec<Proposer>,
}

impl Phase {
    /// Whether the phase changes nothing (full connectivity, both copies propose).
    pub fn is_quiet(&self) -> bool {
        self.groups.len() <= 1 && self.proposers.iter().all(|p| *p == Proposer::Both)
    }
}

/// A scenario: its phases, in time order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scenario {
    /// The phases.
    pub phases: Vec<Phase>,
}

impl fmt::Display for Scenario {
    /// `{n1 n2-dup}|{n2 n3 n4} propose twin; full propose both; ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.phases.is_empty() {
            return f.write_str("(no phase)");
        }
        for (k, p) in self.phases.iter().enumerate() {
            if k > 0 {
                f.write_str("; ")?;
            }
            if p.groups.len() <= 1 {
                f.write_str("full")?;
            } else {
                let g: Vec<String> = p
                    .groups
                    .iter()
                    .map(|g| format!("{{{}}}", g.join(" ")))
                    .collect();
                f.write_str(&g.join("|"))?;
            }
            let who: Vec<&str> = (p.proposers.iter())
                .map(|x| match x {
                    Proposer::Both => "both",
                    Proposer::Original => "original",
                    Proposer::Twin => "twin",
                })
                .collect();
            write!(f, " propose {}", who.join(","))?;
        }
        Ok(())
    }
}

/// Why a Twins search cannot be set up (exit 254).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TwinsError {
    /// Bad numbers.
    #[error("{0}")]
    Range(String),
}

/// Most processes a partition catalogue is enumerated over (Bell(10) = 115,975).
const MAX_PROCESSES: usize = 10;

/// The scenario space of one search: the twinned validators, the partition
/// catalogue and the number of phases.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    /// (original, twin) per twinned validator: the proposers of height 1, rounds 0,
    /// 1, ... (`roster[(1 + r) mod n]`, protocol.md §1), so the first phase's
    /// proposer is twinned.
    pub pairs: Vec<(String, String)>,
    /// Every process: the roster nodes, then the twins.
    pub processes: Vec<String>,
    /// The partition catalogue: full connectivity first, then every partition into
    /// at most `max_groups` groups that splits at least one twin pair, in the order
    /// of their restricted growth strings.
    pub partitions: Vec<Vec<Vec<String>>>,
    /// Phases per scenario.
    pub phases: usize,
}

impl Space {
    /// The space over `nodes` (the genesis roster, in order) with `twins` twinned
    /// validators, partitions of at most `max_groups` groups, `phases` phases.
    pub fn new(
        nodes: &[String],
        twins: usize,
        max_groups: usize,
        phases: usize,
    ) -> Result<Space, TwinsError> {
        let range = |ok: bool, m: &str| ok.then_some(()).ok_or(TwinsError::Range(m.into()));
        range(!nodes.is_empty(), "Twins needs a roster")?;
        range(
            (1..=nodes.len()).contains(&twins),
            "--twins must be between 1 and the roster size",
        )?;
        range(
            nodes.len() + twins <= MAX_PROCESSES,
            "too many processes to enumerate partitions of (at most 10 with the twins)",
        )?;
        range((2..=3).contains(&max_groups), "--groups must be 2 or 3")?;
        range(
            (1..=8).contains(&phases),
            "--phases must be between 1 and 8",
        )?;
        let n = nodes.len();
        let pairs: Vec<(String, String)> = (0..twins)
            .map(|r| {
                let o = nodes[(1 + r) % n].clone();
                let t = format!("{o}-dup");
                (o, t)
            })
            .collect();
        let mut processes = nodes.to_vec();
        processes.extend(pairs.iter().map(|(_, t)| t.clone()));
        let mut partitions = vec![vec![processes.clone()]];
        for rgs in growth_strings(processes.len(), max_groups) {
            let split = pairs.iter().any(|(o, t)| {
                let at = |x: &String| processes.iter().position(|p| p == x).map(|i| rgs[i]);
                at(o) != at(t)
            });
            if split {
                partitions.push(groups_of(&processes, &rgs));
            }
        }
        let space = Space {
            pairs,
            processes,
            partitions,
            phases,
        };
        space.count()?;
        Ok(space)
    }

    /// Choices per phase: partitions × 3^(twinned validators).
    pub fn per_phase(&self) -> u64 {
        let choices = (Proposer::ALL.len() as u64).pow(self.pairs.len() as u32);
        self.partitions.len() as u64 * choices
    }

    /// Scenarios in the space: `per_phase^phases`.
    pub fn count(&self) -> Result<u64, TwinsError> {
        self.per_phase()
            .checked_pow(self.phases as u32)
            .ok_or_else(|| {
                TwinsError::Range(
                    "the scenario space does not fit in 64 bits: fewer --phases".into(),
                )
            })
    }

    /// Scenario number `index` of the enumeration (mixed radix, the first phase the
    /// most significant digit), or `None` past the end.
    pub fn scenario(&self, index: u64) -> Option<Scenario> {
        if index >= self.count().ok()? {
            return None;
        }
        let per = self.per_phase();
        let choices = per / self.partitions.len() as u64;
        let mut digits = Vec::with_capacity(self.phases);
        let mut rest = index;
        for _ in 0..self.phases {
            digits.push(rest % per);
            rest /= per;
        }
        digits.reverse();
        let phases = digits
            .into_iter()
            .map(|d| {
                let (part, mut who) = (d / choices, d % choices);
                let mut proposers = Vec::with_capacity(self.pairs.len());
                for _ in &self.pairs {
                    proposers.push(Proposer::ALL[(who % 3) as usize]);
                    who /= 3;
                }
                Phase {
                    groups: self.partitions[part as usize].clone(),
                    proposers,
                }
            })
            .collect();
        Some(Scenario { phases })
    }
}

/// Every restricted growth string of length `n` with values below `max` (the set
/// partitions of `n` elements into at most `max` blocks), in lexicographic order,
/// the one-block partition excluded.
fn growth_strings(n: usize, max: usize) -> Vec<Vec<usize>> {
    fn walk(cur: &mut Vec<usize>, n: usize, max: usize, out: &mut Vec<Vec<usize>>) {
        if cur.len() == n {
            if cur.iter().any(|b| *b > 0) {
                out.push(cur.clone());
            }
            return;
        }
        let top = cur.iter().copied().max().map_or(0, |m| m + 1);
        for b in 0..=top.min(max - 1) {
            cur.push(b);
            walk(cur, n, max, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    walk(&mut Vec::with_capacity(n), n, max, &mut out);
    out
}

fn groups_of(processes: &[String], rgs: &[usize]) -> Vec<Vec<String>> {
    let blocks = rgs.iter().copied().max().map_or(0, |m| m + 1);
    (0..blocks)
        .map(|b| {
            (processes.iter().zip(rgs))
                .filter(|(_, x)| **x == b)
                .map(|(p, _)| p.clone())
                .collect()
        })
        .collect()
}

/// Which scenarios a search of `wanted` runs, in order: the whole enumeration when
/// it has at most `wanted`, else a seeded sample without replacement. Each entry
/// depends only on the seed, the space size and the entries before it, so a longer
/// search starts with a shorter one's scenarios.
pub fn sample(seed: u64, total: u64, wanted: u64) -> Vec<u64> {
    if total <= wanted {
        return (0..total).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7769_6e73_7477_696e);
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(wanted as usize);
    while (out.len() as u64) < wanted {
        let x = rng.gen_range(0..total);
        if seen.insert(x) {
            out.push(x);
        }
    }
    out
}

/// A phase's length, ns: one round 0 that decides nothing (its propose timeout
/// and both vote timeouts, protocol.md §2), from the nodes' base timeouts.
pub fn phase_ns(t: &Timeouts) -> u64 {
    (t.propose_ms + 2 * t.vote_ms) * 1_000_000
}

/// The fault schedule of `scenario`: every twin started at 0 with its original
/// (both from the genesis, as in Twins) and stopped at `limit_ns`; per phase `k`,
/// from `k·phase` to `(k+1)·phase`, a `partition` of shape `groups` unless it is
/// full connectivity, and a `mute-proposals` of the copies not chosen to propose.
pub fn schedule(
    space: &Space,
    scenario: &Scenario,
    phase: u64,
    limit_ns: u64,
) -> Vec<PlannedFault> {
    let mut out: Vec<PlannedFault> = (space.pairs.iter())
        .map(|(o, t)| PlannedFault {
            start_ns: 0,
            stop_ns: Some(limit_ns),
            fault: Fault::DuplicateKey {
                node: o.clone(),
                duplicate: t.clone(),
            },
        })
        .collect();
    for (k, p) in scenario.phases.iter().enumerate() {
        let (start_ns, stop_ns) = (k as u64 * phase, (k as u64 + 1) * phase);
        let mut at = |fault| {
            out.push(PlannedFault {
                start_ns,
                stop_ns: Some(stop_ns),
                fault,
            })
        };
        if p.groups.len() > 1 {
            at(partition_groups(&p.groups));
        }
        let muted: Vec<String> = (space.pairs.iter().zip(&p.proposers))
            .filter_map(|((o, t), who)| match who {
                Proposer::Both => None,
                Proposer::Original => Some(t.clone()),
                Proposer::Twin => Some(o.clone()),
            })
            .collect();
        if !muted.is_empty() {
            at(Fault::MuteProposals { nodes: muted });
        }
    }
    out
}

/// The options of one scenario's run: `base` with the scenario's schedule, no
/// spare, and the nemeses it uses named (for the report).
pub fn scenario_options(base: &TestOptions, space: &Space, scenario: &Scenario) -> TestOptions {
    let limit_ns = base.time_limit_s * 1_000_000_000;
    let phase = phase_ns(&crate::sim::sim_timeouts());
    TestOptions {
        spare: 0,
        nemesis: vec![
            NemesisKind::Partition,
            NemesisKind::DuplicateKey,
            NemesisKind::MuteProposals,
        ],
        schedule: Some(schedule(space, scenario, phase, limit_ns)),
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        (1..=4).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn catalogue_is_twins_split_partitions_plus_full() {
        // 5 processes, twin pair split, 2 groups: the other 3 go either side (2^3).
        let s = Space::new(&nodes(), 1, 2, 3).unwrap();
        assert_eq!(s.pairs, vec![("n2".to_string(), "n2-dup".to_string())]);
        assert_eq!(s.partitions.len(), 1 + 8);
        assert_eq!(s.per_phase(), 27);
        assert_eq!(s.count().unwrap(), 27 * 27 * 27);
        // 3 groups: S(5,3) = 25 minus the S(4,3) = 6 that keep the pair: 19 more.
        assert_eq!(
            Space::new(&nodes(), 1, 3, 1).unwrap().partitions.len(),
            1 + 8 + 19
        );
        let distinct: BTreeSet<_> = s.partitions.iter().collect();
        assert_eq!(distinct.len(), s.partitions.len());
    }

    #[test]
    fn full_connectivity_and_both_propose_is_scenario_zero() {
        let s = Space::new(&nodes(), 1, 2, 2).unwrap();
        let z = s.scenario(0).unwrap();
        assert!(z.phases.iter().all(Phase::is_quiet));
        assert!(s.scenario(s.count().unwrap()).is_none());
        assert_eq!(
            schedule(&s, &z, 400, 3_000).len(),
            1,
            "only the twin: {:?}",
            schedule(&s, &z, 400, 3_000)
        );
    }
}
