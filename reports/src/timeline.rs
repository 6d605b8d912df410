//! The timeline of operations per process (harness.md §8), paged so that a
//! 100,000-operation history still opens in a browser in under two seconds: at
//! most [`PER_PAGE`] operations per page and [`MAX_PAGES`] pages are rendered;
//! the rest is in `history.jsonl`, linked from the page.

use crate::html::{escape, escape_into, truncate};
use crate::plots::{css, fault_color, outcome_color, FaultInterval};
use rollcall_checkers::history::{Op, Process};
use std::fmt::Write;
use std::ops::Range;

/// Operations rendered per timeline page.
pub const PER_PAGE: usize = 2000;
/// Pages rendered at most; later operations are only in `history.jsonl`.
pub const MAX_PAGES: usize = 5;

/// Split `n` operations into pages of `per_page`, at most `max_pages` of them.
/// Returns the pages and how many operations were left out.
pub fn paginate(n: usize, per_page: usize, max_pages: usize) -> (Vec<Range<usize>>, usize) {
    let per_page = per_page.max(1);
    let pages: Vec<Range<usize>> = (0..n)
        .step_by(per_page)
        .take(max_pages)
        .map(|s| s..(s + per_page).min(n))
        .collect();
    let shown = pages.last().map(|r| r.end).unwrap_or(0);
    (pages, n - shown)
}

const LANE: f64 = 14.0;
const LEFT: f64 = 60.0;
const WIDTH: f64 = 1100.0;

fn page_svg(s: &mut String, ops: &[Op], faults: &[FaultInterval]) {
    let t0 = ops.iter().map(|o| o.invoke_time).min().unwrap_or(0);
    let t1 = ops
        .iter()
        .map(|o| o.complete_time.unwrap_or(o.invoke_time))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let mut procs: Vec<Process> = ops.iter().map(|o| o.process).collect();
    procs.sort();
    procs.dedup();
    let h = 24.0 + LANE * procs.len() as f64;
    let plot_w = WIDTH - LEFT - 10.0;
    let x = |t: u64| LEFT + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * plot_w;
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h:.0}" font-family="sans-serif" font-size="10">"#
    );
    for iv in faults {
        let (a, b) = ((iv.start * 1e9) as u64, (iv.stop * 1e9) as u64);
        if b < t0 || a > t1 {
            continue;
        }
        let (xa, xb) = (x(a.max(t0)), x(b.min(t1)));
        let _ = write!(
            s,
            r#"<rect x="{xa:.1}" y="0" width="{:.1}" height="{h:.0}" fill="{}" fill-opacity="0.18"><title>{}</title></rect>"#,
            (xb - xa).max(1.0),
            css(fault_color(&iv.f)),
            escape(&iv.f)
        );
    }
    for (i, p) in procs.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="4" y="{:.0}">p{}</text>"#,
            12.0 + LANE * i as f64 + 10.0,
            p
        );
    }
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="{:.0}">{:.3} s</text><text x="{WIDTH}" y="{:.0}" text-anchor="end" dx="-10">{:.3} s</text>"#,
        h - 2.0,
        t0 as f64 / 1e9,
        h - 2.0,
        t1 as f64 / 1e9
    );
    for o in ops {
        let lane = procs.binary_search(&o.process).unwrap_or(0);
        let xa = x(o.invoke_time);
        let xb = x(o.complete_time.unwrap_or(t1));
        let y = 12.0 + LANE * lane as f64;
        let _ = write!(
            s,
            r#"<rect x="{xa:.1}" y="{y:.0}" width="{:.1}" height="11" fill="{}"><title>"#,
            (xb - xa).max(1.5),
            css(outcome_color(o.kind))
        );
        let _ = write!(s, "#{} p{} {} {} ", o.invoke_index, o.process, o.f, o.kind);
        escape_into(s, &truncate(&o.value().to_string(), 60));
        if let Some(c) = o.complete_time {
            let _ = write!(s, " {:.1} ms", c.saturating_sub(o.invoke_time) as f64 / 1e6);
        }
        s.push_str("</title></rect>");
    }
    s.push_str("</svg>");
}

/// Render the paged timeline: a page selector (a few lines of inline script
/// toggling which page is displayed; every page is also an anchor) and one
/// SVG per page, processes as lanes, ops as bars coloured by outcome.
pub fn render(ops: &[Op], faults: &[FaultInterval]) -> String {
    let (pages, left_out) = paginate(ops.len(), PER_PAGE, MAX_PAGES);
    let mut s = String::with_capacity(ops.len().min(PER_PAGE * MAX_PAGES) * 200);
    let _ = write!(
        s,
        r#"<p>{} operations, {} per page; hover a bar for the operation. <span class="k-ok">ok</span> <span class="k-fail">fail</span> <span class="k-info">info</span></p>"#,
        ops.len(),
        PER_PAGE
    );
    if left_out > 0 {
        let _ = write!(
            s,
            r#"<p class="note">Only the first {} operations are drawn; the other {} are in <a href="history.jsonl">history.jsonl</a>.</p>"#,
            ops.len() - left_out,
            left_out
        );
    }
    s.push_str(r#"<nav class="pager" id="timeline-pager">"#);
    for (i, r) in pages.iter().enumerate() {
        let _ = write!(
            s,
            "<a href=\"#tl-page-{i}\" data-page=\"{i}\"{}>{}–{}</a> ",
            if i == 0 { " class=\"cur\"" } else { "" },
            r.start + 1,
            r.end
        );
    }
    s.push_str("</nav>");
    for (i, r) in pages.iter().enumerate() {
        let _ = write!(
            s,
            r#"<div class="tl-page" id="tl-page-{i}"{}>"#,
            if i == 0 { "" } else { r#" hidden"# }
        );
        page_svg(&mut s, &ops[r.clone()], faults);
        s.push_str("</div>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_caps_pages_and_counts_the_rest() {
        assert_eq!(paginate(0, 2000, 10), (vec![], 0));
        assert_eq!(paginate(10, 4, 10), (vec![0..4, 4..8, 8..10], 0));
        let (p, rest) = paginate(100_000, 2000, 5);
        assert_eq!(p.len(), 5);
        assert_eq!(p[4], 8_000..10_000);
        assert_eq!(rest, 90_000);
    }

    #[test]
    fn renders_lanes_and_escapes_values() {
        use rollcall_checkers::history::OpType;
        let ops: Vec<Op> = (0..5)
            .map(|i| Op {
                invoke_index: i * 2,
                complete_index: Some(i * 2 + 1),
                process: Process::Client((i % 2) as i64),
                f: "write".into(),
                invoke_value: std::sync::Arc::new(serde_json::json!(["<k>", i]).into()),
                complete_value: None,
                kind: if i == 3 { OpType::Fail } else { OpType::Ok },
                invoke_time: i * 1000,
                complete_time: Some(i * 1000 + 500),
                node: None,
                tx_id: None,
            })
            .collect();
        let h = render(&ops, &[]);
        assert_eq!(h.matches("class=\"tl-page\"").count(), 1);
        assert!(h.contains(">p0<") && h.contains(">p1<"));
        assert!(h.contains("&lt;k&gt;") && !h.contains("<k>"));
    }
}
