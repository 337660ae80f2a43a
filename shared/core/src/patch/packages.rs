//! What an image has installed, read from its package database, and what
//! a patch changed.

use crate::patch::model::PackageChange;
use std::collections::BTreeMap;

/// Installed packages: name -> version.
pub type Installed = BTreeMap<String, String>;

/// dpkg's database (`/var/lib/dpkg/status`): paragraphs of `Field: value`;
/// only packages whose `Status` ends in `installed` count.
pub fn parse_dpkg_status(text: &str) -> Installed {
    let mut out = Installed::new();
    for para in text.split("\n\n") {
        let (mut name, mut version, mut installed) = (None, None, false);
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.split_whitespace().last() == Some("installed");
            }
        }
        if let (Some(n), Some(v), true) = (name, version, installed) {
            out.insert(n.to_string(), v.to_string());
        }
    }
    out
}

/// apk's database (`/lib/apk/db/installed`): blocks of `X:value` lines,
/// `P:` the name and `V:` the version.
pub fn parse_apk_installed(text: &str) -> Installed {
    let mut out = Installed::new();
    for block in text.split("\n\n") {
        let (mut name, mut version) = (None, None);
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("P:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("V:") {
                version = Some(v.trim());
            }
        }
        if let (Some(n), Some(v)) = (name, version) {
            out.insert(n.to_string(), v.to_string());
        }
    }
    out
}

/// The query format [`parse_rpm_query`] reads (`rpm -qa --qf`).
pub const RPM_QUERY_FORMAT: &str = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n";

/// `rpm -qa --qf RPM_QUERY_FORMAT` output; epoch `0:` is left out as rpm shows it.
pub fn parse_rpm_query(text: &str) -> Installed {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(n, v)| !n.trim().is_empty() && !v.trim().is_empty())
        .map(|(n, v)| {
            let v = v.trim();
            (
                n.trim().to_string(),
                v.strip_prefix("0:").unwrap_or(v).to_string(),
            )
        })
        .collect()
}

/// Every package whose version differs between `before` and `after`, by name.
pub fn diff(before: &Installed, after: &Installed) -> Vec<PackageChange> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| PackageChange {
            name: n.clone(),
            old_version: before.get(n).cloned(),
            new_version: after.get(n).cloned(),
            fixed_version: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_counts_installed_packages_only() {
        let text = "Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\nDescription: x\n multi\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u7\n";
        let p = parse_dpkg_status(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p["libc6"], "2.36-9+deb12u7");
        assert!(!p.contains_key("gone"));
    }

    #[test]
    fn apk_and_rpm_databases() {
        let apk =
            parse_apk_installed("C:Q1x=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\n");
        assert_eq!(apk["musl"], "1.2.4-r2");
        assert_eq!(apk["busybox"], "1.36.1-r5");
        let rpm = parse_rpm_query("bash\t0:5.1.8-6.el9\nopenssl\t1:3.0.7-25.el9\n\nbroken\n");
        assert_eq!(rpm["bash"], "5.1.8-6.el9");
        assert_eq!(rpm["openssl"], "1:3.0.7-25.el9");
        assert_eq!(rpm.len(), 2);
    }

    #[test]
    fn diff_lists_updates_additions_and_removals() {
        let b: Installed = [("a", "1"), ("b", "1"), ("c", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut a = b.clone();
        a.insert("a".into(), "2".into());
        a.remove("c");
        a.insert("d".into(), "1".into());
        let d = diff(&b, &a);
        let shown: Vec<_> = d
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.old_version.as_deref(),
                    c.new_version.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("a", Some("1"), Some("2")),
                ("c", Some("1"), None),
                ("d", None, Some("1"))
            ]
        );
        assert!(diff(&b, &b).is_empty());
    }
}
