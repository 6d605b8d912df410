//! Cycle search in each strongly connected component, as elle/txn.clj does it:
//! first prove which `<model>-cycle-exists` anomalies hold (an SCC in the
//! projection of the graph a model must keep acyclic), skip the cycle types
//! those rule out, then look for each cycle anomaly (`cycle-anomaly-specs`,
//! most severe first) with a breadth-first search over (vertex, search state),
//! skipping anomalies implied by ones already found. A search that runs out of
//! time reports `cycle-search-timeout` and a fallback cycle (`cycle-cases-in-scc`).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::graph::{tarjan, Edge, Graph, PROC, RT, RW, WR, WW};
use super::models::{self, Names};
use super::report::Found;

/// How many rw edges a cycle type needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RwRule {
    None,
    One,
    Many,
}

/// One entry of Elle's `cycle-anomaly-specs` (predicate variants omitted: list
/// and register histories have no predicate edges).
#[derive(Debug, Clone, Copy)]
struct Spec {
    name: &'static str,
    rels: u8,
    rw: RwRule,
    nonadjacent: bool,
    adjacent: bool,
    required: [u8; 2],
}

const fn spec(
    name: &'static str,
    rels: u8,
    rw: RwRule,
    nonadj: bool,
    adj: bool,
    req: [u8; 2],
) -> Spec {
    Spec {
        name,
        rels,
        rw,
        nonadjacent: nonadj,
        adjacent: adj,
        required: req,
    }
}

/// Base specs, then their process and realtime variants: a topological order
/// of Elle's implied-anomalies graph, so implied searches can be skipped.
const SPECS: &[Spec] = &[
    spec("G0", WW, RwRule::None, false, false, [0, 0]),
    spec("G1c", WW | WR, RwRule::None, false, false, [WR, 0]),
    spec("G-single-item", WW | WR, RwRule::One, false, false, [0, 0]),
    spec(
        "G-nonadjacent-item",
        WW | WR,
        RwRule::Many,
        true,
        false,
        [0, 0],
    ),
    spec("G2-item", WW | WR, RwRule::Many, false, true, [0, 0]),
    spec(
        "G0-process",
        WW | PROC,
        RwRule::None,
        false,
        false,
        [PROC, 0],
    ),
    spec(
        "G1c-process",
        WW | WR | PROC,
        RwRule::None,
        false,
        false,
        [WR, PROC],
    ),
    spec(
        "G-single-item-process",
        WW | WR | PROC,
        RwRule::One,
        false,
        false,
        [PROC, 0],
    ),
    spec(
        "G-nonadjacent-item-process",
        WW | WR | PROC,
        RwRule::Many,
        true,
        false,
        [PROC, 0],
    ),
    spec(
        "G2-item-process",
        WW | WR | PROC,
        RwRule::Many,
        false,
        true,
        [PROC, 0],
    ),
    spec("G0-realtime", WW | RT, RwRule::None, false, false, [RT, 0]),
    spec(
        "G1c-realtime",
        WW | WR | RT,
        RwRule::None,
        false,
        false,
        [WR, RT],
    ),
    spec(
        "G-single-item-realtime",
        WW | WR | RT,
        RwRule::One,
        false,
        false,
        [RT, 0],
    ),
    spec(
        "G-nonadjacent-item-realtime",
        WW | WR | RT,
        RwRule::Many,
        true,
        false,
        [RT, 0],
    ),
    spec(
        "G2-item-realtime",
        WW | WR | RT,
        RwRule::Many,
        false,
        true,
        [RT, 0],
    ),
];

/// The cycle anomaly names this module can report.
pub(crate) fn cycle_types() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|s| s.name)
}

/// A subgraph a model must keep acyclic (`cycle-exists-specs`).
#[derive(Debug, Clone, Copy)]
enum Sub {
    Union(u8),
    /// `A ∪ A;B`: Elle's sequential extension, e.g. SI's one rw hop.
    Extension(u8, u8),
}

