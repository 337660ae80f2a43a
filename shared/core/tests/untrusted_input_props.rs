//! Property tests of every parser of untrusted input in core: git events of
//! the four providers, registry notifications (distribution envelopes and
//! ECR events), CodeBuild state changes, task files, Dockerfiles,
//! `.dockerignore`, cron schedules and ref names. Each runs in the normal
//! suite in about a second: arbitrary bytes, and real payloads (the
//! fixtures) with one field replaced by hostile JSON, must give an answer
//! or a clean error, never a panic; where an invariant exists (a parsed ref
//! is a valid git ref, a cron round-trips), it is checked.
//!
//! Go templates have their own file in `shared/gotemplate/tests`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use crtask_core::build::dockerfile;
use crtask_core::build::dockerignore::DockerIgnore;
use crtask_core::build::taskfile::{self, ParseOptions};
use crtask_core::domain::cron::Cron;
use crtask_core::domain::text::{inert, is_active};
use crtask_core::template::RunVars;
use crtask_core::trigger::build_status;
use crtask_core::trigger::git::event::{self, GitEvent};
use crtask_core::trigger::git::verify::{detect_provider, Provider};
use crtask_core::trigger::registry::event::{parse_distribution, parse_ecr, parse_registry_event};
use crtask_core::trigger::request::Headers;
use proptest::prelude::*;
use serde_json::Value;

fn fixtures(dir: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

type Delivery = (Vec<(String, String)>, Value);

/// The git fixtures: headers and body of each delivery (read once).
fn git_fixtures() -> &'static [Delivery] {
    static ALL: OnceLock<Vec<Delivery>> = OnceLock::new();
    ALL.get_or_init(read_git_fixtures)
}

fn read_git_fixtures() -> Vec<Delivery> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/git");
    fixtures("git", "json")
        .into_iter()
        .map(|(name, body)| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.headers"))).unwrap();
            let headers = text
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            (headers, serde_json::from_slice(&body).unwrap())
        })
        .collect()
}

/// The JSON fixtures of `dir` (registry or codebuild), read once.
fn json_fixtures(dir: &'static str) -> &'static [Value] {
    static REGISTRY: OnceLock<Vec<Value>> = OnceLock::new();
    static CODEBUILD: OnceLock<Vec<Value>> = OnceLock::new();
    let cell = if dir == "registry" {
        &REGISTRY
    } else {
        &CODEBUILD
    };
    cell.get_or_init(|| {
        fixtures(dir, "json")
            .into_iter()
            .filter_map(|(_, b)| serde_json::from_slice(&b).ok())
            .collect()
    })
}

/// Text an attacker would try: controls, ref metacharacters, template and
/// shell syntax, long runs, and any unicode.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f\u{80}-\u{9f}\u{202e}a-z0-9/.@{}~^:*?\\[\\\\ $`;|&-]{0,40}",
        "refs/(heads|tags|notes)/[\\x00-\\x1fa-z./@{}~^:*?\\[\\\\ -]{0,30}",
        Just("0000000000000000000000000000000000000000".to_string()),
        Just("x".repeat(70_000)),
        Just("{{.Run.ID}}{{range .}}{{end}}$(id)`id`\n\u{1b}[2J\0".to_string()),
    ]
}

