//! Nemesis faults and their seeded schedule (harness.md §5).
//!
//! A schedule is a list of packages, one fault at a time: a fault starts, stops one
//! `interval` later (except `fail-node`, which is for good), and the next starts one
//! interval after that. Targets are named nodes ("n1".."nK"), so the same schedule
//! drives any backend.

use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
pub use rollcall_adversary::Behaviour;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The nemeses of harness.md §5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    /// Network partitions of several shapes.
    Partition,
    /// Kill one or more nodes, restart later.
    Kill,
    /// Freeze one or more nodes, resume later.
    Pause,
    /// Kill every node at once, restart all.
    CrashAll,
    /// Start a spare node and submit its AddNode.
    AddNode,
    /// Stop a node for good; it must be evicted.
    FailNode,
    /// Random message loss between chosen nodes.
    Flaky,
    /// Delay and jitter between nodes.
    Slow,
    /// A second node runs with an existing node's key (a Byzantine equivocator).
    DuplicateKey,
    /// Up to f validators lie with their own keys (issue 12, rollcall-adversary).
    Byzantine,
    /// One node's disk corrupts, tears, fills up or fails its sync (issue 13).
    Disk,
    /// One node's clock runs at another rate and jumps (issue 16).
    Clock,
    /// Proposals sent by the named nodes are dropped by the network (a Twins
    /// scenario's proposer choice, issue 12). Not in [`NemesisKind::ALL`]: only
    /// `rollcall twins` schedules it, so drawn schedules never hold it.
    MuteProposals,
    /// Every link between members slower than the base round timeouts for one
    /// interval, then timely again: an asynchronous period and its GST (issue 16).
    Async,
}

impl NemesisKind {
    /// Every nemesis, in the order of harness.md §3.
    pub const ALL: [NemesisKind; 13] = [
        NemesisKind::Partition,
        NemesisKind::Kill,
        NemesisKind::Pause,
        NemesisKind::CrashAll,
        NemesisKind::AddNode,
        NemesisKind::FailNode,
        NemesisKind::Flaky,
        NemesisKind::Slow,
        NemesisKind::DuplicateKey,
        NemesisKind::Byzantine,
        NemesisKind::Disk,
        NemesisKind::Clock,
        NemesisKind::Async,
    ];

    /// The CLI and history spelling.
    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Partition => "partition",
            NemesisKind::Kill => "kill",
            NemesisKind::Pause => "pause",
            NemesisKind::CrashAll => "crash-all",
            NemesisKind::AddNode => "add-node",
            NemesisKind::FailNode => "fail-node",
            NemesisKind::Flaky => "flaky",
            NemesisKind::Slow => "slow",
            NemesisKind::DuplicateKey => "duplicate-key",
            NemesisKind::Byzantine => "byzantine",
            NemesisKind::Disk => "disk",
            NemesisKind::Clock => "clock",
            NemesisKind::MuteProposals => "mute-proposals",
            NemesisKind::Async => "async",
        }
    }

    /// Parses a comma list such as `partition,kill`; empty or `none` is no nemesis.
    pub fn parse_list(s: &str) -> Result<Vec<NemesisKind>, UnknownNemesis> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "none" {
                continue;
            }
            if part == "all" {
                out.extend(NemesisKind::ALL);
                continue;
            }
            out.push(part.parse()?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl fmt::Display for NemesisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A nemesis name that is not one of harness.md §5.
#[derive(Debug, thiserror::Error)]
#[error("unknown nemesis {0:?} (partition, kill, pause, crash-all, add-node, fail-node, flaky, slow, duplicate-key, byzantine, disk, clock, async)")]
pub struct UnknownNemesis(pub String);

impl FromStr for NemesisKind {
    type Err = UnknownNemesis;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NemesisKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownNemesis(s.to_string()))
    }
}

/// Partition shapes (harness.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionShape {
    /// Two halves that cannot talk.
    Halves,
    /// One node isolated from all others.
    One,
    /// Every node sees a majority, no two the same one (Jepsen's majorities ring).
    MajoritiesRing,
    /// Two halves joined by one node that sees both.
    Bridge,
    /// A random set of blocked directed links (asymmetric).
    Random,
    /// Explicit groups, each cut off from every other (a Twins scenario's phase,
    /// issue 12); never drawn at random.
    Groups,
}

