//! Benchmark of harness.md §8's report for the figures: writes a
//! 100,000-operation run directory, times `write_report` (target ≤ 3 s in
//! release) and, if Debian's `chromium` is installed, how long headless Chromium
//! takes to open the page (target ≤ 2 s).
//!
//! `cargo run --release -p rollcall-reports --example bench_report [OPS] [DIR]`

use rollcall_reports::sample::{write_sample_run, SampleSpec};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|b| dirs.iter().map(move |d| d.join(b)))
        .find(|p| p.is_file())
}

/// Wall time of headless Chromium dumping the DOM of `url` (after load and the
/// inline script ran).
fn open_time(chrome: &PathBuf, url: &str) -> Option<f64> {
    let t = Instant::now();
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--dump-dom",
            url,
        ])
        .output()
        .ok()?;
    let secs = t.elapsed().as_secs_f64();
    out.status.success().then_some(secs)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let ops: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("bench/20260101T000000"));
    let t = Instant::now();
    write_sample_run(
        &dir,
        &SampleSpec {
            ops,
            seed: 1,
            invalid: true,
            blocks: 3000,
        },
    )?;
    println!(
        "generated {ops}-op run dir in {:.2} s: {}",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    let t = Instant::now();
    let report = rollcall_reports::write_report(&dir)?;
    let secs = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&report)?.len();
    println!(
        "write_report: {secs:.3} s (target <= 3 s), report.html {:.2} MB",
        size as f64 / 1e6
    );
    match chromium() {
        None => println!(
            "chromium not installed: page-open time not measured (apt-get install chromium)"
        ),
        Some(c) => {
            let blank = open_time(&c, "about:blank");
            let page = open_time(&c, &format!("file://{}", report.display()));
            match (blank, page) {
                (Some(b), Some(p)) => println!(
                    "headless chromium: report {p:.2} s, about:blank {b:.2} s → page open ≈ {:.2} s (target <= 2 s)",
                    (p - b).max(0.0)
                ),
                _ => println!("headless chromium failed to run"),
            }
        }
    }
    Ok(())
}
