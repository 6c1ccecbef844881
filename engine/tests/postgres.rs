//! The PostgreSQL example protocol (examples/postgres_protocol.rs) against a real PostgreSQL: a
//! temporary cluster from Debian's `postgresql` package, on a free loopback port, trust
//! authentication, removed at the end. Rows inserted must equal the samples logged.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use formats::Outcome;
use util::*;

#[path = "../examples/postgres_protocol.rs"]
mod postgres_protocol;

/// A running temporary cluster; stopped (immediately) on drop.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn cmd(&self, program: &str) -> Command {
        command(&self.bin, program, self.as_postgres)
    }

    fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-d",
                "postgres",
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// `program` from `bin`, as the `postgres` user when we are root (initdb refuses to run as root).
fn command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

fn cluster() -> Option<Cluster> {
    let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
    });
    let Some(bin) = bin else {
        assert!(
            std::env::var("CI").is_err(),
            "PostgreSQL is not installed; .ci/run installs it (apt-get install postgresql)"
        );
        eprintln!("SKIPPED: PostgreSQL is not installed (apt-get install postgresql)");
        return None;
    };
    // /proc/self belongs to the process's effective user.
    let as_postgres = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").unwrap().uid() == 0
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if as_postgres {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&data)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let out = command(&bin, "initdb", as_postgres)
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        .output()
        .unwrap();
    assert!(out.status.success(), "initdb: {}", stderr(&out));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
        data.display()
    );
    let out = command(&bin, "pg_ctl", as_postgres)
        .arg("-D")
        .arg(&data)
        .args(["-o", &options, "-w", "-t", "60", "-l"])
        .arg(data.join("log"))
        .arg("start")
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_ctl start: {}", stderr(&out));
    Some(Cluster {
        bin,
        data,
        port,
        as_postgres,
        _dir: dir,
    })
}

#[test]
fn postgres_custom_protocol_rows_inserted_equal_samples() {
    let _serial = one_at_a_time();
    let Some(pg) = cluster() else { return };
    pg.psql("CREATE TABLE hits (user_id int NOT NULL, at timestamptz DEFAULT now())");
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "postgres", host: "tcp://127.0.0.1:{}/postgres/postgres",
                load: Closed(users: 4, duration: "1s"),
                users: [(tasks: [(steps: [
                    Custom(protocol: "postgres", name: "insert",
                           step: (sql: "INSERT INTO hits (user_id) VALUES ($1::int)", params: ["user"]),
                           args: {{"user": "{{{{user_id()}}}}"}}),
                    Custom(protocol: "postgres", name: "count",
                           step: (sql: "SELECT count(*) FROM hits WHERE user_id = $1::int", params: ["user"]),
                           args: {{"user": "{{{{user_id()}}}}"}}, extract: ["value"]),
                    Custom(protocol: "postgres", name: "missing", step: (sql: "SELECT * FROM no_such_table")),
                ])])])"#,
            pg.port
        ),
    );
    let mut protocols = engine::protocol::Protocols::new();
    protocols.register("postgres", postgres_protocol::Postgres);
    let args = engine::cli::RunArgs {
        profile: Some(profile),
        out: tmp.path().join("runs"),
        quiet: true,
        cores: Some(1),
        ..Default::default()
    };
    let outcome = engine::run_with(&args, &protocols).unwrap();
    assert_eq!(outcome.exit_code(), 0);
    let r = read_run(&outcome.dir);
    let inserts = r.named("insert");
    assert!(inserts.len() > 10, "{}", inserts.len());
    assert!(
        inserts
            .iter()
            .chain(&r.named("count"))
            .all(|x| x.outcome == Outcome::Ok as u8),
        "{:?}",
        r.failures().first()
    );
    let rows: u64 = pg.psql("SELECT count(*) FROM hits").parse().unwrap();
    assert_eq!(rows, inserts.len() as u64, "rows inserted vs samples");
    let missing = r.named("missing");
    assert!(!missing.is_empty());
    assert!(missing.iter().all(|x| x.outcome == Outcome::Status as u8
        && x.message.as_deref() == Some("PostgreSQL error 42P01")));
}
