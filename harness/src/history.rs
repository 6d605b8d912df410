//! Recording the history as JSON Lines (harness.md §6): the one writer lives in
//! `rollcall_history::jsonl` (issue 11), shared with the checkers' reader.

pub use rollcall_history::jsonl::{Recorder, Who};
