//! Generators of valid histories (a sequential reference execution given random
//! concurrent timings) and of single corruptions of them. Public so tests,
//! benchmarks and other crates reuse them.
//!
//! Each operation is invoked, later takes effect on a reference model at one
//! instant (its linearization point), later completes; processes are
//! sequential. So invoke ≤ linearization point ≤ completion holds by
//! construction and the history is linearizable, serializable in real time,
//! loses nothing and keeps the bank total.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::history::{Event, History, OpType, Process};

/// A small deterministic RNG (SplitMix64): same seed, same history.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Shape of a generated history.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Number of operations (transactions) to invoke.
    pub ops: usize,
    /// Concurrent client processes.
    pub processes: usize,
    /// Keys (registers, or the size of the active key window for append, or accounts for bank).
    pub keys: usize,
    /// RNG seed.
    pub seed: u64,
    /// Probability an op ends `info` (taking effect or not); its process is retired.
    pub info_rate: f64,
    /// Probability an op fails without effect (append and set only; register
    /// cas and bank transfers also fail when their precondition does not hold).
    pub fail_rate: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            ops: 200,
            processes: 5,
            keys: 3,
            seed: 0,
            info_rate: 0.02,
            fail_rate: 0.02,
        }
    }
}

/// A reference model: makes requests and applies them atomically.
trait Model {
    fn invoke(&mut self, rng: &mut Rng) -> (String, Value);
    /// Apply at the linearization point; returns the completion type and value.
    fn apply(&mut self, rng: &mut Rng, f: &str, v: &Value) -> (OpType, Value);
}

enum Slot {
    Idle,
    Invoked {
        f: String,
        v: Value,
        tx: Option<String>,
    },
    Applied {
        f: String,
        kind: OpType,
        v: Value,
        tx: Option<String>,
    },
}

struct Sim {
    events: Vec<Event>,
    applied_tx: HashMap<String, bool>,
}

fn simulate(cfg: &GenConfig, model: &mut dyn Model, with_tx: bool) -> Sim {
    let mut rng = Rng::new(cfg.seed);
    let n = cfg.processes.max(1);
    let mut slots: Vec<(i64, Slot)> = (0..n).map(|i| (i as i64, Slot::Idle)).collect();
    let mut next_pid = n as i64;
    let mut issued = 0usize;
    let mut events: Vec<Event> = Vec::new();
    let mut applied_tx = HashMap::new();
    let (mut busy, mut keys) = (0usize, rollcall_history::Interner::default());
    let mut emit = |events: &mut Vec<Event>,
                    pid: i64,
                    kind: OpType,
                    f: &str,
                    v: Value,
                    tx: Option<String>,
                    rng: &mut Rng| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            time: index * 1_000 + rng.below(1000) as u64,
            process: Process::Client(pid),
            kind,
            f: f.to_string(),
            value: Arc::new(keys.value(v)),
            node: Some(format!("n{}", pid.rem_euclid(4) + 1)),
            tx_id: tx,
            extra: Map::new(),
        });
    };
    while issued < cfg.ops || busy > 0 {
        let si = rng.below(n);
        let Some((pid, slot)) = slots.get_mut(si) else {
            continue;
        };
        let taken = std::mem::replace(slot, Slot::Idle);
        *slot = match taken {
            Slot::Idle if issued < cfg.ops => {
                let (f, v) = model.invoke(&mut rng);
                let tx = with_tx.then(|| format!("tx{issued}"));
                emit(
                    &mut events,
                    *pid,
                    OpType::Invoke,
                    &f,
                    v.clone(),
                    tx.clone(),
                    &mut rng,
                );
                issued += 1;
                busy += 1;
                Slot::Invoked { f, v, tx }
            }
            Slot::Idle => Slot::Idle,
            Slot::Invoked { f, v, tx } => {
                if rng.chance(cfg.info_rate) {
                    // Crash: the op may or may not take effect; the process retires.
                    let happened = rng.chance(0.5);
                    if happened {
                        model.apply(&mut rng, &f, &v);
                    }
                    if let Some(t) = &tx {
                        applied_tx.insert(t.clone(), happened);
                    }
                    emit(&mut events, *pid, OpType::Info, &f, v, tx, &mut rng);
                    *pid = next_pid;
                    next_pid += 1;
                    busy -= 1;
                    Slot::Idle
                } else {
                    let (kind, out) = model.apply(&mut rng, &f, &v);
                    if let Some(t) = &tx {
                        applied_tx.insert(t.clone(), kind == OpType::Ok);
                    }
                    Slot::Applied {
                        f,
                        kind,
                        v: out,
                        tx,
                    }
                }
            }
            Slot::Applied { f, kind, v, tx } => {
                emit(&mut events, *pid, kind, &f, v, tx, &mut rng);
                busy -= 1;
                Slot::Idle
            }
        };
    }
    Sim { events, applied_tx }
}

