//! Continuous patching's schedule, fast-forwarded through the clock port:
//! the store, builder and clock of the test kit, the decisions of core.

use crtask_core::domain::imageref::ImageRef;
use crtask_core::domain::model::{RunType, Trigger};
use crtask_core::patch::continuous::{parse_config, tick, PatchSchedule};
use crtask_core::patch::execute::TagLister;
use crtask_core::patch::TagConvention;
use crtask_core::ports::Clock;
use crtask_core::Result;
use crtask_testkit::clock::at;
use crtask_testkit::store::MemoryStore;
use crtask_testkit::{FixedClock, RecordingBuilder};
use std::collections::BTreeMap;

const CONFIG: &str = r#"{
  "version": "v1",
  "tag-convention": "floating",
  "repositories": [
    {"repository": "python", "tags": ["3.11*", "3.12"], "enabled": true},
    {"repository": "team/web", "tags": ["*"], "enabled": true},
    {"repository": "legacy", "tags": ["*"], "enabled": false}
  ]
}"#;

/// The registry's tag lists, in memory: the scheduling decisions are
/// under test here; listing a real registry is covered by the end-to-end
/// patch tests (incremental tags count the registry's own list).
struct Tags(BTreeMap<String, Vec<String>>);

#[async_trait::async_trait]
impl TagLister for Tags {
    async fn list_tags(
        &self,
        image: &ImageRef,
    ) -> Result<std::result::Result<Vec<String>, String>> {
        Ok(Ok(self
            .0
            .get(&image.repository)
            .cloned()
            .unwrap_or_default()))
    }
}

fn tags() -> Tags {
    let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Tags(BTreeMap::from([
        (
            "python".into(),
            t(&["3.11", "3.11-slim", "3.11-patched", "3.12", "3.13"]),
        ),
        ("team/web".into(), t(&["1", "1-1", "1-2", "2"])),
        ("legacy".into(), t(&["old"])),
    ]))
}

#[tokio::test]
async fn occurrences_fire_once_for_enabled_matching_tags() {
    let store = MemoryStore::new();
    let builder = RecordingBuilder::new();
    let clock = FixedClock::at("2026-01-01T10:00:00Z");
    let config = parse_config(CONFIG.as_bytes()).unwrap();
    let s = PatchSchedule::new(config, "2d", clock.now()).unwrap();
    let tags = tags();
    let tick = || tick(&store, &builder, &clock, &tags, "127.0.0.1:5000", &s);

    // Before the first occurrence: nothing.
    clock.set(at("2026-01-03T09:59:59Z"));
    assert!(tick().await.unwrap().is_empty());
    assert_eq!(s.next_occurrence(clock.now()), at("2026-01-03T10:00:00Z"));

    // The first occurrence: one run per matching tag of the enabled repositories.
    clock.set(at("2026-01-03T10:00:30Z"));
    let runs = tick().await.unwrap();
    let images: Vec<String> = runs
        .iter()
        .map(|r| r.patch.as_ref().unwrap().request.image.clone())
        .collect();
    assert_eq!(
        images,
        [
            "127.0.0.1:5000/python:3.11",
            "127.0.0.1:5000/python:3.11-slim",
            "127.0.0.1:5000/python:3.12",
            "127.0.0.1:5000/team/web:1",
            "127.0.0.1:5000/team/web:2",
        ]
    );
    for r in &runs {
        assert_eq!(r.run_type, RunType::Patch);
        assert_eq!(
            r.trigger,
            Trigger::Patch {
                scheduled_time: at("2026-01-03T10:00:00Z")
            }
        );
        assert_eq!(r.trigger.kind(), "Patch");
        let p = r.patch.as_ref().unwrap();
        assert_eq!(p.request.tag_convention, TagConvention::Floating);
        assert_eq!(p.config.as_deref(), Some("continuous-patch"));
    }
    assert_eq!(builder.dispatched().len(), 5);

    // The same occurrence again (the next minute's check): nothing more.
    clock.set(at("2026-01-04T09:00:00Z"));
    assert!(tick().await.unwrap().is_empty());
    assert_eq!(builder.dispatched().len(), 5);

    // Down for three periods: one catch-up at the latest occurrence.
    clock.set(at("2026-01-09T11:00:00Z"));
    let runs = tick().await.unwrap();
    assert_eq!(runs.len(), 5);
    assert_eq!(
        runs[0].trigger,
        Trigger::Patch {
            scheduled_time: at("2026-01-09T10:00:00Z")
        }
    );
    assert!(tick().await.unwrap().is_empty());
    assert_eq!(builder.dispatched().len(), 10);
}
