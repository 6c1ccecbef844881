//! Writes Kubernetes objects as block-style YAML that every YAML parser reads back the same.
//!
//! Kubernetes reads manifests with a YAML 1.1 parser, where bare `no`, `on`, `y`, `12:30` and `1_000`
//! are booleans and numbers; YAML 1.2 serializers (serde_yaml's forks among them) write such strings
//! bare. So this writer leaves a string bare only when it starts with a letter or `/`, holds nothing
//! but letters, digits and `_./-:`, and is none of YAML 1.1's boolean or null words; it double-quotes
//! every other single-line string (JSON escapes, which YAML's double-quoted style shares). Multi-line
//! strings that are map values, such as the profile and data files in a ConfigMap, are literal
//! blocks (`|`) so that they read as the files they are, unless a character or a blank-looking line
//! could change their meaning there.
//!
//! The input is [`Node`], a tree that keeps map keys in the order serde wrote them (`apiVersion`,
//! `kind`, `metadata`, `spec`, as people expect), built from any `Serialize` value by [`to_node`].

use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A YAML value with map keys in their written order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json wrote it.
    Number(String),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A map, in order.
    Map(Vec<(String, Node)>),
}

/// `value` as a [`Node`], with struct fields in declaration order.
pub fn to_node<T: serde::Serialize>(value: &T) -> Node {
    // serde_json writes fields in order; `Node`'s own Deserialize keeps that order (a
    // `serde_json::Value` would sort the keys). Serializing plain structs of strings and numbers
    // cannot fail.
    let json = serde_json::to_string(value).expect("Kubernetes objects serialize to JSON");
    serde_json::from_str(&json).expect("JSON written by serde_json reads back")
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Number(
            serde_json::Number::from_f64(v).map_or_else(|| "null".to_owned(), |n| n.to_string()),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

/// One YAML document (no `---`), ending in a newline.
pub fn document(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
        Node::Seq(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

/// Block map entries at `indent`, the first one's key written where the cursor is (after `- ` in a
/// sequence), the others on lines of their own.
fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str(&scalar_str(key));
        out.push(':');
        match value {
            Node::Map(inner) if !inner.is_empty() => {
                out.push('\n');
                pad(out, indent + 2);
                write_map(out, inner, indent + 2);
            }
            Node::Seq(items) if !items.is_empty() => {
                out.push('\n');
                pad(out, indent + 2);
                write_seq(out, items, indent + 2);
            }
            Node::Str(s) if literal_block_fits(s) => write_literal(out, s, indent),
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

/// Block sequence items at `indent`, the first `- ` written where the cursor is.
fn write_seq(out: &mut String, items: &[Node], indent: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Node::Map(inner) if !inner.is_empty() => write_map(out, inner, indent + 2),
            Node::Seq(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2),
            scalar => {
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar, or an empty collection, on one line.
fn inline(node: &Node) -> String {
    match node {
        Node::Null => "null".to_owned(),
        Node::Bool(b) => b.to_string(),
        Node::Number(n) => n.clone(),
        Node::Str(s) => scalar_str(s),
        Node::Seq(_) => "[]".to_owned(),
        Node::Map(_) => "{}".to_owned(),
    }
}

/// A string bare when no YAML parser could read it as anything else, else double-quoted.
fn scalar_str(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_owned()
    } else {
        quote(s)
    }
}

/// Whether `s` may be written bare: it reads back as this string under YAML 1.1 and 1.2 alike.
pub(crate) fn plain_is_safe(s: &str) -> bool {
    const WORDS: [&str; 11] = [
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf",
    ];
    // Command-line flags (`--shards`) read as themselves: `-` is an indicator only before a space.
    let head = s.strip_prefix("--").unwrap_or(s);
    let Some(first) = head.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || (first == '/' && head.len() == s.len()))
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':'))
        && !s.ends_with(':')
        && !WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

/// A double-quoted scalar. Besides JSON's escapes, characters that YAML treats as line breaks or
/// does not allow unescaped (C1 controls, NEL, the Unicode line and paragraph separators, BOM,
/// non-characters) are written as `\uXXXX`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn needs_escape(c: char) -> bool {
    let u = u32::from(c);
    u < 0x20
        || (0x7f..=0x9f).contains(&u)
        || matches!(u, 0x2028 | 0x2029 | 0xfeff | 0xfffe | 0xffff)
        || (0xd800..=0xdfff).contains(&u)
}

/// Whether `s` reads back unchanged as a literal block: several lines of printable characters (not
/// only newlines), no
/// tab or carriage return (kept simple for every parser), and no line made only of spaces (a literal
/// block takes such a line, when shorter than the indentation, as an empty one).
fn literal_block_fits(s: &str) -> bool {
    s.contains('\n')
        && !s.trim_end_matches('\n').is_empty()
        && !s
            .chars()
            .any(|c| c != '\n' && (c == '\t' || needs_escape(c)))
        && !s
            .split('\n')
            .any(|line| !line.is_empty() && line.trim_start_matches(' ').is_empty())
}

/// `key: |` and the lines of `s`, indented two more than the key. The chomping indicator keeps the
/// trailing newlines exactly: none (`|-`), one (`|`) or more (`|+`); an explicit indentation
/// indicator is given when the first line starts with a space.
fn write_literal(out: &mut String, s: &str, indent: usize) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    out.push_str(" |");
    if body.trim_start_matches('\n').starts_with(' ') {
        out.push('2');
    }
    out.push_str(match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    });
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(out, indent + 2);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> serde_json::Value {
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    }

    fn round_trip(value: &serde_json::Value) {
        let text = document(&to_node(value));
        assert_eq!(&parse(&text), value, "{text}");
    }

    #[test]
    fn strings_that_yaml_1_1_reads_as_other_types_are_quoted() {
        for s in [
            "no",
            "No",
            "NO",
            "on",
            "off",
            "y",
            "n",
            "yes",
            "true",
            "null",
            "~",
            "12:30",
            "1_000",
            "0755",
            "1e3",
            "0x1F",
            ".inf",
            "2026-01-01",
            "",
            " lead",
            "trail ",
            "- x",
            "x: y",
            "a #b",
            "*ref",
            "&anchor",
            "!tag",
            "%x",
            "@x",
            "`x",
            "{a}",
            "[a]",
            "'q'",
            "\"q\"",
            "=",
            "<<",
            "?",
            "key:",
            "|",
            ">",
            "--",
            "---",
            "--/x",
            "-x",
            "--1",
        ] {
            assert!(!plain_is_safe(s), "{s:?} must be quoted");
            let text = document(&Node::Map(vec![("k".into(), Node::Str(s.into()))]));
            assert!(text.starts_with("k: \""), "{s:?} -> {text}");
            assert_eq!(parse(&text)["k"], serde_json::Value::String(s.into()));
        }
        for s in [
            "engine",
            "ghcr.io/acme/stampede-engine:1.2",
            "/results",
            "batch/v1",
            "kubernetes.io/hostname",
            "RuntimeDefault",
            "app.kubernetes.io/instance",
            "--shards",
            "--start-at",
        ] {
            assert!(plain_is_safe(s), "{s:?} can be bare");
        }
    }

    #[test]
    fn documents_keep_field_order_and_nest() {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Doc {
            api_version: &'static str,
            kind: &'static str,
            spec: serde_json::Value,
        }
        let spec = serde_json::json!({"completions": 3, "template": {"spec": {"containers": [
            {"name": "engine", "args": ["run", "/p/x.ron", "--shards", "3"], "env": []},
            {"name": "other", "resources": {}}
        ]}}, "nested": [[1, 2], [], {}], "ratio": 0.5, "flag": false, "none": null});
        let doc = Doc {
            api_version: "batch/v1",
            kind: "Job",
            spec: spec.clone(),
        };
        let text = document(&to_node(&doc));
        assert!(
            text.starts_with("apiVersion: batch/v1\nkind: Job\nspec:\n"),
            "{text}"
        );
        assert!(
            text.contains("    - - 1\n      - 2\n    - []\n    - {}\n"),
            "{text}"
        );
        assert!(
            text.contains("            - --shards\n            - \"3\"\n"),
            "{text}"
        );
        assert_eq!(
            parse(&text),
            serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "spec": spec})
        );
    }

    #[test]
    fn files_become_literal_blocks_and_read_back_exactly() {
        let cases = [
            "email,password\na@b.c,pw1\n",
            "no trailing newline\nsecond",
            "two trailing\n\n",
            "  indented first line\nsecond\n",
            "blank\n\nline inside\n",
            "\n\nleading newlines\n",
            "# comment-like\n---\n...\n- dash\nkey: value\n",
            "unicode: é ü 日本\n",
            "\n  first text line indented\n",
        ];
        for s in cases {
            let value = serde_json::json!({"data": {"f": s}});
            let text = document(&to_node(&value));
            assert!(text.contains("f: |"), "{s:?} as a block: {text}");
            round_trip(&value);
        }
        // These fall back to quoting.
        for s in [
            "\n",
            "\n\n",
            "tab\there\n",
            "cr\r\nlf\n",
            "spaces\n   \nline\n",
            "nel\u{85}x\n",
        ] {
            let value = serde_json::json!({"f": s});
            let text = document(&to_node(&value));
            assert!(text.starts_with("f: \""), "{s:?}: {text}");
            round_trip(&value);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn any_string_reads_back(s in "\\PC*|[ \\n\\t\\r#:'\"\\-|>a-z0-9]*", key in "[a-zA-Z0-9._/ :-]{1,12}") {
            round_trip(&serde_json::json!({ key.clone(): s.clone(), "list": [s.clone()], "nested": {"k": s} }));
        }
    }
}
