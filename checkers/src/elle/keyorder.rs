//! Elle's `:sequential-keys?` and `:linearizable-keys?` for rw-register
//! (rw_register.clj `transaction-graph->version-graphs` over `process-graph` or
//! `realtime-graph`): if every key is by itself sequentially consistent (or
//! linearizable), a transaction that follows another in its process's order (or
//! in real time) saw or made a later version of each key they share. So the
//! last external value T1 had for k (its final write, else its read) precedes
//! the first external value of k in each nearest later T2 on k (its read if
//! not nil, else its write, as Elle's `(or read write)`). Only ok transactions
//! are in the process order; crashed (info) ones only receive realtime edges
//! and only through their writes, as in Elle.
//!
//! Elle links T1 to the transactions on k reached by paths of its reduced order
//! graph that avoid other transactions on k; this links T1 to the minimal later
//! transactions on k, which gives the same version order up to transitivity.

use rustc_hash::FxHashMap as HashMap;

use super::register::VersionEdge;
use super::txn::Txns;
use crate::history::OpType;

/// Which order of transactions to read version order from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOrder {
    /// `:sequential-keys?`: each process's order of ok transactions.
    Process,
    /// `:linearizable-keys?`: real time (T1 completed before T2 was invoked).
    Realtime,
}

/// One transaction's contact with one key.
#[derive(Debug, Clone, Copy)]
struct Touch {
    invoke: u64,
    /// Completion index; `u64::MAX` for info (nothing follows it).
    complete: u64,
    /// Process order's chain (`u64::MAX` where there is none).
    chain: u64,
    /// The final external value (the `v1` of a predecessor); `None` if this
    /// transaction cannot precede anything (info).
    last: Option<Option<i64>>,
    /// The first external value (the `v2` of a successor).
    first: Option<i64>,
}

/// Every key's contacts, in invoke order.
fn touches(t: &Txns, order: KeyOrder) -> HashMap<u32, Vec<Touch>> {
    let mut by_key: HashMap<u32, Vec<Touch>> = HashMap::default();
    let mut chains: HashMap<crate::history::Process, u64> = HashMap::default();
    for (i, x) in t.txns.iter().enumerate() {
        let ok = x.kind == OpType::Ok;
        if !(ok || (x.kind == OpType::Info && order == KeyOrder::Realtime)) {
            continue;
        }
        let next = chains.len() as u64;
        let chain = *chains.entry(x.process).or_insert(next);
        let (reads, writes) = super::register::externals(t, i as u32);
        let mut keys: Vec<u32> = writes.iter().map(|((k, _), _)| *k).collect();
        if ok {
            keys.extend(reads.iter().map(|((k, _), _)| *k));
        }
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            let write = writes
                .iter()
                .find(|((wk, _), _)| *wk == k)
                .map(|((_, v), _)| *v);
            let read = reads
                .iter()
                .find(|((rk, _), _)| *rk == k)
                .map(|((_, v), _)| *v);
            let (last, first) = if ok {
                (Some(write.or(read.flatten())), read.flatten().or(write))
            } else {
                (None, write)
            };
            by_key.entry(k).or_default().push(Touch {
                invoke: x.invoke,
                complete: if ok { x.complete } else { u64::MAX },
                chain,
                last,
                first,
            });
        }
    }
    by_key
}

/// Version edges `v1 → v2` per key that `order` implies (self-edges left out).
pub(crate) fn version_edges(t: &Txns, order: KeyOrder) -> Vec<VersionEdge> {
    let mut out = Vec::new();
    for (k, mut ts) in touches(t, order) {
        let mut link = |a: &Touch, b: &Touch| {
            if let Some(v1) = a.last {
                if v1 != b.first {
                    out.push((k, v1, b.first));
                }
            }
        };
        match order {
            KeyOrder::Process => {
                ts.sort_by_key(|x| (x.chain, x.invoke));
                for w in ts.windows(2) {
                    if let [a, b] = w {
                        if a.chain == b.chain {
                            link(a, b);
                        }
                    }
                }
            }
            KeyOrder::Realtime => {
                ts.sort_by_key(|x| x.invoke);
                // min_done[i]: the earliest completion among ts[i..].
                let mut min_done = vec![u64::MAX; ts.len() + 1];
                for i in (0..ts.len()).rev() {
                    min_done[i] = min_done[i + 1].min(ts[i].complete);
                }
                for a in ts.iter().filter(|a| a.complete != u64::MAX) {
                    let start = ts.partition_point(|b| b.invoke <= a.complete);
                    let m = min_done[start];
                    // The minimal later ones: invoked before any later one completed.
                    for b in ts[start..].iter().take_while(|b| b.invoke < m) {
                        link(a, b);
                    }
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
