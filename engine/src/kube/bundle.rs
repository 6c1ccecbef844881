//! The profile and every file it reads, laid out so that the same names work in the pod.
//!
//! A profile names files relative to itself: fragments (`include`, relative to the including file),
//! feeder files, the `script`, the TLS `ca_file` and a JWT `key_file` (relative to the profile). The pod gets them
//! from one ConfigMap, mounted at [`BUNDLE_DIR`] with each file at its path relative to the closest
//! directory that holds them all, so `data/users.csv` and `../shared/users.csv` resolve in the pod
//! as they do here. A file named by an absolute path is mounted at that same path (and so is
//! anything a fragment mounted that way includes), since that is where the engine will look.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use ron::extensions::Extensions;
use serde::Deserialize;

use crate::plan::Plan;
use crate::profile::spec::{AuthSpec, ProfileSpec, RequestSpec, TaskSpec};

use super::KubeError;

/// Where the ConfigMap's files appear in each pod.
pub const BUNDLE_DIR: &str = "/stampede/profile";

/// The most a ConfigMap may hold: the API server refuses one whose keys and values pass 1 MiB.
pub const CONFIGMAP_LIMIT: usize = 1 << 20;

/// One file for the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Its ConfigMap key.
    pub key: String,
    /// Where the pod sees it.
    pub mount: Mount,
    /// The file here, for messages.
    pub source: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Where a file appears in the pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mount {
    /// Under [`BUNDLE_DIR`], at this relative path.
    Bundle(String),
    /// At this absolute path (a `subPath` mount).
    Absolute(String),
}

/// The profile's files and where the profile itself is in the pod.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Every file, the profile first.
    pub files: Vec<BundleFile>,
    /// The profile's path in the pod, the argument of `engine run`.
    pub profile_in_pod: String,
    /// Things the user should know (absolute paths, names computed at run time).
    pub notes: Vec<String>,
}

impl Bundle {
    /// Bytes the ConfigMap holds (keys and values, as the API server counts them).
    pub fn size(&self) -> usize {
        self.files.iter().map(|f| f.key.len() + f.bytes.len()).sum()
    }
}

/// A file the profile refers to, found here.
#[derive(Debug, Clone)]
struct Found {
    /// The file, absolute and without `.` or `..`.
    path: PathBuf,
    /// Named by an absolute path (or from a file that was), so mounted at `path`.
    absolute: bool,
    /// The profile field that names it, for messages.
    field: String,
    /// The file may be missing: the engine will not read it (a CA file for a plain-HTTP target).
    optional: bool,
}

