//! What every fault of harness.md §5 means, once, for every backend (Jepsen's
//! `nemesis/combined.clj`): each fault and its heal is a sequence of backend
//! primitives ([`NodeControl`], [`LinkControl`]). The value returned for the
//! history says what was done; where the backend's declared [`LinkCaps`] cannot
//! honour a fault exactly, it carries `"degraded": "<reason>"`, set here and
//! nowhere else.
//!
//! Faults compose (issue 16): the nemesis keeps every active fault with what it
//! holds. The desired [`LinkFaults`] is computed from all of them after every change
//! and handed to the backend whole, so stopping one link fault leaves another's
//! rules on the same link, a heal is the empty state, and a node that restarts gets
//! the rules that still hold. A node another active fault holds down (`kill`,
//! `crash-all`, a file-damaging `disk`) is not restarted by a stop, nor is a node
//! another `pause` holds resumed.

use crate::backend::{
    BackendError, DirectedLink, DiskControl, LinkCaps, LinkControl, LinkFaults, Lossy, NodeControl,
    NodeState, Slow,
};
use rollcall_workloads::{DiskFault, Fault};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The fault state the nemesis owns across calls.
#[derive(Debug, Default)]
pub struct Nemesis {
    /// The link faults that hold now: computed from `active`.
    links: LinkFaults,
    /// Every started fault that holds something, in start order.
    active: Vec<Held>,
}

/// What one active fault holds.
#[derive(Debug)]
struct Held {
    /// The fault (its stop finds it by equality).
    fault: Fault,
    /// Its link rules, on links the backend knew when it started.
    links: LinkFaults,
    /// Nodes it holds down: not restarted while it is active.
    down: Vec<String>,
    /// Nodes it holds paused: not resumed while it is active.
    paused: Vec<String>,
    /// What it did at its start (`crash-all`'s victims, recorded again at its stop).
    done: Vec<String>,
}

impl Held {
    fn new(fault: &Fault) -> Self {
        Held {
            fault: fault.clone(),
            links: LinkFaults::default(),
            down: Vec::new(),
            paused: Vec::new(),
            done: Vec::new(),
        }
    }
}

/// A backend as the nemesis needs it.
pub trait Target: NodeControl + LinkControl + DiskControl {}
impl<T: NodeControl + LinkControl + DiskControl + ?Sized> Target for T {}

impl Nemesis {
    /// The link faults that hold now.
    pub fn links(&self) -> &LinkFaults {
        &self.links
    }

    /// Whether an active fault holds `node` down.
    fn held_down(&self, node: &str) -> bool {
        self.active.iter().any(|h| h.down.iter().any(|n| n == node))
    }

    /// Whether an active fault holds `node` paused.
    fn held_paused(&self, node: &str) -> bool {
        self.active
            .iter()
            .any(|h| h.paused.iter().any(|n| n == node))
    }

    /// Recomputes the desired links from every active fault (a link two faults
    /// name gets the later-started one's loss or delay; a cut is a cut) and applies it.
    fn relink<B: Target + ?Sized>(&mut self, b: &mut B) -> Result<(), BackendError> {
        let mut want = LinkFaults::default();
        for h in &self.active {
            want.cut.extend(h.links.cut.iter().cloned());
            want.lossy
                .extend(h.links.lossy.iter().map(|(k, v)| (k.clone(), *v)));
            want.slow
                .extend(h.links.slow.iter().map(|(k, v)| (k.clone(), *v)));
            want.muted.extend(h.links.muted.iter().cloned());
        }
        self.links = want;
        b.apply_links(&self.links)
    }

    /// Records that `h` holds, if it holds anything.
    fn hold(&mut self, h: Held) {
        let empty = LinkFaults::default();
        if h.links != empty || !h.down.is_empty() || !h.paused.is_empty() || !h.done.is_empty() {
            self.active.push(h);
        }
    }

    /// Forgets the hold of `fault` (the earliest-started equal one), returning it.
    fn release(&mut self, fault: &Fault) -> Option<Held> {
        let i = self.active.iter().position(|h| h.fault == *fault)?;
        Some(self.active.remove(i))
    }

    /// Nodes of `nodes` held down now, by faults started before (a new down fault
    /// holds them too, so the earlier one's stop does not restart them).
    fn already_down<B: Target + ?Sized>(&self, b: &B, nodes: &[String]) -> Vec<String> {
        (nodes.iter())
            .filter(|n| self.held_down(n) && b.node_state(n).ok() == Some(NodeState::Killed))
            .cloned()
            .collect()
    }

