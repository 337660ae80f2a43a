//! Five-field cron schedules in UTC, as timer triggers use them.
//!
//! ```text
//! ┌───────────── minute        0-59
//! │ ┌─────────── hour          0-23
//! │ │ ┌───────── day-of-month  1-31
//! │ │ │ ┌─────── month         1-12 or JAN-DEC
//! │ │ │ │ ┌───── day-of-week   0-7 or SUN-SAT (0 and 7 are Sunday)
//! * * * * *
//! ```
//!
//! Each field is a comma-separated list of items; an item is `*`, a value
//! `5`, a range `1-5`, or any of those with a step: `*/15`, `10-50/10`, and
//! `5/15` (from 5 to the end of the field, every 15). Names are
//! case-insensitive and may appear in ranges (`MON-FRI`, `jan-mar`); a range
//! ending in `SUN` runs to the end of the week (`FRI-SUN`). A range must not be
//! reversed (`5-1` is an error). Times are UTC and a schedule fires at most once
//! a minute: there is no seconds field.
//!
//! Day-of-month and day-of-week follow Vixie cron: when both fields are
//! restricted, a day matches if EITHER matches (`0 0 1 * MON` fires on the
//! first of the month and on every Monday). As in Vixie cron, a field counts
//! as unrestricted when it begins with `*`, so `0 0 */2 * MON` fires on odd
//! days that are also Mondays.
//!
//! Macros:
//!
//! | macro | same as | fires |
//! |---|---|---|
//! | `@hourly` | `0 * * * *` | at the start of every hour |
//! | `@daily`, `@midnight` | `0 0 * * *` | every day at 00:00 UTC |
//! | `@weekly` | `0 0 * * 0` | every Sunday at 00:00 UTC |
//! | `@monthly` | `0 0 1 * *` | on the first of every month at 00:00 UTC |
//! | `@yearly`, `@annually` | `0 0 1 1 *` | on 1 January at 00:00 UTC |
//!
//! Not supported, each with its own error: a seconds or year field, `@every`,
//! `@reboot`, and the Quartz extensions `?`, `L`, `W` and `#`. A schedule that
//! can never fire (`* * 31 2 *`) is rejected when parsed; `0 0 29 2 *` is
//! accepted and fires in leap years.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};

use crate::{Error, Result};

/// How far [`Cron::next_after`] and the backward search look before giving up.
///
/// Every schedule that parses fires within about twelve years (a fixed date
/// falling on a given weekday, or 29 February); the margin keeps the search
/// bounded without ever missing a real occurrence.
pub const SEARCH_YEARS: i32 = 30;

const FIELDS_HINT: &str = "minute hour day-of-month month day-of-week";

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The rules of one of the five fields.
struct FieldSpec {
    name: &'static str,
    /// Smallest value accepted.
    min: u32,
    /// Largest value accepted (7 for day-of-week, which means Sunday).
    max: u32,
    /// Largest value `*` stands for (6 for day-of-week).
    star_max: u32,
    /// Names for `name_base`, `name_base + 1`, ...
    names: &'static [&'static str],
    name_base: u32,
    /// How to describe valid names in errors.
    names_hint: &'static str,
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    star_max: 59,
    names: &[],
    name_base: 0,
    names_hint: "",
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    star_max: 23,
    names: &[],
    name_base: 0,
    names_hint: "",
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    star_max: 31,
    names: &[],
    name_base: 0,
    names_hint: "",
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    star_max: 12,
    names: &MONTH_NAMES,
    name_base: 1,
    names_hint: "a month name JAN-DEC",
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    star_max: 6,
    names: &WEEKDAY_NAMES,
    name_base: 0,
    names_hint: "a weekday name SUN-SAT",
};

/// The expanded fields of a [`Cron`]: bit `n` of each mask is set when value
/// `n` matches (weekdays 0 = Sunday .. 6 = Saturday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CronFields {
    pub minutes: u64,
    pub hours: u64,
    pub days: u64,
    pub months: u64,
    pub weekdays: u64,
    /// The day-of-month field begins with `*`.
    pub dom_star: bool,
    /// The day-of-week field begins with `*`.
    pub dow_star: bool,
}

/// A parsed five-field cron schedule, evaluated in UTC.
///
/// Two schedules are equal when their text and their expanded fields are
/// equal (`@daily` and `0 0 * * *` fire alike but are not equal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// The text as given (trimmed).
    text: String,
    /// Bit `m` set for each matching minute 0-59.
    minutes: u64,
    /// Bit `h` set for each matching hour 0-23.
    hours: u32,
    /// Bit `d` set for each matching day of the month 1-31.
    days: u32,
    /// Bit `m` set for each matching month 1-12.
    months: u16,
    /// Bit `d` set for each matching weekday, 0 = Sunday .. 6 = Saturday.
    weekdays: u8,
    /// The day-of-month field begins with `*` (Vixie: unrestricted).
    dom_star: bool,
    /// The day-of-week field begins with `*` (Vixie: unrestricted).
    dow_star: bool,
}

