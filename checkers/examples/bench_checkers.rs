//! Benchmark of the checkers on generated valid histories (run with
//! `cargo run --release -p rollcall-checkers --example bench_checkers`).
//! Prints each check's time and the process's peak RSS; exits 1 if a valid
//! history is not judged valid, so it doubles as a release-mode smoke test.

use rollcall_checkers::bank::BankChecker;
use rollcall_checkers::elle::{ElleChecker, RwRegisterChecker};
use rollcall_checkers::gen::{self, GenConfig};
use rollcall_checkers::linearizable::LinearizableChecker;
use rollcall_checkers::set::SetChecker;
use rollcall_checkers::{Checker, History, Validity};
use std::time::Instant;

/// Peak resident set size in MiB, from /proc/self/status (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Reset VmHWM to the current RSS (Linux ≥ 4.0), so each check's peak is its own.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn current_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// User + system CPU time of this process in ms (/proc/self/stat, 100 Hz
/// ticks): on a shared machine wall time alone overstates a check's cost.
fn cpu_ms() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

/// `BENCH_ONLY_1M=1`: only the 1M elle-append row, with the peak never reset,
/// so `/usr/bin/time -v` reports the whole process's peak (generation included).
fn only_1m() -> bool {
    std::env::var_os("BENCH_ONLY_1M").is_some()
}

fn run(label: &str, h: &History, gen_ms: f64, c: &dyn Checker) -> bool {
    let before = current_rss_mib().unwrap_or(f64::NAN);
    let reset = !only_1m() && reset_peak();
    let cpu0 = cpu_ms().unwrap_or(f64::NAN);
    let r = c.check(h);
    let cpu = cpu_ms().unwrap_or(f64::NAN) - cpu0;
    let peak = peak_rss_mib().unwrap_or(f64::NAN);
    println!(
        "{label:<48} events={:>7} gen={:>8.1} ms  check={:>9.1} ms (cpu {:>8.0} ms)  validity={:?}  rss_before={:.1} MiB  peak_during_check={:.1} MiB  checker_own={:.1} MiB{}",
        h.len(),
        gen_ms,
        r.elapsed_ms,
        cpu,
        r.validity,
        before,
        peak,
        peak - before,
        if reset { "" } else { " (peak not reset: whole-process peak)" }
    );
    if r.validity != Validity::Valid {
        eprintln!("  expected valid: {}", r.summary);
        for a in r.anomalies.iter().take(3) {
            eprintln!("  {}: {}", a.kind, a.explanation);
        }
        return false;
    }
    true
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let x = f();
    (x, t.elapsed().as_secs_f64() * 1000.0)
}

fn main() {
    let mut ok = true;
    if let Some(file) = std::env::var_os("BENCH_FILE_1M") {
        ok &= million_from_file(std::path::Path::new(&file));
    } else if only_1m() {
        ok &= million();
    } else {
        ok &= rows();
    }
    println!(
        "VmHWM at exit (since last reset): {:.1} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    if !ok {
        std::process::exit(1);
    }
}

/// The long-history row: a million transactions must check in ≤ 10 s and
/// ≤ 2 GiB (issue 15).
fn million() -> bool {
    let (h, g) = timed(|| {
        gen::append_history(&GenConfig {
            ops: 1_000_000,
            processes: 10,
            keys: 5,
            seed: 8,
            info_rate: 0.0005,
            fail_rate: 0.01,
        })
    });
    run(
        "elle-append: 1M txns, 10 procs, 5-key window",
        &h,
        g,
        &ElleChecker::default(),
    )
}

