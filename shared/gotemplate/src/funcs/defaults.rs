//! Sprig's defaults, flow control, JSON and reflection functions (`default
//! empty coalesce ternary fail deepEqual toJson toPrettyJson typeOf typeIs
//! typeIsLike kindOf kindIs`).

use serde_json::Value;

use super::args::{take, want, FnResult};
use crate::value::{display, special, truthy, Special};

pub(crate) const NAMES: &[&str] = &[
    "default",
    "empty",
    "coalesce",
    "ternary",
    "fail",
    "deepEqual",
    "toJson",
    "toPrettyJson",
    "typeOf",
    "typeIs",
    "typeIsLike",
    "kindOf",
    "kindIs",
];

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    let s = |v: String| Ok(Value::String(v));
    match name {
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
        "fail" => {
            let [msg] = take(&vals)?;
            Err(display(msg))
        }
        "deepEqual" => {
            let [a, b] = take(&vals)?;
            Ok(Value::Bool(a == b))
        }
        "toJson" | "toPrettyJson" => {
            let [v] = take(&vals)?;
            let mut out = String::new();
            go_json(v, name == "toPrettyJson", 0, &mut out);
            s(out)
        }
        "typeOf" => {
            let [v] = take(&vals)?;
            s(go_type(v).to_string())
        }
        "kindOf" => {
            let [v] = take(&vals)?;
            s(go_kind(v).to_string())
        }
        "typeIs" | "typeIsLike" | "kindIs" => {
            let [target, v] = take(&vals)?;
            let target = display(target);
            let r = match name {
                "typeIs" => go_type(v) == target,
                "typeIsLike" => go_type(v) == target || format!("*{}", go_type(v)) == target,
                _ => go_kind(v) == target,
            };
            Ok(Value::Bool(r))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

/// The Go type a value has in ACR's renderer (`%T`).
pub(crate) fn go_type(v: &Value) -> &'static str {
    match special(v) {
        Some(Special::Time(_)) => return "time.Time",
        Some(Special::Semver(_)) => return "*semver.Version",
        None => {}
    }
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The Go kind (`reflect.Kind`) of a value.
pub(crate) fn go_kind(v: &Value) -> &'static str {
    match special(v) {
        Some(Special::Time(_)) => return "struct",
        Some(Special::Semver(_)) => return "ptr",
        None => {}
    }
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// A value as Go's `json.Marshal` writes it (see [`go_json`]); what
/// `toJson` renders.
pub fn to_go_json(v: &Value) -> String {
    let mut out = String::new();
    go_json(v, false, 0, &mut out);
    out
}

/// Go's `encoding/json` output: keys sorted, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped, floats as Go spells them, times as RFC 3339 strings.
/// `pretty` is `MarshalIndent` with two spaces. Hand-written because
/// serde_json neither HTML-escapes nor formats floats as Go does.
pub(crate) fn go_json(v: &Value, pretty: bool, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        if pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
    };
    match special(v) {
        Some(Special::Time(t)) => return json_string(t, out),
        Some(Special::Semver(_)) => return json_string(&display(v), out),
        None => {}
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) => out.push_str(&go_json_float(f)),
            None => out.push_str(&n.to_string()),
        },
        Value::String(s) => json_string(s, out),
        Value::Array(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                go_json(item, pretty, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                json_string(k, out);
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                if let Some(item) = m.get(k) {
                    go_json(item, pretty, depth + 1, out);
                }
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's float64 JSON form: plain decimal in [1e-6, 1e21), else exponent
/// with at least two digits removed (`1e-07`).
fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json(v: Value, pretty: bool) -> String {
        let mut out = String::new();
        go_json(&v, pretty, 0, &mut out);
        out
    }

    #[test]
    fn json_is_spelled_as_go_spells_it() {
        assert_eq!(
            json(json!({"b": [1, 2.5, 1e21], "a": "<x&y>"}), false),
            r#"{"a":"\u003cx\u0026y\u003e","b":[1,2.5,1e+21]}"#
        );
        assert_eq!(
            json(json!({"a": [1], "e": {}}), true),
            "{\n  \"a\": [\n    1\n  ],\n  \"e\": {}\n}"
        );
        assert_eq!(go_json_float(1.0), "1");
        assert_eq!(go_json_float(0.0000001), "1e-07");
    }
}
