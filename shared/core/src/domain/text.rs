//! Untrusted text made inert before it reaches a log line, a terminal or a
//! stored error message.
//!
//! Event fields (branch names, commit messages, repository names, image
//! tags) come from whoever can send a signed webhook. Written as they are,
//! a newline forges a whole log line and an escape sequence rewrites the
//! reader's terminal (title, clear screen, hidden text). [`inert`] is the one
//! function every such sink calls: run log lines (`LogSink::line`), the
//! CLI's tables and key/value lines, event reasons and run error texts.
//!
//! Hand-written on purpose: `str::escape_debug` also escapes quotes and
//! backslashes (changing ordinary text) and leaves bidirectional overrides
//! as they are; this escapes exactly the characters that act on a terminal
//! or a line-based reader and nothing else.

use std::borrow::Cow;

/// Whether `c` must not reach a log line or a terminal as it is: C0
/// controls (newline, carriage return, tab, ESC, NUL, ...), DEL, C1 controls
/// (U+0080-U+009F, among them the 8-bit CSI), the line and paragraph
/// separators, and the bidirectional embeddings, overrides and isolates
/// that reorder what a reader sees ("trojan source").
pub fn is_active(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every [`is_active`] character replaced by a visible escape:
/// `\n`, `\r`, `\t`, else `\u{1b}` (Rust's notation). Everything else,
/// backslashes and non-ASCII letters included, is kept as it is. Borrows
/// when there is nothing to escape, which is the common case.
pub fn inert(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_active) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_active(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`inert`] for an owned string (no copy when nothing is escaped).
pub fn inert_owned(s: String) -> String {
    match inert(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(o) => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "",
            "main",
            "release/1.x",
            "naïve ünïcødé 日本",
            r"C:\path",
            "a'b\"c",
        ] {
            assert!(matches!(inert(s), Cow::Borrowed(x) if x == s), "{s:?}");
        }
    }

    #[test]
    fn controls_become_visible_escapes() {
        let cases = [
            ("a\nb", "a\\nb"),
            ("a\r\nb", "a\\r\\nb"),
            ("\tx", "\\tx"),
            ("\u{1b}]0;pwned\u{7}", "\\u{1b}]0;pwned\\u{7}"),
            ("\u{1b}[2J", "\\u{1b}[2J"),
            ("nul\0", "nul\\u{0}"),
            ("del\u{7f}", "del\\u{7f}"),
            ("c1\u{9b}31m", "c1\\u{9b}31m"),
            ("sep\u{2028}x", "sep\\u{2028}x"),
            ("bidi\u{202e}txt", "bidi\\u{202e}txt"),
            ("iso\u{2066}x\u{2069}", "iso\\u{2066}x\\u{2069}"),
        ];
        for (input, want) in cases {
            assert_eq!(inert(input), want, "{input:?}");
            assert_eq!(inert_owned(input.to_string()), want);
        }
    }

    #[test]
    fn output_never_holds_an_active_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = inert(&all);
        assert!(!out.chars().any(is_active));
        assert!(!out.contains('\n'));
    }
}
