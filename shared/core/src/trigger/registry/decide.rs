//! Step 3: what a moved tag means for each task built on it. [`decide`]
//! compares a [`TagUpdate`] with the tasks that use the image (their
//! [`Dependent`] entries in the dependency index) and returns one
//! [`Verdict`] per task: rebuild, unchanged (already built on this digest),
//! trigger off, or only a build-time base. Pure; the
//! [`super::handler`] records the verdicts and queues the rebuilds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::imageref::ImageRef;
use crate::domain::model::{BaseImageTriggerType, PlatformImage};
use crate::trigger::registry::event::{short_digest, TagUpdate};

/// One recorded use of a base image by a task's last successful build (from
/// the dependency index), or by its creation-time pre-scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependent {
    /// Task name.
    pub task: String,
    /// Normalised tagged reference of the base image.
    pub image: String,
    /// Digest the task's last build used; `None` when only pre-scanned.
    pub last_digest: Option<String>,
    /// True when this image is the runtime (final stage) base.
    pub runtime: bool,
    /// The task's base-image trigger switch.
    pub trigger_enabled: bool,
    /// The task's base-image trigger type.
    pub trigger_type: BaseImageTriggerType,
    /// A multi-platform task: the per-platform manifests of this base its
    /// last successful build used (from that run's record). Only these
    /// platforms count when the base's index moves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformImage>,
}

/// What an update means for one dependent task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum Verdict {
    /// Rebuild the task; the run's trigger records image and digests.
    #[serde(rename_all = "camelCase")]
    Trigger {
        task: String,
        image: String,
        old_digest: Option<String>,
        new_digest: String,
    },
    /// The task's last build already used this digest: no run.
    Unchanged {
        task: String,
        image: String,
        digest: String,
        /// A multi-platform task: the platforms whose manifests in the
        /// index `digest` are the ones its last build used (the index
        /// itself moved for other platforms).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        platforms: Vec<String>,
    },
    /// The task's base-image trigger is off.
    TriggerDisabled { task: String },
    /// The task's trigger type is `Runtime` and this image is only a
    /// build-time base of it.
    BuildTimeOnly { task: String },
    /// The poller sees the tag for the first time and the task has never
    /// been built on it: nothing moved that the task was built on.
    NotBuiltYet { task: String, image: String },
}

impl Verdict {
    /// The task the verdict is about.
    pub fn task(&self) -> &str {
        match self {
            Verdict::Trigger { task, .. }
            | Verdict::Unchanged { task, .. }
            | Verdict::TriggerDisabled { task }
            | Verdict::BuildTimeOnly { task }
            | Verdict::NotBuiltYet { task, .. } => task,
        }
    }

    /// True for [`Verdict::Trigger`].
    pub fn is_trigger(&self) -> bool {
        matches!(self, Verdict::Trigger { .. })
    }

    /// The event-log outcome word (`triggered`, `unchanged`, `ignored`).
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Trigger { .. } => "triggered",
            Verdict::Unchanged { .. } => "unchanged",
            Verdict::TriggerDisabled { .. }
            | Verdict::BuildTimeOnly { .. }
            | Verdict::NotBuiltYet { .. } => "ignored",
        }
    }
}

impl fmt::Display for Verdict {
    /// The "why" line for the event log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Trigger {
                task,
                image,
                old_digest: Some(old),
                new_digest,
            } => write!(
                f,
                "task '{task}': {image} moved from {} to {}: rebuild",
                short_digest(old),
                short_digest(new_digest)
            ),
            Verdict::Trigger {
                task,
                image,
                old_digest: None,
                new_digest,
            } => write!(
                f,
                "task '{task}': {image} is now {} and the task has not been built on it yet: rebuild",
                short_digest(new_digest)
            ),
            Verdict::Unchanged {
                task,
                image,
                digest,
                platforms,
            } if !platforms.is_empty() => write!(
                f,
                "task '{task}': {image} is now {}, with the same {} images its last build used",
                short_digest(digest),
                platforms.join(" and ")
            ),
            Verdict::Unchanged {
                task,
                image,
                digest,
                ..
            } => write!(
                f,
                "task '{task}': its last build already used {image}@{}",
                short_digest(digest)
            ),
            Verdict::TriggerDisabled { task } => {
                write!(f, "task '{task}': base image trigger is disabled")
            }
            Verdict::BuildTimeOnly { task } => write!(
                f,
                "task '{task}': the image is only a build-time base and the trigger type is Runtime"
            ),
            Verdict::NotBuiltYet { task, image } => write!(
                f,
                "task '{task}': first sighting of {image} and the task has not been built on it yet; \
                 its first run records the digest"
            ),
        }
    }
}

