//! Shell-like word splitting and the `docker build` arguments of build steps.

use super::{BuildContext, BuildStep};

/// Splits a command line into words as a POSIX shell would, without any
/// expansion: whitespace separates words, `'...'` is literal, `"..."` keeps
/// spaces and honours `\"`, `\\`, `\$` and `` \` ``, and a backslash outside
/// quotes takes the next character literally (backslash-newline joins lines).
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    shell_words(s, true)
}

/// Removes shell quoting from `s` as `sh` does for one word of a command
/// line, without any expansion (`$HOME` stays as written): `'a b'` gives
/// `a b`, `"x"` gives `x`, `\"` gives `"`. Unquoted blanks are kept as
/// they are (a shell would split the word there).
pub fn shell_unquote(s: &str) -> Result<String, String> {
    Ok(shell_words(s, false)?.concat())
}

/// The one tokenizer of [`shell_split`] and [`shell_unquote`]: with `split`
/// false, unquoted whitespace is kept instead of separating words.
fn shell_words(s: &str, split: bool) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated single quote in '{s}'")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("unterminated double quote in '{s}'")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated double quote in '{s}'")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(x) => {
                    in_word = true;
                    cur.push(x);
                }
                None => {
                    in_word = true;
                    cur.push('\\');
                }
            },
            c if split && c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `docker build` options that take a value (long and short names).
const VALUE_FLAGS: &[&str] = &[
    "--add-host",
    "--allow",
    "--annotation",
    "--attest",
    "--build-arg",
    "--build-context",
    "--builder",
    "--cache-from",
    "--cache-to",
    "--call",
    "--cgroup-parent",
    "--cpu-period",
    "--cpu-quota",
    "--cpu-shares",
    "-c",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--file",
    "-f",
    "--iidfile",
    "--isolation",
    "--label",
    "--memory",
    "-m",
    "--memory-swap",
    "--metadata-file",
    "--network",
    "--output",
    "-o",
    "--platform",
    "--progress",
    "--provenance",
    "--sbom",
    "--secret",
    "--security-opt",
    "--shm-size",
    "--ssh",
    "--tag",
    "-t",
    "--target",
    "--ulimit",
];

/// `docker build` options that take no value.
const BOOL_FLAGS: &[&str] = &[
    "--compress",
    "--disable-content-trust",
    "--force-rm",
    "--load",
    "--no-cache",
    "--pull",
    "--push",
    "--quiet",
    "-q",
    "--rm",
    "--squash",
    "--check",
];

/// Parses the text of a `build:` step. Returns the step and warnings.
pub(crate) fn parse_build(raw: &str) -> Result<(BuildStep, Vec<String>), String> {
    let args = shell_split(raw)?;
    let mut step = BuildStep {
        raw: raw.trim().to_string(),
        args: args.clone(),
        tags: Vec::new(),
        file: None,
        build_args: Vec::new(),
        target: None,
        platform: None,
        no_cache: false,
        pull: false,
        extra_args: Vec::new(),
        context: BuildContext::Local(String::new()),
    };
    let mut warnings = Vec::new();
    let mut contexts: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            contexts.extend(it.by_ref());
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            contexts.push(arg);
            continue;
        }
        // --name=value, -t=value, -tvalue
        let (name, inline): (String, Option<String>) = if let Some((n, v)) = arg.split_once('=') {
            (n.to_string(), Some(v.to_string()))
        } else if !arg.starts_with("--") && arg.len() > 2 {
            let mut cs = arg.chars();
            let flag: String = cs.by_ref().take(2).collect();
            if VALUE_FLAGS.contains(&flag.as_str()) {
                (flag, Some(cs.collect()))
            } else {
                (arg.clone(), None)
            }
        } else {
            (arg.clone(), None)
        };
        if VALUE_FLAGS.contains(&name.as_str()) {
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| format!("build option '{name}' needs a value"))?,
            };
            match name.as_str() {
                "-t" | "--tag" => step.tags.push(value),
                "-f" | "--file" => step.file = Some(value),
                "--build-arg" => step.build_args.push(value),
                "--target" => step.target = Some(value),
                "--platform" => step.platform = Some(value),
                _ => {
                    step.extra_args.push(name);
                    step.extra_args.push(value);
                }
            }
        } else if BOOL_FLAGS.contains(&name.as_str()) {
            let on = !matches!(inline.as_deref(), Some("false" | "0"));
            match name.as_str() {
                "--no-cache" => step.no_cache = on,
                "--pull" => step.pull = on,
                _ => step.extra_args.push(arg.clone()),
            }
        } else {
            warnings.push(format!(
                "unknown docker build option '{name}' is passed on as it is"
            ));
            step.extra_args.push(arg.clone());
        }
    }
    let context =
        match contexts.len() {
            0 => return Err(
                "build step has no context: end the arguments with '.', a directory or a git url"
                    .to_string(),
            ),
            1 => contexts.pop().unwrap_or_default(),
            _ => {
                return Err(format!(
                "build step has more than one context ({}): quote arguments that contain spaces",
                contexts
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            }
        };
    if context == "-" {
        return Err("build step context '-' (standard input) is not supported".to_string());
    }
    step.context = classify_context(&context);
    for t in &step.tags {
        check_image_ref(t).map_err(|e| format!("build tag {e}"))?;
    }
    Ok((step, warnings))
}

/// Sorts a build context into a local path, a git repository or a remote file.
pub fn classify_context(c: &str) -> BuildContext {
    let lower = c.to_ascii_lowercase();
    let base = lower.split('#').next().unwrap_or("");
    let is_git = lower.starts_with("git://")
        || lower.starts_with("git@")
        || lower.starts_with("github.com/")
        || ((lower.starts_with("https://")
            || lower.starts_with("http://")
            || lower.starts_with("ssh://"))
            && (base.ends_with(".git") || lower.starts_with("ssh://")));
    if is_git {
        BuildContext::Git(c.to_string())
    } else if lower.starts_with("https://") || lower.starts_with("http://") {
        BuildContext::Url(c.to_string())
    } else {
        BuildContext::Local(c.to_string())
    }
}

/// Light checks of an image reference as written in a task file.
pub(crate) fn check_image_ref(r: &str) -> Result<(), String> {
    if r.is_empty() {
        return Err("'' is empty".to_string());
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("'{r}' contains white space"));
    }
    if r.starts_with('/') || r.starts_with(':') || r.starts_with('@') {
        return Err(format!(
            "'{r}' has no repository name (a template value may be missing)"
        ));
    }
    Ok(())
}

