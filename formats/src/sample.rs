//! One request's record, and the columns a reader fills with many of them.

/// The id of an interned request name, in the order names first appeared in this log (0, 1, 2, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NameId(pub u32);

/// The id of an interned failure message (1, 2, 3, …); 0 in a column means "no message".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub std::num::NonZeroU32);

impl MessageId {
    /// The raw value stored in the `message` column.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// How a request ended. Stored as one byte; readers keep unknown codes from newer writers as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
#[non_exhaustive]
pub enum Outcome {
    /// The request succeeded and every check passed.
    #[default]
    Ok = 0,
    /// The connection could not be opened (refused, unreachable, no route).
    ConnectError = 1,
    /// Opening the connection took longer than the connect timeout.
    ConnectTimeout = 2,
    /// The response did not complete within the request timeout.
    Timeout = 3,
    /// The peer reset or closed the connection before the response was complete.
    Reset = 4,
    /// The TLS handshake or a TLS record failed.
    Tls = 5,
    /// The response could not be parsed, or exceeded a size limit.
    Malformed = 6,
    /// The status code was not one the request expects.
    Status = 7,
    /// A check on the response failed, or a required value could not be extracted.
    Check = 8,
    /// A local resource ran out (file descriptors, ephemeral ports, memory).
    LocalResource = 9,
    /// The request was cut short because the run was stopping.
    Cancelled = 10,
    /// Any other failure; the message says what.
    Other = 11,
}

impl Outcome {
    /// Every outcome, in code order.
    pub const ALL: [Outcome; 12] = [
        Outcome::Ok,
        Outcome::ConnectError,
        Outcome::ConnectTimeout,
        Outcome::Timeout,
        Outcome::Reset,
        Outcome::Tls,
        Outcome::Malformed,
        Outcome::Status,
        Outcome::Check,
        Outcome::LocalResource,
        Outcome::Cancelled,
        Outcome::Other,
    ];

    /// The outcome for a stored code, if this build knows it.
    pub fn from_code(code: u8) -> Option<Outcome> {
        Outcome::ALL.get(usize::from(code)).copied()
    }

    /// The stored code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A short, stable, lower-case name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ConnectError => "connect_error",
            Outcome::ConnectTimeout => "connect_timeout",
            Outcome::Timeout => "timeout",
            Outcome::Reset => "reset",
            Outcome::Tls => "tls",
            Outcome::Malformed => "malformed",
            Outcome::Status => "status",
            Outcome::Check => "check",
            Outcome::LocalResource => "local_resource",
            Outcome::Cancelled => "cancelled",
            Outcome::Other => "other",
        }
    }

    /// The name for a stored code, including codes from newer writers.
    pub fn name_of_code(code: u8) -> String {
        Outcome::from_code(code)
            .map_or_else(|| format!("outcome_{code}"), |o| o.as_str().to_owned())
    }
}

/// One request (or protocol exchange) as the engine measured it.
///
/// All times are whole microseconds. Starts count from the run's clock base (see
/// [`crate::LogHeader::monotonic_base_ns`]); durations count from the actual start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// The request's name (its group in reports).
    pub name: NameId,
    /// When the schedule meant the request to start, µs since the run's clock base. Latency measured
    /// from here ("corrected") includes any time the request waited for the generator.
    pub intended_us: u64,
    /// When the request was actually sent (the first byte handed to the socket, or the connect started),
    /// µs since the run's clock base.
    pub actual_us: u64,
    /// From the actual start to the last byte of the response (or the failure), µs.
    pub latency_us: u32,
    /// Time to open the connection (TCP connect plus TLS handshake) when this request opened one, µs;
    /// 0 when it reused a connection. A measured 0 is stored as 1.
    pub connect_us: u32,
    /// The TLS handshake's part of `connect_us`, µs; 0 when the request did no handshake (plain TCP,
    /// or a reused connection). A measured 0 is stored as 1; never more than `connect_us`. Added in
    /// v1.1 (a sample-extras block); reads as 0 from v1.0 logs.
    pub tls_us: u32,
    /// From the actual start to the first response byte, µs; 0 when no byte arrived. Never more than
    /// `latency_us`; a measured 0 with a response is stored as 1 where the latency allows.
    pub ttfb_us: u32,
    /// The protocol status (HTTP status code, or a protocol's own code); 0 when there was no response.
    pub status: u16,
    /// How the request ended.
    pub outcome: Outcome,
    /// The failure message, if any.
    pub message: Option<MessageId>,
    /// Bytes written to the connection for this request (headers and body), saturating at `u32::MAX`.
    pub bytes_sent: u32,
    /// Bytes read from the connection for this response (headers and body), saturating at `u32::MAX`.
    pub bytes_received: u32,
    /// The virtual user that made the request. Unique within its core at least; the engine numbers users
    /// across the whole run, so ids are unique run-wide too.
    pub user: u32,
    /// The task the request was made for: an id of the log's task table ([`crate::TaskTable`]), 0
    /// when it belongs to none. Added in v1.2 (a sample-extras column); reads as 0 from older logs.
    pub task: u32,
    /// Whether this is the first request of an iteration, so that counting these per task counts the
    /// iterations that made a request. Added in v1.2 (a sample-extras column); reads as `false` from
    /// older logs.
    pub iteration_start: bool,
}