    /// Starts `fault`; returns what was done, for the history and schedule.
    pub fn start<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
    ) -> Result<Value, BackendError> {
        Ok(match fault {
            Fault::Partition { blocked, .. } => self.cut_links(b, fault, blocked)?,
            Fault::Kill { nodes } => self.kill(b, fault, nodes)?,
            Fault::Pause { nodes } => self.pause(b, fault, nodes)?,
            Fault::CrashAll => self.crash_all(b, fault)?,
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
                let lossy = Lossy {
                    loss_pct: *loss_pct,
                    duplicate_pct: *duplicate_pct,
                };
                self.add_link_faults(b, fault, links, lossy, |f| &mut f.lossy, lossy_degradation)?
            }
            // `async` (issue 16) is `slow` past the base timeouts, on every link.
            Fault::Slow {
                links,
                delay_ms,
                jitter_ms,
            }
            | Fault::Async {
                links,
                delay_ms,
                jitter_ms,
            } => {
                let slow = Slow {
                    delay_ms: *delay_ms,
                    jitter_ms: *jitter_ms,
                };
                self.add_link_faults(b, fault, links, slow, |f| &mut f.slow, slow_degradation)?
            }
            Fault::Byzantine { nodes, behaviour } => b
                .start_byzantine(nodes, *behaviour)?
                .unwrap_or_else(|| cannot_lie(nodes)),
            Fault::Disk { node, kind } => self.disk(b, fault, node, *kind)?,
            Fault::MuteProposals { nodes } => self.mute(b, fault, nodes)?,
            Fault::Clock {
                node,
                rate_pct,
                jump_ms,
            } => clock(b, node, *rate_pct, *jump_ms)?,
            Fault::DuplicateKey { node, duplicate } => twin(b, node, duplicate)?,
        })
    }

    /// `partition`: the blocked directed links cut, on top of what is cut already.
    fn cut_links<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
        blocked: &[DirectedLink],
    ) -> Result<Value, BackendError> {
        let l = known_links(b, blocked);
        let mut h = Held::new(fault);
        h.links.cut.extend(l.iter().cloned());
        self.hold(h);
        self.relink(b)?;
        let mut v = json!({"links_blocked": l.len()});
        degrade(&mut v, one_way_degradation(&b.link_caps(), &self.links, &l));
        Ok(v)
    }

    /// `mute-proposals` (Twins, issue 12): the nodes' proposals dropped until its
    /// stop; where the backend cannot tell a proposal apart, recorded as degraded.
    fn mute<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
        nodes: &[String],
    ) -> Result<Value, BackendError> {
        let mut h = Held::new(fault);
        h.links.muted.extend(nodes.iter().cloned());
        self.hold(h);
        self.relink(b)?;
        let mut v = json!({"nodes": nodes});
        if !b.drops_proposals() {
            let why = "this backend cannot drop one node's proposals: they pass";
            degrade(&mut v, Some(why.into()));
        }
        Ok(v)
    }

    /// `kill`: the running or paused nodes killed, held down until its stop.
    fn kill<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
        nodes: &[String],
    ) -> Result<Value, BackendError> {
        let mut h = Held::new(fault);
        h.down = self.already_down(b, nodes);
        let done = each(
            b,
            nodes,
            &[NodeState::Running, NodeState::Paused],
            |b, n| b.kill(n),
        )?;
        h.down.extend(done.iter().cloned());
        self.hold(h);
        Ok(json!({"nodes": done}))
    }

    /// `pause`: the running nodes frozen, held paused until its stop (with those
    /// another pause holds already).
    fn pause<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
        nodes: &[String],
    ) -> Result<Value, BackendError> {
        let mut h = Held::new(fault);
        h.paused = (nodes.iter())
            .filter(|n| self.held_paused(n))
            .filter(|n| b.node_state(n).ok() == Some(NodeState::Paused))
            .cloned()
            .collect();
        let done = each(b, nodes, &[NodeState::Running], |b, n| b.pause(n))?;
        h.paused.extend(done.iter().cloned());
        self.hold(h);
        Ok(json!({"nodes": done}))
    }

    /// `disk`: a node left down for its files to be damaged is held down.
    fn disk<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
        node: &str,
        kind: DiskFault,
    ) -> Result<Value, BackendError> {
        let v = disk_start(b, node, kind)?;
        if kind.damages_files() && b.node_state(node)? == NodeState::Killed {
            let mut h = Held::new(fault);
            h.down = vec![node.to_string()];
            self.hold(h);
        }
        Ok(v)
    }

    /// `crash-all`: every running or paused node killed; remembered for the stop.
    fn crash_all<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
    ) -> Result<Value, BackendError> {
        let all = b.node_names();
        let mut h = Held::new(fault);
        h.down = self.already_down(b, &all);
        let done = each(b, &all, &[NodeState::Running, NodeState::Paused], |b, n| {
            b.kill(n)
        })?;
        h.down.extend(done.iter().cloned());
        h.done = done.clone();
        self.hold(h);
        Ok(json!({"nodes": done}))
    }

    /// `flaky` and `slow`: `value` on each known link of `links`, added to the
    /// desired state (the map `field` picks) and applied; what the backend's caps
    /// cannot honour is recorded by `shortfall`.
    fn add_link_faults<B: Target + ?Sized, T: Copy>(
        &mut self,
        b: &mut B,
        fault: &Fault,
        links: &[DirectedLink],
        value: T,
        field: fn(&mut LinkFaults) -> &mut BTreeMap<DirectedLink, T>,
        shortfall: fn(&LinkCaps, &T) -> Option<String>,
    ) -> Result<Value, BackendError> {
        let l = known_links(b, links);
        let mut h = Held::new(fault);
        for k in &l {
            field(&mut h.links).insert(k.clone(), value);
        }
        self.hold(h);
        self.relink(b)?;
        let mut v = json!({"links": l.len()});
        degrade(&mut v, shortfall(&b.link_caps(), &value));
        Ok(v)
    }

    /// Stops a fault started earlier (`fail-node` is for good: its stop does nothing).
    /// What other active faults hold stays held.
    pub fn stop<B: Target + ?Sized>(
        &mut self,
        b: &mut B,
        fault: &Fault,
    ) -> Result<Value, BackendError> {
        let mine = self.release(fault);
        Ok(match fault {
            Fault::Partition { blocked, .. } => {
                let l = known_links(b, blocked);
                self.relink(b)?;
                json!({"links_unblocked": l.len()})
            }
            Fault::Flaky { links, .. } | Fault::Slow { links, .. } | Fault::Async { links, .. } => {
                let l = known_links(b, links);
                self.relink(b)?;
                json!({"links": l.len()})
            }
            Fault::MuteProposals { nodes } => {
                self.relink(b)?;
                json!({"nodes": nodes})
            }
            Fault::Kill { nodes } => {
                let done = self.restart_free(b, nodes)?;
                json!({"nodes": done})
            }
            Fault::Pause { nodes } => {
                let done = each(b, nodes, &[NodeState::Paused], |b, n| {
                    if self.held_paused(n) {
                        Ok(false)
                    } else {
                        b.resume(n).map(|()| true)
                    }
                })?;
                json!({"nodes": done})
            }
            Fault::CrashAll => {
                let h = mine.unwrap_or_else(|| Held::new(fault));
                let down: Vec<String> = (b.node_names().into_iter())
                    .filter(|n| h.down.contains(n))
                    .collect();
                let restarted = self.restart_free(b, &down)?;
                let mut v = json!({"nodes": h.done});
                if restarted != h.done {
                    // Overlapping faults: some were another's to restart, or held.
                    v["restarted"] = json!(restarted);
                }
                v
            }
            Fault::AddNode { node } => json!({"node": node, "id": b.node_id(node)?}),
            Fault::FailNode { node } => json!({"node": node}),
            Fault::Byzantine { nodes, .. } => b
                .stop_byzantine(nodes)?
                .unwrap_or_else(|| cannot_lie(nodes)),
            Fault::DuplicateKey { duplicate, .. } => {
                b.node_state(duplicate)?;
                b.stop_for_good(duplicate)?;
                json!({"duplicate": duplicate, "stopped": true})
            }
            Fault::Disk { node, kind } => {
                let held = self.held_down(node);
                disk_stop(b, node, *kind, held)?
            }
            Fault::Clock { node, .. } => clock(b, node, TRUE_RATE_PCT, 0)?,
        })
    }

    /// Restarts the killed nodes of `nodes` that no active fault holds down.
    fn restart_free<B: Target + ?Sized>(
        &self,
        b: &mut B,
        nodes: &[String],
    ) -> Result<Vec<String>, BackendError> {
        each(b, nodes, &[NodeState::Killed], |b, n| {
            if self.held_down(n) {
                Ok(false)
            } else {
                b.restart(n).map(|()| true)
            }
        })
    }

    /// The final heal of harness.md §5: every link healed, twins stopped for good,
    /// paused nodes resumed, killed ones restarted (not those failed for good).
    pub fn heal_all<B: Target + ?Sized>(&mut self, b: &mut B) -> Result<Value, BackendError> {
        self.links = LinkFaults::default();
        self.active.clear();
        b.apply_links(&self.links)?;
        let honest_again = b.stop_all_byzantine();
        let clocks = b.reset_clocks();
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
        let mut out = json!({
            "resumed": resumed,
            "restarted": restarted,
            "duplicates_stopped": stopped,
        });
        // Only when there were any, so runs without adversaries record what they did.
        if !honest_again.is_empty() {
            out["adversaries_stopped"] = json!(honest_again);
        }
        if !clocks.is_empty() {
            out["clocks_reset"] = json!(clocks);
        }
        Ok(out)
    }
}

