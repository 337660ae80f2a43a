//! The engine through its public API: what templates render to, the errors
//! they fail with (position and message), limits and robustness.

use crtask_gotemplate::{render, Error, Template};
use serde_json::{json, Value};

/// An error as `line:col: message`, its text without the `template: ` prefix.
fn position_and_message(e: &Error) -> String {
    match e {
        Error::Parse { line, col, message } | Error::Exec { line, col, message } => {
            format!("{line}:{col}: {message}")
        }
    }
}

fn data() -> Value {
    json!({
        "Run": {"ID": "ca1", "OS": "linux", "Registry": "roo.azurecr.io"},
        "Values": {"name": "web", "empty": "", "n": "3"},
        "list": ["a", "b", "c"],
        "map": {"b": 2, "a": 1},
        "n": 3,
        "neg": -7,
        "f": 1.5,
        "big": 1000000.0,
        "tiny": 0.00001,
        "whole": 2.0,
        "t": true,
        "zero": 0,
        "nested": {"x": {"y": "deep"}},
        "nil": null,
        "mixed": ["a", null, 1],
    })
}

fn ok(src: &str) -> String {
    match render(src, &data()) {
        Ok(s) => s,
        Err(e) => panic!("{src:?} failed: {e}"),
    }
}

fn fail(src: &str) -> String {
    match render(src, &data()) {
        Ok(s) => panic!("{src:?} rendered {s:?}, expected an error"),
        Err(e) => position_and_message(&e),
    }
}

