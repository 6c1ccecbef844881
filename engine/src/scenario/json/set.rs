//! All of a request's JSON selectors in one walk over a response. When a profile is compiled, the
//! selectors of a request's checks and extractions are gathered into a [`SelectorSet`] (each rule
//! keeps its slot in a [`Pick`]); the first rule that needs a value walks the body once for all of
//! them ([`BodyJson`]), stopping as soon as each has its answer. Every answer is the one
//! [`Selector::find`] gives on its own, errors and "not found" included: the walk reads the document
//! in the same order, and stops reading for a selector where `find` would.
//!
//! The walk keeps, per value, a bit mask of the selectors still looking below it (a selector
//! without `..` is at its step `d` at depth `d`; a trailing `..name` stays at that step), so it needs
//! no memory beyond its stack. A selector with `..name` followed by more steps is not walked: `find`
//! returns the first `name` whose rest matches, which is not always the first match in document
//! order. Those, and any beyond the first 64 of a request, are looked up on their own.

use std::cell::RefCell;

use super::scan::{Scanner, kind_at};
use super::{JsonError, Kind, Selector, Step, key_eq, token_index};

/// What looking a selector up in a body gives: the value's kind and byte range, nothing, or why
/// the body could not be read there.
pub(crate) type Found = Result<Option<(Kind, usize, usize)>, JsonError>;

/// How many selectors one walk serves: one bit each in its masks.
const WALKED_MAX: usize = 64;

/// A rule's selector and, once its request is compiled, its slot in the request's
/// [`SelectorSet`] (`None`: looked up on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pick {
    pub selector: Selector,
    pub slot: Option<u16>,
}

impl From<Selector> for Pick {
    fn from(selector: Selector) -> Pick {
        Pick {
            selector,
            slot: None,
        }
    }
}

/// A request's walked selectors, by slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct SelectorSet {
    paths: Vec<Path>,
    /// Per depth, the selectors whose step there is an object key, with the key: a member is
    /// tested against these first, without going through the paths.
    keys: Vec<Vec<KeyHop>>,
    /// Per depth, the mask of those selectors.
    keyed: Vec<u64>,
    /// The selectors with no step: the whole document.
    root_hit: u64,
    /// The others.
    root_active: u64,
    /// Every selector is one member of the top-level object (`/id`, `$.name`): the walk of an
    /// object is then one loop over its members.
    flat: bool,
}

/// A selector's step that is an object key (a pointer token or a JSONPath key), at some depth.
#[derive(Debug, Clone)]
struct KeyHop {
    bit: u64,
    key: Box<[u8]>,
    /// The key's first eight bytes as a little-endian word, zero-padded: most keys compare in one
    /// instruction.
    word: u64,
    /// The value under the key is the selector's match (else the selector looks below it).
    last: bool,
}

/// A selector as the walk applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path {
    hops: Box<[Hop]>,
    /// The last hop is [`Hop::Below`], which applies at its depth and every depth under it.
    below: bool,
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hop {
    /// A JSON pointer token: the member with this key, or the element at the index it spells
    /// (`None`: it spells none).
    Token(Box<[u8]>, Option<usize>),
    /// A JSONPath key: objects only.
    Key(Box<[u8]>),
    /// A JSONPath index from the start.
    Index(usize),
    /// A JSONPath index from the end (`[-1]` is 1).
    FromEnd(usize),
    /// Every member or element.
    Every,
    /// `..name` as the last step: the first member `name` at any depth below.
    Below(Box<[u8]>),
}

impl Path {
    /// The walk's form of `sel`, if the walk can serve it.
    fn of(sel: &Selector) -> Option<Path> {
        let n = sel.steps.len();
        let mut hops = Vec::with_capacity(n);
        for (i, step) in sel.steps.iter().enumerate() {
            hops.push(match step {
                Step::Token(t) => Hop::Token(t.clone(), token_index(t)),
                Step::Key(k) => Hop::Key(k.clone()),
                Step::Index(x) => match usize::try_from(*x) {
                    Ok(x) => Hop::Index(x),
                    Err(_) => Hop::FromEnd(usize::try_from(x.unsigned_abs()).ok()?),
                },
                Step::Wildcard => Hop::Every,
                Step::Descend(k) if i + 1 == n => Hop::Below(k.clone()),
                Step::Descend(_) => return None,
            });
        }
        Some(Path {
            below: matches!(hops.last(), Some(Hop::Below(_))),
            hops: hops.into(),
        })
    }

