//! Elle-style checking of list-append transactions (harness.md §7 `elle-append`;
//! Kingsbury & Alvaro, "Elle", VLDB 2020).
//!
//! Version orders come from reads (the longest read of a key is its order, every
//! other read must be a prefix of it); ww/wr/rw dependencies come from those
//! orders, realtime and process edges from the history's order. Cycles are found
//! in petgraph's strongly connected components and classified as G0, G1c,
//! G-single or G2-item, with `-process`/`-realtime` variants when the cycle needs
//! such an edge. G1a, G1b, internal, duplicate elements, incompatible orders and
//! lost updates are checked directly.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::history::{History, OpType, Process};
use crate::result::{timed, Anomaly, CheckResult, Checker, Validity};

/// Consistency models Elle knows, weakest first (used in reports).
pub const MODELS: &[&str] = &[
    "read-uncommitted",
    "read-committed",
    "monotonic-atomic-view",
    "cursor-stability",
    "consistent-view",
    "snapshot-isolation",
    "repeatable-read",
    "serializable",
    "strong-session-snapshot-isolation",
    "strong-session-serializable",
    "strong-snapshot-isolation",
    "strict-serializable",
];

/// The models an anomaly rules out (Adya's proscriptions as Elle tabulates them):
/// G0 rules out everything; G1a/b/c read-committed and above; G-single
/// consistent-view / snapshot isolation and above; G2-item repeatable read and
/// serializable; `-process` the strong-session models; `-realtime` the
/// strict/strong ones.
pub fn ruled_out(kind: &str) -> Vec<&'static str> {
    let from = |start: &str| -> Vec<&'static str> {
        MODELS.iter().copied().skip_while(|m| *m != start).collect()
    };
    let (base, variant) = if let Some(b) = kind.strip_suffix("-realtime") {
        (b, Some("realtime"))
    } else if let Some(b) = kind.strip_suffix("-process") {
        (b, Some("process"))
    } else {
        (kind, None)
    };
    let base_models: Vec<&'static str> = match base {
        "G0" | "internal" | "duplicate-elements" | "incompatible-order" | "garbage-read" => {
            from("read-uncommitted")
        }
        "G1a" | "G1b" | "G1c" => from("read-committed"),
        "lost-update" => from("cursor-stability"),
        "G-single" => from("consistent-view"),
        "G2-item" => vec![
            "repeatable-read",
            "serializable",
            "strong-session-serializable",
            "strict-serializable",
        ],
        _ => vec![],
    };
    match variant {
        None => base_models,
        Some("process") => base_models
            .into_iter()
            .filter(|m| m.starts_with("strong") || *m == "strict-serializable")
            .collect(),
        Some(_) => base_models
            .into_iter()
            .filter(|m| *m == "strong-snapshot-isolation" || *m == "strict-serializable")
            .collect(),
    }
}

/// Checks list-append histories against a consistency model.
#[derive(Debug, Clone)]
pub struct ElleChecker {
    /// The model the history must satisfy; default strict-serializable.
    pub model: String,
    /// Budget for the cycle search (graph building is linear and not limited);
    /// when it runs out the anomalies found so far are reported.
    pub cycle_search_limit: Duration,
}

impl Default for ElleChecker {
    fn default() -> Self {
        ElleChecker {
            model: "strict-serializable".into(),
            cycle_search_limit: Duration::from_secs(10),
        }
    }
}

/// The model name given is not one of [`MODELS`].
#[derive(Debug, thiserror::Error)]
#[error("unknown consistency model {0:?}; known: {MODELS:?}")]
pub struct UnknownModel(pub String);

impl ElleChecker {
    /// A checker for the named model (one of [`MODELS`]).
    pub fn with_model(model: &str) -> Result<Self, UnknownModel> {
        if MODELS.contains(&model) {
            Ok(ElleChecker {
                model: model.into(),
                ..Default::default()
            })
        } else {
            Err(UnknownModel(model.into()))
        }
    }
}

