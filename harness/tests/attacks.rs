//! The adversarial client (issue 12) end to end on the simulator: beside the
//! workload, under kills, partitions and add-node, it resubmits ids and sends
//! forged and replayed AddNodes; every checker stays valid, every kind was sent and
//! answered, the record is stored and re-checked from the run folder, and a
//! damaged record is `unknown`, never `valid`.

use rollcall::commands::{check_run_dir, run_one, CheckArgs, RunReport};
use rollcall::options::TestOptions;
use rollcall_checkers::Validity;
use rollcall_history::{AttackKind, ClientAttack, RunDir};
use rollcall_workloads::NemesisKind;
use std::sync::OnceLock;

/// One run shared by the tests (a sim run is the slow part).
fn run() -> &'static (tempfile::TempDir, RunReport) {
    static RUN: OnceLock<(tempfile::TempDir, RunReport)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let o = TestOptions {
            nemesis: vec![
                NemesisKind::Kill,
                NemesisKind::Partition,
                NemesisKind::AddNode,
            ],
            nemesis_interval_s: 3,
            time_limit_s: 40,
            seed: 4,
            adversarial_client: true,
            ..TestOptions::default()
        };
        let r = run_one(&o, dir.path(), &[], true).unwrap();
        (dir, r)
    })
}

fn attacks() -> Vec<ClientAttack> {
    RunDir::new(&run().1.dir)
        .read_attacks()
        .unwrap()
        .expect("client-attacks.json is stored")
}

#[test]
fn every_checker_stays_valid_and_every_kind_is_delivered() {
    let r = &run().1;
    let bad: Vec<String> = (r.results.results.iter())
        .filter(|c| c.validity != Validity::Valid)
        .map(|c| format!("{}: {}", c.checker, c.summary))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    let c = (r.results.results.iter())
        .find(|c| c.checker == "client-attacks")
        .expect("the client-attacks checker ran");
    eprintln!("{}", serde_json::to_string_pretty(&c.details).unwrap());
    let attacks = attacks();
    for k in AttackKind::ALL {
        let answered = (attacks.iter())
            .filter(|a| a.kind == k && a.answer.is_some())
            .count();
        assert!(answered > 0, "{} was sent and answered", k.name());
    }
    // Resubmissions of committed ids got their first result back.
    let first_again = (attacks.iter())
        .filter(|a| !a.kind.is_add_node() && a.original.is_some() && a.answer == a.original)
        .count();
    assert!(
        first_again > 0,
        "some resubmission was answered with its first result"
    );
}

/// `rollcall check` on the stored folder re-runs the checker from the file; a
/// damaged file makes it `unknown`, never `valid`.
#[test]
fn the_stored_record_is_rechecked_and_a_damaged_one_is_unknown() {
    let (_, r) = run();
    let again = check_run_dir(&r.dir, CheckArgs::default()).unwrap();
    let verdict = |x: &rollcall_checkers::Results| {
        (x.results.iter())
            .find(|c| c.checker == "client-attacks")
            .map(|c| c.validity)
    };
    assert_eq!(verdict(&again), Some(Validity::Valid));
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&r.dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
        }
    }
    let nodes = copy.path().join("nodes");
    copy_dir(&r.dir.join("nodes"), &nodes);
    std::fs::write(copy.path().join("client-attacks.json"), b"[{\"kind\": 3}").unwrap();
    let damaged = check_run_dir(copy.path(), CheckArgs::default()).unwrap();
    assert_eq!(verdict(&damaged), Some(Validity::Unknown));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
