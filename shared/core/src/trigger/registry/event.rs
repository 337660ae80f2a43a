//! Step 2 of a registry notification: what moved. The body, already
//! authenticated ([`super::verify`]), becomes [`TagUpdate`]s (a tag now
//! points to a new digest) plus a reason for every event that moved none.
//!
//! - [`parse_registry_event`]: either format, told apart by shape (what
//!   `POST /webhooks/registry` calls);
//! - [`parse_distribution`]: CNCF distribution envelopes
//!   (`docker-registry`, Harbor, Zot, ...);
//! - [`parse_ecr`]: EventBridge "ECR Image Action" events (the registry-event
//!   function on AWS).
//!
//! Only manifest pushes with a tag move a tag ([`MANIFEST_MEDIA_TYPES`]):
//! blob pushes, pulls, deletes and the untagged platform manifests of a
//! multi-arch push are ignored with a reason. Pure: no I/O. Next:
//! [`super::decide`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::imageref::{is_digest, is_registry_host, ImageRef};
use crate::{Error, Result};

/// Content type of CNCF distribution notification envelopes.
pub const DISTRIBUTION_CONTENT_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// OCI image manifest.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform).
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list, schema 2 (multi-platform).
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker signed manifest, schema 1 (legacy).
pub const MEDIA_DOCKER_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker manifest, schema 1, unsigned (legacy).
pub const MEDIA_DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// Media types whose push moves a tag to a new image.
///
/// Schema 1 manifests are included on purpose: a tag that moves to a legacy
/// manifest still moves, and silently missing an update of a base image is
/// worse than a rebuild that the builder may reject with a clear error.
/// Blobs (`application/octet-stream`, layer and config types) never move a tag.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    MEDIA_OCI_MANIFEST,
    MEDIA_OCI_INDEX,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_V1_SIGNED,
    MEDIA_DOCKER_V1,
];

/// Whether `media_type` (parameters ignored, case insensitive) is an image
/// index: an OCI index or a Docker manifest list.
pub fn is_index_media_type(media_type: &str) -> bool {
    let essence = essence(media_type);
    [MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST]
        .iter()
        .any(|m| essence.eq_ignore_ascii_case(m))
}

/// Whether `media_type` (parameters such as `; charset=` ignored, case
/// insensitive) is an image manifest or index, see [`MANIFEST_MEDIA_TYPES`].
pub fn is_manifest_media_type(media_type: &str) -> bool {
    let essence = essence(media_type);
    MANIFEST_MEDIA_TYPES
        .iter()
        .any(|m| m.eq_ignore_ascii_case(essence))
}

/// The media type without parameters, trimmed.
fn essence(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or_default().trim()
}

/// A tag that moved: the registry now serves `digest` for `image`
/// (normalised `host/repo:tag`, as [`ImageRef::tagged`] prints it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagUpdate {
    /// Normalised tagged reference, e.g. `127.0.0.1:5000/base:1`.
    pub image: String,
    /// The digest the tag now points to.
    pub digest: String,
    /// Media type of the manifest, when the event says.
    pub media_type: Option<String>,
    /// The event's own id (distribution event id, EventBridge id), for dedupe.
    pub event_id: Option<String>,
    /// True when nothing moved as far as anyone knows: the poller sees the
    /// tag for the first time (a new tracked reference, or after a restart).
    /// A task never built on the image is then not rebuilt: its first run
    /// records the digest, and only a later move triggers it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_sighting: bool,
    /// When the tag is an image index and its contents were read (the
    /// poller reads them): each platform's manifest in it. `None`: unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<crate::domain::model::PlatformImage>>,
}

/// What a registry notification body held: the tags that moved and, for the
/// "why" log, one line for every event that moved none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedRegistryEvent {
    /// Tags that moved, in event order, without exact duplicates.
    pub updates: Vec<TagUpdate>,
    /// Why each other event was ignored (blob push, pull, delete, no tag, ...).
    pub ignored: Vec<String>,
}

fn parse_json(body: &[u8], what: &str) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid(format!("{what} body is empty")));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("{what} is not valid json: {e}")))
}

/// Longest "why" line kept for the event log.
const REASON_MAX: usize = 500;

/// Longest event id kept.
const EVENT_ID_MAX: usize = 128;

/// A reason line safe for logs: control characters become `?`, and it is
/// cut at [`REASON_MAX`] characters (event content is untrusted).
fn log_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(REASON_MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(REASON_MAX).is_some() {
        out.push('…');
    }
    out
}

