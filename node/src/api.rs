//! The HTTP/JSON API (protocol.md §7) and the JSON forms of transactions, results
//! and blocks that clients and the harness read.
//!
//! Bad input never crashes the node and never changes its state: every malformed
//! request gets a 4xx with a reason.

use crate::crypto::{Bytes32, Sig};
use crate::runtime::{Cmd, NodeHandle, SubmitReply};
use crate::types::{AddNode, CommittedBlock, Op, OpResult, Tx, TxBody, TxOutcome, Value};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value as Json_};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1 << 20;
/// Most blocks returned by one `GET /blocks`.
pub const BLOCKS_PAGE: u64 = 1000;

/// Most open API connections; beyond it new ones are closed at once (issue 14).
pub const MAX_API_CONNS: usize = 512;
/// Time a client has to send a request's headers (slow-loris, issue 14).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the API on `listener` until the process ends: hyper's HTTP/1 server with
/// a header-read timeout, at most [`MAX_API_CONNS`] connections.
pub async fn serve(listener: TcpListener, node: NodeHandle) {
    let app = router(node);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_API_CONNS));
    loop {
        let (sock, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%addr, "API connection cap reached: refused");
            continue;
        };
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = b.serve_connection(hyper_util::rt::TokioIo::new(sock), svc);
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "API connection closed");
            }
            drop(slot);
        });
    }
}

/// The API's routes.
pub fn router(node: NodeHandle) -> Router {
    Router::new()
        .route("/tx", post(post_tx))
        .route("/status", get(status))
        .route("/blocks", get(blocks))
        .route("/blocks/{h}", get(block))
        .route("/roster", get(roster))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(node)
}

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

/// Reads a request body within [`BODY_LIMIT`] and [`BODY_TIMEOUT`]; 413 and 408 are
/// JSON like every other error.
async fn read_body(body: Body) -> Result<Bytes, Response> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            // axum wraps http-body-util's `LengthLimitError` ("length limit exceeded").
            let mut src: Option<&dyn std::error::Error> = Some(&e);
            let mut too_big = false;
            while let Some(x) = src {
                too_big |= x.to_string().contains("length limit");
                src = x.source();
            }
            Err(if too_big {
                err(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body over {BODY_LIMIT} bytes"),
                )
            } else {
                err(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
            })
        }
        Err(_) => Err(err(
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time",
        )),
    }
}

async fn post_tx(State(node): State<NodeHandle>, body: Body) -> Response {
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let v: Json_ = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")),
    };
    let tx = match tx_from_json(&v) {
        Ok(tx) => tx,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let (reply, rx) = oneshot::channel();
    if node.cmd.send(Cmd::Submit(tx, reply)).await.is_err() {
        return err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down");
    }
    match tokio::time::timeout(node.tx_timeout, rx).await {
        Ok(Ok(SubmitReply::Committed(o))) => outcome_response(&o),
        Ok(Ok(SubmitReply::Rejected(r))) => err(StatusCode::BAD_REQUEST, r),
        Ok(Ok(SubmitReply::Busy)) => err(
            StatusCode::SERVICE_UNAVAILABLE,
            "mempool full: outcome unknown, retry with the same id",
        ),
        Ok(Err(_)) => err(StatusCode::SERVICE_UNAVAILABLE, "node dropped the request"),
        Err(_) => err(
            StatusCode::GATEWAY_TIMEOUT,
            "not committed in time: outcome unknown, resubmit the same id to learn it",
        ),
    }
}

/// `200 {"status":"committed",...}`, or `409` when it was ordered but rejected at
/// execution (it never applies).
fn outcome_response(o: &TxOutcome) -> Response {
    let body = outcome_json(o);
    if o.error.is_some() {
        (StatusCode::CONFLICT, Json(body)).into_response()
    } else {
        (StatusCode::OK, Json(body)).into_response()
    }
}

/// The JSON body for a committed transaction.
pub fn outcome_json(o: &TxOutcome) -> Json_ {
    match &o.error {
        None => json!({
            "status": "committed",
            "height": o.height,
            "results": o.results.iter().map(result_json).collect::<Vec<_>>(),
        }),
        Some(e) => json!({ "status": "rejected", "height": o.height, "error": e }),
    }
}

async fn status(State(node): State<NodeHandle>) -> Response {
    let (reply, rx) = oneshot::channel();
    if node.cmd.send(Cmd::Status(reply)).await.is_err() {
        return err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down");
    }
    match rx.await {
        Ok(s) => Json(s).into_response(),
        Err(_) => err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"),
    }
}

async fn block(State(node): State<NodeHandle>, Path(h): Path<String>) -> Response {
    let Ok(h) = h.parse::<u64>() else {
        return err(
            StatusCode::BAD_REQUEST,
            format!("height {h:?} is not a number"),
        );
    };
    match node.block(h) {
        Some(cb) => Json(block_json(&cb)).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("no block at height {h}")),
    }
}

