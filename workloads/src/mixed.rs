//! The `mixed` workload (harness.md §4): append, register and bank operations
//! interleaved in one run. Their key spaces are already disjoint (`k<n>`, `r<n>`,
//! `acct-<n>`), so each sub-workload's operations can be told apart in the history
//! by shape ([`SubWorkload::of`]) and judged by its own checker.

use crate::append::Append;
use crate::bank::Bank;
use crate::ops::{Completion, Invocation, Workload, WorkloadKind};
use crate::register::Register;
use rand::{Rng, RngCore};
use rollcall_node_core::types::TxOutcome;
use serde_json::Value as Json;

/// The workloads a mixed run interleaves, in draw order (the order is part of the
/// seed contract: the same seed draws the same sub-workload for each operation).
pub const PARTS: [WorkloadKind; 3] = [
    WorkloadKind::Append,
    WorkloadKind::Register,
    WorkloadKind::Bank,
];

/// Tells which sub-workload of a mixed run an operation belongs to.
#[derive(Debug, Clone, Copy)]
pub struct SubWorkload;

impl SubWorkload {
    /// The sub-workload of an operation from its history `f` and invoke `value`:
    /// `txn` is list-append; `transfer`, and a `read` whose value is null or an
    /// object (every account at once), is bank; `read`/`write`/`cas` over
    /// `[key, ...]` is register. `None` for anything else.
    pub fn of(f: &str, value: &Json) -> Option<WorkloadKind> {
        match f {
            "txn" => Some(WorkloadKind::Append),
            "transfer" => Some(WorkloadKind::Bank),
            "read" if value.is_null() || value.is_object() => Some(WorkloadKind::Bank),
            "read" | "write" | "cas" if value.is_array() => Some(WorkloadKind::Register),
            _ => None,
        }
    }
}

/// The mixed generator: each operation comes from one of [`PARTS`], chosen by a
/// seeded draw, so every part sees a share of every fault window.
#[derive(Debug, Clone, Default)]
pub struct Mixed {
    append: Append,
    register: Register,
    bank: Bank,
}

impl Mixed {
    fn part(&mut self, kind: WorkloadKind) -> &mut dyn Workload {
        match kind {
            WorkloadKind::Register => &mut self.register,
            WorkloadKind::Bank => &mut self.bank,
            _ => &mut self.append,
        }
    }
}

impl Workload for Mixed {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Mixed
    }

    fn invoke(&mut self, rng: &mut dyn RngCore, process: u64) -> Invocation {
        let kind = PARTS[rng.gen_range(0..PARTS.len())];
        self.part(kind).invoke(rng, process)
    }

    fn complete(&mut self, process: u64, inv: &Invocation, outcome: &TxOutcome) -> Completion {
        // Every invocation made here has a shape `of` recognises; the fallback
        // keeps the trait total.
        let kind = SubWorkload::of(&inv.f, &inv.value).unwrap_or(WorkloadKind::Append);
        self.part(kind).complete(process, inv, outcome)
    }

    fn final_reads(&self) -> Vec<Invocation> {
        let mut out = self.append.final_reads();
        out.extend(self.register.final_reads());
        out.extend(self.bank.final_reads());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_every_part_and_classifies_each_op_back() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut m = Mixed::default();
        let mut seen = std::collections::BTreeMap::new();
        for p in 0..600 {
            let inv = m.invoke(&mut rng, p % 8);
            let kind = SubWorkload::of(&inv.f, &inv.value).expect("recognised");
            let prefix = match kind {
                WorkloadKind::Append => "k",
                WorkloadKind::Register => "r",
                _ => "acct-",
            };
            for op in &inv.ops {
                let key = format!("{op:?}");
                assert!(key.contains(&format!("\"{prefix}")), "{kind}: {op:?}");
            }
            *seen.entry(kind).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.values().all(|n| *n > 120), "{seen:?}");
    }
}
