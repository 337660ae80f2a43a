//! The parser: tokens to the AST a template is evaluated from.
//!
//! Checks everything that can be checked before rendering: the block
//! structure, that every function exists and every variable is declared,
//! and the nesting limit.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::funcs::exists;
use crate::lex::{describe, Lexer, Pos, Tok, Token};
use crate::value::display;
use crate::{Error, Result, MAX_DEPTH};

/// Words that start or end a control structure and cannot be operands.
const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "break", "continue", "define", "template", "block",
];

/// Named templates (`define`, `block`) by name.
pub(crate) type Defines = BTreeMap<String, Vec<Node>>;

/// Lexes and parses `src` into the nodes of a template and the templates it
/// defines.
pub(crate) fn parse(src: &str) -> Result<(Vec<Node>, Defines)> {
    let toks = Lexer::new(src).run()?;
    let mut parser = Parser {
        toks,
        i: 0,
        vars: vec!["$".to_string()],
        depth: 0,
        range_depth: 0,
        defines: BTreeMap::new(),
    };
    let (nodes, stop) = parser.parse_list()?;
    match stop {
        Stop::Eof => Ok((nodes, parser.defines)),
        Stop::End(p) => Err(Error::parse(p, "unexpected {{end}}")),
        Stop::Else(p) => Err(Error::parse(p, "unexpected {{else}}")),
        Stop::ElseIf(p) => Err(Error::parse(p, "unexpected {{else if}}")),
        Stop::ElseWith(p) => Err(Error::parse(p, "unexpected {{else with}}")),
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(Pos, String),
    Action(Pos, Pipe),
    If(Block),
    With(Block),
    Range(Block),
    Break,
    Continue,
    /// `{{template "name" pipeline}}` (and the call half of `block`)
    Template(Pos, String, Option<Pipe>),
}

#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) pipe: Pipe,
    pub(crate) body: Vec<Node>,
    pub(crate) otherwise: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: Pos,
    pub(crate) decl: Vec<String>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) pos: Pos,
    pub(crate) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
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