#[derive(Debug, Clone)]
enum Mop {
    Append(u32, i64),
    Read(u32, Option<Vec<i64>>),
}

#[derive(Debug)]
struct Txn {
    invoke: u64,
    complete: Option<u64>,
    process: Process,
    kind: OpType,
    mops: Vec<Mop>,
}

const WW: u8 = 1;
const WR: u8 = 2;
const RW: u8 = 4;
const PROC: u8 = 8;
const RT: u8 = 16;
const DATA: u8 = WW | WR | RW;
const ALL: u8 = DATA | PROC | RT;

#[derive(Debug, Clone, Copy)]
struct Edge {
    from: u32,
    to: u32,
    kind: u8,
    key: u32,
    v1: Option<i64>,
    v2: Option<i64>,
}

struct Keys {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Keys {
    fn id(&mut self, k: &Value) -> Option<u32> {
        let s = crate::linearizable::key_string(k)?;
        if let Some(&i) = self.ids.get(&s) {
            return Some(i);
        }
        let i = u32::try_from(self.names.len()).ok()?;
        self.ids.insert(s.clone(), i);
        self.names.push(s);
        Some(i)
    }
    fn name(&self, k: u32) -> &str {
        self.names
            .get(k as usize)
            .map(|s| s.as_str())
            .unwrap_or("?")
    }
}

fn parse_mops(v: &Value, keys: &mut Keys, with_reads: bool) -> Option<Vec<Mop>> {
    let arr = v.as_array()?;
    let mut out = Vec::with_capacity(arr.len());
    for m in arr {
        let [f, k, x] = m.as_array()?.as_slice() else {
            return None;
        };
        let k = keys.id(k)?;
        match f.as_str()? {
            "append" => out.push(Mop::Append(k, x.as_i64()?)),
            "r" => {
                let read = if !with_reads || x.is_null() {
                    None
                } else {
                    let mut l = Vec::new();
                    for e in x.as_array()? {
                        l.push(e.as_i64()?);
                    }
                    Some(l)
                };
                out.push(Mop::Read(k, read));
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Ctx<'a> {
    txns: &'a [Txn],
    keys: &'a Keys,
}

impl Ctx<'_> {
    fn t(&self, i: u32) -> String {
        self.txns
            .get(i as usize)
            .map(|t| format!("T{}", t.invoke))
            .unwrap_or_else(|| "T?".into())
    }
    fn explain(&self, e: &Edge) -> String {
        let (a, b) = (self.t(e.from), self.t(e.to));
        let k = self.keys.name(e.key);
        let v = |x: Option<i64>| x.map(|x| x.to_string()).unwrap_or_else(|| "nothing".into());
        match e.kind {
            WW => format!(
                "{a} appended {} to {k} before {b} appended {} (ww)",
                v(e.v1),
                v(e.v2)
            ),
            WR => format!("{a} appended {} to {k} and {b} read it (wr)", v(e.v1)),
            RW => format!(
                "{a} read {k} ending at {} and did not see {b}'s append of {}, which comes next (rw)",
                v(e.v1),
                v(e.v2)
            ),
            PROC => {
                let p = self
                    .txns
                    .get(e.from as usize)
                    .map(|t| t.process.to_string())
                    .unwrap_or_default();
                format!("{a} then {b} on process {p} (process)")
            }
            _ => {
                let c = self
                    .txns
                    .get(e.from as usize)
                    .and_then(|t| t.complete)
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                let i = self
                    .txns
                    .get(e.to as usize)
                    .map(|t| t.invoke.to_string())
                    .unwrap_or_default();
                format!("{a} completed (index {c}) before {b} was invoked (index {i}) (realtime)")
            }
        }
    }
    fn kind_name(kind: u8) -> &'static str {
        match kind {
            WW => "ww",
            WR => "wr",
            RW => "rw",
            PROC => "process",
            _ => "realtime",
        }
    }
}

fn classify(cycle: &[Edge]) -> String {
    let rw = cycle.iter().filter(|e| e.kind == RW).count();
    let wr = cycle.iter().any(|e| e.kind == WR);
    let base = match rw {
        0 if wr => "G1c",
        0 => "G0",
        1 => "G-single",
        _ => "G2-item",
    };
    if cycle.iter().any(|e| e.kind == RT) {
        format!("{base}-realtime")
    } else if cycle.iter().any(|e| e.kind == PROC) {
        format!("{base}-process")
    } else {
        base.to_string()
    }
}

/// Preference when several relations link the same pair: the weakest first, so
/// cycles are named after the least surprising dependency.
fn pref(kind: u8) -> u8 {
    match kind {
        WW => 0,
        WR => 1,
        PROC => 2,
        RT => 3,
        _ => 4,
    }
}

struct Searcher<'a> {
    edges: &'a [Edge],
    /// Adjacency of nodes in nontrivial SCCs: node → edge indices (same SCC only).
    adj: HashMap<u32, Vec<u32>>,
    deadline: Instant,
}

impl Searcher<'_> {
    /// Shortest path from `from` to `to` using only `allowed` edge kinds.
    fn bfs(&self, from: u32, to: u32, allowed: u8) -> Option<Vec<Edge>> {
        let mut parent: HashMap<u32, u32> = HashMap::new();
        let mut q = VecDeque::new();
        q.push_back(from);
        let mut seen: HashSet<u32> = HashSet::new();
        seen.insert(from);
        while let Some(u) = q.pop_front() {
            if u == to {
                let mut path = Vec::new();
                let mut cur = to;
                while cur != from {
                    let ei = *parent.get(&cur)?;
                    let e = *self.edges.get(ei as usize)?;
                    path.push(e);
                    cur = e.from;
                }
                path.reverse();
                return Some(path);
            }
            for &ei in self.adj.get(&u).map(|v| v.as_slice()).unwrap_or(&[]) {
                let Some(e) = self.edges.get(ei as usize) else {
                    continue;
                };
                if e.kind & allowed != 0 && seen.insert(e.to) {
                    parent.insert(e.to, ei);
                    q.push_back(e.to);
                }
            }
        }
        None
    }

