//! The deployment files against the binary they run: every YAML file under deploy/k8s and
//! the Dockerfile. A probe path must answer 200 from a real `ezenroll serve`; every port
//! must be the one EZENROLL_LISTEN names; every environment variable the manifests set
//! must be one the binary reads (an `[env: NAME]` of its `--help`, or a name the help
//! quotes, as `RUST_LOG`); and the termination grace must outlast the preStop sleep, the
//! drain delay and the shutdown grace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

/// One YAML document and the file it came from.
struct Doc {
    file: String,
    yaml: Yaml,
}

/// The final stage of a Dockerfile: what the image it builds runs with.
struct Dockerfile {
    file: String,
    env: Vec<(String, String)>,
    expose: Vec<String>,
    cmd: Vec<String>,
}

/// The deployment files, parsed; what did not parse is a problem of its own.
struct Manifests {
    docs: Vec<Doc>,
    dockerfile: Option<Dockerfile>,
    /// Files kustomization.yaml files may name, relative to the repository.
    files: BTreeSet<String>,
    problems: Vec<String>,
}

impl Manifests {
    /// Every `.yaml`/`.yml` file under `deploy/k8s` and the `Dockerfile` of the repository.
    fn read(root: &Path) -> Manifests {
        let mut texts = Vec::new();
        let mut dirs = vec![root.join("deploy/k8s")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path
                    .extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
                {
                    let text = std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                    let name = path
                        .strip_prefix(root)
                        .expect("under the repository")
                        .to_string_lossy()
                        .into_owned();
                    texts.push((name, text));
                }
            }
        }
        texts.sort();
        let dockerfile =
            std::fs::read_to_string(root.join("Dockerfile")).expect("the Dockerfile at the top");
        let texts: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Manifests::parse(&texts, Some(("Dockerfile", &dockerfile)))
    }

    /// `(file name, text)` of each YAML file (multi-document files allowed), and a
    /// Dockerfile's.
    fn parse(yaml: &[(&str, &str)], dockerfile: Option<(&str, &str)>) -> Manifests {
        let mut manifests = Manifests {
            docs: Vec::new(),
            dockerfile: dockerfile.map(|(file, text)| Dockerfile::parse(file, text)),
            files: yaml.iter().map(|(file, _)| (*file).to_owned()).collect(),
            problems: Vec::new(),
        };
        for (file, text) in yaml {
            match YamlLoader::load_from_str(text) {
                Ok(docs) => manifests
                    .docs
                    .extend(docs.into_iter().filter(Yaml::is_hash).map(|yaml| Doc {
                        file: (*file).to_owned(),
                        yaml,
                    })),
                Err(e) => manifests.problems.push(format!("{file}: not YAML: {e}")),
            }
        }
        manifests
    }

    /// The documents of one kind.
    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs
            .iter()
            .filter(move |d| d.yaml["kind"].as_str() == Some(kind))
    }

    /// The ConfigMap or Secret called `name`.
    fn named(&self, kind: &str, name: &str) -> Option<&Doc> {
        self.docs.iter().find(|d| {
            d.yaml["kind"].as_str() == Some(kind)
                && d.yaml["metadata"]["name"].as_str() == Some(name)
        })
    }
}

