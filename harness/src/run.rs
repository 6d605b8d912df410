//! The backend-independent run loop (harness.md §4–6): client processes invoking
//! workload operations at the rate limit, the nemesis schedule, the final heal, the
//! recovery wait, final reads on every live node, and the history. Faults are
//! given their meaning by [`crate::nemesis`].

use crate::backend::{Backend, BackendError, ClientOutcome, Completed, NodeDumpData, Ticket};
use crate::cluster::ClusterSpec;
use crate::history::{Recorder, Who};
use crate::nemesis::Nemesis;
use crate::options::TestOptions;
use crate::progress::Progress;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rollcall_node::types::{Params, Tx, TxBody};
use rollcall_workloads::{
    make, plan, Completion, Fault, Invocation, PlanSpec, PlannedFault, Workload,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};

/// Longest step of the loop, ns: the resolution of invokes after completions.
const STEP_NS: u64 = 1_000_000;
/// Extra wait for a fail-node victim's eviction after the recovery wait, ns.
const EVICTION_WAIT_NS: u64 = 60_000_000_000;
/// Longest final-read phase, ns.
const FINAL_READS_NS: u64 = 60_000_000_000;

/// Seeds of a run's independent streams, all drawn from the one `--seed`.
#[derive(Clone, Copy, Debug)]
pub struct Seeds {
    /// Keys and genesis.
    pub cluster: u64,
    /// Nemesis schedule.
    pub plan: u64,
    /// Workload and client timing.
    pub clients: u64,
    /// The backend (network delays, loss).
    pub backend: u64,
    /// The adversarial client (issue 12; drawn last, so the others are unchanged).
    pub attacks: u64,
}

impl Seeds {
    /// Derives every stream from `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        Seeds {
            cluster: r.next_u64(),
            plan: r.next_u64(),
            clients: r.next_u64(),
            backend: r.next_u64(),
            attacks: r.next_u64(),
        }
    }
}

/// The genesis parameters of a run.
pub fn params(opts: &TestOptions) -> Params {
    Params {
        eviction_total: opts.eviction_total,
        min_roster: opts.min_roster,
        ..Params::default()
    }
}

/// The cluster of a run.
pub fn cluster(opts: &TestOptions) -> ClusterSpec {
    ClusterSpec::generate(
        Seeds::from_seed(opts.seed).cluster,
        opts.nodes,
        opts.spare,
        params(opts),
    )
}

/// The longest round-0 timeout (propose plus the empty-block wait, ms) of the nodes
/// `backend` runs: what the `async` nemesis delays links beyond (issue 16).
pub fn base_timeout_ms(backend: crate::options::BackendKind) -> u64 {
    let t = crate::checks::backend_timeouts(backend);
    t.propose_ms + t.empty_block_ms
}

/// The planned nemesis schedule of a run.
pub fn schedule(opts: &TestOptions, spec: &ClusterSpec) -> Vec<PlannedFault> {
    let mut rng = ChaCha8Rng::seed_from_u64(Seeds::from_seed(opts.seed).plan);
    plan(
        &mut rng,
        &PlanSpec {
            kinds: opts.nemesis.clone(),
            interval_ns: opts.nemesis_interval_s * 1_000_000_000,
            time_limit_ns: opts.time_limit_s * 1_000_000_000,
            nodes: spec.names[..spec.roster_nodes].to_vec(),
            spares: spec.names[spec.roster_nodes..].to_vec(),
            min_roster: opts.min_roster as usize,
            max_concurrent: opts.max_concurrent_faults,
            base_timeout_ms: base_timeout_ms(opts.backend),
        },
    )
}

/// What a run produced.
pub struct RunOutput {
    /// `history.jsonl`.
    pub history: String,
    /// `schedule.json`.
    pub schedule: Value,
    /// Final node states.
    pub dumps: Vec<NodeDumpData>,
    /// The adversarial client's requests and answers (`client-attacks.json`);
    /// `None` when it was off.
    pub attacks: Option<Vec<rollcall_history::ClientAttack>>,
}

struct Pending {
    ticket: Ticket,
    inv: Invocation,
    tx_id: String,
    node: String,
    invoked: u64,
}