const EXISTS: &[(&str, &str, Sub)] = &[
    ("PL-1", "PL-1-cycle-exists", Sub::Union(WW)),
    ("PL-2", "PL-2-cycle-exists", Sub::Union(WW | WR)),
    ("PL-SI", "PL-SI-cycle-exists", Sub::Extension(WW | WR, RW)),
    ("PL-2.99", "PL-2.99-cycle-exists", Sub::Union(WW | WR | RW)),
    ("PL-3", "PL-3-cycle-exists", Sub::Union(WW | WR | RW)),
    (
        "strong-session-PL-1",
        "strong-session-PL-1-cycle-exists",
        Sub::Union(WW | PROC),
    ),
    (
        "strong-session-PL-2",
        "strong-session-PL-2-cycle-exists",
        Sub::Union(WW | WR | PROC),
    ),
    (
        "strong-session-snapshot-isolation",
        "strong-session-snapshot-isolation-cycle-exists",
        Sub::Extension(WW | WR | PROC, RW),
    ),
    (
        "strong-session-serializable",
        "strong-session-serializable-cycle-exists",
        Sub::Union(WW | WR | RW | PROC),
    ),
    (
        "strong-PL-1",
        "strong-PL-1-cycle-exists",
        Sub::Union(WW | RT),
    ),
    (
        "strong-PL-2",
        "strong-PL-2-cycle-exists",
        Sub::Union(WW | WR | RT),
    ),
    (
        "strong-snapshot-isolation",
        "strong-snapshot-isolation-cycle-exists",
        Sub::Extension(WW | WR | RT, RW),
    ),
    ("PL-SS", "PL-SS-cycle-exists", Sub::Union(WW | WR | RW | RT)),
];

/// The model a `-cycle-exists` anomaly is about.
pub(crate) fn cycle_exists_model(kind: &str) -> Option<&'static str> {
    EXISTS
        .iter()
        .find(|(_, k, _)| *k == kind)
        .map(|(m, _, _)| *m)
}

/// Most composed edges an SI extension may build before it gives up.
const MAX_COMPOSED: usize = 20_000_000;

/// Per-SCC limits: Elle's `cycle-search-timeout` (1 s by default) per SCC,
/// and an overall deadline after which each SCC gets only a fallback cycle.
pub(crate) struct Limits {
    pub per_scc: Duration,
    pub deadline: Instant,
}

/// Search every nontrivial SCC of `g`; cycles go into `found`.
pub(crate) fn search(g: &Graph, limits: &Limits, found: &mut Found) -> usize {
    let sccs = g.sccs();
    let mut comp = vec![u32::MAX; g.offsets.len().saturating_sub(1)];
    for (ci, c) in sccs.iter().enumerate() {
        for &v in c {
            if let Some(x) = comp.get_mut(v as usize) {
                *x = ci as u32;
            }
        }
    }
    for (ci, scc) in sccs.iter().enumerate() {
        let deadline = (Instant::now() + limits.per_scc).min(limits.deadline);
        let s = Scc {
            g,
            comp: &comp,
            id: ci as u32,
            nodes: scc,
        };
        search_scc(&s, deadline, found);
    }
    sccs.len()
}

struct Scc<'a> {
    g: &'a Graph,
    comp: &'a [u32],
    id: u32,
    nodes: &'a [u32],
}

impl Scc<'_> {
    fn inside(&self, v: u32) -> bool {
        self.comp.get(v as usize) == Some(&self.id)
    }
    fn out(&self, v: u32) -> impl Iterator<Item = &Edge> {
        self.g.out(v).iter().filter(|e| self.inside(e.to))
    }
}

