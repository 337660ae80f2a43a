//! The text pipeline that runs before YAML parsing: comment lines out,
//! `v1.1.0` aliases expanded, templates rendered, with a [`LineMap`] that
//! takes every line of the result back to the line the user wrote.

use super::alias::{alias_from_node, AliasDef};
use super::{yaml, TaskFileError, TaskFileErrors};
use crate::template::RunVars;
use crtask_gotemplate::render;

/// Maps lines of the processed text (1-based) to lines of the user's file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineMap {
    /// `orig[i]` is the user's line for processed line `i + 1`.
    orig: Vec<usize>,
}

impl LineMap {
    /// The map of a text that was not changed (line `n` is line `n`).
    pub fn identity() -> Self {
        LineMap::default()
    }

    /// The user's line for `line` of the processed text. Lines past the end
    /// map past the user's last line by the same distance.
    pub fn original(&self, line: usize) -> usize {
        if self.orig.is_empty() {
            return line.max(1);
        }
        let idx = line.saturating_sub(1);
        match self.orig.get(idx) {
            Some(l) => *l,
            None => {
                let last = self.orig.len();
                let last_orig = self.orig.last().copied().unwrap_or(last);
                last_orig.saturating_add(idx + 1 - last)
            }
        }
    }
}

/// The result of [`preprocess_mapped`]: text ready for YAML and its line map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preprocessed {
    pub text: String,
    pub line_map: LineMap,
}

/// Runs the text pipeline (comment lines, aliases, templates) with the run's
/// variables and `--set`/`--values` values.
///
/// Errors name the line of the user's file.
pub fn preprocess(
    src: &str,
    vars: &RunVars,
    values: &crate::domain::model::Values,
) -> crate::Result<String> {
    preprocess_mapped(src, &template_data(vars, values))
        .map(|p| p.text)
        .map_err(crate::Error::from)
}

/// The data templates see: `.Run`, `.Build`, `.Values` from [`RunVars`] and an
/// empty `.Secrets` (so `{{.Secrets.x}}` renders empty unless the caller fills
/// it in).
pub fn template_data(vars: &RunVars, values: &crate::domain::model::Values) -> serde_json::Value {
    let mut data = vars.to_data(values);
    if let Some(obj) = data.as_object_mut() {
        obj.entry("Secrets")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    data
}

/// The text pipeline on ready template data, keeping the line map.
pub fn preprocess_mapped(
    src: &str,
    data: &serde_json::Value,
) -> Result<Preprocessed, TaskFileErrors> {
    // 0. a byte order mark, as YAML parsers (ACR's yaml.v2) skip it.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    // 1. comment lines out, keeping each remaining line's number.
    let lines: Vec<(usize, &str)> = src
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim_start().starts_with('#'))
        .collect();

    // 2. aliases for v1.1.0.
    let lines: Vec<(usize, String)> =
        if detect_version(&lines).is_some_and(|v| v.eq_ignore_ascii_case("v1.1.0")) {
            expand_aliases(&lines)?
        } else {
            lines.into_iter().map(|(n, l)| (n, l.to_string())).collect()
        };

    // 3. templates.
    render_lines(&lines, data)
}

/// The `version` as written at the top level, read from the raw text.
fn detect_version(lines: &[(usize, &str)]) -> Option<String> {
    lines.iter().find_map(|(_, l)| {
        let rest = l.strip_prefix("version")?;
        let rest = rest.trim_start().strip_prefix(':')?;
        let rest = match rest.find(" #") {
            Some(i) => &rest[..i],
            None => rest,
        };
        let v = rest.trim().trim_matches(|c| c == '"' || c == '\'');
        Some(v.to_string())
    })
}

/// Index range (into `lines`) of the top-level `alias:` block, if any.
fn alias_block(lines: &[(usize, &str)]) -> Option<std::ops::Range<usize>> {
    let start = lines.iter().position(|(_, l)| {
        l.strip_prefix("alias")
            .is_some_and(|r| r.trim_start().starts_with(':'))
    })?;
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, (_, l))| l.starts_with(|c: char| !c.is_whitespace()))
        .map(|(i, _)| i)
        .unwrap_or(lines.len());
    Some(start..end)
}

