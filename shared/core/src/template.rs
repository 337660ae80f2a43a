//! A Go `text/template` compatible renderer over [`serde_json::Value`].
//!
//! Used for image tags (`app:{{.Run.ID}}`) and for `acr-task.yaml` files
//! (`{{.Values.secret1 | b64enc}}`). The template is lexed, parsed into a
//! small AST and then evaluated; nothing here does I/O.
//!
//! # Syntax
//!
//! Text and actions `{{ ... }}`; trim markers `{{- ` and ` -}}` (the space is
//! required, as in Go); comments `{{/* ... */}}`; field chains `.Run.ID` on
//! maps; `.` itself; `$` and variables `$x := pipeline`, `$x = pipeline`;
//! string (`"..."` with Go escapes, and raw `` `...` ``), character (`'a'`),
//! number (decimal, `0x`, `0o`, `0b`, floats), `true`/`false` and `nil`
//! literals; pipelines `a | f b`; calls `f a b`; parenthesised pipelines, with
//! fields after them `(f x).Y`; `if`/`else if`/`else`/`end`,
//! `with`/`else with`/`else`/`end`, `range` (arrays, maps in key order,
//! integers; `$v :=` or `$i, $v :=`) with `else`, and `break`/`continue`.
//! `define`, `template` and `block` are not supported and are parse errors.
//!
//! # Semantics that differ from Go on purpose
//!
//! * A missing key or field (also nested, `.Values.a.b`, or a field of a
//!   non-map) is `nil`, and `nil` prints as the empty string (never
//!   `<no value>` or `<nil>`, never an error). Inside a printed list or map a
//!   `nil` element prints as `<nil>`.
//! * Comparisons treat `nil` as the zero value of the other operand (so
//!   `eq .Values.missing ""` is true, as with ACR's string-valued maps), and
//!   compare integers with floats by value.
//! * Functions that take strings accept any value and use its printed form;
//!   integer arguments may also be given as strings of digits (`.Values` are
//!   always strings).
//! * `substr` and `trunc` count characters, not bytes, and never fail on
//!   out-of-range bounds; `b64dec` fails on bad input instead of returning
//!   the error text as sprig does.
//!
//! # Functions
//!
//! Go builtins: `and or not eq ne lt le gt ge len index print printf println`
//! (`printf` knows the verbs `%v %s %d %q %t %f %F %e %E %g %G %x %X %o %b %c
//! %%` with the flags `- + 0 space`, width and precision).
//! Sprig-style: `default empty coalesce ternary lower upper title trim trimAll
//! trimPrefix trimSuffix replace contains hasPrefix hasSuffix quote squote
//! b64enc b64dec split splitList join repeat substr trunc indent nindent cat
//! toString toJson`, with sprig's argument order (`replace old new s`,
//! `trimPrefix prefix s`, `split sep s` gives a map `_0`, `_1`, ...).
//! Not provided: `html js urlquery slice call` and the rest of sprig.
//!
//! # Errors and limits
//!
//! Every error is [`crate::Error::Template`] and starts with `line:col` of
//! the place in the template (1-based; columns count characters). Parsing
//! rejects unknown functions, undefined variables and more than 64 levels
//! of nested blocks and parentheses. Rendering stops with an error past
//! 16 MiB of output or of any one value, or after 10 million steps.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

use crate::{Error, Result};

/// Deepest nesting of blocks and parentheses the parser accepts.
const MAX_DEPTH: usize = 64;
/// Largest output, and largest single string value, in bytes.
const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// Most evaluation steps (nodes, loop iterations, calls) of one render.
const MAX_STEPS: u64 = 10_000_000;
/// Most parts `split`/`splitList` may produce.
const MAX_PARTS: usize = 100_000;
/// Largest width or precision `printf` accepts (as Go's `fmt`).
const MAX_WIDTH: usize = 1_000_000;

/// Every function a template may call.
const FUNCS: &[&str] = &[
    // Go builtins
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "print",
    "printf",
    "println",
    // sprig-style
    "default",
    "empty",
    "coalesce",
    "ternary",
    "lower",
    "upper",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "b64enc",
    "b64dec",
    "split",
    "splitList",
    "join",
    "repeat",
    "substr",
    "trunc",
    "indent",
    "nindent",
    "cat",
    "toString",
    "toJson",
];

/// Words that start or end a control structure and cannot be operands.
const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "break", "continue", "define", "template", "block",
];

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// A parsed template, ready to be rendered any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `src`. Fails with [`Error::Template`] naming `line:col` and
    /// the problem (unclosed action, unexpected `{{end}}`, unknown function,
    /// undefined variable, ...).
    pub fn parse(src: &str) -> Result<Template> {
        let toks = Lexer::new(src).run()?;
        let mut parser = Parser {
            toks,
            i: 0,
            vars: vec!["$".to_string()],
            depth: 0,
            range_depth: 0,
        };
        let (nodes, stop) = parser.parse_list()?;
        match stop {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End(p) => Err(err(p, "unexpected {{end}}")),
            Stop::Else(p) => Err(err(p, "unexpected {{else}}")),
            Stop::ElseIf(p) => Err(err(p, "unexpected {{else if}}")),
            Stop::ElseWith(p) => Err(err(p, "unexpected {{else with}}")),
        }
    }

    /// Renders the template with `data` as `.` (and `$`).
    pub fn render(&self, data: &Value) -> Result<String> {
        let mut exec = Exec {
            out: String::new(),
            vars: vec![("$".to_string(), data.clone())],
            steps: 0,
        };
        exec.walk(data, &self.nodes)?;
        Ok(exec.out)
    }
}

/// Parses and renders `src` with `data` in one go.
pub fn render(src: &str, data: &Value) -> Result<String> {
    Template::parse(src)?.render(data)
}

/// The variables of one run, as `{{.Run.X}}` sees them.
#[derive(Debug, Clone)]
pub struct RunVars {
    /// Run id (`ca1`); also `{{.Build.ID}}`.
    pub id: String,
    /// Registry host (`roo.azurecr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// When the run was created.
    pub date: DateTime<Utc>,
    /// Target operating system (`linux`).
    pub os: String,
    /// Target architecture (`amd64`).
    pub architecture: String,
    /// Source commit, if known.
    pub commit: String,
    /// Source branch, if known.
    pub branch: String,
    /// Name of the task, empty for quick runs.
    pub task_name: String,
    /// Name of the volume shared by the steps of a run.
    pub shared_volume: String,
    /// Source repository, if known.
    pub repository: String,
    /// Git tag that triggered the run, if any.
    pub git_tag: String,
    /// What triggered the run (`manual`, `commit`, ...).
    pub triggered_by: String,
}

impl Default for RunVars {
    /// All strings empty, `date` the Unix epoch.
    fn default() -> Self {
        RunVars {
            id: String::new(),
            registry: String::new(),
            date: DateTime::<Utc>::UNIX_EPOCH,
            os: String::new(),
            architecture: String::new(),
            commit: String::new(),
            branch: String::new(),
            task_name: String::new(),
            shared_volume: String::new(),
            repository: String::new(),
            git_tag: String::new(),
            triggered_by: String::new(),
        }
    }
}

impl RunVars {
    /// `{"Run": {ID, Registry, RegistryName, Date, OS, Architecture, Commit, Branch, TaskName,
    ///   SharedVolume, Repository, GitTag, TriggeredBy}, "Build": {"ID"}, "Values": values}`
    ///
    /// `RegistryName` is the text before the first `.` of `Registry`; `Date`
    /// is [`run_date`].
    pub fn to_data(&self, values: &BTreeMap<String, String>) -> Value {
        let registry_name = self
            .registry
            .split_once('.')
            .map_or(self.registry.as_str(), |(name, _)| name);
        let run = [
            ("ID", self.id.as_str()),
            ("Registry", self.registry.as_str()),
            ("RegistryName", registry_name),
            ("Date", run_date(self.date).as_str()),
            ("OS", self.os.as_str()),
            ("Architecture", self.architecture.as_str()),
            ("Commit", self.commit.as_str()),
            ("Branch", self.branch.as_str()),
            ("TaskName", self.task_name.as_str()),
            ("SharedVolume", self.shared_volume.as_str()),
            ("Repository", self.repository.as_str()),
            ("GitTag", self.git_tag.as_str()),
            ("TriggeredBy", self.triggered_by.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect::<Map<String, Value>>();
        let mut build = Map::new();
        build.insert("ID".to_string(), Value::String(self.id.clone()));
        let values = values
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>();
        let mut data = Map::new();
        data.insert("Run".to_string(), Value::Object(run));
        data.insert("Build".to_string(), Value::Object(build));
        data.insert("Values".to_string(), Value::Object(values));
        Value::Object(data)
    }
}

/// Format of `{{.Run.Date}}`: UTC `yyyyMMdd-HHmmss` and a literal `z`,
/// e.g. `20100520-131422z`.
pub fn run_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d-%H%M%Sz").to_string()
}

// ---------------------------------------------------------------------------
// Positions and errors
// ---------------------------------------------------------------------------

/// A 1-based line and column (in characters) in the template source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

fn err(pos: Pos, msg: impl fmt::Display) -> Error {
    Error::Template(format!("{pos}: {msg}"))
}

// ---------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Open,
    Close,
    Pipe,
    LParen,
    RParen,
    Comma,
    Declare,
    Assign,
    Dot,
    /// `.name` (without the dot)
    Field(String),
    /// `$` or `$name` (with the dollar)
    Var(String),
    Ident(String),
    Str(String),
    /// number or character literal, already converted
    Number(Value, String),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: Pos,
    /// whitespace separates this token from the one before it
    space_before: bool,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Text(_) => "text".to_string(),
        Tok::Open => "\"{{\"".to_string(),
        Tok::Close => "\"}}\"".to_string(),
        Tok::Pipe => "\"|\"".to_string(),
        Tok::LParen => "\"(\"".to_string(),
        Tok::RParen => "\")\"".to_string(),
        Tok::Comma => "\",\"".to_string(),
        Tok::Declare => "\":=\"".to_string(),
        Tok::Assign => "\"=\"".to_string(),
        Tok::Dot => "\".\"".to_string(),
        Tok::Field(name) => format!("\".{name}\""),
        Tok::Var(name) | Tok::Ident(name) => format!("\"{name}\""),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Number(_, text) => format!("number {text}"),
        Tok::Eof => "end of template".to_string(),
    }
}

