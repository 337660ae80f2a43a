//! `v1.1.0` aliases: `$Registry`, `$ID`, ..., custom `alias.values`, `$$`
//! and a custom directive character.
//!
//! Matching follows ACR's executor (acb): after the directive, an alias name
//! is the longest run of ASCII letters and digits; it ends at the first other
//! character. So `$IDx` is the (unknown) name `IDx`, never `$ID` followed by
//! `x`, while `$ID_x` and `$ID-x` expand `$ID`. Names are case-sensitive.
//! An unknown name is left exactly as written; the directive written twice
//! (`$$`) is one literal directive character. Where acb loses characters
//! after an unknown name or drops an alias at the very end of the text, we
//! keep them (a better-behaved superset).

use super::yaml::{Kind, Node};
use std::collections::BTreeMap;

/// The built-in aliases and the run variables they stand for.
pub const BUILTIN_ALIASES: [(&str, &str); 9] = [
    ("ID", "{{.Run.ID}}"),
    ("SharedVolume", "{{.Run.SharedVolume}}"),
    ("Registry", "{{.Run.Registry}}"),
    ("RegistryName", "{{.Run.RegistryName}}"),
    ("Date", "{{.Run.Date}}"),
    ("OS", "{{.Run.OS}}"),
    ("Architecture", "{{.Run.Architecture}}"),
    ("Commit", "{{.Run.Commit}}"),
    ("Branch", "{{.Run.Branch}}"),
];

/// The default directive character.
pub const DEFAULT_DIRECTIVE: char = '$';

/// The `alias:` section of a task file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasDef {
    /// The character that introduces an alias (default `$`).
    pub directive: char,
    /// Custom aliases (`alias.values`); they win over the built-ins.
    pub values: BTreeMap<String, String>,
}

impl Default for AliasDef {
    fn default() -> Self {
        AliasDef {
            directive: DEFAULT_DIRECTIVE,
            values: BTreeMap::new(),
        }
    }
}

impl AliasDef {
    /// The value of alias `name`: a custom one first, then a built-in.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str).or_else(|| {
            BUILTIN_ALIASES
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
        })
    }

    /// Expands every alias in `text` (see the module documentation).
    pub fn expand(&self, text: &str) -> String {
        let d = self.directive;
        let mut out = String::with_capacity(text.len());
        // Some(name) while reading a name after the directive.
        let mut name: Option<String> = None;
        for c in text.chars() {
            match name.as_mut() {
                None => {
                    if c == d {
                        name = Some(String::new());
                    } else {
                        out.push(c);
                    }
                }
                Some(n) => {
                    if c.is_ascii_alphanumeric() {
                        n.push(c);
                        continue;
                    }
                    if n.is_empty() && c == d {
                        // `$$`: one literal directive.
                        out.push(d);
                        name = None;
                        continue;
                    }
                    self.flush(n, &mut out);
                    if c == d {
                        // back-to-back aliases: `$a$b`
                        n.clear();
                    } else {
                        out.push(c);
                        name = None;
                    }
                }
            }
        }
        if let Some(n) = name {
            self.flush(&n, &mut out);
        }
        out
    }

    fn flush(&self, name: &str, out: &mut String) {
        match (name.is_empty(), self.lookup(name)) {
            (false, Some(v)) => out.push_str(v),
            _ => {
                out.push(self.directive);
                out.push_str(name);
            }
        }
    }
}

