//! The executor: walks the AST with a value as `.`, writing the output.

use serde_json::Value;

use crate::funcs::{call_func, MUTATING};
use crate::lex::Pos;
use crate::parse::{describe_arg, Arg, Block, Cmd, Defines, Node, Pipe};
use crate::value::{display, truthy, type_name};
use crate::{Error, Result, MAX_DEPTH, MAX_OUTPUT, MAX_STEPS};

/// Renders `nodes` with `data` as `.` and `$`; `defines` are the templates
/// `{{template}}` may call.
pub(crate) fn execute(nodes: &[Node], defines: &Defines, data: &Value) -> Result<String> {
    let mut exec = Exec {
        out: String::new(),
        vars: vec![("$".to_string(), data.clone())],
        steps: 0,
        defines,
        calls: 0,
    };
    exec.walk(data, nodes)?;
    Ok(exec.out)
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'d> {
    out: String,
    /// variables in scope, innermost last
    vars: Vec<(String, Value)>,
    steps: u64,
    defines: &'d Defines,
    /// `{{template}}` calls in progress
    calls: usize,
}

impl Exec<'_> {
    fn tick(&mut self, pos: Pos) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(Error::exec(
                pos,
                format!("template execution took more than {MAX_STEPS} steps"),
            ));
        }
        Ok(())
    }

    fn write(&mut self, pos: Pos, s: &str) -> Result<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(Error::exec(pos, "output is larger than the 16 MiB limit"));
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
            .ok_or_else(|| Error::exec(pos, format!("undefined variable \"{name}\"")))
    }

    fn set_var(&mut self, name: &str, value: Value, pos: Pos) -> Result<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(Error::exec(pos, format!("undefined variable \"{name}\""))),
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
                Node::Template(pos, name, pipe) => {
                    self.tick(*pos)?;
                    let arg = match pipe {
                        Some(p) => {
                            let mark = self.vars.len();
                            let v = self.eval_pipe(dot, p);
                            self.vars.truncate(mark);
                            v?
                        }
                        None => Value::Null,
                    };
                    self.call_template(*pos, name, &arg)?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs the named template with `dot` as `.` and `$`, in a scope of its
    /// own.
    fn call_template(&mut self, pos: Pos, name: &str, dot: &Value) -> Result<()> {
        let defines = self.defines;
        let Some(body) = defines.get(name) else {
            return Err(Error::exec(pos, format!("no such template {name:?}")));
        };
        if self.calls >= MAX_DEPTH {
            return Err(Error::exec(
                pos,
                format!("templates call each other more than {MAX_DEPTH} deep"),
            ));
        }
        self.calls += 1;
        let saved = std::mem::replace(&mut self.vars, vec![("$".to_string(), dot.clone())]);
        let r = self.walk(dot, body);
        self.vars = saved;
        self.calls -= 1;
        r.map(|_| ())
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
                    return Err(Error::exec(pos, format!("range can't iterate over {n}")));
                };
                if b.pipe.decl.len() > 1 {
                    return Err(Error::exec(
                        pos,
                        format!("can't use {count} to iterate over more than one variable"),
                    ));
                }
                return self.range_int(dot, b, count);
            }
            other => {
                return Err(Error::exec(
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
            return Err(Error::exec(cmd.pos, "missing value for command"));
        };
        if let Arg::Func(name, pos) = first {
            return self.call(dot, name, *pos, rest, last);
        }
        if !rest.is_empty() || last.is_some() {
            return Err(Error::exec(
                cmd.pos,
                format!(
                    "can't give argument to non-function {}",
                    describe_arg(first)
                ),
            ));
        }
        if let Arg::Nil = first {
            return Err(Error::exec(cmd.pos, "nil is not a command"));
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
                return Err(Error::exec(
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
        let v = call_func(name, vals)
            .map_err(|m| Error::exec(pos, format!("error calling {name}: {m}")))?;
        if MUTATING.contains(&name) {
            // Sprig changes the dict in place: keep the change when the
            // dict came from a variable, as later uses of it would see it
            if let Some(Arg::Var(var, path)) = args.first() {
                self.store(var, path, v.clone(), pos)?;
            }
        }
        if let Value::String(s) = &v {
            if s.len() > MAX_OUTPUT {
                return Err(Error::exec(
                    pos,
                    format!("error calling {name}: result is larger than the 16 MiB limit"),
                ));
            }
        }
        Ok(v)
    }
}

impl Exec<'_> {
    /// Writes `value` into variable `var` at the field `path`.
    fn store(&mut self, var: &str, path: &[String], value: Value, pos: Pos) -> Result<()> {
        let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == var) else {
            return Err(Error::exec(pos, format!("undefined variable \"{var}\"")));
        };
        let mut cur = &mut slot.1;
        for name in path {
            match cur.get_mut(name.as_str()) {
                Some(next) => cur = next,
                None => return Ok(()),
            }
        }
        *cur = value;
        Ok(())
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
