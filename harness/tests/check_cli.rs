//! `rollcall check` over several histories in one process (issues 14, 15): one
//! result per file, a summary line, the composed verdict as exit code, and no
//! panic when stdout is closed early.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn rollcall(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../checkers/tests/fixtures/edn")
}

/// A list-append history Elle accepts (completed ops only, as Elle's tests write).
const VALID: &str = "{:process 0, :type :ok, :value [[:append :x 1]]}\n{:process 0, :type :ok, :value [[:r :x [1]]]}\n";
/// x read as [1] and then as [2 1]: an incompatible order.
const INVALID: &str = "{:process 0, :type :ok, :value [[:append :x 1] [:append :x 2]]}\n{:process 0, :type :ok, :value [[:r :x [1 2]]]}\n{:process 1, :type :ok, :value [[:r :x [2 1]]]}\n";
/// Header only: nothing to check.
const HEADER_ONLY: &str = ";; jepsen history.edn of a test that never ran a client op\n";

fn three_file_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("a-invalid.edn", INVALID),
        ("b-unknown.edn", HEADER_ONLY),
        ("c-valid.edn", VALID),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not a history").unwrap();
    dir
}

#[test]
fn a_directory_of_three_histories_gives_three_results_a_summary_and_exit_1() {
    let dir = three_file_dir();
    let (code, out, err) = rollcall(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(headers.len(), 3, "{out}");
    let verdicts: Vec<&str> = out.lines().filter(|l| l.starts_with("verdict: ")).collect();
    assert_eq!(
        verdicts,
        ["verdict: invalid", "verdict: unknown", "verdict: valid"],
        "{out}"
    );
    assert!(out.contains("no client operations"), "{out}");
    assert!(
        out.ends_with("summary: 3 checked: 1 valid, 1 invalid, 1 unknown; verdict invalid\n"),
        "{out}"
    );
}

#[test]
fn several_files_compose_and_single_verdicts_keep_their_exit_codes() {
    let dir = three_file_dir();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (code, out, _) = rollcall(&["check", &p("c-valid.edn"), &p("b-unknown.edn")]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.ends_with("summary: 2 checked: 1 valid, 0 invalid, 1 unknown; verdict unknown\n"),
        "{out}"
    );
    let (code, out, _) = rollcall(&["check", &p("c-valid.edn")]);
    assert_eq!(code, 0, "{out}");
    let (code, _, _) = rollcall(&["check", &p("a-invalid.edn")]);
    assert_eq!(code, 1);
    // An empty file says unknown, not valid.
    std::fs::write(dir.path().join("empty.jsonl"), "").unwrap();
    let (code, out, _) = rollcall(&["check", &p("empty.jsonl")]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn a_malformed_file_is_unknown_with_its_line_and_a_missing_path_is_254() {
    let dir = three_file_dir();
    let bad = dir.path().join("d-bad.edn");
    std::fs::write(
        &bad,
        "{:process 0, :type :ok, :value [[:r :x nil]]}\n\n{:process 0 :type :ok :value [1 2}\n",
    )
    .unwrap();
    let (code, out, _) = rollcall(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("verdict: unknown: cannot check: line 3: EDN: mismatched closing delimiter"),
        "{out}"
    );
    let (code, out, _) = rollcall(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    let (code, _, err) = rollcall(&["check", dir.path().join("nope.edn").to_str().unwrap()]);
    assert_eq!(code, 254, "{err}");
    assert!(err.contains("no such file or directory"), "{err}");
}

#[test]
fn real_jepsen_and_elle_histories_are_checked_in_one_process() {
    let (code, out, err) = rollcall(&["check", fixtures().to_str().unwrap()]);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("== ")).count(),
        6,
        "{out}"
    );
    // Every fixture is checked; the rw-register one (jepsen-io/history's README)
    // waits for the elle-rw-register checker where this build lacks it.
    for l in out.lines().filter(|l| l.contains("cannot check")) {
        assert!(l.contains("elle-rw-register"), "{out}");
    }
    assert!(out.contains("summary: 6 checked:"), "{out}");
    assert!([0, 1, 2].contains(&code), "{out}{err}");
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = three_file_dir();
    let d = dir.path().to_str().unwrap().to_string();
    let f = fixtures();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["check", &d, f.to_str().unwrap(), &d, f.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the child writes (as `| head -1` does once satisfied).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // The verdict still reaches the exit code: invalid (from a-invalid.edn).
    assert_eq!(out.status.code(), Some(1), "{err}");
}

#[test]
fn options_that_overflow_nanoseconds_exit_254() {
    for (args, msg) in [
        (
            vec!["test", "--time-limit", "18446744074"],
            "--time-limit does not fit in nanoseconds",
        ),
        (
            vec!["test", "--time-limit", "18446744073"],
            "does not fit in nanoseconds (at most 18446744073 s in all)",
        ),
        (
            vec!["test", "--nemesis-interval", "99999999999"],
            "--nemesis-interval does not fit",
        ),
        (vec!["test", "--rate", "1e-15"], "gap between operations"),
        (vec!["test", "--rate", "1e12"], "--rate must be at most"),
        (
            vec!["explore", "--time-limit", "18446744074", "--cases", "1"],
            "--time-limit does not fit",
        ),
    ] {
        let (code, _, err) = rollcall(&args);
        assert_eq!(code, 254, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}

/// Elle infers rw-register version order from writes following reads only with
/// `:wfr-keys?`; `rollcall check` does the same, so a stale read visible only
/// through that inference is valid by default and invalid with `--wfr-keys`.
#[test]
fn wfr_keys_is_opt_in_like_elles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wfr.edn");
    std::fs::write(
        &path,
        "{:type :invoke, :f :txn, :value [[:w :x 1]], :process 1, :time 1, :index 0}\n\
         {:type :ok, :f :txn, :value [[:w :x 1]], :process 1, :time 2, :index 1}\n\
         {:type :invoke, :f :txn, :value [[:r :x nil] [:w :x 2]], :process 2, :time 3, :index 2}\n\
         {:type :ok, :f :txn, :value [[:r :x 1] [:w :x 2]], :process 2, :time 4, :index 3}\n\
         {:type :invoke, :f :txn, :value [[:r :x nil]], :process 3, :time 5, :index 4}\n\
         {:type :ok, :f :txn, :value [[:r :x 1]], :process 3, :time 6, :index 5}\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let (code, out, _) = rollcall(&["check", p, "--workload", "rw-register"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = rollcall(&["check", p, "--workload", "rw-register", "--wfr-keys"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("G-single-item-realtime"), "{out}");
}

/// Elle's `:sequential-keys?` / `:linearizable-keys?` (rw-register): process 1
/// writes x = 1 then x = 2; T3 reads x = 2 and writes y = 1; T4 reads y = 1 and
/// the stale x = 1. Only the per-key order the flag assumes says 1 precedes 2,
/// so the history is valid without it and invalid with it.
#[test]
fn sequential_and_linearizable_keys_are_opt_in_like_elles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.edn");
    let txn = |i: usize, p: usize, inv: &str, ok: &str| {
        format!(
            "{{:type :invoke, :f :txn, :value {inv}, :process {p}, :time {i}, :index {i}}}\n\
             {{:type :ok, :f :txn, :value {ok}, :process {p}, :time {}, :index {}}}\n",
            i + 1,
            i + 1
        )
    };
    let text = [
        txn(0, 1, "[[:w :x 1]]", "[[:w :x 1]]"),
        txn(2, 1, "[[:w :x 2]]", "[[:w :x 2]]"),
        txn(4, 2, "[[:r :x nil] [:w :y 1]]", "[[:r :x 2] [:w :y 1]]"),
        txn(6, 3, "[[:r :y nil] [:r :x nil]]", "[[:r :y 1] [:r :x 1]]"),
    ]
    .concat();
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap();
    let (code, out, _) = rollcall(&["check", p, "--workload", "rw-register"]);
    assert_eq!(code, 0, "{out}");
    for flag in ["--sequential-keys", "--linearizable-keys"] {
        let (code, out, _) = rollcall(&["check", p, "--workload", "rw-register", flag]);
        assert_eq!(code, 1, "{flag}: {out}");
    }
}
