//! Named CLI profiles: which platform the commands go to and, for AWS, the
//! stack's settings, so that `crtask --platform aws ...` needs no flag
//! after `crtask aws configure --stack NAME`.
//!
//! The profiles live in `profiles.toml`, next to the CLI's config file
//! ([`crate::config`]: the directory of `--cli-config`, else
//! `~/.config/crtask/`), one table per profile:
//!
//! ```toml
//! [profiles.default]
//! platform = "aws"
//!
//! [profiles.default.aws]
//! stack = "crtask"
//! region = "eu-west-1"
//! table = "crtask-Table-1ABC"
//! # ... every stack output the CLI uses (crate::settings::OUTPUTS)
//! ```
//!
//! `--profile` (env `CRTASK_PROFILE`) selects one [default: `default`];
//! flags and their variables beat the profile's values.

use crate::settings::AwsSettings;
use crate::Platform;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// The profiles file's name, in the CLI config's directory.
pub const FILE_NAME: &str = "profiles.toml";

/// One profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// The platform commands go to when `--platform` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The AWS stack's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The profiles file: next to the named CLI config, else in the default
/// config directory. `None` when no home is known.
pub fn path(cli_config: Option<&Path>) -> Option<PathBuf> {
    match cli_config {
        Some(c) => Some(
            c.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join(FILE_NAME),
        ),
        None => crate::config::default_dir().map(|d| d.join(FILE_NAME)),
    }
}

/// A profile name: letters, digits, `-` and `_`, at most 64 characters
/// (it is a TOML key and is shown in messages).
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!(
            "profile name '{}' is invalid: use letters, digits, '-' and '_' (at most 64 characters)",
            crtask_core::domain::text::inert(name)
        );
    }
    Ok(())
}

/// The profile to use: `named` (`--profile`/`CRTASK_PROFILE`), which must
/// exist, else `default` when the file has it, else an empty profile.
pub fn select(file: Option<&Path>, named: Option<&str>) -> Result<Profile> {
    let named = named.filter(|n| !n.is_empty());
    if let Some(n) = named {
        check_name(n)?;
    }
    let profiles = match file {
        Some(f) if f.is_file() => read(f)?.profiles,
        _ => BTreeMap::new(),
    };
    match named {
        None => Ok(profiles.get(DEFAULT_PROFILE).cloned().unwrap_or_default()),
        Some(n) => profiles.get(n).cloned().ok_or_else(|| {
            let shown = file
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| FILE_NAME.to_string());
            anyhow!(
                "profile '{n}' is not in {shown}: create it with `crtask aws configure --stack NAME --profile {n}`"
            )
        }),
    }
}

fn read(file: &Path) -> Result<ProfilesFile> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read profiles file {}", file.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow!("profiles file {}: {}", file.display(), e.message().trim()))
}

/// Writes (adds or replaces) profile `name` in `file`, keeping the other
/// profiles and the file's comments. The file is replaced atomically and
/// readable by its owner only.
pub fn write(file: &Path, name: &str, profile: &Profile) -> Result<()> {
    check_name(name)?;
    let mut doc = if file.is_file() {
        // Refuse to rewrite a file that does not read as a profiles file.
        read(file)?;
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read profiles file {}", file.display()))?;
        text.parse::<toml_edit::DocumentMut>()
            .map_err(|e| anyhow!("profiles file {}: {e}", file.display()))?
    } else {
        let mut d = toml_edit::DocumentMut::new();
        d.decor_mut().set_prefix(
            "# crtask CLI profiles: `crtask aws configure --stack NAME [--profile P]` writes them;\n# choose one with --profile or CRTASK_PROFILE [default: default].\n",
        );
        d
    };
    let rendered = toml::to_string(profile).context("cannot render the profile")?;
    let table = rendered
        .parse::<toml_edit::DocumentMut>()
        .context("cannot render the profile")?
        .as_table()
        .clone();
    let profiles = doc
        .entry("profiles")
        .or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| {
            anyhow!(
                "profiles file {}: `profiles` is not a table",
                file.display()
            )
        })?;
    profiles.insert(name, toml_edit::Item::Table(table));
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, doc.to_string().as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    tmp.persist(file)
        .map_err(|e| anyhow!("cannot write {}: {}", file.display(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(table: &str) -> Profile {
        Profile {
            platform: Some(Platform::Aws),
            aws: Some(AwsSettings {
                stack: Some("crtask".into()),
                region: Some("eu-west-1".into()),
                table: Some(table.into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn profiles_coexist_and_are_replaced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub").join(FILE_NAME);
        write(&f, "default", &aws("t1")).unwrap();
        write(&f, "prod", &aws("t2")).unwrap();
        // A comment the user adds survives rewrites.
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, format!("{text}\n# mine\n")).unwrap();
        write(&f, "default", &aws("t3")).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("# mine"), "{text}");
        assert!(text.contains("[profiles.prod.aws]"), "{text}");
        assert_eq!(select(Some(&f), None).unwrap(), aws("t3"));
        assert_eq!(select(Some(&f), Some("prod")).unwrap(), aws("t2"));
        let e = select(Some(&f), Some("dev")).unwrap_err().to_string();
        assert!(e.contains("profile 'dev' is not in"), "{e}");
        assert!(e.contains("--profile dev"), "{e}");
        // No file, no default profile: an empty one.
        let none = dir.path().join("none.toml");
        assert_eq!(select(Some(&none), None).unwrap(), Profile::default());
        assert!(select(Some(&none), Some("prod")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn bad_files_and_names_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(FILE_NAME);
        std::fs::write(&f, "[profiles.default]\nplatfrom = \"aws\"\n").unwrap();
        let e = select(Some(&f), None).unwrap_err().to_string();
        assert!(e.contains("platfrom"), "{e}");
        assert!(write(&f, "default", &aws("t")).is_err());
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "[profiles.default]\nplatfrom = \"aws\"\n"
        );
        std::fs::write(&f, "[profiles.default]\nplatform = \"gcp\"\n").unwrap();
        assert!(select(Some(&f), None).is_err());
        for bad in ["", "a b", "../x", "p\x1b[2J", &"p".repeat(65)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(!e.contains('\x1b'), "{e:?}");
            assert!(write(&dir.path().join("new.toml"), bad, &aws("t")).is_err());
        }
        assert!(!dir.path().join("new.toml").exists());
    }

    #[test]
    fn the_file_is_next_to_the_cli_config() {
        assert_eq!(
            path(Some(Path::new("/etc/crtask/cli.toml"))),
            Some(PathBuf::from("/etc/crtask/profiles.toml"))
        );
        assert_eq!(
            path(Some(Path::new("cli.toml"))),
            Some(PathBuf::from("./profiles.toml"))
        );
    }
}
