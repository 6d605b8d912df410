//! How each [`Behaviour`] rewrites one honest outgoing message (ByzzFuzz's
//! small-scope message mutations, Winter et al. OOPSLA 2023 §4.2), per peer.

use crate::forge::{self, SyncLie};
use crate::{Behaviour, Out};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rollcall_node_core::crypto::{sha256, Hash, Keypair, NodeId};
use rollcall_node_core::types::{
    Announce, Message, Proposal, SignedAnnounce, SignedProposal, SignedVote,
};
use std::collections::{BTreeMap, VecDeque};

/// What a mutation may use: the key, the roster, memory, and the RNG.
pub(crate) struct Ctx<'a> {
    pub key: &'a Keypair,
    pub chain_id: &'a str,
    pub roster: &'a [NodeId],
    pub allies: &'a [NodeId],
    pub rng: &'a mut ChaCha8Rng,
    pub proposals: &'a VecDeque<SignedProposal>,
    pub history: &'a VecDeque<Message>,
    pub pairs: &'a mut BTreeMap<(u64, u32), (Hash, Hash)>,
    pub halves: &'a BTreeMap<NodeId, usize>,
    pub nonce: &'a mut u64,
}

fn vote_msg(
    ctx: &Ctx<'_>,
    sv: &SignedVote,
    f: impl FnOnce(&mut rollcall_node_core::types::Vote),
) -> Message {
    let mut v = sv.vote.clone();
    f(&mut v);
    Message::Vote(forge::sign_vote(ctx.key, v))
}

fn proposal_msg(ctx: &Ctx<'_>, sp: &SignedProposal, f: impl FnOnce(&mut Proposal)) -> Message {
    let mut p = sp.proposal.clone();
    f(&mut p);
    Message::Proposal(Box::new(forge::sign_proposal(ctx.key, p)))
}

/// ±1 without wrapping below zero.
fn nudge_u64(rng: &mut ChaCha8Rng, x: u64) -> u64 {
    if x == 0 || rng.gen_bool(0.5) {
        x + 1
    } else {
        x - 1
    }
}

/// A NewView whose roster hash or epoch is wrong, signed (protocol.md §4.3).
pub(crate) fn lying_new_view(
    key: &Keypair,
    mut a: Announce,
    rng: &mut ChaCha8Rng,
) -> SignedAnnounce {
    a.new_view = true;
    if rng.gen_bool(0.5) {
        a.epoch += 1;
    } else {
        a.roster_hash = sha256(&rng.gen::<[u8; 32]>());
    }
    forge::sign_announce(key, a)
}

/// The mutated message of `behaviour` for `msg`, or `None` to send it unchanged.
/// Behaviours that fan out per peer are handled in [`outgoing`].
fn mutated(ctx: &mut Ctx<'_>, behaviour: Behaviour, msg: &Message) -> Option<Message> {
    match (behaviour, msg) {
        (Behaviour::MutateRound, Message::Vote(sv)) => {
            let r = nudge_u64(ctx.rng, u64::from(sv.vote.round)) as u32;
            Some(vote_msg(ctx, sv, |v| v.round = r))
        }
        (Behaviour::MutateRound, Message::Proposal(sp)) => {
            let r = nudge_u64(ctx.rng, u64::from(sp.proposal.round)) as u32;
            Some(proposal_msg(ctx, sp, |p| p.round = r))
        }
        (Behaviour::MutateHeight, Message::Vote(sv)) => {
            let h = nudge_u64(ctx.rng, sv.vote.height);
            Some(vote_msg(ctx, sv, |v| v.height = h))
        }
        (Behaviour::MutateHeight, Message::Proposal(sp)) => {
            let h = nudge_u64(ctx.rng, sp.proposal.height);
            Some(proposal_msg(ctx, sp, |p| p.height = h))
        }
        (Behaviour::SwapBlock, Message::Vote(sv)) => {
            let earlier = earlier_block(ctx, sv.vote.block)?;
            Some(vote_msg(ctx, sv, |v| v.block = Some(earlier.hash())))
        }
        (Behaviour::SwapBlock, Message::Proposal(sp)) => {
            let earlier = earlier_block(ctx, Some(sp.proposal.block.hash()))?;
            Some(proposal_msg(ctx, sp, |p| p.block = earlier))
        }
        (Behaviour::InvalidBlock, Message::Proposal(sp)) => {
            let bad = forge::invalid_block(&sp.proposal.block, ctx.rng);
            Some(proposal_msg(ctx, sp, |p| p.block = bad))
        }
        (Behaviour::MutateEvict, Message::Vote(sv)) => {
            let e = lie_evict(ctx, sv.vote.evict);
            Some(vote_msg(ctx, sv, |v| v.evict = e))
        }
        (Behaviour::MutateEvict, Message::Proposal(sp)) => {
            let e = lie_evict(ctx, sp.proposal.block.evict);
            Some(proposal_msg(ctx, sp, |p| p.block.evict = e))
        }
        (Behaviour::MutateValidRound, Message::Proposal(sp)) => {
            let r = sp.proposal.round;
            let vr = match sp.proposal.valid_round {
                Some(_) => None,
                None if r > 0 && ctx.rng.gen_bool(0.5) => Some(r - 1),
                None => Some(r + 1),
            };
            Some(proposal_msg(ctx, sp, |p| p.valid_round = vr))
        }
        (Behaviour::ForgedSync, Message::SyncResponse(blocks)) => {
            let lie =
                [SyncLie::ShortCert, SyncLie::NonMembers, SyncLie::Fork][ctx.rng.gen_range(0..3)];
            *ctx.nonce = ctx.nonce.wrapping_add(1);
            Some(Message::SyncResponse(forge::forge_sync(
                ctx.key, blocks, lie, *ctx.nonce,
            )))
        }
        (Behaviour::MembershipLie, Message::Proposal(sp)) => {
            *ctx.nonce = ctx.nonce.wrapping_add(1);
            let tx = forge::forged_add_node(ctx.key, ctx.chain_id, *ctx.nonce);
            Some(proposal_msg(ctx, sp, |p| p.block.txs.push(tx)))
        }
        (Behaviour::MembershipLie, Message::Announce(sa)) => Some(Message::Announce(
            lying_new_view(ctx.key, sa.announce.clone(), ctx.rng),
        )),
        _ => None,
    }
}