impl Cron {
    /// Parse a schedule: five fields, UTC: minute hour day-of-month month
    /// day-of-week, or one of the macros in the [module docs](self).
    ///
    /// Errors are [`Error::Invalid`] and name the field and the bad value,
    /// e.g. `minute field '61' is out of range 0-59`.
    pub fn parse(s: &str) -> Result<Cron> {
        let text = s.trim();
        if text.contains(':') {
            return Err(Error::invalid(format!(
                "cron expression '{text}' contains ':': a named timer is written NAME:CRON, \
                 the name using letters, digits, '-' or '_'"
            )));
        }
        let expanded = if text.starts_with('@') {
            expand_macro(text)?
        } else {
            text
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields.as_slice() else {
            return Err(Error::invalid(format!(
                "expected 5 fields ({FIELDS_HINT}), got {}",
                fields.len()
            )));
        };
        let minutes = parse_field(&MINUTE, minute)?;
        let hours = parse_field(&HOUR, hour)?;
        let days = parse_field(&DAY_OF_MONTH, dom)?;
        let months = parse_field(&MONTH, month)?;
        let mut weekdays = parse_field(&DAY_OF_WEEK, dow)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        let cron = Cron {
            text: text.to_string(),
            minutes,
            // The masks only hold bits up to each field's maximum.
            hours: u32::try_from(hours).unwrap_or(0),
            days: u32::try_from(days).unwrap_or(0),
            months: u16::try_from(months).unwrap_or(0),
            weekdays: u8::try_from(weekdays).unwrap_or(0),
            dom_star: dom.starts_with('*'),
            dow_star: dow.starts_with('*'),
        };
        cron.check_can_fire(dom, month)?;
        Ok(cron)
    }

    /// The text the schedule was parsed from (trimmed; macros as written).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The expanded fields, for translating the schedule to another cron
    /// dialect ([`crate::trigger::timer::scheduler::scheduler_expression`]).
    pub(crate) fn fields(&self) -> CronFields {
        CronFields {
            minutes: self.minutes,
            hours: u64::from(self.hours),
            days: u64::from(self.days),
            months: u64::from(self.months),
            weekdays: u64::from(self.weekdays),
            dom_star: self.dom_star,
            dow_star: self.dow_star,
        }
    }

    /// Whether the minute of `t` matches (seconds and below are ignored).
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        self.month_ok(t.month())
            && self.day_ok(t.year(), t.month(), t.day())
            && self.hour_ok(t.hour())
            && self.minute_ok(t.minute())
    }

