//! One module per command group.

pub mod build;
pub mod events;
pub mod exec;
pub mod image;
pub mod run;
pub mod serve;
pub mod serve_limits;
pub mod task;
pub mod timer;
pub mod wait;

use crate::backend::Backend;
use crate::Format;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use yaml_rust2::Yaml;

/// What every client command needs.
pub struct Ctx {
    /// `--server` or `CRTASK_SERVER`; the CLI config fills it in otherwise.
    pub server: Option<String>,
    /// `--cli-config` or `CRTASK_CLI_CONFIG`.
    pub cli_config: Option<std::path::PathBuf>,
    pub format: Format,
    pub platform: crate::Platform,
    pub aws: crate::backend::AwsSettings,
}

impl Ctx {
    /// The platform the commands talk to.
    pub async fn client(&self) -> Result<Backend> {
        match self.platform {
            crate::Platform::Local => {
                let (file, path) = crate::config::load(self.cli_config.as_deref())?;
                let conn = crate::config::resolve(
                    self.server.clone(),
                    std::env::var(crate::config::TOKEN_ENV).ok(),
                    file,
                    path.as_deref(),
                )?;
                Ok(Backend::Http(crate::client::Client::new(
                    &conn.server,
                    conn.token,
                )?))
            }
            crate::Platform::Aws => Ok(Backend::Aws(Box::new(
                crate::backend::AwsBackend::connect(&self.aws).await?,
            ))),
        }
    }
}

/// `--set K=V` values (later wins; `a=b=c` is key `a`, value `b=c`) on top of
/// a `--values` YAML file of flat strings.
pub fn values(file: Option<&std::path::Path>, sets: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("cannot read values file {}: {e}", f.display()))?;
        let docs = yaml_rust2::YamlLoader::load_from_str(&text)
            .map_err(|e| anyhow::anyhow!("values file {}: {e}", f.display()))?;
        if docs.len() > 1 {
            bail!(
                "values file {} holds more than one yaml document",
                f.display()
            );
        }
        match docs.into_iter().next().unwrap_or(Yaml::Null) {
            Yaml::Null => {}
            Yaml::Hash(m) => {
                for (k, v) in m {
                    let k = scalar(&k).ok_or_else(|| {
                        anyhow::anyhow!("values file {}: keys must be strings", f.display())
                    })?;
                    let v = scalar(&v).ok_or_else(|| {
                        anyhow::anyhow!(
                            "values file {}: value of '{k}' must be a string, number or bool",
                            f.display()
                        )
                    })?;
                    out.insert(k, v);
                }
            }
            _ => bail!(
                "values file {} must be a mapping of names to values",
                f.display()
            ),
        }
    }
    for s in sets {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.to_string());
            }
            _ => bail!("--set '{s}' must be KEY=VALUE with a non-empty key"),
        }
    }
    Ok(out)
}

fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

/// `--build-arg K[=V]`: without `=V` the value comes from the environment.
pub fn build_args(
    args: &[String],
    secret: bool,
) -> Result<Vec<crtask_core::domain::model::BuildArg>> {
    args.iter()
        .map(|a| {
            if a.contains('=') {
                Ok(crtask_core::domain::model::BuildArg::parse(a, secret)?)
            } else {
                match std::env::var(a) {
                    Ok(v) => Ok(crtask_core::domain::model::BuildArg::parse(
                        &format!("{a}={v}"),
                        secret,
                    )?),
                    Err(_) => bail!(
                        "build argument '{a}' has no value and {a} is not set in the environment"
                    ),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values() {
        let v = values(None, &["a=b=c".into(), "x=1".into(), "x=2".into()]).unwrap();
        assert_eq!(v["a"], "b=c");
        assert_eq!(v["x"], "2");
        assert!(values(None, &["novalue".into()]).is_err());
        assert!(values(None, &["=v".into()]).is_err());
    }

    #[test]
    fn set_beats_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("v.yaml");
        std::fs::write(&f, "a: 1\nb: two\nc: true\n").unwrap();
        let v = values(Some(&f), &["b=three".into()]).unwrap();
        assert_eq!(
            (v["a"].as_str(), v["b"].as_str(), v["c"].as_str()),
            ("1", "three", "true")
        );
        std::fs::write(&f, "- a\n").unwrap();
        assert!(values(Some(&f), &[]).is_err());
        std::fs::write(&f, "").unwrap();
        assert!(values(Some(&f), &[]).unwrap().is_empty());
        std::fs::write(&f, "r: 1.50\nn: ~\nq: '007'\n").unwrap();
        let v = values(Some(&f), &[]).unwrap();
        assert_eq!(
            (v["r"].as_str(), v["n"].as_str(), v["q"].as_str()),
            ("1.50", "", "007")
        );
        std::fs::write(&f, "a: 1\n---\nb: 2\n").unwrap();
        assert!(values(Some(&f), &[]).is_err());
        std::fs::write(&f, "a: [1]\n").unwrap();
        assert!(values(Some(&f), &[]).is_err());
    }
}