async fn blocks(
    State(node): State<NodeHandle>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let num = |k: &str| -> Result<Option<u64>, String> {
        match q.get(k) {
            None => Ok(None),
            Some(s) => s
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{k}={s:?} is not a number")),
        }
    };
    let (from, to) = match (num("from"), num("to")) {
        (Ok(f), Ok(t)) => (f.unwrap_or(1).max(1), t),
        (Err(e), _) | (_, Err(e)) => return err(StatusCode::BAD_REQUEST, e),
    };
    let to = to
        .unwrap_or(from + BLOCKS_PAGE - 1)
        .min(from + BLOCKS_PAGE - 1);
    // `format=raw`: the exact stored form (serde of `CommittedBlock`), for chain dumps
    // that checkers decode and re-verify.
    let raw = match q.get("format").map(|s| s.as_str()) {
        None | Some("api") => false,
        Some("raw") => true,
        Some(other) => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("unknown format {other:?} (api, raw)"),
            )
        }
    };
    let mut out = Vec::new();
    for h in from..=to {
        match node.block(h) {
            Some(cb) if raw => out.push(serde_json::to_value(&cb).unwrap_or(Json_::Null)),
            Some(cb) => out.push(block_json(&cb)),
            None => break,
        }
    }
    Json(out).into_response()
}

async fn roster(
    State(node): State<NodeHandle>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let h = match q.get("height").map(|s| s.parse::<u64>()) {
        Some(Ok(h)) => Some(h),
        Some(Err(_)) => return err(StatusCode::BAD_REQUEST, "height is not a number"),
        None => None,
    };
    let (reply, rx) = oneshot::channel();
    // Without a height: the roster of the next height.
    let want = match h {
        Some(h) => h,
        None => {
            let (sr, srx) = oneshot::channel();
            if node.cmd.send(Cmd::Status(sr)).await.is_err() {
                return err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down");
            }
            match srx.await {
                Ok(s) => s.height + 1,
                Err(_) => return err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"),
            }
        }
    };
    if node.cmd.send(Cmd::Roster(want, reply)).await.is_err() {
        return err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down");
    }
    match rx.await {
        Ok(Some((epoch, entries))) => {
            Json(json!({"height": want, "epoch": epoch, "roster": entries})).into_response()
        }
        Ok(None) => err(
            StatusCode::NOT_FOUND,
            format!("height {want} is not known to this node yet"),
        ),
        Err(_) => err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"),
    }
}

// ---- JSON forms ---------------------------------------------------------------

fn id_from_json(v: &Json_) -> Result<String, String> {
    match v {
        Json_::String(s) if !s.is_empty() && s.len() <= 256 => Ok(s.clone()),
        Json_::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        _ => Err("\"id\" must be a non-empty string (at most 256 characters) or an integer".into()),
    }
}

fn only_fields(obj: &Map<String, Json_>, allowed: &[&str], what: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown field {k:?} in {what}")),
        None => Ok(()),
    }
}

