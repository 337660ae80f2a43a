//! Sprig's path functions (`base dir clean ext isAbs`, Go's `path`
//! package: slash-separated, whatever the OS) and `urlParse`/`urlJoin`
//! (Go's `net/url` field names). Hand-written: Go's `path.Clean` and
//! `url.Parse` rules differ from `std::path` and the WHATWG `url` crate
//! (relative references, no normalisation).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{Map, Value};

use super::args::{strs, take, FnResult, Res};
use crate::value::display;

pub(crate) const NAMES: &[&str] = &[
    "base", "dir", "clean", "ext", "isAbs", "urlParse", "urlJoin",
];

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    let s = |v: String| Ok(Value::String(v));
    match name {
        "base" => {
            let [p] = strs(&vals)?;
            s(base(&p))
        }
        "dir" => {
            let [p] = strs(&vals)?;
            let cut = p.rfind('/').map_or(0, |i| i + 1);
            s(clean(&p[..cut]))
        }
        "clean" => {
            let [p] = strs(&vals)?;
            s(clean(&p))
        }
        "ext" => {
            let [p] = strs(&vals)?;
            let last = &p[p.rfind('/').map_or(0, |i| i + 1)..];
            s(last
                .rfind('.')
                .map_or(String::new(), |i| last[i..].to_string()))
        }
        "isAbs" => {
            let [p] = strs(&vals)?;
            Ok(Value::Bool(p.starts_with('/')))
        }
        "urlParse" => {
            let [u] = strs(&vals)?;
            url_parse(&u)
        }
        "urlJoin" => {
            let [d] = take(&vals)?;
            let Value::Object(m) = d else {
                return Err("urlJoin wants a dict".to_string());
            };
            s(url_join(m))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

/// Go's `path.Clean`: the shortest equivalent path.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(last) if *last != ".." => {
                    parts.pop();
                }
                _ if !rooted => parts.push(".."),
                _ => {}
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`: the last element, trailing slashes removed.
fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    trimmed[trimmed.rfind('/').map_or(0, |i| i + 1)..].to_string()
}

fn unescape(s: &str) -> Res<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("unable to parse url: invalid escape in {s:?}"))
}

/// Go's `url.Parse`, to Sprig's dict of `scheme host hostname path query
/// opaque fragment userinfo`.
fn url_parse(u: &str) -> FnResult {
    if u.chars().any(|c| c.is_ascii_control()) {
        return Err("unable to parse url: invalid control character in URL".to_string());
    }
    let (rest, fragment) = u.split_once('#').unwrap_or((u, ""));
    let fragment = unescape(fragment)?;
    let mut scheme = "";
    let mut rest = rest;
    let scheme_len = rest
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        .count();
    if scheme_len > 0
        && rest.as_bytes().get(scheme_len) == Some(&b':')
        && rest.as_bytes()[0].is_ascii_alphabetic()
    {
        scheme = &rest[..scheme_len];
        rest = &rest[scheme_len + 1..];
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut fields = Map::new();
    let mut put = |k: &str, v: &str| {
        fields.insert(k.to_string(), Value::String(v.to_string()));
    };
    put("scheme", &scheme.to_ascii_lowercase());
    put("query", query);
    put("fragment", &fragment);
    if !scheme.is_empty() && !rest.starts_with('/') {
        put("opaque", rest);
        for k in ["host", "hostname", "path", "userinfo"] {
            put(k, "");
        }
        return Ok(Value::Object(fields));
    }
    put("opaque", "");
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    let (userinfo, host) = match authority {
        Some(a) => match a.rsplit_once('@') {
            Some((user, host)) => (user, host),
            None => ("", a),
        },
        None => ("", ""),
    };
    let hostname = if let Some(v6) = host.strip_prefix('[') {
        v6.split_once(']').map_or(v6, |(h, _)| h)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    put("userinfo", userinfo);
    put("host", &unescape(host)?);
    put("hostname", &unescape(hostname)?);
    put("path", &unescape(path)?);
    Ok(Value::Object(fields))
}

/// What Go's `URL.EscapedPath` leaves alone besides letters and digits.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Go's `URL.String` of Sprig's dict.
fn url_join(d: &Map<String, Value>) -> String {
    let get = |k: &str| d.get(k).map(display).unwrap_or_default();
    let (scheme, host, path, query) = (get("scheme"), get("host"), get("path"), get("query"));
    let (opaque, fragment, userinfo) = (get("opaque"), get("fragment"), get("userinfo"));
    let mut out = String::new();
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    if !opaque.is_empty() {
        out.push_str(&opaque);
    } else {
        if !scheme.is_empty() || !host.is_empty() || !userinfo.is_empty() {
            if !host.is_empty() || !path.is_empty() || !userinfo.is_empty() {
                out.push_str("//");
            }
            if !userinfo.is_empty() {
                out.push_str(&userinfo);
                out.push('@');
            }
            out.push_str(&host);
        }
        let escaped = utf8_percent_encode(&path, PATH).to_string();
        if !escaped.is_empty() && !escaped.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        out.push_str(&escaped);
    }
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(&utf8_percent_encode(&fragment, PATH).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_follow_go() {
        assert_eq!(clean("a/b/../c//./d/"), "a/c/d");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("../../x"), "../../x");
        assert_eq!(clean(""), ".");
        assert_eq!(base("/foo/bar/"), "bar");
        assert_eq!(base("///"), "/");
        let dir = call("dir", vec![json!("foo/bar/baz")]).unwrap();
        assert_eq!(dir, json!("foo/bar"));
        assert_eq!(
            call("ext", vec![json!("a/b.tar.gz")]).unwrap(),
            json!(".gz")
        );
    }

    #[test]
    fn urls_parse_and_join_as_sprig_documents() {
        let d = url_parse("proto://auth@host:80/path?query#fragment").unwrap();
        assert_eq!(
            d,
            json!({"scheme": "proto", "host": "host:80", "hostname": "host", "path": "/path",
                   "query": "query", "opaque": "", "fragment": "fragment", "userinfo": "auth"})
        );
        let Value::Object(m) = json!({"host": "host:80", "path": "/path", "query": "query",
                                      "fragment": "fragment", "userinfo": "", "scheme": "http"})
        else {
            panic!()
        };
        assert_eq!(url_join(&m), "http://host:80/path?query#fragment");
        assert_eq!(url_parse("mailto:a@b").unwrap()["opaque"], json!("a@b"));
    }
}
