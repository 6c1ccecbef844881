//! The Kubernetes objects `engine kube` writes, as typed structs with the API's field names.
//!
//! Only the fields we set are here (the `k8s-openapi` crate has them all, at a compile cost the
//! engine does not need; docs/dependencies.md). Field order is the order of declaration, which is
//! the order the YAML shows. CI checks the output against the Kubernetes API's schemas
//! (`scripts/validate-kube.sh`).

use std::collections::BTreeMap;

use serde::Serialize;

/// Labels or annotations.
pub type Labels = BTreeMap<String, String>;

/// `metadata`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object's name (absent in a pod template).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Absent: `kubectl`'s current namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    /// Annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: Labels,
}

/// One document of the output.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// The profile and its data files.
    ConfigMap(ConfigMap),
    /// The results volume, when `engine kube` creates it.
    Pvc(PersistentVolumeClaim),
    /// The shards, or the collector.
    Job(Box<Job>),
}

impl Object {
    /// `kind/name`, as `kubectl` prints it.
    pub fn describe(&self) -> String {
        let (kind, meta) = match self {
            Object::ConfigMap(c) => (c.kind, &c.metadata),
            Object::Pvc(p) => (p.kind, &p.metadata),
            Object::Job(j) => (j.kind, &j.metadata),
        };
        format!(
            "{}/{}",
            kind.to_ascii_lowercase(),
            meta.name.as_deref().unwrap_or_default()
        )
    }
}

/// A ConfigMap.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    /// `v1`.
    pub api_version: &'static str,
    /// `ConfigMap`.
    pub kind: &'static str,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// Never changed after creation (a run's inputs are fixed).
    pub immutable: bool,
    /// UTF-8 files.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Other files, base64.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: BTreeMap<String, String>,
}

/// A PersistentVolumeClaim.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaim {
    /// `v1`.
    pub api_version: &'static str,
    /// `PersistentVolumeClaim`.
    pub kind: &'static str,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// Access mode, size and class.
    pub spec: PvcSpec,
}

/// `PersistentVolumeClaim.spec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PvcSpec {
    /// `ReadWriteMany`.
    pub access_modes: Vec<String>,
    /// `requests.storage`.
    pub resources: StorageRequest,
    /// Absent: the cluster's default class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// `resources` of a claim.
#[derive(Debug, Clone, Serialize)]
pub struct StorageRequest {
    /// `storage: <size>`.
    pub requests: BTreeMap<String, String>,
}

/// A batch/v1 Job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// `batch/v1`.
    pub api_version: &'static str,
    /// `Job`.
    pub kind: &'static str,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// The Job's settings.
    pub spec: JobSpec,
}

/// `Job.spec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// `Indexed`: each pod gets `JOB_COMPLETION_INDEX`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_mode: Option<&'static str>,
    /// Pods that must succeed.
    pub completions: u32,
    /// Pods at once.
    pub parallelism: u32,
    /// Retries of the whole Job (absent with a per-index limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<u32>,
    /// Retries of each index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_limit_per_index: Option<u32>,
    /// Which pod failures do what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_failure_policy: Option<PodFailurePolicy>,
    /// The Job's whole life, from its start, in seconds; then its pods are stopped and it fails.
    pub active_deadline_seconds: u64,
    /// Delete the Job and its pods this long after it finishes.
    pub ttl_seconds_after_finished: u64,
    /// The pods.
    pub template: PodTemplate,
}

/// `podFailurePolicy`.
#[derive(Debug, Clone, Serialize)]
pub struct PodFailurePolicy {
    /// Checked in order; the first match decides.
    pub rules: Vec<PodFailurePolicyRule>,
}

/// One rule.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodFailurePolicyRule {
    /// `FailIndex`, `FailJob`, `Ignore` or `Count`.
    pub action: &'static str,
    /// Matches the container's exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_exit_codes: Option<OnExitCodes>,
    /// Matches a pod condition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_pod_conditions: Vec<OnPodCondition>,
}

/// `onExitCodes`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnExitCodes {
    /// The container.
    pub container_name: String,
    /// `In` or `NotIn`.
    pub operator: &'static str,
    /// Exit codes.
    pub values: Vec<i32>,
}

/// `onPodConditions`.
#[derive(Debug, Clone, Serialize)]
pub struct OnPodCondition {
    /// e.g. `DisruptionTarget`.
    #[serde(rename = "type")]
    pub condition: &'static str,
    /// `True`.
    pub status: &'static str,
}

/// `template`.
#[derive(Debug, Clone, Serialize)]
pub struct PodTemplate {
    /// Labels (no name).
    pub metadata: ObjectMeta,
    /// The pod.
    pub spec: PodSpec,
}

