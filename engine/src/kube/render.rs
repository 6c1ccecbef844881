//! From the decided settings to the Kubernetes objects: a pure function, so tests can assert every
//! field without a cluster.

use std::collections::BTreeMap;

use super::bundle::{BUNDLE_DIR, Bundle, Mount};
use super::objects::*;

/// Where shards write: `DIR/<run-id>/shard-<I>/`.
pub const RESULTS_DIR: &str = "/results";
/// The engine container's name (the Job's pod failure policy names it).
pub const CONTAINER: &str = "engine";
/// The user and group the image runs as (the Dockerfile creates them).
pub const RUN_AS: u32 = 65532;

/// The label every object of a run carries, with the run id: `kubectl logs -l` selects by it.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Everything the manifests depend on, decided by [`super::command`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// The run id: names the objects, the labels and the results directory.
    pub run_id: String,
    /// The profile's name, as a label.
    pub profile_name: String,
    /// Absent: `kubectl`'s current namespace.
    pub namespace: Option<String>,
    /// Pods.
    pub shards: u32,
    /// Whole CPUs per pod, and engine threads.
    pub cores: u32,
    /// Memory per pod, MiB (requests = limits).
    pub memory_mib: u64,
    /// The engine image.
    pub image: String,
    /// The collector's image; `None`: no collector.
    pub collector_image: Option<String>,
    /// `--start-at` for every shard, RFC 3339.
    pub start_at: String,
    /// The Job's `activeDeadlineSeconds`.
    pub deadline_s: u64,
    /// Seconds a finished Job (and the collector) are kept.
    pub ttl_s: u64,
    /// The results claim.
    pub claim: String,
    /// Create the claim: its size and storage class.
    pub create_claim: Option<(String, Option<String>)>,
    /// Flags passed through to `engine run`.
    pub engine_args: Vec<String>,
    /// The seccomp profile.
    pub seccomp: Seccomp,
    /// How pods are spread over nodes.
    pub one_per_node: bool,
    /// `nodeSelector`.
    pub node_selector: Labels,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Secrets whose keys become environment variables.
    pub secrets: Vec<String>,
}

/// The pods' seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seccomp {
    /// The container runtime's default: allowed everywhere, but containerd 2.0 and Docker 25 block
    /// io_uring in it, so the engine runs on epoll.
    RuntimeDefault,
    /// No filter: io_uring works.
    Unconfined,
    /// A profile installed on the nodes.
    Localhost(String),
}

/// The objects of one run, in the order `kubectl apply` should create them.
pub fn render(s: &Settings, bundle: &Bundle) -> Vec<Object> {
    let mut out = Vec::new();
    if let Some((size, class)) = &s.create_claim {
        out.push(Object::Pvc(claim(s, size, class.clone())));
    }
    out.push(Object::ConfigMap(config_map(s, bundle)));
    out.push(Object::Job(Box::new(shards_job(s, bundle))));
    if let Some(image) = &s.collector_image {
        out.push(Object::Job(Box::new(collector_job(s, image))));
    }
    out
}

/// The labels of a run's objects of `component`.
pub fn labels(s: &Settings, component: &str) -> Labels {
    let mut l = Labels::new();
    l.insert("app.kubernetes.io/name".into(), "stampede".into());
    l.insert(INSTANCE_LABEL.into(), s.run_id.clone());
    l.insert("app.kubernetes.io/component".into(), component.into());
    l.insert("stampede/profile".into(), label_value(&s.profile_name));
    l
}

/// `text` as a valid label value: at most 63 of `[-_.A-Za-z0-9]`, starting and ending with an
/// alphanumeric character.
fn label_value(text: &str) -> String {
    let v: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The Job of the shards.
pub fn job_name(run_id: &str) -> String {
    format!("stampede-{run_id}")
}

/// The collector's Job.
pub fn collector_name(run_id: &str) -> String {
    format!("stampede-{run_id}-collect")
}

/// The ConfigMap holding the profile.
pub fn config_map_name(run_id: &str) -> String {
    format!("stampede-{run_id}-profile")
}

fn meta(s: &Settings, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: s.namespace.clone(),
        labels: labels(s, component),
        annotations: Labels::new(),
    }
}

