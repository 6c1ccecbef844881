//! Tags: labels on user kinds, tasks and requests that select part of a profile at load time
//! (`--tags`, `--exclude-tags`, as in Locust), and the task table that tells the analyzer which task
//! and user kind each sample belongs to.
//!
//! **Selection** runs on the profile as written, before it compiles, so that everything downstream
//! (the deal of user kinds by weight, the compiled scenario, the manifest's profile) sees only what
//! runs. A request's tags are its own plus those of every task and group it is in and of its user
//! kind. With `--tags`, a request (or step) runs when one of its tags is selected; with
//! `--exclude-tags`, it does not run when one of its tags is excluded. A group left with no children
//! is dropped, a user kind left with no tasks is dropped, and a selection that leaves nothing is an
//! error. `on_start` and `on_stop` are set-up and tear-down, not tasks, so `--tags` keeps them for
//! every user kind that still runs (as Locust does), while `--exclude-tags` still removes their
//! requests that carry an excluded tag.
//!
//! **The task table** numbers every user kind's top-level tasks, then its `on_start` and `on_stop`
//! lists, from 1, in profile order; samples carry the number (formats v1.2).

use std::collections::BTreeSet;

use formats::{TagSelection, TaskInfo, TaskRole};

use super::Scenario;
use crate::profile::spec::{ProfileSpec, RequestSpec, TaskSpec};
use crate::profile::suggest;

/// A tag selection that cannot apply: the flag at fault and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagError {
    pub field: &'static str,
    pub message: String,
}

/// Every tag the profile uses anywhere, sorted.
pub(crate) fn known_tags(spec: &ProfileSpec) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for user in &spec.users {
        out.extend(user.tags.iter().cloned());
        for r in user.on_start.iter().chain(&user.on_stop) {
            out.extend(r.tags.iter().cloned());
        }
        for t in &user.tasks {
            task_tags(t, &mut out);
        }
    }
    out
}

/// The tags of `task` and of everything in it.
fn task_tags(task: &TaskSpec, out: &mut BTreeSet<String>) {
    out.extend(task.tags.iter().cloned());
    for r in &task.requests {
        out.extend(r.tags.iter().cloned());
    }
    for child in task.sequence.iter().chain(&task.tasks) {
        task_tags(child, out);
    }
}

/// Applies `--tags` (`select`) and `--exclude-tags` (`exclude`) to `spec`, removing what does not
/// run. Returns the profile's tags and the selection for the manifest, or `None` when the profile
/// has no tags and none were given.
pub(crate) fn select(
    spec: &mut ProfileSpec,
    select: &[String],
    exclude: &[String],
) -> Result<Option<TagSelection>, TagError> {
    let known = known_tags(spec);
    // A tag is selected on the command line as part of a comma-separated list, so it must be
    // something that list can name.
    if let Some(bad) = known
        .iter()
        .find(|t| t.is_empty() || t.contains(|c: char| c == ',' || c.is_whitespace()))
    {
        return Err(TagError {
            field: "tags",
            message: format!(
                "{bad:?} cannot be a tag: `--tags` takes a comma-separated list, so a tag must be non-empty, without commas or spaces (write e.g. \"check-out\")"
            ),
        });
    }
    let select = checked("--tags", select, &known)?;
    let exclude = checked("--exclude-tags", exclude, &known)?;
    if known.is_empty() {
        return Ok(None);
    }
    let selection = TagSelection {
        known: known.iter().cloned().collect(),
        selected: select.iter().cloned().collect(),
        excluded: exclude.iter().cloned().collect(),
    };
    if select.is_empty() && exclude.is_empty() {
        return Ok(Some(selection));
    }
    let rule = Rule {
        select: &select,
        exclude: &exclude,
    };
    let names_before = request_names(spec);
    let users = std::mem::take(&mut spec.users);
    for mut user in users {
        let inherited: BTreeSet<&str> = user.tags.iter().map(String::as_str).collect();
        let tasks = std::mem::take(&mut user.tasks);
        user.tasks = tasks
            .into_iter()
            .filter_map(|t| rule.task(t, &inherited))
            .collect();
        if user.tasks.is_empty() {
            continue;
        }
        for list in [&mut user.on_start, &mut user.on_stop] {
            list.retain(|r| !rule.excluded(&inherited, r));
        }
        spec.users.push(user);
    }
    if spec.users.is_empty() {
        let what = match (select.is_empty(), exclude.is_empty()) {
            (false, true) => format!("--tags {}", join(&select)),
            (true, false) => format!("--exclude-tags {}", join(&exclude)),
            _ => format!(
                "--tags {} with --exclude-tags {}",
                join(&select),
                join(&exclude)
            ),
        };
        return Err(TagError {
            field: if select.is_empty() {
                "--exclude-tags"
            } else {
                "--tags"
            },
            message: format!(
                "{what} leaves no task to run; the profile's tags are: {}",
                join(&known)
            ),
        });
    }
    // Thresholds on requests that no longer run would make `analyzer check` refuse the run as
    // naming unknown requests; a smoke run with `--tags` is judged on what it ran.
    let names_after = request_names(spec);
    spec.thresholds
        .retain(|name, _| names_after.contains(name) || !names_before.contains(name));
    Ok(Some(selection))
}