fn build(events: Vec<Event>) -> History {
    // Generated events are valid by construction; an empty history otherwise.
    History::from_events(events).unwrap_or_default()
}

struct Registers {
    keys: usize,
    state: HashMap<i64, Value>,
}

impl Model for Registers {
    fn invoke(&mut self, rng: &mut Rng) -> (String, Value) {
        let k = rng.below(self.keys.max(1)) as i64;
        match rng.below(10) {
            0..=4 => ("read".into(), json!([k, null])),
            5..=7 => ("write".into(), json!([k, rng.below(5)])),
            _ => ("cas".into(), json!([k, [rng.below(5), rng.below(5)]])),
        }
    }
    fn apply(&mut self, _rng: &mut Rng, f: &str, v: &Value) -> (OpType, Value) {
        let k = v.get(0).and_then(Value::as_i64).unwrap_or(0);
        let cur = self.state.get(&k).cloned().unwrap_or(Value::Null);
        match f {
            "read" => (OpType::Ok, json!([k, cur])),
            "write" => {
                self.state
                    .insert(k, v.get(1).cloned().unwrap_or(Value::Null));
                (OpType::Ok, v.clone())
            }
            _ => {
                let old = v
                    .get(1)
                    .and_then(|x| x.get(0))
                    .cloned()
                    .unwrap_or(Value::Null);
                let new = v
                    .get(1)
                    .and_then(|x| x.get(1))
                    .cloned()
                    .unwrap_or(Value::Null);
                if cur == old {
                    self.state.insert(k, new);
                    (OpType::Ok, v.clone())
                } else {
                    (OpType::Fail, v.clone())
                }
            }
        }
    }
}

/// A register history (`read`/`write`/`cas` on `[key, v]`, values 0..5, keys
/// `0..cfg.keys`): linearizable by construction.
pub fn register_history(cfg: &GenConfig) -> History {
    let mut m = Registers {
        keys: cfg.keys,
        state: HashMap::new(),
    };
    build(simulate(cfg, &mut m, false).events)
}

struct Lists {
    window: usize,
    invoked: usize,
    next_val: HashMap<String, i64>,
    state: HashMap<String, Vec<i64>>,
    fail_rate: f64,
}

impl Model for Lists {
    fn invoke(&mut self, rng: &mut Rng) -> (String, Value) {
        // The key window rotates so lists stay short (harness.md §4).
        let base = self.invoked / 50;
        self.invoked += 1;
        let n = 1 + rng.below(4);
        let mut mops = Vec::new();
        for _ in 0..n {
            let k = format!("k{}", base + rng.below(self.window.max(1)));
            if rng.chance(0.5) {
                let v = self.next_val.entry(k.clone()).or_insert(0);
                *v += 1;
                mops.push(json!(["append", k, *v]));
            } else {
                mops.push(json!(["r", k, null]));
            }
        }
        ("txn".into(), Value::Array(mops))
    }
    fn apply(&mut self, rng: &mut Rng, _f: &str, v: &Value) -> (OpType, Value) {
        if rng.chance(self.fail_rate) {
            return (OpType::Fail, v.clone());
        }
        let mut out = Vec::new();
        for m in v.as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
            let f = m.get(0).and_then(Value::as_str).unwrap_or("");
            let k = m.get(1).and_then(Value::as_str).unwrap_or("").to_string();
            if f == "append" {
                let x = m.get(2).and_then(Value::as_i64).unwrap_or(0);
                self.state.entry(k).or_default().push(x);
                out.push(m.clone());
            } else {
                let l = self.state.get(&k).cloned().unwrap_or_default();
                out.push(json!(["r", k, l]));
            }
        }
        (OpType::Ok, Value::Array(out))
    }
}

