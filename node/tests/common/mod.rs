//! Starts real `rollcall-node` processes on loopback for integration tests, and
//! talks to them through the node's own [`NodeClient`].
#![allow(dead_code)]

use rollcall_node::client::{signed_add_node, NodeClient};
use rollcall_node::consensus::Timeouts;
use rollcall_node::crypto::Keypair;
use rollcall_node::testnet::{self, TestnetNode, TestnetSpec};
use rollcall_node::types::Params;
use rollcall_node::wire::tx_json;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A local network of node processes, killed on drop.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<TestnetNode>,
    pub operator: Keypair,
    pub chain_id: String,
    procs: Vec<Option<Child>>,
    pub http: reqwest::Client,
}

/// Timeouts short enough for tests.
pub fn fast() -> Timeouts {
    Timeouts::fast()
}

impl Net {
    /// Writes a testnet (`nodes` in the genesis + `spare`) and starts the genesis nodes.
    /// `base_port` must stay below Linux's ephemeral range (32768 up): otherwise a
    /// peer's outbound redial can take a killed node's port and its restart fails.
    pub fn start(base_port: u16, nodes: usize, spare: usize, params: Params) -> Net {
        assert!(
            base_port as usize + 2 * (nodes + spare) < 32768,
            "test ports must stay below the ephemeral range"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = TestnetSpec {
            nodes,
            spare,
            base_port,
            params,
            timeouts: fast(),
            seed: Some(base_port as u64),
            ..TestnetSpec::default()
        };
        let (genesis, operator, tn) = testnet::write(dir.path(), &spec).expect("testnet");
        let mut net = Net {
            dir,
            procs: (0..tn.len()).map(|_| None).collect(),
            nodes: tn,
            operator,
            chain_id: genesis.chain_id,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
        };
        for i in 0..nodes {
            net.spawn(i);
        }
        net
    }

    /// Starts node `i` (0-based).
    pub fn spawn(&mut self, i: usize) {
        let home = &self.nodes[i].home;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("node.log"))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_rollcall-node"))
            .arg("run")
            .arg("--home")
            .arg(home)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rollcall-node");
        self.procs[i] = Some(child);
    }

    /// Starts node `i` if it is a spare (genesis nodes run already).
    pub fn spawn_if_spare(&mut self, i: usize) {
        if !self.nodes[i].in_genesis && self.procs[i].is_none() {
            self.spawn(i);
        }
    }

    /// The process id of running node `i`.
    pub fn pid(&self, i: usize) -> u32 {
        self.procs[i].as_ref().expect("node is running").id()
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn api(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].config.api_addr)
    }

    /// Node `i`'s API client.
    pub fn client(&self, i: usize) -> NodeClient {
        NodeClient::new(self.api(i), self.http.clone())
    }

    pub async fn get(&self, i: usize, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.api(i)))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    /// `/status` as JSON (the typed answer, re-serialised).
    pub async fn status(&self, i: usize) -> Option<Value> {
        let s = self.client(i).status().await.ok()?;
        serde_json::to_value(s).ok()
    }

    pub async fn height(&self, i: usize) -> u64 {
        self.client(i).height().await.unwrap_or(0)
    }

    /// Posts a transaction body; returns (HTTP status, JSON body), or (0, Null)
    /// when no answer came.
    pub async fn post(&self, i: usize, body: &Value) -> (u16, Value) {
        self.client(i)
            .post_tx_json(body)
            .await
            .unwrap_or((0, Value::Null))
    }

    /// A KV append transaction.
    pub async fn append(&self, i: usize, id: &str, key: &str, v: i64) -> (u16, Value) {
        self.post(i, &json!({"id": id, "ops": [["append", key, v]]}))
            .await
    }

    /// Waits until `cond` holds, polling.
    pub async fn wait_for<F, Fut>(&self, what: &str, secs: u64, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out after {secs} s waiting for {what}; logs in {}",
            self.dir.path().display()
        );
    }

    pub async fn wait_healthy(&self, i: usize) {
        if let Err(e) = self.client(i).wait_healthy(Duration::from_secs(20)).await {
            panic!(
                "node {i} not healthy after 20 s: {e}; logs in {}",
                self.dir.path().display()
            );
        }
    }

    pub async fn wait_height(&self, i: usize, h: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.height(i).await >= h {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "node {i} did not reach height {h} in {secs} s (at {})",
            self.height(i).await
        );
    }

    /// Blocks 1..=h of node `i` in the raw form (block + cert), page by page.
    pub async fn chain(&self, i: usize, h: u64) -> Vec<Value> {
        let c = self.client(i);
        let mut out = Vec::new();
        while (out.len() as u64) < h {
            let from = out.len() as u64 + 1;
            let page = c
                .blocks(from, (from + 999).min(h))
                .await
                .unwrap_or_default();
            if page.is_empty() {
                break;
            }
            out.extend(page.iter().filter_map(|b| serde_json::to_value(b).ok()));
        }
        out
    }

    /// Block hashes 1..=h of node `i` (the API form carries the hash).
    pub async fn hashes(&self, i: usize, h: u64) -> Vec<String> {
        let c = self.client(i);
        let mut out = Vec::new();
        while (out.len() as u64) < h {
            let from = out.len() as u64 + 1;
            let page = c
                .blocks_api(from, (from + 999).min(h))
                .await
                .unwrap_or_default();
            if page.is_empty() {
                break;
            }
            out.extend(
                page.iter()
                    .map(|b| b["hash"].as_str().unwrap_or("").to_string()),
            );
        }
        out
    }

    /// Asserts nodes `ids` hold identical blocks up to the lowest of their heights
    /// (at least `min`).
    pub async fn assert_same_chain(&self, ids: &[usize], min: u64) -> u64 {
        let mut h = u64::MAX;
        for &i in ids {
            h = h.min(self.height(i).await);
        }
        assert!(h >= min, "common height {h} < {min}");
        let first = self.hashes(ids[0], h).await;
        assert_eq!(first.len() as u64, h);
        for &i in &ids[1..] {
            assert_eq!(
                self.hashes(i, h).await,
                first,
                "node {i} differs from node {}",
                ids[0]
            );
        }
        h
    }

    /// The `POST /tx` body of an AddNode for node `i`, signed by `key`.
    pub fn add_node_body(&self, i: usize, key: &Keypair, nonce: u64) -> Value {
        let n = &self.nodes[i];
        let tx_id = format!("add-{i}-{nonce}");
        tx_json(&signed_add_node(
            &self.chain_id,
            key,
            n.key.id(),
            &n.config.peer_addr,
            nonce,
            tx_id,
        ))
    }

    pub fn id_hex(&self, i: usize) -> String {
        self.nodes[i].key.id().to_hex()
    }

    /// Roster ids in the node's status.
    pub async fn roster_ids(&self, i: usize) -> Vec<String> {
        let s = self.client(i).status().await.ok();
        s.map(|s| s.roster.iter().map(|e| e.id.to_hex()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            // Keep the logs of a failed test.
            let p = self.dir.path().to_path_buf();
            eprintln!("node logs kept in {}", p.display());
            std::mem::forget(std::mem::replace(
                &mut self.dir,
                tempfile::tempdir().expect("tmp"),
            ));
        }
    }
}