    /// A cycle starting with an edge of kind `required`, continuing with `allowed`.
    fn find(&self, scc: &[u32], required: u8, allowed: u8, budget: &mut u32) -> Option<Vec<Edge>> {
        for &u in scc {
            for &ei in self.adj.get(&u).map(|v| v.as_slice()).unwrap_or(&[]) {
                let Some(e) = self.edges.get(ei as usize) else {
                    continue;
                };
                if e.kind & required == 0 {
                    continue;
                }
                if *budget == 0 || Instant::now() > self.deadline {
                    return None;
                }
                *budget -= 1;
                if let Some(mut path) = self.bfs(e.to, e.from, allowed) {
                    path.insert(0, *e);
                    return Some(path);
                }
            }
        }
        None
    }
}

/// Accumulates anomalies, capping how many of each kind are kept in full.
struct Found {
    anomalies: Vec<Anomaly>,
    counts: BTreeMap<String, usize>,
}

const MAX_PER_KIND: usize = 10;

impl Found {
    fn add(&mut self, kind: &str, explanation: String, ops: Vec<u64>, extra: Value) {
        let c = self.counts.entry(kind.to_string()).or_insert(0);
        *c += 1;
        if *c <= MAX_PER_KIND {
            let mut extra = extra;
            if let Value::Object(m) = &mut extra {
                m.insert("ruled_out".into(), json!(ruled_out(kind)));
            }
            self.anomalies.push(Anomaly {
                kind: kind.into(),
                explanation,
                ops,
                extra,
            });
        }
    }
}

