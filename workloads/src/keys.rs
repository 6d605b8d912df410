//! The rotating key set shared by the transactional workloads (harness.md §4):
//! a few keys open at once, each written a bounded number of times with values
//! unique per key (counting up from 1), then retired for a fresh key. Unique
//! values let Elle recover version orders from reads; rotation keeps each key's
//! history, and so the checker's graphs, small.

use crate::ops::Invocation;
use rand::{Rng, RngCore};
use rollcall_node_core::types::Op;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// The keys a workload reads and writes.
#[derive(Debug, Clone)]
pub struct RotatingKeys {
    prefix: &'static str,
    writes_per_key: i64,
    active: Vec<u64>,
    next_key: u64,
    /// Last value written per key.
    last_value: BTreeMap<u64, i64>,
}

impl RotatingKeys {
    /// `active` keys named `<prefix><n>`, each retired after `writes_per_key` writes.
    pub fn new(prefix: &'static str, active: usize, writes_per_key: i64) -> RotatingKeys {
        RotatingKeys {
            prefix,
            writes_per_key,
            active: (0..active as u64).collect(),
            next_key: active as u64,
            last_value: BTreeMap::new(),
        }
    }

    fn name(&self, k: u64) -> String {
        format!("{}{k}", self.prefix)
    }

    /// One micro-op's key, a read (`None`) or a write of the key's next unique
    /// value, evenly (the draw order is part of the seed contract: golden runs).
    pub fn draw(&mut self, rng: &mut dyn RngCore) -> (String, Option<i64>) {
        let slot = rng.gen_range(0..self.active.len());
        let k = self.active[slot];
        let name = self.name(k);
        if rng.gen_bool(0.5) {
            return (name, None);
        }
        let v = self.last_value.entry(k).or_insert(0);
        *v += 1;
        let v = *v;
        if v >= self.writes_per_key {
            self.active[slot] = self.next_key;
            self.next_key += 1;
        }
        (name, Some(v))
    }

    /// Keys used so far.
    pub fn used(&self) -> u64 {
        self.next_key
    }

    /// One transaction of 1–4 micro-ops, each a read (`["r", k, null]`) or the
    /// write `write` makes of a fresh unique value (an append, a register write),
    /// in this draw order (the golden runs fix it): the shape Elle's list-append and
    /// rw-register workloads share.
    pub fn txn(
        &mut self,
        rng: &mut dyn RngCore,
        write: impl Fn(&str, i64) -> (Op, Json),
    ) -> Invocation {
        let n = rng.gen_range(1..=4);
        let mut ops = Vec::with_capacity(n);
        let mut value = Vec::with_capacity(n);
        for _ in 0..n {
            let (name, fresh) = self.draw(rng);
            let (op, mop) = match fresh {
                None => (Op::Read(name.clone()), json!(["r", name, null])),
                Some(v) => write(&name, v),
            };
            ops.push(op);
            value.push(mop);
        }
        Invocation {
            f: "txn".into(),
            value: Json::Array(value),
            ops,
        }
    }

    /// Read transactions over every key ever used, 64 keys each (harness.md §5).
    pub fn final_reads(&self) -> Vec<Invocation> {
        let keys: Vec<String> = (0..self.next_key).map(|k| self.name(k)).collect();
        keys.chunks(64)
            .map(|chunk| Invocation {
                f: "txn".into(),
                value: Json::Array(chunk.iter().map(|k| json!(["r", k, null])).collect()),
                ops: chunk.iter().map(|k| Op::Read(k.clone())).collect(),
            })
            .collect()
    }
}