/// `duplicate-key`: a twin of `node` with its key, started on an empty disk.
fn twin<B: Target + ?Sized>(b: &mut B, node: &str, duplicate: &str) -> Result<Value, BackendError> {
    b.node_state(node)?;
    if matches!(b.node_state(duplicate), Err(BackendError::UnknownNode(_))) {
        b.add_twin(node, duplicate)?;
    }
    if b.node_state(duplicate)? == NodeState::NotStarted {
        b.start_new(duplicate)?;
    }
    Ok(json!({"node": node, "duplicate": duplicate, "id": b.node_id(duplicate)?}))
}

/// A clock's true rate, percent.
const TRUE_RATE_PCT: u32 = 100;

/// `clock` (issue 16): the node's clock at `rate_pct` after a jump of `jump_ms`;
/// where the backend cannot, recorded as degraded.
fn clock<B: Target + ?Sized>(
    b: &mut B,
    node: &str,
    rate_pct: u32,
    jump_ms: i64,
) -> Result<Value, BackendError> {
    b.node_state(node)?;
    Ok(match b.set_clock(node, rate_pct, jump_ms)? {
        Some(v) => v,
        None => {
            let mut v = json!({"node": node, "applied": false});
            degrade(
                &mut v,
                Some("this backend cannot change one node's clock: it keeps true time".into()),
            );
            v
        }
    })
}

