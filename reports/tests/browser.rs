//! Browser test (issue 8): Debian's headless Chromium opens a generated
//! `report.html` and the `serve` index; no console errors, and the verdict table,
//! the plots (as `<svg>`) and the timeline are present — elements, not pixels.
//!
//! Skips with a message when `chromium` is missing, unless `CI` is set: in CI a
//! missing browser is a failure (`apt-get install -y chromium`).

use rollcall_reports::sample::{write_sample_run, SampleSpec};
use std::path::PathBuf;
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|b| dirs.iter().map(move |d| d.join(b)))
        .find(|p| p.is_file())
}

fn browser_or_skip() -> Option<PathBuf> {
    match chromium() {
        Some(c) => Some(c),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but chromium is not installed: apt-get install -y chromium")
        }
        None => {
            eprintln!(
                "SKIPPED browser test: chromium is not installed (apt-get install -y chromium)"
            );
            None
        }
    }
}

/// Load `url` headless; returns the DOM after the page's scripts ran and the
/// console messages Chromium logged (errors and uncaught exceptions included).
fn load(chrome: &PathBuf, url: &str) -> (String, Vec<String>) {
    let prof = tempfile::tempdir().unwrap();
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", prof.path().display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = stderr
        .lines()
        // Chromium logs every console message (console.error included, at its
        // INFO level) as `:CONSOLE`; our pages log nothing, so any is a failure.
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), errors)
}

#[test]
fn report_and_serve_index_open_in_chromium_without_errors() {
    let Some(chrome) = browser_or_skip() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    // The detector itself: a page with a script error must be caught.
    let bad = d.path().join("bad.html");
    std::fs::write(
        &bad,
        "<html><body><script>undefinedFn();</script></body></html>",
    )
    .unwrap();
    let (_, errs) = load(&chrome, &format!("file://{}", bad.display()));
    assert!(!errs.is_empty(), "console-error detection caught nothing");
    let store = d.path().join("store");
    let run = store.join("sample/20260101T000000");
    write_sample_run(
        &run,
        &SampleSpec {
            ops: 5000,
            ..Default::default()
        },
    )
    .unwrap();
    let report = rollcall_reports::write_report(&run).unwrap();

    let (dom, errors) = load(&chrome, &format!("file://{}", report.display()));
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    assert!(
        dom.contains("data-ready=\"1\""),
        "the inline script ran to the end"
    );
    assert!(dom.contains("id=\"verdicts\"") && dom.contains("class=\"v invalid\""));
    let plots = &dom[dom.find("id=\"plots\"").expect("plots")..];
    assert!(
        plots.matches("<svg").count() >= 2,
        "latency and throughput plots are SVG"
    );
    assert!(dom.contains("id=\"timeline\"") && dom.contains("id=\"tl-page-0\""));
    assert!(dom.contains("class=\"cycle\""));

    // The serve index, on a real listener on a free port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let app = rollcall_reports::router(store.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.spawn(async move {
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        let _ = axum::serve(l, app).await;
    });
    let (dom, errors) = load(&chrome, &format!("http://127.0.0.1:{port}/"));
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    assert!(dom.contains("id=\"runs\"") && dom.contains("20260101T000000"));
    assert!(dom.contains("class=\"v invalid\""));
    let (dom, errors) = load(
        &chrome,
        &format!("http://127.0.0.1:{port}/run/sample/20260101T000000/"),
    );
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    assert!(dom.contains("data-ready=\"1\"") && dom.contains("id=\"verdicts\""));
}