fn search_scc(s: &Scc<'_>, deadline: Instant, found: &mut Found) {
    let exists = cycle_exists_cases(s, found);
    let mut skip = impossible_cycle_types(&exists);
    for sp in SPECS {
        if skip.contains(sp.name) {
            continue;
        }
        match find(s, sp, deadline) {
            Outcome::Found(cycle) => {
                found.cycle(sp.name, &cycle);
                skip.extend(models::all_implied_anomalies(
                    &[sp.name].into_iter().collect(),
                ));
            }
            Outcome::None => {}
            Outcome::Timeout => {
                found.add(
                    "cycle-search-timeout",
                    format!(
                        "the search for {} in an SCC of {} transactions ran out of time",
                        sp.name,
                        s.nodes.len()
                    ),
                    Vec::new(),
                    serde_json::json!({"anomaly_spec_type": sp.name, "scc_size": s.nodes.len()}),
                );
                if let Some(c) = fallback_cycle(s) {
                    found.cycle(classify(&c), &c);
                }
                return;
            }
        }
    }
}

/// `cycle-exists-cases`: which models' subgraphs have a cycle in this SCC.
fn cycle_exists_cases(s: &Scc<'_>, found: &mut Found) -> Names {
    let local: HashMap<u32, u32> = s
        .nodes
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i as u32))
        .collect();
    let mut impossible = Names::new();
    let mut models_found = Names::new();
    for &(model, kind, sub) in EXISTS {
        if impossible.contains(model) {
            continue;
        }
        let Some(targets) = project(s, &local, sub) else {
            continue;
        };
        let mut offsets = Vec::with_capacity(targets.len() + 1);
        let mut flat = Vec::new();
        offsets.push(0u32);
        for ts in &targets {
            flat.extend_from_slice(ts);
            offsets.push(flat.len() as u32);
        }
        let Some(smallest) = tarjan(&offsets, &flat).into_iter().min_by_key(Vec::len) else {
            continue;
        };
        let txns: Vec<u32> = smallest
            .iter()
            .filter_map(|&l| s.nodes.get(l as usize).copied())
            .collect();
        found.cycle_exists(kind, models::friendly(model), &txns);
        models_found.insert(model);
        impossible.extend(models::all_impossible_models(
            &[model].into_iter().collect(),
        ));
    }
    models_found
}

/// Local adjacency of the SCC restricted to `sub` (None if too large).
fn project(s: &Scc<'_>, local: &HashMap<u32, u32>, sub: Sub) -> Option<Vec<Vec<u32>>> {
    let (a, b) = match sub {
        Sub::Union(m) => (m, 0),
        Sub::Extension(a, b) => (a, b),
    };
    let adj = |mask: u8| -> Vec<Vec<u32>> {
        s.nodes
            .iter()
            .map(|&v| {
                let mut ts: Vec<u32> = s
                    .out(v)
                    .filter(|e| e.kind & mask != 0)
                    .filter_map(|e| local.get(&e.to).copied())
                    .collect();
                ts.sort_unstable();
                ts.dedup();
                ts
            })
            .collect()
    };
    let mut out = adj(a);
    if b == 0 {
        return Some(out);
    }
    let bs = adj(b);
    let mut composed = 0usize;
    for ts in out.iter_mut() {
        let mut extra: Vec<u32> = ts
            .iter()
            .flat_map(|&y| {
                bs.get(y as usize)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .copied()
            })
            .collect();
        composed += extra.len();
        if composed > MAX_COMPOSED {
            return None;
        }
        ts.append(&mut extra);
        ts.sort_unstable();
        ts.dedup();
    }
    Some(out)
}

/// `cycle-exists-cases->impossible-cycle-anomalies`: cycle types the models
/// without a cycle-exists case prohibit cannot be present.
fn impossible_cycle_types(exists: &Names) -> HashSet<&'static str> {
    let impossible = models::all_impossible_models(exists);
    let possible: Names = EXISTS
        .iter()
        .map(|(m, _, _)| *m)
        .filter(|m| !impossible.contains(m))
        .collect();
    let prohibited = models::anomalies_prohibited_by(&possible);
    cycle_types().filter(|t| prohibited.contains(t)).collect()
}

enum Outcome {
    Found(Vec<Edge>),
    None,
    Timeout,
}

const RWC: u8 = 3;
const LAST_RW: u8 = 4;
const FIRST_RW: u8 = 8;
const REQ0: u8 = 16;
const REQ1: u8 = 32;
const STARTED: u8 = 64;
const ADJ: u8 = 128;

