//! Anomalies seen without a dependency graph, one function each (Elle's
//! `g1a-cases`, `g1b-cases`, `lost-update-cases`, `internal-cases`,
//! `op-future-read-case`, `duplicates` in list_append.clj, rw_register.clj and
//! txn.clj).

use rustc_hash::FxHashMap as HashMap;
use serde_json::json;

use super::report::Found;
use super::txn::{Mop, Seen, Txns};
use crate::history::OpType;

/// (key, value) → (txn, mop index) for writes matching `pick`.
type WriteIndex = HashMap<(u32, i64), (u32, u32)>;

fn written(m: &Mop) -> Option<(u32, i64)> {
    match *m {
        Mop::Append { key, v } | Mop::Write { key, v } => Some((key, v)),
        Mop::Read { .. } => None,
    }
}

/// The values a read shows that must each have been written by someone:
/// every element of a list, or a register's value.
fn observed<'a>(t: &'a Txns, m: &'a Mop) -> &'a [i64] {
    match m {
        Mop::Read {
            seen: Seen::Value(v),
            ..
        } => std::slice::from_ref(v),
        Mop::Read { seen, .. } => t.list(*seen),
        _ => &[],
    }
}

/// The value a read ends at: its list's last element or the register value.
fn last_observed(t: &Txns, m: &Mop) -> Option<i64> {
    observed(t, m).last().copied()
}

fn ok_reads(t: &Txns) -> impl Iterator<Item = (u32, u32, &Mop)> {
    (0..t.len())
        .filter(|&i| t.kind(i) == OpType::Ok)
        .flat_map(move |i| {
            let start = t.txns.get(i as usize).map(|x| x.mop_start).unwrap_or(0);
            t.mops(i)
                .iter()
                .enumerate()
                .filter(|(_, m)| matches!(m, Mop::Read { .. }))
                .map(move |(j, m)| (i, start + j as u32, m))
        })
}

fn failed_writes(t: &Txns) -> WriteIndex {
    let mut idx = WriteIndex::default();
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Fail) {
        let start = t.txns.get(i as usize).map(|x| x.mop_start).unwrap_or(0);
        for (j, m) in t.mops(i).iter().enumerate() {
            if let Some(kv) = written(m) {
                idx.insert(kv, (i, start + j as u32));
            }
        }
    }
    idx
}

/// Writes a transaction later overwrote itself (`intermediate-write-indices`).
fn intermediate_writes(t: &Txns) -> WriteIndex {
    let mut idx = WriteIndex::default();
    for i in 0..t.len() {
        let start = t.txns.get(i as usize).map(|x| x.mop_start).unwrap_or(0);
        let mut last: HashMap<u32, (i64, u32)> = HashMap::default();
        for (j, m) in t.mops(i).iter().enumerate() {
            if let Some((k, v)) = written(m) {
                if let Some((pv, pj)) = last.insert(k, (v, start + j as u32)) {
                    idx.insert((k, pv), (i, pj));
                }
            }
        }
    }
    idx
}

/// G1a (aborted read): an ok read shows a value written by a failed txn.
pub(crate) fn g1a(found: &mut Found<'_>) {
    let t = found.t;
    let failed = failed_writes(t);
    if failed.is_empty() {
        return;
    }
    for (i, _, m) in ok_reads(t) {
        for &v in observed(t, m) {
            if let Some(&(w, _)) = failed.get(&(m.key(), v)) {
                let k = t.key_name(m.key());
                found.add(
                    "G1a",
                    format!(
                        "{} read {v} from {k}, written by {}, which failed",
                        t.name(i),
                        t.name(w)
                    ),
                    vec![t.invoke(w), t.invoke(i)],
                    json!({"key": k, "element": v, "writer": t.invoke(w)}),
                );
            }
        }
    }
}

/// G1b (intermediate read): an ok read ends at a value its writer overwrote.
pub(crate) fn g1b(found: &mut Found<'_>) {
    let t = found.t;
    let im = intermediate_writes(t);
    if im.is_empty() {
        return;
    }
    for (i, _, m) in ok_reads(t) {
        let Some(v) = last_observed(t, m) else {
            continue;
        };
        if let Some(&(w, _)) = im.get(&(m.key(), v)) {
            if w != i {
                let k = t.key_name(m.key());
                found.add(
                    "G1b",
                    format!(
                        "{} read {k} ending at {v}, an intermediate write of {} (not its last to {k})",
                        t.name(i),
                        t.name(w)
                    ),
                    vec![t.invoke(w), t.invoke(i)],
                    json!({"key": k, "element": v, "writer": t.invoke(w)}),
                );
            }
        }
    }
}

