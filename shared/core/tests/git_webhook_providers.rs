//! GitLab, Gitea, Forgejo and Bitbucket deliveries from
//! `tests/fixtures/git/`: bodies with the headers the providers send and
//! signatures computed by openssl (see the README there).

use std::path::PathBuf;

use crtask_core::signing::Secret;
use crtask_core::trigger::git::decide::{decide, Decision, SourceTrigger};
use crtask_core::trigger::git::event::{self, GitEvent, PullRequest, Push};
use crtask_core::trigger::git::verify::{self, Provider, VerifyError};
use crtask_core::trigger::request::Headers;

const HMAC_SECRET: &str = "fixture-secret";
const GITLAB_TOKEN: &str = "gitlab-fixture-token";

struct Fixture {
    name: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Fixture {
    fn load(name: &'static str) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/git");
        let body = std::fs::read(dir.join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("{name}.json: {e}"));
        let text = std::fs::read_to_string(dir.join(format!("{name}.headers")))
            .unwrap_or_else(|e| panic!("{name}.headers: {e}"));
        let headers = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Fixture {
            name,
            headers,
            body,
        }
    }

    fn h(&self) -> Headers<'_> {
        Headers::new(&self.headers)
    }

    fn provider(&self) -> Provider {
        verify::detect_provider(&self.h())
            .unwrap_or_else(|| panic!("{}: no provider detected", self.name))
    }

    fn secret(&self) -> Secret {
        match self.provider() {
            Provider::GitLab => Secret::new(GITLAB_TOKEN),
            _ => Secret::new(HMAC_SECRET),
        }
    }

    fn events(&self) -> Vec<GitEvent> {
        let ct = crtask_core::trigger::request::HeaderLookup::get(&self.h(), "content-type")
            .map(str::to_string);
        event::parse_all(self.provider(), &self.h(), ct.as_deref(), &self.body)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    fn push(&self) -> Push {
        match self.events().as_slice() {
            [GitEvent::Push(p)] => p.clone(),
            other => panic!("{}: expected one push, got {other:?}", self.name),
        }
    }

    fn pull_request(&self) -> PullRequest {
        match self.events().as_slice() {
            [GitEvent::PullRequest(p)] => p.clone(),
            other => panic!("{}: expected one pull request, got {other:?}", self.name),
        }
    }
}

const ALL: &[(&str, Provider)] = &[
    ("gitlab-push", Provider::GitLab),
    ("gitlab-push-truncated", Provider::GitLab),
    ("gitlab-tag-push", Provider::GitLab),
    ("gitlab-branch-delete", Provider::GitLab),
    ("gitlab-merge-request-open", Provider::GitLab),
    ("gitlab-merge-request-update-fork", Provider::GitLab),
    ("gitlab-merge-request-close", Provider::GitLab),
    ("gitea-push", Provider::Gitea),
    ("gitea-pull-request-synchronized", Provider::Gitea),
    ("gitea-pull-request-opened-fork", Provider::Gitea),
    ("forgejo-push", Provider::Forgejo),
    ("bitbucket-push", Provider::Bitbucket),
    ("bitbucket-tag-push", Provider::Bitbucket),
    ("bitbucket-branch-delete", Provider::Bitbucket),
    ("bitbucket-push-two-refs", Provider::Bitbucket),
];

#[test]
fn every_fixture_is_detected_verified_and_rejected_when_tampered() {
    for (name, provider) in ALL {
        let f = Fixture::load(name);
        assert_eq!(f.provider(), *provider, "{name}");
        let right = [f.secret()];
        let rotated = [Secret::new("old-one"), f.secret()];
        let wrong = [Secret::new("wrong")];
        assert_eq!(
            verify::verify(*provider, &f.h(), &f.body, &right),
            Ok(()),
            "{name}"
        );
        assert_eq!(
            verify::verify(*provider, &f.h(), &f.body, &rotated),
            Ok(()),
            "{name}: rotation"
        );
        assert_eq!(
            verify::verify(*provider, &f.h(), &f.body, &wrong),
            Err(VerifyError::Mismatch),
            "{name}: wrong secret"
        );
        assert_eq!(
            verify::verify(*provider, &f.h(), &f.body, &[]),
            Err(VerifyError::NoSecretConfigured),
            "{name}"
        );
        let mut altered = f.body.clone();
        let mid = altered.len() / 2;
        altered[mid] ^= 0x20;
        let want = if *provider == Provider::GitLab {
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        };
        // GitLab's token does not cover the body; every other provider's signature does.
        assert_eq!(
            verify::verify(*provider, &f.h(), &altered, &right),
            want,
            "{name}: altered body"
        );
        // Without the signature header: missing, naming the header.
        let sig_header = provider.signature_header();
        let stripped: Vec<(String, String)> = f
            .headers
            .iter()
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case(sig_header) && !n.eq_ignore_ascii_case("X-Gitea-Signature")
            })
            .cloned()
            .collect();
        match verify::verify(*provider, &Headers::new(&stripped), &f.body, &right) {
            Err(VerifyError::Missing(h)) => assert_eq!(h, sig_header, "{name}"),
            other => panic!("{name}: expected missing header, got {other:?}"),
        }
        assert!(
            event::delivery_id(*provider, &f.h()).is_some(),
            "{name}: delivery id"
        );
        assert!(!f.events().is_empty(), "{name}");
    }
}

