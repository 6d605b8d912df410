//! `rollcall serve` (harness.md §3, §8): a local web UI over the run store —
//! runs listed newest first with name, time, backend, seed and verdict, a filter
//! for invalid runs, each run's report (written on demand when missing) and its
//! files. Paths are checked segment by segment and then against the canonical
//! store, so a request can never read outside the store.

use crate::error::{io, ReportError};
use crate::html::escape;
use crate::report::{verdict_class, write_report};
use crate::run::{parse_results, test_field};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One run found in the store, as listed on the index page.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// `store/<name>`.
    pub name: String,
    /// `store/<name>/<timestamp>`.
    pub timestamp: String,
    /// Backend from `test.json`.
    pub backend: String,
    /// Seed from `test.json`.
    pub seed: String,
    /// Verdict class: valid, invalid, unknown or none (no results yet).
    pub verdict: &'static str,
}

fn read_value(p: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// List the runs of a store (`store/<name>/<timestamp>/`), newest first. The
/// `latest` link and anything without a `test.json`, `history.jsonl` or
/// `results.json` are skipped.
pub fn list_runs(store: &Path) -> Vec<RunEntry> {
    let mut out = Vec::new();
    let Ok(names) = std::fs::read_dir(store) else {
        return out;
    };
    for n in names.flatten() {
        let name = n.file_name().to_string_lossy().into_owned();
        if name == "latest" || !n.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let Ok(stamps) = std::fs::read_dir(n.path()) else {
            continue;
        };
        for s in stamps.flatten() {
            let dir = s.path();
            if !s.file_type().map(|t| t.is_dir()).unwrap_or(false)
                || !["test.json", "history.jsonl", "results.json"]
                    .iter()
                    .any(|f| dir.join(f).is_file())
            {
                continue;
            }
            let test = read_value(&dir.join("test.json"));
            let field = |k: &str| {
                test.as_ref()
                    .and_then(|t| test_field(t, k))
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_else(|| "?".into())
            };
            let verdict = read_value(&dir.join("results.json"))
                .map(|v| {
                    let r = parse_results(&v, &mut Vec::new());
                    verdict_class(r.valid.or(Some(rollcall_checkers::compose(&r.checkers))))
                })
                .unwrap_or("none");
            out.push(RunEntry {
                name: name.clone(),
                timestamp: s.file_name().to_string_lossy().into_owned(),
                backend: field("backend"),
                seed: field("seed"),
                verdict,
            });
        }
    }
    out.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(a.name.cmp(&b.name)));
    out
}

/// A URL path segment that may name a file or directory in the store: not
/// empty, not `.`/`..`, no separators, no NUL. Anything else is refused.
pub fn safe_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

