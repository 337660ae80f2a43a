//! Tests of the whole task-file pipeline: parse/validate, samples, graph, executor.

use super::*;
use crate::domain::model::RunStatus;
use chrono::TimeZone;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn vars() -> RunVars {
    RunVars {
        id: "ca1".into(),
        registry: "roo.azurecr.io".into(),
        date: chrono::Utc
            .with_ymd_and_hms(2010, 5, 20, 13, 14, 22)
            .unwrap(),
        os: "linux".into(),
        architecture: "amd64".into(),
        ..Default::default()
    }
}

fn load_str(src: &str) -> Result<TaskFile, TaskFileErrors> {
    load(src, &vars(), &BTreeMap::new(), &ParseOptions::default())
}

fn ok(src: &str) -> TaskFile {
    match load_str(src) {
        Ok(tf) => tf,
        Err(e) => panic!("expected a valid file, got:\n{e}\n--- file:\n{src}"),
    }
}

// ---------------------------------------------------------------- parsing

#[test]
fn defaults_and_properties() {
    let tf = ok("\
# a comment line that shifts nothing but is counted
stepTimeout: 0
workingDirectory: src
env: [\"A=1,B=2\", C=3]
steps:
  - build: -t app:$ID -f Dockerfile .
  - id: test
    cmd: bash -c 'echo \"hi there\"'
    env: [B=step, D=4]
    timeout: 30
    retries: 2
    retryDelay: 0
    repeat: 1
    startDelay: 3
    ignoreErrors: true
    detach: yes
    keep: true
    privileged: true
    pull: true
    entryPoint: sh
    workingDirectory: /abs
    disableWorkingDirectoryOverride: true
    user: root
    network: host
    ports: [8080, \"9090:90\"]
    expose: [\"80\"]
  - push: [app, app, 'reg:5000/x:1', app:latest, app@sha256:abc]
    workingDirectory: sub/dir
");
    assert_eq!(tf.version, TaskVersion::V1_0_0);
    assert_eq!(tf.step_timeout, 600);
    assert!(tf.warnings.is_empty(), "{:?}", tf.warnings);
    let ids: Vec<&str> = tf.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["acb_step_0", "test", "acb_step_2"]);
    let [b, t, p] = [&tf.steps[0], &tf.steps[1], &tf.steps[2]];
    assert_eq!(b.line, 6);
    assert_eq!(t.line, 7);
    assert_eq!(b.timeout, 600);
    assert_eq!(b.retry_delay, 5);
    assert_eq!(b.working_directory.as_deref(), Some("/workspace/src"));
    assert_eq!(
        b.env,
        vec![
            ("A".into(), "1".into()),
            ("B".into(), "2".into()),
            ("C".into(), "3".into())
        ]
    );
    match &b.kind {
        StepKind::Build(bs) => {
            // v1.0.0: `$ID` is not an alias
            assert_eq!(bs.tags, vec!["app:$ID"]);
            assert_eq!(bs.context, BuildContext::Local(".".into()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.timeout, 30);
    assert_eq!(
        (t.retries, t.retry_delay, t.repeat, t.start_delay),
        (2, 5, 1, 3)
    );
    assert!(t.ignore_errors && t.detach && t.keep && t.privileged && t.pull);
    assert!(t.disable_working_directory_override);
    assert_eq!(t.entry_point.as_deref(), Some("sh"));
    assert_eq!(t.working_directory.as_deref(), Some("/abs"));
    assert_eq!(t.user.as_deref(), Some("root"));
    assert_eq!(t.network.as_deref(), Some("host"));
    assert_eq!(t.ports, vec!["8080", "9090:90"]);
    assert_eq!(t.expose, vec!["80"]);
    assert_eq!(
        t.env,
        vec![
            ("B".into(), "step".into()),
            ("D".into(), "4".into()),
            ("A".into(), "1".into()),
            ("C".into(), "3".into())
        ]
    );
    match &t.kind {
        StepKind::Cmd(c) => {
            // v1.0.0: image aliases are not expanded either (ACR).
            assert_eq!(c.image, "bash");
            assert_eq!(c.alias, None);
            assert_eq!(c.args, vec!["-c", "echo \"hi there\""]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.working_directory.as_deref(), Some("/workspace/sub/dir"));
    assert_eq!(
        p.kind,
        StepKind::Push(vec![
            "app:latest".into(),
            "reg:5000/x:1".into(),
            "app@sha256:abc".into()
        ])
    );
    assert!(p.is_push());
    assert_eq!(p.attempts(), 1);
    assert_eq!(t.attempts(), 3);
}

#[test]
fn versions() {
    for (v, want) in [
        ("v1.0.0", TaskVersion::V1_0_0),
        ("V1.1.0", TaskVersion::V1_1_0),
        ("1.0-PREVIEW-1", TaskVersion::Preview1),
        ("'v1.1.0'", TaskVersion::V1_1_0),
    ] {
        let tf = ok(&format!("version: {v}\nsteps:\n  - cmd: x\n"));
        assert_eq!(tf.version, want, "{v}");
    }
    let e = load_str("version: v2.0.0\nsteps:\n  - cmd: x\n").unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].line, Some(1));
    assert!(e.0[0].message.contains("invalid version 'v2.0.0'"), "{e}");
}

#[test]
fn step_timeout_copied_and_custom_image_alias() {
    let tf = ok("\
version: v1.1.0
stepTimeout: 42
alias:
  values:
    tool: 127.0.0.1:5000/tool:1
steps:
  - cmd: tool run $ID
  - cmd: curl -s x
    timeout: -1
");
    assert_eq!(tf.steps[0].timeout, 42);
    assert_eq!(tf.steps[1].timeout, 42);
    match &tf.steps[0].kind {
        StepKind::Cmd(c) => {
            assert_eq!(c.image, "127.0.0.1:5000/tool:1");
            assert_eq!(c.args, vec!["run", "ca1"]);
        }
        other => panic!("{other:?}"),
    }
    let mut opts = ParseOptions::default();
    opts.image_aliases
        .insert("curl".into(), "local/curl:1".into());
    let tf = load(
        "version: v1.1.0\nsteps:\n  - cmd: curl -s x\n",
        &vars(),
        &BTreeMap::new(),
        &opts,
    )
    .unwrap();
    match &tf.steps[0].kind {
        StepKind::Cmd(c) => assert_eq!(c.image, "local/curl:1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn image_aliases_only_from_v1_1_0() {
    let mut opts = ParseOptions::default();
    opts.image_aliases
        .insert("tool".into(), "local/tool:1".into());
    let image = |src: &str| match load(src, &vars(), &BTreeMap::new(), &opts).unwrap().steps[0]
        .kind
        .clone()
    {
        StepKind::Cmd(c) => (c.image, c.alias),
        other => panic!("{other:?}"),
    };
    for v in ["", "version: v1.0.0\n", "version: 1.0-preview-1\n"] {
        assert_eq!(
            image(&format!("{v}steps:\n  - cmd: tool x\n")),
            ("tool".to_string(), None),
            "{v:?}"
        );
        assert_eq!(
            image(&format!("{v}steps:\n  - cmd: bash -c x\n")).0,
            "bash",
            "{v:?}"
        );
    }
    assert_eq!(
        image("version: v1.1.0\nsteps:\n  - cmd: tool x\n"),
        ("local/tool:1".to_string(), Some("tool".to_string()))
    );
    assert_eq!(
        image("version: V1.1.0\nsteps:\n  - cmd: bash -c x\n").0,
        "mcr.microsoft.com/acr/bash:fe316c9"
    );
}

#[test]
fn env_values_lose_their_shell_quotes_but_nothing_expands() {
    let tf = ok(r#"env: ["T='task level',U=plain"]
steps:
  - cmd: x
    env:
      - Q='a b'
      - D="x"
      - E=it\'s
      - M="mixed 'single' inside" plus
      - V=$HOME
      - W="$HOME"
      - "'K=quoted whole'"
      - EMPTY=''
"#);
    let env: Vec<(&str, &str)> = tf.steps[0]
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("Q", "a b"),
            ("D", "x"),
            ("E", "it's"),
            ("M", "mixed 'single' inside plus"),
            ("V", "$HOME"),
            ("W", "$HOME"),
            ("K", "quoted whole"),
            ("EMPTY", ""),
            ("T", "task level"),
            ("U", "plain"),
        ]
    );
    let e = load_str("steps:\n  - id: a\n    cmd: x\n    env: [\"Q='open\"]\n").unwrap_err();
    assert_eq!(e.0[0].line, Some(4), "{e}");
    assert!(e.0[0].message.contains("unterminated single quote"), "{e}");
}

#[test]
fn entry_point_on_a_build_step_is_accepted_and_ignored() {
    let tf = ok("steps:\n  - id: b\n    build: -t app .\n    entryPoint: sh\n");
    assert_eq!(tf.warnings.len(), 1, "{:?}", tf.warnings);
    assert_eq!(tf.warnings[0].line, 4);
    assert!(
        tf.warnings[0].message.contains("ignored"),
        "{:?}",
        tf.warnings
    );
}

#[test]
fn secrets_need_a_keyvault() {
    let tf = ok("secrets:\n  - id: tok\n    keyvault: crtask://tok\nsteps:\n  - cmd: x\n");
    assert_eq!(tf.secrets[0].keyvault, "crtask://tok");
    for (src, line, want) in [
        (
            "secrets:\n  - id: tok\nsteps:\n  - cmd: x\n",
            2,
            "secret 'tok' has no 'keyvault'",
        ),
        (
            "secrets:\n  - id: tok\n    keyvault: ''\nsteps:\n  - cmd: x\n",
            2,
            "secret 'tok' has no 'keyvault'",
        ),
        (
            "secrets:\n  - id: 'a b'\n    keyvault: crtask://x\nsteps:\n  - cmd: x\n",
            2,
            "cannot contain spaces",
        ),
    ] {
        let e = load_str(src).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].line, Some(line), "{e}");
        assert!(e.0[0].message.contains(want), "{src}: {e}");
    }
}

#[test]
fn unknown_keys_warn_with_lines() {
    let tf = ok("\
# leading comment
steps:
  - cmd: x
    colour: blue
    exitedWith: [1]
flavour: vanilla
");
    let w: Vec<String> = tf.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.contains(&"line 6: unknown key 'flavour' is ignored".to_string()),
        "{w:?}"
    );
    assert!(
        w.contains(&"line 4: step 'acb_step_0': unknown key 'colour' is ignored".to_string()),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.starts_with("line 5: step 'acb_step_0': 'exitedWith'")),
        "{w:?}"
    );
}

/// A step key of the wrong shape gets its own error only, not also "none of
/// build, cmd or push".
#[test]
fn a_refused_step_kind_is_reported_once() {
    for (src, want) in [
        (
            "steps:\n  - push: reg/app:1\n",
            "push must be a list, not a scalar",
        ),
        ("steps:\n  - cmd: [a, b]\n", "cmd must be"),
    ] {
        let errs = load_str(src).expect_err(src).0;
        assert_eq!(errs.len(), 1, "{src}: {errs:?}");
        assert!(errs[0].message.contains(want), "{src}: {errs:?}");
    }
}

/// Every invalid file of the spec's list: rejected, naming the step and the
/// user's line (each file starts with comment lines, which are removed before
/// parsing, to prove lines map back).
#[test]
fn invalid_files_name_step_and_line() {
    let head = "# comment one\n  # comment two\nversion: v1.1.0\n";
    // (body after head, line of the error in the full file, step id, message part)
    let cases: &[(&str, usize, Option<&str>, &str)] = &[
        ("steps:\n  - id: a\n    cmd: x\n    build: .\n", 5, Some("a"), "build and cmd"),
        ("steps:\n  - id: a\n    push: [x]\n    cmd: x\n", 5, Some("a"), "cmd and push"),
        ("steps:\n  - id: a\n    timeout: 5\n", 5, Some("a"), "none of build, cmd or push"),
        ("steps:\n  - cmd: x\n  - env: [A=1]\n", 6, Some("acb_step_1"), "none of build, cmd or push"),
        ("steps:\n  - id: my step\n    cmd: x\n", 5, Some("my step"), "must not contain spaces"),
        ("steps:\n  - id: a\n    cmd: x\n  - id: a\n    cmd: y\n", 7, Some("a"), "duplicate step id 'a' (first used by the step on line 5)"),
        ("steps:\n  - id: acb_root\n    cmd: x\n", 5, Some("acb_root"), "reserved"),
        ("steps:\n  - id: a\n    cmd: x\n  - id: b\n    cmd: y\n    when: [\"-\", a]\n", 9, Some("b"), "cannot be combined"),
        ("steps:\n  - id: a\n    cmd: x\n    when: [a]\n", 7, Some("a"), "cannot wait for itself"),
        ("steps:\n  - id: a\n    cmd: x\n    when:\n      - nope\n", 8, Some("a"), "unknown step 'nope'"),
        ("steps:\n  - id: a\n    cmd: x\n    when: [b]\n  - id: b\n    cmd: y\n", 7, Some("a"), "comes later in the file (line 8)"),
        ("steps:\n  - id: a\n    cmd: x\n  - id: b\n    cmd: y\n    when: [a, a]\n", 9, Some("b"), "lists 'a' twice"),
        ("steps:\n  - id: a\n    cmd: x\n    retries: -1\n", 7, Some("a"), "retries must be 0 or more"),
        ("steps:\n  - id: a\n    cmd: x\n    repeat: -2\n", 7, Some("a"), "repeat must be 0 or more"),
        ("steps:\n  - id: a\n    cmd: x\n    timeout: soon\n", 7, Some("a"), "timeout must be a whole number"),
        ("steps:\n  - id: a\n    push: [x]\n    entryPoint: sh\n", 7, Some("a"), "entryPoint is only allowed on cmd steps"),
        ("volumes:\n  - name: v\n    secret:\n      f: aGk=\nsteps:\n  - id: a\n    push: [x]\n    volumeMounts:\n      - name: v\n        mountPath: /m\n", 11, Some("a"), "only allowed on cmd and build"),
        ("volumes:\n  - name: v\n    secret:\n      f: aGk=\nsteps:\n  - id: a\n    cmd: x\n    volumeMounts:\n      - name: v\n        mountPath: /m\n      - name: v\n        mountPath: /m\n", 14, Some("a"), "mountPath '/m' is used twice"),
        ("steps:\n  - id: a\n    cmd: x\n    volumeMounts:\n      - name: ghost\n        mountPath: /m\n", 8, Some("a"), "'ghost' does not match any volume"),
        ("steps:\n  - id: a\n    build: -t x .\n    cache: maybe\n", 7, Some("a"), "cache must be 'enabled' or 'disabled'"),
        ("steps:\n  - id: a\n    cmd: x\n    env: [NOVALUE]\n", 7, Some("a"), "env entry 'NOVALUE' must be NAME=VALUE"),
        ("env: [\"A=1,B\"]\nsteps:\n  - cmd: x\n", 4, None, "env entry 'B' must be NAME=VALUE"),
        ("steps:\n  - id: a\n    build: -t x:1\n", 6, Some("a"), "no context"),
        ("steps:\n  - id: a\n    cmd: bash 'unterminated\n", 6, Some("a"), "unterminated single quote"),
        ("steps:\n  - id: a\n    push: [\"x y\"]\n", 6, Some("a"), "white space"),
        ("steps:\n  - id: a\n    when: \"-\"\n    cmd: x\n", 6, Some("a"), "when must be a list"),
        ("steps:\n  - id: a\n    cmd: x\n    ignoreErrors: perhaps\n", 7, Some("a"), "must be true or false"),
        ("steps: []\n", 4, None, "'steps' is empty"),
        ("stepz:\n  - cmd: x\n", 3, None, "has no 'steps'"),
        ("steps:\n  - cmd: x\n  - cmd: [unclosed\n", 7, None, "invalid yaml"),
        ("steps:\n  - id: a\n    cmd: x\n    cmd: y\n", 7, Some("a"), "duplicate key 'cmd'"),
        ("alias:\n  values:\n    bad-name: x\nsteps:\n  - cmd: x\n", 6, None, "invalid alias name 'bad-name'"),
        ("volumes:\n  - name: v\n    secret:\n      f: '***'\nsteps:\n  - cmd: x\n", 7, None, "is not base64"),
        ("secrets:\n  - keyvault: https://x\nsteps:\n  - cmd: x\n", 5, None, "a secret has no 'id'"),
        ("secrets:\n  - id: s\nsteps:\n  - cmd: x\n", 5, None, "secret 's' has no 'keyvault'"),
    ];
    // the head itself is fine
    assert!(load_str(&format!(
        "{head}steps:\n  - id: a\n    when: [\"-\"]\n    cmd: x\n"
    ))
    .is_ok());
    for (body, line, step, msg) in cases {
        let src = format!("{head}{body}");
        let errs = match load_str(&src) {
            Ok(_) => panic!("accepted an invalid file:\n{src}"),
            Err(e) => e,
        };
        let hit = errs.0.iter().find(|e| e.message.contains(msg));
        let Some(hit) = hit else {
            panic!("no error containing {msg:?} in:\n{errs}\n--- file:\n{src}");
        };
        assert_eq!(
            hit.line,
            Some(*line),
            "line of {msg:?}: {errs}\n--- file:\n{src}"
        );
        assert_eq!(hit.step.as_deref(), *step, "step of {msg:?}: {errs}");
        let shown = hit.to_string();
        assert!(shown.starts_with(&format!("line {line}: ")), "{shown}");
        if let Some(s) = step {
            assert!(shown.contains(&format!("step '{s}': ")), "{shown}");
        }
    }
}

#[test]
fn all_errors_are_collected() {
    let src = "\
version: v9
steps:
  - id: a
    cmd: x
    retries: -1
  - id: b
    when: [zzz]
  - id: a
    push: [ok]
";
    let e = load_str(src).unwrap_err();
    let lines: Vec<Option<usize>> = e.0.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![Some(1), Some(5), Some(6), Some(7), Some(8)],
        "{e}"
    );
    let shown = e.to_string();
    assert!(shown.starts_with("task file has 5 errors:\n"), "{shown}");
    let core: crate::Error = e.into();
    assert!(
        matches!(core, crate::Error::Invalid(m) if m.contains("when refers to unknown step 'zzz'"))
    );
}

#[test]
fn no_panic_on_mangled_files() {
    let inputs = [
        "{", "[", "- - -", "steps: {a: b}", "steps:\n  - [1, 2]", "steps:\n  - ~", "&a [*a]",
        "a: &x [1]\nb: *x\nsteps: *x", "steps:\n  - cmd: !!binary aGk=", "version: v1.1.0\nalias: [1]\n",
        "version: v1.1.0\nalias:\n  values: 3\n", "---\nsteps: []\n---\nsteps: []\n", "\u{feff}steps:\n  - cmd: x",
        "steps:\n  - cmd: x\n    when: [[a]]\n", "steps:\n  - cmd: x\n    volumeMounts: [~, 1, {name: 1}]\n",
        "volumes: [~, {name: a}, {name: a, secret: 1}]\nsecrets: [1, {id: [1]}]\nnetworks: [{}, ~]\nsteps:\n  - cmd: x\n",
    ];
    for src in inputs {
        // only must not panic
        let _ = load_str(src);
    }
}

#[test]
fn no_panic_on_truncated_acr_samples() {
    let Some(dir) = acr_samples("no_panic_on_truncated_acr_samples") else {
        return;
    };
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        for (i, _) in src.char_indices().step_by(3) {
            // only must not panic
            let _ = load_str(&src[..i]);
        }
    }
}

#[test]
fn template_errors_name_the_line() {
    // the stand-in and the real renderer both reject an unclosed action
    let e = load_str("# c\nsteps:\n  - cmd: x {{ .Values.a\n").unwrap_err();
    assert_eq!(e.0[0].line, Some(3), "{e}");
}

// The one lookup of ACR's samples, shared with the end-to-end tests.
#[path = "../../../../../tests/src/acr_samples.rs"]
mod samples;
use samples::acr_samples;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

#[test]
fn acr_samples_parse_and_validate() {
    let Some(dir) = acr_samples("acr_samples_parse_and_validate") else {
        return;
    };
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    assert!(files.len() >= 20, "only {} sample files", files.len());
    let values: crate::domain::model::Values = [
        ("secret1", "s1"),
        ("secret2", "s2"),
        ("mysecret", "m"),
        ("REGISTRY1", "r1.azurecr.io"),
        ("REGISTRY2", "r2.azurecr.io"),
        ("registryName", "roo"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
    .collect();
    let mut by_name = BTreeMap::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let tf = load(&src, &vars(), &values, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{} rejected:\n{e}", f.display()));
        assert!(!tf.steps.is_empty());
        let g = plan(&tf);
        assert_eq!(g.nodes.len(), tf.steps.len());
        by_name.insert(f.file_name().unwrap().to_string_lossy().to_string(), tf);
    }

    // spot checks of what the samples mean
    let tf = &by_name["build-run-hello-world.yaml"];
    match &tf.steps[0].kind {
        StepKind::Build(b) => {
            assert_eq!(b.tags, vec!["roo.azurecr.io/hello-world:ca1"]);
            assert_eq!(b.file.as_deref(), Some("hello-world.dockerfile"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        tf.steps[1].kind,
        StepKind::Push(vec!["roo.azurecr.io/hello-world:ca1".into()])
    );

    let tf = &by_name["build-hello-world.yaml"];
    match &tf.steps[0].kind {
        StepKind::Build(b) => assert_eq!(b.tags, vec!["roo.azurecr.io/hello-world"]),
        other => panic!("{other:?}"),
    }

    let tf = &by_name["bash-echo-3.yaml"];
    match &tf.steps[0].kind {
        StepKind::Cmd(c) => {
            assert_eq!(c.image, "bash:3.0");
            assert_eq!(c.alias, None);
        }
        other => panic!("{other:?}"),
    }

    let tf = &by_name["managed-identities.yaml"];
    assert_eq!(
        tf.alias.values.get("repo").map(String::as_str),
        Some("my-website")
    );
    // `MY_SECRET='{{.Secrets.name}}'`: quotes removed, as ACR's shell does.
    assert_eq!(tf.steps[0].env, vec![("MY_SECRET".into(), "".into())]);
    match &tf.steps[0].kind {
        StepKind::Cmd(c) => assert_eq!(
            c.args,
            vec!["-c", "if [ -z \"$MY_SECRET\" ]; then echo \"Secret not resolved\"; else echo \"Secret resolved\"; fi"]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        tf.steps[2].kind,
        StepKind::Push(vec!["roo.azurecr.io/repo:ca1".into()])
    );

    let tf = &by_name["mounts-multistep.yaml"];
    assert_eq!(tf.volumes.len(), 2);
    assert_eq!(
        tf.volumes[0].secret.get("mysecret1").map(String::as_str),
        Some("czE=")
    );
    assert_eq!(tf.steps[1].volume_mounts.len(), 2);

    let tf = &by_name["files-working-directory.yaml"];
    match &tf.steps[0].kind {
        StepKind::Cmd(c) => assert_eq!(c.args, vec!["-c", "echo $(date) >> hello.txt"]),
        other => panic!("{other:?}"),
    }

    let tf = &by_name["build-test-update-hello-world.yaml"];
    match &tf.steps[5].kind {
        StepKind::Cmd(c) => {
            assert_eq!(c.image, "cmd.azurecr.io/helm:v2.11.0-rc.2");
            assert_eq!(
                c.args.last().map(String::as_str),
                Some("helloworld.image=roo.azurecr.io/hello-world:ca1")
            );
        }
        other => panic!("{other:?}"),
    }
    // two parallel builds, then hello-world waits for the second build (the
    // step before it), func-tests for hello-world, ...
    assert_eq!(
        plan(tf).levels(),
        vec![
            vec!["acb_step_0", "acb_step_1"],
            vec!["hello-world"],
            vec!["func-tests"],
            vec!["acb_step_4"],
            vec!["acb_step_5"]
        ]
    );

    let g = plan(&by_name["when-parallel-dependent.yaml"]);
    assert_eq!(
        g.levels(),
        vec![
            vec!["build-hello-world", "build-hello-world-test"],
            vec!["hello-world"],
            vec!["func-tests"],
            vec!["acb_step_4"]
        ]
    );
    let g = plan(&by_name["when-sequential-default.yaml"]);
    assert_eq!(g.levels().len(), 3);

    let tf = &by_name["buildx.yml"];
    assert_eq!(tf.steps[0].cache, Some(true));
}

#[test]
fn missing_values_render_empty_in_samples_too() {
    let Some(dir) = acr_samples("missing_values_render_empty_in_samples_too") else {
        return;
    };
    let src = std::fs::read_to_string(dir.join("mounts-secrets.yaml")).unwrap();
    let tf = load_str(&src).unwrap();
    assert_eq!(tf.secrets[0].id, "sampleSecret");
    assert_eq!(
        tf.volumes[0].secret.get("mysecret1").map(String::as_str),
        Some("")
    );
}

mod exec;

#[test]
fn odd_shapes_give_one_clear_error_each() {
    let cases: &[(&str, &str)] = &[
        (
            "steps:\n  - ~\n",
            "line 2: step 'acb_step_0': a step must be a mapping",
        ),
        (
            "steps:\n  - [1]\n",
            "line 2: step 'acb_step_0': a step must be a mapping, not a list",
        ),
        ("steps: 3\n", "line 1: steps must be a list, not a scalar"),
        (
            "- a\n",
            "line 1: the task file must be a mapping with 'steps', not a list",
        ),
        ("", "the task file is empty"),
        ("# only a comment\n", "the task file is empty"),
        // ACR's yaml.v2 refuses a quoted string for a number or a boolean.
        (
            "steps:\n  - cmd: a\n    retries: \"2\"\n",
            "line 3: step 'acb_step_0': retries must be a whole number, not the quoted text '2'",
        ),
        (
            "steps:\n  - cmd: a\n    ignoreErrors: 'true'\n",
            "line 3: step 'acb_step_0': ignoreErrors must be true or false, not the quoted text 'true'",
        ),
    ];
    for (src, want) in cases {
        let e = load_str(src).unwrap_err();
        assert_eq!(e.0.len(), 1, "{src:?}: {e}");
        assert!(e.to_string().starts_with(want), "{src:?}: {e}");
    }
}

#[test]
fn secrets_are_read_before_the_rest_of_the_file() {
    // The image comes from a secret: without its value the step is invalid,
    // but the secrets themselves can be read first.
    let src =
        "secrets:\n  - id: img\n    keyvault: crtask://img\nsteps:\n  - cmd: {{.Secrets.img}}\n";
    let data = template_data(&vars(), &BTreeMap::new());
    let declared = secrets_of(src, &data).unwrap();
    assert_eq!(declared.len(), 1);
    assert_eq!(declared[0].id, "img");
    assert!(load_str(src).is_err(), "empty .Secrets.img: no image");
    let data = data_with_placeholder_secrets(src, &vars(), &BTreeMap::new(), "secret").unwrap();
    let tf = load_with_data(src, &data, &ParseOptions::default()).unwrap();
    match &tf.steps[0].kind {
        StepKind::Cmd(c) => assert_eq!(c.image, "secret"),
        other => panic!("{other:?}"),
    }
    // Errors in the secrets are reported by the first read already.
    let e = secrets_of("secrets:\n  - id: s\nsteps: [1]\n", &data).unwrap_err();
    assert!(e.to_string().contains("no 'keyvault'"), "{e}");
    // A file without secrets has none, whatever else is wrong with it.
    assert_eq!(secrets_of("steps: 3\n", &data).unwrap(), Vec::new());
}

/// A byte order mark (Windows editors write one) is skipped, as ACR's YAML
/// parser does: the version is read and aliases expand.
#[test]
fn a_byte_order_mark_is_skipped() {
    let mut opts = ParseOptions::default();
    opts.image_aliases
        .insert("tool".into(), "local/tool:1".into());
    let tf = load(
        "\u{feff}version: v1.1.0\nsteps:\n  - cmd: tool x\n",
        &vars(),
        &BTreeMap::new(),
        &opts,
    )
    .unwrap();
    assert_eq!(tf.version, TaskVersion::V1_1_0);
    match &tf.steps[0].kind {
        StepKind::Cmd(c) => assert_eq!(c.image, "local/tool:1"),
        other => panic!("{other:?}"),
    }
}

/// ACR's renderer deletes `<no value>` from the rendered file, literal
/// ones too.
#[test]
fn no_value_is_deleted_as_acr_does() {
    for src in [
        "steps:\n  - cmd: img echo x<no value>y\n",
        "steps:\n  - cmd: img echo x{{.Values.missing}}<no value>y\n",
    ] {
        match &ok(src).steps[0].kind {
            StepKind::Cmd(c) => assert_eq!(c.args, ["echo", "xy"], "{src}"),
            other => panic!("{other:?}"),
        }
    }
}
