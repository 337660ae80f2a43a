//! Run ids: a two-letter prefix plus a counter (`ca1`, `ca2`, ..., `ca10`).

use crate::{Error, Result};

/// The prefix used when an installation does not choose one.
pub const DEFAULT_PREFIX: &str = "ca";

/// Formats the run id for counter value `n` (n >= 1).
pub fn format(prefix: &str, n: u64) -> String {
    format!("{prefix}{n}")
}

/// Checks an installation's prefix: exactly two lower-case ASCII letters.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.len() == 2 && prefix.chars().all(|c| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "run id prefix '{prefix}' must be two lower-case letters"
        )))
    }
}

/// Splits a run id into prefix and counter; `None` when it is not of that form.
pub fn parse(id: &str) -> Option<(&str, u64)> {
    if id.len() < 3 || !id.is_char_boundary(2) {
        return None;
    }
    let (p, n) = id.split_at(2);
    if !p.chars().all(|c| c.is_ascii_lowercase()) || n.starts_with('0') {
        return None;
    }
    n.parse().ok().map(|n| (p, n))
}

/// Sort key that orders run ids by creation (`ca9` before `ca10`).
pub fn sort_key(id: &str) -> (String, u64) {
    match parse(id) {
        Some((p, n)) => (p.to_string(), n),
        None => (id.to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_sortable() {
        assert_eq!(format("ca", 1), "ca1");
        assert_eq!(parse("ca10"), Some(("ca", 10)));
        assert_eq!(parse("ca"), None);
        assert_eq!(parse("ca01"), None);
        assert_eq!(parse("CA1"), None);
        assert_eq!(parse("ü1"), None);
        let mut ids = vec!["ca10", "ca9", "ca1"];
        ids.sort_by_key(|i| sort_key(i));
        assert_eq!(ids, ["ca1", "ca9", "ca10"]);
        assert!(validate_prefix("cb").is_ok());
        assert!(validate_prefix("c1").is_err());
    }
}