/// Keys the parsers read, so that generated objects reach deep code.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "ref", "after", "before", "repository", "commits", "head_commit", "pusher",
            "pull_request", "head", "base", "sha", "action", "number", "repo", "full_name",
            "clone_url", "id", "message", "added", "modified", "removed", "deleted", "forced",
            "object_kind", "checkout_sha", "project", "object_attributes", "source_branch",
            "target_branch", "iid", "last_commit", "source", "target", "push", "changes", "new",
            "old", "name", "type", "links", "html", "href", "events", "mediaType", "digest",
            "tag", "url", "request", "host", "action", "detail", "detail-type",
            "repository-name", "image-tag", "image-digest", "action-type", "result", "account",
            "region", "build-id", "build-status", "additional-information", "environment",
            "environment-variables", "value", "total_commits", "zen", "event_name",
        ])
        .prop_map(str::to_string),
        1 => hostile_string(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path to a value inside `v` (objects and arrays), root included.
fn paths(v: &Value) -> Vec<Vec<PathSeg>> {
    let mut out = vec![Vec::new()];
    fn walk(v: &Value, here: &mut Vec<PathSeg>, out: &mut Vec<Vec<PathSeg>>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    here.push(PathSeg::Key(k.clone()));
                    out.push(here.clone());
                    walk(c, here, out);
                    here.pop();
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    here.push(PathSeg::Index(i));
                    out.push(here.clone());
                    walk(c, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    walk(v, &mut Vec::new(), &mut out);
    out
}

#[derive(Debug, Clone)]
enum PathSeg {
    Key(String),
    Index(usize),
}

fn replace_at(v: &mut Value, path: &[PathSeg], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    let child = match (first, v) {
        (PathSeg::Key(k), Value::Object(m)) => m.get_mut(k),
        (PathSeg::Index(i), Value::Array(a)) => a.get_mut(*i),
        _ => None,
    };
    if let Some(c) = child {
        replace_at(c, rest, new);
    }
}

/// `base` with the value at one of its paths (picked by `pick`) replaced.
fn mutate(base: &Value, pick: prop::sample::Index, new: Value) -> Value {
    let all = paths(base);
    let mut v = base.clone();
    replace_at(&mut v, &all[pick.index(all.len())], new);
    v
}

const PROVIDERS: [Provider; 5] = [
    Provider::GitHub,
    Provider::GitLab,
    Provider::Gitea,
    Provider::Forgejo,
    Provider::Bitbucket,
];

const EVENT_TYPES: [&str; 10] = [
    "push",
    "pull_request",
    "pull_request_sync",
    "ping",
    "Push Hook",
    "Tag Push Hook",
    "Merge Request Hook",
    "System Hook",
    "repo:push",
    "issues",
];

/// The ref names of a parsed event must be what git accepts: no control
/// character, no `..`, no `@{`, and so on.
fn check_refs(events: &[GitEvent]) {
    for e in events {
        let names: Vec<&str> = match e {
            GitEvent::Push(p) => [
                Some(p.git_ref.as_str()),
                p.branch.as_deref(),
                p.tag.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect(),
            GitEvent::PullRequest(pr) => vec![pr.head_ref.as_str(), pr.base_ref.as_str()],
            _ => Vec::new(),
        };
        for n in names {
            assert!(
                !n.chars().any(char::is_control),
                "control character in ref {n:?}"
            );
            assert!(!n.contains("..") && !n.contains("@{"), "ref {n:?}");
            assert!(!n.ends_with(".lock") && !n.is_empty(), "ref {n:?}");
        }
    }
}

fn parse_git(provider: Provider, event: &str, ct: Option<&str>, body: &[u8]) {
    let h = vec![(provider.event_header().to_string(), event.to_string())];
    if let Ok(events) = event::parse_all(provider, &Headers::new(&h), ct, body) {
        assert!(!events.is_empty());
        check_refs(&events);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn git_events_of_any_bytes_never_panic(
        p in prop::sample::select(PROVIDERS.to_vec()),
        ev in prop::sample::select(EVENT_TYPES.to_vec()),
        form in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let ct = if form { "application/x-www-form-urlencoded" } else { "application/json" };
        parse_git(p, ev, Some(ct), &body);
        let mut prefixed = b"payload=".to_vec();
        prefixed.extend_from_slice(&body);
        parse_git(p, ev, None, &prefixed);
    }

    #[test]
    fn git_events_of_arbitrary_json_never_panic(
        p in prop::sample::select(PROVIDERS.to_vec()),
        ev in prop::sample::select(EVENT_TYPES.to_vec()),
        v in json_value(),
    ) {
        parse_git(p, ev, Some("application/json"), &serde_json::to_vec(&v).unwrap());
    }

    /// Each real delivery with one field replaced: a clean answer, and any
    /// ref that comes out is one git would accept.
    #[test]
    fn git_fixtures_with_a_hostile_field(
        which in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
        new in json_value(),
    ) {
        let all = git_fixtures();
        let (headers, body) = &all[which.index(all.len())];
        let body = serde_json::to_vec(&mutate(body, pick, new)).unwrap();
        let h = Headers::new(headers);
        let provider = detect_provider(&h).expect("fixture provider");
        if let Ok(events) = event::parse_all(provider, &h, Some("application/json"), &body) {
            check_refs(&events);
        }
    }

    /// A branch holding any control character is refused, whichever
    /// provider sends it.
    #[test]
    fn a_ref_with_a_control_character_is_refused(
        which in any::<prop::sample::Index>(),
        before in "[a-z/]{0,8}",
        control in prop::sample::select(vec!['\n', '\r', '\t', '\u{1b}', '\0', '\u{7f}', '\u{7}']),
        after in "[a-zA-Z ]{0,8}",
    ) {
        let name = format!("{before}{control}{after}");
        let all = git_fixtures();
        let (headers, body) = &all[which.index(all.len())];
        let mut v = body.clone();
        for path in paths(body) {
            let last = path.last().cloned();
            let is_ref = matches!(&last, Some(PathSeg::Key(k)) if k == "ref"
                || k == "name" && path.iter().any(|s| matches!(s, PathSeg::Key(x) if x == "new"))
                || k == "source_branch" || k == "target_branch");
            let in_pr_head = matches!(&last, Some(PathSeg::Key(k)) if k == "ref")
                && path.iter().any(|s| matches!(s, PathSeg::Key(x) if x == "head" || x == "base"));
            if is_ref || in_pr_head {
                let full = if matches!(&last, Some(PathSeg::Key(k)) if k == "ref") && path.len() == 1 {
                    format!("refs/heads/{name}")
                } else {
                    name.clone()
                };
                replace_at(&mut v, &path, Value::from(full));
            }
        }
        let h = Headers::new(headers);
        let provider = detect_provider(&h).unwrap();
        let body = serde_json::to_vec(&v).unwrap();
        match event::parse_all(provider, &h, Some("application/json"), &body) {
            Ok(events) => {
                // Only deliveries that build nothing (ignored actions,
                // deletions without refs) may pass; no ref holds the name.
                check_refs(&events);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.chars().any(is_active), "raw control in {msg:?}");
            }
        }
    }

    #[test]
    fn registry_notifications_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
        v in json_value(),
        host in prop::option::of(hostile_string()),
    ) {
        let _ = parse_registry_event(&body, host.as_deref());
        let bytes = serde_json::to_vec(&v).unwrap();
        let _ = parse_registry_event(&bytes, host.as_deref());
        let _ = parse_distribution(&bytes, host.as_deref());
        let _ = parse_ecr(&bytes);
    }

    #[test]
    fn registry_fixtures_with_a_hostile_field(
        which in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
        new in json_value(),
    ) {
        let all = json_fixtures("registry");
        let base = &all[which.index(all.len())];
        let body = serde_json::to_vec(&mutate(base, pick, new)).unwrap();
        let _ = parse_registry_event(&body, None);
        let _ = parse_registry_event(&body, Some("registry.local:5000"));
    }

    #[test]
    fn codebuild_state_changes_never_panic(
        which in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
        new in json_value(),
    ) {
        let all = json_fixtures("codebuild");
        let base = &all[which.index(all.len())];
        let _ = build_status::parse(&mutate(base, pick, new.clone()));
        let _ = build_status::parse(&new);
    }

    #[test]
    fn task_files_never_panic(src in task_file_text()) {
        let _ = taskfile::load(&src, &RunVars::default(), &BTreeMap::new(), &ParseOptions::default());
    }

    #[test]
    fn task_files_of_any_text_never_panic(src in any::<String>()) {
        let _ = taskfile::load(&src, &RunVars::default(), &BTreeMap::new(), &ParseOptions::default());
    }

    #[test]
    fn dockerfiles_never_panic(
        text in dockerfile_text(),
        target in prop::option::of(hostile_string()),
        platform in prop::option::of("[a-z0-9/]{0,20}"),
        args in prop::collection::btree_map("[A-Z_]{1,8}", hostile_string(), 0..4),
    ) {
        let _ = dockerfile::scan_with_platform(&text, &args, target.as_deref(), platform.as_deref());
    }

    #[test]
    fn dockerfiles_of_any_text_never_panic(text in any::<String>()) {
        let _ = dockerfile::scan(&text, &BTreeMap::new(), None);
    }

    #[test]
    fn dockerignore_never_panics(
        text in prop::collection::vec(dockerignore_line(), 0..12).prop_map(|l| l.join("\n")),
        any_text in any::<String>(),
        probes in prop::collection::vec("[a-z./*!?\\[\\]\\\\-]{0,20}", 0..8),
    ) {
        let _ = DockerIgnore::parse(&any_text);
        if let Ok(ig) = DockerIgnore::parse(&text) {
            for p in &probes {
                let _ = ig.is_excluded(p);
                let _ = ig.may_reinclude_under(p);
            }
        }
    }

    /// A schedule that parses prints back to itself, and its next firing
    /// is later than the time asked about and matches the schedule.
    #[test]
    fn cron_parses_cleanly_and_round_trips(spec in cron_text(), t in any::<u32>()) {
        let Ok(c) = Cron::parse(&spec) else { return Ok(()) };
        let again = Cron::parse(c.as_str()).expect("round trip");
        prop_assert_eq!(&again, &c);
        let at: DateTime<Utc> = Utc.timestamp_opt(i64::from(t), 0).unwrap();
        if let Some(next) = c.next_after(at) {
            prop_assert!(next > at);
            prop_assert!(c.matches(next), "{} does not match {}", spec, next);
        }
        if let Some(prev) = c.prev_at_or_before(at) {
            prop_assert!(prev <= at);
            prop_assert!(c.matches(prev));
        }
    }

    #[test]
    fn cron_of_any_text_never_panics(spec in any::<String>()) {
        let _ = Cron::parse(&spec);
    }

    /// Escaped text holds no active character, and escaping is idempotent.
    #[test]
    fn inert_text_holds_no_control(s in any::<String>()) {
        let once = inert(&s).into_owned();
        prop_assert!(!once.chars().any(is_active));
        prop_assert_eq!(inert(&once).into_owned(), once);
    }
}

fn task_file_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        prop::sample::select(vec![
            "version: v1.1.0",
            "steps:",
            "  - build: -t app:{{.Run.ID}} .",
            "  - cmd: bash echo hi",
            "  - push: [\"app:{{.Run.ID}}\"]",
            "    id: a",
            "    when: [\"-\"]",
            "    when: [\"a\"]",
            "    detach: true",
            "    timeout: 99999999999999999999",
            "    retries: -1",
            "    ports: [\"80:80\"]",
            "    env: [\"A=b\"]",
            "alias:",
            "  values:",
            "    a: b",
            "secrets:",
            "  - id: s",
            "    keyvault: https://x",
            "volumes:",
            "  - name: v",
            "stepTimeout: 0",
            "networks:",
            "env: x",
            "{{",
            "}}",
            "{{range .Values}}",
            "{{end}}",
            "{{.Values.x}}",
            "&a [1]",
            "*a",
            "<<: *a",
            "!!binary AAAA",
            "- [",
            ": ",
            "\t",
            "  -",
            "---",
            "...",
            "? ",
            "|",
            ">-",
            "'",
            "\"",
            "$Registry/a",
            "$$",
            "$(x)",
            "#",
        ])
        .prop_map(str::to_string),
        hostile_string(),
    ];
    prop::collection::vec(line, 0..16).prop_map(|l| l.join("\n"))
}

fn dockerfile_text() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        prop::sample::select(vec![
            "FROM",
            "from",
            "ARG",
            "AS",
            "as",
            "--platform=$BUILDPLATFORM",
            "--platform=",
            "${A}",
            "${A:-x}",
            "${A:+y}",
            "${A-}",
            "${",
            "$",
            "scratch",
            "alpine:3",
            "base@sha256:abc",
            "b",
            "RUN",
            "COPY",
            "--from=b",
            "--from=0",
            "ONBUILD",
            "# escape=`",
            "# syntax=x",
            "\\",
            "`",
            "=",
            "A=1",
            "\"",
            "'",
            "\n",
            " ",
            "\t",
            "ENV",
            "LABEL",
            "stage",
            "${TARGETARCH}",
        ])
        .prop_map(str::to_string),
        hostile_string(),
    ];
    prop::collection::vec(word, 0..40).prop_map(|w| w.join(" "))
}

