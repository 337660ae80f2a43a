//! `-o json|table|tsv|yaml` and `--query` (JMESPath), as `az` has them.
//!
//! Every command that prints data hands it to [`Printer::emit`] as the
//! same JSON document `-o json` prints. The query runs on that document;
//! then `json` and `yaml` print the result, `tsv` prints its values only
//! (one line per array item, tab-separated, nested objects and arrays
//! left out, as `az -o tsv`), and `table` prints the command's own table,
//! or, with a query, a table made from the result's keys.

use crate::Format;
use anyhow::{anyhow, Result};
use crtask_core::domain::text::{inert, is_active};
use serde_json::Value;

/// How a command prints what it found.
#[derive(Clone)]
pub struct Printer {
    pub format: Format,
    query: Option<(String, jmespath::Expression<'static>)>,
}

impl Printer {
    /// A printer for `format`; `query` is checked here, before any work.
    pub fn new(format: Format, query: Option<&str>) -> Result<Printer> {
        let query = match query.filter(|q| !q.trim().is_empty()) {
            Some(q) => Some((
                q.to_string(),
                jmespath::compile(q)
                    .map_err(|e| anyhow!("invalid --query '{}': {}", inert(q), one_line(&e)))?,
            )),
            None => None,
        };
        Ok(Printer { format, query })
    }

    /// Whether the command's own human-readable text is printed: `-o table`
    /// without `--query`.
    pub fn human(&self) -> bool {
        self.format == Format::Table && self.query.is_none()
    }

    /// Prints `data` in the chosen format; `table` prints the command's own
    /// table (called only when [`Printer::human`]).
    pub fn emit(&self, data: &impl serde::Serialize, table: impl FnOnce()) -> Result<()> {
        if self.human() {
            table();
            return Ok(());
        }
        print!("{}", self.render(&serde_json::to_value(data)?)?);
        Ok(())
    }

    /// The text [`Printer::emit`] prints for `data` when not [`Printer::human`].
    pub fn render(&self, data: &Value) -> Result<String> {
        let v = match &self.query {
            Some((q, expr)) => {
                let found = expr
                    .search(data)
                    .map_err(|e| anyhow!("--query '{}': {}", inert(q), one_line(&e)))?;
                serde_json::to_value(&*found)?
            }
            None => data.clone(),
        };
        Ok(match self.format {
            Format::Json => format!("{}\n", serde_json::to_string_pretty(&v)?),
            Format::Yaml => yaml(&v),
            Format::Tsv => tsv(&v),
            Format::Table => generic_table(&v),
        })
    }
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A scalar as one tsv or table cell: strings bare, null empty.
fn cell(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(inert(s).into_owned()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// One tsv line: an object's scalar values in key order (serde_json keeps
/// keys sorted by name; a `--query` multiselect list `[].[a, b]` fixes
/// another order, as az users do), or a scalar.
fn tsv_line(v: &Value) -> String {
    match v {
        Value::Object(m) => m.values().filter_map(cell).collect::<Vec<_>>().join("\t"),
        Value::Array(items) => items.iter().filter_map(cell).collect::<Vec<_>>().join("\t"),
        other => cell(other).unwrap_or_default(),
    }
}

/// `az -o tsv`: values only; one line per item of a top-level array.
pub fn tsv(v: &Value) -> String {
    let lines: Vec<String> = match v {
        Value::Array(items) => items.iter().map(tsv_line).collect(),
        other => vec![tsv_line(other)],
    };
    lines.into_iter().map(|l| l + "\n").collect()
}

/// `az -o table` of a query's result: the keys of the (first) object as
/// the header, its scalar values as cells; scalars under `Result`.
pub fn generic_table(v: &Value) -> String {
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let keys: Vec<String> = match items.first() {
        Some(Value::Object(m)) => m
            .iter()
            .filter(|(_, v)| cell(v).is_some())
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    if keys.is_empty() {
        let rows: Vec<Vec<String>> = items.iter().map(|i| vec![tsv_line(i)]).collect();
        return super::render_table(&["Result"], &rows);
    }
    let header: Vec<String> = keys.iter().map(|k| heading(k)).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            keys.iter()
                .map(|k| cell(&i[k.as_str()]).unwrap_or_default())
                .collect()
        })
        .collect();
    super::render_table(&header, &rows)
}

/// `runId` -> `RunId`, as az capitalises column names.
fn heading(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// YAML for a JSON document. Hand-written rather than yaml-rust2's
/// emitter: that one writes a string holding ESC (0x1b) unquoted, and the
/// escape would reach the terminal. Strings are double-quoted unless they
/// are plainly safe; every control, line-separator and bidi character is
/// written as an escape.
pub fn yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Array(a) if !a.is_empty() => yaml_seq(a, 0, &mut out),
        Value::Object(m) if !m.is_empty() => yaml_map(m, 0, &mut out),
        other => {
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
    out
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_str(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn is_empty_or_scalar(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => true,
    }
}

fn yaml_map(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in m {
        out.push_str(&format!("{pad}{}:", yaml_str(k)));
        if is_empty_or_scalar(v) {
            out.push_str(&format!(" {}\n", yaml_scalar(v)));
        } else {
            out.push('\n');
            match v {
                Value::Array(a) => yaml_seq(a, indent + 2, out),
                Value::Object(m) => yaml_map(m, indent + 2, out),
                _ => {}
            }
        }
    }
}

fn yaml_seq(a: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for v in a {
        if is_empty_or_scalar(v) {
            out.push_str(&format!("{pad}- {}\n", yaml_scalar(v)));
            continue;
        }
        // The item's first line follows the dash; the rest are indented under it.
        let mut item = String::new();
        match v {
            Value::Array(a) => yaml_seq(a, 0, &mut item),
            Value::Object(m) => yaml_map(m, 0, &mut item),
            _ => {}
        }
        for (i, line) in item.lines().enumerate() {
            let lead = if i == 0 { "- " } else { "  " };
            out.push_str(&format!("{pad}{lead}{line}\n"));
        }
    }
}

fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '+' | '@'))
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '/')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if is_active(c) => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn runs() -> Value {
        json!([
            {"runId": "ca2", "status": "Failed", "error": "step\tfailed\u{1b}[2J", "steps": [{"id": "a"}], "task": null},
            {"runId": "ca1", "status": "Succeeded", "error": null, "steps": [], "task": "web"}
        ])
    }

