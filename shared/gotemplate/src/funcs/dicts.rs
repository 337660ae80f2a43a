//! Sprig's dictionary functions (`dict set unset hasKey pluck keys pick
//! omit merge mergeOverwrite values deepCopy`). `set`, `unset`, `merge` and
//! `mergeOverwrite` change their first argument in Sprig; the executor
//! stores the result back when that argument is a variable.

use serde_json::{Map, Value};

use super::args::{take, want_at_least, FnResult, Res};
use crate::value::{display, is_special, type_name};

pub(crate) const NAMES: &[&str] = &[
    "dict",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "keys",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "values",
    "deepCopy",
];

/// The functions that change their first argument in Sprig.
pub(crate) const MUTATING: &[&str] = &["set", "unset", "merge", "mergeOverwrite"];

fn dict_arg<'a>(v: &'a Value, name: &str) -> Res<&'a Map<String, Value>> {
    match v {
        Value::Object(m) if !is_special(v) => Ok(m),
        other => Err(format!(
            "{name} wants a dict as its first argument, got {}",
            type_name(other)
        )),
    }
}

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    match name {
        "dict" => {
            let mut out = Map::new();
            let mut it = vals.into_iter();
            while let Some(k) = it.next() {
                let v = it.next().unwrap_or_else(|| Value::String(String::new()));
                out.insert(display(&k), v);
            }
            Ok(Value::Object(out))
        }
        "set" => {
            let [d, k, v] = take(&vals)?;
            let mut out = dict_arg(d, name)?.clone();
            out.insert(display(k), v.clone());
            Ok(Value::Object(out))
        }
        "unset" => {
            let [d, k] = take(&vals)?;
            let mut out = dict_arg(d, name)?.clone();
            out.remove(&display(k));
            Ok(Value::Object(out))
        }
        "hasKey" => {
            let [d, k] = take(&vals)?;
            Ok(Value::Bool(dict_arg(d, name)?.contains_key(&display(k))))
        }
        "pluck" => {
            want_at_least(&vals, 1)?;
            let key = display(&vals[0]);
            let mut out = Vec::new();
            for d in &vals[1..] {
                if let Some(v) = dict_arg(d, name)?.get(&key) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "keys" => {
            let mut out = Vec::new();
            for d in &vals {
                out.extend(dict_arg(d, name)?.keys().cloned().map(Value::String));
            }
            Ok(Value::Array(out))
        }
        "values" => {
            let [d] = take(&vals)?;
            Ok(Value::Array(dict_arg(d, name)?.values().cloned().collect()))
        }
        "pick" | "omit" => {
            want_at_least(&vals, 1)?;
            let d = dict_arg(&vals[0], name)?;
            let named: Vec<String> = vals[1..].iter().map(display).collect();
            let keep = |k: &String| named.contains(k) == (name == "pick");
            Ok(Value::Object(
                d.iter()
                    .filter(|(k, _)| keep(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        }
        "merge" | "mergeOverwrite" => {
            want_at_least(&vals, 1)?;
            let mut out = dict_arg(&vals[0], name)?.clone();
            for src in &vals[1..] {
                merge_into(&mut out, dict_arg(src, name)?, name == "mergeOverwrite");
            }
            Ok(Value::Object(out))
        }
        "deepCopy" => {
            let [v] = take(&vals)?;
            Ok(v.clone())
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

/// mergo's `Merge` (`overwrite` false: keys already in `dst` win, unless
/// empty) and `MergeWithOverwrite` (`src` wins); nested dicts are merged
/// key by key.
fn merge_into(dst: &mut Map<String, Value>, src: &Map<String, Value>, overwrite: bool) {
    for (k, v) in src {
        match (dst.get_mut(k), v) {
            (Some(Value::Object(d)), Value::Object(s)) if !is_special(v) => {
                merge_into(d, s, overwrite);
            }
            (Some(existing), _) => {
                if overwrite || !crate::value::truthy(existing) {
                    *existing = v.clone();
                }
            }
            (None, _) => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_keeps_destination_values_and_overwrite_replaces_them() {
        let dst = json!({"a": 1, "n": {"x": "d", "y": ""}});
        let src = json!({"a": 2, "b": 3, "n": {"x": "s", "y": "s", "z": "s"}});
        let merged = call("merge", vec![dst.clone(), src.clone()]).unwrap();
        assert_eq!(
            merged,
            json!({"a": 1, "b": 3, "n": {"x": "d", "y": "s", "z": "s"}})
        );
        let over = call("mergeOverwrite", vec![dst, src]).unwrap();
        assert_eq!(
            over,
            json!({"a": 2, "b": 3, "n": {"x": "s", "y": "s", "z": "s"}})
        );
    }
}