/// Normalised tagged form of a reference, or the reference as given when
/// it does not parse.
pub(super) fn tagged(s: &str) -> String {
    ImageRef::parse(s)
        .map(|r| r.tagged())
        .unwrap_or_else(|_| s.to_string())
}

/// One verdict per task that uses `update.image` (references compared after
/// normalisation), in task-name order. A task listed several times for the
/// image (e.g. build-time and runtime base of a multi-stage build) gets one
/// verdict: it counts as a runtime use if any entry is, and its last digest
/// is the runtime entry's (else the first known).
///
/// Per task: trigger off -> [`Verdict::TriggerDisabled`]; type `Runtime` and
/// not a runtime base -> [`Verdict::BuildTimeOnly`]; last build used this
/// digest -> [`Verdict::Unchanged`]; otherwise (another digest, or only
/// pre-scanned) -> [`Verdict::Trigger`]. No dependents -> an empty vector.
pub fn decide(update: &TagUpdate, dependents: &[Dependent]) -> Vec<Verdict> {
    let image = tagged(&update.image);
    // task -> (runtime use, last digest of the runtime entry, first known digest, enabled, type)
    struct Use<'a> {
        runtime: bool,
        runtime_digest: Option<&'a str>,
        any_digest: Option<&'a str>,
        enabled: bool,
        kind: BaseImageTriggerType,
        platforms: &'a [PlatformImage],
    }
    let mut uses: BTreeMap<&str, Use> = BTreeMap::new();
    for d in dependents {
        if d.image != image && tagged(&d.image) != image {
            continue;
        }
        let u = uses.entry(d.task.as_str()).or_insert(Use {
            runtime: false,
            runtime_digest: None,
            any_digest: None,
            enabled: d.trigger_enabled,
            kind: d.trigger_type,
            platforms: &[],
        });
        if u.platforms.is_empty() {
            u.platforms = &d.platforms;
        }
        u.runtime |= d.runtime;
        if d.runtime && u.runtime_digest.is_none() {
            u.runtime_digest = d.last_digest.as_deref();
        }
        if u.any_digest.is_none() {
            u.any_digest = d.last_digest.as_deref();
        }
    }
    uses.into_iter()
        .map(|(task, u)| {
            let task = task.to_string();
            if !u.enabled {
                return Verdict::TriggerDisabled { task };
            }
            if u.kind == BaseImageTriggerType::Runtime && !u.runtime {
                return Verdict::BuildTimeOnly { task };
            }
            // A multi-platform task built on this index: only the manifests
            // of its own platforms count, when the index's contents are known.
            if let (false, Some(now)) = (u.platforms.is_empty(), &update.platforms) {
                return match moved_platform(u.platforms, now) {
                    None => Verdict::Unchanged {
                        task,
                        image: image.clone(),
                        digest: update.digest.clone(),
                        platforms: u.platforms.iter().map(|p| p.platform.clone()).collect(),
                    },
                    Some((old, _)) => Verdict::Trigger {
                        task,
                        image: image.clone(),
                        old_digest: Some(old.to_string()),
                        new_digest: update.digest.clone(),
                    },
                };
            }
            let last = u.runtime_digest.or(u.any_digest);
            if last.is_none() && update.first_sighting {
                return Verdict::NotBuiltYet {
                    task,
                    image: image.clone(),
                };
            }
            if last == Some(update.digest.as_str()) {
                return Verdict::Unchanged {
                    task,
                    image: image.clone(),
                    digest: update.digest.clone(),
                    platforms: Vec::new(),
                };
            }
            Verdict::Trigger {
                task,
                image: image.clone(),
                old_digest: last.map(str::to_string),
                new_digest: update.digest.clone(),
            }
        })
        .collect()
}

