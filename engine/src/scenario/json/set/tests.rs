use proptest::prelude::*;

use super::*;

/// Walks `doc` for `selectors` (as one request's) and checks every answer against
/// [`Selector::find`]'s; returns the answers.
fn walk_and_compare(selectors: &[&str], doc: &[u8]) -> Vec<Found> {
    let mut picks: Vec<Pick> = selectors
        .iter()
        .map(|s| Selector::parse(s).unwrap().into())
        .collect();
    let mut set = SelectorSet::default();
    for p in &mut picks {
        set.add(p);
    }
    let hits = RefCell::new(Vec::new());
    let mut json = BodyJson::new(&set, doc, &hits);
    picks
        .iter()
        .zip(selectors)
        .map(|(p, text)| {
            let got = json.find(p);
            assert_eq!(
                got,
                p.selector.find(doc),
                "{text} (slot {:?}) in {:?}",
                p.slot,
                String::from_utf8_lossy(doc)
            );
            got
        })
        .collect()
}

fn text(doc: &[u8], found: Found) -> Option<String> {
    found
        .unwrap()
        .map(|(_, a, b)| String::from_utf8_lossy(&doc[a..b]).into_owned())
}

#[test]
fn one_walk_answers_every_selector() {
    let doc = br#"{"id": 7, "name": "n", "items": [{"id": 10}, {"id": 11, "k": {"id": 12}}],
        "k\u0031": "escaped key", "dup": 1, "dup": 2, "deep": {"a": {"id": "d"}}}"#;
    let sels = [
        "/id",
        "/name",
        "$.items[*].id",
        "$.items[-1].k.id",
        "/items/1/id",
        "$..k",
        "/k1",
        "/dup",
        "$.deep..id",
        "/missing",
        "",
        "/id",
    ];
    let got: Vec<_> = walk_and_compare(&sels, doc)
        .into_iter()
        .map(|f| text(doc, f))
        .collect();
    let want = [
        Some("7"),
        Some("\"n\""),
        Some("10"),
        Some("12"),
        Some("11"),
        Some("{\"id\": 12}"),
        Some("\"escaped key\""),
        Some("1"),
        Some("\"d\""),
        None,
        Some(std::str::from_utf8(doc).unwrap()),
        Some("7"),
    ];
    assert_eq!(got, want.map(|w| w.map(str::to_owned)));
}

