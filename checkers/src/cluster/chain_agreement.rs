//! `chain-agreement` (harness.md §7): the per-block findings of every replay
//! (links, proposers, certificates) plus forks between nodes.

use std::collections::BTreeMap;

use serde_json::{json, Map};

use super::{result, Analysis, ClusterRun, Finding, AGREEMENT};
use crate::result::{CheckResult, Validity};

/// harness.md §7 `chain-agreement`: per-block findings of the replays, plus forks
/// (two nodes holding blocks with different hashes at one height).
pub(crate) fn check(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = an.findings_of(AGREEMENT);
    let max = an.max_height();
    let mut first_fork = None;
    let mut forked_heights = 0u64;
    for h in 1..=max {
        let groups = an.groups_at(h, |r| r.at(h).map(|rec| rec.hash).unwrap_or_default());
        if groups.len() > 1 {
            forked_heights += 1;
            first_fork.get_or_insert(h);
            let desc: Vec<String> = groups
                .iter()
                .map(|(hash, ns)| format!("{} hold {}", ns.join(","), hash.short()))
                .collect();
            let mut f = Finding::new(
                AGREEMENT,
                "fork",
                Validity::Invalid,
                Some(h),
                "",
                format!("nodes disagree at height {h}: {}", desc.join("; ")),
                json!({"blocks": groups.iter().map(|(k, v)| (k.to_hex(), v.clone())).collect::<BTreeMap<_, _>>()}),
            );
            f.nodes = groups.values().flatten().map(|s| s.to_string()).collect();
            findings.push(f);
        }
    }
    let mut details = Map::new();
    details.insert(
        "heights".into(),
        json!(run
            .nodes
            .iter()
            .zip(&an.replays)
            .map(|(n, r)| (n.name.clone(), r.len()))
            .collect::<BTreeMap<_, _>>()),
    );
    details.insert("first_fork_height".into(), json!(first_fork));
    details.insert("forked_heights".into(), json!(forked_heights));
    result(
        AGREEMENT,
        findings,
        details,
        format!(
            "{} nodes agree on every common height (up to {max}); every certificate has a quorum of valid signatures",
            an.replays.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::cluster::fixture::*;
    use crate::cluster::*;
    use crate::oracle::wire::{Bytes32, CommitSig, DOMAIN_VOTE};

    #[test]
    fn fork_is_caught() {
        let a = build_chain(&mut |_, _| {});
        let b = build_chain(&mut |h, blk| {
            if h == 20 {
                blk.txs[0].id = "other".into();
            }
        });
        let mut run = run_of(&a, history("ok", 30, &[]));
        run.nodes[2].chain = b.chain.clone();
        assert_caught(&run, AGREEMENT, "fork", Some(20));
        let r = &check_cluster(&run)[0];
        assert_eq!(r.details["first_fork_height"], json!(20));
        assert!(!has(r, "fork", Some(19)));
        assert_valid_except(&run, &[AGREEMENT]);
    }

    #[test]
    fn too_few_signatures_are_caught() {
        let mut run = standard();
        run.nodes[1].chain[10].cert.sigs.pop();
        assert_caught(&run, AGREEMENT, "too-few-signatures", Some(11));
        assert_valid_except(&run, &[AGREEMENT]);
    }

    #[test]
    fn forged_signature_is_caught() {
        let mut run = standard();
        run.nodes[0].chain[10].cert.sigs[0].sig.0[0] ^= 1;
        assert_caught(&run, AGREEMENT, "bad-signature", Some(11));
        // A forged last_commit too.
        let mut run = standard();
        if let Some(lc) = run.nodes[0].chain[5].block.last_commit.as_mut() {
            lc.sigs[1].sig.0[7] ^= 0x40;
        }
        // The block hash changed, so the cert and the next link break as well; the
        // forged precommit is named.
        let rs = check_cluster(&run);
        assert!(rs[0]
            .anomalies
            .iter()
            .any(|a| a.kind == "bad-signature" && a.extra["which"] == "last_commit"));
    }

    #[test]
    fn unknown_and_duplicate_signers_are_caught() {
        let mut run = standard();
        let c = &mut run.nodes[0].chain[20].cert;
        let dup = c.sigs[0].clone();
        c.sigs[1] = dup;
        assert_caught(&run, AGREEMENT, "duplicate-signer", Some(21));
        let mut run = standard();
        let c = &mut run.nodes[0].chain[20].cert;
        let outsider = key(9);
        c.sigs[0] = CommitSig {
            validator: outsider.id(),
            sig: outsider.sign(DOMAIN_VOTE, &c.vote_of(outsider.id()).sign_bytes()),
        };
        assert_caught(&run, AGREEMENT, "unknown-signer", Some(21));
    }

    #[test]
    fn repeated_transactions_and_oversized_blocks_are_caught() {
        // protocol.md §3: an id already committed at height 5 again at 9.
        let b = build_chain(&mut |h, blk| {
            if h == 9 {
                blk.txs.push(kv(5));
            }
        });
        let run = run_of(&b, history("ok", 30, &[]));
        assert_caught(&run, AGREEMENT, "duplicate-tx", Some(9));
        // Twice in one block.
        let b = build_chain(&mut |h, blk| {
            if h == 7 {
                blk.txs.push(blk.txs[0].clone());
            }
        });
        let run = run_of(&b, history("ok", 30, &[]));
        assert_caught(&run, AGREEMENT, "duplicate-tx", Some(7));
        // Over max_block_txs (100 in the fixture).
        let b = build_chain(&mut |h, blk| {
            if h == 6 {
                blk.txs.extend((1000..1100).map(kv));
            }
        });
        let run = run_of(&b, history("ok", 30, &[]));
        assert_caught(&run, AGREEMENT, "too-many-txs", Some(6));
        assert!(!has(&check_cluster(&run)[0], "duplicate-tx", None));
    }

    #[test]
    fn wrong_prev_hash_is_caught() {
        let b = build_chain(&mut |h, blk| {
            if h == 15 {
                blk.prev_hash = Bytes32([9; 32]);
            }
        });
        let run = run_of(&b, history("ok", 30, &[]));
        assert_caught(&run, AGREEMENT, "broken-link", Some(15));
        let r = &check_cluster(&run)[0];
        assert!(
            r.anomalies.iter().all(|a| a.kind == "broken-link"),
            "{r:#?}"
        );
    }
}