/// A directed link `(from, to)` between named nodes.
pub type Link = (String, String);

/// One fault, with its targets resolved (harness.md §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Fault {
    /// Block the listed directed links.
    Partition {
        /// The shape.
        shape: PartitionShape,
        /// Groups that can talk inside (empty for `random`).
        groups: Vec<Vec<String>>,
        /// Every blocked directed link.
        blocked: Vec<Link>,
    },
    /// Kill these nodes (in-flight state lost, disk kept), restart on stop.
    Kill {
        /// Victims.
        nodes: Vec<String>,
    },
    /// Freeze these nodes, resume on stop.
    Pause {
        /// Victims.
        nodes: Vec<String>,
    },
    /// Kill every running node, restart all on stop.
    CrashAll,
    /// Start this spare node and submit its operator-signed AddNode.
    AddNode {
        /// The spare.
        node: String,
    },
    /// Stop this node for good (protocol.md §5: it must be evicted).
    FailNode {
        /// The victim.
        node: String,
    },
    /// Lose and duplicate messages on these links.
    Flaky {
        /// Affected directed links.
        links: Vec<Link>,
        /// Percent of messages lost.
        loss_pct: u32,
        /// Percent of messages delivered twice.
        duplicate_pct: u32,
    },
    /// Add delay and jitter on these links.
    Slow {
        /// Affected directed links.
        links: Vec<Link>,
        /// Extra delay, ms.
        delay_ms: u64,
        /// Extra uniform jitter, ms.
        jitter_ms: u64,
    },
    /// Start `duplicate`, a node with `node`'s key and an empty disk; stop it on stop.
    DuplicateKey {
        /// Whose key is shared.
        node: String,
        /// The duplicate's name.
        duplicate: String,
    },
    /// Turn these validators into adversaries behaving as `behaviour`; honest again
    /// on stop. More than f = ⌊(n−1)/3⌋ of them is beyond the fault model.
    Byzantine {
        /// The adversaries.
        nodes: Vec<String>,
        /// What they do.
        behaviour: Behaviour,
    },
    /// Damage one node's store or make its writes fail (issue 13); undone on stop.
    Disk {
        /// The victim (one node: a minority).
        node: String,
        /// What happens to its disk.
        kind: DiskFault,
    },
    /// Run one node's clock at `rate_pct` percent of true time after jumping it by
    /// `jump_ms` (negative: back); the true rate again on stop.
    Clock {
        /// The victim.
        node: String,
        /// Its clock's rate, percent (50: half speed, 200: double).
        rate_pct: u32,
        /// The jump at the start, ms.
        jump_ms: i64,
    },
    /// Drop every proposal these nodes send until the stop (Twins: which copy of a
    /// twinned validator may propose in a phase, issue 12); votes still pass.
    MuteProposals {
        /// The muted senders.
        nodes: Vec<String>,
    },
    /// An asynchronous period (issue 16): delay every listed link by more than the
    /// nodes' base round timeouts; the stop is the global stabilisation time (GST).
    Async {
        /// Affected directed links (every pair of members).
        links: Vec<Link>,
        /// Extra delay, ms: 1× to 3× the base timeout ([`PlanSpec::base_timeout_ms`]).
        delay_ms: u64,
        /// Extra uniform jitter, ms: up to half the base timeout.
        jitter_ms: u64,
    },
}

/// What the `disk` nemesis does to a node's store (issue 13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskFault {
    /// Flip a bit in `blocks.log` (blocks and certificates) while the node is down.
    CorruptBlocks,
    /// Flip a bit in `sign.log` (the signing state) while the node is down.
    CorruptSign,
    /// Cut the tail of `blocks.log` (synced bytes too) while the node is down.
    TruncateBlocks,
    /// The disk is full: every write fails with ENOSPC until the stop.
    Full,
    /// Every sync fails with EIO until the stop.
    SyncFails,
}

impl DiskFault {
    /// Every disk fault.
    pub const ALL: [DiskFault; 5] = [
        DiskFault::CorruptBlocks,
        DiskFault::CorruptSign,
        DiskFault::TruncateBlocks,
        DiskFault::Full,
        DiskFault::SyncFails,
    ];

    /// Whether it damages files of a stopped node (else it fails writes).
    pub fn damages_files(self) -> bool {
        matches!(
            self,
            DiskFault::CorruptBlocks | DiskFault::CorruptSign | DiskFault::TruncateBlocks
        )
    }
}

