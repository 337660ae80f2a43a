//! One module per command group.

pub mod aws;
pub mod build;
pub mod completion;
pub mod dashboard;
pub mod events;
pub mod exec;
pub mod image;
pub mod notifications;
pub mod patch;
pub mod registry;
pub mod run;
pub mod serve;
pub mod serve_limits;
pub mod serve_notify;
pub mod task;
pub mod timer;
pub mod wait;

use crate::backend::Backend;
use anyhow::{bail, Result};

/// What every client command needs.
pub struct Ctx {
    /// `--server` or `CRTASK_SERVER`; the CLI config fills it in otherwise.
    pub server: Option<String>,
    /// `--cli-config` or `CRTASK_CLI_CONFIG`.
    pub cli_config: Option<std::path::PathBuf>,
    /// `-o` and `--query`.
    pub out: crate::output::Printer,
    pub platform: crate::Platform,
    pub aws: crate::backend::AwsSettings,
}

impl Ctx {
    /// The platform the commands talk to.
    pub async fn client(&self) -> Result<Backend> {
        match self.platform {
            crate::Platform::Local => {
                let conn = self.local_connection()?;
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

impl Ctx {
    /// The local server's address and token: flags, environment, CLI config.
    pub fn local_connection(&self) -> Result<crate::config::Connection> {
        let (file, path) = crate::config::load(self.cli_config.as_deref())?;
        crate::config::resolve(
            self.server.clone(),
            std::env::var(crate::config::TOKEN_ENV).ok(),
            file,
            path.as_deref(),
        )
    }
}

/// `--set K=V` values (later wins; `a=b=c` is key `a`, value `b=c`) on top of
/// a `--values` YAML file (scalars, lists and maps).
pub fn values(
    file: Option<&std::path::Path>,
    sets: &[String],
) -> Result<crtask_core::domain::model::Values> {
    use crtask_core::build::values::{apply_sets, parse_values_yaml};
    let mut out = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read values file {}: {e}", f.display()))?;
            parse_values_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?
        }
        None => Default::default(),
    };
    apply_sets(&mut out, sets)?;
    Ok(out)
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
    use serde_json::json;

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
            (&v["a"], &v["b"], &v["c"]),
            (&json!(1), &json!("three"), &json!(true))
        );
        std::fs::write(&f, "- a\n").unwrap();
        assert!(values(Some(&f), &[]).is_err());
        std::fs::write(&f, "").unwrap();
        assert!(values(Some(&f), &[]).unwrap().is_empty());
        // YAML types as Go's yaml reads them: 1.50 is the float 1.5
        std::fs::write(&f, "r: 1.50\nn: ~\nq: '007'\n").unwrap();
        let v = values(Some(&f), &[]).unwrap();
        assert_eq!(
            (&v["r"], &v["n"], &v["q"]),
            (&json!(1.5), &json!(null), &json!("007"))
        );
        std::fs::write(&f, "a: 1\n---\nb: 2\n").unwrap();
        assert!(values(Some(&f), &[]).is_err());
        std::fs::write(&f, "a: [1]\nm: {k: v}\n").unwrap();
        let v = values(Some(&f), &["m=flat".into()]).unwrap();
        assert_eq!((&v["a"], &v["m"]), (&json!([1]), &json!("flat")));
        let missing = d.path().join("nope.yaml");
        assert!(values(Some(&missing), &[]).is_err());
    }
}