/// Finds, reads and places every file `spec` (loaded from `profile`) reads when it runs as `plan`,
/// except those named by an absolute path under one of `in_image` (the image holds them).
pub fn collect(
    profile: &Path,
    spec: &ProfileSpec,
    plan: &Plan,
    cwd: &Path,
    in_image: &[PathBuf],
) -> Result<Bundle, KubeError> {
    let profile_abs = normalize(&cwd.join(profile));
    let base = profile_abs.parent().unwrap_or(Path::new("/")).to_owned();
    let mut found = vec![Found {
        path: profile_abs.clone(),
        absolute: false,
        field: "PROFILE".into(),
        optional: false,
    }];
    let mut notes = Vec::new();
    fragments(&profile_abs, false, &mut found, &mut Vec::new())?;

    let from_profile = |name: &str, field: String, optional: bool| Found {
        path: normalize(&base.join(name)),
        absolute: Path::new(name).is_absolute(),
        field,
        optional,
    };
    for (name, feeder) in &spec.feeders {
        found.push(from_profile(
            &feeder.file,
            format!("feeders.{name}.file"),
            false,
        ));
    }
    if let Some(script) = &spec.script {
        found.push(from_profile(script, "script".to_owned(), false));
    }
    // The CA file as the plan resolved it (after `${...}` and the environment's own `tls`).
    if let Some(ca) = &plan.tls.ca_file {
        let written = tls_ca_as_written(spec, plan.environment.as_deref());
        let field = match plan.environment.as_deref() {
            Some(env) if spec.environments.get(env).is_some_and(|e| e.tls.is_some()) => {
                format!("environments.{env}.tls.ca_file")
            }
            _ => "tls.ca_file".to_owned(),
        };
        let absolute = match &written {
            Some(w) if !w.contains("${") => Path::new(w).is_absolute(),
            _ => ca.is_absolute() && !normalize(&cwd.join(ca)).starts_with(&base),
        };
        if written.as_deref().is_some_and(|w| w.contains("${")) {
            notes.push(format!(
                "{field} is computed from variables; bundled as it resolves here ({}): the pods must resolve it the same way",
                ca.display()
            ));
        }
        found.push(Found {
            path: normalize(&cwd.join(ca)),
            absolute,
            field,
            optional: true,
        });
    }
    for (field, key_file) in key_files(spec) {
        if key_file.contains("${") {
            notes.push(format!(
                "{field} ({key_file:?}) is computed from variables, so it is not bundled: write the file name literally, or make sure the image has it"
            ));
            continue;
        }
        found.push(from_profile(&key_file, field, false));
    }

    let from_image = |f: &Found| in_image.iter().any(|p| f.path.starts_with(p));
    // The profile itself always goes in the ConfigMap.
    if let Some(f) = found[1..].iter().find(|f| !f.absolute && from_image(f)) {
        return Err(KubeError::Bundle(format!(
            "`{}` names {} relative to the profile, so the pods look for it with the profile, not in the image: \
             name it by its absolute path for --in-image to apply",
            f.field,
            f.path.display()
        )));
    }
    let mut in_image_count = 0;
    let mut files = Vec::new();
    let placed = place(&found);
    for (f, mount) in found.iter().zip(placed) {
        let Some(mount) = mount else { continue };
        if f.absolute && from_image(f) {
            in_image_count += 1;
            continue;
        }
        let bytes = match std::fs::read(&f.path) {
            Ok(b) => b,
            Err(_) if f.optional => continue,
            Err(e) => {
                return Err(KubeError::Bundle(format!(
                    "cannot read {} (named by `{}`): {e}",
                    f.path.display(),
                    f.field
                )));
            }
        };
        if let Mount::Absolute(p) = &mount {
            notes.push(format!(
                "`{}` names {p} by an absolute path: each pod gets it mounted at that path",
                f.field
            ));
        }
        files.push(BundleFile {
            key: String::new(),
            mount,
            source: f.path.clone(),
            bytes,
        });
    }
    if in_image_count > 0 {
        notes.push(format!(
            "{in_image_count} file(s) under --in-image are not bundled: the image must hold them at the same paths"
        ));
    }
    assign_keys(&mut files);
    let profile_in_pod = match &files[0].mount {
        Mount::Bundle(rel) => format!("{BUNDLE_DIR}/{rel}"),
        Mount::Absolute(p) => p.clone(),
    };
    let bundle = Bundle {
        files,
        profile_in_pod,
        notes,
    };
    if bundle.size() > CONFIGMAP_LIMIT {
        let biggest = bundle
            .files
            .iter()
            .max_by_key(|f| f.bytes.len())
            .map(|f| format!("{} ({})", f.source.display(), mib(f.bytes.len())))
            .unwrap_or_default();
        return Err(KubeError::Bundle(format!(
            "the profile and its files come to {}, more than the 1 MiB a ConfigMap holds (the largest is {biggest}); \
             build large data files into an image from the engine's and give --in-image (docs/distributed.md#large-data-files)",
            mib(bundle.size())
        )));
    }
    Ok(bundle)
}

fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// Where each found file goes: `None` for a second mention of a file already placed the same way.
/// Bundle paths are relative to the deepest directory that holds every bundled file.
fn place(found: &[Found]) -> Vec<Option<Mount>> {
    let bundled: Vec<&Path> = found
        .iter()
        .filter(|f| !f.absolute)
        .map(|f| f.path.parent().unwrap_or(Path::new("/")))
        .collect();
    let root = common_ancestor(&bundled);
    let mut seen = BTreeSet::new();
    found
        .iter()
        .map(|f| {
            let mount = if f.absolute {
                Mount::Absolute(f.path.to_string_lossy().into_owned())
            } else {
                let rel = f.path.strip_prefix(&root).unwrap_or(&f.path);
                Mount::Bundle(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                )
            };
            seen.insert(mount.clone()).then_some(mount)
        })
        .collect()
}

