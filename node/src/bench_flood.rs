//! `bench --scenario flood` (issue 14): the 4-node network's committed tx/s while one
//! non-member peer floods node 1 for a bounded time, as a share of the same run's
//! tx/s without the flood, and node 1's peak RSS (VmHWM from /proc).
//!
//! The flood: [`FLOOD_CONNS`] authenticated connections from one outsider key, each
//! sending, back to back, mempool gossip of transactions at the size limit, unsigned
//! far-future votes and sync requests, until the phase ends.

use crate::bench::{client, load, testnet_args, wait_healthy, BenchArgs, Cluster};
use rollcall_node::crypto::{Keypair, Sig};
use rollcall_node::noise::Local;
use rollcall_node::types::{Message, Op, SignedVote, Tx, TxBody, Vote, VoteKind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Connections the flooding outsider keeps open.
const FLOOD_CONNS: usize = 16;

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The flood's messages: ~1 MiB of gossip, a far-future vote, a sync request.
fn flood_messages(key: &Keypair) -> Vec<Vec<u8>> {
    let txs = (0..60)
        .map(|i| Tx {
            id: format!("flood-{i}"),
            body: TxBody::Kv(vec![Op::Write("x".repeat(256), i); 64]),
        })
        .collect();
    let vote = Message::Vote(SignedVote {
        vote: Vote {
            kind: VoteKind::Precommit,
            epoch: 0,
            height: u64::MAX,
            round: 0,
            block: None,
            evict: None,
            validator: key.id(),
        },
        sig: Sig([0; 64]),
    });
    [
        Message::Txs(txs),
        vote,
        Message::SyncRequest { from: 1, to: 256 },
    ]
    .iter()
    .map(rollcall_node::types::encode)
    .collect()
}

/// One flooding connection, until `stop`; counts bytes sent.
async fn flood_conn(
    addr: String,
    local: Arc<Local>,
    msgs: Arc<Vec<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut sock) = tokio::net::TcpStream::connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok((_, mut sealer, _opener)) = local
            .handshake(&mut sock, true, Duration::from_secs(5))
            .await
        else {
            continue;
        };
        'conn: while !stop.load(Ordering::Relaxed) {
            for m in msgs.iter() {
                let Ok(bytes) = sealer.seal(m) else {
                    break 'conn;
                };
                if sock.write_all(&bytes).await.is_err() {
                    break 'conn;
                }
                sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Runs the scenario.
pub fn flood(args: BenchArgs) -> anyhow::Result<()> {
    let http = client(args.concurrency)?;
    let c = Cluster::new(
        &args,
        "flood",
        testnet_args(args.nodes, 0, args.base_port),
        &http,
    )?;
    let apis = c.apis.clone();
    let pid = c.procs[0].as_ref().map(|p| p.id()).unwrap_or(0);
    let peer_addr = c.nodes[0].config.peer_addr.clone();
    let chain_id = c.chain_id.clone();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        wait_healthy(&apis).await?;
        println!(
            "rollcall-node bench --scenario flood: {} nodes, {} in flight, {} s per phase, {FLOOD_CONNS} flooding connections from one non-member to node 1",
            args.nodes, args.concurrency, args.duration
        );
        let (base, _) = load(&apis, args.concurrency, None, args.duration).await;
        let rss_before = peak_rss_kb(pid);
        let outsider = Keypair::from_secret([0xf1; 32]);
        let local = Arc::new(Local::new(&outsider, &chain_id)?);
        let msgs = Arc::new(flood_messages(&outsider));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..FLOOD_CONNS)
            .map(|_| tokio::spawn(flood_conn(peer_addr.clone(), local.clone(), msgs.clone(), stop.clone(), sent.clone())))
            .collect();
        let (during, _) = load(&apis, args.concurrency, None, args.duration).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.abort();
        }
        let rss = peak_rss_kb(pid);
        let st: serde_json::Value = http.get(format!("{}/status", apis[0].base())).send().await?.json().await?;
        println!("without flood:       {base:8.0} tx/s committed (node 1 peak RSS {} MiB)", rss_before / 1024);
        println!(
            "during flood:        {during:8.0} tx/s committed = {:.1} % of without; {} MiB flooded; node 1 peak RSS {} MiB; node 1 dropped {}",
            100.0 * during / base.max(1.0),
            sent.load(Ordering::Relaxed) >> 20,
            rss / 1024,
            st["dropped"]
        );
        anyhow::Ok(())
    })?;
    drop(c);
    Ok(())
}
