//! Rendering of the per-instance bundle and of the Workflows, from typed Kubernetes objects,
//! exactly as `argo/README.md` §1 (start) and §2 (build) specify. Pure functions.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, LocalObjectReference, Namespace,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext,
    Service, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::domain::instance_names::{is_dns_label, team_label};
use crate::runtime::{BuildSpec, InstanceSpec, KubernetesConfig, RuntimeError};

/// Name of the Service, the Job and the container inside an instance namespace.
pub(super) const OBJECT_NAME: &str = "challenge";
/// The pull secret copied into instance namespaces.
pub(super) const PULL_SECRET: &str = "fctf-registry-pull";
/// Label keys.
pub(super) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub(super) const KIND: &str = "ctf/kind";
pub(super) const INSTANCE: &str = "ctf/instance";
pub(super) const TEAM: &str = "ctf/team";
pub(super) const CHALLENGE: &str = "ctf/challenge";
/// `ctf/kind` values.
pub(super) const KIND_CHALLENGE: &str = "challenge";
pub(super) const KIND_START: &str = "challenge-start";
pub(super) const KIND_BUILD: &str = "challenge-build";
/// Argo's label on Workflows its controller finished.
pub(super) const COMPLETED: &str = "workflows.argoproj.io/completed";
/// Environment variables the runtime sets itself (a challenge's own values are dropped).
const RESERVED_ENV: [&str; 6] = ["PORT", "HOST", "FLAG", "FCTF_INSTANCE_ID", "FCTF_TEAM_ID", "FCTF_CHALLENGE_ID"];
/// Defaults when a challenge sets no resources.
const DEFAULT_CPU_MILLIS: u32 = 300;
const DEFAULT_MEMORY_MIB: u32 = 256;

/// The label selector of an instance's objects.
pub(super) fn instance_selector(instance_id: crate::domain::InstanceId) -> String {
    format!("{KIND}={KIND_CHALLENGE},{INSTANCE}={instance_id}")
}

/// The label selector of start Workflows not yet completed (the global cap).
pub(super) fn in_flight_selector() -> String {
    format!("{KIND}={KIND_START},{COMPLETED}!=true")
}

/// The upstream the gateway dials for an instance.
pub(super) fn upstream(namespace: &str, port: i32) -> String {
    format!("{OBJECT_NAME}.{namespace}.svc:{port}")
}

fn common_labels(spec: &InstanceSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_owned(), "fctf".to_owned()),
        (KIND.to_owned(), KIND_CHALLENGE.to_owned()),
        (INSTANCE.to_owned(), spec.instance_id.to_string()),
        (TEAM.to_owned(), team_label(spec.team_id)),
        (CHALLENGE.to_owned(), spec.challenge_id.to_string()),
    ])
}

fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn selector(spec: &InstanceSpec) -> BTreeMap<String, String> {
    BTreeMap::from([(INSTANCE.to_owned(), spec.instance_id.to_string())])
}

fn match_labels(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector { match_labels: Some(labels), ..LabelSelector::default() }
}

fn port(protocol: &str, port: i32, end_port: Option<i32>) -> NetworkPolicyPort {
    NetworkPolicyPort { protocol: Some(protocol.to_owned()), port: Some(IntOrString::Int(port)), end_port }
}

fn policy(spec: &InstanceSpec, name: &str, body: NetworkPolicySpec) -> NetworkPolicy {
    NetworkPolicy { metadata: meta(name, Some(&spec.name), common_labels(spec)), spec: Some(body) }
}

/// The instance's Namespace.
pub fn namespace(spec: &InstanceSpec) -> Namespace {
    let mut labels = common_labels(spec);
    let level = if spec.container.hardened { "restricted" } else { "baseline" };
    labels.insert("pod-security.kubernetes.io/enforce".to_owned(), level.to_owned());
    labels.insert("pod-security.kubernetes.io/enforce-version".to_owned(), "latest".to_owned());
    Namespace { metadata: meta(&spec.name, None, labels), ..Namespace::default() }
}