/// The names samples of the profile's HTTP requests are grouped under (`name`, else `METHOD path`).
fn request_names(spec: &ProfileSpec) -> BTreeSet<String> {
    fn name(r: &RequestSpec) -> String {
        r.name
            .clone()
            .unwrap_or_else(|| format!("{} {}", r.method.as_str(), r.path))
    }
    fn walk(t: &TaskSpec, out: &mut BTreeSet<String>) {
        out.extend(t.requests.iter().map(name));
        for c in t.sequence.iter().chain(&t.tasks) {
            walk(c, out);
        }
    }
    let mut out = BTreeSet::new();
    for u in &spec.users {
        out.extend(u.on_start.iter().chain(&u.on_stop).map(name));
        for t in &u.tasks {
            walk(t, &mut out);
        }
    }
    out
}

fn join(tags: &BTreeSet<String>) -> String {
    tags.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// The tags given to `flag`, trimmed and checked against the profile's.
fn checked(
    flag: &'static str,
    given: &[String],
    known: &BTreeSet<String>,
) -> Result<BTreeSet<String>, TagError> {
    let mut out = BTreeSet::new();
    for tag in given {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err(TagError {
                field: flag,
                message:
                    "an empty tag: give tags separated by commas, e.g. `--tags browse,checkout`"
                        .to_owned(),
            });
        }
        if !known.contains(tag) {
            let message = if known.is_empty() {
                format!(
                    "unknown tag `{tag}`: the profile tags nothing; add `tags: [\"{tag}\"]` to a user kind, task or request"
                )
            } else {
                let hint = suggest(tag, known.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                format!(
                    "unknown tag `{tag}`{hint}; the profile's tags are: {}",
                    join(known)
                )
            };
            return Err(TagError {
                field: flag,
                message,
            });
        }
        out.insert(tag.to_owned());
    }
    Ok(out)
}

struct Rule<'a> {
    select: &'a BTreeSet<String>,
    exclude: &'a BTreeSet<String>,
}

impl Rule<'_> {
    /// Whether something with `tags` (its own and inherited) runs.
    fn runs<'t>(&self, tags: impl Iterator<Item = &'t str> + Clone) -> bool {
        let selected = self.select.is_empty() || tags.clone().any(|t| self.select.contains(t));
        selected && !tags.into_iter().any(|t| self.exclude.contains(t))
    }

    fn excluded(&self, inherited: &BTreeSet<&str>, r: &RequestSpec) -> bool {
        inherited
            .iter()
            .copied()
            .chain(r.tags.iter().map(String::as_str))
            .any(|t| self.exclude.contains(t))
    }

    /// What is left of `task` under tags `inherited`; `None` when nothing is.
    fn task(&self, mut task: TaskSpec, inherited: &BTreeSet<&str>) -> Option<TaskSpec> {
        let mut mine = inherited.clone();
        mine.extend(task.tags.iter().map(String::as_str));
        task.requests.retain(|r| {
            self.runs(
                mine.iter()
                    .copied()
                    .chain(r.tags.iter().map(String::as_str)),
            )
        });
        if !self.runs(mine.iter().copied()) {
            task.steps.clear();
        }
        let sequence = std::mem::take(&mut task.sequence);
        let children = std::mem::take(&mut task.tasks);
        task.sequence = sequence
            .into_iter()
            .filter_map(|c| self.task(c, &mine))
            .collect();
        task.tasks = children
            .into_iter()
            .filter_map(|c| self.task(c, &mine))
            .collect();
        let empty = task.requests.is_empty()
            && task.steps.is_empty()
            && task.sequence.is_empty()
            && task.tasks.is_empty();
        (!empty).then_some(task)
    }
}

