//! A small but realistic run directory, made without the harness, for tests,
//! the benchmark and demos of the report (harness.md §8 layout). The history
//! comes from `rollcall_checkers::gen` with nemesis events woven in, and the
//! results are the real elle checker's verdict on it, so an invalid sample
//! carries a real cycle to draw.

use crate::error::{io, ReportError};
use rollcall_checkers::elle::ElleChecker;
use rollcall_checkers::gen::{self, AppendCorruption, GenConfig};
use rollcall_checkers::result::{compose, CheckResult, Checker, Validity};
use rollcall_checkers::History;
use serde_json::{json, Value};
use std::path::Path;

/// Shape of a sample run.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    /// Client operations in the history.
    pub ops: usize,
    /// RNG seed.
    pub seed: u64,
    /// Plant a stale read so elle reports a cycle and the run is invalid.
    pub invalid: bool,
    /// Blocks per node chain dump.
    pub blocks: u64,
}

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            ops: 2000,
            seed: 7,
            invalid: true,
            blocks: 300,
        }
    }
}

fn nemesis_line(time: u64, f: &str, value: Value) -> Value {
    json!({"time": time, "process": "nemesis", "type": "info", "f": f, "value": value})
}

/// Write a complete run directory into `dir` (created if needed).
pub fn write_sample_run(dir: &Path, spec: &SampleSpec) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let cfg = GenConfig {
        ops: spec.ops,
        processes: 8,
        keys: 6,
        seed: spec.seed,
        info_rate: 0.01,
        fail_rate: 0.05,
    };
    let mut h = gen::append_history(&cfg);
    if spec.invalid {
        if let Some(c) = gen::corrupt_append(&h, spec.seed, AppendCorruption::StaleRead) {
            h = c;
        }
    }
    // Stretch generator time (1 µs per event) to ~5 ms per event, and weave in
    // nemesis start/stop pairs and the final heal.
    let mut lines: Vec<Value> = h
        .to_jsonl()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for l in &mut lines {
        if let Some(t) = l.get("time").and_then(Value::as_u64) {
            l["time"] = json!(t * 5000);
        }
    }
    let end = lines
        .last()
        .and_then(|l| l.get("time"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let at = |p: f64| (end as f64 * p) as u64;
    let faults = vec![
        nemesis_line(
            at(0.15),
            "partition",
            json!({"phase": "start", "shape": "halves", "groups": [["n1", "n2"], ["n3", "n4"]]}),
        ),
        nemesis_line(at(0.30), "partition", json!({"phase": "stop"})),
        nemesis_line(at(0.45), "kill", json!({"phase": "start", "nodes": ["n4"]})),
        nemesis_line(at(0.60), "kill", json!({"phase": "stop", "nodes": ["n4"]})),
        nemesis_line(
            at(0.70),
            "pause",
            json!({"phase": "start", "nodes": ["n2"]}),
        ),
        nemesis_line(
            at(0.85),
            "heal-all",
            json!({"restarted": [], "resumed": ["n2"]}),
        ),
    ];
    let mut merged = Vec::with_capacity(lines.len() + faults.len());
    let mut fi = faults.into_iter().peekable();
    for l in lines {
        let t = l.get("time").and_then(Value::as_u64).unwrap_or(0);
        while fi
            .peek()
            .and_then(|f| f.get("time").and_then(Value::as_u64))
            .is_some_and(|ft| ft <= t)
        {
            if let Some(f) = fi.next() {
                merged.push(f);
            }
        }
        merged.push(l);
    }
    merged.extend(fi);
    let mut text = String::new();
    for (i, mut l) in merged.into_iter().enumerate() {
        l["index"] = json!(i);
        text.push_str(&l.to_string());
        text.push('\n');
    }
    let hp = dir.join("history.jsonl");
    std::fs::write(&hp, &text).map_err(io(&hp))?;
    let h = History::parse_jsonl(&text).map_err(|e| ReportError::Io {
        path: hp.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;

    let mut results: Vec<CheckResult> = Vec::new();
    if let Ok(elle) = ElleChecker::with_model("strict-serializable") {
        results.push(rollcall_checkers::result::timed(|| elle.check(&h)));
    }
    results.push(CheckResult {
        checker: "liveness".into(),
        validity: Validity::Valid,
        summary: "the cluster committed again 0.8 s after the final heal".into(),
        anomalies: vec![],
        details: json!({"recovery_s": 0.8}),
        elapsed_ms: 0.2,
    });
    let verdict = compose(&results);
    write_json(
        dir,
        "results.json",
        &json!({"valid": verdict, "checkers": results}),
    )?;
    write_json(
        dir,
        "test.json",
        &json!({
            "backend": "sim",
            "seed": spec.seed,
            "git_commit": "0000000000000000000000000000000000000000",
            "command": ["rollcall", "test", "--seed", spec.seed.to_string(), "--nemesis", "partition,kill,pause,add-node,fail-node"],
            "options": {"name": "sample", "nodes": 4, "spare": 1, "workload": "append", "seed": spec.seed,
                        "nemesis": ["partition", "kill", "pause", "add-node", "fail-node"], "time_limit_s": end / 1_000_000_000,
                        "backend": "sim", "concurrency": 8}
        }),
    )?;
    write_json(
        dir,
        "schedule.json",
        &json!({
            "planned": [
                {"fault": {"f": "partition", "shape": "halves"}, "start_ns": at(0.15), "stop_ns": at(0.30)},
                {"fault": {"f": "kill", "nodes": ["n4"]}, "start_ns": at(0.45), "stop_ns": at(0.60)},
                {"fault": {"f": "pause", "nodes": ["n2"]}, "start_ns": at(0.70), "stop_ns": at(0.90)}
            ],
            "applied": [
                {"time_ns": at(0.15), "f": "partition", "value": {"phase": "start"}},
                {"time_ns": at(0.30), "f": "partition", "value": {"phase": "stop"}},
                {"time_ns": at(0.45), "f": "kill", "value": {"phase": "start", "nodes": ["n4"]}},
                {"time_ns": at(0.60), "f": "kill", "value": {"phase": "stop", "nodes": ["n4"]}},
                {"time_ns": at(0.70), "f": "pause", "value": {"phase": "start", "nodes": ["n2"]}},
                {"time_ns": at(0.85), "f": "heal-all", "value": {}}
            ]
        }),
    )?;
    let roster: Vec<Value> = (1..=4)
        .map(|i| json!({"number": i, "id": format!("{:064x}", i), "addr": format!("n{i}:26600")}))
        .collect();
    write_json(
        dir,
        "genesis.json",
        &json!({"chain_id": "sample", "roster": roster}),
    )?;
    // Chains: n5 added at 1/3 of the blocks (epoch 1), n4 evicted at 2/3 (epoch 2).
    let add_h = spec.blocks / 3;
    let ev_h = 2 * spec.blocks / 3;
    let chain: Vec<Value> = (1..=spec.blocks)
        .map(|height| {
            let epoch = u64::from(height > add_h) + u64::from(height > ev_h);
            let txs = if height == add_h {
                json!([{"id": "add-n5", "body": {"AddNode": {"req": {"id": format!("{:064x}", 5), "addr": "n5:26600", "nonce": 1}}}}])
            } else {
                json!([{"id": format!("p1-{height}"), "body": {"Kv": [{"Read": "k1"}]}}])
            };
            let evict = if height == ev_h { json!(format!("{:064x}", 4)) } else { Value::Null };
            json!({"block": {"height": height, "round": 0, "epoch": epoch, "txs": txs, "evict": evict}, "cert": {"height": height}})
        })
        .collect();
    let chain_text = Value::Array(chain).to_string();
    for n in ["n1", "n2", "n3", "n4", "n5"] {
        let nd = dir.join("nodes").join(n);
        std::fs::create_dir_all(&nd).map_err(io(&nd))?;
        let p = nd.join("chain.json");
        std::fs::write(&p, &chain_text).map_err(io(&p))?;
        let evicted = n == "n4";
        write_json(
            &nd,
            "status.json",
            &json!({"role": if evicted { "evicted" } else { "validator" }, "height": spec.blocks, "epoch": 2,
                    "roster": [roster[0], roster[1], roster[2], {"number": 5, "addr": "n5:26600"}]}),
        )?;
        let p = nd.join("alive");
        std::fs::write(&p, if evicted { "false\n" } else { "true\n" }).map_err(io(&p))?;
        let p = nd.join("node.log");
        std::fs::write(&p, format!("{n} started\n<b>not html</b>\n")).map_err(io(&p))?;
    }
    Ok(())
}

fn write_json(dir: &Path, name: &str, v: &Value) -> Result<(), ReportError> {
    let p = dir.join(name);
    let text = serde_json::to_string_pretty(v).map_err(|e| ReportError::Io {
        path: p.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    std::fs::write(&p, text).map_err(io(&p))
}
