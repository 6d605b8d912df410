//! Transactions in compact form: keys interned to `u32`, micro-ops in one flat
//! vector, read lists in another (harness.md §7; Elle's `verify-mop-types` and
//! `verify-unique-appends`, list_append.clj). Input Elle could not interpret
//! is collected as [`InputProblem`]s, which make the verdict `unknown`.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde_json::Value;

use crate::history::{History, OpType, Process};
use rollcall_history::{MicroOp, MopF, MopKey, MopValue, OpValue};

/// A micro-op. Values are integers; a read's list lives in [`Txns::elems`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mop {
    /// `[append k v]`.
    Append { key: u32, v: i64 },
    /// `[w k v]` on a register.
    Write { key: u32, v: i64 },
    /// `[r k v]`: what it observed.
    Read { key: u32, seen: Seen },
}

impl Mop {
    pub(crate) fn key(&self) -> u32 {
        match *self {
            Mop::Append { key, .. } | Mop::Write { key, .. } | Mop::Read { key, .. } => key,
        }
    }
}

/// What a read observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not known: the read of a txn that did not complete `ok`.
    Unknown,
    /// A register read of nil (the initial state).
    Nil,
    /// A register value.
    Value(i64),
    /// A list: `elems[start..start + len]` (an ok read of nil is the empty list).
    List { start: u32, len: u32 },
    /// A list that is a prefix of its key's longest compatible read so far:
    /// `canon[key][..len]`. Most reads are, so they cost no element storage.
    Prefix { key: u32, len: u32 },
}

/// One transaction.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// History index of the invoke: the name used in reports (`T<index>`).
    pub invoke: u64,
    /// History index of the completion, `u64::MAX` if it never completed.
    pub complete: u64,
    pub process: Process,
    pub kind: OpType,
    pub mop_start: u32,
    pub mop_len: u32,
}

/// Why the history could not be checked (Elle throws these with `:valid? :unknown`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InputProblem {
    /// A micro-op that is not `[f k v]` with a known f and an integer value.
    BadMop { op: u64, mop: String },
    /// The same value written twice to one key (e.g. a client retry).
    DuplicateWrite { op: u64, key: String, value: i64 },
}

/// Which micro-ops a workload allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// `append` and list `r` (list_append.clj).
    ListAppend,
    /// `w` and register `r` (rw_register.clj).
    Register,
}

/// Every transaction of a history in compact form.
#[derive(Debug, Default)]
pub(crate) struct Txns {
    pub txns: Vec<Txn>,
    pub mops: Vec<Mop>,
    pub elems: Vec<i64>,
    /// Per key, the longest read every `Seen::Prefix` read is a prefix of.
    pub canon: Vec<Vec<i64>>,
    pub key_names: Vec<String>,
    pub problems: Vec<InputProblem>,
}

impl Txns {
    pub(crate) fn mops(&self, t: u32) -> &[Mop] {
        self.txns
            .get(t as usize)
            .and_then(|t| {
                self.mops
                    .get(t.mop_start as usize..(t.mop_start + t.mop_len) as usize)
            })
            .unwrap_or(&[])
    }
    pub(crate) fn list(&self, seen: Seen) -> &[i64] {
        match seen {
            Seen::List { start, len } => self
                .elems
                .get(start as usize..(start + len) as usize)
                .unwrap_or(&[]),
            Seen::Prefix { key, len } => self
                .canon
                .get(key as usize)
                .and_then(|c| c.get(..len as usize))
                .unwrap_or(&[]),
            _ => &[],
        }
    }
    pub(crate) fn key_name(&self, k: u32) -> &str {
        self.key_names
            .get(k as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }
    pub(crate) fn name(&self, t: u32) -> String {
        self.txns
            .get(t as usize)
            .map(|x| format!("T{}", x.invoke))
            .unwrap_or_else(|| "T?".into())
    }
    pub(crate) fn invoke(&self, t: u32) -> u64 {
        self.txns.get(t as usize).map(|x| x.invoke).unwrap_or(0)
    }
    pub(crate) fn kind(&self, t: u32) -> OpType {
        self.txns
            .get(t as usize)
            .map(|x| x.kind)
            .unwrap_or(OpType::Fail)
    }
    /// ok or info: the transactions that may have taken effect (`h/possible`).
    pub(crate) fn possible(&self, t: u32) -> bool {
        matches!(self.kind(t), OpType::Ok | OpType::Info)
    }
    pub(crate) fn len(&self) -> u32 {
        self.txns.len() as u32
    }
}

#[derive(Default)]
struct Keys {
    ids: HashMap<String, u32>,
    /// Integer keys of compact values, by the id of their decimal name (so `5`
    /// and `"5"` are one key, as in the JSON path).
    ints: HashMap<i64, u32>,
}

impl Keys {
    fn id(&mut self, names: &mut Vec<String>, k: &Value) -> Option<u32> {
        if let Value::String(s) = k {
            return self.named(names, s);
        }
        let s = crate::linearizable::key_string(k)?;
        self.named(names, &s)
    }

