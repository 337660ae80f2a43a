//! `.dockerignore` parsing and matching with Docker's semantics.
//!
//! This follows moby's `ignorefile.ReadAll` and `patternmatcher` package:
//!
//! - every line is a pattern; a line whose first character is `#` is a
//!   comment (a `#` after leading blanks is part of a pattern, as in Docker);
//!   blank lines are ignored; a UTF-8 byte order mark on the first line is
//!   dropped;
//! - surrounding whitespace is trimmed, a leading `!` makes the pattern an
//!   exception (re-include), the rest is cleaned like Go's `filepath.Clean`
//!   (`./a/../b` is `b`, trailing `/` dropped) and one leading `/` removed;
//! - patterns use Go's `filepath.Match` syntax (`*`, `?`, `[a-z]`, `[^x]`,
//!   `\` escapes) plus `**`, which matches any number of directories;
//! - a path is excluded when the last pattern that matches it, or matches
//!   one of its parent directories, is not an exception.
//!
//! Like Docker, a pattern that starts with `**` and has no other wildcard
//! is a plain suffix test (`**.md` excludes `a/b/c.md`), and a pattern that
//! is literal up to a trailing `**` is a plain prefix test. Character classes
//! follow `filepath.Match` (Docker passes them to a regular expression
//! verbatim, which only differs for classes holding `*`, `?` or `\`).

use crate::{Error, Result};

