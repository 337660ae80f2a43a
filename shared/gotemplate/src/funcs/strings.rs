//! Sprig's string functions, with Sprig's argument order (`replace old new
//! s`, `trimPrefix prefix s`, `split sep s`: the string last, for pipes).

use heck::{ToKebabCase, ToSnakeCase, ToUpperCamelCase};
use serde_json::Value;

use super::args::{int_arg, strs, take, to_int64, too_large, too_many, FnResult, Res};
use crate::printf::go_quote;
use crate::value::display;

pub(crate) const NAMES: &[&str] = &[
    "hello",
    "abbrev",
    "abbrevboth",
    "trunc",
    "trim",
    "upper",
    "lower",
    "title",
    "untitle",
    "substr",
    "repeat",
    "trimall",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "nospace",
    "initials",
    "swapcase",
    "snakecase",
    "camelcase",
    "kebabcase",
    "wrap",
    "wrapWith",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "toString",
    "split",
    "splitList",
    "splitn",
];

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    let s = |v: String| Ok(Value::String(v));
    match name {
        "hello" => {
            super::args::want(&vals, 0)?;
            s("Hello!".to_string())
        }
        "abbrev" => {
            let [w, x] = take(&vals)?;
            s(abbreviate(&display(x), 0, int_arg(w)?).unwrap_or_default())
        }
        "abbrevboth" => {
            let [l, r, x] = take(&vals)?;
            s(abbreviate(&display(x), int_arg(l)?, int_arg(r)?).unwrap_or_default())
        }
        "lower" => {
            let [x] = strs(&vals)?;
            s(x.to_lowercase())
        }
        "upper" => {
            let [x] = strs(&vals)?;
            s(x.to_uppercase())
        }
        "title" => {
            let [x] = strs(&vals)?;
            s(title(&x))
        }
        "untitle" => {
            let [x] = strs(&vals)?;
            s(map_words(&x, |first| first.to_lowercase().collect()))
        }
        "initials" => {
            let [x] = strs(&vals)?;
            s(x.split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect())
        }
        "swapcase" => {
            let [x] = strs(&vals)?;
            s(x.chars()
                .flat_map(|c| -> Vec<char> {
                    if c.is_uppercase() {
                        c.to_lowercase().collect()
                    } else if c.is_lowercase() {
                        c.to_uppercase().collect()
                    } else {
                        vec![c]
                    }
                })
                .collect())
        }
        "snakecase" => {
            let [x] = strs(&vals)?;
            s(x.to_snake_case())
        }
        "camelcase" => {
            let [x] = strs(&vals)?;
            s(x.to_upper_camel_case())
        }
        "kebabcase" => {
            let [x] = strs(&vals)?;
            s(x.to_kebab_case())
        }
        "nospace" => {
            let [x] = strs(&vals)?;
            s(x.chars().filter(|c| !c.is_whitespace()).collect())
        }
        "trim" => {
            let [x] = strs(&vals)?;
            s(x.trim().to_string())
        }
        "trimAll" | "trimall" => {
            let [cut, x] = strs(&vals)?;
            s(x.trim_matches(|c| cut.contains(c)).to_string())
        }
        "trimPrefix" => {
            let [p, x] = strs(&vals)?;
            s(x.strip_prefix(p.as_str()).unwrap_or(&x).to_string())
        }
        "trimSuffix" => {
            let [p, x] = strs(&vals)?;
            s(x.strip_suffix(p.as_str()).unwrap_or(&x).to_string())
        }
        "replace" => {
            let [old, new, x] = strs(&vals)?;
            let count = if old.is_empty() {
                x.chars().count() + 1
            } else {
                x.matches(old.as_str()).count()
            };
            too_large(x.len().saturating_add(count.saturating_mul(new.len())))?;
            s(x.replace(old.as_str(), &new))
        }
        "contains" => {
            let [sub, x] = strs(&vals)?;
            Ok(Value::Bool(x.contains(sub.as_str())))
        }
        "hasPrefix" => {
            let [p, x] = strs(&vals)?;
            Ok(Value::Bool(x.starts_with(p.as_str())))
        }
        "hasSuffix" => {
            let [p, x] = strs(&vals)?;
            Ok(Value::Bool(x.ends_with(p.as_str())))
        }
        "quote" => s(vals
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| go_quote(&display(v), '"'))
            .collect::<Vec<_>>()
            .join(" ")),
        "squote" => s(vals
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| format!("'{}'", display(v)))
            .collect::<Vec<_>>()
            .join(" ")),
        "cat" => s(vals
            .iter()
            .filter(|v| !v.is_null())
            .map(display)
            .collect::<Vec<_>>()
            .join(" ")),
        "plural" => {
            let [one, many, n] = take(&vals)?;
            let pick = if int_arg(n)? == 1 { one } else { many };
            s(display(pick))
        }
        "toString" => {
            let [v] = take(&vals)?;
            s(display(v))
        }
        "split" | "splitList" => {
            let [sep, x] = strs(&vals)?;
            let parts = split_n(&x, &sep, -1)?;
            if name == "splitList" {
                return Ok(super::args::string_list(parts));
            }
            Ok(indexed_map(parts))
        }
        "splitn" => {
            let [sep, n, x] = take(&vals)?;
            let parts = split_n(&display(x), &display(sep), int_arg(n)?)?;
            Ok(indexed_map(parts))
        }
        "repeat" => {
            let [n, x] = take(&vals)?;
            let n = int_arg(n)?;
            let x = display(x);
            let n = usize::try_from(n).map_err(|_| format!("negative repeat count {n}"))?;
            too_large(n.saturating_mul(x.len()))?;
            s(x.repeat(n))
        }
        "substr" => {
            let [start, end, x] = take(&vals)?;
            let start = int_arg(start)?;
            let end = int_arg(end)?;
            let chars: Vec<char> = display(x).chars().collect();
            let len = chars.len() as i64;
            let start = start.clamp(0, len);
            let end = if end < 0 || end > len { len } else { end };
            if start >= end {
                return s(String::new());
            }
            s(chars_slice(&chars, start as usize, end as usize))
        }
        "trunc" => {
            let [n, x] = take(&vals)?;
            let n = int_arg(n)?;
            let chars: Vec<char> = display(x).chars().collect();
            let len = chars.len() as i64;
            let out = if n < 0 && len + n > 0 {
                chars_slice(&chars, (len + n) as usize, len as usize)
            } else if n >= 0 && len > n {
                chars_slice(&chars, 0, n as usize)
            } else {
                chars.iter().collect()
            };
            s(out)
        }
        "indent" | "nindent" => {
            let [n, x] = take(&vals)?;
            let n = int_arg(n)?;
            let x = display(x);
            let n = usize::try_from(n).map_err(|_| format!("negative indent {n}"))?;
            let lines = x.matches('\n').count() + 1;
            too_large(x.len().saturating_add(lines.saturating_mul(n)))?;
            let pad = " ".repeat(n);
            let body = format!("{pad}{}", x.replace('\n', &format!("\n{pad}")));
            s(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "wrap" => {
            let [n, x] = take(&vals)?;
            s(wrap(&display(x), to_int64(n), "\n", false))
        }
        "wrapWith" => {
            let [n, sep, x] = take(&vals)?;
            let sep = display(sep);
            let sep = if sep.is_empty() {
                "\n".to_string()
            } else {
                sep
            };
            let x = display(x);
            too_large(x.len().saturating_mul(sep.len().max(1)))?;
            s(wrap(&x, to_int64(n), &sep, true))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

fn chars_slice(chars: &[char], from: usize, to: usize) -> String {
    chars.get(from..to).unwrap_or(&[]).iter().collect()
}

/// Go's `strings.SplitN` (`n < 0`: all parts; `n == 0`: none).
fn split_n(x: &str, sep: &str, n: i64) -> Res<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let parts: Vec<String> = if sep.is_empty() {
        let chars: Vec<char> = x.chars().collect();
        let mut out: Vec<String> = Vec::new();
        for (i, c) in chars.iter().enumerate() {
            if out.len() + 1 == limit {
                out.push(chars[i..].iter().collect());
                break;
            }
            out.push(c.to_string());
        }
        out
    } else {
        x.splitn(limit, sep).map(str::to_string).collect()
    };
    too_many(parts.len())?;
    Ok(parts)
}

/// Sprig's `split` result: a map with keys `_0`, `_1`, ...
fn indexed_map(parts: Vec<String>) -> Value {
    Value::Object(
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("_{i}"), Value::String(p)))
            .collect(),
    )
}