impl Fault {
    /// The nemesis this fault belongs to.
    pub fn kind(&self) -> NemesisKind {
        match self {
            Fault::Partition { .. } => NemesisKind::Partition,
            Fault::Kill { .. } => NemesisKind::Kill,
            Fault::Pause { .. } => NemesisKind::Pause,
            Fault::CrashAll => NemesisKind::CrashAll,
            Fault::AddNode { .. } => NemesisKind::AddNode,
            Fault::FailNode { .. } => NemesisKind::FailNode,
            Fault::Flaky { .. } => NemesisKind::Flaky,
            Fault::Slow { .. } => NemesisKind::Slow,
            Fault::DuplicateKey { .. } => NemesisKind::DuplicateKey,
            Fault::Byzantine { .. } => NemesisKind::Byzantine,
            Fault::Disk { .. } => NemesisKind::Disk,
            Fault::Clock { .. } => NemesisKind::Clock,
            Fault::MuteProposals { .. } => NemesisKind::MuteProposals,
            Fault::Async { .. } => NemesisKind::Async,
        }
    }
}

/// A fault with its planned start and stop, in ns since the test began.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// When it starts.
    pub start_ns: u64,
    /// When it stops; `None` for `fail-node`, which is permanent.
    pub stop_ns: Option<u64>,
    /// The fault.
    pub fault: Fault,
}

/// What the planner needs to know about the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanSpec {
    /// Nemeses to draw from.
    pub kinds: Vec<NemesisKind>,
    /// `--nemesis-interval` in ns.
    pub interval_ns: u64,
    /// `--time-limit` in ns: every planned fault stops by then.
    pub time_limit_ns: u64,
    /// The genesis roster's node names.
    pub nodes: Vec<String>,
    /// Spare node names, in the order they are added.
    pub spares: Vec<String>,
    /// protocol.md §5 `min_roster`.
    pub min_roster: usize,
    /// `--max-concurrent-faults`: most fault intervals active at once. 1 (and 0) is
    /// the one-at-a-time schedule of before issue 16, drawn exactly as it was; a
    /// missing field (a spec stored before) reads as 1.
    #[serde(default = "one")]
    pub max_concurrent: usize,
    /// The nodes' longest round-0 timeout, ms (propose plus the empty-block wait):
    /// what the `async` nemesis delays links beyond. 0 (a spec stored before issue
    /// 16's `async`) reads as the node's default.
    #[serde(default)]
    pub base_timeout_ms: u64,
}

impl PlanSpec {
    /// The base timeout the `async` nemesis draws its delays from, ms.
    pub fn async_base_ms(&self) -> u64 {
        if self.base_timeout_ms == 0 {
            DEFAULT_BASE_TIMEOUT_MS
        } else {
            self.base_timeout_ms
        }
    }
}

/// The node's default round-0 propose timeout plus its empty-block wait, ms
/// (`Timeouts::default()`), for plan specs that do not say.
pub const DEFAULT_BASE_TIMEOUT_MS: u64 = 1100;

fn one() -> usize {
    1
}

/// Draws a fault schedule (harness.md §5). With `max_concurrent` above 1 faults
/// overlap under the composition rules of [`crate::overlap`]; otherwise they never
/// overlap (the draws below are the schedule of before issue 16). `add-node` takes
/// the next unused spare; `fail-node` happens at most once per run and only while
/// the roster stays at or above both `min_roster` and 3 after the eviction, so
/// the failed node can be evicted and the rest stay live.
pub fn plan(rng: &mut dyn RngCore, spec: &PlanSpec) -> Vec<PlannedFault> {
    if spec.max_concurrent > 1 {
        return crate::overlap::plan_overlapping(rng, spec);
    }
    let mut out = Vec::new();
    if spec.kinds.is_empty() || spec.interval_ns == 0 || spec.nodes.is_empty() {
        return out;
    }
    let mut members: Vec<String> = spec.nodes.clone();
    let mut spares = spec.spares.iter();
    let mut spare_left = spec.spares.len();
    let mut failed = false;
    let mut t = spec.interval_ns;
    while t + spec.interval_ns <= spec.time_limit_ns {
        let feasible: Vec<NemesisKind> = spec
            .kinds
            .iter()
            .copied()
            .filter(|k| match k {
                NemesisKind::AddNode => spare_left > 0,
                NemesisKind::FailNode => !failed && members.len() > spec.min_roster.max(3),
                NemesisKind::Byzantine => max_faulty(members.len()) > 0,
                _ => !members.is_empty(),
            })
            .collect();
        let Some(kind) = feasible.choose(rng).copied() else {
            break;
        };
        let fault = match kind {
            NemesisKind::AddNode => {
                spare_left -= 1;
                let Some(node) = spares.next().cloned() else {
                    break;
                };
                members.push(node.clone());
                Fault::AddNode { node }
            }
            NemesisKind::FailNode => {
                failed = true;
                let i = rng.gen_range(0..members.len());
                Fault::FailNode {
                    node: members.remove(i),
                }
            }
            other => fault_on(rng, other, &members, spec.async_base_ms()),
        };
        let stop_ns = (kind != NemesisKind::FailNode).then_some(t + spec.interval_ns);
        out.push(PlannedFault {
            start_ns: t,
            stop_ns,
            fault,
        });
        t += 2 * spec.interval_ns;
    }
    out
}