fn event_id(v: &Value) -> Option<String> {
    str_field(v, "id").map(|id| id.chars().take(EVENT_ID_MAX).collect())
}

fn str_field<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// First 12 hex digits of a digest, for messages.
pub(super) fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", hex.get(..12).unwrap_or(hex)),
        None => d.chars().take(19).collect(),
    }
}

/// Validates a configured registry host override: a host (with optional
/// port) users write in FROM lines. A scheme and trailing `/` are tolerated.
fn check_registry_host(h: &str) -> Result<String> {
    let trimmed = h.trim();
    let bare = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    let bad = |why: String| Error::invalid(format!("registry host '{h}' is invalid: {why}"));
    if bare.is_empty() {
        return Err(bad("it is empty".to_string()));
    }
    if bare.contains('/') {
        return Err(bad(
            "give only a host and optional port, no path".to_string()
        ));
    }
    if !is_registry_host(bare) {
        return Err(bad(
            "a registry host needs a '.' or ':' or to be 'localhost' (e.g. 127.0.0.1:5000)"
                .to_string(),
        ));
    }
    let probe = ImageRef::parse(&format!("{bare}/probe")).map_err(|e| bad(e.to_string()))?;
    Ok(probe.registry)
}

/// The host part of an `http(s)://host[:port]/...` URL.
fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then_some(host)
}

/// Parses a CNCF distribution notification envelope (`{"events": [...]}`).
///
/// Only `push` events whose `target.mediaType` is a manifest or index (see
/// [`MANIFEST_MEDIA_TYPES`]) and that carry a `target.tag` move a tag; every
/// other event (blob push, pull, delete, mount, untagged platform manifest of
/// a multi-arch push, a bad digest) is listed in `ignored` with the reason.
///
/// The registry host of the image is, in order: `registry_host` when given
/// (the host users write in FROM lines, e.g. `127.0.0.1:5000`; configure it
/// when the registry is reached under another name than the one pushers use,
/// e.g. behind a proxy), else the event's `request.host` (the `Host` the
/// pusher used, which is what the pusher also wrote in its image name), else
/// the host of `target.url`. `source.addr` is the registry's own hostname and
/// is never used. A host that cannot appear in a FROM line (no `.` or `:` and
/// not `localhost`, which Docker would read as a Docker Hub user) is ignored
/// with a reason that says to configure the host.
///
/// Errors: the body is not JSON or has no `events` array ([`Error::Invalid`]),
/// or `registry_host` is not a valid host.
pub fn parse_distribution(body: &[u8], registry_host: Option<&str>) -> Result<ParsedRegistryEvent> {
    let host_override = registry_host.map(check_registry_host).transpose()?;
    let value = parse_json(body, "registry notification")?;
    parse_distribution_value(&value, host_override.as_deref())
}

fn parse_distribution_value(
    value: &Value,
    host_override: Option<&str>,
) -> Result<ParsedRegistryEvent> {
    let events = value
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Error::invalid(
                "registry notification has no 'events' array: expected a cncf \
                 distribution envelope {\"events\": [...]}",
            )
        })?;
    let mut out = ParsedRegistryEvent::default();
    if events.is_empty() {
        out.ignored
            .push("the notification carries no events".to_string());
    }
    let mut seen = BTreeSet::new();
    for (i, event) in events.iter().enumerate() {
        let label = match event_id(event) {
            Some(id) => format!("event {} ({id})", i + 1),
            None => format!("event {}", i + 1),
        };
        match distribution_event(event, host_override) {
            Ok(update) => {
                if seen.insert((update.image.clone(), update.digest.clone())) {
                    out.updates.push(update);
                } else {
                    out.ignored.push(log_safe(&format!(
                        "{label}: push of {}@{} is a duplicate of an earlier event in this notification",
                        update.image,
                        short_digest(&update.digest)
                    )));
                }
            }
            Err(why) => out.ignored.push(log_safe(&format!("{label}: {why}"))),
        }
    }
    Ok(out)
}