/// goutils' `AbbreviateFull` (offset 0 is `Abbreviate`): `None` where it
/// fails (widths under 4, or under 7 with an offset), which Sprig prints as
/// the empty string. Counts characters where goutils counts bytes.
fn abbreviate(x: &str, offset: i64, width: i64) -> Option<String> {
    let chars: Vec<char> = x.chars().collect();
    let len = chars.len() as i64;
    if chars.is_empty() {
        return Some(String::new());
    }
    if width < 4 {
        return None;
    }
    if len <= width {
        return Some(x.to_string());
    }
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    let take = |from: i64, to: i64| -> String {
        chars_slice(&chars, from.max(0) as usize, to.clamp(0, len) as usize)
    };
    if offset <= 4 {
        return Some(format!("{}...", take(0, width - 3)));
    }
    if width < 7 {
        return None;
    }
    if offset + width - 3 < len {
        let rest = take(offset, len);
        return abbreviate(&rest, 0, width - 3).map(|a| format!("...{a}"));
    }
    Some(format!("...{}", take(len - (width - 3), len)))
}

/// Go's `strings.Title`: upper-cases the first letter of every word.
pub(crate) fn title(x: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(x.len());
    let mut prev = ' ';
    for c in x.chars() {
        if is_sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// Applies `f` to the first character of every whitespace-separated word.
fn map_words(x: &str, f: impl Fn(char) -> String) -> String {
    let mut out = String::with_capacity(x.len());
    let mut at_start = true;
    for c in x.chars() {
        if c.is_whitespace() {
            at_start = true;
            out.push(c);
        } else if at_start {
            out.push_str(&f(c));
            at_start = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// goutils' `WrapCustom` (Apache commons `WordUtils.wrap`): breaks lines at
/// the last space before `width`; long words are split only when
/// `long_words`. Hand-written: no crate wraps with these exact rules.
fn wrap(x: &str, width: i64, newline: &str, long_words: bool) -> String {
    let chars: Vec<char> = x.chars().collect();
    let width = usize::try_from(width.max(1)).unwrap_or(1);
    let len = chars.len();
    let text = |a: usize, b: usize| chars_slice(&chars, a, b.min(len));
    let mut out = String::with_capacity(x.len());
    let mut offset = 0;
    while len - offset > width {
        if chars[offset] == ' ' {
            offset += 1;
            continue;
        }
        let end = width + offset + 1;
        let space = chars[offset..end.min(len)]
            .iter()
            .rposition(|c| *c == ' ')
            .map(|i| i + offset);
        if let Some(at) = space {
            out.push_str(&text(offset, at));
            out.push_str(newline);
            offset = at + 1;
        } else if long_words {
            out.push_str(&text(offset, offset + width));
            out.push_str(newline);
            offset += width;
        } else {
            let end = width + offset;
            match chars[end..].iter().position(|c| *c == ' ') {
                None => {
                    out.push_str(&text(offset, len));
                    offset = len;
                }
                Some(i) => {
                    out.push_str(&text(offset, end + i));
                    out.push_str(newline);
                    offset = end + i + 1;
                }
            }
        }
    }
    out.push_str(&text(offset, len));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations_match_goutils() {
        assert_eq!(abbreviate("hello world", 0, 5).as_deref(), Some("he..."));
        assert_eq!(
            abbreviate("1234 5678 9123", 5, 10).as_deref(),
            Some("...5678...")
        );
        assert_eq!(abbreviate("abc", 0, 4).as_deref(), Some("abc"));
        assert_eq!(abbreviate("abc", 0, 3), None);
        assert_eq!(abbreviate("abcdef", 0, 3), None);
    }

    #[test]
    fn wrapping_matches_goutils() {
        assert_eq!(wrap("Hello World", 5, "\n", false), "Hello\nWorld");
        assert_eq!(
            wrap("The quick brown fox", 10, "\n", false),
            "The quick\nbrown fox"
        );
        assert_eq!(
            wrap("abcdefghij", 3, "<br>", true),
            "abc<br>def<br>ghi<br>j"
        );
        assert_eq!(wrap("abcdefghij xy", 3, "\n", false), "abcdefghij\nxy");
    }
}
