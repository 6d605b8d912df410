//! Latency, throughput and roster plots as SVG (harness.md §8: "latency and
//! throughput plots with fault bands, the roster over time"), drawn with
//! `plotters`' SVG backend and no system fonts, so they render offline.
//!
//! Plots are downsampled so that a 100,000-operation history still yields a page
//! that opens in well under two seconds: at most [`MAX_POINTS`] points per
//! series, keeping the extreme latencies of every time bucket.

use crate::error::ReportError;
use crate::run::BlockInfo;
use plotters::prelude::*;
use rollcall_checkers::history::{Op, OpType};
use rollcall_history::{NemesisEvent, Phase};

/// Most points drawn per (function, outcome) latency series.
pub const MAX_POINTS: usize = 3000;

/// A fault's active interval, paired from the nemesis's start/stop events.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultInterval {
    /// The fault's `f`, e.g. "partition".
    pub f: String,
    /// Start, seconds since the test began.
    pub start: f64,
    /// Stop, seconds (the final heal or the history's end if never stopped).
    pub stop: f64,
    /// False when no stop event was found and the end was assumed.
    pub closed: bool,
}

/// Pair the typed nemesis steps (harness.md §6 `phase` start/stop, or Jepsen's
/// `:start-*` / `:stop-*`) into intervals. Steps of one fault pair first-in
/// first-out; a start never stopped ends at the next `heal-all` or at `end_s`.
pub fn fault_intervals(
    events: impl IntoIterator<Item = NemesisEvent>,
    end_s: f64,
) -> Vec<FaultInterval> {
    let mut open: Vec<(String, f64)> = Vec::new();
    let mut out = Vec::new();
    for e in events {
        let t = e.time as f64 / 1e9;
        match e.phase {
            Phase::Start => open.push((e.fault.clone(), t)),
            Phase::Stop => {
                if let Some(pos) = open.iter().position(|(f, _)| *f == e.fault) {
                    let (f, start) = open.remove(pos);
                    out.push(FaultInterval {
                        f,
                        start,
                        stop: t,
                        closed: true,
                    });
                }
            }
            Phase::HealAll => {
                for (f, start) in open.drain(..) {
                    out.push(FaultInterval {
                        f,
                        start,
                        stop: t,
                        closed: true,
                    });
                }
            }
            Phase::Once => {}
        }
    }
    for (f, start) in open {
        out.push(FaultInterval {
            f,
            start,
            stop: end_s.max(start),
            closed: false,
        });
    }
    out.sort_by(|a, b| a.start.total_cmp(&b.start));
    out
}

/// A stable colour per fault name, shared by the plots, the timeline and the
/// legend, so one fault has one colour everywhere on the page.
pub fn fault_color(f: &str) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(204, 121, 167),
        RGBColor(0, 158, 115),
        RGBColor(213, 94, 0),
        RGBColor(0, 114, 178),
        RGBColor(240, 228, 66),
        RGBColor(150, 150, 150),
    ];
    let h = f
        .bytes()
        .fold(5381u32, |h, b| h.wrapping_mul(33).wrapping_add(b as u32));
    PALETTE[(h as usize) % PALETTE.len()]
}

/// CSS `rgb(...)` of a colour, for HTML legends.
pub fn css(c: RGBColor) -> String {
    format!("rgb({},{},{})", c.0, c.1, c.2)
}

/// The colour of an outcome: ok blue, fail red, info orange.
pub fn outcome_color(k: OpType) -> RGBColor {
    match k {
        OpType::Ok => RGBColor(31, 119, 180),
        OpType::Fail => RGBColor(214, 39, 40),
        OpType::Info => RGBColor(255, 127, 14),
        OpType::Invoke => RGBColor(120, 120, 120),
    }
}

