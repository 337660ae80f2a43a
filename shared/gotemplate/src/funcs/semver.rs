//! Sprig's `semver` and `semverCompare` (Masterminds semver v1 rules:
//! a leading `v`, and missing minor/patch, are accepted; a bare version in
//! a constraint means `=`; `||`, `,` and `a - b` ranges). Comparison and
//! constraint matching are the `semver` crate's.

use semver::{BuildMetadata, Comparator, Op, Prerelease, Version, VersionReq};
use serde_json::{Map, Value};

use super::args::{strs, FnResult, Res};
use crate::value::SEMVER_TAG;

pub(crate) const NAMES: &[&str] = &["semver", "semverCompare"];

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    match name {
        "semver" => {
            let [v] = strs(&vals)?;
            let parsed = parse_version(&v)?;
            Ok(version_value(&parsed, &v))
        }
        "semverCompare" => {
            let [c, v] = strs(&vals)?;
            let version = parse_version(&v)?;
            Ok(Value::Bool(satisfies(&c, &version)?))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

/// A version as a template value: its fields, printed as `String()`.
fn version_value(v: &Version, original: &str) -> Value {
    let mut m = Map::new();
    m.insert(SEMVER_TAG.to_string(), Value::String(v.to_string()));
    m.insert("Major".to_string(), Value::from(v.major));
    m.insert("Minor".to_string(), Value::from(v.minor));
    m.insert("Patch".to_string(), Value::from(v.patch));
    m.insert("Prerelease".to_string(), Value::String(v.pre.to_string()));
    m.insert("Metadata".to_string(), Value::String(v.build.to_string()));
    m.insert("Original".to_string(), Value::String(original.to_string()));
    Value::Object(m)
}

/// Masterminds' `NewVersion`: `v1`, `1.2`, `1.2.3-beta.1+build`.
pub(crate) fn parse_version(s: &str) -> Res<Version> {
    let bad = || "Invalid Semantic Version".to_string();
    let body = s.strip_prefix('v').unwrap_or(s);
    let (core, build) = body.split_once('+').unwrap_or((body, ""));
    let (core, pre) = core.split_once('-').unwrap_or((core, ""));
    let mut nums = core.split('.');
    let mut next = |required: bool| -> Res<u64> {
        match nums.next() {
            Some(n) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => {
                n.parse().map_err(|_| bad())
            }
            None if !required => Ok(0),
            _ => Err(bad()),
        }
    };
    let (major, minor, patch) = (next(true)?, next(false)?, next(false)?);
    if nums.next().is_some() {
        return Err(bad());
    }
    Ok(Version {
        major,
        minor,
        patch,
        pre: if pre.is_empty() {
            Prerelease::EMPTY
        } else {
            Prerelease::new(pre).map_err(|_| bad())?
        },
        build: if build.is_empty() {
            BuildMetadata::EMPTY
        } else {
            BuildMetadata::new(build).map_err(|_| bad())?
        },
    })
}

/// Whether `v` meets the constraint text `c`.
fn satisfies(c: &str, v: &Version) -> Res<bool> {
    for alternative in c.split("||") {
        let mut all = true;
        for part in expand_ranges(alternative)? {
            if !comparator_matches(&part, v)? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Splits an AND group on `,`, rewriting `a - b` to `>= a` and `<= b`.
fn expand_ranges(group: &str) -> Res<Vec<String>> {
    let mut out = Vec::new();
    for part in group.split(',') {
        let part = part.trim();
        if let Some((lo, hi)) = part.split_once(" - ") {
            out.push(format!(">={}", lo.trim()));
            out.push(format!("<={}", hi.trim()));
        } else if part.is_empty() {
            return Err(format!("improper constraint: {group}"));
        } else {
            out.push(part.to_string());
        }
    }
    Ok(out)
}

fn comparator_matches(text: &str, v: &Version) -> Res<bool> {
    let bad = || format!("improper constraint: {text}");
    let op_len = text
        .bytes()
        .take_while(|c| matches!(c, b'=' | b'!' | b'<' | b'>' | b'~' | b'^'))
        .count();
    let (op, version) = text.split_at(op_len);
    let version = version.trim();
    let version = version.strip_prefix('v').unwrap_or(version);
    let op = match op {
        "" | "=" => "=",
        "=>" | ">=" => ">=",
        "=<" | "<=" => "<=",
        "~>" | "~" => "~",
        "!=" => {
            return comparator_matches(&format!("={version}"), v).map(|m| !m);
        }
        "^" => {
            // Masterminds v1: at least the version, with the same major
            // (Cargo's caret narrows `^0.x` further)
            let major = version.split('.').next().unwrap_or("");
            let same_major = major.parse::<u64>().is_ok_and(|m| m == v.major);
            return Ok(same_major && comparator_matches(&format!(">={version}"), v)?);
        }
        o @ (">" | "<") => o,
        _ => return Err(bad()),
    };
    if version == "*" || version == "x" || version == "X" {
        return Ok(v.pre.is_empty());
    }
    let version = version.replace(['x', 'X'], "*");
    let text = if version.contains('*') && op == "=" {
        version
    } else {
        format!("{op}{version}")
    };
    let comparator = Comparator::parse(&text).map_err(|_| bad())?;
    let wildcard_eq = comparator.op == Op::Exact && comparator.patch.is_none();
    let req = VersionReq {
        comparators: vec![if wildcard_eq {
            Comparator {
                op: Op::Wildcard,
                ..comparator
            }
        } else {
            comparator
        }],
    };
    Ok(req.matches(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(c: &str, v: &str) -> bool {
        satisfies(c, &parse_version(v).unwrap()).unwrap()
    }

    #[test]
    fn constraints_follow_sprig_docs() {
        assert!(cmp("^1.2.0", "1.2.3"));
        assert!(cmp("^0.2.3", "0.9.0"));
        assert!(!cmp("^0.2.3", "1.0.0"));
        assert!(!cmp("^1.2.0", "2.0.0"));
        assert!(cmp("~1.2.3", "1.2.9"));
        assert!(!cmp("~1.2.3", "1.3.0"));
        assert!(cmp(">= 1.2, < 3.0.0", "2.5.0"));
        assert!(cmp("1.2.3", "1.2.3"));
        assert!(!cmp("1.2.3", "1.2.4"));
        assert!(cmp("1.2.x", "1.2.7"));
        assert!(cmp("1.2 - 1.4.5", "1.4.5"));
        assert!(!cmp("1.2 - 1.4.5", "1.4.6"));
        assert!(cmp("<1.0 || >=2.0", "2.1.0"));
        assert!(cmp("!=1.2.3", "1.2.4"));
        assert!(cmp(">1.0.0", "v1.1"));
        assert!(!cmp(">1.0.0", "1.1.0-beta"));
        assert!(satisfies("foo", &parse_version("1.0.0").unwrap()).is_err());
    }

    #[test]
    fn versions_parse_leniently() {
        assert_eq!(parse_version("v1.2").unwrap().to_string(), "1.2.0");
        assert_eq!(
            parse_version("1.2.3-beta.1+b5").unwrap().to_string(),
            "1.2.3-beta.1+b5"
        );
        assert!(parse_version("1.2.3.4").is_err());
        assert!(parse_version("one").is_err());
    }
}
