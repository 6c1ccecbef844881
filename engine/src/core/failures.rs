//! Failure messages: what a sample's message is (none, a text, an id interned at start, a rule's
//! message with what it saw), how the recorder interns them with the message table kept bounded, and
//! the count of failures by reason each second for the console.

use formats::{MessageId, Outcome};

use super::Recorder;

/// A sample's failure message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Message<'a> {
    /// None for success; for a status failure, the interned "unexpected status N".
    Default,
    /// Interned on the spot (transport failures with details).
    Text(&'a str),
    /// Interned when the core started (extraction and check failures).
    Id(MessageId),
    /// A rule's message (interned when the core started) with what the response showed it: the
    /// text starts with the rule's message, `base_len` bytes long. At most
    /// [`DETAIL_VARIANTS`] such texts are kept per rule; the others share one message.
    Detail {
        base: MessageId,
        text: &'a str,
        base_len: usize,
    },
}

/// How many distinct failure messages with a seen value (`got 409`, `got 410`, …) a core keeps per
/// rule before the rest share `<rule's message>: … (other values)`: the message table stays bounded
/// when the value varies per request (an id, a timestamp).
pub(crate) const DETAIL_VARIANTS: usize = 16;

/// Failures by reason over a second: counts by message id, and by outcome for messageless ones.
#[derive(Debug, Default)]
pub(super) struct FailureTally {
    by_message: Vec<u32>,
    /// Message ids counted this second, so that closing a second touches only those.
    touched: Vec<u32>,
    by_outcome: [u32; 16],
    /// Each message id's text, as far as this core has seen it.
    texts: Vec<Option<Box<str>>>,
}

impl FailureTally {
    pub(super) fn count(&mut self, outcome: Outcome, message: Option<MessageId>) {
        match message {
            Some(id) => {
                let i = id.0.get() as usize;
                if i >= self.by_message.len() {
                    self.by_message.resize(i + 1, 0);
                }
                if self.by_message[i] == 0 {
                    self.touched.push(i as u32);
                }
                self.by_message[i] += 1;
            }
            None => self.by_outcome[usize::from(outcome.code()) & 15] += 1,
        }
    }

    /// Remembers `id`'s text (once).
    pub(super) fn remember(&mut self, id: MessageId, text: &str) {
        let i = id.0.get() as usize;
        if i >= self.texts.len() {
            self.texts.resize(i + 1, None);
        }
        if self.texts[i].is_none() {
            self.texts[i] = Some(text.into());
        }
    }

    /// The second's reasons with their counts; resets the counts.
    pub(super) fn take(&mut self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for &i in &self.touched {
            let n = std::mem::take(&mut self.by_message[i as usize]);
            let text = self
                .texts
                .get(i as usize)
                .and_then(|t| t.as_deref())
                .map_or_else(|| format!("failure message {i}"), str::to_owned);
            out.push((text, n));
        }
        self.touched.clear();
        for (code, n) in self.by_outcome.iter_mut().enumerate() {
            if *n > 0 {
                out.push((Outcome::name_of_code(code as u8), std::mem::take(n)));
            }
        }
        out
    }
}

/// The failure messages with a seen value a core has interned for one rule.
#[derive(Debug)]
pub(super) struct RuleDetails {
    /// The rule's own message.
    base: MessageId,
    /// At most [`DETAIL_VARIANTS`] texts and their ids.
    seen: Vec<(Box<str>, MessageId)>,
    /// The id the texts past those share.
    other: Option<MessageId>,
}

impl Recorder {
    pub(super) fn status_message(&mut self, status: u16) -> Option<MessageId> {
        let slot = self.status_messages.get_mut(usize::from(status))?;
        if slot.is_none() {
            let text = format!("unexpected status {status}");
            *slot = self.writer.as_mut().map(|w| w.intern_message(&text));
            if let Some(id) = *slot {
                self.failures.remember(id, &text);
            }
        }
        *slot
    }

    /// The id of a rule's failure message with what it saw (`text`, starting with the rule's own
    /// message of `base_len` bytes): its own id for the first [`DETAIL_VARIANTS`] distinct texts of
    /// the rule, then one shared `<rule's message>: … (other values)`.
    pub(super) fn detail_message(
        &mut self,
        base: MessageId,
        text: &str,
        base_len: usize,
    ) -> Option<MessageId> {
        let writer = self.writer.as_mut()?;
        let i = match self.details.iter().position(|d| d.base == base) {
            Some(i) => i,
            None => {
                self.details.push(RuleDetails {
                    base,
                    seen: Vec::new(),
                    other: None,
                });
                self.details.len() - 1
            }
        };
        let RuleDetails { seen, other, .. } = &mut self.details[i];
        if let Some((_, id)) = seen.iter().find(|(t, _)| &**t == text) {
            return Some(*id);
        }
        let (id, text) = if seen.len() < DETAIL_VARIANTS {
            let id = writer.intern_message(text);
            seen.push((text.into(), id));
            (id, text.to_owned())
        } else if let Some(id) = *other {
            return Some(id);
        } else {
            let shared = format!("{}: … (other values)", text.get(..base_len).unwrap_or(text));
            let id = writer.intern_message(&shared);
            *other = Some(id);
            (id, shared)
        };
        self.failures.remember(id, &text);
        Some(id)
    }
}
