//! Task-file values: a `--values` YAML file (scalars, lists and maps, as in
//! ACR) with flat `--set KEY=VALUE` strings on top.
//!
//! As in ACR, `--set` is flat: `--set a.b=c` sets the value named `a.b`
//! (reached with `{{index .Values "a.b"}}`), and a `--set` value replaces
//! the file's value of that name whole.

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::taskfile::yaml::{self, Kind, Node};
use super::yaml11::resolve_plain;
use crate::domain::model::Values;
use crate::{Error, Result};

/// Deepest nesting of lists and maps a values file may have.
const MAX_DEPTH: usize = 32;
/// Largest values file, in bytes.
pub const MAX_VALUES_BYTES: usize = 1024 * 1024;

/// Parses the text of a values file: empty, or a mapping of names to
/// values. Unquoted scalars mean what they mean to ACR's YAML library
/// (YAML 1.1: `yes`/`no`/`on`/`off` are booleans, `017` is octal; see
/// [`resolve_plain`]); quoted ones are text. Anchors and aliases are
/// refused (they can blow a small file up).
pub fn parse_values_yaml(text: &str) -> Result<Values> {
    if text.len() > MAX_VALUES_BYTES {
        return Err(Error::invalid(format!(
            "values file is larger than {} KiB",
            MAX_VALUES_BYTES / 1024
        )));
    }
    // aliases are refused before loading: the loader copies what they name,
    // and nested aliases would grow a small file without bound
    let mut aliases = AliasFinder(false);
    if Parser::new_from_str(text).load(&mut aliases, true).is_ok() && aliases.0 {
        return Err(Error::invalid(
            "values file uses a YAML alias (*name), which is not supported",
        ));
    }
    let doc = yaml::parse(text).map_err(|e| {
        Error::invalid(format!(
            "values file is not valid YAML: {} (line {})",
            e.message, e.line
        ))
    })?;
    let Some(doc) = doc.filter(|d| !d.is_null()) else {
        return Ok(Values::new());
    };
    match doc.kind {
        Kind::Map(pairs) => {
            let mut out = Values::new();
            for (k, v) in pairs {
                let key = key_text(&k)?;
                let value = to_json(v, &key, 1)?;
                out.insert(key, value);
            }
            Ok(out)
        }
        _ => Err(Error::invalid(
            "values file must be a mapping of names to values",
        )),
    }
}

struct AliasFinder(bool);

impl MarkedEventReceiver for AliasFinder {
    fn on_event(&mut self, ev: Event, _mark: Marker) {
        if matches!(ev, Event::Alias(_)) {
            self.0 = true;
        }
    }
}

/// Applies `--set KEY=VALUE` arguments (later wins; `a=b=c` is key `a`,
/// value `b=c`). Values stay text, as in ACR (which writes them back as
/// quoted YAML strings).
pub fn apply_sets(values: &mut Values, sets: &[String]) -> Result<()> {
    for s in sets {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                values.insert(k.trim().to_string(), Value::String(v.to_string()));
            }
            _ => {
                return Err(Error::invalid(format!(
                    "--set '{s}' must be KEY=VALUE with a non-empty key"
                )))
            }
        }
    }
    Ok(())
}

/// How a value reads in listings: strings as-is, others as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A key as written (yaml.v2 gives a `map[string]interface{}` key its
/// text, whatever it would resolve to).
fn key_text(k: &Node) -> Result<String> {
    k.scalar()
        .map(str::to_string)
        .ok_or_else(|| Error::invalid("values file: keys must be strings, numbers or booleans"))
}

fn to_json(v: Node, path: &str, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(format!(
            "values file: '{path}' is nested more than {MAX_DEPTH} deep"
        )));
    }
    Ok(match v.kind {
        Kind::Scalar { value, plain: true } => resolve_plain(&value),
        Kind::Scalar {
            value,
            plain: false,
        } => Value::String(value),
        Kind::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}[{i}]"), depth + 1))
                .collect::<Result<Vec<_>>>()?,
        ),
        Kind::Map(pairs) => {
            let mut out = Map::new();
            for (k, item) in pairs {
                let key = key_text(&k)?;
                let value = to_json(item, &format!("{path}.{key}"), depth + 1)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A values file's names and values as one JSON object.
    fn parsed(text: &str) -> Value {
        Value::Object(parse_values_yaml(text).unwrap().into_iter().collect())
    }

    #[test]
    fn files_hold_scalars_lists_and_maps() {
        assert_eq!(
            parsed("name: web\nport: 8080\nratio: 1.5\non: true\nnone:\napp:\n  tags: [v1, latest]\n  db: {host: h, port: 5432}\n"),
            json!({"name": "web", "port": 8080, "ratio": 1.5, "on": true, "none": null,
                   "app": {"tags": ["v1", "latest"], "db": {"host": "h", "port": 5432}}})
        );
        assert!(parse_values_yaml("").unwrap().is_empty());
        assert!(parse_values_yaml("~\n").unwrap().is_empty());
        assert!(parse_values_yaml("# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn unquoted_scalars_read_as_acr_reads_them_quoted_ones_stay_text() {
        assert_eq!(
            parsed("push: no\ny: yes\no: off\nmode: 0755\nn: 1_000\nq: 'no'\nd: \"017\"\nb: |\n  yes\nlist: [on, 'on', 0x10]\n"),
            json!({"push": false, "y": true, "o": false, "mode": 493, "n": 1000,
                   "q": "no", "d": "017", "b": "yes\n", "list": [true, "on", 16]})
        );
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let err = |text: &str| parse_values_yaml(text).unwrap_err().to_string();
        assert!(err("[1, 2]").contains("must be a mapping"));
        assert!(err("a: 1\n---\nb: 2\n").contains("more than one"));
        assert!(err("a: [1\n").contains("not valid YAML"));
        assert!(err("a: &x [1]\nb: *x\n").contains("alias"));
        assert!(err("? [1]\n: x\n").contains("keys must be"));
        let deep = format!("a: {}{}\n", "[".repeat(40), "]".repeat(40));
        assert!(err(&deep).contains("nested more than"));
        let big = format!("a: \"{}\"\n", "x".repeat(MAX_VALUES_BYTES));
        assert!(err(&big).contains("larger than"));
    }

    #[test]
    fn sets_are_flat_strings_that_replace_whole_values() {
        let mut v = parse_values_yaml("app: {name: web}\nn: 1\n").unwrap();
        apply_sets(&mut v, &["app=api".into(), "a.b=c=d".into(), "n=2".into()]).unwrap();
        assert_eq!(v["app"], json!("api"));
        assert_eq!(v["a.b"], json!("c=d"));
        assert_eq!(v["n"], json!("2"));
        assert!(apply_sets(&mut v, &["novalue".into()]).is_err());
        assert!(apply_sets(&mut v, &[" =v".into()]).is_err());
    }
}