fn claim(s: &Settings, size: &str, class: Option<String>) -> PersistentVolumeClaim {
    // The claim outlives runs, so it carries no run id: deleting a run's objects by label keeps it.
    let mut labels = Labels::new();
    labels.insert("app.kubernetes.io/name".into(), "stampede".into());
    labels.insert("app.kubernetes.io/component".into(), "results".into());
    PersistentVolumeClaim {
        api_version: "v1",
        kind: "PersistentVolumeClaim",
        metadata: ObjectMeta {
            name: Some(s.claim.clone()),
            namespace: s.namespace.clone(),
            labels,
            annotations: Labels::new(),
        },
        spec: PvcSpec {
            access_modes: vec!["ReadWriteMany".into()],
            resources: StorageRequest {
                requests: BTreeMap::from([("storage".into(), size.to_owned())]),
            },
            storage_class_name: class,
        },
    }
}

fn config_map(s: &Settings, bundle: &Bundle) -> ConfigMap {
    use base64::Engine as _;
    let mut data = BTreeMap::new();
    let mut binary_data = BTreeMap::new();
    for f in &bundle.files {
        match std::str::from_utf8(&f.bytes) {
            Ok(text) => {
                data.insert(f.key.clone(), text.to_owned());
            }
            Err(_) => {
                binary_data.insert(
                    f.key.clone(),
                    base64::engine::general_purpose::STANDARD.encode(&f.bytes),
                );
            }
        }
    }
    ConfigMap {
        api_version: "v1",
        kind: "ConfigMap",
        metadata: meta(s, config_map_name(&s.run_id), "profile"),
        immutable: true,
        data,
        binary_data,
    }
}

/// The arguments of `engine run` in every pod.
pub fn engine_args(s: &Settings, bundle: &Bundle) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        bundle.profile_in_pod.clone(),
        "--shards".into(),
        s.shards.to_string(),
        "--run-id".into(),
        s.run_id.clone(),
        "--start-at".into(),
        s.start_at.clone(),
        "--out".into(),
        RESULTS_DIR.into(),
        "--cores".into(),
        s.cores.to_string(),
    ];
    args.extend(s.engine_args.iter().cloned());
    args
}

fn pod_security(s: &Settings) -> PodSecurityContext {
    let seccomp_profile = match &s.seccomp {
        Seccomp::RuntimeDefault => SeccompProfile {
            kind: "RuntimeDefault",
            localhost_profile: None,
        },
        Seccomp::Unconfined => SeccompProfile {
            kind: "Unconfined",
            localhost_profile: None,
        },
        Seccomp::Localhost(path) => SeccompProfile {
            kind: "Localhost",
            localhost_profile: Some(path.clone()),
        },
    };
    PodSecurityContext {
        run_as_non_root: true,
        run_as_user: RUN_AS,
        run_as_group: RUN_AS,
        fs_group: RUN_AS,
        seccomp_profile,
        sysctls: Vec::new(),
    }
}

fn container_security() -> ContainerSecurityContext {
    ContainerSecurityContext {
        allow_privilege_escalation: false,
        read_only_root_filesystem: true,
        capabilities: Capabilities {
            drop: vec!["ALL".into()],
        },
    }
}

fn quantities(cpu: String, memory: String) -> BTreeMap<String, String> {
    BTreeMap::from([("cpu".into(), cpu), ("memory".into(), memory)])
}

fn results_volume(claim: &str, read_only: bool) -> Volume {
    Volume {
        name: "results".into(),
        config_map: None,
        persistent_volume_claim: Some(ClaimVolume {
            claim_name: claim.to_owned(),
            read_only,
        }),
    }
}

