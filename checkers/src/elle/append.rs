//! List-append version orders and dependencies (elle/list_append.clj).
//!
//! A key's version order is its longest ok read (every other read must be a
//! prefix of it: `incompatible-order` otherwise); a key with no non-empty read
//! and a single append has the order `[v]` (`values-from-single-appends`). An
//! append the order does not contain still comes after the order's last
//! element (`previously-appended-element`): its ww edge comes from that
//! element's writer and its rw edges from every read that ended there, so a
//! stale read whose missing write is never read again is still seen. An ok
//! read of nil is the empty list (parsed so, txn.rs).

use rustc_hash::FxHashSet as HashSet;
use serde_json::json;

use super::graph::{Edge, RW, WR, WW};
use super::report::Found;
use super::txn::{Mop, Seen, Txns};
use crate::history::OpType;

/// A map from (key, value) kept as one small vector per key, sorted by value:
/// lookups touch a key's few cache lines instead of a large hash table.
pub(crate) struct PerKey<T> {
    by_key: Vec<Vec<(i64, T)>>,
}

impl<T: Copy> PerKey<T> {
    fn new(keys: usize) -> Self {
        PerKey {
            by_key: vec![Vec::new(); keys],
        }
    }
    fn push(&mut self, key: u32, v: i64, x: T) {
        if let Some(l) = self.by_key.get_mut(key as usize) {
            l.push((v, x));
        }
    }
    /// Sort each key's entries (stable: the first pushed of equal values wins).
    fn finish(mut self) -> Self {
        for l in &mut self.by_key {
            l.sort_by_key(|e| e.0);
            l.dedup_by_key(|e| e.0);
        }
        self
    }
    fn get(&self, &(key, v): &(u32, i64)) -> Option<&T> {
        let l = self.by_key.get(key as usize)?;
        let i = l.binary_search_by_key(&v, |e| e.0).ok()?;
        l.get(i).map(|e| &e.1)
    }
}

/// (key, value) → (writer txn, append mop index).
type Writers = PerKey<(u32, u32)>;

/// Per key, the distinct elements of its version order, and each element's position.
pub(crate) struct Orders {
    order: Vec<Vec<i64>>,
    pos: PerKey<u32>,
}

impl Orders {
    /// The element appended just before `v` on `key`, `None` for the initial
    /// state; for an element the order lacks, the order's last element.
    fn previous(&self, key: u32, v: i64) -> Option<i64> {
        let order = self.order.get(key as usize)?;
        match self.pos.get(&(key, v)) {
            Some(&p) => p
                .checked_sub(1)
                .and_then(|q| order.get(q as usize).copied()),
            None => order.last().copied(),
        }
    }
}

/// Each key's longest ok read (`sorted-values`' last), as a `Seen`.
fn longest_reads(t: &Txns) -> Vec<Option<Seen>> {
    let mut longest: Vec<Option<Seen>> = vec![None; t.key_names.len()];
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Ok) {
        for m in t.mops(i) {
            if let Mop::Read {
                key,
                seen: seen @ (Seen::List { len, .. } | Seen::Prefix { len, .. }),
            } = *m
            {
                let slot = longest.get_mut(key as usize);
                if let Some(slot) = slot {
                    let cur = slot.map(|s| t.list(s).len()).unwrap_or(0);
                    if len as usize > cur {
                        *slot = Some(seen);
                    }
                }
            }
        }
    }
    longest
}

