//! Property tests: templates are untrusted input (task files and image
//! names from a repository), so any source, with any data, must render or
//! fail with an error, never panic; a template without actions renders to
//! itself.

use crtask_gotemplate::{render, Template};
use proptest::prelude::*;
use serde_json::{json, Value};

fn data() -> Value {
    json!({
        "Run": {"ID": "ca1", "OS": "linux", "Registry": "r.example"},
        "Values": {"name": "web", "empty": "", "n": "3"},
        "list": ["a", "b", "c"],
        "map": {"b": 2, "a": 1},
        "n": 3,
        "f": 1.5,
        "t": true,
        "nested": {"x": {"y": "deep"}},
    })
}

/// Pieces of template syntax, functions and pipelines, put together in
/// any order: mostly wrong templates, some right ones.
fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "{{", "}}", "{{-", "-}}", "{{/*", "*/}}", ".", ".Run.ID", ".Values.name", ".list",
            ".map", ".n", ".f", ".nested.x.y", "$", "$x", "$x :=", "$x =", ":=", "|", "(", ")",
            "if", "else", "else if", "end", "range", "with", "define \"t\"", "template \"t\"",
            "block \"b\" .", "break", "continue", "and", "or", "not", "eq", "ne", "lt", "le",
            "gt", "ge", "len", "index", "slice", "print", "printf", "println", "printf \"%d\"",
            "printf \"%*d\"", "printf \"%[3]v\"", "printf \"%!\"", "html", "js", "urlquery",
            "call", "upper", "lower", "trim", "default", "quote", "replace", "split", "join",
            "repeat", "b64enc", "b64dec", "toJson", "\"str\"", "`raw`", "'c'", "1", "-1",
            "1e308", "0x1F", "99999999999999999999", "nil", "true", "false", " ", "\n", "\"",
            "\\", "{{end}}", "{{else}}", "{{range .list}}", "{{.}}", "{{if .t}}", "{{with .map}}",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_template_renders_or_fails_cleanly(src in template_text()) {
        let _ = render(&src, &data());
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render(&Value::Null);
            let _ = t.render(&json!([1, "x", null]));
        }
    }

    #[test]
    fn any_text_renders_or_fails_cleanly(src in any::<String>()) {
        let _ = render(&src, &data());
    }

    #[test]
    fn text_without_actions_renders_to_itself(src in "[^{]*") {
        prop_assert_eq!(render(&src, &data()).unwrap(), src);
    }
}