/// One distribution event -> a tag update, or why it is none.
fn distribution_event(
    event: &Value,
    host_override: Option<&str>,
) -> std::result::Result<TagUpdate, String> {
    if !event.is_object() {
        return Err("not a json object".to_string());
    }
    let action = str_field(event, "action").ok_or("has no action")?;
    let target = event
        .get("target")
        .filter(|t| t.is_object())
        .ok_or("has no target object")?;
    let repo = str_field(target, "repository").unwrap_or("<no repository>");
    let tag = str_field(target, "tag");
    let digest = str_field(target, "digest");
    let media = str_field(target, "mediaType");
    let what = match (tag, digest) {
        (Some(t), _) => format!("{repo}:{t}"),
        (None, Some(d)) => format!("{repo}@{}", short_digest(d)),
        (None, None) => repo.to_string(),
    };
    match action {
        "push" => {}
        "pull" => return Err(format!("pull of {what} ignored: only pushes move a tag")),
        "delete" => {
            return Err(format!(
                "delete of {what} ignored: a deleted image gives nothing to rebuild on"
            ))
        }
        "mount" => {
            return Err(format!(
                "blob mount into {repo} ignored: mounts copy layers, they do not move a tag"
            ))
        }
        other => {
            return Err(format!(
                "action '{other}' on {what} ignored: only pushes move a tag"
            ))
        }
    }
    let media =
        media.ok_or_else(|| format!("push of {what} ignored: the event has no media type"))?;
    if !is_manifest_media_type(media) {
        let kind = if essence(media).eq_ignore_ascii_case("application/octet-stream") {
            "a layer or config blob"
        } else {
            "not an image manifest or index"
        };
        return Err(format!("blob push to {what} ignored: {media} is {kind}"));
    }
    let Some(tag) = tag else {
        return Err(format!(
            "manifest push of {what} ignored: it carries no tag (a platform manifest of a \
             multi-arch image, or a push by digest)"
        ));
    };
    let digest = digest.ok_or_else(|| format!("manifest push of {what} ignored: no digest"))?;
    if !is_digest(digest) {
        return Err(format!(
            "manifest push of {what} ignored: '{digest}' is not a valid digest"
        ));
    }
    if repo == "<no repository>" {
        return Err(format!("manifest push of {what} ignored: no repository"));
    }
    let host = match host_override {
        Some(h) => h.to_string(),
        None => event
            .get("request")
            .and_then(|r| str_field(r, "host"))
            .or_else(|| str_field(target, "url").and_then(url_host))
            .ok_or_else(|| {
                format!(
                    "manifest push of {what} ignored: the event names no registry host \
                     (request.host); configure the registry host users pull from"
                )
            })?
            .to_string(),
    };
    if !is_registry_host(&host) {
        return Err(format!(
            "manifest push of {what} ignored: registry host '{host}' cannot appear in a FROM \
             line (it needs a '.' or ':' or to be localhost); configure the registry host \
             users pull from"
        ));
    }
    let image = ImageRef::parse(&format!("{host}/{repo}:{tag}"))
        .map_err(|e| format!("manifest push of {what} ignored: {e}"))?;
    Ok(TagUpdate {
        image: image.tagged(),
        digest: digest.to_string(),
        media_type: Some(media.to_string()),
        event_id: event_id(event),
        first_sighting: false,
        platforms: None,
    })
}

/// Parses an EventBridge "ECR Image Action" event.
///
/// A `PUSH` with `result` `SUCCESS`, an `image-tag` and a valid
/// `image-digest` moves `<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`
/// (`amazonaws.com.cn` for `cn-*` regions). When the newer
/// `manifest-media-type` field is present it must be a manifest or index type.
/// `DELETE`, failures, untagged pushes and other ECR/EventBridge events
/// ("ECR Image Scan", ...) are ignored with a reason.
///
/// Errors: not JSON, not a JSON object, no `detail-type`, or an "ECR Image
/// Action" without a `detail` object ([`Error::Invalid`]).
pub fn parse_ecr(body: &[u8]) -> Result<ParsedRegistryEvent> {
    let value = parse_json(body, "eventbridge event")?;
    parse_ecr_value(&value)
}

fn parse_ecr_value(value: &Value) -> Result<ParsedRegistryEvent> {
    if !value.is_object() {
        return Err(Error::invalid("eventbridge event is not a json object"));
    }
    let detail_type = str_field(value, "detail-type").ok_or_else(|| {
        Error::invalid(
            "eventbridge event has no 'detail-type': expected an \"ECR Image Action\" event",
        )
    })?;
    let source = str_field(value, "source").unwrap_or("<no source>");
    let mut out = ParsedRegistryEvent::default();
    let label = match event_id(value) {
        Some(id) => format!("ecr event {id}"),
        None => "ecr event".to_string(),
    };
    if detail_type != "ECR Image Action" || source != "aws.ecr" {
        out.ignored.push(log_safe(&format!(
            "{label}: '{detail_type}' from '{source}' ignored: only \"ECR Image Action\" \
             events from aws.ecr move a tag"
        )));
        return Ok(out);
    }
    let detail = value
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| Error::invalid("ecr image action event has no 'detail' object"))?;
    match ecr_detail(value, detail) {
        Ok(update) => out.updates.push(update),
        Err(why) => out.ignored.push(log_safe(&format!("{label}: {why}"))),
    }
    Ok(out)
}

