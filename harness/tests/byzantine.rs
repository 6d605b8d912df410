//! The `byzantine` nemesis on the simulator (issue 12): per behaviour, honest nodes
//! receive the adversary's lies and reject them (their `dropped` counters say why)
//! or accept them harmlessly, with every checker valid; a newcomer syncing from a
//! forging adversary alone makes no progress and completes once an honest peer is
//! reachable; beyond the fault model the checkers see the fork.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rollcall::backend::{Backend, Clients};
use rollcall::commands::{simulate, Simulated};
use rollcall::nemesis::Nemesis;
use rollcall::options::TestOptions;
use rollcall::run::cluster;
use rollcall::sim::{sim_timeouts, SimBackend, SimOptions};
use rollcall_checkers::{CheckResult, History, OpType, Validity};
use rollcall_workloads::{Behaviour, Fault, NemesisKind, PartitionShape, PlannedFault};
use serde_json::Value;

const S: u64 = 1_000_000_000;

fn byzantine(nodes: &[&str], behaviour: Behaviour, start_s: u64, stop_s: u64) -> PlannedFault {
    PlannedFault {
        start_ns: start_s * S,
        stop_ns: Some(stop_s * S),
        fault: Fault::Byzantine {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            behaviour,
        },
    }
}

fn opts(seed: u64, time_limit_s: u64, schedule: Vec<PlannedFault>) -> TestOptions {
    TestOptions {
        seed,
        nodes: 4,
        spare: 0,
        time_limit_s,
        rate: 50.0,
        nemesis: vec![NemesisKind::Byzantine],
        recovery_s: 5,
        schedule: Some(schedule),
        ..TestOptions::default()
    }
}

fn run(o: &TestOptions) -> Simulated {
    simulate(o, true).expect("simulated run")
}

fn checker<'a>(sim: &'a Simulated, name: &str) -> &'a CheckResult {
    sim.results
        .results
        .iter()
        .find(|c| c.checker == name)
        .unwrap_or_else(|| panic!("no {name} checker"))
}

fn assert_all_valid(sim: &Simulated) {
    let bad: Vec<String> = sim
        .results
        .results
        .iter()
        .filter(|c| c.validity != Validity::Valid)
        .map(|c| format!("{}: {} {:?}", c.checker, c.summary, c.anomalies))
        .collect();
    assert!(bad.is_empty(), "checkers not valid: {bad:#?}");
}

/// The honest nodes' drop counter `reason`, summed (from their final `/status`).
fn honest_dropped(sim: &Simulated, reason: &str) -> u64 {
    checker(sim, "byzantine").details["honest_dropped"][reason]
        .as_u64()
        .unwrap_or(0)
}

fn deviant(sim: &Simulated, b: Behaviour) -> u64 {
    checker(sim, "byzantine").details["behaviours"][b.name()]["deviant"]
        .as_u64()
        .unwrap_or(0)
}

/// One adversary (n1) doing `b` from 1 s to 7 s of a 10 s run on 4 nodes.
fn one_adversary(b: Behaviour) -> Simulated {
    let sim = run(&opts(21, 10, vec![byzantine(&["n1"], b, 1, 7)]));
    assert_all_valid(&sim);
    sim
}

/// One adversary doing `b`; the honest nodes' `reasons` counters must show the lies
/// were received and rejected.
fn rejected(b: Behaviour, reasons: &[&str]) {
    let sim = one_adversary(b);
    assert!(deviant(&sim, b) > 0, "{b}: nothing deviant sent");
    for r in reasons {
        assert!(
            honest_dropped(&sim, r) > 0,
            "{b}: no honest {r} drop: {}",
            checker(&sim, "byzantine").details
        );
    }
}

/// Client operations acknowledged while the adversary lied (1 s to 7 s).
fn acked_during_fault(sim: &Simulated) -> usize {
    let h = History::parse_jsonl(&sim.out.history).expect("history");
    h.ops()
        .iter()
        .filter(|o| o.kind == OpType::Ok)
        .filter(|o| o.complete_time.is_some_and(|t| (S..7 * S).contains(&t)))
        .count()
}

#[test]
fn mutate_evict_in_votes_and_proposals_is_dropped() {
    rejected(Behaviour::MutateEvict, &["bad_evict", "invalid_block"]);
}

#[test]
fn mutate_round_proposals_are_dropped_as_not_the_proposer() {
    rejected(Behaviour::MutateRound, &["unknown_signer"]);
}

#[test]
fn mutate_height_proposals_are_dropped_as_not_the_proposer() {
    rejected(Behaviour::MutateHeight, &["unknown_signer"]);
}