    fn named(&mut self, names: &mut Vec<String>, s: &str) -> Option<u32> {
        if let Some(&i) = self.ids.get(s) {
            return Some(i);
        }
        let i = u32::try_from(names.len()).ok()?;
        self.ids.insert(s.to_string(), i);
        names.push(s.to_string());
        Some(i)
    }

    /// A compact micro-op's key, named as [`Keys::id`] names its JSON.
    fn of(&mut self, names: &mut Vec<String>, k: &MopKey) -> Option<u32> {
        match k {
            MopKey::Str(s) => self.named(names, s),
            MopKey::Int(i) => {
                if let Some(&id) = self.ints.get(i) {
                    return Some(id);
                }
                let id = self.named(names, &i.to_string())?;
                self.ints.insert(*i, id);
                Some(id)
            }
        }
    }
}

/// Parse every `txn` operation of the history. Nemesis and non-`txn` ops are
/// not transactions and are skipped.
pub(crate) fn parse(h: &History, w: Workload) -> Txns {
    let mut out = Txns::default();
    let mut keys = Keys::default();
    let mut written: HashSet<(u32, i64)> = HashSet::default();
    for op in h.ops() {
        if op.f != "txn" || op.process == Process::Nemesis {
            continue;
        }
        let ok = op.kind == OpType::Ok;
        let value = op.value();
        let start = out.mops.len();
        let parsed = parse_mops(value, ok, w, &mut keys, &mut out);
        if let Err(bad) = parsed {
            out.mops.truncate(start);
            out.problems.push(InputProblem::BadMop {
                op: op.invoke_index,
                mop: bad,
            });
            continue;
        }
        check_unique_writes(
            &op.invoke_value,
            op.invoke_index,
            &mut keys,
            &mut out,
            &mut written,
        );
        out.txns.push(Txn {
            invoke: op.invoke_index,
            complete: op.complete_index.unwrap_or(u64::MAX),
            process: op.process,
            kind: op.kind,
            mop_start: start as u32,
            mop_len: (out.mops.len() - start) as u32,
        });
    }
    out
}

fn parse_mops(
    v: &OpValue,
    ok: bool,
    w: Workload,
    keys: &mut Keys,
    out: &mut Txns,
) -> Result<(), String> {
    if let Some(mops) = v.micro_ops() {
        for m in mops {
            let mop = compact_mop(m, ok, w, keys, out).ok_or_else(|| m.to_string())?;
            out.mops.push(mop);
        }
        return Ok(());
    }
    let v: &Value = v;
    let arr = v.as_array().ok_or_else(|| v.to_string())?;
    for m in arr {
        let mop = parse_mop(m, ok, w, keys, out).ok_or_else(|| m.to_string())?;
        out.mops.push(mop);
    }
    Ok(())
}

fn parse_mop(m: &Value, ok: bool, w: Workload, keys: &mut Keys, out: &mut Txns) -> Option<Mop> {
    let parts = m.as_array()?;
    let (f, k, x) = match parts.as_slice() {
        [f, k, x] => (f, k, x),
        [f, k] => (f, k, &Value::Null),
        _ => return None,
    };
    let key = keys.id(&mut out.key_names, k)?;
    match (f.as_str()?, w) {
        ("append", Workload::ListAppend) => Some(Mop::Append {
            key,
            v: x.as_i64()?,
        }),
        ("w", Workload::Register) => Some(Mop::Write {
            key,
            v: x.as_i64()?,
        }),
        ("r", _) if !ok => Some(Mop::Read {
            key,
            seen: Seen::Unknown,
        }),
        ("r", Workload::Register) if x.is_null() => Some(Mop::Read {
            key,
            seen: Seen::Nil,
        }),
        ("r", Workload::Register) => Some(Mop::Read {
            key,
            seen: Seen::Value(x.as_i64()?),
        }),
        ("r", Workload::ListAppend) => {
            let list: &[Value] = if x.is_null() { &[] } else { x.as_array()? };
            let read: Option<Vec<i64>> = list.iter().map(Value::as_i64).collect();
            Some(Mop::Read {
                key,
                seen: store_list(out, key, read?)?,
            })
        }
        _ => None,
    }
}

/// [`parse_mop`] for a compact micro-op (the history's transaction form,
/// issue 15): the same rules, read without building JSON.
fn compact_mop(m: MicroOp, ok: bool, w: Workload, keys: &mut Keys, out: &mut Txns) -> Option<Mop> {
    let key = keys.of(&mut out.key_names, m.key)?;
    match (m.f, w, m.value) {
        (MopF::Append, Workload::ListAppend, MopValue::Int(v)) => Some(Mop::Append { key, v }),
        (MopF::Write, Workload::Register, MopValue::Int(v)) => Some(Mop::Write { key, v }),
        (MopF::Read, _, _) if !ok => Some(Mop::Read {
            key,
            seen: Seen::Unknown,
        }),
        (MopF::Read, Workload::Register, MopValue::Null) => Some(Mop::Read {
            key,
            seen: Seen::Nil,
        }),
        (MopF::Read, Workload::Register, MopValue::Int(v)) => Some(Mop::Read {
            key,
            seen: Seen::Value(v),
        }),
        (MopF::Read, Workload::ListAppend, MopValue::Null) => Some(Mop::Read {
            key,
            seen: store_list(out, key, Vec::new())?,
        }),
        (MopF::Read, Workload::ListAppend, MopValue::List(l)) => Some(Mop::Read {
            key,
            seen: store_list(out, key, l.to_vec())?,
        }),
        _ => None,
    }
}

/// Store a list read compactly: as a prefix of the key's longest compatible
/// read when it is one (extending that read if this one is longer), else in
/// full (an incompatible order, reported later).
fn store_list(out: &mut Txns, key: u32, read: Vec<i64>) -> Option<Seen> {
    let len = u32::try_from(read.len()).ok()?;
    if out.canon.len() <= key as usize {
        out.canon.resize_with(key as usize + 1, Vec::new);
    }
    let canon = out.canon.get_mut(key as usize)?;
    if read.starts_with(canon) {
        *canon = read;
        return Some(Seen::Prefix { key, len });
    }
    if canon.starts_with(&read) {
        return Some(Seen::Prefix { key, len });
    }
    let start = u32::try_from(out.elems.len()).ok()?;
    out.elems.extend_from_slice(&read);
    Some(Seen::List { start, len })
}

/// Elle's `verify-unique-appends`: every invoke writes each value at most once
/// per key, or the version order cannot be recovered.
fn check_unique_writes(
    invoke: &OpValue,
    index: u64,
    keys: &mut Keys,
    out: &mut Txns,
    written: &mut HashSet<(u32, i64)>,
) {
    if let Some(mops) = invoke.micro_ops() {
        for m in mops {
            let (MopF::Append | MopF::Write, MopValue::Int(v)) = (m.f, m.value) else {
                continue;
            };
            if let Some(key) = keys.of(&mut out.key_names, m.key) {
                unique_write(index, key, v, out, written);
            }
        }
        return;
    }
    let invoke: &Value = invoke;
    for m in invoke.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let Some([f, k, x]) = m.as_array().map(Vec::as_slice) else {
            continue;
        };
        if !matches!(f.as_str(), Some("append" | "w")) {
            continue;
        }
        let (Some(key), Some(v)) = (keys.id(&mut out.key_names, k), x.as_i64()) else {
            continue;
        };
        unique_write(index, key, v, out, written);
    }
}

fn unique_write(index: u64, key: u32, v: i64, out: &mut Txns, written: &mut HashSet<(u32, i64)>) {
    if !written.insert((key, v)) {
        let key = out.key_name(key).to_string();
        out.problems.push(InputProblem::DuplicateWrite {
            op: index,
            key,
            value: v,
        });
    }
}
