//! The Kubernetes example under `examples/kubernetes/` and the image it runs
//! (`Dockerfile`): its manifests are valid Kubernetes objects (checked by
//! `kubernetes-validate`, from PyPI, against the Kubernetes API's own
//! schemas, offline); the Prometheus Operator's objects, which those
//! schemas do not cover, are well formed and alert on metrics `watch`
//! serves; and every part refers to what exists: the ConfigMap holds a
//! config set that validates, the container runs a real `watch` on the
//! ConfigMap's mount, the probes, Service, budget and monitoring reach the
//! pods and their port, the Secret holds what the pods read, and the image
//! runs as the user the pods say.
//!
//! Nothing here starts a cluster or builds the image: no cluster and no
//! container registry are reachable where the tests run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use supportctl::cli::{Cli, Command as CliCommand};

use crate::binary::{Scratch, arg, crate_root, run, supportctl};

/// The port `watch --listen ADDR` serves on when ADDR names none.
const DEFAULT_LISTEN_PORT: u16 = 9464;

/// The metrics `watch --listen` serves (issue 20): the only names an alert
/// may use.
const METRICS: [&str; 10] = supportctl::telemetry::metrics::FAMILIES;

/// The histogram among [`METRICS`], whose series carry these suffixes.
const HISTOGRAM: (&str, [&str; 3]) = (
    "supportctl_reconcile_duration_seconds",
    ["_bucket", "_sum", "_count"],
);

/// The Kubernetes versions the built-in objects are checked against: the
/// oldest the example is written for, and the newest whose schemas the
/// pinned kubernetes-validate (`.ci/run`) carries.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// The Prometheus Operator's API group: its objects are custom resources.
const OPERATOR_API: &str = "monitoring.coreos.com/v1";

fn example() -> PathBuf {
    crate_root().join("examples/kubernetes")
}

/// One object of the example: the file it is in (relative to the example's
/// folder) and its content.
struct Object {
    file: String,
    value: Value,
}

impl Object {
    fn kind(&self) -> &str {
        text(&self.value, "/kind")
    }

    fn name(&self) -> &str {
        text(&self.value, "/metadata/name")
    }

    /// Whether the object is one of Kubernetes' own kinds (the core group,
    /// or a group of `*.k8s.io` or without a dot), which the API's schemas
    /// describe, rather than a custom resource.
    fn is_built_in(&self) -> bool {
        match text(&self.value, "/apiVersion").split_once('/') {
            None => true,
            Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
        }
    }
}

/// Every object of the example: each document of each `*.yaml` under its
/// folder but the kustomizations (which are kustomize's, not the API's).
fn objects() -> Vec<Object> {
    let root = example();
    let mut objects = Vec::new();
    for file in yaml_files(&root) {
        if file.file_name().is_some_and(|n| n == "kustomization.yaml") {
            continue;
        }
        let relative = file
            .strip_prefix(&root)
            .expect("under the example")
            .to_str()
            .expect("a UTF-8 name")
            .to_owned();
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"));
        for value in documents.into_iter().filter(|v| !v.is_null()) {
            objects.push(Object {
                file: relative.clone(),
                value,
            });
        }
    }
    objects
}

/// The `*.yaml` files under `dir`, at any depth, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a readable folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The one object of `kind` (named `name` when given); fails unless there is
/// exactly one.
#[track_caller]
fn the<'a>(objects: &'a [Object], kind: &str, name: Option<&str>) -> &'a Value {
    let found: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind() == kind && name.is_none_or(|n| o.name() == n))
        .collect();
    match found.as_slice() {
        [one] => &one.value,
        _ => panic!(
            "expected one {kind}{} in the example, found {}",
            name.map_or(String::new(), |n| format!(" named `{n}`")),
            found.len()
        ),
    }
}

/// The value at a JSON pointer; fails, naming it, when there is none.
#[track_caller]
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no `{pointer}` in {value:#}"))
}

/// The string at a JSON pointer.
#[track_caller]
fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    at(value, pointer)
        .as_str()
        .unwrap_or_else(|| panic!("`{pointer}` is not a string in {value:#}"))
}

/// The list at a JSON pointer (empty when there is none).
fn list<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A map of strings (labels, a selector's `matchLabels`).
#[track_caller]
fn labels(value: &Value, pointer: &str) -> BTreeMap<String, String> {
    let map = at(value, pointer)
        .as_object()
        .unwrap_or_else(|| panic!("`{pointer}` is not a map"));
    map.iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("`{pointer}/{k}` is not a string"));
            (k.clone(), v.to_owned())
        })
        .collect()
}