#[test]
fn swapped_block_proposals_are_invalid() {
    rejected(Behaviour::SwapBlock, &["invalid_block"]);
}

#[test]
fn fresh_invalid_blocks_are_invalid() {
    rejected(Behaviour::InvalidBlock, &["invalid_block"]);
}

#[test]
fn equivocation_is_seen_and_counted() {
    rejected(Behaviour::Equivocate, &["equivocation"]);
}

/// Lies that an honest node accepts harmlessly (no counter names them): the run
/// stays valid, the attack was delivered, and clients were served throughout.
fn harmless(b: Behaviour) -> Simulated {
    let sim = one_adversary(b);
    let s = &checker(&sim, "byzantine").details["behaviours"][b.name()];
    let sent = s["deviant"].as_u64().unwrap_or(0) + s["suppressed"].as_u64().unwrap_or(0);
    assert!(sent > 0, "{b}: the attack was not delivered: {s}");
    let acked = acked_during_fault(&sim);
    assert!(
        acked > 100,
        "{b}: only {acked} operations acknowledged under attack"
    );
    sim
}

#[test]
fn a_changed_valid_round_is_harmless() {
    harmless(Behaviour::MutateValidRound);
}

#[test]
fn replayed_messages_are_harmless() {
    harmless(Behaviour::Replay);
}

#[test]
fn a_resent_earlier_proposal_is_harmless() {
    harmless(Behaviour::ResendProposal);
}

#[test]
fn withholding_from_half_the_peers_is_harmless() {
    harmless(Behaviour::Withhold);
}

#[test]
fn a_silent_proposer_is_skipped() {
    harmless(Behaviour::SilentProposer);
}

#[test]
fn forged_sync_answers_and_height_lies_do_not_disturb_a_live_cluster() {
    harmless(Behaviour::ForgedSync);
}

#[test]
fn flooding_far_future_heights_and_rounds_is_harmless() {
    harmless(Behaviour::Flood);
}

/// A non-operator AddNode gossiped, and committed in the adversary's own
/// proposals, is rejected at execution: the roster never changes.
#[test]
fn membership_lies_never_change_the_roster() {
    let sim = harmless(Behaviour::MembershipLie);
    let n2 = sim.out.dumps.iter().find(|d| d.name == "n2").expect("n2");
    let forged = n2
        .chain
        .iter()
        .flat_map(|cb| &cb.block.txs)
        .filter(|tx| tx.id.starts_with("byz-add-"))
        .count();
    assert!(forged > 0, "the forged AddNode reached a committed block");
    let roster = n2.status.as_ref().expect("status").roster.len();
    assert_eq!(roster, 4, "the roster did not change");
}

/// The simulated cluster of `o`, driven directly (faults started and stopped by hand).
fn sim_backend(o: &TestOptions, seed: u64) -> SimBackend {
    let opts = SimOptions {
        timeouts: sim_timeouts(),
        ..SimOptions::default()
    };
    SimBackend::new(cluster(o), opts, ChaCha8Rng::seed_from_u64(seed)).expect("cluster")
}

