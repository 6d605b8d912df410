//! Operation values, stored compactly when they are transactions (issue 15).
//!
//! A list-append or rw-register transaction is an array of `[f, k, v]`
//! micro-ops; as `serde_json::Value`s a million of them take ~3 KB each (32
//! bytes per list element, a heap string per `"append"` and per key). An
//! [`OpValue`] holds such a value as micro-ops with interned keys and its
//! integers in one boxed slice, and any other value as JSON. It dereferences
//! to the JSON (built once, on first use, for code that wants a `Value`), but
//! the paths that see every operation of a big history — the Elle checkers,
//! workload inference, the JSON Lines writer — read the compact form through
//! [`OpValue::micro_ops`] and [`fmt::Display`], so the JSON is never built.

use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// A micro-op's function: `append`, `r` or `w` (harness.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MopF {
    /// `append`: add a value to a list.
    Append,
    /// `r`: read a list or a register.
    Read,
    /// `w`: write a register.
    Write,
}

impl MopF {
    /// The spelling in histories.
    pub fn as_str(self) -> &'static str {
        match self {
            MopF::Append => "append",
            MopF::Read => "r",
            MopF::Write => "w",
        }
    }

    fn parse(s: &str) -> Option<MopF> {
        match s {
            "append" => Some(MopF::Append),
            "r" => Some(MopF::Read),
            "w" => Some(MopF::Write),
            _ => None,
        }
    }
}

/// A micro-op's key: an integer or a string, as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MopKey {
    /// A JSON integer key (Jepsen's usual keys).
    Int(i64),
    /// A JSON string key, shared between every micro-op that names it.
    Str(Arc<str>),
}

impl MopKey {
    fn to_value(&self) -> Value {
        match self {
            MopKey::Int(i) => Value::from(*i),
            MopKey::Str(s) => Value::from(&**s),
        }
    }
}

impl fmt::Display for MopKey {
    /// The key as JSON (a string quoted and escaped as serde_json does).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MopKey::Int(i) => write!(f, "{i}"),
            MopKey::Str(s) => write!(
                f,
                "{}",
                serde_json::to_string(&**s).map_err(|_| fmt::Error)?
            ),
        }
    }
}

/// A micro-op's value: `null`, an integer or a list of integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MopValue<'a> {
    /// `null`: an unknown read, or the initial state.
    Null,
    /// An appended or written value, or a register read.
    Int(i64),
    /// A list read.
    List(&'a [i64]),
}

/// One micro-op of a compact transaction, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicroOp<'a> {
    /// The function.
    pub f: MopF,
    /// The key.
    pub key: &'a MopKey,
    /// The value.
    pub value: MopValue<'a>,
}

impl fmt::Display for MicroOp<'_> {
    /// The micro-op as compact JSON, as `serde_json` writes its array.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[\"{}\",{},", self.f.as_str(), self.key)?;
        match self.value {
            MopValue::Null => f.write_str("null")?,
            MopValue::Int(x) => write!(f, "{x}")?,
            MopValue::List(l) => {
                f.write_str("[")?;
                for (j, x) in l.iter().enumerate() {
                    if j > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")?;
            }
        }
        f.write_str("]")
    }
}

/// How a stored micro-op's value is laid out in [`Txn::ints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Null,
    Int,
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Mop {
    key: MopKey,
    start: u32,
    len: u32,
    f: MopF,
    tag: Tag,
}

#[derive(Debug, Clone)]
struct Txn {
    mops: Box<[Mop]>,
    ints: Box<[i64]>,
    /// The JSON form, built on first dereference only.
    json: OnceLock<Box<Value>>,
}

#[derive(Debug, Clone)]
enum Repr {
    Json(Value),
    Txn(Txn),
}

/// An event's value: compact micro-ops for a transaction, JSON otherwise. Reads
/// like a `serde_json::Value` (it dereferences to one) and writes the same bytes.
#[derive(Clone)]
pub struct OpValue(Repr);

/// Shares key strings between the values of one history, so a key named by a
/// million micro-ops is stored once.
#[derive(Debug, Default)]
pub struct Interner {
    keys: HashSet<Arc<str>>,
}

impl Interner {
    fn key(&mut self, s: &str) -> Arc<str> {
        if let Some(k) = self.keys.get(s) {
            return Arc::clone(k);
        }
        let k: Arc<str> = Arc::from(s);
        self.keys.insert(Arc::clone(&k));
        k
    }

    /// `v` as an [`OpValue`], compact if it is a transaction, keys shared.
    pub fn value(&mut self, v: Value) -> OpValue {
        match compact(&v, self) {
            Some(t) => OpValue(Repr::Txn(t)),
            None => OpValue(Repr::Json(v)),
        }
    }
}