fn common_ancestor(dirs: &[&Path]) -> PathBuf {
    let Some(first) = dirs.first() else {
        return PathBuf::from("/");
    };
    let mut root: PathBuf = first.to_path_buf();
    for d in &dirs[1..] {
        while !d.starts_with(&root) {
            if !root.pop() {
                return PathBuf::from("/");
            }
        }
    }
    root
}

/// ConfigMap keys (`[-._a-zA-Z0-9]+`) from the paths, made unique.
fn assign_keys(files: &mut [BundleFile]) {
    let mut used = BTreeSet::new();
    for f in files.iter_mut() {
        let path = match &f.mount {
            Mount::Bundle(p) => p.clone(),
            Mount::Absolute(p) => p.trim_start_matches('/').to_owned(),
        };
        let mut base: String = path
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.starts_with('.') || base.is_empty() {
            base.insert(0, 'f');
        }
        base.truncate(200);
        let mut key = base.clone();
        let mut n = 2;
        while !used.insert(key.clone()) {
            key = format!("{base}-{n}");
            n += 1;
        }
        f.key = key;
    }
}

/// `path` made absolute-looking without touching the file system: `.` dropped, `..` applied.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The `include` lists of a profile and its fragments (the rest of the file is not needed here).
#[derive(Deserialize)]
#[serde(rename = "Profile")]
struct ProfileIncludes {
    #[serde(default)]
    include: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename = "Fragment")]
struct FragmentIncludes {
    #[serde(default)]
    include: Vec<String>,
}

/// Adds the fragments `file` includes, depth first, as the loader reads them. `chain` guards against
/// cycles (the loader has refused those already; this only keeps the walk finite).
fn fragments(
    file: &Path,
    absolute: bool,
    found: &mut Vec<Found>,
    chain: &mut Vec<PathBuf>,
) -> Result<(), KubeError> {
    if chain.contains(&file.to_path_buf()) || chain.len() > 16 {
        return Ok(());
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| KubeError::Bundle(format!("cannot read {}: {e}", file.display())))?;
    let options = ron::Options::default()
        .with_default_extension(Extensions::IMPLICIT_SOME | Extensions::UNWRAP_VARIANT_NEWTYPES);
    let includes = if chain.is_empty() {
        options
            .from_str::<ProfileIncludes>(&text)
            .map(|p| p.include)
    } else {
        options
            .from_str::<FragmentIncludes>(&text)
            .map(|f| f.include)
    }
    .map_err(|e| KubeError::Bundle(format!("{}: {e}", file.display())))?;
    chain.push(file.to_path_buf());
    let dir = file.parent().unwrap_or(Path::new("/")).to_owned();
    for name in includes {
        let path = normalize(&dir.join(&name));
        let abs = absolute || Path::new(&name).is_absolute();
        found.push(Found {
            path: path.clone(),
            absolute: abs,
            field: format!("include {name:?} in {}", file.display()),
            optional: false,
        });
        fragments(&path, abs, found, chain)?;
    }
    chain.pop();
    Ok(())
}

/// The CA file as the profile writes it for `environment` (the environment's `tls` replaces the
/// top level's).
fn tls_ca_as_written(spec: &ProfileSpec, environment: Option<&str>) -> Option<String> {
    let env_tls = environment
        .and_then(|e| spec.environments.get(e))
        .and_then(|e| e.tls.as_ref());
    env_tls.or(spec.tls.as_ref())?.ca_file.clone()
}

