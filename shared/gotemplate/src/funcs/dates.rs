//! Sprig's date functions (`now date dateInZone date_in_zone htmlDate
//! htmlDateInZone dateModify date_modify ago toDate unixEpoch`). Layouts are
//! Go's (`2006-01-02`); "Local" is UTC, as on ACR's build agents.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde_json::{Map, Value};

use super::args::{take, FnResult, Res};
use super::golayout;
use crate::value::{display, special, type_name, Special, TIME_TAG};

pub(crate) const NAMES: &[&str] = &[
    "now",
    "date",
    "dateInZone",
    "date_in_zone",
    "htmlDate",
    "htmlDateInZone",
    "dateModify",
    "date_modify",
    "ago",
    "toDate",
    "unixEpoch",
];

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    let s = |v: String| Ok(Value::String(v));
    match name {
        "now" => {
            super::args::want(&vals, 0)?;
            Ok(time_value(&Utc::now().fixed_offset()))
        }
        "date" => {
            let [layout, t] = take(&vals)?;
            s(in_zone(&display(layout), t, "Local"))
        }
        "dateInZone" | "date_in_zone" => {
            let [layout, t, zone] = take(&vals)?;
            s(in_zone(&display(layout), t, &display(zone)))
        }
        "htmlDate" => {
            let [t] = take(&vals)?;
            s(in_zone("2006-01-02", t, "Local"))
        }
        "htmlDateInZone" => {
            let [t, zone] = take(&vals)?;
            s(in_zone("2006-01-02", t, &display(zone)))
        }
        "dateModify" | "date_modify" => {
            let [d, t] = take(&vals)?;
            let t = time_arg(t)?;
            Ok(match parse_duration(&display(d)) {
                Some(nanos) => time_value(&(t + chrono::Duration::nanoseconds(nanos))),
                None => time_value(&t),
            })
        }
        "ago" => {
            let [t] = take(&vals)?;
            let then = instant(t).unwrap_or_else(|| Utc::now().fixed_offset());
            let nanos = (Utc::now().fixed_offset() - then)
                .num_nanoseconds()
                .unwrap_or(i64::MAX);
            s(duration_string(round_to_second(nanos)))
        }
        "toDate" => {
            let [layout, v] = take(&vals)?;
            let t = golayout::parse(&display(layout), &display(v)).unwrap_or_else(zero_time);
            Ok(time_value(&t))
        }
        "unixEpoch" => {
            let [t] = take(&vals)?;
            s(time_arg(t)?.timestamp().to_string())
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

/// Go's zero `time.Time`: January 1, year 1, UTC.
fn zero_time() -> DateTime<FixedOffset> {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        .fixed_offset()
}

/// A time as a template value (see [`crate::value::TIME_TAG`]).
pub(crate) fn time_value(t: &DateTime<FixedOffset>) -> Value {
    let mut m = Map::new();
    m.insert(
        TIME_TAG.to_string(),
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
    );
    Value::Object(m)
}

fn stored(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

/// The instant a date argument names: a time, or Unix seconds.
fn instant(v: &Value) -> Option<DateTime<FixedOffset>> {
    match (special(v), v) {
        (Some(Special::Time(t)), _) => stored(t),
        (None, Value::Number(n)) => n
            .as_i64()
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
            .map(|t| t.fixed_offset()),
        _ => None,
    }
}

fn time_arg(v: &Value) -> Res<DateTime<FixedOffset>> {
    match special(v) {
        Some(Special::Time(t)) => stored(t).ok_or_else(|| "invalid time".to_string()),
        _ => Err(format!("expected a time, got {}", type_name(v))),
    }
}

/// Sprig's `dateInZone`: times and Unix seconds are formatted, anything
/// else is taken as now; unknown zones are UTC (as in Sprig).
fn in_zone(layout: &str, t: &Value, zone: &str) -> String {
    let t = instant(t).unwrap_or_else(|| Utc::now().fixed_offset());
    match zone {
        "" | "UTC" | "Local" => golayout::format(layout, &t.with_timezone(&Utc), "UTC"),
        name => match chrono_tz::Tz::from_str(name) {
            Ok(tz) => {
                let local = t.with_timezone(&tz);
                let abbrev = local.offset().to_string();
                golayout::format(layout, &local, &abbrev)
            }
            Err(_) => golayout::format(layout, &t.with_timezone(&Utc), "UTC"),
        },
    }
}

/// How Go prints a `time.Time` (`2006-01-02 15:04:05.999999999 -0700 MST`).
pub(crate) fn time_display(text: &str) -> String {
    let Some(t) = stored(text) else {
        return text.to_string();
    };
    let layout = "2006-01-02 15:04:05.999999999 -0700 MST";
    if t.offset().local_minus_utc() == 0 {
        golayout::format(layout, &t.with_timezone(&Utc), "UTC")
    } else {
        golayout::format(layout, &t, "")
    }
}

/// Go's `time.ParseDuration` in nanoseconds (`1h30m`, `-1.5h`, `300ms`).
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        let number = &rest[..n];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit: f64 = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let nanos = total.round() as i64;
    Some(if neg { -nanos } else { nanos })
}

/// Go's `Duration.Round(time.Second)`: halves away from zero.
fn round_to_second(nanos: i64) -> i64 {
    const SEC: i64 = 1_000_000_000;
    let r = nanos % SEC;
    let base = nanos - r;
    if r.abs() * 2 >= SEC {
        base.saturating_add(if nanos < 0 { -SEC } else { SEC })
    } else {
        base
    }
}

/// Go's `Duration.String` for whole seconds (`0s`, `1m5s`, `26h0m0s`).
pub(crate) fn duration_string(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let total = nanos.unsigned_abs();
    let secs = total / 1_000_000_000;
    let frac = total % 1_000_000_000;
    if secs == 0 {
        let (v, unit) = if frac < 1_000 {
            (frac as f64, "ns")
        } else if frac < 1_000_000 {
            (frac as f64 / 1e3, "µs")
        } else {
            (frac as f64 / 1e6, "ms")
        };
        return format!("{sign}{v}{unit}");
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = if frac == 0 {
        s.to_string()
    } else {
        let f = format!("{:09}", frac);
        format!("{s}.{}", f.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_as_go_does() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("-1.5h"), Some(-5_400_000_000_000));
        assert_eq!(parse_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(65_000_000_000), "1m5s");
        assert_eq!(duration_string(93_600_000_000_000), "26h0m0s");
        assert_eq!(duration_string(-5_000_000_000), "-5s");
        assert_eq!(round_to_second(1_500_000_000), 2_000_000_000);
        assert_eq!(round_to_second(1_499_999_999), 1_000_000_000);
    }

    #[test]
    fn times_print_as_go_prints_them() {
        assert_eq!(
            time_display("2024-03-05T10:11:12.5Z"),
            "2024-03-05 10:11:12.5 +0000 UTC"
        );
        assert_eq!(
            time_display("2024-03-05T10:11:12-07:00"),
            "2024-03-05 10:11:12 -0700 -0700"
        );
    }
}