    /// The first matching minute strictly after `t` (seconds zeroed).
    ///
    /// Skips whole months, days and hours that cannot match, so the cost does
    /// not grow with the gap. `None` when nothing matches within
    /// [`SEARCH_YEARS`] years (never for a schedule that parsed) or the time
    /// would leave chrono's range.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = truncate_minute(t)?.checked_add_signed(Duration::minutes(1))?;
        let mut c = Cursor::from(start);
        let last_year = c.y.saturating_add(SEARCH_YEARS);
        loop {
            if c.y > last_year {
                return None;
            }
            if !self.month_ok(c.mo) {
                match next_bit(u64::from(self.months), c.mo + 1, 12) {
                    Some(m) => c.mo = m,
                    None => {
                        c.y = c.y.checked_add(1)?;
                        c.mo = next_bit(u64::from(self.months), 1, 12)?;
                    }
                }
                c.set_day_start(1);
                continue;
            }
            if c.d > days_in_month(c.y, c.mo) {
                c.next_month()?;
                continue;
            }
            if !self.day_ok(c.y, c.mo, c.d) {
                c.set_day_start(c.d + 1);
                continue;
            }
            if !self.hour_ok(c.h) {
                match next_bit(u64::from(self.hours), c.h + 1, 23) {
                    Some(h) => {
                        c.h = h;
                        c.mi = 0;
                    }
                    None => c.set_day_start(c.d + 1),
                }
                continue;
            }
            match next_bit(self.minutes, c.mi, 59) {
                Some(m) => {
                    c.mi = m;
                    return c.to_utc();
                }
                None => {
                    if c.h >= 23 {
                        c.set_day_start(c.d + 1);
                    } else {
                        c.h += 1;
                        c.mi = 0;
                    }
                }
            }
        }
    }

    /// Every matching minute in `(from, to]`, oldest first, at most `limit`.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(t) if t <= to => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }

    /// The last matching minute at or before `t` (seconds of `t` ignored).
    ///
    /// The mirror of [`Cron::next_after`], bounded the same way.
    pub fn prev_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut c = Cursor::from(truncate_minute(t)?);
        let first_year = c.y.saturating_sub(SEARCH_YEARS);
        loop {
            if c.y < first_year {
                return None;
            }
            if !self.month_ok(c.mo) {
                match prev_bit(u64::from(self.months), c.mo.checked_sub(1)?, 1) {
                    Some(m) => c.mo = m,
                    None => {
                        c.y = c.y.checked_sub(1)?;
                        c.mo = prev_bit(u64::from(self.months), 12, 1)?;
                    }
                }
                c.set_day_end(days_in_month(c.y, c.mo));
                continue;
            }
            if !self.day_ok(c.y, c.mo, c.d) {
                c.prev_day()?;
                continue;
            }
            if !self.hour_ok(c.h) {
                match c
                    .h
                    .checked_sub(1)
                    .and_then(|h| prev_bit(u64::from(self.hours), h, 0))
                {
                    Some(h) => {
                        c.h = h;
                        c.mi = 59;
                    }
                    None => c.prev_day()?,
                }
                continue;
            }
            match prev_bit(self.minutes, c.mi, 0) {
                Some(m) => {
                    c.mi = m;
                    return c.to_utc();
                }
                None => {
                    if c.h == 0 {
                        c.prev_day()?;
                    } else {
                        c.h -= 1;
                        c.mi = 59;
                    }
                }
            }
        }
    }

    fn minute_ok(&self, m: u32) -> bool {
        m < 64 && self.minutes & (1u64 << m) != 0
    }

    fn hour_ok(&self, h: u32) -> bool {
        h < 32 && self.hours & (1u32 << h) != 0
    }

    fn month_ok(&self, m: u32) -> bool {
        m < 16 && self.months & (1u16 << m) != 0
    }

    /// Day-of-month and day-of-week combined the Vixie way.
    fn day_ok(&self, y: i32, mo: u32, d: u32) -> bool {
        let dom = d < 32 && self.days & (1u32 << d) != 0;
        let dow = match NaiveDate::from_ymd_opt(y, mo, d) {
            Some(date) => self.weekdays & (1u8 << date.weekday().num_days_from_sunday()) != 0,
            None => return false,
        };
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Reject a schedule whose days of the month never occur in its months.
    ///
    /// Only the day-of-month field can make a schedule impossible: when both
    /// day fields are restricted either one may match (and every weekday comes
    /// round), and a `*`-prefixed day-of-month always contains the 1st. A
    /// (month, day) pair that exists at all falls on every weekday in some
    /// year, so checking the pairs is enough.
    fn check_can_fire(&self, dom_text: &str, month_text: &str) -> Result<()> {
        if self.dom_star || !self.dow_star {
            return Ok(());
        }
        let possible = (1..=12u32).any(|m| {
            self.month_ok(m) && (1..=max_days_in_month(m)).any(|d| self.days & (1u32 << d) != 0)
        });
        if possible {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "day-of-month {dom_text} never occurs in month {month_text}: this schedule would never fire"
            )))
        }
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Cron {
    type Err = Error;

    fn from_str(s: &str) -> Result<Cron> {
        Cron::parse(s)
    }
}

/// Split `[NAME:]CRON` as the CLI takes it: `(Some(name), cron)` when the text
/// before the first `:` is a name of ASCII letters, digits, `-` or `_`,
/// otherwise `(None, whole text)`. Cron text never contains `:`, so the split
/// is unambiguous; both parts come back trimmed of surrounding whitespace
/// (the name must touch the `:`).
pub fn split_named(spec: &str) -> (Option<&str>, &str) {
    let spec = spec.trim();
    match spec.split_once(':') {
        Some((name, cron))
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            (Some(name), cron.trim())
        }
        _ => (None, spec),
    }
}

/// The five-field form of a macro.
fn expand_macro(text: &str) -> Result<&'static str> {
    let mut words = text.split_whitespace();
    let word = words.next().unwrap_or_default();
    let lower = word.to_ascii_lowercase();
    if lower.starts_with("@every") {
        return Err(Error::invalid(format!(
            "'{word}' is not supported: use a 5-field cron, e.g. '*/15 * * * *' for every 15 minutes"
        )));
    }
    let fields = match lower.as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        "@reboot" => {
            return Err(Error::invalid(
                "'@reboot' is not supported: a timer fires on a schedule; use a 5-field cron",
            ))
        }
        _ => {
            return Err(Error::invalid(format!(
                "unknown cron macro '{word}': use @hourly, @daily, @midnight, @weekly, @monthly, \
                 @yearly or @annually, or 5 fields ({FIELDS_HINT})"
            )))
        }
    };
    if words.next().is_some() {
        return Err(Error::invalid(format!(
            "cron macro '{word}' must stand alone, got '{text}'"
        )));
    }
    Ok(fields)
}