fn list_str(l: &[i64]) -> String {
    let inner: Vec<String> = l.iter().map(|x| x.to_string()).collect();
    format!("[{}]", inner.join(" "))
}

impl Checker for ElleChecker {
    fn name(&self) -> &str {
        "elle-append"
    }

    fn check(&self, h: &History) -> CheckResult {
        timed(|| self.run(h))
    }
}

impl ElleChecker {
    fn run(&self, h: &History) -> CheckResult {
        let mut keys = Keys {
            ids: HashMap::new(),
            names: Vec::new(),
        };
        let mut txns: Vec<Txn> = Vec::new();
        let mut malformed: Vec<u64> = Vec::new();
        for op in h.ops() {
            if op.f != "txn" {
                continue;
            }
            let mops = match op.kind {
                OpType::Ok => op
                    .complete_value
                    .as_ref()
                    .and_then(|v| parse_mops(v, &mut keys, true)),
                _ => parse_mops(&op.invoke_value, &mut keys, false),
            };
            match mops {
                Some(mops) => txns.push(Txn {
                    invoke: op.invoke_index,
                    complete: op.complete_index,
                    process: op.process,
                    kind: op.kind,
                    mops,
                }),
                None => malformed.push(op.invoke_index),
            }
        }
        let mut found = Found {
            anomalies: Vec::new(),
            counts: BTreeMap::new(),
        };
        let ctx_keys = &keys;

        // Writers: (key, value) → (txn, is that txn's final append to key).
        let mut writer: HashMap<(u32, i64), (u32, bool)> = HashMap::new();
        let mut duplicate_appends = 0usize;
        for (ti, t) in txns.iter().enumerate() {
            let ti = ti as u32;
            let mut last_append: HashMap<u32, i64> = HashMap::new();
            for m in &t.mops {
                if let Mop::Append(k, v) = m {
                    last_append.insert(*k, *v);
                }
            }
            for m in &t.mops {
                if let Mop::Append(k, v) = m {
                    let is_final = last_append.get(k) == Some(v);
                    match writer.get(&(*k, *v)) {
                        Some((w, _)) if *w != ti => duplicate_appends += 1,
                        _ => {
                            writer.insert((*k, *v), (ti, is_final));
                        }
                    }
                }
            }
        }
        let is_failed = |w: u32| txns.get(w as usize).is_some_and(|t| t.kind == OpType::Fail);

        // Direct checks over ok reads: internal, duplicates, G1a, G1b, garbage.
        let mut longest: HashMap<u32, (u32, Vec<i64>)> = HashMap::new();
        let mut lost_update_groups: HashMap<(u32, Option<i64>), Vec<u32>> = HashMap::new();
        for (ti, t) in txns.iter().enumerate() {
            if t.kind != OpType::Ok {
                continue;
            }
            let ti = ti as u32;
            let mut known: HashMap<u32, Vec<i64>> = HashMap::new();
            let mut suffix: HashMap<u32, Vec<i64>> = HashMap::new();
            let mut touched: HashSet<u32> = HashSet::new();
            let mut external_read: HashMap<u32, Option<i64>> = HashMap::new();
            for m in &t.mops {
                match m {
                    Mop::Append(k, v) => {
                        touched.insert(*k);
                        match known.get_mut(k) {
                            Some(l) => l.push(*v),
                            None => suffix.entry(*k).or_default().push(*v),
                        }
                        if let Some(last) = external_read.get(k) {
                            lost_update_groups.entry((*k, *last)).or_default().push(ti);
                            external_read.remove(k);
                        }
                    }
                    Mop::Read(k, None) => {
                        touched.insert(*k);
                    }
                    Mop::Read(k, Some(l)) => {
                        let kname = ctx_keys.name(*k);
                        if !touched.contains(k) {
                            external_read.insert(*k, l.last().copied());
                        }
                        touched.insert(*k);
                        // internal consistency
                        let expected = match known.get(k) {
                            Some(exp) if exp != l => Some(list_str(exp)),
                            Some(_) => None,
                            None => match suffix.get(k) {
                                Some(s) if !l.ends_with(s) => {
                                    Some(format!("a list ending in {}", list_str(s)))
                                }
                                _ => None,
                            },
                        };
                        if let Some(exp) = expected {
                            found.add(
                                "internal",
                                format!(
                                    "T{} read {kname} = {} but its own earlier operations imply {exp}",
                                    t.invoke,
                                    list_str(l)
                                ),
                                vec![t.invoke],
                                json!({"key": kname, "read": l}),
                            );
                        }
                        known.insert(*k, l.clone());
                        suffix.remove(k);
                        // duplicates
                        let mut seen = HashSet::new();
                        if let Some(d) = l.iter().find(|x| !seen.insert(**x)) {
                            found.add(
                                "duplicate-elements",
                                format!(
                                    "T{} read {kname} = {} which contains {d} more than once",
                                    t.invoke,
                                    list_str(l)
                                ),
                                vec![t.invoke],
                                json!({"key": kname, "read": l, "duplicate": d}),
                            );
                        }
                        // aborted and garbage reads
                        for v in l {
                            match writer.get(&(*k, *v)) {
                                Some((w, _)) if is_failed(*w) => {
                                    let wi = txns.get(*w as usize).map(|x| x.invoke).unwrap_or(0);
                                    found.add(
                                        "G1a",
                                        format!(
                                            "T{} read {kname} = {} which includes {v}, appended by T{wi} which failed (aborted read)",
                                            t.invoke,
                                            list_str(l)
                                        ),
                                        vec![wi, t.invoke],
                                        json!({"key": kname, "value": v, "writer": wi, "reader": t.invoke}),
                                    );
                                }
                                None => found.add(
                                    "garbage-read",
                                    format!(
                                        "T{} read {kname} = {} which includes {v}, which no transaction appended",
                                        t.invoke,
                                        list_str(l)
                                    ),
                                    vec![t.invoke],
                                    json!({"key": kname, "value": v}),
                                ),
                                _ => {}
                            }
                        }
                        // intermediate read
                        if let Some(v) = l.last() {
                            if let Some((w, false)) = writer.get(&(*k, *v)) {
                                if *w != ti {
                                    let wi = txns.get(*w as usize).map(|x| x.invoke).unwrap_or(0);
                                    found.add(
                                        "G1b",
                                        format!(
                                            "T{} read {kname} = {} ending in {v}, an intermediate append of T{wi} (which appended to {kname} again later)",
                                            t.invoke,
                                            list_str(l)
                                        ),
                                        vec![wi, t.invoke],
                                        json!({"key": kname, "value": v, "writer": wi, "reader": t.invoke}),
                                    );
                                }
                            }
                        }
                        let entry = longest.entry(*k).or_insert_with(|| (ti, Vec::new()));
                        if l.len() > entry.1.len() {
                            *entry = (ti, l.clone());
                        }
                    }
                }
            }
        }
        for ((k, last), group) in &lost_update_groups {
            if group.len() > 1 {
                let ids: Vec<u64> = group
                    .iter()
                    .filter_map(|t| txns.get(*t as usize).map(|x| x.invoke))
                    .collect();
                let kname = keys.name(*k);
                let at = last
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "the empty list".into());
                found.add(
                    "lost-update",
                    format!(
                        "transactions {} all read {kname} at version {at} and then appended to it: all but one update is lost",
                        ids.iter().map(|i| format!("T{i}")).collect::<Vec<_>>().join(", ")
                    ),
                    ids.clone(),
                    json!({"key": kname, "read_version": last, "txns": ids}),
                );
            }
        }