/// Keep at most `max` points: split time into `max / 2` buckets and keep the
/// lowest and highest value of each, so outliers (the interesting part of a
/// latency plot under faults) survive. Input order does not matter.
pub fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let buckets = max / 2;
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
    let width = ((hi - lo) / buckets as f64).max(f64::MIN_POSITIVE);
    type MinMax = Option<((f64, f64), (f64, f64))>;
    let mut best: Vec<MinMax> = vec![None; buckets];
    for &p in points {
        let b = (((p.0 - lo) / width) as usize).min(buckets - 1);
        best[b] = Some(match best[b] {
            None => (p, p),
            Some((mn, mx)) => (
                if p.1 < mn.1 { p } else { mn },
                if p.1 > mx.1 { p } else { mx },
            ),
        });
    }
    let mut out = Vec::with_capacity(max);
    for (mn, mx) in best.into_iter().flatten() {
        out.push(mn);
        if mx != mn {
            out.push(mx);
        }
    }
    out
}

fn perr<E: std::fmt::Debug>(name: &str) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::Plot {
        name: name.to_string(),
        msg: format!("{e:?}"),
    }
}

const W: u32 = 1000;
const H: u32 = 320;

const KINDS: [OpType; 3] = [OpType::Ok, OpType::Fail, OpType::Info];

/// Latency of every completed operation of function `f` against its invoke
/// time, coloured by outcome, log scale, faults shaded. Info ops that never
/// completed have no latency and are not drawn.
pub fn latency_svg(
    name: &str,
    f: &str,
    ops: &[&Op],
    faults: &[FaultInterval],
    t_max: f64,
) -> Result<String, ReportError> {
    let mut series: Vec<(OpType, Vec<(f64, f64)>)> = Vec::new();
    let (mut ymin, mut ymax) = (f64::INFINITY, 0.0f64);
    for k in KINDS {
        let pts: Vec<(f64, f64)> = ops
            .iter()
            .filter(|o| o.kind == k)
            .filter_map(|o| {
                let c = o.complete_time?;
                let lat = (c.saturating_sub(o.invoke_time) as f64 / 1e6).max(0.01);
                Some((o.invoke_time as f64 / 1e9, lat))
            })
            .collect();
        let pts = downsample(&pts, MAX_POINTS);
        for p in &pts {
            ymin = ymin.min(p.1);
            ymax = ymax.max(p.1);
        }
        series.push((k, pts));
    }
    if !ymin.is_finite() {
        ymin = 0.01;
        ymax = 1.0;
    }
    let (ylo, yhi) = (ymin / 1.5, (ymax * 1.5).max(ymin * 2.0));
    let t_max = t_max.max(1e-3);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(perr(name))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("latency: {f}"), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_max, (ylo..yhi).log_scale())
            .map_err(perr(name))?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("latency (ms)")
            .light_line_style(WHITE)
            .draw()
            .map_err(perr(name))?;
        for iv in faults {
            let c = fault_color(&iv.f);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (iv.start, ylo),
                        (iv.stop.max(iv.start + t_max / 1000.0), yhi),
                    ],
                    c.mix(0.18).filled(),
                )))
                .map_err(perr(name))?;
        }
        for (k, pts) in &series {
            if pts.is_empty() {
                continue;
            }
            let c = outcome_color(*k);
            let label = format!("{} ({})", k.as_str(), pts.len());
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 2, c.mix(0.7).filled())))
                .map_err(perr(name))?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(perr(name))?;
        root.present().map_err(perr(name))?;
    }
    Ok(buf)
}

