//! Tags and the task table.

use super::*;

const TAGGED: &str = r#"(name: "tags", host: "http://{addr}", load: Closed(users: 4, duration: "800ms"),
    users: [
      (name: "shopper", weight: 3, tags: ["web"], on_start: [(path: "/anything/login")], tasks: [
        (name: "browse", tags: ["browse"], requests: [(path: "/anything/home"), (path: "/anything/item")]),
        (name: "buy", tags: ["checkout"], requests: [(path: "/anything/cart")]),
      ]),
      (name: "admin", tags: ["admin"], tasks: [(requests: [(path: "/anything/admin")])]),
    ])"#;

fn tags_select_tasks_and_every_sample_names_its_task() {
    let _serial = one_at_a_time();
    let server = server();
    let (r, _) = run_with(
        &server,
        TAGGED,
        &[],
        &["--cores", "2", "--tags", "browse"],
        &[],
    );
    assert_no_failures(&r);
    let seen: BTreeSet<String> = r.rows().into_iter().map(|row| row.name).collect();
    let want: BTreeSet<String> = [
        "GET /anything/login",
        "GET /anything/home",
        "GET /anything/item",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        seen, want,
        "only the browse task (and the kept kind's on_start) ran"
    );
    let tags = r
        .manifest
        .tags
        .as_ref()
        .expect("the manifest lists the tags");
    assert_eq!(tags.known, ["admin", "browse", "checkout", "web"]);
    assert_eq!(tags.selected, ["browse"]);
    let mut iterations = 0;
    let mut homes = 0;
    for log in &r.logs {
        // The task table describes what ran: the shopper's one task and its on_start.
        let table: Vec<(String, String, Vec<String>)> = log
            .tasks
            .iter()
            .map(|t| (t.kind_name.clone(), t.task_name.clone(), t.tags.clone()))
            .collect();
        assert_eq!(
            table,
            [
                (
                    "shopper".to_owned(),
                    "browse".to_owned(),
                    vec!["browse".to_owned(), "web".to_owned()]
                ),
                (
                    "shopper".to_owned(),
                    "on_start".to_owned(),
                    vec!["web".to_owned()]
                ),
            ]
        );
        for i in 0..log.samples.len() {
            let name = log.names.get(log.samples.name[i]).unwrap();
            let task = log
                .tasks
                .get(log.samples.task[i])
                .expect("every sample names a defined task");
            let (role, first) = match name {
                "GET /anything/login" => (formats::TaskRole::OnStart, false),
                "GET /anything/home" => (formats::TaskRole::Task, true),
                _ => (formats::TaskRole::Task, false),
            };
            assert_eq!(task.role, role, "{name}");
            // The first request of each iteration, and only it, carries the flag.
            assert_eq!(log.samples.iteration_start[i] == 1, first, "{name}");
            iterations += usize::from(log.samples.iteration_start[i]);
            homes += usize::from(name == "GET /anything/home");
        }
    }
    assert!(iterations > 10, "{iterations} iterations");
    assert_eq!(iterations, homes);
}

fn exclude_tags_leave_out_what_carries_them_and_unknown_tags_are_errors() {
    let _serial = one_at_a_time();
    let server = server();
    let (r, _) = run_with(
        &server,
        TAGGED,
        &[],
        &["--cores", "1", "--exclude-tags", "browse,admin"],
        &[],
    );
    let seen: BTreeSet<String> = r.rows().into_iter().map(|row| row.name).collect();
    let want: BTreeSet<String> = ["GET /anything/login", "GET /anything/cart"]
        .map(String::from)
        .into();
    assert_eq!(seen, want);

    let tmp = tempfile::tempdir().unwrap();
    let path = profile(
        tmp.path(),
        &TAGGED.replace("{addr}", &server.addr().to_string()),
    );
    let out = run(
        tmp.path(),
        &[
            path.to_str().unwrap(),
            "--tags",
            "brwse",
            "--duration",
            "1s",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad flag is exit 2: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("--tags"), "{err}");
    assert!(
        err.contains("unknown tag `brwse` (did you mean `browse`?)"),
        "{err}"
    );
    assert!(
        err.contains("admin, browse, checkout, web"),
        "the known tags are listed: {err}"
    );
}

for_each_backend!(
    tags_select_tasks_and_every_sample_names_its_task,
    exclude_tags_leave_out_what_carries_them_and_unknown_tags_are_errors,
);
