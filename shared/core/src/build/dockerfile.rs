//! Base images of a Dockerfile: which images a build pulls.
//!
//! This is a scanner, not a full Dockerfile parser. It reads just enough to
//! find every `FROM`, with the semantics ACR Tasks uses to track base images:
//!
//! - a UTF-8 BOM is stripped; blank and comment lines are skipped; parser
//!   directives at the top are honoured (`# escape=` changes the line
//!   continuation character);
//! - line continuations join lines (comment and blank lines inside a
//!   continuation are skipped); heredoc bodies after `RUN`/`COPY`/`ADD`
//!   (`<<EOF` ... `EOF`, `<<-EOF`) are not read as instructions;
//! - `ARG k=v` anywhere before a `FROM` gives `k` a default; a supplied build
//!   arg always wins, and the first `ARG` with a default wins over later ones;
//! - `$k`, `${k}`, `${k:-default}`, `${k-default}`, `${k:+alt}`, `${k+alt}`
//!   and `${k:?message}` are expanded in `FROM` (quotes are removed as the
//!   shell would);
//! - the predefined platform args (`TARGETPLATFORM`, `TARGETOS`,
//!   `TARGETARCH`, `TARGETVARIANT` and the `BUILD*` ones) are known without
//!   an `ARG`;
//! - a `FROM` naming an earlier stage (case-insensitive) resolves to that
//!   stage; `scratch` is no image.

use std::collections::BTreeMap;

use crate::domain::imageref::ImageRef;
use crate::{Error, Result};

/// Platform assumed for the predefined platform args when the caller does not
/// name one: ACR's default build platform.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// One `FROM` of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stage {
    /// 0-based position among the stages.
    pub index: usize,
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    /// The base as written after build-arg expansion.
    pub base: String,
    /// The image this stage starts from; `None` for `scratch` or a previous stage.
    pub image: Option<ImageRef>,
    /// The earlier stage this one starts from, when its base names one.
    pub from_stage: Option<usize>,
    /// The `--platform` flag after expansion, if given and not empty.
    pub platform: Option<String>,
    /// 1-based line of the `FROM` instruction.
    pub line: usize,
}

/// The images a build of a Dockerfile depends on.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct BaseImages {
    /// The image behind the final (or target) stage; `None` for `scratch`.
    pub runtime: Option<ImageRef>,
    /// Every other distinct image, in the order first used.
    pub build_time: Vec<ImageRef>,
    /// Every stage scanned (up to and including the target stage).
    pub stages: Vec<Stage>,
}

/// Scan Dockerfile text for its base images.
///
/// `build_args` override `ARG` defaults; `target` stops the scan at that
/// stage (matched case-insensitively; empty means none). The predefined
/// platform args default to [`DEFAULT_PLATFORM`]; use
/// [`scan_with_platform`] to name another platform.
pub fn scan(
    text: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<BaseImages> {
    scan_with_platform(text, build_args, target, None)
}

/// Like [`scan`], with the build's platform (`os[/arch[/variant]]`) giving
/// the predefined platform args (`TARGETPLATFORM`, `TARGETARCH`,
/// `BUILDPLATFORM`, ...). `None` means [`DEFAULT_PLATFORM`]. A build arg of
/// the same name still wins.
pub fn scan_with_platform(
    text: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    platform: Option<&str>,
) -> Result<BaseImages> {
    let mut vars = platform_args(platform.unwrap_or(DEFAULT_PLATFORM))?;
    for (k, v) in build_args {
        vars.insert(k.clone(), v.clone());
    }
    let target = target
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase);

    let mut stages: Vec<Stage> = Vec::new();
    let mut target_index = None;
    for instr in instructions(text)? {
        match instr.keyword.as_str() {
            "ARG" => declare_args(&instr, &mut vars)?,
            "FROM" => {
                let stage = parse_from(&instr, &vars, &stages)?;
                let is_target = target.is_some() && stage.name == target;
                stages.push(stage);
                if is_target {
                    target_index = Some(stages.len() - 1);
                    break;
                }
            }
            _ => {}
        }
    }

    let Some(last) = stages.len().checked_sub(1) else {
        return Err(Error::invalid(
            "dockerfile has no FROM instruction: a build needs at least one base image",
        ));
    };
    let final_index = match (&target, target_index) {
        (Some(t), None) => {
            let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
            let known = if names.is_empty() {
                "it names no stages".to_string()
            } else {
                format!("its stages are: {}", names.join(", "))
            };
            return Err(Error::invalid(format!(
                "target stage '{t}' not found in the dockerfile ({known})"
            )));
        }
        (_, Some(i)) => i,
        (None, None) => last,
    };
    let runtime = image_behind(&stages, final_index);
    let mut build_time: Vec<ImageRef> = Vec::new();
    for img in stages.iter().filter_map(|s| s.image.as_ref()) {
        if Some(img) != runtime.as_ref() && !build_time.contains(img) {
            build_time.push(img.clone());
        }
    }
    Ok(BaseImages {
        runtime,
        build_time,
        stages,
    })
}

