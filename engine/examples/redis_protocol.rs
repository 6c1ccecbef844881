//! A custom protocol: Redis commands in RESP, registered as `redis` in an engine binary of our own.
//!
//! ```sh
//! cargo run -p engine --example redis_protocol -- run profiles/redis.ron
//! ```
//!
//! A step names a command as a list of words; `{name}` in a word is replaced by the step's argument
//! `name` (a template the engine renders per step):
//!
//! ```ron
//! Custom(protocol: "redis", name: "SET", step: ["SET", "user:{id}", "v"],
//!        args: {"id": "{{user_id()}}"}, extract: ["reply"])
//! ```
//!
//! An error reply (`-ERR ...`) is an `Outcome::Status` sample; the value of a bulk reply is offered
//! to the user's variable `reply` when the step lists it in `extract`. docs/extending.md walks through
//! this file.

use engine::protocol::{Args, Endpoint, Outcome, Protocol, StepResult, TcpStream, Value};

/// The protocol: no settings of its own.
#[derive(Debug)]
pub struct Redis;

/// A compiled step: the command's words, each split at its `{placeholders}`.
#[derive(Debug)]
pub struct Command {
    words: Vec<Vec<Part>>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Arg(String),
}

/// A user's connection, with buffers reused from step to step.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    input: Vec<u8>,
}

impl Protocol for Redis {
    type Step = Command;
    type Conn = Conn;

    fn compile(&self, step: &Value) -> Result<Command, String> {
        let Value::Seq(words) = step else {
            return Err(
                "give the command as a list of words, e.g. step: [\"GET\", \"key\"]".into(),
            );
        };
        if words.is_empty() {
            return Err("the command is empty: give at least its name, e.g. [\"PING\"]".into());
        }
        let mut out = Vec::new();
        for w in words {
            let Value::String(w) = w else {
                return Err(format!("{w:?} is not a string: write every word in quotes"));
            };
            out.push(parse_word(w)?);
        }
        Ok(Command { words: out })
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Conn, StepResult> {
        let stream = TcpStream::connect(endpoint.addr)
            .await
            .map_err(|e| StepResult::from_io("connect", &e))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            out: Vec::with_capacity(256),
            input: Vec::with_capacity(4096),
        })
    }

    async fn execute(&self, conn: &mut Conn, step: &Command, args: &Args<'_>) -> StepResult {
        // RESP: an array of bulk strings.
        let mut words: Vec<Vec<u8>> = Vec::with_capacity(step.words.len());
        for parts in &step.words {
            let mut word = Vec::new();
            for part in parts {
                match part {
                    Part::Text(t) => word.extend_from_slice(t.as_bytes()),
                    Part::Arg(name) => word.extend_from_slice(args.get(name).unwrap_or_default()),
                }
            }
            words.push(word);
        }
        let mut out = std::mem::take(&mut conn.out);
        out.clear();
        out.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
        for w in &words {
            out.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
            out.extend_from_slice(w);
            out.extend_from_slice(b"\r\n");
        }
        let sent = out.len() as u32;
        let res = conn.stream.write_all(&out).await;
        conn.out = out;
        if let Err(e) = res {
            return StepResult::from_io("send", &e);
        }
        conn.input.clear();
        let mut received = 0u32;
        loop {
            match parse_reply(&conn.input) {
                Reply::Incomplete => {}
                Reply::Malformed => {
                    return StepResult::fail(Outcome::Malformed, "not a RESP reply")
                        .sent(sent)
                        .received(received);
                }
                Reply::Error => {
                    return StepResult::fail(Outcome::Status, "Redis answered with an error")
                        .sent(sent)
                        .received(received);
                }
                Reply::Value(value) => {
                    let mut result = StepResult::ok().sent(sent).received(received);
                    if let Some(v) = value {
                        result.extracted.push(("reply".into(), v.to_vec()));
                    }
                    return result;
                }
            }
            let mut chunk = [0u8; 4096];
            let res = conn.stream.read(&mut chunk).await;
            if let Ok(n) = res {
                conn.input.extend_from_slice(&chunk[..n]);
            }
            match res {
                Ok(0) => {
                    return StepResult::fail(Outcome::Reset, "Redis closed the connection")
                        .sent(sent)
                        .received(received);
                }
                Ok(n) => received += n as u32,
                Err(e) => return StepResult::from_io("receive", &e).sent(sent),
            }
        }
    }
}

fn parse_word(w: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = w;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_owned()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("unclosed `{{` in {w:?}"));
        };
        parts.push(Part::Arg(rest[open + 1..open + close].to_owned()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// A RESP reply as far as a load test needs it.
enum Reply<'a> {
    Incomplete,
    Malformed,
    Error,
    /// A simple string, integer, bulk string (its bytes) or null.
    Value(Option<&'a [u8]>),
}

fn parse_reply(buf: &[u8]) -> Reply<'_> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Reply::Incomplete;
    };
    let line = &buf[1..end];
    match buf.first() {
        Some(b'+' | b':') => Reply::Value(Some(line)),
        Some(b'-') => Reply::Error,
        Some(b'$') => {
            let Some(n) = std::str::from_utf8(line)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
            else {
                return Reply::Malformed;
            };
            if n < 0 {
                return Reply::Value(None);
            }
            let start = end + 2;
            let stop = start + n as usize;
            if buf.len() < stop + 2 {
                Reply::Incomplete
            } else {
                Reply::Value(Some(&buf[start..stop]))
            }
        }
        _ => Reply::Malformed,
    }
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    engine::Engine::new().protocol("redis", Redis).main()
}