/// Go's `isSpace` inside and around actions.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

struct Lexer {
    chars: Vec<char>,
    /// char index where each line starts
    line_starts: Vec<usize>,
    i: usize,
    toks: Vec<Token>,
}

impl Lexer {
    fn new(src: &str) -> Lexer {
        let chars: Vec<char> = src.chars().collect();
        let mut line_starts = vec![0];
        for (i, c) in chars.iter().enumerate() {
            if *c == '\n' {
                line_starts.push(i + 1);
            }
        }
        Lexer {
            chars,
            line_starts,
            i: 0,
            toks: Vec::new(),
        }
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn starts_with(&self, i: usize, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(k, c)| self.at(i + k) == Some(c))
    }

    fn find(&self, from: usize, s: &str) -> Option<usize> {
        (from..self.chars.len()).find(|&i| self.starts_with(i, s))
    }

    fn pos(&self, i: usize) -> Pos {
        let line = self.line_starts.partition_point(|&s| s <= i).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        Pos {
            line,
            col: i.saturating_sub(start) + 1,
        }
    }

    fn slice(&self, from: usize, to: usize) -> String {
        self.chars.get(from..to).unwrap_or(&[]).iter().collect()
    }

    fn push(&mut self, tok: Tok, at: usize, space_before: bool) {
        let pos = self.pos(at);
        self.toks.push(Token {
            tok,
            pos,
            space_before,
        });
    }

    fn run(mut self) -> Result<Vec<Token>> {
        let mut trim_next = false;
        loop {
            let open = self.find(self.i, "{{");
            let end = open.unwrap_or(self.chars.len());
            let mut start = self.i;
            let mut stop = end;
            if trim_next {
                while start < stop && self.at(start).is_some_and(is_space) {
                    start += 1;
                }
            }
            let trim_left = open.is_some()
                && self.at(end + 2) == Some('-')
                && self.at(end + 3).is_some_and(is_space);
            if trim_left {
                while stop > start && self.at(stop - 1).is_some_and(is_space) {
                    stop -= 1;
                }
            }
            if stop > start {
                let text = self.slice(start, stop);
                self.push(Tok::Text(text), start, false);
            }
            let Some(open) = open else {
                let len = self.chars.len();
                self.push(Tok::Eof, len, false);
                return Ok(self.toks);
            };
            let inner = open + if trim_left { 4 } else { 2 };
            if self.starts_with(inner, "/*") {
                let Some(close) = self.find(inner + 2, "*/") else {
                    return Err(err(self.pos(open), "unclosed comment"));
                };
                let after = close + 2;
                if self.at(after).is_some_and(is_space)
                    && self.at(after + 1) == Some('-')
                    && self.starts_with(after + 2, "}}")
                {
                    self.i = after + 4;
                    trim_next = true;
                } else if self.starts_with(after, "}}") {
                    self.i = after + 2;
                    trim_next = false;
                } else {
                    return Err(err(
                        self.pos(close),
                        "comment ends before closing delimiter",
                    ));
                }
                continue;
            }
            self.push(Tok::Open, open, false);
            self.i = inner;
            trim_next = self.lex_action(open)?;
        }
    }

    /// Lexes the inside of one action; returns whether it ended with ` -}}`.
    fn lex_action(&mut self, open: usize) -> Result<bool> {
        let mut space = false;
        loop {
            let i = self.i;
            match self.at(i) {
                None => return Err(err(self.pos(open), "unclosed action")),
                Some(c) if is_space(c) => {
                    if self.at(i + 1) == Some('-') && self.starts_with(i + 2, "}}") {
                        self.push(Tok::Close, i + 1, true);
                        self.i = i + 4;
                        return Ok(true);
                    }
                    self.i = i + 1;
                    space = true;
                }
                Some('}') if self.at(i + 1) == Some('}') => {
                    self.push(Tok::Close, i, space);
                    self.i = i + 2;
                    return Ok(false);
                }
                Some(c) => {
                    self.lex_token(c, space)?;
                    space = false;
                }
            }
        }
    }

