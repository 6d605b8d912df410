//! `--junit` on `test` and `explore`, and `explore --shard K/N` (issue 16): the XML
//! parses and follows the common JUnit shape, and shards split the cases exactly.

use quick_xml::events::Event;
use quick_xml::Reader;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// (element, attributes) of every start or empty element.
fn elements(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut r = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        let v = a.unescape_value().expect("value").into_owned();
                        (String::from_utf8_lossy(a.key.as_ref()).into_owned(), v)
                    })
                    .collect();
                out.push((
                    String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    attrs,
                ));
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

fn attr(e: &(String, Vec<(String, String)>), k: &str) -> String {
    e.1.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn rollcall(args: &[&str], store: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .expect("run rollcall")
}

#[test]
fn test_junit_has_a_suite_per_run_and_a_case_per_checker() {
    let dir = tempfile::tempdir().unwrap();
    let xml_path = dir.path().join("junit.xml");
    let out = rollcall(
        &[
            "test",
            "--time-limit",
            "5",
            "--nemesis",
            "kill",
            "--seed",
            "3",
            "--test-count",
            "2",
            "--quiet",
            "--junit",
            xml_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let els = elements(&xml);
    assert_eq!(els[0].0, "testsuites");
    let suites: Vec<_> = els.iter().filter(|e| e.0 == "testsuite").collect();
    assert_eq!(suites.len(), 2, "{xml}");
    assert!(attr(suites[0], "name").contains("seed 3"));
    assert!(attr(suites[1], "name").contains("seed 4"));
    let cases: Vec<String> = els
        .iter()
        .filter(|e| e.0 == "testcase")
        .map(|e| attr(e, "name"))
        .collect();
    assert!(
        cases.contains(&"elle-append".to_string()) && cases.contains(&"set".to_string()),
        "{cases:?}"
    );
    assert_eq!(attr(&els[0], "tests"), cases.len().to_string());
    assert_eq!(attr(&els[0], "failures"), "0");
    assert!(!els.iter().any(|e| e.0 == "failure"));
}

#[test]
fn a_crashed_run_is_a_junit_failure() {
    let dir = tempfile::tempdir().unwrap();
    let xml_path = dir.path().join("junit.xml");
    let out = rollcall(
        &[
            "test",
            "--time-limit",
            "5",
            "--seed",
            "3",
            "--quiet",
            "--sim-panic-at",
            "2",
            "--junit",
            xml_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let els = elements(&std::fs::read_to_string(&xml_path).unwrap());
    assert_eq!(attr(&els[0], "failures"), "1");
    let failure = els
        .iter()
        .find(|e| e.0 == "failure")
        .expect("a failure element");
    assert!(attr(failure, "message").contains("panicked"));
}

#[test]
fn explore_shards_split_the_cases_exactly_and_report_them_in_junit() {
    let dir = tempfile::tempdir().unwrap();
    let mut by_shard = Vec::new();
    for shard in ["1/2", "2/2", "1/1"] {
        let xml_path = dir.path().join(format!("{}.xml", shard.replace('/', "-")));
        let out = rollcall(
            &[
                "explore",
                "--cases",
                "5",
                "--seed",
                "4",
                "--time-limit",
                "4",
                "--nemesis",
                "kill",
                "--shard",
                shard,
                "--junit",
                xml_path.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let els = elements(&std::fs::read_to_string(&xml_path).unwrap());
        let cases: BTreeSet<String> = els
            .iter()
            .filter(|e| e.0 == "testcase")
            .map(|e| attr(e, "name"))
            .collect();
        by_shard.push(cases);
    }
    assert_eq!(by_shard[0].len() + by_shard[1].len(), 5);
    assert!(by_shard[0].is_disjoint(&by_shard[1]));
    let union: BTreeSet<String> = by_shard[0].union(&by_shard[1]).cloned().collect();
    assert_eq!(
        union, by_shard[2],
        "shards together run exactly the unsharded cases, seeds included"
    );
    let bad = rollcall(&["explore", "--cases", "5", "--shard", "3/2"], dir.path());
    assert_eq!(bad.status.code(), Some(254));
}