/// Every JWT `key_file` in the profile, with the field that names it.
fn key_files(spec: &ProfileSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    auth_key(spec.auth.as_ref(), "auth".into(), &mut out);
    for (u, user) in spec.users.iter().enumerate() {
        auth_key(user.auth.as_ref(), format!("users[{u}].auth"), &mut out);
        for (i, r) in user.on_start.iter().enumerate() {
            request_key(r, format!("users[{u}].on_start[{i}]"), &mut out);
        }
        for (i, r) in user.on_stop.iter().enumerate() {
            request_key(r, format!("users[{u}].on_stop[{i}]"), &mut out);
        }
        for (t, task) in user.tasks.iter().enumerate() {
            task_keys(task, format!("users[{u}].tasks[{t}]"), &mut out);
        }
    }
    out
}

fn task_keys(task: &TaskSpec, at: String, out: &mut BTreeMap<String, String>) {
    for (i, r) in task.requests.iter().enumerate() {
        request_key(r, format!("{at}.requests[{i}]"), out);
    }
    for (i, t) in task.sequence.iter().enumerate() {
        task_keys(t, format!("{at}.sequence[{i}]"), out);
    }
    for (i, t) in task.tasks.iter().enumerate() {
        task_keys(t, format!("{at}.tasks[{i}]"), out);
    }
}

fn request_key(r: &RequestSpec, at: String, out: &mut BTreeMap<String, String>) {
    auth_key(r.auth.as_ref(), format!("{at}.auth"), out);
}

fn auth_key(auth: Option<&AuthSpec>, at: String, out: &mut BTreeMap<String, String>) {
    if let Some(AuthSpec::Jwt {
        key_file: Some(k), ..
    }) = auth
    {
        out.insert(format!("{at}.key_file"), k.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str, absolute: bool) -> Found {
        Found {
            path: PathBuf::from(path),
            absolute,
            field: String::new(),
            optional: false,
        }
    }

    fn bundle_paths(found: &[Found]) -> Vec<Option<Mount>> {
        place(found)
    }

    #[test]
    fn files_are_placed_relative_to_the_deepest_common_directory() {
        let b = |s: &str| Some(Mount::Bundle(s.into()));
        assert_eq!(
            bundle_paths(&[
                found("/w/suite/profiles/shop.ron", false),
                found("/w/suite/profiles/data/users.csv", false),
            ]),
            vec![b("shop.ron"), b("data/users.csv")]
        );
        // `../shared/x.csv` from the profile: the root moves up so that `..` still works in the pod.
        assert_eq!(
            bundle_paths(&[
                found("/w/suite/profiles/shop.ron", false),
                found("/w/suite/shared/users.csv", false),
                found("/w/suite/profiles/common.ron", false),
                found("/w/suite/profiles/common.ron", false),
            ]),
            vec![
                b("profiles/shop.ron"),
                b("shared/users.csv"),
                b("profiles/common.ron"),
                None
            ]
        );
        // An absolute name does not move the root; it is mounted where it was named.
        assert_eq!(
            bundle_paths(&[found("/w/p/shop.ron", false), found("/tmp/cert.pem", true),]),
            vec![b("shop.ron"), Some(Mount::Absolute("/tmp/cert.pem".into()))]
        );
    }

    #[test]
    fn paths_are_normalized_lexically() {
        assert_eq!(
            normalize(Path::new("/w/./p/../data//u.csv")),
            PathBuf::from("/w/data/u.csv")
        );
        assert_eq!(normalize(Path::new("/../x")), PathBuf::from("/x"));
    }

    #[test]
    fn keys_are_valid_and_unique() {
        let file = |m: Mount| BundleFile {
            key: String::new(),
            mount: m,
            source: PathBuf::new(),
            bytes: Vec::new(),
        };
        let mut files = vec![
            file(Mount::Bundle("data/users.csv".into())),
            file(Mount::Bundle("data_users.csv".into())),
            file(Mount::Bundle("dir with space/ü.csv".into())),
            file(Mount::Bundle(".hidden".into())),
            file(Mount::Absolute("/tmp/cert.pem".into())),
        ];
        assign_keys(&mut files);
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "data_users.csv",
                "data_users.csv-2",
                "dir_with_space__.csv",
                "f.hidden",
                "tmp_cert.pem"
            ]
        );
        for k in keys {
            assert!(
                k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
            );
        }
    }
}
