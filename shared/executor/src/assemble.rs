//! The assemble step of a multi-platform run built natively per platform
//! (CodeBuild: one build per platform, each pushing its image by digest to
//! a staging tag): a local image index made from the platform images as
//! the registry serves them, pushed under the run's tags.
//!
//! Nothing is taken on trust from the request: `buildah manifest add`
//! fetches each image by digest (the registry's answer is checked against
//! the digest) and reads its platform from the image's own configuration;
//! the index is refused when an image is of another platform than the one
//! it was built for.

use crate::buildah::Buildah;
use crate::process::{first_error_line, run_streaming, Tee};
use crtask_core::domain::imageref::ImageRef;
use crtask_core::domain::platform;
use crtask_core::ports::LogSink;
use crtask_core::Result;

/// One platform's pushed image: `registry/repository@sha256:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartImage {
    pub platform: String,
    pub image: String,
}

/// Parses `CRTASK_PLATFORM_IMAGES` (a JSON list of [`PartImage`]): two or
/// more, each platform valid and listed once, each image pinned by digest.
pub fn parse_parts(json: &str) -> std::result::Result<Vec<PartImage>, String> {
    let doc: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("not a JSON list of platform images: {e}"))?;
    let parts = doc
        .as_array()
        .ok_or("not a JSON list of platform images")?
        .iter()
        .map(|v| match (v["platform"].as_str(), v["image"].as_str()) {
            (Some(p), Some(i)) => Ok(PartImage {
                platform: p.to_string(),
                image: i.to_string(),
            }),
            _ => Err(format!("{v} has no platform and image")),
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    if parts.len() < 2 {
        return Err("an image index needs two or more platform images".into());
    }
    let mut seen = Vec::new();
    for p in &parts {
        let norm = platform::parse(&p.platform).map_err(|e| e.to_string())?;
        if seen.contains(&norm) {
            return Err(format!("platform {norm} is listed twice"));
        }
        seen.push(norm);
        let r = ImageRef::parse(&p.image).map_err(|e| format!("image '{}': {e}", p.image))?;
        if r.digest.is_none() {
            return Err(format!(
                "image '{}' is not pinned by digest (registry/repository@sha256:...)",
                p.image
            ));
        }
    }
    Ok(parts)
}

/// The digest of a pinned reference (`...@sha256:x`).
fn digest_of(image: &str) -> &str {
    image.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
}

impl Buildah {
    /// Makes the local image index `index` from `parts` (each fetched from
    /// its registry by digest) and checks that each image is of its
    /// platform; then a push of any of `tags` pushes the index with every
    /// image in it ([`crtask_core::ports::Engine::push`]). `Ok(Err(why))`:
    /// the index cannot be made (an image is missing or of another platform).
    pub async fn assemble_index(
        &self,
        index: &str,
        parts: &[PartImage],
        tags: &[String],
        log: &dyn LogSink,
    ) -> Result<std::result::Result<(), String>> {
        let tee = Tee::new(log);
        let mut rm = self.command();
        rm.args(["manifest", "rm", index]);
        let _ = run_streaming(&mut rm, &Quiet, false).await;
        let mut create = self.command();
        create.args(["manifest", "create", index]);
        let (code, _) = run_streaming(&mut create, &tee, true).await?;
        if code != 0 {
            return Ok(Err(format!(
                "cannot create the image index: {}",
                first_error_line(&tee.text())
            )));
        }
        for p in parts {
            let host = p.image.split('/').next().unwrap_or_default();
            log.line(&format!("crtask: adding {} ({})", p.image, p.platform));
            let mut add = self.command();
            add.args(["manifest", "add"]);
            if self.is_insecure(host) {
                add.arg("--tls-verify=false");
            }
            add.arg(index).arg(format!("docker://{}", p.image));
            let (code, _) = run_streaming(&mut add, &tee, true).await?;
            if code != 0 {
                return Ok(Err(format!(
                    "cannot read the {} image {} from its registry: {}",
                    p.platform,
                    p.image,
                    first_error_line(&tee.text())
                )));
            }
        }
        let mut inspect = self.command();
        inspect.args(["manifest", "inspect", index]);
        let (code, out) = run_streaming(&mut inspect, &tee, true).await?;
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let entries = match (code, platform::index_platforms(&doc)) {
            (0, Some(e)) => e,
            _ => return Ok(Err("cannot read the image index back".to_string())),
        };
        if let Err(why) = check_entries(parts, &entries) {
            return Ok(Err(why));
        }
        for t in tags {
            self.register_index(t, index);
        }
        Ok(Ok(()))
    }
}

/// Each part is in the index under its digest, with its own platform.
fn check_entries(
    parts: &[PartImage],
    entries: &[crtask_core::domain::model::PlatformImage],
) -> std::result::Result<(), String> {
    for p in parts {
        let digest = digest_of(&p.image);
        let Some(e) = entries.iter().find(|e| e.digest == digest) else {
            return Err(format!(
                "the {} image {digest} is not in the index",
                p.platform
            ));
        };
        let mut it = e.platform.split('/');
        let (os, arch, variant) = (
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
        );
        let want = platform::parse(&p.platform).unwrap_or_else(|_| p.platform.clone());
        // arm64 images may or may not say their variant (v8).
        let want = want.strip_suffix("/v8").unwrap_or(&want);
        if !platform::matches(want, os, arch, variant) {
            return Err(format!(
                "the image built for {} is a {} image ({digest}): the index is not assembled",
                p.platform, e.platform
            ));
        }
    }
    Ok(())
}

/// A log that drops everything (cleanup commands whose failure is normal).
struct Quiet;

impl LogSink for Quiet {
    fn write(&self, _bytes: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crtask_core::domain::model::PlatformImage;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn parts_are_pinned_distinct_platforms() {
        let ok = format!(
            r#"[{{"platform":"linux/amd64","image":"r.io/app@{A}"}},{{"platform":"linux/arm64","image":"r.io/app@{B}"}}]"#
        );
        assert_eq!(parse_parts(&ok).unwrap().len(), 2);
        let tag = r#"[{"platform":"linux/amd64","image":"r.io/app:1"},{"platform":"linux/arm64","image":"r.io/app:2"}]"#;
        assert!(parse_parts(tag).unwrap_err().contains("not pinned"));
        let twice = format!(
            r#"[{{"platform":"linux/amd64","image":"r.io/app@{A}"}},{{"platform":"linux/amd64","image":"r.io/app@{B}"}}]"#
        );
        assert!(parse_parts(&twice).unwrap_err().contains("twice"));
        assert!(parse_parts("{}").is_err());
    }

    #[test]
    fn an_image_of_another_platform_is_refused() {
        let parts = vec![
            PartImage {
                platform: "linux/amd64".into(),
                image: format!("r.io/app@{A}"),
            },
            PartImage {
                platform: "linux/arm64".into(),
                image: format!("r.io/app@{B}"),
            },
        ];
        let entry = |p: &str, d: &str| PlatformImage {
            platform: p.into(),
            digest: d.into(),
        };
        assert!(check_entries(
            &parts,
            &[entry("linux/amd64", A), entry("linux/arm64/v8", B)]
        )
        .is_ok());
        let e =
            check_entries(&parts, &[entry("linux/amd64", A), entry("linux/amd64", B)]).unwrap_err();
        assert!(
            e.contains("built for linux/arm64 is a linux/amd64 image"),
            "{e}"
        );
        assert!(check_entries(&parts, &[entry("linux/amd64", A)]).is_err());
    }
}
