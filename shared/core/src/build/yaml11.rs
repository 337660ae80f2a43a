//! What a plain (unquoted) YAML scalar means under YAML 1.1, as
//! `gopkg.in/yaml.v2` resolves it when it decodes into an `interface{}`:
//! ACR reads values files with that library, so `push: no` is the boolean
//! false and `mode: 0755` the number 493 there, where YAML 1.2 (the
//! `yaml-rust2` loader) would read the text `no` and the number 755.
//!
//! Hand-written: no maintained Rust YAML crate offers YAML 1.1 resolution
//! (serde_yaml is unmaintained and was 1.2 too); the rules are short and
//! listed here.
//! - null: empty, `~`, `null`, `Null`, `NULL`;
//! - booleans: `y Y yes Yes YES on On ON true True TRUE` and
//!   `n N no No NO off Off OFF false False FALSE`;
//! - integers: an optional sign, then decimal, `0x` hex, `0o` or a leading
//!   `0` octal, `0b` binary, with `_` anywhere ignored (Go's
//!   `strconv.ParseInt(s, 0, 64)`, then `ParseUint` for large positives);
//! - floats: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` after
//!   removing `_`, and `.5`-style text; `.inf`, `.nan` and their spellings
//!   have no JSON number and stay text;
//! - everything else, timestamps included (yaml.v2 hands those to an
//!   `interface{}` as the text), is a string.

use serde_json::{Number, Value};

/// The value of a plain scalar's text.
pub(crate) fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let first = text.as_bytes().first().copied().unwrap_or(b' ');
    if first == b'.' {
        return float(text).unwrap_or_else(|| Value::String(text.to_string()));
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Value::String(text.to_string());
    }
    let plain = text.replace('_', "");
    if let Some(n) = go_int(&plain) {
        return n;
    }
    if yaml_style_float(&plain) {
        if let Some(v) = float(&plain) {
            return v;
        }
    }
    Value::String(text.to_string())
}

/// Go's `ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`: sign, base
/// prefix, digits.
fn go_int(s: &str) -> Option<Value> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = rest.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok()?;
    if negative {
        let n = i128::try_from(magnitude).ok()?.checked_neg()?;
        i64::try_from(n).ok().map(Value::from)
    } else if let Ok(n) = i64::try_from(magnitude) {
        Some(Value::from(n))
    } else {
        u64::try_from(magnitude).ok().map(Value::from)
    }
}

/// yaml.v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        None => digits(mantissa),
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// A finite float as a JSON number (Go's `ParseFloat` accepts what Rust's
/// does for these shapes).
fn float(s: &str) -> Option<Value> {
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_scalars_resolve_as_yaml_v2_does() {
        let cases = [
            ("", json!(null)),
            ("~", json!(null)),
            ("NULL", json!(null)),
            ("yes", json!(true)),
            ("Y", json!(true)),
            ("On", json!(true)),
            ("no", json!(false)),
            ("OFF", json!(false)),
            ("False", json!(false)),
            ("017", json!(15)),
            ("0o17", json!(15)),
            ("0x1F", json!(31)),
            ("-0b101", json!(-5)),
            ("1_000", json!(1000)),
            ("+42", json!(42)),
            ("18446744073709551615", json!(18446744073709551615u64)),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000.0)),
            (".5", json!(0.5)),
            ("08", json!(8.0)),
            ("3.", json!(3.0)),
            // text
            ("yEs", json!("yEs")),
            ("tRue", json!("tRue")),
            (".inf", json!(".inf")),
            ("2001-12-14", json!("2001-12-14")),
            ("1.2.3", json!("1.2.3")),
            ("0x", json!("0x")),
            ("-", json!("-")),
            ("v1", json!("v1")),
            ("99999999999999999999", json!(99999999999999999999.0)),
        ];
        for (text, want) in cases {
            assert_eq!(resolve_plain(text), want, "{text}");
        }
    }
}
