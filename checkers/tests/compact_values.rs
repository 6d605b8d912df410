//! Issue 15: transaction values stay compact through the paths that see every
//! operation of a big history (generate, parse, check, write), and the compact
//! form writes the same bytes as its JSON.

use rollcall_checkers::elle::{ElleChecker, RwRegisterChecker};
use rollcall_checkers::gen::{self, GenConfig};
use rollcall_checkers::{Checker, History, Validity};

fn cfg(seed: u64) -> GenConfig {
    GenConfig {
        ops: 2_000,
        processes: 5,
        keys: 3,
        seed,
        info_rate: 0.01,
        fail_rate: 0.02,
    }
}

fn built(h: &History) -> usize {
    h.events().iter().filter(|e| e.value.json_built()).count()
}

#[test]
fn checking_and_writing_builds_no_json() {
    let cases: [(History, Box<dyn Checker>); 2] = [
        (
            gen::append_history(&cfg(1)),
            Box::new(ElleChecker::default()),
        ),
        (
            gen::rw_register_history(&cfg(2)),
            Box::new(RwRegisterChecker::default()),
        ),
    ];
    for (h, checker) in cases {
        assert!(h.events().iter().all(|e| e.value.micro_ops().is_some()));
        let r = checker.check(&h);
        assert_eq!(r.validity, Validity::Valid, "{r:?}");
        let text = h.to_jsonl();
        assert_eq!(built(&h), 0, "the check or the writer built JSON ({r:?})");
        // Parsing the text gives compact values again, equal to the originals.
        let again = History::parse_jsonl(&text).unwrap();
        assert_eq!(again, h);
        assert_eq!(again.to_jsonl(), text);
        assert_eq!(built(&again), 0);
        // Reading a value as JSON builds it: what the count above would catch.
        let _ = again.events()[0].value.as_array();
        assert_eq!(built(&again), 1);
    }
}

#[test]
fn compact_and_json_values_check_alike() {
    // A value turned into JSON (as the corruption tools do) takes the JSON path
    // of the checker's parser; both paths must judge the same.
    let h = gen::append_history(&cfg(3));
    let bad = gen::corrupt_append(&h, 5, gen::AppendCorruption::LostAppend).unwrap();
    let json: Vec<_> = bad
        .events()
        .iter()
        .cloned()
        .map(|mut e| {
            std::sync::Arc::make_mut(&mut e.value).json_mut();
            e
        })
        .collect();
    let json = History::from_events(json).unwrap();
    assert_eq!(json, bad);
    let (a, b) = (
        ElleChecker::default().check(&bad),
        ElleChecker::default().check(&json),
    );
    assert_eq!(a.validity, Validity::Invalid);
    assert_eq!(
        (a.validity, a.summary, a.anomalies),
        (b.validity, b.summary, b.anomalies)
    );
}
