//! How values behave in templates: truthiness, the printed form, type names.

use serde_json::{Number, Value};

use crate::printf::go_float_g;

/// Go's truthiness: false, 0, nil and empty strings, lists and maps are false.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Values Go templates hold that JSON has no type for, kept as a map with
/// one reserved key (which YAML and JSON input cannot spell by accident):
/// a `time.Time` (`now`, `toDate`) as its RFC 3339 text, a semantic version
/// (`semver`) with its fields `Major`, `Minor`, `Patch`, `Prerelease`,
/// `Metadata`, `Original` next to its printed form.
pub(crate) const TIME_TAG: &str = "\u{0}time";
pub(crate) const SEMVER_TAG: &str = "\u{0}semver";

pub(crate) enum Special<'a> {
    Time(&'a str),
    Semver(&'a str),
}

pub(crate) fn special(v: &Value) -> Option<Special<'_>> {
    let Value::Object(m) = v else {
        return None;
    };
    match (m.get(TIME_TAG), m.get(SEMVER_TAG)) {
        (Some(Value::String(t)), _) if m.len() == 1 => Some(Special::Time(t)),
        (_, Some(Value::String(s))) => Some(Special::Semver(s)),
        _ => None,
    }
}

pub(crate) fn is_special(v: &Value) -> bool {
    special(v).is_some()
}

/// The printed form of a value: strings as-is, nil empty, numbers like Go.
pub(crate) fn display(v: &Value) -> String {
    match special(v) {
        Some(Special::Time(t)) => return crate::funcs::dates::time_display(t),
        Some(Special::Semver(s)) => return s.to_string(),
        None => {}
    }
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            go_value(other, &mut out);
            out
        }
    }
}

/// Go's `%v` of a value (nil as `<nil>`, lists `[a b]`, maps `map[k:v]`).
pub(crate) fn go_value(v: &Value, out: &mut String) {
    if is_special(v) {
        out.push_str(&display(v));
        return;
    }
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&fmt_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_value(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(item) = m.get(k) {
                    go_value(item, out);
                }
            }
            out.push(']');
        }
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match special(v) {
        Some(Special::Time(_)) => return "time",
        Some(Special::Semver(_)) => return "semver",
        None => {}
    }
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn fmt_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_float_g(n.as_f64().unwrap_or(0.0), None, false)
    }
}