/// Numbers every user kind's tasks and its `on_start` and `on_stop` lists (from 1, in profile
/// order) in `out`'s kinds, and fills `out.tasks` with what each number means. `spec` is the
/// profile `out` was compiled from.
pub(crate) fn number_tasks(spec: &ProfileSpec, out: &mut Scenario) {
    let mut table = Vec::new();
    for (u, (user, kind)) in spec.users.iter().zip(&mut out.kinds).enumerate() {
        let kind_name = user.name.clone().unwrap_or_else(|| format!("users[{u}]"));
        let mut entry = |role: TaskRole, task_name: String, task_weight: u32, tags: Vec<String>| {
            table.push(TaskInfo {
                id: table.len() as u32 + 1,
                role,
                kind: u as u32,
                kind_weight: user.weight,
                task_weight,
                kind_name: kind_name.clone(),
                task_name,
                tags,
            });
            table.len() as u32
        };
        for (t, (spec_task, task)) in user.tasks.iter().zip(&mut kind.tasks).enumerate() {
            let mut tags: BTreeSet<String> = user.tags.iter().cloned().collect();
            task_tags(spec_task, &mut tags);
            task.id = entry(
                TaskRole::Task,
                task_name(spec_task, t),
                spec_task.weight,
                tags.into_iter().collect(),
            );
        }
        for (role, list) in [
            (TaskRole::OnStart, &user.on_start),
            (TaskRole::OnStop, &user.on_stop),
        ] {
            if list.is_empty() {
                continue;
            }
            let mut tags: BTreeSet<String> = user.tags.iter().cloned().collect();
            for r in list {
                tags.extend(r.tags.iter().cloned());
            }
            let id = entry(
                role,
                role.as_str().to_owned(),
                0,
                tags.into_iter().collect(),
            );
            if role == TaskRole::OnStart {
                kind.on_start_task = id;
            } else {
                kind.on_stop_task = id;
            }
        }
    }
    out.tasks = table;
}

