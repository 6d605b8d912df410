//! An Elle-style dependency cycle drawn as an SVG graph (harness.md §7: Elle
//! "cycles ... with the offending transactions"; §8: each anomaly explained).
//! Transactions sit on a circle; each edge is a curved arrow labelled with its
//! kind (ww, wr, rw, realtime, process) and key, so a reader sees the cycle at
//! a glance instead of parsing the explanation.

use crate::html::escape;
use serde_json::Value;
use std::fmt::Write;

/// One edge of a cycle as the elle checker records it in `extra.edges`.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleEdge {
    /// Invoke index of the source transaction.
    pub from: u64,
    /// Invoke index of the target transaction.
    pub to: u64,
    /// ww, wr, rw, realtime or process.
    pub kind: String,
    /// The key the dependency is on, if any.
    pub key: Option<String>,
}

/// Read the edges of an anomaly's `extra` (`{"cycle": [..], "edges": [{"from",
/// "to", "kind", "key"}]}`); `None` when it carries no cycle.
pub fn parse_edges(extra: &Value) -> Option<Vec<CycleEdge>> {
    let edges = extra.get("edges")?.as_array()?;
    let out: Vec<CycleEdge> = edges
        .iter()
        .filter_map(|e| {
            Some(CycleEdge {
                from: e.get("from")?.as_u64()?,
                to: e.get("to")?.as_u64()?,
                kind: e
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                key: e.get("key").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Colour of an edge kind, also used in the legend.
pub fn edge_color(kind: &str) -> &'static str {
    match kind {
        "ww" => "#d62728",
        "wr" => "#1f77b4",
        "rw" => "#9467bd",
        "realtime" => "#7f7f7f",
        "process" => "#2ca02c",
        _ => "#333333",
    }
}

/// Draw the cycle. `id` makes the arrow-marker ids unique when several cycles
/// are inlined in one page.
pub fn cycle_svg(edges: &[CycleEdge], id: &str) -> String {
    let mut nodes: Vec<u64> = Vec::new();
    for e in edges {
        for n in [e.from, e.to] {
            if !nodes.contains(&n) {
                nodes.push(n);
            }
        }
    }
    let n = nodes.len().max(1);
    let r = (50.0 + 22.0 * n as f64).min(260.0);
    let node_r = 22.0;
    let size = 2.0 * (r + 60.0);
    let c = size / 2.0;
    let pos = |t: u64| -> (f64, f64) {
        let i = nodes.iter().position(|&x| x == t).unwrap_or(0);
        let a = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / n as f64;
        (c + r * a.cos(), c + r * a.sin())
    };
    let id = escape(id);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="cycle" xmlns="http://www.w3.org/2000/svg" width="{size:.0}" height="{size:.0}" viewBox="0 0 {size:.0} {size:.0}" font-family="sans-serif" font-size="12"><defs>"#
    );
    for kind in ["ww", "wr", "rw", "realtime", "process", "other"] {
        let _ = write!(
            s,
            r#"<marker id="{id}-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            edge_color(kind)
        );
    }
    s.push_str("</defs>");
    for (i, e) in edges.iter().enumerate() {
        let (x1, y1) = pos(e.from);
        let (x2, y2) = pos(e.to);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-6);
        let (ux, uy) = (dx / len, dy / len);
        // Perpendicular bend (to the right of the direction): opposite edges
        // between the same two transactions bend apart; parallel ones fan out.
        let parallel = edges[..i]
            .iter()
            .filter(|p| p.from == e.from && p.to == e.to)
            .count() as f64;
        let bend = 30.0 + 22.0 * parallel;
        let (px, py) = (-uy, ux);
        let (mx, my) = ((x1 + x2) / 2.0 + px * bend, (y1 + y2) / 2.0 + py * bend);
        // Start and end on the node circles, towards the control point.
        let shorten = |x: f64, y: f64| {
            let (vx, vy) = (mx - x, my - y);
            let l = (vx * vx + vy * vy).sqrt().max(1e-6);
            (x + vx / l * node_r, y + vy / l * node_r)
        };
        let (sx, sy) = shorten(x1, y1);
        let (ex, ey) = shorten(x2, y2);
        let known = ["ww", "wr", "rw", "realtime", "process"].contains(&e.kind.as_str());
        let mk = if known { e.kind.as_str() } else { "other" };
        let col = edge_color(&e.kind);
        let label = match &e.key {
            Some(k) => format!("{} {}", e.kind, k),
            None => e.kind.clone(),
        };
        // Label at the curve's midpoint (t = 0.5 of the quadratic Bézier).
        let (lx, ly) = (
            0.25 * sx + 0.5 * mx + 0.25 * ex,
            0.25 * sy + 0.5 * my + 0.25 * ey,
        );
        let _ = write!(
            s,
            r#"<path class="edge" d="M{sx:.1},{sy:.1} Q{mx:.1},{my:.1} {ex:.1},{ey:.1}" fill="none" stroke="{col}" stroke-width="2" marker-end="url(#{id}-{mk})"/><text x="{lx:.1}" y="{ly:.1}" fill="{col}" text-anchor="middle" dy="-3" paint-order="stroke" stroke="white" stroke-width="3">{}</text>"#,
            escape(&label)
        );
    }
    for &t in &nodes {
        let (x, y) = pos(t);
        let _ = write!(
            s,
            r##"<g class="txn"><circle cx="{x:.1}" cy="{y:.1}" r="{node_r}" fill="#fff8dc" stroke="#333" stroke-width="1.5"/><text x="{x:.1}" y="{y:.1}" text-anchor="middle" dy="4">T{t}</text></g>"##
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_every_transaction_and_labelled_edge() {
        let extra = json!({"cycle": [3, 9, 12], "edges": [
            {"from": 3, "to": 9, "kind": "ww", "key": "k1"},
            {"from": 9, "to": 12, "kind": "rw", "key": "k<2>"},
            {"from": 12, "to": 3, "kind": "realtime", "key": null}
        ]});
        let e = parse_edges(&extra).unwrap();
        assert_eq!(e.len(), 3);
        let svg = cycle_svg(&e, "c1");
        assert_eq!(svg.matches("class=\"txn\"").count(), 3);
        assert_eq!(svg.matches("class=\"edge\"").count(), 3);
        assert!(svg.contains(">T3<") && svg.contains(">T12<"));
        assert!(
            svg.contains("ww k1") && svg.contains("rw k&lt;2&gt;") && svg.contains(">realtime<")
        );
        assert!(svg.contains("url(#c1-ww)"));
        assert!(parse_edges(&json!({"key": "k"})).is_none());
    }

    #[test]
    fn two_transaction_cycle_bends_apart() {
        let e = vec![
            CycleEdge {
                from: 1,
                to: 2,
                kind: "wr".into(),
                key: None,
            },
            CycleEdge {
                from: 2,
                to: 1,
                kind: "rw".into(),
                key: None,
            },
        ];
        let svg = cycle_svg(&e, "x");
        let ds: Vec<&str> = svg
            .match_indices(" Q")
            .map(|(i, _)| &svg[i..i + 14])
            .collect();
        assert_eq!(ds.len(), 2);
        assert_ne!(ds[0], ds[1]);
    }
}