    /// True when the character at `i` may follow a name.
    fn at_terminator(&self, i: usize) -> bool {
        match self.at(i) {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(' | '=') => true,
            Some('}') => self.at(i + 1) == Some('}'),
            Some(_) => false,
        }
    }

    fn scan_name(&self, from: usize) -> usize {
        let mut j = from;
        while self.at(j).is_some_and(is_alnum) {
            j += 1;
        }
        j
    }

    fn check_terminator(&self, j: usize, name: &str) -> Result<()> {
        if self.at_terminator(j) {
            return Ok(());
        }
        let c = self.at(j).unwrap_or(' ');
        let hint = if name.starts_with('.') {
            " (use index for keys that are not identifiers)"
        } else {
            ""
        };
        Err(err(
            self.pos(j),
            format!("unexpected character {c:?} after {name:?}{hint}"),
        ))
    }

    fn lex_token(&mut self, c: char, space: bool) -> Result<()> {
        let i = self.i;
        let pos = self.pos(i);
        let simple = match c {
            '|' => Some(Tok::Pipe),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Assign),
            _ => None,
        };
        if let Some(tok) = simple {
            self.push(tok, i, space);
            self.i = i + 1;
            return Ok(());
        }
        match c {
            ':' => {
                if self.at(i + 1) != Some('=') {
                    return Err(err(pos, "expected :="));
                }
                self.push(Tok::Declare, i, space);
                self.i = i + 2;
            }
            '"' => {
                let mut j = i + 1;
                loop {
                    match self.at(j) {
                        None | Some('\n') => {
                            return Err(err(pos, "unterminated quoted string"));
                        }
                        Some('\\') => {
                            if matches!(self.at(j + 1), None | Some('\n')) {
                                return Err(err(pos, "unterminated quoted string"));
                            }
                            j += 2;
                        }
                        Some('"') => break,
                        Some(_) => j += 1,
                    }
                }
                let body = self.chars.get(i + 1..j).unwrap_or(&[]);
                let s = unescape(body, '"').map_err(|m| err(pos, m))?;
                self.push(Tok::Str(s), i, space);
                self.i = j + 1;
            }
            '`' => {
                let Some(j) = self.find(i + 1, "`") else {
                    return Err(err(pos, "unterminated raw quoted string"));
                };
                let s = self.slice(i + 1, j);
                self.push(Tok::Str(s), i, space);
                self.i = j + 1;
            }
            '\'' => {
                let mut j = i + 1;
                loop {
                    match self.at(j) {
                        None | Some('\n') => {
                            return Err(err(pos, "unterminated character constant"));
                        }
                        Some('\\') => {
                            if matches!(self.at(j + 1), None | Some('\n')) {
                                return Err(err(pos, "unterminated character constant"));
                            }
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(_) => j += 1,
                    }
                }
                let body = self.chars.get(i + 1..j).unwrap_or(&[]);
                let text = self.slice(i, j + 1);
                let s = unescape(body, '\'').map_err(|m| err(pos, m))?;
                let mut it = s.chars();
                let (Some(ch), None) = (it.next(), it.next()) else {
                    return Err(err(pos, format!("malformed character constant {text}")));
                };
                self.push(Tok::Number(Value::from(ch as u32), text), i, space);
                self.i = j + 1;
            }
            '$' => {
                let j = self.scan_name(i + 1);
                let name = self.slice(i, j);
                self.check_terminator(j, &name)?;
                self.push(Tok::Var(name), i, space);
                self.i = j;
            }
            '.' if !self.at(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                let j = self.scan_name(i + 1);
                let name = self.slice(i + 1, j);
                let tok = if name.is_empty() {
                    Tok::Dot
                } else {
                    Tok::Field(name.clone())
                };
                self.check_terminator(j, &format!(".{name}"))?;
                self.push(tok, i, space);
                self.i = j;
            }
            '.' | '+' | '-' | '0'..='9' => {
                let j = self.scan_number(i);
                let text = self.slice(i, j);
                if self.at(j).is_some_and(is_alnum) || j == i {
                    let bad = self.slice(i, j + 1);
                    return Err(err(pos, format!("bad number syntax: {bad:?}")));
                }
                let value = parse_number(&text).map_err(|m| err(pos, m))?;
                self.push(Tok::Number(value, text), i, space);
                self.i = j;
            }
            c if c == '_' || c.is_alphabetic() => {
                let j = self.scan_name(i);
                let name = self.slice(i, j);
                self.check_terminator(j, &name)?;
                self.push(Tok::Ident(name), i, space);
                self.i = j;
            }
            c => {
                return Err(err(pos, format!("unexpected character {c:?} in action")));
            }
        }
        Ok(())
    }

    /// Go's `scanNumber`: returns the end of the longest number-like run.
    fn scan_number(&self, from: usize) -> usize {
        let mut j = from;
        let accept = |j: &mut usize, set: &str| -> bool {
            match self.at(*j) {
                Some(c) if set.contains(c) => {
                    *j += 1;
                    true
                }
                _ => false,
            }
        };
        accept(&mut j, "+-");
        let mut digits = "0123456789_";
        if accept(&mut j, "0") {
            if accept(&mut j, "xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if accept(&mut j, "oO") {
                digits = "01234567_";
            } else if accept(&mut j, "bB") {
                digits = "01_";
            }
        }
        while accept(&mut j, digits) {}
        if accept(&mut j, ".") {
            while accept(&mut j, digits) {}
        }
        if digits.len() == 11 && accept(&mut j, "eE") {
            accept(&mut j, "+-");
            while accept(&mut j, "0123456789_") {}
        }
        if digits.len() == 23 && accept(&mut j, "pP") {
            accept(&mut j, "+-");
            while accept(&mut j, "0123456789_") {}
        }
        accept(&mut j, "i");
        j
    }
}

/// Decodes the Go escapes of a quoted string or character body.
fn unescape(body: &[char], quote: char) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut it = body.iter().copied();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            return Err("unterminated escape sequence".to_string());
        };
        let mut hex = |n: usize, what: &str| -> std::result::Result<u32, String> {
            let mut v: u32 = 0;
            for _ in 0..n {
                let d = it
                    .next()
                    .and_then(|d| d.to_digit(16))
                    .ok_or_else(|| format!("invalid {what} escape"))?;
                v = v * 16 + d;
            }
            Ok(v)
        };
        let ch = match e {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            q if q == quote => q,
            'x' => ascii_escape(hex(2, "\\x")?)?,
            'u' => char::from_u32(hex(4, "\\u")?).ok_or("invalid \\u escape")?,
            'U' => char::from_u32(hex(8, "\\U")?).ok_or("invalid \\U escape")?,
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = it
                        .next()
                        .and_then(|d| d.to_digit(8))
                        .ok_or("invalid octal escape")?;
                    v = v * 8 + d;
                }
                ascii_escape(v)?
            }
            other => return Err(format!("unknown escape sequence \\{other}")),
        };
        out.push(ch);
    }
    Ok(out)
}

/// `\x` and octal escapes name bytes; only ASCII ones make valid text.
fn ascii_escape(v: u32) -> std::result::Result<char, String> {
    if v > 0x7f {
        return Err(format!(
            "byte escape \\x{v:02x} is not valid utf-8; use \\u00{v:02x}"
        ));
    }
    char::from_u32(v).ok_or_else(|| "invalid escape".to_string())
}

/// Converts the text of a number literal, with Go's rules: integers stay
/// integers, anything with `.`/`e` is a float.
fn parse_number(text: &str) -> std::result::Result<Value, String> {
    let bad = || format!("bad number syntax: {text:?}");
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    if clean.ends_with('i') {
        return Err(format!("complex number {text} is not supported"));
    }
    let lower = clean.to_ascii_lowercase();
    let radix_body = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find_map(|(p, r)| lower.strip_prefix(p).map(|rest| (r, rest)));
    let magnitude: u64 = if let Some((radix, digits)) = radix_body {
        if radix == 16 && (digits.contains('.') || digits.contains('p')) {
            return Err(format!("hexadecimal float {text} is not supported"));
        }
        u64::from_str_radix(digits, radix).map_err(|_| bad())?
    } else if lower.contains(['.', 'e']) {
        let f: f64 = clean.parse().map_err(|_| bad())?;
        let f = if neg { -f } else { f };
        if !f.is_finite() {
            return Err(format!("number {text} is out of range"));
        }
        return Number::from_f64(f).map(Value::Number).ok_or_else(bad);
    } else if let Some(octal) = clean.strip_prefix('0').filter(|rest| !rest.is_empty()) {
        u64::from_str_radix(octal, 8).map_err(|_| bad())?
    } else {
        clean.parse::<u64>().map_err(|e| {
            if clean.chars().all(|c| c.is_ascii_digit()) && !clean.is_empty() {
                format!("number {text} is out of range: {e}")
            } else {
                bad()
            }
        })?
    };
    if !neg {
        return Ok(Value::from(magnitude));
    }
    let v = -i128::from(magnitude);
    i64::try_from(v)
        .map(Value::from)
        .map_err(|_| format!("number {text} is out of range"))
}

// ---------------------------------------------------------------------------
// AST and parser
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    Text(Pos, String),
    Action(Pos, Pipe),
    If(Block),
    With(Block),
    Range(Block),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Block {
    pipe: Pipe,
    body: Vec<Node>,
    otherwise: Vec<Node>,
}

#[derive(Debug, Clone)]
struct Pipe {
    pos: Pos,
    decl: Vec<String>,
    is_assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    pos: Pos,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Nil,
    Lit(Value),
    /// `.A.B` on dot
    Field(Vec<String>),
    /// `$x.A.B`
    Var(String, Vec<String>),
    Func(String, Pos),
    Pipe(Box<Pipe>),
    /// `(pipe).A.B` or `func.A`
    Chain(Box<Arg>, Vec<String>),
}

fn describe_arg(arg: &Arg) -> String {
    match arg {
        Arg::Dot => ".".to_string(),
        Arg::Nil => "nil".to_string(),
        Arg::Lit(v) => match v {
            Value::String(s) => format!("{s:?}"),
            other => display(other),
        },
        Arg::Field(f) => format!(".{}", f.join(".")),
        Arg::Var(name, f) if f.is_empty() => name.clone(),
        Arg::Var(name, f) => format!("{name}.{}", f.join(".")),
        Arg::Func(name, _) => name.clone(),
        Arg::Pipe(_) => "(...)".to_string(),
        Arg::Chain(base, f) => format!("{}.{}", describe_arg(base), f.join(".")),
    }
}

/// Why a list of nodes ended.
enum Stop {
    End(Pos),
    Else(Pos),
    ElseIf(Pos),
    ElseWith(Pos),
    Eof,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    If,
    With,
    Range,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        }
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// variables in scope, innermost last
    vars: Vec<String>,
    depth: usize,
    range_depth: usize,
}

impl Parser {
    fn peek_at(&self, k: usize) -> Option<&Token> {
        self.toks.get(self.i + k)
    }

    fn peek_tok(&self) -> &Tok {
        self.peek_at(0).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn peek_pos(&self) -> Pos {
        self.peek_at(0)
            .or_else(|| self.toks.last())
            .map_or(Pos { line: 1, col: 1 }, |t| t.pos)
    }

    fn next(&mut self) -> Token {
        let t = self.toks.get(self.i).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            pos: self.peek_pos(),
            space_before: false,
        });
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn enter(&mut self, pos: Pos) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                pos,
                format!("blocks or parentheses nested more than {MAX_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    fn expect_close(&mut self, what: &str) -> Result<()> {
        let t = self.next();
        if t.tok == Tok::Close {
            Ok(())
        } else {
            Err(err(
                t.pos,
                format!("unexpected {} in {{{{{what}}}}}", describe(&t.tok)),
            ))
        }
    }