/// Expand one field into a bit set (bit `v` for each value `v`).
fn parse_field(spec: &FieldSpec, text: &str) -> Result<u64> {
    let name = spec.name;
    let mut mask = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(Error::invalid(format!(
                "{name} field '{text}' has an empty list item"
            )));
        }
        reject_quartz(spec, item)?;
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(spec, item, step)?)),
            None => (item, None),
        };
        if range.is_empty() {
            return Err(Error::invalid(format!(
                "{name} field '{item}' is missing a value before '/'"
            )));
        }
        let (lo, hi) = if range == "*" {
            (spec.min, spec.star_max)
        } else if let Some((a, b)) = range.split_once('-') {
            if a.is_empty() || b.is_empty() || b.contains('-') {
                return Err(Error::invalid(format!(
                    "{name} field '{item}' is not a valid range: write it as FROM-TO, e.g. 1-5"
                )));
            }
            let lo = parse_value(spec, a)?;
            let mut hi = parse_value(spec, b)?;
            // `FRI-SUN`: a range that ends on Sunday by name runs to the week's end.
            if spec.name == DAY_OF_WEEK.name && hi == 0 && lo > 0 && !is_number(b) {
                hi = 7;
            }
            if lo > hi {
                return Err(Error::invalid(format!(
                    "{name} field range '{range}' is reversed: write the smaller value first"
                )));
            }
            (lo, hi)
        } else {
            let v = parse_value(spec, range)?;
            match step {
                // `5/15`: from 5 to the end of the field, every 15.
                Some(_) => (v, spec.star_max.max(v)),
                None => (v, v),
            }
        };
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            mask |= 1u64 << v;
            v += step;
        }
    }
    Ok(mask)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A step after `/`: 1 up to the width of the field.
fn parse_step(spec: &FieldSpec, item: &str, step: &str) -> Result<u32> {
    let name = spec.name;
    let span = spec.star_max - spec.min;
    if step.is_empty() {
        return Err(Error::invalid(format!(
            "{name} field '{item}' has an empty step after '/'"
        )));
    }
    if !is_number(step) {
        return Err(Error::invalid(format!(
            "{name} field step '{step}' in '{item}' is not a number"
        )));
    }
    match step.parse::<u32>() {
        Ok(0) => Err(Error::invalid(format!(
            "{name} field step '0' in '{item}' must be at least 1"
        ))),
        Ok(n) if n <= span => Ok(n),
        _ => Err(Error::invalid(format!(
            "{name} field step '{step}' in '{item}' is out of range 1-{span}"
        ))),
    }
}

/// One value: a number in range or, where the field has them, a name.
fn parse_value(spec: &FieldSpec, tok: &str) -> Result<u32> {
    let name = spec.name;
    let (min, max) = (spec.min, spec.max);
    if is_number(tok) {
        return match tok.parse::<u32>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(Error::invalid(format!(
                "{name} field '{tok}' is out of range {min}-{max}"
            ))),
        };
    }
    let upper = tok.to_ascii_uppercase();
    if let Some(i) = spec.names.iter().position(|n| *n == upper) {
        // At most 12 names, so the index fits.
        return Ok(spec.name_base + u32::try_from(i).unwrap_or(0));
    }
    if spec.names.is_empty() {
        Err(Error::invalid(format!(
            "{name} field '{tok}' is not a number {min}-{max}"
        )))
    } else {
        Err(Error::invalid(format!(
            "{name} field '{tok}' is not a number {min}-{max} or {}",
            spec.names_hint
        )))
    }
}

/// Clear errors for the Quartz-style extensions some cron dialects accept.
fn reject_quartz(spec: &FieldSpec, item: &str) -> Result<()> {
    let name = spec.name;
    if item.contains('?') {
        return Err(Error::invalid(format!(
            "'?' is not supported in the {name} field '{item}': use '*'"
        )));
    }
    if item.contains('#') {
        return Err(Error::invalid(format!(
            "'#' (nth weekday of the month) is not supported in the {name} field '{item}'"
        )));
    }
    // `L`, `LW`, `5L`, `15W`: digits followed by L and/or W. Names such as
    // JUL or WED are not caught, because they contain other letters.
    let upper = item.to_ascii_uppercase();
    let letters = upper.trim_start_matches(|c: char| c.is_ascii_digit());
    let what = match letters {
        "L" => Some("'L' (last)"),
        "W" => Some("'W' (nearest weekday)"),
        "LW" => Some("'LW' (last weekday)"),
        _ => None,
    };
    match what {
        Some(what) => Err(Error::invalid(format!(
            "{what} is not supported in the {name} field '{item}': use numbers, names, ranges, lists and steps"
        ))),
        None => Ok(()),
    }
}

