//! Read-write registers (elle/rw_register.clj): transactions of `[r k v]` and
//! `[w k v]` with unique writes. Version graphs per key come from the initial
//! state (nil precedes every value an ok/info txn wrote or an ok txn read) and,
//! only with Elle's `:wfr-keys?` option (off by default, as in Elle), from writes
//! following reads within a txn;
//! if that inference makes a key's versions cyclic it is dropped and reported
//! as `cyclic-versions`. Each version edge v1 → v2 yields ww edges from v1's
//! writer and rw edges from v1's readers to v2's writer (`ext-index` over ok
//! txns, as Elle); wr edges link a value's writer to its readers.

use rustc_hash::FxHashMap as HashMap;
use serde_json::json;

use super::graph::{tarjan, Edge, RW, WR, WW};
use super::keyorder::{self, KeyOrder};
use super::report::Found;
use super::txn::{Mop, Seen, Txns};
use crate::history::OpType;

/// (key, value or nil): a version.
type Version = (u32, Option<i64>);

/// A version order edge (key, from, to); nil is the initial state.
pub(crate) type VersionEdge = (u32, Option<i64>, Option<i64>);

/// Where version order may come from besides the initial state: Elle's
/// `:wfr-keys?`, `:sequential-keys?` and `:linearizable-keys?`, all off by
/// default as in Elle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sources {
    pub wfr_keys: bool,
    pub sequential_keys: bool,
    pub linearizable_keys: bool,
}

/// A txn's external reads (first access of a key is a read) and external
/// writes (last write of each key), each with its mop index.
/// External reads and writes of one txn, each with its mop index.
type Externals = (Vec<(Version, u32)>, Vec<((u32, i64), u32)>);

pub(crate) fn externals(t: &Txns, i: u32) -> Externals {
    let start = t.txns.get(i as usize).map(|x| x.mop_start).unwrap_or(0);
    let mut touched: Vec<u32> = Vec::new();
    let mut reads = Vec::new();
    let mut writes: Vec<((u32, i64), u32)> = Vec::new();
    for (j, m) in t.mops(i).iter().enumerate() {
        let idx = start + j as u32;
        match *m {
            Mop::Read { key, seen } if !touched.contains(&key) => {
                touched.push(key);
                match seen {
                    Seen::Value(v) => reads.push(((key, Some(v)), idx)),
                    Seen::Nil => reads.push(((key, None), idx)),
                    _ => {}
                }
            }
            Mop::Write { key, v } => {
                touched.push(key);
                writes.retain(|((k, _), _)| *k != key);
                writes.push(((key, v), idx));
            }
            _ => {}
        }
    }
    (reads, writes)
}

/// Version edges (key, from, to): initial state, then each source the options
/// turn on, in Elle's order (wfr, sequential, linearizable), each kept only if
/// it leaves every key's versions acyclic (`version-graphs`).
fn version_edges(found: &mut Found<'_>, on: Sources) -> Vec<VersionEdge> {
    let (mut init, mut wfr) = wfr_edges(found.t);
    let mut sources = vec!["initial-state"];
    let t = found.t;
    let wanted = [
        ("wfr-keys", on.wfr_keys),
        ("sequential-keys", on.sequential_keys),
        ("linearizable-keys", on.linearizable_keys),
    ];
    for (name, _) in wanted.into_iter().filter(|(_, on)| *on) {
        let extra = match name {
            "wfr-keys" => std::mem::take(&mut wfr),
            "sequential-keys" => keyorder::version_edges(t, KeyOrder::Process),
            _ => keyorder::version_edges(t, KeyOrder::Realtime),
        };
        sources.push(name);
        if cyclic_versions(found, &init, &extra, &sources) {
            sources.pop();
        } else {
            init.extend(extra);
        }
    }
    init.sort_unstable();
    init.dedup();
    init
}

/// The initial state's edges (nil before every value an ok/info txn wrote or
/// an ok txn read) and writes-follow-reads edges within ok txns.
fn wfr_edges(t: &Txns) -> (Vec<VersionEdge>, Vec<VersionEdge>) {
    let mut init = Vec::new();
    let mut wfr = Vec::new();
    for i in (0..t.len()).filter(|&i| t.possible(i)) {
        let (reads, writes) = externals(t, i);
        init.extend(writes.iter().map(|&((k, v), _)| (k, None, Some(v))));
        if t.kind(i) != OpType::Ok {
            continue;
        }
        for &((k, r), _) in &reads {
            let Some(r) = r else { continue };
            init.push((k, None, Some(r)));
            wfr.extend(
                writes
                    .iter()
                    .filter(|((wk, _), _)| *wk == k)
                    .map(|&((_, w), _)| (k, Some(r), Some(w))),
            );
        }
    }
    (init, wfr)
}