/// The first of `used` (platform, digest) whose platform in the index
/// `now` has another manifest, or none (a platform the index no longer
/// lists counts as moved): `(old digest, platform)`.
pub fn moved_platform<'a>(
    used: &'a [PlatformImage],
    now: &[PlatformImage],
) -> Option<(&'a str, &'a str)> {
    used.iter()
        .find(|u| {
            !now.iter()
                .any(|n| n.platform == u.platform && n.digest == u.digest)
        })
        .map(|u| (u.digest.as_str(), u.platform.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::registry::test_support::{dep, trig, update, D1, D2, D3};

    fn pi(platform: &str, digest: &str) -> PlatformImage {
        PlatformImage {
            platform: platform.into(),
            digest: digest.into(),
        }
    }

    #[test]
    fn a_multi_platform_task_rebuilds_only_when_one_of_its_platforms_moved() {
        let img = "r.io/base:1";
        let mut d = dep("app", img, None, true, true, BaseImageTriggerType::Runtime);
        d.platforms = vec![pi("linux/amd64", D1), pi("linux/arm64", D2)];
        let deps = [d];
        let with = |p: Option<Vec<PlatformImage>>| TagUpdate {
            platforms: p,
            ..update(img, D3)
        };
        // Another platform of the index moved: nothing to do.
        let v = decide(
            &with(Some(vec![
                pi("linux/amd64", D1),
                pi("linux/arm64", D2),
                pi("linux/s390x", D3),
            ])),
            &deps,
        );
        assert!(matches!(&v[..], [Verdict::Unchanged { .. }]), "{v:?}");
        assert!(
            v[0].to_string()
                .ends_with("with the same linux/amd64 and linux/arm64 images its last build used"),
            "{}",
            v[0]
        );
        // The arm64 manifest moved: rebuild, naming the old arm64 digest.
        let v = decide(
            &with(Some(vec![pi("linux/amd64", D1), pi("linux/arm64", D3)])),
            &deps,
        );
        assert_eq!(v, vec![trig("app", img, Some(D2), D3)]);
        // The index dropped arm64: rebuild (and the build will say why it fails).
        let v = decide(&with(Some(vec![pi("linux/amd64", D1)])), &deps);
        assert!(v[0].is_trigger(), "{v:?}");
        // Contents unknown (a registry event): the tag moved, rebuild.
        let v = decide(&with(None), &deps);
        assert!(v[0].is_trigger(), "{v:?}");
        assert_eq!(moved_platform(&deps[0].platforms, &deps[0].platforms), None);
    }

    #[test]
    fn decide_table() {
        use BaseImageTriggerType::{All, Runtime};
        let img = "r.io/base:1";
        let u = update(img, D2);
        let t = |task: &str| task.to_string();
        let cases: Vec<(&str, Vec<Dependent>, Vec<Verdict>)> = vec![
            (
                "runtime base moved",
                vec![dep("app", img, Some(D1), true, true, Runtime)],
                vec![trig("app", img, Some(D1), D2)],
            ),
            (
                "same digest",
                vec![dep("app", img, Some(D2), true, true, Runtime)],
                vec![Verdict::Unchanged {
                    task: t("app"),
                    image: t(img),
                    digest: t(D2),
                    platforms: Vec::new(),
                }],
            ),
            (
                "disabled",
                vec![dep("app", img, Some(D1), true, false, All)],
                vec![Verdict::TriggerDisabled { task: t("app") }],
            ),
            (
                "build-time base, Runtime",
                vec![dep("app", img, Some(D1), false, true, Runtime)],
                vec![Verdict::BuildTimeOnly { task: t("app") }],
            ),
            (
                "build-time base, All",
                vec![dep("app", img, Some(D1), false, true, All)],
                vec![trig("app", img, Some(D1), D2)],
            ),
            (
                "pre-scanned only",
                vec![dep("app", img, None, true, true, Runtime)],
                vec![trig("app", img, None, D2)],
            ),
            (
                "pre-scanned build-time, Runtime",
                vec![dep("app", img, None, false, true, Runtime)],
                vec![Verdict::BuildTimeOnly { task: t("app") }],
            ),
            (
                "other image",
                vec![dep("app", "r.io/base:2", Some(D1), true, true, All)],
                vec![],
            ),
            ("no dependents", vec![], vec![]),
            (
                "unnormalised dependent",
                vec![dep("app", "R.io/base:1", Some(D1), true, true, Runtime)],
                vec![trig("app", img, Some(D1), D2)],
            ),
            (
                "build and runtime use of one image (multi-stage)",
                vec![
                    dep("app", img, Some(D3), false, true, Runtime),
                    dep("app", img, Some(D1), true, true, Runtime),
                ],
                vec![trig("app", img, Some(D1), D2)],
            ),
            (
                "several tasks in name order",
                vec![
                    dep("web", img, Some(D1), true, true, Runtime),
                    dep("api", img, Some(D2), true, true, Runtime),
                    dep("cli", img, Some(D1), false, true, Runtime),
                    dep("job", img, Some(D1), true, false, Runtime),
                ],
                vec![
                    Verdict::Unchanged {
                        task: t("api"),
                        image: t(img),
                        digest: t(D2),
                        platforms: Vec::new(),
                    },
                    Verdict::BuildTimeOnly { task: t("cli") },
                    Verdict::TriggerDisabled { task: t("job") },
                    trig("web", img, Some(D1), D2),
                ],
            ),
        ];
        for (name, deps, want) in cases {
            assert_eq!(decide(&u, &deps), want, "{name}");
        }
        // Docker Hub short names normalise on both sides.
        let hub = update("docker.io/library/alpine:3.19", D2);
        let deps = vec![dep("app", "alpine:3.19", Some(D1), true, true, Runtime)];
        assert_eq!(
            decide(&hub, &deps),
            vec![trig("app", "docker.io/library/alpine:3.19", Some(D1), D2)]
        );
    }

    #[test]
    fn a_first_sighting_rebuilds_only_tasks_built_on_an_older_digest() {
        use BaseImageTriggerType::Runtime;
        let img = "r.io/base:1";
        let mut u = update(img, D2);
        u.first_sighting = true;
        let deps = vec![
            dep("built", img, Some(D1), true, true, Runtime),
            dep("current", img, Some(D2), true, true, Runtime),
            dep("never", img, None, true, true, Runtime),
        ];
        let got = decide(&u, &deps);
        assert_eq!(got.first(), Some(&trig("built", img, Some(D1), D2)));
        assert_eq!(got.get(1).map(Verdict::outcome), Some("unchanged"));
        let never = got.get(2).cloned();
        assert_eq!(
            never,
            Some(Verdict::NotBuiltYet {
                task: "never".into(),
                image: img.into()
            })
        );
        let line = never.map(|v| v.to_string()).unwrap_or_default();
        assert!(line.contains("first sighting"), "{line}");
        // The same digest seen moving (a push, a later poll) rebuilds it.
        u.first_sighting = false;
        assert_eq!(
            decide(&u, &deps).get(2),
            Some(&trig("never", img, None, D2))
        );
    }

    #[test]
    fn verdict_words() {
        let cases = [
            (
                trig("a", "r.io/b:1", Some(D1), D2),
                "triggered",
                "task 'a': r.io/b:1 moved from sha256:111111111111 to sha256:222222222222: rebuild",
            ),
            (
                trig("a", "r.io/b:1", None, D2),
                "triggered",
                "has not been built on it yet",
            ),
            (
                Verdict::Unchanged {
                    task: "a".into(),
                    image: "r.io/b:1".into(),
                    digest: D1.into(),
                    platforms: Vec::new(),
                },
                "unchanged",
                "task 'a': its last build already used r.io/b:1@sha256:111111111111",
            ),
            (
                Verdict::TriggerDisabled { task: "a".into() },
                "ignored",
                "trigger is disabled",
            ),
            (
                Verdict::BuildTimeOnly { task: "a".into() },
                "ignored",
                "only a build-time base",
            ),
        ];
        for (v, outcome, why) in cases {
            assert_eq!(v.outcome(), outcome);
            assert_eq!(v.task(), "a");
            assert_eq!(v.is_trigger(), outcome == "triggered");
            assert!(v.to_string().contains(why), "{v}");
        }
        let json = serde_json::to_value(trig("a", "r.io/b:1", None, D2)).unwrap();
        assert_eq!(json["verdict"], "trigger");
        assert_eq!(json["newDigest"], D2);
    }
}
