//! The JSON forms of the node API (protocol.md §3, §7) and their inverses, side by
//! side so each pair is read and tested together: what the node serves
//! ([`crate::api`]) and what its clients parse ([`crate::client`], the harness).

use crate::crypto::{Bytes32, Sig};
use crate::types::{
    AddNode, CommittedBlock, Op, OpResult, RosterEntry, Tx, TxBody, TxOutcome, Value,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json_};

/// The `GET /roster` answer: the roster that signs `height` and its epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterAnswer {
    /// The height asked for (default: the next height).
    pub height: u64,
    /// Its epoch.
    pub epoch: u64,
    /// The roster, in order.
    pub roster: Vec<RosterEntry>,
}

/// The JSON body for a committed transaction (`POST /tx` 200, or 409 when it was
/// ordered but rejected at execution).
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

/// The inverse of [`outcome_json`].
pub fn outcome_from_json(v: &Json_) -> Result<TxOutcome, String> {
    let height = v
        .get("height")
        .and_then(Json_::as_u64)
        .ok_or("missing \"height\"")?;
    if v.get("status").and_then(Json_::as_str) == Some("rejected") {
        return Ok(TxOutcome {
            height,
            results: Vec::new(),
            error: Some(error_text(v)),
        });
    }
    let results = v
        .get("results")
        .and_then(Json_::as_array)
        .ok_or("missing \"results\"")?
        .iter()
        .map(result_from_json)
        .collect::<Result<_, _>>()?;
    Ok(TxOutcome {
        height,
        results,
        error: None,
    })
}

/// The `"error"` of an API error body (`{"error": "..."}`), else the body itself.
pub fn error_text(v: &Json_) -> String {
    v.get("error")
        .and_then(Json_::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

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

/// The inverse of [`result_json`].
pub fn result_from_json(v: &Json_) -> Result<OpResult, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("result {v} is not an array"))?;
    let f = a.first().and_then(Json_::as_str).unwrap_or_default();
    let key = a
        .get(1)
        .and_then(Json_::as_str)
        .ok_or_else(|| format!("result {v} has no key"))?
        .to_string();
    let int = |x: Option<&Json_>| {
        x.and_then(Json_::as_i64)
            .ok_or_else(|| format!("result {v}: not an integer"))
    };
    match f {
        "r" => match a.get(2) {
            None | Some(Json_::Null) => Ok(OpResult::Read(key, None)),
            Some(Json_::Array(l)) => Ok(OpResult::Read(
                key,
                Some(Value::List(
                    l.iter()
                        .map(|x| {
                            x.as_i64()
                                .ok_or_else(|| format!("result {v}: list element"))
                        })
                        .collect::<Result<_, _>>()?,
                )),
            )),
            x => Ok(OpResult::Read(key, Some(Value::Int(int(x)?)))),
        },
        "w" => Ok(OpResult::Write(key, int(a.get(2))?)),
        "append" => Ok(OpResult::Append(key, int(a.get(2))?)),
        "cas" => {
            let on = a.get(2).and_then(Json_::as_array);
            Ok(OpResult::Cas {
                key,
                old: int(on.and_then(|x| x.first()))?,
                new: int(on.and_then(|x| x.get(1)))?,
                applied: a
                    .get(3)
                    .and_then(Json_::as_bool)
                    .ok_or_else(|| format!("result {v}: cas without applied"))?,
            })
        }
        other => Err(format!("unknown op {other:?} in result {v}")),
    }
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

    #[test]
    fn outcomes_and_results_round_trip() {
        let o = TxOutcome {
            height: 7,
            results: vec![
                OpResult::Read("a".into(), None),
                OpResult::Read("b".into(), Some(Value::Int(3))),
                OpResult::Read("c".into(), Some(Value::List(vec![1, 2]))),
                OpResult::Write("d".into(), 4),
                OpResult::Cas {
                    key: "e".into(),
                    old: 1,
                    new: 2,
                    applied: true,
                },
                OpResult::Append("f".into(), 9),
            ],
            error: None,
        };
        assert_eq!(outcome_from_json(&outcome_json(&o)), Ok(o.clone()));
        for r in &o.results {
            assert_eq!(result_from_json(&result_json(r)).as_ref(), Ok(r));
        }
        let rej = TxOutcome {
            height: 3,
            results: vec![],
            error: Some("not an operator".into()),
        };
        assert_eq!(outcome_from_json(&outcome_json(&rej)), Ok(rej));
        assert!(outcome_from_json(&json!({"status": "committed"})).is_err());
        assert!(result_from_json(&json!(["zz", "k", 1])).is_err());
        assert!(result_from_json(&json!(["cas", "k", [1, 2]])).is_err());
    }

    #[test]
    fn transactions_round_trip_through_the_post_form() {
        let kv = Tx {
            id: "t9".into(),
            body: TxBody::Kv(vec![
                Op::Read("k".into()),
                Op::Write("k".into(), 1),
                Op::Cas("k".into(), 1, 2),
                Op::Append("l".into(), 3),
            ]),
        };
        assert_eq!(tx_from_json(&tx_json(&kv)), Ok(kv));
    }
}
