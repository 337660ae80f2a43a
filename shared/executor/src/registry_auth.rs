//! The credential buildah itself pushes with, for the few registry API
//! calls crtask makes next to buildah (a patch run listing a repository's
//! tags to pick `TAG-N`, the shared pull store asking a `cmd` image's
//! current digest). It is read from the files `buildah login` and
//! `docker login` write, in the order containers-auth.json(5) gives:
//! `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `/run/containers/<uid>/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json`
//! (`~/.config/...`), `~/.docker/config.json`. On CodeBuild that is the
//! ECR login of the buildspec, so no password is stored anywhere.
//!
//! Only the `auth` field (HTTP Basic, `user:password` in base64) is read:
//! credential helpers are not run. Registries that accept Basic on their
//! API (ECR, `htpasswd` registries) are covered; a token-only registry is
//! asked anonymously, as before.

use crtask_core::signing::Secret;
use crtask_core::trigger::registry::credentials::{Credential, CredentialSource};
use std::path::PathBuf;

/// The `auth` value for `host` in an auth file's JSON (`auths` keys may be
/// a host, `host/path` or a URL), `None` when absent.
pub fn find_auth(json: &[u8], host: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let auths = v.get("auths")?.as_object()?;
    auths.iter().find_map(|(key, entry)| {
        let k = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or(k);
        if !k.eq_ignore_ascii_case(host) {
            return None;
        }
        entry
            .get("auth")
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
            .map(str::to_string)
    })
}

/// The auth files, most specific first.
pub fn auth_files(env: impl Fn(&str) -> Option<String>, uid: u32) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        files.push(PathBuf::from(f));
    }
    match env("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => files.push(PathBuf::from(d).join("containers/auth.json")),
        None => files.push(PathBuf::from(format!("/run/containers/{uid}/auth.json"))),
    }
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    match env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => files.push(PathBuf::from(d).join("containers/auth.json")),
        None => {
            if let Some(h) = &home {
                files.push(h.join(".config/containers/auth.json"));
            }
        }
    }
    if let Some(h) = &home {
        files.push(h.join(".docker/config.json"));
    }
    files
}

/// The Basic credential (base64 `user:password`) the login files hold for
/// `host`, if any.
pub fn basic_for(host: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // `/proc/self` belongs to the process's user (no `unsafe` getuid).
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    auth_files(|k| std::env::var(k).ok(), uid)
        .into_iter()
        .find_map(|f| std::fs::read(f).ok().and_then(|b| find_auth(&b, host)))
}

/// The login files as a credential source for registry requests of the
/// executor's own (the same credentials buildah pulls and pushes with).
pub struct LoginFiles;

#[async_trait::async_trait]
impl CredentialSource for LoginFiles {
    async fn credential(&self, host: &str) -> Result<Option<Credential>, String> {
        use base64::Engine as _;
        let Some(basic) = basic_for(host) else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                format!("the login file's entry for {host} is not base64 user:password")
            })?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| format!("the login file's entry for {host} has no user:password"))?;
        Ok(Some(Credential {
            username: user.to_string(),
            password: Secret::new(password),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_host_in_every_key_form() {
        let json = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "ZG9ja2VyOmh1Yg=="},
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com": {"auth": "QVdTOnRva2Vu"},
            "localhost:5000/team": {"auth": "dTpw"},
            "empty.example": {"auth": ""}
        }}"#;
        assert_eq!(
            find_auth(json, "123456789012.dkr.ecr.eu-west-1.amazonaws.com").as_deref(),
            Some("QVdTOnRva2Vu")
        );
        assert_eq!(
            find_auth(json, "index.docker.io").as_deref(),
            Some("ZG9ja2VyOmh1Yg==")
        );
        assert_eq!(find_auth(json, "LOCALHOST:5000").as_deref(), Some("dTpw"));
        assert_eq!(find_auth(json, "empty.example"), None);
        assert_eq!(find_auth(json, "other.example"), None);
        assert_eq!(find_auth(b"not json", "x"), None);
        assert_eq!(find_auth(br#"{"credHelpers": {}}"#, "x"), None);
    }

    #[test]
    fn files_follow_the_containers_order() {
        let env = |k: &str| match k {
            "REGISTRY_AUTH_FILE" => Some("/etc/auth.json".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        let files: Vec<String> = auth_files(env, 0)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            files,
            [
                "/etc/auth.json",
                "/run/containers/0/auth.json",
                "/home/u/.config/containers/auth.json",
                "/home/u/.docker/config.json"
            ]
        );
        let xdg = |k: &str| match k {
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_string()),
            "XDG_CONFIG_HOME" => Some("/cfg".to_string()),
            _ => None,
        };
        let files: Vec<String> = auth_files(xdg, 1000)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            files,
            [
                "/run/user/1000/containers/auth.json",
                "/cfg/containers/auth.json"
            ]
        );
    }
}
