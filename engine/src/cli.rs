//! Command-line flags. They mirror the profile's fields they override; [`crate::plan::Plan::resolve`]
//! applies them, so nothing else reads these types.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  engine run profiles/demo.ron                        # demo against the embedded target
  engine try profiles/rest-api.ron                    # one user of each kind; every request printed
  engine run profiles/rest-api.ron --env staging -u 200 -t 2m   # Locust's -u and -t work too
  engine run --url http://127.0.0.1:8080/ --users 50 --duration 10s
  engine run --url http://127.0.0.1:8080/ --rate 2000 -d 30s   # open model: 2000 iterations/s
  engine run profiles/rest-api.ron --shard 0/4 --start-at 2026-12-05T14:00:00Z --run-id api-1
  engine serve --addr 127.0.0.1:0                     # the embedded target on its own
  engine serve --stall-every 2s --stall-for 200ms --latency-mix 90:1ms,10:20ms
  engine serve --tls-cert cert.pem --tls-key key.pem  # the embedded target over HTTPS
  engine kube profiles/rest-api.ron --shards 8 --image IMG | kubectl apply -f -

The pipeline:
  engine run profiles/demo.ron   ->   runs/<id>/   ->   analyzer report runs/<id>";

const TRY_EXAMPLES: &str = "\
Examples:
  engine try profiles/rest-api.ron                    # one iteration of each user kind
  engine try profiles/rest-api.ron -i 3 --env staging # three iterations each, staging's host
  engine try --url http://127.0.0.1:8080/health       # one GET
  engine try profiles/rest-api.ron --json | jq .      # one JSON object per request

Exit status: 0 every request succeeded and every check passed; 4 a request or check failed (or
none ran); 2 bad profile or flags, or a target that does not accept connections; 1 the engine
failed; 130 interrupted.";

/// Stampede's load generator: thread-per-core load over HTTP/1.1, HTTPS, WebSocket, TCP, UDP and
/// custom protocols, recording every request.
#[derive(Debug, Parser)]
#[command(name = "engine", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments (exiting with clap's message on bad flags), noting which
    /// flags were given rather than defaulted where that matters (`run --debug --out`).
    pub fn parse_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let (Command::Run(args), Some(("run", m))) = (&mut cli.command, matches.subcommand()) {
            args.out_given = m.value_source("out") == Some(clap::parser::ValueSource::CommandLine);
        }
        cli
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a load test from a profile (or an ad-hoc `--url`) and write a run directory.
    // Boxed: a run has many more flags than `serve`.
    #[command(
        after_help = EXAMPLES,
        override_usage = "engine run [OPTIONS] <PROFILE>\n       engine run [OPTIONS] --url <URL>"
    )]
    Run(Box<RunArgs>),
    /// Try a profile: one user of each kind runs an iteration (or `-i N`), and every request and
    /// response is printed with the variables extracted, each check's outcome and each phase's time.
    #[command(
        after_help = TRY_EXAMPLES,
        override_usage = "engine try [OPTIONS] <PROFILE>\n       engine try [OPTIONS] --url <URL>"
    )]
    Try(Box<TryArgs>),
    /// Run the embedded HTTP target (for demos and tests) until interrupted.
    #[command(
        after_help = "Routes: / , /items/{id}, POST /login, /private (Bearer token from /login, OAuth2 \
                            or JWT), POST /logout, POST /oauth/token, /session, /cookies, /api/items, \
                            /search, .../anything/..., /delay/{ms}, /status/{code}, /bytes/<n>, /echo \
                            (docs/scenarios.md#the-embedded-target)"
    )]
    Serve(ServeArgs),
    /// Render Kubernetes manifests that run a profile as N shards, one pod each (docs/distributed.md).
    Kube(Box<crate::kube::KubeArgs>),
}