impl Spec {
    fn allowed(&self) -> u8 {
        self.rels | if self.rw == RwRule::None { 0 } else { RW }
    }
    /// The search state after taking an edge of `kind`, or None if the edge
    /// cannot extend a cycle of this type.
    fn step(&self, f: u8, kind: u8) -> Option<u8> {
        if kind & self.allowed() == 0 {
            return None;
        }
        let mut n = f | STARTED;
        if kind == RW {
            if self.nonadjacent && f & LAST_RW != 0 {
                return None;
            }
            let c = (f & RWC) + 1;
            if self.rw == RwRule::One && c > 1 {
                return None;
            }
            if f & LAST_RW != 0 {
                n |= ADJ;
            }
            if f & STARTED == 0 {
                n |= FIRST_RW;
            }
            n = (n & !RWC) | c.min(2) | LAST_RW;
        } else {
            n &= !LAST_RW;
        }
        for (i, r) in self.required.iter().enumerate() {
            if kind & r != 0 {
                n |= REQ0 << i;
            }
        }
        Some(n)
    }
    fn accepts(&self, f: u8) -> bool {
        let c = f & RWC;
        let wrap = f & LAST_RW != 0 && f & FIRST_RW != 0;
        let rw_ok = match self.rw {
            RwRule::None => c == 0,
            RwRule::One => c == 1,
            RwRule::Many => c >= 2,
        };
        let req = self
            .required
            .iter()
            .enumerate()
            .all(|(i, r)| *r == 0 || f & (REQ0 << i) != 0);
        let _ = REQ1;
        rw_ok && req && !(self.nonadjacent && wrap) && (!self.adjacent || f & ADJ != 0 || wrap)
    }
    /// An edge kind every cycle of this type contains: where searches start.
    fn anchor(&self) -> u8 {
        if self.rw != RwRule::None {
            RW
        } else if self.required[0] != 0 {
            self.required[0]
        } else {
            self.rels
        }
    }
}

/// Shortest closed walk of type `sp` through some anchor vertex.
fn find(s: &Scc<'_>, sp: &Spec, deadline: Instant) -> Outcome {
    let anchor = sp.anchor();
    for &start in s.nodes {
        if !s.out(start).any(|e| e.kind & anchor != 0) {
            continue;
        }
        if Instant::now() >= deadline {
            return Outcome::Timeout;
        }
        match bfs(s, sp, start, deadline) {
            Outcome::None => {}
            other => return other,
        }
    }
    Outcome::None
}

fn bfs(s: &Scc<'_>, sp: &Spec, start: u32, deadline: Instant) -> Outcome {
    // states: (vertex, flags, parent state, edge taken to get here)
    let mut states: Vec<(u32, u8, u32, Option<Edge>)> = vec![(start, 0, u32::MAX, None)];
    let mut seen: HashSet<(u32, u8)> = HashSet::default();
    seen.insert((start, 0));
    let mut queue = VecDeque::from([0u32]);
    let mut pops = 0u32;
    while let Some(si) = queue.pop_front() {
        pops += 1;
        if pops.is_multiple_of(1024) && Instant::now() > deadline {
            return Outcome::Timeout;
        }
        let Some(&(u, f, _, _)) = states.get(si as usize) else {
            continue;
        };
        for e in s.out(u) {
            let Some(nf) = sp.step(f, e.kind) else {
                continue;
            };
            if e.to == start {
                if sp.accepts(nf) {
                    return Outcome::Found(path(&states, si, *e));
                }
                continue;
            }
            if seen.insert((e.to, nf)) {
                states.push((e.to, nf, si, Some(*e)));
                queue.push_back(states.len() as u32 - 1);
            }
        }
    }
    Outcome::None
}

fn path(states: &[(u32, u8, u32, Option<Edge>)], mut si: u32, last: Edge) -> Vec<Edge> {
    let mut p = vec![last];
    while let Some(&(_, _, parent, Some(e))) = states.get(si as usize) {
        p.push(e);
        si = parent;
    }
    p.reverse();
    p
}

