//! A Go `text/template` compatible renderer over [`serde_json::Value`].
//!
//! Used by crtask for image tags (`app:{{.Run.ID}}`) and task files
//! (`{{.Values.secret1 | b64enc}}`). A template is lexed (`lex.rs`), parsed
//! into a small AST (`parse.rs`) and then evaluated (`exec.rs`, with the
//! functions of `funcs.rs` and `printf.rs`); nothing here does I/O.
//!
//! ```
//! let data = serde_json::json!({"Run": {"ID": "ca1"}});
//! let tag = crtask_gotemplate::render("app:{{.Run.ID | upper}}", &data);
//! assert_eq!(tag.ok().as_deref(), Some("app:CA1"));
//! ```
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
//! integers; `$v :=` or `$i, $v :=`) with `else`, `break`/`continue`, and
//! named templates: `define` (top level only), `template "name" pipeline`
//! and `block "name" pipeline`.
//!
//! # Semantics that differ from Go on purpose
//!
//! * A missing key or field (also nested, `.Values.a.b`, or a field of a
//!   non-map) is `nil`, and `nil` prints as the empty string (never
//!   `<no value>` or `<nil>`, never an error). Inside a printed list or map a
//!   `nil` element prints as `<nil>`. `quote`, `squote`, `cat` and `join`
//!   skip `nil` arguments.
//! * Comparisons treat `nil` as the zero value of the other operand (so
//!   `eq .Values.missing ""` is true, as with maps of strings), and
//!   compare integers with floats by value.
//! * Functions that take strings accept any value and use its printed form;
//!   integer arguments may also be given as strings of digits (as values
//!   from maps of strings are).
//! * `substr`, `trunc`, `abbrev` and `wrap` count characters, not bytes,
//!   and `substr`/`trunc` never fail on out-of-range bounds; `b64dec` and
//!   `b32dec` fail on bad input instead of returning the error text.
//! * Integer arithmetic that overflows is an error (Go wraps around).
//! * `set`, `unset`, `merge` and `mergeOverwrite` change a dict held in a
//!   variable (`$d`, `$d.a.b`); a dict reached from `.` is not changed.
//! * `slice` is Sprig's on lists and Go's builtin on strings (byte offsets).
//! * Times (`now`, `toDate`) are UTC, as on ACR's agents ("Local" is UTC).
//!
//! # Functions
//!
//! Go's builtins: `and or not eq ne lt le gt ge len index slice print
//! printf println html js urlquery`; `call` is refused (data holds no
//! functions). `printf` knows the verbs `%v %s %d %q %t %f %F %e %E %g %G
//! %x %X %o %b %c %%` with the flags `- + 0 space`, width and precision.
//!
//! Sprig v2.22's whole `TxtFuncMap`, as ACR registers it, with Sprig's
//! argument order (the main argument last, for pipes): strings, lists,
//! dicts, math, defaults, JSON, reflection, paths, URLs, encodings, hashes,
//! random values, dates (Go layouts: `2006-01-02`), semver and regex (Go's
//! RE2 syntax). `env`, `expandenv`, `getHostByName` and the key,
//! certificate and AES functions are defined but fail when called with a
//! message saying why. Sprig v3-only functions (`get`, `dig`, `seq`,
//! `toRawJson`, `fromJson`, `must*`, ...) are not defined, as in ACR.
//!
//! # Errors and limits
//!
//! Every error is an [`Error`] and names `line:col` of the place in the
//! template (1-based; columns count characters): [`Error::Parse`] when the
//! source is rejected, [`Error::Exec`] when rendering fails. Parsing
//! rejects unknown functions, undefined variables and more than 64 levels
//! of nested blocks and parentheses. Rendering stops with an error past
//! 16 MiB of output or of any one value, or after 10 million steps.

mod error;
mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;
mod value;

use serde_json::Value;

pub use error::{Error, Result};
/// Go's `path.Clean` (what the `clean` function does): the shortest
/// equivalent '/'-separated path.
pub use funcs::path_clean;
/// A value as Go's `json.Marshal` writes it (keys sorted, `<>&` escaped,
/// floats as Go spells them): what `toJson` renders.
pub use funcs::to_go_json;

/// Deepest nesting of blocks and parentheses the parser accepts.
const MAX_DEPTH: usize = 64;
/// Largest output, and largest single string value, in bytes.
const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// Most evaluation steps (nodes, loop iterations, calls) of one render.
const MAX_STEPS: u64 = 10_000_000;
/// Most elements a function may produce (`split`, `until`, `regexFindAll`...).
const MAX_PARTS: usize = 100_000;
/// Largest width or precision `printf` accepts (as Go's `fmt`).
const MAX_WIDTH: usize = 1_000_000;

/// A parsed template, ready to be rendered any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<parse::Node>,
    defines: parse::Defines,
}

impl Template {
    /// Parses `src`. Fails with [`Error::Parse`] naming `line:col` and the
    /// problem (unclosed action, unexpected `{{end}}`, unknown function,
    /// undefined variable, ...).
    pub fn parse(src: &str) -> Result<Template> {
        let (nodes, defines) = parse::parse(src)?;
        Ok(Template { nodes, defines })
    }

    /// Renders the template with `data` as `.` (and `$`). Fails with
    /// [`Error::Exec`].
    pub fn render(&self, data: &Value) -> Result<String> {
        exec::execute(&self.nodes, &self.defines, data)
    }
}

/// Parses and renders `src` with `data` in one go.
pub fn render(src: &str, data: &Value) -> Result<String> {
    Template::parse(src)?.render(data)
}