    /// The hop applied to a value at depth `d` this path is still looking below, and whether a
    /// child it selects is the match itself.
    #[inline]
    fn at(&self, d: usize) -> (&Hop, bool) {
        let last = self.hops.len() - 1;
        if self.below && d >= last {
            (&self.hops[last], false)
        } else {
            (&self.hops[d], d == last)
        }
    }
}

/// The first (up to) eight bytes of `b[at..at + len]` as a little-endian word, zero-padded.
#[inline(always)]
fn prefix_word(b: &[u8], at: usize, len: usize) -> u64 {
    let keep = if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    };
    match b.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) & keep,
        None => {
            let mut w = [0u8; 8];
            let n = len.min(8).min(b.len().saturating_sub(at));
            w[..n].copy_from_slice(&b[at..at + n]);
            u64::from_le_bytes(w) & keep
        }
    }
}

/// The positions of the set bits of `m`, lowest first.
#[inline]
fn bits(mut m: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (m != 0).then(|| {
            let s = m.trailing_zeros() as usize;
            m &= m - 1;
            s
        })
    })
}

impl SelectorSet {
    /// Gives `pick` its slot: a selector equal to one already here shares that one's. A selector
    /// the walk cannot serve, or one past the first 64, keeps `None`.
    pub fn add(&mut self, pick: &mut Pick) {
        pick.slot = None;
        let Some(path) = Path::of(&pick.selector) else {
            return;
        };
        if let Some(i) = self.paths.iter().position(|p| *p == path) {
            pick.slot = u16::try_from(i).ok();
            return;
        }
        let i = self.paths.len();
        if i == WALKED_MAX {
            return;
        }
        let bit = 1 << i;
        if path.hops.is_empty() {
            self.root_hit |= bit;
        } else {
            self.root_active |= bit;
        }
        for (d, hop) in path.hops.iter().enumerate() {
            if let Hop::Token(k, _) | Hop::Key(k) = hop {
                if self.keys.len() <= d {
                    self.keys.resize_with(d + 1, Vec::new);
                    self.keyed.resize(d + 1, 0);
                }
                self.keys[d].push(KeyHop {
                    bit,
                    word: prefix_word(k, 0, k.len()),
                    key: k.clone(),
                    last: d + 1 == path.hops.len(),
                });
                self.keyed[d] |= bit;
            }
        }
        self.paths.push(path);
        self.flat = self
            .paths
            .iter()
            .all(|p| matches!(&*p.hops, [Hop::Token(..) | Hop::Key(_)]));
        pick.slot = u16::try_from(i).ok();
    }

    /// How many slots the set has.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Fills `hits[slot]` (for every slot of the set) with what [`Selector::find`] gives for that
    /// slot's selector in `doc`, in one walk. `hits` has at least [`SelectorSet::len`] entries.
    pub fn walk(&self, doc: &[u8], hits: &mut [Found]) {
        let n = self.paths.len();
        hits[..n].fill(Ok(None));
        if n == 0 {
            return;
        }
        let mut w = Walk {
            scan: Scanner::new(doc),
            set: self,
            hits,
            open: self.root_hit | self.root_active,
        };
        let start = w.scan.ws(0);
        let (active, hit) = (self.root_active, self.root_hit);
        let walked = if self.flat && doc.get(start) == Some(&b'{') {
            w.members(start)
        } else {
            w.value(start, 0, active, hit, active).map(drop)
        };
        if let Err(Stop::Broken(e)) = walked {
            for s in bits(w.open) {
                w.hits[s] = Err(e);
            }
        }
    }