fn expand_aliases(lines: &[(usize, &str)]) -> Result<Vec<(usize, String)>, TaskFileErrors> {
    let (def, block) = match alias_block(lines) {
        None => (AliasDef::default(), 0..0),
        Some(range) => {
            let block: Vec<(usize, &str)> = lines.get(range.clone()).unwrap_or(&[]).to_vec();
            let text: String = block.iter().map(|(_, l)| format!("{l}\n")).collect();
            let at = |line: usize| block.get(line.saturating_sub(1)).map(|(n, _)| *n);
            let node = match yaml::parse(&text) {
                Ok(Some(node)) => node,
                Ok(None) => return Ok(copy_lines(lines)),
                Err(e) => {
                    return Err(TaskFileErrors(vec![TaskFileError::at(
                        at(e.line),
                        None,
                        format!("alias section is not valid yaml: {}", e.message),
                    )]))
                }
            };
            let alias_node = match &node.kind {
                yaml::Kind::Map(pairs) => pairs.first().map(|(_, v)| v.clone()),
                _ => None,
            };
            let Some(alias_node) = alias_node else {
                return Ok(copy_lines(lines));
            };
            let (def, errs) = alias_from_node(&alias_node);
            if !errs.is_empty() {
                return Err(TaskFileErrors(
                    errs.into_iter()
                        .map(|(l, m)| TaskFileError::at(at(l), None, m))
                        .collect(),
                ));
            }
            (def, range)
        }
    };
    Ok(lines
        .iter()
        .enumerate()
        .map(|(i, (n, l))| {
            if block.contains(&i) {
                (*n, l.to_string())
            } else {
                (*n, def.expand(l))
            }
        })
        .collect())
}

fn copy_lines(lines: &[(usize, &str)]) -> Vec<(usize, String)> {
    lines.iter().map(|(n, l)| (*n, l.to_string())).collect()
}

/// Actions that open, continue or close a block, or use variables.
const BLOCK: [&str; 10] = [
    "if ",
    "else",
    "end",
    "range ",
    "with ",
    "define ",
    "block ",
    "template ",
    "break",
    "continue",
];

