//! Jepsen's input as Jepsen and Elle write it (issue 15): real `history.edn` shapes
//! from jepsen-io/elle and jepsen-io/history (tests/fixtures/edn), and one minimal
//! history per leniency rule of `edn::parse_history`, each with a verdict that
//! would change if the rule broke.

use rollcall_checkers::bank::BankChecker;
use rollcall_checkers::edn::{parse_history, IMPLICIT_PROCESS};
use rollcall_checkers::elle::ElleChecker;
use rollcall_checkers::linearizable::LinearizableChecker;
use rollcall_checkers::set::SetChecker;
use rollcall_checkers::{Checker, History, OpType, Process, Validity};
use serde_json::json;
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/edn")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read(name: &str) -> History {
    parse_history(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn elle(h: &History) -> Validity {
    ElleChecker::default().check(h).validity
}

#[test]
fn elle_paper_example_without_process_f_or_time() {
    let h = read("elle-paper-example.edn");
    assert_eq!(h.ops().len(), 4);
    for op in h.ops() {
        assert_eq!(op.f, "txn");
        assert_eq!(op.process, Process::Client(IMPLICIT_PROCESS));
        assert_eq!(op.invoke_time, 0);
        assert_eq!(op.kind, OpType::Ok);
    }
    assert_eq!(
        h.ops()[1].value(),
        &json!([["append", 255, 8], ["r", 253, [1, 3, 4]]])
    );
    // T4 reads 255 as [2 3 4 5] after T2 (which appended 8) completed: with
    // real-time order that read is stale.
    assert_eq!(elle(&h), Validity::Invalid);
}

#[test]
fn elle_si_without_g_single_is_a_stale_read_under_strict_serializable() {
    let h = read("elle-si-without-g-single.edn");
    assert_eq!(h.ops().len(), 4);
    assert_eq!(h.events()[0].index, 10);
    assert_eq!(
        h.ops()[3].value(),
        &json!([["append", 6, 2], ["r", 9, [2]]])
    );
    // Every op was recognised: Elle decides rather than saying unknown.
    assert_ne!(elle(&h), Validity::Unknown);
}

#[test]
fn elle_huge_scc_head_with_nemesis_leave_ops() {
    let h = read("elle-huge-scc-head.edn");
    assert_eq!(h.len(), 331);
    let nemesis: Vec<_> = h.nemesis_events().collect();
    assert_eq!(nemesis.len(), 2);
    assert_eq!(nemesis[0].f, "leave");
    // Nemesis values are for display: strings stay bare.
    assert_eq!(*nemesis[0].value, json!("n1"));
    assert_eq!(
        *nemesis[1].value,
        json!(["n1", {"n1": "ERR cannot remove leader node"}])
    );
    assert!(h.ops().iter().all(|o| o.f == "txn"));
    assert_eq!(h.ops()[0].invoke_time, 14_532_933);
}

#[test]
fn jepsen_history_readme_vector_with_error_key() {
    let h = read("jepsen-history-readme.edn");
    assert_eq!(h.ops().len(), 2);
    let failed = &h.events()[2];
    assert_eq!(failed.kind, OpType::Fail);
    assert_eq!(
        failed.extra["error"],
        json!([
            "duplicate-key",
            "etcdserver: duplicate key given in txn request"
        ])
    );
    assert_eq!(
        *h.ops()[1].invoke_value,
        json!([["r", 0, null], ["w", 1, 1], ["r", 2, null], ["w", 1, 2]])
    );
}

#[test]
fn jepsen_store_records_with_independent_tuples_and_nemesis() {
    let text = fixture("jepsen-store-register.edn");
    let h = parse_history(&text).unwrap();
    assert_eq!(h.ops().len(), 5);
    assert_eq!(h.nemesis_events().count(), 4);
    assert_eq!(*h.events()[4].value, json!("majority"));
    assert_eq!(
        *h.events()[5].value,
        json!(["isolated", {"n1": ["n4", "n5"], "n2": ["n4", "n5"]}])
    );
    assert_eq!(*h.ops()[2].invoke_value, json!([1, [3, 4]]));
    assert_eq!(h.ops()[3].kind, OpType::Info);
    let lin = LinearizableChecker::default();
    assert_eq!(lin.check(&h).validity, Validity::Valid);
    // The final read seeing 4, a value only the failed cas would have written.
    let broken = text.replace(
        ":type :ok, :process 6, :f :read, :value #jepsen.independent.Tuple{:key 1, :value 0}}",
        ":type :ok, :process 6, :f :read, :value #jepsen.independent.Tuple{:key 1, :value 4}}",
    );
    assert_ne!(broken, text);
    let h = parse_history(&broken).unwrap();
    assert_eq!(lin.check(&h).validity, Validity::Invalid);
}

#[test]
fn elle_completions_only_with_keyword_keys() {
    let text = fixture("elle-completions-only.edn");
    let h = parse_history(&text).unwrap();
    assert_eq!(h.ops().len(), 4);
    assert!(h
        .ops()
        .iter()
        .all(|o| o.complete_index == Some(o.invoke_index)));
    assert_eq!(
        h.ops()[2].value(),
        &json!([["r", "x", [1, 2]], ["append", "y", 1]])
    );
    assert_eq!(elle(&h), Validity::Valid);
    // Reading x as [2 1] contradicts the order [1 2] read before: incompatible order.
    let broken = text.replace("[[:r :y [1]] [:r :x [1 2]]]", "[[:r :y [1]] [:r :x [2 1]]]");
    assert_ne!(broken, text);
    assert_eq!(elle(&parse_history(&broken).unwrap()), Validity::Invalid);
}

#[test]
fn reads_jepsen_list_append() {
    let text = r#"{:type :invoke, :f :txn, :value [[:append 5 1] [:r 5 nil]], :process 0, :time 10, :index 0}
{:type :ok, :f :txn, :value [[:append 5 1] [:r 5 [1]]], :process 0, :time 20, :index 1}
; a comment
#jepsen.history.Op{:index 2, :time 30, :type :info, :process :nemesis, :f :start-partition, :value "majority"}
"#;
    let h = parse_history(text).unwrap();
    assert_eq!(h.ops().len(), 1);
    assert_eq!(
        h.ops()[0].value(),
        &json!([["append", 5, 1], ["r", 5, [1]]])
    );
    assert_eq!(h.nemesis_events().count(), 1);
    // One transaction relates to nothing: Elle says unknown
    // (empty-transaction-graph), never invalid.
    let r = Checker::check(&rollcall_checkers::elle::ElleChecker::default(), &h);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
}

#[test]
fn reads_registers_single_and_independent() {
    let single = "[{:type :invoke :f :write :value 3 :process 0 :time 1}\n {:type :ok :f :write :value 3 :process 0 :time 2}\n {:type :invoke :f :cas :value [3 4] :process 1 :time 3}\n {:type :ok :f :cas :value [3 4] :process 1 :time 4}\n {:type :invoke :f :read :value nil :process 1 :time 5}\n {:type :ok :f :read :value 3 :process 1 :time 6}]";
    let h = parse_history(single).unwrap();
    assert_eq!(*h.ops()[0].invoke_value, json!(["0", 3]));
    assert_eq!(*h.ops()[1].invoke_value, json!(["0", [3, 4]]));
    assert_eq!(h.ops()[2].value(), &json!(["0", 3]));
    let lin = rollcall_checkers::linearizable::LinearizableChecker::default();
    // read 3 after cas 3->4 completed: not linearizable
    assert_eq!(Checker::check(&lin, &h).validity, Validity::Invalid);

    let indep = "{:type :invoke :f :cas :value [7 [nil 1]] :process 0 :index 0}\n{:type :ok :f :cas :value [7 [nil 1]] :process 0 :index 1}\n{:type :invoke :f :read :value [7 nil] :process 0 :index 2}\n{:type :ok :f :read :value [7 1] :process 0 :index 3}\n";
    let h = parse_history(indep).unwrap();
    assert_eq!(*h.ops()[0].invoke_value, json!([7, [null, 1]]));
    assert_eq!(Checker::check(&lin, &h).validity, Validity::Valid);
}

// ---- one minimal history per leniency rule ----

#[test]
fn a_completion_without_invoke_is_an_op_in_edn_but_an_error_in_jsonl() {
    let h = parse_history("{:type :invoke :f :txn :value [[:append :x 1]] :process 0}\n{:type :ok :f :txn :value [[:append :x 1]] :process 0}\n{:type :ok :f :txn :value [[:r :x [1]]] :process 0}\n").unwrap();
    assert_eq!(h.ops().len(), 2);
    assert_eq!(h.ops()[1].invoke_index, 2);
    assert_eq!(h.ops()[1].kind, OpType::Ok);
    let jsonl = r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","value":[]}"#;
    assert_eq!(
        History::parse_jsonl(jsonl).unwrap_err().to_string(),
        "line 1: ok on process 0 without a prior invoke"
    );
}

#[test]
fn an_info_alone_then_more_ops_on_the_same_process() {
    // list_append_test.clj: an :info and two :ok ops, no process, no invokes.
    let h = parse_history("[{:type :info, :value [[:append :x 2] [:r :y nil]]}\n {:type :ok, :value [[:append :x 1] [:append :y 1]]}\n {:type :ok, :value [[:r :x [1 2]] [:r :y [1]]]}]").unwrap();
    assert_eq!(h.ops().len(), 3);
    assert_eq!(h.ops()[0].kind, OpType::Info);
}

#[test]
fn missing_or_unknown_time_is_zero() {
    let h = parse_history("{:type :invoke :f :read :process 0 :index 0}\n{:type :ok :f :read :value 5 :process 0 :time -1 :index 1}\n").unwrap();
    assert_eq!(h.ops()[0].invoke_time, 0);
    assert_eq!(h.ops()[0].complete_time, Some(0));
    let e = parse_history("{:type :ok :f :read :process 0 :time \"x\"}").unwrap_err();
    assert!(e.to_string().starts_with("line 1: field `time`"), "{e}");
}

#[test]
fn f_absent_means_txn_only_for_a_transaction_value() {
    let h = parse_history("{:type :ok :value [[:r :x nil] [:w :x 1]] :process 0}").unwrap();
    assert_eq!(h.ops()[0].f, "txn");
    let e = parse_history("{:type :ok :value [[:r :x nil]]}\n{:type :ok :value 3}").unwrap_err();
    assert_eq!(e.to_string(), "line 2: missing field `f`");
}

#[test]
fn nil_list_append_reads_are_empty_lists_but_nil_register_reads_stay_nil() {
    let h = parse_history("{:type :invoke :value [[:r :x nil] [:append :y 1]] :process 0}\n{:type :ok :value [[:r :x nil] [:append :y 1]] :process 0}\n{:type :ok :value [[:r :z nil]] :process 1}\n").unwrap();
    assert_eq!(
        *h.ops()[0].invoke_value,
        json!([["r", "x", null], ["append", "y", 1]])
    );
    assert_eq!(
        h.ops()[0].value(),
        &json!([["r", "x", []], ["append", "y", 1]])
    );
    assert_eq!(h.ops()[1].value(), &json!([["r", "z", []]]));
    let h = parse_history("{:type :ok :value [[:r :x nil] [:w :y 1]] :process 0}").unwrap();
    assert_eq!(
        h.ops()[0].value(),
        &json!([["r", "x", null], ["w", "y", 1]])
    );
}

#[test]
fn two_element_reads_gain_their_nil() {
    let h = parse_history("{:type :invoke :f :txn :value [[:r :x] [:append :x 1]] :process 0}")
        .unwrap();
    assert_eq!(
        *h.ops()[0].invoke_value,
        json!([["r", "x", null], ["append", "x", 1]])
    );
}

#[test]
fn keywords_and_strings_never_collide() {
    let h = parse_history(
        r#"{:type :ok :value [[:append :x 1] [:append "x" 2] [:r \x nil]] :process 0}"#,
    )
    .unwrap();
    assert_eq!(
        h.ops()[0].value(),
        &json!([["append", "x", 1], ["append", "\"x\"", 2], ["r", "\\x", []]])
    );
    // Were `:x` and `"x"` one key, reading [1] after both appends would be a lost
    // append; as two keys it is a plain read of x.
    let h = parse_history(
        "{:type :ok :value [[:append :x 1] [:append \"x\" 2]] :process 0}\n{:type :ok :value [[:r :x [1]] [:r \"x\" [2]]] :process 0}\n",
    )
    .unwrap();
    assert_eq!(elle(&h), Validity::Valid);
}

#[test]
fn index_counts_up_from_the_last_one_given() {
    let h = parse_history("{:type :invoke :f :read :process 0 :index 7}\n{:type :ok :f :read :process 0}\n{:type :invoke :f :read :process 0}\n").unwrap();
    let idx: Vec<u64> = h.events().iter().map(|e| e.index).collect();
    assert_eq!(idx, [7, 8, 9]);
}

#[test]
fn extra_keys_are_kept() {
    let h = parse_history(
        "{:type :ok :f :read :value [:x 1] :process 0 :error :timeout :node \"n1\" :my/key {:a 1}}",
    )
    .unwrap();
    let e = &h.events()[0];
    assert_eq!(e.extra["error"], json!("timeout"));
    assert_eq!(e.extra["my/key"], json!({"a": 1}));
    assert_eq!(e.node.as_deref(), Some("n1"));
}

#[test]
fn top_level_vector_list_or_bare_sequence() {
    let op = "{:type :ok :f :txn :value [[:r :x nil]] :process 0}";
    for text in [
        format!("{op}\n{op}"),
        format!("[{op}\n{op}]"),
        format!("({op}\n{op})"),
        format!("#jepsen.history.Op{op}\n#jepsen.history.Op{op}"),
    ] {
        assert_eq!(parse_history(&text).unwrap().ops().len(), 2, "{text}");
    }
}

#[test]
fn every_edn_error_names_its_line() {
    for (text, line) in [
        ("{:type :ok :f :read :process 0}\n\n{:type :ok", 3),
        ("[{:type :ok :f :read :process 0}\n 5]", 1),
        (
            "{:type :ok :f :read :process 0}\n{:type :maybe :f :read :process 0}",
            2,
        ),
        (
            "{:type :ok :f :read :process 0}\n\n{:type :ok :f :read :process 1.5}",
            3,
        ),
        ("\n{:type :ok :f :read :process 0 :index -2}", 2),
        (
            "\n\n{:type :invoke :f :read :process 0}\n{:type :invoke :f :read :process 0}",
            4,
        ),
        (
            "{:index 3 :type :ok :f :read :process 0}\n{:index 1 :type :ok :f :read :process 0}",
            2,
        ),
        ("{:a \"unterminated\n\n", 1),
        ("\n##Bad", 2),
    ] {
        let e = parse_history(text).unwrap_err().to_string();
        assert!(e.starts_with(&format!("line {line}: ")), "{text:?} -> {e}");
    }
}

#[test]
fn clojure_printed_objects_in_errors_are_readable() {
    let h = parse_history(
        "{:type :info :f :read :process 0 :error #object[java.net.SocketException 0x1f2e3d4c \"Connection reset\"] :rate ##Inf}",
    )
    .unwrap();
    assert_eq!(
        h.events()[0].extra["error"],
        json!(["java.net.SocketException", 0x1f2e3d4c, "Connection reset"])
    );
}

#[test]
fn checkers_that_recognise_nothing_say_unknown() {
    for text in ["", ";; only a comment\n", "[]"] {
        let h = parse_history(text).unwrap();
        assert!(h.ops().is_empty());
        for c in [
            Box::new(LinearizableChecker::default()) as Box<dyn Checker>,
            Box::new(BankChecker::new(100)),
            Box::new(SetChecker::default()),
        ] {
            let r = c.check(&h);
            assert_eq!(r.validity, Validity::Unknown, "{}: {r:?}", c.name());
            assert!(r.summary.starts_with("no "), "{}", r.summary);
        }
    }
    // A history of other operations only: still nothing for these checkers.
    let h = parse_history("{:type :ok :value [[:r :x nil]] :process 0}").unwrap();
    let r = LinearizableChecker::default().check(&h);
    assert_eq!(r.validity, Validity::Unknown);
    // One register op is enough to decide.
    let h = parse_history("{:type :ok :f :read :value [:x nil] :process 0}").unwrap();
    assert_eq!(
        LinearizableChecker::default().check(&h).validity,
        Validity::Valid
    );
}