    /// Of the selectors in `active` looking below an object at depth `d`: those looking below the
    /// value of its member whose raw key is `doc[at..at + len]` (`escaped` when it holds an escape),
    /// and those that match that value.
    #[inline]
    fn member(
        &self,
        doc: &[u8],
        (at, len): (usize, usize),
        escaped: bool,
        d: usize,
        active: u64,
    ) -> (u64, u64) {
        let key = &doc[at..at + len];
        let named = |k: &[u8]| if escaped { key_eq(key, k) } else { key == k };
        let (mut below, mut hit) = (0, 0);
        let keyed = self.keyed.get(d).map_or(0, |k| k & active);
        if keyed != 0 {
            let word = prefix_word(doc, at, len);
            for h in &self.keys[d] {
                let same = if escaped {
                    key_eq(key, &h.key)
                } else {
                    len == h.key.len() && word == h.word && (len <= 8 || key == &*h.key)
                };
                if keyed & h.bit != 0 && same {
                    if h.last {
                        hit |= h.bit;
                    } else {
                        below |= h.bit;
                    }
                }
            }
        }
        for s in bits(active & !keyed) {
            let bit = 1 << s;
            let (hop, last) = self.paths[s].at(d);
            let take = match hop {
                Hop::Token(k, _) | Hop::Key(k) => named(k),
                Hop::Every => true,
                Hop::Below(k) => {
                    if named(k) {
                        hit |= bit;
                    } else {
                        below |= bit;
                    }
                    continue;
                }
                Hop::Index(_) | Hop::FromEnd(_) => false,
            };
            if take {
                if last {
                    hit |= bit;
                } else {
                    below |= bit;
                }
            }
        }
        (below, hit)
    }

    /// Like [`SelectorSet::member`], for element `n` of an array of `len` elements (known when a
    /// selector counts from the end); also those that index exactly this element.
    #[inline]
    fn element(&self, n: usize, len: Option<usize>, d: usize, active: u64) -> (u64, u64, u64) {
        let (mut below, mut hit, mut indexed) = (0, 0, 0);
        for s in bits(active) {
            let bit = 1 << s;
            let (hop, last) = self.paths[s].at(d);
            let take = match hop {
                Hop::Token(_, Some(i)) | Hop::Index(i) => {
                    let take = *i == n;
                    if take {
                        indexed |= bit;
                    }
                    take
                }
                Hop::FromEnd(back) => {
                    let take = len.and_then(|l| l.checked_sub(*back)) == Some(n);
                    if take {
                        indexed |= bit;
                    }
                    take
                }
                Hop::Every => true,
                Hop::Below(_) => {
                    below |= bit;
                    continue;
                }
                Hop::Token(_, None) | Hop::Key(_) => false,
            };
            if take {
                if last {
                    hit |= bit;
                } else {
                    below |= bit;
                }
            }
        }
        (below, hit, indexed)
    }

    /// Of `active` at an array at depth `d`: the selectors whose hop there is a pointer token that
    /// is no index, and those counting from the end.
    fn array_hops(&self, d: usize, active: u64) -> (u64, u64) {
        let (mut no_index, mut from_end) = (0, 0);
        for s in bits(active) {
            match self.paths[s].at(d).0 {
                Hop::Token(_, None) => no_index |= 1 << s,
                Hop::FromEnd(_) => from_end |= 1 << s,
                _ => {}
            }
        }
        (no_index, from_end)
    }
}

/// Why a walk ended before the end of the document.
enum Stop {
    /// Every selector has its answer.
    Done,
    /// The document is broken (or too deep) here; the selectors still open fail with this.
    Broken(JsonError),
}

impl From<JsonError> for Stop {
    fn from(e: JsonError) -> Stop {
        Stop::Broken(e)
    }
}

/// One walk over a document for a set's selectors.
struct Walk<'a, 'w> {
    scan: Scanner<'a>,
    set: &'w SelectorSet,
    hits: &'w mut [Found],
    /// The selectors without their answer yet.
    open: u64,
}

