//! Continuous patching: ACR's configuration file (`version: v1`,
//! `tag-convention`, `repositories[]` of `repository`, `tags` with `*`
//! wildcards and `enabled`) and a schedule of 1 to 30 days. At each
//! occurrence every enabled repository's matching tags get one Patch run
//! each ([`tick`]); an occurrence is handled once (the store's timer
//! record), and a server that was down catches up with the latest one only.

use crate::domain::imageref::ImageRef;
use crate::domain::model::{Run, Trigger};
use crate::domain::time::serde_millis;
use crate::patch::execute::TagLister;
use crate::patch::model::{PatchRequest, PatchRun};
use crate::patch::queue::new_patch_run;
use crate::patch::tags::TagConvention;
use crate::ports::{Builder, Clock, Store};
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// One repository of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryFilter {
    pub repository: String,
    /// Tags or `*` patterns (`3.11*`, `*`).
    pub tags: Vec<String>,
    pub enabled: bool,
}

/// ACR's continuous-patching configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinuousConfig {
    pub version: String,
    #[serde(rename = "tag-convention", default)]
    pub tag_convention: TagConvention,
    pub repositories: Vec<RepositoryFilter>,
}

fn valid_tag_pattern(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 128
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*'))
}

/// Parses and checks a configuration file.
pub fn parse_config(bytes: &[u8]) -> Result<ContinuousConfig> {
    let c: ContinuousConfig = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("continuous patching configuration: {e}")))?;
    if c.version != "v1" {
        return Err(Error::invalid(format!(
            "continuous patching configuration: version '{}' is not supported (write \"version\": \"v1\")",
            crate::domain::text::inert(&c.version)
        )));
    }
    if c.repositories.is_empty() {
        return Err(Error::invalid(
            "continuous patching configuration: list at least one repository",
        ));
    }
    for r in &c.repositories {
        ImageRef::parse_with_default_registry(&format!("{}:x", r.repository), "registry.invalid")
            .ok()
            .filter(|i| !r.repository.is_empty() && i.repository == r.repository)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "continuous patching configuration: '{}' is not a repository name",
                    crate::domain::text::inert(&r.repository)
                ))
            })?;
        if r.tags.is_empty() {
            return Err(Error::invalid(format!(
                "continuous patching configuration: repository '{}' lists no tags (\"*\" for all)",
                r.repository
            )));
        }
        if let Some(bad) = r.tags.iter().find(|t| !valid_tag_pattern(t)) {
            return Err(Error::invalid(format!(
                "continuous patching configuration: '{}' of repository '{}' is not a tag or a * pattern",
                crate::domain::text::inert(bad),
                r.repository
            )));
        }
    }
    Ok(c)
}

/// `1d` to `30d`: the days between patches.
pub fn parse_schedule(s: &str) -> Result<u32> {
    let days = s
        .trim()
        .strip_suffix('d')
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=30).contains(n));
    days.ok_or_else(|| {
        Error::invalid(format!(
            "schedule '{}' is not 1d to 30d (days between patches)",
            crate::domain::text::inert(s)
        ))
    })
}

/// The stored configuration with its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchSchedule {
    pub config: ContinuousConfig,
    /// `1d` .. `30d`.
    pub schedule: String,
    /// Occurrences are `createTime + k * schedule`.
    #[serde(with = "serde_millis")]
    pub create_time: DateTime<Utc>,
}

impl PatchSchedule {
    pub fn new(config: ContinuousConfig, schedule: &str, now: DateTime<Utc>) -> Result<Self> {
        parse_schedule(schedule)?;
        Ok(PatchSchedule {
            config,
            schedule: schedule.trim().to_string(),
            create_time: now,
        })
    }

    fn period(&self) -> Duration {
        Duration::days(i64::from(parse_schedule(&self.schedule).unwrap_or(1)))
    }

    /// The latest occurrence at or before `now`; `None` before the first.
    pub fn latest_occurrence(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let period = self.period();
        let elapsed = now - self.create_time;
        let k = elapsed.num_seconds().checked_div(period.num_seconds())?;
        (k >= 1).then(|| self.create_time + period * (k as i32))
    }

    /// The first occurrence after `now`.
    pub fn next_occurrence(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.latest_occurrence(now).unwrap_or(self.create_time) + self.period()
    }