impl Sample {
    /// The latency measured from the intended start, µs: what a user of the system would have waited.
    pub fn corrected_latency_us(&self) -> u64 {
        self.actual_us.saturating_sub(self.intended_us) + u64::from(self.latency_us)
    }
}

/// Many samples as a struct of arrays, ready to hand to a dataframe library.
///
/// Every vector has the same length. Columns mirror [`Sample`]; `outcome` holds raw codes (see
/// [`Outcome::from_code`]) and `message` holds 0 for "no message".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SampleColumns {
    pub name: Vec<u32>,
    pub intended_us: Vec<u64>,
    pub actual_us: Vec<u64>,
    pub latency_us: Vec<u32>,
    pub connect_us: Vec<u32>,
    pub tls_us: Vec<u32>,
    pub ttfb_us: Vec<u32>,
    pub status: Vec<u16>,
    pub outcome: Vec<u8>,
    pub message: Vec<u32>,
    pub bytes_sent: Vec<u32>,
    pub bytes_received: Vec<u32>,
    pub user: Vec<u32>,
    pub task: Vec<u32>,
    /// 1 for the first request of an iteration, 0 otherwise.
    pub iteration_start: Vec<u8>,
}

impl SampleColumns {
    /// Empty columns with room for `n` samples each.
    pub fn with_capacity(n: usize) -> Self {
        SampleColumns {
            name: Vec::with_capacity(n),
            intended_us: Vec::with_capacity(n),
            actual_us: Vec::with_capacity(n),
            latency_us: Vec::with_capacity(n),
            connect_us: Vec::with_capacity(n),
            tls_us: Vec::with_capacity(n),
            ttfb_us: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            outcome: Vec::with_capacity(n),
            message: Vec::with_capacity(n),
            bytes_sent: Vec::with_capacity(n),
            bytes_received: Vec::with_capacity(n),
            user: Vec::with_capacity(n),
            task: Vec::with_capacity(n),
            iteration_start: Vec::with_capacity(n),
        }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.name.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
    }

    /// Removes every sample, keeping the allocations.
    pub fn clear(&mut self) {
        self.name.clear();
        self.intended_us.clear();
        self.actual_us.clear();
        self.latency_us.clear();
        self.connect_us.clear();
        self.tls_us.clear();
        self.ttfb_us.clear();
        self.status.clear();
        self.outcome.clear();
        self.message.clear();
        self.bytes_sent.clear();
        self.bytes_received.clear();
        self.user.clear();
        self.task.clear();
        self.iteration_start.clear();
    }

    /// Appends all samples of `other`.
    pub fn extend_from(&mut self, other: &SampleColumns) {
        self.name.extend_from_slice(&other.name);
        self.intended_us.extend_from_slice(&other.intended_us);
        self.actual_us.extend_from_slice(&other.actual_us);
        self.latency_us.extend_from_slice(&other.latency_us);
        self.connect_us.extend_from_slice(&other.connect_us);
        self.tls_us.extend_from_slice(&other.tls_us);
        self.ttfb_us.extend_from_slice(&other.ttfb_us);
        self.status.extend_from_slice(&other.status);
        self.outcome.extend_from_slice(&other.outcome);
        self.message.extend_from_slice(&other.message);
        self.bytes_sent.extend_from_slice(&other.bytes_sent);
        self.bytes_received.extend_from_slice(&other.bytes_received);
        self.user.extend_from_slice(&other.user);
        self.task.extend_from_slice(&other.task);
        self.iteration_start
            .extend_from_slice(&other.iteration_start);
    }

    /// The sample at `i`, or `None` past the end. Unknown outcome codes read as [`Outcome::Other`].
    pub fn get(&self, i: usize) -> Option<Sample> {
        Some(Sample {
            name: NameId(*self.name.get(i)?),
            intended_us: self.intended_us[i],
            actual_us: self.actual_us[i],
            latency_us: self.latency_us[i],
            connect_us: self.connect_us[i],
            tls_us: self.tls_us[i],
            ttfb_us: self.ttfb_us[i],
            status: self.status[i],
            outcome: Outcome::from_code(self.outcome[i]).unwrap_or(Outcome::Other),
            message: std::num::NonZeroU32::new(self.message[i]).map(MessageId),
            bytes_sent: self.bytes_sent[i],
            bytes_received: self.bytes_received[i],
            user: self.user[i],
            task: self.task[i],
            iteration_start: self.iteration_start[i] != 0,
        })
    }

    /// Appends one sample.
    pub fn push(&mut self, s: &Sample) {
        self.name.push(s.name.0);
        self.intended_us.push(s.intended_us);
        self.actual_us.push(s.actual_us);
        self.latency_us.push(s.latency_us);
        self.connect_us.push(s.connect_us);
        self.tls_us.push(s.tls_us);
        self.ttfb_us.push(s.ttfb_us);
        self.status.push(s.status);
        self.outcome.push(s.outcome.code());
        self.message.push(s.message.map_or(0, MessageId::get));
        self.bytes_sent.push(s.bytes_sent);
        self.bytes_received.push(s.bytes_received);
        self.user.push(s.user);
        self.task.push(s.task);
        self.iteration_start.push(u8::from(s.iteration_start));
    }
}