/// Parses a `POST /tx` body (protocol.md §3, §7).
pub fn tx_from_json(v: &Json_) -> Result<Tx, String> {
    let obj = v.as_object().ok_or("the body must be a JSON object")?;
    let id = id_from_json(obj.get("id").ok_or("missing \"id\"")?)?;
    if let Some(ops) = obj.get("ops") {
        only_fields(obj, &["id", "ops"], "a KV transaction")?;
        let ops = ops.as_array().ok_or("\"ops\" must be an array")?;
        if ops.is_empty() || ops.len() > 64 {
            return Err("\"ops\" must hold 1 to 64 micro-ops".into());
        }
        let ops = ops
            .iter()
            .enumerate()
            .map(|(i, op)| op_from_json(op).map_err(|e| format!("ops[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Tx {
            id,
            body: TxBody::Kv(ops),
        });
    }
    if let Some(an) = obj.get("add_node") {
        only_fields(obj, &["id", "add_node", "sig"], "an AddNode transaction")?;
        let an = an.as_object().ok_or("\"add_node\" must be an object")?;
        only_fields(an, &["id", "addr", "nonce"], "add_node")?;
        let node_id = an
            .get("id")
            .and_then(|x| x.as_str())
            .ok_or("add_node.id must be a hex string")?;
        let node_id = Bytes32::from_hex(node_id).map_err(|e| format!("add_node.id: {e}"))?;
        let addr = an
            .get("addr")
            .and_then(|x| x.as_str())
            .ok_or("add_node.addr must be a string \"host:port\"")?
            .to_string();
        let nonce = an
            .get("nonce")
            .and_then(|x| x.as_u64())
            .ok_or("add_node.nonce must be a non-negative integer")?;
        let sig = match obj.get("sig") {
            None | Some(Json_::Null) => None,
            Some(Json_::String(s)) => Some(Sig::from_hex(s).map_err(|e| format!("sig: {e}"))?),
            Some(_) => return Err("\"sig\" must be a hex string".into()),
        };
        return Ok(Tx {
            id,
            body: TxBody::AddNode {
                req: AddNode {
                    id: node_id,
                    addr,
                    nonce,
                },
                sig,
            },
        });
    }
    Err("a transaction needs \"ops\" or \"add_node\"".into())
}

fn op_from_json(v: &Json_) -> Result<Op, String> {
    let a = v
        .as_array()
        .ok_or("a micro-op is an array [f, key, value]")?;
    let [f, k, val] = a.as_slice() else {
        return Err("a micro-op has exactly 3 elements".into());
    };
    let f = f.as_str().ok_or("the op name must be a string")?;
    let k = k.as_str().ok_or("the key must be a string")?;
    if k.is_empty() || k.len() > 256 {
        return Err("keys are 1 to 256 characters".into());
    }
    let k = k.to_string();
    let int = |x: &Json_, what: &str| x.as_i64().ok_or(format!("{what} must be an integer"));
    match f {
        "r" if val.is_null() => Ok(Op::Read(k)),
        "r" => Err("a read's value must be null".into()),
        "w" => Ok(Op::Write(k, int(val, "the written value")?)),
        "append" => Ok(Op::Append(k, int(val, "the appended value")?)),
        "cas" => match val.as_array().map(|x| x.as_slice()) {
            Some([old, new]) => Ok(Op::Cas(k, int(old, "cas old")?, int(new, "cas new")?)),
            _ => Err("cas takes [old, new]".into()),
        },
        other => Err(format!("unknown op {other:?} (r, w, cas, append)")),
    }
}

/// A micro-op result as JSON: reads filled in, cas with whether it applied.
pub fn result_json(r: &OpResult) -> Json_ {
    match r {
        OpResult::Read(k, None) => json!(["r", k, null]),
        OpResult::Read(k, Some(Value::Int(v))) => json!(["r", k, v]),
        OpResult::Read(k, Some(Value::List(l))) => json!(["r", k, l]),
        OpResult::Write(k, v) => json!(["w", k, v]),
        OpResult::Cas {
            key,
            old,
            new,
            applied,
        } => json!(["cas", key, [old, new], applied]),
        OpResult::Append(k, v) => json!(["append", k, v]),
    }
}

/// A transaction in the `POST /tx` form.
pub fn tx_json(tx: &Tx) -> Json_ {
    match &tx.body {
        TxBody::Kv(ops) => json!({
            "id": tx.id,
            "ops": ops.iter().map(|op| match op {
                Op::Read(k) => json!(["r", k, null]),
                Op::Write(k, v) => json!(["w", k, v]),
                Op::Cas(k, o, n) => json!(["cas", k, [o, n]]),
                Op::Append(k, v) => json!(["append", k, v]),
            }).collect::<Vec<_>>(),
        }),
        TxBody::AddNode { req, sig } => json!({
            "id": tx.id,
            "add_node": {"id": req.id, "addr": req.addr, "nonce": req.nonce},
            "sig": sig.map(|s| hex::encode(s.0)),
        }),
    }
}

/// A committed block with its certificate and hash, transactions in API form.
pub fn block_json(cb: &CommittedBlock) -> Json_ {
    let b = &cb.block;
    json!({
        "height": b.height,
        "round": b.round,
        "epoch": b.epoch,
        "hash": b.hash(),
        "prev_hash": b.prev_hash,
        "proposer": b.proposer,
        "roster_hash": b.roster_hash,
        "txs": b.txs.iter().map(tx_json).collect::<Vec<_>>(),
        "evict": b.evict,
        "last_commit": b.last_commit,
        "cert": cb.cert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kv_and_rejects_bad_input() {
        let tx = tx_from_json(&json!({"id": "t1", "ops": [["r","k",null],["w","k",5],["cas","k",[5,6]],["append","l",1]]})).unwrap();
        assert_eq!(tx.id, "t1");
        assert!(matches!(tx.body, TxBody::Kv(ref ops) if ops.len() == 4));
        assert_eq!(tx_json(&tx)["ops"][2], json!(["cas", "k", [5, 6]]));
        for bad in [
            json!([1, 2]),
            json!({"ops": [["r","k",null]]}),
            json!({"id": "x", "ops": []}),
            json!({"id": "x", "ops": [["zap","k",1]]}),
            json!({"id": "x", "ops": [["w","k","five"]]}),
            json!({"id": "x", "ops": [["r","k",3]]}),
            json!({"id": "x", "ops": [["cas","k",[1]]]}),
            json!({"id": "x", "ops": [["r","k",null]], "extra": 1}),
            json!({"id": "x", "add_node": {"id": "zz", "addr": "a:1", "nonce": 1}}),
            json!({"id": "x", "add_node": {"id": "00", "addr": "a:1", "nonce": 1, "x": 2}}),
            json!({"id": "x"}),
            json!({"id": "", "ops": [["r","k",null]]}),
        ] {
            assert!(tx_from_json(&bad).is_err(), "accepted {bad}");
        }
    }
}