/// Report every cycle among versions of one key (`cyclic-versions`).
fn cyclic_versions(
    found: &mut Found<'_>,
    a: &[VersionEdge],
    b: &[VersionEdge],
    sources: &[&str],
) -> bool {
    if b.is_empty() {
        return false;
    }
    let mut ids: HashMap<Version, u32> = HashMap::default();
    let mut names: Vec<Version> = Vec::new();
    let mut id = |v: Version| {
        *ids.entry(v).or_insert_with(|| {
            names.push(v);
            names.len() as u32 - 1
        })
    };
    let pairs: Vec<(u32, u32)> = a
        .iter()
        .chain(b)
        .map(|&(k, x, y)| (id((k, x)), id((k, y))))
        .collect();
    let mut offsets = vec![0u32; names.len() + 1];
    for &(x, _) in &pairs {
        if let Some(c) = offsets.get_mut(x as usize + 1) {
            *c += 1;
        }
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let mut fill = offsets.clone();
    let mut targets = vec![0u32; pairs.len()];
    for &(x, y) in &pairs {
        if let Some(s) = fill.get_mut(x as usize) {
            if let Some(d) = targets.get_mut(*s as usize) {
                *d = y;
            }
            *s += 1;
        }
    }
    let sccs = tarjan(&offsets, &targets);
    for scc in &sccs {
        let vs: Vec<Version> = scc
            .iter()
            .filter_map(|&v| names.get(v as usize).copied())
            .collect();
        let key = vs
            .first()
            .map(|v| found.t.key_name(v.0).to_string())
            .unwrap_or_default();
        let values: Vec<Option<i64>> = vs.iter().map(|v| v.1).collect();
        let how = match sources.last() {
            Some(&"sequential-keys") => "each process's order of transactions (sequential keys)",
            Some(&"linearizable-keys") => "the realtime order of transactions (linearizable keys)",
            _ => "that writes follow reads",
        };
        found.add(
            "cyclic-versions",
            format!("inferring {how} makes versions {values:?} of {key} a cycle"),
            Vec::new(),
            json!({"key": key, "scc": values, "sources": sources}),
        );
    }
    !sccs.is_empty()
}

/// ww, wr and rw edges (`wr-graph`, `version-graphs->transaction-graph`).
fn edges(t: &Txns, versions: &[VersionEdge]) -> Vec<Edge> {
    let mut writer: HashMap<(u32, i64), (u32, u32)> = HashMap::default();
    let mut readers: Vec<(Version, u32, u32)> = Vec::new();
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Ok) {
        let (reads, writes) = externals(t, i);
        readers.extend(reads.iter().map(|&(v, m)| (v, i, m)));
        writer.extend(writes.iter().map(|&(kv, m)| (kv, (i, m))));
    }
    readers.sort_unstable();
    let readers_of = |v: Version| {
        let lo = readers.partition_point(|x| x.0 < v);
        readers
            .get(lo..)
            .unwrap_or(&[])
            .iter()
            .take_while(move |x| x.0 == v)
    };
    let mut out = Vec::new();
    for &((k, v), r, rm) in &readers {
        if let Some(&(w, wm)) = v.and_then(|v| writer.get(&(k, v))) {
            if w != r {
                out.push(Edge {
                    from: w,
                    to: r,
                    a_mop: wm,
                    b_mop: rm,
                    kind: WR,
                });
            }
        }
    }
    for &(k, v1, v2) in versions {
        let Some(v2) = v2 else {
            continue;
        };
        let Some(&(w2, wm2)) = writer.get(&(k, v2)) else {
            continue;
        };
        if let Some(&(w1, wm1)) = v1.and_then(|v| writer.get(&(k, v))) {
            if w1 != w2 {
                out.push(Edge {
                    from: w1,
                    to: w2,
                    a_mop: wm1,
                    b_mop: wm2,
                    kind: WW,
                });
            }
        }
        for &(_, r, rm) in readers_of((k, v1)) {
            if r != w2 {
                out.push(Edge {
                    from: r,
                    to: w2,
                    a_mop: rm,
                    b_mop: wm2,
                    kind: RW,
                });
            }
        }
    }
    out
}

/// Run every rw-register check; returns the data dependency edges.
pub(crate) fn analyse(found: &mut Found<'_>, on: Sources) -> Vec<Edge> {
    use super::direct;
    direct::internal_register(found);
    direct::g1a(found);
    direct::g1b(found);
    direct::lost_update(found);
    let versions = version_edges(found, on);
    edges(found.t, &versions)
}

/// Explain a ww / wr / rw edge of a register history.
pub(crate) fn explain(t: &Txns, e: &Edge) -> String {
    let (a, b) = (t.name(e.from), t.name(e.to));
    let am = t.mops.get(e.a_mop as usize).copied();
    let bm = t.mops.get(e.b_mop as usize).copied();
    let k = t.key_name(bm.map(|m| m.key()).unwrap_or(0));
    let val = |m: Option<Mop>| match m {
        Some(Mop::Write { v, .. })
        | Some(Mop::Read {
            seen: Seen::Value(v),
            ..
        }) => v.to_string(),
        Some(Mop::Read {
            seen: Seen::Nil, ..
        }) => "nil".into(),
        _ => "?".into(),
    };
    match e.kind {
        WW => format!(
            "{a} set {k} to {} and {b} set it to {}, later in the version order (ww)",
            val(am),
            val(bm)
        ),
        WR => format!("{a} wrote {k} = {} and {b} read it (wr)", val(am)),
        _ => {
            let _ = RW;
            format!(
                "{a} read {k} = {} and {b} set it to {}, later in the version order (rw)",
                val(am),
                val(bm)
            )
        }
    }
}
