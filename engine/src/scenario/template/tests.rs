//! Unit tests of templates, and the scope and renderer other modules' tests use.

use std::cell::Cell;
use std::collections::BTreeMap;

use super::render::write_rfc3339;
use super::*;
use crate::clock::Clock;
use crate::rng::Rng;

/// A scope with constants `host`, `item`, user variables `token` (slot 0) and `id` (slot 1).
pub(crate) struct TestScope;

impl Scope for TestScope {
    fn resolve(&mut self, name: &str) -> Result<Resolved, String> {
        match name {
            "host" => Ok(Resolved::Const("example".into())),
            "item" => Ok(Resolved::Const("42".into())),
            "token" => Ok(Resolved::Var(0)),
            "id" => Ok(Resolved::Var(1)),
            other => Err(format!("unknown variable `{other}`")),
        }
    }
    fn substitute(&mut self, text: &str) -> Result<String, String> {
        let vars = BTreeMap::from([("v".to_owned(), "V".to_owned())]);
        super::super::vars::substitute(text, &|k| vars.get(k).cloned())
    }
}

pub(crate) fn render_with(t: &Template, vars: &[Vec<u8>], seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let seq = Cell::new(5);
    let clock = Clock::start();
    let mut scratch = Vec::new();
    let mut env = Env {
        vars,
        feeders: &[],
        rows: &[],
        rng: &mut rng,
        user: 7,
        seat: crate::schedule::Seat {
            shard: 0,
            shards: 1,
            core: 1,
            cores: 2,
        },
        iteration: 3,
        seq: &seq,
        clock: &clock,
        scratch: &mut scratch,
    };
    let mut out = Vec::new();
    t.render(&mut out, &mut env);
    String::from_utf8(out).unwrap()
}

fn compile(text: &str, escape: Escape) -> Result<Template, TemplateError> {
    Template::compile(text, escape, &mut TestScope)
}

#[test]
fn constants_fold_into_one_literal() {
    let t = compile("/items/{{item}}/${v}?h={{ host }}", Escape::Path).unwrap();
    assert_eq!(t.static_bytes(), Some(&b"/items/42/V?h=example"[..]));
    let t = compile("{{base64('user', \":\", 'pw')}}", Escape::None).unwrap();
    assert_eq!(t.static_bytes(), Some(&b"dXNlcjpwdw=="[..]));
}

#[test]
fn functions_render() {
    let vars = vec![b"tok en".to_vec(), b"9".to_vec()];
    let table: &[(&str, Escape, &str)] = &[
        ("/x/{{id}}", Escape::Path, "/x/9"),
        // A run-time value with a space stays a valid request target.
        ("/x/{{token}}", Escape::Path, "/x/tok%20en"),
        ("{{token}}", Escape::Component, "tok%20en"),
        (
            "a{{user_id()}}b{{core_id()}}c{{iteration()}}",
            Escape::None,
            "a7b1c3",
        ),
        // seq() = counter × cores + core: 5 × 2 + 1.
        ("{{seq()}},{{seq()}}", Escape::None, "11,13"),
        ("{{shard_id()}}", Escape::None, "0"),
        ("{{base64(token, ':', id)}}", Escape::None, "dG9rIGVuOjk="),
        ("{{base64url(token)}}", Escape::None, "dG9rIGVu"),
        (
            "{{urlencode('a&b=', token)}}",
            Escape::None,
            "a%26b%3Dtok%20en",
        ),
        ("\"{{token}}\"", Escape::Json, "\"tok en\""),
    ];
    for (text, escape, want) in table {
        let t = compile(text, *escape).unwrap();
        assert_eq!(render_with(&t, &vars, 1), *want, "{text}");
    }
    let quoted = compile("{{id}}", Escape::Json).unwrap();
    assert_eq!(
        render_with(&quoted, &[b"a\"b\\\n".to_vec(), b"x\"\n".to_vec()], 1),
        "x\\\"\\n"
    );
    let header = compile("{{id}}", Escape::Header).unwrap();
    assert_eq!(
        render_with(&header, &[vec![], b"a\r\nX-Evil: 1".to_vec()], 1),
        "a  X-Evil: 1"
    );
}

