//! The run store (harness.md §8): `store/<name>/<timestamp>/` with `test.json`,
//! `schedule.json`, `history.jsonl`, `results.json`, `genesis.json` and
//! `nodes/<n>/{chain.json,status.json,alive}`; `store/latest` points at the newest
//! run. Wall time only names the folder; it never enters the history or schedule.
//! Each file's bytes are written by `rollcall_history::RunDir` (issue 11), which
//! the report reads back with.

use crate::backend::NodeDumpData;
use crate::options::TestOptions;
use rollcall_checkers::Results;
use rollcall_history::{RunDir, RunDirError};
use rollcall_node::types::Genesis;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Why the store could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stored file does not hold what it should.
    #[error("{path}: {msg}")]
    Bad {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A run file could not be written or read.
    #[error("{}: {source}", dir.display())]
    Run {
        /// The run directory.
        dir: PathBuf,
        /// Which file, and why.
        source: RunDirError,
    },
}

fn run_err(dir: &Path) -> impl FnOnce(RunDirError) -> StoreError + '_ {
    move |source| StoreError::Run {
        dir: dir.to_path_buf(),
        source,
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `YYYYMMDDTHHMMSS` in UTC from the wall clock (folder names only).
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The project's git commit, if `git` can tell.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates a fresh run folder `store/<name>/<timestamp>[-k]/`.
pub fn new_run_dir(store: &Path, name: &str) -> Result<PathBuf, StoreError> {
    let base = store.join(name);
    std::fs::create_dir_all(&base).map_err(io(&base))?;
    let ts = timestamp();
    let mut dir = base.join(&ts);
    let mut k = 1;
    while dir.exists() {
        dir = base.join(format!("{ts}-{k}"));
        k += 1;
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    Ok(dir)
}

/// `test.json`: every option, the seed, the backend, the commit and command line.
pub fn test_json(opts: &TestOptions, command: &[String]) -> Value {
    json!({
        "options": opts,
        "seed": opts.seed,
        "backend": opts.backend,
        "git_commit": git_commit(),
        "command": command,
    })
}

/// Reads the options back from a run's `test.json`.
pub fn load_options(run_dir: &Path) -> Result<TestOptions, StoreError> {
    let v = RunDir::new(run_dir).read_test().map_err(run_err(run_dir))?;
    serde_json::from_value(v["options"].clone()).map_err(|e| StoreError::Bad {
        path: run_dir.join(rollcall_history::run_dir::TEST),
        msg: format!("options: {e}"),
    })
}

/// Everything a finished run writes.
pub struct RunFiles<'a> {
    /// `test.json`.
    pub test: Value,
    /// `genesis.json`.
    pub genesis: &'a Genesis,
    /// `schedule.json`.
    pub schedule: &'a Value,
    /// `history.jsonl`.
    pub history: &'a str,
    /// `results.json`.
    pub results: &'a Results,
    /// Node dumps.
    pub dumps: &'a [NodeDumpData],
    /// `client-attacks.json`, when the adversarial client ran (issue 12).
    pub attacks: Option<&'a [rollcall_history::ClientAttack]>,
}

/// Writes a run into `dir` and points `store/latest` at it.
pub fn save(store: &Path, dir: &Path, f: &RunFiles) -> Result<(), StoreError> {
    let run = RunDir::new(dir);
    let err = run_err(dir);
    let written = (|| {
        run.write_test(&f.test)?;
        run.write_genesis(f.genesis)?;
        run.write_schedule(f.schedule)?;
        run.write_history(f.history)?;
        run.write_results(f.results)?;
        for d in f.dumps {
            run.write_node(&d.files())?;
        }
        if let Some(a) = f.attacks {
            run.write_attacks(a)?;
        }
        Ok(())
    })();
    written.map_err(err)?;
    let latest = store.join("latest");
    let _ = std::fs::remove_file(&latest);
    if let Ok(rel) = dir.strip_prefix(store) {
        #[cfg(unix)]
        std::os::unix::fs::symlink(rel, &latest).map_err(io(&latest))?;
    }
    // The page a person reads (harness.md §8). A report that cannot be written is a
    // warning, not a failed run: every file it is made from is already stored.
    if let Err(e) = rollcall_reports::write_report(dir) {
        tracing::warn!(error = %e, dir = %dir.display(), "could not write report.html");
    }
    Ok(())
}
