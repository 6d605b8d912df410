//! The cluster a run tests, generated from the seed: node keys, the operator key
//! and the genesis (harness.md §2: "node keys, the operator key and the genesis
//! are generated from the seed"), shared by every backend.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rollcall_node::crypto::Keypair;
use rollcall_node::types::{signed_add_node, Genesis, Params, RosterEntry, Tx};

/// Peer port written into simulated addresses (`nI:PORT`).
pub const PEER_PORT: u16 = 26600;

/// Keys and genesis of one run.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Node names, roster nodes first ("n1".."nN"), then spares.
    pub names: Vec<String>,
    /// One key per name.
    pub keys: Vec<Keypair>,
    /// How many of `names` are in the genesis roster.
    pub roster_nodes: usize,
    /// The operator key that signs AddNode.
    pub operator: Keypair,
    /// The genesis.
    pub genesis: Genesis,
}

impl ClusterSpec {
    /// Generates `nodes` roster nodes and `spare` spares from `seed`.
    pub fn generate(seed: u64, nodes: usize, spare: usize, params: Params) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let operator = Keypair::generate(&mut rng);
        let total = nodes + spare;
        let names: Vec<String> = (1..=total).map(|i| format!("n{i}")).collect();
        let keys: Vec<Keypair> = (0..total).map(|_| Keypair::generate(&mut rng)).collect();
        let roster = (0..nodes)
            .map(|i| RosterEntry {
                number: i as u32 + 1,
                id: keys[i].id(),
                addr: addr(&names[i]),
            })
            .collect();
        let genesis = Genesis {
            chain_id: format!("rollcall-sim-{seed}"),
            roster,
            operators: vec![operator.id()],
            params,
        };
        ClusterSpec {
            names,
            keys,
            roster_nodes: nodes,
            operator,
            genesis,
        }
    }

    /// Index of a node name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The operator-signed AddNode for node `i` (as `rollcall-node add-node` signs
    /// it, protocol.md §3).
    pub fn add_node_tx(&self, i: usize, nonce: u64) -> Option<Tx> {
        let key = self.keys.get(i)?;
        Some(signed_add_node(
            &self.genesis.chain_id,
            &self.operator,
            key.id(),
            &addr(&self.names[i]),
            nonce,
            format!("add-{}-{nonce}", self.names[i]),
        ))
    }
}

/// The peer address a node is known by.
pub fn addr(name: &str) -> String {
    format!("{name}:{PEER_PORT}")
}
