//! Linearizability of register histories (harness.md §7 `linearizable`):
//! Wing–Gong/Lowe search split per key (P-compositionality), memoised on
//! (set of linearized ops, register state), with a time limit that yields
//! Unknown, never a hang.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::history::{History, Op, OpType};
use crate::result::{timed, Anomaly, CheckResult, Checker, Validity};

/// Checks `read`/`write`/`cas` register operations for linearizability.
#[derive(Debug, Clone)]
pub struct LinearizableChecker {
    /// Budget for the whole history; exceeding it yields Unknown (harness.md §7).
    pub time_limit: Duration,
    /// Cap on memoised search states, so a pathological history yields Unknown
    /// instead of exhausting memory.
    pub max_states: usize,
}

impl Default for LinearizableChecker {
    fn default() -> Self {
        LinearizableChecker {
            time_limit: Duration::from_secs(10),
            max_states: 10_000_000,
        }
    }
}

impl LinearizableChecker {
    /// A checker with the given time limit.
    pub fn with_time_limit(time_limit: Duration) -> Self {
        LinearizableChecker {
            time_limit,
            ..Default::default()
        }
    }
}

/// Register state / value, interned; 0 is nil (the register's initial value).
type Val = u32;

#[derive(Debug, Clone, Copy)]
enum RegF {
    Read(Val),
    Write(Val),
    Cas(Val, Val),
}

#[derive(Debug, Clone)]
struct RegOp {
    f: RegF,
    invoke: u64,
    /// `u64::MAX` for info ops: they may take effect at any time, or never.
    end: u64,
    /// Ok ops must be linearized; info ops may be left out.
    must: bool,
}

struct Interner {
    ids: HashMap<String, Val>,
    names: Vec<Value>,
}

impl Interner {
    fn new() -> Self {
        Interner {
            ids: HashMap::new(),
            names: vec![Value::Null],
        }
    }
    fn id(&mut self, v: &Value) -> Val {
        if v.is_null() {
            return 0;
        }
        let s = v.to_string();
        if let Some(&i) = self.ids.get(&s) {
            return i;
        }
        let i = self.names.len() as Val;
        self.ids.insert(s, i);
        self.names.push(v.clone());
        i
    }
    fn name(&self, v: Val) -> String {
        self.names
            .get(v as usize)
            .map(|x| x.to_string())
            .unwrap_or_else(|| "?".into())
    }
}

/// A register key normalised to a string (integer keys become their decimal).
pub(crate) fn key_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn pair(v: &Value) -> Option<(&Value, &Value)> {
    match v.as_array().map(|a| a.as_slice()) {
        Some([k, x]) => Some((k, x)),
        _ => None,
    }
}

enum Parsed {
    Skip,
    Malformed,
    Op(String, RegF),
}

fn parse_op(op: &Op, vals: &mut Interner) -> Parsed {
    match (op.f.as_str(), op.kind) {
        ("read" | "write" | "cas", OpType::Fail) => Parsed::Skip,
        // A read that did not complete constrains nothing.
        ("read", OpType::Info | OpType::Invoke) => Parsed::Skip,
        ("read", OpType::Ok) => match op.complete_value.as_deref().map(|v| &**v).and_then(pair) {
            Some((k, v)) => match key_string(k) {
                Some(k) => Parsed::Op(k, RegF::Read(vals.id(v))),
                None => Parsed::Malformed,
            },
            None => Parsed::Malformed,
        },
        ("write", _) => match pair(&op.invoke_value) {
            Some((k, v)) => match key_string(k) {
                Some(k) => Parsed::Op(k, RegF::Write(vals.id(v))),
                None => Parsed::Malformed,
            },
            None => Parsed::Malformed,
        },
        ("cas", _) => match pair(&op.invoke_value) {
            Some((k, v)) => match (key_string(k), pair(v)) {
                (Some(k), Some((o, n))) => Parsed::Op(k, RegF::Cas(vals.id(o), vals.id(n))),
                _ => Parsed::Malformed,
            },
            None => Parsed::Malformed,
        },
        _ => Parsed::Skip,
    }
}