/// A list-append history (1–4 micro-ops per txn over a rotating window of
/// `cfg.keys` keys): strict-serializable by construction.
pub fn append_history(cfg: &GenConfig) -> History {
    build(append_sim(cfg, false).events)
}

fn append_sim(cfg: &GenConfig, with_tx: bool) -> Sim {
    let mut m = Lists {
        window: cfg.keys,
        invoked: 0,
        next_val: HashMap::new(),
        state: HashMap::new(),
        fail_rate: cfg.fail_rate,
    };
    simulate(cfg, &mut m, with_tx)
}

struct RwRegisters {
    window: usize,
    invoked: usize,
    next_val: HashMap<String, i64>,
    state: HashMap<String, i64>,
    fail_rate: f64,
}

impl Model for RwRegisters {
    fn invoke(&mut self, rng: &mut Rng) -> (String, Value) {
        // Rotating key window, as for lists: few writes per key.
        let base = self.invoked / 50;
        self.invoked += 1;
        let n = 1 + rng.below(4);
        let mut mops = Vec::new();
        for _ in 0..n {
            let k = format!("k{}", base + rng.below(self.window.max(1)));
            if rng.chance(0.5) {
                let v = self.next_val.entry(k.clone()).or_insert(0);
                *v += 1;
                mops.push(json!(["w", k, *v]));
            } else {
                mops.push(json!(["r", k, null]));
            }
        }
        ("txn".into(), Value::Array(mops))
    }
    fn apply(&mut self, rng: &mut Rng, _f: &str, v: &Value) -> (OpType, Value) {
        if rng.chance(self.fail_rate) {
            return (OpType::Fail, v.clone());
        }
        let mut out = Vec::new();
        for m in v.as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
            let f = m.get(0).and_then(Value::as_str).unwrap_or("");
            let k = m.get(1).and_then(Value::as_str).unwrap_or("").to_string();
            if f == "w" {
                let x = m.get(2).and_then(Value::as_i64).unwrap_or(0);
                self.state.insert(k, x);
                out.push(m.clone());
            } else {
                out.push(json!(["r", k, self.state.get(&k)]));
            }
        }
        (OpType::Ok, Value::Array(out))
    }
}

/// A read-write register transaction history (`[r k v]` / `[w k v]`, unique
/// writes per key, 1–4 micro-ops over a rotating window of `cfg.keys` keys):
/// strict-serializable by construction.
pub fn rw_register_history(cfg: &GenConfig) -> History {
    let mut m = RwRegisters {
        window: cfg.keys,
        invoked: 0,
        next_val: HashMap::new(),
        state: HashMap::new(),
        fail_rate: cfg.fail_rate,
    };
    build(simulate(cfg, &mut m, false).events)
}

/// A history whose ops carry `tx_id`s, and the final chain's count of each id
/// (ok → 1, fail → 0, info → 1 if it took effect): valid for the set checker.
pub fn set_history(cfg: &GenConfig) -> (History, BTreeMap<String, usize>) {
    let sim = append_sim(cfg, true);
    let committed = sim
        .applied_tx
        .iter()
        .filter(|(_, applied)| **applied)
        .map(|(t, _)| (t.clone(), 1))
        .collect();
    (build(sim.events), committed)
}