impl Dockerfile {
    fn parse(file: &str, text: &str) -> Dockerfile {
        let mut dockerfile = Dockerfile {
            file: file.to_owned(),
            env: Vec::new(),
            expose: Vec::new(),
            cmd: Vec::new(),
        };
        // Instructions, with continued lines joined; comments and the parser directive out.
        let mut instructions = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if let Some(head) = trimmed.strip_suffix('\\') {
                current.push_str(head);
                current.push(' ');
            } else {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
        for instruction in instructions {
            let (keyword, rest) = instruction
                .split_once(char::is_whitespace)
                .unwrap_or((instruction.as_str(), ""));
            let rest = rest.trim();
            match keyword.to_ascii_uppercase().as_str() {
                // A new stage: only the last one is the image.
                "FROM" => {
                    dockerfile.env.clear();
                    dockerfile.expose.clear();
                    dockerfile.cmd.clear();
                }
                "ENV" => {
                    let pairs: Vec<&str> = rest.split_whitespace().collect();
                    if pairs.first().is_some_and(|p| !p.contains('=')) {
                        // The old `ENV NAME value` form.
                        let (name, value) =
                            rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                        dockerfile
                            .env
                            .push((name.to_owned(), value.trim().to_owned()));
                    } else {
                        for pair in pairs {
                            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                            dockerfile
                                .env
                                .push((name.to_owned(), value.trim_matches('"').to_owned()));
                        }
                    }
                }
                "EXPOSE" => dockerfile.expose.extend(
                    rest.split_whitespace()
                        .map(|p| p.trim_end_matches("/tcp").to_owned()),
                ),
                "CMD" => {
                    dockerfile.cmd = serde_json::from_str(rest)
                        .unwrap_or_else(|_| rest.split_whitespace().map(str::to_owned).collect());
                }
                _ => {}
            }
        }
        dockerfile
    }

    fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the manifests are checked against: the binary's environment variables, per
/// subcommand, and what a GET of a path answers.
struct Binary<'a> {
    env: BTreeMap<String, Option<BTreeSet<String>>>,
    get: &'a dyn Fn(&str) -> u16,
}

impl<'a> Binary<'a> {
    /// The real binary; `get` asks a running `ezenroll serve`.
    fn new(get: &'a dyn Fn(&str) -> u16) -> Binary<'a> {
        Binary {
            env: BTreeMap::new(),
            get,
        }
    }

    /// The environment variables `ezenroll <command>` reads, from its `--help`: each
    /// `[env: NAME=…]`, and the names it quotes in backticks (`RUST_LOG`, read by the log
    /// filter). None when `--help` fails: no such subcommand.
    fn env_of(&mut self, command: &str) -> Option<&BTreeSet<String>> {
        self.env
            .entry(command.to_owned())
            .or_insert_with(|| {
                let out = Command::new(env!("CARGO_BIN_EXE_ezenroll"))
                    .args([command, "--help"])
                    .output()
                    .expect("run ezenroll --help");
                out.status
                    .success()
                    .then(|| env_names(&String::from_utf8_lossy(&out.stdout)))
            })
            .as_ref()
    }
}

/// The environment variable names in a clap `--help` text.
fn env_names(help: &str) -> BTreeSet<String> {
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let is_name_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
    let mut names: BTreeSet<String> = help
        .match_indices("[env: ")
        .map(|(at, marker)| {
            help[at + marker.len()..]
                .chars()
                .take_while(|&c| is_name_char(c))
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect();
    names.extend(
        help.split('`')
            .skip(1)
            .step_by(2)
            .filter(|quoted| {
                quoted.contains('_')
                    && quoted.starts_with(|c: char| c.is_ascii_uppercase())
                    && quoted.chars().all(is_name_char)
            })
            .map(str::to_owned),
    );
    names
}

/// `500ms`, `3s`, `2m`, `1h` or a bare number of seconds, as the binary reads a duration;
/// in milliseconds.
fn duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The port of a `host:port` address.
fn port_of(addr: &str) -> Option<i64> {
    addr.rsplit_once(':')?.1.parse().ok()
}

/// A container's environment: where each name comes from, and the values known from the
/// manifests (the image's ENV, then envFrom ConfigMaps, then `env` values).
#[derive(Default)]
struct ContainerEnv {
    values: BTreeMap<String, String>,
    /// `(file, what, name)` for every name the manifests give the container.
    names: Vec<(String, String, String)>,
}

/// Everything wrong with the manifests, each naming its file and value.
fn check(manifests: &Manifests, binary: &mut Binary<'_>) -> Vec<String> {
    let mut problems: BTreeSet<String> = manifests.problems.iter().cloned().collect();
    let mut containers = 0;
    for workload in &manifests.docs {
        let (pod, labels) = match &workload.yaml["spec"]["template"] {
            Yaml::Hash(_) => (
                &workload.yaml["spec"]["template"]["spec"],
                &workload.yaml["spec"]["template"]["metadata"]["labels"],
            ),
            _ if workload.yaml["kind"].as_str() == Some("Pod") => {
                (&workload.yaml["spec"], &workload.yaml["metadata"]["labels"])
            }
            _ => continue,
        };
        for container in pod["containers"].as_vec().into_iter().flatten() {
            if !runs_ezenroll(container) {
                continue;
            }
            containers += 1;
            check_container(
                manifests,
                binary,
                workload,
                pod,
                labels,
                container,
                &mut problems,
            );
        }
    }
    if containers == 0 {
        problems.insert("no workload in deploy/k8s runs the ezenroll image".to_owned());
    }
    if let Some(dockerfile) = &manifests.dockerfile {
        check_dockerfile(dockerfile, binary, &mut problems);
    }
    for kustomization in manifests.of_kind("Kustomization") {
        let dir = Path::new(&kustomization.file)
            .parent()
            .unwrap_or(Path::new(""));
        for resource in kustomization.yaml["resources"]
            .as_vec()
            .into_iter()
            .flatten()
        {
            let Some(resource) = resource.as_str() else {
                continue;
            };
            let path = dir.join(resource).to_string_lossy().into_owned();
            if (resource.ends_with(".yaml") || resource.ends_with(".yml"))
                && !manifests.files.contains(&path)
            {
                problems.insert(format!(
                    "{}: resource {resource:?} is not a file of deploy/k8s",
                    kustomization.file
                ));
            }
        }
    }
    problems.into_iter().collect()
}

/// A container whose image is ezenroll (`ezenroll`, `registry/ezenroll:tag`).
fn runs_ezenroll(container: &Yaml) -> bool {
    container["image"].as_str().is_some_and(|image| {
        let name = image.rsplit('/').next().unwrap_or(image);
        name.split([':', '@']).next() == Some("ezenroll")
    })
}

fn check_container(
    manifests: &Manifests,
    binary: &mut Binary<'_>,
    workload: &Doc,
    pod: &Yaml,
    labels: &Yaml,
    container: &Yaml,
    problems: &mut BTreeSet<String>,
) {
    let file = &workload.file;
    let name = container["name"].as_str().unwrap_or("?");
    let at = format!("{file}: container {name}");

    // The subcommand: the first of `args`, else the image's CMD.
    let args: Vec<&str> = container["args"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .collect();
    let image_cmd = manifests.dockerfile.as_ref().and_then(|d| d.cmd.first());
    let command = args
        .first()
        .copied()
        .or(image_cmd.map(String::as_str))
        .unwrap_or("serve")
        .to_owned();
    let Some(known) = binary.env_of(&command).cloned() else {
        problems.insert(format!(
            "{at}: runs `ezenroll {command}`, which is no subcommand"
        ));
        return;
    };

    let env = container_env(manifests, container, &at, problems);
    for (file, what, name) in &env.names {
        if !known.contains(name) {
            problems.insert(format!(
                "{file}: {what} {name} is not an environment variable `ezenroll {command} --help` lists"
            ));
        }
    }

    // Ports: the one EZENROLL_LISTEN names, everywhere.
    let Some(listen) = env.values.get("EZENROLL_LISTEN") else {
        problems.insert(format!(
            "{at}: EZENROLL_LISTEN is set neither in the manifests nor in the image; the \
             default listens on loopback only"
        ));
        return;
    };
    let Some(port) = port_of(listen) else {
        problems.insert(format!("{at}: EZENROLL_LISTEN={listen:?} names no port"));
        return;
    };
    let listening = format!("the port of EZENROLL_LISTEN={listen} ({port})");
    let mut port_names = BTreeSet::new();
    for p in container["ports"].as_vec().into_iter().flatten() {
        let number = p["containerPort"].as_i64();
        if number != Some(port) {
            problems.insert(format!(
                "{at}: containerPort {} is not {listening}",
                yaml_text(&p["containerPort"])
            ));
        }
        if let Some(name) = p["name"].as_str() {
            port_names.insert(name.to_owned());
        }
    }
    let resolves = |target: &Yaml| match target {
        Yaml::Integer(n) => *n == port,
        Yaml::String(name) => port_names.contains(name),
        _ => false,
    };
    if let Some(advertise) = env.values.get("EZENROLL_ADVERTISE")
        && port_of(advertise) != Some(port)
    {
        problems.insert(format!(
            "{at}: EZENROLL_ADVERTISE={advertise:?} is not at {listening}"
        ));
    }

    // Probes: HTTP GETs of paths the binary answers 200 on, at the listening port.
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let get = &container[probe]["httpGet"];
        if get.is_badvalue() {
            if probe != "startupProbe" {
                problems.insert(format!("{at}: no {probe} with an httpGet"));
            }
            continue;
        }
        if !resolves(&get["port"]) {
            problems.insert(format!(
                "{at}: {probe} port {} is not {listening}",
                yaml_text(&get["port"])
            ));
        }
        let path = get["path"].as_str().unwrap_or("/");
        let status = (binary.get)(path);
        if status != 200 {
            problems.insert(format!(
                "{at}: {probe} path {path:?} answers {status} from `ezenroll serve`, not 200"
            ));
        }
    }

    // Services that select these pods send to the listening port.
    let mut selected = false;
    for service in manifests.of_kind("Service") {
        let Some(selector) = service.yaml["spec"]["selector"].as_hash() else {
            continue;
        };
        if selector.is_empty() || !selector.iter().all(|(k, v)| &labels[k_str(k)] == v) {
            continue;
        }
        selected = true;
        for p in service.yaml["spec"]["ports"].as_vec().into_iter().flatten() {
            let target = match &p["targetPort"] {
                Yaml::BadValue => &p["port"],
                target => target,
            };
            if !resolves(target) {
                problems.insert(format!(
                    "{}: Service {} targetPort {} is not {listening} in {file}",
                    service.file,
                    service.yaml["metadata"]["name"].as_str().unwrap_or("?"),
                    yaml_text(target)
                ));
            }
        }
    }
    if !selected {
        problems.insert(format!("{at}: no Service selects its pods"));
    }

    // Stopping: preStop sleep + drain delay + shutdown grace within the termination grace.
    let termination_ms = pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(30) * 1000;
    let pre_stop = &container["lifecycle"]["preStop"];
    let sleep_ms = match pre_stop["sleep"]["seconds"].as_i64() {
        Some(seconds) => seconds * 1000,
        None => pre_stop["exec"]["command"]
            .as_vec()
            .and_then(|c| c.last())
            .and_then(Yaml::as_str)
            .and_then(|c| c.rsplit("sleep ").next())
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(0, |s| s * 1000),
    };
    let mut setting = |name: &str, required: bool| -> i64 {
        match env.values.get(name) {
            None => {
                if required {
                    problems.insert(format!(
                        "{at}: {name} is not set, so the termination grace cannot be checked"
                    ));
                }
                0
            }
            Some(text) => match duration_ms(text) {
                Some(ms) => i64::try_from(ms).unwrap_or(i64::MAX),
                None => {
                    problems.insert(format!("{at}: {name}={text:?} is not a duration"));
                    0
                }
            },
        }
    };
    let grace_ms = setting("EZENROLL_SHUTDOWN_GRACE", true);
    let drain_ms = setting("EZENROLL_DRAIN_DELAY", false);
    if termination_ms <= sleep_ms + drain_ms + grace_ms {
        problems.insert(format!(
            "{file}: terminationGracePeriodSeconds {} is not more than the preStop sleep \
             ({} s) + EZENROLL_DRAIN_DELAY ({} s) + EZENROLL_SHUTDOWN_GRACE ({} s)",
            termination_ms / 1000,
            sleep_ms as f64 / 1000.0,
            drain_ms as f64 / 1000.0,
            grace_ms as f64 / 1000.0,
        ));
    }
}

fn k_str(key: &Yaml) -> &str {
    key.as_str().unwrap_or("")
}

/// A scalar as written, for messages.
fn yaml_text(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => format!("{s:?}"),
        Yaml::Integer(n) => n.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::BadValue => "(none)".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The names a container's environment gets from the manifests, and the values known.
fn container_env(
    manifests: &Manifests,
    container: &Yaml,
    at: &str,
    problems: &mut BTreeSet<String>,
) -> ContainerEnv {
    let mut env = ContainerEnv::default();
    if let Some(dockerfile) = &manifests.dockerfile {
        env.values
            .extend(dockerfile.env.iter().map(|(n, v)| (n.clone(), v.clone())));
    }
    let mut defined: BTreeSet<String> = BTreeSet::new();
    for from in container["envFrom"].as_vec().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or("");
        for (kind, reference) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
            let Some(name) = from[reference]["name"].as_str() else {
                continue;
            };
            let Some(doc) = manifests.named(kind, name) else {
                problems.insert(format!(
                    "{at}: envFrom {kind} {name:?} is not among the manifests"
                ));
                continue;
            };
            for section in ["data", "stringData"] {
                for (key, value) in doc.yaml[section].as_hash().into_iter().flatten() {
                    let key = format!("{prefix}{}", k_str(key));
                    match value.as_str() {
                        Some(value) => {
                            env.values.insert(key.clone(), value.to_owned());
                        }
                        None => {
                            problems.insert(format!(
                                "{}: {kind} {name} {section} {key} is {}, not a string",
                                doc.file,
                                yaml_text(value)
                            ));
                        }
                    }
                    defined.insert(key.clone());
                    env.names
                        .push((doc.file.clone(), format!("{kind} {name} key"), key));
                }
            }
        }
    }
    let entries: Vec<&Yaml> = container["env"].as_vec().into_iter().flatten().collect();
    // `$(NAME)` in a value: expanded by Kubernetes from names defined before it.
    let references = |value: &str| -> Vec<String> {
        value
            .split("$(")
            .skip(1)
            .filter_map(|r| r.split_once(')').map(|(name, _)| name.to_owned()))
            .collect()
    };
    let mut helpers = BTreeSet::new();
    for entry in &entries {
        if let Some(value) = entry["value"].as_str() {
            helpers.extend(references(value));
        }
    }
    for entry in entries {
        let Some(name) = entry["name"].as_str() else {
            continue;
        };
        if let Some(value) = entry["value"].as_str() {
            for reference in references(value) {
                if !defined.contains(&reference) {
                    problems.insert(format!(
                        "{at}: env {name} uses $({reference}), which is not defined before it"
                    ));
                }
            }
            env.values.insert(name.to_owned(), value.to_owned());
        }
        for (kind, reference) in [("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")] {
            let source = &entry["valueFrom"][reference];
            let (Some(source_name), Some(key)) = (source["name"].as_str(), source["key"].as_str())
            else {
                continue;
            };
            let has_key = manifests.named(kind, source_name).is_some_and(|doc| {
                ["data", "stringData"]
                    .iter()
                    .any(|section| !doc.yaml[*section][key].is_badvalue())
            });
            if !has_key {
                problems.insert(format!(
                    "{at}: env {name} comes from {kind} {source_name:?} key {key:?}, which no \
                     {kind} among the manifests has"
                ));
            }
        }
        defined.insert(name.to_owned());
        // A name only other values use (POD_IP in `$(POD_IP):8080`) is not the binary's.
        if !helpers.contains(name) {
            env.names
                .push((at.to_owned(), "env".to_owned(), name.to_owned()));
        }
    }
    env
}

fn check_dockerfile(
    dockerfile: &Dockerfile,
    binary: &mut Binary<'_>,
    problems: &mut BTreeSet<String>,
) {
    let file = &dockerfile.file;
    let command = dockerfile
        .cmd
        .first()
        .cloned()
        .unwrap_or_else(|| "serve".to_owned());
    if let Some(known) = binary.env_of(&command) {
        for (name, _) in &dockerfile.env {
            if !known.contains(name) {
                problems.insert(format!(
                    "{file}: ENV {name} is not an environment variable `ezenroll {command} --help` lists"
                ));
            }
        }
    } else {
        problems.insert(format!(
            "{file}: CMD runs `ezenroll {command}`, which is no subcommand"
        ));
    }
    let Some(listen) = dockerfile.env("EZENROLL_LISTEN") else {
        problems.insert(format!(
            "{file}: no ENV EZENROLL_LISTEN; the default listens on loopback only"
        ));
        return;
    };
    let port = port_of(listen);
    for exposed in &dockerfile.expose {
        if exposed.parse().ok() != port {
            problems.insert(format!(
                "{file}: EXPOSE {exposed} is not the port of ENV EZENROLL_LISTEN={listen}"
            ));
        }
    }
    if dockerfile.expose.is_empty() {
        problems.insert(format!(
            "{file}: no EXPOSE of the port of EZENROLL_LISTEN={listen}"
        ));
    }
}

/// A GET of `path` from a running server: the status.
#[cfg(unix)]
fn getter(served: &super::Served) -> impl Fn(&str) -> u16 + '_ {
    move |path| served.call("GET", path, None).0
}

/// The real deploy/k8s and Dockerfile against the real binary.
#[cfg(unix)]
#[test]
fn the_deployment_files_match_the_binary() {
    let manifests = Manifests::read(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(
        manifests.of_kind("Deployment").next().is_some(),
        "no Deployment under deploy/k8s"
    );
    let served = super::serve(&[]);
    let problems = check(&manifests, &mut Binary::new(&getter(&served)));
    served.stop();
    assert!(
        problems.is_empty(),
        "the deployment files do not match the binary:\n  {}",
        problems.join("\n  ")
    );
}

/// Drift is caught: manifests that are wrong in each way the check knows are reported,
/// naming the file and the wrong value, and what is right is not.
#[cfg(unix)]
#[test]
fn drifted_manifests_are_reported() {
    let deployment = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  template:
    metadata:
      labels: {app: ez}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: server
          image: registry.example.com/ezenroll:1.2.3
          ports: [{name: http, containerPort: 9090}]
          envFrom: [{configMapRef: {name: settings}}]
          env:
            - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
            - {name: EZENROLL_LISTN, value: "$(HOST_IP):8080"}
            - {name: EZENROLL_BODY_LIMIT, value: "$(UNDEFINED)"}
            - name: EZENROLL_JWT_SECRET
              valueFrom: {secretKeyRef: {name: settings-secret, key: jwt}}
          readinessProbe: {httpGet: {path: /ready, port: http}}
          livenessProbe: {httpGet: {path: /livez, port: 9090}}
          lifecycle: {preStop: {sleep: {seconds: 5}}}
---
apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app: ez}
  ports: [{port: 80, targetPort: 8081}]
"#;
    let configmap = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  EZENROLL_LISTEN: "0.0.0.0:8080"
  EZENROLL_SHUTDOWN_GRACE: "25s"
  EZENROLL_TRESHOLD: "3"
  EZENROLL_THREADS: 2
"#;
    let kustomization = "kind: Kustomization\nresources: [bad/deployment.yaml, bad/gone.yaml]\n";
    let dockerfile = "FROM rust AS build\nENV CARGO_HOME=/cargo\nEXPOSE 1\n\
                      FROM debian\nENV EZENROLL_LISTEN=0.0.0.0:8080 \\\n    EZENROLL_VERBOSE=1\n\
                      EXPOSE 8000\nCMD [\"serve\"]\n";
    let manifests = Manifests::parse(
        &[
            ("bad/deployment.yaml", deployment),
            ("bad/configmap.yaml", configmap),
            ("kustomization.yaml", kustomization),
            ("bad/broken.yaml", "key: [unclosed"),
        ],
        Some(("Dockerfile", dockerfile)),
    );
    let served = super::serve(&[]);
    let problems = check(&manifests, &mut Binary::new(&getter(&served)));
    served.stop();
    let text = problems.join("\n");
    for expected in [
        [
            "bad/deployment.yaml",
            "readinessProbe path \"/ready\" answers 404",
        ],
        [
            "bad/deployment.yaml",
            "env EZENROLL_LISTN is not an environment variable",
        ],
        ["bad/deployment.yaml", "$(UNDEFINED)"],
        [
            "bad/deployment.yaml",
            "Secret \"settings-secret\" key \"jwt\"",
        ],
        [
            "bad/deployment.yaml",
            "containerPort 9090 is not the port of EZENROLL_LISTEN",
        ],
        ["bad/deployment.yaml", "livenessProbe port 9090 is not"],
        ["bad/deployment.yaml", "Service app targetPort 8081"],
        [
            "bad/deployment.yaml",
            "terminationGracePeriodSeconds 30 is not more than",
        ],
        [
            "bad/configmap.yaml",
            "key EZENROLL_TRESHOLD is not an environment variable",
        ],
        ["bad/configmap.yaml", "EZENROLL_THREADS is 2, not a string"],
        ["kustomization.yaml", "\"bad/gone.yaml\""],
        ["bad/broken.yaml", "not YAML"],
        ["Dockerfile", "ENV EZENROLL_VERBOSE"],
        ["Dockerfile", "EXPOSE 8000"],
    ] {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(expected[0]) && p.contains(expected[1])),
            "no {expected:?} among the problems:\n{text}"
        );
    }
    for not_expected in [
        "/livez",
        "HOST_IP",
        "EZENROLL_SHUTDOWN_GRACE is",
        "CARGO_HOME",
        "EXPOSE 1 ",
    ] {
        assert!(
            !text.contains(not_expected),
            "{not_expected:?} is right:\n{text}"
        );
    }
}

#[test]
fn help_env_names_are_read_from_clap_output() {
    let help = "  --listen <LISTEN>\n          Address [env: EZENROLL_LISTEN=127.0.0.1:1]\n\
                  --jwt-secret <S>  secret [env: EZENROLL_JWT_SECRET]\n\
                  --log-format <F>  the level comes from `RUST_LOG` (default `info`), `--x`\n";
    let names: Vec<String> = env_names(help).into_iter().collect();
    assert_eq!(
        names,
        ["EZENROLL_JWT_SECRET", "EZENROLL_LISTEN", "RUST_LOG"]
    );
    assert_eq!(duration_ms("20s"), Some(20_000));
    assert_eq!(duration_ms("500ms"), Some(500));
    assert_eq!(duration_ms("2m"), Some(120_000));
    assert_eq!(duration_ms("7"), Some(7_000));
    assert_eq!(duration_ms("soon"), None);
}