impl Walk<'_, '_> {
    /// Reads the value at `i`, at depth `d`, for the selectors in `active` (looking below it) and
    /// in `hit` (for which it is the match); returns its end. Of `active`, those in `pinned` reached
    /// this value by array indexes alone from the top: `find` has nowhere else to look for them
    /// (it goes back up without reading on), so when the value holds no match they have none.
    fn value(
        &mut self,
        i: usize,
        d: usize,
        active: u64,
        hit: u64,
        pinned: u64,
    ) -> Result<usize, Stop> {
        let active = active & self.open;
        let end = match self.scan.b.get(i) {
            Some(b'{') if active != 0 => self.object(i, d, active)?,
            Some(b'[') if active != 0 => self.array(i, d, active, pinned)?,
            _ => self.scan.skip(i)?,
        };
        let hit = hit & self.open;
        if hit != 0 {
            self.answer(hit, Ok(Some((kind_at(self.scan.b, i), i, end))))?;
        }
        let pinned = pinned & self.open;
        if pinned != 0 {
            self.answer(pinned, Ok(None))?;
        }
        Ok(end)
    }

    /// Records `found` for the selectors in `mask`; stops the walk when none is left open.
    fn answer(&mut self, mask: u64, found: Found) -> Result<(), Stop> {
        if mask & (mask - 1) == 0 {
            self.hits[mask.trailing_zeros() as usize] = found;
        } else {
            for s in bits(mask) {
                self.hits[s] = found;
            }
        }
        self.open &= !mask;
        if self.open == 0 {
            Err(Stop::Done)
        } else {
            Ok(())
        }
    }

    /// A child value: walked for the selectors looking below it, else skipped (and answered for
    /// those it matches). `pinned` is part of `active`.
    #[inline]
    fn child(
        &mut self,
        j: usize,
        d: usize,
        active: u64,
        hit: u64,
        pinned: u64,
    ) -> Result<usize, Stop> {
        if active != 0 {
            return self.value(j, d + 1, active, hit, pinned);
        }
        let end = self.scan.skip(j)?;
        if hit != 0 {
            self.answer(hit, Ok(Some((kind_at(self.scan.b, j), j, end))))?;
        }
        Ok(end)
    }

    /// [`Walk::object`] for the top-level object at `i` when every selector is one of its members
    /// ([`SelectorSet::flat`]): the same reading and answers, without the per-value bookkeeping.
    fn members(&mut self, i: usize) -> Result<(), Stop> {
        let keys = &self.set.keys[0];
        self.scan.enter()?;
        let mut j = self.scan.ws(i + 1);
        if self.scan.b.get(j) == Some(&b'}') {
            return Ok(());
        }
        loop {
            if self.scan.b.get(j) != Some(&b'"') {
                return Err(JsonError::Invalid.into());
            }
            let (key_end, escaped) = self.scan.string_end_escaped(j)?;
            let (at, len) = (j + 1, key_end - 1 - (j + 1));
            j = self.scan.ws(self.scan.expect(self.scan.ws(key_end), b':')?);
            let doc = self.scan.b;
            let word = prefix_word(doc, at, len);
            let mut hit = 0;
            for h in keys {
                if self.open & h.bit != 0
                    && if escaped {
                        key_eq(&doc[at..at + len], &h.key)
                    } else {
                        len == h.key.len()
                            && word == h.word
                            && (len <= 8 || doc[at..at + len] == *h.key)
                    }
                {
                    hit |= h.bit;
                }
            }
            let end = self.scan.skip(j)?;
            if hit != 0 {
                self.answer(hit, Ok(Some((kind_at(doc, j), j, end))))?;
            }
            j = self.scan.ws(end);
            match doc.get(j) {
                Some(b',') => j = self.scan.ws(j + 1),
                Some(b'}') => return Ok(()),
                _ => return Err(JsonError::Invalid.into()),
            }
        }
    }

