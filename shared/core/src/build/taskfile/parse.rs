//! Reading and validating the YAML of a task file.

use super::alias::{alias_from_node, AliasDef};
use super::words::{check_image_ref, parse_build, shell_split, shell_unquote, with_default_tag};
use super::yaml::{self, Kind, Node};
use super::{
    CmdStep, LineMap, Network, Secret, Step, StepKind, TaskFile, TaskFileError, TaskFileErrors,
    TaskFileWarning, TaskVersion, Volume, VolumeMount, DEFAULT_RETRY_DELAY, DEFAULT_STEP_TIMEOUT,
    RESERVED_STEP_ID, WORKSPACE,
};
use base64::Engine;
use std::collections::{BTreeMap, HashMap};

mod resources;
use resources::{parse_networks, parse_secrets, parse_volumes};

/// Options of [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// Image aliases: a `cmd` whose first word is a key runs the value as
    /// its image (ACR: `acr`, `az`, `bash`, `curl`, `cssc`). Configurable so
    /// that machines without access to those images can use their own.
    pub image_aliases: BTreeMap<String, String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            image_aliases: default_image_aliases(),
        }
    }
}

/// ACR's image aliases (from its executor's Linux defaults).
pub fn default_image_aliases() -> BTreeMap<String, String> {
    [
        ("acr", "mcr.microsoft.com/acr/acr-cli:0.19"),
        ("az", "mcr.microsoft.com/acr/azure-cli:fe316c9"),
        ("bash", "mcr.microsoft.com/acr/bash:fe316c9"),
        ("curl", "mcr.microsoft.com/acr/curl:fe316c9"),
        ("cssc", "mcr.microsoft.com/acr/cssc:fe316c9"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

const TOP_KEYS: [&str; 9] = [
    "version",
    "stepTimeout",
    "workingDirectory",
    "env",
    "secrets",
    "volumes",
    "networks",
    "alias",
    "steps",
];

/// Keys of ACR's executor that crtask reads but does not act on.
const UNSUPPORTED_STEP_KEYS: [&str; 3] = ["exitedWith", "exitedWithout", "retryOnErrors"];

struct P<'a> {
    map: &'a LineMap,
    errors: Vec<TaskFileError>,
    warnings: Vec<TaskFileWarning>,
}

impl P<'_> {
    fn err(&mut self, line: usize, step: Option<&str>, msg: impl Into<String>) {
        let line = self.map.original(line);
        self.errors.push(TaskFileError::at(Some(line), step, msg));
    }

    fn warn(&mut self, line: usize, step: Option<&str>, msg: impl Into<String>) {
        self.warnings.push(TaskFileWarning {
            line: self.map.original(line),
            step: step.map(str::to_string),
            message: msg.into(),
        });
    }

    fn orig(&self, line: usize) -> usize {
        self.map.original(line)
    }

    /// The pairs of a mapping, reporting duplicate keys and non-text keys.
    fn pairs<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        step: Option<&str>,
    ) -> Option<Vec<(&'n str, &'n Node, usize)>> {
        let Kind::Map(pairs) = &node.kind else {
            if !node.is_null() {
                self.err(
                    node.line,
                    step,
                    format!("{what} must be a mapping, not {}", node.type_name()),
                );
            }
            return None;
        };
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for (k, v) in pairs {
            let Some(key) = k.scalar() else {
                self.err(k.line, step, format!("{what} has a key that is not text"));
                continue;
            };
            if let Some(first) = seen.get(key) {
                let first = self.orig(*first);
                self.err(
                    k.line,
                    step,
                    format!("duplicate key '{key}' in {what} (first on line {first})"),
                );
                continue;
            }
            seen.insert(key, k.line);
            out.push((key, v, k.line));
        }
        Some(out)
    }

    fn string(&mut self, v: &Node, what: &str, step: Option<&str>) -> Option<String> {
        if v.is_null() {
            return None;
        }
        match v.scalar() {
            Some(s) => Some(s.to_string()),
            None => {
                self.err(
                    v.line,
                    step,
                    format!("{what} must be text, not {}", v.type_name()),
                );
                None
            }
        }
    }

    /// A quoted scalar is text, as in ACR's YAML (yaml.v2 refuses a `!!str`
    /// for a number or a boolean): `retries: "2"` is an error there too.
    fn quoted(&mut self, v: &Node, what: &str, step: Option<&str>, wanted: &str) -> bool {
        let Some(text) = v.scalar().filter(|_| !v.is_plain()) else {
            return false;
        };
        self.err(
            v.line,
            step,
            format!("{what} must be {wanted}, not the quoted text '{text}' (remove the quotes)"),
        );
        true
    }

    fn int(&mut self, v: &Node, what: &str, step: Option<&str>) -> Option<i64> {
        if v.is_null() || self.quoted(v, what, step, "a whole number") {
            return None;
        }
        match v.scalar().map(|s| s.trim().parse::<i64>()) {
            Some(Ok(n)) => Some(n),
            _ => {
                let shown = v
                    .scalar()
                    .map(|s| format!("'{s}'"))
                    .unwrap_or_else(|| v.type_name().to_string());
                self.err(
                    v.line,
                    step,
                    format!("{what} must be a whole number, not {shown}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, v: &Node, what: &str, step: Option<&str>) -> Option<bool> {
        if v.is_null() || self.quoted(v, what, step, "true or false") {
            return None;
        }
        let s = v.scalar().map(str::to_ascii_lowercase);
        match s.as_deref() {
            Some("true" | "yes" | "on" | "y") => Some(true),
            Some("false" | "no" | "off" | "n") => Some(false),
            _ => {
                let shown = v
                    .scalar()
                    .map(|s| format!("'{s}'"))
                    .unwrap_or_else(|| v.type_name().to_string());
                self.err(
                    v.line,
                    step,
                    format!("{what} must be true or false, not {shown}"),
                );
                None
            }
        }
    }

    /// A list of text items with their lines (null: empty).
    fn str_list(&mut self, v: &Node, what: &str, step: Option<&str>) -> Vec<(String, usize)> {
        if v.is_null() {
            return Vec::new();
        }
        let Kind::Seq(items) = &v.kind else {
            self.err(
                v.line,
                step,
                format!("{what} must be a list, not {}", v.type_name()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match item.scalar() {
                Some(s) if !item.is_null() => out.push((s.to_string(), item.line)),
                _ => self.err(
                    item.line,
                    step,
                    format!("{what} items must be text, not {}", item.type_name()),
                ),
            }
        }
        out
    }

    fn seq<'n>(&mut self, v: &'n Node, what: &str) -> &'n [Node] {
        match &v.kind {
            Kind::Seq(items) => items,
            _ => {
                if !v.is_null() {
                    self.err(
                        v.line,
                        None,
                        format!("{what} must be a list, not {}", v.type_name()),
                    );
                }
                &[]
            }
        }
    }

    fn env_entry(
        &mut self,
        s: &str,
        line: usize,
        what: &str,
        step: Option<&str>,
    ) -> Option<(String, String)> {
        // ACR puts each entry on a `docker run --env ...` line that a shell
        // reads: quotes are removed. Nothing is expanded here (ACR's shell
        // would expand the build agent's `$VARS`).
        let entry = match shell_unquote(s) {
            Ok(e) => e,
            Err(e) => {
                self.err(line, step, format!("{what} entry: {e}"));
                return None;
            }
        };
        match entry.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Some((k.to_string(), v.to_string())),
            _ => {
                self.err(line, step, format!("{what} entry '{s}' must be NAME=VALUE"));
                None
            }
        }
    }
}

/// Everything the steps inherit from the top level.
struct TaskDefaults {
    step_timeout: u64,
    working_directory: Option<String>,
    env: Vec<(String, String)>,
    volume_names: Vec<String>,
    images: BTreeMap<String, String>,
}

/// Parses the text that came out of the pipeline ([`super::preprocess_mapped`])
/// into a validated [`TaskFile`]. `line_map` turns lines of `text` back into
/// the user's lines for every error and warning. All errors are collected.
pub fn parse(
    text: &str,
    line_map: &LineMap,
    opts: &ParseOptions,
) -> Result<TaskFile, TaskFileErrors> {
    let mut p = P {
        map: line_map,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let root = match yaml_root(text, line_map)? {
        Some(root) => root,
        None => {
            return Err(TaskFileErrors(vec![TaskFileError::at(
                None,
                None,
                "the task file is empty: it needs a 'steps' list",
            )]))
        }
    };
    if !matches!(root.kind, Kind::Map(_)) {
        p.err(
            root.line,
            None,
            format!(
                "the task file must be a mapping with 'steps', not {}",
                root.type_name()
            ),
        );
        return Err(TaskFileErrors(p.errors));
    }
    let top = p.pairs(&root, "the task file", None).unwrap_or_default();
    let get = |name: &str| {
        top.iter()
            .find(|(k, _, _)| *k == name)
            .map(|(_, v, l)| (*v, *l))
    };

    for (k, _, line) in &top {
        if !TOP_KEYS.contains(k) {
            p.warn(*line, None, format!("unknown key '{k}' is ignored"));
        }
    }

    let version = match get("version") {
        None => TaskVersion::V1_0_0,
        Some((v, _)) => match p.string(v, "version", None) {
            None => TaskVersion::V1_0_0,
            Some(s) => TaskVersion::parse(&s).unwrap_or_else(|| {
                p.err(
                    v.line,
                    None,
                    format!("invalid version '{s}': use v1.0.0, v1.1.0 or 1.0-preview-1"),
                );
                TaskVersion::V1_0_0
            }),
        },
    };

    let step_timeout = get("stepTimeout")
        .and_then(|(v, _)| p.int(v, "stepTimeout", None))
        .filter(|n| *n > 0)
        .map(|n| n as u64)
        .unwrap_or(DEFAULT_STEP_TIMEOUT);

    let working_directory = get("workingDirectory")
        .and_then(|(v, _)| p.string(v, "workingDirectory", None))
        .filter(|s| !s.trim().is_empty());

    let mut env = Vec::new();
    if let Some((v, _)) = get("env") {
        for (entry, line) in p.str_list(v, "env", None) {
            for piece in entry.split(',') {
                if let Some(kv) = p.env_entry(piece, line, "env", None) {
                    upsert(&mut env, kv);
                }
            }
        }
    }

    let secrets = get("secrets")
        .map(|(v, _)| parse_secrets(&mut p, v))
        .unwrap_or_default();
    let volumes = get("volumes")
        .map(|(v, _)| parse_volumes(&mut p, v))
        .unwrap_or_default();
    let networks = get("networks")
        .map(|(v, _)| parse_networks(&mut p, v))
        .unwrap_or_default();

    let mut alias = AliasDef::default();
    if let Some((v, line)) = get("alias") {
        if version == TaskVersion::V1_1_0 {
            let (def, errs) = alias_from_node(v);
            for (l, m) in errs {
                p.err(l, None, m);
            }
            alias = def;
        } else {
            p.warn(
                line,
                None,
                "alias is only used with version v1.1.0; it is ignored",
            );
        }
    }

    // Image aliases (`bash`, `acr`, custom `alias.values`) are part of
    // ACR's alias preprocessing, which only `v1.1.0` files get: in older
    // versions the first word of a `cmd` is always an image name.
    let mut images = BTreeMap::new();
    if version == TaskVersion::V1_1_0 {
        images = opts.image_aliases.clone();
        for (k, v) in &alias.values {
            images.insert(k.clone(), v.clone());
        }
    }
    let defaults = TaskDefaults {
        step_timeout,
        working_directory: working_directory.as_deref().map(resolve_dir),
        env: env.clone(),
        volume_names: volumes.iter().map(|v| v.name.clone()).collect(),
        images,
    };

    let mut steps = Vec::new();
    match get("steps") {
        None => p.err(root.line, None, "the task file has no 'steps'"),
        Some((v, line)) => {
            let items = p.seq(v, "steps");
            if v.is_null() || matches!(&v.kind, Kind::Seq(list) if list.is_empty()) {
                p.err(
                    line,
                    None,
                    "'steps' is empty: a task file needs at least one step",
                );
            }
            steps = parse_steps(&mut p, items, &defaults);
        }
    }

    if !p.errors.is_empty() {
        p.errors.sort_by_key(|e| e.line.unwrap_or(0));
        return Err(TaskFileErrors(p.errors));
    }
    Ok(TaskFile {
        version,
        step_timeout,
        working_directory,
        env,
        secrets,
        volumes,
        networks,
        alias,
        steps,
        warnings: p.warnings,
    })
}

/// The YAML document of a processed text (`None` when empty); a syntax
/// error names the user's line.
fn yaml_root(text: &str, line_map: &LineMap) -> Result<Option<Node>, TaskFileErrors> {
    yaml::parse(text).map_err(|e| {
        TaskFileErrors(vec![TaskFileError::at(
            Some(line_map.original(e.line)),
            None,
            format!("invalid yaml: {}", e.message),
        )])
    })
}

/// Only the `secrets:` of a processed text (checked as [`parse`] checks
/// them): what must be resolved before the whole file can be read with
/// `.Secrets` filled in. Other parts of the file are not looked at, so
/// they cannot fail for want of a secret's value.
pub fn declared_secrets(text: &str, line_map: &LineMap) -> Result<Vec<Secret>, TaskFileErrors> {
    let mut p = P {
        map: line_map,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let Some(root) = yaml_root(text, line_map)? else {
        return Ok(Vec::new());
    };
    let Kind::Map(pairs) = &root.kind else {
        return Ok(Vec::new());
    };
    let secrets = pairs
        .iter()
        .find(|(k, _)| k.scalar() == Some("secrets"))
        .map(|(_, v)| parse_secrets(&mut p, v))
        .unwrap_or_default();
    if p.errors.is_empty() {
        Ok(secrets)
    } else {
        Err(TaskFileErrors(p.errors))
    }
}

/// Sets `kv` in `env`, replacing an earlier value of the same name in place.
fn upsert(env: &mut Vec<(String, String)>, kv: (String, String)) {
    match env.iter_mut().find(|(k, _)| *k == kv.0) {
        Some(slot) => slot.1 = kv.1,
        None => env.push(kv),
    }
}

/// Relative working directories are under `/workspace`.
fn resolve_dir(d: &str) -> String {
    let d = d.trim();
    if d.starts_with('/') {
        return d.to_string();
    }
    let rel = d.trim_start_matches("./").trim_end_matches('/');
    if rel.is_empty() || rel == "." {
        WORKSPACE.to_string()
    } else {
        format!("{WORKSPACE}/{rel}")
    }
}

/// Step ids (explicit or `acb_step_<i>`) with the line of each step.
fn step_ids(items: &[Node]) -> Vec<(String, usize)> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let explicit = match &item.kind {
                Kind::Map(pairs) => pairs
                    .iter()
                    .find(|(k, _)| k.scalar() == Some("id"))
                    .and_then(|(_, v)| if v.is_null() { None } else { v.scalar() })
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                _ => None,
            };
            (
                explicit.unwrap_or_else(|| format!("acb_step_{i}")),
                item.line,
            )
        })
        .collect()
}

fn parse_steps(p: &mut P, items: &[Node], d: &TaskDefaults) -> Vec<Step> {
    let ids = step_ids(items);
    // first occurrence of each id
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, (id, line)) in ids.iter().enumerate() {
        let sid = Some(id.as_str());
        if id == RESERVED_STEP_ID {
            p.err(
                *line,
                sid,
                format!("'{RESERVED_STEP_ID}' is a reserved step id"),
            );
        }
        if id.chars().any(char::is_whitespace) {
            p.err(*line, sid, "step id must not contain spaces");
        }
        match index.get(id.as_str()) {
            Some(first) => {
                let first_line = ids.get(*first).map(|(_, l)| p.orig(*l)).unwrap_or(0);
                p.err(
                    *line,
                    sid,
                    format!(
                        "duplicate step id '{id}' (first used by the step on line {first_line})"
                    ),
                );
            }
            None => {
                index.insert(id.as_str(), i);
            }
        }
    }
    let mut steps = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (id, _) = ids.get(i).cloned().unwrap_or_default();
        if let Some(step) = parse_step(p, i, &id, item, &ids, &index, d) {
            steps.push(step);
        }
    }
    steps
}

