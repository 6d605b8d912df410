//! The transaction dependency graph: typed edges in a compressed sparse row
//! layout (u32 indices, no maps), Elle's process and realtime orders
//! (elle/core.clj `process-graph`, `realtime-graph`) and an iterative Tarjan
//! SCC, so no recursion depth grows with the history.

use crate::history::{OpType, Process};
use rustc_hash::FxHashMap as HashMap;

use super::txn::Txns;

/// Write-write dependency (Adya): b overwrote a's version.
pub(crate) const WW: u8 = 1;
/// Write-read dependency: b read a's version.
pub(crate) const WR: u8 = 2;
/// Read-write anti-dependency: a read the version b overwrote.
pub(crate) const RW: u8 = 4;
/// Successive ok transactions of one process.
pub(crate) const PROC: u8 = 8;
/// a completed before b was invoked.
pub(crate) const RT: u8 = 16;
/// No micro-op explains the edge (process and realtime edges).
pub(crate) const NO_MOP: u32 = u32::MAX;

/// One dependency: `from` must precede `to`. `a_mop`/`b_mop` index
/// [`Txns::mops`] and say which micro-ops of each side cause it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    pub from: u32,
    pub to: u32,
    pub a_mop: u32,
    pub b_mop: u32,
    pub kind: u8,
}

impl Edge {
    pub(crate) fn order(from: u32, to: u32, kind: u8) -> Edge {
        Edge {
            from,
            to,
            a_mop: NO_MOP,
            b_mop: NO_MOP,
            kind,
        }
    }
}

/// Edges grouped by source: `edges[offsets[v]..offsets[v + 1]]` leave `v`.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub edges: Vec<Edge>,
    pub offsets: Vec<u32>,
}

