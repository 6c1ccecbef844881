//! How the engine reaches the target: TLS and HTTP client settings, and the embedded target's
//! behaviour.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DurationSpec, SizeSpec};

/// TLS client settings. Certificates are verified against the system's roots unless `ca_file` or
/// `insecure` says otherwise.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename = "Tls")]
pub struct TlsSpec {
    /// A PEM file of CA certificates to trust instead of the system's roots (relative to the
    /// profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Accept any certificate. Off by default; when on, the console warns and the manifest says so.
    #[serde(default)]
    pub insecure: bool,
    /// The name sent in SNI and checked against the certificate, when it differs from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// Behaviour of the embedded target (`host: "embedded"`), for demonstrations and tests of
/// measurement: `engine serve` has the same settings as flags.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename = "Embedded")]
pub struct EmbeddedSpec {
    /// Hold every response for a while at a regular interval, like a garbage-collection pause.
    #[serde(default)]
    pub stall: Option<StallSpec>,
    /// Delay responses by fixed proportions: `[(90, "1ms"), (10, "20ms")]` makes 90 in every 100
    /// responses take 1 ms and 10 take 20 ms, interleaved evenly.
    #[serde(default)]
    pub latency_mix: Vec<(u32, DurationSpec)>,
}

/// Every `every` (on the monotonic clock, so windows are the same for every process on the machine),
/// hold all responses for `hold`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename = "Stall")]
pub struct StallSpec {
    /// The period.
    pub every: DurationSpec,
    /// How long responses are held at the start of each period.
    pub hold: DurationSpec,
}

/// HTTP client settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default, rename = "Http")]
pub struct HttpSpec {
    /// How long opening a connection may take.
    pub connect_timeout: DurationSpec,
    /// How long a request may take from its actual start to its last byte.
    pub request_timeout: DurationSpec,
    /// The largest response body accepted; a larger one fails the request as malformed.
    pub max_body: SizeSpec,
}

impl Default for HttpSpec {
    fn default() -> Self {
        HttpSpec {
            connect_timeout: DurationSpec(Duration::from_secs(5)),
            request_timeout: DurationSpec(Duration::from_secs(30)),
            max_body: SizeSpec(1 << 20),
        }
    }
}
