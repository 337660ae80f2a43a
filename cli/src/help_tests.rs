//! The command tree as users meet it: every flag explained, AWS flags under
//! one heading, `exec` hidden, completion scripts that shells accept.

use super::Cli;
use clap::CommandFactory;

/// Every argument of every (sub)command, with its command path.
fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
    for a in cmd.get_arguments() {
        out.push((path.to_string(), a.clone()));
    }
    for sub in cmd.get_subcommands() {
        walk(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

fn all_args() -> Vec<(String, clap::Arg)> {
    let mut out = Vec::new();
    walk(&Cli::command(), "crtask", &mut out);
    out
}

#[test]
fn every_flag_and_argument_has_help_text() {
    let missing: Vec<String> = all_args()
        .into_iter()
        .filter(|(_, a)| !matches!(a.get_id().as_str(), "help" | "version"))
        .filter(|(_, a)| {
            a.get_help().is_none_or(|h| h.to_string().trim().is_empty())
                && a.get_long_help().is_none()
        })
        .map(|(path, a)| format!("{path}: {}", a.get_id()))
        .collect();
    assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    // The walk sees the whole tree (a broken walk would pass trivially).
    assert!(all_args().len() > 100);
}

#[test]
fn every_command_says_what_it_does() {
    fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(p.clone());
            }
            check(sub, &p, missing);
        }
    }
    let mut missing = Vec::new();
    check(&Cli::command(), "crtask", &mut missing);
    assert!(missing.is_empty(), "commands without help: {missing:?}");
}

#[test]
fn aws_flags_sit_under_one_heading_and_exec_is_hidden() {
    let aws: Vec<(String, clap::Arg)> = all_args()
        .into_iter()
        .filter(|(_, a)| a.get_long().is_some_and(|l| l.starts_with("aws-")))
        .collect();
    assert!(aws.len() >= 12, "{}", aws.len());
    let headings: std::collections::BTreeSet<Option<String>> = aws
        .iter()
        .map(|(_, a)| a.get_help_heading().map(str::to_string))
        .collect();
    assert_eq!(headings.len(), 1, "{headings:?}");
    assert!(headings
        .iter()
        .next()
        .and_then(|h| h.as_deref())
        .is_some_and(|h| h.starts_with("AWS platform")));
    // Listed once, in the top-level help; accepted after any command.
    // The whole tree is valid (clap checks a command only when it is used).
    super::command().debug_assert();
    let serve = help_of_serve();
    assert!(serve.contains("--registry"), "{serve}");
    let help_of = |args: &[&str]| {
        let e = super::command()
            .try_get_matches_from(args)
            .expect_err("--help stops parsing");
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        e.render().to_string()
    };
    let sub_help = help_of(&["crtask", "task", "list", "--help"]);
    assert!(!sub_help.contains("--aws-"), "{sub_help}");
    assert!(sub_help.contains("--query"), "{sub_help}");
    let root_help = help_of(&["crtask", "--help"]);
    assert!(root_help.contains("AWS platform"), "{root_help}");
    assert!(root_help.contains("--aws-table"), "{root_help}");
    let m = super::command()
        .try_get_matches_from(["crtask", "task", "list", "--aws-table", "t"])
        .unwrap();
    let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&m).unwrap();
    assert_eq!(cli.globals.aws.table.as_deref(), Some("t"));
    let cmd = Cli::command();
    let exec = cmd.find_subcommand("exec").expect("exec exists");
    assert!(exec.is_hide_set());
    let mut help = Vec::new();
    Cli::command().write_help(&mut help).unwrap();
    let help = String::from_utf8(help).unwrap();
    assert!(!help.contains("\n  exec "), "{help}");
    assert!(help.contains("\n  completion "), "{help}");
}

#[test]
fn az_flag_names_and_the_old_names_both_parse() {
    use clap::Parser;
    for args in [
        &[
            "crtask",
            "build",
            "--arg",
            "A=1",
            "--secret-arg",
            "S=2",
            ".",
        ][..],
        &[
            "crtask",
            "build",
            "--build-arg",
            "A=1",
            "--secret-build-arg",
            "S=2",
            ".",
        ],
        &[
            "crtask",
            "task",
            "create",
            "-n",
            "t",
            "--arg",
            "A=1",
            "--secret-arg",
            "S=2",
        ],
        &[
            "crtask",
            "task",
            "update",
            "-n",
            "t",
            "--build-arg",
            "A=1",
            "--secret-build-arg",
            "S=2",
        ],
        &["crtask", "task", "logs", "web"],
        &["crtask", "task", "logs", "--name", "web"],
        &["crtask", "task", "logs", "--run-id", "ca1"],
        &["crtask", "run", "--cmd", "alpine echo hi", "/dev/null"],
        &[
            "crtask",
            "-o",
            "tsv",
            "--query",
            "[].runId",
            "task",
            "list-runs",
        ],
        &["crtask", "task", "list", "-o", "yaml"],
    ] {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
    for bad in [
        &["crtask", "task", "logs", "web", "--run-id", "ca1"][..],
        &["crtask", "task", "logs", "web", "--name", "api"],
        &[
            "crtask",
            "run",
            "--cmd",
            "alpine",
            "-f",
            "t.yaml",
            "/dev/null",
        ],
        &["crtask", "run", "/dev/null"],
        &["crtask", "-o", "xml", "task", "list"],
        &["crtask", "completion", "powershell"],
    ] {
        assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn completion_scripts_generate_and_bash_accepts_its_own() {
    use super::commands::completion::{script, Shell};
    let bash = String::from_utf8(script::<Cli>(Shell::Bash)).unwrap();
    assert!(
        bash.contains("crtask") && bash.contains("list-runs"),
        "{bash}"
    );
    assert!(!bash.contains(" exec "), "the hidden exec is not offered");
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("crtask.bash");
    std::fs::write(&f, &bash).unwrap();
    let st = std::process::Command::new("bash")
        .arg("-n")
        .arg(&f)
        .status()
        .expect("bash runs");
    assert!(st.success(), "bash -n rejected the script");
    // A broken script is rejected by the same check (it can fail).
    std::fs::write(&f, "_crtask() { if then\n").unwrap();
    let st = std::process::Command::new("bash")
        .arg("-n")
        .arg(&f)
        .status()
        .unwrap();
    assert!(!st.success());
    let zsh = String::from_utf8(script::<Cli>(Shell::Zsh)).unwrap();
    assert!(zsh.starts_with("#compdef crtask"), "{zsh}");
    let fish = String::from_utf8(script::<Cli>(Shell::Fish)).unwrap();
    assert!(fish.contains("complete -c crtask"), "{fish}");
}

fn help_of_serve() -> String {
    super::command()
        .try_get_matches_from(["crtask", "serve", "--help"])
        .expect_err("--help stops parsing")
        .render()
        .to_string()
}