impl Graph {
    /// Counting sort of the edges by source (O(V + E), no comparison sort).
    pub(crate) fn new(n: u32, edges: Vec<Edge>) -> Graph {
        let mut offsets = vec![0u32; n as usize + 1];
        for e in &edges {
            if let Some(c) = offsets.get_mut(e.from as usize + 1) {
                *c += 1;
            }
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut fill = offsets.clone();
        let mut sorted = vec![Edge::order(0, 0, 0); edges.len()];
        for e in edges {
            if let Some(slot) = fill.get_mut(e.from as usize) {
                if let Some(dst) = sorted.get_mut(*slot as usize) {
                    *dst = e;
                }
                *slot += 1;
            }
        }
        Graph {
            edges: sorted,
            offsets,
        }
    }

    pub(crate) fn out(&self, v: u32) -> &[Edge] {
        let a = self.offsets.get(v as usize).copied().unwrap_or(0) as usize;
        let b = self.offsets.get(v as usize + 1).copied().unwrap_or(0) as usize;
        self.edges.get(a..b).unwrap_or(&[])
    }

    /// Nontrivial strongly connected components of the whole graph.
    pub(crate) fn sccs(&self) -> Vec<Vec<u32>> {
        let targets: Vec<u32> = self.edges.iter().map(|e| e.to).collect();
        tarjan(&self.offsets, &targets)
    }
}

/// Tarjan's SCC algorithm with an explicit call stack over a CSR graph
/// (`targets[offsets[v]..offsets[v+1]]`). Returns components of more than one
/// vertex, or of one vertex with a self-loop (Elle's `nontrivial-scc?`).
pub(crate) fn tarjan(offsets: &[u32], targets: &[u32]) -> Vec<Vec<u32>> {
    const UNSEEN: u32 = u32::MAX;
    let n = offsets.len().saturating_sub(1);
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut call: Vec<(u32, u32)> = Vec::new();
    let mut next = 0u32;
    let mut out = Vec::new();
    let start_of = |v: u32| offsets.get(v as usize).copied().unwrap_or(0);
    let end_of = |v: u32| offsets.get(v as usize + 1).copied().unwrap_or(0);
    for s in 0..n as u32 {
        if index[s as usize] != UNSEEN {
            continue;
        }
        index[s as usize] = next;
        low[s as usize] = next;
        next += 1;
        stack.push(s);
        on_stack[s as usize] = true;
        call.push((s, start_of(s)));
        while let Some(&mut (v, ref mut ei)) = call.last_mut() {
            if *ei < end_of(v) {
                let w = targets.get(*ei as usize).copied().unwrap_or(v);
                *ei += 1;
                let wi = w as usize;
                if index[wi] == UNSEEN {
                    index[wi] = next;
                    low[wi] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[wi] = true;
                    call.push((w, start_of(w)));
                } else if on_stack[wi] {
                    low[v as usize] = low[v as usize].min(index[wi]);
                }
                continue;
            }
            call.pop();
            if let Some(&(p, _)) = call.last() {
                low[p as usize] = low[p as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                let self_loop = || {
                    targets
                        .get(start_of(v) as usize..end_of(v) as usize)
                        .is_some_and(|ts| ts.contains(&v))
                };
                if comp.len() > 1 || self_loop() {
                    out.push(comp);
                }
            }
        }
    }
    out
}

/// Process order: each ok transaction follows its process's previous ok one.
pub(crate) fn process_edges(t: &Txns, edges: &mut Vec<Edge>) {
    let mut last: HashMap<Process, u32> = HashMap::default();
    for (i, x) in t.txns.iter().enumerate() {
        if x.kind != OpType::Ok {
            continue;
        }
        if let Some(p) = last.insert(x.process, i as u32) {
            edges.push(Edge::order(p, i as u32, PROC));
        }
    }
}

/// Realtime order as a transitive reduction (Elle's `realtime-graph`): on each
/// invoke, link every buffered completed txn to it; on a completion, the new
/// txn replaces the buffered ones that already precede it. O(n · concurrency).
pub(crate) fn realtime_edges(t: &Txns, edges: &mut Vec<Edge>) {
    let mut points: Vec<(u64, bool, u32)> = Vec::with_capacity(t.txns.len() * 2);
    for (i, x) in t.txns.iter().enumerate() {
        if x.kind == OpType::Fail {
            continue;
        }
        points.push((x.invoke, false, i as u32));
        if x.kind == OpType::Ok && x.complete != u64::MAX {
            points.push((x.complete, true, i as u32));
        }
    }
    points.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    let mut preds: HashMap<u32, Vec<u32>> = HashMap::default();
    for (_, is_complete, ti) in points {
        if is_complete {
            let p = preds.remove(&ti).unwrap_or_default();
            frontier.retain(|x| !p.contains(x));
            frontier.push(ti);
        } else {
            edges.extend(frontier.iter().map(|&f| Edge::order(f, ti, RT)));
            if t.kind(ti) == OpType::Ok {
                preds.insert(ti, frontier.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarjan_finds_cycles_and_self_loops_without_recursion() {
        // 0 -> 1 -> 2 -> 0, 3 -> 3, 4 alone, then a 200k-long chain closing a cycle.
        let n = 200_005u32;
        let mut edges = vec![
            Edge::order(0, 1, WW),
            Edge::order(1, 2, WW),
            Edge::order(2, 0, WW),
            Edge::order(3, 3, WW),
        ];
        for v in 5..n - 1 {
            edges.push(Edge::order(v, v + 1, WW));
        }
        edges.push(Edge::order(n - 1, 5, WW));
        let g = Graph::new(n, edges);
        let mut sccs = g.sccs();
        sccs.iter_mut().for_each(|c| c.sort_unstable());
        sccs.sort_by_key(|c| c.len());
        assert_eq!(sccs.len(), 3);
        assert_eq!(sccs[0], vec![3]);
        assert_eq!(sccs[1], vec![0, 1, 2]);
        assert_eq!(sccs[2].len(), (n - 5) as usize);
        assert!(Graph::new(3, vec![Edge::order(0, 1, WW)]).sccs().is_empty());
    }
}