/// Asserts that `selector` is not empty and selects pods labelled `pod`.
#[track_caller]
fn assert_selects(what: &str, selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) {
    assert!(!selector.is_empty(), "{what} selects every pod");
    for (key, value) in selector {
        assert_eq!(
            pod.get(key),
            Some(value),
            "{what} selects `{key}: {value}`, which the Deployment's pods do not carry ({pod:?})"
        );
    }
}

/// The Deployment's pod template, and its one container (`watch`).
fn pod_and_container(objects: &[Object]) -> (&Value, &Value) {
    let deployment = the(objects, "Deployment", None);
    let pod = at(deployment, "/spec/template");
    let containers = list(pod, "/spec/containers");
    assert_eq!(containers.len(), 1, "one container in the pod");
    (pod, &containers[0])
}

/// The container's arguments, as strings.
fn container_args(container: &Value) -> Vec<String> {
    list(container, "/args")
        .iter()
        .map(|a| a.as_str().expect("every argument is a string").to_owned())
        .collect()
}

/// The value given to `--flag` in `args` (`--flag=VALUE` or `--flag VALUE`).
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if let Some(value) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            Some(value)
        } else if a == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

/// The flags `supportctl watch --help` lists, `--db` to `--version`.
fn watch_flags() -> BTreeSet<String> {
    let help = run(&mut supportctl(&crate_root(), ["watch", "--help"])).expect(0);
    help.stdout
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '`' | '(' | ')'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| {
            word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_owned()
        })
        .collect()
}

/// The port of the `--listen` address (`HOST:PORT`, `[V6]:PORT`, or a host
/// alone for the default port).
fn listen_port(address: &str) -> u16 {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => port
            .parse()
            .unwrap_or_else(|e| panic!("--listen={address}: the port: {e}")),
        _ => DEFAULT_LISTEN_PORT,
    }
}

/// Whether this runs in CI, as the PostgreSQL harness decides it: `CI` set
/// to anything but empty, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// `kubernetes-validate`: `SUPPORTCTL_TEST_KUBERNETES_VALIDATE`, else the
/// one `.ci/run` installs in `target/tools/venv`, else on `PATH`.
fn kubernetes_validate() -> Option<PathBuf> {
    if let Some(given) =
        std::env::var_os("SUPPORTCTL_TEST_KUBERNETES_VALIDATE").filter(|v| !v.is_empty())
    {
        let given = PathBuf::from(given);
        assert!(
            given.is_file(),
            "SUPPORTCTL_TEST_KUBERNETES_VALIDATE={} is not a file",
            given.display()
        );
        return Some(given);
    }
    let installed = crate_root().join("target/tools/venv/bin/kubernetes-validate");
    if installed.is_file() {
        return Some(installed);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("kubernetes-validate"))
        .find(|path| path.is_file())
}

/// Every built-in object passes kubernetes-validate's strict check (no
/// field the API does not know, every type right) for each of
/// [`KUBERNETES_VERSIONS`]: the tool's own line for each object and
/// version says so, so a file it skipped cannot pass unnoticed. The
/// Prometheus Operator's objects, which its schemas do not cover, are not
/// given to it (see [`the_monitoring_objects_are_well_formed`]).
#[test]
fn the_manifests_are_valid_kubernetes_objects() {
    let Some(tool) = kubernetes_validate() else {
        assert!(
            !in_ci(),
            "kubernetes-validate is needed and CI is set: .ci/run installs it in \
             target/tools/venv (or set SUPPORTCTL_TEST_KUBERNETES_VALIDATE)"
        );
        eprintln!(
            "skipping the Kubernetes schema check: no kubernetes-validate (`.ci/run` installs \
             it in target/tools/venv; or set SUPPORTCTL_TEST_KUBERNETES_VALIDATE)"
        );
        return;
    };
    let objects = objects();
    let built_in: Vec<&Object> = objects.iter().filter(|o| o.is_built_in()).collect();
    let files: BTreeSet<&str> = built_in.iter().map(|o| o.file.as_str()).collect();
    for object in objects.iter().filter(|o| !o.is_built_in()) {
        assert!(
            !files.contains(object.file.as_str()),
            "{} mixes built-in objects with the custom resource {}: keep them apart",
            object.file,
            object.kind()
        );
    }
    let kinds: BTreeSet<&str> = built_in.iter().map(|o| o.kind()).collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "the example has no {kind}");
    }

    let version = Command::new(&tool).arg("--version").output();
    eprintln!(
        "{} --version: {}",
        tool.display(),
        version.map_or_else(
            |e| e.to_string(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned()
        )
    );
    let mut command = Command::new(&tool);
    command.current_dir(example()).arg("--strict");
    for version in KUBERNETES_VERSIONS {
        command.args(["-k", version]);
    }
    command.args(&files);
    let outcome = run(&mut command);
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    let problems: Vec<&&str> = lines.iter().filter(|l| !l.starts_with("INFO ")).collect();
    assert!(
        outcome.code() == 0 && problems.is_empty(),
        "kubernetes-validate exited {}:\n{}\n{}",
        outcome.code(),
        outcome.stdout,
        outcome.stderr
    );
    for object in &built_in {
        for version in KUBERNETES_VERSIONS {
            let minor = version.rsplit_once('.').expect("MAJOR.MINOR.PATCH").0;
            let passed = format!(
                "INFO {} passed for resource {}/{} against version {minor}",
                object.file,
                object.kind().to_lowercase(),
                object.name()
            );
            assert!(
                lines.contains(&passed.as_str()),
                "kubernetes-validate did not say `{passed}`:\n{}",
                outcome.stdout
            );
        }
    }
}