pub(crate) fn describe_arg(arg: &Arg) -> String {
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
    defines: Defines,
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
            return Err(Error::parse(
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
            Err(Error::parse(
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
                                return Err(Error::parse(
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
                        "define" | "block" => {
                            self.next();
                            let node = self.parse_define(&word, open)?;
                            nodes.extend(node);
                        }
                        "template" => {
                            self.next();
                            let (name, pipe) = self.parse_template_call("template", open)?;
                            nodes.push(Node::Template(open, name, pipe));
                        }
                        _ => {
                            let pipe = self.parse_pipeline("command", false)?;
                            nodes.push(Node::Action(open, pipe));
                        }
                    }
                }
                other => {
                    return Err(Error::parse(
                        t.pos,
                        format!("unexpected {}", describe(&other)),
                    ));
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
            Error::parse(
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
                        return Err(Error::parse(
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
                return Err(Error::parse(
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

    /// After `{{template`: the quoted name and an optional pipeline.
    fn parse_template_call(&mut self, what: &str, open: Pos) -> Result<(String, Option<Pipe>)> {
        let t = self.next();
        let Tok::Str(name) = t.tok else {
            return Err(Error::parse(
                t.pos,
                format!(
                    "unexpected {} in {{{{{what}}}}}: want a quoted template name",
                    describe(&t.tok)
                ),
            ));
        };
        if self.peek_tok() == &Tok::Close {
            self.next();
            return Ok((name, None));
        }
        self.enter(open)?;
        let pipe = self.parse_pipeline(what, false)?;
        self.depth -= 1;
        Ok((name, Some(pipe)))
    }

    /// After `{{define` or `{{block`: the body up to `{{end}}`, stored as a
    /// named template; `block` also calls it where it stands.
    fn parse_define(&mut self, word: &str, open: Pos) -> Result<Option<Node>> {
        let (name, pipe) = if word == "define" {
            if self.depth > 0 {
                return Err(Error::parse(
                    open,
                    "{{define}} is only allowed at the top level",
                ));
            }
            let (name, pipe) = self.parse_template_call("define", open)?;
            if pipe.is_some() {
                return Err(Error::parse(open, "unexpected pipeline in {{define}}"));
            }
            (name, None)
        } else {
            self.parse_template_call("block", open)?
        };
        self.enter(open)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let parsed = self.parse_list();
        self.vars = saved_vars;
        self.range_depth = saved_range;
        self.depth -= 1;
        let (body, stop) = parsed?;
        match stop {
            Stop::End(_) => {}
            Stop::Eof => {
                return Err(Error::parse(
                    open,
                    format!("unclosed {{{{{word}}}}}: missing {{{{end}}}}"),
                ))
            }
            Stop::Else(p) | Stop::ElseIf(p) | Stop::ElseWith(p) => {
                return Err(Error::parse(
                    p,
                    format!("unexpected {{{{else}}}} in {{{{{word}}}}}"),
                ));
            }
        }
        let empty = |nodes: &[Node]| {
            nodes
                .iter()
                .all(|n| matches!(n, Node::Text(_, t) if t.trim().is_empty()))
        };
        match self.defines.get(&name) {
            Some(old) if !empty(old) && !empty(&body) => {
                return Err(Error::parse(
                    open,
                    format!("template: multiple definition of template {name:?}"),
                ));
            }
            Some(_) if empty(&body) => {}
            _ => {
                self.defines.insert(name.clone(), body);
            }
        }
        Ok((word == "block").then_some(Node::Template(open, name, pipe)))
    }

    fn check_var(&self, name: &str, pos: Pos) -> Result<()> {
        if self.vars.iter().any(|v| v == name) {
            Ok(())
        } else {
            Err(Error::parse(pos, format!("undefined variable \"{name}\"")))
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
                        return Err(Error::parse(
                            first_pos,
                            format!("too many declarations in {context}"),
                        ));
                    }
                    self.i += 2;
                    let second = self.next();
                    let op = self.next();
                    let Tok::Var(second_name) = second.tok else {
                        return Err(Error::parse(
                            second.pos,
                            "range can only initialize variables",
                        ));
                    };
                    is_assign = match op.tok {
                        Tok::Declare => false,
                        Tok::Assign => true,
                        other => {
                            return Err(Error::parse(
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
                return Err(Error::parse(cmd_pos, msg));
            }
            cmds.push(cmd);
            let t = self.next();
            match t.tok {
                Tok::Pipe => continue,
                Tok::Close if !in_paren => break,
                Tok::RParen if in_paren => break,
                Tok::Close => return Err(Error::parse(t.pos, "unclosed left paren")),
                Tok::RParen => return Err(Error::parse(t.pos, "unexpected right paren")),
                other => {
                    return Err(Error::parse(
                        t.pos,
                        format!("unexpected {} in {context}", describe(&other)),
                    ));
                }
            }
        }
        for (stage, cmd) in cmds.iter().enumerate().skip(1) {
            if matches!(cmd.args.first(), Some(Arg::Dot | Arg::Nil | Arg::Lit(_))) {
                return Err(Error::parse(
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
                return Err(Error::parse(
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
                    return Err(Error::parse(
                        t.pos,
                        format!("unexpected {{{{{w}}}}} in command"),
                    ));
                }
                f if exists(f) => Arg::Func(name, t.pos),
                _ => {
                    return Err(Error::parse(
                        t.pos,
                        format!("function \"{name}\" not defined"),
                    ))
                }
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
                return Err(Error::parse(
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
                return Err(Error::parse(
                    t.pos,
                    format!("unexpected . after term {}", describe_arg(&arg)),
                ));
            }
            other => Arg::Chain(Box::new(other), fields),
        })
    }
}