        // Version orders: every read of a key must be a prefix of its longest read.
        let mut bad_keys: HashSet<u32> = HashSet::new();
        for t in &txns {
            if t.kind != OpType::Ok {
                continue;
            }
            for m in &t.mops {
                if let Mop::Read(k, Some(l)) = m {
                    if let Some((lt, long)) = longest.get(k) {
                        if !long.starts_with(l) && !bad_keys.contains(k) {
                            bad_keys.insert(*k);
                            let li = txns.get(*lt as usize).map(|x| x.invoke).unwrap_or(0);
                            let kname = keys.name(*k);
                            found.add(
                                "incompatible-order",
                                format!(
                                    "T{} read {kname} = {} but T{li} read {kname} = {}: neither order extends the other",
                                    t.invoke,
                                    list_str(l),
                                    list_str(long)
                                ),
                                vec![t.invoke, li],
                                json!({"key": kname, "reads": [l, long], "txns": [t.invoke, li]}),
                            );
                        }
                    }
                }
            }
        }
        let mut pos: HashMap<(u32, i64), usize> = HashMap::new();
        for (k, (_, long)) in &longest {
            if bad_keys.contains(k) {
                continue;
            }
            let mut dup = false;
            for (i, v) in long.iter().enumerate() {
                if pos.insert((*k, *v), i).is_some() {
                    dup = true;
                }
            }
            if dup {
                bad_keys.insert(*k);
            }
        }

