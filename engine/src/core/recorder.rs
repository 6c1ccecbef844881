//! The [`Recorder`]: every request of a core becomes one sample in its log, and is counted in the
//! histograms and interval record the per-second report carries.

use formats::{IntervalStats, LogWriter, MessageId, NameId, Outcome, Sample};
use hdrhistogram::Histogram;

use super::failures::{FailureTally, RuleDetails};
use super::{CoreDone, Message, SecondReport};
use crate::http::Exchange;
use crate::live::tally::{LiveTrack, NameTally, histogram};
use crate::logsink::QueueSink;

/// A request on the wire, remembered so that the watchdog can time it out and the end of the run can
/// log it as cancelled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    pub name: NameId,
    pub intended_us: u64,
    pub actual_us: u64,
    pub user: u32,
    pub mark: TaskMark,
}

/// Which task a request is made for, and whether it is the first request of its iteration: the
/// sample's v1.2 columns, from which the analyzer counts requests and iterations per task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TaskMark {
    /// The task-table id (0: none).
    pub task: u32,
    pub iteration_start: bool,
}

/// Counts, histograms and the log writer of one core.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(super) writer: Option<LogWriter<QueueSink>>,
    sink: QueueSink,
    core: u32,
    by_name: Vec<NameTally>,
    /// Corrected latency of the second's requests, all names: filled from `by_name` at each tick.
    second: Histogram<u64>,
    /// Uncorrected latency (from the actual start) of the second's requests, all names.
    uncorrected: Histogram<u64>,
    /// Set when a live view wants per-name data every second.
    live: Option<LiveTrack>,
    lag: Histogram<u64>,
    /// Schedule lag over the whole run.
    lag_total: Histogram<u64>,
    interval: IntervalStats,
    active_users: u32,
    open_connections: u32,
    in_flight: Vec<Option<InFlight>>,
    in_flight_count: usize,
    /// Interned "unexpected status N" messages, so a failing endpoint does not format per request.
    pub(super) status_messages: Vec<Option<MessageId>>,
    /// How late the loop's timed waits woke after their deadlines, µs, this interval.
    wake_late: Histogram<u64>,
    /// The thread's CPU time and context switches, its run-queue delay and its CPU's steal time at the
    /// start of the interval (the record holds the differences).
    usage_at_interval_start: crate::sys::ThreadUsage,
    run_delay_at_interval_start: Option<u64>,
    steal_at_interval_start: Option<u64>,
    probe: crate::sys::SchedProbe,
    started_total: u64,
    dropped_total: u64,
    local_resource: (u64, Option<String>),
    pub(super) failures: FailureTally,
    /// Per rule: the failure messages with a seen value interned for it.
    pub(super) details: Vec<RuleDetails>,
}

impl Recorder {
    /// A recorder writing through `writer` (whose blocks go to `sink`), with the statistics slots of
    /// the names already interned and room for `users` requests in flight. It must be created on the
    /// core's own thread, pinned to `cpu` (or not pinned: `None`), since it measures that thread.
    pub(crate) fn new(
        writer: LogWriter<QueueSink>,
        sink: QueueSink,
        core: u32,
        by_name: Vec<NameTally>,
        users: usize,
        cpu: Option<u32>,
    ) -> Recorder {
        let mut probe = crate::sys::SchedProbe::for_current_thread(cpu);
        Recorder {
            writer: Some(writer),
            sink,
            core,
            by_name,
            second: histogram(2),
            uncorrected: histogram(2),
            live: None,
            lag: histogram(2),
            lag_total: histogram(2),
            interval: IntervalStats::default(),
            active_users: 0,
            open_connections: 0,
            in_flight: vec![None; users],
            in_flight_count: 0,
            status_messages: vec![None; 600],
            wake_late: histogram(2),
            usage_at_interval_start: crate::sys::thread_usage(),
            run_delay_at_interval_start: probe.run_delay_us(),
            steal_at_interval_start: probe.steal_us(),
            probe,
            started_total: 0,
            dropped_total: 0,
            local_resource: (0, None),
            failures: FailureTally::default(),
            details: Vec::new(),
        }
    }

    /// Tells the recorder the text of a message interned elsewhere (when the core started), for
    /// the console's failure reasons.
    pub(crate) fn remember_message(&mut self, id: MessageId, text: &str) {
        self.failures.remember(id, text);
    }

    /// With `on`, the recorder hands the live view its per-name data every second.
    pub(crate) fn live(mut self, on: bool) -> Recorder {
        self.live = on.then(LiveTrack::default);
        self
    }

    /// Finishes the log (its last block goes to the sink) and hands over the core's totals.
    pub(crate) fn take_done(&mut self, core: u32, pinned: bool) -> CoreDone {
        let writer = self.writer.take().expect("the writer is taken only here");
        let samples = writer.samples_written() + writer.samples_buffered() as u64;
        let _ = writer.finish();
        CoreDone {
            core,
            names: self.by_name.iter_mut().map(NameTally::take_done).collect(),
            samples,
            lag: Some(self.lag_total.clone()),
            iterations_started: self.started_total,
            iterations_dropped: self.dropped_total,
            pinned,
            error: None,
            local_resource: std::mem::take(&mut self.local_resource),
            unsettled: 0,
        }
    }