struct Bank {
    balances: Vec<i64>,
}

impl Model for Bank {
    fn invoke(&mut self, rng: &mut Rng) -> (String, Value) {
        let n = self.balances.len().max(1);
        if rng.chance(0.3) {
            ("read".into(), Value::Null)
        } else {
            let from = rng.below(n);
            let to = (from + 1 + rng.below(n.saturating_sub(1).max(1))) % n;
            (
                "transfer".into(),
                json!({"from": format!("a{from}"), "to": format!("a{to}"), "amount": 1 + rng.below(5)}),
            )
        }
    }
    fn apply(&mut self, _rng: &mut Rng, f: &str, v: &Value) -> (OpType, Value) {
        if f == "read" {
            let m: Map<String, Value> = self
                .balances
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("a{i}"), json!(b)))
                .collect();
            return (OpType::Ok, Value::Object(m));
        }
        let idx = |s: Option<&str>| {
            s.and_then(|s| s.strip_prefix('a'))
                .and_then(|s| s.parse::<usize>().ok())
        };
        let from = idx(v.get("from").and_then(Value::as_str));
        let to = idx(v.get("to").and_then(Value::as_str));
        let amount = v.get("amount").and_then(Value::as_i64).unwrap_or(0);
        match (from, to) {
            (Some(a), Some(b))
                if self.balances.get(a).is_some_and(|x| *x >= amount)
                    && b < self.balances.len() =>
            {
                if let Some(x) = self.balances.get_mut(a) {
                    *x -= amount;
                }
                if let Some(x) = self.balances.get_mut(b) {
                    *x += amount;
                }
                (OpType::Ok, v.clone())
            }
            _ => (OpType::Fail, v.clone()),
        }
    }
}

/// A bank history over `cfg.keys` accounts holding `total` between them:
/// every read sees the total.
pub fn bank_history(cfg: &GenConfig, total: i64) -> History {
    let n = cfg.keys.max(1);
    let share = total / n as i64;
    let mut balances = vec![share; n];
    if let Some(first) = balances.first_mut() {
        *first += total - share * n as i64;
    }
    let mut m = Bank { balances };
    build(simulate(cfg, &mut m, false).events)
}

// ---------------------------------------------------------------- corruptions

fn completion_pos(h: &History, complete_index: u64) -> Option<usize> {
    h.events()
        .binary_search_by_key(&complete_index, |e| e.index)
        .ok()
}

fn rebuild(h: &History, pos: usize, value: Value) -> Option<History> {
    let mut events = h.events().to_vec();
    events.get_mut(pos)?.value = Arc::new(value.into());
    History::from_events(events).ok()
}

/// Stale read on a register: an ok read that began after some write to its key
/// had completed now returns nil (the initial value). Never valid, since no op
/// writes nil. `None` if the history has no such read.
pub fn corrupt_register_stale_read(h: &History, seed: u64) -> Option<History> {
    let mut first_write_done: HashMap<String, u64> = HashMap::new();
    for op in h.ops() {
        if op.kind == OpType::Ok && (op.f == "write" || op.f == "cas") {
            if let (Some(k), Some(c)) = (op.invoke_value.get(0), op.complete_index) {
                let e = first_write_done.entry(k.to_string()).or_insert(c);
                *e = (*e).min(c);
            }
        }
    }
    let candidates: Vec<(usize, Value)> = h
        .ops()
        .iter()
        .filter(|op| op.kind == OpType::Ok && op.f == "read")
        .filter_map(|op| {
            let v = op.complete_value.as_deref()?;
            let k = v.get(0)?;
            let done = first_write_done.get(&k.to_string())?;
            if *done < op.invoke_index {
                Some((completion_pos(h, op.complete_index?)?, json!([k, null])))
            } else {
                None
            }
        })
        .collect();
    let (pos, v) = candidates
        .get(Rng::new(seed).below(candidates.len()))?
        .clone();
    rebuild(h, pos, v)
}