        // Dependency edges.
        let mut edges: Vec<Edge> = Vec::new();
        let live = |w: u32| !is_failed(w);
        for (k, (_, long)) in &longest {
            if bad_keys.contains(k) {
                continue;
            }
            for pair in long.windows(2) {
                if let [a, b] = pair {
                    if let (Some((wa, _)), Some((wb, _))) =
                        (writer.get(&(*k, *a)), writer.get(&(*k, *b)))
                    {
                        if wa != wb && live(*wa) && live(*wb) {
                            edges.push(Edge {
                                from: *wa,
                                to: *wb,
                                kind: WW,
                                key: *k,
                                v1: Some(*a),
                                v2: Some(*b),
                            });
                        }
                    }
                }
            }
        }
        for (ti, t) in txns.iter().enumerate() {
            if t.kind != OpType::Ok {
                continue;
            }
            let ti = ti as u32;
            let mut seen_keys: HashSet<u32> = HashSet::new();
            for m in &t.mops {
                let Mop::Read(k, Some(l)) = m else { continue };
                // Only a transaction's first read of a key depends on others.
                if bad_keys.contains(k) || !seen_keys.insert(*k) {
                    continue;
                }
                let Some((_, long)) = longest.get(k) else {
                    continue;
                };
                let last = l.last().copied();
                if let Some(v) = last {
                    if let Some((w, _)) = writer.get(&(*k, v)) {
                        if *w != ti && live(*w) {
                            edges.push(Edge {
                                from: *w,
                                to: ti,
                                kind: WR,
                                key: *k,
                                v1: Some(v),
                                v2: None,
                            });
                        }
                    }
                }
                let next_pos = match last {
                    None => Some(0),
                    Some(v) => pos.get(&(*k, v)).map(|p| p + 1),
                };
                if let Some(nv) = next_pos.and_then(|p| long.get(p)) {
                    if let Some((w, _)) = writer.get(&(*k, *nv)) {
                        if *w != ti && live(*w) {
                            edges.push(Edge {
                                from: ti,
                                to: *w,
                                kind: RW,
                                key: *k,
                                v1: last,
                                v2: Some(*nv),
                            });
                        }
                    }
                }
            }
        }
        // Process edges: successive (non-failed) txns of one process.
        let mut last_of: HashMap<Process, u32> = HashMap::new();
        for (ti, t) in txns.iter().enumerate() {
            if t.kind == OpType::Fail {
                continue;
            }
            let ti = ti as u32;
            if let Some(p) = last_of.insert(t.process, ti) {
                edges.push(Edge {
                    from: p,
                    to: ti,
                    kind: PROC,
                    key: u32::MAX,
                    v1: None,
                    v2: None,
                });
            }
        }
        // Realtime edges with Elle's frontier: on invoke, link from every
        // completed txn not already known to precede another completed txn; on
        // completion, the new txn replaces its own predecessors in the frontier.
        // Transitivity covers the dropped edges, keeping this O(n · concurrency).
        let mut points: Vec<(u64, bool, u32)> = Vec::with_capacity(txns.len() * 2);
        for (ti, t) in txns.iter().enumerate() {
            if t.kind == OpType::Fail {
                continue;
            }
            points.push((t.invoke, false, ti as u32));
            if t.kind == OpType::Ok {
                if let Some(c) = t.complete {
                    points.push((c, true, ti as u32));
                }
            }
        }
        points.sort_unstable();
        let mut frontier: Vec<u32> = Vec::new();
        let mut preds: HashMap<u32, Vec<u32>> = HashMap::new();
        for (_, is_complete, ti) in points {
            if is_complete {
                let p = preds.remove(&ti).unwrap_or_default();
                frontier.retain(|x| !p.contains(x));
                frontier.push(ti);
            } else {
                for &f in &frontier {
                    edges.push(Edge {
                        from: f,
                        to: ti,
                        kind: RT,
                        key: u32::MAX,
                        v1: None,
                        v2: None,
                    });
                }
                if txns.get(ti as usize).is_some_and(|t| t.kind == OpType::Ok) {
                    preds.insert(ti, frontier.clone());
                }
            }
        }

