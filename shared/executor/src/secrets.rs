//! Task-file secrets on the machine that runs the steps: `file:///path`
//! read when the run starts, and `crtask://NAME` from the server's secret
//! directory (`crtask serve --secret-dir DIR`: the file `DIR/NAME`). Other
//! references go to an optional next resolver (Secrets Manager in `crtask
//! exec` on AWS), else they fail with a reason.
//!
//! `file://` reads any file the server's user can read. That grants nothing
//! new: whoever can queue runs on a local server already runs containers
//! as that user (see docs/TASKFILES.md, "Secrets").

use async_trait::async_trait;
use crtask_core::build::secrets::{SecretRef, SecretResolver};
use crtask_core::signing::Secret;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest secret file read (a secret is a token or a password, not data).
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Resolves `file://` and `crtask://` references.
#[derive(Clone, Default)]
pub struct LocalSecrets {
    /// Where `crtask://NAME` secrets are (`None`: the server holds none).
    dir: Option<PathBuf>,
    /// For the references this one does not handle (Secrets Manager ARNs).
    next: Option<Arc<dyn SecretResolver>>,
}

impl LocalSecrets {
    pub fn new(dir: Option<PathBuf>) -> Self {
        LocalSecrets { dir, next: None }
    }

    /// Hands the references this resolver does not read to `next`.
    pub fn with_next(mut self, next: Arc<dyn SecretResolver>) -> Self {
        self.next = Some(next);
        self
    }
}

#[async_trait]
impl SecretResolver for LocalSecrets {
    async fn resolve(&self, r: &SecretRef) -> Result<Secret, String> {
        match r {
            SecretRef::File(p) => read_secret_file(p).await,
            SecretRef::Server(name) => match &self.dir {
                None => Err(
                    "this server holds no secrets: start it with --secret-dir DIR and put the value in DIR/NAME"
                        .into(),
                ),
                Some(d) => read_secret_file(&d.join(name)).await.map_err(|e| {
                    if e.contains("not found") {
                        format!("the server holds no secret named '{name}'")
                    } else {
                        e
                    }
                }),
            },
            other => match &self.next {
                Some(n) => n.resolve(other).await,
                None => Err(match other {
                    SecretRef::AwsSecretsManager(_) => {
                        "Secrets Manager secrets are read by the builder on AWS only".to_string()
                    }
                    SecretRef::Unsupported(why) => why.clone(),
                    _ => "unsupported reference".to_string(),
                }),
            },
        }
    }
}

/// A secret file's text: a regular file of at most [`MAX_SECRET_BYTES`],
/// UTF-8, without the trailing line break editors leave. Errors say what is
/// wrong with the file, never what is in it.
async fn read_secret_file(p: &Path) -> Result<Secret, String> {
    let shown = p.display();
    let meta = match tokio::fs::metadata(p).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{shown}: not found"))
        }
        Err(e) => return Err(format!("cannot read {shown}: {}", e.kind())),
    };
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "{shown} is larger than {MAX_SECRET_BYTES} bytes: not a secret"
        ));
    }
    let bytes = tokio::fs::read(p)
        .await
        .map_err(|e| format!("cannot read {shown}: {}", e.kind()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    Ok(Secret::from_file_text(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_and_server_held_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db-pass"), "s3cret\n").unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; 70 * 1024]).unwrap();
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe]).unwrap();
        let local = LocalSecrets::new(Some(dir.path().to_path_buf()));

        let v = local
            .resolve(&SecretRef::Server("db-pass".into()))
            .await
            .unwrap();
        assert_eq!(
            v.expose(),
            "s3cret",
            "the trailing newline is not part of it"
        );
        let v = local
            .resolve(&SecretRef::File(dir.path().join("db-pass")))
            .await
            .unwrap();
        assert_eq!(v.expose(), "s3cret");

        let e = local
            .resolve(&SecretRef::Server("nope".into()))
            .await
            .unwrap_err();
        assert_eq!(e, "the server holds no secret named 'nope'");
        for (r, want) in [
            (
                SecretRef::File(dir.path().to_path_buf()),
                "not a regular file",
            ),
            (SecretRef::File(dir.path().join("big")), "larger than"),
            (SecretRef::File(dir.path().join("bin")), "not UTF-8"),
            (SecretRef::File(dir.path().join("missing")), "not found"),
            (
                SecretRef::AwsSecretsManager("arn:aws:secretsmanager:x".into()),
                "on AWS only",
            ),
        ] {
            let e = local.resolve(&r).await.unwrap_err();
            assert!(e.contains(want), "{r:?}: {e}");
        }
        let none = LocalSecrets::new(None);
        let e = none
            .resolve(&SecretRef::Server("db-pass".into()))
            .await
            .unwrap_err();
        assert!(e.contains("--secret-dir"), "{e}");
    }
}
