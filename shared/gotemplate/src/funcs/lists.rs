//! Sprig's list functions (`list first rest last initial append prepend
//! concat reverse uniq without has compact slice until untilStep sortAlpha
//! join toStrings`). Lists are never changed in place: each returns a new
//! list, as in Sprig.

use serde_json::Value;

use super::args::{
    int_arg, list_arg, str_list, string_list, take, too_many, want_at_least, FnResult,
};
use super::builtins::go_slice;
use crate::value::{display, truthy};
use crate::MAX_PARTS;

pub(crate) const NAMES: &[&str] = &[
    "list",
    "tuple",
    "first",
    "rest",
    "last",
    "initial",
    "append",
    "push",
    "prepend",
    "concat",
    "reverse",
    "uniq",
    "without",
    "has",
    "compact",
    "slice",
    "until",
    "untilStep",
    "sortAlpha",
    "join",
    "toStrings",
];

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    match name {
        "list" | "tuple" => Ok(Value::Array(vals)),
        "first" | "last" | "rest" | "initial" => {
            let [l] = take(&vals)?;
            let l = list_arg(l, &format!("find {name}"))?;
            if l.is_empty() {
                return Ok(Value::Null);
            }
            Ok(match name {
                "first" => l[0].clone(),
                "last" => l[l.len() - 1].clone(),
                "rest" => Value::Array(l[1..].to_vec()),
                _ => Value::Array(l[..l.len() - 1].to_vec()),
            })
        }
        "append" | "push" | "prepend" => {
            let [l, v] = take(&vals)?;
            let l = list_arg(l, name)?;
            too_many(l.len() + 1)?;
            let mut out = Vec::with_capacity(l.len() + 1);
            if name == "prepend" {
                out.push(v.clone());
                out.extend_from_slice(l);
            } else {
                out.extend_from_slice(l);
                out.push(v.clone());
            }
            Ok(Value::Array(out))
        }
        "concat" => {
            let mut out = Vec::new();
            for v in &vals {
                let l = list_arg(v, "concat")?;
                too_many(out.len() + l.len())?;
                out.extend_from_slice(l);
            }
            Ok(Value::Array(out))
        }
        "reverse" => {
            let [l] = take(&vals)?;
            let mut out = list_arg(l, "find reverse")?.to_vec();
            out.reverse();
            Ok(Value::Array(out))
        }
        "uniq" => {
            let [l] = take(&vals)?;
            let mut out: Vec<Value> = Vec::new();
            for v in list_arg(l, "find uniq")? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "without" => {
            want_at_least(&vals, 1)?;
            let (l, omit) = vals.split_at(1);
            let l = list_arg(&l[0], "find without")?;
            Ok(Value::Array(
                l.iter().filter(|v| !omit.contains(v)).cloned().collect(),
            ))
        }
        "has" => {
            let [needle, hay] = take(&vals)?;
            match hay {
                Value::Null => Ok(Value::Bool(false)),
                other => Ok(Value::Bool(list_arg(other, "find has")?.contains(needle))),
            }
        }
        "compact" => {
            let [l] = take(&vals)?;
            Ok(Value::Array(
                list_arg(l, "compact")?
                    .iter()
                    .filter(|v| truthy(v))
                    .cloned()
                    .collect(),
            ))
        }
        "slice" => go_slice(&vals),
        "until" => {
            let [n] = take(&vals)?;
            let n = int_arg(n)?;
            until_step(0, n, if n < 0 { -1 } else { 1 })
        }
        "untilStep" => {
            let [a, b, step] = take(&vals)?;
            until_step(int_arg(a)?, int_arg(b)?, int_arg(step)?)
        }
        "sortAlpha" => {
            let [l] = take(&vals)?;
            let mut out = str_list(l);
            out.sort();
            Ok(string_list(out))
        }
        "toStrings" => {
            let [l] = take(&vals)?;
            Ok(string_list(str_list(l)))
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
            Ok(Value::String(out))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

/// Sprig's `untilStep`: from `start` towards `stop` (excluded) by `step`;
/// empty when the step goes the wrong way or is 0.
fn until_step(start: i64, stop: i64, step: i64) -> FnResult {
    let count = if (stop > start && step > 0) || (stop < start && step < 0) {
        (stop.abs_diff(start).div_ceil(step.unsigned_abs())) as usize
    } else {
        0
    };
    if count > MAX_PARTS {
        return Err(format!("result has more than {MAX_PARTS} elements"));
    }
    Ok(Value::Array(
        (0..count as i64)
            .map(|i| Value::from(start + i * step))
            .collect(),
    ))
}