#[test]
fn gitlab_push_and_tag_push() {
    let p = Fixture::load("gitlab-push").push();
    assert_eq!(p.branch.as_deref(), Some("main"));
    let raw: serde_json::Value =
        serde_json::from_slice(&Fixture::load("gitlab-push").body).unwrap();
    assert_eq!(p.after, raw["after"].as_str().unwrap());
    assert!(p.commits_complete);
    assert_eq!(
        p.changed_files,
        vec![
            "docs/index.md",
            "docs/old.md",
            "go.mod",
            "services/api/handler.go"
        ]
    );
    assert_eq!(p.head_message.as_deref(), Some("Update docs\n"));
    assert_eq!(p.pusher.as_deref(), Some("jdoe"));
    assert_eq!(p.repository.full_name.as_deref(), Some("acme/widget"));
    assert!(p
        .repository
        .urls
        .contains(&"git@gitlab.example.com:acme/widget.git".to_string()));

    let t = Fixture::load("gitlab-tag-push").push();
    assert_eq!(t.tag.as_deref(), Some("v1.4.0"));
    // The commit an annotated tag points to (checkout_sha), not the tag object.
    let raw: serde_json::Value =
        serde_json::from_slice(&Fixture::load("gitlab-tag-push").body).unwrap();
    assert_eq!(t.after, raw["checkout_sha"].as_str().unwrap());
    assert_ne!(t.after, raw["after"].as_str().unwrap());
    assert_eq!(t.head_message.as_deref(), Some("Release 1.4.0"));

    let d = Fixture::load("gitlab-branch-delete").push();
    assert!(d.deleted);
    assert_eq!(d.branch.as_deref(), Some("feature/old"));

    let tr = Fixture::load("gitlab-push-truncated").push();
    assert!(!tr.commits_complete, "35 commits pushed, 20 listed");
    assert!(tr.changed_files.iter().all(|f| f.starts_with("docs/")));
}

