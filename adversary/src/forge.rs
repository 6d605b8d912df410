//! Well-signed lies: the adversary's messages are signed with its own roster key over
//! exactly the bytes and domains an honest node signs (node/src/types.rs), so honest
//! nodes must reject them for *what they say*, never for a bad signature.

use rand::RngCore;
use rollcall_node_core::crypto::{sha256, Keypair, NodeId};
use rollcall_node_core::types::{
    encode, AddNode, Announce, Block, Certificate, CommitSig, CommittedBlock, Op, Proposal,
    SignedAnnounce, SignedProposal, SignedVote, Tx, TxBody, Vote, DOMAIN_ADD_NODE, DOMAIN_ANNOUNCE,
    DOMAIN_PROPOSAL, DOMAIN_VOTE,
};

/// Signs a vote as the honest core does (`Core::vote`): DOMAIN_VOTE over
/// `Vote::sign_bytes`, with the voter set to the key's id.
pub fn sign_vote(key: &Keypair, mut vote: Vote) -> SignedVote {
    vote.validator = key.id();
    let sig = key.sign(DOMAIN_VOTE, &vote.sign_bytes());
    SignedVote { vote, sig }
}

/// Signs a proposal as the honest core does (`Core::propose`): DOMAIN_PROPOSAL over
/// the view and the block hash.
pub fn sign_proposal(key: &Keypair, proposal: Proposal) -> SignedProposal {
    let hash = proposal.block.hash();
    let sig = key.sign(DOMAIN_PROPOSAL, &proposal.sign_bytes(&hash));
    SignedProposal {
        proposal,
        proposer: key.id(),
        sig,
    }
}

/// Signs an announcement as the honest core does: DOMAIN_ANNOUNCE over its encoding.
pub fn sign_announce(key: &Keypair, mut announce: Announce) -> SignedAnnounce {
    announce.from = key.id();
    let sig = key.sign(DOMAIN_ANNOUNCE, &encode(&announce));
    SignedAnnounce { announce, sig }
}

/// A harmless read of a key no workload uses: a transaction that makes a block
/// differ from the honest one while staying valid (protocol.md §3).
pub fn filler_tx(tag: u64) -> Tx {
    Tx {
        id: format!("byz-{tag:016x}"),
        body: TxBody::Kv(vec![Op::Read("byz-filler".into())]),
    }
}

/// An equally valid variant of `block` (one extra filler transaction): what an
/// equivocating proposer sends half of its peers (ByzzFuzz's "different value").
pub fn alt_block(block: &Block) -> Block {
    let mut b = block.clone();
    b.txs.push(filler_tx(u64::from_le_bytes(
        block.hash().0[..8].try_into().unwrap_or([0; 8]),
    )));
    b
}

/// A fresh invalid block: `block` with a `prev_hash` that links to nothing.
pub fn invalid_block(block: &Block, rng: &mut dyn RngCore) -> Block {
    let mut b = block.clone();
    let mut junk = [0u8; 32];
    rng.fill_bytes(&mut junk);
    b.prev_hash = sha256(&junk);
    b
}

/// An AddNode for a fresh id signed by `key`, which is not an operator's key: the
/// chain must reject it at execution (protocol.md §4) and the roster never change.
pub fn forged_add_node(key: &Keypair, chain_id: &str, nonce: u64) -> Tx {
    let newcomer = Keypair::from_secret(sha256(&nonce.to_le_bytes()).0);
    let req = AddNode {
        id: newcomer.id(),
        addr: format!("byz-{nonce}:1"),
        nonce,
    };
    let sig = key.sign(DOMAIN_ADD_NODE, &req.sign_bytes(chain_id));
    Tx {
        id: format!("byz-add-{nonce:016x}"),
        body: TxBody::AddNode {
            req,
            sig: Some(sig),
        },
    }
}

/// How a forged sync answer lies (harness.md §5 `byzantine`, forged sync).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncLie {
    /// The certificate keeps only the first signature (fewer than q(n)).
    ShortCert,
    /// Every certificate signature is replaced by a non-member's.
    NonMembers,
    /// The first block is swapped for a fork block, certified by the adversary and
    /// non-members.
    Fork,
}

/// Non-member keys derived from a tag: well-formed ed25519 keys outside any roster.
fn outsiders(tag: u64, n: usize) -> Vec<Keypair> {
    (0..n as u64)
        .map(|i| Keypair::from_secret(sha256(&[tag.to_le_bytes(), i.to_le_bytes()].concat()).0))
        .collect()
}

/// Re-signs `cert` by `signers` (each over the precommit it stands for).
fn sign_cert(cert: &mut Certificate, signers: &[&Keypair]) {
    cert.sigs = signers
        .iter()
        .map(|k| CommitSig {
            validator: k.id(),
            sig: k.sign(DOMAIN_VOTE, &cert.vote_of(k.id()).sign_bytes()),
        })
        .collect();
}

/// Turns honest committed blocks into a lie of kind `lie`, every signature genuine.
pub fn forge_sync(
    key: &Keypair,
    blocks: &[CommittedBlock],
    lie: SyncLie,
    tag: u64,
) -> Vec<CommittedBlock> {
    let mut out: Vec<CommittedBlock> = blocks.to_vec();
    let Some(first) = out.first_mut() else {
        return out;
    };
    let quorum = first.cert.sigs.len().max(1);
    let fakes = outsiders(tag, quorum);
    match lie {
        SyncLie::ShortCert => {
            for cb in &mut out {
                cb.cert.sigs.truncate(1);
            }
        }
        SyncLie::NonMembers => {
            for cb in &mut out {
                let signers: Vec<&Keypair> = fakes.iter().collect();
                sign_cert(&mut cb.cert, &signers);
            }
        }
        SyncLie::Fork => {
            first.block = alt_block(&first.block);
            first.cert.block = first.block.hash();
            let mut signers: Vec<&Keypair> = vec![key];
            signers.extend(fakes.iter().take(quorum.saturating_sub(1)));
            sign_cert(&mut first.cert, &signers);
            out.truncate(1);
        }
    }
    out
}

/// The roster member after `me` in `ids` other than `current`: the eviction an
/// adversary lies about.
pub fn other_member(ids: &[NodeId], me: NodeId, current: Option<NodeId>) -> Option<NodeId> {
    ids.iter()
        .copied()
        .find(|id| *id != me && Some(*id) != current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_node_core::crypto::Verifier;
    use rollcall_node_core::types::VoteKind;

    #[test]
    fn forged_messages_carry_genuine_signatures() {
        let k = Keypair::from_secret([9; 32]);
        let v = Verifier::new();
        let sv = sign_vote(
            &k,
            Vote {
                kind: VoteKind::Prevote,
                epoch: 0,
                height: 3,
                round: 1,
                block: None,
                evict: None,
                validator: NodeId::default(),
            },
        );
        assert_eq!(sv.vote.validator, k.id());
        assert!(v.verify(&k.id(), DOMAIN_VOTE, &sv.vote.sign_bytes(), &sv.sig));
        let tx = forged_add_node(&k, "c", 7);
        let TxBody::AddNode {
            req,
            sig: Some(sig),
        } = &tx.body
        else {
            panic!("not an AddNode");
        };
        assert!(v.verify(&k.id(), DOMAIN_ADD_NODE, &req.sign_bytes("c"), sig));
    }
}
