//! The `clock` nemesis's primitives on containers (issue 16; what the fault means is
//! `crate::nemesis`'s): each node's clock is libfaketime inside its container,
//! preloaded into the node process only, set through a control file the harness
//! writes from the host into a read-only bind mount ([`rollcall_docker::clock`]).
//! The host's clock is never touched. The harness models each clock
//! ([`FakeClock`]) so a rate change keeps it continuous but for the asked jump, and
//! re-anchors the file before a node restarts or resumes (a fresh or thawed process
//! reads an `@E xR` setting as "reads E now").

use super::{DockerBackend, State};
use crate::backend::BackendError;
use rollcall_docker::clock::{host_now_ns, write_control, FakeClock, TRUE_TIME};
use rollcall_docker::ExecOutput;
use serde_json::{json, Value};
use std::path::PathBuf;
use tracing::info;

impl DockerBackend {
    /// Runs `cmd` in node `name`'s container (tests read its clock and files with
    /// it; with [`rollcall_docker::clock::with_faketime`] it sees the node's clock).
    pub fn exec(&self, name: &str, cmd: &[&str]) -> Result<ExecOutput, BackendError> {
        let c = self.container(self.index(name)?)?;
        self.rt.block_on(c.exec(cmd)).map_err(super::be)
    }

    /// Host directory holding node `i`'s clock control file (mounted read-only in
    /// its container; beside, not inside, its home).
    pub(super) fn clock_dir(&self, i: usize) -> PathBuf {
        self.homes.join(format!("{}.clock", self.nodes[i].name))
    }

    /// Writes node `i`'s control file for its clock now (true time when it has none).
    pub(super) fn write_clock(&self, i: usize) -> Result<String, BackendError> {
        let line = match self.clocks.get(&i) {
            Some(c) => c.line(host_now_ns()),
            None => TRUE_TIME.to_string(),
        };
        write_control(&self.clock_dir(i), &line)
            .map_err(|e| BackendError::Other(format!("clock of {}: {e}", self.nodes[i].name)))?;
        Ok(line)
    }

    /// `set_clock`: node `name`'s clock jumps by `jump_ms` and then runs at
    /// `rate_pct`; what the history records (the control line written, the clock's
    /// offset from true time afterwards, and how the node's timers follow).
    pub(super) fn set_node_clock(
        &mut self,
        name: &str,
        rate_pct: u32,
        jump_ms: i64,
    ) -> Result<Value, BackendError> {
        let i = self.index(name)?;
        let now = host_now_ns();
        let mut c = self
            .clocks
            .get(&i)
            .copied()
            .unwrap_or(FakeClock::true_time());
        c.set(now, rate_pct, jump_ms);
        self.clocks.insert(i, c);
        let line = self.write_clock(i)?;
        info!(node = name, rate_pct, jump_ms, %line, "node clock set");
        let mut v = json!({
            "node": name,
            "rate_pct": rate_pct,
            "jump_ms": jump_ms,
            "offset_ms": c.offset_ms(now),
            "control": line,
            "via": "libfaketime in the node's container (realtime and monotonic; epoll/poll/sleep timeouts scaled by 1/rate)",
        });
        if self.nodes[i].state != State::Running {
            // A frozen or stopped process reads the setting when it runs again; the
            // file is re-anchored then, so the clock is right from that moment.
            v["applies_when"] = json!("the node runs again");
        }
        Ok(v)
    }

    /// `reset_clocks` (the final heal): every faked clock back to true time (a step
    /// by minus its offset); the nodes whose clock was faked.
    pub(super) fn reset_node_clocks(&mut self) -> Vec<String> {
        let now = host_now_ns();
        let was = std::mem::take(&mut self.clocks);
        let mut names = Vec::new();
        for (i, c) in was {
            let name = self.nodes[i].name.clone();
            info!(node = %name, offset_ms = c.offset_ms(now), rate_pct = c.rate_pct(), "node clock reset to true time");
            if let Err(e) = self.write_clock(i) {
                tracing::warn!(node = %name, "clock reset failed: {e}");
            }
            names.push(name);
        }
        names
    }
}