#[test]
fn renders_table() {
    let cases: &[(&str, &str)] = &[
        // text, fields, missing
        ("plain text", "plain text"),
        ("", ""),
        ("app:{{.Run.ID}}", "app:ca1"),
        ("{{ .Run.ID }}", "ca1"),
        ("{{.Values.missing}}", ""),
        ("[{{.Values.a.b.c}}]", "[]"),
        ("[{{.Nope.Deeper}}]", "[]"),
        ("[{{.Run.ID.Field}}]", "[]"),
        ("[{{.list.x}}]", "[]"),
        ("[{{.nil}}]", "[]"),
        ("{{.nested.x.y}}", "deep"),
        ("{{$.nested.x.y}}", "deep"),
        // printing values like Go
        ("{{.n}} {{.neg}} {{.f}} {{.big}} {{.tiny}} {{.whole}}", "3 -7 1.5 1e+06 1e-05 2"),
        ("{{.t}} {{.zero}}", "true 0"),
        ("{{.list}}", "[a b c]"),
        ("{{.map}}", "map[a:1 b:2]"),
        ("{{.mixed}}", "[a <nil> 1]"),
        // literals
        (r#"{{"a\tb\u00e9\x41\101"}}"#, "a\tbéAA"),
        ("{{`raw\\n{{`}}", "raw\\n{{"),
        ("{{'a'}} {{'\\n'}}", "97 10"),
        ("{{0x1F}} {{0o17}} {{017}} {{0b101}} {{1_000}}", "31 15 15 5 1000"),
        ("{{1.0}} {{-2}} {{+3}} {{1e3}} {{.5}} {{-1.25}}", "1 -2 3 1000 0.5 -1.25"),
        ("{{true}} {{false}}", "true false"),
        ("{{print nil}}", ""),
        // trim markers and comments
        ("a  {{- .Run.ID -}}  b", "aca1b"),
        ("a  {{- .Run.ID}}  b", "aca1  b"),
        ("a  {{.Run.ID -}} \n\t b", "a  ca1b"),
        ("a {{- /* note */ -}} b", "ab"),
        ("{{/* note\n spanning lines */}}x", "x"),
        ("a\n{{- if true}}\nX\n{{- end}}\n", "a\nX\n"),
        ("{{-3}}", "-3"),
        // if / else if / else
        (r#"{{if eq .Run.OS "linux"}}L{{else if eq .Run.OS "windows"}}W{{else}}O{{end}}"#, "L"),
        (r#"{{if eq .Run.OS "mac"}}L{{else if eq .Run.OS "windows"}}W{{else}}O{{end}}"#, "O"),
        (r#"{{if ne .Run.OS "linux"}}L{{else if eq .Run.OS "linux"}}W{{end}}"#, "W"),
        ("{{if .Values.missing}}yes{{else}}no{{end}}", "no"),
        ("{{if .Values.empty}}yes{{else}}no{{end}}", "no"),
        ("{{if .zero}}yes{{else}}no{{end}}", "no"),
        ("{{if .list}}yes{{end}}", "yes"),
        ("{{if $x := .Run.ID}}{{$x}}{{end}}", "ca1"),
        // with
        ("{{with .nested.x}}{{.y}}{{end}}", "deep"),
        ("{{with .Values.missing}}{{.}}{{else}}none{{end}}", "none"),
        ("{{with .Values.missing}}a{{else with .Values.name}}{{.}}{{end}}", "web"),
        ("{{with .nested}}{{$.Run.ID}}{{end}}", "ca1"),
        // range
        ("{{range .list}}[{{.}}]{{end}}", "[a][b][c]"),
        ("{{range $i, $v := .list}}{{$i}}={{$v}},{{end}}", "0=a,1=b,2=c,"),
        ("{{range $v := .list}}{{$v}}{{end}}", "abc"),
        ("{{range $k, $v := .map}}{{$k}}:{{$v}};{{end}}", "a:1;b:2;"),
        ("{{range .Values.missing}}x{{else}}empty{{end}}", "empty"),
        ("{{range $i := 3}}{{$i}}{{end}}", "012"),
        ("{{range 0}}x{{else}}none{{end}}", "none"),
        (r#"{{range .list}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}"#, "ac"),
        (r#"{{range .list}}{{if eq . "b"}}{{break}}{{end}}{{.}}{{end}}"#, "a"),
        ("{{$n := 0}}{{range .list}}{{$n = .}}{{end}}{{$n}}", "c"),
        // variables
        (r#"{{$x := "a"}}{{$x}}{{$x = "b"}}{{$x}}"#, "ab"),
        ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{$x := .nested}}{{$x.x.y}}", "deep"),
        ("{{$}}", "map[Run:map[ID:ca1 OS:linux Registry:roo.azurecr.io] Values:map[empty: n:3 name:web] big:1e+06 f:1.5 list:[a b c] map:map[a:1 b:2] mixed:[a <nil> 1] n:3 neg:-7 nested:map[x:map[y:deep]] nil:<nil> t:true tiny:1e-05 whole:2 zero:0]"),
        // pipelines and parentheses
        ("{{.Run.ID | upper}}", "CA1"),
        (r#"{{"abc" | printf "%s-%s" "x"}}"#, "x-abc"),
        (r#"{{(printf "%d" 300) | len}}"#, "3"),
        (r#"{{(split "." .Run.Registry)._0}}"#, "roo"),
        (r#"{{"  x " | trim | upper | printf "<%s>"}}"#, "<X>"),
        (r#"{{($y := "v") | upper}}{{$y}}"#, "Vv"),
        // default
        (r#"{{default "x" .Values.missing}}"#, "x"),
        (r#"{{.Values.missing | default "x"}}"#, "x"),
        (r#"{{.Values.empty | default "x"}}"#, "x"),
        (r#"{{.Values.name | default "x"}}"#, "web"),
        (r#"{{default "x"}}"#, "x"),
        // logic
        ("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" \"x\"}} {{or 0 false}}", "0 2 x false"),
        ("{{not .zero}} {{not .t}}", "true false"),
        ("{{or 1 (index .list 10)}}", "1"),
        ("{{and 0 (index .list 10)}}", "0"),
        ("{{.t | and 1}}", "true"),
        // comparisons
        ("{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 2.5 2}}", "true true false true"),
        (r#"{{eq "a" "b" "a"}} {{eq 1 1.0}} {{ne 1 2}} {{lt "a" "b"}}"#, "true true true true"),
        (r#"{{eq .Values.missing ""}} {{eq .Values.missing 0}} {{eq .nil .Values.missing}}"#, "true true true"),
        ("{{eq .list .list}}", "true"),
        // len and index
        ("{{len .list}} {{len .map}} {{len \"héllo\"}} {{len .Values.missing}}", "3 2 6 0"),
        (r#"{{index .list 1}} {{index .map "b"}} [{{index .Values "missing"}}] {{index .nested "x" "y"}}"#, "b 2 [] deep"),
        (r#"{{index "abc" 1}}"#, "98"),
        // print family
        (r#"{{print 1 2 "a" 3 "b" "c"}}"#, "1 2a3bc"),
        (r#"{{println "a" 1}}"#, "a 1\n"),
        (r#"{{printf "%s|%d|%v|%q|%%" "s" 42 .list "q"}}"#, r#"s|42|[a b c]|"q"|%"#),
        (r#"{{printf "%5s|%-5s|%05d|%.2f|%x|%X|%t|%+d" "a" "b" 42 3.14159 255 255 true 5}}"#, "    a|b    |00042|3.14|ff|FF|true|+5"),
        (r#"{{printf "%e|%g|%g|%.3g|%v" 1234.5678 0.000012 100000.0 3.14159 .f}}"#, "1.234568e+03|1.2e-05|100000|3.14|1.5"),
        (r#"{{printf "%d %d" 1}}"#, "1 %!d(MISSING)"),
        (r#"{{printf "%d" 1 "x"}}"#, "1%!(EXTRA string=x)"),
        (r#"{{printf "%d" "x"}}"#, "%!d(string=x)"),
        (r#"{{printf "%z" 1}}"#, "%!z(int=1)"),
        (r#"{{printf "%q %c %o %b %x" 'x' 65 8 5 "hi"}}"#, "'x' A 10 101 6869"),
        (r#"{{printf "%05d|%-4d|%.1s" -42 7 "xyz"}}"#, "-0042|7   |x"),
        (r#"{{printf "%q" "a\"b\n"}}"#, r#""a\"b\n""#),
        (r#"{{printf "100%"}}"#, "100%!(NOVERB)"),
        // sprig-style strings
        (r#"{{lower "ABC"}} {{upper "abc"}} {{title "hello wide-world_x"}}"#, "abc ABC Hello Wide-World_x"),
        (r#"[{{trim "  x  "}}] {{trimAll "-" "--x--"}} {{trimPrefix "v" "v1.2"}} {{trimSuffix ".git" "repo.git"}}"#, "[x] x 1.2 repo"),
        (r#"{{replace "-" "_" "a-b-c"}} {{contains "ell" "hello"}} {{hasPrefix "he" "hello"}} {{hasSuffix "x" "hello"}}"#, "a_b_c true true false"),
        (r#"{{quote "a\"b" .n}} {{squote "x"}} {{quote .nil}}"#, r#""a\"b" "3" 'x' "#),
        (r#"{{join "," (splitList "-" "a-b-c")}} {{join "+" .list}} {{(split "-" "a-b")._1}}"#, "a,b,c a+b+c b"),
        (r#"{{repeat 3 "ab"}} {{repeat .Values.n "z"}}"#, "ababab zzz"),
        (r#"{{substr 1 3 "hello"}} {{substr 2 99 "hello"}} {{substr -1 2 "hello"}} [{{substr 4 2 "hello"}}] {{substr 0 1 "éa"}}"#, "el llo he [] é"),
        (r#"{{trunc 3 "hello"}} {{trunc -2 "hello"}} {{trunc 9 "hi"}}"#, "hel lo hi"),
        (r#"{{indent 2 "a\nb"}}|{{nindent 1 "c"}}"#, "  a\n  b|\n c"),
        (r#"{{cat "a" 1 .nil "b"}} {{toString 12}} {{toJson .map}} {{toJson .Values.name}}"#, r#"a 1 b 12 {"a":1,"b":2} "web""#),
        (r#"{{empty .Values.empty}} {{empty .list}} {{coalesce .nil "" "c"}} {{ternary "y" "n" .t}} {{ternary "y" "n" .zero}}"#, "true false c y n"),
        (r#"{{"hello" | b64enc}} {{"aGVsbG8=" | b64dec}} [{{.Values.missing | b64enc}}]"#, "aGVsbG8= hello []"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(src, want)| {
            let got = render(src, &data()).map_err(|e| e.to_string());
            (got.as_deref() != Ok(*want)).then(|| format!("{src:?}: want {want:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn errors_name_position_and_problem() {
    let cases: &[(&str, &str)] = &[
        // lexing
        ("{{", "1:1: unclosed action"),
        ("ab\n  {{.X", "2:3: unclosed action"),
        ("{{/* a }}", "1:1: unclosed comment"),
        ("{{/* a */ x}}", "1:8: comment ends before closing delimiter"),
        (r#"{{"abc}}"#, "1:3: unterminated quoted string"),
        ("{{`abc}}", "1:3: unterminated raw quoted string"),
        ("{{'ab'}}", "1:3: malformed character constant 'ab'"),
        (r#"{{"\q"}}"#, "1:3: unknown escape sequence \\q"),
        ("{{.Values.my-key}}", "1:13: unexpected character '-' after \".my\" (use index for keys that are not identifiers)"),
        ("{{ # }}", "1:4: unexpected character '#' in action"),
        ("{{ 12ab }}", "1:4: bad number syntax: \"12a\""),
        ("{{0x1p3}}", "1:3: hexadecimal float 0x1p3 is not supported"),
        ("{{1i}}", "1:3: complex number 1i is not supported"),
        ("{{99999999999999999999}}", "1:3: number 99999999999999999999 is out of range: number too large to fit in target type"),
        ("{{ a: }}", "1:5: expected :="),
        // structure
        ("{{end}}", "1:1: unexpected {{end}}"),
        ("x\n {{else}}", "2:2: unexpected {{else}}"),
        ("{{if .X}}a", "1:1: unclosed {{if}}: missing {{end}}"),
        ("{{range .X}}a{{else}}b", "1:1: unclosed {{range}}: missing {{end}}"),
        ("{{if 1}}{{else}}{{else}}{{end}}", "1:17: unexpected {{else}} after {{else}} in {{if}}"),
        ("{{range .X}}{{else if 1}}{{end}}", "1:13: {{else if}} and {{else with}} are not allowed in {{range}}"),
        ("{{end 1}}", "1:7: unexpected number 1 in {{end}}"),
        ("{{break}}", "1:1: {{break}} outside {{range}}"),
        ("{{range .L}}{{else}}{{continue}}{{end}}", "1:21: {{continue}} outside {{range}}"),
        ("{{template \"x\"}}", "1:1: no such template \"x\""),
        ("{{template .X}}", "1:12: unexpected \".X\" in {{template}}: want a quoted template name"),
        ("{{if 1}}{{define \"x\"}}{{end}}{{end}}", "1:9: {{define}} is only allowed at the top level"),
        ("{{define \"x\"}}a", "1:1: unclosed {{define}}: missing {{end}}"),
        ("{{define \"x\"}}a{{end}}{{define \"x\"}}b{{end}}", "1:23: template: multiple definition of template \"x\""),
        ("{{define \"x\"}}{{template \"x\"}}{{end}}{{template \"x\"}}", "1:15: templates call each other more than 64 deep"),
        // pipelines
        ("{{foo .X}}", "1:3: function \"foo\" not defined"),
        ("x\n{{ .A | nope }}", "2:9: function \"nope\" not defined"),
        ("{{$x}}", "1:3: undefined variable \"$x\""),
        ("{{$x = 1}}", "1:3: undefined variable \"$x\""),
        ("{{if true}}{{$y := 1}}{{end}}{{$y}}", "1:32: undefined variable \"$y\""),
        ("{{$a, $b := .L}}", "1:3: too many declarations in command"),
        ("{{}}", "1:3: missing value for command"),
        ("{{if}}{{end}}", "1:5: missing value for if"),
        ("{{.A | }}", "1:8: missing command after \"|\""),
        ("{{(.A}}", "1:6: unclosed left paren"),
        ("{{.A)}}", "1:5: unexpected right paren"),
        (r#"{{.A | "x"}}"#, "1:8: non executable command in pipeline stage 2"),
        (r#"{{.A"x"}}"#, "1:5: unexpected character '\"' after \".A\" (use index for keys that are not identifiers)"),
        ("{{(.A)(.B)}}", "1:7: unexpected \"(\" in operand"),
        (r#"{{print "a""b"}}"#, "1:12: unexpected string \"b\" in operand"),
        ("{{print end}}", "1:9: unexpected {{end}} in command"),
        ("{{\"x\".Y}}", "1:3: unexpected . after term \"x\""),
        ("{{ := }}", "1:4: unexpected \":=\" in operand"),
        // execution
        ("{{1 2}}", "1:3: can't give argument to non-function 1"),
        ("{{\"a\" | .X}}", "1:9: can't give argument to non-function .X"),
        ("{{nil}}", "1:3: nil is not a command"),
        (r#"{{b64dec "!!"}}"#, "1:3: error calling b64dec: \"!!\" is not valid base64"),
        ("{{lower}}", "1:3: error calling lower: wrong number of arguments: want 1, got 0"),
        ("{{\"x\"\n | lower 1 2}}", "2:4: error calling lower: wrong number of arguments: want 1, got 3"),
        ("{{index .list 5}}", "1:3: error calling index: index out of range: 5"),
        (r#"{{eq 1 "a"}}"#, "1:3: error calling eq: incompatible types for comparison: int and string"),
        ("{{lt true false}}", "1:3: error calling lt: invalid type for comparison: bool"),
        ("{{eq 1}}", "1:3: error calling eq: missing argument for comparison"),
        (r#"{{repeat "x" "y"}}"#, "1:3: error calling repeat: expected an integer, got string \"x\""),
        (r#"{{repeat -1 "y"}}"#, "1:3: error calling repeat: negative repeat count -1"),
        ("{{range $i, $v := 3}}{{end}}", "1:9: can't use 3 to iterate over more than one variable"),
        ("{{range .t}}{{end}}", "1:9: range can't iterate over bool"),
        ("{{and}}", "1:3: wrong number of args for and: want at least 1 got 0"),
        ("{{len 3}}", "1:3: error calling len: len of int"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(src, want)| {
            let got = render(src, &data());
            match &got {
                Err(e) if position_and_message(e) == *want => None,
                _ => Some(format!("{src:?}: want {want:?}, got {got:?}")),
            }
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn error_display_has_template_prefix() {
    let e = Template::parse("{{end}}").err().map(|e| e.to_string());
    assert_eq!(e.as_deref(), Some("template: 1:1: unexpected {{end}}"));
}

#[test]
fn parsed_template_renders_many_times() {
    let t = match Template::parse("{{.Run.ID}}-{{.Values.x | default \"none\"}}") {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let a = t.render(&json!({"Run": {"ID": "ca1"}, "Values": {"x": "1"}}));
    let b = t.render(&json!({"Run": {"ID": "ca2"}}));
    let c = t.render(&Value::Null);
    assert_eq!(a.ok().as_deref(), Some("ca1-1"));
    assert_eq!(b.ok().as_deref(), Some("ca2-none"));
    assert_eq!(c.ok().as_deref(), Some("-none"));
}

#[test]
fn parse_errors_and_exec_errors_are_told_apart() {
    let parse = |src: &str| Template::parse(src).err();
    assert_eq!(
        parse("x\n {{else}}"),
        Some(Error::Parse {
            line: 2,
            col: 2,
            message: "unexpected {{else}}".to_string()
        })
    );
    assert!(matches!(parse("{{foo}}"), Some(Error::Parse { .. })));
    assert!(matches!(parse("{{"), Some(Error::Parse { .. })));
    let exec = |src: &str| match Template::parse(src) {
        Ok(t) => t.render(&data()).err(),
        Err(e) => panic!("{src:?} did not parse: {e}"),
    };
    assert_eq!(
        exec("x\n {{index .list 5}}"),
        Some(Error::Exec {
            line: 2,
            col: 4,
            message: "error calling index: index out of range: 5".to_string()
        })
    );
    assert!(matches!(
        exec("{{range .t}}{{end}}"),
        Some(Error::Exec { .. })
    ));
}

#[test]
fn limits_stop_runaway_templates() {
    let e = fail("{{range 100000000}}{{end}}");
    assert!(e.contains("steps"), "{e}");
    let e = fail(r#"{{repeat 100000000 "abcdefgh"}}"#);
    assert!(e.contains("16 MiB"), "{e}");
    let e = fail(r#"{{$x := "abcdefghabcdefgh"}}{{range 40}}{{$x = printf "%s%s" $x $x}}{{end}}"#);
    assert!(e.contains("16 MiB"), "{e}");
    assert_eq!(ok(r#"{{printf "%9999999d" 1}}"#), "%!(BADWIDTH)1");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep_if = "{{if 1}}".repeat(5000);
    assert!(fail(&deep_if).contains("nested more than 64 deep"));
    let deep_paren = format!("{{{{{}1{}}}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(fail(&deep_paren).contains("nested more than 64 deep"));
    let chain = format!("{{{{if 0}}}}{}{{{{end}}}}", "{{else if 0}}".repeat(5000));
    assert!(fail(&chain).contains("nested more than 64 deep"));
    let fine = format!("{}x{}", "{{if 1}}".repeat(60), "{{end}}".repeat(60));
    assert_eq!(ok(&fine), "x");
    // right at the limit, parsing and evaluation stay within the stack
    let at_limit = format!(
        "{}{{{{{}1{}}}}}{}",
        "{{with 1}}".repeat(32),
        "(print ".repeat(31),
        ")".repeat(31),
        "{{end}}".repeat(32)
    );
    assert_eq!(ok(&at_limit), "1");
    let over = format!(
        "{}{{{{{}1{}}}}}{}",
        "{{with 1}}".repeat(32),
        "(print ".repeat(33),
        ")".repeat(33),
        "{{end}}".repeat(32)
    );
    assert!(fail(&over).contains("nested more than 64 deep"));
}

#[test]
fn never_panics_on_garbage() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        "\n",
        ".",
        "..",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"",
        "`",
        "'",
        "\\",
        "/*",
        "*/",
        "end",
        "else",
        "if",
        "range",
        "with",
        "break",
        "continue",
        "nil",
        "true",
        "1",
        "-1",
        "0x",
        "1e",
        ".5",
        ",",
        "printf",
        "\"%",
        "%d",
        "index",
        "len",
        "default",
        "é",
        "日本",
        "{{.}",
        "{{ | }}",
        "}}{{end",
        ".Values.a",
        "substr",
        "repeat",
        "-9999999999",
        "\"\\x",
        "'\\u12",
        "{{/*",
        "b64dec",
        "trunc",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let data = data();
    let mut rendered = 0;
    for _ in 0..3000 {
        let n = 1 + (next() % 8) as usize;
        let mut src = String::new();
        for _ in 0..n {
            let k = (next() % PIECES.len() as u64) as usize;
            src.push_str(PIECES.get(k).copied().unwrap_or(""));
        }
        match render(&src, &data) {
            Ok(_) => rendered += 1,
            Err(e) => {
                let m = position_and_message(&e);
                let (line_col, _) = m.split_once(": ").unwrap_or(("", ""));
                let mut parts = line_col.split(':');
                assert!(
                    parts.next().is_some_and(|l| l.parse::<usize>().is_ok())
                        && parts.next().is_some_and(|c| c.parse::<usize>().is_ok()),
                    "{src:?}: error without position: {m}"
                );
            }
        }
    }
    assert!(rendered > 100, "only {rendered} garbage inputs rendered");
    let odd: &[(&str, bool)] = &[
        ("{{", false),
        ("{{.}", false),
        ("{{ | }}", false),
        ("}}{{end", false),
        ("{{-}}", false),
        ("{{- -}}", false),
        ("{{'", false),
        ("{{\"\\", false),
        ("{{$", false),
        ("{{(", false),
        ("{{)", false),
        ("{{range}}", false),
        ("{{else}}", false),
        ("{{/**/}}", true),
        ("}}", true),
        ("{ {", true),
        ("{{.}}", true),
    ];
    for (src, renders) in odd {
        let r = render(src, &data);
        assert_eq!(r.is_ok(), *renders, "{src:?}: {r:?}");
        assert!(
            r.as_ref()
                .err()
                .is_none_or(|e| e.to_string().starts_with("template: ")),
            "{src:?}: {r:?}"
        );
    }
}
