//! Notification URLs: checked when a task or the server names them, so a
//! bad one is refused with a clear message instead of failing later.

use crate::domain::text::inert;
use crate::{Error, Result};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Most notification URLs one task (or the server) may name.
pub const MAX_URLS: usize = 10;

/// Checks one notification URL: `http://` or `https://`, a host, no
/// `user:password@` (the receiver verifies the signature instead; a
/// password here would be shown by `task show`), no whitespace or control
/// characters, at most [`MAX_URL_LEN`] bytes. Returns the URL as given.
pub fn validate_url(raw: &str) -> Result<&str> {
    let shown = inert(raw);
    if raw.is_empty() {
        return Err(Error::invalid("notification URL is empty"));
    }
    if raw.len() > MAX_URL_LEN {
        return Err(Error::invalid(format!(
            "notification URL is {} bytes long; at most {MAX_URL_LEN} are accepted",
            raw.len()
        )));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!(
            "notification URL '{shown}' contains whitespace or control characters"
        )));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| Error::invalid(format!("notification URL '{shown}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(format!(
            "notification URL '{shown}' must start with http:// or https:// (scheme '{}' is not supported)",
            inert(url.scheme())
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(format!(
            "notification URL '{shown}' has no host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(format!(
            "notification URL '{}' contains credentials (user:password@): remove them; receivers verify the X-Crtask-Signature header instead",
            inert(&redact_userinfo(&url))
        )));
    }
    Ok(raw)
}

/// `url` without its `user:password@` part, for messages.
fn redact_userinfo(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// Checks a list of notification URLs: each one ([`validate_url`]), no
/// duplicates, at most [`MAX_URLS`].
pub fn validate_urls(urls: &[String]) -> Result<()> {
    if urls.len() > MAX_URLS {
        return Err(Error::invalid(format!(
            "{} notification URLs given; at most {MAX_URLS} are accepted",
            urls.len()
        )));
    }
    for (i, u) in urls.iter().enumerate() {
        validate_url(u)?;
        if urls[..i].contains(u) {
            return Err(Error::invalid(format!(
                "notification URL '{}' is given twice",
                inert(u)
            )));
        }
    }
    Ok(())
}

/// The URLs a run's notification goes to: the server's, then the task's
/// that the server does not list already.
pub fn targets<'a>(server: &'a [String], task: &'a [String]) -> Vec<&'a str> {
    let mut out: Vec<&str> = server.iter().map(String::as_str).collect();
    for u in task {
        if !out.contains(&u.as_str()) {
            out.push(u);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https() {
        for ok in [
            "http://127.0.0.1:9000/hook",
            "https://hooks.example.com/services/T0/B0?x=1",
            "http://[::1]:8080/",
            "https://example.com",
        ] {
            assert_eq!(validate_url(ok).unwrap(), ok);
        }
    }

    #[test]
    fn refuses_what_cannot_be_delivered_clearly() {
        let cases = [
            ("", "notification URL is empty"),
            (
                "ftp://example.com/x",
                "notification URL 'ftp://example.com/x' must start with http:// or https:// (scheme 'ftp' is not supported)",
            ),
            (
                "file:///etc/passwd",
                "notification URL 'file:///etc/passwd' must start with http:// or https:// (scheme 'file' is not supported)",
            ),
            (
                "example.com/hook",
                "notification URL 'example.com/hook' is not a URL: relative URL without a base",
            ),
            (
                "http://a b/",
                "notification URL 'http://a b/' contains whitespace or control characters",
            ),
            (
                "http://x/\u{1b}[2J",
                "notification URL 'http://x/\\u{1b}[2J' contains whitespace or control characters",
            ),
            (
                "https://bob:hunter2@example.com/h",
                "notification URL 'https://example.com/h' contains credentials (user:password@): remove them; receivers verify the X-Crtask-Signature header instead",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(validate_url(url).unwrap_err().to_string(), want, "{url:?}");
        }
        let long = format!("http://x/{}", "a".repeat(MAX_URL_LEN));
        assert!(validate_url(&long)
            .unwrap_err()
            .to_string()
            .contains("at most 2048"));
    }

    #[test]
    fn lists_are_bounded_and_unique() {
        let u = |s: &str| s.to_string();
        assert!(validate_urls(&[u("http://a/"), u("http://b/")]).is_ok());
        assert_eq!(
            validate_urls(&[u("http://a/"), u("http://a/")])
                .unwrap_err()
                .to_string(),
            "notification URL 'http://a/' is given twice"
        );
        let many: Vec<String> = (0..11).map(|i| format!("http://h{i}/")).collect();
        assert!(validate_urls(&many).is_err());
        assert_eq!(
            targets(&[u("http://a/")], &[u("http://b/"), u("http://a/")]),
            vec!["http://a/", "http://b/"]
        );
    }
}