    fn parse_list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Text(s) => nodes.push(Node::Text(t.pos, s)),
                Tok::Eof => return Ok((nodes, Stop::Eof)),
                Tok::Open => {
                    let open = t.pos;
                    let word = match self.peek_tok() {
                        Tok::Ident(w) => w.clone(),
                        _ => String::new(),
                    };
                    match word.as_str() {
                        "end" => {
                            self.next();
                            self.expect_close("end")?;
                            return Ok((nodes, Stop::End(open)));
                        }
                        "else" => {
                            self.next();
                            match self.peek_tok() {
                                Tok::Ident(w) if w == "if" => {
                                    self.next();
                                    return Ok((nodes, Stop::ElseIf(open)));
                                }
                                Tok::Ident(w) if w == "with" => {
                                    self.next();
                                    return Ok((nodes, Stop::ElseWith(open)));
                                }
                                _ => {
                                    self.expect_close("else")?;
                                    return Ok((nodes, Stop::Else(open)));
                                }
                            }
                        }
                        "if" | "with" | "range" => {
                            self.next();
                            let kind = match word.as_str() {
                                "if" => Kind::If,
                                "with" => Kind::With,
                                _ => Kind::Range,
                            };
                            nodes.push(self.parse_control(kind, open)?);
                        }
                        "break" | "continue" => {
                            self.next();
                            if self.range_depth == 0 {
                                return Err(err(
                                    open,
                                    format!("{{{{{word}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            self.expect_close(&word)?;
                            nodes.push(if word == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        "define" | "template" | "block" => {
                            return Err(err(open, format!("{{{{{word}}}}} is not supported")));
                        }
                        _ => {
                            let pipe = self.parse_pipeline("command", false)?;
                            nodes.push(Node::Action(open, pipe));
                        }
                    }
                }
                other => {
                    return Err(err(t.pos, format!("unexpected {}", describe(&other))));
                }
            }
        }
    }

    fn parse_control(&mut self, kind: Kind, open: Pos) -> Result<Node> {
        self.enter(open)?;
        let mark = self.vars.len();
        let pipe = self.parse_pipeline(kind.name(), false)?;
        let after_pipe = self.vars.len();
        if kind == Kind::Range {
            self.range_depth += 1;
        }
        let (body, stop) = self.parse_list()?;
        if kind == Kind::Range {
            self.range_depth -= 1;
        }
        self.vars.truncate(after_pipe);
        let unclosed = || {
            err(
                open,
                format!("unclosed {{{{{}}}}}: missing {{{{end}}}}", kind.name()),
            )
        };
        let otherwise = match stop {
            Stop::End(_) => Vec::new(),
            Stop::Eof => return Err(unclosed()),
            Stop::Else(_) => {
                let (list, stop) = self.parse_list()?;
                match stop {
                    Stop::End(_) => list,
                    Stop::Eof => return Err(unclosed()),
                    Stop::Else(p) | Stop::ElseIf(p) | Stop::ElseWith(p) => {
                        return Err(err(
                            p,
                            format!(
                                "unexpected {{{{else}}}} after {{{{else}}}} in {{{{{}}}}}",
                                kind.name()
                            ),
                        ));
                    }
                }
            }
            Stop::ElseIf(p) if kind == Kind::If => vec![self.parse_control(Kind::If, p)?],
            Stop::ElseWith(p) if kind == Kind::With => vec![self.parse_control(Kind::With, p)?],
            Stop::ElseIf(p) | Stop::ElseWith(p) => {
                return Err(err(
                    p,
                    format!(
                        "{{{{else if}}}} and {{{{else with}}}} are not allowed in {{{{{}}}}}",
                        kind.name()
                    ),
                ));
            }
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        let block = Block {
            pipe,
            body,
            otherwise,
        };
        Ok(match kind {
            Kind::If => Node::If(block),
            Kind::With => Node::With(block),
            Kind::Range => Node::Range(block),
        })
    }

    fn check_var(&self, name: &str, pos: Pos) -> Result<()> {
        if self.vars.iter().any(|v| v == name) {
            Ok(())
        } else {
            Err(err(pos, format!("undefined variable \"{name}\"")))
        }
    }

    /// Parses `[decl :=] cmd | cmd ...` up to and including `}}` (or `)`
    /// when `in_paren`).
    fn parse_pipeline(&mut self, context: &str, in_paren: bool) -> Result<Pipe> {
        let pos = self.peek_pos();
        let mut decl = Vec::new();
        let mut is_assign = false;
        if let Tok::Var(first) = self.peek_tok().clone() {
            let first_pos = self.peek_pos();
            match self.peek_at(1).map(|t| &t.tok) {
                Some(Tok::Declare | Tok::Assign) => {
                    is_assign = self.peek_at(1).is_some_and(|t| t.tok == Tok::Assign);
                    self.i += 2;
                    if is_assign {
                        self.check_var(&first, first_pos)?;
                    }
                    decl.push(first);
                }
                Some(Tok::Comma) => {
                    if context != "range" {
                        return Err(err(
                            first_pos,
                            format!("too many declarations in {context}"),
                        ));
                    }
                    self.i += 2;
                    let second = self.next();
                    let op = self.next();
                    let Tok::Var(second_name) = second.tok else {
                        return Err(err(second.pos, "range can only initialize variables"));
                    };
                    is_assign = match op.tok {
                        Tok::Declare => false,
                        Tok::Assign => true,
                        other => {
                            return Err(err(
                                op.pos,
                                format!(
                                    "expected := or = after range variables, found {}",
                                    describe(&other)
                                ),
                            ))
                        }
                    };
                    if is_assign {
                        self.check_var(&first, first_pos)?;
                        self.check_var(&second_name, second.pos)?;
                    }
                    decl.push(first);
                    decl.push(second_name);
                }
                _ => {}
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd_pos = self.peek_pos();
            let cmd = self.parse_command()?;
            if cmd.args.is_empty() {
                let msg = if cmds.is_empty() {
                    format!("missing value for {context}")
                } else {
                    "missing command after \"|\"".to_string()
                };
                return Err(err(cmd_pos, msg));
            }
            cmds.push(cmd);
            let t = self.next();
            match t.tok {
                Tok::Pipe => continue,
                Tok::Close if !in_paren => break,
                Tok::RParen if in_paren => break,
                Tok::Close => return Err(err(t.pos, "unclosed left paren")),
                Tok::RParen => return Err(err(t.pos, "unexpected right paren")),
                other => {
                    return Err(err(
                        t.pos,
                        format!("unexpected {} in {context}", describe(&other)),
                    ));
                }
            }
        }
        for (stage, cmd) in cmds.iter().enumerate().skip(1) {
            if matches!(cmd.args.first(), Some(Arg::Dot | Arg::Nil | Arg::Lit(_))) {
                return Err(err(
                    cmd.pos,
                    format!("non executable command in pipeline stage {}", stage + 1),
                ));
            }
        }
        if !is_assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe {
            pos,
            decl,
            is_assign,
            cmds,
        })
    }

    /// Parses operands up to (not including) `|`, `)` or `}}`.
    fn parse_command(&mut self) -> Result<Cmd> {
        let pos = self.peek_pos();
        let mut args = Vec::new();
        while let Some(t) = self.peek_at(0) {
            if matches!(t.tok, Tok::Pipe | Tok::Close | Tok::RParen | Tok::Eof) {
                break;
            }
            if !args.is_empty() && !t.space_before {
                return Err(err(
                    t.pos,
                    format!("unexpected {} in operand", describe(&t.tok)),
                ));
            }
            args.push(self.parse_operand()?);
        }
        Ok(Cmd { pos, args })
    }

    fn parse_operand(&mut self) -> Result<Arg> {
        let t = self.next();
        let arg = match t.tok {
            Tok::Ident(name) => match name.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Nil,
                w if KEYWORDS.contains(&w) => {
                    return Err(err(t.pos, format!("unexpected {{{{{w}}}}} in command")));
                }
                f if FUNCS.contains(&f) => Arg::Func(name, t.pos),
                _ => return Err(err(t.pos, format!("function \"{name}\" not defined"))),
            },
            Tok::Dot => Arg::Dot,
            Tok::Field(name) => Arg::Field(vec![name]),
            Tok::Var(name) => {
                self.check_var(&name, t.pos)?;
                Arg::Var(name, Vec::new())
            }
            Tok::Str(s) => Arg::Lit(Value::String(s)),
            Tok::Number(v, _) => Arg::Lit(v),
            Tok::LParen => {
                self.enter(t.pos)?;
                let pipe = self.parse_pipeline("parenthesized pipeline", true)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe))
            }
            other => {
                return Err(err(
                    t.pos,
                    format!("unexpected {} in operand", describe(&other)),
                ));
            }
        };
        let mut fields = Vec::new();
        while let Some(Token {
            tok: Tok::Field(name),
            space_before: false,
            ..
        }) = self.peek_at(0)
        {
            fields.push(name.clone());
            self.i += 1;
        }
        if fields.is_empty() {
            return Ok(arg);
        }
        Ok(match arg {
            Arg::Field(mut names) => {
                names.extend(fields);
                Arg::Field(names)
            }
            Arg::Var(name, mut names) => {
                names.extend(fields);
                Arg::Var(name, names)
            }
            Arg::Dot | Arg::Nil | Arg::Lit(_) => {
                return Err(err(
                    t.pos,
                    format!("unexpected . after term {}", describe_arg(&arg)),
                ));
            }
            other => Arg::Chain(Box::new(other), fields),
        })
    }
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec {
    out: String,
    /// variables in scope, innermost last
    vars: Vec<(String, Value)>,
    steps: u64,
}

impl Exec {
    fn tick(&mut self, pos: Pos) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(err(
                pos,
                format!("template execution took more than {MAX_STEPS} steps"),
            ));
        }
        Ok(())
    }

