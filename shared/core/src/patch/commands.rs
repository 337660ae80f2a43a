//! The commands a package manager runs to patch an image. Each is an argv
//! (never a shell line): package names come from reports and are checked by
//! [`valid_package_name`] before they get here.

use crate::patch::os::PackageManager;

/// One command to run inside the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    /// Environment added for the command.
    pub env: Vec<(String, String)>,
}

fn cmd(argv: &[&str], extra: &[String], env: &[(&str, &str)]) -> Command {
    Command {
        argv: argv
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
            .collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

const APT_ENV: [(&str, &str); 1] = [("DEBIAN_FRONTEND", "noninteractive")];

/// How to read what is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inventory {
    /// A database file inside the image, parsed by core.
    File(&'static str),
    /// A command whose output core parses.
    Query(Command),
}

pub fn inventory(m: PackageManager) -> Inventory {
    match m {
        PackageManager::Apt => Inventory::File("/var/lib/dpkg/status"),
        PackageManager::Apk => Inventory::File("/lib/apk/db/installed"),
        _ => Inventory::Query(cmd(
            &[
                "rpm",
                "-qa",
                "--qf",
                crate::patch::packages::RPM_QUERY_FORMAT,
            ],
            &[],
            &[],
        )),
    }
}

/// The commands that update `only` (every package with an update when
/// empty) and leave no package lists or caches behind in the new layer.
pub fn update(m: PackageManager, only: &[String]) -> Vec<Command> {
    match m {
        PackageManager::Apt => {
            let mut v = vec![cmd(&["apt-get", "-q", "update"], &[], &APT_ENV)];
            if only.is_empty() {
                v.push(cmd(
                    &[
                        "apt-get",
                        "-q",
                        "-y",
                        "-o",
                        "Dpkg::Options::=--force-confold",
                        "upgrade",
                    ],
                    &[],
                    &APT_ENV,
                ));
            } else {
                v.push(cmd(
                    &[
                        "apt-get",
                        "-q",
                        "-y",
                        "-o",
                        "Dpkg::Options::=--force-confold",
                        "install",
                        "--only-upgrade",
                        "--no-install-recommends",
                        "--",
                    ],
                    only,
                    &APT_ENV,
                ));
            }
            v.push(cmd(&["apt-get", "clean"], &[], &APT_ENV));
            v.push(cmd(
                &[
                    "find",
                    "/var/lib/apt/lists",
                    "-type",
                    "f",
                    "!",
                    "-name",
                    "lock",
                    "-delete",
                ],
                &[],
                &[],
            ));
            v
        }
        PackageManager::Apk => {
            if only.is_empty() {
                vec![cmd(&["apk", "upgrade", "--no-cache"], &[], &[])]
            } else {
                vec![cmd(
                    &["apk", "add", "--no-cache", "--upgrade", "--"],
                    only,
                    &[],
                )]
            }
        }
        PackageManager::Dnf | PackageManager::Yum => {
            let bin = m.as_str();
            vec![
                cmd(&[bin, "-y", "--refresh", "upgrade", "--"], only, &[]),
                cmd(&[bin, "clean", "all"], &[], &[]),
            ]
        }
        PackageManager::Microdnf | PackageManager::Tdnf => {
            let bin = m.as_str();
            vec![
                cmd(&[bin, "-y", "update"], only, &[]),
                cmd(&[bin, "clean", "all"], &[], &[]),
            ]
        }
    }
}

/// Package names as the distributions allow them (Debian policy 5.6.1 is
/// the strictest; RPM and apk names fit the same set plus upper case and `_`).
pub fn valid_package_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(m: PackageManager, only: &[&str]) -> Vec<String> {
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        update(m, &only).iter().map(|c| c.argv.join(" ")).collect()
    }

    #[test]
    fn apt_updates_all_or_only_the_listed_and_cleans_up() {
        assert_eq!(
            argvs(PackageManager::Apt, &[]),
            [
                "apt-get -q update",
                "apt-get -q -y -o Dpkg::Options::=--force-confold upgrade",
                "apt-get clean",
                "find /var/lib/apt/lists -type f ! -name lock -delete"
            ]
        );
        assert_eq!(
            argvs(PackageManager::Apt, &["libssl3"])[1],
            "apt-get -q -y -o Dpkg::Options::=--force-confold install --only-upgrade --no-install-recommends -- libssl3"
        );
        assert!(update(PackageManager::Apt, &[])[0]
            .env
            .contains(&("DEBIAN_FRONTEND".into(), "noninteractive".into())));
    }

    #[test]
    fn apk_and_rpm_managers() {
        assert_eq!(argvs(PackageManager::Apk, &[]), ["apk upgrade --no-cache"]);
        assert_eq!(
            argvs(PackageManager::Apk, &["musl"]),
            ["apk add --no-cache --upgrade -- musl"]
        );
        assert_eq!(
            argvs(PackageManager::Dnf, &["openssl"]),
            ["dnf -y --refresh upgrade -- openssl", "dnf clean all"]
        );
        assert_eq!(
            argvs(PackageManager::Microdnf, &[]),
            ["microdnf -y update", "microdnf clean all"]
        );
        assert_eq!(
            argvs(PackageManager::Tdnf, &["x"]),
            ["tdnf -y update x", "tdnf clean all"]
        );
        assert!(matches!(
            inventory(PackageManager::Tdnf),
            Inventory::Query(_)
        ));
        assert_eq!(
            inventory(PackageManager::Apt),
            Inventory::File("/var/lib/dpkg/status")
        );
    }

    #[test]
    fn package_names() {
        for ok in [
            "libssl3",
            "g++",
            "python3.11",
            "libstdc++6",
            "NetworkManager",
            "glibc_x",
        ] {
            assert!(valid_package_name(ok), "{ok}");
        }
        for bad in ["", "-y", "a b", "a;rm", "$(x)", "a/b", "--force"] {
            assert!(!valid_package_name(bad), "{bad}");
        }
    }
}