/// `engine run`.
#[derive(Debug, Clone, Args, Default)]
pub struct RunArgs {
    /// The profile (RON). Omit it and give `--url` for an ad-hoc test.
    #[arg(required_unless_present = "url", conflicts_with = "url")]
    pub profile: Option<PathBuf>,
    /// Ad-hoc mode: GET this URL in a loop with no think time (like wrk or oha).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The profile environment to use (its host, headers and variables); else $STAMPEDE_ENV, else
    /// the profile's default_environment.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Override the target base URL (`http://host:port`, or `embedded`); beats $STAMPEDE_HOST.
    #[arg(long, value_name = "URL")]
    pub host: Option<String>,
    /// Override the number of virtual users (total across cores); in an open model, the most users
    /// busy at once (k6's maxVUs).
    #[arg(long, short = 'u', value_name = "N")]
    pub users: Option<u32>,
    /// Switch to an open model: start R iterations per second in total, whatever the server does.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Stop after N iterations in total (closed models) or N arrivals (open models).
    #[arg(long, short = 'i', value_name = "N")]
    pub iterations: Option<u64>,
    /// Override the spawn rate, users per second (total across cores).
    #[arg(long, short = 'r', value_name = "R")]
    pub spawn_rate: Option<f64>,
    /// Override the duration, e.g. `30s`, `2m`, `1h30m`, `500ms` (Locust's `-t`/`--run-time`).
    #[arg(
        long,
        short = 'd',
        visible_short_alias = 't',
        visible_alias = "run-time",
        value_name = "D",
        value_parser = parse_duration_arg
    )]
    pub duration: Option<Duration>,
    /// Engine threads, one pinned per CPU (default: every CPU this process may use).
    #[arg(long, short = 'c', value_name = "N")]
    pub cores: Option<u32>,
    /// Where run directories go.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub out: PathBuf,
    /// The I/O backend of the event loop: `auto` picks io_uring where the kernel allows it, else epoll
    /// (see docs/io-drivers.md).
    #[arg(long, value_enum, default_value_t = IoChoice::Auto, env = "STAMPEDE_IO")]
    pub io: IoChoice,
    /// Let an io_uring wait with 8 or more requests in flight linger up to D (at most 1ms) for more
    /// completions (Linux 6.12+): fewer wake-ups, so more load per core at high rates, but a
    /// response's end may be read up to D late. Off unless asked (docs/io-drivers.md).
    #[arg(long, value_name = "D", value_parser = parse_linger)]
    pub linger: Option<Duration>,
    /// Set a profile variable (repeatable); beats `$STAMPEDE_VAR_<KEY>`, the environment and the profile.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// No live console lines, only the summary and the run directory.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Run shard I (from 0) of a test spread over N engines: this engine runs its deterministic share
    /// of the users, arrivals, data rows and iterations, so that N shards add up to the profile. With
    /// N > 1, give every shard the same --start-at and --run-id (docs/distributed.md).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
    /// The shard count, this engine's index coming from $JOB_COMPLETION_INDEX (a Kubernetes Indexed
    /// Job); like $STAMPEDE_SHARDS.
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Wait, then start the schedule at this wall-clock instant (the run's time zero): RFC 3339, e.g.
    /// 2026-12-05T14:00:00Z, or an offset from now such as +30s (one engine only). An engine that is not
    /// ready by then does not start (exit 3).
    #[arg(long, value_name = "INSTANT")]
    pub start_at: Option<String>,
    /// Name the run: its directory is OUT/ID/ (shard I's, OUT/ID/shard-I/) and its run id is derived
    /// from ID, so every shard given the same ID writes the same run. Default for a shard: the start
    /// instant and the profile name.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Run only the tasks and requests tagged with one of these (comma-separated; Locust's `--tags`).
    /// A tag on a user kind or a group applies to everything in it.
    #[arg(long, short = 'T', value_name = "TAG,...", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Leave out the tasks and requests tagged with one of these (comma-separated; Locust's
    /// `--exclude-tags`). Applied after `--tags`.
    #[arg(long, short = 'E', value_name = "TAG,...", value_delimiter = ',')]
    pub exclude_tags: Vec<String>,
    /// The live dashboard and Prometheus metrics.
    #[command(flatten)]
    pub live: LiveArgs,
    /// Exit 0 even when every request failed (by default such a run exits 4).
    #[arg(long)]
    pub failures_are_data: bool,
    /// Start without the pre-flight check. By default the engine first opens (and closes) one TCP
    /// connection to every target the run connects to (UDP and the embedded target aside), and a
    /// target that refuses or does not answer within the connect timeout stops the run (exit 2)
    /// before anything is written. Skip it to start the load before the target is up (a rolling
    /// restart, a target started with the test): connection failures are then recorded as samples
    /// (docs/running.md#before-time-zero-the-pre-flight-check).
    #[arg(long)]
    pub no_preflight: bool,
    /// Debug the profile instead of running it: the same as `engine try` (one user of each kind,
    /// `-i` iterations each, default 1, every request printed); a run directory only with --out.
    #[arg(long)]
    pub debug: bool,
    /// What `--debug` shows.
    #[command(flatten)]
    pub show: DebugArgs,
    /// Whether `--out` was given on the command line (not defaulted).
    #[arg(skip)]
    pub out_given: bool,
}

