//! Hostile peers and clients on real processes (issue 14): every attack is made,
//! then the network still commits a client transaction within a bound, the attacked
//! node's roster is unchanged, its memory stays under a bound read from /proc, and
//! the drop is counted in `/status`.

mod common;

use common::Net;
use rollcall_node::crypto::{Keypair, NodeId, Sig};
use rollcall_node::net::{FRAME_TIMEOUT, IDLE_TIMEOUT, MAX_CONNS, MAX_CONNS_PER_IP, MAX_FRAME};
use rollcall_node::noise::{Local, Opener, Sealer};
use rollcall_node::types::{Message, Op, Params, SignedVote, Tx, TxBody, Vote, VoteKind};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Peak resident memory allowed for an attacked node (it runs at ~20–40 MB).
const RSS_BOUND_KB: u64 = 200 * 1024;

/// VmHWM (peak resident set) of a process, from /proc.
fn peak_rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

async fn dropped(net: &Net, i: usize, reason: &str) -> u64 {
    let st = net.status(i).await.expect("status");
    st["dropped"][reason].as_u64().unwrap_or(0)
}

/// A peer connection to node `i` after a handshake as `local`.
async fn connect(net: &Net, i: usize, local: &Local) -> Option<(TcpStream, Sealer, Opener)> {
    let mut sock = TcpStream::connect(&net.nodes[i].config.peer_addr)
        .await
        .ok()?;
    let (_, s, o) = local
        .handshake(&mut sock, true, Duration::from_secs(5))
        .await
        .ok()?;
    Some((sock, s, o))
}

async fn send(sock: &mut TcpStream, s: &mut Sealer, msg: &Message) {
    let bytes = s.seal(&rollcall_node::types::encode(msg)).unwrap();
    let _ = sock.write_all(&bytes).await;
    let _ = sock.flush().await;
}

/// After an attack on node `i`: a client transaction commits within 20 s, the roster
/// is the one before, the node is still a validator whose chain is block for block
/// the one another node holds, and its peak RSS is under the bound.
async fn still_healthy(net: &Net, i: usize, id: &str, roster: &[String]) {
    let (code, body) = tokio::time::timeout(Duration::from_secs(20), net.append(i, id, "k", 1))
        .await
        .expect("a client transaction commits within 20 s");
    assert_eq!(code, 200, "{body}");
    assert_eq!(net.roster_ids(i).await, roster);
    let st = net.status(i).await.expect("status");
    assert_eq!(st["role"], "validator", "{st}");
    let other = (i + 1) % 3;
    let h = body["height"].as_u64().expect("committed at a height");
    net.wait_height(other, h, 20).await;
    assert_eq!(
        net.hashes(i, h).await,
        net.hashes(other, h).await,
        "the attacked node's chain differs from node {other}'s"
    );
    let rss = peak_rss_kb(net.pid(i));
    assert!(rss < RSS_BOUND_KB, "peak RSS {rss} kB");
}

/// Reads from `sock` until the node closes it; how long that took.
async fn time_to_close(sock: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = vec![0u8; 64 << 10];
    tokio::time::timeout(bound, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| start.elapsed())
}

fn big_tx(id: &str, key_len: usize) -> Tx {
    Tx {
        id: id.into(),
        body: TxBody::Kv(vec![Op::Write("x".repeat(key_len), 1)]),
    }
}

