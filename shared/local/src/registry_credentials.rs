//! Registry credentials of the local server: one JSON file in the data
//! directory (`registry-credentials.json`, mode 0600), written by
//! `crtask registry credential add|remove` and read by the poller when a
//! registry answers `401` (read again each time, so a change needs no
//! restart). Passwords are never logged or listed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crtask_core::trigger::registry::credentials::{
    normalize_host, Credential, CredentialSource, StoredCredential,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "registry-credentials.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    registries: BTreeMap<String, StoredCredential>,
}

/// The credentials file of a data directory.
#[derive(Debug, Clone)]
pub struct FileCredentials {
    path: PathBuf,
}

impl FileCredentials {
    /// The file `registry-credentials.json` in `data_dir`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        FileCredentials {
            path: data_dir.join(FILE_NAME),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<File> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(File::default()),
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read {}: {e}",
                    self.path.display()
                )))
            }
        };
        serde_json::from_str(&text).map_err(|_| {
            Error::Config(format!(
                "{} is not a registry credentials file (JSON {{\"registries\": {{HOST: {{\"username\", \"password\"}}}}}})",
                self.path.display()
            ))
        })
    }

    /// Writes `file` atomically, readable by the owner only.
    fn write(&self, file: &File) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        let text = serde_json::to_string_pretty(file)
            .map_err(|e| Error::Config(format!("registry credentials: {e}")))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    /// Adds or replaces the credential of `host` (normalised; the answer
    /// is the name it was filed under).
    pub fn add(&self, host: &str, cred: &StoredCredential) -> Result<String> {
        let host = normalize_host(host)?;
        cred.validate()?;
        let mut file = self.read()?;
        file.registries.insert(host.clone(), cred.clone());
        self.write(&file)?;
        Ok(host)
    }

    /// The registries with a credential and their user names.
    pub fn list(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .read()?
            .registries
            .into_iter()
            .map(|(h, c)| (h, c.username))
            .collect())
    }

    /// Removes `host`'s credential; `false` when there was none.
    pub fn remove(&self, host: &str) -> Result<bool> {
        let host = normalize_host(host)?;
        let mut file = self.read()?;
        if file.registries.remove(&host).is_none() {
            return Ok(false);
        }
        self.write(&file)?;
        Ok(true)
    }
}

#[async_trait::async_trait]
impl CredentialSource for FileCredentials {
    async fn credential(&self, host: &str) -> std::result::Result<Option<Credential>, String> {
        let host = host.to_ascii_lowercase();
        let file = self.read().map_err(|e| e.to_string())?;
        Ok(file.registries.get(&host).map(StoredCredential::credential))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(user: &str, pass: &str) -> StoredCredential {
        StoredCredential {
            username: user.into(),
            password: pass.into(),
        }
    }

    #[tokio::test]
    async fn add_list_remove_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = FileCredentials::in_data_dir(dir.path());
        assert_eq!(f.credential("ghcr.io").await.unwrap(), None);
        assert_eq!(f.add("GHCR.io", &cred("bot", "pw1")).unwrap(), "ghcr.io");
        f.add("reg.example:5000", &cred("ci", "pw2")).unwrap();
        f.add("ghcr.io", &cred("bot2", "pw3")).unwrap();
        assert_eq!(
            f.list().unwrap(),
            [
                ("ghcr.io".to_string(), "bot2".to_string()),
                ("reg.example:5000".to_string(), "ci".to_string())
            ]
        );
        let c = f.credential("GHCR.IO").await.unwrap().unwrap();
        assert_eq!(c, Credential::new("bot2", "pw3"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(f.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(f.remove("ghcr.io").unwrap());
        assert!(!f.remove("ghcr.io").unwrap());
        assert_eq!(f.credential("ghcr.io").await.unwrap(), None);
        // Bad input changes nothing.
        assert!(f.add("https://x.io/a", &cred("u", "p")).is_err());
        assert!(f.add("x.io", &cred("u:v", "p")).is_err());
        assert_eq!(f.list().unwrap().len(), 1);
        // A damaged file is named, its contents are not repeated.
        std::fs::write(f.path(), "hunter2").unwrap();
        let e = f.credential("x.io").await.unwrap_err();
        assert!(e.contains(FILE_NAME) && !e.contains("hunter2"), "{e}");
    }
}