    fn write(&mut self, pos: Pos, s: &str) -> Result<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(err(pos, "output is larger than the 16 MiB limit"));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn lookup(&self, name: &str, pos: Pos) -> Result<&Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| err(pos, format!("undefined variable \"{name}\"")))
    }

    fn set_var(&mut self, name: &str, value: Value, pos: Pos) -> Result<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(err(pos, format!("undefined variable \"{name}\""))),
        }
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow> {
        for node in nodes {
            match node {
                Node::Text(pos, s) => {
                    self.tick(*pos)?;
                    self.write(*pos, s)?;
                }
                Node::Action(pos, pipe) => {
                    self.tick(*pos)?;
                    let v = self.eval_pipe(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.write(*pos, &display(&v))?;
                    }
                }
                Node::If(b) | Node::With(b) => {
                    self.tick(b.pipe.pos)?;
                    let mark = self.vars.len();
                    let flow = self.eval_pipe(dot, &b.pipe).and_then(|v| {
                        if !truthy(&v) {
                            self.walk(dot, &b.otherwise)
                        } else if matches!(node, Node::With(_)) {
                            self.walk(&v, &b.body)
                        } else {
                            self.walk(dot, &b.body)
                        }
                    });
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        other => return Ok(other),
                    }
                }
                Node::Range(b) => {
                    let mark = self.vars.len();
                    let r = self.walk_range(dot, b);
                    self.vars.truncate(mark);
                    r?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_range(&mut self, dot: &Value, b: &Block) -> Result<()> {
        let pos = b.pipe.pos;
        self.tick(pos)?;
        let value = self.eval_cmds(dot, &b.pipe)?;
        let items: Vec<(Value, Value)> = match value {
            Value::Null => Vec::new(),
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v))
                .collect(),
            Value::Object(m) => {
                let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
                pairs.sort_by(|x, y| x.0.cmp(&y.0));
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect()
            }
            Value::Number(n) => {
                let Some(count) = n.as_i64() else {
                    return Err(err(pos, format!("range can't iterate over {n}")));
                };
                if b.pipe.decl.len() > 1 {
                    return Err(err(
                        pos,
                        format!("can't use {count} to iterate over more than one variable"),
                    ));
                }
                return self.range_int(dot, b, count);
            }
            other => {
                return Err(err(
                    pos,
                    format!("range can't iterate over {}", type_name(&other)),
                ))
            }
        };
        if items.is_empty() {
            self.walk(dot, &b.otherwise)?;
            return Ok(());
        }
        for (key, elem) in items {
            if let Flow::Break = self.iteration(b, key, elem)? {
                break;
            }
        }
        Ok(())
    }

    fn range_int(&mut self, dot: &Value, b: &Block, count: i64) -> Result<()> {
        if count <= 0 {
            self.walk(dot, &b.otherwise)?;
            return Ok(());
        }
        for i in 0..count {
            let v = Value::from(i);
            if let Flow::Break = self.iteration(b, v.clone(), v)? {
                break;
            }
        }
        Ok(())
    }

    fn iteration(&mut self, b: &Block, key: Value, elem: Value) -> Result<Flow> {
        let pos = b.pipe.pos;
        self.tick(pos)?;
        let mark = self.vars.len();
        let r = (|| {
            match (b.pipe.decl.as_slice(), b.pipe.is_assign) {
                ([], _) => {}
                ([v], false) => self.vars.push((v.clone(), elem.clone())),
                ([v], true) => self.set_var(v, elem.clone(), pos)?,
                ([k, v, ..], false) => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), elem.clone()));
                }
                ([k, v, ..], true) => {
                    self.set_var(k, key, pos)?;
                    self.set_var(v, elem.clone(), pos)?;
                }
            }
            self.walk(&elem, &b.body)
        })();
        self.vars.truncate(mark);
        r
    }

    /// Runs the commands of a pipeline, ignoring its declarations.
    fn eval_cmds(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value> {
        let mut last: Option<Value> = None;
        for cmd in &pipe.cmds {
            last = Some(self.eval_cmd(dot, cmd, last.take())?);
        }
        Ok(last.unwrap_or(Value::Null))
    }

    fn eval_pipe(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value> {
        let v = self.eval_cmds(dot, pipe)?;
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, v.clone(), pipe.pos)?;
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_cmd(&mut self, dot: &Value, cmd: &Cmd, last: Option<Value>) -> Result<Value> {
        let Some((first, rest)) = cmd.args.split_first() else {
            return Err(err(cmd.pos, "missing value for command"));
        };
        if let Arg::Func(name, pos) = first {
            return self.call(dot, name, *pos, rest, last);
        }
        if !rest.is_empty() || last.is_some() {
            return Err(err(
                cmd.pos,
                format!(
                    "can't give argument to non-function {}",
                    describe_arg(first)
                ),
            ));
        }
        if let Arg::Nil = first {
            return Err(err(cmd.pos, "nil is not a command"));
        }
        self.eval_arg(dot, first, cmd.pos)
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg, pos: Pos) -> Result<Value> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Null,
            Arg::Lit(v) => v.clone(),
            Arg::Field(names) => fields(dot, names),
            Arg::Var(name, names) => fields(self.lookup(name, pos)?, names),
            Arg::Func(name, fpos) => self.call(dot, name, *fpos, &[], None)?,
            Arg::Pipe(pipe) => self.eval_pipe(dot, pipe)?,
            Arg::Chain(base, names) => {
                let v = self.eval_arg(dot, base, pos)?;
                fields(&v, names)
            }
        })
    }

    fn call(
        &mut self,
        dot: &Value,
        name: &str,
        pos: Pos,
        args: &[Arg],
        last: Option<Value>,
    ) -> Result<Value> {
        self.tick(pos)?;
        if name == "and" || name == "or" {
            if args.is_empty() && last.is_none() {
                return Err(err(
                    pos,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut result = Value::Null;
            for a in args {
                result = self.eval_arg(dot, a, pos)?;
                if truthy(&result) == (name == "or") {
                    return Ok(result);
                }
            }
            return Ok(last.unwrap_or(result));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a, pos)?);
        }
        vals.extend(last);
        let v =
            call_func(name, vals).map_err(|m| err(pos, format!("error calling {name}: {m}")))?;
        if let Value::String(s) = &v {
            if s.len() > MAX_OUTPUT {
                return Err(err(
                    pos,
                    format!("error calling {name}: result is larger than the 16 MiB limit"),
                ));
            }
        }
        Ok(v)
    }
}

/// Follows `names` through maps; anything missing is `nil`.
fn fields(v: &Value, names: &[String]) -> Value {
    let mut cur = v;
    for name in names {
        match cur.get(name.as_str()) {
            Some(next) => cur = next,
            None => return Value::Null,
        }
    }
    cur.clone()
}