        // Strongly connected components.
        let mut g: DiGraph<(), ()> = DiGraph::with_capacity(txns.len(), edges.len());
        for _ in 0..txns.len() {
            g.add_node(());
        }
        for e in &edges {
            g.add_edge(
                NodeIndex::new(e.from as usize),
                NodeIndex::new(e.to as usize),
                (),
            );
        }
        let sccs: Vec<Vec<u32>> = tarjan_scc(&g)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| c.into_iter().map(|n| n.index() as u32).collect())
            .collect();
        drop(g);
        let n_sccs = sccs.len();
        let mut truncated = false;
        if !sccs.is_empty() {
            let mut comp: HashMap<u32, usize> = HashMap::new();
            for (ci, c) in sccs.iter().enumerate() {
                for &n in c {
                    comp.insert(n, ci);
                }
            }
            let mut adj: HashMap<u32, Vec<u32>> = HashMap::new();
            for (ei, e) in edges.iter().enumerate() {
                if let (Some(a), Some(b)) = (comp.get(&e.from), comp.get(&e.to)) {
                    if a == b {
                        adj.entry(e.from).or_default().push(ei as u32);
                    }
                }
            }
            for v in adj.values_mut() {
                v.sort_by_key(|ei| edges.get(*ei as usize).map(|e| pref(e.kind)).unwrap_or(9));
            }
            let searcher = Searcher {
                edges: &edges,
                adj,
                deadline: Instant::now() + self.cycle_search_limit,
            };
            let ctx = Ctx {
                txns: &txns,
                keys: &keys,
            };
            let searches: &[(u8, u8)] = &[
                (WW, WW),
                (WR, WW | WR),
                (RW, WW | WR),
                (RW, DATA),
                (PROC, WW | WR | PROC),
                (RW, WW | WR | PROC),
                (PROC, DATA | PROC),
                (RT, WW | WR | PROC | RT),
                (RW, WW | WR | PROC | RT),
                (RT, ALL),
            ];
            let mut cycle_kinds: HashSet<String> = HashSet::new();
            for scc in sccs.iter().take(1000) {
                let mut any = false;
                for &(req, allowed) in searches {
                    let mut budget = 64;
                    if let Some(cycle) = searcher.find(scc, req, allowed, &mut budget) {
                        any = true;
                        let kind = classify(&cycle);
                        if cycle_kinds.insert(kind.clone()) {
                            report_cycle(&mut found, &ctx, &kind, &cycle);
                        }
                    }
                }
                if !any {
                    let mut budget = 64;
                    if let Some(cycle) = searcher.find(scc, ALL, ALL, &mut budget) {
                        let kind = classify(&cycle);
                        if cycle_kinds.insert(kind.clone()) {
                            report_cycle(&mut found, &ctx, &kind, &cycle);
                        }
                    }
                }
                if Instant::now() > searcher.deadline {
                    truncated = true;
                    break;
                }
            }
            if n_sccs > 1000 {
                truncated = true;
            }
        }

        let kinds: Vec<&String> = found.counts.keys().collect();
        let mut ruled: Vec<&'static str> = Vec::new();
        for k in &kinds {
            for m in ruled_out(k) {
                if !ruled.contains(&m) {
                    ruled.push(m);
                }
            }
        }
        ruled.sort_by_key(|m| MODELS.iter().position(|x| x == m));
        let model_known = MODELS.contains(&self.model.as_str());
        let violated = ruled.contains(&self.model.as_str());
        let validity = if violated {
            Validity::Invalid
        } else if !malformed.is_empty() || !model_known {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let summary = if !model_known {
            format!("unknown consistency model {:?}", self.model)
        } else if kinds.is_empty() && malformed.is_empty() {
            format!(
                "{} transactions are consistent with {} (no anomalies)",
                txns.len(),
                self.model
            )
        } else if kinds.is_empty() {
            format!(
                "no anomalies in {} transactions, but {} transaction(s) could not be interpreted",
                txns.len(),
                malformed.len()
            )
        } else {
            format!(
                "found {} which {} {}",
                kinds
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if violated {
                    "rule out"
                } else {
                    "do not rule out"
                },
                self.model
            )
        };
        let not_ruled: Vec<&str> = MODELS
            .iter()
            .copied()
            .filter(|m| !ruled.contains(m))
            .collect();
        CheckResult {
            checker: self.name().into(),
            validity,
            summary,
            anomalies: found.anomalies,
            details: json!({
                "model": self.model,
                "txns": txns.len(),
                "keys": keys.names.len(),
                "anomaly_counts": found.counts,
                "anomaly_types": kinds,
                "ruled_out": ruled,
                "not_ruled_out": not_ruled,
                "edges": edges.len(),
                "nontrivial_sccs": n_sccs,
                "cycle_search_truncated": truncated,
                "malformed_txns": malformed.iter().take(50).collect::<Vec<_>>(),
                "malformed_count": malformed.len(),
                "duplicate_appends": duplicate_appends,
            }),
            elapsed_ms: 0.0,
        }
    }
}