/// The image a stage finally starts from, following stage references.
fn image_behind(stages: &[Stage], mut index: usize) -> Option<ImageRef> {
    // Stage references always point to earlier stages, so this ends; the
    // bound is belt and braces.
    for _ in 0..=stages.len() {
        let stage = stages.get(index)?;
        match stage.from_stage {
            Some(prev) if prev < index => index = prev,
            Some(_) => return None,
            None => return stage.image.clone(),
        }
    }
    None
}

/// The predefined platform args for `platform` (`os[/arch[/variant]]`).
fn platform_args(platform: &str) -> Result<BTreeMap<String, String>> {
    let p = platform.trim().to_ascii_lowercase();
    let parts: Vec<&str> = p.split('/').collect();
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    };
    let (os, arch, variant) = match parts.as_slice() {
        [os] if valid(os) => (*os, "amd64", ""),
        [os, arch] if valid(os) && valid(arch) => (*os, *arch, ""),
        [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => (*os, *arch, *variant),
        _ => {
            return Err(Error::invalid(format!(
                "invalid platform '{platform}': expected os[/arch[/variant]], e.g. linux/arm64"
            )))
        }
    };
    let full = if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    };
    let mut vars = BTreeMap::new();
    for prefix in ["TARGET", "BUILD"] {
        vars.insert(format!("{prefix}PLATFORM"), full.clone());
        vars.insert(format!("{prefix}OS"), os.to_string());
        vars.insert(format!("{prefix}ARCH"), arch.to_string());
        vars.insert(format!("{prefix}VARIANT"), variant.to_string());
    }
    Ok(vars)
}

/// One logical instruction: keyword (upper-cased), its arguments, the line
/// it starts on and the escape character in force.
struct Instruction {
    keyword: String,
    args: String,
    line: usize,
    escape: char,
}

/// Split Dockerfile text into logical instructions.
fn instructions(text: &str) -> Result<Vec<Instruction>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut escape_seen = false;
    let mut in_directives = true;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&raw) = lines.get(i) {
        let lineno = i + 1;
        i += 1;
        if in_directives {
            match parse_directive(raw) {
                Some((key, _)) if !KNOWN_DIRECTIVES.contains(&key.as_str()) => {
                    // An unknown directive is a comment, and ends the directives.
                    in_directives = false;
                    continue;
                }
                Some((key, value)) => {
                    if key == "escape" {
                        if escape_seen {
                            return Err(Error::invalid(format!(
                                "line {lineno}: only one escape parser directive can be used"
                            )));
                        }
                        escape_seen = true;
                        escape = match value.as_str() {
                            "\\" => '\\',
                            "`" => '`',
                            other => {
                                return Err(Error::invalid(format!(
                                    "line {lineno}: invalid escape directive value '{other}': \
                                     use '\\' or '`'"
                                )))
                            }
                        };
                    }
                    continue;
                }
                None => in_directives = false,
            }
        }
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }

        // Join continuation lines.
        let mut logical = String::new();
        let mut current = trimmed;
        loop {
            match strip_continuation(current, escape) {
                Some(head) => {
                    logical.push_str(head);
                    // Skip blank and comment lines inside the continuation.
                    let mut next = None;
                    while let Some(&l) = lines.get(i) {
                        i += 1;
                        let t = l.trim_start();
                        if t.is_empty() || t.starts_with('#') {
                            continue;
                        }
                        next = Some(l);
                        break;
                    }
                    match next {
                        Some(l) => current = l,
                        None => break,
                    }
                }
                None => {
                    logical.push_str(current);
                    break;
                }
            }
        }

        let logical = logical.trim();
        let (keyword, args) = match logical.split_once(|c: char| c.is_whitespace()) {
            Some((k, a)) => (k, a.trim()),
            None => (logical, ""),
        };
        let keyword = keyword.to_ascii_uppercase();

        // Heredoc bodies are not instructions.
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, strip_tabs) in heredoc_names(args) {
                while let Some(&l) = lines.get(i) {
                    i += 1;
                    let candidate = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if candidate.trim_end() == name {
                        break;
                    }
                }
            }
        }

        out.push(Instruction {
            keyword,
            args: args.to_string(),
            line: lineno,
            escape,
        });
    }
    Ok(out)
}

/// Parser directives BuildKit knows; any other `# key=value` is a comment.
const KNOWN_DIRECTIVES: &[&str] = &["syntax", "escape", "check"];

/// A parser directive line (`# key=value`), key lower-cased. Only
/// alphanumeric keys count; anything else is an ordinary comment.
fn parse_directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    let mut chars = key.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.to_string()))
}

/// If `line` ends with the escape character (then optional spaces/tabs), the
/// line without it.
fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    line.trim_end_matches([' ', '\t']).strip_suffix(escape)
}

