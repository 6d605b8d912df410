//! The one owner of rollcall's run data (issue 11): the history model and its
//! validation ([`history`], harness.md §6), its one JSON Lines writer ([`jsonl`]),
//! Jepsen's EDN import ([`edn`], issue 15), the verdict types every checker returns
//! ([`result`], harness.md §7), typed nemesis events ([`nemesis`]) and the run
//! directory's files ([`run_dir`], harness.md §8). The harness writes through it,
//! the checkers and the report read through it, so there is one format.

#![warn(missing_docs)]

pub mod attacks;
pub mod edn;
pub mod history;
pub mod jsonl;
pub mod nemesis;
pub mod result;
pub mod run_dir;
pub mod value;

pub use attacks::{Answer, AttackKind, ClientAttack};
pub use history::{Event, History, HistoryError, Op, OpType, Pairing, Process};
pub use nemesis::{NemesisEvent, Phase};
pub use result::{compose, Anomaly, CheckResult, Checker, Results, Validity};
pub use run_dir::{NodeDump, RunDir, RunDirError};
pub use value::{Interner, MicroOp, MopF, MopKey, MopValue, OpValue};