#[test]
fn equal_selectors_share_a_slot_and_unwalkable_ones_have_none() {
    let mut set = SelectorSet::default();
    let mut slots = Vec::new();
    for s in ["/a", "$.b", "/a", "$..x.y", "$['b']", ""] {
        let mut p: Pick = Selector::parse(s).unwrap().into();
        set.add(&mut p);
        slots.push(p.slot);
    }
    assert_eq!(slots, [Some(0), Some(1), Some(0), None, Some(1), Some(2)]);
    assert_eq!(set.len(), 3);
    // Past 64 selectors, the rest are looked up on their own (and give the same answers).
    let names: Vec<String> = (0..70).map(|i| format!("/k{i}")).collect();
    let doc = format!(
        "{{{}}}",
        (0..70)
            .map(|i| format!("\"k{i}\": {i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let sels: Vec<&str> = names.iter().map(String::as_str).collect();
    let got = walk_and_compare(&sels, doc.as_bytes());
    assert_eq!(text(doc.as_bytes(), got[69]), Some("69".into()));
}

/// Where `find` stops reading, the walk stops answering for that selector: what comes after is
/// not read for it, broken or not.
#[test]
fn broken_documents_get_finds_answers() {
    let cases: &[(&[&str], &str)] = &[
        // Found before the damage; the other is not.
        (&["/a", "/b", "/zz"], r#"{"a": 1, "b": [2], "c": ]"#),
        // A top-level array is not read for a token that is no index, and is read only up to
        // the element an index selects.
        (&["/x", "/0/q", "/1", "$[*].q"], r#"[{"q": 1}, 2, ]"#),
        (&["/0/zz", "$[0].zz"], r#"[{"q": 1}, oops"#),
        // Counting from the end reads the whole array first.
        (&["$.a[-1]", "$.a[0]"], r#"{"a": [1, 2, }"#),
        (&["$[-2]", "$[-9]"], r#"[1, 2, 3] trailing"#),
        (&["/a"], r#"{"a" 1}"#),
        (&["/a", ""], ""),
        (&["$..a", "/b/c"], r#"{"b": {"c": tru}}"#),
    ];
    for (sels, doc) in cases {
        walk_and_compare(sels, doc.as_bytes());
    }
    let answers = walk_and_compare(&["/a", "/b", "/zz"], br#"{"a": 1, "b": [2], "c": ]"#);
    assert!(matches!(
        answers[..],
        [Ok(Some(_)), Ok(Some(_)), Err(JsonError::Invalid)]
    ));
    let deep = format!("{{\"a\": 1, \"b\": {}", "[".repeat(200));
    let answers = walk_and_compare(&["/a", "/b/0"], deep.as_bytes());
    assert!(matches!(
        answers[..],
        [Ok(Some(_)), Err(JsonError::TooDeep)]
    ));
}

/// A JSON value to render into a document, with the text of its numbers, strings and keys
/// as written (escapes and all).
#[derive(Debug, Clone)]
enum J {
    Atom(&'static str),
    Array(Vec<J>),
    Object(Vec<(&'static str, J)>),
}

fn render(v: &J, pretty: bool, out: &mut String) {
    let sep = if pretty { ",\n  " } else { "," };
    match v {
        J::Atom(a) => out.push_str(a),
        J::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                render(item, pretty, out);
            }
            out.push(']');
        }
        J::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(k);
                out.push_str(if pretty { " : " } else { ":" });
                render(item, pretty, out);
            }
            out.push('}');
        }
    }
}

fn documents() -> impl Strategy<Value = J> {
    let atom = prop::sample::select(vec![
        "0",
        "-1",
        "12",
        "3.5",
        "1e3",
        "-0.25E-2",
        "true",
        "false",
        "null",
        r#""""#,
        r#""k0""#,
        r#""a\"b""#,
        r#""caf\u00e9""#,
        r#""x\ny""#,
    ])
    .prop_map(J::Atom);
    atom.prop_recursive(5, 64, 5, |inner| {
        let key = prop::sample::select(vec![
            r#""k0""#,
            r#""k1""#,
            r#""k2""#,
            r#""k\u0031""#,
            r#""0""#,
            r#""a/b""#,
            r#""""#,
            r#""long_key_one""#,
            r#""long_key_two""#,
            r#""long_key_\u006fne""#,
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
            prop::collection::vec((key, inner), 0..5).prop_map(J::Object),
        ]
    })
}

fn selector() -> impl Strategy<Value = String> {
    let pointer = prop::collection::vec(
        prop::sample::select(vec![
            "k0",
            "k1",
            "k2",
            "0",
            "1",
            "2",
            "01",
            "+1",
            "a~1b",
            "",
            "long_key_one",
            "long_key_tw",
        ]),
        0..4,
    )
    .prop_map(|tokens| tokens.iter().map(|t| format!("/{t}")).collect::<String>());
    let path = prop::collection::vec(
        prop::sample::select(vec![
            ".k0",
            ".k1",
            "['k2']",
            "['0']",
            "[0]",
            "[1]",
            "[-1]",
            "[-3]",
            "[*]",
            ".*",
            "..k0",
            "..k1",
            ".long_key_two",
            "..long_key_one",
        ]),
        0..4,
    )
    .prop_map(|segments| format!("${}", segments.concat()));
    prop_oneof![pointer, path]
}

/// Selectors that are all members of the top-level object, as most requests' are.
fn member_selector() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "/k0",
        "/k1",
        "/k2",
        "/0",
        "/a~1b",
        "/",
        "/long_key_one",
        "$.k1",
        "$['k2']",
        "$.long_key_two",
        "/long_key_tw",
    ])
    .prop_map(str::to_owned)
}

/// `doc` rendered, then left whole (`damage` 0), cut short at `at` (1) or with the byte at `at`
/// replaced by `byte` (2).
fn damaged(doc: &J, pretty: bool, damage: u8, at: prop::sample::Index, byte: u8) -> Vec<u8> {
    let mut text = String::new();
    render(doc, pretty, &mut text);
    let mut bytes = text.into_bytes();
    if !bytes.is_empty() {
        let i = at.index(bytes.len());
        match damage {
            1 => bytes.truncate(i),
            2 => bytes[i] = byte,
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The same, for sets of top-level members only (read by the one loop over the members).
    #[test]
    fn one_loop_over_members_equals_one_find_per_selector(
        doc in documents(),
        pretty in any::<bool>(),
        selectors in prop::collection::vec(member_selector(), 1..6),
        damage in 0..3u8,
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"\"{}[],:\\x1 ".to_vec()),
    ) {
        let bytes = damaged(&doc, pretty, damage, at, byte);
        let sels: Vec<&str> = selectors.iter().map(String::as_str).collect();
        walk_and_compare(&sels, &bytes);
    }

    /// The one walk gives every selector of a random set what `find` gives it on its own, in
    /// random documents, whole, cut short, or with one byte replaced.
    #[test]
    fn one_walk_equals_one_find_per_selector(
        doc in documents(),
        pretty in any::<bool>(),
        selectors in prop::collection::vec(selector(), 1..8),
        damage in 0..3u8,
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"\"{}[],:\\x1 ".to_vec()),
    ) {
        let bytes = damaged(&doc, pretty, damage, at, byte);
        let sels: Vec<&str> = selectors.iter().map(String::as_str).collect();
        walk_and_compare(&sels, &bytes);
    }
}