fn service(spec: &InstanceSpec, port_number: i32) -> Service {
    Service {
        metadata: meta(OBJECT_NAME, Some(&spec.name), common_labels(spec)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector(spec)),
            ports: Some(vec![ServicePort {
                name: Some(OBJECT_NAME.to_owned()),
                protocol: Some("TCP".to_owned()),
                port: port_number,
                target_port: Some(IntOrString::Int(port_number)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn policies(spec: &InstanceSpec, cfg: &KubernetesConfig, port_number: i32) -> Vec<NetworkPolicy> {
    let by_name = |namespace: &str| {
        Some(match_labels(BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), namespace.to_owned())])))
    };
    let mut policies = vec![
        policy(
            spec,
            "default-deny",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            spec,
            "allow-gateway",
            NetworkPolicySpec {
                pod_selector: Some(match_labels(selector(spec))),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: by_name(&cfg.platform_namespace),
                        pod_selector: Some(match_labels(BTreeMap::from([(
                            "fctf.dev/role-gateway".to_owned(),
                            "true".to_owned(),
                        )]))),
                        ip_block: None,
                    }]),
                    ports: Some(vec![port("TCP", port_number, None)]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            spec,
            "allow-cluster-dns",
            NetworkPolicySpec {
                pod_selector: Some(match_labels(selector(spec))),
                policy_types: Some(vec!["Egress".to_owned()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        namespace_selector: by_name("kube-system"),
                        pod_selector: Some(match_labels(BTreeMap::from([(
                            "k8s-app".to_owned(),
                            "kube-dns".to_owned(),
                        )]))),
                        ip_block: None,
                    }]),
                    ports: Some(vec![port("UDP", 53, None), port("TCP", 53, None)]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
    ];
    if cfg.internet_egress {
        let block = |cidr: &str, except: &[&str]| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.to_owned(),
                except: Some(except.iter().map(|range| (*range).to_owned()).collect()),
            }),
            ..NetworkPolicyPeer::default()
        };
        policies.push(policy(
            spec,
            "allow-internet",
            NetworkPolicySpec {
                pod_selector: Some(match_labels(selector(spec))),
                policy_types: Some(vec!["Egress".to_owned()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![
                        block(
                            "0.0.0.0/0",
                            &[
                                "10.0.0.0/8",
                                "100.64.0.0/10",
                                "127.0.0.0/8",
                                "169.254.0.0/16",
                                "172.16.0.0/12",
                                "192.168.0.0/16",
                            ],
                        ),
                        block("::/0", &["::1/128", "fc00::/7", "fe80::/10"]),
                    ]),
                    ports: Some(vec![
                        port("TCP", 1, Some(52)),
                        port("TCP", 54, Some(65535)),
                        port("UDP", 1, Some(52)),
                        port("UDP", 54, Some(65535)),
                    ]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ));
    }
    policies
}

fn environment(spec: &InstanceSpec, port_number: i32) -> Vec<EnvVar> {
    let var = |name: &str, value: String| EnvVar { name: name.to_owned(), value: Some(value), value_from: None };
    let mut env = vec![var("PORT", port_number.to_string()), var("HOST", "0.0.0.0".to_owned())];
    if let Some(flag) = &spec.flag {
        env.push(var("FLAG", flag.clone()));
    }
    env.push(var("FCTF_INSTANCE_ID", spec.instance_id.to_string()));
    env.push(var("FCTF_TEAM_ID", spec.team_id.to_string()));
    env.push(var("FCTF_CHALLENGE_ID", spec.challenge_id.to_string()));
    for (name, value) in &spec.env {
        if !RESERVED_ENV.contains(&name.as_str()) {
            env.push(var(name, value.clone()));
        }
    }
    env
}

fn resources(spec: &InstanceSpec) -> ResourceRequirements {
    let settings = &spec.container;
    let cpu_limit = settings.cpu_limit_millis.unwrap_or(DEFAULT_CPU_MILLIS);
    let cpu_request = settings.cpu_request_millis.unwrap_or(cpu_limit);
    let memory_limit = settings.memory_limit_mib.unwrap_or(DEFAULT_MEMORY_MIB);
    let memory_request = settings.memory_request_mib.unwrap_or(memory_limit);
    let quantity = |text: String| Quantity(text);
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity(format!("{cpu_request}m"))),
            ("memory".to_owned(), quantity(format!("{memory_request}Mi"))),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity(format!("{cpu_limit}m"))),
            ("memory".to_owned(), quantity(format!("{memory_limit}Mi"))),
            ("ephemeral-storage".to_owned(), quantity("256Mi".to_owned())),
        ])),
        ..ResourceRequirements::default()
    }
}