fn step(state: Val, f: RegF) -> Option<Val> {
    match f {
        RegF::Read(v) => (v == state).then_some(state),
        RegF::Write(v) => Some(v),
        RegF::Cas(o, n) => (o == state).then_some(n),
    }
}

/// Outcome of the search on one key.
#[derive(Debug)]
enum KeyOutcome {
    Linearizable,
    /// Timed out or hit the state cap.
    Unknown(&'static str),
    /// The op (position in the key's op list) whose completion could not be
    /// passed at the deepest point of the search, and the states seen there.
    Nonlinearizable {
        stuck: usize,
        states: Vec<Val>,
    },
}

const NONE: usize = usize::MAX;

/// Wing–Gong/Lowe search over one key's operations, in Porcupine's formulation:
/// a doubly linked list of call/return entries ordered by history index; a call
/// may be linearized if the model allows it and (linearized set, state) is new;
/// meeting a return means the op was not linearized in time → backtrack.
fn wgl(ops: &[RegOp], deadline: Instant, max_states: usize) -> KeyOutcome {
    // entries: (position, is_call, op)
    let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, o) in ops.iter().enumerate() {
        entries.push((o.invoke, true, i));
        if o.end != u64::MAX {
            entries.push((o.end, false, i));
        }
    }
    entries.sort_by_key(|e| (e.0, !e.1));
    let n = entries.len();
    // Node n is the head sentinel.
    let mut next: Vec<usize> = (0..=n)
        .map(|i| if i + 1 < n { i + 1 } else { NONE })
        .collect();
    let mut prev: Vec<usize> = (0..=n).map(|i| if i == 0 { n } else { i - 1 }).collect();
    if n > 0 {
        if let Some(x) = next.get_mut(n) {
            *x = 0;
        }
        if let Some(x) = next.get_mut(n - 1) {
            *x = NONE;
        }
    } else if let Some(x) = next.get_mut(0) {
        *x = NONE;
    }
    let mut ret_of: Vec<usize> = vec![NONE; ops.len()];
    for (ei, e) in entries.iter().enumerate() {
        if !e.1 {
            if let Some(r) = ret_of.get_mut(e.2) {
                *r = ei;
            }
        }
    }
    // The memo of visited (linearized set, state) pairs holds 128-bit Zobrist
    // fingerprints: each op has a random 128-bit key, a set is the XOR of its
    // ops' keys (updated in O(1) per step), the state is mixed in. A false match
    // needs a 128-bit collision, far less likely than a hardware fault.
    let mut rng = crate::gen::Rng::new(0x5eed_1ea5_0b1e_5eed ^ ops.len() as u64);
    let zobrist: Vec<u128> = ops
        .iter()
        .map(|_| (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))
        .collect();
    let state_key = |v: Val| -> u128 {
        let mut r = crate::gen::Rng::new(u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5);
        (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64())
    };
    let mut linearized: u128 = 0;
    let mut cache: HashSet<u128> = HashSet::new();
    let mut calls: Vec<(usize, Val)> = Vec::new();
    let mut state: Val = 0;
    let mut remaining = ops.iter().filter(|o| o.must).count();
    let mut entry = next.get(n).copied().unwrap_or(NONE);
    let mut deepest: Option<(u64, usize)> = None;
    let mut states: BTreeSet<Val> = BTreeSet::new();
    let mut iter: u64 = 0;

    // unlink / relink an entry (and its matching return)
    fn unlink(next: &mut [usize], prev: &mut [usize], e: usize) {
        let (p, nx) = (
            prev.get(e).copied().unwrap_or(NONE),
            next.get(e).copied().unwrap_or(NONE),
        );
        if let Some(x) = next.get_mut(p) {
            *x = nx;
        }
        if let Some(x) = prev.get_mut(nx) {
            *x = p;
        }
    }
    fn relink(next: &mut [usize], prev: &mut [usize], e: usize) {
        let (p, nx) = (
            prev.get(e).copied().unwrap_or(NONE),
            next.get(e).copied().unwrap_or(NONE),
        );
        if let Some(x) = next.get_mut(p) {
            *x = e;
        }
        if let Some(x) = prev.get_mut(nx) {
            *x = e;
        }
    }

