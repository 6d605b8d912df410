//! Elle's consistency models and anomaly lattice, ported table for table from
//! `elle/consistency_model.clj` (jepsen-io/elle): which anomalies imply which
//! (`implied-anomalies`), which models imply which (`models`), what each model
//! directly proscribes (`direct-proscribed-anomalies`), and the derived
//! questions Elle asks of them (`anomalies-prohibited-by`,
//! `anomalies->impossible-models`, `boundary`).

use std::collections::BTreeSet;

/// A set of model or anomaly names.
pub type Names = BTreeSet<&'static str>;

/// `implied-anomalies`: a → anomalies a also is an instance of.
const IMPLIED: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single-item",
        &["G-single", "G-single-item-process", "G-nonadjacent-item"],
    ),
    (
        "G-single-item-process",
        &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
    ),
    (
        "G-single-item-realtime",
        &["G-single-realtime", "G-nonadjacent-item-realtime"],
    ),
    ("G-single", &["G-nonadjacent", "GSIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    (
        "G-nonadjacent-item",
        &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
    ),
    (
        "G-nonadjacent-item-process",
        &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
    ),
    (
        "G-nonadjacent-item-realtime",
        &["G2-item-realtime", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2-process", &["G2-realtime"]),
    ("GSIa", &["GSI"]),
    ("GSIb", &["GSI"]),
    ("incompatible-order", &["G1a"]),
    ("future-read", &["G1c"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["write-skew", "G2-item"]),
    ("write-skew", &["G2"]),
];

/// `canonical-model-names`: friendly name → canonical name.
const CANONICAL: &[(&str, &str)] = &[
    ("consistent-view", "PL-2+"),
    ("conflict-serializable", "PL-3"),
    ("cursor-stability", "PL-CS"),
    ("forward-consistent-view", "PL-FCV"),
    ("monotonic-snapshot-read", "PL-MSR"),
    ("monotonic-view", "PL-2L"),
    ("read-committed", "PL-2"),
    ("read-uncommitted", "PL-1"),
    ("repeatable-read", "PL-2.99"),
    ("serializable", "PL-3"),
    ("snapshot-isolation", "PL-SI"),
    ("strict-serializable", "PL-SS"),
    ("strong-serializable", "PL-SS"),
    ("update-serializable", "PL-3U"),
    ("strong-session-read-uncommitted", "strong-session-PL-1"),
    ("strong-session-read-committed", "strong-session-PL-2"),
    ("strong-read-uncommitted", "strong-PL-1"),
    ("strong-read-committed", "strong-PL-2"),
];

/// `models`: a → models every history satisfying a also satisfies (names as
/// written in Elle; canonicalised on use).
const MODEL_GRAPH: &[(&str, &[&str])] = &[
    ("causal-cerone", &["read-atomic"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    ("conflict-serializable", &["view-serializable"]),
    ("cursor-stability", &["read-committed", "PL-2"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("PL-2", &["PL-1"]),
    ("PL-3", &["repeatable-read", "update-serializable"]),
    ("update-serializable", &["forward-consistent-view"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("monotonic-view", &["PL-2"]),
    ("monotonic-snapshot-read", &["PL-2"]),
    (
        "parallel-snapshot-isolation",
        &["causal-cerone", "update-atomic"],
    ),
    ("prefix", &["causal-cerone"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("read-committed", &["read-uncommitted"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    ("update-atomic", &["read-atomic"]),
    (
        "serializable",
        &["repeatable-read", "snapshot-isolation", "view-serializable"],
    ),
    ("session-serializable", &["1SR"]),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    (
        "strict-serializable",
        &[
            "PL-3",
            "serializable",
            "linearizable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
    ("strong-session-PL-1", &["PL-1"]),
    ("strong-session-PL-2", &["PL-2", "strong-session-PL-1"]),
    ("strong-PL-1", &["strong-session-PL-1"]),
    ("strong-PL-2", &["strong-session-PL-2", "strong-PL-1"]),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-PL-2"],
    ),
    ("strong-serializable", &["session-serializable"]),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-PL-2"],
    ),
    ("linearizable", &["sequential"]),
    ("sequential", &["causal"]),
    ("causal", &["writes-follow-reads", "PRAM"]),
    (
        "PRAM",
        &["monotonic-reads", "monotonic-writes", "read-your-writes"],
    ),
];

/// `direct-proscribed-anomalies`: model → anomalies it forbids beyond weaker models.
const PROSCRIBED: &[(&str, &[&str])] = &[
    ("causal-cerone", &["internal", "G1a"]),
    ("cursor-stability", &["G1", "G-cursor", "lost-update"]),
    ("monotonic-view", &["G1", "G-monotonic"]),
    ("monotonic-snapshot-read", &["G1", "G-MSR"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1", "G-SIb"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    (
        "PL-3",
        &["G1", "G2", "predicate-read-miss", "PL-3-cycle-exists"],
    ),
    ("PL-2", &["G1", "PL-2-cycle-exists"]),
    (
        "PL-1",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "PL-1-cycle-exists",
        ],
    ),
    ("prefix", &["internal", "G1a"]),
    ("serializable", &["internal"]),
    (
        "snapshot-isolation",
        &[
            "internal",
            "G1",
            "G-SI",
            "G-nonadjacent",
            "PL-SI-cycle-exists",
        ],
    ),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    (
        "repeatable-read",
        &["G1", "G2-item", "PL-2.99-cycle-exists", "lost-update"],
    ),
    ("update-atomic", &["lost-update"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"],
    ),
    (
        "strong-session-PL-1",
        &["strong-session-PL-1-cycle-exists", "G0-process"],
    ),
    (
        "strong-session-PL-2",
        &["strong-session-PL-2-cycle-exists", "G1c-process"],
    ),
    ("strong-PL-1", &["strong-PL-1-cycle-exists", "G0-realtime"]),
    ("strong-PL-2", &["strong-PL-2-cycle-exists", "G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &[
            "internal",
            "G1-process",
            "G-nonadjacent-process",
            "strong-session-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-snapshot-isolation",
        &[
            "internal",
            "G1-realtime",
            "G-nonadjacent-realtime",
            "strong-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-session-serializable",
        &[
            "G1-process",
            "G2-process",
            "strong-session-serializable-cycle-exists",
        ],
    ),
    ("update-serializable", &["G1", "G-update"]),
];

/// The canonical name of a model (`canonical-model-name`); unknown names pass through.
pub fn canonical(m: &str) -> &str {
    CANONICAL
        .iter()
        .find(|(f, _)| *f == m)
        .map(|(_, c)| *c)
        .unwrap_or(m)
}

/// The friendly name of a canonical model (`friendly-model-name`): PL-3 is
/// "serializable", PL-SS "strict-serializable".
pub fn friendly(m: &'static str) -> &'static str {
    match m {
        "PL-3" => "serializable",
        "PL-SS" => "strict-serializable",
        _ => CANONICAL
            .iter()
            .find(|(_, c)| *c == m)
            .map(|(f, _)| *f)
            .unwrap_or(m),
    }
}

fn intern(m: &str) -> Option<&'static str> {
    let all = MODEL_GRAPH
        .iter()
        .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
        .chain(CANONICAL.iter().flat_map(|(a, b)| [*a, *b]));
    all.into_iter().find(|x| *x == m)
}

/// Every model Elle knows (`all-models`), friendly and canonical names alike.
pub fn all_models() -> Names {
    MODEL_GRAPH
        .iter()
        .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
        .chain(CANONICAL.iter().flat_map(|(a, b)| [*a, *b]))
        .collect()
}

/// The static spelling of a known model name (`validate-models`), or `None`.
pub fn known_model(m: &str) -> Option<&'static str> {
    intern(m)
}

/// Canonical model vertices: the graph `models` after `map-vertices canonical`.
fn model_vertices() -> Names {
    MODEL_GRAPH
        .iter()
        .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
        .map(canonical_static)
        .collect()
}

fn canonical_static(m: &'static str) -> &'static str {
    CANONICAL
        .iter()
        .find(|(f, _)| *f == m)
        .map(|(_, c)| *c)
        .unwrap_or(m)
}

fn model_out(m: &str) -> Vec<&'static str> {
    MODEL_GRAPH
        .iter()
        .filter(|(a, _)| canonical(a) == m)
        .flat_map(|(_, bs)| bs.iter().map(|b| canonical_static(b)))
        .collect()
}

fn model_in(m: &str) -> Vec<&'static str> {
    MODEL_GRAPH
        .iter()
        .filter(|(_, bs)| bs.iter().any(|b| canonical(b) == m))
        .map(|(a, _)| canonical_static(a))
        .collect()
}

fn table_out(t: &[(&'static str, &'static [&'static str])], a: &str) -> Vec<&'static str> {
    t.iter()
        .filter(|(x, _)| *x == a)
        .flat_map(|(_, bs)| bs.iter().copied())
        .collect()
}

fn table_in(t: &[(&'static str, &'static [&'static str])], b: &str) -> Vec<&'static str> {
    t.iter()
        .filter(|(_, bs)| bs.contains(&b))
        .map(|(a, _)| *a)
        .collect()
}

/// Everything reachable from `start` (inclusive) by `next`: Elle's `g/bfs`.
fn reach(
    start: impl IntoIterator<Item = &'static str>,
    next: impl Fn(&str) -> Vec<&'static str>,
) -> Names {
    let mut seen = Names::new();
    let mut stack: Vec<&'static str> = start.into_iter().collect();
    while let Some(x) = stack.pop() {
        if seen.insert(x) {
            stack.extend(next(x));
        }
    }
    seen
}

/// Every anomaly the lattice names (`all-anomalies`).
pub fn all_anomalies() -> Names {
    IMPLIED
        .iter()
        .chain(PROSCRIBED.iter())
        .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
        .filter(|a| !MODEL_GRAPH.iter().any(|(m, _)| m == a) && known_model(a).is_none())
        .collect()
}

/// `all-implied-anomalies`: the anomalies and every anomaly they imply.
pub fn all_implied_anomalies(anomalies: &Names) -> Names {
    reach(anomalies.iter().copied(), |a| table_out(IMPLIED, a))
}

/// `all-anomalies-implying`: the anomalies and every anomaly implying one of them.
pub fn all_anomalies_implying(anomalies: &Names) -> Names {
    reach(anomalies.iter().copied(), |a| table_in(IMPLIED, a))
}

/// `all-impossible-models`: models that imply an impossible one are impossible too.
pub fn all_impossible_models(models: &Names) -> Names {
    reach(models.iter().map(|m| canonical_static(m)), model_in)
}

/// `anomalies-prohibited-by`: what must not appear if all `models` hold.
pub fn anomalies_prohibited_by(models: &Names) -> Names {
    let implied = reach(models.iter().map(|m| canonical_static(m)), model_out);
    let direct: Names = implied
        .iter()
        .flat_map(|m| {
            PROSCRIBED
                .iter()
                .filter(move |(p, _)| canonical(p) == *m)
                .flat_map(|(_, an)| an.iter().copied())
        })
        .collect();
    all_anomalies_implying(&direct)
}

/// `anomalies->impossible-models`: the models these anomalies rule out.
pub fn impossible_models(anomalies: &Names) -> Names {
    let direct: Names = all_implied_anomalies(anomalies)
        .iter()
        .flat_map(|a| {
            PROSCRIBED
                .iter()
                .filter(move |(_, an)| an.contains(a))
                .map(|(m, _)| canonical_static(m))
        })
        .collect();
    all_impossible_models(&direct)
}

/// `weakest-models`: drop every model that implies another one in the set.
pub fn weakest_models(models: &Names) -> Names {
    let mut out = models.clone();
    for m in models {
        let below = reach([*m], model_out);
        if out.iter().any(|o| o != m && below.contains(o)) {
            out.remove(m);
        }
    }
    out
}

/// Elle's `boundary` with friendly names: `not` is the weakest ruled-out models,
/// `also_not` the rest of the ruled-out ones, `possible` the models still open.
pub fn boundary(anomalies: &Names) -> (Names, Names, Names) {
    let impossible = impossible_models(anomalies);
    let not = weakest_models(&impossible);
    let also: Names = impossible.difference(&not).copied().collect();
    let possible: Names = model_vertices()
        .difference(&impossible)
        .map(|m| friendly(m))
        .collect();
    let f = |s: &Names| s.iter().map(|m| friendly(m)).collect::<Names>();
    (f(&not), f(&also), possible)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(xs: &[&'static str]) -> Names {
        xs.iter().copied().collect()
    }

    #[test]
    fn g_single_rules_out_si_not_repeatable_read_ancestors() {
        let (not, also, possible) = boundary(&s(&["G-single-item"]));
        assert!(not.contains("consistent-view"), "{not:?}");
        assert!(also.contains("serializable") && also.contains("snapshot-isolation"));
        assert!(possible.contains("read-committed"));
        assert!(!possible.contains("strict-serializable"));
    }

    #[test]
    fn g_nonadjacent_rules_out_snapshot_isolation() {
        let m = impossible_models(&s(&["G-nonadjacent-item-process"]));
        assert!(m.contains("strong-session-snapshot-isolation"), "{m:?}");
        assert!(!m.contains("PL-SI"), "{m:?}");
        let m = impossible_models(&s(&["G-nonadjacent-item"]));
        assert!(m.contains("PL-SI") && m.contains("PL-2.99"), "{m:?}");
    }

    #[test]
    fn prohibited_by_strict_serializable_covers_every_cycle_and_direct_anomaly() {
        let p = anomalies_prohibited_by(&s(&["strict-serializable"]));
        for a in [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "G-single-item-realtime",
            "G2-item",
            "internal",
            "future-read",
            "dirty-update",
            "lost-update",
            "incompatible-order",
            "PL-SS-cycle-exists",
        ] {
            assert!(p.contains(a), "{a} missing");
        }
        let rc = anomalies_prohibited_by(&s(&["read-committed"]));
        assert!(rc.contains("G1c") && !rc.contains("G2-item") && !rc.contains("lost-update"));
    }

    #[test]
    fn names_canonicalise_both_ways() {
        assert_eq!(canonical("serializable"), "PL-3");
        assert_eq!(friendly("PL-3"), "serializable");
        assert!(known_model("strong-read-committed").is_some());
        assert!(known_model("bogus").is_none());
    }
}