fn far_future_vote(validator: NodeId) -> Message {
    Message::Vote(SignedVote {
        vote: Vote {
            kind: VoteKind::Precommit,
            epoch: 0,
            height: u64::MAX,
            round: 0,
            block: None,
            evict: None,
            validator,
        },
        sig: Sig([0; 64]),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_lie_flood_or_stall_are_refused_and_counted() {
    // Nodes 0..2 run; node 3's key stands for a member whose process is the attacker.
    let net = Net::start(24000, 4, 0, Params::default());
    for i in 0..3 {
        net.wait_healthy(i).await;
    }
    net.wait_height(0, 2, 30).await;
    let roster = net.roster_ids(0).await;
    let chain = net.chain_id.clone();

    // 1. A peer claiming node 1's id is refused at the handshake.
    let outsider = Keypair::from_secret([7; 32]);
    let liar = Local::impersonating(&outsider, net.nodes[1].key.id(), &chain).unwrap();
    // XX ends with the initiator's message, so the liar learns of the refusal when
    // the node closes the connection instead of sending anything.
    if let Some((mut sock, _s, mut o)) = connect(&net, 0, &liar).await {
        let r = o
            .read_frame(
                &mut sock,
                MAX_FRAME,
                Duration::from_secs(10),
                Duration::from_secs(10),
            )
            .await;
        assert!(r.is_err(), "impersonation accepted: a frame arrived");
    }
    net.wait_for("bad handshake counted", 10, || async {
        dropped(&net, 0, "bad_handshake").await >= 1
    })
    .await;

    // 2. A non-member (honest handshake) gets no consensus or mempool message counted.
    let (mut sock, mut s, _o) = connect(&net, 0, &Local::new(&outsider, &chain).unwrap())
        .await
        .expect("a non-member may connect (to sync)");
    send(&mut sock, &mut s, &Message::Txs(vec![big_tx("nm-1", 10)])).await;
    send(&mut sock, &mut s, &far_future_vote(outsider.id())).await;
    // It may sync, but only within the rate all non-members share.
    for _ in 0..40 {
        send(&mut sock, &mut s, &Message::SyncRequest { from: 1, to: 2 }).await;
    }
    net.wait_for(
        "non-member messages and over-rate syncs counted",
        10,
        || async {
            dropped(&net, 0, "non_member").await >= 2 && dropped(&net, 0, "rate_limited").await >= 1
        },
    )
    .await;

    // 3. A member gossips a transaction over the key limit (the API's rule) and an
    //    unsigned vote at height 2^64-1: neither is kept, /status does not move.
    let member = net.nodes[3].key.clone();
    let (mut sock, mut s, _o) = connect(&net, 0, &Local::new(&member, &chain).unwrap())
        .await
        .expect("member handshake");
    send(
        &mut sock,
        &mut s,
        &Message::Txs(vec![big_tx("huge-key", 100_000)]),
    )
    .await;
    send(&mut sock, &mut s, &far_future_vote(member.id())).await;
    net.wait_for("invalid tx and bad signature counted", 10, || async {
        dropped(&net, 0, "invalid_tx").await >= 1 && dropped(&net, 0, "bad_signature").await >= 1
    })
    .await;
    let st = net.status(0).await.unwrap();
    assert!(st["best_peer_height"].as_u64().unwrap() < 1_000_000, "{st}");
    assert_eq!(st["role"], "validator");

    // 4. A frame over the limit is refused before it is allocated.
    let frame = vec![0u8; MAX_FRAME + 1];
    let bytes = s.seal(&frame).unwrap();
    let _ = sock.write_all(&bytes).await;
    net.wait_for("oversized frame counted", 10, || async {
        dropped(&net, 0, "bad_frame").await >= 1
    })
    .await;

    // 5. Connections that never finish the handshake time out; past the per-address
    //    cap they are refused at once.
    let mut stalled = Vec::new();
    for _ in 0..MAX_CONNS_PER_IP + 4 {
        if let Ok(mut c) = TcpStream::connect(&net.nodes[0].config.peer_addr).await {
            let _ = c.write_all(&[0, 200, 1]).await; // a half-sent handshake message
            stalled.push(c);
        }
    }
    net.wait_for("refused and timed-out connections counted", 15, || async {
        dropped(&net, 0, "refused_connection").await >= 1
            && dropped(&net, 0, "bad_handshake").await >= 2
    })
    .await;
    drop(stalled);

    still_healthy(&net, 0, "after-peer-attacks", &roster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_abuse_gets_json_errors_and_timeouts() {
    let net = Net::start(24100, 4, 0, Params::default());
    for i in 0..4 {
        net.wait_healthy(i).await;
    }
    let roster = net.roster_ids(0).await;
    // An over-limit body: 413 with a JSON error.
    let big = json!({"id": "b", "ops": [["w", "x".repeat(2 << 20), 1]]});
    let r = net
        .http
        .post(format!("{}/tx", net.api(0)))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // The unread rest of the body is still on the wire: the node closes the connection
    // rather than letting the client's pool send the next request into it.
    assert_eq!(r.headers()["connection"], "close");
    let body: Value = r.json().await.expect("413 is JSON");
    assert!(body["error"].is_string(), "{body}");
    // The key limit is the same for the API as for gossip.
    let (code, body) = net
        .post(0, &json!({"id": "k", "ops": [["w", "x".repeat(257), 1]]}))
        .await;
    assert_eq!(code, 400, "{body}");
    // Slow-loris: headers never finished; the node closes the connection. At the same
    // time a body announced as 1,000 bytes stops after 10: the node answers 408, JSON.
    let mut loris = TcpStream::connect(&net.nodes[0].config.api_addr)
        .await
        .unwrap();
    loris
        .write_all(b"POST /tx HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut slow_body = TcpStream::connect(&net.nodes[0].config.api_addr)
        .await
        .unwrap();
    slow_body
        .write_all(b"POST /tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\": \"s\",")
        .await
        .unwrap();
    let read_all = |mut c: TcpStream| async move {
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got).await;
        String::from_utf8_lossy(&got).into_owned()
    };
    let (closed, answer) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(20), read_all(loris)),
        tokio::time::timeout(Duration::from_secs(20), read_all(slow_body)),
    );
    assert!(closed.is_ok(), "a slow-loris connection stays open");
    let answer = answer.expect("a stalled body is answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let json_at = answer.find("\r\n\r\n").expect("a body") + 4;
    let body: Value = serde_json::from_str(&answer[json_at..]).expect("408 is JSON");
    assert!(body["error"].is_string(), "{body}");
    still_healthy(&net, 0, "after-http-attacks", &roster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_add_node_is_refused_across_eviction_and_restart() {
    let mut net = Net::start(
        24200,
        4,
        2,
        Params {
            eviction_total: 60,
            ..Params::default()
        },
    );
    for i in 0..4 {
        net.wait_healthy(i).await;
    }
    net.spawn(4);
    net.wait_healthy(4).await;
    let add4 = net.add_node_body(4, &net.operator, 5);
    let (code, res) = net.post(0, &add4).await;
    assert_eq!(code, 200, "{res}");
    // The same nonce for another node is a re-use: refused with the reason.
    let mut reuse = net.add_node_body(5, &net.operator, 5);
    reuse["id"] = json!("reuse");
    let (code, res) = net.post(0, &reuse).await;
    assert_eq!(code, 400, "{res}");
    assert!(
        res["error"]
            .as_str()
            .unwrap()
            .contains("already used nonce 5"),
        "{res}"
    );
    // Node 4 dies and is evicted.
    net.wait_for("node 4 is a validator", 30, || async {
        net.status(4)
            .await
            .is_some_and(|s| s["role"] == "validator")
    })
    .await;
    net.kill(4);
    net.wait_for("node 4 evicted", 120, || async {
        net.roster_ids(0).await.len() == 4
    })
    .await;
    // The old AddNode under a new transaction id does not bring it back...
    let mut replay = add4.clone();
    replay["id"] = json!("replay-1");
    let (code, res) = net.post(0, &replay).await;
    assert_eq!(code, 400, "{res}");
    assert!(res["error"].as_str().unwrap().contains("replayed"), "{res}");
    // ... nor after a restart (the used nonces are rebuilt from the chain).
    net.kill(0);
    net.spawn(0);
    net.wait_healthy(0).await;
    replay["id"] = json!("replay-2");
    let (code, res) = net.post(0, &replay).await;
    assert_eq!(code, 400, "{res}");
    assert_eq!(net.roster_ids(1).await.len(), 4);
    // A fresh nonce re-adds it.
    let (code, res) = net.post(1, &net.add_node_body(4, &net.operator, 6)).await;
    assert_eq!(code, 200, "{res}");
    assert_eq!(net.roster_ids(1).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_peer_connections_time_out() {
    let net = Net::start(24300, 4, 0, Params::default());
    for i in 0..4 {
        net.wait_healthy(i).await;
    }
    let roster = net.roster_ids(0).await;
    // Two outsiders (one connection per proven id is kept): one says nothing after its
    // handshake; the other starts a frame of 200 kB (several Noise messages) and
    // sends only its first half.
    let quiet = Local::new(&Keypair::from_secret([8; 32]), &net.chain_id).unwrap();
    let slow = Local::new(&Keypair::from_secret([10; 32]), &net.chain_id).unwrap();
    let (mut silent, _s, _o) = connect(&net, 0, &quiet).await.expect("handshake");
    let (mut half, mut s, _o2) = connect(&net, 0, &slow).await.expect("handshake");
    let sealed = s.seal(&vec![0u8; 200_000]).unwrap();
    half.write_all(&sealed[..sealed.len() / 2]).await.unwrap();
    let bound = IDLE_TIMEOUT + Duration::from_secs(20);
    let (t_half, t_silent) = tokio::join!(
        time_to_close(&mut half, bound),
        time_to_close(&mut silent, bound)
    );
    let t_half = t_half.expect("a half-sent frame's connection is closed");
    let t_silent = t_silent.expect("a silent connection is closed");
    // Each was closed by its own timeout, not by something sooner.
    assert!(
        t_half >= FRAME_TIMEOUT - Duration::from_secs(1) && t_half < IDLE_TIMEOUT,
        "half-sent frame closed after {t_half:?}"
    );
    assert!(
        t_silent >= IDLE_TIMEOUT - Duration::from_secs(1),
        "silent connection closed after {t_silent:?}"
    );
    net.wait_for("both timeouts counted", 10, || async {
        dropped(&net, 0, "bad_frame").await >= 2
    })
    .await;
    still_healthy(&net, 0, "after-timeouts", &roster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_connection_cap_holds_across_addresses() {
    let net = Net::start(24400, 4, 0, Params::default());
    for i in 0..4 {
        net.wait_healthy(i).await;
    }
    let roster = net.roster_ids(0).await;
    // MAX_CONNS_PER_IP stalled handshakes from each of enough loopback addresses to
    // pass the total cap while no single address passes its own.
    let addrs = MAX_CONNS / MAX_CONNS_PER_IP + 2;
    let target = net.nodes[0].config.peer_addr.parse().unwrap();
    let mut stalled = Vec::new();
    for a in 0..addrs {
        for _ in 0..MAX_CONNS_PER_IP {
            let sock = TcpSocket::new_v4().unwrap();
            sock.bind(format!("127.0.1.{}:0", a + 1).parse().unwrap())
                .unwrap();
            if let Ok(mut c) = sock.connect(target).await {
                let _ = c.write_all(&[0, 200, 1]).await;
                stalled.push(c);
            }
        }
    }
    let over = (addrs * MAX_CONNS_PER_IP - MAX_CONNS) as u64;
    net.wait_for("connections past the total cap refused", 10, || async {
        dropped(&net, 0, "refused_connection").await >= over
    })
    .await;
    // The members still reach node 0 (it dials them), and once the stalled
    // handshakes time out the slots are free again.
    drop(stalled);
    still_healthy(&net, 0, "after-conn-cap", &roster).await;
    let before = dropped(&net, 0, "refused_connection").await;
    let outsider = Local::new(&Keypair::from_secret([9; 32]), &net.chain_id).unwrap();
    assert!(
        connect(&net, 0, &outsider).await.is_some(),
        "a slot is free again"
    );
    assert_eq!(dropped(&net, 0, "refused_connection").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mempool_answers_503_and_loses_nothing() {
    let mut net = Net::start(24500, 4, 0, Params::default());
    for i in 0..4 {
        net.wait_healthy(i).await;
    }
    // Node 0 restarts with a mempool of 8; nodes 2 and 3 stop, so nothing commits.
    net.kill(0);
    let cfg = net.nodes[0].home.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    c["mempool_txs"] = json!(8);
    std::fs::write(&cfg, serde_json::to_vec(&c).unwrap()).unwrap();
    net.spawn(0);
    net.wait_healthy(0).await;
    net.kill(2);
    net.kill(3);
    let posts = (0..20).map(|k| {
        let net = &net;
        async move { (k, net.append(0, &format!("m{k}"), "m", k).await) }
    });
    let answers = futures::future::join_all(posts).await;
    let full: Vec<_> = answers.iter().filter(|(_, (c, _))| *c == 503).collect();
    let kept: Vec<_> = answers.iter().filter(|(_, (c, _))| *c != 503).collect();
    assert!(
        kept.len() <= 8,
        "more kept than the mempool holds: {answers:?}"
    );
    assert!(!full.is_empty(), "no 503 from a full mempool: {answers:?}");
    for (_, (_, body)) in &full {
        let e = body["error"].as_str().expect("503 is JSON");
        assert!(e.contains("mempool full"), "{body}");
    }
    // Quorum back: every transaction, kept or refused, commits once resubmitted with
    // its id, and the kept ones were not lost while they waited.
    net.spawn(2);
    net.spawn(3);
    for (k, _) in &answers {
        let (code, body) = net.append(0, &format!("m{k}"), "m", *k).await;
        assert_eq!(code, 200, "m{k}: {body}");
    }
    let (code, body) = net
        .post(0, &json!({"id": "read", "ops": [["r", "m", null]]}))
        .await;
    assert_eq!(code, 200, "{body}");
    let list = body["results"][0][2].as_array().expect("a list").clone();
    assert_eq!(list.len(), 20, "each append applied once: {body}");
}
