//! Platforms (`os/arch[/variant]`) as builds name them, and platform lists
//! (`linux/amd64,linux/arm64`): a build for more than one platform pushes
//! one image index (see docs/MULTIARCH.md).

use crate::error::{Error, Result};

/// Operating systems crtask builds images for: the builders run Linux
/// containers only (buildah locally, CodeBuild's Linux environments).
pub const OPERATING_SYSTEMS: &[&str] = &["linux"];

/// Architectures in OCI terms that a build may name.
pub const ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le",
];

/// Checks one `os/arch[/variant]` or a comma-separated list of them
/// ([`parse_list`]): every place that accepts `--platform` calls this.
pub fn validate(p: &str) -> Result<()> {
    parse_list(p).map(|_| ())
}

/// Parses one platform: `os/arch[/variant]`, lower-cased.
pub fn parse(p: &str) -> Result<String> {
    let shown = crate::domain::text::inert(p);
    let parts: Vec<&str> = p.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !ok {
        return Err(Error::invalid(format!(
            "invalid platform '{shown}': write os/arch[/variant], e.g. linux/amd64"
        )));
    }
    let norm = p.to_ascii_lowercase();
    let parts: Vec<&str> = norm.split('/').collect();
    if !OPERATING_SYSTEMS.contains(&parts[0]) {
        return Err(Error::invalid(format!(
            "platform '{shown}' is not supported: crtask builds {} images only",
            OPERATING_SYSTEMS.join(", ")
        )));
    }
    if !ARCHITECTURES.contains(&parts[1]) {
        return Err(Error::invalid(format!(
            "platform '{shown}' names an unknown architecture '{}': use one of {}",
            crate::domain::text::inert(parts[1]),
            ARCHITECTURES.join(", ")
        )));
    }
    Ok(norm)
}

/// Parses `--platform`: one platform or a comma-separated list, each
/// [`parse`]d, in the order given. Empty entries (`linux/amd64,,`) and
/// duplicates are refused.
pub fn parse_list(s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, item) in s.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(Error::invalid(format!(
                "invalid platform list '{}': entry {} is empty; write e.g. linux/amd64,linux/arm64",
                crate::domain::text::inert(s),
                i + 1
            )));
        }
        let p = parse(item)?;
        if out.contains(&p) {
            return Err(Error::invalid(format!(
                "platform '{p}' is listed twice in '{}'",
                crate::domain::text::inert(s)
            )));
        }
        out.push(p);
    }
    Ok(out)
}

/// The platforms of a build spec's `--platform` (`None` or empty: the
/// builder's own, returned as an empty list). Already validated specs
/// never fail here; a bad one yields the error for the run.
pub fn of_spec(platform: Option<&str>) -> Result<Vec<String>> {
    match platform.map(str::trim) {
        None | Some("") => Ok(Vec::new()),
        Some(p) => parse_list(p),
    }
}

/// The first platform of a list (what `{{.Run.OS}}`/`{{.Run.Architecture}}`
/// describe for a multi-platform run).
pub fn first(list: &str) -> &str {
    list.split(',').next().unwrap_or(list).trim()
}

/// The `os/arch` of this machine in OCI terms.
pub fn host() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

/// True when `image` (an image config's `os`, `architecture`, `variant`)
/// serves `platform`: same os and arch, and the variant when the platform
/// names one.
pub fn matches(platform: &str, os: &str, arch: &str, variant: &str) -> bool {
    let mut p = platform.split('/');
    let (want_os, want_arch, want_variant) = (p.next(), p.next(), p.next());
    want_os == Some(os) && want_arch == Some(arch) && want_variant.is_none_or(|v| v == variant)
}

/// The `(platform, digest)` entries of an image index document (OCI index
/// or Docker manifest list), in its order; `None` when `doc` is not one.
pub fn index_platforms(
    doc: &serde_json::Value,
) -> Option<Vec<crate::domain::model::PlatformImage>> {
    let entries = doc.get("manifests")?.as_array()?;
    let mut out = Vec::new();
    for m in entries {
        let p = &m["platform"];
        let (Some(os), Some(arch), Some(digest)) = (
            p["os"].as_str(),
            p["architecture"].as_str(),
            m["digest"].as_str(),
        ) else {
            continue;
        };
        let platform = match p["variant"].as_str().filter(|v| !v.is_empty()) {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        };
        out.push(crate::domain::model::PlatformImage {
            platform,
            digest: digest.to_string(),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_order_and_normalise() {
        assert_eq!(
            parse_list("linux/amd64, Linux/ARM64").unwrap(),
            vec!["linux/amd64", "linux/arm64"]
        );
        assert_eq!(parse_list("linux/arm/v7").unwrap(), vec!["linux/arm/v7"]);
        assert_eq!(of_spec(None).unwrap(), Vec::<String>::new());
        assert_eq!(of_spec(Some(" ")).unwrap(), Vec::<String>::new());
        assert_eq!(first("linux/arm64,linux/amd64"), "linux/arm64");
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        let cases = [
            ("linux/amd64,,", "entry 2 is empty"),
            (",linux/amd64", "entry 1 is empty"),
            (
                "windows/amd64",
                "is not supported: crtask builds linux images only",
            ),
            ("linux/foo", "unknown architecture 'foo'"),
            ("linux", "write os/arch[/variant]"),
            ("linux/amd64/v1/x", "write os/arch[/variant]"),
            ("linux/amd64,linux/amd64", "listed twice"),
            ("linux/am\u{1b}d64", "linux/am\\u{1b}d64"),
        ];
        for (input, want) in cases {
            let e = parse_list(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e}");
            assert!(matches!(parse_list(input).unwrap_err(), Error::Invalid(_)));
        }
    }

    #[test]
    fn index_entries_become_platforms() {
        let doc = serde_json::json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"digest": "sha256:c"}
        ]});
        let p = index_platforms(&doc).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].platform.as_str(), p[0].digest.as_str()),
            ("linux/amd64", "sha256:a")
        );
        assert_eq!(p[1].platform, "linux/arm/v7");
        assert!(index_platforms(&serde_json::json!({"layers": []})).is_none());
    }

    #[test]
    fn matching_compares_os_arch_and_a_named_variant() {
        assert!(matches("linux/arm64", "linux", "arm64", ""));
        assert!(!matches("linux/arm64", "linux", "amd64", ""));
        assert!(matches("linux/arm", "linux", "arm", "v7"));
        assert!(!matches("linux/arm/v6", "linux", "arm", "v7"));
    }
}
