//! A custom protocol for PostgreSQL: parameterised queries over the extended query protocol, encoded
//! and decoded by `postgres-protocol` (the message layer of rust-postgres), on the engine's
//! [`TcpStream`], so it runs on the engine's loop under io_uring and epoll alike.
//!
//! ```sh
//! cargo run -p engine --example postgres_protocol -- run profiles/postgres.ron
//! ```
//!
//! A step is a query and the names of the step arguments that fill its `$1, $2, ...`:
//!
//! ```ron
//! Custom(protocol: "postgres", name: "insert",
//!        step: (sql: "INSERT INTO hits (user_id) VALUES ($1::int)", params: ["user"]),
//!        args: {"user": "{{user_id()}}"})
//! ```
//!
//! The connection logs in with `user` and `database` from the target URL's path
//! (`tcp://127.0.0.1:5432/postgres/stampede`, default `postgres`/`postgres`) and supports `trust`
//! authentication only: the example is for a test cluster on loopback. An error response is an
//! `Outcome::Status` sample whose message carries the SQLSTATE; the first column of the first row is
//! offered as the variable `value`.

use bytes::BytesMut;
use engine::protocol::{Args, Endpoint, Outcome, Protocol, StepResult, TcpStream, Value};
use fallible_iterator::FallibleIterator;
use postgres_protocol::IsNull;
use postgres_protocol::message::{backend, frontend};

/// The protocol.
#[derive(Debug)]
pub struct Postgres;

/// A compiled step.
#[derive(Debug)]
pub struct Query {
    sql: String,
    params: Vec<String>,
}

/// A logged-in connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    out: BytesMut,
    /// Bytes received and not yet parsed.
    input: BytesMut,
    /// Lent to each read.
    scratch: Vec<u8>,
    /// Bytes received on this connection.
    received: u64,
}

impl Protocol for Postgres {
    type Step = Query;
    type Conn = Conn;

    fn compile(&self, step: &Value) -> Result<Query, String> {
        let shape = "give the step as (sql: \"SELECT $1::int\", params: [\"arg\"])";
        let Value::Map(map) = step else {
            return Err(shape.into());
        };
        let mut sql = None;
        let mut params = Vec::new();
        for (k, v) in map.iter() {
            match (k, v) {
                (Value::String(k), Value::String(s)) if k == "sql" => sql = Some(s.clone()),
                (Value::String(k), Value::Seq(names)) if k == "params" => {
                    for n in names {
                        let Value::String(n) = n else {
                            return Err(format!("params: {n:?} is not an argument name"));
                        };
                        params.push(n.clone());
                    }
                }
                _ => return Err(format!("unexpected field {k:?}: {shape}")),
            }
        }
        let sql = sql.ok_or_else(|| format!("no sql: {shape}"))?;
        if sql.trim().is_empty() {
            return Err("sql is empty".into());
        }
        Ok(Query { sql, params })
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Conn, StepResult> {
        let stream = TcpStream::connect(endpoint.addr)
            .await
            .map_err(|e| StepResult::from_io("connect", &e))?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            out: BytesMut::with_capacity(512),
            input: BytesMut::with_capacity(8192),
            scratch: vec![0; 8192],
            received: 0,
        };
        let mut path = endpoint.path.trim_start_matches('/').split('/');
        let user = path.next().filter(|s| !s.is_empty()).unwrap_or("postgres");
        let database = path.next().filter(|s| !s.is_empty()).unwrap_or(user);
        frontend::startup_message([("user", user), ("database", database)], &mut conn.out)
            .map_err(|e| StepResult::from_io("send", &e))?;
        conn.flush().await?;
        loop {
            match conn.next_message().await? {
                backend::Message::AuthenticationOk
                | backend::Message::ParameterStatus(_)
                | backend::Message::BackendKeyData(_)
                | backend::Message::NoticeResponse(_) => {}
                backend::Message::ReadyForQuery(_) => return Ok(conn),
                backend::Message::ErrorResponse(e) => return Err(error_result(&e)),
                _ => {
                    return Err(StepResult::fail(
                        Outcome::Other,
                        "the server asks for an authentication method this example does not do (use trust on loopback)",
                    ));
                }
            }
        }
    }