fn small_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The compact form of `v` if it is a non-empty array of `[f k v]` micro-ops with
/// f `append`/`r`/`w`, an integer or string key, and a `null`, integer or
/// integer-list value; `None` for anything else (kept as JSON, byte for byte).
fn compact(v: &Value, keys: &mut Interner) -> Option<Txn> {
    let arr = v.as_array().filter(|a| !a.is_empty())?;
    let mut mops = Vec::with_capacity(arr.len());
    let mut ints = Vec::new();
    for m in arr {
        let [f, k, x] = m.as_array().map(Vec::as_slice)? else {
            return None;
        };
        let f = MopF::parse(f.as_str()?)?;
        let key = match k {
            Value::String(s) => MopKey::Str(keys.key(s)),
            other => MopKey::Int(small_int(other)?),
        };
        let start = u32::try_from(ints.len()).ok()?;
        let tag = match x {
            Value::Null => Tag::Null,
            Value::Array(l) => {
                for e in l {
                    ints.push(small_int(e)?);
                }
                Tag::List
            }
            other => {
                ints.push(small_int(other)?);
                Tag::Int
            }
        };
        let len = u32::try_from(ints.len()).ok()? - start;
        mops.push(Mop {
            key,
            start,
            len,
            f,
            tag,
        });
    }
    Some(Txn {
        mops: mops.into_boxed_slice(),
        ints: ints.into_boxed_slice(),
        json: OnceLock::new(),
    })
}

impl Txn {
    fn get(&self, m: &Mop) -> MopValue<'_> {
        let ints = self
            .ints
            .get(m.start as usize..(m.start + m.len) as usize)
            .unwrap_or(&[]);
        match m.tag {
            Tag::Null => MopValue::Null,
            Tag::Int => MopValue::Int(ints.first().copied().unwrap_or(0)),
            Tag::List => MopValue::List(ints),
        }
    }

    fn to_value(&self) -> Value {
        let mops = self.mops.iter().map(|m| {
            let x = match self.get(m) {
                MopValue::Null => Value::Null,
                MopValue::Int(i) => Value::from(i),
                MopValue::List(l) => Value::Array(l.iter().map(|&i| Value::from(i)).collect()),
            };
            Value::Array(vec![Value::from(m.f.as_str()), m.key.to_value(), x])
        });
        Value::Array(mops.collect())
    }
}

/// The micro-ops of a compact transaction, in order.
#[derive(Debug, Clone)]
pub struct MicroOps<'a> {
    txn: &'a Txn,
    next: std::slice::Iter<'a, Mop>,
}

impl<'a> Iterator for MicroOps<'a> {
    type Item = MicroOp<'a>;
    fn next(&mut self) -> Option<MicroOp<'a>> {
        let m = self.next.next()?;
        Some(MicroOp {
            f: m.f,
            key: &m.key,
            value: self.txn.get(m),
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.next.size_hint()
    }
}

impl ExactSizeIterator for MicroOps<'_> {}

impl OpValue {
    /// The micro-ops, if this value is stored as a compact transaction; `None`
    /// for any other value (read it as JSON).
    pub fn micro_ops(&self) -> Option<MicroOps<'_>> {
        match &self.0 {
            Repr::Txn(t) => Some(MicroOps {
                txn: t,
                next: t.mops.iter(),
            }),
            Repr::Json(_) => None,
        }
    }

    /// The value as JSON, built afresh for a compact one (nothing cached).
    pub fn to_value(&self) -> Value {
        match &self.0 {
            Repr::Json(v) => v.clone(),
            Repr::Txn(t) => t.to_value(),
        }
    }

    /// The JSON, to change in place; a compact value becomes JSON first.
    pub fn json_mut(&mut self) -> &mut Value {
        if let Repr::Txn(t) = &self.0 {
            self.0 = Repr::Json(t.to_value());
        }
        match &mut self.0 {
            Repr::Json(v) => v,
            Repr::Txn(_) => unreachable!("converted to JSON above"),
        }
    }

    /// A compact transaction's `r` of `null` become reads of the empty list
    /// (Jepsen's list-append spelling, see [`crate::edn`]); `false` (nothing done)
    /// for a value kept as JSON.
    pub(crate) fn nil_reads_as_empty_lists(&mut self) -> bool {
        let Repr::Txn(t) = &mut self.0 else {
            return false;
        };
        for m in t.mops.iter_mut() {
            if m.f == MopF::Read && m.tag == Tag::Null {
                m.tag = Tag::List;
                m.len = 0;
            }
        }
        t.json = OnceLock::new();
        true
    }

    /// Whether the JSON form of a compact value has been built (by a
    /// dereference); for tests that the big-history paths stay compact.
    pub fn json_built(&self) -> bool {
        match &self.0 {
            Repr::Json(_) => true,
            Repr::Txn(t) => t.json.get().is_some(),
        }
    }

    /// `null`? (Answered without building the JSON.)
    pub fn is_null(&self) -> bool {
        matches!(self.0, Repr::Json(Value::Null))
    }

