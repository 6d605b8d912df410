//! The options of `rollcall test` (harness.md §3), validated before anything runs so
//! that bad arguments exit 254 with a clear message.

use rollcall_workloads::{NemesisKind, WorkloadKind};
use serde::{Deserialize, Serialize};

/// Which backend runs the cluster (harness.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Deterministic simulation in this process.
    Sim,
    /// One container per node.
    Docker,
}

/// Everything that determines a run; stored in `test.json` so `replay` can re-run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestOptions {
    /// Backend.
    pub backend: BackendKind,
    /// Roster nodes in the genesis.
    pub nodes: usize,
    /// Spare nodes for add-node.
    pub spare: usize,
    /// Workload phase length, seconds (simulated on sim).
    pub time_limit_s: u64,
    /// Client processes.
    pub concurrency: usize,
    /// Operations per second over all clients.
    pub rate: f64,
    /// Workload.
    pub workload: WorkloadKind,
    /// Nemeses.
    pub nemesis: Vec<NemesisKind>,
    /// Seconds between nemesis steps.
    pub nemesis_interval_s: u64,
    /// `--max-concurrent-faults`: most nemesis intervals a drawn schedule has active
    /// at once (issue 16). A `test.json` stored before it reads as 1, the
    /// one-at-a-time schedule it was made with, and 1 is not written, so such a
    /// file is unchanged; the CLI's default is 2.
    #[serde(default = "one_at_a_time", skip_serializing_if = "is_one")]
    pub max_concurrent_faults: usize,
    /// protocol.md §5 window.
    pub eviction_total: u64,
    /// protocol.md §5 `min_roster`.
    pub min_roster: u32,
    /// The seed of everything.
    pub seed: u64,
    /// Run name (store folder).
    pub name: String,
    /// Elle's consistency model.
    pub model: String,
    /// A client gives up (records `info`) after this long, ms.
    pub op_timeout_ms: u64,
    /// Wait after the final heal before final reads, seconds.
    pub recovery_s: u64,
    /// Sim only: the lying disk (test-only broken environment).
    pub lying_disk: bool,
    /// Sim only, test-only: the simulator panics at this simulated second (proves
    /// that a panic becomes a stored, replayable `crash` verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_panic_at_s: Option<u64>,
    /// Sim only: the nodes' stores skip their sync (test-only broken node: a crash
    /// loses acknowledged writes). Recorded only when set, so `test.json` of every
    /// honest run is unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_sync: bool,
    /// Sim only, test-only: a weakened node that takes synced blocks without
    /// checking their certificates (issue 12: the forged-sync adversary must expose
    /// it). Recorded only when set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sim_trust_synced_certs: bool,
    /// The adversarial client alongside the workload (issue 12): resubmitted ids,
    /// forged and replayed AddNodes. On by default from the CLI; a `test.json`
    /// stored before it (no field) replays without it, and off is not written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adversarial_client: bool,
    /// Sim only: the nodes' propose and vote timeouts do not grow with the round
    /// (their deltas 0, an operator setting of the node's `config.json`): the broken
    /// node of the `async` nemesis's test (issue 16). Recorded only when set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flat_timeouts: bool,
    /// An explicit fault schedule instead of the one drawn from the seed: what
    /// `rollcall explore` shrinks, recorded in `test.json` so `replay` reproduces a
    /// shrunk run exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<rollcall_workloads::PlannedFault>>,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            backend: BackendKind::Sim,
            nodes: 4,
            spare: 1,
            time_limit_s: 60,
            concurrency: 8,
            rate: 100.0,
            workload: WorkloadKind::Append,
            nemesis: Vec::new(),
            nemesis_interval_s: 5,
            max_concurrent_faults: 1,
            eviction_total: 100,
            min_roster: 3,
            seed: 1,
            name: "rollcall".into(),
            model: "strict-serializable".into(),
            op_timeout_ms: 5000,
            recovery_s: 10,
            lying_disk: false,
            sim_panic_at_s: None,
            no_sync: false,
            adversarial_client: false,
            sim_trust_synced_certs: false,
            flat_timeouts: false,
            schedule: None,
        }
    }
}

fn one_at_a_time() -> usize {
    1
}

fn is_one(k: &usize) -> bool {
    *k == 1
}

/// An option combination that cannot run (exit 254).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OptionsError {
    /// A numeric option out of range.
    #[error("{0}")]
    Range(String),
    /// add-node needs a spare.
    #[error("--nemesis add-node needs at least one spare node (--spare 1)")]
    NoSpare,
    /// fail-node would leave too few nodes.
    #[error("--nemesis fail-node needs a roster that stays at least max(min-roster, 3) = {0} after an eviction: use --nodes {1} or more, or add-node with a spare")]
    TooFewForFail(u32, u32),
    /// Unknown model.
    #[error("{0}")]
    Model(String),
}

