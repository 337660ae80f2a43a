//! Go's reference-time layouts (`2006-01-02 15:04:05.000 -0700 MST`):
//! formatting and parsing. Hand-written: chrono speaks strftime, and Go's
//! layouts (`_2`, `.999`, `Z07:00`, `002`) do not map one to one.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, TimeZone, Timelike};

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PmUpper,
    PmLower,
    Tz,
    /// `Z07:00` style (`Z` for UTC) when `iso`; hours only, `:`, seconds
    Num {
        iso: bool,
        colon: bool,
        minutes: bool,
        seconds: bool,
    },
    /// fractional seconds: separator, digits, trailing zeros trimmed
    Frac(char, usize, bool),
}

enum Chunk<'a> {
    Lit(&'a str),
    Std(Std),
}

/// Go's `nextStdChunk`, applied to the whole layout.
fn chunks(layout: &str) -> Vec<Chunk<'_>> {
    let b = layout.as_bytes();
    let mut out = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    let starts = |i: usize, p: &str| b.get(i..i + p.len()) == Some(p.as_bytes());
    while i < b.len() {
        let found: Option<(Std, usize)> = match b[i] {
            b'J' if starts(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if starts(i, "Jan") => Some((Std::Month, 3)),
            b'M' if starts(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if starts(i, "Mon") => Some((Std::WeekDay, 3)),
            b'M' if starts(i, "MST") => Some((Std::Tz, 3)),
            b'0' if starts(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'0' => match b.get(i + 1) {
                Some(b'1') => Some((Std::ZeroMonth, 2)),
                Some(b'2') => Some((Std::ZeroDay, 2)),
                Some(b'3') => Some((Std::ZeroHour12, 2)),
                Some(b'4') => Some((Std::ZeroMinute, 2)),
                Some(b'5') => Some((Std::ZeroSecond, 2)),
                Some(b'6') => Some((Std::Year, 2)),
                _ => None,
            },
            b'1' if starts(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if starts(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if starts(i, "_2006") => {
                // a literal `_` then the year
                out.push(Chunk::Lit(&layout[lit_start..=i]));
                lit_start = i + 1;
                i += 1;
                continue;
            }
            b'_' if starts(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'_' if starts(i, "_2") => Some((Std::UnderDay, 2)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if starts(i, "PM") => Some((Std::PmUpper, 2)),
            b'p' if starts(i, "pm") => Some((Std::PmLower, 2)),
            c @ (b'-' | b'Z') => {
                let iso = c == b'Z';
                let forms: [(&str, bool, bool, bool); 5] = [
                    ("070000", false, true, true),
                    ("07:00:00", true, true, true),
                    ("0700", false, true, false),
                    ("07:00", true, true, false),
                    ("07", false, false, false),
                ];
                forms.iter().find(|f| starts(i + 1, f.0)).map(|f| {
                    (
                        Std::Num {
                            iso,
                            colon: f.1,
                            minutes: f.2,
                            seconds: f.3,
                        },
                        f.0.len() + 1,
                    )
                })
            }
            sep @ (b'.' | b',') => match b.get(i + 1) {
                Some(&d @ (b'0' | b'9')) => {
                    let mut j = i + 1;
                    while b.get(j) == Some(&d) {
                        j += 1;
                    }
                    if b.get(j).is_some_and(u8::is_ascii_digit) {
                        None
                    } else {
                        Some((Std::Frac(char::from(sep), j - i - 1, d == b'9'), j - i))
                    }
                }
                _ => None,
            },
            _ => None,
        };
        match found {
            Some((std, len)) => {
                if lit_start < i {
                    out.push(Chunk::Lit(&layout[lit_start..i]));
                }
                out.push(Chunk::Std(std));
                i += len;
                lit_start = i;
            }
            None => {
                i += 1;
                while i < b.len() && !layout.is_char_boundary(i) {
                    i += 1;
                }
            }
        }
    }
    if lit_start < b.len() {
        out.push(Chunk::Lit(&layout[lit_start..]));
    }
    out
}

/// Formats `t` with a Go layout; `zone` is the zone's abbreviation (empty
/// for a bare offset, printed then as `-0700`).
pub(crate) fn format<Tz: TimeZone>(layout: &str, t: &DateTime<Tz>, zone: &str) -> String {
    let offset = t.offset().fix().local_minus_utc();
    let mut out = String::new();
    let (year, month, day) = (t.year(), t.month() as usize, t.day());
    let hour = t.hour();
    let hour12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    for chunk in chunks(layout) {
        let std = match chunk {
            Chunk::Lit(s) => {
                out.push_str(s);
                continue;
            }
            Chunk::Std(std) => std,
        };
        let piece = match std {
            Std::LongMonth => LONG_MONTHS[month - 1].to_string(),
            Std::Month => LONG_MONTHS[month - 1][..3].to_string(),
            Std::NumMonth => month.to_string(),
            Std::ZeroMonth => format!("{month:02}"),
            Std::LongWeekDay => LONG_DAYS[t.weekday().num_days_from_sunday() as usize].to_string(),
            Std::WeekDay => LONG_DAYS[t.weekday().num_days_from_sunday() as usize][..3].to_string(),
            Std::Day => day.to_string(),
            Std::UnderDay => format!("{day:>2}"),
            Std::ZeroDay => format!("{day:02}"),
            Std::UnderYearDay => format!("{:>3}", t.ordinal()),
            Std::ZeroYearDay => format!("{:03}", t.ordinal()),
            Std::Hour => format!("{hour:02}"),
            Std::Hour12 => hour12.to_string(),
            Std::ZeroHour12 => format!("{hour12:02}"),
            Std::Minute => t.minute().to_string(),
            Std::ZeroMinute => format!("{:02}", t.minute()),
            Std::Second => t.second().to_string(),
            Std::ZeroSecond => format!("{:02}", t.second()),
            Std::LongYear => {
                if year < 0 {
                    format!("-{:04}", -year)
                } else {
                    format!("{year:04}")
                }
            }
            Std::Year => format!("{:02}", year.rem_euclid(100)),
            Std::PmUpper => if hour >= 12 { "PM" } else { "AM" }.to_string(),
            Std::PmLower => if hour >= 12 { "pm" } else { "am" }.to_string(),
            Std::Tz if !zone.is_empty() => zone.to_string(),
            Std::Tz => num_zone(offset, false, true, false),
            Std::Num { iso: true, .. } if offset == 0 => "Z".to_string(),
            Std::Num {
                colon,
                minutes,
                seconds,
                ..
            } => num_zone(offset, colon, minutes, seconds),
            Std::Frac(sep, digits, trim) => {
                let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                let mut frac = nanos[..digits.min(9)].to_string();
                if trim {
                    frac = frac.trim_end_matches('0').to_string();
                    if frac.is_empty() {
                        continue;
                    }
                }
                format!("{sep}{frac}")
            }
        };
        out.push_str(&piece);
    }
    out
}

fn num_zone(offset: i32, colon: bool, minutes: bool, seconds: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{:02}", abs / 3600);
    if minutes {
        out.push_str(&format!("{sep}{:02}", abs / 60 % 60));
    }
    if seconds {
        out.push_str(&format!("{sep}{:02}", abs % 60));
    }
    out
}

/// Parses `value` with a Go layout, as `time.Parse` in UTC: fields missing
/// from the layout are zero (or one, for month and day). `None` when the
/// value does not match.
pub(crate) fn parse(layout: &str, value: &str) -> Option<DateTime<FixedOffset>> {
    let mut rest = value;
    let (mut year, mut month, mut day, mut yday) = (0i32, 1u32, 1u32, 0u32);
    let (mut hour, mut min, mut sec, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset = 0i32;
    let all = chunks(layout);
    for (idx, chunk) in all.iter().enumerate() {
        let std = match chunk {
            Chunk::Lit(s) => {
                rest = rest.strip_prefix(s)?;
                continue;
            }
            Chunk::Std(std) => *std,
        };
        match std {
            Std::LongMonth | Std::Month => {
                let (i, len) = LONG_MONTHS.iter().enumerate().find_map(|(i, m)| {
                    let name = if std == Std::Month { &m[..3] } else { m };
                    starts_ci(rest, name).then_some((i, name.len()))
                })?;
                month = i as u32 + 1;
                rest = &rest[len..];
            }
            Std::LongWeekDay | Std::WeekDay => {
                let len = LONG_DAYS.iter().find_map(|d| {
                    let name = if std == Std::WeekDay { &d[..3] } else { d };
                    starts_ci(rest, name).then_some(name.len())
                })?;
                rest = &rest[len..];
            }
            Std::NumMonth | Std::ZeroMonth => month = num(&mut rest, std == Std::ZeroMonth, 2)?,
            Std::Day | Std::ZeroDay | Std::UnderDay => {
                if std == Std::UnderDay {
                    rest = rest.strip_prefix(' ').unwrap_or(rest);
                }
                day = num(&mut rest, std == Std::ZeroDay, 2)?;
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                rest = rest.trim_start_matches(' ');
                yday = num(&mut rest, std == Std::ZeroYearDay, 3)?;
            }
            Std::Hour => hour = num(&mut rest, false, 2)?,
            Std::Hour12 | Std::ZeroHour12 => hour = num(&mut rest, std == Std::ZeroHour12, 2)?,
            Std::Minute | Std::ZeroMinute => min = num(&mut rest, std == Std::ZeroMinute, 2)?,
            Std::Second | Std::ZeroSecond => {
                sec = num(&mut rest, std == Std::ZeroSecond, 2)?;
                // Go takes fractional seconds after the seconds even when
                // the layout has none
                let next_is_frac = matches!(all.get(idx + 1), Some(Chunk::Std(Std::Frac(..))));
                if !next_is_frac && (rest.starts_with('.') || rest.starts_with(',')) {
                    let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
                    if digits > 0 {
                        nanos = frac_nanos(&rest[1..1 + digits]);
                        rest = &rest[1 + digits..];
                    }
                }
            }
            Std::LongYear => {
                let digits: &str = rest.get(..4)?;
                year = digits
                    .parse()
                    .ok()
                    .filter(|_| digits.bytes().all(|c| c.is_ascii_digit()))?;
                rest = &rest[4..];
            }
            Std::Year => {
                let y: i32 = num(&mut rest, true, 2)? as i32;
                year = if y >= 69 { 1900 + y } else { 2000 + y };
            }
            Std::PmUpper | Std::PmLower => {
                let p = rest.get(..2)?;
                pm = Some(match p.to_ascii_uppercase().as_str() {
                    "PM" => true,
                    "AM" => false,
                    _ => return None,
                });
                rest = &rest[2..];
            }
            Std::Tz => {
                if let Some(r) = rest
                    .strip_prefix("UTC")
                    .or_else(|| rest.strip_prefix("GMT"))
                {
                    rest = r;
                } else {
                    let n = rest.bytes().take_while(u8::is_ascii_uppercase).count();
                    if n < 3 {
                        return None;
                    }
                    rest = &rest[n..];
                }
            }
            Std::Num {
                iso,
                colon,
                minutes,
                seconds,
            } => {
                if iso {
                    if let Some(r) = rest.strip_prefix('Z') {
                        rest = r;
                        continue;
                    }
                }
                let sign = match rest.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                rest = &rest[1..];
                let h = num(&mut rest, true, 2)?;
                let mut total = h * 3600;
                for (present, mul) in [(minutes, 60), (seconds, 1)] {
                    if present {
                        if colon {
                            rest = rest.strip_prefix(':')?;
                        }
                        total += num(&mut rest, true, 2)? * mul;
                    }
                }
                offset = sign * total as i32;
            }
            Std::Frac(sep, digits, trim) => {
                if trim {
                    if let Some(r) = rest.strip_prefix(sep) {
                        let n = r.bytes().take_while(u8::is_ascii_digit).count();
                        nanos = frac_nanos(&r[..n]);
                        rest = &r[n..];
                    }
                } else {
                    let r = rest.strip_prefix(sep)?;
                    let d = r.get(..digits)?;
                    if !d.bytes().all(|c| c.is_ascii_digit()) {
                        return None;
                    }
                    nanos = frac_nanos(d);
                    rest = &r[digits..];
                }
            }
        }
    }
    if !rest.is_empty() {
        return None;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        Some(_) if hour > 12 => return None,
        _ => {}
    }
    let date = if yday > 0 {
        NaiveDate::from_yo_opt(year, yday)?
    } else {
        NaiveDate::from_ymd_opt(year, month, day)?
    };
    let naive = date.and_hms_nano_opt(hour, min, sec, nanos)?;
    let zone = FixedOffset::east_opt(offset)?;
    zone.from_local_datetime(&naive).single()
}

fn starts_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Up to `max` digits (exactly `max` when `fixed`).
fn num(rest: &mut &str, fixed: bool, max: usize) -> Option<u32> {
    let n = rest
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if n == 0 || (fixed && n != max) {
        return None;
    }
    let v = rest[..n].parse().ok()?;
    *rest = &rest[n..];
    Some(v)
}

fn frac_nanos(digits: &str) -> u32 {
    let mut d: String = digits.chars().take(9).collect();
    while d.len() < 9 {
        d.push('0');
    }
    d.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn formats_as_go_does() {
        let t = Utc.with_ymd_and_hms(2006, 1, 2, 15, 4, 5).unwrap()
            + chrono::Duration::nanoseconds(123_400_000);
        let cases = [
            ("2006-01-02", "2006-01-02"),
            ("2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05Z"),
            (
                "Mon Jan _2 15:04:05 MST 2006",
                "Mon Jan  2 15:04:05 UTC 2006",
            ),
            ("02 Jan 06 15:04 -0700", "02 Jan 06 15:04 +0000"),
            ("Monday, 02-Jan-06 3:04PM", "Monday, 02-Jan-06 3:04PM"),
            ("15:04:05.000", "15:04:05.123"),
            ("15:04:05.999999", "15:04:05.1234"),
            ("20060102-150405z", "20060102-150405z"),
            ("002 __2 January", "002   2 January"),
            ("_2006", "_2006"),
        ];
        for (layout, want) in cases {
            assert_eq!(format(layout, &t, "UTC"), want, "{layout}");
        }
        let east = FixedOffset::east_opt(-7 * 3600).unwrap();
        let t = t.with_timezone(&east);
        assert_eq!(format("Z07:00 -07 MST", &t, ""), "-07:00 -07 -0700");
    }

    #[test]
    fn parses_as_go_does() {
        let t = parse("2006-01-02", "2024-03-05").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-05T00:00:00+00:00");
        let t = parse("2006-01-02T15:04:05Z07:00", "2024-03-05T10:11:12.5+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-05T10:11:12.500+02:00");
        let t = parse("Jan 2, 2006 3:04pm", "Feb 29, 2024 12:30am").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-02-29T00:30:00+00:00");
        assert!(parse("2006-01-02", "2024-02-30").is_none());
        assert!(parse("2006-01-02", "2024-03-05x").is_none());
        assert!(parse("2006-01-02", "").is_none());
    }
}
