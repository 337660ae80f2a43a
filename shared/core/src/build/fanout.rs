//! Multi-platform runs on a builder with a native machine per architecture
//! (CodeBuild: `LINUX_CONTAINER` for amd64, `ARM_CONTAINER` for arm64): one
//! build per platform, in parallel and without emulation, each pushing its
//! platform's image under a staging tag of the run ([`staging_tag`]); once
//! every platform build succeeded, one assemble build makes the image index
//! from their digests and pushes it under the run's tags. The run ends when
//! the assemble build ends, or as soon as a platform build fails.
//!
//! Pure decisions: the AWS builder starts the builds ([`plan`]) and the
//! build-status function applies each build's end ([`on_build_end`]); the
//! state lives in the run record ([`PlatformBuild`] entries), so it is in
//! DynamoDB with the run.

use crate::domain::imageref::ImageRef;
use crate::domain::model::{PlatformImage, RunStatus};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A machine kind that builds natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Machine {
    /// x86-64 (CodeBuild `LINUX_CONTAINER`).
    X86_64,
    /// 64-bit ARM (CodeBuild `ARM_CONTAINER`).
    Arm64,
}

/// The machine that builds `platform` natively; other platforms are
/// refused (no emulation on AWS).
pub fn machine_for(platform: &str) -> Result<Machine> {
    match platform {
        "linux/amd64" => Ok(Machine::X86_64),
        "linux/arm64" | "linux/arm64/v8" => Ok(Machine::Arm64),
        other => Err(Error::invalid(format!(
            "platform '{other}' cannot be built on AWS: CodeBuild builds linux/amd64 and linux/arm64 natively"
        ))),
    }
}

/// What one build of a multi-platform run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Builds and pushes one platform's image.
    Platform,
    /// Makes and pushes the index from the platform images.
    Assemble,
}

/// One build of a multi-platform run, as the run record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformBuild {
    /// `os/arch` (for the assemble build: the platforms' list).
    pub platform: String,
    pub role: Role,
    /// The builder's id for the build once started (a CodeBuild build id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_ref: Option<String>,
    pub status: RunStatus,
    /// A platform build's pushed manifest digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The platform builds of a run for `platforms` (two or more, parsed), all
/// `Queued`; `Err` when one cannot build natively.
pub fn plan(platforms: &[String]) -> Result<Vec<PlatformBuild>> {
    if platforms.len() < 2 {
        return Err(Error::invalid(
            "a multi-platform run needs two or more platforms",
        ));
    }
    platforms
        .iter()
        .map(|p| {
            machine_for(p)?;
            Ok(PlatformBuild {
                platform: p.clone(),
                role: Role::Platform,
                builder_ref: None,
                status: RunStatus::Queued,
                digest: None,
            })
        })
        .collect()
}

/// The platforms of a run that fans out: its `platform` when it lists two
/// or more (`None`: one build, as before).
pub fn platforms_of(run_platform: &str) -> Option<Vec<String>> {
    let list: Vec<String> = run_platform
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    (list.len() >= 2).then_some(list)
}

/// What names one build's executor result and log beside the run's
/// (`logs/<run>.<part>.result.json`): `linux-arm64` for a platform build,
/// `index` for the assemble build. Only `[a-z0-9-]`, as the buildspec checks.
pub fn result_part(build: &PlatformBuild) -> String {
    match build.role {
        Role::Assemble => "index".to_string(),
        Role::Platform => build
            .platform
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect(),
    }
}

/// Where a platform build pushes its image: the run's first tag's
/// repository, tag `crtask-<run>-<os>-<arch>[-<variant>]` (the assemble
/// build refers to it by digest; the tag only keeps it from being
/// garbage-collected before then).
pub fn staging_tag(first_tag: &ImageRef, run_id: &str, platform: &str) -> String {
    format!(
        "{}/{}:crtask-{run_id}-{}",
        first_tag.registry,
        first_tag.repository,
        platform.replace('/', "-")
    )
}

/// What to do after one build of a multi-platform run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Other platform builds are still running.
    Wait,
    /// Every platform image is pushed: start the assemble build with them.
    Assemble(Vec<PlatformImage>),
    /// A platform build did not succeed: the run fails with `message`;
    /// stop the builds in `stop` (still running).
    Fail { message: String, stop: Vec<String> },
    /// The assemble build ended: the run ends with this status.
    Finish(RunStatus),
    /// Not a build of this run, or an end already applied (a redelivered
    /// event): nothing to do.
    Ignore,
}

