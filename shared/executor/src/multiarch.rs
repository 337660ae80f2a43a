//! Multi-platform builds on buildah: `bud --platform A,B --manifest LIST`
//! builds each platform (foreign ones under qemu user emulation, through
//! the kernel's binfmt handlers) into a local image index, and
//! `manifest push --all` pushes the index with every image in it.
//!
//! buildah compresses layers while pushing, so the platform images in the
//! registry have other digests than the local ones: the index is read back
//! from the registry (by the digest buildah reports) to record them.

use crtask_core::domain::imageref::ImageRef;
use crtask_core::domain::model::PlatformImage;
use std::time::Duration;

/// The media types of an image index, for `Accept`.
const INDEX_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
                           application/vnd.docker.distribution.manifest.list.v2+json";

/// Reads the pushed index `image@digest` from its registry and returns
/// each platform's manifest digest, in the index's order.
pub async fn read_index(
    http: &reqwest::Client,
    image: &str,
    digest: &str,
    insecure: bool,
) -> Result<Vec<PlatformImage>, String> {
    let r = ImageRef::parse(image).map_err(|e| e.to_string())?;
    let scheme = if insecure { "http" } else { "https" };
    let url = format!(
        "{scheme}://{}/v2/{}/manifests/{digest}",
        r.registry, r.repository
    );
    let resp = http
        .get(&url)
        .header("Accept", INDEX_TYPES)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| format!("cannot read the pushed index {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "cannot read the pushed index {url}: the registry answered {}",
            resp.status()
        ));
    }
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| format!("the pushed index {url} is not JSON: {e}"))?;
    crtask_core::domain::platform::index_platforms(&body)
        .ok_or_else(|| format!("{url} is not an image index"))
}

/// Why a platform pull failed, from buildah's first error line: a base
/// index without the platform is said plainly.
pub fn pull_failure(image: &str, platform: &str, error_line: &str) -> String {
    if error_line.contains("no image found in") {
        format!(
            "base image {image} has no {platform} image (its index lists other platforms): \
             build only for the platforms the base provides"
        )
    } else {
        format!("cannot pull {image} for {platform}: {error_line}")
    }
}

/// The answer to a platform pull, from `buildah inspect`'s
/// `digest|os|arch|variant` line: the digest when the pulled image serves
/// `platform`, else why not.
pub fn check_pulled(image: &str, platform: &str, inspected: &str) -> Result<String, String> {
    let mut f = inspected.trim().split('|');
    let (digest, os, arch, variant) = (
        f.next().unwrap_or_default(),
        f.next().unwrap_or_default(),
        f.next().unwrap_or_default(),
        f.next().unwrap_or_default(),
    );
    if !digest.starts_with("sha256:") {
        return Err(format!(
            "cannot read the digest of {image} after pulling it"
        ));
    }
    if !crtask_core::domain::platform::matches(platform, os, arch, variant) {
        let had = if variant.is_empty() {
            format!("{os}/{arch}")
        } else {
            format!("{os}/{arch}/{variant}")
        };
        return Err(format!(
            "base image {image} has no {platform} image (the registry gave {had}): \
             build only for the platforms the base provides"
        ));
    }
    Ok(digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pulled_image_of_another_platform_is_refused() {
        assert_eq!(
            check_pulled("b", "linux/arm64", "sha256:x|linux|arm64|").unwrap(),
            "sha256:x"
        );
        let e = check_pulled("r/b:1", "linux/arm64", "sha256:x|linux|amd64|").unwrap_err();
        assert!(
            e.contains("base image r/b:1 has no linux/arm64 image (the registry gave linux/amd64)"),
            "{e}"
        );
        assert!(check_pulled("b", "linux/amd64", "|linux|amd64|").is_err());
        let e = pull_failure(
            "r/b:1",
            "linux/arm64",
            "Error: choosing an image from manifest list docker://r/b:1: no image found in image index for architecture arm64",
        );
        assert!(
            e.starts_with("base image r/b:1 has no linux/arm64 image"),
            "{e}"
        );
        let e = pull_failure("r/b:1", "linux/arm64", "Error: connection refused");
        assert_eq!(
            e,
            "cannot pull r/b:1 for linux/arm64: Error: connection refused"
        );
    }
}