#[test]
fn gitlab_merge_requests() {
    let open = Fixture::load("gitlab-merge-request-open").pull_request();
    assert_eq!(
        (
            open.number,
            open.action.as_str(),
            open.head_ref.as_str(),
            open.base_ref.as_str()
        ),
        (17, "open", "feature/rate-limit", "main")
    );
    assert!(!open.from_fork);
    let fork = Fixture::load("gitlab-merge-request-update-fork").pull_request();
    assert!(fork.from_fork);
    assert_eq!(
        fork.head_repository.and_then(|r| r.full_name).as_deref(),
        Some("sroe/widget")
    );
    assert_eq!(fork.repository.full_name.as_deref(), Some("acme/widget"));
    match Fixture::load("gitlab-merge-request-close")
        .events()
        .as_slice()
    {
        [GitEvent::Ignored { kind, reason }] => {
            assert_eq!(kind, "pull_request");
            assert!(reason.contains("'close'"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gitea_and_forgejo() {
    let p = Fixture::load("gitea-push").push();
    assert_eq!(p.branch.as_deref(), Some("main"));
    assert!(p.commits_complete);
    assert_eq!(p.changed_files, vec!["Dockerfile", "docs/setup.md"]);
    assert_eq!(p.pusher.as_deref(), Some("ada"));
    let sync = Fixture::load("gitea-pull-request-synchronized").pull_request();
    assert_eq!(
        (sync.action.as_str(), sync.number, sync.from_fork),
        ("synchronized", 8, false)
    );
    let fork = Fixture::load("gitea-pull-request-opened-fork").pull_request();
    assert!(fork.from_fork);
    let fj = Fixture::load("forgejo-push");
    let p = fj.push();
    assert_eq!(p.branch.as_deref(), Some("release/2.0"));
    assert!(!p.commits_complete, "total_commits 6, one listed");
    assert_eq!(
        event::delivery_id(Provider::Forgejo, &fj.h()).as_deref(),
        Some("5eed0005-4e1a-4b2c-9d3e-000000000005")
    );
}

#[test]
fn bitbucket_pushes() {
    let p = Fixture::load("bitbucket-push").push();
    assert_eq!(
        (p.git_ref.as_str(), p.branch.as_deref(), p.forced),
        ("refs/heads/main", Some("main"), true)
    );
    assert!(!p.commits_complete, "bitbucket lists no files");
    assert_eq!(p.after.len(), 40);
    assert_eq!(p.pusher.as_deref(), Some("lpark"));
    assert_eq!(p.repository.urls, vec!["https://bitbucket.org/acme/widget"]);
    let t = Fixture::load("bitbucket-tag-push").push();
    assert_eq!((t.tag.as_deref(), t.deleted), (Some("v2.1.0"), false));
    assert!(t.before.bytes().all(|b| b == b'0'));
    let d = Fixture::load("bitbucket-branch-delete").push();
    assert!(d.deleted && d.after.bytes().all(|b| b == b'0'));
    assert_eq!(d.branch.as_deref(), Some("feature/gone"));
    let two = Fixture::load("bitbucket-push-two-refs").events();
    let refs: Vec<&str> = two
        .iter()
        .map(|e| match e {
            GitEvent::Push(p) => p.git_ref.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(refs, ["refs/heads/develop", "refs/tags/v2.2.0-rc1"]);
}

#[test]
fn fixtures_decide_for_a_task() {
    let filters = vec!["services/**".to_string()];
    let none: Vec<String> = Vec::new();
    let gl = |branch, filters| SourceTrigger {
        repo_url: "https://gitlab.example.com/Acme/Widget.git",
        branch,
        commit_enabled: true,
        pull_request_enabled: true,
        tags_enabled: false,
        path_filters: filters,
    };
    let only = |name| -> GitEvent { Fixture::load(name).events().remove(0) };
    let commit = |name| match only(name) {
        GitEvent::Push(p) => p.after,
        GitEvent::PullRequest(p) => p.head_sha,
        other => panic!("{other:?}"),
    };
    let cases: Vec<(&str, SourceTrigger, Decision)> = vec![
        (
            "gitlab-push",
            gl("main", &none),
            Decision::Build {
                commit: commit("gitlab-push"),
                branch: "main".into(),
                is_tag: false,
            },
        ),
        (
            "gitlab-push",
            gl("main", &filters),
            Decision::Build {
                commit: commit("gitlab-push"),
                branch: "main".into(),
                is_tag: false,
            },
        ),
        (
            "gitlab-push-truncated",
            gl("main", &filters),
            Decision::Build {
                commit: commit("gitlab-push-truncated"),
                branch: "main".into(),
                is_tag: false,
            },
        ),
        (
            "gitlab-push",
            gl("develop", &none),
            Decision::Ignore("branch 'main' is not tracked (task tracks 'develop')".into()),
        ),
        (
            "gitlab-tag-push",
            gl("main", &none),
            Decision::Ignore("tag pushes are not enabled (tag 'v1.4.0')".into()),
        ),
        (
            "gitlab-tag-push",
            SourceTrigger {
                tags_enabled: true,
                ..gl("main", &none)
            },
            Decision::Build {
                commit: commit("gitlab-tag-push"),
                branch: "v1.4.0".into(),
                is_tag: true,
            },
        ),
        (
            "gitlab-branch-delete",
            gl("feature/*", &none),
            Decision::Ignore("branch 'feature/old' deleted: nothing to build".into()),
        ),
        (
            "gitlab-merge-request-open",
            gl("main", &none),
            Decision::BuildPullRequest {
                number: 17,
                commit: commit("gitlab-merge-request-open"),
                branch: "feature/rate-limit".into(),
                from_fork: false,
            },
        ),
        (
            "gitlab-merge-request-update-fork",
            gl("main", &none),
            Decision::BuildPullRequest {
                number: 17,
                commit: commit("gitlab-merge-request-update-fork"),
                branch: "feature/rate-limit".into(),
                from_fork: true,
            },
        ),
        (
            "gitlab-merge-request-open",
            SourceTrigger {
                pull_request_enabled: false,
                ..gl("main", &none)
            },
            Decision::Ignore("pull request trigger is disabled".into()),
        ),
        (
            "gitea-push",
            SourceTrigger {
                repo_url: "git@git.local:acme/widget.git",
                ..gl("main", &none)
            },
            Decision::Build {
                commit: commit("gitea-push"),
                branch: "main".into(),
                is_tag: false,
            },
        ),
        (
            "forgejo-push",
            SourceTrigger {
                repo_url: "https://codeberg.example/acme/widget",
                ..gl("release/*", &filters)
            },
            Decision::Build {
                commit: commit("forgejo-push"),
                branch: "release/2.0".into(),
                is_tag: false,
            },
        ),
        (
            "bitbucket-push",
            SourceTrigger {
                repo_url: "git@bitbucket.org:acme/widget.git",
                ..gl("main", &filters)
            },
            Decision::Build {
                commit: commit("bitbucket-push"),
                branch: "main".into(),
                is_tag: false,
            },
        ),
        (
            "bitbucket-branch-delete",
            SourceTrigger {
                repo_url: "https://bitbucket.org/acme/widget",
                ..gl("**", &none)
            },
            Decision::Ignore("branch 'feature/gone' deleted: nothing to build".into()),
        ),
    ];
    for (name, trigger, want) in cases {
        assert_eq!(decide(&only(name), &trigger), want, "{name}");
    }
    // gitea-push changes Dockerfile and docs only: outside `services/**`.
    let t = SourceTrigger {
        repo_url: "http://git.local:3000/acme/widget",
        ..gl("main", &filters)
    };
    assert_eq!(
        decide(&only("gitea-push"), &t),
        Decision::Ignore("no changed file matches the path filters [services/**]".into())
    );
    // A GitLab fixture does not match a GitHub task.
    let gh = SourceTrigger {
        repo_url: "https://github.com/acme/widget",
        ..gl("main", &none)
    };
    assert!(
        matches!(decide(&only("gitlab-push"), &gh), Decision::Ignore(r) if r.starts_with("repository does not match"))
    );
}

#[test]
fn truncated_and_mangled_bodies_never_panic() {
    for (name, provider) in ALL {
        let f = Fixture::load(name);
        for cut in (0..f.body.len()).step_by(f.body.len() / 97 + 1) {
            let body = &f.body[..cut];
            match event::parse_all(*provider, &f.h(), Some("application/json"), body) {
                Ok(events) => assert!(!events.is_empty(), "{name} cut at {cut}"),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        // Replace every string and number by null / a wrong type: errors or events, no panic.
        let mut v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
        mangle(&mut v);
        let body = serde_json::to_vec(&v).unwrap();
        let _ = event::parse_all(*provider, &f.h(), None, &body);
    }
}

fn mangle(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(m) => m.values_mut().for_each(mangle),
        Value::Array(a) => a.iter_mut().for_each(mangle),
        Value::String(_) => *v = Value::Bool(true),
        Value::Number(_) => *v = Value::String("-1".into()),
        _ => *v = Value::Null,
    }
}