fn shards_job(s: &Settings, bundle: &Bundle) -> Job {
    let pod_labels = labels(s, "load-generator");
    let selector = LabelSelector {
        match_labels: Labels::from([
            (INSTANCE_LABEL.to_owned(), s.run_id.clone()),
            (
                "app.kubernetes.io/component".to_owned(),
                "load-generator".to_owned(),
            ),
        ]),
    };
    let (affinity, spread) = if s.one_per_node {
        (
            Some(Affinity {
                pod_anti_affinity: PodAntiAffinity {
                    required: vec![PodAffinityTerm {
                        label_selector: selector,
                        topology_key: "kubernetes.io/hostname",
                    }],
                },
            }),
            Vec::new(),
        )
    } else {
        (
            None,
            vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname",
                when_unsatisfiable: "DoNotSchedule",
                label_selector: selector,
                node_taints_policy: "Honor",
            }],
        )
    };

    let mut items = Vec::new();
    let mut absolute = Vec::new();
    for f in &bundle.files {
        match &f.mount {
            Mount::Bundle(path) => items.push(KeyToPath {
                key: f.key.clone(),
                path: path.clone(),
            }),
            Mount::Absolute(path) => absolute.push((f.key.clone(), path.clone())),
        }
    }
    let mut volumes = vec![Volume {
        name: "profile".into(),
        config_map: Some(ConfigMapVolume {
            name: config_map_name(&s.run_id),
            items,
        }),
        persistent_volume_claim: None,
    }];
    let mut mounts = vec![VolumeMount {
        name: "profile".into(),
        mount_path: BUNDLE_DIR.into(),
        sub_path: None,
        read_only: true,
    }];
    if !absolute.is_empty() {
        volumes.push(Volume {
            name: "profile-absolute".into(),
            config_map: Some(ConfigMapVolume {
                name: config_map_name(&s.run_id),
                items: absolute
                    .iter()
                    .map(|(key, _)| KeyToPath {
                        key: key.clone(),
                        path: key.clone(),
                    })
                    .collect(),
            }),
            persistent_volume_claim: None,
        });
        for (key, path) in &absolute {
            mounts.push(VolumeMount {
                name: "profile-absolute".into(),
                mount_path: path.clone(),
                sub_path: Some(key.clone()),
                read_only: true,
            });
        }
    }
    volumes.push(results_volume(&s.claim, false));
    mounts.push(VolumeMount {
        name: "results".into(),
        mount_path: RESULTS_DIR.into(),
        sub_path: None,
        read_only: false,
    });

    let mut security = pod_security(s);
    // Each user holds a connection; the widest safe range gives a pod 64 512 ports per target.
    security.sysctls.push(Sysctl {
        name: "net.ipv4.ip_local_port_range".into(),
        value: "1024 65535".into(),
    });
    let resources = quantities(s.cores.to_string(), format!("{}Mi", s.memory_mib));

    Job {
        api_version: "batch/v1",
        kind: "Job",
        metadata: meta(s, job_name(&s.run_id), "load-generator"),
        spec: JobSpec {
            completion_mode: Some("Indexed"),
            completions: s.shards,
            parallelism: s.shards,
            backoff_limit: None,
            // A shard that fails is not run again: a second attempt would send its share of the load
            // twice. The other shards go on; the Job then ends Failed, listing the failed indexes.
            backoff_limit_per_index: Some(0),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![
                    PodFailurePolicyRule {
                        action: "FailIndex",
                        on_exit_codes: None,
                        on_pod_conditions: vec![OnPodCondition {
                            condition: "DisruptionTarget",
                            status: "True",
                        }],
                    },
                    PodFailurePolicyRule {
                        action: "FailIndex",
                        on_exit_codes: Some(OnExitCodes {
                            container_name: CONTAINER.into(),
                            operator: "NotIn",
                            values: vec![0],
                        }),
                        on_pod_conditions: Vec::new(),
                    },
                ],
            }),
            active_deadline_seconds: s.deadline_s,
            ttl_seconds_after_finished: s.ttl_s,
            template: PodTemplate {
                metadata: ObjectMeta {
                    labels: pod_labels,
                    ..ObjectMeta::default()
                },
                spec: PodSpec {
                    restart_policy: "Never",
                    automount_service_account_token: false,
                    enable_service_links: false,
                    termination_grace_period_seconds: Some(30),
                    security_context: security,
                    node_selector: s.node_selector.clone(),
                    tolerations: s.tolerations.clone(),
                    affinity,
                    topology_spread_constraints: spread,
                    containers: vec![Container {
                        name: CONTAINER.into(),
                        image: s.image.clone(),
                        command: Vec::new(),
                        args: engine_args(s, bundle),
                        env: Vec::new(),
                        env_from: s
                            .secrets
                            .iter()
                            .map(|name| EnvFrom {
                                secret_ref: NameRef { name: name.clone() },
                            })
                            .collect(),
                        resources: Resources {
                            requests: resources.clone(),
                            limits: resources,
                        },
                        volume_mounts: mounts,
                        security_context: container_security(),
                    }],
                    volumes,
                },
            },
        },
    }
}

