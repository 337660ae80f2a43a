//! ACR's tag conventions for patched images.
//!
//! - `incremental` (the default): `TAG-1`, then `TAG-2` on the next patch
//!   of `TAG`, ...; every patched image stays addressable.
//! - `floating`: one tag, `TAG-patched`, moved by every patch.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagConvention {
    #[default]
    Incremental,
    Floating,
}

impl TagConvention {
    pub fn as_str(self) -> &'static str {
        match self {
            TagConvention::Incremental => "incremental",
            TagConvention::Floating => "floating",
        }
    }
}

impl FromStr for TagConvention {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "incremental" => Ok(TagConvention::Incremental),
            "floating" => Ok(TagConvention::Floating),
            _ => Err(Error::invalid(format!(
                "unknown tag convention '{}' (expected incremental or floating)",
                crate::domain::text::inert(s)
            ))),
        }
    }
}

/// Where a patch of `tag` goes, given the repository's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchTags {
    /// The tag to push.
    pub next: String,
    /// The newest patched tag already there, if any.
    pub latest: Option<String>,
}

/// The longest tag the distribution spec allows.
const MAX_TAG: usize = 128;

/// Decides the patch tags of `tag` among `existing` (the repository's tags).
pub fn patch_tags(tag: &str, convention: TagConvention, existing: &[String]) -> Result<PatchTags> {
    let out = match convention {
        TagConvention::Floating => {
            let next = format!("{tag}-patched");
            PatchTags {
                latest: existing.contains(&next).then(|| next.clone()),
                next,
            }
        }
        TagConvention::Incremental => {
            let prefix = format!("{tag}-");
            let newest = existing
                .iter()
                .filter_map(|t| t.strip_prefix(&prefix))
                .filter(|n| !n.is_empty() && !n.starts_with('0') && n.len() <= 9)
                .filter_map(|n| n.parse::<u32>().ok())
                .max();
            PatchTags {
                next: format!("{tag}-{}", newest.unwrap_or(0) + 1),
                latest: newest.map(|n| format!("{tag}-{n}")),
            }
        }
    };
    if out.next.len() > MAX_TAG {
        return Err(Error::invalid(format!(
            "the patched tag '{}' would be longer than {MAX_TAG} characters",
            out.next
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn incremental_counts_up_from_the_newest() {
        let t = patch_tags("1.0", TagConvention::Incremental, &tags(&["1.0"])).unwrap();
        assert_eq!((t.next.as_str(), t.latest), ("1.0-1", None));
        let t = patch_tags(
            "1.0",
            TagConvention::Incremental,
            &tags(&[
                "1.0", "1.0-1", "1.0-2", "1.0-10", "1.0-x", "1.0-01", "1.0-1-1", "2.0-7",
            ]),
        )
        .unwrap();
        assert_eq!(t.next, "1.0-11");
        assert_eq!(t.latest.as_deref(), Some("1.0-10"));
    }

    #[test]
    fn floating_moves_one_tag() {
        let t = patch_tags("latest", TagConvention::Floating, &tags(&["latest"])).unwrap();
        assert_eq!((t.next.as_str(), t.latest), ("latest-patched", None));
        let t = patch_tags(
            "latest",
            TagConvention::Floating,
            &tags(&["latest-patched"]),
        )
        .unwrap();
        assert_eq!(t.latest.as_deref(), Some("latest-patched"));
    }

    #[test]
    fn conventions_parse_and_long_tags_are_refused() {
        assert_eq!(
            "Floating".parse::<TagConvention>().unwrap(),
            TagConvention::Floating
        );
        assert!("weekly"
            .parse::<TagConvention>()
            .unwrap_err()
            .to_string()
            .contains("expected incremental or floating"));
        assert!(patch_tags(&"a".repeat(125), TagConvention::Floating, &[]).is_err());
    }
}