/// What a trace shows (`engine try`, `engine run --debug`).
#[derive(Debug, Clone, Args, Default)]
pub struct DebugArgs {
    /// Show at most this many bytes of each request and response body, e.g. `512`, `16KiB`
    /// (default 2KiB; 0 shows none). A load test (`engine run`) prints no requests, so it accepts
    /// this only with `--debug`, which makes it run the profile as `engine try` does.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub body_limit: Option<u64>,
    /// Print one JSON object per request or step (JSON lines) instead of text. A load test
    /// (`engine run`) prints no requests, so it accepts this only with `--debug`, which makes it run
    /// the profile as `engine try` does.
    #[arg(long)]
    pub json: bool,
}

/// `engine try`.
#[derive(Debug, Clone, Args, Default)]
pub struct TryArgs {
    /// The profile (RON). Omit it and give `--url` to try one GET.
    #[arg(required_unless_present = "url", conflicts_with = "url")]
    pub profile: Option<PathBuf>,
    /// Try one GET of this URL.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The profile environment to use (its host, headers and variables); else $STAMPEDE_ENV, else
    /// the profile's default_environment.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Override the target base URL (`http://host:port`, or `embedded`); beats $STAMPEDE_HOST.
    #[arg(long, value_name = "URL")]
    pub host: Option<String>,
    /// Set a profile variable (repeatable); beats `$STAMPEDE_VAR_<KEY>`, the environment and the profile.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Iterations each user runs (its on_start requests come first, its on_stop requests last).
    #[arg(long, short = 'i', value_name = "N", default_value_t = 1)]
    pub iterations: u64,
    /// Stop after this long if the iterations have not finished, e.g. `30s` (default 60s).
    #[arg(
        long,
        short = 'd',
        visible_short_alias = 't',
        visible_alias = "run-time",
        value_name = "D",
        value_parser = parse_duration_arg
    )]
    pub duration: Option<Duration>,
    /// Also write the run directory (manifest and sample log) under DIR; by default none is kept.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The I/O backend of the event loop (see `engine run --help`).
    #[arg(long, value_enum, default_value_t = IoChoice::Auto, env = "STAMPEDE_IO")]
    pub io: IoChoice,
    /// What is shown.
    #[command(flatten)]
    pub show: DebugArgs,
    /// Start without first connecting once to every TCP target (see `engine run --help`).
    #[arg(long)]
    pub no_preflight: bool,
}

