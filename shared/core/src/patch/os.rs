//! Which OS an image runs and which package manager patches it.

use std::collections::BTreeMap;

/// Where os-release(5) may be, in order.
pub const OS_RELEASE_PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The fields of os-release(5) that matter here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsInfo {
    /// `ID`, lower-case (`debian`, `alpine`, `fedora`).
    pub id: String,
    /// `ID_LIKE`, split (`rhel fedora`).
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    /// `PRETTY_NAME`, or `ID VERSION_ID`.
    pub pretty_name: String,
}

/// Parses os-release(5): `KEY=value` lines, values optionally quoted.
pub fn parse_os_release(text: &str) -> Option<OsInfo> {
    let mut kv = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            kv.insert(k.trim().to_string(), v.replace("\\\"", "\""));
        }
    }
    let id = kv.get("ID")?.to_ascii_lowercase();
    if id.is_empty() {
        return None;
    }
    let version_id = kv.get("VERSION_ID").cloned();
    let pretty_name = kv
        .get("PRETTY_NAME")
        .cloned()
        .unwrap_or_else(|| format!("{id} {}", version_id.clone().unwrap_or_default()));
    Some(OsInfo {
        id_like: kv
            .get("ID_LIKE")
            .map(|s| s.split_whitespace().map(str::to_ascii_lowercase).collect())
            .unwrap_or_default(),
        id,
        version_id,
        pretty_name: crate::domain::text::inert(pretty_name.trim()).into_owned(),
    })
}

/// A package manager crtask can patch with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    /// Debian, Ubuntu: apt-get over dpkg.
    Apt,
    /// Alpine.
    Apk,
    Dnf,
    Microdnf,
    Tdnf,
    Yum,
}

impl PackageManager {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Apt => "apt",
            PackageManager::Apk => "apk",
            PackageManager::Dnf => "dnf",
            PackageManager::Microdnf => "microdnf",
            PackageManager::Tdnf => "tdnf",
            PackageManager::Yum => "yum",
        }
    }

    /// The binary whose presence says the manager is in the image.
    pub fn binaries(self) -> &'static [&'static str] {
        match self {
            PackageManager::Apt => &["/usr/bin/apt-get"],
            PackageManager::Apk => &["/sbin/apk", "/usr/bin/apk"],
            PackageManager::Dnf => &["/usr/bin/dnf", "/usr/bin/dnf5", "/usr/bin/dnf-3"],
            PackageManager::Microdnf => &["/usr/bin/microdnf"],
            PackageManager::Tdnf => &["/usr/bin/tdnf"],
            PackageManager::Yum => &["/usr/bin/yum"],
        }
    }

    /// True for the managers over the RPM database.
    pub fn is_rpm(self) -> bool {
        !matches!(self, PackageManager::Apt | PackageManager::Apk)
    }
}

/// The package family of an OS, from `ID` and `ID_LIKE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Debian,
    Alpine,
    Rpm,
    Unknown,
}

pub fn family(os: &OsInfo) -> Family {
    const RPM: [&str; 14] = [
        "rhel",
        "fedora",
        "centos",
        "rocky",
        "almalinux",
        "amzn",
        "ol",
        "mariner",
        "azurelinux",
        "photon",
        "sles",
        "opensuse",
        "suse",
        "cbl-mariner",
    ];
    let names = std::iter::once(os.id.as_str()).chain(os.id_like.iter().map(String::as_str));
    for n in names {
        match n {
            "debian" | "ubuntu" => return Family::Debian,
            "alpine" | "wolfi" => return Family::Alpine,
            n if RPM.contains(&n) => return Family::Rpm,
            _ => {}
        }
    }
    Family::Unknown
}

/// Why an image cannot be patched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Picks the package manager for `os` among those whose binary the image
/// has (`present` answers for a path). Images without one (distroless) are
/// refused with the reason.
pub fn choose_manager(
    os: &OsInfo,
    present: &dyn Fn(&str) -> bool,
) -> Result<PackageManager, Refusal> {
    let candidates: &[PackageManager] = match family(os) {
        Family::Debian => &[PackageManager::Apt],
        Family::Alpine => &[PackageManager::Apk],
        Family::Rpm => &[
            PackageManager::Dnf,
            PackageManager::Microdnf,
            PackageManager::Tdnf,
            PackageManager::Yum,
        ],
        Family::Unknown => {
            return Err(Refusal(format!(
            "{} is not an OS crtask can patch (Debian, Ubuntu, Alpine and RPM distributions are)",
            os.pretty_name
        )))
        }
    };
    for m in candidates {
        if m.binaries().iter().any(|b| present(b)) {
            return Ok(*m);
        }
    }
    let wanted: Vec<&str> = candidates.iter().map(|m| m.as_str()).collect();
    Err(Refusal(format!(
        "{} has no package manager in the image ({} not found): images without one (distroless) cannot be patched in place; rebuild them from their Dockerfile",
        os.pretty_name,
        wanted.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";

    #[test]
    fn os_release_is_parsed() {
        let os = parse_os_release(DEBIAN).unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        let rocky =
            parse_os_release("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=9.3\n")
                .unwrap();
        assert_eq!(rocky.id_like, ["rhel", "centos", "fedora"]);
        assert_eq!(rocky.pretty_name, "rocky 9.3");
        assert_eq!(parse_os_release("NAME=x\n"), None);
        assert_eq!(parse_os_release("ID=\n"), None);
        // A control character in the name cannot reach a terminal.
        let evil = parse_os_release("ID=debian\nPRETTY_NAME=\"a\x1b[2Jb\"\n").unwrap();
        assert!(!evil.pretty_name.contains('\x1b'), "{}", evil.pretty_name);
    }

    #[test]
    fn managers_by_family_and_presence() {
        let os = |s: &str| parse_os_release(s).unwrap();
        let has = |paths: &'static [&'static str]| move |p: &str| paths.contains(&p);
        assert_eq!(
            choose_manager(&os(DEBIAN), &has(&["/usr/bin/apt-get"])),
            Ok(PackageManager::Apt)
        );
        assert_eq!(
            choose_manager(&os("ID=ubuntu\n"), &has(&["/usr/bin/apt-get"])),
            Ok(PackageManager::Apt)
        );
        assert_eq!(
            choose_manager(&os("ID=alpine\n"), &has(&["/sbin/apk"])),
            Ok(PackageManager::Apk)
        );
        assert_eq!(
            choose_manager(&os("ID=fedora\n"), &has(&["/usr/bin/dnf"])),
            Ok(PackageManager::Dnf)
        );
        assert_eq!(
            choose_manager(&os("ID=rhel\n"), &has(&["/usr/bin/microdnf"])),
            Ok(PackageManager::Microdnf)
        );
        assert_eq!(
            choose_manager(&os("ID=azurelinux\n"), &has(&["/usr/bin/tdnf"])),
            Ok(PackageManager::Tdnf)
        );
        let distroless = choose_manager(&os(DEBIAN), &has(&[])).unwrap_err();
        assert!(
            distroless
                .0
                .contains("has no package manager in the image (apt not found)"),
            "{}",
            distroless.0
        );
        let unknown = choose_manager(&os("ID=plan9\n"), &has(&["/usr/bin/apt-get"])).unwrap_err();
        assert!(
            unknown.0.contains("not an OS crtask can patch"),
            "{}",
            unknown.0
        );
    }
}
