//! The profile as written: serde types that mirror the RON file one to one.
//!
//! Unknown fields are rejected (`deny_unknown_fields`) so a typo never silently means "default". Values
//! that have a syntax of their own (durations, sizes, methods) parse while the file is read, so their
//! errors carry a line and column. Cross-field checks live in `profile::validate`.
//!
//! The types are grouped by the part of the profile they describe: the load model (`load`), the
//! target and the client's settings for it (`target`), user kinds, tasks and their control flow
//! (`user`), HTTP requests with their checks and authentication (`request`), steps of other
//! protocols (`steps`), data feeders (`feeder`), and the values with a syntax of their own
//! (`units`). Every type is re-exported here, so `profile::spec::X` names it wherever it lives.

mod feeder;
mod load;
mod request;
mod steps;
mod target;
mod units;
mod user;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use feeder::{FeederFormat, FeederOrder, FeederSpec, OnExhausted};
pub use load::{LoadSpec, RateStageSpec, UserStageSpec};
pub use request::{
    AuthSpec, BodySpec, CheckSpec, ExtractSpec, JwtAlgorithm, Method, RequestSpec, TokenCache,
};
pub use steps::{ReadSpec, ReceiveSpec, StepSpec};
pub use target::{EmbeddedSpec, HttpSpec, StallSpec, TlsSpec};
pub use units::{DurationSpec, HumanDuration, SizeSpec, parse_size};
pub use user::{CondSpec, FlowSpec, TaskSpec, UserSpec, WaitSpec};

/// A whole profile file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Profile")]
pub struct ProfileSpec {
    /// Names the run directory and reports.
    pub name: String,
    /// Fragment files merged into this profile (paths relative to this file), see [`FragmentSpec`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Target base URL (`http://host:port`) or `"embedded"`; environments may override it.
    #[serde(default)]
    pub host: Option<String>,
    /// Headers sent with every request; environments add to them.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Values for `${name}` placeholders; environments and `--var` override them.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Variables whose values are secret: used like `variables`, shown as `***` everywhere.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Named environments, selected with `--env`.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// The environment used when `--env` is not given.
    #[serde(default)]
    pub default_environment: Option<String>,
    /// The load model. It may be left out when the command line gives one (`--users` and
    /// `--duration`, or `--rate` and `--duration`); `engine try` needs none.
    #[serde(default)]
    pub load: LoadSpec,
    /// Stall mode and latency mix of the embedded target, when `host` is `"embedded"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedSpec>,
    /// HTTP client settings.
    #[serde(default)]
    pub http: HttpSpec,
    /// TLS settings for `https://` and `wss://` targets; an environment's `tls` replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Data files whose rows templates read as `{{row.column}}` or `{{feeder.column}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feeders: BTreeMap<String, FeederSpec>,
    /// Authentication for every request, unless a user kind or request says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// Pass/fail criteria that `analyzer check` applies to the run (docs/ci.md): a request name, or
    /// `"*"` for all requests together, to conditions such as `"p99 < 200ms"` or `"error_rate < 1%"`.
    /// The engine keeps them in the manifest; the analyzer parses and checks them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, Vec<String>>,
    /// A Lua file (relative to the profile) whose functions `Script(call: ...)` flow elements call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// The kinds of virtual user, chosen by weight.
    pub users: Vec<UserSpec>,
    /// The text of this file and of its fragments, for locating errors found after parsing.
    #[serde(skip)]
    pub sources: Vec<(std::path::PathBuf, String)>,
}

/// A fragment: the parts of a profile that large suites share (`include: ["common.ron"]`). Its maps
/// are merged under the including profile's (the profile wins on equal keys); its users are added
/// after the profile's own; `auth` applies when the profile sets none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Fragment")]
pub struct FragmentSpec {
    /// Further fragments, relative to this file.
    #[serde(default)]
    pub include: Vec<String>,
    /// Headers for every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Profile variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Secret profile variables.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Environments.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// Data feeders.
    #[serde(default)]
    pub feeders: BTreeMap<String, FeederSpec>,
    /// Authentication.
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// User kinds.
    #[serde(default)]
    pub users: Vec<UserSpec>,
}

/// One environment: overrides for the top-level host, headers and variables.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Environment")]
pub struct EnvironmentSpec {
    /// Target base URL, or `"embedded"`.
    #[serde(default)]
    pub host: Option<String>,
    /// Headers added to (or replacing) the top-level ones.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Variables added to (or replacing) the top-level ones.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Secret variables added to (or replacing) the top-level ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// TLS settings replacing the top-level ones (a staging server with its own CA, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}