/// The ServiceMonitor and the PrometheusRule, custom resources of the
/// Prometheus Operator: well formed, in the example's namespace, the
/// monitor on the Service's metrics port, and every alert on metrics that
/// `watch` serves — among them the five the example promises, the one on
/// a missing leader true also when no replica is scraped at all.
#[test]
fn the_monitoring_objects_are_well_formed() {
    let objects = objects();
    let namespace = the(&objects, "Namespace", None);
    let namespace = text(namespace, "/metadata/name");
    let custom: Vec<&Object> = objects.iter().filter(|o| !o.is_built_in()).collect();
    let kinds: BTreeSet<&str> = custom.iter().map(|o| o.kind()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["PrometheusRule", "ServiceMonitor"]),
        "the custom resources of the example"
    );
    for object in &custom {
        assert_eq!(text(&object.value, "/apiVersion"), OPERATOR_API);
        assert!(!object.name().is_empty(), "{}: a name", object.file);
        assert_eq!(
            text(&object.value, "/metadata/namespace"),
            namespace,
            "{}",
            object.file
        );
        assert!(
            object.file.starts_with("monitoring/"),
            "{} is a custom resource: it belongs in monitoring/",
            object.file
        );
    }

    let service = the(&objects, "Service", None);
    let monitor = the(&objects, "ServiceMonitor", None);
    assert_selects(
        "the ServiceMonitor",
        &labels(monitor, "/spec/selector/matchLabels"),
        &labels(service, "/metadata/labels"),
    );
    let names: Vec<&str> = list(monitor, "/spec/namespaceSelector/matchNames")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, [namespace], "the ServiceMonitor's namespaces");
    let port_names: Vec<&str> = list(service, "/spec/ports")
        .iter()
        .map(|p| text(p, "/name"))
        .collect();
    let endpoints = list(monitor, "/spec/endpoints");
    assert!(
        !endpoints.is_empty(),
        "the ServiceMonitor scrapes something"
    );
    for endpoint in endpoints {
        assert!(
            port_names.contains(&text(endpoint, "/port")),
            "the ServiceMonitor scrapes port `{}`, the Service has {port_names:?}",
            text(endpoint, "/port")
        );
        assert_eq!(text(endpoint, "/path"), "/metrics");
    }

    // The series' job is the Service's name (the Operator's default).
    let job = format!("job=\"{}\"", text(service, "/metadata/name"));
    let rule = the(&objects, "PrometheusRule", None);
    let mut alerts = Vec::new();
    for group in list(rule, "/spec/groups") {
        assert!(!text(group, "/name").is_empty());
        for alert in list(group, "/rules") {
            let name = text(alert, "/alert");
            let expr = text(alert, "/expr");
            let wait = alert.pointer("/for").map(|f| {
                let f = f.as_str().expect("`for` is a string");
                assert!(
                    f.len() > 1
                        && f[..f.len() - 1].bytes().all(|b| b.is_ascii_digit())
                        && f.ends_with(['s', 'm', 'h']),
                    "{name}: `for: {f}` is not a duration"
                );
                f.to_owned()
            });
            assert!(
                !text(alert, "/labels/severity").is_empty(),
                "{name}: a severity"
            );
            assert!(
                !text(alert, "/annotations/summary").is_empty(),
                "{name}: a summary"
            );
            assert_balanced(name, expr);
            let used = metric_names(expr);
            assert!(!used.is_empty(), "{name} names no metric of supportctl");
            for metric in &used {
                assert!(
                    served(metric),
                    "{name} uses `{metric}`, which `watch --listen` does not serve"
                );
            }
            assert!(expr.contains(&job), "{name} selects the series of {job}");
            alerts.push((name.to_owned(), expr.to_owned(), wait));
        }
    }
    let names: BTreeSet<&str> = alerts.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names.len(), alerts.len(), "alert names are unique");

    let promised: [Promise; 5] = [
        ("no successful reconcile for 15 minutes", |e, _| {
            e.contains("time() -")
                && e.contains("supportctl_last_success_timestamp_seconds")
                && e.ends_with("> 900")
        }),
        ("the config invalid for 5 minutes", |e, f| {
            e.contains("supportctl_config_valid") && e.ends_with("== 0") && f == Some("5m")
        }),
        (
            "no leader for a minute, also with no series at all",
            |e, f| {
                e.contains("sum by (job) (supportctl_leader")
                    && e.contains("< 1")
                    && (e.contains("absent(supportctl_leader") || e.contains("or vector(0)"))
                    && f == Some("1m")
            },
        ),
        ("more than one leader", |e, _| {
            e.contains("sum by (job) (supportctl_leader") && e.ends_with("> 1")
        }),
        ("reconcile errors rising", |e, _| {
            e.contains("increase(supportctl_reconciles_total") && e.contains("error")
        }),
    ];
    for (what, holds) in promised {
        assert!(
            alerts.iter().any(|(_, e, f)| holds(e, f.as_deref())),
            "no alert on {what} among {alerts:#?}"
        );
    }
}