/// One element of a compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A literal character.
    Lit(char),
    /// `?`: one character other than `/`.
    AnyChar,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` (or `**/`) followed by more pattern: nothing, or any text ending in `/`.
    AnyDirs,
    /// `**` at the end of a pattern that also has wildcards: anything.
    AnyRest,
}

/// How a pattern is tested, mirroring moby's match types.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// No wildcard at all: the path must equal the pattern.
    Exact(String),
    /// Literal text followed by a final `**`: the path must start with it.
    Prefix(String),
    /// A leading `**` and no other wildcard: the path must end with it
    /// (`**/foo` also matches `foo` itself).
    Suffix(String),
    /// Anything else.
    Wildcard(Vec<Tok>),
}

/// One cleaned pattern line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    exception: bool,
    matcher: Matcher,
}

/// The parsed patterns of a `.dockerignore` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    ///
    /// Fails with [`Error::Invalid`] naming the line when a pattern is not
    /// valid `filepath.Match` syntax (an unclosed `[`, a bad range, a
    /// trailing `\`) or is a bare `!`.
    pub fn parse(text: &str) -> Result<DockerIgnore> {
        let mut patterns = Vec::new();
        for (idx, raw) in text.split('\n').enumerate() {
            let lineno = idx + 1;
            let mut line = raw.strip_suffix('\r').unwrap_or(raw);
            if idx == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if line.starts_with('#') {
                continue;
            }
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            // ignorefile.ReadAll: split off '!', clean, strip one leading '/'.
            let (invert, body) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            let mut cleaned = if body.is_empty() {
                String::new()
            } else {
                let c = clean(body);
                match c.strip_prefix('/') {
                    Some(rest) if !rest.is_empty() => rest.to_string(),
                    _ => c,
                }
            };
            if invert {
                cleaned.insert(0, '!');
            }
            // patternmatcher.New: clean again, then split off '!'.
            let full = clean(&cleaned);
            let (exception, pat) = match full.strip_prefix('!') {
                Some("") => {
                    return Err(Error::invalid(format!(
                        ".dockerignore line {lineno}: '!' must be followed by a pattern (got '{trimmed}')"
                    )))
                }
                Some(rest) => (true, rest),
                None => (false, full.as_str()),
            };
            if let Err(why) = validate(pat) {
                return Err(Error::invalid(format!(
                    ".dockerignore line {lineno}: invalid pattern '{trimmed}': {why}"
                )));
            }
            patterns.push(Pattern {
                exception,
                matcher: compile(pat),
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// A matcher that excludes nothing (no `.dockerignore`).
    pub fn empty() -> DockerIgnore {
        DockerIgnore::default()
    }

    /// Whether `path` is left out of the build context.
    ///
    /// `path` is relative to the context root, '/'-separated, no leading './'.
    /// The context root itself (`""` or `"."`) is never excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = normalise(path);
        if path.is_empty() || self.patterns.is_empty() {
            return false;
        }
        let parents: Vec<&str> = path
            .char_indices()
            .filter(|&(_, c)| c == '/')
            .filter_map(|(i, _)| path.get(..i))
            .collect();
        let mut excluded = false;
        for pat in &self.patterns {
            // A pattern that cannot change the outcome is skipped (moby does the same).
            if pat.exception != excluded {
                continue;
            }
            let hit = pat.matcher.matches(&path) || parents.iter().any(|p| pat.matcher.matches(p));
            if hit {
                excluded = !pat.exception;
            }
        }
        excluded
    }

    /// True when some exception pattern could re-include something under `dir`
    /// (so a walker must descend into an excluded dir).
    ///
    /// This is conservative: it may answer true when no file under `dir`
    /// ends up included, never false when one could be.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let dir = normalise(dir);
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| dir.is_empty() || p.matcher.may_match_under(&dir))
    }
}

impl Matcher {
    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(s) => path == s,
            Matcher::Prefix(s) => path.starts_with(s.as_str()),
            Matcher::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Wildcard(toks) => {
                let mut states = States::start(toks);
                for c in path.chars() {
                    states = states.step(toks, c);
                    if states.is_empty() {
                        return false;
                    }
                }
                states.accepts(toks)
            }
        }
    }

    /// Whether some path strictly below `dir` could match.
    fn may_match_under(&self, dir: &str) -> bool {
        let under = format!("{dir}/");
        match self {
            Matcher::Exact(s) => s.starts_with(&under) || s == dir,
            Matcher::Prefix(s) => s.starts_with(&under) || under.starts_with(s.as_str()),
            Matcher::Suffix(_) => true,
            Matcher::Wildcard(toks) => {
                let mut states = States::start(toks);
                for c in under.chars() {
                    states = states.step(toks, c);
                    if states.is_empty() {
                        return false;
                    }
                }
                // Any live state short of the end can still consume more text.
                states.live_before_end(toks)
            }
        }
    }
}

/// A set of positions in a token list, for a simulation without backtracking.
///
/// Position `i` means "token `i` comes next"; the `inside` flag on an
/// [`Tok::AnyDirs`] position means "within its `.*` part, waiting for a `/`".
struct States {
    /// Indexed by `2 * i + inside`.
    set: Vec<bool>,
}

impl States {
    fn empty(toks: &[Tok]) -> States {
        States {
            set: vec![false; 2 * (toks.len() + 1)],
        }
    }

    fn start(toks: &[Tok]) -> States {
        let mut s = States::empty(toks);
        s.add(0, false);
        s.close(toks);
        s
    }

    fn add(&mut self, i: usize, inside: bool) {
        if let Some(slot) = self.set.get_mut(2 * i + usize::from(inside)) {
            *slot = true;
        }
    }

    fn has(&self, i: usize, inside: bool) -> bool {
        self.set
            .get(2 * i + usize::from(inside))
            .copied()
            .unwrap_or(false)
    }

    fn is_empty(&self) -> bool {
        !self.set.iter().any(|&b| b)
    }

    /// Adds the positions reachable without consuming input.
    fn close(&mut self, toks: &[Tok]) {
        // Empty moves only go from i to i + 1, so one ascending pass suffices.
        for (i, tok) in toks.iter().enumerate() {
            if self.has(i, false) && matches!(tok, Tok::Star | Tok::AnyDirs | Tok::AnyRest) {
                self.add(i + 1, false);
            }
        }
    }

    fn step(&self, toks: &[Tok], c: char) -> States {
        let mut next = States::empty(toks);
        for (i, tok) in toks.iter().enumerate() {
            if self.has(i, false) {
                match tok {
                    Tok::Lit(l) if *l == c => next.add(i + 1, false),
                    Tok::AnyChar if c != '/' => next.add(i + 1, false),
                    Tok::Class { negated, ranges } => {
                        let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                        if inside != *negated {
                            next.add(i + 1, false);
                        }
                    }
                    Tok::Star if c != '/' => next.add(i, false),
                    Tok::AnyDirs => {
                        next.add(i, true);
                        if c == '/' {
                            next.add(i + 1, false);
                        }
                    }
                    Tok::AnyRest => next.add(i, false),
                    _ => {}
                }
            }
            if self.has(i, true) {
                next.add(i, true);
                if c == '/' {
                    next.add(i + 1, false);
                }
            }
        }
        next.close(toks);
        next
    }

    fn accepts(&self, toks: &[Tok]) -> bool {
        self.has(toks.len(), false)
    }

    fn live_before_end(&self, toks: &[Tok]) -> bool {
        (0..toks.len()).any(|i| self.has(i, false) || self.has(i, true))
    }
}

/// Turns a cleaned, validated pattern into a matcher the way moby's
/// `Pattern.compile` classifies it.
fn compile(pattern: &str) -> Matcher {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Wildcard,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut kind = Kind::Exact;
    let mut pos = 0;
    let mut first = true;
    while let Some(&ch) = chars.get(pos) {
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        toks.push(Tok::AnyRest);
                        kind = Kind::Wildcard;
                    }
                } else {
                    toks.push(Tok::AnyDirs);
                    kind = Kind::Wildcard;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                kind = Kind::Wildcard;
            }
            '?' => {
                toks.push(Tok::AnyChar);
                kind = Kind::Wildcard;
            }
            '\\' => {
                match chars.get(pos) {
                    Some(&next) => {
                        pos += 1;
                        toks.push(Tok::Lit(next));
                    }
                    None => toks.push(Tok::Lit('\\')),
                }
                kind = Kind::Wildcard;
            }
            '[' => {
                let class = parse_class(&chars, pos).unwrap_or(ParsedClass {
                    negated: false,
                    ranges: Vec::new(),
                    end: chars.len(),
                });
                pos = class.end;
                toks.push(Tok::Class {
                    negated: class.negated,
                    ranges: class.ranges,
                });
                kind = Kind::Wildcard;
            }
            ']' => {
                toks.push(Tok::Lit(']'));
                kind = Kind::Wildcard;
            }
            other => toks.push(Tok::Lit(other)),
        }
        first = false;
    }
    match kind {
        Kind::Exact => Matcher::Exact(pattern.to_string()),
        Kind::Prefix => Matcher::Prefix(pattern.strip_suffix("**").unwrap_or(pattern).to_string()),
        Kind::Suffix => Matcher::Suffix(pattern.strip_prefix("**").unwrap_or(pattern).to_string()),
        Kind::Wildcard => Matcher::Wildcard(toks),
    }
}

/// Checks `filepath.Match` syntax; the error says what is wrong.
fn validate(pattern: &str) -> std::result::Result<(), &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    while let Some(&ch) = chars.get(pos) {
        pos += 1;
        match ch {
            '\\' => {
                if pos >= chars.len() {
                    return Err("it ends with an unescaped '\\'");
                }
                pos += 1;
            }
            '[' => {
                pos = parse_class(&chars, pos)?.end;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A parsed `[...]` class.
struct ParsedClass {
    negated: bool,
    ranges: Vec<(char, char)>,
    /// Index just after the closing `]`.
    end: usize,
}

/// Parses a character class whose `[` ends just before `start`.
fn parse_class(chars: &[char], start: usize) -> std::result::Result<ParsedClass, &'static str> {
    let mut pos = start;
    let negated = chars.get(pos) == Some(&'^');
    if negated {
        pos += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(pos) == Some(&']') && !ranges.is_empty() {
            return Ok(ParsedClass {
                negated,
                ranges,
                end: pos + 1,
            });
        }
        let lo = class_char(chars, &mut pos)?;
        let mut hi = lo;
        if chars.get(pos) == Some(&'-') {
            pos += 1;
            hi = class_char(chars, &mut pos)?;
        }
        ranges.push((lo, hi));
    }
}

/// One possibly escaped character inside a class (Go's `getEsc`).
fn class_char(chars: &[char], pos: &mut usize) -> std::result::Result<char, &'static str> {
    let mut c = match chars.get(*pos) {
        None => return Err("a '[' is never closed"),
        Some('-') | Some(']') => {
            return Err("a character class is empty or has a misplaced '-' or ']'")
        }
        Some(&c) => c,
    };
    if c == '\\' {
        *pos += 1;
        c = match chars.get(*pos) {
            Some(&c) => c,
            None => return Err("a '[' is never closed"),
        };
    }
    *pos += 1;
    if *pos >= chars.len() {
        return Err("a '[' is never closed");
    }
    Ok(c)
}

/// Go's `filepath.Clean` for '/'-separated paths.
fn clean(path: &str) -> String {
    crtask_gotemplate::path_clean(path)
}

/// A path as the walker gives it, cleaned; the root is `""`.
fn normalise(path: &str) -> String {
    let c = clean(path);
    let c = c.trim_start_matches('/');
    if c == "." {
        String::new()
    } else {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> DockerIgnore {
        match DockerIgnore::parse(text) {
            Ok(d) => d,
            Err(e) => panic!("parse {text:?}: {e}"),
        }
    }

    #[test]
    fn exclusion_table() {
        // (ignore file, path, excluded?)
        let cases: &[(&str, &str, bool)] = &[
            // Docker documentation examples.
            ("*/temp*", "somedir/temporary.txt", true),
            ("*/temp*", "somedir/temp", true),
            ("*/temp*", "somedir/temp/inner/file", true),
            ("*/temp*", "temp", false),
            ("*/temp*", "temporary.txt", false),
            ("*/temp*", "a/b/temp", false),
            ("*/*/temp*", "somedir/subdir/temporary.txt", true),
            ("*/*/temp*", "somedir/temporary.txt", false),
            ("temp?", "tempa", true),
            ("temp?", "tempb/file", true),
            ("temp?", "temp", false),
            ("temp?", "tempab", false),
            ("temp?", "dir/tempa", false),
            ("**/*.go", "main.go", true),
            ("**/*.go", "a/b/c/main.go", true),
            ("**/*.go", "a/b/main.rs", false),
            ("*.md\n!README.md", "notes.md", true),
            ("*.md\n!README.md", "README.md", false),
            ("*.md\n!README.md", "docs/a.md", false),
            // Ordering: the last matching line wins.
            (
                "*.md\n!README*.md\nREADME-secret.md",
                "README-secret.md",
                true,
            ),
            (
                "*.md\n!README*.md\nREADME-secret.md",
                "README-public.md",
                false,
            ),
            ("*.md\n!README*.md\nREADME-secret.md", "CHANGES.md", true),
            (
                "*.md\nREADME-secret.md\n!README*.md",
                "README-secret.md",
                false,
            ),
            ("*.md\nREADME-secret.md\n!README*.md", "CHANGES.md", true),
            // A directory and everything below it.
            ("build", "build", true),
            ("build", "build/out/app", true),
            ("build", "builder", false),
            ("build", "src/build", false),
            ("build\n!build/keep.txt", "build/keep.txt", false),
            ("build\n!build/keep.txt", "build/other.txt", true),
            ("build\n!build/keep", "build/keep/deep/file", false),
            ("build/\n!build/keep.txt", "build/x", true),
            // Leading '/', './' and '..' cleaning, surrounding blanks.
            ("/secret", "secret", true),
            ("/secret", "a/secret", false),
            ("./foo/../bar", "bar", true),
            ("./foo/../bar", "foo", false),
            ("  spaced.txt  ", "spaced.txt", true),
            ("!  /a\n", "a", false),
            ("a//b/", "a/b", true),
            // Comments only in column 1; a later '#' belongs to the pattern.
            ("# comment\n", "# comment", false),
            ("  # not a comment", "# not a comment", true),
            ("#*\nx", "#y", false),
            ("\u{feff}# bom comment\nx", "# bom comment", false),
            ("a\r\nb\r\n", "b", true),
            // Wildcard syntax.
            ("[a-c].txt", "b.txt", true),
            ("[a-c].txt", "d.txt", false),
            ("[^a].txt", "b.txt", true),
            ("[^a].txt", "a.txt", false),
            ("[\\]x]", "]", true),
            ("\\*.txt", "*.txt", true),
            ("\\*.txt", "a.txt", false),
            ("*", "anything", true),
            ("*", "dir/file", true),
            ("*.txt", "dir/file.txt", false),
            ("a?c", "a/c", false),
            ("**", "a/b/c", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/c", false),
            ("a/**/*.o", "a/x/y/z.o", true),
            ("a/*/**", "a/x/y", true),
            // Docker's fast paths: literal prefix before '**', '**' + literal suffix.
            ("foo/**", "foo/bar/baz", true),
            ("foo/**", "foobar", false),
            ("foo**", "foobar/x", true),
            ("**/foo", "foo", true),
            ("**/foo", "a/b/foo", true),
            ("**/foo", "a/bfoo", false),
            ("**.md", "a/b/c.md", true),
            ("**.md", "c.txt", false),
            // Patterns that escape the context never match.
            ("../x", "x", false),
            // No patterns.
            ("", "a", false),
            ("\n\n# only comments\n", "a", false),
        ];
        for (text, path, want) in cases {
            assert_eq!(
                ig(text).is_excluded(path),
                *want,
                "pattern {text:?} path {path:?}"
            );
        }
    }

    #[test]
    fn single_pattern_behaviour_table() {
        // (pattern, path, excluded?) — behaviours of Docker's matcher, with
        // parent-directory matching.
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**/", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc/**", "abc", false),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a*", "ab/c", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("a?b", "a\u{263a}b", true),
            ("a[^a]b", "a\u{263a}b", true),
            ("a???b", "a\u{263a}b", false),
            ("[a-\u{3b6}]*", "\u{3b1}", true),
            ("*[a-\u{3b6}]", "A", false),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("a\\\\", "a\\", true),
            ("*x", "xxx", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(
                ig(pattern).is_excluded(path),
                *want,
                "pattern {pattern:?} path {path:?}"
            );
        }
        let multi: &[(&str, &str, bool)] = &[
            ("**\n!util/docker/web", "util/docker/web/foo", false),
            (
                "**\n!util/docker/web\nutil/docker/web/foo",
                "util/docker/web/foo",
                true,
            ),
            ("**\n!dist/*.whl", "dist/a-1.0+g1-py3-none-any.whl", false),
            ("!fileutils.go\n*.go", "fileutils.go", true),
            ("docs/*\n!docs/README.md", "docs/README.md", false),
        ];
        for (text, path, want) in multi {
            assert_eq!(
                ig(text).is_excluded(path),
                *want,
                "patterns {text:?} path {path:?}"
            );
        }
        for bad in [
            "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            assert!(
                DockerIgnore::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn root_and_dot_paths_are_never_excluded() {
        let d = ig("*\n**");
        assert!(!d.is_excluded(""));
        assert!(!d.is_excluded("."));
        assert!(!d.is_excluded("./"));
        assert!(d.is_excluded("./a"));
    }

    #[test]
    fn empty_excludes_nothing() {
        assert!(!DockerIgnore::empty().is_excluded("a/b"));
        assert!(!DockerIgnore::empty().may_reinclude_under("a"));
    }

    #[test]
    fn reinclude_table() {
        // (ignore file, directory, an exception may re-include below it?)
        let cases: &[(&str, &str, bool)] = &[
            ("build\n!build/keep.txt", "build", true),
            ("build\n!build/keep.txt", "build/sub", false),
            ("build\n!build/keep.txt", "other", false),
            ("build\n!build/sub/keep.txt", "build/sub", true),
            ("build", "build", false),
            ("*\n!*/keep", "anydir", true),
            ("*\n!*/keep", "anydir/sub", false),
            ("*\n!**/keep", "a/b/c", true),
            ("*\n!**keep", "a/b", true),
            ("*\n!src/**", "src", true),
            ("*\n!src/**", "srcx", false),
            ("*\n!sr**", "src", true),
            ("*\n![a-c]/x", "b", true),
            ("*\n![a-c]/x", "d", false),
            ("*\n!a/**/z", "a/b/c", true),
            ("*\n!x", "", true),
        ];
        for (text, dir, want) in cases {
            assert_eq!(
                ig(text).may_reinclude_under(dir),
                *want,
                "pattern {text:?} dir {dir:?}"
            );
        }
    }

    #[test]
    fn invalid_patterns_name_the_line() {
        let cases: &[(&str, &str)] = &[
            ("ok\n[abc", "line 2"),
            ("a[", "line 1"),
            ("x\ny\nfoo\\", "line 3"),
            ("[]a]", "line 1"),
            ("[^]", "line 1"),
            ("[a-]", "line 1"),
            ("!", "line 1"),
            ("a\n!  ", "line 2"),
            ("!/", "line 1"),
        ];
        for (text, line) in cases {
            match DockerIgnore::parse(text) {
                Ok(_) => panic!("{text:?} should be refused"),
                Err(Error::Invalid(msg)) => {
                    assert!(msg.contains(line), "{text:?}: {msg}");
                    assert!(msg.starts_with(".dockerignore"), "{msg}");
                }
                Err(other) => panic!("{text:?}: unexpected error {other:?}"),
            }
        }
    }

    #[test]
    fn clean_matches_go() {
        let cases = [
            ("", "."),
            ("a/b/", "a/b"),
            ("./a", "a"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("//a//b", "/a/b"),
            ("/", "/"),
            (".", "."),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }
}