fn ecr_detail(event: &Value, detail: &Value) -> std::result::Result<TagUpdate, String> {
    let repo = str_field(detail, "repository-name").unwrap_or("<no repository>");
    let tag = str_field(detail, "image-tag");
    let digest = str_field(detail, "image-digest");
    let what = match (tag, digest) {
        (Some(t), _) => format!("{repo}:{t}"),
        (None, Some(d)) => format!("{repo}@{}", short_digest(d)),
        (None, None) => repo.to_string(),
    };
    let action = str_field(detail, "action-type").unwrap_or("<no action-type>");
    let result = str_field(detail, "result").unwrap_or("<no result>");
    match action {
        "PUSH" => {}
        "DELETE" => {
            return Err(format!(
                "delete of {what} ignored: a deleted image gives nothing to rebuild on"
            ))
        }
        other => {
            return Err(format!(
                "action '{other}' on {what} ignored: only pushes move a tag"
            ))
        }
    }
    if result != "SUCCESS" {
        return Err(format!(
            "push of {what} ignored: its result is {result}, not SUCCESS"
        ));
    }
    if let Some(media) = str_field(detail, "manifest-media-type") {
        if !is_manifest_media_type(media) {
            return Err(format!(
                "push of {what} ignored: {media} is not an image manifest or index"
            ));
        }
    }
    let Some(tag) = tag else {
        return Err(format!(
            "push of {what} ignored: it carries no tag (a platform manifest of a multi-arch \
             image, or a push by digest)"
        ));
    };
    let digest = digest.ok_or_else(|| format!("push of {what} ignored: no image-digest"))?;
    if !is_digest(digest) {
        return Err(format!(
            "push of {what} ignored: '{digest}' is not a valid digest"
        ));
    }
    if repo == "<no repository>" {
        return Err(format!("push of {what} ignored: no repository-name"));
    }
    let account = str_field(event, "account").unwrap_or_default();
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "push of {what} ignored: account '{account}' is not a 12-digit aws account id"
        ));
    }
    let region = str_field(event, "region").unwrap_or_default();
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if !region_ok {
        return Err(format!(
            "push of {what} ignored: region '{region}' is not an aws region name"
        ));
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let host = format!("{account}.dkr.ecr.{region}.{suffix}");
    let image = ImageRef::parse(&format!("{host}/{repo}:{tag}"))
        .map_err(|e| format!("push of {what} ignored: {e}"))?;
    Ok(TagUpdate {
        image: image.tagged(),
        digest: digest.to_string(),
        media_type: str_field(detail, "manifest-media-type").map(str::to_string),
        event_id: event_id(event),
        first_sighting: false,
        platforms: None,
    })
}