/// A pod that mounts the results read-only and waits, so that `kubectl exec` can copy a run out
/// after the shards are gone. It ends by itself when the shards' Job would have been deleted.
fn collector_job(s: &Settings, image: &str) -> Job {
    let wait_s = s.deadline_s + s.ttl_s;
    let resources = quantities("50m".into(), "32Mi".into());
    Job {
        api_version: "batch/v1",
        kind: "Job",
        metadata: meta(s, collector_name(&s.run_id), "collector"),
        spec: JobSpec {
            completion_mode: None,
            completions: 1,
            parallelism: 1,
            backoff_limit: Some(0),
            backoff_limit_per_index: None,
            pod_failure_policy: None,
            active_deadline_seconds: wait_s + 60,
            ttl_seconds_after_finished: 60,
            template: PodTemplate {
                metadata: ObjectMeta {
                    labels: labels(s, "collector"),
                    ..ObjectMeta::default()
                },
                spec: PodSpec {
                    restart_policy: "Never",
                    automount_service_account_token: false,
                    enable_service_links: false,
                    termination_grace_period_seconds: Some(5),
                    security_context: pod_security(s),
                    node_selector: s.node_selector.clone(),
                    tolerations: s.tolerations.clone(),
                    affinity: None,
                    topology_spread_constraints: Vec::new(),
                    containers: vec![Container {
                        name: "collector".into(),
                        image: image.to_owned(),
                        command: vec!["sleep".into(), wait_s.to_string()],
                        args: Vec::new(),
                        env: Vec::new(),
                        env_from: Vec::new(),
                        resources: Resources {
                            requests: resources.clone(),
                            limits: resources,
                        },
                        volume_mounts: vec![VolumeMount {
                            name: "results".into(),
                            mount_path: RESULTS_DIR.into(),
                            sub_path: None,
                            read_only: true,
                        }],
                        security_context: container_security(),
                    }],
                    volumes: vec![results_volume(&s.claim, true)],
                },
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::bundle::BundleFile;

    fn settings() -> Settings {
        Settings {
            run_id: "r1".into(),
            profile_name: "p".into(),
            namespace: None,
            shards: 2,
            cores: 1,
            memory_mib: 256,
            image: "img".into(),
            collector_image: None,
            start_at: "2026-11-27T10:00:00Z".into(),
            deadline_s: 600,
            ttl_s: 3600,
            claim: "results".into(),
            create_claim: None,
            engine_args: Vec::new(),
            seccomp: Seccomp::RuntimeDefault,
            one_per_node: false,
            node_selector: Labels::new(),
            tolerations: Vec::new(),
            secrets: Vec::new(),
        }
    }

    #[test]
    fn text_files_go_in_data_and_others_in_binary_data() {
        let file = |key: &str, bytes: &[u8]| BundleFile {
            key: key.into(),
            mount: Mount::Bundle(key.into()),
            source: key.into(),
            bytes: bytes.to_vec(),
        };
        let bundle = Bundle {
            files: vec![
                file("p.ron", b"(name: \"p\")\n"),
                file("latin1.csv", b"name\ncaf\xe9\n"),
            ],
            profile_in_pod: format!("{BUNDLE_DIR}/p.ron"),
            notes: Vec::new(),
        };
        let cm = config_map(&settings(), &bundle);
        assert_eq!(cm.data["p.ron"], "(name: \"p\")\n");
        assert!(!cm.data.contains_key("latin1.csv"));
        assert_eq!(cm.binary_data["latin1.csv"], "bmFtZQpjYWbpCg==");
        let objects = render(&settings(), &bundle);
        assert_eq!(objects.len(), 2, "no claim, no collector");
        assert_eq!(
            objects.iter().map(Object::describe).collect::<Vec<_>>(),
            ["configmap/stampede-r1-profile", "job/stampede-r1"]
        );
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("shop"), "shop");
        assert_eq!(label_value("My shop: checkout!"), "My-shop--checkout");
        assert_eq!(label_value(&"x".repeat(100)).len(), 63);
        assert_eq!(label_value("--"), "");
    }
}