/// Keywords and markers that make an action depend on other lines.
fn needs_whole_render(line: &str) -> bool {
    if line.contains("{{-") || line.contains("-}}") {
        return true;
    }
    let mut depth = 0i32;
    let mut rest = line;
    loop {
        let (open, close) = (rest.find("{{"), rest.find("}}"));
        let opens_first = match (open, close) {
            (None, None) => break,
            (Some(o), Some(c)) => o < c,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if opens_first {
            let o = open.unwrap_or(0);
            depth += 1;
            let action = rest[o + 2..].trim_start();
            if depth > 1 || BLOCK.iter().any(|k| action.starts_with(k)) || action.starts_with('$') {
                return true;
            }
            rest = &rest[o + 2..];
        } else {
            let c = close.unwrap_or(0);
            depth -= 1;
            if depth < 0 {
                return true;
            }
            rest = &rest[c + 2..];
        }
    }
    depth != 0
}

/// ACR's renderer deletes every `<no value>` from the rendered file (what
/// Go's templates print for a missing key), literal ones included.
fn no_value_removed(line: &str) -> String {
    line.replace("<no value>", "")
}

fn render_lines(
    lines: &[(usize, String)],
    data: &serde_json::Value,
) -> Result<Preprocessed, TaskFileErrors> {
    let whole = lines.iter().any(|(_, l)| needs_whole_render(l));
    let mut out_lines: Vec<String> = Vec::new();
    let mut orig = Vec::new();
    if !whole {
        for (n, l) in lines {
            let out = if l.contains("{{") {
                render(l, data).map_err(|e| {
                    TaskFileErrors(vec![TaskFileError::at(Some(*n), None, e.to_string())])
                })?
            } else {
                l.clone()
            };
            for piece in out.split('\n') {
                out_lines.push(no_value_removed(piece));
                orig.push(*n);
            }
        }
    } else {
        let joined = lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let out = render(&joined, data).map_err(|e| {
            TaskFileErrors(vec![TaskFileError::at(
                guess_error_line(lines, data),
                None,
                e.to_string(),
            )])
        })?;
        let pieces: Vec<&str> = out.split('\n').collect();
        orig = align(lines, &pieces);
        out_lines = pieces.into_iter().map(no_value_removed).collect();
    }
    let text = out_lines.join("\n");
    Ok(Preprocessed {
        text,
        line_map: LineMap { orig },
    })
}

/// Largest input x output line count [`align`] compares line by line (a
/// table of this many cells); above it, lines map by position.
const MAX_ALIGN_CELLS: usize = 4_000_000;

/// The user's line of each rendered line after a whole-text render, which
/// may remove lines (`{{- ...}}`, comments, false `if`s) or add them
/// (`range`). Lines the templates left as they were are matched to their
/// source by a longest common subsequence; the lines between two matches
/// map, in order, to the source lines between them (the last one taking
/// any surplus). So an error on a plain line after a multi-line comment
/// names the line the user wrote, not its position in the rendered text.
fn align(lines: &[(usize, String)], out: &[&str]) -> Vec<usize> {
    let (n, m) = (lines.len(), out.len());
    let by_position = |i: usize| {
        lines
            .get(i)
            .or_else(|| lines.last())
            .map(|(n, _)| *n)
            .unwrap_or(i + 1)
    };
    if n == 0 || n.saturating_mul(m) > MAX_ALIGN_CELLS {
        return (0..m).map(by_position).collect();
    }
    // lcs[i][j]: common lines of lines[i..] and out[j..]
    let w = m + 1;
    let mut lcs = vec![0u32; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * w + j] = if lines[i].1 == out[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    // matched pairs, in order
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if lines[i].1 == out[j] && lcs[i * w + j] == lcs[(i + 1) * w + j + 1] + 1 {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * w + j] >= lcs[i * w + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs.push((n, m));
    let mut map = Vec::with_capacity(m);
    let (mut from_i, mut from_j) = (0, 0);
    for (pi, pj) in pairs {
        // unmatched output lines from_j..pj take source lines from_i..pi
        for k in 0..pj.saturating_sub(from_j) {
            let src = (from_i + k).min(pi.saturating_sub(1)).max(from_i);
            map.push(by_position(src));
        }
        if pj < m {
            map.push(by_position(pi));
        }
        from_i = pi + 1;
        from_j = pj + 1;
    }
    map
}

/// After a failed whole-text render: the first line that fails on its own
/// and holds no block action (those fail alone by nature), if any.
fn guess_error_line(lines: &[(usize, String)], data: &serde_json::Value) -> Option<usize> {
    lines
        .iter()
        .filter(|(_, l)| l.contains("{{") || l.contains("}}"))
        .filter(|(_, l)| !has_block_action(l))
        .find(|(_, l)| render(l, data).is_err() || needs_whole_render(l))
        .map(|(n, _)| *n)
}

fn has_block_action(line: &str) -> bool {
    line.split("{{").skip(1).any(|a| {
        let a = a.trim_start_matches('-').trim_start();
        BLOCK.iter().any(|k| a.starts_with(k)) || a.starts_with('$')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    fn vars() -> RunVars {
        RunVars {
            id: "cb1".into(),
            registry: "roo.azurecr.io".into(),
            date: chrono::Utc
                .with_ymd_and_hms(2010, 5, 20, 13, 14, 22)
                .unwrap(),
            os: "linux".into(),
            architecture: "amd64".into(),
            ..Default::default()
        }
    }

    fn run(src: &str) -> String {
        let values: crate::domain::model::Values = [("app".to_string(), "web".into())].into();
        preprocess(src, &vars(), &values).unwrap()
    }

    #[test]
    fn aliases_render_exactly() {
        let cases = [
            (
                "version: v1.1.0\nsteps:\n  - build: -t $Registry/$repo:$ID .\n",
                "version: v1.1.0\nsteps:\n  - build: -t roo.azurecr.io/$repo:cb1 .\n",
            ),
            (
                "version: v1.1.0\nsteps:\n  - cmd: bash echo $$HOME $Date\n",
                "version: v1.1.0\nsteps:\n  - cmd: bash echo $HOME 20100520-131422z\n",
            ),
            (
                "version: v1.1.0\nalias:\n  values:\n    repo: my-website\nsteps:\n  - push: [$Registry/$repo:$ID]\n",
                "version: v1.1.0\nalias:\n  values:\n    repo: my-website\nsteps:\n  - push: [roo.azurecr.io/my-website:cb1]\n",
            ),
            (
                "version: v1.1.0\nalias:\n  directive: '&'\n  values:\n    repo: r\nsteps:\n  - cmd: bash echo &repo $ID &&\n",
                "version: v1.1.0\nalias:\n  directive: '&'\n  values:\n    repo: r\nsteps:\n  - cmd: bash echo r $ID &\n",
            ),
            // not v1.1.0: aliases untouched, templates rendered
            (
                "steps:\n  - cmd: bash echo $ID {{.Run.ID}} {{.Values.app}} {{.Values.none}}.\n",
                "steps:\n  - cmd: bash echo $ID cb1 web .\n",
            ),
            (
                "version: V1.1.0 # case-insensitive\nsteps:\n  - cmd: $RegistryName/$RegistryNameX\n",
                "version: V1.1.0 # case-insensitive\nsteps:\n  - cmd: roo/$RegistryNameX\n",
            ),
            // .Secrets renders empty when absent
            ("env: [S='{{.Secrets.name}}']\n", "env: [S='']\n"),
        ];
        for (src, want) in cases {
            assert_eq!(run(src), want, "src {src:?}");
        }
    }

    #[test]
    fn comment_lines_go_and_lines_map_back() {
        let src = "# header\nversion: v1.1.0\n  # indented comment\nsteps: # trailing stays\n\n# more\n  - cmd: x\n";
        let p = preprocess_mapped(src, &template_data(&vars(), &BTreeMap::new())).unwrap();
        assert_eq!(
            p.text,
            "version: v1.1.0\nsteps: # trailing stays\n\n  - cmd: x\n"
        );
        let map: Vec<usize> = (1..=5).map(|l| p.line_map.original(l)).collect();
        assert_eq!(map, vec![2, 4, 5, 7, 8]);
        // past the end keeps counting
        assert_eq!(p.line_map.original(7), 10);
        assert_eq!(LineMap::identity().original(4), 4);
    }

    #[test]
    fn lines_after_a_template_that_removes_or_adds_lines_map_back() {
        let data = template_data(&vars(), &BTreeMap::new());
        // a four-line comment trimmed away: the plain lines after it keep
        // their own numbers
        let src = "version: v1.1.0\n{{- /* one\ntwo\nthree\nfour */}}\nsteps:\n  - id: a\n    cmd: x\n    when: [ghost]\n";
        let p = preprocess_mapped(src, &data).unwrap();
        assert_eq!(
            p.text,
            "version: v1.1.0\nsteps:\n  - id: a\n    cmd: x\n    when: [ghost]\n"
        );
        let map: Vec<usize> = (1..=5).map(|l| p.line_map.original(l)).collect();
        assert_eq!(map, vec![1, 6, 7, 8, 9]);
        // a range adds lines: the line after the loop is still its own
        let src = "steps:\n{{- range $i := list 1 2 3}}\n  - cmd: echo {{$i}}\n{{- end}}\n  - cmd: last\n    bad: key\n";
        let p = preprocess_mapped(src, &data).unwrap();
        assert_eq!(
            p.text,
            "steps:\n  - cmd: echo 1\n  - cmd: echo 2\n  - cmd: echo 3\n  - cmd: last\n    bad: key\n"
        );
        assert_eq!(p.line_map.original(1), 1);
        assert!((2..=4).all(|l| (2..=4).contains(&p.line_map.original(l))));
        assert_eq!(p.line_map.original(5), 5);
        assert_eq!(p.line_map.original(6), 6);
    }

    #[test]
    fn multi_line_values_keep_the_source_line() {
        let values: crate::domain::model::Values = [("two".to_string(), "a\nb".into())].into();
        let p = preprocess_mapped(
            "x: 1\ny: |\n  {{.Values.two}}\nz: 2\n",
            &template_data(&vars(), &values),
        )
        .unwrap();
        assert_eq!(p.text, "x: 1\ny: |\n  a\nb\nz: 2\n");
        assert_eq!(p.line_map.original(4), 3);
        assert_eq!(p.line_map.original(5), 4);
    }

    #[test]
    fn values_files_with_maps_and_lists_reach_templates() {
        let mut values = crate::build::values::parse_values_yaml(
            "app:\n  name: web\n  ports: [80, 443]\nenvs:\n  prod: {replicas: 3}\n  dev: {replicas: 1}\n",
        )
        .unwrap();
        crate::build::values::apply_sets(&mut values, &["app.name=flat".into()]).unwrap();
        let src = "steps:\n  - cmd: echo {{.Values.app.name}} {{index .Values \"app.name\"}}\n\
                   {{- range .Values.app.ports}}\n  - cmd: echo port {{.}}{{end}}\n\
                   {{- range $env, $cfg := .Values.envs}}\n  - cmd: echo {{$env}}={{$cfg.replicas}}{{end}}\n";
        let out = preprocess(src, &vars(), &values).unwrap();
        assert_eq!(
            out,
            "steps:\n  - cmd: echo web flat\n  - cmd: echo port 80\n  - cmd: echo port 443\n  - cmd: echo dev=1\n  - cmd: echo prod=3\n"
        );
    }

    #[test]
    fn alias_section_errors_name_the_line() {
        let src = "version: v1.1.0\n# c\nalias:\n  values:\n    bad-key: x\nsteps: []\n";
        let e = preprocess_mapped(src, &serde_json::json!({})).unwrap_err();
        assert_eq!(e.0[0].line, Some(5), "{e}");
        assert!(
            e.to_string().contains("invalid alias name 'bad-key'"),
            "{e}"
        );
        let e = preprocess(
            "version: v1.1.0\nalias:\n  directive: ab\n",
            &vars(),
            &BTreeMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 3") && e.contains("directive 'ab'"), "{e}");
    }

    #[test]
    fn whole_render_detection() {
        assert!(!needs_whole_render("a {{.X}} b {{ .Y | lower }}"));
        assert!(needs_whole_render("{{ if .X }}"));
        assert!(needs_whole_render("{{- .X }}"));
        assert!(needs_whole_render("{{ .X"));
        assert!(needs_whole_render("}} x"));
        assert!(needs_whole_render("{{ $x := 1 }}"));
        assert!(!needs_whole_render("no actions"));
    }
}
