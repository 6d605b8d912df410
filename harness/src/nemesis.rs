//! What every fault of harness.md §5 means, once, for every backend (Jepsen's
//! `nemesis/combined.clj`): each fault and its heal is a sequence of backend
//! primitives ([`NodeControl`], [`LinkControl`]). The value returned for the
//! history says what was done; where the backend's declared [`LinkCaps`] cannot
//! honour a fault exactly, it carries `"degraded": "<reason>"`, set here and
//! nowhere else.
//!
//! Link faults compose: the nemesis keeps the whole desired [`LinkFaults`] and hands
//! it to the backend after every change, so a heal is the empty state and a node
//! that restarts gets the rules that still hold.

use crate::backend::{
    BackendError, DirectedLink, LinkCaps, LinkControl, LinkFaults, Lossy, NodeControl, NodeState,
    Slow,
};
use rollcall_workloads::Fault;
use serde_json::{json, Value};

/// The fault state the nemesis owns across calls.
#[derive(Debug, Default)]
pub struct Nemesis {
    /// The link faults that hold now.
    links: LinkFaults,
    /// Nodes `crash-all` killed, restarted on its stop.
    crashed_all: Vec<String>,
}

/// A backend as the nemesis needs it.
pub trait Target: NodeControl + LinkControl {}
impl<T: NodeControl + LinkControl + ?Sized> Target for T {}

impl Nemesis {
    /// The link faults that hold now.
    pub fn links(&self) -> &LinkFaults {
        &self.links
    }

    /// Starts `fault`; returns what was done, for the history and schedule.
    pub fn start<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
    ) -> Result<Value, BackendError> {
        Ok(match fault {
            Fault::Partition { blocked, .. } => {
                let l = known_links(b, blocked);
                self.links.cut.extend(l.iter().cloned());
                b.apply_links(&self.links)?;
                let mut v = json!({"links_blocked": l.len()});
                degrade(&mut v, one_way_degradation(&b.link_caps(), &self.links, &l));
                v
            }
            Fault::Kill { nodes } => {
                let done = each(
                    b,
                    nodes,
                    &[NodeState::Running, NodeState::Paused],
                    |b, n| b.kill(n),
                )?;
                json!({"nodes": done})
            }
            Fault::Pause { nodes } => {
                let done = each(b, nodes, &[NodeState::Running], |b, n| b.pause(n))?;
                json!({"nodes": done})
            }
            Fault::CrashAll => {
                let all = b.node_names();
                let done = each(b, &all, &[NodeState::Running, NodeState::Paused], |b, n| {
                    b.kill(n)
                })?;
                self.crashed_all = done.clone();
                json!({"nodes": done})
            }
            Fault::AddNode { node } => {
                if b.node_state(node)? == NodeState::NotStarted {
                    b.start_new(node)?;
                }
                json!({"node": node, "id": b.node_id(node)?})
            }
            Fault::FailNode { node } => {
                b.node_state(node)?;
                b.stop_for_good(node)?;
                json!({"node": node, "id": b.node_id(node)?})
            }
            Fault::Flaky {
                links,
                loss_pct,
                duplicate_pct,
            } => {
                let l = known_links(b, links);
                let lossy = Lossy {
                    loss_pct: *loss_pct,
                    duplicate_pct: *duplicate_pct,
                };
                for k in &l {
                    self.links.lossy.insert(k.clone(), lossy);
                }
                b.apply_links(&self.links)?;
                let mut v = json!({"links": l.len()});
                degrade(&mut v, lossy_degradation(&b.link_caps(), &lossy));
                v
            }
            Fault::Slow {
                links,
                delay_ms,
                jitter_ms,
            } => {
                let l = known_links(b, links);
                let slow = Slow {
                    delay_ms: *delay_ms,
                    jitter_ms: *jitter_ms,
                };
                for k in &l {
                    self.links.slow.insert(k.clone(), slow);
                }
                b.apply_links(&self.links)?;
                let mut v = json!({"links": l.len()});
                degrade(&mut v, slow_degradation(&b.link_caps(), &slow));
                v
            }
            Fault::DuplicateKey { node, duplicate } => {
                b.node_state(node)?;
                if matches!(b.node_state(duplicate), Err(BackendError::UnknownNode(_))) {
                    b.add_twin(node, duplicate)?;
                }
                if b.node_state(duplicate)? == NodeState::NotStarted {
                    b.start_new(duplicate)?;
                }
                json!({"node": node, "duplicate": duplicate, "id": b.node_id(duplicate)?})
            }
        })
    }

    /// Stops a fault started earlier (`fail-node` is for good: its stop does nothing).
    pub fn stop<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
    ) -> Result<Value, BackendError> {
        Ok(match fault {
            Fault::Partition { blocked, .. } => {
                let l = known_links(b, blocked);
                for k in &l {
                    self.links.cut.remove(k);
                }
                b.apply_links(&self.links)?;
                json!({"links_unblocked": l.len()})
            }
            Fault::Kill { nodes } => {
                let done = each(b, nodes, &[NodeState::Killed], |b, n| b.restart(n))?;
                json!({"nodes": done})
            }
            Fault::Pause { nodes } => {
                let done = each(b, nodes, &[NodeState::Paused], |b, n| b.resume(n))?;
                json!({"nodes": done})
            }
            Fault::CrashAll => {
                let all = std::mem::take(&mut self.crashed_all);
                each(b, &all, &[NodeState::Killed], |b, n| b.restart(n))?;
                json!({"nodes": all})
            }
            Fault::AddNode { node } => json!({"node": node, "id": b.node_id(node)?}),
            Fault::FailNode { node } => json!({"node": node}),
            Fault::Flaky { links, .. } => {
                let l = known_links(b, links);
                for k in &l {
                    self.links.lossy.remove(k);
                }
                b.apply_links(&self.links)?;
                json!({"links": l.len()})
            }
            Fault::Slow { links, .. } => {
                let l = known_links(b, links);
                for k in &l {
                    self.links.slow.remove(k);
                }
                b.apply_links(&self.links)?;
                json!({"links": l.len()})
            }
            Fault::DuplicateKey { duplicate, .. } => {
                b.node_state(duplicate)?;
                b.stop_for_good(duplicate)?;
                json!({"duplicate": duplicate, "stopped": true})
            }
        })
    }

    /// The final heal of harness.md §5: every link healed, twins stopped for good,
    /// paused nodes resumed, killed ones restarted (not those failed for good).
    pub fn heal_all<B: Target + ?Sized>(&mut self, b: &mut B) -> Result<Value, BackendError> {
        self.links = LinkFaults::default();
        b.apply_links(&self.links)?;
        self.crashed_all.clear();
        let (mut resumed, mut restarted, mut stopped) = (Vec::new(), Vec::new(), Vec::new());
        for n in b.node_names() {
            let state = b.node_state(&n)?;
            if b.is_twin(&n) && state != NodeState::Failed {
                b.stop_for_good(&n)?;
                stopped.push(n);
            } else if state == NodeState::Paused {
                b.resume(&n)?;
                resumed.push(n);
            } else if state == NodeState::Killed {
                b.restart(&n)?;
                restarted.push(n);
            }
        }
        Ok(json!({
            "resumed": resumed,
            "restarted": restarted,
            "duplicates_stopped": stopped,
        }))
    }
}