/// Build version orders; single appends count over txns `include` admits.
fn orders(t: &Txns, longest: &[Option<Seen>], include: impl Fn(u32) -> bool) -> Orders {
    let mut single: Vec<(u32, i64)> = vec![(0, 0); t.key_names.len()];
    for i in (0..t.len()).filter(|&i| include(i)) {
        for m in t.mops(i) {
            if let (Mop::Append { key, v }, Some(s)) = (*m, single.get_mut(m.key() as usize)) {
                let _ = key;
                *s = (s.0.saturating_add(1), v);
            }
        }
    }
    let mut pos = PerKey::new(longest.len());
    let mut order = Vec::with_capacity(longest.len());
    let mut seen: HashSet<i64> = HashSet::default();
    for (k, l) in longest.iter().enumerate() {
        let mut o: Vec<i64> = Vec::new();
        seen.clear();
        match (l, single.get(k)) {
            (Some(s), _) => {
                for &v in t.list(*s) {
                    if seen.insert(v) {
                        pos.push(k as u32, v, o.len() as u32);
                        o.push(v);
                    }
                }
            }
            (None, Some(&(1, v))) => {
                pos.push(k as u32, v, 0);
                o.push(v);
            }
            _ => {}
        }
        order.push(o);
    }
    Orders {
        order,
        pos: pos.finish(),
    }
}

/// `incompatible-order`: an ok read that is not a prefix of its key's longest read.
fn incompatible_orders(found: &mut Found<'_>, longest: &[Option<Seen>]) {
    let t = found.t;
    let mut reported = vec![false; longest.len()];
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Ok) {
        for m in t.mops(i) {
            let Mop::Read { key, seen } = *m else {
                continue;
            };
            let (Some(Some(l)), Some(done)) =
                (longest.get(key as usize), reported.get_mut(key as usize))
            else {
                continue;
            };
            let (read, long) = (t.list(seen), t.list(*l));
            if *done || long.starts_with(read) {
                continue;
            }
            *done = true;
            let k = t.key_name(key);
            found.add(
                "incompatible-order",
                format!(
                    "{} read {k} = {}, which is not a prefix of the longest read {}",
                    t.name(i),
                    show(read),
                    show(long)
                ),
                vec![t.invoke(i)],
                json!({"key": k, "values": [read, long]}),
            );
        }
    }
}

fn show(l: &[i64]) -> String {
    let inner: Vec<String> = l.iter().map(|x| x.to_string()).collect();
    format!("[{}]", inner.join(" "))
}

/// `dirty-update-cases`: along a key's version order, a committed append
/// directly on top of versions only failed txns wrote.
fn dirty_updates(found: &mut Found<'_>, o: &Orders, writers: &Writers) {
    let t = found.t;
    for (k, order) in o.order.iter().enumerate() {
        let (mut t1, mut t1_kind, mut vs): (Option<u32>, OpType, Vec<i64>) =
            (None, OpType::Ok, Vec::new());
        for &v in order {
            vs.push(v);
            let t2 = writers.get(&(k as u32, v)).map(|w| w.0);
            let t2_kind = t2.map(|w| t.kind(w)).unwrap_or(OpType::Info);
            match (t1_kind, t2_kind) {
                (_, OpType::Info) | (OpType::Fail, OpType::Fail) => continue,
                (OpType::Fail, OpType::Ok) => {
                    let key = t.key_name(k as u32);
                    let (a, b) = (t1.unwrap_or(0), t2.unwrap_or(0));
                    found.add(
                        "dirty-update",
                        format!(
                            "{} appended to {key} on top of {}, written by {} which failed",
                            t.name(b),
                            show(&vs),
                            t.name(a)
                        ),
                        vec![t.invoke(a), t.invoke(b)],
                        json!({"key": key, "values": vs, "txns": [t.invoke(a), t.invoke(b)]}),
                    );
                }
                _ => {}
            }
            t1 = t2;
            t1_kind = t2_kind;
            vs = vec![v];
        }
    }
}

/// Every append's writer: (key, value) → (txn, mop index).
fn writers(t: &Txns) -> Writers {
    let mut w = PerKey::new(t.key_names.len());
    for i in 0..t.len() {
        let start = t.txns.get(i as usize).map(|x| x.mop_start).unwrap_or(0);
        for (j, m) in t.mops(i).iter().enumerate() {
            if let Mop::Append { key, v } = *m {
                w.push(key, v, (i, start + j as u32));
            }
        }
    }
    w.finish()
}

