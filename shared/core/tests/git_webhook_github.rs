//! Every `push`, `ping` and `pull_request` example of npm
//! `@octokit/webhooks-examples`, signed by `@octokit/webhooks-methods`
//! `sign()` (run through node), must verify and parse to the right outcome;
//! the same bodies altered by one byte must not verify.
//!
//! Needs `npm ci --prefix tests/js` (from the workspace root) and `node`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crtask_core::signing::Secret;
use crtask_core::trigger::git::decide::{decide, Decision, SourceTrigger};
use crtask_core::trigger::git::event::{self, GitEvent};
use crtask_core::trigger::git::verify::{self, Provider, VerifyError};
use crtask_core::trigger::request::Headers;
use serde_json::Value;

const SECRETS: [&str; 2] = ["It's a Secret to Everybody", "sécret ✓ with spaces"];

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js")
}

fn examples_index() -> Value {
    let path = js_dir().join("node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): the GitHub example payloads are missing; \
             run `npm ci --prefix tests/js` in the workspace root first",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("webhooks-examples index.json is json")
}

/// Signs each (secret, body) with the reference implementation.
fn node_sign(items: &[(&str, &str)]) -> Vec<String> {
    let methods = js_dir().join("node_modules/@octokit/webhooks-methods");
    assert!(
        methods.is_dir(),
        "{} is missing: run `npm ci --prefix tests/js` in the workspace root first",
        methods.display()
    );
    let mut child = Command::new("node")
        .arg("sign.mjs")
        .current_dir(js_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node tests/js/sign.mjs` ({e}): install node (>= 20) and run `npm ci --prefix tests/js`"));
    let mut input = String::new();
    for (secret, body) in items {
        input.push_str(&serde_json::json!({"secret": secret, "body": body}).to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("node output");
    writer
        .join()
        .expect("writer thread")
        .expect("write to node");
    assert!(
        out.status.success(),
        "node tests/js/sign.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sigs: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(sigs.len(), items.len(), "one signature per body");
    sigs
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

struct Delivery {
    event: String,
    example: Value,
    content_type: &'static str,
    body: String,
    secret: &'static str,
}

fn deliveries() -> Vec<Delivery> {
    let index = examples_index();
    let mut out = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for entry in index.as_array().expect("index is an array") {
        let name = entry["name"].as_str().unwrap_or_default();
        if !["push", "ping", "pull_request"].contains(&name) {
            continue;
        }
        for (i, example) in entry["examples"]
            .as_array()
            .expect("examples")
            .iter()
            .enumerate()
        {
            *counts.entry(name.to_string()).or_insert(0) += 1;
            let json = if i % 2 == 0 {
                serde_json::to_string(example).unwrap()
            } else {
                serde_json::to_string_pretty(example).unwrap()
            };
            let secret = SECRETS[i % SECRETS.len()];
            out.push(Delivery {
                event: name.into(),
                example: example.clone(),
                content_type: "application/json",
                body: json.clone(),
                secret,
            });
            out.push(Delivery {
                event: name.into(),
                example: example.clone(),
                content_type: "application/x-www-form-urlencoded",
                body: format!("payload={}", form_encode(&json)),
                secret,
            });
        }
    }
    for kind in ["push", "ping", "pull_request"] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "no '{kind}' examples found in {counts:?}"
        );
    }
    eprintln!("octokit examples: {counts:?}");
    out
}

fn headers(event: &str, content_type: &str, signature: &str, n: usize) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), content_type.into()),
        ("X-GitHub-Event".into(), event.into()),
        (
            "X-GitHub-Delivery".into(),
            format!("72d3162e-cc78-11e3-81ab-{n:012}"),
        ),
        ("X-Hub-Signature-256".into(), signature.into()),
        ("User-Agent".into(), "GitHub-Hookshot/044aadd".into()),
    ]
}

#[test]
fn every_octokit_example_verifies_with_the_reference_signature_and_not_when_altered() {
    let deliveries = deliveries();
    let items: Vec<(&str, &str)> = deliveries
        .iter()
        .map(|d| (d.secret, d.body.as_str()))
        .collect();
    let sigs = node_sign(&items);
    for (n, (d, sig)) in deliveries.iter().zip(&sigs).enumerate() {
        let h = headers(&d.event, d.content_type, sig, n);
        let h = Headers::new(&h);
        assert_eq!(verify::detect_provider(&h), Some(Provider::GitHub));
        let right = [Secret::new(d.secret)];
        let rotated = [Secret::new("retired-secret"), Secret::new(d.secret)];
        let wrong = [Secret::new("not the secret")];
        let body = d.body.as_bytes();
        assert_eq!(
            verify::verify(Provider::GitHub, &h, body, &right),
            Ok(()),
            "delivery {n} ({})",
            d.event
        );
        assert_eq!(
            verify::verify(Provider::GitHub, &h, body, &rotated),
            Ok(()),
            "delivery {n}: rotation"
        );
        assert_eq!(
            verify::verify(Provider::GitHub, &h, body, &wrong),
            Err(VerifyError::Mismatch),
            "delivery {n}: wrong secret"
        );
        // One byte altered, at the start, middle and end.
        for pos in [0, body.len() / 2, body.len() - 1] {
            let mut altered = body.to_vec();
            altered[pos] ^= 0x01;
            assert_eq!(
                verify::verify(Provider::GitHub, &h, &altered, &right),
                Err(VerifyError::Mismatch),
                "delivery {n}: byte {pos} altered"
            );
        }
        let truncated = &sig[..sig.len() - 1];
        let ht = headers(&d.event, d.content_type, truncated, n);
        assert!(
            matches!(
                verify::verify(Provider::GitHub, &Headers::new(&ht), body, &right),
                Err(VerifyError::Malformed(_))
            ),
            "delivery {n}: truncated signature"
        );
        assert_eq!(
            event::delivery_id(Provider::GitHub, &h),
            Some(format!("72d3162e-cc78-11e3-81ab-{n:012}"))
        );
    }
}

#[test]
fn every_octokit_example_parses_to_the_right_outcome() {
    let tracked = "https://github.com/Codertocat/Hello-World";
    let no_filters: Vec<String> = Vec::new();
    let trigger = SourceTrigger {
        repo_url: tracked,
        branch: "master",
        commit_enabled: true,
        pull_request_enabled: true,
        tags_enabled: false,
        path_filters: &no_filters,
    };
    for (n, d) in deliveries().iter().enumerate() {
        let h = headers(&d.event, d.content_type, "unused", n);
        let event = event::parse(
            Provider::GitHub,
            &Headers::new(&h),
            Some(d.content_type),
            d.body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("delivery {n} ({} {}): {e}", d.event, d.content_type));
        let ex = &d.example;
        match d.event.as_str() {
            "ping" => {
                assert_eq!(
                    event,
                    GitEvent::Ping {
                        zen: ex["zen"].as_str().map(str::to_string)
                    },
                    "delivery {n}"
                );
                assert!(matches!(decide(&event, &trigger), Decision::Ignore(_)));
            }
            "push" => {
                let GitEvent::Push(p) = &event else {
                    panic!("delivery {n}: expected push, got {event:?}")
                };
                let git_ref = ex["ref"].as_str().unwrap();
                assert_eq!(p.git_ref, git_ref);
                assert_eq!(
                    p.branch.as_deref(),
                    git_ref.strip_prefix("refs/heads/"),
                    "delivery {n}"
                );
                assert_eq!(
                    p.tag.as_deref(),
                    git_ref.strip_prefix("refs/tags/"),
                    "delivery {n}"
                );
                assert_eq!(p.deleted, ex["deleted"].as_bool().unwrap(), "delivery {n}");
                assert_eq!(p.forced, ex["forced"].as_bool().unwrap(), "delivery {n}");
                assert_eq!(p.after, ex["after"].as_str().unwrap());
                assert_eq!(p.before, ex["before"].as_str().unwrap());
                assert_eq!(
                    p.repository.full_name.as_deref(),
                    ex["repository"]["full_name"].as_str()
                );
                assert!(p
                    .repository
                    .urls
                    .iter()
                    .any(|u| Some(u.as_str()) == ex["repository"]["clone_url"].as_str()));
                let decision = decide(&event, &trigger);
                match (&p.branch, p.deleted) {
                    (Some(b), false) => assert_eq!(
                        decision,
                        Decision::Build {
                            commit: p.after.clone(),
                            branch: b.clone(),
                            is_tag: false
                        },
                        "delivery {n}"
                    ),
                    (Some(_), true) => assert!(
                        matches!(&decision, Decision::Ignore(r) if r.contains("deleted")),
                        "{decision:?}"
                    ),
                    (None, _) => assert!(
                        matches!(&decision, Decision::Ignore(r) if r.contains("tag")),
                        "{decision:?}"
                    ),
                }
                if let (Some(tag), false) = (&p.tag, p.deleted) {
                    let with_tags = SourceTrigger {
                        tags_enabled: true,
                        ..trigger
                    };
                    assert_eq!(
                        decide(&event, &with_tags),
                        Decision::Build {
                            commit: p.after.clone(),
                            branch: tag.clone(),
                            is_tag: true
                        }
                    );
                }
            }
            "pull_request" => {
                let action = ex["action"].as_str().unwrap();
                let acts = ["opened", "synchronize", "reopened"].contains(&action);
                match &event {
                    GitEvent::PullRequest(pr) => {
                        assert!(acts, "delivery {n}: action '{action}' must not act");
                        assert_eq!(pr.action, action);
                        assert_eq!(pr.number, ex["number"].as_u64().unwrap());
                        assert_eq!(
                            pr.head_sha,
                            ex["pull_request"]["head"]["sha"].as_str().unwrap()
                        );
                        assert_eq!(
                            pr.head_ref,
                            ex["pull_request"]["head"]["ref"].as_str().unwrap()
                        );
                        assert_eq!(
                            pr.base_ref,
                            ex["pull_request"]["base"]["ref"].as_str().unwrap()
                        );
                        let fork = ex["pull_request"]["head"]["repo"]["full_name"]
                            != ex["pull_request"]["base"]["repo"]["full_name"];
                        assert_eq!(pr.from_fork, fork);
                        assert_eq!(
                            decide(&event, &trigger),
                            Decision::BuildPullRequest {
                                number: pr.number,
                                commit: pr.head_sha.clone(),
                                branch: pr.head_ref.clone(),
                                from_fork: fork
                            }
                        );
                        let off = SourceTrigger {
                            pull_request_enabled: false,
                            ..trigger
                        };
                        assert_eq!(
                            decide(&event, &off),
                            Decision::Ignore("pull request trigger is disabled".into())
                        );
                    }
                    GitEvent::Ignored { kind, reason } => {
                        assert!(!acts, "delivery {n}: action '{action}' must act");
                        assert_eq!(kind, "pull_request");
                        assert!(reason.contains(action), "{reason}");
                    }
                    other => panic!("delivery {n}: unexpected {other:?}"),
                }
            }
            other => unreachable!("{other}"),
        }
    }
}

#[test]
fn reference_signer_agrees_on_the_documented_test_vector() {
    let sigs = node_sign(&[("It's a Secret to Everybody", "Hello, World!")]);
    assert_eq!(
        sigs[0],
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    let h = vec![("X-Hub-Signature-256".to_string(), sigs[0].clone())];
    assert_eq!(
        verify::verify(
            Provider::GitHub,
            &Headers::new(&h),
            b"Hello, World!",
            &[Secret::new("It's a Secret to Everybody")]
        ),
        Ok(())
    );
}
