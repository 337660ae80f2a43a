//! Argument helpers shared by the function groups: arity checks and the
//! conversions Go and Sprig apply to arguments.

use serde_json::Value;

use crate::value::{display, type_name};
use crate::{MAX_OUTPUT, MAX_PARTS};

/// A function's result, or the reason it failed (the caller adds where).
pub(crate) type FnResult = std::result::Result<Value, String>;
pub(crate) type Res<T> = std::result::Result<T, String>;

pub(crate) fn want<T>(vals: &[T], n: usize) -> Res<()> {
    if vals.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of arguments: want {n}, got {}",
            vals.len()
        ))
    }
}

pub(crate) fn want_at_least<T>(vals: &[T], n: usize) -> Res<()> {
    if vals.len() >= n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of arguments: want at least {n}, got {}",
            vals.len()
        ))
    }
}

/// Exactly `N` arguments.
pub(crate) fn take<const N: usize, T>(vals: &[T]) -> Res<&[T; N]> {
    want(vals, N)?;
    vals.try_into()
        .map_err(|_| format!("wrong number of arguments: want {N}, got {}", vals.len()))
}

/// Takes the arguments as `N` printed strings.
pub(crate) fn strs<const N: usize>(vals: &[Value]) -> Res<[String; N]> {
    want(vals, N)?;
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, v) in out.iter_mut().zip(vals) {
        *slot = display(v);
    }
    Ok(out)
}

/// An argument Go would convert to `int`: numbers, or strings of digits (as
/// values from maps of strings are).
pub(crate) fn int_arg(v: &Value) -> Res<i64> {
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

/// Sprig v2's `toInt64`: never fails; strings that are not decimal
/// integers, lists and maps are 0, floats are truncated, bools are 0/1.
pub(crate) fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| u as i64))
            .unwrap_or_else(|| n.as_f64().map_or(0, |f| f as i64)),
        Value::String(s) => s.parse::<i64>().unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

/// Sprig v2's `toFloat64`: never fails, like [`to_int64`].
pub(crate) fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => go_parse_float(s).unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

/// Go's `strconv.ParseFloat` for the common forms (Rust's parser also takes
/// `inf`/`nan` spelled as Go does).
pub(crate) fn go_parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// A float as a JSON number (NaN and infinities, which JSON lacks, are 0).
pub(crate) fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::from(0), Value::Number)
}

pub(crate) fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => display(other),
    }
}

pub(crate) fn too_large(len: usize) -> Res<()> {
    if len > MAX_OUTPUT {
        Err("result is larger than the 16 MiB limit".to_string())
    } else {
        Ok(())
    }
}

pub(crate) fn too_many(len: usize) -> Res<()> {
    if len > MAX_PARTS {
        Err(format!("result has more than {MAX_PARTS} elements"))
    } else {
        Ok(())
    }
}

/// The list a list function works on; `what` names the function for the
/// error, worded as Sprig's panics are.
pub(crate) fn list_arg<'a>(v: &'a Value, what: &str) -> Res<&'a [Value]> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("Cannot {what} on type {}", type_name(other))),
    }
}

/// Strings as Sprig's `strslice`: a list's elements printed, anything else
/// a list of its printed form.
pub(crate) fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(display).collect(),
        Value::Null => Vec::new(),
        other => vec![display(other)],
    }
}

pub(crate) fn string_list(items: Vec<String>) -> Value {
    Value::Array(items.into_iter().map(Value::String).collect())
}