    /// The queue the log writer's finished blocks go to.
    pub(crate) fn sink(&self) -> QueueSink {
        self.sink.clone()
    }

    /// The open-connections gauge, for a loop that tracks sockets itself.
    pub(crate) fn connection_opened_gauge(&mut self) {
        self.open_connections += 1;
    }

    pub(crate) fn connection_closed_gauge(&mut self) {
        self.open_connections = self.open_connections.saturating_sub(1);
    }

    pub fn user_started(&mut self) {
        self.active_users += 1;
        self.interval.users_started = self.interval.users_started.saturating_add(1);
        self.interval.users_max = self.interval.users_max.max(self.active_users);
    }

    /// The core's schedule starts now, `late_us` after the run's time zero (0 when the core was ready
    /// in time): the first interval measures from here, and records the lateness as start-up.
    pub(crate) fn schedule_started(&mut self, late_us: u64) {
        self.usage_at_interval_start = crate::sys::thread_usage();
        self.run_delay_at_interval_start = self.probe.run_delay_us();
        self.steal_at_interval_start = self.probe.steal_us();
        self.interval.start_late_us = late_us.min(u64::from(u32::MAX)) as u32;
    }

    /// A timed wait of the core's loop ended `late_us` after its deadline.
    pub(crate) fn woke(&mut self, late_us: u64) {
        self.wake_late.saturating_record(late_us);
        self.interval.wakeups = self.interval.wakeups.saturating_add(1);
    }

    pub fn user_stopped(&mut self, connection_open: bool) {
        self.active_users = self.active_users.saturating_sub(1);
        if connection_open {
            self.open_connections = self.open_connections.saturating_sub(1);
        }
    }

    /// The run was steered: the change goes into this core's log with its next flush.
    pub(crate) fn load_change(&mut self, change: formats::LoadChange) {
        if let Some(w) = self.writer.as_mut() {
            w.push_load_change(change);
        }
    }

    pub fn iteration_started(&mut self) {
        self.interval.iterations_started = self.interval.iterations_started.saturating_add(1);
        self.started_total += 1;
    }

    /// An arrival found every user busy and waits in the queue for a free one.
    pub fn iteration_queued(&mut self) {
        self.interval.iterations_queued = self.interval.iterations_queued.saturating_add(1);
    }

    /// An arrival found no free user and no room to wait: counted, never skipped silently.
    pub fn iteration_dropped(&mut self) {
        self.interval.iterations_dropped = self.interval.iterations_dropped.saturating_add(1);
        self.dropped_total += 1;
    }

    pub fn begin(&mut self, local: usize, request: InFlight) {
        if self.in_flight[local].replace(request).is_none() {
            self.in_flight_count += 1;
        }
    }