/// Heredoc terminators opened on an instruction line, in order, with whether
/// leading tabs are stripped (`<<-`). `<<` inside quotes or inside a word,
/// and `<<<`, do not open a heredoc.
fn heredoc_names(args: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = args.chars().collect();
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            i += 1;
            continue;
        }
        let at_word_start = i == 0 || chars.get(i - 1).is_some_and(|p| p.is_whitespace());
        if c == '<' && chars.get(i + 1) == Some(&'<') && at_word_start {
            let mut j = i + 2;
            if chars.get(j) == Some(&'<') {
                // a here-string, `<<<`
                i = j + 1;
                continue;
            }
            let strip_tabs = chars.get(j) == Some(&'-');
            if strip_tabs {
                j += 1;
            }
            let open = match chars.get(j) {
                Some(&q) if q == '"' || q == '\'' => {
                    j += 1;
                    Some(q)
                }
                _ => None,
            };
            let start = j;
            while chars
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                j += 1;
            }
            let name: String = chars.get(start..j).unwrap_or_default().iter().collect();
            if let Some(q) = open {
                if chars.get(j) == Some(&q) {
                    j += 1;
                }
            }
            if !name.is_empty() {
                out.push((name, strip_tabs));
            }
            i = j.max(i + 2);
            continue;
        }
        i += 1;
    }
    out
}