struct Slot {
    process: u64,
    seq: u64,
    pending: Option<Pending>,
}

struct Loop<'a> {
    opts: &'a TestOptions,
    backend: &'a mut dyn Backend,
    /// What each fault means, over the backend's primitives.
    nemesis: Nemesis,
    spec: &'a ClusterSpec,
    rng: ChaCha8Rng,
    workload: Box<dyn Workload>,
    rec: Recorder,
    slots: Vec<Slot>,
    next_process: u64,
    by_ticket: BTreeMap<Ticket, usize>,
    /// AddNode tickets of the nemesis: ticket → node name.
    nemesis_tickets: BTreeMap<Ticket, String>,
    /// node → Some(height) once its AddNode was acknowledged.
    add_acks: BTreeMap<String, Option<u64>>,
    /// The nemesis's AddNode transactions in flight, by ticket.
    add_txs: BTreeMap<Ticket, Tx>,
    /// The adversarial client, when on (issue 12).
    attacker: Option<crate::attacks::Attacker>,
    failed: Vec<String>,
    applied: Vec<Value>,
    current_fault: String,
    progress: &'a Progress,
    limit_ns: u64,
    phase: &'static str,
}

impl<'a> Loop<'a> {
    fn client_nodes(&self) -> Vec<String> {
        self.spec.names[..self.spec.roster_nodes]
            .iter()
            .filter(|n| !self.failed.contains(n))
            .cloned()
            .collect()
    }

    fn invoke(&mut self, s: usize, inv: Invocation, node: String) {
        let now = self.backend.now_ns();
        let slot = &mut self.slots[s];
        slot.seq += 1;
        let tx_id = format!("p{}-{}", slot.process, slot.seq);
        let process = slot.process;
        self.rec.record(
            now,
            Who::Process(process),
            "invoke",
            &inv.f,
            &inv.value,
            Some(&node),
            Some(&tx_id),
            None,
        );
        let tx = Tx {
            id: tx_id.clone(),
            body: TxBody::Kv(inv.ops.clone()),
        };
        let ticket = self.backend.submit(&node, tx);
        self.by_ticket.insert(ticket, s);
        self.slots[s].pending = Some(Pending {
            ticket,
            inv,
            tx_id,
            node,
            invoked: now,
        });
    }

    fn finish(&mut self, s: usize, time: u64, outcome: ClientOutcome) {
        let Some(p) = self.slots[s].pending.take() else {
            return;
        };
        self.by_ticket.remove(&p.ticket);
        let process = self.slots[s].process;
        let who = Who::Process(process);
        if let Some(a) = self.attacker.as_mut() {
            let first = match &outcome {
                ClientOutcome::Ok(o) => Some(Some(o)),
                ClientOutcome::Info(_) => Some(None),
                ClientOutcome::Fail(_) => None,
            };
            if let Some(first) = first {
                let tx = Tx {
                    id: p.tx_id.clone(),
                    body: TxBody::Kv(p.inv.ops.clone()),
                };
                a.saw(tx, &p.node, first);
            }
        }
        let (kind, value, err) = match outcome {
            ClientOutcome::Ok(o) => match self.workload.complete(process, &p.inv, &o) {
                Completion::Ok(v) => ("ok", v, None),
                Completion::Fail(v) => ("fail", v, o.error.clone()),
            },
            ClientOutcome::Fail(r) => ("fail", p.inv.value.clone(), Some(r)),
            ClientOutcome::Info(r) => ("info", p.inv.value.clone(), Some(r)),
        };
        let extra = err.map(|e| {
            let mut m = Map::new();
            m.insert("error".into(), Value::from(e));
            m
        });
        self.rec.record(
            time,
            who,
            kind,
            &p.inv.f,
            &value,
            Some(&p.node),
            Some(&p.tx_id),
            extra.as_ref(),
        );
        if kind == "info" {
            // Jepsen: the process may still be in flight; a fresh one replaces it.
            self.slots[s].process = self.next_process;
            self.slots[s].seq = 0;
            self.next_process += 1;
        }
    }