#[allow(clippy::too_many_arguments)]
fn parse_step(
    p: &mut P,
    i: usize,
    id: &str,
    node: &Node,
    ids: &[(String, usize)],
    index: &HashMap<&str, usize>,
    d: &TaskDefaults,
) -> Option<Step> {
    let sid = Some(id);
    let Some(pairs) = p.pairs(node, "a step", sid) else {
        if node.is_null() {
            p.err(
                node.line,
                sid,
                "a step must be a mapping with one of build, cmd or push",
            );
        }
        return None;
    };
    let mut build = None;
    let mut cmd = None;
    // build, cmd or push was given but refused (its error is reported)
    let mut kind_refused = false;
    let mut push = None;
    let mut when: Option<(Vec<(String, usize)>, usize)> = None;
    let mut timeout = None;
    let mut start_delay = 0u64;
    let mut retries = 0u32;
    let mut retry_delay = None;
    let mut repeat = 0u32;
    let mut flags: BTreeMap<&str, bool> = BTreeMap::new();
    let mut entry_point = None;
    let mut working_directory = None;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut user = None;
    let mut network = None;
    let mut ports = Vec::new();
    let mut expose = Vec::new();
    let mut mounts: Option<(&Node, usize)> = None;
    let mut cache = None;
    let mut isolation = None;
    let mut cpus = None;

    for (k, v, line) in pairs {
        match k {
            "id" => {
                if !v.is_null() && v.scalar().is_none() {
                    p.err(
                        v.line,
                        sid,
                        format!("id must be text, not {}", v.type_name()),
                    );
                }
            }
            "build" => {
                let before = p.errors.len();
                build = p
                    .string(v, "build", sid)
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| (s, v.line));
                kind_refused |= p.errors.len() > before;
            }
            "cmd" => {
                let before = p.errors.len();
                cmd = p
                    .string(v, "cmd", sid)
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| (s, v.line));
                kind_refused |= p.errors.len() > before;
            }
            "push" => {
                let before = p.errors.len();
                let list = p.str_list(v, "push", sid);
                if !list.is_empty() {
                    push = Some((list, v.line));
                }
                kind_refused |= p.errors.len() > before;
            }
            "when" => when = Some((p.str_list(v, "when", sid), v.line)),
            "timeout" => timeout = p.int(v, "timeout", sid),
            "startDelay" => {
                if let Some(n) = p.int(v, "startDelay", sid) {
                    if n < 0 {
                        p.warn(line, sid, format!("startDelay {n} is negative; using 0"));
                    }
                    start_delay = n.max(0) as u64;
                }
            }
            "retries" => {
                if let Some(n) = p.int(v, "retries", sid) {
                    if n < 0 {
                        p.err(v.line, sid, format!("retries must be 0 or more, not {n}"));
                    }
                    retries = n.clamp(0, i64::from(u32::MAX)) as u32;
                }
            }
            "retryDelay" => retry_delay = p.int(v, "retryDelay", sid),
            "repeat" => {
                if let Some(n) = p.int(v, "repeat", sid) {
                    if n < 0 {
                        p.err(v.line, sid, format!("repeat must be 0 or more, not {n}"));
                    }
                    repeat = n.clamp(0, i64::from(u32::MAX)) as u32;
                }
            }
            "ignoreErrors"
            | "detach"
            | "keep"
            | "privileged"
            | "pull"
            | "disableWorkingDirectoryOverride" => {
                if let Some(b) = p.boolean(v, k, sid) {
                    flags.insert(k, b);
                }
            }
            "entryPoint" => entry_point = p.string(v, "entryPoint", sid).map(|s| (s, v.line)),
            "workingDirectory" => {
                working_directory = p
                    .string(v, "workingDirectory", sid)
                    .filter(|s| !s.trim().is_empty())
            }
            "env" => {
                for (entry, eline) in p.str_list(v, "env", sid) {
                    if let Some(kv) = p.env_entry(&entry, eline, "env", sid) {
                        upsert(&mut env, kv);
                    }
                }
            }
            "user" => user = p.string(v, "user", sid),
            "network" => network = p.string(v, "network", sid),
            "ports" => {
                ports = p
                    .str_list(v, "ports", sid)
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect()
            }
            "expose" => {
                expose = p
                    .str_list(v, "expose", sid)
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect()
            }
            "volumeMounts" => mounts = Some((v, line)),
            "cache" => {
                if let Some(s) = p.string(v, "cache", sid) {
                    match s.to_ascii_lowercase().as_str() {
                        "enabled" => cache = Some(true),
                        "disabled" => cache = Some(false),
                        _ => p.err(
                            v.line,
                            sid,
                            format!("cache must be 'enabled' or 'disabled', not '{s}'"),
                        ),
                    }
                }
            }
            "isolation" => isolation = p.string(v, "isolation", sid),
            "cpus" => cpus = p.string(v, "cpus", sid),
            other if UNSUPPORTED_STEP_KEYS.contains(&other) => p.warn(
                line,
                sid,
                format!("'{other}' is not supported by crtask and is ignored"),
            ),
            other => p.warn(line, sid, format!("unknown key '{other}' is ignored")),
        }
    }

    // exactly one of build, cmd, push
    let present: Vec<&str> = [
        build.as_ref().map(|_| "build"),
        cmd.as_ref().map(|_| "cmd"),
        push.as_ref().map(|_| "push"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let kind = match present.len() {
        // the key's own error says what is wrong with it
        0 if kind_refused => None,
        0 => {
            p.err(
                node.line,
                sid,
                "step has none of build, cmd or push: give exactly one",
            );
            None
        }
        1 => {
            if let Some((text, line)) = &build {
                match parse_build(text) {
                    Ok((b, warnings)) => {
                        for w in warnings {
                            p.warn(*line, sid, w);
                        }
                        Some(StepKind::Build(b))
                    }
                    Err(e) => {
                        p.err(*line, sid, e);
                        None
                    }
                }
            } else if let Some((text, line)) = &cmd {
                parse_cmd(p, text, *line, sid, &d.images).map(StepKind::Cmd)
            } else if let Some((list, _)) = &push {
                let mut refs: Vec<String> = Vec::new();
                for (r, rline) in list {
                    let r = r.trim();
                    if let Err(e) = check_image_ref(r) {
                        p.err(*rline, sid, format!("push reference {e}"));
                        continue;
                    }
                    let r = with_default_tag(r);
                    if !refs.contains(&r) {
                        refs.push(r);
                    }
                }
                Some(StepKind::Push(refs))
            } else {
                None
            }
        }
        _ => {
            p.err(
                node.line,
                sid,
                format!(
                    "step has {}: give exactly one of build, cmd or push",
                    present.join(" and ")
                ),
            );
            None
        }
    };

    if let (Some((_, line)), Some(k)) = (&entry_point, &kind) {
        match k {
            StepKind::Cmd(_) => {}
            // ACR runs `docker build` without the step's entry point.
            StepKind::Build(_) => p.warn(
                *line,
                sid,
                "entryPoint is ignored on a build step (as in ACR)",
            ),
            StepKind::Push(_) => p.err(
                *line,
                sid,
                "entryPoint is only allowed on cmd steps, not on a push step",
            ),
        }
    }

    let mut volume_mounts = Vec::new();
    if let Some((mv, mline)) = mounts {
        if matches!(kind, Some(StepKind::Push(_))) {
            p.err(
                mline,
                sid,
                "volumeMounts are only allowed on cmd and build steps",
            );
        }
        volume_mounts = parse_mounts(p, mv, sid, &d.volume_names);
    }

    // when
    let written: Vec<String> = when
        .as_ref()
        .map(|(w, _)| w.iter().map(|(s, _)| s.clone()).collect())
        .unwrap_or_default();
    let mut depends_on = Vec::new();
    match &when {
        Some((list, wline)) if !list.is_empty() => {
            let has_dash = list.iter().any(|(s, _)| s == "-");
            if has_dash && list.len() > 1 {
                p.err(
                    *wline,
                    sid,
                    "when: '-' (start immediately) cannot be combined with step ids",
                );
            }
            let mut seen: Vec<&str> = Vec::new();
            for (dep, dline) in list {
                if dep == "-" {
                    continue;
                }
                if dep.trim().is_empty() {
                    p.err(*dline, sid, "when lists an empty step id");
                    continue;
                }
                if dep == id {
                    p.err(*dline, sid, "step cannot wait for itself in when");
                    continue;
                }
                if seen.contains(&dep.as_str()) {
                    p.err(*dline, sid, format!("when lists '{dep}' twice"));
                    continue;
                }
                seen.push(dep);
                match index.get(dep.as_str()) {
                    None => p.err(*dline, sid, format!("when refers to unknown step '{dep}'")),
                    Some(j) if *j > i => {
                        let l = ids.get(*j).map(|(_, l)| p.orig(*l)).unwrap_or(0);
                        p.err(
                            *dline,
                            sid,
                            format!("when refers to step '{dep}', which comes later in the file (line {l}): a step can only wait for steps before it"),
                        );
                    }
                    Some(j) => depends_on.push(*j),
                }
            }
        }
        _ => {
            if i > 0 {
                depends_on.push(i - 1);
            }
        }
    }

    // env: the step's own variables, then the task's it does not set
    for (k, v) in &d.env {
        if !env.iter().any(|(sk, _)| sk == k) {
            env.push((k.clone(), v.clone()));
        }
    }

    let kind = kind?;
    let flag = |name: &str| flags.get(name).copied().unwrap_or(false);
    Some(Step {
        index: i,
        id: id.to_string(),
        line: p.orig(node.line),
        kind,
        when: written,
        depends_on,
        timeout: timeout
            .filter(|n| *n > 0)
            .map(|n| n as u64)
            .unwrap_or(d.step_timeout),
        start_delay,
        retries,
        retry_delay: retry_delay
            .filter(|n| *n > 0)
            .map(|n| n as u64)
            .unwrap_or(DEFAULT_RETRY_DELAY),
        repeat,
        ignore_errors: flag("ignoreErrors"),
        detach: flag("detach"),
        keep: flag("keep"),
        privileged: flag("privileged"),
        pull: flag("pull"),
        disable_working_directory_override: flag("disableWorkingDirectoryOverride"),
        entry_point: entry_point.map(|(s, _)| s),
        working_directory: working_directory
            .as_deref()
            .map(resolve_dir)
            .or_else(|| d.working_directory.clone()),
        env,
        user,
        network,
        ports,
        expose,
        volume_mounts,
        cache,
        isolation,
        cpus,
    })
}

fn parse_cmd(
    p: &mut P,
    text: &str,
    line: usize,
    sid: Option<&str>,
    images: &BTreeMap<String, String>,
) -> Option<CmdStep> {
    let words = match shell_split(text) {
        Ok(w) => w,
        Err(e) => {
            p.err(line, sid, format!("cmd: {e}"));
            return None;
        }
    };
    let mut words = words.into_iter();
    let Some(first) = words.next().filter(|w| !w.is_empty()) else {
        p.err(line, sid, "cmd has no image");
        return None;
    };
    let (image, alias) = match images.get(&first) {
        Some(img) => (img.clone(), Some(first)),
        None => (first, None),
    };
    if let Err(e) = check_image_ref(&image) {
        p.err(line, sid, format!("cmd image {e}"));
        return None;
    }
    Some(CmdStep {
        raw: text.trim().to_string(),
        image,
        alias,
        args: words.collect(),
    })
}

fn parse_mounts(p: &mut P, v: &Node, sid: Option<&str>, volumes: &[String]) -> Vec<VolumeMount> {
    let items: &[Node] = match &v.kind {
        Kind::Seq(items) => items,
        _ => {
            if !v.is_null() {
                p.err(
                    v.line,
                    sid,
                    format!("volumeMounts must be a list, not {}", v.type_name()),
                );
            }
            return Vec::new();
        }
    };
    let mut out: Vec<VolumeMount> = Vec::new();
    let mut paths: HashMap<String, usize> = HashMap::new();
    for item in items {
        let Some(pairs) = p.pairs(item, "a volume mount", sid) else {
            if item.is_null() {
                p.err(
                    item.line,
                    sid,
                    "a volume mount must be a mapping with 'name' and 'mountPath'",
                );
            }
            continue;
        };
        let mut name = String::new();
        let mut path = String::new();
        for (k, val, line) in pairs {
            match k {
                "name" => name = p.string(val, "volume mount name", sid).unwrap_or_default(),
                "mountPath" => path = p.string(val, "mountPath", sid).unwrap_or_default(),
                other => p.warn(
                    line,
                    sid,
                    format!("unknown volume mount key '{other}' is ignored"),
                ),
            }
        }
        if name.is_empty() || path.is_empty() {
            p.err(
                item.line,
                sid,
                "a volume mount needs both 'name' and 'mountPath'",
            );
            continue;
        }
        if !volumes.contains(&name) {
            p.err(
                item.line,
                sid,
                format!("volume mount '{name}' does not match any volume declared under 'volumes'"),
            );
        }
        if let Some(first) = paths.get(&path) {
            let first = p.orig(*first);
            p.err(
                item.line,
                sid,
                format!("mountPath '{path}' is used twice (first on line {first})"),
            );
            continue;
        }
        paths.insert(path.clone(), item.line);
        out.push(VolumeMount {
            name,
            mount_path: path,
        });
    }
    out
}
