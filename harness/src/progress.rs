//! Progress on stderr (harness.md §3: phase, elapsed/limit, ops done, current
//! fault), hidden when stderr is not a terminal or with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A progress line for one run.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `limit_s` seconds of (backend) time.
    pub fn new(limit_s: u64, quiet: bool) -> Self {
        let bar = ProgressBar::new(limit_s.max(1) * 1000);
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
        {
            bar.set_style(style);
        }
        Progress { bar }
    }

    /// Updates the line.
    pub fn update(&self, phase: &str, now_ns: u64, limit_ns: u64, ops: u64, fault: &str) {
        self.bar.set_position(now_ns / 1_000_000);
        self.bar.set_message(format!(
            "{phase} | {:.1}/{:.0} s | {ops} ops | fault: {fault}",
            now_ns as f64 / 1e9,
            limit_ns as f64 / 1e9
        ));
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