/// Go's truthiness: false, 0, nil and empty strings, lists and maps are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// The printed form of a value: strings as-is, nil empty, numbers like Go.
fn display(v: &Value) -> String {
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
fn go_value(v: &Value, out: &mut String) {
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

fn type_name(v: &Value) -> &'static str {
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

/// Splits `f` (finite, non-zero) into its decimal digits without trailing
/// zeros and the exponent of the first digit.
fn float_digits(f: f64, prec: Option<usize>) -> (String, i32) {
    let s = match prec {
        None => format!("{:e}", f.abs()),
        Some(p) => format!("{:.*e}", p.saturating_sub(1), f.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (digits, exp)
}

/// Go's `%g` (`prec` None = shortest, as `%v`); `upper` for `%G`.
fn go_float_g(f: f64, prec: Option<usize>, upper: bool) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    let (digits, exp) = float_digits(f, prec.map(|p| p.max(1)));
    let nd = digits.len() as i64;
    let dp = i64::from(exp) + 1;
    let mut eprec = match prec {
        None => 6,
        Some(p) => p.max(1) as i64,
    };
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let exp = i64::from(exp);
    if exp < -4 || exp >= eprec {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let dot = if rest.is_empty() { "" } else { "." };
        let e = if upper { 'E' } else { 'e' };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}{e}{esign}{:02}", exp.abs());
    }
    let out = if dp <= 0 {
        format!("0.{}{}", "0".repeat(dp.unsigned_abs() as usize), digits)
    } else if dp >= nd {
        format!("{}{}", digits, "0".repeat((dp - nd) as usize))
    } else {
        let (int, frac) = digits.split_at(dp as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{out}")
}

/// Go's `%e` with a precision.
fn go_float_e(f: f64, prec: usize, upper: bool) -> String {
    if !f.is_finite() {
        return go_float_g(f, None, upper);
    }
    let s = format!("{:.*e}", prec, f);
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{mant}{e}{esign}{:02}", exp.abs())
}

/// Go's `strconv.Quote` (or `QuoteRune` with `'`).
fn go_quote(s: &str, quote: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

// ---------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------

type FnResult = std::result::Result<Value, String>;

fn want(vals: &[Value], n: usize) -> std::result::Result<(), String> {
    if vals.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of arguments: want {n}, got {}",
            vals.len()
        ))
    }
}

/// Exactly `N` arguments.
fn take<const N: usize>(vals: &[Value]) -> std::result::Result<&[Value; N], String> {
    want(vals, N)?;
    vals.try_into()
        .map_err(|_| format!("wrong number of arguments: want {N}, got {}", vals.len()))
}

/// An argument that must be an integer (numbers, or strings of digits).
fn int_arg(v: &Value) -> std::result::Result<i64, String> {
    let bad = || format!("expected an integer, got {} {}", type_name(v), quoted(v));
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                Ok(f as i64)
            } else {
                Err(bad())
            }
        }
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad()),
        Value::Null => Ok(0),
        _ => Err(bad()),
    }
}

fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => display(other),
    }
}

fn too_large(len: usize) -> std::result::Result<(), String> {
    if len > MAX_OUTPUT {
        Err("result is larger than the 16 MiB limit".to_string())
    } else {
        Ok(())
    }
}

/// Takes the arguments as (a, b) or (a, b, c) printed strings.
fn strs<const N: usize>(vals: &[Value]) -> std::result::Result<[String; N], String> {
    want(vals, N)?;
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, v) in out.iter_mut().zip(vals) {
        *slot = display(v);
    }
    Ok(out)
}

fn chars_slice(chars: &[char], from: usize, to: usize) -> String {
    chars.get(from..to).unwrap_or(&[]).iter().collect()
}

