//! Every function group through the public API, with the examples of Go's
//! `text/template` and Sprig's own documentation as expected outputs.

use crtask_gotemplate::{render, Error};
use serde_json::{json, Value};

fn data() -> Value {
    json!({
        "Values": {
            "app": {"name": "web", "port": 8080, "tags": ["v1", "latest"]},
            "list": ["b", "c", "a"],
            "empty": "",
        },
        "list": ["a", "b", "c"],
        "map": {"b": 2, "a": 1, "c": 3},
    })
}

fn check(cases: &[(&str, &str)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(src, want)| match render(src, &data()) {
            Ok(got) if got == *want => None,
            other => Some(format!("{src}\n   want {want:?}\n   got  {other:?}")),
        })
        .collect();
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

fn exec_error(src: &str) -> String {
    match render(src, &data()) {
        Err(Error::Exec { message, .. }) => message,
        other => panic!("{src}: expected an exec error, got {other:?}"),
    }
}

#[test]
fn go_builtins() {
    check(&[
        (
            r#"{{html "<a href='x'>\"&\"</a>"}}"#,
            "&lt;a href=&#39;x&#39;&gt;&#34;&amp;&#34;&lt;/a&gt;",
        ),
        (r#"{{html 1 2 "x"}}"#, "1 2x"),
        (
            r#"{{js "a'b\"<>&=\\\n"}}"#,
            r#"a\'b\"\u003C\u003E\u0026\u003D\\\u000A"#,
        ),
        (r#"{{urlquery "a b&c=d/é~"}}"#, "a+b%26c%3Dd%2F%C3%A9~"),
        (r#"{{"x y" | urlquery}}"#, "x+y"),
        (r#"{{slice "abcdef" 1 3}}"#, "bc"),
        (r#"{{slice "abcdef" 2}}"#, "cdef"),
        ("{{slice .list 1}}", "[b c]"),
        ("{{slice .list 0 2}}", "[a b]"),
        ("{{index .map \"b\"}} {{index .list 2}}", "2 c"),
        ("{{len .list}} {{len \"héllo\"}}", "3 6"),
        ("{{and 1 0 (fail \"not evaluated\")}}", "0"),
        ("{{or 0 \"\" \"x\" (fail \"not evaluated\")}}", "x"),
        ("{{if and .list (not .Values.empty)}}yes{{end}}", "yes"),
        (
            "{{eq 1 1.0}} {{lt 1 2.5}} {{eq \"a\" \"b\" \"a\"}} {{ne 2 3}} {{ge 3 3}}",
            "true true true true true",
        ),
        (
            "{{range $k, $v := .map}}{{$k}}={{$v}};{{end}}",
            "a=1;b=2;c=3;",
        ),
        (
            "{{range $i, $v := .list}}{{$i}}:{{$v}} {{end}}",
            "0:a 1:b 2:c ",
        ),
        ("{{with .Values.app}}{{.name}}{{else}}none{{end}}", "web"),
        (
            "{{if eq .Values.app.port 80}}a{{else if eq .Values.app.port 8080}}b{{else}}c{{end}}",
            "b",
        ),
        ("{{- \"a\" }}  \n  {{- \"b\" -}}  \n  c", "abc"),
        ("{{printf \"%s-%03d-%v\" \"x\" 7 .list}}", "x-007-[a b c]"),
        ("{{println \"a\" 1}}", "a 1\n"),
        (
            r#"{{define "T"}}[{{.}}]{{end}}{{template "T" "x"}}{{template "T" .Values.app.name}}"#,
            "[x][web]",
        ),
        (
            r#"{{block "B" .list}}{{range .}}{{.}}{{end}}{{end}}!"#,
            "abc!",
        ),
        (
            r#"{{define "T"}}{{$}}{{end}}{{$x := 1}}{{template "T" 5}}"#,
            "5",
        ),
        (r#"{{define "T"}}{{.}}{{end}}{{template "T"}}."#, "."),
    ]);
    assert!(exec_error("{{call 1}}").contains("call is not supported"));
    assert!(exec_error("{{slice .list 2 1}}").contains("invalid slice index"));
    assert!(exec_error("{{slice .list 9}}").contains("index out of range"));
}

#[test]
fn sprig_strings() {
    check(&[
        (r#"{{ trim "   hello    " }}"#, "hello"),
        (r#"{{ trimAll "$" "$5.00" }}"#, "5.00"),
        (
            r#"{{ trimSuffix "-" "hello-" }} {{ trimPrefix "-" "-hello" }}"#,
            "hello hello",
        ),
        (r#"{{ upper "hello" }} {{ lower "HELLO" }}"#, "HELLO hello"),
        (
            r#"{{ title "hello world" }} {{ untitle "Hello World" }}"#,
            "Hello World hello world",
        ),
        (r#"{{ repeat 3 "hello" }}"#, "hellohellohello"),
        (r#"{{ substr 0 5 "hello world" }}"#, "hello"),
        (r#"{{ nospace "hello w o r l d" }}"#, "helloworld"),
        (
            r#"{{ trunc 5 "hello world" }} {{ trunc -5 "hello world" }}"#,
            "hello world",
        ),
        (r#"{{ abbrev 5 "hello world" }}"#, "he..."),
        (r#"{{ abbrevboth 5 10 "1234 5678 9123" }}"#, "...5678..."),
        (r#"{{ initials "First Try" }}"#, "FT"),
        (r#"{{ wrap 5 "Hello World" }}"#, "Hello\nWorld"),
        (r#"{{ wrapWith 5 "\t" "Hello World" }}"#, "Hello\tWorld"),
        (
            r#"{{ contains "cat" "catch" }} {{ hasPrefix "cat" "catch" }} {{ hasSuffix "cat" "catch" }}"#,
            "true true false",
        ),
        (r#"{{ quote "a" 1 }} {{ squote "b" }}"#, r#""a" "1" 'b'"#),
        (
            r#"{{ cat "hello" "beautiful" "world" }}"#,
            "hello beautiful world",
        ),
        (
            r#"{{ indent 2 "a\nb" }}|{{ nindent 2 "c" }}"#,
            "  a\n  b|\n  c",
        ),
        (
            r#"{{ "I Am Henry VIII" | replace " " "-" }}"#,
            "I-Am-Henry-VIII",
        ),
        (
            r#"{{ len .list | plural "one anchovy" "many anchovies" }} {{ plural "one" "many" 1 }}"#,
            "many anchovies one",
        ),
        (
            r#"{{ snakecase "FirstName" }} {{ camelcase "http_server" }} {{ kebabcase "FirstName" }}"#,
            "first_name HttpServer first-name",
        ),
        (r#"{{ swapcase "This Is A.Test" }}"#, "tHIS iS a.tEST"),
        (
            r#"{{ $a := split "$" "foo$bar$baz" }}{{ $a._0 }} {{ $a._2 }}"#,
            "foo baz",
        ),
        (
            r#"{{ splitn "$" 2 "foo$bar$baz" }}"#,
            "map[_0:foo _1:bar$baz]",
        ),
        (r#"{{ splitList "$" "foo$bar$baz" }}"#, "[foo bar baz]"),
        (r#"{{ toString 42 }} {{ hello }}"#, "42 Hello!"),
        (
            r#"{{ regexMatch "^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$" "test@acme.com" }}"#,
            "true",
        ),
        (r#"{{ regexMatch "[" "x" }}"#, "false"),
        (
            r#"{{ regexFindAll "[2,4,6,8]" "123456789" -1 }} {{ regexFindAll "[2,4,6,8]" "123456789" 2 }}"#,
            "[2 4 6 8] [2 4]",
        ),
        (r#"{{ regexFind "[a-zA-Z][1-9]" "abcd1234" }}"#, "d1"),
        (
            r#"{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}"#,
            "-W-xxW-",
        ),
        (
            r#"{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}"#,
            "-${1}-${1}-",
        ),
        (
            r#"{{ regexSplit "z+" "pizza" -1 }} {{ regexSplit "z+" "pizza" 1 }}"#,
            "[pi a] [pizza]",
        ),
        // Go's \d, \w and \s are ASCII: an Arabic-Indic digit, a Greek
        // letter and a no-break space match none of them.
        (
            r#"{{ regexMatch "^\\d$" "\u0663" }} {{ regexMatch "^\\w$" "\u03b2" }} {{ regexMatch "^\\s$" "\u00a0" }} {{ regexMatch "^\\d\\w\\s$" "7_ " }}"#,
            "false false false true",
        ),
    ]);
    assert!(exec_error(r#"{{ regexFind "(" "x" }}"#).contains("invalid regular expression"));
    // Unicode classes are not supported (Go has them): a clear error.
    assert!(exec_error(r#"{{ regexFind "\\pL" "x" }}"#).contains("invalid regular expression"));
}

#[test]
fn sprig_math_and_conversions() {
    check(&[
        ("{{ add 1 2 3 }} {{ add1 4 }} {{ sub 3 2 }} {{ div 7 2 }} {{ mod 7 2 }} {{ mul 2 3 4 }}", "6 5 1 3 1 24"),
        ("{{ max 1 5 3 }} {{ biggest 2 9 }} {{ min 4 2 8 }}", "5 9 2"),
        ("{{ floor 123.9999 }} {{ ceil 123.001 }} {{ round 123.555555 3 }} {{ round 2.5 0 }}", "123 124 123.556 3"),
        (r#"{{ add "2" 3 }} {{ add "x" 3 }} {{ add .Values.app.port 1 }}"#, "5 3 8081"),
        (r#"{{ atoi "42" }} {{ int64 "42" }} {{ int 3.9 }} {{ float64 "1.5" }} {{ toDecimal "0777" }}"#, "42 42 3 1.5 511"),
        ("{{ until 5 }} {{ untilStep 3 6 2 }} {{ until -3 }} {{ untilStep 0 5 -1 }}", "[0 1 2 3 4] [3 5] [0 -1 -2] []"),
    ]);
    assert!(exec_error("{{ div 1 0 }}").contains("divide by zero"));
    assert!(exec_error("{{ until 100000000 }}").contains("more than"));
}

#[test]
fn sprig_lists() {
    check(&[
        ("{{ list 1 2 3 }} {{ tuple \"a\" }}", "[1 2 3] [a]"),
        (
            "{{ first .list }} {{ rest .list }} {{ last .list }} {{ initial .list }}",
            "a [b c] c [a b]",
        ),
        (
            "{{ append .list \"d\" }} {{ push .list \"d\" }} {{ prepend .list \"z\" }}",
            "[a b c d] [a b c d] [z a b c]",
        ),
        (
            "{{ concat (list 1 2) (list 3) }} {{ reverse .list }}",
            "[1 2 3] [c b a]",
        ),
        (
            "{{ uniq (list 1 1 1 2) }} {{ without (list 1 2 3 4) 3 1 }}",
            "[1 2] [2 4]",
        ),
        (
            "{{ has 4 (list 1 2 3 4) }} {{ has \"x\" .list }} {{ has 1 .nothing }}",
            "true false false",
        ),
        ("{{ compact (list 1 \"a\" \"foo\" \"\") }}", "[1 a foo]"),
        ("{{ slice (list 1 2 3 4 5) 1 3 }}", "[2 3]"),
        (
            "{{ sortAlpha .Values.list }} {{ join \"-\" .list }} {{ toStrings (list 1 2) }}",
            "[a b c] a-b-c [1 2]",
        ),
        ("{{ first (list) }}.", "."),
    ]);
    assert!(exec_error("{{ first \"abc\" }}").contains("Cannot find first on type string"));
}

#[test]
fn sprig_dicts() {
    check(&[
        (
            r#"{{ $d := dict "name1" "value1" "name2" "value2" }}{{ $d.name1 }} {{ len $d }}"#,
            "value1 2",
        ),
        (
            r#"{{ $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}{{ $d }}"#,
            "map[a:1 b:2]",
        ),
        (
            r#"{{ $d := dict "a" 1 "b" 2 }}{{ $_ := unset $d "a" }}{{ $d }}"#,
            "map[b:2]",
        ),
        (
            r#"{{ $d := dict "n" (dict) }}{{ $_ := set $d.n "x" 1 }}{{ $d.n.x }}"#,
            "1",
        ),
        (
            r#"{{ hasKey .map "a" }} {{ hasKey .map "z" }}"#,
            "true false",
        ),
        (r#"{{ pluck "a" .map (dict "a" 9) (dict "b" 1) }}"#, "[1 9]"),
        (
            r#"{{ keys .map | sortAlpha }} {{ values .map }}"#,
            "[a b c] [1 2 3]",
        ),
        (
            r#"{{ pick .map "a" "c" }} {{ omit .map "a" }}"#,
            "map[a:1 c:3] map[b:2 c:3]",
        ),
        (
            r#"{{ $dst := dict "a" 1 }}{{ $_ := merge $dst (dict "a" 2 "b" 3) }}{{ $dst }}"#,
            "map[a:1 b:3]",
        ),
        (
            r#"{{ $dst := dict "a" 1 }}{{ $_ := mergeOverwrite $dst (dict "a" 2 "b" 3) }}{{ $dst }}"#,
            "map[a:2 b:3]",
        ),
        (
            r#"{{ $c := deepCopy .map }}{{ $_ := set $c "a" 7 }}{{ $c.a }} {{ .map.a }}"#,
            "7 1",
        ),
        (r#"{{ dict "odd" }}"#, "map[odd:]"),
    ]);
}

#[test]
fn sprig_defaults_json_and_reflection() {
    check(&[
        (
            r#"{{ default "foo" .Bar }} {{ default "foo" "bar" }} {{ .Values.empty | default "d" }}"#,
            "foo bar d",
        ),
        (
            r#"{{ empty "" }} {{ empty .list }} {{ coalesce 0 "" 1 2 }} {{ ternary "foo" "bar" true }}"#,
            "true false 1 foo",
        ),
        (
            r#"{{ toJson .Values.app }}"#,
            r#"{"name":"web","port":8080,"tags":["v1","latest"]}"#,
        ),
        (r#"{{ toJson "<&>" }}"#, r#""\u003c\u0026\u003e""#),
        (
            r#"{{ toPrettyJson (dict "a" (list 1)) }}"#,
            "{\n  \"a\": [\n    1\n  ]\n}",
        ),
        (
            r#"{{ typeOf 1 }} {{ typeOf "x" }} {{ typeOf .list }} {{ typeOf .map }} {{ typeOf 1.5 }} {{ typeOf nil }}"#,
            "int string []interface {} map[string]interface {} float64 <nil>",
        ),
        (
            r#"{{ kindOf "x" }} {{ kindOf .list }} {{ kindOf .map }} {{ kindIs "int" 123 }} {{ typeIs "string" "x" }} {{ typeIsLike "string" "x" }}"#,
            "string slice map true true true",
        ),
        (
            r#"{{ deepEqual (list 1 2 3) (list 1 2 3) }} {{ deepEqual .map .list }}"#,
            "true false",
        ),
        (
            r#"{{ typeOf now }} {{ typeOf (semver "1.2.3") }}"#,
            "time.Time *semver.Version",
        ),
    ]);
    assert_eq!(
        exec_error(r#"{{ fail "please accept the end user license agreement" }}"#),
        "error calling fail: please accept the end user license agreement"
    );
}

#[test]
fn sprig_encodings_paths_urls() {
    check(&[
        (
            r#"{{ b64enc "Hello" }} {{ b64dec "SGVsbG8=" }} {{ b32enc "Hello" }} {{ b32dec "JBSWY3DP" }}"#,
            "SGVsbG8= Hello JBSWY3DP Hello",
        ),
        (
            r#"{{ sha256sum "Hello world!" }}"#,
            "c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a",
        ),
        (
            r#"{{ base "foo/bar/baz" }} {{ dir "foo/bar/baz" }} {{ clean "foo/bar/../baz" }} {{ ext "foo.bar" }} {{ isAbs "/x" }}"#,
            "baz foo/bar foo/baz .bar true",
        ),
        (
            r#"{{ (urlParse "proto://auth@host:80/path?query#fragment").hostname }}"#,
            "host",
        ),
        (
            r#"{{ urlJoin (dict "fragment" "fragment" "host" "host:80" "path" "/path" "query" "query" "scheme" "proto") }}"#,
            "proto://host:80/path?query#fragment",
        ),
    ]);
}

#[test]
fn sprig_semver() {
    check(&[
        (
            r#"{{ semverCompare "^1.2.0" "1.2.3" }} {{ semverCompare ">= 1.2, < 2" "2.0.0" }}"#,
            "true false",
        ),
        (
            r#"{{ $v := semver "1.2.3-alpha.1+123" }}{{ $v.Major }}.{{ $v.Minor }}.{{ $v.Patch }} {{ $v.Prerelease }} {{ $v.Metadata }} {{ $v }}"#,
            "1.2.3 alpha.1 123 1.2.3-alpha.1+123",
        ),
        (r#"{{ semver "v2" }}"#, "2.0.0"),
    ]);
    assert!(exec_error(r#"{{ semver "one" }}"#).contains("Invalid Semantic Version"));
}

#[test]
fn sprig_dates() {
    check(&[
        (
            r#"{{ toDate "2006-01-02" "2017-12-31" | date "02/01/2006" }}"#,
            "31/12/2017",
        ),
        (
            r#"{{ date "2006-01-02 15:04:05" 0 }} {{ htmlDate 86400 }}"#,
            "1970-01-01 00:00:00 1970-01-02",
        ),
        (
            r#"{{ dateInZone "2006-01-02 15:04 MST" 0 "America/New_York" }}"#,
            "1969-12-31 19:00 EST",
        ),
        (
            r#"{{ htmlDateInZone 0 "Asia/Tokyo" }} {{ dateInZone "15:04 MST" 0 "No/Such_Zone" }}"#,
            "1970-01-01 00:00 UTC",
        ),
        (
            r#"{{ toDate "2006-01-02" "2024-01-01" | dateModify "1.5h" | date "15:04" }}"#,
            "01:30",
        ),
        (
            r#"{{ toDate "2006-01-02" "2024-01-01" | dateModify "-1h" | date "2006-01-02T15:04:05Z07:00" }}"#,
            "2023-12-31T23:00:00Z",
        ),
        (
            r#"{{ toDate "2006-01-02" "2024-01-01" | dateModify "bogus" | date "2006" }}"#,
            "2024",
        ),
        (
            r#"{{ unixEpoch (toDate "2006-01-02" "2017-12-31") }}"#,
            "1514678400",
        ),
        (
            r#"{{ toDate "2006-01-02" "2017-12-31" }}"#,
            "2017-12-31 00:00:00 +0000 UTC",
        ),
        (
            r#"{{ toDate "2006-01-02" "not a date" }}"#,
            "0001-01-01 00:00:00 +0000 UTC",
        ),
        (r#"{{ ago now }}"#, "0s"),
    ]);
    let year = render(r#"{{ now | date "2006" }}"#, &data()).unwrap_or_default();
    assert!(year.len() == 4 && year.starts_with('2'), "{year}");
    assert!(exec_error(r#"{{ dateModify "1h" "2024" }}"#).contains("expected a time"));
}

#[test]
fn random_and_refused_functions() {
    let out = render(
        "{{ uuidv4 }} {{ randAlphaNum 12 }} {{ shuffle \"abc\" | len }}",
        &data(),
    )
    .unwrap_or_default();
    let parts: Vec<&str> = out.split(' ').collect();
    assert_eq!(parts[0].len(), 36, "{out}");
    assert_eq!(parts[1].len(), 12, "{out}");
    assert!(parts[1].bytes().all(|c| c.is_ascii_alphanumeric()), "{out}");
    assert_eq!(parts[2], "3", "{out}");
    for name in [
        "env \"HOME\"",
        "expandenv \"$HOME\"",
        "getHostByName \"x\"",
        "genPrivateKey \"rsa\"",
        "derivePassword 1 \"long\" \"p\" \"u\" \"s\"",
    ] {
        let e = exec_error(&format!("{{{{ {name} }}}}"));
        assert!(e.contains("is not available in crtask"), "{name}: {e}");
    }
    // defined, so a branch that is never taken renders as in ACR
    check(&[(r#"{{ if false }}{{ env "HOME" }}{{ end }}ok"#, "ok")]);
}