    /// The schedule of a `crtask patch config set` request (its file
    /// checked), starting at `now`.
    pub fn from_request(
        req: &crate::domain::api::PatchConfigRequest,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let bytes = serde_json::to_vec(&req.config).map_err(|e| Error::invalid(e.to_string()))?;
        PatchSchedule::new(parse_config(&bytes)?, &req.schedule, now)
    }

    /// The configuration as the API and the CLI show it: the stored
    /// schedule with its next occurrence (`nextRun`).
    pub fn describe(&self, now: DateTime<Utc>) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["nextRun"] = crate::domain::time::rfc3339(self.next_occurrence(now)).into();
        v
    }

    /// The EventBridge Scheduler expression that fires the occurrences on
    /// AWS (`rate(1 day)`, `rate(7 days)`).
    pub fn scheduler_expression(&self) -> String {
        match parse_schedule(&self.schedule).unwrap_or(1) {
            1 => "rate(1 day)".to_string(),
            n => format!("rate({n} days)"),
        }
    }
}

/// `*` matches any run of characters; everything else itself.
pub fn tag_matches(pattern: &str, tag: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == tag;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !tag.starts_with(first) || tag.len() < first.len() + last.len() || !tag.ends_with(last) {
        return false;
    }
    let mut rest = &tag[first.len()..tag.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// True for a tag a patch made from another tag of the list (`X-3` or
/// `X-patched` where `X` is there): patches are not patched again.
pub fn is_patch_output(tag: &str, all: &[String]) -> bool {
    let base = tag.strip_suffix("-patched").or_else(|| {
        tag.rsplit_once('-')
            .filter(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .map(|(b, _)| b)
    });
    base.is_some_and(|b| all.iter().any(|t| t == b))
}

/// The tags of a repository the configuration patches.
pub fn select_tags(filter: &RepositoryFilter, all: &[String]) -> Vec<String> {
    if !filter.enabled {
        return Vec::new();
    }
    let mut out: Vec<String> = all
        .iter()
        .filter(|t| filter.tags.iter().any(|p| tag_matches(p, t)))
        .filter(|t| !is_patch_output(t, all))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The store's record of the handled occurrences (a timer key no task can
/// have: task names never start with `~`).
pub const STATE_KEY: (&str, &str) = ("~continuous-patch", "schedule");

/// One check of the schedule: when an occurrence is due and not yet
/// handled, queues one Patch run per matching tag of every enabled
/// repository of `registry`, and records the occurrence as handled.
/// Returns the runs queued.
pub async fn tick(
    store: &dyn Store,
    builder: &dyn Builder,
    clock: &dyn Clock,
    tags: &dyn TagLister,
    registry: &str,
    schedule: &PatchSchedule,
) -> Result<Vec<Run>> {
    let now = clock.now();
    let Some(due) = schedule.latest_occurrence(now) else {
        return Ok(Vec::new());
    };
    let last = store.timer_last_fired(STATE_KEY.0, STATE_KEY.1).await?;
    if last.is_some_and(|l| l >= due) {
        return Ok(Vec::new());
    }
    let mut runs = Vec::new();
    for filter in schedule.config.repositories.iter().filter(|r| r.enabled) {
        let repo = ImageRef::parse_with_default_registry(&filter.repository, registry)?;
        let all = match tags.list_tags(&repo).await? {
            Ok(t) => t,
            Err(why) => {
                tracing::warn!("continuous patching: {why}");
                continue;
            }
        };
        for tag in select_tags(filter, &all) {
            let image = ImageRef {
                tag: Some(tag),
                digest: None,
                ..repo.clone()
            }
            .full();
            let mut patch = PatchRun::new(PatchRequest {
                image: image.clone(),
                tag_convention: schedule.config.tag_convention,
                dry_run: false,
                only: Vec::new(),
            });
            patch.config = Some("continuous-patch".into());
            let key = format!("patch@{image}@{}", crate::domain::time::rfc3339(due));
            let id = store.next_run_id().await?;
            let run = new_patch_run(
                id,
                patch,
                Trigger::Patch {
                    scheduled_time: due,
                },
                Some(key),
                now,
            );
            if store.insert_run_deduped(&run).await?.is_none() {
                runs.push(run);
            }
        }
    }
    store
        .set_timer_last_fired(STATE_KEY.0, STATE_KEY.1, due)
        .await?;
    for run in runs.iter_mut() {
        crate::run::queue::dispatch(store, builder, run).await?;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
      "version": "v1",
      "tag-convention": "floating",
      "repositories": [
        {"repository": "python", "tags": ["3.11*", "3.12"], "enabled": true},
        {"repository": "team/web", "tags": ["*"], "enabled": true},
        {"repository": "legacy", "tags": ["*"], "enabled": false}
      ]
    }"#;

    #[test]
    fn requests_become_schedules_with_their_scheduler_expression() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let req = |schedule: &str| crate::domain::api::PatchConfigRequest {
            config: serde_json::from_str(CONFIG).unwrap(),
            schedule: schedule.into(),
        };
        let one = PatchSchedule::from_request(&req("1d"), now).unwrap();
        assert_eq!(one.scheduler_expression(), "rate(1 day)");
        let week = PatchSchedule::from_request(&req(" 7d"), now).unwrap();
        assert_eq!(week.scheduler_expression(), "rate(7 days)");
        assert_eq!(week.describe(now)["nextRun"], "2026-12-08T10:00:00.000Z");
        assert_eq!(week.describe(now)["schedule"], "7d");
        let e = PatchSchedule::from_request(&req("31d"), now).unwrap_err();
        assert!(e.to_string().contains("not 1d to 30d"), "{e}");
        let mut bad = req("1d");
        bad.config = serde_json::json!({"version": "v1", "repositories": []});
        let e = PatchSchedule::from_request(&bad, now).unwrap_err();
        assert!(e.to_string().contains("at least one repository"), "{e}");
    }

    #[test]
    fn configurations_and_schedules_are_checked() {
        let c = parse_config(CONFIG.as_bytes()).unwrap();
        assert_eq!(c.tag_convention, TagConvention::Floating);
        assert_eq!(c.repositories.len(), 3);
        let err = |s: &str| parse_config(s.as_bytes()).unwrap_err().to_string();
        assert!(
            err(r#"{"version":"v2","repositories":[]}"#).contains("version 'v2' is not supported")
        );
        assert!(err(r#"{"version":"v1","repositories":[]}"#).contains("at least one repository"));
        assert!(err(
            r#"{"version":"v1","repositories":[{"repository":"a","tags":[],"enabled":true}]}"#
        )
        .contains("lists no tags"));
        assert!(err(
            r#"{"version":"v1","repositories":[{"repository":"A B","tags":["*"],"enabled":true}]}"#
        )
        .contains("not a repository name"));
        assert!(err(
            r#"{"version":"v1","repositories":[{"repository":"a","tags":["$(x)"],"enabled":true}]}"#
        )
        .contains("not a tag or a * pattern"));
        assert!(
            err(r#"{"version":"v1","tag-convention":"weekly","repositories":[]}"#)
                .contains("configuration")
        );
        assert!(err(r#"{"version":"v1","repositories":[],"extra":1}"#).contains("unknown field"));
        assert_eq!(parse_schedule("1d").unwrap(), 1);
        assert_eq!(parse_schedule("30d").unwrap(), 30);
        for bad in ["0d", "31d", "1h", "d", "7"] {
            assert!(
                parse_schedule(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("1d to 30d"),
                "{bad}"
            );
        }
    }

    #[test]
    fn wildcards_and_patch_outputs() {
        assert!(tag_matches("*", "anything"));
        assert!(tag_matches("3.11*", "3.11-slim"));
        assert!(tag_matches("*-slim", "3.11-slim"));
        assert!(tag_matches("3.*-slim", "3.12-slim"));
        assert!(!tag_matches("3.11*", "3.1"));
        assert!(!tag_matches("3.12", "3.12-slim"));
        let all: Vec<String> = ["1", "1-1", "1-patched", "2-1", "v-x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(is_patch_output("1-1", &all));
        assert!(is_patch_output("1-patched", &all));
        assert!(!is_patch_output("2-1", &all), "no tag 2: not a patch of it");
        assert!(!is_patch_output("v-x", &all));
    }
}
