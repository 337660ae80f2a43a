//! Branch globs and path filters, as tasks name them and git triggers
//! match them.
//!
//! `*` and `?` do not cross `/`, `**` does (as a whole path component:
//! `docs/**`, `**/*.md`), `[...]` classes; case-sensitive. A pattern that is
//! not a valid glob matches only itself.

use glob::{MatchOptions, Pattern};

use crate::error::{Error, Result};

const GLOB_OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// Checks a branch glob or path filter once, for task validation.
pub fn validate(pattern: &str) -> Result<()> {
    if pattern.trim().is_empty() {
        return Err(Error::invalid("glob pattern is empty"));
    }
    Pattern::new(pattern)
        .map(|_| ())
        .map_err(|e| Error::invalid(format!("invalid glob pattern '{pattern}': {}", e.msg)))
}

/// Glob match with the module's rules; an invalid pattern matches only itself.
fn glob_matches(pattern: &str, text: &str) -> bool {
    if pattern == text {
        return true;
    }
    Pattern::new(pattern).is_ok_and(|p| p.matches_with(text, GLOB_OPTIONS))
}

/// A tracked branch (exact name or glob) matches `branch`.
pub fn branch_matches(pattern: &str, branch: &str) -> bool {
    glob_matches(pattern, branch)
}

/// Any changed file matches any filter (empty filters match everything).
/// A filter's leading `/` or `./` is ignored and a trailing `/` means
/// everything below that directory.
pub fn path_filters_match(filters: &[String], files: &[String]) -> bool {
    if filters.is_empty() {
        return true;
    }
    let filters: Vec<String> = filters.iter().map(|f| normalize_filter(f)).collect();
    files.iter().any(|file| {
        let file = file.trim_start_matches("./").trim_start_matches('/');
        filters.iter().any(|f| glob_matches(f, file))
    })
}

fn normalize_filter(f: &str) -> String {
    let f = f.trim();
    let f = f.strip_prefix("./").unwrap_or(f);
    let f = f.trim_start_matches('/');
    if f.ends_with('/') {
        format!("{f}**")
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let cases = [
            ("main", "main", true),
            ("main", "Main", false),
            ("main", "main2", false),
            ("release/*", "release/1.0", true),
            ("release/*", "release/1.0/hotfix", false),
            ("release/**", "release/1.0/hotfix", true),
            ("release-?", "release-1", true),
            ("release-?", "release-10", false),
            ("v[0-9]*", "v1.2", true),
            ("v[0-9]*", "vx", false),
            ("*", "feature/x", false),
            ("**", "feature/x", true),
            ("feat[", "feat[", true),
            ("feat[", "feat", false),
            ("$(touch x)", "$(touch x)", true),
            ("${IFS}", "${IFS}", true),
            ("`id`", "`id`", true),
            ("a;b", "a;b", true),
            ("a;b", "a", false),
        ];
        for (pattern, branch, want) in cases {
            assert_eq!(
                branch_matches(pattern, branch),
                want,
                "{pattern} vs {branch}"
            );
        }
    }

    #[test]
    fn path_filter_table() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (f(&[]), f(&["anything"]), true),
            (f(&["docs/**"]), f(&["docs/a.md"]), true),
            (f(&["docs/**"]), f(&["docs/x/y/z.md"]), true),
            (f(&["docs/**"]), f(&["src/main.rs"]), false),
            (f(&["docs/*"]), f(&["docs/x/y.md"]), false),
            (f(&["**/*.md"]), f(&["README.md"]), true),
            (f(&["**/*.md"]), f(&["a/b/c.md"]), true),
            (f(&["*.md"]), f(&["a/b.md"]), false),
            (
                f(&["src/**", "Dockerfile"]),
                f(&["README.md", "Dockerfile"]),
                true,
            ),
            (f(&["/src/**"]), f(&["src/lib.rs"]), true),
            (f(&["./src/**"]), f(&["src/lib.rs"]), true),
            (f(&["services/api/"]), f(&["services/api/main.go"]), true),
            (f(&["services/api/"]), f(&["services/web/main.go"]), false),
            (f(&["*"]), f(&[".github"]), true),
        ];
        for (filters, files, want) in cases {
            assert_eq!(
                path_filters_match(&filters, &files),
                want,
                "{filters:?} vs {files:?}"
            );
        }
    }

    #[test]
    fn validate_patterns() {
        assert!(validate("release/*").is_ok());
        assert!(validate("**/*.md").is_ok());
        let e = validate("a**").unwrap_err().to_string();
        assert!(e.starts_with("invalid glob pattern 'a**'"), "{e}");
        assert!(validate("[").is_err());
        assert!(validate(" ").is_err());
    }
}