/// An alert the example promises: what it is about, and whether an
/// expression and its `for` are it.
type Promise = (&'static str, fn(&str, Option<&str>) -> bool);

/// The names of supportctl's metrics in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("supportctl_"))
        .collect()
}

/// Whether `metric` is one of [`METRICS`], or a series of the histogram.
fn served(metric: &str) -> bool {
    METRICS.contains(&metric)
        || HISTOGRAM
            .1
            .iter()
            .any(|suffix| metric.strip_suffix(suffix) == Some(HISTOGRAM.0))
}

/// Asserts that an expression's brackets and quotes pair up.
#[track_caller]
fn assert_balanced(name: &str, expr: &str) {
    let mut open = Vec::new();
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '"' => quoted = !quoted,
            _ if quoted => {}
            '(' | '{' | '[' => open.push(c),
            ')' | '}' | ']' => {
                let want = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                assert_eq!(
                    open.pop(),
                    Some(want),
                    "{name}: `{expr}` has an unpaired `{c}`"
                );
            }
            _ => {}
        }
    }
    assert!(
        open.is_empty() && !quoted,
        "{name}: `{expr}` leaves something open"
    );
}

/// The ConfigMap's config set, laid out as the kubelet mounts it (each key
/// a symlink into `..data`, itself a symlink to a timestamped folder),
/// passes `supportctl validate`, and is the example tenancy: planned
/// against a state that `examples/acme-prod.yaml` was applied to, it
/// changes nothing.
#[test]
fn the_config_map_holds_the_example_tenancy() {
    let objects = objects();
    let config_map = the(&objects, "ConfigMap", None);
    let data = at(config_map, "/data")
        .as_object()
        .expect("the ConfigMap's data is a map");
    assert!(!data.is_empty(), "the ConfigMap holds a config set");

    let world = Scratch::new();
    let mount = world.path("config");
    let generation = "..2026_11_24_09_00_00.1234567890";
    for (key, content) in data {
        assert!(
            key.ends_with(".yaml") || key.ends_with(".yml"),
            "`{key}` is not read by supportctl: a config file ends in .yaml or .yml"
        );
        let content = content.as_str().expect("a ConfigMap's values are strings");
        world.write(&format!("config/{generation}/{key}"), content);
        std::os::unix::fs::symlink(format!("..data/{key}"), mount.join(key))
            .expect("the key's symlink");
    }
    std::os::unix::fs::symlink(generation, mount.join("..data")).expect("the ..data symlink");

    world.ok(&["validate", arg(&mount)]);
    let example = crate_root().join("examples/acme-prod.yaml");
    world.ok(&["apply", "--auto-approve", arg(&example)]);
    let plan = world.run(&["plan", "--detailed-exitcode", arg(&mount)]);
    assert_eq!(
        plan.code(),
        0,
        "the ConfigMap's config set is not the example tenancy:\n{}{}",
        plan.stdout,
        plan.stderr
    );
}

