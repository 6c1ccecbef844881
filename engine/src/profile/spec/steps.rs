//! Steps of protocols other than HTTP: raw TCP, UDP, WebSocket and registered custom protocols.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DurationSpec;

/// A step of a protocol other than HTTP (docs/protocols.md). Each becomes one sample.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Step")]
pub enum StepSpec {
    /// Raw TCP on the user's connection to the target: send bytes, read a reply, check it.
    Tcp {
        /// The name samples are grouped under; default `TCP` and the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// `tcp://host:port`; default the profile's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Bytes to send (a template; RON escapes such as `\r\n` and `\u{0}` apply).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<String>,
        /// How to tell that the reply is complete; absent: do not read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read: Option<ReadSpec>,
        /// A regex the reply must match, else the sample fails with outcome `check`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
        /// Close the connection after this step (the next step connects again).
        #[serde(default, skip_serializing_if = "is_false")]
        close: bool,
    },
    /// A UDP datagram to the target, optionally awaiting one in reply.
    Udp {
        /// The name samples are grouped under; default `UDP` and the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// `udp://host:port`; default the profile's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The datagram (a template).
        send: String,
        /// Await a reply this long; absent: fire and forget. A reply that does not come in time is a
        /// `timeout` sample (a lost datagram).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_within: Option<DurationSpec>,
        /// A regex the reply must match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
    },
    /// A WebSocket exchange (`ws://`, `wss://`) on the user's upgraded connection: send a message
    /// (or a ping), then await a reply, several messages, or a message that matches; or close.
    WebSocket {
        /// The name samples are grouped under; default `WS` and the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// `ws://host:port/path` or `wss://...`; default the profile's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The message to send (a template); with `ping`, the ping's payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<String>,
        /// Send a binary message instead of text.
        #[serde(default, skip_serializing_if = "is_false")]
        binary: bool,
        /// What to wait for after sending; absent: nothing (with `ping`: the pong).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receive: Option<ReceiveSpec>,
        /// A regex the last message received must match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
        /// How long to wait for what `receive` asks; default the request timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<DurationSpec>,
        /// Send a ping and wait for its pong.
        #[serde(default, skip_serializing_if = "is_false")]
        ping: bool,
        /// Close the WebSocket (close frame, then wait for the server's) after the step.
        #[serde(default, skip_serializing_if = "is_false")]
        close: bool,
    },
    /// A step of a protocol that the engine binary registered (docs/extending.md).
    Custom {
        /// The protocol's registered name.
        protocol: String,
        /// The name samples are grouped under; default the protocol's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Where to connect (`tcp://host:port`); default the profile's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// What to do, in the protocol's own terms; handed to it as a RON value when the profile loads.
        #[serde(default = "unit_value")]
        step: ron::Value,
        /// Templates evaluated per step and handed to the protocol by name.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        args: BTreeMap<String, String>,
        /// User variables the step may set from its result.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        extract: Vec<String>,
    },
}

/// What a WebSocket step waits for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Receive")]
pub enum ReceiveSpec {
    /// One message.
    Reply,
    /// This many messages.
    Messages(u32),
    /// Messages until one matches this regex.
    Match(String),
}

/// When a TCP reply is complete.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Read")]
pub enum ReadSpec {
    /// Up to and including this delimiter (RON escapes apply: `Until("\r\n")`).
    Until(String),
    /// Exactly this many bytes.
    Bytes(u32),
    /// Until the bytes read so far match this regex.
    Match(String),
}

fn unit_value() -> ron::Value {
    ron::Value::Unit
}

fn is_false(b: &bool) -> bool {
    !*b
}