    #[test]
    fn tsv_prints_values_only_one_line_per_item() {
        // Keys in name order (error, runId, status, steps, task); nested
        // values left out; control characters escaped.
        let p = Printer::new(Format::Tsv, None).unwrap();
        let text = p.render(&runs()).unwrap();
        assert_eq!(
            text,
            "step\\tfailed\\u{1b}[2J\tca2\tFailed\t\n\tca1\tSucceeded\tweb\n"
        );
        // A multiselect list fixes the column order, as with az.
        let p = Printer::new(Format::Tsv, Some("[].[runId, status, task]")).unwrap();
        assert_eq!(
            p.render(&runs()).unwrap(),
            "ca2\tFailed\t\nca1\tSucceeded\tweb\n"
        );
        let p = Printer::new(Format::Tsv, Some("[].runId")).unwrap();
        assert_eq!(p.render(&runs()).unwrap(), "ca2\nca1\n");
        let p = Printer::new(Format::Tsv, Some("[0].status")).unwrap();
        assert_eq!(p.render(&runs()).unwrap(), "Failed\n");
    }

    #[test]
    fn query_reshapes_and_table_uses_its_keys() {
        let p = Printer::new(Format::Table, Some("[].{id: runId, state: status}")).unwrap();
        assert!(!p.human());
        assert_eq!(
            p.render(&runs()).unwrap(),
            "Id   State\n---  ---------\nca2  Failed\nca1  Succeeded\n"
        );
        let p = Printer::new(Format::Json, Some("[?status=='Succeeded'].runId")).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&p.render(&runs()).unwrap()).unwrap(),
            json!(["ca1"])
        );
        let p = Printer::new(Format::Table, Some("length(@)")).unwrap();
        assert_eq!(p.render(&runs()).unwrap(), "Result\n------\n2\n");
        assert!(Printer::new(Format::Table, None).unwrap().human());
    }

    #[test]
    fn bad_queries_are_refused_up_front_and_at_search() {
        let e = Printer::new(Format::Json, Some("[?")).err().unwrap();
        assert!(e.to_string().starts_with("invalid --query '[?'"), "{e}");
        let p = Printer::new(Format::Json, Some("abs(runId)")).unwrap();
        let e = p.render(&json!({"runId": "x"})).unwrap_err();
        assert!(e.to_string().contains("--query 'abs(runId)'"), "{e}");
    }

    #[test]
    fn yaml_is_valid_and_keeps_escapes_escaped() {
        let p = Printer::new(Format::Yaml, None).unwrap();
        let text = p.render(&runs()).unwrap();
        assert!(!text.contains('\u{1b}'), "{text}");
        let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
        let back = &docs[0];
        assert_eq!(back[0]["runId"].as_str(), Some("ca2"));
        assert_eq!(back[0]["error"].as_str(), Some("step\tfailed\u{1b}[2J"));
        assert_eq!(back[0]["steps"][0]["id"].as_str(), Some("a"));
        assert!(back[0]["task"].is_null());
        assert_eq!(back[1]["task"].as_str(), Some("web"));
        assert!(back[1]["steps"].as_vec().unwrap().is_empty());
        for tricky in ["true", "007", "a: b", "- x", "", "#c", "\u{202e}x", "1.5"] {
            let text = yaml(&json!({ "k": tricky }));
            let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
            assert_eq!(docs[0]["k"].as_str(), Some(tricky), "{text}");
        }
        assert_eq!(yaml(&json!([])), "[]\n");
        assert_eq!(
            yaml(&json!([[1, 2], {"a": [true]}])),
            "- - 1\n  - 2\n- a:\n    - true\n"
        );
    }
}