/// The container runs a real `watch`: every flag is one `watch --help`
/// lists, the command line parses, and what it names exists: the watched path is the
/// ConfigMap's mount (a folder, so that `..data` swaps reach it), the
/// `--listen` port is the container's port that the probes ask on
/// `/healthz` and `/readyz`, `XDG_CACHE_HOME` is on an emptyDir under a
/// read-only root, the Secret's keys and its CA file are there, and the
/// pod is locked down, spread over nodes and given the time to hand its
/// lease over.
#[test]
fn the_deployment_runs_watch_on_the_config_map() {
    let objects = objects();
    let deployment = the(&objects, "Deployment", None);
    let replicas = at(deployment, "/spec/replicas").as_u64().expect("replicas");
    assert!(replicas >= 2, "{replicas} replica: no standby to take over");
    let (pod, container) = pod_and_container(&objects);
    assert!(
        container.pointer("/command").is_none(),
        "the image's ENTRYPOINT is supportctl: give only args"
    );
    let args = container_args(container);

    // Every flag exists, and the whole parses as `watch`.
    let known = watch_flags();
    assert!(known.contains("--interval"), "read the help: {known:?}");
    let mut parsed = vec!["supportctl".to_owned()];
    for word in &args {
        let flag = word.split('=').next().unwrap_or(word);
        assert!(
            !flag.starts_with("--") || known.contains(flag),
            "the Deployment runs `watch {flag}`, which `supportctl watch --help` does not list"
        );
        parsed.push(word.clone());
    }
    let cli = Cli::try_parse_from(&parsed)
        .unwrap_or_else(|e| panic!("`{}` does not parse:\n{e}", parsed.join(" ")));
    let CliCommand::Watch(watch) = cli.command else {
        panic!("the container runs `{}`, not `watch`", parsed.join(" "));
    };
    let watched = watch.config.path.to_str().expect("a UTF-8 path");
    // A quiet config set must still succeed more often than the alert on
    // the last success (15 minutes) allows.
    let interval = watch
        .interval
        .expect("an --interval: the last success must stay fresh");
    assert!(
        interval < Duration::from_secs(900),
        "--interval {interval:?}"
    );

    // The watched path is the ConfigMap's mount.
    let config_map = the(&objects, "ConfigMap", None);
    let mounts = list(container, "/volumeMounts");
    let volumes = list(pod, "/spec/volumes");
    let volume = |name: &str| -> &Value {
        volumes
            .iter()
            .find(|v| text(v, "/name") == name)
            .unwrap_or_else(|| panic!("no volume `{name}`"))
    };
    let config_mount = mounts
        .iter()
        .find(|m| text(m, "/mountPath") == watched)
        .unwrap_or_else(|| panic!("nothing is mounted at the watched path {watched}"));
    assert!(
        config_mount.pointer("/subPath").is_none(),
        "a subPath mount never sees the ConfigMap's updates"
    );
    assert_eq!(config_mount.pointer("/readOnly"), Some(&Value::Bool(true)));
    assert_eq!(
        text(volume(text(config_mount, "/name")), "/configMap/name"),
        text(config_map, "/metadata/name"),
        "the watched path holds the ConfigMap"
    );

    // The listen port, the container's port and the probes.
    let listen = flag_value(&args, "--listen").expect("--listen: the probes need it");
    let port = listen_port(listen);
    let container_port = list(container, "/ports")
        .iter()
        .find(|p| at(p, "/containerPort").as_u64() == Some(u64::from(port)))
        .unwrap_or_else(|| panic!("the container declares no port {port} (--listen={listen})"));
    let port_name = text(container_port, "/name");
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        let get = at(container, &format!("/{probe}/httpGet"));
        assert_eq!(text(get, "/path"), path, "{probe}");
        let probed = at(get, "/port");
        assert!(
            probed.as_str() == Some(port_name) || probed.as_u64() == Some(u64::from(port)),
            "{probe} asks on port {probed}, --listen is on {port} (`{port_name}`)"
        );
    }
    assert_eq!(
        text(pod, "/metadata/annotations/prometheus.io~1port"),
        port.to_string()
    );
    assert_eq!(
        text(pod, "/metadata/annotations/prometheus.io~1scrape"),
        "true"
    );

    // The environment: the state from the Secret, the cache on an emptyDir.
    let secrets: Vec<&Object> = objects.iter().filter(|o| o.kind() == "Secret").collect();
    let secret_key = |name: &str, key: &str| -> Option<String> {
        let secret = secrets.iter().find(|s| s.name() == name)?;
        ["/stringData", "/data"]
            .iter()
            .find_map(|field| secret.value.pointer(&format!("{field}/{key}")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut env = BTreeMap::new();
    for variable in list(container, "/env") {
        let name = text(variable, "/name").to_owned();
        let value = match variable.pointer("/valueFrom/secretKeyRef") {
            Some(reference) => {
                let (secret, key) = (text(reference, "/name"), text(reference, "/key"));
                secret_key(secret, key).unwrap_or_else(|| {
                    panic!("{name} reads key `{key}` of Secret `{secret}`, which has none")
                })
            }
            None => text(variable, "/value").to_owned(),
        };
        env.insert(name, value);
    }
    let url = env
        .get("SUPPORTCTL_DB")
        .expect("SUPPORTCTL_DB names the state");
    assert!(
        list(container, "/env")
            .iter()
            .any(|v| text(v, "/name") == "SUPPORTCTL_DB"
                && v.pointer("/valueFrom/secretKeyRef").is_some()),
        "SUPPORTCTL_DB comes from a Secret"
    );
    let rest = url
        .strip_prefix("postgres://")
        .expect("the state is a postgres:// URL");
    let user = rest.split_once('@').expect("the URL names its role").0;
    assert!(!user.contains(':'), "the password stays out of the URL");
    assert!(
        env.contains_key("PGPASSWORD"),
        "the password comes as PGPASSWORD"
    );
    let query: BTreeMap<&str, &str> = rest
        .split_once('?')
        .expect("the URL has TLS parameters")
        .1
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    assert_eq!(query.get("sslmode"), Some(&"verify-full"));
    let ca = Path::new(query.get("sslrootcert").expect("the CA's file"));
    let ca_mount = mounts
        .iter()
        .find(|m| Path::new(text(m, "/mountPath")) == ca.parent().expect("a folder"))
        .unwrap_or_else(|| panic!("nothing is mounted where the CA {} is", ca.display()));
    let ca_secret = text(volume(text(ca_mount, "/name")), "/secret/secretName");
    let ca_key = ca
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    assert!(
        secret_key(ca_secret, ca_key).is_some(),
        "the CA {} is key `{ca_key}` of Secret `{ca_secret}`, which has none",
        ca.display()
    );
    let cache = env.get("XDG_CACHE_HOME").expect("XDG_CACHE_HOME");
    let cache_mount = mounts
        .iter()
        .find(|m| text(m, "/mountPath") == cache)
        .unwrap_or_else(|| panic!("nothing is mounted at XDG_CACHE_HOME={cache}"));
    assert!(
        volume(text(cache_mount, "/name"))
            .pointer("/emptyDir")
            .is_some(),
        "XDG_CACHE_HOME is on an emptyDir"
    );

    // Locked down.
    let security = at(container, "/securityContext");
    assert_eq!(at(security, "/readOnlyRootFilesystem"), &Value::Bool(true));
    assert_eq!(
        at(security, "/allowPrivilegeEscalation"),
        &Value::Bool(false)
    );
    let dropped: Vec<&str> = list(security, "/capabilities/drop")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(dropped, ["ALL"]);
    let pod_security = at(pod, "/spec/securityContext");
    assert_eq!(at(pod_security, "/runAsNonRoot"), &Value::Bool(true));
    assert_ne!(at(pod_security, "/runAsUser").as_u64(), Some(0));
    assert_eq!(text(pod_security, "/seccompProfile/type"), "RuntimeDefault");
    for resource in [
        "/resources/requests/cpu",
        "/resources/requests/memory",
        "/resources/limits/memory",
    ] {
        at(container, resource);
    }
    assert_eq!(
        text(pod, "/spec/serviceAccountName"),
        text(the(&objects, "ServiceAccount", None), "/metadata/name")
    );

    // Spread over nodes.
    let pod_labels = labels(pod, "/metadata/labels");
    let terms = list(
        pod,
        "/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
    );
    assert!(
        terms.iter().any(|term| {
            text(term, "/topologyKey") == "kubernetes.io/hostname" && {
                assert_selects(
                    "the anti-affinity",
                    &labels(term, "/labelSelector/matchLabels"),
                    &pod_labels,
                );
                true
            }
        }),
        "no anti-affinity keeps the replicas on different nodes"
    );

    // SIGTERM reaches supportctl at once and has time to finish the
    // reconcile in flight (which may wait --lock-timeout for the lock)
    // and release the lease.
    assert!(
        container.pointer("/lifecycle/preStop").is_none(),
        "a preStop hook holds back the SIGTERM that releases the lease"
    );
    let grace = at(pod, "/spec/terminationGracePeriodSeconds")
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(grace) > cli.global.lock_timeout * 2,
        "{grace} s to stop, and an apply may wait {:?} for the lock",
        cli.global.lock_timeout
    );
}

/// The Service, the budget and the Deployment's own selector select its
/// pods; the Service reaches their metrics port; every object is in the
/// example's namespace.
#[test]
fn the_service_and_the_budget_select_the_pods() {
    let objects = objects();
    let namespace = text(the(&objects, "Namespace", None), "/metadata/name");
    for object in objects.iter().filter(|o| o.kind() != "Namespace") {
        assert_eq!(
            object
                .value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
            Some(namespace),
            "{} {} in {}: the example's objects are in its namespace",
            object.kind(),
            object.name(),
            object.file
        );
    }
    let deployment = the(&objects, "Deployment", None);
    let (pod, container) = pod_and_container(&objects);
    let pod_labels = labels(pod, "/metadata/labels");
    assert_selects(
        "the Deployment",
        &labels(deployment, "/spec/selector/matchLabels"),
        &pod_labels,
    );

    let service = the(&objects, "Service", None);
    assert_selects(
        "the Service",
        &labels(service, "/spec/selector"),
        &pod_labels,
    );
    let metrics = list(container, "/ports")
        .iter()
        .find(|p| {
            let port = at(p, "/containerPort")
                .as_u64()
                .and_then(|p| u16::try_from(p).ok());
            port == flag_value(&container_args(container), "--listen").map(listen_port)
        })
        .expect("the container's metrics port");
    let ports = list(service, "/spec/ports");
    assert!(
        ports.iter().any(|p| {
            let target = at(p, "/targetPort");
            target.as_str() == Some(text(metrics, "/name"))
                || target.as_u64() == at(metrics, "/containerPort").as_u64()
        }),
        "the Service does not reach the container's port {metrics}"
    );

    let budget = the(&objects, "PodDisruptionBudget", None);
    assert_selects(
        "the PodDisruptionBudget",
        &labels(budget, "/spec/selector/matchLabels"),
        &pod_labels,
    );
    let replicas = at(deployment, "/spec/replicas").as_u64().expect("replicas");
    let available = at(budget, "/spec/minAvailable")
        .as_u64()
        .expect("minAvailable, a number");
    assert!(
        (1..replicas).contains(&available),
        "minAvailable {available} of {replicas}: a drain must be able to move one"
    );
}

/// The kustomizations list every manifest of their folders but the Secret
/// template (applied again, they must never put placeholders over the real
/// Secrets), and the image they set is the Deployment's.
#[test]
fn the_kustomizations_list_every_manifest() {
    let root = example();
    let mut listed = BTreeSet::new();
    for folder in ["", "monitoring"] {
        let path = root.join(folder).join("kustomization.yaml");
        let content = std::fs::read_to_string(&path).expect("a kustomization");
        let kustomization: Value = serde_saphyr::from_str(&content).expect("YAML");
        assert_eq!(
            text(&kustomization, "/apiVersion"),
            "kustomize.config.k8s.io/v1beta1"
        );
        for resource in list(&kustomization, "/resources") {
            let file = Path::new(folder).join(resource.as_str().expect("a file name"));
            assert!(
                root.join(&file).is_file(),
                "{} lists {}, which is missing",
                path.display(),
                file.display()
            );
            listed.insert(file.to_str().expect("UTF-8").to_owned());
        }
    }
    let files: BTreeSet<String> = yaml_files(&root)
        .iter()
        .map(|f| {
            f.strip_prefix(&root)
                .expect("inside")
                .to_str()
                .expect("UTF-8")
                .to_owned()
        })
        .filter(|f| !f.ends_with("kustomization.yaml"))
        .collect();
    let template = "db-secret.example.yaml".to_owned();
    assert!(files.contains(&template), "the Secret template");
    assert!(
        !listed.contains(&template),
        "the Secret template is applied by hand, filled in"
    );
    let expected: BTreeSet<String> = files.into_iter().filter(|f| *f != template).collect();
    assert_eq!(listed, expected, "the kustomizations list every manifest");

    let kustomization: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("kustomization.yaml")).expect("read"),
    )
    .expect("YAML");
    let objects = objects();
    let (_, container) = pod_and_container(&objects);
    let image = text(container, "/image");
    let name = image.rsplit_once(':').map_or(image, |(name, _)| name);
    assert!(
        list(&kustomization, "/images")
            .iter()
            .any(|i| text(i, "/name") == name),
        "the kustomization sets no image `{name}`"
    );
}