    /// Logs the request user `local` had in flight. Does nothing if it was already logged as cancelled.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &mut self,
        local: usize,
        ex: &Exchange,
        outcome: Outcome,
        message: Message<'_>,
        end_us: u64,
        was_open: bool,
        now_open: bool,
    ) {
        let Some(req) = self.in_flight[local].take() else {
            return;
        };
        self.in_flight_count -= 1;
        if ex.connected {
            self.interval.connections_opened += 1;
        }
        self.open_connections =
            (self.open_connections + u32::from(now_open)).saturating_sub(u32::from(was_open));
        if outcome == Outcome::LocalResource {
            self.local_resource.0 += 1;
            // One allocation, on the first such failure only.
            if self.local_resource.1.is_none()
                && let Message::Text(text) = message
            {
                self.local_resource.1 = Some(text.to_owned());
            }
        }
        let message = match (outcome, message) {
            (Outcome::Ok, _) => None,
            (_, Message::Id(id)) => Some(id),
            (_, Message::Text(text)) => self.writer.as_mut().map(|w| {
                let id = w.intern_message(text);
                self.failures.remember(id, text);
                id
            }),
            (
                _,
                Message::Detail {
                    base,
                    text,
                    base_len,
                },
            ) => self.detail_message(base, text, base_len),
            (Outcome::Status, Message::Default) => self.status_message(ex.status),
            (_, Message::Default) => None,
        };
        let sample = Sample {
            name: req.name,
            intended_us: req.intended_us,
            actual_us: req.actual_us,
            latency_us: (end_us.saturating_sub(req.actual_us).max(1)).min(u64::from(u32::MAX))
                as u32,
            connect_us: ex.connect_us,
            tls_us: ex.tls_us,
            ttfb_us: ex.ttfb_us,
            status: ex.status,
            outcome,
            message,
            bytes_sent: ex.bytes_sent,
            bytes_received: ex.bytes_received,
            user: req.user,
            task: req.mark.task,
            iteration_start: req.mark.iteration_start,
        };
        self.record(&sample);
    }

    fn record(&mut self, s: &Sample) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let _ = writer.push(*s);
        let corrected = s.corrected_latency_us();
        self.by_name[s.name.0 as usize].record(s, corrected);
        if s.outcome != Outcome::Ok {
            self.interval.failures = self.interval.failures.saturating_add(1);
            self.failures.count(s.outcome, s.message);
        }
        self.uncorrected.saturating_record(u64::from(s.latency_us));
        let lag = s.actual_us.saturating_sub(s.intended_us).max(1);
        if lag > u64::from(formats::health::LAG_LIMIT_US) {
            self.interval.late_requests = self.interval.late_requests.saturating_add(1);
        }
        self.lag.saturating_record(lag);
        self.lag_total.saturating_record(lag);
        self.interval.requests = self.interval.requests.saturating_add(1);
    }

    /// Logs every request still in flight as cancelled by the end of the run.
    pub(crate) fn cancel_in_flight(&mut self, end_us: u64) {
        const CANCELLED: &str = "the run ended before the response arrived";
        let message = self.writer.as_mut().map(|w| w.intern_message(CANCELLED));
        if let Some(id) = message {
            self.failures.remember(id, CANCELLED);
        }
        for local in 0..self.in_flight.len() {
            if let Some(req) = self.in_flight[local].take() {
                self.in_flight_count -= 1;
                let sample = Sample {
                    name: req.name,
                    intended_us: req.intended_us,
                    actual_us: req.actual_us,
                    latency_us: end_us
                        .saturating_sub(req.actual_us)
                        .clamp(1, u64::from(u32::MAX)) as u32,
                    outcome: Outcome::Cancelled,
                    message,
                    user: req.user,
                    task: req.mark.task,
                    iteration_start: req.mark.iteration_start,
                    ..Sample::default()
                };
                self.record(&sample);
            }
        }
    }

    /// Closes the interval that started at `start_us`: logs its counters and resets them.
    pub(crate) fn close_interval(
        &mut self,
        start_us: u64,
        now_us: u64,
        second: u64,
    ) -> SecondReport {
        let usage = crate::sys::thread_usage();
        let before = std::mem::replace(&mut self.usage_at_interval_start, usage);
        let run_delay = self.probe.run_delay_us();
        let run_delay_before = std::mem::replace(&mut self.run_delay_at_interval_start, run_delay);
        let steal = self.probe.steal_us();
        let steal_before = std::mem::replace(&mut self.steal_at_interval_start, steal);
        let since = |now: Option<u64>, then: Option<u64>| {
            Some(now?.saturating_sub(then?).min(u64::from(u32::MAX)) as u32)
        };
        let count = |n: u64| n.min(u64::from(u32::MAX)) as u32;
        let lag_at = |q: f64| self.lag.value_at_quantile(q).min(u64::from(u32::MAX)) as u32;
        let wake_at = |q: f64| self.wake_late.value_at_quantile(q).min(u64::from(u32::MAX)) as u32;
        let stats = IntervalStats {
            start_us,
            duration_us: now_us.saturating_sub(start_us).min(u64::from(u32::MAX)) as u32,
            active_users: self.active_users,
            lag_p50_us: lag_at(0.5),
            lag_p99_us: lag_at(0.99),
            lag_max_us: self.lag.max().min(u64::from(u32::MAX)) as u32,
            cpu_user_us: usage.user.saturating_sub(before.user).as_micros() as u32,
            cpu_system_us: usage.system.saturating_sub(before.system).as_micros() as u32,
            open_connections: self.open_connections,
            users_max: self.interval.users_max.max(self.active_users),
            voluntary_switches: count(usage.voluntary.saturating_sub(before.voluntary)),
            involuntary_switches: count(usage.involuntary.saturating_sub(before.involuntary)),
            run_delay_us: since(run_delay, run_delay_before),
            steal_us: since(steal, steal_before),
            wake_late_p99_us: wake_at(0.99),
            wake_late_max_us: count(self.wake_late.max()),
            ..self.interval
        };
        let live = crate::live::tally::close_second(
            &mut self.by_name,
            &mut self.second,
            &self.uncorrected,
            &stats,
            self.live.as_mut(),
        );
        let report = SecondReport {
            core: self.core,
            second,
            active_users: self.active_users,
            requests: stats.requests,
            failures: stats.failures,
            latency: self.second.clone(),
            lag: self.lag.clone(),
            lag_max_us: stats.lag_max_us,
            iterations_dropped: stats.iterations_dropped,
            live,
            stats,
            failure_reasons: self.failures.take(),
        };
        if let Some(w) = self.writer.as_mut() {
            w.push_interval(stats);
            let _ = w.flush();
        }
        // Users alive now are alive at the start of the next interval.
        self.interval = IntervalStats {
            users_max: self.active_users,
            ..IntervalStats::default()
        };
        self.second.reset();
        self.uncorrected.reset();
        self.lag.reset();
        self.wake_late.reset();
        report
    }
}