/// `engine run --web` and `--metrics`: watching a run while it goes (docs/live.md).
#[derive(Debug, Clone, Args, Default)]
pub struct LiveArgs {
    /// Serve a live dashboard at ADDR while the run goes (e.g. `127.0.0.1:8089`; a bare port means
    /// 127.0.0.1; port 0 picks a free one). It also serves /metrics. An address other than loopback
    /// lets anyone who reaches it watch and stop the run.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub web: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics at http://ADDR/metrics while the run goes (e.g. `127.0.0.1:9464`).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub metrics: Option<std::net::SocketAddr>,
    /// The most users the dashboard may steer a closed model to (default: the profile's users). Each
    /// core sets up room for its share of them (connection slots, users' memory) at the start.
    #[arg(long, value_name = "N", requires = "web")]
    pub max_users: Option<u32>,
}

/// `engine serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to bind; port 0 picks a free port. The bound address is printed.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: String,
    /// Server threads.
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// The I/O driver.
    #[arg(long, value_enum, default_value_t = IoChoice::Auto)]
    pub io: IoChoice,
    /// Stall mode: every this long (on the monotonic clock), hold all responses for --stall-for.
    #[arg(long, value_name = "D", value_parser = parse_duration_arg, requires = "stall_for")]
    pub stall_every: Option<Duration>,
    /// How long each stall holds responses, e.g. `200ms`.
    #[arg(long, value_name = "D", value_parser = parse_duration_arg, requires = "stall_every")]
    pub stall_for: Option<Duration>,
    /// Delay responses in fixed proportions: `WEIGHT:DELAY,...`, e.g. `90:1ms,9:10ms,1:100ms`.
    #[arg(long, value_name = "MIX", value_parser = parse_latency_mix)]
    pub latency_mix: Option<LatencyMix>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `--latency-mix`: (weight, delay) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyMix(pub Vec<(u32, Duration)>);

/// Which I/O driver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum IoChoice {
    /// io_uring where the kernel allows it, else epoll.
    #[default]
    Auto,
    /// io_uring (Linux 6.1+); fails if the kernel or sandbox does not allow it.
    Uring,
    /// epoll; works everywhere (Docker's default seccomp profile, gVisor, old kernels).
    Epoll,
    /// The old name of `uring`, from when the io_uring loop ran only some plans.
    #[value(hide = true)]
    Direct,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    crate::profile::parse_duration(s)
}

/// A `--linger` duration: at most 1 ms, since every response may be read that much late.
fn parse_linger(s: &str) -> Result<Duration, String> {
    let d = parse_duration_arg(s)?;
    if d > Duration::from_millis(1) {
        return Err(format!(
            "{s} is longer than 1ms; a response may be read as late as the linger, so keep it to \
             tens of microseconds (e.g. 20us)"
        ));
    }
    Ok(d)
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    crate::profile::spec::parse_size(s)
}

fn parse_latency_mix(s: &str) -> Result<LatencyMix, String> {
    let parts = s
        .split(',')
        .map(|part| {
            let (w, d) = part
                .split_once(':')
                .ok_or_else(|| format!("expected WEIGHT:DELAY, got {part:?}"))?;
            let w: u32 = w
                .trim()
                .parse()
                .map_err(|_| format!("{w:?} is not a whole-number weight"))?;
            Ok((w, crate::profile::parse_duration(d)?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if parts.iter().all(|(w, _)| *w == 0) {
        return Err("every weight is 0".into());
    }
    Ok(LatencyMix(parts))
}

/// `HOST:PORT`, `[IPv6]:PORT`, or a bare port on 127.0.0.1.
fn parse_listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(port) = s.parse::<u16>() {
        return Ok(([127, 0, 0, 1], port).into());
    }
    let hint = "expected HOST:PORT or a port, e.g. 127.0.0.1:8089";
    if !s.contains(':') {
        return Err(format!("{s:?} has no port: {hint}"));
    }
    s.to_socket_addrs()
        .map_err(|e| format!("cannot use {s:?}: {e}; {hint}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address; {hint}"))
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}