fn dockerignore_line() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "*", "**", "!*", "!", "**/x", "a/**/b", "[a-", "[!a]", "[^", "\\", "?", "/", "./a",
            "../a", "#c", "", " ", "a\\*", "[]", "[\\]", "**/**/**", "!**/keep",
        ])
        .prop_map(str::to_string),
        "[a-z./*!?\\[\\]\\\\ -]{0,16}",
    ]
}

fn cron_text() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        prop::sample::select(vec![
            "*",
            "*/1",
            "*/0",
            "*/61",
            "0",
            "59",
            "60",
            "0-59",
            "5-1",
            "1-5/2",
            "1,2,3",
            ",",
            "-",
            "/",
            "L",
            "W",
            "?",
            "#",
            "MON",
            "mon-fri",
            "JAN",
            "dec",
            "7",
            "0-7",
            "99999999999999999999",
            "-1",
            "1-",
            "*/",
            "1/1",
        ])
        .prop_map(str::to_string),
        "[0-9*/,-]{1,8}",
    ];
    prop_oneof![
        prop::collection::vec(field, 1..7).prop_map(|f| f.join(" ")),
        prop::sample::select(vec![
            "@hourly",
            "@daily",
            "@weekly",
            "@monthly",
            "@yearly",
            "@annually",
            "@midnight",
            "@reboot",
            "@every 1m",
            "@",
            "@@",
        ])
        .prop_map(str::to_string),
    ]
}