fn report_cycle(found: &mut Found, ctx: &Ctx<'_>, kind: &str, cycle: &[Edge]) {
    let steps: Vec<String> = cycle.iter().map(|e| ctx.explain(e)).collect();
    let nodes: Vec<u64> = cycle
        .iter()
        .filter_map(|e| ctx.txns.get(e.from as usize).map(|t| t.invoke))
        .collect();
    let names: Vec<String> = nodes.iter().map(|i| format!("T{i}")).collect();
    let first = names.first().cloned().unwrap_or_default();
    let explanation = format!(
        "{kind} cycle {} -> {first}: {}",
        names.join(" -> "),
        steps.join("; ")
    );
    let edges: Vec<Value> = cycle
        .iter()
        .zip(&steps)
        .map(|(e, s)| {
            json!({
                "from": ctx.txns.get(e.from as usize).map(|t| t.invoke),
                "to": ctx.txns.get(e.to as usize).map(|t| t.invoke),
                "kind": Ctx::kind_name(e.kind),
                "key": (e.key != u32::MAX).then(|| ctx.keys.name(e.key)),
                "value": e.v1,
                "next_value": e.v2,
                "explanation": s,
            })
        })
        .collect();
    found.add(
        kind,
        explanation,
        nodes.clone(),
        json!({"cycle": nodes, "edges": edges}),
    );
}
