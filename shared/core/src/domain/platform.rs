//! Platforms (`os/arch[/variant]`) as builds name them.

use crate::error::{Error, Result};

/// Checks `os/arch[/variant]`.
pub fn validate(p: &str) -> Result<()> {
    let parts: Vec<&str> = p.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid platform '{p}': write os/arch[/variant], e.g. linux/amd64"
        )))
    }
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
