//! The adversary's behaviours (harness.md §5 `byzantine`): ByzzFuzz's small-scope
//! mutations (Winter et al., OOPSLA 2023, §4: round ±1, values of earlier messages,
//! repeated proposals) plus the lies specific to rollcall's membership and sync.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One behaviour, chosen per fault interval by the seeded schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Votes and proposals with round ±1 (value mutation).
    MutateRound,
    /// Votes and proposals with height ±1 (value mutation).
    MutateHeight,
    /// The block hash swapped for an earlier proposal's block (value mutation).
    SwapBlock,
    /// A fresh invalid block proposed (bad `prev_hash`), and votes for it.
    InvalidBlock,
    /// `evict` set to another roster member or cleared, in votes and proposals
    /// (protocol.md §5).
    MutateEvict,
    /// A proposal's `valid_round` changed.
    MutateValidRound,
    /// Earlier rounds' and heights' messages sent again (time mutation).
    Replay,
    /// An earlier proposal re-sent (time mutation).
    ResendProposal,
    /// Different proposals and votes to different peers.
    Equivocate,
    /// Votes and proposals to some peers only.
    Withhold,
    /// Silence when it is the proposer.
    SilentProposer,
    /// Sync answers with short, non-member or forked certificates, and a lie about
    /// its height to attract sync requests.
    ForgedSync,
    /// An AddNode signed by a non-operator key, NewViews with a wrong roster hash or
    /// epoch (protocol.md §4).
    MembershipLie,
    /// Far-future heights and rounds.
    Flood,
}

impl Behaviour {
    /// Every behaviour, in declaration order (what the schedule draws from).
    pub const ALL: [Behaviour; 14] = [
        Behaviour::MutateRound,
        Behaviour::MutateHeight,
        Behaviour::SwapBlock,
        Behaviour::InvalidBlock,
        Behaviour::MutateEvict,
        Behaviour::MutateValidRound,
        Behaviour::Replay,
        Behaviour::ResendProposal,
        Behaviour::Equivocate,
        Behaviour::Withhold,
        Behaviour::SilentProposer,
        Behaviour::ForgedSync,
        Behaviour::MembershipLie,
        Behaviour::Flood,
    ];

    /// The history and results spelling.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::MutateRound => "mutate-round",
            Behaviour::MutateHeight => "mutate-height",
            Behaviour::SwapBlock => "swap-block",
            Behaviour::InvalidBlock => "invalid-block",
            Behaviour::MutateEvict => "mutate-evict",
            Behaviour::MutateValidRound => "mutate-valid-round",
            Behaviour::Replay => "replay",
            Behaviour::ResendProposal => "resend-proposal",
            Behaviour::Equivocate => "equivocate",
            Behaviour::Withhold => "withhold",
            Behaviour::SilentProposer => "silent-proposer",
            Behaviour::ForgedSync => "forged-sync",
            Behaviour::MembershipLie => "membership-lie",
            Behaviour::Flood => "flood",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A behaviour name that is not one of [`Behaviour::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown adversary behaviour {0:?}")]
pub struct UnknownBehaviour(pub String);

impl FromStr for Behaviour {
    type Err = UnknownBehaviour;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Behaviour::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBehaviour(s.to_string()))
    }
}