/// Ok reads sorted by (key, last element or None for empty): the read index.
fn readers(t: &Txns) -> Vec<(u32, Option<i64>, u32, u32)> {
    let mut r = Vec::new();
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Ok) {
        let start = t.txns.get(i as usize).map(|x| x.mop_start).unwrap_or(0);
        for (j, m) in t.mops(i).iter().enumerate() {
            if let Mop::Read {
                key,
                seen: seen @ (Seen::List { .. } | Seen::Prefix { .. }),
            } = *m
            {
                r.push((key, t.list(seen).last().copied(), i, start + j as u32));
            }
        }
    }
    r.sort_unstable();
    r
}

/// ww, wr and rw edges among ok/info txns (`ww-graph`, `wr-graph`, `rw-graph`).
fn edges(t: &Txns, o: &Orders, writers: &Writers) -> Vec<Edge> {
    let reads = readers(t);
    let mut out = Vec::new();
    for &(key, last, r, rm) in &reads {
        let Some(&(w, wm)) = last.and_then(|v| writers.get(&(key, v))) else {
            continue;
        };
        if w != r && t.possible(w) {
            out.push(Edge {
                from: w,
                to: r,
                a_mop: wm,
                b_mop: rm,
                kind: WR,
            });
        }
    }
    for i in (0..t.len()).filter(|&i| t.possible(i)) {
        let start = t.txns.get(i as usize).map(|x| x.mop_start).unwrap_or(0);
        for (j, m) in t.mops(i).iter().enumerate() {
            let Mop::Append { key, v } = *m else { continue };
            let bm = start + j as u32;
            let prev = o.previous(key, v);
            if let Some(&(w, wm)) = prev.and_then(|p| writers.get(&(key, p))) {
                if w != i && t.possible(w) {
                    out.push(Edge {
                        from: w,
                        to: i,
                        a_mop: wm,
                        b_mop: bm,
                        kind: WW,
                    });
                }
            }
            let lo = reads.partition_point(|x| (x.0, x.1) < (key, prev));
            for &(_, _, r, rm) in reads
                .get(lo..)
                .unwrap_or(&[])
                .iter()
                .take_while(|x| (x.0, x.1) == (key, prev))
            {
                if r != i {
                    out.push(Edge {
                        from: r,
                        to: i,
                        a_mop: rm,
                        b_mop: bm,
                        kind: RW,
                    });
                }
            }
        }
    }
    out
}

/// Run every list-append check; returns the data dependency edges.
pub(crate) fn analyse(found: &mut Found<'_>) -> Vec<Edge> {
    use super::direct;
    direct::g1a(found);
    direct::g1b(found);
    direct::internal_append(found);
    direct::future_read(found);
    direct::duplicates(found);
    direct::lost_update(found);
    let t = found.t;
    let longest = longest_reads(t);
    incompatible_orders(found, &longest);
    let w = writers(t);
    dirty_updates(found, &orders(t, &longest, |_| true), &w);
    let o = orders(t, &longest, |i| t.possible(i));
    drop(longest);
    edges(t, &o, &w)
}

/// Explain a ww / wr / rw edge of a list-append history.
pub(crate) fn explain(t: &Txns, e: &Edge) -> String {
    let (a, b) = (t.name(e.from), t.name(e.to));
    let am = t.mops.get(e.a_mop as usize).copied();
    let bm = t.mops.get(e.b_mop as usize).copied();
    let k = t.key_name(bm.map(|m| m.key()).unwrap_or(0));
    let appended = |m: Option<Mop>| match m {
        Some(Mop::Append { v, .. }) => v.to_string(),
        _ => "?".into(),
    };
    match e.kind {
        WW => format!(
            "{a} appended {} to {k} before {b} appended {} (ww)",
            appended(am),
            appended(bm)
        ),
        WR => format!("{a} appended {} to {k} and {b} read it (wr)", appended(am)),
        _ => {
            let last = match am {
                Some(Mop::Read { seen, .. }) => t.list(seen).last().map(|v| v.to_string()),
                _ => None,
            };
            let last = last.unwrap_or_else(|| "nothing (the empty list)".into());
            let _ = RW;
            format!("{a} read {k} ending at {last} and did not see {b}'s append of {}, which comes next (rw)", appended(bm))
        }
    }
}