/// Applies `act` to each named node whose state is one of `when`; returns their names.
fn each<B: Target + ?Sized>(
    b: &mut B,
    nodes: &[String],
    when: &[NodeState],
    act: impl Fn(&mut B, &str) -> Result<(), BackendError>,
) -> Result<Vec<String>, BackendError> {
    let mut done = Vec::new();
    for n in nodes {
        if when.contains(&b.node_state(n)?) {
            act(b, n)?;
            done.push(n.clone());
        }
    }
    Ok(done)
}

/// The links both of whose ends the backend knows (others are ignored, as a
/// schedule written for a bigger cluster may name them).
fn known_links<B: Target + ?Sized>(b: &B, links: &[DirectedLink]) -> Vec<DirectedLink> {
    links
        .iter()
        .filter(|(x, y)| b.node_state(x).is_ok() && b.node_state(y).is_ok())
        .cloned()
        .collect()
}

fn degrade(v: &mut Value, reason: Option<String>) {
    if let (Some(r), Value::Object(m)) = (reason, v) {
        m.insert("degraded".into(), Value::from(r));
    }
}

/// A one-way cut where the reverse link still carries traffic cannot stay one-way
/// on a backend whose messages ride TCP connections.
fn one_way_degradation(
    caps: &LinkCaps,
    all: &LinkFaults,
    added: &[DirectedLink],
) -> Option<String> {
    if caps.one_way_messages {
        return None;
    }
    let one_way: Vec<String> = added
        .iter()
        .filter(|(x, y)| !all.cut.contains(&(y.clone(), x.clone())))
        .map(|(x, y)| format!("{x}->{y}"))
        .collect();
    (!one_way.is_empty()).then(|| {
        format!(
            "one-way cuts {} drop packets one way only, but TCP connections between those pairs stall both ways",
            one_way.join(", ")
        )
    })
}

fn lossy_degradation(caps: &LinkCaps, l: &Lossy) -> Option<String> {
    (l.duplicate_pct > 0 && !caps.duplicate)
        .then(|| "no message duplication on this backend: loss only".to_string())
}

fn slow_degradation(caps: &LinkCaps, s: &Slow) -> Option<String> {
    if !caps.delay && (s.delay_ms > 0 || s.jitter_ms > 0) {
        return Some(match caps.rate_limit_kbit {
            Some(k) => {
                format!("no delay on this backend: links rate-limited to {k} kbit/s instead")
            }
            None => "no delay on this backend: links not slowed".to_string(),
        });
    }
    (s.jitter_ms > 0 && !caps.jitter)
        .then(|| "no jitter on this backend: constant delay only".to_string())
}
