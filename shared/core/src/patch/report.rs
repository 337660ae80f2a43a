//! Trivy JSON reports (`trivy image -f json`): the OS packages listed as
//! vulnerable with a fixed version are what `--report` patches.

use crate::patch::commands::valid_package_name;
use crate::patch::model::ReportedPackage;
use crate::{Error, Result};
use serde::Deserialize;

#[derive(Deserialize)]
struct Report {
    #[serde(rename = "SchemaVersion")]
    schema_version: Option<u64>,
    #[serde(rename = "Results", default)]
    results: Option<Vec<ReportResult>>,
}

#[derive(Deserialize)]
struct ReportResult {
    #[serde(rename = "Class", default)]
    class: Option<String>,
    #[serde(rename = "Vulnerabilities", default)]
    vulnerabilities: Option<Vec<Vulnerability>>,
}

#[derive(Deserialize)]
struct Vulnerability {
    #[serde(rename = "PkgName")]
    pkg_name: String,
    #[serde(rename = "FixedVersion", default)]
    fixed_version: Option<String>,
}

/// The OS packages a Trivy report lists with a fixed version, each once
/// (sorted by name). Language packages (`lang-pkgs` results) are left out:
/// a package manager cannot update them. A report in another format, or
/// one naming a package no distribution would, is refused.
pub fn parse(bytes: &[u8]) -> Result<Vec<ReportedPackage>> {
    let report: Report = serde_json::from_slice(bytes).map_err(|e| {
        Error::invalid(format!(
            "the report is not a Trivy JSON report (trivy image -f json): {e}"
        ))
    })?;
    if report.schema_version.is_none() {
        return Err(Error::invalid(
            "the report has no SchemaVersion: expected a Trivy JSON report (trivy image -f json)",
        ));
    }
    let mut out: Vec<ReportedPackage> = Vec::new();
    for r in report.results.unwrap_or_default() {
        if r.class.as_deref().is_some_and(|c| c != "os-pkgs") {
            continue;
        }
        for v in r.vulnerabilities.unwrap_or_default() {
            // "1.2.3-1, 1.2.4-1": the first fixes it in the image's stream.
            let fixed = v
                .fixed_version
                .as_deref()
                .and_then(|f| f.split(',').next())
                .map(str::trim)
                .unwrap_or_default();
            if fixed.is_empty() {
                continue;
            }
            if !valid_package_name(&v.pkg_name) {
                return Err(Error::invalid(format!(
                    "the report names package '{}', which is not a package name",
                    crate::domain::text::inert(&v.pkg_name)
                )));
            }
            if fixed.len() > 200 || fixed.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(Error::invalid(format!(
                    "the report gives package '{}' an invalid fixed version",
                    v.pkg_name
                )));
            }
            match out.iter_mut().find(|p| p.name == v.pkg_name) {
                // Several vulnerabilities of one package: kept once; the
                // update installs the newest version anyway.
                Some(_) => {}
                None => out.push(ReportedPackage {
                    name: v.pkg_name,
                    fixed_version: fixed.to_string(),
                }),
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The smallest Trivy report listing `packages`: what a client sends
/// instead of a whole report (reports of large images run to megabytes).
pub fn minimal(packages: &[ReportedPackage]) -> serde_json::Value {
    let vulns: Vec<serde_json::Value> = packages
        .iter()
        .map(|p| serde_json::json!({"PkgName": p.name, "FixedVersion": p.fixed_version}))
        .collect();
    serde_json::json!({
        "SchemaVersion": 2,
        "Results": [{"Class": "os-pkgs", "Vulnerabilities": vulns}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{
      "SchemaVersion": 2,
      "ArtifactName": "127.0.0.1:5000/app:1",
      "Metadata": {"OS": {"Family": "debian", "Name": "12.5"}},
      "Results": [
        {"Target": "app (debian 12.5)", "Class": "os-pkgs", "Type": "debian",
         "Vulnerabilities": [
           {"VulnerabilityID": "CVE-2024-1", "PkgName": "libssl3", "InstalledVersion": "3.0.11-1", "FixedVersion": "3.0.13-1~deb12u1"},
           {"VulnerabilityID": "CVE-2024-2", "PkgName": "libssl3", "InstalledVersion": "3.0.11-1", "FixedVersion": "3.0.13-1~deb12u1"},
           {"VulnerabilityID": "CVE-2024-3", "PkgName": "zlib1g", "InstalledVersion": "1:1.2.13", "FixedVersion": ""},
           {"VulnerabilityID": "CVE-2024-4", "PkgName": "curl", "InstalledVersion": "7.88", "FixedVersion": "7.88.1-10+deb12u6, 8.0"}
         ]},
        {"Target": "Python", "Class": "lang-pkgs", "Type": "python-pkg",
         "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-5", "PkgName": "requests", "FixedVersion": "2.32.0"}]}
      ]
    }"#;

    #[test]
    fn os_packages_with_a_fix_each_once() {
        let p = parse(REPORT.as_bytes()).unwrap();
        let shown: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.fixed_version.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("curl", "7.88.1-10+deb12u6"),
                ("libssl3", "3.0.13-1~deb12u1")
            ]
        );
    }

    #[test]
    fn the_minimal_report_lists_the_same_packages() {
        let p = parse(REPORT.as_bytes()).unwrap();
        let small = serde_json::to_vec(&minimal(&p)).unwrap();
        assert_eq!(parse(&small).unwrap(), p);
    }

    #[test]
    fn clean_reports_and_bad_ones() {
        assert!(parse(br#"{"SchemaVersion": 2, "Results": null}"#)
            .unwrap()
            .is_empty());
        let err = |b: &str| parse(b.as_bytes()).unwrap_err().to_string();
        assert!(err("not json").contains("not a Trivy JSON report"));
        assert!(err(r#"{"Results": []}"#).contains("no SchemaVersion"));
        let evil = r#"{"SchemaVersion":2,"Results":[{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"-o APT::x","FixedVersion":"1"}]}]}"#;
        assert!(err(evil).contains("is not a package name"), "{}", err(evil));
        let evil = r#"{"SchemaVersion":2,"Results":[{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"a","FixedVersion":"1\n2"}]}]}"#;
        assert!(err(evil).contains("invalid fixed version"));
    }
}
