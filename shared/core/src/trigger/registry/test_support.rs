//! Digests and builders shared by the registry trigger's unit tests.

use crate::domain::model::BaseImageTriggerType;
use crate::trigger::registry::decide::{Dependent, Verdict};
use crate::trigger::registry::event::TagUpdate;

pub(super) const D1: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub(super) const D2: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";
pub(super) const D3: &str =
    "sha256:3333333333333333333333333333333333333333333333333333333333333333";
pub(super) fn dep(
    task: &str,
    image: &str,
    last: Option<&str>,
    runtime: bool,
    enabled: bool,
    kind: BaseImageTriggerType,
) -> Dependent {
    Dependent {
        task: task.to_string(),
        image: image.to_string(),
        last_digest: last.map(str::to_string),
        runtime,
        trigger_enabled: enabled,
        trigger_type: kind,
        platforms: Vec::new(),
    }
}

pub(super) fn update(image: &str, digest: &str) -> TagUpdate {
    TagUpdate {
        image: image.to_string(),
        digest: digest.to_string(),
        media_type: None,
        event_id: None,
        first_sighting: false,
        platforms: None,
    }
}

pub(super) fn trig(task: &str, image: &str, old: Option<&str>, new: &str) -> Verdict {
    Verdict::Trigger {
        task: task.to_string(),
        image: image.to_string(),
        old_digest: old.map(str::to_string),
        new_digest: new.to_string(),
    }
}