/// Any cycle of the SCC (Elle's `fallback-cycle`), for when the search timed out.
fn fallback_cycle(s: &Scc<'_>) -> Option<Vec<Edge>> {
    let any = spec(
        "any",
        WW | WR | RW | PROC | RT,
        RwRule::None,
        false,
        false,
        [0, 0],
    );
    let start = *s.nodes.first()?;
    let mut parent: HashMap<u32, Edge> = HashMap::default();
    let mut queue = VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        for e in s.out(u) {
            if e.kind & (any.rels | RW) == 0 {
                continue;
            }
            if e.to == start {
                let mut p = vec![*e];
                let mut cur = u;
                while cur != start {
                    let pe = *parent.get(&cur)?;
                    p.push(pe);
                    cur = pe.from;
                }
                p.reverse();
                return Some(p);
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(e.to) {
                slot.insert(*e);
                queue.push_back(e.to);
            }
        }
    }
    None
}

/// Elle's `cycle-explainer` classification: by rw count and adjacency, then a
/// `-realtime` or `-process` suffix when the cycle needs such an edge.
pub(crate) fn classify(cycle: &[Edge]) -> &'static str {
    let count = |k: u8| cycle.iter().filter(|e| e.kind == k).count();
    let n = cycle.len();
    let adjacent = (0..n).any(|i| {
        cycle.get(i).map(|e| e.kind) == Some(RW)
            && cycle.get((i + 1) % n).map(|e| e.kind) == Some(RW)
    });
    let base = match count(RW) {
        1 => 0,
        r if r > 1 && adjacent => 2,
        r if r > 1 => 1,
        _ if count(WR) > 0 => 3,
        _ => 4,
    };
    let variant = if count(RT) > 0 {
        2
    } else if count(PROC) > 0 {
        1
    } else {
        0
    };
    const NAMES: [[&str; 3]; 5] = [
        [
            "G-single-item",
            "G-single-item-process",
            "G-single-item-realtime",
        ],
        [
            "G-nonadjacent-item",
            "G-nonadjacent-item-process",
            "G-nonadjacent-item-realtime",
        ],
        ["G2-item", "G2-item-process", "G2-item-realtime"],
        ["G1c", "G1c-process", "G1c-realtime"],
        ["G0", "G0-process", "G0-realtime"],
    ];
    NAMES[base][variant]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(from: u32, to: u32, kind: u8) -> Edge {
        Edge::order(from, to, kind)
    }

    #[test]
    fn classification_follows_elles_cycle_explainer() {
        assert_eq!(classify(&[e(0, 1, WW), e(1, 0, WW)]), "G0");
        assert_eq!(classify(&[e(0, 1, WW), e(1, 0, WR)]), "G1c");
        assert_eq!(classify(&[e(0, 1, RW), e(1, 0, WR)]), "G-single-item");
        assert_eq!(
            classify(&[e(0, 1, RW), e(1, 2, WR), e(2, 3, RW), e(3, 0, WR)]),
            "G-nonadjacent-item"
        );
        assert_eq!(classify(&[e(0, 1, RW), e(1, 0, RW)]), "G2-item");
        assert_eq!(
            classify(&[e(0, 1, RW), e(1, 0, RT)]),
            "G-single-item-realtime"
        );
        assert_eq!(classify(&[e(0, 1, WW), e(1, 0, PROC)]), "G0-process");
    }

    #[test]
    fn nonadjacent_search_rejects_adjacent_rw_and_wraparound() {
        let sp = SPECS
            .iter()
            .find(|s| s.name == "G-nonadjacent-item")
            .copied();
        let sp = sp.unwrap_or(SPECS[0]);
        let f = sp.step(0, RW).unwrap();
        assert!(sp.step(f, RW).is_none());
        let f = sp.step(sp.step(f, WR).unwrap(), RW).unwrap();
        assert!(
            !sp.accepts(f),
            "last and first rw are adjacent around the cycle"
        );
        assert!(sp.accepts(sp.step(f, WW).unwrap()));
    }
}
