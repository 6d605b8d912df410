//! `rollcall-node testnet`: a genesis, an operator key and node homes for a local
//! network (protocol.md §7).

use crate::config::NodeConfig;
use crate::consensus::Timeouts;
use crate::crypto::Keypair;
use crate::types::{Genesis, Params, RosterEntry};
use anyhow::Context;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// What `testnet` should write.
#[derive(Clone, Debug)]
pub struct TestnetSpec {
    /// Roster nodes in the genesis.
    pub nodes: usize,
    /// Spare nodes, configured but not in the genesis roster.
    pub spare: usize,
    /// Host the nodes listen on and are reached at.
    pub host: String,
    /// Node i (0-based) gets peer port `base + 2i` and API port `base + 2i + 1`.
    pub base_port: u16,
    /// Genesis parameters.
    pub params: Params,
    /// Consensus timeouts written to every config.
    pub timeouts: Timeouts,
    /// Seed for the keys (random when `None`).
    pub seed: Option<u64>,
    /// Chain id.
    pub chain_id: String,
}

impl Default for TestnetSpec {
    fn default() -> Self {
        TestnetSpec {
            nodes: 4,
            spare: 0,
            host: "127.0.0.1".into(),
            base_port: 26600,
            params: Params::default(),
            timeouts: Timeouts::default(),
            seed: None,
            chain_id: "rollcall-testnet".into(),
        }
    }
}

/// One generated node.
#[derive(Clone, Debug)]
pub struct TestnetNode {
    /// `DIR/nI`.
    pub home: PathBuf,
    /// Its key.
    pub key: Keypair,
    /// Its config.
    pub config: NodeConfig,
    /// Whether it is in the genesis roster.
    pub in_genesis: bool,
}

/// Writes `dir/genesis.json`, `dir/operator.key` and `dir/nI/` for every node.
pub fn write(
    dir: &Path,
    spec: &TestnetSpec,
) -> anyhow::Result<(Genesis, Keypair, Vec<TestnetNode>)> {
    if spec.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    let total = spec.nodes + spec.spare;
    if spec.base_port as usize + 2 * total > 65535 {
        anyhow::bail!(
            "--base-port {} leaves no room for {total} nodes",
            spec.base_port
        );
    }
    let mut rng = match spec.seed {
        Some(s) => rand_chacha::ChaCha20Rng::seed_from_u64(s),
        None => rand_chacha::ChaCha20Rng::from_entropy(),
    };
    let operator = Keypair::generate(&mut rng);
    let keys: Vec<Keypair> = (0..total).map(|_| Keypair::generate(&mut rng)).collect();
    let addr =
        |i: usize, off: u16| format!("{}:{}", spec.host, spec.base_port + 2 * i as u16 + off);
    let roster: Vec<RosterEntry> = (0..spec.nodes)
        .map(|i| RosterEntry {
            number: i as u32 + 1,
            id: keys[i].id(),
            addr: addr(i, 0),
        })
        .collect();
    let genesis = Genesis {
        chain_id: spec.chain_id.clone(),
        roster: roster.clone(),
        operators: vec![operator.id()],
        params: spec.params.clone(),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let gjson = serde_json::to_vec_pretty(&genesis)?;
    std::fs::write(dir.join("genesis.json"), &gjson)?;
    std::fs::write(dir.join("operator.key"), operator.secret_hex())?;
    let mut out = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let home = dir.join(format!("n{}", i + 1));
        std::fs::create_dir_all(&home)?;
        let config = NodeConfig {
            id: key.id().to_hex(),
            listen_addr: addr(i, 0),
            peer_addr: addr(i, 0),
            api_addr: addr(i, 1),
            bootstrap: roster.iter().map(|e| e.addr.clone()).collect(),
            timeouts: spec.timeouts.clone(),
            tx_timeout_ms: 10_000,
            mempool_txs: rollcall_node_core::mempool::MEMPOOL_LIMIT,
        };
        std::fs::write(
            home.join("config.json"),
            serde_json::to_vec_pretty(&config)?,
        )?;
        std::fs::write(home.join("node.key"), key.secret_hex())?;
        std::fs::write(home.join("genesis.json"), &gjson)?;
        out.push(TestnetNode {
            home,
            key,
            config,
            in_genesis: i < spec.nodes,
        });
    }
    Ok((genesis, operator, out))
}