/// What a `byzantine` fault records where the backend cannot run an adversary.
fn cannot_lie(nodes: &[String]) -> Value {
    let mut v = json!({"adversaries": nodes, "applied": false});
    degrade(
        &mut v,
        Some("this backend cannot run an adversary: the nodes stay honest".into()),
    );
    v
}

/// Applies `act` to each named node whose state is one of `when`; returns the
/// names of those it acted on (`act` says whether it did).
fn each<B: Target + ?Sized, R: Acted>(
    b: &mut B,
    nodes: &[String],
    when: &[NodeState],
    act: impl Fn(&mut B, &str) -> Result<R, BackendError>,
) -> Result<Vec<String>, BackendError> {
    let mut done = Vec::new();
    for n in nodes {
        if when.contains(&b.node_state(n)?) && act(b, n)?.acted() {
            done.push(n.clone());
        }
    }
    Ok(done)
}

/// What an action of [`each`] returns: `()` always acts, `bool` says whether it did.
trait Acted {
    fn acted(self) -> bool;
}

impl Acted for () {
    fn acted(self) -> bool {
        true
    }
}

impl Acted for bool {
    fn acted(self) -> bool {
        self
    }
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

/// What is left of a [`crate::backend::DiskUnsupported`] reason in the history.
fn unsupported(v: &mut Value, e: crate::backend::DiskUnsupported) {
    degrade(v, Some(e.0));
}

/// The `disk` nemesis (issue 13) on one node: a file-damaging fault kills the node
/// (if it runs), damages its files and leaves it down until the stop restarts it
/// (it must detect the damage then); a write-failing fault arms the failure under
/// the running node, which must stop at its next write or sync (fail-stop).
fn disk_start<B: Target + ?Sized>(
    b: &mut B,
    node: &str,
    kind: DiskFault,
) -> Result<Value, BackendError> {
    let state = b.node_state(node)?;
    let mut v = json!({"node": node, "kind": kind});
    if kind.damages_files() {
        if matches!(state, NodeState::Running | NodeState::Paused) {
            b.kill(node)?;
        }
        if b.node_state(node)? != NodeState::Killed {
            v["skipped"] = json!(format!("{state:?}"));
            return Ok(v);
        }
        match b.damage_disk(node, kind) {
            Ok(done) => v["done"] = done,
            Err(e) => unsupported(&mut v, e),
        }
    } else if let Err(e) = b.fail_disk(node, Some(kind)) {
        unsupported(&mut v, e);
    }
    Ok(v)
}

/// Heals a disk fault: writes work again and the node restarts from its disk
/// (a node the fault stopped, or one left down for its files to be damaged),
/// unless another active fault holds it down.
fn disk_stop<B: Target + ?Sized>(
    b: &mut B,
    node: &str,
    kind: DiskFault,
    held_by_another: bool,
) -> Result<Value, BackendError> {
    if !kind.damages_files() {
        let _ = b.fail_disk(node, None);
    }
    let restarted = b.node_state(node)? == NodeState::Killed && !held_by_another;
    if restarted {
        b.restart(node)?;
    }
    Ok(json!({"node": node, "kind": kind, "restarted": restarted}))
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

#[cfg(test)]
mod tests {
    //! Each fault's meaning over a recording fake backend: the primitives called
    //! for the fault and for its heal, and what the history records.

    use super::*;
    use rollcall_workloads::faults::PartitionShape;

    /// A backend that only records primitive calls and keeps node states.
    struct Fake {
        nodes: Vec<(String, NodeState, bool)>,
        caps: LinkCaps,
        calls: Vec<String>,
    }

    impl Fake {
        fn new(caps: LinkCaps) -> Self {
            let mut nodes: Vec<_> = (1..=4)
                .map(|i| (format!("n{i}"), NodeState::Running, false))
                .collect();
            nodes.push(("n5".into(), NodeState::NotStarted, false));
            Fake {
                nodes,
                caps,
                calls: Vec::new(),
            }
        }
        fn at(&self, n: &str) -> Result<usize, BackendError> {
            (self.nodes.iter().position(|x| x.0 == n))
                .ok_or_else(|| BackendError::UnknownNode(n.into()))
        }
        fn set(&mut self, call: &str, n: &str, s: NodeState) -> Result<(), BackendError> {
            let i = self.at(n)?;
            self.nodes[i].1 = s;
            self.calls.push(format!("{call} {n}"));
            Ok(())
        }
        fn take(&mut self) -> Vec<String> {
            std::mem::take(&mut self.calls)
        }
    }

    impl NodeControl for Fake {
        fn node_names(&self) -> Vec<String> {
            self.nodes.iter().map(|n| n.0.clone()).collect()
        }
        fn node_state(&self, node: &str) -> Result<NodeState, BackendError> {
            Ok(self.nodes[self.at(node)?].1)
        }
        fn is_twin(&self, node: &str) -> bool {
            self.at(node).is_ok_and(|i| self.nodes[i].2)
        }
        fn node_id(&self, node: &str) -> Result<String, BackendError> {
            Ok(format!("id-{}", node.trim_end_matches("-dup")))
        }
        fn kill(&mut self, n: &str) -> Result<(), BackendError> {
            self.set("kill", n, NodeState::Killed)
        }
        fn restart(&mut self, n: &str) -> Result<(), BackendError> {
            self.set("restart", n, NodeState::Running)
        }
        fn pause(&mut self, n: &str) -> Result<(), BackendError> {
            self.set("pause", n, NodeState::Paused)
        }
        fn resume(&mut self, n: &str) -> Result<(), BackendError> {
            self.set("resume", n, NodeState::Running)
        }
        fn stop_for_good(&mut self, n: &str) -> Result<(), BackendError> {
            self.set("stop-for-good", n, NodeState::Failed)
        }
        fn start_new(&mut self, n: &str) -> Result<(), BackendError> {
            self.set("start-new", n, NodeState::Running)
        }
        fn add_twin(&mut self, of: &str, twin: &str) -> Result<(), BackendError> {
            self.at(of)?;
            self.nodes.push((twin.into(), NodeState::NotStarted, true));
            self.calls.push(format!("add-twin {of} {twin}"));
            Ok(())
        }
    }

    impl DiskControl for Fake {}

    impl LinkControl for Fake {
        fn link_caps(&self) -> LinkCaps {
            self.caps.clone()
        }
        fn apply_links(&mut self, w: &LinkFaults) -> Result<(), BackendError> {
            let cut: Vec<String> = w.cut.iter().map(|(a, b)| format!("{a}>{b}")).collect();
            let lossy: Vec<String> = (w.lossy.iter())
                .map(|((a, b), l)| format!("{a}>{b}:{}/{}", l.loss_pct, l.duplicate_pct))
                .collect();
            let slow: Vec<String> = (w.slow.iter())
                .map(|((a, b), s)| format!("{a}>{b}:{}+{}", s.delay_ms, s.jitter_ms))
                .collect();
            self.calls.push(format!(
                "links cut=[{}] lossy=[{}] slow=[{}]",
                cut.join(" "),
                lossy.join(" "),
                slow.join(" ")
            ));
            Ok(())
        }
    }

    /// Docker's links: packets one way, no duplication, no netem here.
    fn tcp_caps() -> LinkCaps {
        LinkCaps {
            one_way_messages: false,
            duplicate: false,
            delay: false,
            jitter: false,
            rate_limit_kbit: Some(256),
        }
    }

    fn links(pairs: &[(&str, &str)]) -> Vec<DirectedLink> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn partition(pairs: &[(&str, &str)]) -> Fault {
        Fault::Partition {
            shape: PartitionShape::Random,
            groups: Vec::new(),
            blocked: links(pairs),
        }
    }

    #[test]
    fn partition_cuts_exactly_its_directed_links_and_heals_them() {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        // A link to a node the backend does not know is ignored, not counted.
        let f = partition(&[("n1", "n2"), ("n3", "n1"), ("n1", "n9")]);
        let v = n.start(&mut b, &f).unwrap();
        assert_eq!(v, json!({"links_blocked": 2}));
        assert_eq!(b.take(), ["links cut=[n1>n2 n3>n1] lossy=[] slow=[]"]);
        let v = n.stop(&mut b, &f).unwrap();
        assert_eq!(v, json!({"links_unblocked": 2}));
        assert_eq!(b.take(), ["links cut=[] lossy=[] slow=[]"]);
    }

    #[test]
    fn one_way_cut_is_recorded_as_degraded_where_links_are_tcp() {
        let mut b = Fake::new(tcp_caps());
        let mut n = Nemesis::default();
        let v = n.start(&mut b, &partition(&[("n1", "n2")])).unwrap();
        let d = v["degraded"].as_str().unwrap_or_default();
        assert!(d.contains("n1->n2") && d.contains("TCP"), "{v}");
        // Both directions cut: nothing is degraded.
        let mut n = Nemesis::default();
        let v = n
            .start(&mut b, &partition(&[("n1", "n2"), ("n2", "n1")]))
            .unwrap();
        assert_eq!(v.get("degraded"), None, "{v}");
    }

    #[test]
    fn kill_kills_running_nodes_and_restarts_only_the_killed() {
        let mut b = Fake::new(LinkCaps::exact());
        b.nodes[1].1 = NodeState::Failed;
        let mut n = Nemesis::default();
        let f = Fault::Kill {
            nodes: names(&["n1", "n2", "n3"]),
        };
        assert_eq!(n.start(&mut b, &f).unwrap(), json!({"nodes": ["n1", "n3"]}));
        assert_eq!(b.take(), ["kill n1", "kill n3"]);
        assert_eq!(n.stop(&mut b, &f).unwrap(), json!({"nodes": ["n1", "n3"]}));
        assert_eq!(b.take(), ["restart n1", "restart n3"]);
        let f = Fault::Kill {
            nodes: names(&["n7"]),
        };
        assert!(matches!(
            n.start(&mut b, &f),
            Err(BackendError::UnknownNode(_))
        ));
    }

    #[test]
    fn pause_freezes_and_resumes() {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        let f = Fault::Pause {
            nodes: names(&["n2", "n5"]),
        };
        assert_eq!(n.start(&mut b, &f).unwrap(), json!({"nodes": ["n2"]}));
        assert_eq!(b.take(), ["pause n2"]);
        assert_eq!(n.stop(&mut b, &f).unwrap(), json!({"nodes": ["n2"]}));
        assert_eq!(b.take(), ["resume n2"]);
    }

    #[test]
    fn crash_all_kills_every_live_node_and_restarts_those() {
        let mut b = Fake::new(LinkCaps::exact());
        b.nodes[2].1 = NodeState::Paused;
        b.nodes[3].1 = NodeState::Failed;
        let mut n = Nemesis::default();
        let v = n.start(&mut b, &Fault::CrashAll).unwrap();
        assert_eq!(v, json!({"nodes": ["n1", "n2", "n3"]}));
        assert_eq!(b.take(), ["kill n1", "kill n2", "kill n3"]);
        let v = n.stop(&mut b, &Fault::CrashAll).unwrap();
        assert_eq!(v, json!({"nodes": ["n1", "n2", "n3"]}));
        assert_eq!(b.take(), ["restart n1", "restart n2", "restart n3"]);
    }

    #[test]
    fn add_node_starts_the_spare_once() {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        let f = Fault::AddNode { node: "n5".into() };
        assert_eq!(
            n.start(&mut b, &f).unwrap(),
            json!({"node": "n5", "id": "id-n5"})
        );
        assert_eq!(b.take(), ["start-new n5"]);
        n.start(&mut b, &f).unwrap();
        assert!(b.take().is_empty(), "a running spare was started again");
        n.stop(&mut b, &f).unwrap();
        assert!(b.take().is_empty(), "add-node's stop touched a node");
    }

    #[test]
    fn fail_node_stops_for_good_and_its_stop_does_nothing() {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        let f = Fault::FailNode { node: "n4".into() };
        n.start(&mut b, &f).unwrap();
        assert_eq!(b.take(), ["stop-for-good n4"]);
        assert_eq!(n.stop(&mut b, &f).unwrap(), json!({"node": "n4"}));
        n.heal_all(&mut b).unwrap();
        assert!(!b.take().iter().any(|c| c.contains("n4")), "n4 came back");
    }

    /// Starts `f` on exact links (the state `want`, nothing degraded) and stops it.
    fn link_fault_round_trip(f: &Fault, want: &str) {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        assert_eq!(n.start(&mut b, f).unwrap(), json!({"links": 1}));
        assert_eq!(b.take(), [want]);
        n.stop(&mut b, f).unwrap();
        assert_eq!(b.take(), ["links cut=[] lossy=[] slow=[]"]);
    }

    fn assert_degraded(caps: &LinkCaps, f: &Fault, why: &str) {
        let mut b = Fake::new(caps.clone());
        let v = Nemesis::default().start(&mut b, f).unwrap();
        let d = v["degraded"].as_str().unwrap_or_default();
        assert!(d.contains(why), "{v}");
    }

    #[test]
    fn flaky_makes_links_lossy_and_records_missing_duplication() {
        let f = Fault::Flaky {
            links: links(&[("n1", "n2")]),
            loss_pct: 20,
            duplicate_pct: 5,
        };
        link_fault_round_trip(&f, "links cut=[] lossy=[n1>n2:20/5] slow=[]");
        assert_degraded(&tcp_caps(), &f, "duplication");
    }

    #[test]
    fn slow_delays_links_and_records_a_rate_limit_instead() {
        let f = Fault::Slow {
            links: links(&[("n2", "n3")]),
            delay_ms: 50,
            jitter_ms: 10,
        };
        link_fault_round_trip(&f, "links cut=[] lossy=[] slow=[n2>n3:50+10]");
        assert_degraded(&tcp_caps(), &f, "256 kbit/s");
        let caps = LinkCaps {
            jitter: false,
            ..LinkCaps::exact()
        };
        assert_degraded(&caps, &f, "jitter");
    }

    #[test]
    fn async_delays_links_as_slow_does_and_is_degraded_without_netem() {
        let f = Fault::Async {
            links: links(&[("n1", "n2")]),
            delay_ms: 600,
            jitter_ms: 100,
        };
        link_fault_round_trip(&f, "links cut=[] lossy=[] slow=[n1>n2:600+100]");
        // Docker without netem: rate-limited, not delayed past the timeouts.
        assert_degraded(&tcp_caps(), &f, "256 kbit/s");
    }

    #[test]
    fn duplicate_key_starts_a_twin_and_stops_it_for_good() {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        let f = Fault::DuplicateKey {
            node: "n2".into(),
            duplicate: "n2-dup".into(),
        };
        let v = n.start(&mut b, &f).unwrap();
        assert_eq!(
            v,
            json!({"node": "n2", "duplicate": "n2-dup", "id": "id-n2"})
        );
        assert_eq!(b.take(), ["add-twin n2 n2-dup", "start-new n2-dup"]);
        let v = n.stop(&mut b, &f).unwrap();
        assert_eq!(v, json!({"duplicate": "n2-dup", "stopped": true}));
        assert_eq!(b.take(), ["stop-for-good n2-dup"]);
    }

    #[test]
    fn faults_compose_and_the_final_heal_undoes_them_all() {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        let cut = partition(&[("n1", "n2")]);
        let flaky = Fault::Flaky {
            links: links(&[("n3", "n4")]),
            loss_pct: 10,
            duplicate_pct: 0,
        };
        n.start(&mut b, &cut).unwrap();
        n.start(&mut b, &flaky).unwrap();
        n.stop(&mut b, &flaky).unwrap();
        assert_eq!(
            b.take().last().map(String::as_str),
            Some("links cut=[n1>n2] lossy=[] slow=[]"),
            "stopping one link fault undid another"
        );
        let twin = Fault::DuplicateKey {
            node: "n1".into(),
            duplicate: "n1-dup".into(),
        };
        n.start(&mut b, &twin).unwrap();
        b.nodes[1].1 = NodeState::Paused;
        b.nodes[2].1 = NodeState::Killed;
        b.take();
        let v = n.heal_all(&mut b).unwrap();
        assert_eq!(
            b.take(),
            [
                "links cut=[] lossy=[] slow=[]",
                "resume n2",
                "restart n3",
                "stop-for-good n1-dup"
            ]
        );
        assert_eq!(
            v,
            json!({"resumed": ["n2"], "restarted": ["n3"], "duplicates_stopped": ["n1-dup"]})
        );
    }

    /// Issue 16: with faults overlapping, a stop undoes only its own fault. Two
    /// partitions share a link; a kill runs under crash-all; a pause under a kill.
    #[test]
    fn a_stop_leaves_what_another_active_fault_holds() {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        let a = partition(&[("n1", "n2"), ("n2", "n1")]);
        let c = partition(&[("n1", "n2"), ("n1", "n3")]);
        n.start(&mut b, &a).unwrap();
        n.start(&mut b, &c).unwrap();
        b.take();
        n.stop(&mut b, &a).unwrap();
        assert_eq!(b.take(), ["links cut=[n1>n2 n1>n3] lossy=[] slow=[]"]);
        let slow = Fault::Slow {
            links: links(&[("n1", "n2")]),
            delay_ms: 50,
            jitter_ms: 0,
        };
        n.start(&mut b, &slow).unwrap();
        n.stop(&mut b, &c).unwrap();
        assert_eq!(
            b.take().last().unwrap(),
            "links cut=[] lossy=[] slow=[n1>n2:50+0]"
        );
        n.stop(&mut b, &slow).unwrap();

        let kill = Fault::Kill {
            nodes: names(&["n1"]),
        };
        n.start(&mut b, &kill).unwrap();
        n.start(&mut b, &Fault::CrashAll).unwrap();
        b.take();
        assert_eq!(n.stop(&mut b, &kill).unwrap(), json!({"nodes": []}));
        assert!(
            b.take().is_empty(),
            "the kill's stop restarted a node crash-all holds"
        );
        let v = n.stop(&mut b, &Fault::CrashAll).unwrap();
        assert_eq!(
            b.take(),
            ["restart n1", "restart n2", "restart n3", "restart n4"]
        );
        assert_eq!(v["nodes"], json!(["n2", "n3", "n4"]));

        // Crash-all over a kill: the crash-all's stop leaves n2 to the kill.
        let kill2 = Fault::Kill {
            nodes: names(&["n2"]),
        };
        n.start(&mut b, &kill2).unwrap();
        n.start(&mut b, &Fault::CrashAll).unwrap();
        n.stop(&mut b, &Fault::CrashAll).unwrap();
        assert!(!b.take().contains(&"restart n2".to_string()));
        n.stop(&mut b, &kill2).unwrap();
        assert_eq!(b.take(), ["restart n2"]);

        // Two pauses of n3: the first stop does not resume it.
        let p1 = Fault::Pause {
            nodes: names(&["n3"]),
        };
        let p2 = Fault::Pause {
            nodes: names(&["n3", "n4"]),
        };
        n.start(&mut b, &p1).unwrap();
        n.start(&mut b, &p2).unwrap();
        assert_eq!(b.take(), ["pause n3", "pause n4"]);
        assert_eq!(n.stop(&mut b, &p1).unwrap(), json!({"nodes": []}));
        // p2 holds n4 only (n3 was paused already): its stop resumes both.
        assert_eq!(n.stop(&mut b, &p2).unwrap(), json!({"nodes": ["n3", "n4"]}));
    }

    /// A backend without per-node clocks records the fault as
    /// degraded and changes nothing; its stop and the heal touch no node.
    #[test]
    fn clock_is_degraded_where_the_backend_has_no_node_clock() {
        let mut b = Fake::new(LinkCaps::exact());
        let mut n = Nemesis::default();
        let f = Fault::Clock {
            node: "n2".into(),
            rate_pct: 50,
            jump_ms: -1000,
        };
        let v = n.start(&mut b, &f).unwrap();
        assert_eq!(v["applied"], false);
        assert!(v["degraded"].as_str().unwrap().contains("clock"), "{v}");
        n.stop(&mut b, &f).unwrap();
        assert!(b.take().is_empty());
        let bad = Fault::Clock {
            node: "n9".into(),
            rate_pct: 50,
            jump_ms: 0,
        };
        assert!(matches!(
            n.start(&mut b, &bad),
            Err(BackendError::UnknownNode(_))
        ));
    }
}
