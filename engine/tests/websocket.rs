//! WebSocket steps against the embedded target's `/ws` endpoints: echo, ping, close, a server that
//! closes mid-exchange, and one that never answers. Counts of messages the server echoed are compared
//! with the samples.

mod util;

use formats::Outcome;
use util::*;

const OK: u8 = Outcome::Ok as u8;

fn run_ws(server: &engine::serve::Server, path: &str, steps: &str, args: &[&str]) -> ReadBack {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        r#"(name: "ws", host: "ws://{}{path}", http: (request_timeout: "2s"),
            load: Closed(users: 2, duration: "1s"),
            users: [(tasks: [(steps: [{steps}])])])"#,
        server.addr()
    );
    let profile = profile(tmp.path(), &text);
    let mut all = vec![profile.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(&tmp.path().join("runs"), &all);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    read_run(&run_dir(&out))
}

#[test]
fn echo_binary_and_ping_each_exchange_is_a_sample() {
    let _serial = one_at_a_time();
    for io in DRIVERS {
        let server = server();
        let r = run_ws(
            &server,
            "/ws",
            r#"WebSocket(name: "echo", send: "hi {{user_id()}}", receive: Reply, expect: "^hi \\d+$"),
               WebSocket(name: "bin", send: "\u{0}\u{1}\u{2}", binary: true, receive: Messages(1), expect: "^\\x00\\x01\\x02$"),
               WebSocket(name: "ping", ping: true, send: "p")"#,
            &["--io", io, "--cores", "1"],
        );
        assert!(r.failures().is_empty(), "{io}: {:?}", r.failures().first());
        let echo = r.named("echo").len() as u64;
        let bin = r.named("bin").len() as u64;
        assert!(echo > 20, "{io}: {echo}");
        // Every iteration pings after its echo, except the one each of the two users was in when
        // the run ended.
        let ping = r.named("ping").len() as u64;
        assert!(
            ping + 2 >= echo && ping <= echo,
            "{io}: {ping} pings, {echo} echoes"
        );
        // The server counts the data messages it echoed; pings are not requests.
        assert_eq!(echo + bin, server.served(), "{io}");
        // Two users, two upgrades: the upgrade is each one's connect time.
        assert_eq!(
            r.samples.connect_us.iter().filter(|&&c| c > 0).count(),
            2,
            "{io}"
        );
    }
}

fn a_server_that_closes_mid_exchange_is_a_reset_and_the_user_reconnects() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_ws(
        &server,
        "/ws/close-after/3",
        r#"WebSocket(name: "echo", send: "x", receive: Reply)"#,
        &[],
    );
    let rows = r.rows();
    let ok = rows.iter().filter(|x| x.outcome == OK).count() as u64;
    let resets: Vec<_> = rows
        .iter()
        .filter(|x| x.outcome == Outcome::Reset as u8)
        .collect();
    assert_eq!(ok, server.served());
    assert!(ok > 30, "the run went on: {ok}");
    // Every fourth exchange on a connection meets the close.
    assert!(
        resets.len() as u64 * 3 >= ok - 6,
        "{} resets, {ok} ok",
        resets.len()
    );
    assert!(resets.iter().all(|x| x.status == 1011
        && x.message.as_deref()
            == Some("the server closed the WebSocket in the middle of the exchange")));
}

fn a_silent_server_times_out_within_the_step_limit() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_ws(
        &server,
        "/ws/silent",
        r#"WebSocket(name: "echo", send: "x", receive: Reply, within: "100ms")"#,
        &[],
    );
    let rows = r.rows();
    assert!(rows.len() >= 8 && rows.len() <= 30, "{}", rows.len());
    assert!(
        rows.iter()
            .all(|x| x.outcome == Outcome::Timeout as u8 || x.outcome == Outcome::Cancelled as u8)
    );
    assert_eq!(server.served(), 0);
}

fn close_ends_the_connection_and_the_next_iteration_upgrades_again() {
    let _serial = one_at_a_time();
    let server = server();
    let r = run_ws(
        &server,
        "/ws",
        r#"WebSocket(name: "echo", send: "x", receive: Reply),
           WebSocket(name: "close", close: true)"#,
        &[],
    );
    assert!(r.failures().is_empty(), "{:?}", r.failures().first());
    let echoes = r.named("echo");
    assert_eq!(echoes.len() as u64, server.served());
    // Every echo opened its own connection (the close step ended the previous one).
    let log = &r.logs[0];
    let connected = (0..log.samples.len())
        .filter(|&i| {
            log.names.get(log.samples.name[i]) == Some("echo") && log.samples.connect_us[i] > 0
        })
        .count();
    let echoes_in_log = (0..log.samples.len())
        .filter(|&i| log.names.get(log.samples.name[i]) == Some("echo"))
        .count();
    assert_eq!(connected, echoes_in_log);
}

for_each_backend!(
    a_server_that_closes_mid_exchange_is_a_reset_and_the_user_reconnects,
    a_silent_server_times_out_within_the_step_limit,
    close_ends_the_connection_and_the_next_iteration_upgrades_again,
);
