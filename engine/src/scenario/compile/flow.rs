//! Compiling `flow: [...]`: flow elements to task-tree nodes, conditions to templates and regexes,
//! loops to [`LoopPlan`]s. Every mistake is an error naming the field and the text at fault.

use super::{AuthUse, CompileError, Compiler, KindCtx, error, wait};
use crate::plan::Wait;
use crate::profile::spec::{CondSpec, FlowSpec};
use crate::scenario::Node;
use crate::scenario::flow::{Cond, Label, LoopPlan, NumOp, TextOp};
use crate::scenario::template::Escape;

/// How many passes a `Repeat` makes at most when it does not say.
const DEFAULT_REPEAT_MAX: u32 = 100;

impl Compiler<'_> {
    /// A list of flow elements as a sequence node; returns it and its depth.
    fn flow_list(
        &mut self,
        kind: &KindCtx,
        kind_auth: &AuthUse,
        flow: &[FlowSpec],
        at: &str,
    ) -> Result<(usize, usize), CompileError> {
        let mut children = Vec::new();
        let mut depth = 1;
        for (i, item) in flow.iter().enumerate() {
            let (node, d) = self.flow_item(kind, kind_auth, item, &format!("{at}[{i}]"))?;
            depth = depth.max(d);
            children.push((1, node));
        }
        self.out.nodes.push(Node::Group {
            children,
            pick: false,
            total_weight: 0,
            repeat: 1,
            wait: Wait::None,
        });
        Ok((self.out.nodes.len() - 1, depth + 1))
    }

    /// One flow element as a node; returns it and its depth.
    pub(super) fn flow_item(
        &mut self,
        kind: &KindCtx,
        kind_auth: &AuthUse,
        item: &FlowSpec,
        at: &str,
    ) -> Result<(usize, usize), CompileError> {
        let (node, depth) = match item {
            FlowSpec::Request(req) => {
                let r = self.request(kind, kind_auth, req, &format!("{at}.Request"))?;
                (Node::Request(r), 1)
            }
            FlowSpec::Step(step) => {
                let s = self.step(kind, step, &format!("{at}.Step"))?;
                (Node::Step(s), 1)
            }
            FlowSpec::Task(task) => return self.task(kind, kind_auth, task, &format!("{at}.Task")),
            FlowSpec::If {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.cond(kind, cond, &format!("{at}.If.cond"))?;
                let mut depth = 1;
                let mut branch = |this: &mut Self, list: &[FlowSpec], field: &str| {
                    if list.is_empty() {
                        return Ok(None);
                    }
                    let (n, d) =
                        this.flow_list(kind, kind_auth, list, &format!("{at}.If.{field}"))?;
                    depth = depth.max(d);
                    Ok::<_, CompileError>(Some(n))
                };
                let then = branch(self, then, "then")?;
                let otherwise = branch(self, otherwise, "else")?;
                (
                    Node::If {
                        cond,
                        then,
                        otherwise,
                    },
                    depth + 1,
                )
            }
            FlowSpec::While {
                cond,
                max,
                wait: w,
                body,
            } => {
                let before = self.cond(kind, cond, &format!("{at}.While.cond"))?;
                let (body, d) = self.flow_list(kind, kind_auth, body, &format!("{at}.While.do"))?;
                let plan = LoopPlan {
                    body,
                    before: Some(before),
                    until: None,
                    max: *max,
                    timeout_us: None,
                    wait: w.as_ref().map_or(Wait::None, wait),
                    label: None,
                    timed: false,
                    gives_up: false,
                };
                (Node::Loop(Box::new(plan)), d + 1)
            }
            FlowSpec::Repeat {
                until,
                max,
                timeout,
                wait: w,
                name,
                body,
            } => {
                let until_cond = self.cond(kind, until, &format!("{at}.Repeat.until"))?;
                let (body, d) =
                    self.flow_list(kind, kind_auth, body, &format!("{at}.Repeat.do"))?;
                let max = max.unwrap_or(DEFAULT_REPEAT_MAX);
                let shown = ron::ser::to_string(until).unwrap_or_default();
                let label_name = match name {
                    Some(n) if n.contains("{{") => {
                        return Err(error(
                            format!("{at}.Repeat.name"),
                            Some(n),
                            "a loop's name groups samples and cannot change: leave templates out of it",
                        ));
                    }
                    Some(n) => self.constant(n, &format!("{at}.Repeat.name"))?,
                    None => format!("repeat until {shown}"),
                };
                let limit = match timeout {
                    Some(t) => format!(
                        "{max} passes or {}",
                        crate::profile::spec::HumanDuration(t.0)
                    ),
                    None => format!("{max} passes"),
                };
                let label = self.label(
                    label_name,
                    format!("gave up: {shown} did not hold within {limit}"),
                );
                let plan = LoopPlan {
                    body,
                    before: None,
                    until: Some(until_cond),
                    max,
                    timeout_us: timeout.map(|t| crate::clock::micros(t.0)),
                    wait: w.as_ref().map_or(Wait::None, wait),
                    label: Some(label),
                    timed: name.is_some(),
                    gives_up: true,
                };
                (Node::Loop(Box::new(plan)), d + 1)
            }
            FlowSpec::Break => (Node::Break, 1),
            FlowSpec::Set(name, value) => {
                let value = self.tpl(kind, value, Escape::None, &format!("{at}.Set"))?;
                (
                    Node::Set {
                        var: self.slots[name],
                        value,
                    },
                    1,
                )
            }
            FlowSpec::Pause(w) => (Node::Pause(wait(w)), 1),
            FlowSpec::Script { call, args, into } => {
                let func = self.script_function(call, &format!("{at}.Script.call"))?;
                let args = args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        self.tpl(kind, a, Escape::None, &format!("{at}.Script.args[{i}]"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (
                    Node::Script {
                        func,
                        args,
                        into: into.as_ref().map(|n| self.slots[n]),
                    },
                    1,
                )
            }
        };
        self.out.nodes.push(node);
        Ok((self.out.nodes.len() - 1, depth))
    }

    /// The index of script function `name`, checked against the profile's `script`.
    fn script_function(&mut self, name: &str, at: &str) -> Result<usize, CompileError> {
        let Some(script) = &self.out.script else {
            return Err(error(
                at,
                Some(name),
                "there is no script to call: add `script: \"scripts/name.lua\"` to the profile",
            ));
        };
        if !script.functions.iter().any(|f| f == name) {
            let hint = crate::profile::suggest(name, script.functions.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(error(
                at,
                Some(name),
                format!(
                    "{} defines no function `{name}`{hint} (functions: {})",
                    script.file,
                    script.functions.join(", ")
                ),
            ));
        }
        if let Some(i) = self.out.script_calls.iter().position(|f| f == name) {
            return Ok(i);
        }
        self.out.script_calls.push(name.to_owned());
        Ok(self.out.script_calls.len() - 1)
    }

    fn label(&mut self, name: String, give_up: String) -> usize {
        self.out.labels.push(Label { name, give_up });
        self.out.labels.len() - 1
    }

    /// A condition; returns its index in the scenario's conditions.
    fn cond(&mut self, kind: &KindCtx, cond: &CondSpec, at: &str) -> Result<usize, CompileError> {
        let c = self.cond_tree(kind, cond, at)?;
        self.out.conds.push(c);
        Ok(self.out.conds.len() - 1)
    }

    fn cond_tree(
        &mut self,
        kind: &KindCtx,
        cond: &CondSpec,
        at: &str,
    ) -> Result<Cond, CompileError> {
        let text = |this: &mut Self, t: &str| this.tpl(kind, t, Escape::None, at);
        Ok(match cond {
            CondSpec::Eq(a, b) => Cond::Text(TextOp::Eq, text(self, a)?, text(self, b)?),
            CondSpec::Ne(a, b) => Cond::Text(TextOp::Ne, text(self, a)?, text(self, b)?),
            CondSpec::Contains(a, b) => {
                Cond::Text(TextOp::Contains, text(self, a)?, text(self, b)?)
            }
            CondSpec::Matches(a, re) => Cond::Matches(text(self, a)?, self.regex(re, at)?),
            CondSpec::Lt(a, n) | CondSpec::Le(a, n) | CondSpec::Gt(a, n) | CondSpec::Ge(a, n) => {
                let op = match cond {
                    CondSpec::Lt(..) => NumOp::Lt,
                    CondSpec::Le(..) => NumOp::Le,
                    CondSpec::Gt(..) => NumOp::Gt,
                    _ => NumOp::Ge,
                };
                let t = text(self, a)?;
                // A comparison whose text is fixed and no number would always be false.
                if let Some(fixed) = t.static_bytes()
                    && crate::scenario::flow::number(fixed).is_none()
                {
                    return Err(error(
                        at,
                        Some(a),
                        format!(
                            "{a:?} is never a number, so this comparison is always false: compare a variable, e.g. \"{{{{count}}}}\""
                        ),
                    ));
                }
                Cond::Number(op, t, *n)
            }
            CondSpec::Empty(a) => Cond::Empty(text(self, a)?),
            CondSpec::LastStatus(codes) => Cond::LastStatus(codes.clone().into()),
            CondSpec::LastOk => Cond::LastOk(true),
            CondSpec::LastFailed => Cond::LastOk(false),
            CondSpec::Chance(p) => Cond::Chance(*p),
            CondSpec::All(all) | CondSpec::Any(all) => {
                let inner = all
                    .iter()
                    .map(|c| self.cond_tree(kind, c, at))
                    .collect::<Result<Box<[_]>, _>>()?;
                if matches!(cond, CondSpec::All(_)) {
                    Cond::All(inner)
                } else {
                    Cond::Any(inner)
                }
            }
            CondSpec::Not(inner) => Cond::Not(Box::new(self.cond_tree(kind, inner, at)?)),
        })
    }
}