/// The smallest set bit in `from..=to`.
fn next_bit(mask: u64, from: u32, to: u32) -> Option<u32> {
    (from..=to.min(63)).find(|v| mask & (1u64 << v) != 0)
}

/// The largest set bit in `to..=from` (searching downwards from `from`).
fn prev_bit(mask: u64, from: u32, to: u32) -> Option<u32> {
    (to..=from.min(63)).rev().find(|v| mask & (1u64 << v) != 0)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The most days month `m` ever has (29 for February).
fn max_days_in_month(m: u32) -> u32 {
    match m {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn truncate_minute(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    t.with_second(0)?.with_nanosecond(0)
}

/// A calendar position, minute precision, that may briefly hold a day past
/// the end of its month while searching forwards.
struct Cursor {
    y: i32,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
}

impl Cursor {
    fn from(t: DateTime<Utc>) -> Cursor {
        Cursor {
            y: t.year(),
            mo: t.month(),
            d: t.day(),
            h: t.hour(),
            mi: t.minute(),
        }
    }

    fn to_utc(&self) -> Option<DateTime<Utc>> {
        Utc.with_ymd_and_hms(self.y, self.mo, self.d, self.h, self.mi, 0)
            .single()
    }

    /// 00:00 of day `d` of the current month (may pass the month's end).
    fn set_day_start(&mut self, d: u32) {
        self.d = d;
        self.h = 0;
        self.mi = 0;
    }

    /// 23:59 of day `d` of the current month.
    fn set_day_end(&mut self, d: u32) {
        self.d = d;
        self.h = 23;
        self.mi = 59;
    }

    /// 00:00 on the first of the next month.
    fn next_month(&mut self) -> Option<()> {
        if self.mo >= 12 {
            self.y = self.y.checked_add(1)?;
            self.mo = 1;
        } else {
            self.mo += 1;
        }
        self.set_day_start(1);
        Some(())
    }

    /// 23:59 of the previous day.
    fn prev_day(&mut self) -> Option<()> {
        if self.d > 1 {
            self.set_day_end(self.d - 1);
        } else {
            if self.mo <= 1 {
                self.y = self.y.checked_sub(1)?;
                self.mo = 12;
            } else {
                self.mo -= 1;
            }
            self.set_day_end(days_in_month(self.y, self.mo));
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cron, t};

    fn err(s: &str) -> String {
        match Cron::parse(s) {
            Ok(c) => panic!("'{s}' parsed as {c:?}"),
            Err(Error::Invalid(m)) => m,
            Err(e) => panic!("'{s}': wrong error kind {e:?}"),
        }
    }

    #[test]
    fn invalid_crons_name_field_and_value() {
        let cases: &[(&str, &str)] = &[
            ("61 * * * *", "minute field '61' is out of range 0-59"),
            ("* 24 * * *", "hour field '24' is out of range 0-23"),
            ("* * 0 * *", "day-of-month field '0' is out of range 1-31"),
            ("* * 32 * *", "day-of-month field '32' is out of range 1-31"),
            ("* * * 13 *", "month field '13' is out of range 1-12"),
            ("* * * 0 *", "month field '0' is out of range 1-12"),
            ("* * * * 8", "day-of-week field '8' is out of range 0-7"),
            ("99999999999 * * * *", "minute field '99999999999' is out of range 0-59"),
            (
                "0 * * * * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), got 6",
            ),
            (
                "* * * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), got 4",
            ),
            (
                "",
                "expected 5 fields (minute hour day-of-month month day-of-week), got 0",
            ),
            (
                "   ",
                "expected 5 fields (minute hour day-of-month month day-of-week), got 0",
            ),
            (
                "* * 31 2 *",
                "day-of-month 31 never occurs in month 2: this schedule would never fire",
            ),
            (
                "0 0 30 2 *",
                "day-of-month 30 never occurs in month 2: this schedule would never fire",
            ),
            (
                "0 0 31 4,6,9,11 *",
                "day-of-month 31 never occurs in month 4,6,9,11: this schedule would never fire",
            ),
            (
                "0 0 30,31 feb */2",
                "day-of-month 30,31 never occurs in month feb: this schedule would never fire",
            ),
            (
                "* * * JANUARY *",
                "month field 'JANUARY' is not a number 1-12 or a month name JAN-DEC",
            ),
            (
                "* * * foo *",
                "month field 'foo' is not a number 1-12 or a month name JAN-DEC",
            ),
            (
                "* * * * FUNDAY",
                "day-of-week field 'FUNDAY' is not a number 0-7 or a weekday name SUN-SAT",
            ),
            ("MON * * * *", "minute field 'MON' is not a number 0-59"),
            ("* * * MON *", "month field 'MON' is not a number 1-12 or a month name JAN-DEC"),
            ("* * * * JAN", "day-of-week field 'JAN' is not a number 0-7 or a weekday name SUN-SAT"),
            ("*/0 * * * *", "minute field step '0' in '*/0' must be at least 1"),
            ("*/60 * * * *", "minute field step '60' in '*/60' is out of range 1-59"),
            ("* */x * * *", "hour field step 'x' in '*/x' is not a number"),
            ("*/ * * * *", "minute field '*/' has an empty step after '/'"),
            (
                "5-1 * * * *",
                "minute field range '5-1' is reversed: write the smaller value first",
            ),
            (
                "* * * DEC-JAN *",
                "month field range 'DEC-JAN' is reversed: write the smaller value first",
            ),
            ("/5 * * * *", "minute field '/5' is missing a value before '/'"),
            ("1,,2 * * * *", "minute field '1,,2' has an empty list item"),
            (
                "-5 * * * *",
                "minute field '-5' is not a valid range: write it as FROM-TO, e.g. 1-5",
            ),
            (
                "1-2-3 * * * *",
                "minute field '1-2-3' is not a valid range: write it as FROM-TO, e.g. 1-5",
            ),
            ("*-5 * * * *", "minute field '*' is not a number 0-59"),
            ("0 0 ? * MON", "'?' is not supported in the day-of-month field '?': use '*'"),
            (
                "0 0 * * 5#3",
                "'#' (nth weekday of the month) is not supported in the day-of-week field '5#3'",
            ),
            (
                "0 0 L * *",
                "'L' (last) is not supported in the day-of-month field 'L': use numbers, names, ranges, lists and steps",
            ),
            (
                "0 0 * * 5L",
                "'L' (last) is not supported in the day-of-week field '5L': use numbers, names, ranges, lists and steps",
            ),
            (
                "0 0 15W * *",
                "'W' (nearest weekday) is not supported in the day-of-month field '15W': use numbers, names, ranges, lists and steps",
            ),
            (
                "0 0 LW * *",
                "'LW' (last weekday) is not supported in the day-of-month field 'LW': use numbers, names, ranges, lists and steps",
            ),
            (
                "@every 5m",
                "'@every' is not supported: use a 5-field cron, e.g. '*/15 * * * *' for every 15 minutes",
            ),
            (
                "@reboot",
                "'@reboot' is not supported: a timer fires on a schedule; use a 5-field cron",
            ),
            (
                "@fortnightly",
                "unknown cron macro '@fortnightly': use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually, or 5 fields (minute hour day-of-month month day-of-week)",
            ),
            ("@daily 5", "cron macro '@daily' must stand alone, got '@daily 5'"),
            (
                "t:* * * * *",
                "cron expression 't:* * * * *' contains ':': a named timer is written NAME:CRON, the name using letters, digits, '-' or '_'",
            ),
            ("é * * * *", "minute field 'é' is not a number 0-59"),
        ];
        for (input, want) in cases {
            assert_eq!(err(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn valid_crons_expand_as_expected() {
        // (cron, a time that matches, a time that does not)
        let cases: &[(&str, &str, &str)] = &[
            (
                "* * * * 1-5",
                "2026-03-04T05:06:30Z",
                "2026-03-07T05:06:00Z",
            ),
            (
                "*/15 * * * *",
                "2026-03-04T05:45:00Z",
                "2026-03-04T05:46:00Z",
            ),
            (
                "10-50/10 * * * *",
                "2026-03-04T05:50:00Z",
                "2026-03-04T05:55:00Z",
            ),
            (
                "5/20 * * * *",
                "2026-03-04T05:45:00Z",
                "2026-03-04T05:15:00Z",
            ),
            (
                "1,2,30-31 * * * *",
                "2026-03-04T05:31:00Z",
                "2026-03-04T05:29:00Z",
            ),
            (
                "0 9-17 * * MON-FRI",
                "2026-03-06T17:00:00Z",
                "2026-03-07T10:00:00Z",
            ),
            (
                "0 0 * jan-Mar *",
                "2026-02-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
            ),
            (
                "0 0 * * FRI-SUN",
                "2026-03-08T00:00:00Z",
                "2026-03-09T00:00:00Z",
            ),
            (
                "0 0 * * 5-7",
                "2026-03-08T00:00:00Z",
                "2026-03-05T00:00:00Z",
            ),
            ("0 0 29 2 *", "2028-02-29T00:00:00Z", "2026-03-01T00:00:00Z"),
            ("0 0 31 * *", "2026-01-31T00:00:00Z", "2026-03-30T00:00:00Z"),
            (
                "0 0 */30 2 *",
                "2026-02-01T00:00:00Z",
                "2026-03-01T00:00:00Z",
            ),
            (
                "  0 12 * * *  ",
                "2026-03-04T12:00:00Z",
                "2026-03-04T13:00:00Z",
            ),
        ];
        for (c, yes, no) in cases {
            let cron = cron(c);
            assert_eq!(cron.as_str(), c.trim());
            assert!(cron.matches(t(yes)), "{c} should match {yes}");
            assert!(!cron.matches(t(no)), "{c} should not match {no}");
        }
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        let sun = t("2026-03-08T00:00:00Z"); // a Sunday
        let mon = t("2026-03-09T00:00:00Z");
        for c in [
            "0 0 * * 0",
            "0 0 * * 7",
            "0 0 * * sun",
            "0 0 * * SUN",
            "@weekly",
        ] {
            let cron = cron(c);
            assert!(cron.matches(sun), "{c}");
            assert!(!cron.matches(mon), "{c}");
        }
        assert_eq!(cron("0 0 * * 0").weekdays, cron("0 0 * * 7").weekdays);
        assert_eq!(cron("0 0 * * 0-7").weekdays, 0b111_1111);
    }

    #[test]
    fn macros_equal_their_fields() {
        let cases = [
            ("@hourly", "0 * * * *"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@DAILY", "0 0 * * *"),
            ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"),
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
        ];
        let from = t("2026-05-17T13:27:00Z");
        for (m, fields) in cases {
            let a = cron(m);
            let b = cron(fields);
            assert_eq!(a.as_str(), m);
            let to = from + Duration::days(800);
            assert_eq!(
                a.occurrences(from, to, 50),
                b.occurrences(from, to, 50),
                "{m}"
            );
        }
    }

    #[test]
    fn next_after_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("* * * * *", "2026-03-04T05:06:07Z", "2026-03-04T05:07:00Z"),
            ("* * * * *", "2026-03-04T05:06:00Z", "2026-03-04T05:07:00Z"),
            (
                "* * * * *",
                "2026-12-31T23:59:59.999Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                "*/15 * * * *",
                "2026-03-04T05:46:00Z",
                "2026-03-04T06:00:00Z",
            ),
            ("30 2 * * *", "2026-01-31T03:00:00Z", "2026-02-01T02:30:00Z"),
            ("0 0 1 * *", "2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z"),
            ("0 0 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T00:00:00Z"),
            ("0 0 29 2 *", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            ("0 0 29 2 *", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"),
            // 2100 is not a leap year.
            ("0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"),
            (
                "0 0 * * MON",
                "2026-03-04T00:00:00Z",
                "2026-03-09T00:00:00Z",
            ),
            (
                "59 23 31 12 *",
                "2026-01-01T00:00:00Z",
                "2026-12-31T23:59:00Z",
            ),
            ("0 12 * 2 *", "2026-02-28T12:00:00Z", "2027-02-01T12:00:00Z"),
            (
                "0 0 30 */3 *",
                "2026-01-31T00:00:00Z",
                "2026-04-30T00:00:00Z",
            ),
            // OR rule: the 13th or any Friday, whichever comes first.
            (
                "0 0 13 * FRI",
                "2026-03-01T00:00:00Z",
                "2026-03-06T00:00:00Z",
            ),
            (
                "0 0 13 * FRI",
                "2026-03-06T00:00:00Z",
                "2026-03-13T00:00:00Z",
            ),
            (
                "0 0 13 * FRI",
                "2026-03-13T00:00:00Z",
                "2026-03-20T00:00:00Z",
            ),
            // Vixie: a `*`-prefixed day-of-month means AND: odd days that are Mondays.
            (
                "0 0 */2 * MON",
                "2026-03-01T00:00:00Z",
                "2026-03-09T00:00:00Z",
            ),
            // Both star-prefixed: 1st of February that is a Monday.
            (
                "0 0 */30 2 MON",
                "2026-01-01T00:00:00Z",
                "2027-02-01T00:00:00Z",
            ),
        ];
        for (c, after, want) in cases {
            assert_eq!(
                cron(c).next_after(t(after)),
                Some(t(want)),
                "{c} after {after}"
            );
        }
    }

    #[test]
    fn next_after_agrees_with_a_minute_scan() {
        let crons = [
            "*/7 3-5 * * *",
            "0,30 */6 1-3,28-31 * *",
            "15 10 * * TUE,sat",
            "0 0 13 * FRI",
            "0 0 */2 * MON",
            "59 23 28-31 2 *",
            "5/20 22-23 * 2-3 0",
        ];
        let from = t("2028-02-25T21:13:00Z");
        for c in crons {
            let cron = cron(c);
            let scanned: Vec<_> = (1..=60 * 24 * 10)
                .map(|i| from + Duration::minutes(i))
                .filter(|m| cron.matches(*m))
                .collect();
            let searched = cron.occurrences(from, from + Duration::days(10), usize::MAX);
            assert_eq!(searched, scanned, "{c}");
        }
    }

    #[test]
    fn dom_dow_or_rule() {
        let c = cron("0 0 1 * MON");
        // 2026-03-01 is a Sunday (dom match), 2026-03-02 a Monday (dow match).
        assert!(c.matches(t("2026-03-01T00:00:00Z")));
        assert!(c.matches(t("2026-03-02T00:00:00Z")));
        assert!(!c.matches(t("2026-03-03T00:00:00Z")));
        // Only one restricted: plain AND.
        let c = cron("0 0 * * MON");
        assert!(!c.matches(t("2026-03-01T00:00:00Z")));
        let c = cron("0 0 1 * *");
        assert!(!c.matches(t("2026-03-02T00:00:00Z")));
        // A restricted day-of-week rescues an impossible day-of-month.
        let c = cron("0 0 31 2 MON");
        assert_eq!(
            c.next_after(t("2026-03-04T00:00:00Z")),
            Some(t("2027-02-01T00:00:00Z"))
        );
    }

    #[test]
    fn occurrences_are_bounded_and_half_open() {
        let c = cron("*/10 * * * *");
        let got = c.occurrences(t("2026-01-01T00:00:00Z"), t("2026-01-01T01:00:00Z"), 100);
        let want: Vec<_> = (1..=6)
            .map(|i| t("2026-01-01T00:00:00Z") + Duration::minutes(10 * i))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            c.occurrences(t("2026-01-01T00:00:00Z"), t("2026-01-01T01:00:00Z"), 2)
                .len(),
            2
        );
        assert!(c
            .occurrences(t("2026-01-01T01:00:00Z"), t("2026-01-01T00:00:00Z"), 10)
            .is_empty());
        assert!(c
            .occurrences(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:09:59Z"), 10)
            .is_empty());
    }

    #[test]
    fn prev_mirrors_next() {
        let cases = [
            "* * * * *",
            "*/7 3-5 * * *",
            "0 0 29 2 *",
            "0 0 13 * FRI",
            "15 4 31 * *",
            "0 0 */2 * MON",
            "@yearly",
        ];
        let from = t("2026-01-01T00:00:00Z");
        for c in cases {
            let cron = cron(c);
            let occ = cron.occurrences(from, from + Duration::days(3000), 40);
            assert!(!occ.is_empty(), "{c}");
            for pair in occ.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                assert_eq!(cron.prev_at_or_before(b), Some(b), "{c}");
                assert_eq!(
                    cron.prev_at_or_before(b - Duration::seconds(1)),
                    Some(a),
                    "{c}"
                );
                assert_eq!(cron.next_after(a), Some(b), "{c}");
            }
        }
    }

    #[test]
    fn search_is_fast_and_terminates_at_the_edges() {
        // The slowest schedules still answer at once, not minute by minute.
        let c = cron("0 0 29 2 *");
        let mut at = t("2000-01-01T00:00:00Z");
        for _ in 0..100 {
            at = c
                .next_after(at)
                .unwrap_or_else(|| panic!("no next after {at}"));
        }
        assert_eq!(at, t("2408-02-29T00:00:00Z"));
        // Near the end of chrono's range there is nothing to find: None, no panic.
        assert_eq!(cron("* * * * *").next_after(DateTime::<Utc>::MAX_UTC), None);
        assert_eq!(
            cron("0 0 2 1 *").prev_at_or_before(DateTime::<Utc>::MIN_UTC),
            None
        );
        assert_eq!(
            cron("0 0 29 2 *").next_after(DateTime::<Utc>::MAX_UTC - Duration::days(400)),
            None
        );
    }

    #[test]
    fn split_named_table() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("nightly:0 3 * * *", Some("nightly"), "0 3 * * *"),
            ("t-1_x: */5 * * * *", Some("t-1_x"), "*/5 * * * *"),
            ("0 3 * * *", None, "0 3 * * *"),
            ("  @daily ", None, "@daily"),
            (":0 3 * * *", None, ":0 3 * * *"),
            ("bad name:0 3 * * *", None, "bad name:0 3 * * *"),
            ("a:b:c", Some("a"), "b:c"),
            ("", None, ""),
        ];
        for (spec, name, cron) in cases {
            assert_eq!(split_named(spec), (*name, *cron), "{spec:?}");
        }
    }

    #[test]
    fn display_and_from_str() {
        let c: Cron = "0 3 * * *".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.to_string(), "0 3 * * *");
        assert!("61 * * * *".parse::<Cron>().is_err());
    }
}