/// Lost update (`lost-update-cases`): two ok txns read the same version of a
/// key and both then wrote it.
pub(crate) fn lost_update(found: &mut Found<'_>) {
    let t = found.t;
    let mut groups: HashMap<(u32, Vec<i64>), Vec<u32>> = HashMap::default();
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Ok) {
        let mut reads: HashMap<u32, Vec<i64>> = HashMap::default();
        let mut wrote: Vec<u32> = Vec::new();
        for m in t.mops(i) {
            let k = m.key();
            if written(m).is_some() {
                if let (Some(r), false) = (reads.get(&k), wrote.contains(&k)) {
                    groups.entry((k, r.clone())).or_default().push(i);
                    wrote.push(k);
                }
            } else {
                reads.entry(k).or_insert_with(|| observed(t, m).to_vec());
            }
        }
    }
    let mut cases: Vec<_> = groups.into_iter().filter(|(_, v)| v.len() > 1).collect();
    cases.sort();
    for ((k, read), txns) in cases {
        let k = t.key_name(k);
        let ids: Vec<u64> = txns.iter().map(|&x| t.invoke(x)).collect();
        let names: Vec<String> = txns.iter().map(|&x| t.name(x)).collect();
        found.add(
            "lost-update",
            format!(
                "{} all read {k} = {read:?} and then wrote {k}: all but one update is lost",
                names.join(", ")
            ),
            ids.clone(),
            json!({"key": k, "value": read, "txns": ids}),
        );
    }
}

/// Internal consistency of list-append (`op-int-case`): a read must show the
/// txn's own earlier reads and appends to that key.
pub(crate) fn internal_append(found: &mut Found<'_>) {
    let t = found.t;
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Ok) {
        // key → (known prefix?, expected elements)
        let mut state: HashMap<u32, (bool, Vec<i64>)> = HashMap::default();
        for m in t.mops(i) {
            match *m {
                Mop::Append { key, v } => state.entry(key).or_insert((false, Vec::new())).1.push(v),
                Mop::Read { key, seen } => {
                    let l = t.list(seen);
                    if let Some((full, exp)) = state.get(&key) {
                        let bad = if *full {
                            exp.as_slice() != l
                        } else {
                            !l.ends_with(exp)
                        };
                        if bad {
                            let k = t.key_name(key);
                            let shown = if *full {
                                format!("{exp:?}")
                            } else {
                                format!("[... {exp:?}]")
                            };
                            found.add(
                                "internal",
                                format!("{} read {k} = {l:?} but its own earlier operations imply {shown}", t.name(i)),
                                vec![t.invoke(i)],
                                json!({"key": k, "read": l, "expected": exp}),
                            );
                            break;
                        }
                    }
                    state.insert(key, (true, l.to_vec()));
                }
                Mop::Write { .. } => {}
            }
        }
    }
}

/// Internal consistency of registers: a read must equal the txn's previous
/// read or write of that key.
pub(crate) fn internal_register(found: &mut Found<'_>) {
    let t = found.t;
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Ok) {
        let mut state: HashMap<u32, Option<i64>> = HashMap::default();
        for m in t.mops(i) {
            let (key, now) = match *m {
                Mop::Write { key, v } => (key, Some(v)),
                Mop::Read {
                    key,
                    seen: Seen::Value(v),
                } => (key, Some(v)),
                Mop::Read { key, .. } => (key, None),
                Mop::Append { .. } => continue,
            };
            if let (Mop::Read { .. }, Some(expected)) = (m, state.get(&key)) {
                if *expected != now {
                    let k = t.key_name(key);
                    found.add(
                        "internal",
                        format!(
                            "{} read {k} = {now:?} after its own read or write of {expected:?}",
                            t.name(i)
                        ),
                        vec![t.invoke(i)],
                        json!({"key": k, "read": now, "expected": expected}),
                    );
                    break;
                }
            }
            state.insert(key, now);
        }
    }
}

/// Future read (`op-future-read-case`): a txn reads an element it appends later.
pub(crate) fn future_read(found: &mut Found<'_>) {
    let t = found.t;
    for i in (0..t.len()).filter(|&i| t.kind(i) == OpType::Ok) {
        let mops = t.mops(i);
        let hit = mops.iter().enumerate().find_map(|(j, m)| {
            let Mop::Append { key, v } = *m else {
                return None;
            };
            mops.get(..j)?
                .iter()
                .find(|r| {
                    matches!(r, Mop::Read { key: rk, .. } if *rk == key)
                        && observed(t, r).contains(&v)
                })
                .map(|_| (key, v))
        });
        if let Some((key, v)) = hit {
            let k = t.key_name(key);
            found.add(
                "future-read",
                format!(
                    "{} read {v} in {k} before it appended {v} itself",
                    t.name(i)
                ),
                vec![t.invoke(i)],
                json!({"key": k, "element": v}),
            );
        }
    }
}

/// Duplicate elements (`duplicates`): a read shows one appended value twice.
pub(crate) fn duplicates(found: &mut Found<'_>) {
    let t = found.t;
    for i in (0..t.len()).filter(|&i| t.possible(i)) {
        for m in t.mops(i) {
            let l = observed(t, m);
            let mut sorted = l.to_vec();
            sorted.sort_unstable();
            let dups: Vec<i64> = sorted
                .windows(2)
                .filter(|w| w[0] == w[1])
                .map(|w| w[0])
                .collect();
            if !dups.is_empty() {
                let k = t.key_name(m.key());
                found.add(
                    "duplicate-elements",
                    format!(
                        "{} read {k} = {l:?}, which holds {dups:?} more than once",
                        t.name(i)
                    ),
                    vec![t.invoke(i)],
                    json!({"key": k, "read": l, "duplicates": dups}),
                );
            }
        }
    }
}