/// f = ⌊(n−1)/3⌋: the most Byzantine validators `n` tolerate (protocol.md §2).
pub fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

pub(crate) fn some_nodes(rng: &mut dyn RngCore, members: &[String]) -> Vec<String> {
    let max = ((members.len().saturating_sub(1)) / 2).max(1);
    let n = rng.gen_range(1..=max);
    let mut v: Vec<String> = members.choose_multiple(rng, n).cloned().collect();
    v.sort();
    v
}

/// A partition into these `groups` (shape `groups`): every link between two groups
/// is cut both ways; a single group is no partition at all (Twins, issue 12).
pub fn partition_groups(groups: &[Vec<String>]) -> Fault {
    let mut blocked = Vec::new();
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            blocked.extend(links_between(a, b));
        }
    }
    blocked.sort();
    blocked.dedup();
    Fault::Partition {
        shape: PartitionShape::Groups,
        groups: groups.to_vec(),
        blocked,
    }
}

fn links_between(a: &[String], b: &[String]) -> Vec<Link> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if x != y {
                out.push((x.clone(), y.clone()));
                out.push((y.clone(), x.clone()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

pub(crate) fn fault_on(
    rng: &mut dyn RngCore,
    kind: NemesisKind,
    members: &[String],
    base_ms: u64,
) -> Fault {
    match kind {
        NemesisKind::Partition => partition(rng, members),
        NemesisKind::Kill => Fault::Kill {
            nodes: some_nodes(rng, members),
        },
        NemesisKind::Pause => Fault::Pause {
            nodes: some_nodes(rng, members),
        },
        NemesisKind::CrashAll => Fault::CrashAll,
        NemesisKind::Flaky => {
            let chosen = some_nodes(rng, members);
            Fault::Flaky {
                links: links_between(&chosen, members),
                loss_pct: rng.gen_range(10..=40),
                duplicate_pct: rng.gen_range(0..=10),
            }
        }
        NemesisKind::Slow => {
            let chosen = some_nodes(rng, members);
            Fault::Slow {
                links: links_between(&chosen, members),
                delay_ms: rng.gen_range(10..=50),
                jitter_ms: rng.gen_range(0..=20),
            }
        }
        NemesisKind::DuplicateKey => {
            let node = members[rng.gen_range(0..members.len())].clone();
            Fault::DuplicateKey {
                duplicate: format!("{node}-dup"),
                node,
            }
        }
        NemesisKind::Byzantine => {
            let n = rng.gen_range(1..=max_faulty(members.len()).max(1));
            let mut nodes: Vec<String> = members.choose_multiple(rng, n).cloned().collect();
            nodes.sort();
            let behaviour = Behaviour::ALL[rng.gen_range(0..Behaviour::ALL.len())];
            Fault::Byzantine { nodes, behaviour }
        }
        NemesisKind::Disk => Fault::Disk {
            node: members[rng.gen_range(0..members.len())].clone(),
            kind: DiskFault::ALL[rng.gen_range(0..DiskFault::ALL.len())],
        },
        NemesisKind::Clock => Fault::Clock {
            node: members[rng.gen_range(0..members.len())].clone(),
            rate_pct: rng.gen_range(50..=200),
            jump_ms: rng.gen_range(-2000..=2000),
        },
        NemesisKind::MuteProposals => Fault::MuteProposals {
            nodes: vec![members[rng.gen_range(0..members.len())].clone()],
        },
        NemesisKind::Async => async_period(rng, members, base_ms),
        // Planned by `plan` itself (they change the member list).
        NemesisKind::AddNode | NemesisKind::FailNode => Fault::CrashAll,
    }
}

/// The `async` nemesis (issue 16): every link between `members`, both ways, delayed
/// by `base_ms` to `3 × base_ms` with up to `base_ms / 2` of jitter, so no message
/// arrives within a round-0 timeout; Tendermint decides during it only once its
/// timeouts have grown past the delay (Buchman–Kwon–Milosevic 2018, §4: timeouts
/// grow with the round), and at the stop (GST) links are timely again.
pub fn async_period(rng: &mut dyn RngCore, members: &[String], base_ms: u64) -> Fault {
    let base = base_ms.max(1);
    Fault::Async {
        links: links_between(members, members),
        delay_ms: rng.gen_range(base..=3 * base),
        jitter_ms: rng.gen_range(0..=base / 2),
    }
}

/// A partition of `members` in a random shape (harness.md §5).
pub fn partition(rng: &mut dyn RngCore, members: &[String]) -> Fault {
    let shapes = [
        PartitionShape::Halves,
        PartitionShape::One,
        PartitionShape::MajoritiesRing,
        PartitionShape::Bridge,
        PartitionShape::Random,
    ];
    let shape = *shapes.choose(rng).unwrap_or(&PartitionShape::Halves);
    partition_shaped(rng, shape, members)
}

/// A partition of `members` in the given shape (`groups` has no random form:
/// drawn, it is two halves; [`partition_groups`] builds one from its groups).
pub fn partition_shaped(rng: &mut dyn RngCore, shape: PartitionShape, members: &[String]) -> Fault {
    let mut m: Vec<String> = members.to_vec();
    m.shuffle(rng);
    let n = m.len();
    let (groups, blocked): (Vec<Vec<String>>, Vec<Link>) = match shape {
        PartitionShape::Halves | PartitionShape::Groups => {
            let (a, b) = m.split_at(n / 2);
            (vec![a.to_vec(), b.to_vec()], links_between(a, b))
        }
        PartitionShape::One => {
            let (a, b) = m.split_at(1.min(n));
            (vec![a.to_vec(), b.to_vec()], links_between(a, b))
        }
        PartitionShape::Bridge => {
            // m[0] is the bridge; the others split in two sides that only it joins.
            let rest = &m[1.min(n)..];
            let (a, b) = rest.split_at(rest.len() / 2);
            let mut ga = a.to_vec();
            let mut gb = b.to_vec();
            if let Some(bridge) = m.first() {
                ga.push(bridge.clone());
                gb.push(bridge.clone());
            }
            (vec![ga, gb], links_between(a, b))
        }
        PartitionShape::MajoritiesRing => {
            // Ring order m; each node talks to ring neighbours within distance d, so
            // it sees 2d+1 >= a majority, and no two nodes see the same majority.
            let majority = n / 2 + 1;
            let d = majority / 2;
            let mut groups = Vec::new();
            let mut blocked = Vec::new();
            for i in 0..n {
                let mut g = Vec::new();
                for j in 0..n {
                    let dist = (i + n - j) % n;
                    let dist = dist.min(n - dist);
                    if dist <= d {
                        g.push(m[j].clone());
                    } else {
                        blocked.push((m[i].clone(), m[j].clone()));
                    }
                }
                g.sort();
                groups.push(g);
            }
            blocked.sort();
            (groups, blocked)
        }
        PartitionShape::Random => {
            let mut blocked = Vec::new();
            for a in &m {
                for b in &m {
                    if a != b && rng.gen_bool(0.3) {
                        blocked.push((a.clone(), b.clone()));
                    }
                }
            }
            blocked.sort();
            (Vec::new(), blocked)
        }
    };
    let mut groups: Vec<Vec<String>> = groups
        .into_iter()
        .map(|mut g| {
            g.sort();
            g
        })
        .collect();
    if shape != PartitionShape::MajoritiesRing {
        groups.sort();
    }
    Fault::Partition {
        shape,
        groups,
        blocked,
    }
}