    fn object(&mut self, i: usize, d: usize, active: u64) -> Result<usize, Stop> {
        self.scan.enter()?;
        let mut j = self.scan.ws(i + 1);
        if self.scan.b.get(j) == Some(&b'}') {
            self.scan.depth -= 1;
            return Ok(j + 1);
        }
        loop {
            if self.scan.b.get(j) != Some(&b'"') {
                return Err(JsonError::Invalid.into());
            }
            let (key_end, escaped) = self.scan.string_end_escaped(j)?;
            let key = (j + 1, key_end - 1 - (j + 1));
            j = self.scan.ws(self.scan.expect(self.scan.ws(key_end), b':')?);
            let (below, hit) = self
                .set
                .member(self.scan.b, key, escaped, d, active & self.open);
            j = self.child(j, d, below, hit, 0)?;
            j = self.scan.ws(j);
            match self.scan.b.get(j) {
                Some(b',') => j = self.scan.ws(j + 1),
                Some(b'}') => {
                    self.scan.depth -= 1;
                    return Ok(j + 1);
                }
                _ => return Err(JsonError::Invalid.into()),
            }
        }
    }

    fn array(&mut self, i: usize, d: usize, active: u64, pinned: u64) -> Result<usize, Stop> {
        let (no_index, from_end) = self.set.array_hops(d, active);
        // `find` does not read an array that a pointer token cannot index.
        if pinned & no_index != 0 {
            self.answer(pinned & no_index, Ok(None))?;
        }
        // Counting from the end, `find` reads the whole array for its length first.
        let mut len = None;
        if from_end != 0 {
            let depth = self.scan.depth;
            match self.scan.len(i) {
                Ok(n) => len = Some(n),
                Err(e) => {
                    self.scan.depth = depth;
                    self.answer(from_end, Err(e))?;
                }
            }
        }
        self.scan.enter()?;
        let mut j = self.scan.ws(i + 1);
        if self.scan.b.get(j) == Some(&b']') {
            self.scan.depth -= 1;
            return Ok(j + 1);
        }
        let mut n = 0;
        loop {
            let (below, hit, indexed) = self.set.element(n, len, d, active & self.open);
            j = self.child(j, d, below, hit, pinned & indexed & below)?;
            n += 1;
            j = self.scan.ws(j);
            match self.scan.b.get(j) {
                Some(b',') => j = self.scan.ws(j + 1),
                Some(b']') => {
                    self.scan.depth -= 1;
                    return Ok(j + 1);
                }
                _ => return Err(JsonError::Invalid.into()),
            }
        }
    }
}

/// A response body's answers to its request's selectors, walked for when a rule first asks.
pub(crate) struct BodyJson<'a> {
    set: &'a SelectorSet,
    body: &'a [u8],
    /// The core's reused answer table (no allocation once it has a slot for every selector).
    hits: &'a RefCell<Vec<Found>>,
    walked: bool,
}

impl<'a> BodyJson<'a> {
    pub fn new(set: &'a SelectorSet, body: &'a [u8], hits: &'a RefCell<Vec<Found>>) -> Self {
        BodyJson {
            set,
            body,
            hits,
            walked: false,
        }
    }

    /// What `pick` finds in the body: [`Selector::find`]'s answer. Inlined into the rules (which
    /// are inlined into the request path); the walk is not.
    #[inline(always)]
    pub fn find(&mut self, pick: &Pick) -> Found {
        match pick.slot.map(usize::from) {
            Some(slot) if slot < self.set.len() => {
                if !self.walked {
                    self.walk();
                }
                self.hits.borrow()[slot]
            }
            _ => pick.selector.find(self.body),
        }
    }

    #[inline(never)]
    fn walk(&mut self) {
        let mut hits = self.hits.borrow_mut();
        if hits.len() < self.set.len() {
            // Only when the core did not size the table (tests): a run never grows it here.
            hits.resize(self.set.len(), Ok(None));
        }
        self.set.walk(self.body, &mut hits);
        self.walked = true;
    }
}

#[cfg(test)]
mod tests;