/// Applies the end of build `builder_ref` (`status`: final; `digest`: what
/// a platform build pushed) to `builds` and says what follows. Safe to
/// repeat for the same build.
pub fn on_build_end(
    builds: &mut [PlatformBuild],
    builder_ref: &str,
    status: RunStatus,
    digest: Option<&str>,
) -> Next {
    let Some(i) = builds
        .iter()
        .position(|b| b.builder_ref.as_deref() == Some(builder_ref))
    else {
        return Next::Ignore;
    };
    if builds[i].status.is_terminal() || !status.is_terminal() {
        return Next::Ignore;
    }
    // A platform build that says it succeeded but reports no digest failed.
    let status = match (builds[i].role, status, digest) {
        (Role::Platform, RunStatus::Succeeded, None) => RunStatus::Error,
        _ => status,
    };
    builds[i].status = status;
    builds[i].digest = digest.map(str::to_string);
    if builds[i].role == Role::Assemble {
        return Next::Finish(status);
    }
    if status != RunStatus::Succeeded {
        let stop = builds
            .iter()
            .filter(|b| !b.status.is_terminal())
            .filter_map(|b| b.builder_ref.clone())
            .collect();
        let why = match (status, digest) {
            (RunStatus::Error, None) => "reported no image digest".to_string(),
            _ => format!("ended {}", status.as_str()),
        };
        return Next::Fail {
            message: format!("the {} build {why}", builds[i].platform),
            stop,
        };
    }
    // A run that failed already stays failed (a late success changes nothing).
    if builds
        .iter()
        .any(|b| b.status.is_terminal() && b.status != RunStatus::Succeeded)
    {
        return Next::Ignore;
    }
    let platforms: Option<Vec<PlatformImage>> = builds
        .iter()
        .filter(|b| b.role == Role::Platform)
        .map(|b| {
            (b.status == RunStatus::Succeeded).then(|| PlatformImage {
                platform: b.platform.clone(),
                digest: b.digest.clone().unwrap_or_default(),
            })
        })
        .collect();
    match platforms {
        Some(p) => Next::Assemble(p),
        None => Next::Wait,
    }
}

/// The assemble build's entry, to add to the run's builds once started.
pub fn assemble_build(platforms: &[PlatformImage], builder_ref: &str) -> PlatformBuild {
    PlatformBuild {
        platform: platforms
            .iter()
            .map(|p| p.platform.as_str())
            .collect::<Vec<_>>()
            .join(","),
        role: Role::Assemble,
        builder_ref: Some(builder_ref.to_string()),
        status: RunStatus::Running,
        digest: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Vec<PlatformBuild> {
        let mut b = plan(&["linux/amd64".into(), "linux/arm64".into()]).unwrap();
        b[0].builder_ref = Some("p:amd".into());
        b[1].builder_ref = Some("p:arm".into());
        for x in b.iter_mut() {
            x.status = RunStatus::Running;
        }
        b
    }

    #[test]
    fn machines_are_native_or_refused() {
        assert_eq!(machine_for("linux/amd64").unwrap(), Machine::X86_64);
        assert_eq!(machine_for("linux/arm64").unwrap(), Machine::Arm64);
        let e = machine_for("linux/s390x").unwrap_err().to_string();
        assert!(e.contains("'linux/s390x' cannot be built on AWS"), "{e}");
        assert!(plan(&["linux/amd64".into(), "linux/ppc64le".into()]).is_err());
        assert!(plan(&["linux/amd64".into()]).is_err());
    }

    #[test]
    fn the_index_is_assembled_once_every_platform_pushed() {
        let mut b = started();
        assert_eq!(
            on_build_end(&mut b, "p:arm", RunStatus::Succeeded, Some("sha256:b")),
            Next::Wait
        );
        // A redelivered event changes nothing.
        assert_eq!(
            on_build_end(&mut b, "p:arm", RunStatus::Succeeded, Some("sha256:b")),
            Next::Ignore
        );
        let next = on_build_end(&mut b, "p:amd", RunStatus::Succeeded, Some("sha256:a"));
        let Next::Assemble(p) = next else {
            panic!("{next:?}")
        };
        assert_eq!(
            p.iter()
                .map(|x| (x.platform.as_str(), x.digest.as_str()))
                .collect::<Vec<_>>(),
            [("linux/amd64", "sha256:a"), ("linux/arm64", "sha256:b")]
        );
        let mut all = b.clone();
        all.push(assemble_build(&p, "p:index"));
        assert_eq!(all[2].platform, "linux/amd64,linux/arm64");
        assert_eq!(
            on_build_end(&mut all, "p:index", RunStatus::Succeeded, Some("sha256:i")),
            Next::Finish(RunStatus::Succeeded)
        );
        assert_eq!(
            on_build_end(&mut all, "elsewhere", RunStatus::Failed, None),
            Next::Ignore
        );
    }

    #[test]
    fn a_failed_platform_fails_the_run_and_stops_the_others() {
        let mut b = started();
        assert_eq!(
            on_build_end(&mut b, "p:arm", RunStatus::Failed, None),
            Next::Fail {
                message: "the linux/arm64 build ended Failed".into(),
                stop: vec!["p:amd".into()],
            }
        );
        // The other build's later success assembles nothing.
        assert_eq!(
            on_build_end(&mut b, "p:amd", RunStatus::Succeeded, Some("sha256:a")),
            Next::Ignore
        );
        // A success without a digest is an error.
        let mut b = started();
        let next = on_build_end(&mut b, "p:amd", RunStatus::Succeeded, None);
        assert!(
            matches!(&next, Next::Fail { message, .. } if message == "the linux/amd64 build reported no image digest"),
            "{next:?}"
        );
    }

    #[test]
    fn runs_fan_out_for_two_platforms_or_more() {
        assert_eq!(platforms_of("linux/amd64"), None);
        assert_eq!(
            platforms_of("linux/amd64, linux/arm64"),
            Some(vec!["linux/amd64".to_string(), "linux/arm64".to_string()])
        );
        let b = started();
        assert_eq!(result_part(&b[1]), "linux-arm64");
        assert_eq!(result_part(&assemble_build(&[], "x")), "index");
    }

    #[test]
    fn staging_tags_are_per_run_and_platform() {
        let t = ImageRef::parse("123.dkr.ecr.eu-west-1.amazonaws.com/web:v1").unwrap();
        assert_eq!(
            staging_tag(&t, "ca7", "linux/arm64"),
            "123.dkr.ecr.eu-west-1.amazonaws.com/web:crtask-ca7-linux-arm64"
        );
    }
}
