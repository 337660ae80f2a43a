//! Sprig v2's arithmetic: integers through `toInt64` (`add add1 sub div mod
//! mul max biggest min`), floats through `toFloat64` (`floor ceil round`),
//! and the conversions `atoi int int64 float64 toDecimal`.

use serde_json::Value;

use super::args::{float_value, int_arg, take, to_float64, to_int64, want_at_least, FnResult};
use crate::value::display;

pub(crate) const NAMES: &[&str] = &[
    "add",
    "add1",
    "sub",
    "div",
    "mod",
    "mul",
    "max",
    "biggest",
    "min",
    "floor",
    "ceil",
    "round",
    "atoi",
    "int",
    "int64",
    "float64",
    "toDecimal",
];

fn overflow(name: &str) -> String {
    format!("{name}: integer overflow")
}

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    let ints: Vec<i64> = vals.iter().map(to_int64).collect();
    match name {
        "add" => ints
            .iter()
            .try_fold(0i64, |a, b| a.checked_add(*b))
            .map(Value::from)
            .ok_or_else(|| overflow(name)),
        "add1" => {
            let [a] = take(&ints)?;
            a.checked_add(1)
                .map(Value::from)
                .ok_or_else(|| overflow(name))
        }
        "sub" => {
            let [a, b] = take(&ints)?;
            a.checked_sub(*b)
                .map(Value::from)
                .ok_or_else(|| overflow(name))
        }
        "mul" => {
            want_at_least(&ints, 1)?;
            ints.iter()
                .try_fold(1i64, |a, b| a.checked_mul(*b))
                .map(Value::from)
                .ok_or_else(|| overflow(name))
        }
        "div" | "mod" => {
            let [a, b] = take(&ints)?;
            if *b == 0 {
                return Err("integer divide by zero".to_string());
            }
            let r = if name == "div" {
                a.checked_div(*b)
            } else {
                a.checked_rem(*b)
            };
            r.map(Value::from).ok_or_else(|| overflow(name))
        }
        "max" | "biggest" | "min" => {
            want_at_least(&ints, 1)?;
            let it = ints.iter().copied();
            let r = if name == "min" { it.min() } else { it.max() };
            Ok(Value::from(r.unwrap_or(0)))
        }
        "floor" | "ceil" => {
            let [a] = take(&vals)?;
            let f = to_float64(a);
            Ok(float_value(if name == "floor" {
                f.floor()
            } else {
                f.ceil()
            }))
        }
        "round" => {
            if vals.len() < 2 || vals.len() > 3 {
                return Err(format!(
                    "wrong number of arguments: want 2 or 3, got {}",
                    vals.len()
                ));
            }
            let val = to_float64(&vals[0]);
            let places = int_arg(&vals[1])?;
            let round_on = vals.get(2).map_or(0.5, to_float64);
            let pow = 10f64.powi(places.clamp(-400, 400) as i32);
            let digit = pow * val;
            let frac = digit.fract();
            let r = if frac >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(float_value(r / pow))
        }
        "atoi" => {
            let [a] = take(&vals)?;
            Ok(Value::from(display(a).parse::<i64>().unwrap_or(0)))
        }
        "int" | "int64" => {
            let [a] = take(&ints)?;
            Ok(Value::from(*a))
        }
        "float64" => {
            let [a] = take(&vals)?;
            Ok(float_value(to_float64(a)))
        }
        "toDecimal" => {
            let [a] = take(&vals)?;
            Ok(Value::from(
                i64::from_str_radix(&display(a), 8).unwrap_or(0),
            ))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}