fn job(spec: &InstanceSpec, cfg: &KubernetesConfig, image: &str, port_number: i32) -> Job {
    let hardened = spec.container.hardened;
    let mut pod_labels = common_labels(spec);
    pod_labels.insert("app.kubernetes.io/name".to_owned(), OBJECT_NAME.to_owned());
    let container = Container {
        name: OBJECT_NAME.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        ports: Some(vec![ContainerPort {
            name: Some(OBJECT_NAME.to_owned()),
            container_port: port_number,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env: Some(environment(spec, port_number)),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(port_number), host: None }),
            period_seconds: Some(2),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        resources: Some(resources(spec)),
        security_context: hardened.then(|| SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), add: None }),
            ..SecurityContext::default()
        }),
        volume_mounts: hardened.then(|| {
            vec![VolumeMount { name: "tmp".to_owned(), mount_path: "/tmp".to_owned(), ..VolumeMount::default() }]
        }),
        ..Container::default()
    };
    let pod = PodSpec {
        restart_policy: Some("Never".to_owned()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        priority_class_name: Some("fctf-challenge".to_owned()),
        termination_grace_period_seconds: Some(5),
        runtime_class_name: spec.container.gvisor.then(|| "gvisor".to_owned()),
        image_pull_secrets: cfg.copy_pull_secret.then(|| vec![LocalObjectReference { name: PULL_SECRET.to_owned() }]),
        security_context: hardened.then(|| PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }),
            ..PodSecurityContext::default()
        }),
        volumes: hardened.then(|| {
            vec![Volume {
                name: "tmp".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".to_owned()),
                    size_limit: Some(Quantity("64Mi".to_owned())),
                }),
                ..Volume::default()
            }]
        }),
        containers: vec![container],
        ..PodSpec::default()
    };
    Job {
        metadata: meta(OBJECT_NAME, Some(&spec.name), common_labels(spec)),
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(i64::try_from(spec.max_lifetime_secs.max(1)).unwrap_or(i64::MAX)),
            ttl_seconds_after_finished: Some(300),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// The namespaced objects of the bundle, in the contract's order.
pub fn manifests(spec: &InstanceSpec, cfg: &KubernetesConfig) -> Result<Vec<Value>, RuntimeError> {
    let (image, port_number) = validate(spec)?;
    let mut objects = vec![to_value(&service(spec, port_number))?];
    for policy in policies(spec, cfg, port_number) {
        objects.push(to_value(&policy)?);
    }
    objects.push(to_value(&job(spec, cfg, image, port_number))?);
    Ok(objects)
}

/// The start Workflow of an instance.
pub fn start_workflow(spec: &InstanceSpec, cfg: &KubernetesConfig) -> Result<Value, RuntimeError> {
    let manifests = manifests(spec, cfg)?;
    let namespace_manifest = to_compact(&to_value(&namespace(spec))?)?;
    let manifests = to_compact(&Value::Array(manifests))?;
    Ok(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": format!("start-{}", spec.instance_id),
            "namespace": cfg.argo_namespace,
            "labels": {
                MANAGED_BY: "fctf",
                KIND: KIND_START,
                INSTANCE: spec.instance_id.to_string(),
                TEAM: team_label(spec.team_id),
                CHALLENGE: spec.challenge_id.to_string(),
            },
        },
        "spec": {
            "workflowTemplateRef": {"name": cfg.start_template},
            "arguments": {"parameters": [
                {"name": "instance_id", "value": spec.instance_id.to_string()},
                {"name": "namespace", "value": spec.name},
                {"name": "namespace_manifest", "value": namespace_manifest},
                {"name": "manifests", "value": manifests},
                {"name": "copy_pull_secret", "value": cfg.copy_pull_secret.to_string()},
            ]},
        },
    }))
}

/// The build Workflow of an image, named `build-<challenge>-<unix seconds>`.
pub fn build_workflow(spec: &BuildSpec, cfg: &KubernetesConfig, now: i64) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": format!("build-{}-{now}", spec.challenge_id),
            "namespace": cfg.argo_namespace,
            "labels": {
                MANAGED_BY: "fctf",
                KIND: KIND_BUILD,
                CHALLENGE: spec.challenge_id.to_string(),
            },
        },
        "spec": {
            "workflowTemplateRef": {"name": cfg.build_template},
            "arguments": {"parameters": [
                {"name": "challenge_id", "value": spec.challenge_id.to_string()},
                {"name": "context_url", "value": spec.context_url},
                {"name": "image", "value": spec.image},
                {"name": "dockerfile", "value": spec.dockerfile.as_deref().unwrap_or("Dockerfile")},
                {"name": "callback_url", "value": spec.callback_url},
            ]},
        },
    })
}

fn validate(spec: &InstanceSpec) -> Result<(&str, i32), RuntimeError> {
    if !is_dns_label(&spec.name) {
        return Err(RuntimeError::InvalidSpec(format!("{:?} is not a valid namespace name", spec.name)));
    }
    let image = spec
        .image
        .as_deref()
        .filter(|image| !image.trim().is_empty())
        .ok_or_else(|| RuntimeError::InvalidSpec("the kubernetes runtime needs a container image".to_owned()))?;
    if spec.port == 0 {
        return Err(RuntimeError::InvalidSpec("the kubernetes runtime needs the challenge's exposed port".to_owned()));
    }
    Ok((image, i32::from(spec.port)))
}

fn to_value<T: serde::Serialize>(object: &T) -> Result<Value, RuntimeError> {
    serde_json::to_value(object).map_err(|error| RuntimeError::Other(format!("cannot render a manifest: {error}")))
}

fn to_compact(value: &Value) -> Result<String, RuntimeError> {
    serde_json::to_string(value).map_err(|error| RuntimeError::Other(format!("cannot render a manifest: {error}")))
}