/// Ways to corrupt a list-append history so it is certainly invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendCorruption {
    /// A read misses an element in its middle (a lost write): its order no
    /// longer agrees with a longer read → incompatible-order.
    LostWrite,
    /// A read drops its last element although that element's writer completed
    /// before the read began → a realtime cycle (or G1b).
    StaleRead,
    /// Two adjacent elements of a read swap places → incompatible-order.
    ReorderedAppend,
    /// Like `StaleRead`, but the dropped element is shown by no other read:
    /// only version inference (an unread append follows the longest read)
    /// can see the anomaly.
    StaleUnreadRead,
    /// An acknowledged append vanishes from every read, although the longest
    /// read of its key began after the append completed.
    LostAppend,
    /// An ok read returns nil although an append to its key completed before
    /// the read began.
    NilRead,
}

struct ReadSite {
    pos: usize,
    mop: usize,
    key: String,
    list: Vec<i64>,
    invoke: u64,
    appends_key: bool,
}

/// Every ok read of a list, and when each ok append completed.
fn read_sites(h: &History) -> (Vec<ReadSite>, HashMap<(String, i64), u64>) {
    let mut sites = Vec::new();
    let mut done: HashMap<(String, i64), u64> = HashMap::new();
    for op in h.ops() {
        if op.f != "txn" || op.kind != OpType::Ok {
            continue;
        }
        let (Some(v), Some(c)) = (
            op.complete_value
                .as_deref()
                .map(|v| &**v)
                .and_then(Value::as_array),
            op.complete_index,
        ) else {
            continue;
        };
        let Some(pos) = completion_pos(h, c) else {
            continue;
        };
        let fk = |m: &Value| -> Option<(String, String)> {
            Some((
                m.get(0)?.as_str()?.to_string(),
                m.get(1)?.as_str()?.to_string(),
            ))
        };
        for (mi, m) in v.iter().enumerate() {
            let Some((f, k)) = fk(m) else { continue };
            if f == "append" {
                if let Some(x) = m.get(2).and_then(Value::as_i64) {
                    done.insert((k, x), c);
                }
            } else if let Some(l) = m.get(2).and_then(Value::as_array) {
                let appends_key = v
                    .iter()
                    .any(|o| fk(o) == Some(("append".into(), k.clone())));
                let list = l.iter().filter_map(Value::as_i64).collect();
                sites.push(ReadSite {
                    pos,
                    mop: mi,
                    key: k,
                    list,
                    invoke: op.invoke_index,
                    appends_key,
                });
            }
        }
    }
    (sites, done)
}

/// One read's replacement value: (event position, mop index, new read).
type Change = (usize, usize, Value);

fn one_read_changes(
    sites: &[ReadSite],
    done: &HashMap<(String, i64), u64>,
    seed: u64,
    how: AppendCorruption,
) -> Vec<Vec<Change>> {
    let other_at_least = |s: &ReadSite, len: usize| {
        sites
            .iter()
            .any(|o| o.pos != s.pos && o.key == s.key && o.list.len() >= len)
    };
    let shown_once = |s: &ReadSite, x: i64| {
        sites
            .iter()
            .filter(|o| o.key == s.key && o.list.contains(&x))
            .count()
            == 1
    };
    let done_before =
        |s: &ReadSite, x: i64| done.get(&(s.key.clone(), x)).is_some_and(|c| *c < s.invoke);
    sites
        .iter()
        .filter_map(|s| {
            let mut rng = Rng::new(seed ^ s.pos as u64);
            let mut l = s.list.clone();
            let last = *s.list.last()?;
            let v = match how {
                AppendCorruption::LostWrite if l.len() >= 2 && other_at_least(s, l.len()) => {
                    l.remove(rng.below(l.len() - 1));
                    json!(l)
                }
                AppendCorruption::ReorderedAppend if l.len() >= 2 && other_at_least(s, l.len()) => {
                    let i = rng.below(l.len() - 1);
                    l.swap(i, i + 1);
                    json!(l)
                }
                AppendCorruption::StaleRead
                    if !s.appends_key && done_before(s, last) && other_at_least(s, l.len()) =>
                {
                    l.pop();
                    json!(l)
                }
                AppendCorruption::StaleUnreadRead
                    if !s.appends_key && done_before(s, last) && shown_once(s, last) =>
                {
                    l.pop();
                    json!(l)
                }
                AppendCorruption::NilRead if !s.appends_key && done_before(s, *l.first()?) => {
                    Value::Null
                }
                _ => return None,
            };
            Some(vec![(s.pos, s.mop, v)])
        })
        .collect()
}

