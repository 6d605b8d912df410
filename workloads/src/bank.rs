//! The `bank` workload (harness.md §4): transfers between accounts with a constant
//! total.
//!
//! The KV API has no conditional write (a `cas` that does not apply is no error and
//! the rest of its transaction still applies, protocol.md §3), so a transfer as two
//! register cas could half-apply. Instead an account is a list of signed deltas and
//! a transfer is one atomic transaction appending `-amount` to one account and
//! `+amount` to another; a balance is `INITIAL + sum(deltas)`. A transfer debits the
//! account this process last saw richest, so balances stay far from zero.

use crate::ops::{result_at, Completion, Invocation, Workload, WorkloadKind};
use rand::{Rng, RngCore};
use rollcall_node_core::types::{Op, OpResult, TxOutcome, Value};
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;

/// Number of accounts.
pub const ACCOUNTS: usize = 5;
/// Every account's opening balance.
pub const INITIAL: i64 = 1000;
/// Largest amount of one transfer.
pub const MAX_AMOUNT: i64 = 5;

/// The constant total every read must see (harness.md §7 `bank`).
pub const fn total() -> i64 {
    ACCOUNTS as i64 * INITIAL
}

fn account(i: usize) -> String {
    format!("acct-{i}")
}

/// The bank generator.
#[derive(Debug, Clone, Default)]
pub struct Bank {
    /// Balances each process last read.
    seen: BTreeMap<u64, Vec<i64>>,
}

impl Bank {
    fn read_all() -> Invocation {
        Invocation {
            f: "read".into(),
            value: Json::Null,
            ops: (0..ACCOUNTS).map(|i| Op::Read(account(i))).collect(),
        }
    }
}

impl Workload for Bank {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Bank
    }

    fn invoke(&mut self, rng: &mut dyn RngCore, process: u64) -> Invocation {
        if rng.gen_bool(0.5) {
            return Bank::read_all();
        }
        let from = match self.seen.get(&process) {
            Some(b) => (0..ACCOUNTS)
                .max_by_key(|i| (b[*i], std::cmp::Reverse(*i)))
                .unwrap_or(0),
            None => rng.gen_range(0..ACCOUNTS),
        };
        let to = (from + rng.gen_range(1..ACCOUNTS)) % ACCOUNTS;
        let amount = rng.gen_range(1..=MAX_AMOUNT);
        Invocation {
            f: "transfer".into(),
            value: json!({"from": account(from), "to": account(to), "amount": amount}),
            ops: vec![
                Op::Append(account(from), -amount),
                Op::Append(account(to), amount),
            ],
        }
    }

    fn complete(&mut self, process: u64, inv: &Invocation, outcome: &TxOutcome) -> Completion {
        if outcome.error.is_some() {
            return Completion::Fail(inv.value.clone());
        }
        if inv.f != "read" {
            return Completion::Ok(inv.value.clone());
        }
        let mut balances = Map::new();
        let mut seen = Vec::with_capacity(ACCOUNTS);
        for (i, op) in inv.ops.iter().enumerate() {
            let Op::Read(k) = op else { continue };
            let bal = match result_at(outcome, i) {
                Some(OpResult::Read(_, None)) => json!(INITIAL),
                Some(OpResult::Read(_, Some(Value::List(l)))) => {
                    json!(INITIAL + l.iter().sum::<i64>())
                }
                // A register where a list belongs: not a balance; the checker says so.
                _ => Json::Null,
            };
            seen.push(bal.as_i64().unwrap_or(INITIAL));
            balances.insert(k.clone(), bal);
        }
        self.seen.insert(process, seen);
        Completion::Ok(Json::Object(balances))
    }

    fn final_reads(&self) -> Vec<Invocation> {
        vec![Bank::read_all()]
    }
}
