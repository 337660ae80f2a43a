//! The raw request every trigger verifies: its headers, read
//! case-insensitively, before anything in the body is trusted. (What a
//! handler answers is [`super::answer::Answer`].)
//!
//! Headers are read through the [`HeaderLookup`] trait. [`Headers`]
//! implements it over `(name, value)` pairs; to use an `http::HeaderMap`
//! directly, wrap it in a local newtype:
//!
//! ```text
//! struct HttpHeaders<'a>(&'a http::HeaderMap);
//! impl crtask_core::trigger::request::HeaderLookup for HttpHeaders<'_> {
//!     fn get(&self, name: &str) -> Option<&str> {
//!         self.0.get(name).and_then(|v| v.to_str().ok())
//!     }
//! }
//! ```

/// Case-insensitive read access to request headers.
///
/// Implemented by [`Headers`]; wrap other header maps in a newtype (see the
/// module docs for `http::HeaderMap`).
pub trait HeaderLookup {
    /// The value of the first header called `name` (ASCII case-insensitive),
    /// if any.
    fn get(&self, name: &str) -> Option<&str>;
}

/// A tiny case-insensitive view over `(name, value)` header pairs.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Headers<'a> {
    /// Views the given pairs; names are matched ASCII case-insensitively and
    /// the first match wins.
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Headers { pairs }
    }
}

impl HeaderLookup for Headers<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a header and trims it; an empty value counts as absent.
pub(crate) fn header<'h>(h: &'h dyn HeaderLookup, name: &str) -> Option<&'h str> {
    h.get(name).map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_blank_values_absent() {
        let pairs = vec![
            ("X-One".to_string(), " a ".to_string()),
            ("x-one".to_string(), "b".to_string()),
            ("X-Blank".to_string(), "  ".to_string()),
        ];
        let h = Headers::new(&pairs);
        assert_eq!(h.get("x-ONE"), Some(" a "));
        assert_eq!(header(&h, "X-One"), Some("a"));
        assert_eq!(header(&h, "X-Blank"), None);
        assert_eq!(h.get("X-Blank"), Some("  "));
        assert_eq!(header(&h, "X-None"), None);
    }
}
