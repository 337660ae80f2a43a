//! Which server the client commands call and the token they send: flags
//! beat environment beat the CLI's config file.
//!
//! The file is TOML (`--cli-config`, env `CRTASK_CLI_CONFIG`, default
//! `$XDG_CONFIG_HOME/crtask/cli.toml`, else `~/.config/crtask/cli.toml`):
//!
//! ```toml
//! server = "http://127.0.0.1:7879"
//! api-token-file = "api-token"   # relative to the file's directory
//! # or: api-token = "..."
//! ```
//!
//! The token has no flag, so that it never shows in a process list: it
//! comes from `CRTASK_API_TOKEN`, else from the file.

use anyhow::{bail, Context, Result};
use crtask_core::signing::Secret;
use crtask_local::config::DEFAULT_API_LISTEN;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The environment variable holding the API token.
pub const TOKEN_ENV: &str = "CRTASK_API_TOKEN";

/// The CLI's config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CliConfig {
    pub server: Option<String>,
    pub api_token: Option<String>,
    pub api_token_file: Option<PathBuf>,
}

/// Where the client commands go, with what.
#[derive(Debug)]
pub struct Connection {
    pub server: String,
    pub token: Option<Secret>,
}

/// The default config file, when a home is known.
fn default_path() -> Option<PathBuf> {
    Some(default_dir()?.join("cli.toml"))
}

/// The CLI's config directory (`$XDG_CONFIG_HOME/crtask`, else
/// `~/.config/crtask`), when a home is known: the config file and the
/// profiles ([`crate::profile`]) live there.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("crtask"))
}

/// Reads the config file: the one named (which must exist), else the
/// default one if it exists.
pub fn load(named: Option<&Path>) -> Result<(CliConfig, Option<PathBuf>)> {
    let path = match named {
        Some(p) => p.to_path_buf(),
        None => match default_path().filter(|p| p.is_file()) {
            Some(p) => p,
            None => return Ok((CliConfig::default(), None)),
        },
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read CLI config file {}", path.display()))?;
    let config: CliConfig = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!("CLI config file {}: {}", path.display(), e.message().trim())
    })?;
    Ok((config, Some(path)))
}

/// Settles the server and token: `server` is the flag or `CRTASK_SERVER`,
/// `env_token` is `CRTASK_API_TOKEN`; the file fills in what they leave.
pub fn resolve(
    server: Option<String>,
    env_token: Option<String>,
    file: CliConfig,
    file_path: Option<&Path>,
) -> Result<Connection> {
    let server = server
        .filter(|s| !s.is_empty())
        .or(file.server)
        .unwrap_or_else(|| format!("http://{DEFAULT_API_LISTEN}"));
    let token = match env_token.filter(|t| !t.trim().is_empty()) {
        Some(t) => Some(Secret::new(t.trim())),
        None => file_token(file.api_token, file.api_token_file, file_path)?,
    };
    Ok(Connection { server, token })
}

fn file_token(
    inline: Option<String>,
    file: Option<PathBuf>,
    config: Option<&Path>,
) -> Result<Option<Secret>> {
    let shown = config.map(|p| p.display().to_string()).unwrap_or_default();
    match (inline, file) {
        (Some(_), Some(_)) => {
            bail!("CLI config file {shown}: give api-token or api-token-file, not both")
        }
        (Some(t), None) if t.trim().is_empty() => {
            bail!("CLI config file {shown}: api-token is empty")
        }
        (Some(t), None) => Ok(Some(Secret::new(t.trim()))),
        (None, Some(f)) => {
            let f = match config.and_then(Path::parent) {
                Some(dir) if f.is_relative() => dir.join(f),
                _ => f,
            };
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read API token file {}", f.display()))?;
            let token = Secret::from_file_text(text.trim_start());
            if token.is_empty() {
                bail!("API token file {} is empty", f.display());
            }
            Ok(Some(token))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CliConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn flags_and_env_beat_the_file() {
        let file = || parse("server = \"http://file:1\"\napi-token = \"from-file\"\n");
        let c = resolve(None, None, file(), None).unwrap();
        assert_eq!(c.server, "http://file:1");
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("from-file"));
        let c = resolve(
            Some("http://flag:2".into()),
            Some("from-env\n".into()),
            file(),
            None,
        )
        .unwrap();
        assert_eq!(c.server, "http://flag:2");
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("from-env"));
        // An empty variable is no variable.
        let c = resolve(None, Some(String::new()), file(), None).unwrap();
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("from-file"));
        let c = resolve(None, None, CliConfig::default(), None).unwrap();
        assert_eq!(c.server, "http://127.0.0.1:7879");
        assert!(c.token.is_none());
    }

    #[test]
    fn a_token_file_is_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "s3cret\n").unwrap();
        let cfg = dir.path().join("cli.toml");
        std::fs::write(&cfg, "api-token-file = \"tok\"\n").unwrap();
        let (file, path) = load(Some(&cfg)).unwrap();
        let c = resolve(None, None, file, path.as_deref()).unwrap();
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("s3cret"));
    }

    #[test]
    fn bad_config_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(Some(&dir.path().join("none.toml"))).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot read CLI config file"),
            "{e:#}"
        );
        let cfg = dir.path().join("cli.toml");
        std::fs::write(&cfg, "sever = \"x\"\n").unwrap();
        let e = load(Some(&cfg)).unwrap_err();
        assert!(e.to_string().contains("sever"), "{e}");
        let both = parse("api-token = \"a\"\napi-token-file = \"f\"\n");
        assert!(resolve(None, None, both, None).is_err());
        let missing = parse("api-token-file = \"nope\"\n");
        let e = resolve(None, None, missing, Some(&cfg)).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot read API token file"),
            "{e:#}"
        );
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let empty = parse("api-token-file = \"empty\"\n");
        assert!(resolve(None, None, empty, Some(&cfg)).is_err());
    }
}
