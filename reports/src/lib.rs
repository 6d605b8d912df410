//! The human side of a rollcall run (harness.md §8 "Run store and report"): one
//! self-contained `report.html` per run with its `plots/*.svg`, and `rollcall
//! serve`, a local web UI over the run store.
//!
//! A run directory is read as the harness wrote it (`test.json`,
//! `schedule.json`, `history.jsonl`, `results.json`, `nodes/<n>/`); every file is
//! optional so that the report of a partial or corrupt run still renders what it
//! can and says what is missing ([`run::RunData`]).

#![warn(missing_docs)]

pub mod cycle;
pub mod error;
pub mod html;
pub mod plots;
pub mod report;
pub mod run;
pub mod sample;
pub mod serve;
pub mod timeline;

pub use error::ReportError;
pub use report::write_report;
pub use serve::{router, serve};