    fn handle(&mut self, done: Vec<Completed>) {
        for c in done {
            if let Some(a) = self.attacker.as_mut().filter(|a| a.owns(c.ticket)) {
                a.answered(c.ticket, c.time_ns, &c.outcome);
                continue;
            }
            if let Some(node) = self.nemesis_tickets.remove(&c.ticket) {
                let h = match &c.outcome {
                    ClientOutcome::Ok(o) if o.error.is_none() => Some(o.height),
                    _ => None,
                };
                let tx = self.add_txs.remove(&c.ticket);
                if let (Some(a), Some(tx), Some(_)) = (self.attacker.as_mut(), tx, h) {
                    a.saw_operator_add(tx);
                }
                self.add_acks.insert(node, h);
                continue;
            }
            if let Some(s) = self.by_ticket.get(&c.ticket).copied() {
                self.finish(s, c.time_ns, c.outcome);
            }
        }
    }

    fn timeouts(&mut self) {
        let now = self.backend.now_ns();
        for s in 0..self.slots.len() {
            let expired = self.slots[s].pending.as_ref().is_some_and(|p| {
                now.saturating_sub(p.invoked) >= self.opts.op_timeout_ms * 1_000_000
            });
            if expired {
                if let Some(p) = &self.slots[s].pending {
                    self.backend.abandon(p.ticket);
                }
                self.finish(s, now, ClientOutcome::Info("timeout".into()));
            }
        }
        if let Some(a) = self.attacker.as_mut() {
            a.timeouts(&mut *self.backend, now, self.opts.op_timeout_ms * 1_000_000);
        }
    }

    /// Advances to `t`, recording completions and timeouts.
    fn step_to(&mut self, t: u64) -> Result<(), BackendError> {
        self.backend.advance_to(t)?;
        let done = self.backend.poll_completions();
        self.handle(done);
        self.timeouts();
        self.progress.update(
            self.phase,
            self.backend.now_ns(),
            self.limit_ns,
            self.rec.ops_done(),
            &self.current_fault,
        );
        Ok(())
    }

    fn nemesis(&mut self, fault: &Fault, start: bool) -> Result<(), BackendError> {
        let now = self.backend.now_ns();
        let details = if start {
            self.nemesis.start(&mut *self.backend, fault)?
        } else {
            self.nemesis.stop(&mut *self.backend, fault)?
        };
        let f = fault.kind().name();
        let mut value = match serde_json::to_value(fault) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        value.remove("f");
        value.insert("phase".into(), json!(if start { "start" } else { "stop" }));
        if let Value::Object(d) = &details {
            for (k, v) in d {
                value.entry(k.clone()).or_insert(v.clone());
            }
        }
        match fault {
            Fault::AddNode { node } if start => {
                if let Some(i) = self.spec.index(node) {
                    let via = self.backend.live_nodes().into_iter().find(|n| {
                        n != node
                            && self.spec.index(n).is_some_and(|j| {
                                j < self.spec.roster_nodes
                                    || self.add_acks.get(n).is_some_and(|h| h.is_some())
                            })
                    });
                    if let (Some(via), Some(tx)) = (via, self.spec.add_node_tx(i, now)) {
                        let kept = self.attacker.is_some().then(|| tx.clone());
                        let ticket = self.backend.submit(&via, tx);
                        self.add_txs.extend(kept.map(|tx| (ticket, tx)));
                        self.nemesis_tickets.insert(ticket, node.clone());
                        self.add_acks.insert(node.clone(), None);
                        value.insert("via".into(), json!(via));
                    }
                }
            }
            Fault::AddNode { node } => {
                let h = self.add_acks.get(node).copied().flatten();
                value.insert("acknowledged".into(), json!(h.is_some()));
                value.insert("height".into(), json!(h));
            }
            Fault::FailNode { node } => self.failed.push(node.clone()),
            Fault::Async { .. } => self.record_rounds(&mut value),
            _ => {}
        }
        // Overlapping faults (issue 16) show as `partition+kill`.
        let mut active: Vec<&str> = (self.current_fault.split('+'))
            .filter(|x| *x != "none")
            .collect();
        if start {
            active.push(f);
        } else if let Some(i) = active.iter().position(|x| *x == f) {
            active.remove(i);
        }
        self.current_fault = if active.is_empty() {
            "none".into()
        } else {
            active.join("+")
        };
        let value = Value::Object(value);
        self.rec
            .record(now, Who::Nemesis, "info", f, &value, None, None, None);
        self.applied
            .push(json!({"time_ns": now, "f": f, "value": value}));
        Ok(())
    }