    async fn execute(&self, conn: &mut Conn, q: &Query, args: &Args<'_>) -> StepResult {
        let values: Vec<&[u8]> = q
            .params
            .iter()
            .map(|p| args.get(p).unwrap_or_default())
            .collect();
        conn.out.clear();
        let encoded = frontend::parse("", &q.sql, [], &mut conn.out)
            .and_then(|()| {
                frontend::bind(
                    "",
                    "",
                    [0i16],
                    values,
                    |v, buf| {
                        buf.extend_from_slice(v);
                        Ok(IsNull::No)
                    },
                    [0i16],
                    &mut conn.out,
                )
                .map_err(|_| std::io::Error::other("bind"))
            })
            .and_then(|()| frontend::execute("", 0, &mut conn.out));
        if encoded.is_err() {
            return StepResult::fail(Outcome::Other, "cannot encode the query");
        }
        frontend::sync(&mut conn.out);
        let sent = conn.out.len() as u32;
        if let Err(r) = conn.flush().await {
            return r;
        }
        let mut result = StepResult::ok().sent(sent);
        let mut failed: Option<StepResult> = None;
        let mut first_value: Option<Vec<u8>> = None;
        loop {
            let before = conn.received();
            let message = match conn.next_message().await {
                Ok(m) => m,
                Err(r) => return r.sent(sent),
            };
            result.bytes_received += conn.received().saturating_sub(before) as u32;
            match message {
                backend::Message::DataRow(row) if first_value.is_none() => {
                    let mut ranges = row.ranges();
                    if let Ok(Some(Some(range))) = ranges.next() {
                        first_value = Some(row.buffer()[range].to_vec());
                    }
                }
                backend::Message::ErrorResponse(e) => failed = Some(error_result(&e)),
                backend::Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        if let Some(mut f) = failed {
            f.bytes_sent = sent;
            f.bytes_received = result.bytes_received;
            return f;
        }
        if let Some(v) = first_value {
            result.extracted.push(("value".into(), v));
        }
        result
    }
}

impl Conn {
    fn received(&self) -> u64 {
        self.received
    }

    async fn flush(&mut self) -> Result<(), StepResult> {
        let bytes = self.out.split();
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|e| StepResult::from_io("send", &e))
    }

    /// The next backend message, reading as needed.
    async fn next_message(&mut self) -> Result<backend::Message, StepResult> {
        loop {
            match backend::Message::parse(&mut self.input) {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(_) => {
                    return Err(StepResult::fail(
                        Outcome::Malformed,
                        "not a PostgreSQL message",
                    ));
                }
            }
            let res = self.stream.read(&mut self.scratch).await;
            if let Ok(n) = res {
                self.input.extend_from_slice(&self.scratch[..n]);
                self.received += n as u64;
            }
            match res {
                Ok(0) => {
                    return Err(StepResult::fail(
                        Outcome::Reset,
                        "PostgreSQL closed the connection",
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(StepResult::from_io("receive", &e)),
            }
        }
    }
}

/// An error response as a sample: `Status`, with the SQLSTATE (a short, stable code) in the message.
fn error_result(e: &backend::ErrorResponseBody) -> StepResult {
    let mut fields = e.fields();
    let mut code = String::from("?????");
    while let Ok(Some(f)) = fields.next() {
        if f.type_() == b'C' {
            code = String::from_utf8_lossy(f.value_bytes()).into_owned();
        }
    }
    StepResult::fail(Outcome::Status, format!("PostgreSQL error {code}"))
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    engine::Engine::new().protocol("postgres", Postgres).main()
}
