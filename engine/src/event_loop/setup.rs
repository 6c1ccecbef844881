//! Building a core's loop state from its setup: the scenario interned into the core's log, request
//! bytes interned in the backend, addresses, channels and their TLS, the hosted executor when the
//! scenario has custom steps, the load model and its users, and the recorder measuring this thread.

use std::sync::Arc;

use formats::LogWriter;

use super::backend::{Addr, Backend};
use super::conn::Conn;
use super::hosted::Hosted;
use super::timers::Timers;
use super::{Core, Flight, HOSTED_KEY, PLAIN_CHUNK, User, custom, users_for};
use crate::core::{CoreInterner, CoreSetup, Recorder};
use crate::load::{Arrivals, Closed, Load, Open, Pool};
use crate::logsink::QueueSink;
use crate::plan::LoadPlan;
use crate::rng::Rng;
use crate::scenario::StepKind;
use crate::scenario::exec::CoreScenario;
use crate::scenario::program::Program;
use crate::scenario::user::UserState;

impl<B: Backend> Core<B> {
    pub(super) fn new(setup: &CoreSetup, pinned: bool, mut io: B) -> Result<Core<B>, String> {
        let core = setup.index;
        let plan = &setup.plan;
        let sink = QueueSink::default();
        let mut writer =
            LogWriter::new(&setup.header, sink.clone()).unwrap_or_else(|never| match never {});
        // Names and failure messages are interned once, here, in request order: the request path
        // only copies ids.
        let mut by_name = Vec::new();
        let sc = {
            let mut interner = CoreInterner::new(&mut writer, &mut by_name);
            CoreScenario::new(
                &plan.scenario,
                &plan.wires,
                setup.seat,
                u64::try_from(setup.clock.wall_ns / 1_000_000_000).unwrap_or(0),
                &mut interner,
            )
        };
        for task in &plan.scenario.tasks {
            writer.define_task(task.clone());
        }
        let mut sc = sc;
        sc.secrets.clone_from(&plan.secrets);
        if plan.trace.is_some() {
            // A trace shows every response whole, whatever the rules need of it.
            for r in &mut sc.requests {
                r.keep.head = true;
                r.keep.body = true;
            }
        }
        let _ = writer.flush();
        let fixed = plan
            .wires
            .iter()
            .map(|w| w.fixed_bytes().map(|b| io.intern(b.to_vec())))
            .collect();
        if plan.addrs.is_empty() {
            return Err(format!("core {core}: the target has no address"));
        }
        let addrs: Vec<Addr> = plan.addrs.iter().map(|&a| io.intern_addr(a)).collect();
        let chan_addrs = plan
            .endpoints
            .iter()
            .map(|e| io.intern_addr(e.addr))
            .collect();
        let channel_steps = (0..plan.scenario.channels.len())
            .map(|ch| {
                plan.scenario
                    .steps
                    .iter()
                    .position(|s| s.channel == ch)
                    .unwrap_or_default()
            })
            .collect();
        let has_custom = plan
            .scenario
            .steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::Custom { .. }));
        let hosted = if has_custom {
            let h = Hosted::new(setup.clock).map_err(|e| {
                format!("core {core}: could not start the custom protocols' executor: {e}")
            })?;
            io.watch(h.fd(), HOSTED_KEY).map_err(|e| {
                format!("core {core}: could not watch the custom protocols' executor: {e}")
            })?;
            Some(h)
        } else {
            None
        };
        let custom_names = plan
            .scenario
            .steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Custom { arg_names, .. } => Arc::from(arg_names.as_slice()),
                _ => Arc::from(Vec::new()),
            })
            .collect();
        let users_n = users_for(setup);
        let load = match (&plan.load, &setup.open) {
            (
                LoadPlan::Closed {
                    population,
                    iterations_per_user,
                },
                _,
            ) => Load::Closed(Closed {
                population: population.clone(),
                per_user: *iterations_per_user,
                budget: setup.iterations,
                users_left: setup.users.len() as u32,
            }),
            (LoadPlan::Open { .. }, Some(open)) => Load::Open(Box::new(Open {
                pool: Pool::new(&open.pool),
                arrivals: Arrivals::new(open.clone()),
            })),
            (LoadPlan::Open { .. }, None) => {
                return Err(format!("core {core}: an open model without arrivals"));
            }
        };
        let users = match &load {
            Load::Closed(_) => setup
                .users
                .iter()
                .enumerate()
                .map(|(local, u)| {
                    Program::closed(
                        local as u32,
                        u.global,
                        u.kind,
                        crate::clock::micros(u.spawn_at),
                    )
                })
                .collect::<Vec<_>>(),
            // Pool users are numbered like closed users: this core's `local`-th is its seat's
            // `local`-th item of the run-wide deal, so `user_id()` and unique rows never repeat across
            // cores or shards.
            Load::Open(open) => (0..users_n as u32)
                .map(|local| {
                    let global = setup.seat.item(u64::from(local)).unwrap_or(u64::MAX);
                    Program::pooled(
                        local,
                        u32::try_from(global).unwrap_or(u32::MAX),
                        open.pool.kind_of(local),
                    )
                })
                .collect(),
        };
        let open = matches!(load, Load::Open(_));
        let per_user = 1 + plan.scenario.channels.len() as u32;
        let seed = crate::rng::core_seed(setup.header.run_id, setup.seat);
        let mut rec = Recorder::new(
            writer,
            sink,
            core,
            by_name,
            users_n,
            setup.cpu.filter(|_| pinned),
        )
        .live(plan.live);
        // The console names failure reasons by their text: the messages interned above.
        for (cr, rp) in sc.requests.iter().zip(&sc.plan.requests) {
            for (ids, e) in cr.extract_messages.iter().zip(&rp.extract) {
                for (id, text) in ids.iter().zip(&e.messages) {
                    rec.remember_message(*id, text);
                }
            }
            for (id, c) in cr.check_messages.iter().zip(&rp.checks) {
                rec.remember_message(*id, &c.message);
            }
        }
        Ok(Core {
            users: users
                .into_iter()
                .map(|prog| User {
                    prog,
                    state: UserState::new(&sc),
                    wake_at: u64::MAX,
                    flight: Flight::default(),
                    done: false,
                })
                .collect(),
            conns: (0..users_n * per_user as usize)
                .map(|_| Conn::default())
                .collect(),
            per_user,
            fixed,
            next_addr: core as usize % addrs.len(),
            addrs,
            chan_addrs,
            endpoints: plan.endpoints.iter().cloned().map(Arc::new).collect(),
            channel_tls: plan.channel_tls.clone(),
            channel_steps,
            hosted,
            hosted_at: u64::MAX,
            hosted_dirty: false,
            custom: (0..users_n * per_user as usize).map(|_| None).collect(),
            custom_names,
            finished: custom::Finished::default(),
            rec,
            trace: plan
                .trace
                .as_ref()
                .map(|t| crate::debug::Tracer::new(Arc::clone(t))),
            rng: Rng::new(seed),
            clock: setup.clock,
            limits: plan.limits,
            tls: plan.tls.clone(),
            load,
            timers: Timers::with_capacity(users_n + 16),
            arrivals_at: u64::MAX,
            arrivals_dirty: false,
            queued: Vec::with_capacity(users_n),
            deferred: Vec::new(),
            // Both hold each user at most once at a time (a release hands out each free user of the
            // pool once, `load::tests`; a user waits for one token fetch at a time): with room for
            // every user, a burst of arrivals after a stall of the machine allocates nothing.
            wake: Vec::with_capacity(users_n),
            handed: Vec::with_capacity(if open { users_n } else { 0 }),
            events: Vec::with_capacity(4096),
            exchanges: 0,
            lingering: 0,
            stopping: false,
            end_us: crate::clock::micros(plan.duration),
            plain: vec![0; PLAIN_CHUNK],
            interval_start: 0,
            next_second: 1_000_000,
            steer: None,
            revive: Vec::new(),
            sc,
            io,
        })
    }
}