/// Completions per second over time, one line per outcome, faults shaded.
pub fn throughput_svg(
    name: &str,
    ops: &[Op],
    faults: &[FaultInterval],
    t_max: f64,
) -> Result<String, ReportError> {
    let t_max = t_max.max(1e-3);
    // At most ~300 buckets, at least one second wide (or the whole run if shorter).
    let width = (t_max / 300.0).max(1.0_f64.min(t_max / 10.0));
    let n = ((t_max / width).ceil() as usize).max(1);
    let mut counts = [vec![0u32; n], vec![0u32; n], vec![0u32; n]];
    for o in ops {
        let Some(c) = o.complete_time else { continue };
        let i = match o.kind {
            OpType::Ok => 0,
            OpType::Fail => 1,
            _ => 2,
        };
        let b = ((c as f64 / 1e9 / width) as usize).min(n - 1);
        counts[i][b] += 1;
    }
    let ymax = counts
        .iter()
        .flat_map(|v| v.iter())
        .map(|&c| c as f64 / width)
        .fold(1.0, f64::max)
        * 1.15;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(perr(name))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("throughput", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_max, 0f64..ymax)
            .map_err(perr(name))?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("completions/s")
            .light_line_style(WHITE)
            .draw()
            .map_err(perr(name))?;
        for iv in faults {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (iv.start, 0.0),
                        (iv.stop.max(iv.start + t_max / 1000.0), ymax),
                    ],
                    fault_color(&iv.f).mix(0.18).filled(),
                )))
                .map_err(perr(name))?;
        }
        for (i, k) in KINDS.iter().enumerate() {
            let total: u32 = counts[i].iter().sum();
            if total == 0 && *k != OpType::Ok {
                continue;
            }
            let c = outcome_color(*k);
            let pts = counts[i]
                .iter()
                .enumerate()
                .map(|(b, &v)| ((b as f64 + 0.5) * width, v as f64 / width));
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(perr(name))?
                .label(format!("{} ({total})", k.as_str()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(perr(name))?;
        root.present().map_err(perr(name))?;
    }
    Ok(buf)
}

/// One change of the roster along the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterChange {
    /// Height of the block that made the change.
    pub height: u64,
    /// Epoch of that block.
    pub epoch: u64,
    /// Roster size after the change.
    pub size: i64,
    /// "add" or "evict".
    pub what: &'static str,
    /// Which node (address for adds, id for evictions).
    pub node: String,
}

/// Roster size per height from the initial size and the chain's AddNode
/// transactions and evictions (protocol: an add or an eviction changes the
/// roster when its block commits).
pub fn roster_changes(initial: i64, chain: &[BlockInfo]) -> Vec<RosterChange> {
    let mut size = initial;
    let mut out = Vec::new();
    for b in chain {
        for a in &b.adds {
            size += 1;
            out.push(RosterChange {
                height: b.height,
                epoch: b.epoch,
                size,
                what: "add",
                node: a.clone(),
            });
        }
        if let Some(e) = &b.evict {
            size -= 1;
            out.push(RosterChange {
                height: b.height,
                epoch: b.epoch,
                size,
                what: "evict",
                node: e.clone(),
            });
        }
    }
    out
}