    loop {
        if remaining == 0 {
            return KeyOutcome::Linearizable;
        }
        iter += 1;
        if iter.is_multiple_of(256) {
            if Instant::now() > deadline {
                return KeyOutcome::Unknown("time limit reached");
            }
            if cache.len() > max_states {
                return KeyOutcome::Unknown("search state limit reached");
            }
        }
        let cur = entries.get(entry).copied();
        match cur {
            Some((_, true, oi)) => {
                let Some(op) = ops.get(oi) else {
                    return KeyOutcome::Unknown("internal index error");
                };
                let mut advanced = false;
                if let Some(ns) = step(state, op.f) {
                    let z = zobrist.get(oi).copied().unwrap_or(0);
                    if cache.insert(linearized ^ z ^ state_key(ns)) {
                        linearized ^= z;
                        calls.push((entry, state));
                        state = ns;
                        unlink(&mut next, &mut prev, entry);
                        let r = ret_of.get(oi).copied().unwrap_or(NONE);
                        if r != NONE {
                            unlink(&mut next, &mut prev, r);
                        }
                        if op.must {
                            remaining -= 1;
                        }
                        entry = next.get(n).copied().unwrap_or(NONE);
                        advanced = true;
                    }
                }
                if !advanced {
                    entry = next.get(entry).copied().unwrap_or(NONE);
                }
            }
            other => {
                // A return entry (or the end of the list): backtrack.
                if let Some((pos, false, oi)) = other {
                    match deepest {
                        Some((d, _)) if d > pos => {}
                        Some((d, _)) if d == pos => {
                            if states.len() < 8 {
                                states.insert(state);
                            }
                        }
                        _ => {
                            deepest = Some((pos, oi));
                            states.clear();
                            states.insert(state);
                        }
                    }
                }
                let Some((e, st)) = calls.pop() else {
                    return match deepest {
                        Some((_, stuck)) => KeyOutcome::Nonlinearizable {
                            stuck,
                            states: states.into_iter().collect(),
                        },
                        None => KeyOutcome::Unknown("search exhausted without a stuck op"),
                    };
                };
                let oi = entries.get(e).map(|x| x.2).unwrap_or(0);
                linearized ^= zobrist.get(oi).copied().unwrap_or(0);
                state = st;
                let r = ret_of.get(oi).copied().unwrap_or(NONE);
                if r != NONE {
                    relink(&mut next, &mut prev, r);
                }
                relink(&mut next, &mut prev, e);
                if ops.get(oi).is_some_and(|o| o.must) {
                    remaining += 1;
                }
                entry = next.get(e).copied().unwrap_or(NONE);
            }
        }
    }
}

fn describe(key: &str, f: RegF, vals: &Interner) -> String {
    match f {
        RegF::Read(v) => format!("read {key} -> {}", vals.name(v)),
        RegF::Write(v) => format!("write {key} <- {}", vals.name(v)),
        RegF::Cas(o, n) => format!("cas {key} {} -> {}", vals.name(o), vals.name(n)),
    }
}

fn end_str(e: u64) -> String {
    if e == u64::MAX {
        "never (info)".into()
    } else {
        e.to_string()
    }
}

impl Checker for LinearizableChecker {
    fn name(&self) -> &str {
        "linearizable"
    }

    fn check(&self, h: &History) -> CheckResult {
        timed(|| self.run(h))
    }
}