    /// An asynchronous period's start and end (GST) record every live node's
    /// height and round and the highest round: how far the timeouts grew (issue 16).
    fn record_rounds(&mut self, value: &mut Map<String, Value>) {
        let (mut at, mut max_round) = (Map::new(), 0);
        for n in self.backend.live_nodes() {
            if let Some(s) = self.backend.status(&n) {
                max_round = max_round.max(s.round);
                at.insert(n, json!({"height": s.height, "round": s.round}));
            }
        }
        value.insert("rounds".into(), Value::Object(at));
        value.insert("max_round".into(), json!(max_round));
    }

    fn idle_slots(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|s| self.slots[*s].pending.is_none())
            .collect()
    }

    fn any_pending(&self) -> bool {
        self.slots.iter().any(|s| s.pending.is_some())
            || self.attacker.as_ref().is_some_and(|a| a.any_pending())
    }

    /// The adversarial client's turn (issue 12), while the workload runs.
    fn attack(&mut self) {
        if let Some(a) = self.attacker.as_mut() {
            let nodes = self.backend.live_nodes();
            a.tick(&mut *self.backend, self.spec, &nodes);
        }
    }
}

impl<'a> Loop<'a> {
    /// The loop of one run, before anything happened.
    fn new(
        opts: &'a TestOptions,
        spec: &'a ClusterSpec,
        backend: &'a mut dyn Backend,
        progress: &'a Progress,
        limit_ns: u64,
    ) -> Self {
        Loop {
            opts,
            backend,
            nemesis: Nemesis::default(),
            spec,
            rng: ChaCha8Rng::seed_from_u64(Seeds::from_seed(opts.seed).clients),
            workload: make(opts.workload),
            rec: Recorder::default(),
            slots: (0..opts.concurrency as u64)
                .map(|p| Slot {
                    process: p,
                    seq: 0,
                    pending: None,
                })
                .collect(),
            next_process: opts.concurrency as u64,
            by_ticket: BTreeMap::new(),
            nemesis_tickets: BTreeMap::new(),
            add_acks: BTreeMap::new(),
            add_txs: BTreeMap::new(),
            attacker: opts
                .adversarial_client
                .then(|| crate::attacks::Attacker::new(Seeds::from_seed(opts.seed).attacks)),
            failed: Vec::new(),
            applied: Vec::new(),
            current_fault: "none".into(),
            progress,
            limit_ns,
            phase: "workload",
        }
    }
}