/// A status field of `node` as a number.
fn status_u64(sim: &mut SimBackend, node: &str, path: &[&str]) -> u64 {
    let st = sim
        .status(node)
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    path.iter().fold(&st, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

fn links(a: &str, others: &[&str]) -> Vec<(String, String)> {
    others
        .iter()
        .flat_map(|o| {
            [
                (a.to_string(), o.to_string()),
                (o.to_string(), a.to_string()),
            ]
        })
        .collect()
}

/// A newcomer (n5) that can reach only the adversary n1, which answers its sync
/// requests with forged certificates (short, non-member, fork) and claims to be far
/// ahead, makes no progress and counts every refusal; once the honest peers are
/// reachable it completes.
#[test]
fn forged_sync_gets_a_newcomer_nowhere_until_an_honest_peer_is_reachable() {
    let o = TestOptions {
        nodes: 4,
        spare: 1,
        ..opts(5, 30, Vec::new())
    };
    let spec = cluster(&o);
    let mut sim = sim_backend(&o, 5);
    let mut nemesis = Nemesis::default();
    sim.advance_to(2 * S).unwrap();
    let adversary = Fault::Byzantine {
        nodes: vec!["n1".into()],
        behaviour: Behaviour::ForgedSync,
    };
    nemesis.start(&mut sim, &adversary).unwrap();
    let cut = Fault::Partition {
        shape: PartitionShape::One,
        groups: vec![],
        blocked: links("n5", &["n2", "n3", "n4"]),
    };
    nemesis.start(&mut sim, &cut).unwrap();
    nemesis
        .start(&mut sim, &Fault::AddNode { node: "n5".into() })
        .unwrap();
    let tx = spec.add_node_tx(4, 1).expect("add-node tx");
    sim.submit("n2", tx);
    sim.advance_to(10 * S).unwrap();
    let honest_height = status_u64(&mut sim, "n2", &["height"]);
    assert!(
        honest_height > 10,
        "the honest nodes commit: {honest_height}"
    );
    assert_eq!(
        status_u64(&mut sim, "n5", &["height"]),
        0,
        "no progress on forged blocks"
    );
    let refused = status_u64(&mut sim, "n5", &["dropped", "invalid_block"]);
    assert!(refused > 0, "the newcomer refused forged blocks");
    // An honest peer becomes reachable while the adversary keeps lying.
    nemesis.stop(&mut sim, &cut).unwrap();
    sim.advance_to(20 * S).unwrap();
    let caught_up = status_u64(&mut sim, "n5", &["height"]);
    assert!(
        caught_up >= honest_height,
        "the newcomer completes from an honest peer: at {caught_up}, the others were at {honest_height} 10 s ago (refused {} forged answers)",
        status_u64(&mut sim, "n5", &["dropped", "invalid_block"])
    );
    nemesis.stop(&mut sim, &adversary).unwrap();
}

/// Beyond the fault model: 2 of 4 validators (f + 1) equivocate together, showing
/// each honest node a different block and voting for it. A fork is then possible;
/// the first seed (searched deterministically) that forks must be caught by
/// `chain-agreement`, and the byzantine checker must say the run was beyond the model.
#[test]
fn beyond_the_fault_model_equivocators_fork_and_the_checkers_see_it() {
    let mut tried = Vec::new();
    for seed in 1..=8 {
        let o = opts(
            seed,
            8,
            vec![byzantine(&["n1", "n2"], Behaviour::Equivocate, 1, 7)],
        );
        let sim = run(&o);
        let byz = checker(&sim, "byzantine");
        assert_eq!(byz.details["beyond_fault_model"], true);
        assert!(byz.summary.contains("BEYOND"), "{}", byz.summary);
        let agreement = checker(&sim, "chain-agreement");
        tried.push((seed, agreement.validity));
        if agreement.validity == Validity::Invalid {
            assert_eq!(sim.results.valid, Validity::Invalid);
            assert!(
                agreement.summary.contains("fork") || !agreement.anomalies.is_empty(),
                "{}",
                agreement.summary
            );
            return;
        }
    }
    panic!("no fork in {tried:?}");
}

/// The report renders the byzantine section: behaviours, what was sent, what the
/// honest nodes dropped.
#[test]
fn the_report_has_a_byzantine_section() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(
        21,
        6,
        vec![byzantine(&["n1"], Behaviour::MutateEvict, 1, 5)],
    );
    let r = rollcall::commands::run_one(&o, dir.path(), &[], true).expect("run");
    assert_eq!(r.valid, Validity::Valid);
    let html = std::fs::read_to_string(r.dir.join("report.html")).expect("report.html");
    assert!(html.contains(r#"<div id="byzantine">"#));
    assert!(html.contains("<td>mutate-evict</td>"));
    assert!(html.contains("bad_evict"));
    assert!(!html.contains("Beyond the fault model"));
}

/// Vote sets an honest node (n2) holds after `secs` of a stalled height (n3 and
/// n4 killed: no quorum), with n1 flooding far-future rounds or not.
fn vote_sets_when_stalled(flood: bool, secs: u64) -> usize {
    let o = opts(9, 30, Vec::new());
    let mut sim = sim_backend(&o, 9);
    let mut nemesis = Nemesis::default();
    sim.advance_to(S).unwrap();
    nemesis
        .start(
            &mut sim,
            &Fault::Kill {
                nodes: vec!["n3".into(), "n4".into()],
            },
        )
        .unwrap();
    if flood {
        nemesis
            .start(
                &mut sim,
                &Fault::Byzantine {
                    nodes: vec!["n1".into()],
                    behaviour: Behaviour::Flood,
                },
            )
            .unwrap();
    }
    sim.advance_to((1 + secs) * S).unwrap();
    sim.status("n2").expect("n2 status").votes.len()
}

/// Issue 12 finding, fixed: far-future *rounds* at the current height used to be
/// stored, one vote set per round, with no bound until the height ended, so a
/// stalled height under a flooding adversary grew without limit. Each signer now
/// has two catch-up rounds (CometBFT's HeightVoteSet.AddVote; `consensus::catch_up`).
#[test]
fn a_far_future_round_flood_keeps_memory_bounded() {
    let honest = vote_sets_when_stalled(false, 20);
    let short = vote_sets_when_stalled(true, 10);
    let long = vote_sets_when_stalled(true, 20);
    eprintln!("vote sets at n2: honest stall 20 s {honest}, flood 10 s {short}, flood 20 s {long}");
    assert!(
        long <= honest + 64,
        "flood: {short} after 10 s, {long} after 20 s (honest {honest})"
    );
}

/// Eviction under attack (issue 12): a dead node (n7, fail-node) is still evicted
/// while an adversary (n1) lies about `evict` in every vote and proposal (f = 2 of
/// 7: one dead, one lying), and no honest node is evicted.
#[test]
fn a_dead_node_is_evicted_while_an_adversary_votes_against_it() {
    let o = TestOptions {
        nodes: 7,
        ..opts(
            3,
            30,
            vec![
                PlannedFault {
                    start_ns: S,
                    stop_ns: None,
                    fault: Fault::FailNode { node: "n7".into() },
                },
                byzantine(&["n1"], Behaviour::MutateEvict, 1, 29),
            ],
        )
    };
    let sim = run(&o);
    assert_all_valid(&sim);
    assert!(honest_dropped(&sim, "bad_evict") > 0);
    let (n1, n7) = (sim.spec.keys[0].id(), sim.spec.keys[6].id());
    let n2 = sim.out.dumps.iter().find(|d| d.name == "n2").expect("n2");
    let evicted: Vec<_> = n2.chain.iter().filter_map(|cb| cb.block.evict).collect();
    assert!(
        evicted.contains(&n7),
        "the dead node is evicted: {evicted:?}"
    );
    // The adversary's own proposals (lying about evict) never commit, so the rule
    // finds it as abnormal too; no honest node is ever evicted.
    assert!(
        evicted.iter().all(|e| *e == n1 || *e == n7),
        "only the dead node and the liar: {evicted:?}"
    );
}

/// A restarted node (n2, killed 1–6 s) catches up by sync while an adversary (n1)
/// floods messages for far-future heights, which make it look far ahead.
#[test]
fn a_restarted_node_catches_up_despite_a_far_future_flood() {
    let o = opts(13, 30, Vec::new());
    let mut sim = sim_backend(&o, 13);
    let mut nemesis = Nemesis::default();
    let kill = Fault::Kill {
        nodes: vec!["n2".into()],
    };
    sim.advance_to(S).unwrap();
    nemesis.start(&mut sim, &kill).unwrap();
    nemesis
        .start(
            &mut sim,
            &Fault::Byzantine {
                nodes: vec!["n1".into()],
                behaviour: Behaviour::Flood,
            },
        )
        .unwrap();
    sim.advance_to(6 * S).unwrap();
    nemesis.stop(&mut sim, &kill).unwrap();
    sim.advance_to(16 * S).unwrap();
    let (n2, n3) = (
        status_u64(&mut sim, "n2", &["height"]),
        status_u64(&mut sim, "n3", &["height"]),
    );
    assert!(n2 + 5 >= n3, "n2 at {n2}, n3 at {n3}");
}

/// A deliberately weakened node (issue 12): one that takes synced blocks without
/// checking their commit certificates (`Core::weaken_trust_synced_certificates`).
/// While the newcomer n5 can reach only the forging adversary n1, an honest n5
/// refuses every forged block and every checker stays valid; a weakened n5 stores
/// them, and the node-side checkers catch it.
#[test]
fn forged_sync_exposes_a_node_that_trusts_synced_certificates() {
    let schedule = vec![
        byzantine(&["n1"], Behaviour::ForgedSync, 1, 14),
        PlannedFault {
            start_ns: S,
            stop_ns: Some(14 * S),
            fault: Fault::Partition {
                shape: PartitionShape::One,
                groups: vec![],
                blocked: links("n5", &["n2", "n3", "n4"]),
            },
        },
        PlannedFault {
            start_ns: 3 * S,
            stop_ns: Some(14 * S),
            fault: Fault::AddNode { node: "n5".into() },
        },
    ];
    let base = TestOptions {
        spare: 1,
        ..opts(5, 15, schedule)
    };
    let honest = run(&base);
    assert_all_valid(&honest);
    assert!(
        honest_dropped(&honest, "invalid_block") > 0,
        "n5 refused forged blocks"
    );
    let weak = run(&TestOptions {
        sim_trust_synced_certs: true,
        ..base
    });
    let caught: Vec<String> = (weak.results.results.iter())
        .filter(|c| c.validity == Validity::Invalid)
        .map(|c| format!("{}: {}", c.checker, c.summary))
        .collect();
    eprintln!("weakened node: {caught:#?}");
    assert_eq!(weak.results.valid, Validity::Invalid, "{caught:?}");
}