/// The Dockerfile, read: a locked release build on Debian bookworm, run
/// from distroless's `cc` image as the numeric user and group the pods run
/// as, the binary as the entrypoint, the port `--listen` uses exposed; and
/// the build context (`.dockerignore`) holds every file the build copies,
/// and every file the binary compiles in.
#[test]
fn the_image_runs_as_the_user_the_pods_run_as() {
    let root = crate_root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("a Dockerfile");
    let instructions: Vec<(&str, &str)> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let all = |keyword: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(k, _)| *k == keyword)
            .map(|(_, rest)| *rest)
            .collect()
    };
    let one = |keyword: &str| -> &str {
        match all(keyword).as_slice() {
            [one] => one,
            other => panic!("{} {keyword} instructions", other.len()),
        }
    };
    let stages = all("FROM");
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    assert!(
        stages[0].starts_with("rust:") && stages[0].contains("-bookworm AS build"),
        "the build stage: {}",
        stages[0]
    );
    assert_eq!(stages[1], "gcr.io/distroless/cc-debian12:nonroot");
    assert!(
        dockerfile.contains("cargo build --release --locked --bin supportctl"),
        "a locked release build of the binary"
    );

    let objects = objects();
    let (pod, container) = pod_and_container(&objects);
    let (uid, gid) = one("USER").split_once(':').expect("USER UID:GID");
    let security = at(pod, "/spec/securityContext");
    assert_eq!(
        at(security, "/runAsUser").as_u64(),
        uid.parse().ok(),
        "USER's uid"
    );
    assert_eq!(
        at(security, "/runAsGroup").as_u64(),
        gid.parse().ok(),
        "USER's gid"
    );
    assert_ne!(uid, "0");

    let entrypoint: Vec<String> =
        serde_json::from_str(one("ENTRYPOINT")).expect("ENTRYPOINT in exec form");
    let copied = all("COPY")
        .into_iter()
        .find_map(|c| c.strip_prefix("--from=build "))
        .expect("the binary copied from the build stage");
    assert_eq!(
        entrypoint,
        [copied.split_whitespace().last().expect("a destination")],
        "the entrypoint is the binary"
    );
    let args = container_args(container);
    let listen = flag_value(&args, "--listen").expect("--listen");
    assert_eq!(one("EXPOSE"), listen_port(listen).to_string());

    // The context: `*`, then what the build reads put back.
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        patterns.first(),
        Some(&"*"),
        "the context holds only what is put back"
    );
    let kept: Vec<&str> = patterns
        .iter()
        .filter_map(|p| p.strip_prefix('!'))
        .collect();
    let in_context = |path: &str| {
        kept.iter()
            .any(|k| path == *k || path.starts_with(&format!("{k}/")))
    };
    let mut sources = Vec::new();
    for copy in all("COPY").into_iter().filter(|c| !c.starts_with("--from")) {
        let words: Vec<&str> = copy.split_whitespace().collect();
        sources.extend(
            words[..words.len() - 1]
                .iter()
                .map(|w| w.trim_end_matches('/')),
        );
    }
    for source in &sources {
        assert!(
            in_context(source),
            "the build copies {source}, which .dockerignore leaves out"
        );
    }
    // What the binary compiles in must be both in the context and copied.
    for included in compiled_in(&root.join("src")) {
        let relative = included.strip_prefix(&root).expect("inside the crate");
        let relative = relative.to_str().expect("UTF-8");
        assert!(
            in_context(relative) && sources.iter().any(|s| relative.starts_with(s)),
            "the binary compiles in {relative}, which the image's build never sees"
        );
    }
}

/// The files `include_str!`/`include_bytes!` read in `src/`, outside the
/// unit tests (`tests.rs`), as paths from the crate's root.
fn compiled_in(src: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a folder of src") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
                continue;
            }
            let code = std::fs::read_to_string(&path).expect("a source file");
            for piece in code.split("include_").skip(1) {
                let Some(rest) = piece
                    .strip_prefix("str!(\"")
                    .or_else(|| piece.strip_prefix("bytes!(\""))
                else {
                    continue;
                };
                let relative = rest.split('"').next().expect("a path");
                let mut resolved = path.parent().expect("a folder").to_path_buf();
                for part in Path::new(relative).components() {
                    match part {
                        std::path::Component::ParentDir => {
                            resolved.pop();
                        }
                        std::path::Component::Normal(name) => resolved.push(name),
                        _ => {}
                    }
                }
                found.push(resolved);
            }
        }
    }
    assert!(
        !found.is_empty(),
        "`supportctl init` compiles in the example"
    );
    found
}
