//! What cannot be merged is refused, saying why: shards of two runs, the same shard twice, shards of
//! different profiles.

use std::path::Path;

use super::util::sharded_run;
use super::{analyzer, s, stderr};

#[test]
fn shards_of_two_runs_are_refused_with_both_run_ids_and_their_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let a = sharded_run(tmp.path(), "a", 4_000, 2, 17, |_| {});
    let b = sharded_run(tmp.path(), "b", 4_000, 2, 18, |_| {});
    let id = |d: &Path| {
        formats::Run::open(&d.join("shard-00"))
            .unwrap()
            .manifest
            .unwrap()
            .run_id
            .to_string()
    };
    let (id_a, id_b) = (id(&a), id(&b));
    // Given one by one.
    let out = analyzer(&["report", s(&a.join("shard-00")), s(&b.join("shard-01"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("run {id_a} in {}", a.join("shard-00").display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("run {id_b} in {}", b.join("shard-01").display())),
        "{err}"
    );
    // Mixed up in one run directory.
    std::fs::remove_dir_all(a.join("shard-01")).unwrap();
    std::fs::rename(b.join("shard-01"), a.join("shard-01")).unwrap();
    let out = analyzer(&["report", s(&a)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{} holds shards of 2 different runs", a.display())),
        "{err}"
    );
    assert!(err.contains(&id_a) && err.contains(&id_b), "{err}");
}

#[test]
fn the_same_shard_twice_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = sharded_run(tmp.path(), "run", 4_000, 2, 19, |_| {});
    // A retried pod left a second directory for shard 0.
    let copy = run.join("shard-07");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(run.join("shard-00")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let out = analyzer(&["report", s(&run)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("shard 0 of run"), "{}", stderr(&out));
    assert!(stderr(&out).contains("is given twice"), "{}", stderr(&out));
    std::fs::remove_dir_all(&copy).unwrap();
    // The run directory and one of its shards.
    let out = analyzer(&["report", s(&run), s(&run.join("shard-01"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("given twice"), "{}", stderr(&out));
}

#[test]
fn shards_with_different_profiles_are_refused_showing_the_first_differing_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = sharded_run(tmp.path(), "run", 4_000, 3, 20, |_| {});
    let set_profile = |shard: &str, profile: &str| {
        let dir = run.join(shard);
        let mut m = formats::Run::open(&dir).unwrap().manifest.unwrap();
        m.profile = profile.into();
        m.write_to(&dir).unwrap();
    };
    let profile = "(\n  name: \"shop\",\n  rate: 500,\n  duration: \"60s\",\n)";
    set_profile("shard-00", profile);
    set_profile("shard-01", profile);
    set_profile("shard-02", &profile.replace("rate: 500", "rate: 800"));
    let out = analyzer(&["report", s(&run)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("ran different profiles"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(
        err.contains(&format!(
            "{} has \"rate: 500,\"",
            run.join("shard-00").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{} has \"rate: 800,\"",
            run.join("shard-02").display()
        )),
        "{err}"
    );
}
