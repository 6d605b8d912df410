//! The key-value application: micro-op transactions executed atomically in block
//! order (protocol.md §3).

use crate::types::{Op, OpResult, Value};
use std::collections::HashMap;

/// The replicated key-value state.
#[derive(Clone, Debug, Default)]
pub struct KvState {
    data: HashMap<String, Value>,
}

impl KvState {
    /// Executes `ops` atomically: either all apply, or (on a type error such as an
    /// append to a register) none do and the reason is returned.
    pub fn execute(&mut self, ops: &[Op]) -> Result<Vec<OpResult>, String> {
        // Writes go to an overlay first so a failing op leaves the state unchanged.
        let mut overlay: HashMap<&str, Value> = HashMap::new();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let current = |overlay: &HashMap<&str, Value>, k: &str| -> Option<Value> {
                overlay
                    .get(k)
                    .cloned()
                    .or_else(|| self.data.get(k).cloned())
            };
            match op {
                Op::Read(k) => results.push(OpResult::Read(k.clone(), current(&overlay, k))),
                Op::Write(k, v) => {
                    overlay.insert(k, Value::Int(*v));
                    results.push(OpResult::Write(k.clone(), *v));
                }
                Op::Cas(k, old, new) => {
                    let applied = match current(&overlay, k) {
                        Some(Value::Int(cur)) => cur == *old,
                        None => false,
                        Some(Value::List(_)) => {
                            return Err(format!("cas on list key {k:?}"));
                        }
                    };
                    if applied {
                        overlay.insert(k, Value::Int(*new));
                    }
                    results.push(OpResult::Cas {
                        key: k.clone(),
                        old: *old,
                        new: *new,
                        applied,
                    });
                }
                Op::Append(k, v) => {
                    let mut list = match current(&overlay, k) {
                        Some(Value::List(l)) => l,
                        None => Vec::new(),
                        Some(Value::Int(_)) => {
                            return Err(format!("append to register key {k:?}"));
                        }
                    };
                    list.push(*v);
                    overlay.insert(k, Value::List(list));
                    results.push(OpResult::Append(k.clone(), *v));
                }
            }
        }
        for (k, v) in overlay {
            self.data.insert(k.to_string(), v);
        }
        Ok(results)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_atomicity() {
        let mut s = KvState::default();
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
            ])
            .unwrap();
        assert_eq!(
            r[2],
            OpResult::Read("a".into(), Some(Value::List(vec![1, 2])))
        );
        assert!(matches!(r[4], OpResult::Cas { applied: true, .. }));
        assert!(matches!(r[5], OpResult::Cas { applied: false, .. }));
        assert_eq!(r[6], OpResult::Read("x".into(), Some(Value::Int(6))));
        assert_eq!(r[7], OpResult::Read("none".into(), None));
        // A failing op aborts the whole transaction.
        let err = s.execute(&[Op::Write("y".into(), 1), Op::Append("x".into(), 1)]);
        assert!(err.is_err());
        assert_eq!(s.get("y"), None);
        assert_eq!(s.get("x"), Some(&Value::Int(6)));
    }
}