/// Lost append: in each key's longest read, an element whose append completed
/// before that read began disappears from every read of the key.
fn lost_append_changes(sites: &[ReadSite], done: &HashMap<(String, i64), u64>) -> Vec<Vec<Change>> {
    let mut out = Vec::new();
    for s in sites {
        let longest = sites
            .iter()
            .filter(|o| o.key == s.key)
            .map(|o| o.list.len())
            .max();
        if s.appends_key || Some(s.list.len()) != longest {
            continue;
        }
        for &x in &s.list {
            if done.get(&(s.key.clone(), x)).is_none_or(|c| *c >= s.invoke) {
                continue;
            }
            let changes: Vec<Change> = sites
                .iter()
                .filter(|o| o.key == s.key && o.list.contains(&x))
                .map(|o| {
                    (
                        o.pos,
                        o.mop,
                        json!(o.list.iter().filter(|y| **y != x).collect::<Vec<_>>()),
                    )
                })
                .collect();
            out.push(changes);
        }
    }
    out
}

/// Apply one corruption to a generated list-append history; `None` when the
/// history offers no place for it.
pub fn corrupt_append(h: &History, seed: u64, how: AppendCorruption) -> Option<History> {
    let (sites, done) = read_sites(h);
    let candidates = match how {
        AppendCorruption::LostAppend => lost_append_changes(&sites, &done),
        _ => one_read_changes(&sites, &done, seed, how),
    };
    let changes = candidates.get(Rng::new(seed).below(candidates.len()))?;
    let mut events = h.events().to_vec();
    for (pos, mop, v) in changes {
        let value = Arc::make_mut(&mut events.get_mut(*pos)?.value).json_mut();
        *value.get_mut(*mop)?.get_mut(2)? = v.clone();
    }
    History::from_events(events).ok()
}

/// Set corruption: one acknowledged transaction is lost (0) or, if
/// `duplicate`, appears twice in the final chain.
pub fn corrupt_set(
    h: &History,
    committed: &BTreeMap<String, usize>,
    seed: u64,
    duplicate: bool,
) -> Option<BTreeMap<String, usize>> {
    let acked: Vec<&str> = h
        .ops()
        .iter()
        .filter(|o| o.kind == OpType::Ok)
        .filter_map(|o| o.tx_id.as_deref())
        .collect();
    let id = acked.get(Rng::new(seed).below(acked.len()))?;
    let mut c = committed.clone();
    c.insert(id.to_string(), if duplicate { 2 } else { 0 });
    Some(c)
}

/// Bank corruption: one ok read sees one balance off by one.
pub fn corrupt_bank(h: &History, seed: u64) -> Option<History> {
    let reads: Vec<usize> = h
        .ops()
        .iter()
        .filter(|o| o.kind == OpType::Ok && o.f == "read")
        .filter_map(|o| completion_pos(h, o.complete_index?))
        .collect();
    let pos = *reads.get(Rng::new(seed).below(reads.len()))?;
    let mut v = Value::clone(&h.events().get(pos)?.value);
    let (_, bal) = v.as_object_mut()?.iter_mut().next()?;
    *bal = json!(bal.as_i64()? + 1);
    rebuild(h, pos, v)
}