/// A block of an earlier proposal whose hash differs from `not`.
fn earlier_block(ctx: &Ctx<'_>, not: Option<Hash>) -> Option<rollcall_node_core::types::Block> {
    ctx.proposals
        .iter()
        .rev()
        .map(|p| &p.proposal.block)
        .find(|b| Some(b.hash()) != not)
        .cloned()
}

/// `evict` lied about: another roster member, or cleared (protocol.md §5).
fn lie_evict(ctx: &mut Ctx<'_>, current: Option<NodeId>) -> Option<NodeId> {
    if current.is_some() && ctx.rng.gen_bool(0.5) {
        return None;
    }
    forge::other_member(ctx.roster, ctx.key.id(), current)
}

/// Sends `msg` to `targets` as `behaviour` dictates.
pub(crate) fn outgoing(
    ctx: &mut Ctx<'_>,
    behaviour: Behaviour,
    targets: &[NodeId],
    msg: &Message,
    out: &mut Out,
) {
    let consensus = matches!(msg, Message::Vote(_) | Message::Proposal(_));
    match behaviour {
        Behaviour::Equivocate if consensus => equivocate(ctx, targets, msg, out),
        Behaviour::Withhold if consensus => {
            for to in targets {
                if ctx.halves.get(to) == Some(&1) {
                    out.suppress();
                } else {
                    out.honest(*to, msg.clone());
                }
            }
        }
        Behaviour::SilentProposer if matches!(msg, Message::Proposal(_)) => {
            targets.iter().for_each(|_| out.suppress());
        }
        Behaviour::Replay | Behaviour::ResendProposal => {
            for to in targets {
                out.honest(*to, msg.clone());
            }
            let old = pick_earlier(ctx, behaviour, msg);
            if let (Some(old), Some(to)) = (old, targets.first()) {
                out.lie(*to, old);
            }
        }
        _ => match mutated(ctx, behaviour, msg) {
            Some(m) => targets.iter().for_each(|to| out.lie(*to, m.clone())),
            None => targets.iter().for_each(|to| out.honest(*to, msg.clone())),
        },
    }
}

/// An earlier own message (replay) or proposal (re-send) than `msg`.
fn pick_earlier(ctx: &mut Ctx<'_>, behaviour: Behaviour, msg: &Message) -> Option<Message> {
    if behaviour == Behaviour::ResendProposal {
        return ctx
            .proposals
            .iter()
            .rev()
            .find(|p| !matches!(msg, Message::Proposal(q) if q.sig == p.sig))
            .map(|p| Message::Proposal(Box::new(p.clone())));
    }
    let older: Vec<&Message> = ctx.history.iter().filter(|m| *m != msg).collect();
    if older.is_empty() {
        return None;
    }
    Some(older[ctx.rng.gen_range(0..older.len())].clone())
}

/// Different values to the two halves of the honest peers: a proposal and an
/// equally valid variant, votes for each (or for the value and nil). Allies see
/// both values; with no ally, one peer of the second half also gets the first
/// value, so the equivocation is visible to an honest node.
fn equivocate(ctx: &mut Ctx<'_>, targets: &[NodeId], msg: &Message, out: &mut Out) {
    let (a, b) = match msg {
        Message::Proposal(sp) => {
            let alt = forge::alt_block(&sp.proposal.block);
            let m2 = proposal_msg(ctx, sp, |p| p.block = alt);
            let (h1, h2) = (sp.proposal.block.hash(), block_hash(&m2));
            let key = (sp.proposal.height, sp.proposal.round);
            ctx.pairs.insert(key, (h1.min(h2), h1.max(h2)));
            if h1 < h2 {
                (msg.clone(), m2)
            } else {
                (m2, msg.clone())
            }
        }
        Message::Vote(sv) => {
            let key = (sv.vote.height, sv.vote.round);
            match ctx.pairs.get(&key).copied() {
                Some((lo, hi)) => (
                    vote_msg(ctx, sv, |v| v.block = Some(lo)),
                    vote_msg(ctx, sv, |v| v.block = Some(hi)),
                ),
                None => {
                    let flipped = match sv.vote.block {
                        Some(_) => None,
                        None => Some(sha256(&ctx.rng.gen::<[u8; 32]>())),
                    };
                    (msg.clone(), vote_msg(ctx, sv, |v| v.block = flipped))
                }
            }
        }
        _ => return,
    };
    let witness = ctx.allies.is_empty().then(|| {
        targets
            .iter()
            .find(|t| ctx.halves.get(*t) == Some(&1))
            .copied()
    });
    for to in targets {
        if ctx.allies.contains(to) {
            out.lie(*to, a.clone());
            out.lie(*to, b.clone());
        } else if ctx.halves.get(to) == Some(&1) {
            if witness.flatten() == Some(*to) {
                out.lie(*to, a.clone());
            }
            out.lie(*to, b.clone());
        } else {
            out.lie(*to, a.clone());
        }
    }
}

fn block_hash(m: &Message) -> Hash {
    match m {
        Message::Proposal(p) => p.proposal.block.hash(),
        _ => Hash::default(),
    }
}