/// Runs one test on `backend` (harness.md §4–6).
pub fn run(
    opts: &TestOptions,
    spec: &ClusterSpec,
    backend: &mut dyn Backend,
    progress: &Progress,
) -> Result<RunOutput, BackendError> {
    let planned = opts
        .schedule
        .clone()
        .unwrap_or_else(|| schedule(opts, spec));
    let limit_ns = opts.time_limit_s * 1_000_000_000;
    let mut l = Loop::new(opts, spec, backend, progress, limit_ns);

    // Nemesis steps in time order: (time, order, fault index, start?).
    let mut steps: Vec<(u64, usize, usize, bool)> = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        steps.push((p.start_ns, 2 * i, i, true));
        if let Some(s) = p.stop_ns {
            steps.push((s, 2 * i + 1, i, false));
        }
    }
    steps.sort();
    let mut steps: VecDeque<_> = steps.into();

    let interval_ns = (1e9 / opts.rate) as u64;
    let mut next_invoke = 0u64;
    let end_ns = limit_ns + opts.recovery_s * 1_000_000_000;
    let mut healed = false;
    loop {
        let now = l.backend.now_ns();
        while steps.front().is_some_and(|s| s.0 <= now) {
            if let Some((_, _, i, start)) = steps.pop_front() {
                l.nemesis(&planned[i].fault, start)?;
            }
        }
        if now >= limit_ns && !healed {
            // Final heal (harness.md §5); clients keep going through the recovery
            // wait so the liveness checker sees whether the cluster commits again.
            healed = true;
            l.phase = "heal";
            // Stamped now, not at the loop's start: on a wall clock the stops just
            // applied took time, and history times must not go backwards.
            let t = l.backend.now_ns();
            let healed_v = l.nemesis.heal_all(&mut *l.backend)?;
            l.rec.record(
                t,
                Who::Nemesis,
                "info",
                "heal-all",
                &healed_v,
                None,
                None,
                None,
            );
            l.applied
                .push(json!({"time_ns": t, "f": "heal-all", "value": healed_v}));
            l.current_fault = "none".into();
            l.phase = "recovery";
        }
        if now >= end_ns {
            break;
        }
        if !healed {
            l.attack();
        }
        // Invoke while the rate allows and a process is idle.
        while now >= next_invoke {
            let idle = l.idle_slots();
            if idle.is_empty() {
                break;
            }
            let s = idle[l.rng.gen_range(0..idle.len())];
            let nodes = l.client_nodes();
            if nodes.is_empty() {
                break;
            }
            let process = l.slots[s].process;
            let node = nodes[(process % nodes.len() as u64) as usize].clone();
            let inv = l.workload.invoke(&mut l.rng, process);
            l.invoke(s, inv, node);
            next_invoke = next_invoke.max(now.saturating_sub(interval_ns))
                + l.rng
                    .gen_range(interval_ns / 2..=interval_ns + interval_ns / 2);
        }
        let mut t = (now + STEP_NS).min(if healed { end_ns } else { limit_ns });
        if let Some(s) = steps.front() {
            t = t.min(s.0);
        }
        if next_invoke > now {
            t = t.min(next_invoke.max(now + 1));
        }
        l.step_to(t.max(now + 1))?;
    }
    // Let the last operations complete or time out before the final reads.
    l.phase = "drain";
    while l.any_pending() {
        let t = l.backend.now_ns() + STEP_NS;
        l.step_to(t)?;
    }

    // A fail-node victim must be evicted (protocol.md §5): give it time.
    if !l.failed.is_empty() {
        let deadline = l.backend.now_ns() + EVICTION_WAIT_NS;
        while l.backend.now_ns() < deadline && !evicted_everywhere(&mut *l.backend, spec, &l.failed)
        {
            let t = l.backend.now_ns() + 100 * STEP_NS;
            l.step_to(t)?;
        }
    }

    // Final reads on every live node.
    l.phase = "final-reads";
    let mut queue: VecDeque<(String, Invocation)> = VecDeque::new();
    for node in l.backend.live_nodes() {
        for inv in l.workload.final_reads() {
            queue.push_back((node.clone(), inv));
        }
    }
    let deadline = l.backend.now_ns() + FINAL_READS_NS;
    while (!queue.is_empty() || l.any_pending()) && l.backend.now_ns() < deadline {
        for s in l.idle_slots() {
            let Some((node, inv)) = queue.pop_front() else {
                break;
            };
            l.invoke(s, inv, node);
        }
        let t = l.backend.now_ns() + STEP_NS;
        l.step_to(t)?;
    }
    let dumps = l.backend.dump()?;
    let schedule = json!({"planned": planned, "applied": l.applied});
    Ok(RunOutput {
        history: l.rec.text().to_string(),
        schedule,
        dumps,
        attacks: l.attacker.map(|a| a.into_records()),
    })
}

fn evicted_everywhere(backend: &mut dyn Backend, spec: &ClusterSpec, failed: &[String]) -> bool {
    let ids: Vec<String> = failed
        .iter()
        .filter_map(|n| spec.index(n))
        .map(|i| spec.keys[i].id().to_hex())
        .collect();
    let live = backend.live_nodes();
    !live.is_empty()
        && live.iter().all(|n| {
            backend.status(n).is_some_and(|s| {
                s.roster
                    .iter()
                    .all(|e| !ids.iter().any(|id| *id == e.id.to_hex()))
            })
        })
}
