//! [`NodeClient`]: the one client of the node's HTTP API (protocol.md §7), used by
//! the harness's docker backend, `rollcall-node bench` and the node's integration
//! tests. Typed calls for every route; the JSON forms are [`crate::wire`]'s.
//!
//! reqwest (already the workspace's HTTP client) does the transport; this module
//! only says what each answer means, so that meaning is read in one place.

use crate::consensus::Status;
use crate::crypto::{Keypair, NodeId};
/// Signs an AddNode (it lives in the core: the harness and the CLI sign with it too).
pub use crate::types::signed_add_node;
use crate::types::{CommittedBlock, Tx, TxOutcome};
use crate::wire::{error_text, outcome_from_json, tx_json, RosterAnswer};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Most blocks one `GET /blocks` returns (the API's page, [`crate::api::BLOCKS_PAGE`]).
pub const BLOCKS_PAGE: u64 = crate::api::BLOCKS_PAGE;

/// Why a call got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection: nothing was sent (a transaction certainly did not arrive).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The request's URL.
        url: String,
        /// The transport's words.
        reason: String,
    },
    /// No answer in time: the request may have arrived.
    #[error("{url}: timed out")]
    Timeout {
        /// The request's URL.
        url: String,
    },
    /// The request or its answer broke off after it may have been sent.
    #[error("{url}: {reason}")]
    Transport {
        /// The request's URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The node answered with an error status.
    #[error("{url}: HTTP {status}: {error}")]
    Status {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body's `"error"`.
        error: String,
    },
    /// The answer was not in the form the API documents.
    #[error("{url}: unreadable answer: {reason}")]
    Unreadable {
        /// The request's URL.
        url: String,
        /// What did not parse.
        reason: String,
    },
}

fn transport(url: &str, e: reqwest::Error) -> ClientError {
    let url = url.to_string();
    if e.is_connect() {
        ClientError::Connect {
            url,
            reason: e.to_string(),
        }
    } else if e.is_timeout() {
        ClientError::Timeout { url }
    } else {
        ClientError::Transport {
            url,
            reason: e.to_string(),
        }
    }
}

/// What `POST /tx` answered (protocol.md §7).
#[derive(Clone, Debug, PartialEq)]
pub enum Submitted {
    /// 200, or 409: ordered and executed; `error` is set when execution rejected it
    /// (it never applies).
    Committed(TxOutcome),
    /// 400: refused before ordering; it never applies.
    Refused(String),
    /// 503, 504 or another status: the outcome is unknown (it may still commit).
    Unknown {
        /// The HTTP status.
        status: u16,
        /// The body's `"error"`.
        error: String,
    },
}

/// A client of one node's API at `base` (`http://host:port`).
#[derive(Clone, Debug)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
    read_timeout: Duration,
}

impl NodeClient {
    /// A client of the node at `base`; `http` is shared (its pool and its default
    /// timeout, which bounds `POST /tx`).
    pub fn new(base: impl Into<String>, http: reqwest::Client) -> Self {
        NodeClient {
            base: base.into().trim_end_matches('/').to_string(),
            http,
            read_timeout: Duration::from_secs(10),
        }
    }

    /// The same client with another limit on reads (status, blocks, roster).
    pub fn with_read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = t;
        self
    }

    /// The node's API base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /tx` of a raw JSON body: the HTTP status and the JSON answer (`Null`
    /// when it is not JSON). For tests that send malformed bodies on purpose.
    pub async fn post_tx_json(&self, body: &Value) -> Result<(u16, Value), ClientError> {
        let url = format!("{}/tx", self.base);
        let resp =
            (self.http.post(&url).json(body).send().await).map_err(|e| transport(&url, e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| transport(&url, e))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Submits `tx` and waits for the node's answer (protocol.md §7 `POST /tx`).
    pub async fn submit(&self, tx: &Tx) -> Result<Submitted, ClientError> {
        let url = format!("{}/tx", self.base);
        let (status, v) = self.post_tx_json(&tx_json(tx)).await?;
        Ok(match status {
            200 | 409 => Submitted::Committed(outcome_from_json(&v).map_err(|reason| {
                ClientError::Unreadable {
                    url,
                    reason: format!("({status}) {reason}"),
                }
            })?),
            400 => Submitted::Refused(error_text(&v)),
            _ => Submitted::Unknown {
                status,
                error: error_text(&v),
            },
        })
    }

    /// Submits an operator-signed AddNode for `id` at peer address `addr`
    /// (protocol.md §4), signed here with `operator`.
    pub async fn add_node(
        &self,
        chain_id: &str,
        operator: &Keypair,
        id: NodeId,
        addr: &str,
        nonce: u64,
    ) -> Result<Submitted, ClientError> {
        let tx = signed_add_node(
            chain_id,
            operator,
            id,
            addr,
            nonce,
            format!("add-{}-{nonce}", id.to_hex()),
        );
        self.submit(&tx).await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp =
            (self.http.get(&url).timeout(timeout).send().await).map_err(|e| transport(&url, e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| transport(&url, e))?;
        if !(200..300).contains(&status) {
            let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Err(ClientError::Status {
                url,
                status,
                error: error_text(&v),
            });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Unreadable {
            url,
            reason: e.to_string(),
        })
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/status", self.read_timeout).await
    }

    /// The last committed height (`/status`).
    pub async fn height(&self) -> Result<u64, ClientError> {
        Ok(self.status().await?.height)
    }

    /// `GET /health`: Ok once the node serves its API (at most a second's wait).
    pub async fn health(&self) -> Result<(), ClientError> {
        let url = format!("{}/health", self.base);
        let t = self.read_timeout.min(Duration::from_secs(1));
        let resp = (self.http.get(&url).timeout(t).send().await).map_err(|e| transport(&url, e))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(ClientError::Status {
                url,
                status,
                error: "not healthy".into(),
            }),
        }
    }

    /// Polls `/health` until it answers or `limit` passes (the last error then).
    pub async fn wait_healthy(&self, limit: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + limit;
        loop {
            match self.health().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// `GET /blocks?format=raw`: stored blocks `from..=to` (at most one page),
    /// fewer when the chain ends first.
    pub async fn blocks(&self, from: u64, to: u64) -> Result<Vec<CommittedBlock>, ClientError> {
        self.get(
            &format!("/blocks?from={from}&to={to}&format=raw"),
            self.read_timeout,
        )
        .await
    }

    /// `GET /blocks` in the API form (each block with its hash, transactions as
    /// `POST /tx` bodies).
    pub async fn blocks_api(&self, from: u64, to: u64) -> Result<Vec<Value>, ClientError> {
        self.get(&format!("/blocks?from={from}&to={to}"), self.read_timeout)
            .await
    }

    /// The whole stored chain, page by page from height 1.
    pub async fn chain(&self) -> Result<Vec<CommittedBlock>, ClientError> {
        let mut chain = Vec::new();
        loop {
            let from = chain.len() as u64 + 1;
            let page = self.blocks(from, from + BLOCKS_PAGE - 1).await?;
            let full = page.len() as u64 == BLOCKS_PAGE;
            chain.extend(page);
            if !full {
                return Ok(chain);
            }
        }
    }

    /// `GET /roster[?height=h]`: the roster of height `h` (default: the next height).
    pub async fn roster(&self, height: Option<u64>) -> Result<RosterAnswer, ClientError> {
        let q = height.map(|h| format!("?height={h}")).unwrap_or_default();
        self.get(&format!("/roster{q}"), self.read_timeout).await
    }
}
