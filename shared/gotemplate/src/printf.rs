//! Go's `fmt` for `printf`: verbs, flags, width and precision, and Go's
//! formatting of floats and quoted strings.

use serde_json::Value;

use crate::value::{display, go_value, type_name};
use crate::MAX_WIDTH;

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

/// Go's `fmt.Sprintf` for the verbs listed in the crate docs.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
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
pub(crate) fn go_float_g(f: f64, prec: Option<usize>, upper: bool) -> String {
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
pub(crate) fn go_quote(s: &str, quote: char) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