    /// An array? (Answered without building the JSON.)
    pub fn is_array(&self) -> bool {
        matches!(self.0, Repr::Txn(_) | Repr::Json(Value::Array(_)))
    }

    /// An object? (Answered without building the JSON.)
    pub fn is_object(&self) -> bool {
        matches!(self.0, Repr::Json(Value::Object(_)))
    }
}

impl From<Value> for OpValue {
    /// Compact if `v` is a transaction (keys not shared: use an [`Interner`]
    /// for many values).
    fn from(v: Value) -> OpValue {
        Interner::default().value(v)
    }
}

impl Deref for OpValue {
    type Target = Value;
    fn deref(&self) -> &Value {
        match &self.0 {
            Repr::Json(v) => v,
            Repr::Txn(t) => t.json.get_or_init(|| Box::new(t.to_value())),
        }
    }
}

impl fmt::Display for OpValue {
    /// Compact JSON, byte for byte what `serde_json` writes for [`OpValue::to_value`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Repr::Json(v) = &self.0 {
            return write!(f, "{v}");
        }
        f.write_str("[")?;
        for (i, m) in self.micro_ops().into_iter().flatten().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for OpValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Json(v) => write!(f, "{v:?}"),
            Repr::Txn(t) => write!(f, "{:?}", t.to_value()),
        }
    }
}

impl PartialEq for OpValue {
    fn eq(&self, other: &OpValue) -> bool {
        match (&self.0, &other.0) {
            (Repr::Json(a), Repr::Json(b)) => a == b,
            (Repr::Txn(a), Repr::Txn(b)) => {
                a.mops.len() == b.mops.len() && {
                    let (x, y) = (self.micro_ops(), other.micro_ops());
                    x.into_iter().flatten().eq(y.into_iter().flatten())
                }
            }
            (Repr::Json(v), Repr::Txn(t)) | (Repr::Txn(t), Repr::Json(v)) => *v == t.to_value(),
        }
    }
}

impl PartialEq<Value> for OpValue {
    fn eq(&self, other: &Value) -> bool {
        match &self.0 {
            Repr::Json(v) => v == other,
            Repr::Txn(t) => t.to_value() == *other,
        }
    }
}

impl PartialEq<OpValue> for Value {
    fn eq(&self, other: &OpValue) -> bool {
        other == self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cases() -> Vec<Value> {
        vec![
            json!([["append", "k1", 7], ["r", "k2", [1, 4]], ["r", 3, null]]),
            json!([["w", -5, -9], ["r", "x\"\n\u{1}é/", 3]]),
            json!([["r", "k", []], ["append", 0, 0]]),
            json!([["r", "k", [1, 2.5]]]),
            json!([["r", "k", 18446744073709551615u64]]),
            json!([["r", "k"]]),
            json!([["cas", "k", 1]]),
            json!([]),
            json!({"phase": "start"}),
            json!(["k", 3]),
            json!(null),
        ]
    }

    #[test]
    fn writes_and_compares_as_its_json() {
        for v in cases() {
            let o = OpValue::from(v.clone());
            assert_eq!(o.to_string(), v.to_string(), "{v}");
            assert_eq!(o, v);
            assert_eq!(o.to_value(), v);
            assert_eq!(o.is_array(), v.is_array());
            assert_eq!(o.is_null(), v.is_null());
            assert_eq!(o.is_object(), v.is_object());
            assert_eq!(&*o, &v);
            let mut j = o.clone();
            j.json_mut();
            assert_eq!(j, o);
        }
    }

    #[test]
    fn transactions_are_compact_until_dereferenced() {
        let v = json!([["append", "k1", 7], ["r", "k1", [1, 7]]]);
        let o = OpValue::from(v.clone());
        let mops: Vec<MicroOp> = o.micro_ops().unwrap().collect();
        assert_eq!(mops.len(), 2);
        assert_eq!(mops[0].f, MopF::Append);
        assert_eq!(mops[1].value, MopValue::List(&[1, 7]));
        assert!(!o.json_built());
        assert_eq!(o[1][2], json!([1, 7]));
        assert!(o.json_built());
        // floats, 2-element micro-ops, other functions and u64s stay JSON
        for v in &cases()[3..] {
            assert!(OpValue::from(v.clone()).micro_ops().is_none(), "{v}");
        }
        assert!(OpValue::from(cases()[1].clone()).micro_ops().is_some());
    }

    #[test]
    fn an_interner_shares_keys() {
        let mut keys = Interner::default();
        let a = keys.value(json!([["r", "k", null]]));
        let b = keys.value(json!([["append", "k", 1]]));
        let key = |o: &OpValue| match o.micro_ops().unwrap().next().unwrap().key {
            MopKey::Str(s) => Arc::clone(s),
            MopKey::Int(_) => panic!("a string key"),
        };
        assert!(Arc::ptr_eq(&key(&a), &key(&b)));
    }
}