/// Parses either a CNCF distribution envelope (an object with `events`) or
/// an EventBridge event (an object with `detail-type`), as
/// `POST /webhooks/registry` accepts both. `registry_host` applies to
/// distribution envelopes only (ECR events name their registry).
pub fn parse_registry_event(
    body: &[u8],
    registry_host: Option<&str>,
) -> Result<ParsedRegistryEvent> {
    let host_override = registry_host.map(check_registry_host).transpose()?;
    let value = parse_json(body, "registry notification")?;
    if value.get("events").is_some() {
        parse_distribution_value(&value, host_override.as_deref())
    } else if value.get("detail-type").is_some() {
        parse_ecr_value(&value)
    } else {
        Err(Error::invalid(
            "registry notification is neither a cncf distribution envelope \
             ({\"events\": [...]}) nor an eventbridge \"ECR Image Action\" event",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Secret;
    use crate::trigger::registry::test_support::{D1, D2};
    use crate::trigger::registry::verify::verify_registry;
    use crate::trigger::request::Headers;

    fn pairs(h: &[(&str, &str)]) -> Vec<(String, String)> {
        h.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn reasons_are_log_safe() {
        let long = "a".repeat(2_000);
        let e = serde_json::json!({"id": format!("x\n{long}"), "action": format!("pu\u{0}ll\r\n{long}"),
            "target": {"repository": "r\u{1b}[31m", "tag": "t"}});
        let got = parse_distribution(&envelope(&[e]), None).unwrap();
        let why = &got.ignored[0];
        assert!(!why.chars().any(char::is_control), "{why:?}");
        assert!(why.chars().count() <= REASON_MAX + 1, "{}", why.len());
        assert!(why.ends_with('…'));
        assert!(why.starts_with("event 1 (x?aaa"), "{why:?}");
        let mut p = push("base", Some("1"), D1, MEDIA_OCI_MANIFEST, Some("r.io"));
        p["id"] = Value::from(long.clone());
        let got = parse_distribution(&envelope(&[p]), None).unwrap();
        assert_eq!(
            got.updates[0].event_id.as_deref().map(str::len),
            Some(EVENT_ID_MAX)
        );
    }

    #[test]
    fn media_types() {
        for (mt, want) in [
            (MEDIA_OCI_MANIFEST, true),
            (MEDIA_OCI_INDEX, true),
            (MEDIA_DOCKER_MANIFEST, true),
            (MEDIA_DOCKER_LIST, true),
            (MEDIA_DOCKER_V1_SIGNED, true),
            ("Application/Vnd.Oci.Image.Manifest.v1+json; x=y", true),
            ("application/octet-stream", false),
            ("application/vnd.oci.image.layer.v1.tar+gzip", false),
            ("application/vnd.oci.image.config.v1+json", false),
            ("", false),
        ] {
            assert_eq!(is_manifest_media_type(mt), want, "{mt}");
        }
    }

    fn envelope(events: &[Value]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap()
    }

    fn push(repo: &str, tag: Option<&str>, digest: &str, media: &str, host: Option<&str>) -> Value {
        let mut target = serde_json::json!({
            "mediaType": media, "digest": digest, "repository": repo,
            "url": format!("http://fallback.example:5000/v2/{repo}/manifests/{digest}"),
        });
        if let Some(t) = tag {
            target["tag"] = Value::from(t);
        }
        let mut e = serde_json::json!({"id": "e1", "action": "push", "target": target});
        if let Some(h) = host {
            e["request"] = serde_json::json!({"host": h, "method": "PUT"});
        }
        e
    }

    #[test]
    fn distribution_hosts() {
        let m = MEDIA_OCI_MANIFEST;
        let cases: Vec<(Value, Option<&str>, std::result::Result<&str, &str>)> = vec![
            (
                push("base", Some("1"), D1, m, Some("127.0.0.1:5000")),
                None,
                Ok("127.0.0.1:5000/base:1"),
            ),
            (
                push("base", Some("1"), D1, m, Some("127.0.0.1:5000")),
                Some("reg.example.com"),
                Ok("reg.example.com/base:1"),
            ),
            (
                push("base", Some("1"), D1, m, Some("127.0.0.1:5000")),
                Some("http://Reg.Example.com:5000/"),
                Ok("reg.example.com:5000/base:1"),
            ),
            (
                push("team/base", Some("v2"), D1, m, Some("Registry.Example.COM")),
                None,
                Ok("registry.example.com/team/base:v2"),
            ),
            (
                push("base", Some("1"), D1, m, Some("localhost")),
                None,
                Ok("localhost/base:1"),
            ),
            // no request.host: the host of target.url
            (
                push("base", Some("1"), D1, m, None),
                None,
                Ok("fallback.example:5000/base:1"),
            ),
            // a Docker Hub alias normalises
            (
                push("user/x", Some("1"), D1, m, Some("index.docker.io")),
                None,
                Ok("docker.io/user/x:1"),
            ),
            (
                push("base", Some("1"), D1, m, Some("registry")),
                None,
                Err("registry host 'registry' cannot appear in a FROM line"),
            ),
            (
                push("Base", Some("1"), D1, m, Some("r.io")),
                None,
                Err("must be lower-case"),
            ),
            (
                push("base", Some("1"), "sha256:abc", m, Some("r.io")),
                None,
                Err("'sha256:abc' is not a valid digest"),
            ),
            (
                push("base", Some("-bad"), D1, m, Some("r.io")),
                None,
                Err("tag '-bad' is invalid"),
            ),
        ];
        for (event, host, want) in cases {
            let got = parse_distribution(&envelope(std::slice::from_ref(&event)), host).unwrap();
            match want {
                Ok(image) => {
                    assert_eq!(got.ignored, Vec::<String>::new(), "{event}");
                    assert_eq!(
                        got.updates,
                        vec![TagUpdate {
                            image: image.to_string(),
                            digest: D1.to_string(),
                            media_type: Some(m.to_string()),
                            event_id: Some("e1".to_string()),
                            first_sighting: false,
                            platforms: None,
                        }],
                        "{event}"
                    );
                }
                Err(why) => {
                    assert!(got.updates.is_empty(), "{event}");
                    assert_eq!(got.ignored.len(), 1, "{event}");
                    assert!(
                        got.ignored[0].contains(why),
                        "{:?} lacks {why:?}",
                        got.ignored
                    );
                    assert!(
                        got.ignored[0].starts_with("event 1 (e1): "),
                        "{:?}",
                        got.ignored
                    );
                }
            }
        }
        // no host anywhere
        let mut e = push("base", Some("1"), D1, m, None);
        e["target"].as_object_mut().unwrap().remove("url");
        let got = parse_distribution(&envelope(&[e]), None).unwrap();
        assert!(
            got.ignored[0].contains("names no registry host"),
            "{:?}",
            got.ignored
        );
    }

    #[test]
    fn distribution_ignores_with_reasons() {
        let m = MEDIA_OCI_MANIFEST;
        let mut pull = push("base", Some("1"), D1, m, Some("r.io"));
        pull["action"] = Value::from("pull");
        let mut del = push("base", None, D1, m, Some("r.io"));
        del["action"] = Value::from("delete");
        let mut mount = push("base", None, D1, "application/octet-stream", Some("r.io"));
        mount["action"] = Value::from("mount");
        let mut odd = push("base", Some("1"), D1, m, Some("r.io"));
        odd["action"] = Value::from("tag");
        let mut nomedia = push("base", Some("1"), D1, m, Some("r.io"));
        nomedia["target"]
            .as_object_mut()
            .unwrap()
            .remove("mediaType");
        let mut nodigest = push("base", Some("1"), D1, m, Some("r.io"));
        nodigest["target"].as_object_mut().unwrap().remove("digest");
        let mut norepo = push("base", Some("1"), D1, m, Some("r.io"));
        norepo["target"]
            .as_object_mut()
            .unwrap()
            .remove("repository");
        let cases: Vec<(Value, &str)> = vec![
            (pull, "pull of base:1 ignored: only pushes move a tag"),
            (del, "delete of base@sha256:111111111111 ignored"),
            (mount, "blob mount into base ignored"),
            (odd, "action 'tag' on base:1 ignored"),
            (push("base", None, D1, "application/octet-stream", Some("r.io")),
             "blob push to base@sha256:111111111111 ignored: application/octet-stream is a layer or config blob"),
            (push("base", Some("1"), D1, "application/vnd.oci.image.config.v1+json", Some("r.io")),
             "is not an image manifest or index"),
            (push("base", None, D1, m, Some("r.io")),
             "manifest push of base@sha256:111111111111 ignored: it carries no tag"),
            (nomedia, "push of base:1 ignored: the event has no media type"),
            (nodigest, "manifest push of base:1 ignored: no digest"),
            (norepo, "no repository"),
            (serde_json::json!("text"), "event 1: not a json object"),
            (serde_json::json!({"id": "e1"}), "event 1 (e1): has no action"),
            (serde_json::json!({"action": "push"}), "event 1: has no target object"),
            (serde_json::json!({"action": "push", "target": 7}), "has no target object"),
            (serde_json::json!({"action": 5, "target": {}}), "has no action"),
        ];
        for (event, why) in cases {
            let got = parse_distribution(&envelope(std::slice::from_ref(&event)), None).unwrap();
            assert!(got.updates.is_empty(), "{event}");
            assert_eq!(got.ignored.len(), 1, "{event}");
            assert!(
                got.ignored[0].contains(why),
                "{:?} lacks {why:?}",
                got.ignored[0]
            );
        }
        // several events: order kept, duplicates folded
        let body = envelope(&[
            push("base", None, D2, "application/octet-stream", Some("r.io")),
            push("base", Some("1"), D1, m, Some("r.io")),
            push("base", Some("1"), D1, m, Some("r.io")),
            push("base", Some("latest"), D1, MEDIA_DOCKER_LIST, Some("r.io")),
        ]);
        let got = parse_distribution(&body, None).unwrap();
        let images: Vec<&str> = got.updates.iter().map(|u| u.image.as_str()).collect();
        assert_eq!(images, ["r.io/base:1", "r.io/base:latest"]);
        assert_eq!(got.ignored.len(), 2, "{:?}", got.ignored);
        assert!(
            got.ignored[1].starts_with(
                "event 3 (e1): push of r.io/base:1@sha256:111111111111 is a duplicate"
            ),
            "{:?}",
            got.ignored
        );
        // empty envelope
        let got = parse_distribution(br#"{"events": []}"#, None).unwrap();
        assert!(got.updates.is_empty());
        assert_eq!(got.ignored, ["the notification carries no events"]);
    }

    #[test]
    fn distribution_errors() {
        let cases: Vec<(&[u8], Option<&str>, &str)> = vec![
            (b"", None, "registry notification body is empty"),
            (b"  \n", None, "registry notification body is empty"),
            (
                b"{",
                None,
                "registry notification is not valid json: EOF while parsing",
            ),
            (
                b"not json",
                None,
                "registry notification is not valid json: expected",
            ),
            (b"\xff\xfe", None, "is not valid json"),
            (b"[]", None, "has no 'events' array"),
            (b"{}", None, "has no 'events' array"),
            (br#"{"events": {}}"#, None, "has no 'events' array"),
            (
                br#"{"events": []}"#,
                Some(""),
                "registry host '' is invalid: it is empty",
            ),
            (
                br#"{"events": []}"#,
                Some("registry"),
                "registry host 'registry' is invalid: a registry host needs",
            ),
            (br#"{"events": []}"#, Some("r.io/ns"), "no path"),
            (
                br#"{"events": []}"#,
                Some("r.io:99999"),
                "not a number from 1 to 65535",
            ),
        ];
        for (body, host, want) in cases {
            let err = parse_distribution(body, host).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{err:?}");
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        }
    }

    fn ecr(detail: Value) -> Value {
        serde_json::json!({
            "version": "0", "id": "ev-1", "detail-type": "ECR Image Action", "source": "aws.ecr",
            "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "us-west-2",
            "resources": [], "detail": detail,
        })
    }

    #[test]
    fn ecr_table() {
        let ok = serde_json::json!({"result": "SUCCESS", "repository-name": "team/app",
            "image-digest": D1, "action-type": "PUSH", "image-tag": "1"});
        let host = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
        let got = parse_ecr(&serde_json::to_vec(&ecr(ok.clone())).unwrap()).unwrap();
        assert_eq!(
            got,
            ParsedRegistryEvent {
                updates: vec![TagUpdate {
                    image: format!("{host}/team/app:1"),
                    digest: D1.to_string(),
                    media_type: None,
                    event_id: Some("ev-1".to_string()),
                    first_sighting: false,
                    platforms: None,
                }],
                ignored: vec![],
            }
        );
        let with = |k: &str, v: Value| {
            let mut d = ok.clone();
            d[k] = v;
            ecr(d)
        };
        let without = |k: &str| {
            let mut d = ok.clone();
            d.as_object_mut().unwrap().remove(k);
            ecr(d)
        };
        let mut china = ecr(ok.clone());
        china["region"] = Value::from("cn-north-1");
        let got = parse_ecr(&serde_json::to_vec(&china).unwrap()).unwrap();
        assert_eq!(
            got.updates[0].image,
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/app:1"
        );
        let got = parse_ecr(
            &serde_json::to_vec(&with("manifest-media-type", Value::from(MEDIA_OCI_INDEX)))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(got.updates[0].media_type.as_deref(), Some(MEDIA_OCI_INDEX));

        let mut bad_account = ecr(ok.clone());
        bad_account["account"] = Value::from("12345");
        let mut bad_region = ecr(ok.clone());
        bad_region["region"] = Value::from("us west/2");
        let mut scan = ecr(ok.clone());
        scan["detail-type"] = Value::from("ECR Image Scan");
        let mut other_source = ecr(ok.clone());
        other_source["source"] = Value::from("my.app");
        let ignored: Vec<(Value, &str)> = vec![
            (
                with("action-type", Value::from("DELETE")),
                "ecr event ev-1: delete of team/app:1 ignored",
            ),
            (
                with("action-type", Value::from("REPLICATE")),
                "action 'REPLICATE' on team/app:1 ignored",
            ),
            (
                with("result", Value::from("FAILURE")),
                "push of team/app:1 ignored: its result is FAILURE, not SUCCESS",
            ),
            (without("result"), "its result is <no result>"),
            (
                without("image-tag"),
                "push of team/app@sha256:111111111111 ignored: it carries no tag",
            ),
            (with("image-tag", Value::from("")), "it carries no tag"),
            (
                with("image-digest", Value::from("sha256:7f5b")),
                "'sha256:7f5b' is not a valid digest",
            ),
            (without("image-digest"), "no image-digest"),
            (without("repository-name"), "no repository-name"),
            (
                with("repository-name", Value::from("Team/App")),
                "must be lower-case",
            ),
            (
                with(
                    "manifest-media-type",
                    Value::from("application/vnd.oci.image.config.v1+json"),
                ),
                "is not an image manifest or index",
            ),
            (
                bad_account,
                "account '12345' is not a 12-digit aws account id",
            ),
            (bad_region, "region 'us west/2' is not an aws region name"),
            (scan, "'ECR Image Scan' from 'aws.ecr' ignored"),
            (other_source, "'ECR Image Action' from 'my.app' ignored"),
        ];
        for (event, why) in ignored {
            let got = parse_ecr(&serde_json::to_vec(&event).unwrap()).unwrap();
            assert!(got.updates.is_empty(), "{event}");
            assert_eq!(got.ignored.len(), 1, "{event}");
            assert!(
                got.ignored[0].contains(why),
                "{:?} lacks {why:?}",
                got.ignored[0]
            );
        }
        let errors: Vec<(&[u8], &str)> = vec![
            (b"", "eventbridge event body is empty"),
            (b"{nope", "eventbridge event is not valid json"),
            (b"[1]", "eventbridge event is not a json object"),
            (b"{}", "eventbridge event has no 'detail-type'"),
            (
                br#"{"detail-type": "ECR Image Action", "source": "aws.ecr"}"#,
                "ecr image action event has no 'detail' object",
            ),
            (
                br#"{"detail-type": "ECR Image Action", "source": "aws.ecr", "detail": []}"#,
                "no 'detail' object",
            ),
        ];
        for (body, want) in errors {
            let err = parse_ecr(body).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{err:?}");
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        }
    }

    #[test]
    fn registry_event_dispatch() {
        let dist = envelope(&[push(
            "base",
            Some("1"),
            D1,
            MEDIA_OCI_MANIFEST,
            Some("r.io"),
        )]);
        let got = parse_registry_event(&dist, None).unwrap();
        assert_eq!(got.updates[0].image, "r.io/base:1");
        let got = parse_registry_event(&dist, Some("other.io")).unwrap();
        assert_eq!(got.updates[0].image, "other.io/base:1");
        let e = ecr(
            serde_json::json!({"result": "SUCCESS", "repository-name": "app",
            "image-digest": D1, "action-type": "PUSH", "image-tag": "1"}),
        );
        let got = parse_registry_event(&serde_json::to_vec(&e).unwrap(), Some("other.io")).unwrap();
        assert_eq!(
            got.updates[0].image,
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:1"
        );
        for (body, want) in [
            (&b"{\"x\": 1}"[..], "neither a cncf distribution envelope"),
            (b"[]", "neither"),
            (b"nope", "registry notification is not valid json"),
        ] {
            let err = parse_registry_event(body, None).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        assert!(parse_registry_event(br#"{"events": []}"#, Some("bad host")).is_err());
    }

    #[test]
    fn parsers_never_panic_on_garbage() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces: &[&[u8]] = &[
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"events\"",
            b"\"detail-type\"",
            b":",
            b",",
            b"\"push\"",
            b"\"action\"",
            b"\"target\"",
            b"\"tag\"",
            b"null",
            b"1e999",
            b"\"\\u0000\"",
            b"\xff",
            b"\"ECR Image Action\"",
            b"\"detail\"",
            b"\"sha256:",
            b"\"",
            b"true",
        ];
        for _ in 0..5_000 {
            let len = (next() % 24) as usize;
            let mut body = Vec::new();
            for _ in 0..len {
                let p = pieces[(next() % pieces.len() as u64) as usize];
                body.extend_from_slice(p);
            }
            let _ = parse_distribution(&body, None);
            let _ = parse_distribution(&body, Some("r.io"));
            let _ = parse_ecr(&body);
            let _ = parse_registry_event(&body, None);
            let p = pairs(&[
                ("Authorization", &String::from_utf8_lossy(&body)),
                ("X-Crtask-Signature", &String::from_utf8_lossy(&body)),
            ]);
            let _ = verify_registry(&Headers::new(&p), &body, &secrets(&["t"]), &secrets(&["s"]));
        }
        // deep nesting is refused by serde_json's recursion limit, not a stack overflow
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_registry_event(deep.as_bytes(), None).is_err());
    }
}
