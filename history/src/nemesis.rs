//! Typed nemesis events: what the fault injector did, read back from the history
//! (harness.md §5, §6), so the checkers and the report do not each pick apart the
//! JSON `value`. Reads the harness's own events (`f` = the fault, `value.phase` =
//! `start`/`stop`, `heal-all` at the end) and Jepsen's (`:f :start-partition`,
//! `:f :stop-partition`, an `:invoke` then an `:info` per step).

use serde_json::Value;

use crate::history::{Event, History, OpType, Process};

/// Where in its life a fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The fault begins (`phase: "start"`, Jepsen's `:start-*`).
    Start,
    /// The fault ends (`phase: "stop"`, Jepsen's `:stop-*`).
    Stop,
    /// The final heal: every open fault ends (harness.md §5).
    HealAll,
    /// A one-off step with no duration recorded.
    Once,
}

/// One applied nemesis step.
#[derive(Debug, Clone, PartialEq)]
pub struct NemesisEvent {
    /// History index.
    pub index: u64,
    /// Nanoseconds since the test began.
    pub time: u64,
    /// The fault's name, e.g. "partition", "kill", "fail-node" (Jepsen's
    /// `start-partition` is "partition").
    pub fault: String,
    /// Start, stop, the final heal, or a one-off.
    pub phase: Phase,
    /// The node a node fault hit (`value.node`).
    pub node: Option<String>,
    /// That node's id, hex (`value.id`), for add-node and fail-node.
    pub id: Option<String>,
    /// Whether an add-node transaction was acknowledged (`value.acknowledged`).
    pub acknowledged: Option<bool>,
    /// The committed height the step refers to (`value.height`).
    pub height: Option<u64>,
    /// The whole recorded value, for display.
    pub value: Value,
}

impl NemesisEvent {
    /// The nemesis step an event records; `None` for client events and for
    /// Jepsen's nemesis invokes (the `:info` that follows says what happened).
    pub fn from_event(e: &Event) -> Option<NemesisEvent> {
        if e.process != Process::Nemesis || e.kind == OpType::Invoke {
            return None;
        }
        let v = &e.value;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let (fault, phase) = match s("phase").as_deref() {
            Some("start") => (e.f.clone(), Phase::Start),
            Some("stop") => (e.f.clone(), Phase::Stop),
            _ if e.f == "heal-all" => (e.f.clone(), Phase::HealAll),
            _ => match (e.f.strip_prefix("start-"), e.f.strip_prefix("stop-")) {
                (Some(f), _) => (f.to_string(), Phase::Start),
                (_, Some(f)) => (f.to_string(), Phase::Stop),
                _ => (e.f.clone(), Phase::Once),
            },
        };
        Some(NemesisEvent {
            index: e.index,
            time: e.time,
            fault,
            phase,
            node: s("node"),
            id: s("id"),
            acknowledged: v.get("acknowledged").and_then(Value::as_bool),
            height: v.get("height").and_then(Value::as_u64),
            value: Value::clone(v),
        })
    }
}

impl History {
    /// The nemesis steps as applied, typed, in history order.
    pub fn nemesis(&self) -> impl Iterator<Item = NemesisEvent> + '_ {
        self.events().iter().filter_map(NemesisEvent::from_event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_and_jepsen_nemesis_events_read_alike() {
        let jsonl = concat!(
            r#"{"index":0,"time":5,"process":"nemesis","type":"info","f":"partition","value":{"phase":"start","shape":"halves"}}"#,
            "\n",
            r#"{"index":1,"time":6,"process":"nemesis","type":"info","f":"fail-node","value":{"phase":"start","node":"n2","id":"ab12"}}"#,
            "\n",
            r#"{"index":2,"time":7,"process":"nemesis","type":"info","f":"partition","value":{"phase":"stop"}}"#,
            "\n",
            r#"{"index":3,"time":9,"process":"nemesis","type":"info","f":"heal-all","value":null}"#,
            "\n",
            r#"{"index":4,"time":9,"process":0,"type":"invoke","f":"read","value":null}"#,
            "\n",
        );
        let h = History::parse_jsonl(jsonl).unwrap();
        let ev: Vec<NemesisEvent> = h.nemesis().collect();
        let phases: Vec<(&str, Phase)> = ev.iter().map(|e| (e.fault.as_str(), e.phase)).collect();
        assert_eq!(
            phases,
            [
                ("partition", Phase::Start),
                ("fail-node", Phase::Start),
                ("partition", Phase::Stop),
                ("heal-all", Phase::HealAll)
            ]
        );
        assert_eq!(ev[1].node.as_deref(), Some("n2"));
        assert_eq!(ev[1].id.as_deref(), Some("ab12"));

        let edn = "{:type :invoke, :f :start-partition, :value :majority, :process :nemesis, :time 1, :index 0}\n{:type :info, :f :start-partition, :value [:isolated {\"n1\" #{\"n2\"}}], :process :nemesis, :time 2, :index 1}\n{:type :info, :f :stop-partition, :value nil, :process :nemesis, :time 3, :index 2}\n{:type :info, :f :kill, :value \"n1\", :process :nemesis, :time 4, :index 3}\n";
        let h = crate::edn::parse_history(edn).unwrap();
        let ev: Vec<(String, Phase, u64)> =
            h.nemesis().map(|e| (e.fault, e.phase, e.time)).collect();
        assert_eq!(
            ev,
            [
                ("partition".to_string(), Phase::Start, 2),
                ("partition".to_string(), Phase::Stop, 3),
                ("kill".to_string(), Phase::Once, 4)
            ]
        );
    }
}
