//! The KV application of protocol.md §3, re-read from the spec: a transaction is a
//! list of micro-ops executed atomically in block order. `r` reads, `w` writes a
//! register, `cas` compares-and-sets a register, `append` appends to a list.
//!
//! The spec is silent on type errors; the choice (written down in docs/DESIGN.md):
//! a `cas` on a list or an `append` to a register aborts the whole transaction and
//! nothing of it applies; a `w` replaces whatever the key held; a `cas` on an absent
//! key does not apply.

use std::collections::HashMap;

use super::wire::{Op, OpResult, Value};

/// The replicated key-value state.
#[derive(Debug, Clone, Default)]
pub struct Kv {
    data: HashMap<String, Value>,
}

/// What a key holds, for the type check that precedes execution.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Absent,
    Register,
    List,
}

impl Kv {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    fn kind(&self, key: &str) -> Kind {
        match self.data.get(key) {
            None => Kind::Absent,
            Some(Value::Int(_)) => Kind::Register,
            Some(Value::List(_)) => Kind::List,
        }
    }

    /// The first type error of `ops`, tracking the kinds its own earlier ops give.
    fn type_error(&self, ops: &[Op]) -> Option<String> {
        let mut kinds: HashMap<&str, Kind> = HashMap::new();
        for op in ops {
            match op {
                Op::Read(_) => {}
                Op::Write(k, _) => {
                    kinds.insert(k, Kind::Register);
                }
                Op::Cas(k, _, _) => {
                    let kind = kinds
                        .get(k.as_str())
                        .copied()
                        .unwrap_or_else(|| self.kind(k));
                    if kind == Kind::List {
                        return Some(format!("cas on list key {k:?}"));
                    }
                }
                Op::Append(k, _) => {
                    let kind = kinds
                        .get(k.as_str())
                        .copied()
                        .unwrap_or_else(|| self.kind(k));
                    if kind == Kind::Register {
                        return Some(format!("append to register key {k:?}"));
                    }
                    kinds.insert(k, Kind::List);
                }
            }
        }
        None
    }

    /// Executes `ops` atomically: the per-op results, or the type error that
    /// aborted it with the state unchanged.
    pub fn execute(&mut self, ops: &[Op]) -> Result<Vec<OpResult>, String> {
        if let Some(e) = self.type_error(ops) {
            return Err(e);
        }
        Ok(ops.iter().map(|op| self.apply(op)).collect())
    }

    fn apply(&mut self, op: &Op) -> OpResult {
        match op {
            Op::Read(k) => OpResult::Read(k.clone(), self.data.get(k).cloned()),
            Op::Write(k, v) => {
                self.data.insert(k.clone(), Value::Int(*v));
                OpResult::Write(k.clone(), *v)
            }
            Op::Cas(k, old, new) => {
                let applied = matches!(self.data.get(k), Some(Value::Int(cur)) if cur == old);
                if applied {
                    self.data.insert(k.clone(), Value::Int(*new));
                }
                OpResult::Cas {
                    key: k.clone(),
                    old: *old,
                    new: *new,
                    applied,
                }
            }
            Op::Append(k, v) => {
                match self.data.get_mut(k) {
                    Some(Value::List(l)) => l.push(*v),
                    // The type check ruled out a register here.
                    _ => {
                        self.data.insert(k.clone(), Value::List(vec![*v]));
                    }
                }
                OpResult::Append(k.clone(), *v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_atomicity() {
        let mut s = Kv::default();
        let r = s
            .execute(&[
                Op::Append("a".into(), 1),
                Op::Append("a".into(), 2),
                Op::Read("a".into()),
                Op::Write("x".into(), 5),
                Op::Cas("x".into(), 5, 6),
                Op::Cas("x".into(), 5, 7),
                Op::Read("x".into()),
                Op::Read("none".into()),
                Op::Cas("absent".into(), 0, 1),
            ])
            .expect("well-typed");
        assert_eq!(
            r[2],
            OpResult::Read("a".into(), Some(Value::List(vec![1, 2])))
        );
        assert!(matches!(r[4], OpResult::Cas { applied: true, .. }));
        assert!(matches!(r[5], OpResult::Cas { applied: false, .. }));
        assert_eq!(r[6], OpResult::Read("x".into(), Some(Value::Int(6))));
        assert_eq!(r[7], OpResult::Read("none".into(), None));
        assert!(matches!(r[8], OpResult::Cas { applied: false, .. }));
        assert_eq!(s.get("absent"), None);
        // A type error anywhere aborts the whole transaction.
        assert!(s
            .execute(&[Op::Write("y".into(), 1), Op::Append("x".into(), 1)])
            .is_err());
        assert!(s
            .execute(&[Op::Append("y".into(), 1), Op::Cas("a".into(), 1, 2)])
            .is_err());
        // Its own earlier ops set the kinds: a write then an append fails.
        assert!(s
            .execute(&[Op::Write("z".into(), 1), Op::Append("z".into(), 1)])
            .is_err());
        assert_eq!(s.get("y"), None);
        assert_eq!(s.get("z"), None);
        assert_eq!(s.get("x"), Some(&Value::Int(6)));
        // A write replaces a list.
        s.execute(&[Op::Write("a".into(), 3)]).expect("write");
        assert_eq!(s.get("a"), Some(&Value::Int(3)));
    }
}