#[test]
fn random_functions_stay_in_range() {
    let vars: Vec<Vec<u8>> = vec![];
    let int = compile("{{random_int(-3, 3)}}", Escape::None).unwrap();
    let float = compile("{{random_float(1, 2, 3)}}", Escape::None).unwrap();
    let string = compile("{{random_string(8, 'ab')}}", Escape::None).unwrap();
    let choice = compile("{{random_choice('x', 'y', 7)}}", Escape::None).unwrap();
    let uuid = compile("{{uuid()}}", Escape::None).unwrap();
    let mut ints = std::collections::BTreeSet::new();
    for seed in 0..500 {
        let i: i64 = render_with(&int, &vars, seed).parse().unwrap();
        assert!((-3..=3).contains(&i));
        ints.insert(i);
        let f = render_with(&float, &vars, seed);
        assert_eq!(f.len(), 5, "{f}");
        assert!((1.0..=2.0).contains(&f.parse::<f64>().unwrap()));
        let s = render_with(&string, &vars, seed);
        assert!(s.len() == 8 && s.bytes().all(|b| b == b'a' || b == b'b'));
        assert!(["x", "y", "7"].contains(&render_with(&choice, &vars, seed).as_str()));
        let u = render_with(&uuid, &vars, seed);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4", "version 4: {u}");
        assert!("89ab".contains(&u[19..20]), "RFC 4122 variant: {u}");
    }
    assert_eq!(ints.len(), 7, "every value from -3 to 3 comes up");
    assert_ne!(render_with(&uuid, &vars, 1), render_with(&uuid, &vars, 2));
}

#[test]
fn timestamps() {
    let mut out = Vec::new();
    write_rfc3339(&mut out, 1_795_638_540_123);
    assert_eq!(String::from_utf8(out).unwrap(), "2026-11-25T20:29:00.123Z");
    let mut out = Vec::new();
    write_rfc3339(&mut out, 951_782_400_000);
    assert_eq!(String::from_utf8(out).unwrap(), "2000-02-29T00:00:00.000Z");
    let t = compile("{{timestamp_ms()}}", Escape::None).unwrap();
    let ms: u64 = render_with(&t, &[], 1).parse().unwrap();
    assert!(ms > 1_700_000_000_000);
}

/// Arbitrary text made of the grammar's pieces compiles or errs, and what compiles renders,
/// without panicking.
#[test]
fn arbitrary_templates_never_panic() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "(",
        ")",
        ",",
        "'",
        "\"",
        "\\",
        "${",
        "}",
        "$$",
        "token",
        "id",
        "item",
        ".",
        "-1",
        "3",
        "1e999",
        "random_int",
        "random_string",
        "base64",
        "urlencode",
        "raw",
        "uuid",
        " ",
        "é",
        "random_choice",
        "random_float",
        "row.x",
        "0.5",
        "\u{0}",
    ];
    let mut rng = Rng::new(11);
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..rng.below(12) {
            text.push_str(PIECES[rng.below(PIECES.len() as u32) as usize]);
        }
        for escape in [Escape::None, Escape::Path, Escape::Json] {
            if let Ok(t) = Template::compile(&text, escape, &mut TestScope) {
                render_with(&t, &[b"v".to_vec(), b"\"x".to_vec()], 3);
            }
        }
    }
}

#[test]
fn errors_explain_the_fix() {
    let table: &[(&str, &str)] = &[
        ("/{{iten", "not closed"),
        ("/{{ }}", "empty"),
        ("{{uuid}}", "write `uuid()`"),
        ("{{randon_int(1, 2)}}", "did you mean `random_int`"),
        ("{{random_int(5, 1)}}", "minimum is above the maximum"),
        ("{{random_int(1)}}", "takes 2 argument"),
        ("{{random_int(a, 2)}}", "unknown variable `a`"),
        ("{{nope}}", "unknown variable `nope`"),
        ("{{raw(1)}}", "only works as a whole JSON string"),
        ("{{id id}}", "unexpected"),
        ("{{'open}}", "not closed"),
    ];
    for (text, fragment) in table {
        let e = compile(text, Escape::None).unwrap_err();
        assert!(e.message.contains(fragment), "{text}: {}", e.message);
    }
    // A string literal may contain `}}`.
    let t = compile("{{'}}'}}", Escape::None).unwrap();
    assert_eq!(t.static_bytes(), Some(&b"}}"[..]));
}