impl TestOptions {
    /// Checks the options (harness.md §3 exit code 254 on failure).
    pub fn validate(&self) -> Result<(), OptionsError> {
        let range = |ok: bool, msg: &str| {
            if ok {
                Ok(())
            } else {
                Err(OptionsError::Range(msg.to_string()))
            }
        };
        range(self.nodes >= 1, "--nodes must be at least 1")?;
        range(self.nodes <= 64, "--nodes must be at most 64")?;
        range(self.spare <= 16, "--spare must be at most 16")?;
        range(self.concurrency >= 1, "--concurrency must be at least 1")?;
        range(
            self.concurrency <= 10_000,
            "--concurrency must be at most 10000",
        )?;
        range(
            self.rate.is_finite() && self.rate > 0.0,
            "--rate must be a positive number",
        )?;
        range(
            self.time_limit_s >= 1,
            "--time-limit must be at least 1 second",
        )?;
        range(
            self.nemesis_interval_s >= 1,
            "--nemesis-interval must be at least 1 second",
        )?;
        range(
            (1..=16).contains(&self.max_concurrent_faults),
            "--max-concurrent-faults must be between 1 and 16",
        )?;
        range(
            self.eviction_total >= 1,
            "--eviction-total must be at least 1",
        )?;
        range(self.op_timeout_ms >= 1, "op timeout must be positive")?;
        range(
            !self.name.is_empty()
                && !self.name.contains('/')
                && self.name != "latest"
                && !self.name.starts_with('.'),
            "--name must be a plain folder name",
        )?;
        self.validate_time()?;
        if self.nemesis.contains(&NemesisKind::AddNode) && self.spare == 0 {
            return Err(OptionsError::NoSpare);
        }
        if self.nemesis.contains(&NemesisKind::FailNode) {
            let floor = self.min_roster.max(3);
            let reach = self.nodes
                + if self.nemesis.contains(&NemesisKind::AddNode) {
                    self.spare
                } else {
                    0
                };
            if reach as u32 <= floor {
                return Err(OptionsError::TooFewForFail(floor, floor + 1));
            }
        }
        rollcall_checkers::elle::ElleChecker::with_model(&self.model)
            .map_err(|e| OptionsError::Model(e.to_string()))?;
        crate::checks::can_check(
            self.workload,
            crate::checks::Expectation::model(&self.model),
        )
        .map_err(OptionsError::Range)?;
        Ok(())
    }

    /// The run loop counts time in u64 nanoseconds (harness.md §6 `time`): the
    /// workload phase, the recovery wait, a nemesis step and an invoke gap (with
    /// its 1.5x jitter, twice for slack) must all fit, or the arithmetic would wrap
    /// (issue 14). Each option is named in the message with its largest value.
    fn validate_time(&self) -> Result<(), OptionsError> {
        const NS: u64 = 1_000_000_000;
        let too_big = |opt: &str, max: u64, unit: &str| {
            OptionsError::Range(format!(
                "{opt} does not fit in nanoseconds: at most {max} {unit}"
            ))
        };
        let limit = self
            .time_limit_s
            .checked_mul(NS)
            .ok_or_else(|| too_big("--time-limit", u64::MAX / NS, "s"))?;
        let interval = self
            .nemesis_interval_s
            .checked_mul(NS)
            .ok_or_else(|| too_big("--nemesis-interval", u64::MAX / NS, "s"))?;
        let recovery = self
            .recovery_s
            .checked_mul(NS)
            .ok_or_else(|| too_big("the recovery wait", u64::MAX / NS, "s"))?;
        self.op_timeout_ms
            .checked_mul(1_000_000)
            .ok_or_else(|| too_big("the op timeout", u64::MAX / 1_000_000, "ms"))?;
        if self.rate > 1e9 {
            return Err(OptionsError::Range(
                "--rate must be at most 1000000000 (one operation per nanosecond)".into(),
            ));
        }
        // Checked in f64 first: 1e9 / a tiny rate is beyond any u64.
        let gap = 1e9 / self.rate;
        if gap >= (u64::MAX / 4) as f64 {
            return Err(OptionsError::Range(format!(
                "--rate {} is so low that the gap between operations does not fit in nanoseconds",
                self.rate
            )));
        }
        let gap = gap as u64;
        [recovery, interval.saturating_mul(2), gap.saturating_mul(2)]
            .into_iter()
            .try_fold(limit, u64::checked_add)
            .filter(|end| *end < u64::MAX)
            .map(|_| ())
            .ok_or_else(|| {
                OptionsError::Range(format!(
                    "--time-limit {} s plus the recovery wait, two --nemesis-interval steps and two operation gaps does not fit in nanoseconds (at most {} s in all)",
                    self.time_limit_s,
                    u64::MAX / NS
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(o: TestOptions) -> String {
        o.validate().unwrap_err().to_string()
    }

    #[test]
    fn times_that_overflow_nanoseconds_are_refused() {
        let base = TestOptions::default();
        assert_eq!(base.validate(), Ok(()));
        let max_s = u64::MAX / 1_000_000_000;
        let e = err(TestOptions {
            time_limit_s: max_s + 1,
            ..base.clone()
        });
        assert!(
            e.starts_with("--time-limit does not fit in nanoseconds: at most 18446744073 s"),
            "{e}"
        );
        // Fits alone, but not with the recovery wait after it.
        let e = err(TestOptions {
            time_limit_s: max_s,
            ..base.clone()
        });
        assert!(e.contains("does not fit in nanoseconds (at most"), "{e}");
        let e = err(TestOptions {
            nemesis_interval_s: u64::MAX,
            ..base.clone()
        });
        assert!(e.starts_with("--nemesis-interval does not fit"), "{e}");
        let e = err(TestOptions {
            op_timeout_ms: u64::MAX,
            ..base.clone()
        });
        assert!(e.starts_with("the op timeout does not fit"), "{e}");
        let e = err(TestOptions {
            rate: 1e-12,
            ..base.clone()
        });
        assert!(e.contains("gap between operations does not fit"), "{e}");
        let e = err(TestOptions {
            rate: 2e9,
            ..base.clone()
        });
        assert!(e.contains("at most 1000000000"), "{e}");
        // A long but representable run is fine.
        let long = TestOptions {
            time_limit_s: 10 * 365 * 86_400,
            nemesis_interval_s: 86_400,
            rate: 0.001,
            ..base
        };
        assert_eq!(long.validate(), Ok(()));
    }
}