fn call_func(name: &str, vals: Vec<Value>) -> FnResult {
    let s = |v: String| Ok(Value::String(v));
    match name {
        "not" => {
            want(&vals, 1)?;
            Ok(Value::Bool(!vals.first().is_some_and(truthy)))
        }
        "eq" => {
            let Some((a, rest)) = vals.split_first() else {
                return Err("missing argument for comparison".to_string());
            };
            if rest.is_empty() {
                return Err("missing argument for comparison".to_string());
            }
            for b in rest {
                if equal(a, b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            let [a, b] = take(&vals)?;
            let r = match name {
                "ne" => !equal(a, b)?,
                "lt" => ordering(a, b)? == Ordering::Less,
                "le" => ordering(a, b)? != Ordering::Greater,
                "gt" => ordering(a, b)? == Ordering::Greater,
                _ => ordering(a, b)? != Ordering::Less,
            };
            Ok(Value::Bool(r))
        }
        "len" => {
            let [v] = take(&vals)?;
            let n = match v {
                Value::String(x) => x.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => 0,
                other => return Err(format!("len of {}", type_name(other))),
            };
            Ok(Value::from(n))
        }
        "index" => {
            let Some((first, keys)) = vals.split_first() else {
                return Err("wrong number of arguments: want at least 1, got 0".to_string());
            };
            let mut cur = first.clone();
            for key in keys {
                cur = index_one(&cur, key)?;
            }
            Ok(cur)
        }
        "print" => {
            let mut out = String::new();
            let mut prev_str = true;
            for (i, v) in vals.iter().enumerate() {
                let is_str = matches!(v, Value::String(_));
                if i > 0 && !is_str && !prev_str {
                    out.push(' ');
                }
                out.push_str(&display(v));
                prev_str = is_str;
            }
            s(out)
        }
        "println" => {
            let mut out = vals.iter().map(display).collect::<Vec<_>>().join(" ");
            out.push('\n');
            s(out)
        }
        "printf" => {
            let Some((format, args)) = vals.split_first() else {
                return Err("wrong number of arguments: want at least 1, got 0".to_string());
            };
            s(sprintf(&display(format), args))
        }
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
        "lower" => {
            let [x] = strs(&vals)?;
            s(x.to_lowercase())
        }
        "upper" => {
            let [x] = strs(&vals)?;
            s(x.to_uppercase())
        }
        "title" => {
            let [x] = strs(&vals)?;
            s(title(&x))
        }
        "trim" => {
            let [x] = strs(&vals)?;
            s(x.trim().to_string())
        }
        "trimAll" => {
            let [cut, x] = strs(&vals)?;
            s(x.trim_matches(|c| cut.contains(c)).to_string())
        }
        "trimPrefix" => {
            let [p, x] = strs(&vals)?;
            s(x.strip_prefix(p.as_str()).unwrap_or(&x).to_string())
        }
        "trimSuffix" => {
            let [p, x] = strs(&vals)?;
            s(x.strip_suffix(p.as_str()).unwrap_or(&x).to_string())
        }
        "replace" => {
            let [old, new, x] = strs(&vals)?;
            let count = if old.is_empty() {
                x.chars().count() + 1
            } else {
                x.matches(old.as_str()).count()
            };
            too_large(x.len().saturating_add(count.saturating_mul(new.len())))?;
            s(x.replace(old.as_str(), &new))
        }
        "contains" => {
            let [sub, x] = strs(&vals)?;
            Ok(Value::Bool(x.contains(sub.as_str())))
        }
        "hasPrefix" => {
            let [p, x] = strs(&vals)?;
            Ok(Value::Bool(x.starts_with(p.as_str())))
        }
        "hasSuffix" => {
            let [p, x] = strs(&vals)?;
            Ok(Value::Bool(x.ends_with(p.as_str())))
        }
        "quote" => s(vals
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| go_quote(&display(v), '"'))
            .collect::<Vec<_>>()
            .join(" ")),
        "squote" => s(vals
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| format!("'{}'", display(v)))
            .collect::<Vec<_>>()
            .join(" ")),
        "cat" => s(vals
            .iter()
            .filter(|v| !v.is_null())
            .map(display)
            .collect::<Vec<_>>()
            .join(" ")),
        "b64enc" => {
            let [x] = strs(&vals)?;
            s(base64::engine::general_purpose::STANDARD.encode(x.as_bytes()))
        }
        "b64dec" => {
            let [x] = strs(&vals)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(x.as_bytes())
                .map_err(|_| format!("{x:?} is not valid base64"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| format!("base64 {x:?} does not decode to utf-8 text"))
        }
        "split" | "splitList" => {
            let [sep, x] = strs(&vals)?;
            let parts: Vec<String> = if sep.is_empty() {
                x.chars().map(String::from).collect()
            } else {
                x.split(sep.as_str()).map(str::to_string).collect()
            };
            if parts.len() > MAX_PARTS {
                return Err(format!("more than {MAX_PARTS} parts"));
            }
            if name == "splitList" {
                return Ok(Value::Array(parts.into_iter().map(Value::String).collect()));
            }
            Ok(Value::Object(
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("_{i}"), Value::String(p)))
                    .collect(),
            ))
        }
        "join" => {
            let [sep, list] = take(&vals)?;
            let sep = display(sep);
            let out = match list {
                Value::Array(a) => a
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(display)
                    .collect::<Vec<_>>()
                    .join(&sep),
                other => display(other),
            };
            s(out)
        }
        "repeat" => {
            let [n, x] = take(&vals)?;
            let n = int_arg(n)?;
            let x = display(x);
            let n = usize::try_from(n).map_err(|_| format!("negative repeat count {n}"))?;
            too_large(n.saturating_mul(x.len()))?;
            s(x.repeat(n))
        }
        "substr" => {
            let [start, end, x] = take(&vals)?;
            let start = int_arg(start)?;
            let end = int_arg(end)?;
            let chars: Vec<char> = display(x).chars().collect();
            let len = chars.len() as i64;
            let start = start.clamp(0, len);
            let end = if end < 0 || end > len { len } else { end };
            if start >= end {
                return s(String::new());
            }
            s(chars_slice(&chars, start as usize, end as usize))
        }
        "trunc" => {
            let [n, x] = take(&vals)?;
            let n = int_arg(n)?;
            let chars: Vec<char> = display(x).chars().collect();
            let len = chars.len() as i64;
            let out = if n < 0 && len + n > 0 {
                chars_slice(&chars, (len + n) as usize, len as usize)
            } else if n >= 0 && len > n {
                chars_slice(&chars, 0, n as usize)
            } else {
                chars.iter().collect()
            };
            s(out)
        }
        "indent" | "nindent" => {
            let [n, x] = take(&vals)?;
            let n = int_arg(n)?;
            let x = display(x);
            let n = usize::try_from(n).map_err(|_| format!("negative indent {n}"))?;
            let lines = x.matches('\n').count() + 1;
            too_large(x.len().saturating_add(lines.saturating_mul(n)))?;
            let pad = " ".repeat(n);
            let body = format!("{pad}{}", x.replace('\n', &format!("\n{pad}")));
            s(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "toString" => {
            let [v] = take(&vals)?;
            s(display(v))
        }
        "toJson" => {
            let [v] = take(&vals)?;
            serde_json::to_string(v)
                .map(Value::String)
                .map_err(|e| format!("cannot encode as json: {e}"))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

fn index_one(cur: &Value, key: &Value) -> FnResult {
    match cur {
        Value::Null => Ok(Value::Null),
        Value::Array(a) => {
            let i = int_arg(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| a.get(i))
                .cloned()
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        Value::Object(m) => match key {
            Value::String(k) => Ok(m.get(k).cloned().unwrap_or(Value::Null)),
            Value::Null => Ok(Value::Null),
            other => Err(format!(
                "cannot index a map with a {} key",
                type_name(other)
            )),
        },
        Value::String(x) => {
            let i = int_arg(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| x.as_bytes().get(i))
                .map(|b| Value::from(*b))
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        other => Err(format!("can't index item of type {}", type_name(other))),
    }
}

/// Go's `strings.Title`: upper-cases the first letter of every word.
fn title(x: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(x.len());
    let mut prev = ' ';
    for c in x.chars() {
        if is_sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// A comparable scalar.
enum Basic<'a> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

fn basic(v: &Value) -> Option<Basic<'_>> {
    match v {
        Value::Bool(b) => Some(Basic::Bool(*b)),
        Value::Number(n) => Some(if let Some(i) = n.as_i64() {
            Basic::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Basic::Int(i128::from(u))
        } else {
            Basic::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Some(Basic::Str(s)),
        _ => None,
    }
}

fn zero_like<'a>(b: &Basic<'_>) -> Basic<'a> {
    match b {
        Basic::Bool(_) => Basic::Bool(false),
        Basic::Int(_) => Basic::Int(0),
        Basic::Float(_) => Basic::Float(0.0),
        Basic::Str(_) => Basic::Str(""),
    }
}

/// Both operands as scalars of one kind, `nil` standing for the other's
/// zero value; `None` when both are `nil`.
fn scalars<'a>(
    a: &'a Value,
    b: &'a Value,
) -> std::result::Result<Option<(Basic<'a>, Basic<'a>)>, String> {
    let incompatible = || {
        format!(
            "incompatible types for comparison: {} and {}",
            type_name(a),
            type_name(b)
        )
    };
    let (x, y) = match (basic(a), basic(b)) {
        (Some(x), Some(y)) => (x, y),
        (Some(x), None) if b.is_null() => {
            let z = zero_like(&x);
            (x, z)
        }
        (None, Some(y)) if a.is_null() => (zero_like(&y), y),
        (None, None) if a.is_null() && b.is_null() => return Ok(None),
        _ => return Err(incompatible()),
    };
    let same_kind = matches!(
        (&x, &y),
        (Basic::Bool(_), Basic::Bool(_))
            | (Basic::Str(_), Basic::Str(_))
            | (
                Basic::Int(_) | Basic::Float(_),
                Basic::Int(_) | Basic::Float(_)
            )
    );
    if same_kind {
        Ok(Some((x, y)))
    } else {
        Err(incompatible())
    }
}

fn as_f64(b: &Basic<'_>) -> f64 {
    match b {
        Basic::Int(i) => *i as f64,
        Basic::Float(f) => *f,
        _ => 0.0,
    }
}

fn equal(a: &Value, b: &Value) -> std::result::Result<bool, String> {
    if let (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) = (a, b) {
        return Ok(a == b);
    }
    Ok(match scalars(a, b)? {
        None => true,
        Some((Basic::Bool(x), Basic::Bool(y))) => x == y,
        Some((Basic::Str(x), Basic::Str(y))) => x == y,
        Some((Basic::Int(x), Basic::Int(y))) => x == y,
        Some((x, y)) => as_f64(&x) == as_f64(&y),
    })
}

fn ordering(a: &Value, b: &Value) -> std::result::Result<Ordering, String> {
    Ok(match scalars(a, b)? {
        None => Ordering::Equal,
        Some((Basic::Bool(_), _)) => {
            return Err("invalid type for comparison: bool".to_string());
        }
        Some((Basic::Str(x), Basic::Str(y))) => x.cmp(y),
        Some((Basic::Int(x), Basic::Int(y))) => x.cmp(&y),
        Some((x, y)) => as_f64(&x)
            .partial_cmp(&as_f64(&y))
            .unwrap_or(Ordering::Equal),
    })
}

// ---------------------------------------------------------------------------
// printf
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs listed in the module docs.
fn sprintf(format: &str, args: &[Value]) -> String {
    let chars: Vec<char> = format.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut out = String::new();
    let mut next_arg = 0;
    let mut i = 0;
    while let Some(c) = at(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(f) = at(i) {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            i += 1;
        }
        let num = |i: &mut usize| -> Option<usize> {
            let start = *i;
            let mut n: usize = 0;
            while let Some(d) = at(*i).and_then(|d| d.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(d as usize);
                *i += 1;
            }
            (*i > start).then_some(n)
        };
        spec.width = num(&mut i);
        if spec.width.is_some_and(|w| w > MAX_WIDTH) {
            out.push_str("%!(BADWIDTH)");
            spec.width = None;
        }
        if at(i) == Some('.') {
            i += 1;
            spec.prec = Some(num(&mut i).unwrap_or(0));
            if spec.prec.is_some_and(|p| p > MAX_WIDTH) {
                out.push_str("%!(BADPREC)");
                spec.prec = None;
            }
        }
        let Some(verb) = at(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        out.push_str(&format_arg(verb, arg, &spec));
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args
            .iter()
            .skip(next_arg)
            .map(|a| match a {
                Value::Null => "<nil>".to_string(),
                other => {
                    let mut v = String::new();
                    go_value(other, &mut v);
                    format!("{}={v}", type_name(other))
                }
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn format_arg(verb: char, arg: &Value, spec: &Spec) -> String {
    let int = match arg {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    };
    let float = match arg {
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    let signed = |body: String, negative: bool| -> String {
        if negative {
            format!("-{body}")
        } else if spec.plus {
            format!("+{body}")
        } else if spec.space {
            format!(" {body}")
        } else {
            body
        }
    };
    let radix = |n: i128, r: u32, upper: bool, prefix: &str| -> String {
        let mag = n.unsigned_abs();
        let digits = match (r, upper) {
            (16, false) => format!("{mag:x}"),
            (16, true) => format!("{mag:X}"),
            (8, _) => format!("{mag:o}"),
            (2, _) => format!("{mag:b}"),
            _ => mag.to_string(),
        };
        let prefix = if spec.sharp { prefix } else { "" };
        signed(format!("{prefix}{digits}"), n < 0)
    };
    let truncated = |s: String| match spec.prec {
        Some(p) => s.chars().take(p).collect(),
        None => s,
    };
    let body: Option<String> = match verb {
        'v' | 's' => Some(match (arg, int) {
            (Value::Number(_), Some(n)) if verb == 'v' => {
                signed(n.unsigned_abs().to_string(), n < 0)
            }
            _ => truncated(display(arg)),
        }),
        'd' => int.map(|n| radix(n, 10, false, "")),
        'x' | 'X' => match (arg, int) {
            (Value::String(x), _) => Some(
                x.bytes()
                    .map(|b| {
                        if verb == 'x' {
                            format!("{b:02x}")
                        } else {
                            format!("{b:02X}")
                        }
                    })
                    .collect(),
            ),
            (_, Some(n)) => Some(radix(
                n,
                16,
                verb == 'X',
                if verb == 'x' { "0x" } else { "0X" },
            )),
            _ => None,
        },
        'o' => int.map(|n| radix(n, 8, false, "0")),
        'b' => int.map(|n| radix(n, 2, false, "")),
        'c' => int
            .and_then(|n| u32::try_from(n).ok())
            .and_then(char::from_u32)
            .map(String::from),
        'q' => match (arg, int) {
            (Value::String(x), _) => Some(go_quote(&truncated(x.clone()), '"')),
            (_, Some(n)) => u32::try_from(n)
                .ok()
                .and_then(char::from_u32)
                .map(|c| go_quote(&c.to_string(), '\'')),
            _ => None,
        },
        't' => match arg {
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        },
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => float.map(|f| {
            let body = match verb {
                'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f.abs()),
                'e' | 'E' => go_float_e(f.abs(), spec.prec.unwrap_or(6), verb == 'E'),
                _ => go_float_g(f.abs(), spec.prec, verb == 'G'),
            };
            signed(body, f.is_sign_negative() && f != 0.0)
        }),
        _ => None,
    };
    let Some(body) = body else {
        return match arg {
            Value::Null => format!("%!{verb}(<nil>)"),
            other => {
                let mut v = String::new();
                go_value(other, &mut v);
                format!("%!{verb}({}={v})", type_name(other))
            }
        };
    };
    pad(body, spec, matches!(arg, Value::Number(_)))
}

fn pad(body: String, spec: &Spec, numeric: bool) -> String {
    let Some(width) = spec.width else { return body };
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if spec.minus {
        return format!("{body}{}", " ".repeat(fill));
    }
    if !spec.zero {
        return format!("{}{body}", " ".repeat(fill));
    }
    if numeric {
        let mut chars = body.chars();
        if let Some(sign @ ('-' | '+' | ' ')) = chars.next() {
            return format!("{sign}{}{}", "0".repeat(fill), chars.as_str());
        }
    }
    format!("{}{body}", "0".repeat(fill))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

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
            Err(Error::Template(m)) => m,
            Err(other) => panic!("{src:?}: wrong error variant {other:?}"),
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
                (got.as_deref() != Ok(*want))
                    .then(|| format!("{src:?}: want {want:?}, got {got:?}"))
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
            ("{{template \"x\"}}", "1:1: {{template}} is not supported"),
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
                    Err(Error::Template(m)) if m == want => None,
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

    fn run_vars() -> RunVars {
        RunVars {
            id: "ca12".into(),
            registry: "roo.azurecr.io".into(),
            date: Utc
                .with_ymd_and_hms(2010, 5, 20, 13, 14, 22)
                .single()
                .unwrap_or_default(),
            os: "linux".into(),
            architecture: "amd64".into(),
            commit: "0123abc".into(),
            branch: "main".into(),
            task_name: "hello".into(),
            shared_volume: "crtask-ca12".into(),
            repository: "https://example.invalid/app.git".into(),
            git_tag: "v1.0".into(),
            triggered_by: "manual".into(),
        }
    }

    #[test]
    fn run_date_format() {
        assert_eq!(run_date(run_vars().date), "20100520-131422z");
        assert_eq!(run_date(RunVars::default().date), "19700101-000000z");
    }

    #[test]
    fn tags_with_run_vars() {
        let mut values = BTreeMap::new();
        values.insert("env".to_string(), "prod".to_string());
        let data = run_vars().to_data(&values);
        let cases: &[(&str, &str)] = &[
            ("app:{{.Run.ID}}", "app:ca12"),
            (
                "{{.Run.Registry}}/app:{{.Run.ID}}",
                "roo.azurecr.io/app:ca12",
            ),
            ("{{.Run.RegistryName}}", "roo"),
            ("app:{{.Run.Date}}", "app:20100520-131422z"),
            ("app:{{.Build.ID}}", "app:ca12"),
            ("{{.Run.OS}}/{{.Run.Architecture}}", "linux/amd64"),
            (
                "{{.Run.Commit}} {{.Run.Branch}} {{.Run.TaskName}} {{.Run.SharedVolume}}",
                "0123abc main hello crtask-ca12",
            ),
            (
                "{{.Run.Repository}} {{.Run.GitTag}} {{.Run.TriggeredBy}}",
                "https://example.invalid/app.git v1.0 manual",
            ),
            ("app:{{.Values.env}}-{{.Run.ID}}", "app:prod-ca12"),
            ("app:{{.Values.missing}}", "app:"),
            ("app:{{.Values.tag | default .Run.ID}}", "app:ca12"),
        ];
        for (src, want) in cases {
            assert_eq!(render(src, &data).ok().as_deref(), Some(*want), "{src}");
        }
        let local = RunVars {
            registry: "127.0.0.1:5000".into(),
            ..RunVars::default()
        };
        let data = local.to_data(&BTreeMap::new());
        assert_eq!(
            render("{{.Run.RegistryName}}|{{.Run.Date}}|{{.Values}}", &data)
                .ok()
                .as_deref(),
            Some("127|19700101-000000z|map[]")
        );
        let plain = RunVars {
            registry: "localhost:5000".into(),
            ..RunVars::default()
        };
        assert_eq!(
            render("{{.Run.RegistryName}}", &plain.to_data(&BTreeMap::new()))
                .ok()
                .as_deref(),
            Some("localhost:5000")
        );
    }

    /// `acr-samples/mounts-multistep.yaml`, as published.
    const MOUNTS_MULTISTEP: &str =
        "# This template demonstrates mounting custom volumes into a container for multi-step task
volumes:
  - name: secret1
    secret:
      mysecret1: {{.Values.secret1 | b64enc}}
  - name: secret2
    secret:
      mysecret2: {{.Values.secret2 | b64enc}}
            
steps:
  - cmd: bash cat /run/test/mysecret1
    volumeMounts:
      - name: secret1
        mountPath: /run/test
";

    #[test]
    fn renders_acr_sample_with_values() {
        let mut values = BTreeMap::new();
        values.insert("secret1".to_string(), "this is secret 1".to_string());
        values.insert("secret2".to_string(), "s2".to_string());
        let data = run_vars().to_data(&values);
        let out = render(MOUNTS_MULTISTEP, &data);
        let want = "# This template demonstrates mounting custom volumes into a container for multi-step task
volumes:
  - name: secret1
    secret:
      mysecret1: dGhpcyBpcyBzZWNyZXQgMQ==
  - name: secret2
    secret:
      mysecret2: czI=
            
steps:
  - cmd: bash cat /run/test/mysecret1
    volumeMounts:
      - name: secret1
        mountPath: /run/test
";
        assert_eq!(out.ok().as_deref(), Some(want));
        // without values the secrets are empty, not an error
        let out = render(MOUNTS_MULTISTEP, &run_vars().to_data(&BTreeMap::new()));
        assert!(out.is_ok_and(|s| s.contains("mysecret1: \n")));
    }

    #[test]
    fn task_file_with_control_flow() {
        let src = "\
version: v1.1.0
steps:
{{- range $i, $t := splitList \",\" .Values.tags }}
  - build: -t {{ $.Run.Registry }}/app:{{ $t | trim }} .
{{- end }}
{{- if eq .Values.push \"true\" }}
  - push: [app]
{{- else }}
  # no push
{{- end }}
";
        let mut values = BTreeMap::new();
        values.insert("tags".to_string(), "v1, latest".to_string());
        let data = run_vars().to_data(&values);
        let want = "\
version: v1.1.0
steps:
  - build: -t roo.azurecr.io/app:v1 .
  - build: -t roo.azurecr.io/app:latest .
  # no push
";
        assert_eq!(render(src, &data).ok().as_deref(), Some(want));
    }

    #[test]
    fn float_formatting_matches_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (123456.0, "123456"),
            (999999.0, "999999"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1.0 / 3.0, "0.3333333333333333"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float_g(*f, None, false), *want, "{f}");
        }
        assert_eq!(go_float_g(123456.0, Some(3), false), "1.23e+05");
        assert_eq!(go_float_g(100.0, Some(3), false), "100");
        assert_eq!(go_float_e(0.000123, 2, true), "1.23E-04");
    }

    #[test]
    fn limits_stop_runaway_templates() {
        let e = fail("{{range 100000000}}{{end}}");
        assert!(e.contains("steps"), "{e}");
        let e = fail(r#"{{repeat 100000000 "abcdefgh"}}"#);
        assert!(e.contains("16 MiB"), "{e}");
        let e =
            fail(r#"{{$x := "abcdefghabcdefgh"}}{{range 40}}{{$x = printf "%s%s" $x $x}}{{end}}"#);
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
                Err(Error::Template(m)) => {
                    let (line_col, _) = m.split_once(": ").unwrap_or(("", ""));
                    let mut parts = line_col.split(':');
                    assert!(
                        parts.next().is_some_and(|l| l.parse::<usize>().is_ok())
                            && parts.next().is_some_and(|c| c.parse::<usize>().is_ok()),
                        "{src:?}: error without position: {m}"
                    );
                }
                Err(other) => panic!("{src:?}: wrong error variant {other:?}"),
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
            assert!(!matches!(r, Err(ref e) if !matches!(e, Error::Template(_))));
        }
    }
}
