//! `decide::decide` over branches, globs, tags, deletions, path filters,
//! pull requests, forks and repository URL variants; shell syntax in branch
//! names; a form-encoded GitHub delivery from raw bytes to decision.

use crtask_core::signing::Secret;
use crtask_core::trigger::git::decide::{decide, normalize_repo_url, Decision, SourceTrigger};
use crtask_core::trigger::git::event::{self, GitEvent, PullRequest, Push, RepoUrls};
use crtask_core::trigger::git::verify::{self, Provider};
use crtask_core::trigger::request::Headers;
use crtask_testkit::{sign, GithubPush};

const HEAD: &str = "9b2f3c1e5d7a8b6c4d2e0f1a3b5c7d9e1f2a4b6c";
const ZEROS: &str = "0000000000000000000000000000000000000000";

fn repo() -> RepoUrls {
    RepoUrls {
        full_name: Some("Acme/Widget".into()),
        urls: vec![
            "https://github.com/Acme/Widget.git".into(),
            "https://github.com/Acme/Widget".into(),
            "git@github.com:Acme/Widget.git".into(),
        ],
    }
}

fn push(git_ref: &str) -> Push {
    let (branch, tag) = match (
        git_ref.strip_prefix("refs/heads/"),
        git_ref.strip_prefix("refs/tags/"),
    ) {
        (Some(b), _) => (Some(b.to_string()), None),
        (_, Some(t)) => (None, Some(t.to_string())),
        _ => (None, None),
    };
    Push {
        repository: repo(),
        git_ref: git_ref.into(),
        branch,
        tag,
        before: "1111111111111111111111111111111111111111".into(),
        after: HEAD.into(),
        deleted: false,
        forced: false,
        changed_files: vec!["src/main.rs".into(), "README.md".into()],
        commits_complete: true,
        head_message: Some("msg".into()),
        pusher: Some("dev".into()),
    }
}