/// `BENCH_FILE_1M=FILE`: `rollcall check`'s path for the 1M row. If FILE does
/// not exist, the history is generated and written there (and nothing else);
/// run again, a fresh process parses it (`History::from_file`) and checks it,
/// so `/usr/bin/time -v` shows the peak of reading plus checking.
fn million_from_file(path: &std::path::Path) -> bool {
    if !path.exists() {
        let h = gen::append_history(&GenConfig {
            ops: 1_000_000,
            processes: 10,
            keys: 5,
            seed: 8,
            info_rate: 0.0005,
            fail_rate: 0.01,
        });
        if let Err(e) = std::fs::write(path, h.to_jsonl()) {
            eprintln!("cannot write {}: {e}", path.display());
            return false;
        }
        println!("wrote {}; run again to parse and check it", path.display());
        return true;
    }
    let (h, parse_ms) = timed(|| History::from_file(path));
    let h = match h {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return false;
        }
    };
    println!(
        "parsed {} in {parse_ms:.0} ms; rss {:.1} MiB, peak so far {:.1} MiB",
        path.display(),
        current_rss_mib().unwrap_or(f64::NAN),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let r = ElleChecker::default().check(&h);
    println!(
        "checked in {:.0} ms: {:?}; peak of parse + check {:.1} MiB",
        r.elapsed_ms,
        r.validity,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    r.validity == Validity::Valid
}

fn rows() -> bool {
    let mut ok = true;

    let (h, g) = timed(|| {
        gen::register_history(&GenConfig {
            ops: 10_000,
            processes: 10,
            keys: 10,
            seed: 1,
            info_rate: 0.005,
            fail_rate: 0.0,
        })
    });
    ok &= run(
        "linearizable: 10k ops, 10 procs, 10 keys",
        &h,
        g,
        &LinearizableChecker::default(),
    );

    let (h, g) = timed(|| {
        gen::register_history(&GenConfig {
            ops: 2_000,
            processes: 5,
            keys: 1,
            seed: 2,
            info_rate: 0.005,
            fail_rate: 0.0,
        })
    });
    ok &= run(
        "linearizable: 2k ops, 5 procs, 1 key",
        &h,
        g,
        &LinearizableChecker::default(),
    );

    // Stress row, reported but not gating: info ops never return, so on one key
    // they stay concurrent with everything after them and the search widens.
    for (procs, info) in [(10, 0.0), (10, 0.02)] {
        let (h, g) = timed(|| {
            gen::register_history(&GenConfig {
                ops: 2_000,
                processes: procs,
                keys: 1,
                seed: 7,
                info_rate: info,
                fail_rate: 0.0,
            })
        });
        let label = format!("(stress) linearizable: 2k ops, {procs} procs, 1 key, info {info}");
        run(&label, &h, g, &LinearizableChecker::default());
    }

    let (h, g) = timed(|| {
        gen::append_history(&GenConfig {
            ops: 100_000,
            processes: 10,
            keys: 5,
            seed: 3,
            info_rate: 0.005,
            fail_rate: 0.01,
        })
    });
    ok &= run(
        "elle-append: 100k txns, 10 procs, 5-key window",
        &h,
        g,
        &ElleChecker::default(),
    );
    drop(h);

    let (h, g) = timed(|| {
        gen::rw_register_history(&GenConfig {
            ops: 100_000,
            processes: 10,
            keys: 5,
            seed: 6,
            info_rate: 0.005,
            fail_rate: 0.01,
        })
    });
    ok &= run(
        "elle-rw-register: 100k txns, 10 procs, 5-key window",
        &h,
        g,
        &RwRegisterChecker::default(),
    );
    drop(h);

    // Skipped with BENCH_SKIP_1M=1; alone with BENCH_ONLY_1M=1.
    if std::env::var_os("BENCH_SKIP_1M").is_none() {
        ok &= million();
    }

    let ((h, committed), g) = timed(|| {
        gen::set_history(&GenConfig {
            ops: 100_000,
            processes: 10,
            keys: 5,
            seed: 4,
            info_rate: 0.005,
            fail_rate: 0.01,
        })
    });
    ok &= run("set: 100k txns", &h, g, &SetChecker::new(committed));

    let (h, g) = timed(|| {
        gen::bank_history(
            &GenConfig {
                ops: 100_000,
                processes: 10,
                keys: 8,
                seed: 5,
                info_rate: 0.005,
                fail_rate: 0.0,
            },
            1000,
        )
    });
    ok &= run("bank: 100k ops, 8 accounts", &h, g, &BankChecker::new(1000));
    ok
}