/// Split instruction arguments into words on unquoted whitespace. Quotes and
/// escapes stay in the words for [`expand`] to process.
fn split_words(args: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(c);
                if c == '"' || c == '\'' {
                    quote = Some(c);
                } else if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Record the defaults of an `ARG` instruction (`ARG a=1 b c="x y"`).
fn declare_args(instr: &Instruction, vars: &mut BTreeMap<String, String>) -> Result<()> {
    for word in split_words(&instr.args, instr.escape) {
        let Some((name, raw)) = word.split_once('=') else {
            continue; // a declaration without default changes nothing here
        };
        if !is_var_name(name) || vars.contains_key(name) {
            continue; // a build arg or an earlier ARG wins
        }
        let value = expand(raw, vars, instr.escape).map_err(|why| {
            Error::invalid(format!(
                "line {}: cannot expand the default of ARG {name}: {why}",
                instr.line
            ))
        })?;
        vars.insert(name.to_string(), value);
    }
    Ok(())
}

/// Parse a `FROM [--platform=p] image [AS name]` against the stages so far.
fn parse_from(
    instr: &Instruction,
    vars: &BTreeMap<String, String>,
    stages: &[Stage],
) -> Result<Stage> {
    let line = instr.line;
    let bad = |why: String| Error::invalid(format!("line {line}: {why}"));
    let words = split_words(&instr.args, instr.escape);
    let mut rest = words.as_slice();
    let mut platform = None;
    while let Some((flag, tail)) = rest.split_first() {
        let Some(body) = flag.strip_prefix("--") else {
            break;
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if !name.eq_ignore_ascii_case("platform") {
            return Err(bad(format!(
                "unknown flag '{flag}' in FROM (only --platform is allowed)"
            )));
        }
        let Some(value) = value else {
            return Err(bad(format!(
                "flag '{flag}' in FROM needs a value: --platform=<os/arch>"
            )));
        };
        let expanded = expand(value, vars, instr.escape)
            .map_err(|why| bad(format!("cannot expand FROM flag '{flag}': {why}")))?;
        platform = Some(expanded).filter(|p| !p.is_empty());
        rest = tail;
    }
    let (raw_base, name) = match rest {
        [] => {
            return Err(bad(
                "FROM needs a base image, e.g. FROM alpine:3.19".to_string()
            ))
        }
        [base] => (base, None),
        [base, kw, name] if kw.eq_ignore_ascii_case("as") => (base, Some(name)),
        _ => {
            return Err(bad(format!(
                "FROM takes 'image [AS name]', got '{}'",
                instr.args
            )))
        }
    };
    let base = expand(raw_base, vars, instr.escape)
        .map_err(|why| bad(format!("cannot expand FROM '{raw_base}': {why}")))?;
    if base.is_empty() {
        return Err(bad(format!(
            "FROM '{raw_base}' expands to an empty base image (is a build arg missing?)"
        )));
    }

    let name = match name {
        Some(n) => {
            let lower = n.to_ascii_lowercase();
            if !is_stage_name(&lower) {
                return Err(bad(format!(
                    "invalid stage name '{n}': start with a letter and use only letters, \
                     digits, '-', '_' and '.'"
                )));
            }
            if let Some(prev) = stages.iter().find(|s| s.name.as_deref() == Some(&lower)) {
                return Err(bad(format!(
                    "duplicate stage name '{n}' (first used on line {})",
                    prev.line
                )));
            }
            Some(lower)
        }
        None => None,
    };

    let base_lower = base.to_ascii_lowercase();
    let (image, from_stage) = if let Some(prev) = stages
        .iter()
        .find(|s| s.name.as_deref() == Some(base_lower.as_str()))
    {
        (None, Some(prev.index))
    } else if base == "scratch" {
        (None, None)
    } else {
        let img =
            ImageRef::parse(&base).map_err(|e| bad(format!("invalid base image '{base}': {e}")))?;
        (Some(img), None)
    };

    Ok(Stage {
        index: stages.len(),
        name,
        base,
        image,
        from_stage,
        platform,
        line,
    })
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_stage_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Expand variables in one word and remove its quotes, as the Dockerfile
/// shell lexer does. Unknown variables expand to nothing.
fn expand(
    word: &str,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> std::result::Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    expand_into(&chars, vars, escape, 0, &mut out)?;
    Ok(out)
}

/// Deepest `${...}` nesting accepted, so hostile input cannot exhaust the stack.
const MAX_NESTING: usize = 16;

fn expand_into(
    chars: &[char],
    vars: &BTreeMap<String, String>,
    escape: char,
    depth: usize,
    out: &mut String,
) -> std::result::Result<(), String> {
    if depth > MAX_NESTING {
        return Err(format!("variables nested more than {MAX_NESTING} deep"));
    }
    let mut in_double = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c == escape {
            match chars.get(i) {
                Some(&n) if !in_double || matches!(n, '"' | '$') || n == escape => {
                    out.push(n);
                    i += 1;
                }
                _ => out.push(c),
            }
        } else if c == '\'' && !in_double {
            let Some(len) = chars
                .get(i..)
                .and_then(|r| r.iter().position(|&x| x == '\''))
            else {
                return Err("unterminated single quote".to_string());
            };
            out.extend(chars.get(i..i + len).unwrap_or_default());
            i += len + 1;
        } else if c == '"' {
            in_double = !in_double;
        } else if c == '$' {
            i = expand_var(chars, i, vars, escape, depth, out)?;
        } else {
            out.push(c);
        }
    }
    if in_double {
        return Err("unterminated double quote".to_string());
    }
    Ok(())
}

/// Expand the variable whose `$` is just before `chars[i]`; return the index
/// after it.
fn expand_var(
    chars: &[char],
    i: usize,
    vars: &BTreeMap<String, String>,
    escape: char,
    depth: usize,
    out: &mut String,
) -> std::result::Result<usize, String> {
    let is_start = |c: &char| c.is_ascii_alphabetic() || *c == '_';
    let is_cont = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    match chars.get(i) {
        Some('{') => {
            // Find the matching '}' (nested ${...} allowed in the word).
            let mut level = 1usize;
            let mut j = i + 1;
            while let Some(&c) = chars.get(j) {
                if c == escape {
                    j += 2;
                    continue;
                }
                if c == '$' && chars.get(j + 1) == Some(&'{') {
                    level += 1;
                    j += 2;
                    continue;
                }
                if c == '}' {
                    level -= 1;
                    if level == 0 {
                        break;
                    }
                }
                j += 1;
            }
            if level != 0 {
                let text: String = chars
                    .get(i.saturating_sub(1)..)
                    .unwrap_or_default()
                    .iter()
                    .collect();
                return Err(format!("missing '}}' in '{text}'"));
            }
            let inner = chars.get(i + 1..j).unwrap_or_default();
            let name_len = inner.iter().take_while(|c| is_cont(c)).count();
            let name: String = inner.get(..name_len).unwrap_or_default().iter().collect();
            let rest = inner.get(name_len..).unwrap_or_default();
            let whole: String = inner.iter().collect();
            if !inner.first().is_some_and(is_start) {
                return Err(format!("bad substitution '${{{whole}}}'"));
            }
            let value = vars.get(&name);
            let (colon, op, word) = match rest {
                [] => {
                    out.push_str(value.map(String::as_str).unwrap_or_default());
                    return Ok(j + 1);
                }
                [':', op, word @ ..] => (true, *op, word),
                [op, word @ ..] => (false, *op, word),
            };
            // With ':' an empty value counts as unset.
            let set = value.is_some_and(|v| !colon || !v.is_empty());
            match op {
                '-' => {
                    if set {
                        out.push_str(value.map(String::as_str).unwrap_or_default());
                    } else {
                        expand_into(word, vars, escape, depth + 1, out)?;
                    }
                }
                '+' => {
                    if set {
                        expand_into(word, vars, escape, depth + 1, out)?;
                    }
                }
                '?' => {
                    if set {
                        out.push_str(value.map(String::as_str).unwrap_or_default());
                    } else {
                        let mut msg = String::new();
                        expand_into(word, vars, escape, depth + 1, &mut msg)?;
                        if msg.is_empty() {
                            msg = "is not set".to_string();
                        }
                        return Err(format!("{name}: {msg}"));
                    }
                }
                _ => {
                    return Err(format!(
                        "unsupported substitution '${{{whole}}}' (use ${{{name}}}, \
                         ${{{name}:-default}} or ${{{name}:+alternative}})"
                    ))
                }
            }
            Ok(j + 1)
        }
        Some(c) if is_start(c) => {
            let len = chars
                .get(i..)
                .unwrap_or_default()
                .iter()
                .take_while(|c| is_cont(c))
                .count();
            let name: String = chars.get(i..i + len).unwrap_or_default().iter().collect();
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or_default());
            Ok(i + len)
        }
        _ => {
            out.push('$');
            Ok(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn full(r: &Option<ImageRef>) -> Option<String> {
        r.as_ref().map(ImageRef::full)
    }

    fn fulls(v: &[ImageRef]) -> Vec<String> {
        v.iter().map(ImageRef::full).collect()
    }

    struct Case {
        name: &'static str,
        text: &'static str,
        args: &'static [(&'static str, &'static str)],
        target: Option<&'static str>,
        runtime: Option<&'static str>,
        build_time: &'static [&'static str],
    }

    #[test]
    fn scans() {
        let cases = [
            Case {
                name: "single stage",
                text: "FROM alpine\nRUN echo hi\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &[],
            },
            Case {
                name: "multi-stage with aliases",
                text: "FROM golang:1.22 AS build\nRUN go build\n\
                       FROM build AS test\nRUN go test\n\
                       FROM gcr.io/distroless/static:nonroot\nCOPY --from=build /app /app\n",
                args: &[],
                target: None,
                runtime: Some("gcr.io/distroless/static:nonroot"),
                build_time: &["docker.io/library/golang:1.22"],
            },
            Case {
                name: "runtime chased through aliases",
                text: "FROM node:20 AS base\nFROM base AS deps\nFROM deps AS final\nFROM final\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/node:20"),
                build_time: &[],
            },
            Case {
                name: "stage names are case-insensitive",
                text: "FROM alpine AS Builder\nFROM BUILDER\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &[],
            },
            Case {
                name: "a later stage name is an image, not a stage",
                text: "FROM base\nFROM alpine AS base\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &["docker.io/library/base:latest"],
            },
            Case {
                name: "duplicates and order of build-time images",
                text: "FROM b:1 AS one\nFROM a:1 AS two\nFROM docker.io/library/b:1 AS three\n\
                       FROM c:1 AS four\nFROM a:1\nFROM rt\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/rt:latest"),
                build_time: &[
                    "docker.io/library/b:1",
                    "docker.io/library/a:1",
                    "docker.io/library/c:1",
                ],
            },
            Case {
                name: "runtime image is not also a build-time image",
                text: "FROM alpine AS a\nFROM busybox AS b\nFROM alpine:latest\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &["docker.io/library/busybox:latest"],
            },
            Case {
                name: "scratch runtime",
                text: "FROM golang AS build\nFROM scratch\nCOPY --from=build /x /x\n",
                args: &[],
                target: None,
                runtime: None,
                build_time: &["docker.io/library/golang:latest"],
            },
            Case {
                name: "scratch stage chased",
                text: "FROM scratch AS empty\nFROM alpine AS tools\nFROM empty\n",
                args: &[],
                target: None,
                runtime: None,
                build_time: &["docker.io/library/alpine:latest"],
            },
            Case {
                name: "ARG defaults",
                text: "ARG IMG=alpine\nARG TAG=3.19\nFROM ${IMG}:$TAG\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:3.19"),
                build_time: &[],
            },
            Case {
                name: "build arg overrides default",
                text: "ARG TAG=3.19\nFROM alpine:${TAG}\n",
                args: &[("TAG", "3.20")],
                target: None,
                runtime: Some("docker.io/library/alpine:3.20"),
                build_time: &[],
            },
            Case {
                name: "first ARG default wins",
                text: "ARG TAG=1\nARG TAG=2\nFROM alpine:$TAG\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:1"),
                build_time: &[],
            },
            Case {
                name: "ARG without default does not block a later default",
                text: "ARG TAG\nARG TAG=2\nFROM alpine:$TAG\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:2"),
                build_time: &[],
            },
            Case {
                name: "ARG among FROMs counts for later FROMs",
                text: "FROM alpine AS a\nARG V=1.2\nFROM busybox:$V\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/busybox:1.2"),
                build_time: &["docker.io/library/alpine:latest"],
            },
            Case {
                name: "build arg without ARG still applies (as ACR)",
                text: "FROM $REG/app:$T\n",
                args: &[("REG", "my.io"), ("T", "9")],
                target: None,
                runtime: Some("my.io/app:9"),
                build_time: &[],
            },
            Case {
                name: "several ARGs on one line, quoted, referencing each other",
                text: "ARG REG=\"my.io\" NS='team' IMG=${REG}/${NS}/app\nFROM $IMG\n",
                args: &[],
                target: None,
                runtime: Some("my.io/team/app:latest"),
                build_time: &[],
            },
            Case {
                name: "default and alternative modifiers",
                text: "ARG EMPTY=\nFROM ${MISSING:-alpine}:${EMPTY:-3}${SET:+-slim}\n\
                       FROM ${EMPTY-busybox}debian${MISSING+x}\n",
                args: &[("SET", "yes")],
                target: None,
                runtime: Some("docker.io/library/debian:latest"),
                build_time: &["docker.io/library/alpine:3-slim"],
            },
            Case {
                name: "nested default",
                text: "ARG B=busybox\nFROM ${A:-${B}}:1\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/busybox:1"),
                build_time: &[],
            },
            Case {
                name: "--platform and predefined platform args",
                text: "FROM --platform=$BUILDPLATFORM golang AS build\n\
                       FROM --platform=${TARGETPLATFORM} alpine-${TARGETARCH}\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine-amd64:latest"),
                build_time: &["docker.io/library/golang:latest"],
            },
            Case {
                name: "target stops the scan",
                text: "FROM golang AS build\nFROM alpine AS test\nFROM build\nFROM broken:::\n",
                args: &[],
                target: Some("TEST"),
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &["docker.io/library/golang:latest"],
            },
            Case {
                name: "target chased to an image",
                text: "FROM golang AS build\nFROM build AS dev\nFROM alpine\n",
                args: &[],
                target: Some("dev"),
                runtime: Some("docker.io/library/golang:latest"),
                build_time: &[],
            },
            Case {
                name: "empty target means none",
                text: "FROM golang AS build\nFROM alpine\n",
                args: &[],
                target: Some(" "),
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &["docker.io/library/golang:latest"],
            },
            Case {
                name: "BOM, CRLF, comments, lower-case keywords",
                text: "\u{feff}# a comment\r\n\r\n   # indented comment\r\nfrom alpine as a\r\nFrOm busybox\r\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/busybox:latest"),
                build_time: &["docker.io/library/alpine:latest"],
            },
            Case {
                name: "continuations with comments and blank lines inside",
                text: "FROM \\\n# comment inside\n\n  alpine:3 \\\n  AS base\nFROM base\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:3"),
                build_time: &[],
            },
            Case {
                name: "continuation joins without a space",
                text: "FROM alp\\\nine\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &[],
            },
            Case {
                name: "a RUN continuation does not hide the next FROM",
                text: "FROM a\nRUN echo 1 \\\n    && echo FROM x \\  \n    && true\nFROM b\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/b:latest"),
                build_time: &["docker.io/library/a:latest"],
            },
            Case {
                name: "escape directive",
                text: "# syntax=docker/dockerfile:1\n# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022 `\n  AS base\nRUN dir c:\\\nFROM base\n",
                args: &[],
                target: None,
                runtime: Some("mcr.microsoft.com/windows/servercore:ltsc2022"),
                build_time: &[],
            },
            Case {
                name: "directive after a comment is just a comment",
                text: "# hello\n# escape=`\nFROM alpine \\\n AS x\nFROM x\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &[],
            },
            Case {
                name: "an unknown directive ends the directives",
                text: "# foo=bar\n# escape=`\nFROM alpine \\\n AS x\nFROM x\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:latest"),
                build_time: &[],
            },
            Case {
                name: "heredoc bodies are not instructions",
                text: "FROM a\nRUN <<EOF\nFROM evil\nEOF\nCOPY <<-\"END\" /x\n\tFROM evil2\n\tEND\nRUN cat <<< 'FROM no' && echo \"<<NOT\"\nFROM b\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/b:latest"),
                build_time: &["docker.io/library/a:latest"],
            },
            Case {
                name: "two heredocs on one line",
                text: "FROM a\nRUN <<A cat /dev/stdin <<B\nFROM x\nA\nFROM y\nB\nFROM c\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/c:latest"),
                build_time: &["docker.io/library/a:latest"],
            },
            Case {
                name: "digest pinned base",
                text: "FROM alpine:3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
                args: &[],
                target: None,
                runtime: Some("docker.io/library/alpine:3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                build_time: &[],
            },
            Case {
                name: "quoted base",
                text: "FROM \"alpine\":'3'\n",
                args: &[],
                target: Some(""),
                runtime: Some("docker.io/library/alpine:3"),
                build_time: &[],
            },
        ];
        for c in cases {
            let got = scan(c.text, &args(c.args), c.target);
            let got = got.unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!(
                full(&got.runtime).as_deref(),
                c.runtime,
                "{}: runtime",
                c.name
            );
            assert_eq!(
                fulls(&got.build_time),
                c.build_time,
                "{}: build_time",
                c.name
            );
        }
    }

    #[test]
    fn stage_details() {
        let text = "ARG P=linux/arm64\n# c\nFROM --platform=$P golang:1.22 AS Build\n\
                    FROM --platform=$BUILDPLATFORM build\nFROM scratch\n";
        let got = scan(text, &BTreeMap::new(), None).unwrap();
        let golang = ImageRef::parse("golang:1.22").unwrap();
        assert_eq!(
            got.stages,
            vec![
                Stage {
                    index: 0,
                    name: Some("build".into()),
                    base: "golang:1.22".into(),
                    image: Some(golang.clone()),
                    from_stage: None,
                    platform: Some("linux/arm64".into()),
                    line: 3,
                },
                Stage {
                    index: 1,
                    name: None,
                    base: "build".into(),
                    image: None,
                    from_stage: Some(0),
                    platform: Some("linux/amd64".into()),
                    line: 4,
                },
                Stage {
                    index: 2,
                    name: None,
                    base: "scratch".into(),
                    image: None,
                    from_stage: None,
                    platform: None,
                    line: 5,
                },
            ]
        );
        assert_eq!(got.runtime, None);
        assert_eq!(got.build_time, vec![golang]);
        // serialises for the API
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(json["stages"][0]["name"], "build");
    }

    #[test]
    fn platform_parameter_and_overrides() {
        let text = "FROM --platform=$BUILDPLATFORM img-$TARGETOS-$TARGETARCH$TARGETVARIANT\n";
        let cases = [
            (
                Some("linux/arm64/v8"),
                &[][..],
                "linux/arm64/v8",
                "img-linux-arm64v8",
            ),
            (
                Some("Linux/ARM64"),
                &[][..],
                "linux/arm64",
                "img-linux-arm64",
            ),
            (
                Some("windows"),
                &[][..],
                "windows/amd64",
                "img-windows-amd64",
            ),
            (None, &[][..], "linux/amd64", "img-linux-amd64"),
            (
                Some("linux/arm64"),
                &[("TARGETARCH", "riscv64"), ("BUILDPLATFORM", "linux/s390x")][..],
                "linux/s390x",
                "img-linux-riscv64",
            ),
        ];
        for (platform, overrides, want_platform, want_image) in cases {
            let got = scan_with_platform(text, &args(overrides), None, platform).unwrap();
            let stage = &got.stages[0];
            assert_eq!(
                stage.platform.as_deref(),
                Some(want_platform),
                "{platform:?}"
            );
            assert_eq!(stage.base, want_image, "{platform:?}");
        }
        for bad in ["", "linux/", "a/b/c/d", "li nux"] {
            let err = scan_with_platform("FROM a\n", &BTreeMap::new(), None, Some(bad))
                .expect_err(bad)
                .to_string();
            assert!(err.contains(&format!("invalid platform '{bad}'")), "{err}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        // (dockerfile, build args, target, fragments the error must contain)
        type ErrorCase<'a> = (
            &'a str,
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            &'a [&'a str],
        );
        let cases: &[ErrorCase] = &[
            ("", &[], None, &["no FROM instruction"]),
            (
                "# only a comment\nRUN echo\n",
                &[],
                None,
                &["no FROM instruction"],
            ),
            (
                "ARG A=1\n\nFROM\n",
                &[],
                None,
                &["line 3", "needs a base image"],
            ),
            (
                "FROM --platform=linux/amd64\n",
                &[],
                None,
                &["line 1", "needs a base image"],
            ),
            (
                "FROM a\nFROM Alpine\n",
                &[],
                None,
                &["line 2", "'Alpine'", "lower-case"],
            ),
            (
                "FROM a:\n",
                &[],
                None,
                &["line 1", "tag after ':' is empty"],
            ),
            (
                "FROM $NOPE\n",
                &[],
                None,
                &["line 1", "'$NOPE'", "empty base image"],
            ),
            ("FROM ${X\n", &[], None, &["line 1", "missing '}'"]),
            ("FROM ${1X}\n", &[], None, &["line 1", "bad substitution"]),
            (
                "FROM ${X/a/b}\n",
                &[],
                None,
                &["line 1", "unsupported substitution"],
            ),
            ("FROM ${X:?set-X}\n", &[], None, &["line 1", "X: set-X"]),
            ("FROM ${X?}\n", &[], None, &["line 1", "X: is not set"]),
            (
                "FROM 'alpine\n",
                &[],
                None,
                &["line 1", "unterminated single quote"],
            ),
            (
                "FROM \"alpine\n",
                &[],
                None,
                &["line 1", "unterminated double quote"],
            ),
            (
                "ARG A=\"x\nFROM a\n",
                &[],
                None,
                &["line 1", "ARG A", "unterminated"],
            ),
            ("FROM a AS\n", &[], None, &["line 1", "'image [AS name]'"]),
            ("FROM a b c\n", &[], None, &["line 1", "'image [AS name]'"]),
            (
                "FROM a AS b c\n",
                &[],
                None,
                &["line 1", "'image [AS name]'"],
            ),
            (
                "FROM a AS 1b\n",
                &[],
                None,
                &["line 1", "invalid stage name '1b'"],
            ),
            (
                "FROM a AS x\n\nFROM b AS X\n",
                &[],
                None,
                &["line 3", "duplicate stage name 'X'", "line 1"],
            ),
            (
                "FROM --foo=bar a\n",
                &[],
                None,
                &["line 1", "unknown flag '--foo=bar'"],
            ),
            (
                "FROM --platform a\n",
                &[],
                None,
                &["line 1", "needs a value"],
            ),
            (
                "FROM a AS x\nFROM b\n",
                &[],
                Some("nope"),
                &["target stage 'nope' not found", "x"],
            ),
            (
                "FROM a\nFROM b\n",
                &[],
                Some("nope"),
                &["target stage 'nope' not found", "no stages"],
            ),
            (
                "# escape=x\nFROM a\n",
                &[],
                None,
                &["line 1", "invalid escape directive value 'x'"],
            ),
            (
                "# escape=`\n# escape=\\\nFROM a\n",
                &[],
                None,
                &["line 2", "only one escape"],
            ),
            ("ARG R=BAD\nFROM $R/x\n", &[], None, &["line 2", "'BAD/x'"]),
            (
                "FROM $R/x\n",
                &[("R", "UP")],
                None,
                &["line 1", "'UP/x'", "lower-case"],
            ),
            // the escape keeps the '$' literal, which is no valid reference
            (
                "FROM a\nFROM x\\$y\n",
                &[("y", "no")],
                None,
                &["line 2", "'x$y'"],
            ),
        ];
        for (text, build_args, target, wants) in cases {
            let err = scan(text, &args(build_args), *target)
                .expect_err(&format!("{text:?} should fail"))
                .to_string();
            for want in *wants {
                assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
            }
        }
    }

    #[test]
    fn expand_rules() {
        let vars = args(&[("A", "a"), ("E", ""), ("D", "$A")]);
        let cases = [
            ("$A", "a"),
            ("${A}", "a"),
            ("x${A}y$A.z", "xaya.z"),
            ("$", "$"),
            ("$-", "$-"),
            ("a$", "a$"),
            ("$U", ""),
            ("${U:-d}", "d"),
            ("${E:-d}", "d"),
            ("${E-d}", ""),
            ("${U-d}", "d"),
            ("${A:+alt}", "alt"),
            ("${E:+alt}", ""),
            ("${E+alt}", "alt"),
            ("${U+alt}", ""),
            ("${U:-${A}-${E:-e}}", "a-e"),
            ("${U:-}", ""),
            ("$D", "$A"),
            ("'$A'", "$A"),
            ("\"$A\"", "a"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\b\"", "a\\b"),
            ("a\\", "a\\"),
        ];
        for (input, want) in cases {
            let got = expand(input, &vars, '\\').unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
        }
        let deep = format!("{}x{}", "${U:-".repeat(40), "}".repeat(40));
        assert!(expand(&deep, &vars, '\\').unwrap_err().contains("nested"));
        assert_eq!(expand("`$A", &vars, '`').unwrap(), "$A");
    }

    #[test]
    fn heredoc_detection() {
        let cases: &[(&str, &[(&str, bool)])] = &[
            ("<<EOF", &[("EOF", false)]),
            ("<<-EOF bash", &[("EOF", true)]),
            ("cat <<'X' > /f", &[("X", false)]),
            ("<<\"Y\"", &[("Y", false)]),
            ("<<A <<-B", &[("A", false), ("B", true)]),
            ("cat <<EOF>file", &[("EOF", false)]),
            ("cat <<< word", &[]),
            ("echo '<<EOF'", &[]),
            ("echo \"x <<EOF\"", &[]),
            ("cat<<EOF", &[]),
            ("<<", &[]),
            ("<<-", &[]),
        ];
        for (args, want) in cases {
            let got = heredoc_names(args);
            let want: Vec<(String, bool)> = want.iter().map(|(n, t)| (n.to_string(), *t)).collect();
            assert_eq!(got, want, "{args}");
        }
    }

    /// Deterministic pseudo-random garbage never panics either parser.
    #[test]
    fn garbage_never_panics() {
        const PIECES: &[&str] = &[
            "FROM ",
            "from ",
            "ARG ",
            "RUN ",
            "COPY ",
            " AS ",
            "as ",
            "\n",
            "\r\n",
            "\\",
            "\\\n",
            "`",
            "# escape=`\n",
            "# syntax=x\n",
            "#",
            "$",
            "${",
            "}",
            ":-",
            ":+",
            ":?",
            "-",
            "+",
            "?",
            "'",
            "\"",
            "=",
            "<<",
            "<<-",
            "EOF",
            "\nEOF\n",
            "<<<",
            "alpine",
            "A",
            "B",
            ":",
            "@",
            "sha256:",
            "/",
            "//",
            ".",
            "localhost",
            "--platform=",
            "--x",
            "scratch",
            " ",
            "\t",
            "\u{feff}",
            "é",
            "\u{0}",
            "[",
            "]",
            "::1",
            "5000",
            "0123456789abcdef",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let build_args = args(&[("A", "alpine"), ("B", "${A}")]);
        for _ in 0..20_000 {
            let n = (next() % 24) as usize;
            let mut s = String::new();
            for _ in 0..n {
                let idx = (next() % PIECES.len() as u64) as usize;
                s.push_str(PIECES.get(idx).copied().unwrap_or(""));
            }
            let _ = ImageRef::parse(&s);
            let _ = ImageRef::parse_with_default_registry(&s, "my.io");
            let _ = scan(&s, &build_args, None);
            let _ = scan(&s, &build_args, Some("a"));
            let _ = scan_with_platform(&s, &BTreeMap::new(), None, Some(&s));
        }
    }
}