/// `PodSpec`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// `Never`: a failed engine is never restarted in place.
    pub restart_policy: &'static str,
    /// No API token in the pod: the engine does not talk to Kubernetes.
    pub automount_service_account_token: bool,
    /// No `*_SERVICE_HOST` variables for every service in the namespace.
    pub enable_service_links: bool,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u64>,
    /// Pod-wide security settings.
    pub security_context: PodSecurityContext,
    /// Nodes by label.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: Labels,
    /// Taints tolerated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Anti-affinity, with `--one-per-node`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Even spread over nodes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// The engine (one container).
    pub containers: Vec<Container>,
    /// The profile and the results.
    pub volumes: Vec<Volume>,
}

/// `PodSecurityContext`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    /// Refuse to start as root.
    pub run_as_non_root: bool,
    /// The image's user.
    pub run_as_user: u32,
    /// Its group.
    pub run_as_group: u32,
    /// Group ownership of volumes that support it, so the user can write results.
    pub fs_group: u32,
    /// The seccomp profile.
    pub seccomp_profile: SeccompProfile,
    /// Namespaced sysctls.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<Sysctl>,
}

/// `seccompProfile`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    /// `RuntimeDefault`, `Unconfined` or `Localhost`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// With `Localhost`: the profile's path under the kubelet's seccomp directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

/// A sysctl.
#[derive(Debug, Clone, Serialize)]
pub struct Sysctl {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A toleration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Toleration {
    /// The taint's key.
    pub key: String,
    /// `Equal` (with a value) or `Exists`.
    pub operator: &'static str,
    /// The taint's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; absent: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

/// `affinity`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    /// Pod anti-affinity.
    pub pod_anti_affinity: PodAntiAffinity,
}

/// `podAntiAffinity`.
#[derive(Debug, Clone, Serialize)]
pub struct PodAntiAffinity {
    /// Hard rules.
    #[serde(rename = "requiredDuringSchedulingIgnoredDuringExecution")]
    pub required: Vec<PodAffinityTerm>,
}

/// One anti-affinity term.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodAffinityTerm {
    /// The pods to keep away from.
    pub label_selector: LabelSelector,
    /// The node label that defines "the same place".
    pub topology_key: &'static str,
}

/// `labelSelector`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must all match.
    pub match_labels: Labels,
}

/// `topologySpreadConstraints[]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopologySpreadConstraint {
    /// Largest allowed difference in pod count between nodes.
    pub max_skew: u32,
    /// The node label that defines a domain.
    pub topology_key: &'static str,
    /// `DoNotSchedule` or `ScheduleAnyway`.
    pub when_unsatisfiable: &'static str,
    /// The pods counted.
    pub label_selector: LabelSelector,
    /// `Honor`: nodes whose taints the pods do not tolerate are not counted as places to fill.
    pub node_taints_policy: &'static str,
}

/// A container.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Its name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// Replaces the image's entrypoint (the collector's `sleep`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the entrypoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Environment variables from Secrets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFrom>,
    /// Requests and limits.
    pub resources: Resources,
    /// Mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Container security settings.
    pub security_context: ContainerSecurityContext,
}

/// An environment variable.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// `envFrom[]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvFrom {
    /// A Secret whose keys become variables.
    pub secret_ref: NameRef,
}

/// A reference by name.
#[derive(Debug, Clone, Serialize)]
pub struct NameRef {
    /// The object's name.
    pub name: String,
}

/// `resources`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resources {
    /// What the scheduler reserves.
    pub requests: BTreeMap<String, String>,
    /// What the pod may use.
    pub limits: BTreeMap<String, String>,
}

/// A volume mount.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume.
    pub name: String,
    /// Where.
    pub mount_path: String,
    /// One file of the volume instead of all of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// Read-only.
    pub read_only: bool,
}

/// `securityContext` of a container.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSecurityContext {
    /// No setuid binaries gaining privileges.
    pub allow_privilege_escalation: bool,
    /// The engine writes only to the results volume.
    pub read_only_root_filesystem: bool,
    /// Capabilities.
    pub capabilities: Capabilities,
}

/// `capabilities`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capabilities {
    /// Dropped.
    pub drop: Vec<String>,
}

/// A volume.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Its name in the pod.
    pub name: String,
    /// From a ConfigMap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolume>,
    /// From a claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<ClaimVolume>,
}

/// `configMap` volume source.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapVolume {
    /// The ConfigMap.
    pub name: String,
    /// Keys and the paths they appear at.
    pub items: Vec<KeyToPath>,
}

/// `items[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyToPath {
    /// The ConfigMap key.
    pub key: String,
    /// The relative path in the volume.
    pub path: String,
}

/// `persistentVolumeClaim` volume source.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimVolume {
    /// The claim.
    pub claim_name: String,
    /// Read-only.
    pub read_only: bool,
}
