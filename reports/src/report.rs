//! `report.html`: one self-contained page per run (harness.md §8) — verdict per
//! checker, each anomaly with the operations behind it (and Elle cycles drawn),
//! latency and throughput plots with fault bands, the roster over time, a paged
//! timeline per process, links to node logs, the options and the replay command.
//! Inline CSS and SVG and a few lines of inline script only: it opens from disk
//! with no network.

use crate::cycle;
use crate::error::{io, ReportError};
use crate::html::{escape, truncate};
use crate::plots::{self, css, fault_color, FaultInterval};
use crate::run::{test_field, RunData};
use crate::timeline;
use rollcall_checkers::result::Validity;
use rollcall_checkers::{History, Op};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Anomalies shown per checker; the rest are counted, and are in `results.json`.
pub const MAX_ANOMALIES: usize = 50;
/// Operations whose history lines are shown per anomaly.
pub const MAX_OPS_PER_ANOMALY: usize = 20;

/// CSS class and label of a verdict.
pub fn verdict_class(v: Option<Validity>) -> &'static str {
    match v {
        Some(Validity::Valid) => "valid",
        Some(Validity::Invalid) => "invalid",
        Some(Validity::Unknown) => "unknown",
        None => "none",
    }
}

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1180px;padding:12px 20px;color:#222}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:28px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f4f4f4}
.v{font-weight:bold;padding:2px 8px;border-radius:4px;color:#fff;display:inline-block}
.v.valid{background:#2e7d32}.v.invalid{background:#c62828}.v.unknown{background:#ef8f00}.v.none{background:#777}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:6px;overflow-x:auto;font-size:12px;white-space:pre-wrap;word-break:break-all}
details{margin:6px 0;border-left:3px solid #c62828;padding-left:8px}summary{cursor:pointer}
.note{color:#8a5a00}.legend span{display:inline-block;padding:1px 6px;margin-right:6px;border-radius:3px;font-size:12px}
.k-ok{color:#1f77b4}.k-fail{color:#d62728}.k-info{color:#ff7f0e}
.pager a{margin-right:4px;font-size:12px;padding:1px 4px;border:1px solid #ccc;border-radius:3px;text-decoration:none}
.pager a.cur{background:#1f77b4;color:#fff}
.tl-page{overflow-x:auto}svg{max-width:100%;height:auto}
code{background:#f3f3f3;padding:1px 4px}
"#;

const SCRIPT: &str = r#"
(function(){
  var nav=document.getElementById('timeline-pager');
  if(nav){nav.addEventListener('click',function(e){
    var a=e.target.closest('a[data-page]'); if(!a) return; e.preventDefault();
    var pages=document.querySelectorAll('.tl-page');
    for(var i=0;i<pages.length;i++){pages[i].hidden=(String(i)!==a.dataset.page);}
    var ls=nav.querySelectorAll('a');
    for(var j=0;j<ls.length;j++){ls[j].className=(ls[j]===a?'cur':'');}
  });}
  document.body.setAttribute('data-ready','1');
})();
"#;

fn json_short(v: &Value, max: usize) -> String {
    truncate(&v.to_string(), max)
}

fn plot_name(f: &str) -> String {
    let s: String = f
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("latency-{s}.svg")
}

/// Plots written both inline and to `plots/`.
struct Plot {
    file: String,
    svg: String,
}

fn write_verdicts(s: &mut String, run: &RunData) {
    s.push_str(r#"<h2 id="verdicts-h">Verdict</h2>"#);
    let Some(r) = &run.results else {
        s.push_str(r#"<p class="note" id="verdicts">No readable results.json: the run did not finish checking.</p>"#);
        return;
    };
    s.push_str(r#"<table id="verdicts"><tr><th>checker</th><th>verdict</th><th>summary</th><th>anomalies</th><th>time</th></tr>"#);
    for c in &r.checkers {
        let cls = verdict_class(Some(c.validity));
        let _ = write!(
            s,
            r#"<tr class="checker"><td>{}</td><td><span class="v {cls}">{cls}</span></td><td>{}</td><td>{}</td><td>{:.1} ms</td></tr>"#,
            escape(&c.checker),
            escape(&c.summary),
            if c.anomalies.is_empty() {
                "0".to_string()
            } else {
                format!(
                    "<a href=\"#anom-{}\">{}</a>",
                    escape(&c.checker),
                    c.anomalies.len()
                )
            },
            c.elapsed_ms
        );
    }
    s.push_str("</table>");
    write_byzantine(s, run);
}

/// harness.md §7 `byzantine`: per adversary behaviour, what was sent and what the
/// honest nodes dropped (and why); only for runs that had adversaries.
fn write_byzantine(s: &mut String, run: &RunData) {
    let Some(c) = run
        .results
        .as_ref()
        .and_then(|r| r.checkers.iter().find(|c| c.checker == "byzantine"))
    else {
        return;
    };
    let d = &c.details;
    s.push_str(r#"<h2>Byzantine adversaries</h2><div id="byzantine">"#);
    if d["beyond_fault_model"] == true {
        let _ = write!(
            s,
            r#"<p class="note">Beyond the fault model: {} adversaries at once, f = {}. An invalid verdict is expected here, not a harness bug.</p>"#,
            d["max_adversaries_at_once"], d["f"]
        );
    }
    s.push_str("<table><tr><th>behaviour</th><th>intervals</th><th>honest</th><th>deviant</th><th>withheld</th></tr>");
    for (b, v) in d["behaviours"].as_object().into_iter().flatten() {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(b),
            v["intervals"],
            v["honest"],
            v["deviant"],
            v["suppressed"]
        );
    }
    s.push_str("</table><p>Honest nodes dropped: ");
    let drops: Vec<String> = d["honest_dropped"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{} {}", escape(k), v))
        .collect();
    s.push_str(&drops.join(", "));
    s.push_str("; the rest was accepted (harmless, or ignored without a counter).</p></div>");
}

/// The `storage` view (issue 13) as a table, one row per node: disk faults
/// injected, corruption detected, blocks dropped, signing floor, stopped and why.
fn write_storage(s: &mut String, run: &RunData) {
    let Some(r) = &run.results else { return };
    let Some(c) = r.checkers.iter().find(|c| c.checker == "storage") else {
        return;
    };
    let Some(nodes) = c.details["nodes"].as_object() else {
        return;
    };
    s.push_str(r#"<h2 id="storage-h">Storage</h2><table id="storage"><tr><th>node</th><th>disk faults injected</th><th>corruption detected</th><th>blocks dropped (bytes)</th><th>signing floor</th><th>stopped itself</th></tr>"#);
    let cell = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(x) => escape(x),
        Value::Array(xs) => escape(
            &xs.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => escape(&other.to_string()),
    };
    for (name, row) in nodes {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            cell(&row["faults_injected"]),
            cell(&row["kinds"]),
            cell(&row["corrupt_detected"]),
            cell(&row["blocks_dropped_bytes"]),
            cell(&row["sign_floor"]),
            cell(&row["stopped"]),
        );
    }
    s.push_str("</table>");
}

fn history_lines_for(
    run: &RunData,
    h: &History,
    by_index: &HashMap<u64, usize>,
    by_invoke: &HashMap<u64, &Op>,
    idx: u64,
) -> Vec<String> {
    let _ = h;
    let mut out = Vec::new();
    let mut push = |i: u64| {
        if let Some(line) = by_index.get(&i).and_then(|&p| run.history_lines.get(p)) {
            out.push(truncate(line, 2000));
        }
    };
    push(idx);
    if let Some(c) = by_invoke.get(&idx).and_then(|o| o.complete_index) {
        push(c);
    }
    out
}

fn write_anomalies(s: &mut String, run: &RunData) {
    s.push_str(r#"<h2>Anomalies</h2><div id="anomalies">"#);
    let Some(r) = &run.results else {
        s.push_str("</div>");
        return;
    };
    let (by_index, by_invoke) = match &run.history {
        Some(h) => (
            h.events()
                .iter()
                .enumerate()
                .map(|(p, e)| (e.index, p))
                .collect::<HashMap<_, _>>(),
            h.ops()
                .iter()
                .map(|o| (o.invoke_index, o))
                .collect::<HashMap<_, _>>(),
        ),
        None => (HashMap::new(), HashMap::new()),
    };
    let mut any = false;
    for c in &r.checkers {
        if c.anomalies.is_empty() {
            continue;
        }
        any = true;
        let _ = write!(
            s,
            r#"<h3 id="anom-{}">{} — {} anomal{}</h3>"#,
            escape(&c.checker),
            escape(&c.checker),
            c.anomalies.len(),
            if c.anomalies.len() == 1 { "y" } else { "ies" }
        );
        for (i, a) in c.anomalies.iter().take(MAX_ANOMALIES).enumerate() {
            let _ = write!(
                s,
                r#"<details class="anomaly"{}><summary><b>{}</b>: {}</summary>"#,
                if i < 5 { " open" } else { "" },
                escape(&a.kind),
                escape(&truncate(&a.explanation, 600))
            );
            if let Some(edges) = cycle::parse_edges(&a.extra) {
                s.push_str(&cycle::cycle_svg(&edges, &format!("cyc-{}-{i}", c.checker)));
                s.push_str(r#"<p class="legend">"#);
                for k in ["ww", "wr", "rw", "realtime", "process"] {
                    let _ = write!(
                        s,
                        r#"<span style="color:{}">■ {k}</span>"#,
                        cycle::edge_color(k)
                    );
                }
                s.push_str("</p>");
                let expl: Vec<String> = a
                    .extra
                    .get("edges")
                    .and_then(Value::as_array)
                    .map(|es| {
                        es.iter()
                            .filter_map(|e| e.get("explanation").and_then(Value::as_str))
                            .map(|x| format!("<li>{}</li>", escape(&truncate(x, 400))))
                            .collect()
                    })
                    .unwrap_or_default();
                if !expl.is_empty() {
                    let _ = write!(s, "<ol>{}</ol>", expl.concat());
                }
            }
            if !a.ops.is_empty() {
                s.push_str("<p>Operations (invoke and completion lines of history.jsonl):</p><pre class=\"ops\">");
                for &o in a.ops.iter().take(MAX_OPS_PER_ANOMALY) {
                    let lines = match &run.history {
                        Some(h) => history_lines_for(run, h, &by_index, &by_invoke, o),
                        None => vec![],
                    };
                    if lines.is_empty() {
                        let _ = writeln!(s, "(index {o}: not in the history)");
                    }
                    for l in lines {
                        s.push_str(&escape(&l));
                        s.push('\n');
                    }
                }
                if a.ops.len() > MAX_OPS_PER_ANOMALY {
                    let _ = writeln!(s, "… and {} more", a.ops.len() - MAX_OPS_PER_ANOMALY);
                }
                s.push_str("</pre>");
            }
            if !a.extra.is_null() {
                let _ = write!(
                    s,
                    "<details><summary>evidence</summary><pre>{}</pre></details>",
                    escape(&truncate(
                        &serde_json::to_string_pretty(&a.extra).unwrap_or_default(),
                        8000
                    ))
                );
            }
            s.push_str("</details>");
        }
        if c.anomalies.len() > MAX_ANOMALIES {
            let _ = write!(
                s,
                r#"<p class="note">{} more anomalies are in results.json.</p>"#,
                c.anomalies.len() - MAX_ANOMALIES
            );
        }
    }
    if !any {
        s.push_str("<p>None found.</p>");
    }
    s.push_str("</div>");
}

fn fault_legend(s: &mut String, faults: &[FaultInterval]) {
    let mut names: Vec<&str> = faults.iter().map(|f| f.f.as_str()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        s.push_str("<p>No fault intervals in the history.</p>");
        return;
    }
    s.push_str(r#"<p class="legend">Shaded faults: "#);
    for n in names {
        let _ = write!(
            s,
            r#"<span style="background:{};opacity:.75">{}</span>"#,
            css(fault_color(n)),
            escape(n)
        );
    }
    s.push_str("</p>");
}

fn write_schedule(s: &mut String, run: &RunData, faults: &[FaultInterval]) {
    s.push_str(r#"<h2>Faults</h2><div id="faults">"#);
    if !faults.is_empty() {
        s.push_str("<table><tr><th>fault</th><th>start (s)</th><th>stop (s)</th></tr>");
        for f in faults {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{:.3}</td><td>{:.3}{}</td></tr>",
                escape(&f.f),
                f.start,
                f.stop,
                if f.closed { "" } else { " (never stopped)" }
            );
        }
        s.push_str("</table>");
    }
    if let Some(sch) = &run.schedule {
        for part in ["planned", "applied"] {
            let Some(arr) = sch.get(part).and_then(Value::as_array) else {
                continue;
            };
            let _ = write!(
                s,
                "<details><summary>schedule.json {part}: {} entries</summary><table><tr><th>time (s)</th><th>fault</th><th>details</th></tr>",
                arr.len()
            );
            for e in arr.iter().take(1000) {
                let t = ["time_ns", "start_ns", "time"]
                    .iter()
                    .find_map(|k| e.get(*k).and_then(Value::as_u64))
                    .map(|t| format!("{:.3}", t as f64 / 1e9))
                    .unwrap_or_default();
                let f = e
                    .get("f")
                    .or_else(|| e.pointer("/fault/f"))
                    .or_else(|| e.get("fault"))
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_default();
                let _ = write!(
                    s,
                    "<tr><td>{t}</td><td>{}</td><td><code>{}</code></td></tr>",
                    escape(&f),
                    escape(&json_short(e, 400))
                );
            }
            s.push_str("</table></details>");
        }
    }
    s.push_str("</div>");
}

fn initial_roster(
    run: &RunData,
    chain: &[crate::run::BlockInfo],
    node: &crate::run::NodeData,
) -> i64 {
    if let Some(n) = run
        .genesis
        .as_ref()
        .and_then(|g| g.get("roster"))
        .and_then(Value::as_array)
    {
        return n.len() as i64;
    }
    // Without a genesis: the final roster minus adds plus evictions.
    let fin = node
        .status
        .as_ref()
        .and_then(|s| s.get("roster"))
        .and_then(Value::as_array)
        .map(|r| r.len() as i64)
        .unwrap_or(0);
    let adds: i64 = chain.iter().map(|b| b.adds.len() as i64).sum();
    let evs = chain.iter().filter(|b| b.evict.is_some()).count() as i64;
    fin - adds + evs
}

fn write_roster(
    s: &mut String,
    run: &RunData,
    plots_out: &mut Vec<Plot>,
) -> Result<(), ReportError> {
    s.push_str(r#"<h2>Roster over time</h2><div id="roster">"#);
    let Some(node) = run
        .nodes
        .iter()
        .max_by_key(|n| (n.chain.len(), std::cmp::Reverse(n.name.clone())))
    else {
        s.push_str("<p>No node chain dumps.</p></div>");
        return Ok(());
    };
    if node.chain.is_empty() {
        s.push_str("<p>No readable chain dump.</p></div>");
        return Ok(());
    }
    let initial = initial_roster(run, &node.chain, node);
    let changes = plots::roster_changes(initial, &node.chain);
    let svg = plots::roster_svg("roster.svg", initial, &node.chain, &changes)?;
    let _ = write!(
        s,
        "<p>From the chain of <code>{}</code> ({} blocks), initial roster {} nodes.</p>",
        escape(&node.name),
        node.chain.len(),
        initial
    );
    s.push_str(&svg);
    plots_out.push(Plot {
        file: "roster.svg".into(),
        svg,
    });
    if changes.is_empty() {
        s.push_str("<p>No adds or evictions.</p>");
    } else {
        s.push_str("<table><tr><th>height</th><th>epoch</th><th>change</th><th>node</th><th>roster size</th></tr>");
        for c in &changes {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                c.height,
                c.epoch,
                c.what,
                escape(&truncate(&c.node, 80)),
                c.size
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</div>");
    Ok(())
}

fn write_nodes(s: &mut String, run: &RunData) {
    s.push_str(r#"<h2>Nodes</h2><div id="nodes">"#);
    if run.nodes.is_empty() {
        s.push_str("<p>No node directories.</p></div>");
        return;
    }
    s.push_str("<table><tr><th>node</th><th>alive</th><th>role</th><th>height</th><th>epoch</th><th>roster</th><th>files</th></tr>");
    for n in &run.nodes {
        let st = |k: &str| {
            n.status
                .as_ref()
                .and_then(|s| s.get(k))
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| json_short(v, 40))
                })
                .unwrap_or_default()
        };
        let roster = n
            .status
            .as_ref()
            .and_then(|s| s.get("roster"))
            .and_then(Value::as_array)
            .map(|r| r.len().to_string())
            .unwrap_or_default();
        let links: Vec<String> = n
            .files
            .iter()
            .map(|f| {
                let href = format!("nodes/{}/{}", n.name, f);
                format!("<a href=\"{}\">{}</a>", escape(&href), escape(f))
            })
            .collect();
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&n.name),
            n.alive.map(|a| a.to_string()).unwrap_or_default(),
            escape(&st("role")),
            escape(&st("height")),
            escape(&st("epoch")),
            roster,
            links.join(" ")
        );
    }
    s.push_str("</table></div>");
}

fn write_options(s: &mut String, run: &RunData) {
    s.push_str(r#"<h2>Test</h2><div id="options">"#);
    let _ = write!(
        s,
        "<p>Reproduce: <code id=\"replay\">rollcall replay {}</code></p>",
        escape(&run.dir.display().to_string())
    );
    if let Some(t) = &run.test {
        if let Some(cmd) = test_field(t, "command") {
            let c = match cmd.as_array() {
                Some(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                None => cmd
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| cmd.to_string()),
            };
            let _ = write!(s, "<p>Command line: <code>{}</code></p>", escape(&c));
        }
        let mut fields: BTreeMap<String, &Value> = BTreeMap::new();
        if let Some(o) = t.as_object() {
            for (k, v) in o {
                if k == "options" {
                    if let Some(opts) = v.as_object() {
                        for (k2, v2) in opts {
                            fields.insert(k2.clone(), v2);
                        }
                    }
                } else if k != "command" {
                    fields.insert(k.clone(), v);
                }
            }
        }
        s.push_str("<table>");
        for (k, v) in fields {
            let val = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| json_short(v, 300));
            let _ = write!(
                s,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(&k),
                escape(&val)
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</div>");
}

/// Render the page for an already-loaded run; returns the HTML and the plots to
/// write under `plots/` (also inlined in the HTML).
fn render(run: &RunData) -> Result<(String, Vec<Plot>), ReportError> {
    let mut s = String::with_capacity(1 << 20);
    let name = run.name().unwrap_or_else(|| "run".into());
    let verdict = run.verdict();
    let cls = verdict_class(verdict);
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{} — {}</title><style>{STYLE}</style></head><body>"#,
        escape(&name),
        cls
    );
    let backend = run
        .test
        .as_ref()
        .and_then(|t| test_field(t, "backend"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let seed = run
        .test
        .as_ref()
        .and_then(|t| test_field(t, "seed"))
        .map(|v| v.to_string())
        .unwrap_or_else(|| "?".into());
    let _ = write!(
        s,
        r#"<h1>{} <span class="v {cls}" id="verdict">{cls}</span></h1><p><code>{}</code> · backend {} · seed {}</p>"#,
        escape(&name),
        escape(&run.dir.display().to_string()),
        escape(backend),
        escape(&seed)
    );
    if !run.notes.is_empty() {
        s.push_str(r#"<div id="notes" class="note"><b>Could not read everything:</b><ul>"#);
        for n in &run.notes {
            let _ = write!(s, "<li>{}</li>", escape(n));
        }
        s.push_str("</ul></div>");
    }
    s.push_str(r##"<p><a href="#verdicts-h">verdict</a> · <a href="#anomalies">anomalies</a> · <a href="#plots">plots</a> · <a href="#faults">faults</a> · <a href="#roster">roster</a> · <a href="#timeline">timeline</a> · <a href="#nodes">nodes</a> · <a href="#options">test</a> · <a href="history.jsonl">history.jsonl</a> · <a href="results.json">results.json</a></p>"##);
    write_verdicts(&mut s, run);
    write_storage(&mut s, run);
    write_anomalies(&mut s, run);

    let mut plots_out = Vec::new();
    let empty: &[Op] = &[];
    let ops = run.history.as_ref().map(|h| h.ops()).unwrap_or(empty);
    let t_end = run
        .history
        .as_ref()
        .and_then(|h| h.events().iter().map(|e| e.time).max())
        .unwrap_or(0) as f64
        / 1e9;
    let faults = run
        .history
        .as_ref()
        .map(|h| plots::fault_intervals(h.nemesis(), t_end))
        .unwrap_or_default();
    s.push_str(r#"<h2>Latency and throughput</h2><div id="plots">"#);
    fault_legend(&mut s, &faults);
    if run.history.is_some() {
        let mut by_f: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
        for o in ops {
            by_f.entry(o.f.as_str()).or_default().push(o);
        }
        for (f, fops) in &by_f {
            let file = plot_name(f);
            let svg = plots::latency_svg(&file, f, fops, &faults, t_end)?;
            s.push_str(r#"<div class="plot latency">"#);
            s.push_str(&svg);
            s.push_str("</div>");
            plots_out.push(Plot { file, svg });
        }
        let svg = plots::throughput_svg("throughput.svg", ops, &faults, t_end)?;
        s.push_str(r#"<div class="plot throughput">"#);
        s.push_str(&svg);
        s.push_str("</div>");
        plots_out.push(Plot {
            file: "throughput.svg".into(),
            svg,
        });
    } else {
        s.push_str("<p>No readable history.</p>");
    }
    s.push_str("</div>");
    write_schedule(&mut s, run, &faults);
    write_roster(&mut s, run, &mut plots_out)?;
    s.push_str(r#"<h2>Timeline per process</h2><div id="timeline">"#);
    if run.history.is_some() {
        s.push_str(&timeline::render(ops, &faults));
    } else {
        s.push_str("<p>No readable history.</p>");
    }
    s.push_str("</div>");
    write_nodes(&mut s, run);
    write_options(&mut s, run);
    let _ = writeln!(s, "<script>{SCRIPT}</script></body></html>");
    Ok((s, plots_out))
}

/// Write `run_dir/report.html` and `run_dir/plots/*.svg` (harness.md §8) and
/// return the report's path. Missing or corrupt inputs do not fail the report:
/// they are listed at its top and their sections say so. Fails only if the
/// directory does not exist or the output cannot be written.
pub fn write_report(run_dir: &Path) -> Result<PathBuf, ReportError> {
    if !run_dir.is_dir() {
        return Err(ReportError::NotARunDir(run_dir.to_path_buf()));
    }
    let run = RunData::load(run_dir);
    let (html, plots) = render(&run)?;
    let pd = run_dir.join("plots");
    std::fs::create_dir_all(&pd).map_err(io(&pd))?;
    for p in plots {
        let path = pd.join(&p.file);
        std::fs::write(&path, p.svg).map_err(io(&path))?;
    }
    let out = run_dir.join("report.html");
    // Write then rename, so `serve` never hands out a half-written page.
    let tmp = run_dir.join(".report.html.tmp");
    std::fs::write(&tmp, html).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &out).map_err(io(&out))?;
    Ok(out)
}
