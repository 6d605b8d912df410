//! Fuzz-style properties: whatever the bytes, the parsers return an error or a
//! history, and every checker returns a result; nothing panics.

use proptest::prelude::*;
use rollcall_checkers::bank::BankChecker;
use rollcall_checkers::elle::ElleChecker;
use rollcall_checkers::gen::{self, GenConfig};
use rollcall_checkers::linearizable::LinearizableChecker;
use rollcall_checkers::set::SetChecker;
use rollcall_checkers::{edn, Checker, History};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn run_all_checkers(h: &History) {
    let committed: BTreeMap<String, usize> = h
        .ops()
        .iter()
        .filter_map(|o| o.tx_id.clone())
        .enumerate()
        .map(|(i, t)| (t, i % 3))
        .collect();
    let checkers: Vec<Box<dyn Checker>> = vec![
        Box::new(LinearizableChecker::with_time_limit(Duration::from_millis(
            200,
        ))),
        Box::new(ElleChecker::default()),
        Box::new(SetChecker::new(committed)),
        Box::new(BankChecker::new(100)),
    ];
    for c in &checkers {
        let r = c.check(h);
        assert_eq!(r.checker, c.name());
        // results must serialise for results.json
        serde_json::to_string(&r).unwrap();
    }
}

fn sample_jsonl(seed: u64) -> String {
    let c = GenConfig {
        ops: 30,
        processes: 3,
        keys: 2,
        seed,
        info_rate: 0.1,
        fail_rate: 0.1,
    };
    let mut s = gen::append_history(&c).to_jsonl();
    s.push_str(
        &gen::register_history(&c)
            .to_jsonl()
            .replace("\"index\":", "\"index\":1000")
            .replace("\"process\":", "\"process\":100"),
    );
    s
}

const EDN_SAMPLE: &str = r#"{:type :invoke, :f :txn, :value [[:append 5 1] [:r 5 nil]], :process 0, :time 10, :index 0}
{:type :ok, :f :txn, :value [[:append 5 1] [:r 5 [1]]], :process 0, :time 20, :index 1}
{:type :invoke, :f :write, :value [3 2], :process 1, :time 30, :index 2}
{:type :info, :f :write, :value [3 2], :process 1, :time 40, :index 3}
#jepsen.history.Op{:index 4, :time 50, :type :info, :process :nemesis, :f :start, :value nil}
{:type :invoke, :f :cas, :value [1 2], :process 2, :time 60, :index 5}
{:type :fail, :f :cas, :value [1 2], :process 2, :time 70, :index 6}
"#;

/// Random JSON values, including the shapes checkers look for.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-3i64..5).prop_map(Value::from),
        "[a-z0-9]{0,3}".prop_map(Value::from),
        Just(json!("append")),
        Just(json!("r")),
        any::<f64>().prop_map(|f| json!(f)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    TruncateAt(usize),
    FlipByte(usize, u8),
    ReplaceValue(usize, Value),
    ReplaceField(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop_oneof![
        Just("index"),
        Just("time"),
        Just("process"),
        Just("type"),
        Just("f"),
        Just("tx_id"),
        Just("node"),
    ]
    .prop_map(String::from);
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::TruncateAt),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::FlipByte(a, b)),
        (any::<usize>(), json_value()).prop_map(|(a, v)| Mutation::ReplaceValue(a, v)),
        (any::<usize>(), field, json_value()).prop_map(|(a, f, v)| Mutation::ReplaceField(a, f, v)),
    ]
}

fn mutate(text: &str, m: &Mutation) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let n = lines.len().max(1);
    match m {
        Mutation::DeleteLine(i) => {
            if !lines.is_empty() {
                lines.remove(i % n);
            }
        }
        Mutation::DuplicateLine(i) => {
            if let Some(l) = lines.get(i % n).cloned() {
                lines.insert(i % n, l);
            }
        }
        Mutation::SwapLines(a, b) => {
            if !lines.is_empty() {
                lines.swap(a % n, b % n);
            }
        }
        Mutation::TruncateAt(i) => {
            let mut bytes = text.as_bytes().to_vec();
            bytes.truncate(i % (bytes.len() + 1));
            return bytes;
        }
        Mutation::FlipByte(i, b) => {
            let mut bytes = text.as_bytes().to_vec();
            let len = bytes.len();
            if len > 0 {
                bytes[i % len] = *b;
            }
            return bytes;
        }
        Mutation::ReplaceValue(i, v) | Mutation::ReplaceField(i, _, v) => {
            if let Some(l) = lines.get_mut(i % n) {
                if let Ok(mut obj) = serde_json::from_str::<Value>(l) {
                    let field = match m {
                        Mutation::ReplaceField(_, f, _) => f.as_str(),
                        _ => "value",
                    };
                    obj[field] = v.clone();
                    *l = obj.to_string();
                }
            }
        }
    }
    lines.join("\n").into_bytes()
}

fn parse_and_check(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(h) = History::parse_jsonl(&text) {
        run_all_checkers(&h);
        assert_eq!(History::parse_jsonl(&h.to_jsonl()).unwrap(), h);
    }
    if let Ok(h) = edn::parse_history(&text) {
        run_all_checkers(&h);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        parse_and_check(&bytes);
    }

    #[test]
    fn jsonish_bytes_never_panic(s in r#"[\[\]{}:,"a-z0-9 \n#;\\-]{0,300}"#) {
        parse_and_check(s.as_bytes());
    }

    #[test]
    fn mutated_histories_never_panic(seed in 0u64..1000, ms in prop::collection::vec(mutation(), 1..4)) {
        let mut text = sample_jsonl(seed).into_bytes();
        for m in &ms {
            text = mutate(&String::from_utf8_lossy(&text), m);
        }
        parse_and_check(&text);
    }

    #[test]
    fn mutated_edn_never_panics(ms in prop::collection::vec(mutation(), 1..4)) {
        let mut text = EDN_SAMPLE.as_bytes().to_vec();
        for m in &ms {
            text = mutate(&String::from_utf8_lossy(&text), m);
        }
        parse_and_check(&text);
    }
}

/// Values mutated into every shape still leave the histories checkable: check
/// that mutations keeping the JSON valid do reach the checkers.
#[test]
fn value_mutations_reach_the_checkers() {
    let text = sample_jsonl(1);
    let mut reached = 0;
    for i in 0..40 {
        let bytes = mutate(
            &text,
            &Mutation::ReplaceValue(i * 7, json!([["append", [1], "x"]])),
        );
        if let Ok(h) = History::parse_jsonl(&String::from_utf8_lossy(&bytes)) {
            run_all_checkers(&h);
            reached += 1;
        }
    }
    assert!(reached >= 30, "{reached}");
}
#[test]
fn unmutated_samples_parse() {
    for seed in 0..20 {
        History::parse_jsonl(&sample_jsonl(seed)).unwrap();
    }
    edn::parse_history(EDN_SAMPLE).unwrap();
}