/// Adds `:latest` to a reference that has neither a tag nor a digest.
pub fn with_default_tag(r: &str) -> String {
    if r.contains('@') {
        return r.to_string();
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_split_table() {
        let cases: &[(&str, &[&str])] = &[
            ("bash echo hello world", &["bash", "echo", "hello", "world"]),
            ("  a   b\n c\t", &["a", "b", "c"]),
            (
                r#"bash -c 'if [ -z "$X" ]; then echo a; fi'"#,
                &["bash", "-c", r#"if [ -z "$X" ]; then echo a; fi"#],
            ),
            (r#"echo "a b" "q\"x" "\n""#, &["echo", "a b", "q\"x", "\\n"]),
            (r"a\ b c\\d", &["a b", r"c\d"]),
            ("x '' \"\"", &["x", "", ""]),
            ("a'b'\"c\"d", &["abcd"]),
            ("line \\\nnext", &["line", "next"]),
            ("", &[]),
        ];
        for (input, want) in cases {
            assert_eq!(shell_split(input).unwrap(), *want, "input {input:?}");
        }
        assert!(shell_split("echo 'open")
            .unwrap_err()
            .contains("unterminated single quote"));
        assert!(shell_split("echo \"open")
            .unwrap_err()
            .contains("unterminated double quote"));
    }

    #[test]
    fn build_args_parse() {
        let (b, w) = parse_build(
            "-t reg/app:1 --tag=reg/app:latest -f hello.dockerfile --build-arg A=1 --build-arg B \
             --target final --platform linux/arm64 --no-cache --pull --label x=y -m 2GB .",
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(b.tags, vec!["reg/app:1", "reg/app:latest"]);
        assert_eq!(b.file.as_deref(), Some("hello.dockerfile"));
        assert_eq!(b.build_args, vec!["A=1", "B"]);
        assert_eq!(b.target.as_deref(), Some("final"));
        assert_eq!(b.platform.as_deref(), Some("linux/arm64"));
        assert!(b.no_cache && b.pull);
        assert_eq!(b.extra_args, vec!["--label", "x=y", "-m", "2GB"]);
        assert_eq!(b.context, BuildContext::Local(".".into()));

        // context in the middle, short flag with attached value
        let (b, _) = parse_build("-t x:1 . -fdocker/Dockerfile").unwrap();
        assert_eq!(b.context, BuildContext::Local(".".into()));
        assert_eq!(b.file.as_deref(), Some("docker/Dockerfile"));

        let (b, w) = parse_build(
            "--frobnicate -t a https://github.com/Azure-Samples/aci-helloworld.git#main:app",
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("--frobnicate"));
        assert!(matches!(b.context, BuildContext::Git(_)));

        let errs = [
            ("-t a:1", "no context"),
            ("-t a:1 . extra", "more than one context"),
            ("-t", "needs a value"),
            ("-t '' .", "build tag '' is empty"),
            ("-t /app:1 .", "has no repository name"),
            ("-", "standard input"),
            ("-t 'a b' .", "white space"),
        ];
        for (input, want) in errs {
            let e = parse_build(input).unwrap_err();
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn contexts_and_tags() {
        assert_eq!(
            classify_context("git@github.com:a/b.git"),
            BuildContext::Git("git@github.com:a/b.git".into())
        );
        assert_eq!(
            classify_context("https://x.org/r.git#dev:sub"),
            BuildContext::Git("https://x.org/r.git#dev:sub".into())
        );
        assert_eq!(
            classify_context("https://x.org/ctx.tar.gz"),
            BuildContext::Url("https://x.org/ctx.tar.gz".into())
        );
        assert_eq!(
            classify_context("src/app"),
            BuildContext::Local("src/app".into())
        );
        let tags = [
            ("app", "app:latest"),
            ("reg:5000/app", "reg:5000/app:latest"),
            ("reg:5000/app:1", "reg:5000/app:1"),
            ("app@sha256:abc", "app@sha256:abc"),
        ];
        for (i, o) in tags {
            assert_eq!(with_default_tag(i), o);
        }
    }
}
