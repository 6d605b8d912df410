//! A node's home directory: `config.json`, `node.key`, `genesis.json`, `data/`
//! (protocol.md §7).

use crate::consensus::Timeouts;
use crate::crypto::Keypair;
use crate::types::Genesis;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `config.json` of a node home.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Node id (hex), for reference; the key file is authoritative.
    pub id: String,
    /// Address the peer port listens on.
    pub listen_addr: String,
    /// Address the peer port is reached at (what goes in the roster).
    pub peer_addr: String,
    /// Address of the HTTP API.
    pub api_addr: String,
    /// Peers to contact at start (roster members are added from the chain).
    pub bootstrap: Vec<String>,
    /// Consensus timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// How long `POST /tx` waits for a commit before answering 504.
    #[serde(default = "default_tx_timeout")]
    pub tx_timeout_ms: u64,
    /// Most transactions the mempool keeps before `POST /tx` answers 503 (issue 14;
    /// CometBFT's `mempool.size`). Absent from older configs: the default applies.
    #[serde(default = "default_mempool_txs")]
    pub mempool_txs: usize,
}

fn default_mempool_txs() -> usize {
    crate::mempool::MEMPOOL_LIMIT
}

fn default_tx_timeout() -> u64 {
    10_000
}

/// Everything a node needs to start.
pub struct Home {
    /// The home directory.
    pub dir: PathBuf,
    /// Its config.
    pub config: NodeConfig,
    /// Its key.
    pub key: Keypair,
    /// The network's genesis.
    pub genesis: Genesis,
}

impl Home {
    /// Loads a home directory, with errors that name the file at fault.
    pub fn load(dir: &Path) -> anyhow::Result<Home> {
        let cpath = dir.join("config.json");
        let config: NodeConfig = serde_json::from_slice(
            &std::fs::read(&cpath).with_context(|| format!("reading {}", cpath.display()))?,
        )
        .with_context(|| format!("parsing {}", cpath.display()))?;
        let kpath = dir.join("node.key");
        let key = Keypair::from_secret_hex(
            &std::fs::read_to_string(&kpath)
                .with_context(|| format!("reading {}", kpath.display()))?,
        )
        .with_context(|| format!("parsing {}", kpath.display()))?;
        let gpath = dir.join("genesis.json");
        let genesis: Genesis = serde_json::from_slice(
            &std::fs::read(&gpath).with_context(|| format!("reading {}", gpath.display()))?,
        )
        .with_context(|| format!("parsing {}", gpath.display()))?;
        Ok(Home {
            dir: dir.to_path_buf(),
            config,
            key,
            genesis,
        })
    }

    /// Where the store lives.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}
