//! Steps of other protocols (TCP, UDP, WebSocket, custom): their channels, what they send and read,
//! and the combinations that would do nothing.

use std::sync::Arc;

use super::{CompileError, Compiler, KindCtx, error};
use crate::profile::spec::{ReadSpec, ReceiveSpec, StepSpec};
use crate::profile::suggest;
use crate::scenario::template::Escape;
use crate::scenario::{Channel, ReadUntil, Receive, StepKind, StepPlan};

impl Compiler<'_> {
    /// A step of another protocol.
    pub(super) fn step(
        &mut self,
        kind: &KindCtx,
        step: &StepSpec,
        at: &str,
    ) -> Result<usize, CompileError> {
        let (channel_kind, target, name) = match step {
            StepSpec::Tcp { target, name, .. } => ("tcp".to_owned(), target, name),
            StepSpec::Udp { target, name, .. } => ("udp".to_owned(), target, name),
            StepSpec::WebSocket { target, name, .. } => ("ws".to_owned(), target, name),
            StepSpec::Custom {
                protocol,
                target,
                name,
                ..
            } => (format!("custom:{protocol}"), target, name),
        };
        let target = match target {
            Some(t) => {
                let t = self.constant(t, &format!("{at}.target"))?;
                crate::plan::Target::parse(&t, &format!("{at}.target"))
                    .map_err(|e| error(e.field, Some(&t), e.message))?;
                Some(t)
            }
            None => None,
        };
        let name = match name {
            Some(n) if n.contains("{{") => {
                return Err(error(
                    format!("{at}.name"),
                    Some(n),
                    "a step name groups samples and cannot change per step: leave templates out of it",
                ));
            }
            Some(n) => self.constant(n, &format!("{at}.name"))?,
            None => {
                let upper = match step {
                    StepSpec::Tcp { .. } => "TCP".to_owned(),
                    StepSpec::Udp { .. } => "UDP".to_owned(),
                    StepSpec::WebSocket { .. } => "WS".to_owned(),
                    StepSpec::Custom { protocol, .. } => protocol.clone(),
                };
                match &target {
                    Some(t) => format!("{upper} {t}"),
                    None => upper,
                }
            }
        };
        let channel = Channel {
            kind: channel_kind,
            target,
            field: format!("{at}.target"),
        };
        let channel = match self
            .out
            .channels
            .iter()
            .position(|c| c.kind == channel.kind && c.target == channel.target)
        {
            Some(i) => i,
            None => {
                self.out.channels.push(channel);
                self.out.channels.len() - 1
            }
        };
        let mut expect_message = String::new();
        let mut expect_regex = |this: &mut Self, expect: &Option<String>| match expect {
            Some(re) => {
                expect_message = format!("reply did not match `{re}`");
                this.regex(re, &format!("{at}.expect")).map(Some)
            }
            None => Ok(None),
        };
        let compiled = match step {
            StepSpec::Tcp {
                send,
                read,
                expect,
                close,
                ..
            } => {
                let send = match send {
                    Some(t) => Some(self.tpl(kind, t, Escape::None, &format!("{at}.send"))?),
                    None => None,
                };
                let read = match read {
                    None => None,
                    Some(ReadSpec::Until(d)) if d.is_empty() => {
                        return Err(error(
                            format!("{at}.read"),
                            None,
                            "Until needs a delimiter, e.g. Until(\"\\r\\n\")",
                        ));
                    }
                    Some(ReadSpec::Until(d)) => Some(ReadUntil::Delimiter(d.as_bytes().to_vec())),
                    Some(ReadSpec::Bytes(0)) => {
                        return Err(error(
                            format!("{at}.read"),
                            None,
                            "Bytes(0) reads nothing: leave `read` out to only send",
                        ));
                    }
                    Some(ReadSpec::Bytes(n)) => Some(ReadUntil::Bytes(*n as usize)),
                    Some(ReadSpec::Match(re)) => {
                        Some(ReadUntil::Match(self.regex(re, &format!("{at}.read"))?))
                    }
                };
                if send.is_none() && read.is_none() {
                    return Err(error(
                        at,
                        None,
                        "a Tcp step with neither `send` nor `read` does nothing: give one",
                    ));
                }
                let expect = expect_regex(self, expect)?;
                if expect.is_some() && read.is_none() {
                    return Err(error(
                        format!("{at}.expect"),
                        expect.as_ref().map(regex::bytes::Regex::as_str),
                        "`expect` checks the reply, but the step reads none: add `read: Until(\"\\n\")` (or Bytes(n), Match(regex))",
                    ));
                }
                StepKind::Tcp {
                    send,
                    read,
                    expect,
                    close: *close,
                }
            }
            StepSpec::Udp {
                send,
                reply_within,
                expect,
                ..
            } => {
                let send = self.tpl(kind, send, Escape::None, &format!("{at}.send"))?;
                let expect = expect_regex(self, expect)?;
                if expect.is_some() && reply_within.is_none() {
                    return Err(error(
                        format!("{at}.expect"),
                        None,
                        "`expect` checks the reply: say how long to wait for it with `reply_within: \"500ms\"`",
                    ));
                }
                StepKind::Udp {
                    send,
                    reply_within: reply_within.map(|d| d.0),
                    expect,
                }
            }
            StepSpec::WebSocket {
                send,
                binary,
                receive,
                expect,
                within,
                ping,
                close,
                ..
            } => {
                let send = match send {
                    Some(t) => Some(self.tpl(kind, t, Escape::None, &format!("{at}.send"))?),
                    None => None,
                };
                let receive = match receive {
                    None => None,
                    Some(ReceiveSpec::Reply) => Some(Receive::Messages(1)),
                    Some(ReceiveSpec::Messages(0)) => {
                        return Err(error(
                            format!("{at}.receive"),
                            None,
                            "Messages(0) waits for nothing: leave `receive` out",
                        ));
                    }
                    Some(ReceiveSpec::Messages(n)) => Some(Receive::Messages(*n)),
                    Some(ReceiveSpec::Match(re)) => {
                        Some(Receive::Match(self.regex(re, &format!("{at}.receive"))?))
                    }
                };
                if send.is_none() && receive.is_none() && !*ping && !*close {
                    return Err(error(
                        at,
                        None,
                        "a WebSocket step with no `send`, `receive`, `ping` or `close` does nothing: give one",
                    ));
                }
                if *ping && receive.is_some() {
                    return Err(error(
                        format!("{at}.receive"),
                        None,
                        "a ping step waits for its pong: put `receive` in a step of its own",
                    ));
                }
                let expect = expect_regex(self, expect)?;
                if expect.is_some() && receive.is_none() {
                    return Err(error(
                        format!("{at}.expect"),
                        None,
                        "`expect` checks a received message: add `receive: Reply` (or Messages(n), Match(regex))",
                    ));
                }
                StepKind::WebSocket {
                    send,
                    binary: *binary,
                    receive,
                    expect,
                    within: within.map(|d| d.0),
                    ping: *ping,
                    close: *close,
                }
            }
            StepSpec::Custom {
                protocol,
                step,
                args,
                extract,
                ..
            } => {
                let Some(p) = self.protocols.get(protocol) else {
                    let known: Vec<&str> = self.protocols.names().collect();
                    let hint = suggest(protocol, known.iter().copied())
                        .map(|s| format!("did you mean {s:?}? "))
                        .unwrap_or_default();
                    let listed = if known.is_empty() {
                        "this engine binary registers none: custom protocols run from a binary that links the engine library and registers them (docs/extending.md)".to_owned()
                    } else {
                        format!("registered: {}", known.join(", "))
                    };
                    return Err(error(
                        format!("{at}.protocol"),
                        Some(&format!("{protocol:?}")),
                        format!("no protocol {protocol:?}; {hint}{listed}"),
                    ));
                };
                let p = Arc::clone(p);
                let compiled_step = p.compile(step).map_err(|m| {
                    error(
                        format!("{at}.step"),
                        Some(&format!("{protocol:?}")),
                        format!("protocol {protocol:?}: {m}"),
                    )
                })?;
                let mut arg_names = Vec::new();
                let mut templates = Vec::new();
                for (k, v) in args {
                    arg_names.push(k.clone());
                    templates.push(self.tpl(kind, v, Escape::None, &format!("{at}.args.{k}"))?);
                }
                let extract = extract
                    .iter()
                    .map(|name| (name.clone(), self.slot(name)))
                    .collect();
                StepKind::Custom {
                    protocol: p,
                    step: compiled_step,
                    arg_names,
                    args: templates,
                    extract,
                }
            }
        };
        self.out.steps.push(StepPlan {
            name,
            channel,
            kind: compiled,
            expect_message,
        });
        Ok(self.out.steps.len() - 1)
    }
}
