//! The report and the server on a generated run directory (harness.md §8).

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use rollcall_reports::sample::{write_sample_run, SampleSpec};
use rollcall_reports::{router, write_report};
use tower::ServiceExt;

#[test]
fn report_of_an_invalid_run_has_every_section() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("sample/20260101T000000");
    write_sample_run(&run, &SampleSpec::default()).unwrap();
    let p = write_report(&run).unwrap();
    let html = std::fs::read_to_string(p).unwrap();
    for id in [
        "id=\"verdicts\"",
        "id=\"verdict\"",
        "id=\"anomalies\"",
        "id=\"plots\"",
        "id=\"roster\"",
        "id=\"timeline\"",
        "id=\"nodes\"",
        "id=\"replay\"",
    ] {
        assert!(html.contains(id), "missing {id}");
    }
    assert!(html.contains("class=\"v invalid\""));
    assert!(html.contains("class=\"cycle\""), "an elle cycle is drawn");
    assert!(html.contains("href=\"nodes/n1/node.log\""));
    assert!(html.contains("&lt;b&gt;") || !html.contains("<b>not html</b>"));
    assert!(html.contains("rollcall replay "));
    for bad in ["<link", "src=\"http", "url(http", "@import"] {
        if let Some(i) = html.find(bad) {
            panic!(
                "not self-contained: {}",
                &html[i.saturating_sub(80)..(i + 80).min(html.len())]
            );
        }
    }
    for f in ["latency-txn.svg", "throughput.svg", "roster.svg"] {
        assert!(run.join("plots").join(f).is_file(), "{f}");
    }
}

#[test]
fn report_of_a_partial_run_still_renders() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("r");
    write_sample_run(
        &run,
        &SampleSpec {
            ops: 300,
            invalid: false,
            ..Default::default()
        },
    )
    .unwrap();
    std::fs::remove_file(run.join("results.json")).unwrap();
    std::fs::write(run.join("nodes/n2/chain.json"), "[{\"block\":").unwrap();
    let html = std::fs::read_to_string(write_report(&run).unwrap()).unwrap();
    assert!(html.contains("results.json: missing"));
    assert!(html.contains("nodes/n2/chain.json: not valid JSON"));
    assert!(html.contains("id=\"timeline\""));
    // A corrupt history: still a page, with the error named.
    std::fs::write(run.join("history.jsonl"), "{\"index\":0,\"time\":\"x\"}\n").unwrap();
    let html = std::fs::read_to_string(write_report(&run).unwrap()).unwrap();
    assert!(html.contains("history.jsonl: line 1"));
    assert!(write_report(&d.path().join("nope")).is_err());
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let r = app
        .clone()
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let code = r.status();
    let b = to_bytes(r.into_body(), 1 << 26).await.unwrap();
    (code, String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test]
async fn serve_lists_filters_and_refuses_traversal() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    write_sample_run(
        &store.join("bad/20260102T000000"),
        &SampleSpec {
            ops: 300,
            ..Default::default()
        },
    )
    .unwrap();
    write_sample_run(
        &store.join("good/20260101T000000"),
        &SampleSpec {
            ops: 300,
            invalid: false,
            ..Default::default()
        },
    )
    .unwrap();
    std::fs::write(d.path().join("secret.txt"), "secret").unwrap();
    let app = router(store.clone());

    let (c, idx) = get(&app, "/").await;
    assert_eq!(c, StatusCode::OK);
    let (bad, good) = (
        idx.find("20260102T000000").unwrap(),
        idx.find("20260101T000000").unwrap(),
    );
    assert!(bad < good, "newest first");
    assert!(idx.contains("class=\"v invalid\"") && idx.contains("class=\"v valid\""));
    let (_, only) = get(&app, "/?only=invalid").await;
    assert!(only.contains("20260102T000000") && !only.contains("20260101T000000"));

    assert!(!store.join("bad/20260102T000000/report.html").exists());
    let (c, rep) = get(&app, "/run/bad/20260102T000000/").await;
    assert_eq!(c, StatusCode::OK);
    assert!(rep.contains("id=\"verdicts\""));
    assert!(
        store.join("bad/20260102T000000/report.html").is_file(),
        "generated on demand"
    );
    let (c, log) = get(&app, "/run/bad/20260102T000000/nodes/n1/node.log").await;
    assert_eq!((c, log.starts_with("n1 started")), (StatusCode::OK, true));
    let (c, _) = get(&app, "/run/bad/20260102T000000/plots/throughput.svg").await;
    assert_eq!(c, StatusCode::OK);

    for evil in [
        "/run/bad/20260102T000000/../../../secret.txt",
        "/run/bad/20260102T000000/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/run/bad/..%2F..%2Fsecret.txt/x",
        "/run/bad/20260102T000000/nodes/..%2F..%2F..%2F..%2Fsecret.txt",
        "/run/%2e%2e/%2e%2e/secret.txt",
        "/run/bad/20260102T000000/nope.txt",
    ] {
        let (c, body) = get(&app, evil).await;
        assert!(
            c == StatusCode::BAD_REQUEST || c == StatusCode::NOT_FOUND,
            "{evil}: {c}"
        );
        assert!(!body.contains("secret"), "{evil} leaked");
    }
}