/// True for a valid custom alias name (ASCII letters and digits).
pub fn valid_alias_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Reads an `alias:` mapping node. Problems are returned as
/// `(line in the parsed text, message)`.
pub(crate) fn alias_from_node(node: &Node) -> (AliasDef, Vec<(usize, String)>) {
    let mut def = AliasDef::default();
    let mut errs = Vec::new();
    if node.is_null() {
        return (def, errs);
    }
    let Kind::Map(pairs) = &node.kind else {
        errs.push((
            node.line,
            format!(
                "alias must be a mapping with 'values' (and optionally 'directive'), not {}",
                node.type_name()
            ),
        ));
        return (def, errs);
    };
    for (k, v) in pairs {
        match k.scalar().unwrap_or("") {
            "values" => match &v.kind {
                _ if v.is_null() => {}
                Kind::Map(vals) => {
                    for (name, value) in vals {
                        let n = name.scalar().unwrap_or("");
                        if !valid_alias_name(n) {
                            errs.push((
                                name.line,
                                format!("invalid alias name '{n}': alias names may only contain letters and digits"),
                            ));
                            continue;
                        }
                        let val = if value.is_null() {
                            String::new()
                        } else if let Some(s) = value.scalar() {
                            s.to_string()
                        } else {
                            errs.push((
                                value.line,
                                format!("alias '{n}' must have a text value, not {}", value.type_name()),
                            ));
                            continue;
                        };
                        if def.values.insert(n.to_string(), val).is_some() {
                            errs.push((name.line, format!("alias '{n}' is defined twice")));
                        }
                    }
                }
                _ => errs.push((
                    v.line,
                    format!("alias.values must be a mapping of names to values, not {}", v.type_name()),
                )),
            },
            "directive" => {
                let s = v.scalar().unwrap_or("");
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_alphanumeric() && !c.is_whitespace() => def.directive = c,
                    (Some(c), None) => errs.push((
                        v.line,
                        format!("invalid alias directive '{c}': use a single character that is not a letter, digit or space"),
                    )),
                    _ => errs.push((
                        v.line,
                        format!("invalid alias directive '{s}': the directive must be exactly one character"),
                    )),
                }
            }
            "src" => errs.push((
                k.line,
                "alias.src (external alias files) is not supported: define the aliases under alias.values".to_string(),
            )),
            other => errs.push((
                k.line,
                format!("unknown key 'alias.{other}': expected 'values' or 'directive'"),
            )),
        }
    }
    (def, errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(values: &[(&str, &str)], directive: char) -> AliasDef {
        AliasDef {
            directive,
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn expansion_table() {
        let custom = def(&[("repo", "my-website"), ("ID", "custom-id")], '$');
        let plain = AliasDef::default();
        let hash = def(&[("repo", "web")], '&');
        let cases: &[(&AliasDef, &str, &str)] = &[
            (&plain, "$Registry/$repo:$ID", "{{.Run.Registry}}/$repo:{{.Run.ID}}"),
            (&custom, "$Registry/$repo:$ID", "{{.Run.Registry}}/my-website:custom-id"),
            (&plain, "cost $$5", "cost $5"),
            (&plain, "$$ID", "$ID"),
            (&plain, "$$$ID", "${{.Run.ID}}"),
            (&plain, "$IDx", "$IDx"),
            (&plain, "$ID_x $ID-x $ID.x", "{{.Run.ID}}_x {{.Run.ID}}-x {{.Run.ID}}.x"),
            (&plain, "$ID$Date", "{{.Run.ID}}{{.Run.Date}}"),
            (&plain, "$id", "$id"),
            (&plain, "echo $(date) \"$MY_SECRET\"", "echo $(date) \"$MY_SECRET\""),
            (&plain, "trailing $", "trailing $"),
            (&plain, "end $ID", "end {{.Run.ID}}"),
            (&plain, "$RegistryName $SharedVolume $OS $Architecture $Commit $Branch",
             "{{.Run.RegistryName}} {{.Run.SharedVolume}} {{.Run.OS}} {{.Run.Architecture}} {{.Run.Commit}} {{.Run.Branch}}"),
            (&hash, "&Registry/&repo:$ID &&x", "{{.Run.Registry}}/web:$ID &x"),
            (&plain, "ünïcode $ID ✓", "ünïcode {{.Run.ID}} ✓"),
        ];
        for (d, input, want) in cases {
            assert_eq!(d.expand(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn alias_node_errors() {
        let node = super::super::yaml::parse(
            "values:\n  good1: x\n  bad-name: y\n  nested: [1]\ndirective: ab\nsrc: [x]\nother: 1\n",
        )
        .unwrap()
        .unwrap();
        let (d, errs) = alias_from_node(&node);
        assert_eq!(d.values.get("good1").map(String::as_str), Some("x"));
        let msgs: Vec<String> = errs.iter().map(|(l, m)| format!("{l}:{m}")).collect();
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("3:invalid alias name 'bad-name'")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("4:alias 'nested' must have a text value")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("5:invalid alias directive 'ab'")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.starts_with("6:alias.src")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("7:unknown key 'alias.other'")),
            "{msgs:?}"
        );

        let node = super::super::yaml::parse("directive: a\n")
            .unwrap()
            .unwrap();
        let (_, errs) = alias_from_node(&node);
        assert!(errs[0].1.contains("not a letter"), "{errs:?}");
        let node = super::super::yaml::parse("directive: '%'\n")
            .unwrap()
            .unwrap();
        let (d, errs) = alias_from_node(&node);
        assert!(errs.is_empty());
        assert_eq!(d.directive, '%');
    }
}