/// A task's name in reports: its `name`, else its one request's name, else its place.
fn task_name(task: &TaskSpec, index: usize) -> String {
    if let Some(name) = &task.name {
        return name.clone();
    }
    match (
        &task.requests[..],
        task.steps.is_empty(),
        task.sequence.is_empty(),
        task.tasks.is_empty(),
    ) {
        ([r], true, true, true) => r
            .name
            .clone()
            .unwrap_or_else(|| format!("{} {}", r.method.as_str(), r.path)),
        _ => format!("tasks[{index}]"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const PROFILE: &str = r#"(name: "t", host: "http://127.0.0.1:9",
        load: Closed(users: 2, duration: "1s"),
        users: [
            (name: "shopper", weight: 3, tags: ["web"],
             on_start: [(path: "/login"), (path: "/audit", tags: ["admin"])],
             tasks: [
                (name: "browse", tags: ["browse"], requests: [(path: "/"), (path: "/slow", tags: ["slow"])]),
                (name: "checkout", tags: ["checkout"], sequence: [
                    (requests: [(path: "/cart")]),
                    (tags: ["slow"], requests: [(path: "/pay")]),
                ]),
             ]),
            (name: "admin", tags: ["admin"], tasks: [(requests: [(path: "/admin")])]),
            (name: "plain", tasks: [(requests: [(path: "/plain")])]),
        ])"#;

    fn spec() -> ProfileSpec {
        crate::profile::load_str(PROFILE, Path::new("t.ron")).unwrap()
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Every request path left, per user kind.
    fn paths(spec: &ProfileSpec) -> Vec<(String, Vec<String>)> {
        fn walk(t: &TaskSpec, out: &mut Vec<String>) {
            out.extend(t.requests.iter().map(|r| r.path.clone()));
            for c in t.sequence.iter().chain(&t.tasks) {
                walk(c, out);
            }
        }
        spec.users
            .iter()
            .map(|u| {
                let mut out = Vec::new();
                for t in &u.tasks {
                    walk(t, &mut out);
                }
                (u.name.clone().unwrap(), out)
            })
            .collect()
    }

    #[test]
    fn tags_select_requests_and_inherit_from_kinds_and_groups() {
        let mut s = spec();
        let sel = select(&mut s, &strs(&["slow"]), &[]).unwrap().unwrap();
        assert_eq!(sel.known, ["admin", "browse", "checkout", "slow", "web"]);
        assert_eq!(sel.selected, ["slow"]);
        assert_eq!(
            paths(&s),
            [("shopper".to_owned(), strs(&["/slow", "/pay"]))],
            "only the slow requests run; the kinds without one are gone"
        );
        // on_start is kept for a kind that still runs.
        assert_eq!(s.users[0].on_start.len(), 2);

        let mut s = spec();
        select(&mut s, &strs(&["web", "admin"]), &[]).unwrap();
        assert_eq!(
            paths(&s),
            [
                ("shopper".to_owned(), strs(&["/", "/slow", "/cart", "/pay"])),
                ("admin".to_owned(), strs(&["/admin"])),
            ]
        );
    }

    #[test]
    fn exclude_tags_remove_what_carries_them() {
        let mut s = spec();
        select(&mut s, &[], &strs(&["slow", "admin"])).unwrap();
        assert_eq!(
            paths(&s),
            [
                ("shopper".to_owned(), strs(&["/", "/cart"])),
                ("plain".to_owned(), strs(&["/plain"])),
            ]
        );
        assert_eq!(
            s.users[0].on_start.len(),
            1,
            "the admin-tagged on_start request is gone"
        );

        let mut s = spec();
        select(&mut s, &strs(&["web"]), &strs(&["checkout"])).unwrap();
        assert_eq!(paths(&s), [("shopper".to_owned(), strs(&["/", "/slow"]))]);
    }

    #[test]
    fn unknown_tags_are_errors_that_list_the_known_ones() {
        let e = select(&mut spec(), &strs(&["browze"]), &[]).unwrap_err();
        assert_eq!(e.field, "--tags");
        assert!(
            e.message
                .contains("unknown tag `browze` (did you mean `browse`?)"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("admin, browse, checkout, slow, web"),
            "{}",
            e.message
        );

        let e = select(&mut spec(), &[], &strs(&["nope"])).unwrap_err();
        assert_eq!(e.field, "--exclude-tags");

        let e = select(&mut spec(), &strs(&[" "]), &[]).unwrap_err();
        assert!(e.message.contains("empty tag"), "{}", e.message);

        let mut untagged =
            crate::profile::load_str(r#"(name: "t", load: Closed(users: 1, duration: "1s"), users: [(tasks: [(requests: [(path: "/")])])])"#, Path::new("t.ron")).unwrap();
        let e = select(&mut untagged, &strs(&["x"]), &[]).unwrap_err();
        assert!(
            e.message.contains("the profile tags nothing"),
            "{}",
            e.message
        );
        assert_eq!(select(&mut untagged, &[], &[]).unwrap(), None);
    }

    #[test]
    fn a_selection_that_leaves_nothing_is_an_error() {
        let e = select(&mut spec(), &strs(&["admin"]), &strs(&["admin"])).unwrap_err();
        assert_eq!(e.field, "--tags");
        assert!(e.message.contains("leaves no task to run"), "{}", e.message);
    }

    #[test]
    fn thresholds_on_requests_that_no_longer_run_are_dropped() {
        let text = PROFILE.replace(
            "users: [",
            r#"thresholds: {"*": ["p99 < 1s"], "GET /admin": ["p99 < 1s"], "GET /slow": ["p99 < 1s"], "elsewhere": ["p99 < 1s"]}, users: ["#,
        );
        let mut s = crate::profile::load_str(&text, Path::new("t.ron")).unwrap();
        select(&mut s, &strs(&["slow"]), &[]).unwrap();
        assert_eq!(
            s.thresholds.keys().collect::<Vec<_>>(),
            ["*", "GET /slow", "elsewhere"],
            "the admin request no longer runs; a name the profile never had is left for check to report"
        );
    }

    #[test]
    fn tags_the_command_line_cannot_name_are_profile_errors() {
        for bad in ["", "a,b", "check out"] {
            let text = PROFILE.replace(
                r#"tags: ["admin"], tasks"#,
                &format!("tags: [{bad:?}], tasks"),
            );
            let mut s = crate::profile::load_str(&text, Path::new("t.ron")).unwrap();
            let e = select(&mut s, &[], &[]).unwrap_err();
            assert_eq!(e.field, "tags");
            assert!(e.message.contains("cannot be a tag"), "{}", e.message);
        }
    }

    #[test]
    fn without_flags_nothing_changes() {
        let mut s = spec();
        let sel = select(&mut s, &[], &[]).unwrap().unwrap();
        assert!(sel.selected.is_empty() && sel.excluded.is_empty());
        assert_eq!(paths(&s), paths(&spec()));
    }
}
