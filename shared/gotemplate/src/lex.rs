//! The lexer: template source to tokens.
//!
//! Text outside actions becomes one [`Tok::Text`] (after trim markers are
//! applied); comments are dropped; inside `{{ ... }}` it produces operators,
//! names, fields, variables and literals (string and character escapes and
//! number literals are decoded here). Every token carries its [`Pos`].

use serde_json::{Number, Value};

use crate::{Error, Result};

/// A 1-based line and column (in characters) in the template source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
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
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: Pos,
    /// whitespace separates this token from the one before it
    pub(crate) space_before: bool,
}

pub(crate) fn describe(tok: &Tok) -> String {
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

pub(crate) struct Lexer {
    chars: Vec<char>,
    /// char index where each line starts
    line_starts: Vec<usize>,
    i: usize,
    toks: Vec<Token>,
}

impl Lexer {
    pub(crate) fn new(src: &str) -> Lexer {
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

    pub(crate) fn run(mut self) -> Result<Vec<Token>> {
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
                    return Err(Error::parse(self.pos(open), "unclosed comment"));
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
                    return Err(Error::parse(
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
                None => return Err(Error::parse(self.pos(open), "unclosed action")),
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
        Err(Error::parse(
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
                    return Err(Error::parse(pos, "expected :="));
                }
                self.push(Tok::Declare, i, space);
                self.i = i + 2;
            }
            '"' => {
                let mut j = i + 1;
                loop {
                    match self.at(j) {
                        None | Some('\n') => {
                            return Err(Error::parse(pos, "unterminated quoted string"));
                        }
                        Some('\\') => {
                            if matches!(self.at(j + 1), None | Some('\n')) {
                                return Err(Error::parse(pos, "unterminated quoted string"));
                            }
                            j += 2;
                        }
                        Some('"') => break,
                        Some(_) => j += 1,
                    }
                }
                let body = self.chars.get(i + 1..j).unwrap_or(&[]);
                let s = unescape(body, '"').map_err(|m| Error::parse(pos, m))?;
                self.push(Tok::Str(s), i, space);
                self.i = j + 1;
            }
            '`' => {
                let Some(j) = self.find(i + 1, "`") else {
                    return Err(Error::parse(pos, "unterminated raw quoted string"));
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
                            return Err(Error::parse(pos, "unterminated character constant"));
                        }
                        Some('\\') => {
                            if matches!(self.at(j + 1), None | Some('\n')) {
                                return Err(Error::parse(pos, "unterminated character constant"));
                            }
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(_) => j += 1,
                    }
                }
                let body = self.chars.get(i + 1..j).unwrap_or(&[]);
                let text = self.slice(i, j + 1);
                let s = unescape(body, '\'').map_err(|m| Error::parse(pos, m))?;
                let mut it = s.chars();
                let (Some(ch), None) = (it.next(), it.next()) else {
                    return Err(Error::parse(
                        pos,
                        format!("malformed character constant {text}"),
                    ));
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
                    return Err(Error::parse(pos, format!("bad number syntax: {bad:?}")));
                }
                let value = parse_number(&text).map_err(|m| Error::parse(pos, m))?;
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
                return Err(Error::parse(
                    pos,
                    format!("unexpected character {c:?} in action"),
                ));
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
