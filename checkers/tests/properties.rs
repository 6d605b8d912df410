//! Property tests: generated valid histories (a sequential reference execution
//! with random concurrent timings) pass every checker; one corruption of them is
//! caught; the history round-trips through JSON Lines.

use proptest::prelude::*;
use rollcall_checkers::bank::BankChecker;
use rollcall_checkers::elle::{models, ElleChecker, RwRegisterChecker};
use rollcall_checkers::gen::{self, AppendCorruption, GenConfig};
use rollcall_checkers::linearizable::LinearizableChecker;
use rollcall_checkers::set::SetChecker;
use rollcall_checkers::{Checker, History, Validity};

fn cfg() -> impl Strategy<Value = GenConfig> {
    (
        20usize..150,
        1usize..6,
        1usize..4,
        any::<u64>(),
        0.0f64..0.1,
        0.0f64..0.1,
    )
        .prop_map(
            |(ops, processes, keys, seed, info_rate, fail_rate)| GenConfig {
                ops,
                processes,
                keys,
                seed,
                info_rate,
                fail_rate,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn generated_register_histories_are_linearizable(c in cfg(), seed in any::<u64>()) {
        let h = gen::register_history(&c);
        prop_assert_eq!(History::parse_jsonl(&h.to_jsonl()).unwrap(), h.clone());
        let r = LinearizableChecker::default().check(&h);
        prop_assert_eq!(r.validity, Validity::Valid, "{:#?}", r);
        if let Some(bad) = gen::corrupt_register_stale_read(&h, seed) {
            let r = LinearizableChecker::default().check(&bad);
            prop_assert_eq!(r.validity, Validity::Invalid, "{:#?}", r);
            prop_assert_eq!(&r.anomalies[0].kind, "nonlinearizable");
        }
    }

    #[test]
    fn generated_append_histories_are_strict_serializable(c in cfg(), seed in any::<u64>(), how in 0usize..6) {
        let h = gen::append_history(&c);
        prop_assert_eq!(History::parse_jsonl(&h.to_jsonl()).unwrap(), h.clone());
        let r = ElleChecker::default().check(&h);
        prop_assert_eq!(r.validity, Validity::Valid, "{:#?}", r);
        let how = ALL_APPEND_CORRUPTIONS[how];
        if let Some(bad) = gen::corrupt_append(&h, seed, how) {
            let r = ElleChecker::default().check(&bad);
            prop_assert_eq!(r.validity, Validity::Invalid, "{:?}: {:#?}", how, r);
        }
    }

    #[test]
    fn serial_executions_are_valid_under_every_model(c in cfg(), model in 0usize..1000) {
        let all: Vec<&str> = models::all_models().into_iter().collect();
        let model = all[model % all.len()];
        let h = gen::append_history(&c);
        let r = ElleChecker::with_model(model).unwrap().check(&h);
        prop_assert!(acceptable(&r), "{}: {:#?}", model, r);
        let h = gen::rw_register_history(&c);
        let r = RwRegisterChecker::with_model(model).unwrap().check(&h);
        prop_assert!(acceptable(&r), "{}: {:#?}", model, r);
    }

    #[test]
    fn generated_set_histories_lose_nothing(c in cfg(), seed in any::<u64>(), dup in any::<bool>()) {
        let (h, committed) = gen::set_history(&c);
        let r = SetChecker::new(committed.clone()).check(&h);
        prop_assert_eq!(r.validity, Validity::Valid, "{:#?}", r);
        if let Some(bad) = gen::corrupt_set(&h, &committed, seed, dup) {
            let r = SetChecker::new(bad).check(&h);
            prop_assert_eq!(r.validity, Validity::Invalid);
            prop_assert_eq!(&r.anomalies[0].kind, if dup { "duplicated" } else { "lost" });
        }
    }

    #[test]
    fn generated_bank_histories_keep_the_total(c in cfg(), seed in any::<u64>()) {
        let h = gen::bank_history(&c, 100);
        let r = BankChecker::new(100).check(&h);
        prop_assert_eq!(r.validity, Validity::Valid, "{:#?}", r);
        if let Some(bad) = gen::corrupt_bank(&h, seed) {
            let r = BankChecker::new(100).check(&bad);
            prop_assert_eq!(r.validity, Validity::Invalid);
            prop_assert_eq!(&r.anomalies[0].kind, "wrong-total");
        }
    }
}

const ALL_APPEND_CORRUPTIONS: [AppendCorruption; 6] = [
    AppendCorruption::LostWrite,
    AppendCorruption::StaleRead,
    AppendCorruption::ReorderedAppend,
    AppendCorruption::StaleUnreadRead,
    AppendCorruption::LostAppend,
    AppendCorruption::NilRead,
];

/// Valid, or (for a model with no order edges) nothing related at all:
/// Elle's `empty-transaction-graph`, which is unknown, never invalid.
fn acceptable(r: &rollcall_checkers::CheckResult) -> bool {
    r.validity == Validity::Valid
        || (r.validity == Validity::Unknown
            && r.details["anomaly_types"] == serde_json::json!(["empty-transaction-graph"]))
}

/// The corruptions must actually apply often enough for the properties above to
/// mean something.
#[test]
fn corruptions_usually_apply() {
    let mut applied = [0usize; 8];
    for seed in 0..20u64 {
        let c = GenConfig {
            ops: 120,
            processes: 4,
            keys: 2,
            seed,
            ..Default::default()
        };
        let h = gen::register_history(&c);
        applied[0] += usize::from(gen::corrupt_register_stale_read(&h, seed).is_some());
        let a = gen::append_history(&c);
        for (i, how) in ALL_APPEND_CORRUPTIONS.into_iter().enumerate() {
            applied[i + 1] += usize::from(gen::corrupt_append(&a, seed, how).is_some());
        }
        applied[7] += usize::from(gen::corrupt_bank(&gen::bank_history(&c, 50), seed).is_some());
    }
    // A stale read whose element nobody else reads is rarer (a third of seeds).
    let needed = [15, 15, 15, 15, 5, 15, 15, 15];
    assert!(
        applied.iter().zip(needed).all(|(n, k)| *n >= k),
        "{applied:?}"
    );
}
