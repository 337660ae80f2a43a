//! The built-in functions: Go's builtins (comparisons, `index`, `len`, the
//! print family) and the sprig-style string functions.

use std::cmp::Ordering;

use base64::Engine as _;
use serde_json::Value;

use crate::printf::{go_quote, sprintf};
use crate::value::{display, truthy, type_name};
use crate::{MAX_OUTPUT, MAX_PARTS};

/// Every function a template may call.
pub(crate) const FUNCS: &[&str] = &[
    // Go builtins
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "print",
    "printf",
    "println",
    // sprig-style
    "default",
    "empty",
    "coalesce",
    "ternary",
    "lower",
    "upper",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "b64enc",
    "b64dec",
    "split",
    "splitList",
    "join",
    "repeat",
    "substr",
    "trunc",
    "indent",
    "nindent",
    "cat",
    "toString",
    "toJson",
];

type FnResult = std::result::Result<Value, String>;

fn want(vals: &[Value], n: usize) -> std::result::Result<(), String> {
    if vals.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of arguments: want {n}, got {}",
            vals.len()
        ))
    }
}

/// Exactly `N` arguments.
fn take<const N: usize>(vals: &[Value]) -> std::result::Result<&[Value; N], String> {
    want(vals, N)?;
    vals.try_into()
        .map_err(|_| format!("wrong number of arguments: want {N}, got {}", vals.len()))
}

/// An argument that must be an integer (numbers, or strings of digits).
fn int_arg(v: &Value) -> std::result::Result<i64, String> {
    let bad = || format!("expected an integer, got {} {}", type_name(v), quoted(v));
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                Ok(f as i64)
            } else {
                Err(bad())
            }
        }
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad()),
        Value::Null => Ok(0),
        _ => Err(bad()),
    }
}

fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => display(other),
    }
}

fn too_large(len: usize) -> std::result::Result<(), String> {
    if len > MAX_OUTPUT {
        Err("result is larger than the 16 MiB limit".to_string())
    } else {
        Ok(())
    }
}

/// Takes the arguments as (a, b) or (a, b, c) printed strings.
fn strs<const N: usize>(vals: &[Value]) -> std::result::Result<[String; N], String> {
    want(vals, N)?;
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, v) in out.iter_mut().zip(vals) {
        *slot = display(v);
    }
    Ok(out)
}

fn chars_slice(chars: &[char], from: usize, to: usize) -> String {
    chars.get(from..to).unwrap_or(&[]).iter().collect()
}

pub(crate) fn call_func(name: &str, vals: Vec<Value>) -> FnResult {
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
        "print" => {
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
            s(out)
        }
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
        "default" => {
            if vals.is_empty() || vals.len() > 2 {
                return Err(format!(
                    "wrong number of arguments: want 1 or 2, got {}",
                    vals.len()
                ));
            }
            let mut it = vals.into_iter();
            let fallback = it.next().unwrap_or(Value::Null);
            Ok(it.next().filter(truthy).unwrap_or(fallback))
        }
        "empty" => {
            want(&vals, 1)?;
            Ok(Value::Bool(!vals.first().is_some_and(truthy)))
        }
        "coalesce" => Ok(vals.into_iter().find(truthy).unwrap_or(Value::Null)),
        "ternary" => {
            want(&vals, 3)?;
            let mut it = vals.into_iter();
            let (a, b, cond) = (it.next(), it.next(), it.next());
            let pick = if cond.as_ref().is_some_and(truthy) {
                a
            } else {
                b
            };
            Ok(pick.unwrap_or(Value::Null))
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
        "trim" => {
            let [x] = strs(&vals)?;
            s(x.trim().to_string())
        }
        "trimAll" => {
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
        "b64enc" => {
            let [x] = strs(&vals)?;
            s(base64::engine::general_purpose::STANDARD.encode(x.as_bytes()))
        }
        "b64dec" => {
            let [x] = strs(&vals)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(x.as_bytes())
                .map_err(|_| format!("{x:?} is not valid base64"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| format!("base64 {x:?} does not decode to utf-8 text"))
        }
        "split" | "splitList" => {
            let [sep, x] = strs(&vals)?;
            let parts: Vec<String> = if sep.is_empty() {
                x.chars().map(String::from).collect()
            } else {
                x.split(sep.as_str()).map(str::to_string).collect()
            };
            if parts.len() > MAX_PARTS {
                return Err(format!("more than {MAX_PARTS} parts"));
            }
            if name == "splitList" {
                return Ok(Value::Array(parts.into_iter().map(Value::String).collect()));
            }
            Ok(Value::Object(
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("_{i}"), Value::String(p)))
                    .collect(),
            ))
        }
        "join" => {
            let [sep, list] = take(&vals)?;
            let sep = display(sep);
            let out = match list {
                Value::Array(a) => a
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(display)
                    .collect::<Vec<_>>()
                    .join(&sep),
                other => display(other),
            };
            s(out)
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
        "toString" => {
            let [v] = take(&vals)?;
            s(display(v))
        }
        "toJson" => {
            let [v] = take(&vals)?;
            serde_json::to_string(v)
                .map(Value::String)
                .map_err(|e| format!("cannot encode as json: {e}"))
        }
        other => Err(format!("function \"{other}\" not defined")),
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

/// Go's `strings.Title`: upper-cases the first letter of every word.
fn title(x: &str) -> String {
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

fn equal(a: &Value, b: &Value) -> std::result::Result<bool, String> {
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
