//! The HTTP/JSON API (protocol.md §7): the routes. The JSON forms of transactions,
//! results and blocks, and their inverses, are in [`crate::wire`]; the client that
//! talks to this API is [`crate::client::NodeClient`].
//!
//! Bad input never crashes the node and never changes its state: every malformed
//! request gets a 4xx with a reason.

use crate::runtime::{Cmd, NodeHandle, SubmitReply};
use crate::types::TxOutcome;
use crate::wire::{block_json, outcome_json, tx_from_json, RosterAnswer};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value as Json_};
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

/// An error answered before the request body was read to its end: the rest of the
/// body is still on the wire, so the connection cannot carry another request. Saying
/// `Connection: close` keeps a pooling client from sending its next request into it.
fn err_closing(code: StatusCode, msg: impl Into<String>) -> Response {
    let mut r = err(code, msg);
    r.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    r
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
                err_closing(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body over {BODY_LIMIT} bytes"),
                )
            } else {
                err_closing(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
            })
        }
        Err(_) => Err(err_closing(
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
        Ok(Some((epoch, roster))) => Json(RosterAnswer {
            height: want,
            epoch,
            roster,
        })
        .into_response(),
        Ok(None) => err(
            StatusCode::NOT_FOUND,
            format!("height {want} is not known to this node yet"),
        ),
        Err(_) => err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"),
    }
}
