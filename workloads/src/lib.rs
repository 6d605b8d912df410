//! Seeded generators for the rollcall harness (harness.md §4 workloads, §5 nemesis
//! schedules), plus proptest strategies over both ([`strategies`]).
//!
//! Generators draw from a caller-supplied RNG only, so a run is a pure function of
//! its seed: the same seed yields the same operations and the same fault schedule,
//! whichever backend executes them (harness.md §2). Operations are the node's own
//! types, from `rollcall-node-core`.

#![warn(missing_docs)]

pub mod append;
pub mod bank;
pub mod faults;
pub mod keys;
pub mod mixed;
pub mod ops;
pub mod overlap;
pub mod register;
pub mod rw_register;
pub mod strategies;

pub use faults::{
    max_faulty, plan, Behaviour, DiskFault, Fault, NemesisKind, PartitionShape, PlanSpec,
    PlannedFault,
};
pub use ops::{make, Completion, Invocation, Workload, WorkloadKind};