/// Resolve `segments` under `store`, refusing traversal: `Err(400)` for a bad
/// segment, `Err(404)` when missing or when the resolved path (symlinks
/// followed) is not inside the store.
pub fn resolve(store: &Path, segments: &[&str]) -> Result<PathBuf, StatusCode> {
    if segments.is_empty() || !segments.iter().all(|s| safe_segment(s)) {
        return Err(StatusCode::BAD_REQUEST);
    }
    let root = store.canonicalize().map_err(|_| StatusCode::NOT_FOUND)?;
    let mut p = root.clone();
    for s in segments {
        p.push(s);
    }
    let real = p.canonicalize().map_err(|_| StatusCode::NOT_FOUND)?;
    if !real.starts_with(&root) {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(real)
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "png" => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

struct AppState {
    store: PathBuf,
}

/// Query of the index page: `?only=invalid` lists invalid runs only.
#[derive(Debug, Deserialize)]
struct IndexQuery {
    only: Option<String>,
}

const INDEX_STYLE: &str = "body{font-family:system-ui,sans-serif;margin:20px}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left}th{background:#f4f4f4}.v{font-weight:bold;padding:2px 8px;border-radius:4px;color:#fff}.v.valid{background:#2e7d32}.v.invalid{background:#c62828}.v.unknown{background:#ef8f00}.v.none{background:#777}";

async fn index(State(st): State<Arc<AppState>>, Query(q): Query<IndexQuery>) -> Html<String> {
    let store = st.store.clone();
    let runs = tokio::task::spawn_blocking(move || list_runs(&store))
        .await
        .unwrap_or_default();
    let only = q.only.as_deref().filter(|o| !o.is_empty());
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>rollcall runs</title><style>{INDEX_STYLE}</style></head><body><h1>rollcall runs</h1><p><code>{}</code> · <a href="/">all</a> · <a href="/?only=invalid" id="filter-invalid">invalid only</a></p><table id="runs"><tr><th>name</th><th>time</th><th>backend</th><th>seed</th><th>verdict</th><th>files</th></tr>"#,
        escape(&st.store.display().to_string())
    );
    let mut shown = 0;
    for r in runs.iter().filter(|r| only.is_none_or(|o| r.verdict == o)) {
        shown += 1;
        let base = format!("/run/{}/{}/", r.name, r.timestamp);
        let _ = write!(
            s,
            r#"<tr class="run"><td><a href="{b}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td><span class="v {v}">{v}</span></td><td><a href="{b}history.jsonl">history</a> <a href="{b}results.json">results</a> <a href="{b}test.json">test</a></td></tr>"#,
            escape(&r.name),
            escape(&r.timestamp),
            escape(&r.backend),
            escape(&r.seed),
            b = escape(&base),
            v = r.verdict,
        );
    }
    let _ = write!(
        s,
        "</table><p>{shown} of {} runs shown.</p></body></html>",
        runs.len()
    );
    Html(s)
}

fn error_page(code: StatusCode, msg: &str) -> Response {
    (code, format!("{}: {msg}\n", code.as_u16())).into_response()
}

async fn run_report(
    State(st): State<Arc<AppState>>,
    UrlPath((name, ts)): UrlPath<(String, String)>,
) -> Response {
    let dir = match resolve(&st.store, &[&name, &ts]) {
        Ok(d) if d.is_dir() => d,
        Ok(_) => return error_page(StatusCode::NOT_FOUND, "no such run"),
        Err(c) => return error_page(c, "no such run"),
    };
    let report = dir.join("report.html");
    if !report.is_file() {
        let d = dir.clone();
        match tokio::task::spawn_blocking(move || write_report(&d)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }
    serve_file(&report).await
}

async fn serve_file(p: &Path) -> Response {
    match tokio::fs::read(p).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(p))], bytes).into_response(),
        Err(_) => error_page(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn run_file(
    State(st): State<Arc<AppState>>,
    UrlPath((name, ts, rest)): UrlPath<(String, String, String)>,
) -> Response {
    if rest.is_empty() {
        return run_report(State(st), UrlPath((name, ts))).await;
    }
    let mut segs = vec![name.as_str(), ts.as_str()];
    segs.extend(rest.split('/'));
    match resolve(&st.store, &segs) {
        Ok(p) if p.is_file() => serve_file(&p).await,
        Ok(_) => error_page(StatusCode::NOT_FOUND, "not a file"),
        Err(c) => error_page(c, "refused or not found"),
    }
}

async fn run_redirect(UrlPath((name, ts)): UrlPath<(String, String)>) -> Response {
    if !safe_segment(&name) || !safe_segment(&ts) {
        return error_page(StatusCode::BAD_REQUEST, "bad path");
    }
    Redirect::permanent(&format!("/run/{name}/{ts}/")).into_response()
}

/// The server's routes over `store`, separate from [`serve`] so tests can drive
/// it without a socket: `/` (index, `?only=invalid`), `/run/<name>/<ts>/`
/// (the report, generated on demand) and `/run/<name>/<ts>/<file...>`.
pub fn router(store: PathBuf) -> Router {
    let st = Arc::new(AppState { store });
    Router::new()
        .route("/", get(index))
        .route("/run/{name}/{ts}", get(run_redirect))
        .route("/run/{name}/{ts}/", get(run_report))
        .route("/run/{name}/{ts}/{*rest}", get(run_file))
        .with_state(st)
}

/// Serve the store on 127.0.0.1:`port` until the process ends (`rollcall
/// serve`, harness.md §3). Local only: the store holds whole histories.
pub async fn serve(store: PathBuf, port: u16) -> Result<(), ReportError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(io(format!("127.0.0.1:{port}")))?;
    axum::serve(listener, router(store))
        .await
        .map_err(io("serve"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("store");
        std::fs::create_dir_all(store.join("a/1")).unwrap();
        std::fs::write(store.join("a/1/x.txt"), "x").unwrap();
        std::fs::write(d.path().join("secret"), "s").unwrap();
        assert!(resolve(&store, &["a", "1", "x.txt"]).is_ok());
        assert_eq!(
            resolve(&store, &["a", "..", "..", "secret"]),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            resolve(&store, &["a", "1", ""]),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            resolve(&store, &["a", "1", "..\\x"]),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            resolve(&store, &["a", "1", "nope"]),
            Err(StatusCode::NOT_FOUND)
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.path().join("secret"), store.join("a/1/link")).unwrap();
            assert_eq!(
                resolve(&store, &["a", "1", "link"]),
                Err(StatusCode::NOT_FOUND)
            );
        }
    }
}