fn pr(action: &str, base: &str, from_fork: bool) -> PullRequest {
    PullRequest {
        action: action.into(),
        number: 7,
        head_sha: HEAD.into(),
        head_ref: "feature/x".into(),
        base_ref: base.into(),
        repository: repo(),
        head_repository: Some(RepoUrls {
            full_name: Some(
                if from_fork {
                    "mallory/widget"
                } else {
                    "Acme/Widget"
                }
                .into(),
            ),
            urls: vec![],
        }),
        from_fork,
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn build(branch: &str) -> Decision {
    Decision::Build {
        commit: HEAD.into(),
        branch: branch.into(),
        is_tag: false,
    }
}

fn ignore(reason: &str) -> Decision {
    Decision::Ignore(reason.into())
}

#[test]
fn decide_table() {
    let none: Vec<String> = vec![];
    let docs = s(&["docs/**"]);
    let src = s(&["src/**", "Dockerfile"]);
    let base = SourceTrigger {
        repo_url: "https://github.com/acme/widget",
        branch: "main",
        commit_enabled: true,
        pull_request_enabled: false,
        tags_enabled: false,
        path_filters: &none,
    };
    let with = |f: fn(&mut Push)| {
        let mut p = push("refs/heads/main");
        f(&mut p);
        GitEvent::Push(p)
    };
    let on = |git_ref: &str| GitEvent::Push(push(git_ref));
    let cases: Vec<(&str, GitEvent, SourceTrigger, Decision)> = vec![
        // branches
        ("exact branch", on("refs/heads/main"), base, build("main")),
        ("untracked branch", on("refs/heads/dev"), base, ignore("branch 'dev' is not tracked (task tracks 'main')")),
        ("case differs", on("refs/heads/Main"), base, ignore("branch 'Main' is not tracked (task tracks 'main')")),
        ("empty tracked branch means main", on("refs/heads/main"), SourceTrigger { branch: "", ..base }, build("main")),
        ("empty tracked branch, dev", on("refs/heads/dev"), SourceTrigger { branch: " ", ..base }, ignore("branch 'dev' is not tracked (task tracks 'main')")),
        ("glob one level", on("refs/heads/release/1.2"), SourceTrigger { branch: "release/*", ..base }, build("release/1.2")),
        ("glob does not cross /", on("refs/heads/release/1.2/fix"), SourceTrigger { branch: "release/*", ..base }, ignore("branch 'release/1.2/fix' is not tracked (task tracks 'release/*')")),
        ("double star crosses /", on("refs/heads/release/1.2/fix"), SourceTrigger { branch: "release/**", ..base }, build("release/1.2/fix")),
        ("question mark", on("refs/heads/v2"), SourceTrigger { branch: "v?", ..base }, build("v2")),
        ("class", on("refs/heads/hotfix-3"), SourceTrigger { branch: "hotfix-[0-9]", ..base }, build("hotfix-3")),
        ("commit trigger off", on("refs/heads/main"), SourceTrigger { commit_enabled: false, ..base }, ignore("commit trigger is disabled")),
        // deletions, force pushes, several commits
        ("branch deleted", with(|p| { p.deleted = true; p.after = ZEROS.into(); }), base, ignore("branch 'main' deleted: nothing to build")),
        ("zero after without flag", with(|p| p.after = ZEROS.into()), base, ignore("push to branch 'main' has no commit")),
        ("force push builds after", with(|p| p.forced = true), base, build("main")),
        // tags
        ("tag, not enabled", on("refs/tags/v1.0.0"), base, ignore("tag pushes are not enabled (tag 'v1.0.0')")),
        ("tag, enabled", on("refs/tags/v1.0.0"), SourceTrigger { tags_enabled: true, ..base }, Decision::Build { commit: HEAD.into(), branch: "v1.0.0".into(), is_tag: true }),
        ("tag, enabled, commit trigger off", on("refs/tags/v1"), SourceTrigger { tags_enabled: true, commit_enabled: false, ..base }, Decision::Build { commit: HEAD.into(), branch: "v1".into(), is_tag: true }),
        ("tag, enabled, not path filtered", on("refs/tags/v1"), SourceTrigger { tags_enabled: true, path_filters: &docs, ..base }, Decision::Build { commit: HEAD.into(), branch: "v1".into(), is_tag: true }),
        ("tag deleted", GitEvent::Push(Push { deleted: true, after: ZEROS.into(), ..push("refs/tags/v1") }), SourceTrigger { tags_enabled: true, ..base }, ignore("tag 'v1' deleted: nothing to build")),
        ("other ref", on("refs/notes/commits"), base, ignore("ref 'refs/notes/commits' is neither a branch nor a tag")),
        // path filters
        ("filters match", on("refs/heads/main"), SourceTrigger { path_filters: &src, ..base }, build("main")),
        ("filters do not match", on("refs/heads/main"), SourceTrigger { path_filters: &docs, ..base }, ignore("no changed file matches the path filters [docs/**]")),
        ("incomplete commit list builds", with(|p| p.commits_complete = false), SourceTrigger { path_filters: &docs, ..base }, build("main")),
        ("no changed files builds", with(|p| p.changed_files.clear()), SourceTrigger { path_filters: &docs, ..base }, build("main")),
        ("removed file counts", with(|p| p.changed_files = vec!["docs/gone.md".into()]), SourceTrigger { path_filters: &docs, ..base }, build("main")),
        ("untracked branch beats filters", on("refs/heads/dev"), SourceTrigger { path_filters: &docs, ..base }, ignore("branch 'dev' is not tracked (task tracks 'main')")),
        // pull requests
        ("pr, trigger off", GitEvent::PullRequest(pr("opened", "main", false)), base, ignore("pull request trigger is disabled")),
        ("pr, opened", GitEvent::PullRequest(pr("opened", "main", false)), SourceTrigger { pull_request_enabled: true, ..base },
            Decision::BuildPullRequest { number: 7, commit: HEAD.into(), branch: "feature/x".into(), from_fork: false }),
        ("pr, from fork", GitEvent::PullRequest(pr("synchronize", "main", true)), SourceTrigger { pull_request_enabled: true, ..base },
            Decision::BuildPullRequest { number: 7, commit: HEAD.into(), branch: "feature/x".into(), from_fork: true }),
        ("pr, other base", GitEvent::PullRequest(pr("opened", "dev", false)), SourceTrigger { pull_request_enabled: true, ..base },
            ignore("pull request #7 targets branch 'dev', which is not tracked (task tracks 'main')")),
        ("pr, glob base", GitEvent::PullRequest(pr("reopened", "release/3", false)), SourceTrigger { pull_request_enabled: true, branch: "release/*", ..base },
            Decision::BuildPullRequest { number: 7, commit: HEAD.into(), branch: "feature/x".into(), from_fork: false }),
        ("pr, path filters do not apply", GitEvent::PullRequest(pr("opened", "main", false)), SourceTrigger { pull_request_enabled: true, path_filters: &docs, ..base },
            Decision::BuildPullRequest { number: 7, commit: HEAD.into(), branch: "feature/x".into(), from_fork: false }),
        // other events
        ("ping", GitEvent::Ping { zen: Some("zen".into()) }, base, ignore("ping: the webhook works, nothing to build")),
        ("ignored keeps its reason", GitEvent::Ignored { kind: "issues".into(), reason: "event 'issues' does not trigger builds".into() }, base, ignore("event 'issues' does not trigger builds")),
        // repository
        ("other repository", on("refs/heads/main"), SourceTrigger { repo_url: "https://github.com/acme/gadget", ..base },
            ignore("repository does not match: the event is for github.com/acme/widget, the task tracks github.com/acme/gadget")),
        ("credentials never echoed", on("refs/heads/main"), SourceTrigger { repo_url: "https://bot:ghp_SECRET@github.com/acme/gadget.git", ..base },
            ignore("repository does not match: the event is for github.com/acme/widget, the task tracks github.com/acme/gadget")),
        ("pr other repository", GitEvent::PullRequest(pr("opened", "main", false)), SourceTrigger { repo_url: "git@gitlab.com:acme/widget.git", pull_request_enabled: true, ..base },
            ignore("repository does not match: the event is for github.com/acme/widget, the task tracks gitlab.com/acme/widget")),
    ];
    for (name, event, trigger, want) in cases {
        assert_eq!(decide(&event, &trigger), want, "{name}");
    }
}

#[test]
fn repository_url_variants_match() {
    let none: Vec<String> = vec![];
    let event = GitEvent::Push(push("refs/heads/main"));
    let matching = [
        "https://github.com/acme/widget",
        "https://github.com/Acme/Widget.git",
        "https://github.com/acme/widget/",
        "https://github.com/acme/widget.git/",
        "HTTPS://GITHUB.COM/ACME/WIDGET",
        "http://github.com/acme/widget",
        "https://github.com:443/acme/widget",
        "https://x-access-token:abc@github.com/acme/widget.git",
        "git@github.com:acme/widget.git",
        "git@github.com:acme/widget",
        "ssh://git@github.com/acme/widget.git",
        "ssh://git@github.com:22/acme/widget",
        "git://github.com/acme/widget.git",
        "  https://github.com/acme/widget  ",
    ];
    let not_matching = [
        "https://github.com/acme/widget2",
        "https://github.com/acme/widget/sub",
        "https://gitlab.com/acme/widget",
        "https://github.com:8443/acme/widget",
        "https://github.com/acme",
        "",
        "/srv/acme/widget",
    ];
    for (url, want) in matching
        .iter()
        .map(|u| (u, true))
        .chain(not_matching.iter().map(|u| (u, false)))
    {
        let trigger = SourceTrigger {
            repo_url: url,
            branch: "main",
            commit_enabled: true,
            pull_request_enabled: false,
            tags_enabled: false,
            path_filters: &none,
        };
        let got = matches!(decide(&event, &trigger), Decision::Build { .. });
        assert_eq!(got, want, "{url:?} -> {}", normalize_repo_url(url));
    }
}

fn github_push_body(git_ref: &str) -> Vec<u8> {
    GithubPush::new("https://github.com/acme/widget.git", "main", HEAD)
        .git_ref(git_ref)
        .body()
}

#[test]
fn shell_syntax_in_branch_names_is_plain_data() {
    let none: Vec<String> = vec![];
    // Names git accepts (no space: git refuses it, and so does the parser,
    // see trigger/git/event/refname.rs).
    let names = [
        "$(touch${IFS}x)",
        "feature/$(touch${IFS}x)",
        "${IFS}cat${IFS}/etc/passwd",
        "`touch${IFS}x`",
        "a;touch${IFS}x",
        "x|y&&z",
        "it's\"quoted\"",
        "-rf",
    ];
    for name in names {
        let body = github_push_body(&format!("refs/heads/{name}"));
        let h = vec![
            ("X-GitHub-Event".to_string(), "push".to_string()),
            ("X-Hub-Signature-256".to_string(), sign::github("k", &body)),
        ];
        let h = Headers::new(&h);
        assert_eq!(
            verify::verify(Provider::GitHub, &h, &body, &[Secret::new("k")]),
            Ok(())
        );
        let event = event::parse(Provider::GitHub, &h, Some("application/json"), &body).unwrap();
        let GitEvent::Push(p) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(p.branch.as_deref(), Some(name));
        for tracked in [name, "**"] {
            let trigger = SourceTrigger {
                repo_url: "https://github.com/acme/widget",
                branch: tracked,
                commit_enabled: true,
                pull_request_enabled: false,
                tags_enabled: false,
                path_filters: &none,
            };
            assert_eq!(
                decide(&event, &trigger),
                Decision::Build {
                    commit: HEAD.into(),
                    branch: name.to_string(),
                    is_tag: false
                },
                "{name} tracked as {tracked}"
            );
        }
        let other = SourceTrigger {
            repo_url: "https://github.com/acme/widget",
            branch: "main",
            commit_enabled: true,
            pull_request_enabled: false,
            tags_enabled: false,
            path_filters: &none,
        };
        assert_eq!(
            decide(&event, &other),
            Decision::Ignore(format!(
                "branch '{name}' is not tracked (task tracks 'main')"
            ))
        );
    }
}

#[test]
fn form_encoded_github_delivery_from_raw_bytes_to_decision() {
    let json = String::from_utf8(github_push_body("refs/heads/main")).unwrap();
    let form = format!(
        "payload={}",
        form_urlencoded::byte_serialize(json.as_bytes()).collect::<String>()
    );
    let body = form.as_bytes();
    let ct = "application/x-www-form-urlencoded";
    let h = vec![
        ("Content-Type".to_string(), ct.to_string()),
        ("X-GitHub-Event".to_string(), "push".to_string()),
        ("X-GitHub-Delivery".to_string(), "d-1".to_string()),
        (
            "X-Hub-Signature-256".to_string(),
            sign::github("form-secret", body),
        ),
    ];
    let h = Headers::new(&h);
    let secrets = [Secret::new("form-secret")];
    // The signature covers the form body as sent, not the JSON inside it.
    assert_eq!(verify::verify(Provider::GitHub, &h, body, &secrets), Ok(()));
    assert_eq!(
        verify::verify(Provider::GitHub, &h, json.as_bytes(), &secrets),
        Err(verify::VerifyError::Mismatch)
    );
    let event = event::parse(Provider::GitHub, &h, Some(ct), body).unwrap();
    let from_json = event::parse(
        Provider::GitHub,
        &h,
        Some("application/json"),
        json.as_bytes(),
    )
    .unwrap();
    assert_eq!(event, from_json);
    let none: Vec<String> = vec![];
    let trigger = SourceTrigger {
        repo_url: "https://github.com/acme/widget.git",
        branch: "main",
        commit_enabled: true,
        pull_request_enabled: false,
        tags_enabled: false,
        path_filters: &none,
    };
    assert_eq!(decide(&event, &trigger), build("main"));
}