/// Roster size (step line) and epoch (dashed) against height; adds marked with
/// green triangles, evictions with red crosses.
pub fn roster_svg(
    name: &str,
    initial: i64,
    chain: &[BlockInfo],
    changes: &[RosterChange],
) -> Result<String, ReportError> {
    let h_max = chain.iter().map(|b| b.height).max().unwrap_or(1).max(1) as f64;
    let e_max = chain.iter().map(|b| b.epoch).max().unwrap_or(0) as f64;
    let s_max = changes
        .iter()
        .map(|c| c.size)
        .chain(std::iter::once(initial))
        .max()
        .unwrap_or(1) as f64;
    let ymax = s_max.max(e_max) + 1.0;
    let mut steps = vec![(0.0, initial as f64)];
    for c in changes {
        if let Some(&(_, prev)) = steps.last() {
            steps.push((c.height as f64, prev));
        }
        steps.push((c.height as f64, c.size as f64));
    }
    if let Some(&(_, last)) = steps.last() {
        steps.push((h_max, last));
    }
    // Epoch: one point where it changes, step-shaped.
    let mut epochs: Vec<(f64, f64)> = Vec::new();
    let mut cur: Option<u64> = None;
    for b in chain {
        if cur != Some(b.epoch) {
            if let Some(e) = cur {
                epochs.push((b.height as f64, e as f64));
            }
            epochs.push((b.height as f64, b.epoch as f64));
            cur = Some(b.epoch);
        }
    }
    if let Some(e) = cur {
        epochs.push((h_max, e as f64));
    }
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(perr(name))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("roster size and epoch by height", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..h_max, 0f64..ymax)
            .map_err(perr(name))?;
        chart
            .configure_mesh()
            .x_desc("height")
            .y_desc("nodes / epoch")
            .light_line_style(WHITE)
            .draw()
            .map_err(perr(name))?;
        chart
            .draw_series(LineSeries::new(steps, BLUE.stroke_width(2)))
            .map_err(perr(name))?
            .label("roster size")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(LineSeries::new(epochs, grey.stroke_width(1)))
            .map_err(perr(name))?
            .label("epoch")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], grey));
        let green = RGBColor(0, 150, 60);
        chart
            .draw_series(
                changes.iter().filter(|c| c.what == "add").map(|c| {
                    TriangleMarker::new((c.height as f64, c.size as f64), 7, green.filled())
                }),
            )
            .map_err(perr(name))?
            .label("add")
            .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 5, green.filled()));
        chart
            .draw_series(
                changes
                    .iter()
                    .filter(|c| c.what == "evict")
                    .map(|c| Cross::new((c.height as f64, c.size as f64), 7, RED.stroke_width(3))),
            )
            .map_err(perr(name))?
            .label("eviction")
            .legend(|(x, y)| Cross::new((x + 8, y), 5, RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(perr(name))?;
        root.present().map_err(perr(name))?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_checkers::history::{Event, Process};
    use serde_json::{json, Value};

    fn nem(time: u64, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time,
            process: Process::Nemesis,
            kind: OpType::Info,
            f: f.into(),
            value: std::sync::Arc::new(value.into()),
            node: None,
            tx_id: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn shading_intervals_pair_start_and_stop() {
        let ev = vec![
            nem(1_000_000_000, "partition", json!({"phase": "start"})),
            nem(2_000_000_000, "kill", json!({"phase": "start"})),
            nem(3_000_000_000, "partition", json!({"phase": "stop"})),
            nem(4_000_000_000, "pause", json!({"phase": "start"})),
            nem(5_000_000_000, "heal-all", json!({})),
            nem(6_000_000_000, "flaky", json!({"phase": "start"})),
            nem(6_500_000_000, "slow", json!({"phase": "stop"})),
            // Jepsen's own form, as `rollcall check` reads it from an EDN history.
            nem(7_000_000_000, "start-partition", json!(":majority")),
            nem(8_000_000_000, "stop-partition", json!(null)),
        ];
        let iv = fault_intervals(ev.iter().filter_map(NemesisEvent::from_event), 9.0);
        assert_eq!(iv.len(), 5);
        assert_eq!(
            (iv[0].f.as_str(), iv[0].start, iv[0].stop),
            ("partition", 1.0, 3.0)
        );
        assert_eq!(
            (iv[1].f.as_str(), iv[1].stop, iv[1].closed),
            ("kill", 5.0, true)
        );
        assert_eq!((iv[2].f.as_str(), iv[2].stop), ("pause", 5.0));
        assert_eq!(
            (iv[3].f.as_str(), iv[3].stop, iv[3].closed),
            ("flaky", 9.0, false)
        );
        assert_eq!(
            (iv[4].f.as_str(), iv[4].start, iv[4].stop),
            ("partition", 7.0, 8.0)
        );
    }

    #[test]
    fn downsampling_caps_and_keeps_extremes() {
        let pts: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, (i % 97) as f64)).collect();
        let mut pts = pts;
        pts[50_000].1 = 1e6;
        let d = downsample(&pts, 1000);
        assert!(d.len() <= 1000);
        assert!(d.iter().any(|p| p.1 == 1e6));
        assert_eq!(downsample(&pts[..10], 1000).len(), 10);
    }

    #[test]
    fn roster_changes_follow_adds_and_evictions() {
        let chain = vec![
            BlockInfo {
                height: 1,
                epoch: 0,
                adds: vec![],
                evict: None,
            },
            BlockInfo {
                height: 2,
                epoch: 0,
                adds: vec!["n5".into()],
                evict: None,
            },
            BlockInfo {
                height: 3,
                epoch: 1,
                adds: vec![],
                evict: Some("x".into()),
            },
        ];
        let c = roster_changes(4, &chain);
        assert_eq!(c.iter().map(|c| c.size).collect::<Vec<_>>(), vec![5, 4]);
        let svg = roster_svg("roster.svg", 4, &chain, &c).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"));
    }
}
