//! Go's builtin template functions: `and or not len index slice print
//! printf println html js urlquery call eq ne lt le gt ge` (`and` and `or`
//! short-circuit, so the executor evaluates them itself).

use std::cmp::Ordering;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::args::{int_arg, take, want, FnResult};
use crate::printf::sprintf;
use crate::value::{display, truthy, type_name};

pub(crate) const NAMES: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "print", "printf",
    "println", "html", "js", "urlquery", "call",
];

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    let s = |v: String| Ok(Value::String(v));
    match name {
        "not" => {
            want(&vals, 1)?;
            Ok(Value::Bool(!vals.first().is_some_and(truthy)))
        }
        "eq" => {
            let Some((a, rest)) = vals.split_first() else {
                return Err("missing argument for comparison".to_string());
            };
            if rest.is_empty() {
                return Err("missing argument for comparison".to_string());
            }
            for b in rest {
                if equal(a, b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            let [a, b] = take(&vals)?;
            let r = match name {
                "ne" => !equal(a, b)?,
                "lt" => ordering(a, b)? == Ordering::Less,
                "le" => ordering(a, b)? != Ordering::Greater,
                "gt" => ordering(a, b)? == Ordering::Greater,
                _ => ordering(a, b)? != Ordering::Less,
            };
            Ok(Value::Bool(r))
        }
        "len" => {
            let [v] = take(&vals)?;
            let n = match v {
                Value::String(x) => x.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => 0,
                other => return Err(format!("len of {}", type_name(other))),
            };
            Ok(Value::from(n))
        }
        "index" => {
            let Some((first, keys)) = vals.split_first() else {
                return Err("wrong number of arguments: want at least 1, got 0".to_string());
            };
            let mut cur = first.clone();
            for key in keys {
                cur = index_one(&cur, key)?;
            }
            Ok(cur)
        }
        "print" => s(go_sprint(&vals)),
        "println" => {
            let mut out = vals.iter().map(display).collect::<Vec<_>>().join(" ");
            out.push('\n');
            s(out)
        }
        "printf" => {
            let Some((format, args)) = vals.split_first() else {
                return Err("wrong number of arguments: want at least 1, got 0".to_string());
            };
            s(sprintf(&display(format), args))
        }
        "html" => s(html_escape(&eval_args(&vals))),
        "js" => s(js_escape(&eval_args(&vals))),
        "urlquery" => s(query_escape(&eval_args(&vals))),
        "and" | "or" => Err(format!("{name} is evaluated by the executor")),
        "call" => {
            Err("call is not supported: template data holds no functions to call".to_string())
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
pub(crate) fn go_sprint(vals: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_str = true;
    for (i, v) in vals.iter().enumerate() {
        let is_str = matches!(v, Value::String(_));
        if i > 0 && !is_str && !prev_str {
            out.push(' ');
        }
        out.push_str(&display(v));
        prev_str = is_str;
    }
    out
}

/// Go's `evalArgs` for `html`, `js`, `urlquery`: one string as-is, anything
/// else printed as `fmt.Sprint` does.
fn eval_args(vals: &[Value]) -> String {
    match vals {
        [Value::String(s)] => s.clone(),
        _ => go_sprint(vals),
    }
}

/// Go's `template.HTMLEscapeString`. Hand-written: Go escapes `'` and `"`
/// as `&#39;` and `&#34;` and NUL as U+FFFD, which general-purpose HTML
/// escaping crates spell differently.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`. Hand-written for the same reason as
/// [`html_escape`]: the exact spelling (`\u003C`, `\'`) is Go's own.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if !c.is_ascii() && !go_is_print(c) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `unicode.IsPrint` for non-ASCII characters, approximated: control,
/// whitespace and format characters are not printable.
fn go_is_print(c: char) -> bool {
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'))
}

/// What Go's `url.QueryEscape` leaves alone: letters, digits, `-_.~`.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Go's `url.QueryEscape`: space as `+`, the rest percent-encoded.
pub(crate) fn query_escape(s: &str) -> String {
    s.split(' ')
        .map(|part| utf8_percent_encode(part, QUERY).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// Go's `slice x i j k`: byte offsets into strings, elements of lists.
pub(crate) fn go_slice(vals: &[Value]) -> FnResult {
    let Some((item, idx)) = vals.split_first() else {
        return Err("wrong number of arguments: want at least 1, got 0".to_string());
    };
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let len = match item {
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        Value::Null => return Err("slice of untyped nil".to_string()),
        other => return Err(format!("can't slice item of type {}", type_name(other))),
    };
    let mut bounds = Vec::with_capacity(3);
    for v in idx {
        let i = int_arg(v)?;
        let i = usize::try_from(i)
            .ok()
            .filter(|i| *i <= len)
            .ok_or_else(|| format!("index out of range: {i}"))?;
        bounds.push(i);
    }
    let from = bounds.first().copied().unwrap_or(0);
    let to = bounds.get(1).copied().unwrap_or(len);
    if from > to {
        return Err(format!("invalid slice index: {from} > {to}"));
    }
    match item {
        Value::String(s) => {
            if bounds.len() == 3 {
                return Err("cannot 3-index slice a string".to_string());
            }
            let bytes = s.as_bytes().get(from..to).unwrap_or(&[]);
            Ok(Value::String(String::from_utf8_lossy(bytes).into_owned()))
        }
        Value::Array(a) => {
            if let Some(cap) = bounds.get(2) {
                if to > *cap {
                    return Err(format!("invalid slice index: {to} > {cap}"));
                }
            }
            Ok(Value::Array(a.get(from..to).unwrap_or(&[]).to_vec()))
        }
        _ => Ok(Value::Null),
    }
}

fn index_one(cur: &Value, key: &Value) -> FnResult {
    match cur {
        Value::Null => Ok(Value::Null),
        Value::Array(a) => {
            let i = int_arg(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| a.get(i))
                .cloned()
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        Value::Object(m) => match key {
            Value::String(k) => Ok(m.get(k).cloned().unwrap_or(Value::Null)),
            Value::Null => Ok(Value::Null),
            other => Err(format!(
                "cannot index a map with a {} key",
                type_name(other)
            )),
        },
        Value::String(x) => {
            let i = int_arg(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| x.as_bytes().get(i))
                .map(|b| Value::from(*b))
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        other => Err(format!("can't index item of type {}", type_name(other))),
    }
}

/// A comparable scalar.
enum Basic<'a> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

fn basic(v: &Value) -> Option<Basic<'_>> {
    match v {
        Value::Bool(b) => Some(Basic::Bool(*b)),
        Value::Number(n) => Some(if let Some(i) = n.as_i64() {
            Basic::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Basic::Int(i128::from(u))
        } else {
            Basic::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Some(Basic::Str(s)),
        _ => None,
    }
}

fn zero_like<'a>(b: &Basic<'_>) -> Basic<'a> {
    match b {
        Basic::Bool(_) => Basic::Bool(false),
        Basic::Int(_) => Basic::Int(0),
        Basic::Float(_) => Basic::Float(0.0),
        Basic::Str(_) => Basic::Str(""),
    }
}

/// Both operands as scalars of one kind, `nil` standing for the other's
/// zero value; `None` when both are `nil`.
fn scalars<'a>(
    a: &'a Value,
    b: &'a Value,
) -> std::result::Result<Option<(Basic<'a>, Basic<'a>)>, String> {
    let incompatible = || {
        format!(
            "incompatible types for comparison: {} and {}",
            type_name(a),
            type_name(b)
        )
    };
    let (x, y) = match (basic(a), basic(b)) {
        (Some(x), Some(y)) => (x, y),
        (Some(x), None) if b.is_null() => {
            let z = zero_like(&x);
            (x, z)
        }
        (None, Some(y)) if a.is_null() => (zero_like(&y), y),
        (None, None) if a.is_null() && b.is_null() => return Ok(None),
        _ => return Err(incompatible()),
    };
    let same_kind = matches!(
        (&x, &y),
        (Basic::Bool(_), Basic::Bool(_))
            | (Basic::Str(_), Basic::Str(_))
            | (
                Basic::Int(_) | Basic::Float(_),
                Basic::Int(_) | Basic::Float(_)
            )
    );
    if same_kind {
        Ok(Some((x, y)))
    } else {
        Err(incompatible())
    }
}

fn as_f64(b: &Basic<'_>) -> f64 {
    match b {
        Basic::Int(i) => *i as f64,
        Basic::Float(f) => *f,
        _ => 0.0,
    }
}

pub(crate) fn equal(a: &Value, b: &Value) -> std::result::Result<bool, String> {
    if let (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) = (a, b) {
        return Ok(a == b);
    }
    Ok(match scalars(a, b)? {
        None => true,
        Some((Basic::Bool(x), Basic::Bool(y))) => x == y,
        Some((Basic::Str(x), Basic::Str(y))) => x == y,
        Some((Basic::Int(x), Basic::Int(y))) => x == y,
        Some((x, y)) => as_f64(&x) == as_f64(&y),
    })
}

fn ordering(a: &Value, b: &Value) -> std::result::Result<Ordering, String> {
    Ok(match scalars(a, b)? {
        None => Ordering::Equal,
        Some((Basic::Bool(_), _)) => {
            return Err("invalid type for comparison: bool".to_string());
        }
        Some((Basic::Str(x), Basic::Str(y))) => x.cmp(y),
        Some((Basic::Int(x), Basic::Int(y))) => x.cmp(&y),
        Some((x, y)) => as_f64(&x)
            .partial_cmp(&as_f64(&y))
            .unwrap_or(Ordering::Equal),
    })
}