impl LinearizableChecker {
    fn run(&self, h: &History) -> CheckResult {
        let deadline = Instant::now() + self.time_limit;
        let mut vals = Interner::new();
        let mut by_key: BTreeMap<String, Vec<RegOp>> = BTreeMap::new();
        let mut malformed = Vec::new();
        for op in h.ops() {
            match parse_op(op, &mut vals) {
                Parsed::Skip => {}
                Parsed::Malformed => malformed.push(op.invoke_index),
                Parsed::Op(k, f) => by_key.entry(k).or_default().push(RegOp {
                    f,
                    invoke: op.invoke_index,
                    end: op.end_index(),
                    must: op.kind == OpType::Ok,
                }),
            }
        }
        let mut anomalies = Vec::new();
        let mut unknown_keys = BTreeMap::new();
        let mut validity = Validity::Valid;
        let mut n_ops = 0usize;
        for (key, ops) in &by_key {
            n_ops += ops.len();
            match wgl(ops, deadline, self.max_states) {
                KeyOutcome::Linearizable => {}
                KeyOutcome::Unknown(why) => {
                    unknown_keys.insert(key.clone(), why);
                    validity = validity.and(Validity::Unknown);
                }
                KeyOutcome::Nonlinearizable { stuck, states } => {
                    validity = Validity::Invalid;
                    let Some(x) = ops.get(stuck) else { continue };
                    let concurrent: Vec<&RegOp> = ops
                        .iter()
                        .enumerate()
                        .filter(|(i, o)| *i != stuck && o.invoke < x.end && o.end > x.invoke)
                        .map(|(_, o)| o)
                        .collect();
                    let states_s: Vec<String> = states.iter().map(|s| vals.name(*s)).collect();
                    let mut ids = vec![x.invoke];
                    ids.extend(concurrent.iter().map(|o| o.invoke));
                    let explanation = format!(
                        "key {key}: the history up to index {} has no linearization: {} (invoked at {}, completed at {}) cannot take effect; before it the register could only hold {}; {} concurrent op(s): {}",
                        end_str(x.end),
                        describe(key, x.f, &vals),
                        x.invoke,
                        end_str(x.end),
                        states_s.join(" or "),
                        concurrent.len(),
                        concurrent
                            .iter()
                            .map(|o| format!("{} [{}..{}]", describe(key, o.f, &vals), o.invoke, end_str(o.end)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    anomalies.push(Anomaly {
                        kind: "nonlinearizable".into(),
                        explanation,
                        ops: ids,
                        extra: json!({
                            "key": key,
                            "op": {"invoke": x.invoke, "complete": (x.end != u64::MAX).then_some(x.end), "op": describe(key, x.f, &vals)},
                            "possible_states": states_s,
                            "concurrent": concurrent.iter().map(|o| json!({
                                "invoke": o.invoke,
                                "complete": (o.end != u64::MAX).then_some(o.end),
                                "op": describe(key, o.f, &vals),
                            })).collect::<Vec<_>>(),
                        }),
                    });
                }
            }
        }
        if !malformed.is_empty() {
            validity = validity.and(Validity::Unknown);
        }
        let summary = match validity {
            Validity::Valid => format!(
                "{} register ops over {} keys are linearizable",
                n_ops,
                by_key.len()
            ),
            Validity::Invalid => format!(
                "{} of {} keys are not linearizable",
                anomalies.len(),
                by_key.len()
            ),
            Validity::Unknown => format!(
                "could not decide linearizability: {} key(s) undecided, {} malformed op(s)",
                unknown_keys.len(),
                malformed.len()
            ),
        };
        CheckResult {
            checker: self.name().into(),
            validity,
            summary,
            anomalies,
            details: json!({
                "keys": by_key.len(),
                "ops": n_ops,
                "unknown_keys": unknown_keys,
                "malformed_ops": malformed.iter().take(50).collect::<Vec<_>>(),
                "malformed_count": malformed.len(),
                "time_limit_s": self.time_limit.as_secs_f64(),
            }),
            elapsed_ms: 0.0,
        }
        .unknown_if_none(n_ops + malformed.len(), "register operations")
    }
}
