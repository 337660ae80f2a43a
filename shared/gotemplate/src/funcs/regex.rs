//! Sprig's regular-expression functions. Go's RE2 syntax is the
//! `regex-lite` crate's (both are linear-time, no backreferences). As in
//! Go, `\d`, `\w`, `\s` and `\b` are ASCII; unlike Go, Unicode classes
//! (`\pL`, `\p{Greek}`) are invalid and `(?i)` folds ASCII letters only.
//! `regex-lite` rather than `regex`: this crate is linked into every Lambda
//! function, where `regex`'s engines and Unicode tables cost about a
//! megabyte (docs/BENCHMARKS.md, "Smaller binaries"). `$1`/`${name}` in
//! replacements expand as Go's `Expand` does.

use regex_lite::{NoExpand, Regex, RegexBuilder};
use serde_json::Value;

use super::args::{int_arg, string_list, take, too_many, FnResult, Res};
use crate::value::display;
use crate::MAX_OUTPUT;

pub(crate) const NAMES: &[&str] = &[
    "regexMatch",
    "regexFindAll",
    "regexFind",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "regexSplit",
];

fn compile(re: &str) -> Res<Regex> {
    RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression {re:?}: {e}"))
}

/// Go's `n` argument: negative for all.
fn limit(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    match name {
        "regexMatch" => {
            let [re, s] = take(&vals)?;
            // Sprig v2 answers false for an invalid expression
            Ok(Value::Bool(
                compile(&display(re)).is_ok_and(|r| r.is_match(&display(s))),
            ))
        }
        "regexFind" => {
            let [re, s] = take(&vals)?;
            let s = display(s);
            let found = compile(&display(re))?
                .find(&s)
                .map(|m| m.as_str().to_string());
            Ok(Value::String(found.unwrap_or_default()))
        }
        "regexFindAll" => {
            let [re, s, n] = take(&vals)?;
            let s = display(s);
            let n = limit(int_arg(n)?);
            let found: Vec<String> = compile(&display(re))?
                .find_iter(&s)
                .take(n)
                .map(|m| m.as_str().to_string())
                .collect();
            too_many(found.len())?;
            Ok(string_list(found))
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            let [re, s, repl] = take(&vals)?;
            let (s, repl) = (display(s), display(repl));
            let re = compile(&display(re))?;
            let count = re.find_iter(&s).count();
            let bound = s
                .len()
                .saturating_add(count.saturating_mul(repl.len().saturating_mul(4)));
            if bound > MAX_OUTPUT {
                return Err("result is larger than the 16 MiB limit".to_string());
            }
            let out = if name == "regexReplaceAll" {
                re.replace_all(&s, repl.as_str()).into_owned()
            } else {
                re.replace_all(&s, NoExpand(&repl)).into_owned()
            };
            Ok(Value::String(out))
        }
        "regexSplit" => {
            let [re, s, n] = take(&vals)?;
            let s = display(s);
            let n = int_arg(n)?;
            if n == 0 {
                return Ok(Value::Null);
            }
            let parts: Vec<String> = compile(&display(re))?
                .splitn(&s, limit(n))
                .map(str::to_string)
                .collect();
            too_many(parts.len())?;
            Ok(string_list(parts))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}
