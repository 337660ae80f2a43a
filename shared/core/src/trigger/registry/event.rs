//! Registry events: a tag moved, so the images built on it may need a rebuild.
//!
//! Everything here is pure (no I/O, no clock): the server and the functions
//! feed it request bytes, the dependency index and the time.
//!
//! 1. [`verify_registry`] authenticates a notification (bearer token or HMAC
//!    signature) on the raw body, before anything is parsed.
//! 2. [`parse_distribution`] (CNCF distribution envelopes), [`parse_ecr`]
//!    (EventBridge "ECR Image Action") or [`parse_registry_event`] (either,
//!    told apart by shape) turn the body into [`TagUpdate`]s plus a reason for
//!    every event that moved no tag.
//! 3. [`decide`] (and [`decide_cascade`] for a task's own pushed output)
//!    compares an update with the tasks that use the image and returns one
//!    [`Verdict`] per task.
//! 4. [`Debouncer`] collapses several triggers of one task inside a settle
//!    window (multi-arch pushes, several tags of one push, redeliveries) into
//!    one run.
//! 5. [`schedule_cascade`] orders rebuilds along task-to-task edges (task X's
//!    output image is task Y's base), so chains run in order and a diamond's
//!    bottom runs once, after both sides.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::domain::imageref::{is_digest, is_registry_host, ImageRef};
use crate::domain::model::BaseImageTriggerType;
use crate::signing::{self, Secret, SignatureError, SHA256_PREFIX};
use crate::trigger::request::{header, HeaderLookup};
use crate::{Error, Result};

/// Header carrying an HMAC-SHA256 of the raw body: `sha256=<64 hex digits>`.
pub const SIGNATURE_HEADER: &str = "X-Crtask-Signature";

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

/// Checks the `Content-Type` of a registry notification.
///
/// Accepted: [`DISTRIBUTION_CONTENT_TYPE`], `application/json` and any other
/// `application/*+json` (EventBridge deliveries, tests with curl), with or
/// without parameters; a missing content type is accepted too (the body is
/// checked anyway). Anything else is [`Error::Invalid`] naming the type.
pub fn check_content_type(content_type: Option<&str>) -> Result<()> {
    let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    let e = essence(ct).to_ascii_lowercase();
    let json = e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "unsupported content type '{ct}' for a registry notification: \
             expected {DISTRIBUTION_CONTENT_TYPE} or application/json"
        )))
    }
}

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

/// Why a registry notification was not accepted as genuine (answer 401).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryAuthError {
    /// No (non-empty) token or secret is configured, so nothing can verify.
    #[error(
        "no registry webhook token or secret is configured: give the server one \
         (--registry-webhook-token-file)"
    )]
    NotConfigured,
    /// Neither an `Authorization` nor an `X-Crtask-Signature` header was sent.
    #[error(
        "missing credentials: send 'Authorization: Bearer <token>' or \
         'X-Crtask-Signature: sha256=<hex hmac-sha256 of the body>'"
    )]
    Missing,
    /// A credential header is present but not of the expected form.
    #[error("{0}")]
    Malformed(String),
    /// The bearer token matches none of the configured tokens.
    #[error("bearer token does not match any configured registry webhook token")]
    WrongToken,
    /// The signature matches the body with none of the configured secrets.
    #[error(
        "x-crtask-signature does not match the body with any configured registry webhook secret"
    )]
    WrongSignature,
}

impl RegistryAuthError {
    /// True when the request carried no credentials at all (as opposed to
    /// wrong or malformed ones); useful to word the log line.
    pub fn is_missing(&self) -> bool {
        matches!(self, RegistryAuthError::Missing)
    }
}

/// Authenticates a registry notification.
///
/// Accepted when either
/// - `Authorization: Bearer <token>` equals any configured token (the scheme
///   name is case-insensitive; compared in constant time over SHA-256 digests,
///   so neither content nor length leaks), or
/// - `X-Crtask-Signature: sha256=<hex>` is the HMAC-SHA256 of the raw `body`
///   under any configured secret (checked in constant time by
///   [`signing::check_signature`]; a sender computes it with
///   [`signing::sign_sha256`]).
///
/// Headers are read through [`HeaderLookup`]; for `(name, value)` pairs use
/// [`crate::trigger::request::Headers::new`]. Empty tokens and secrets are skipped. When
/// both headers are sent, either one verifying is enough; when both fail, the
/// signature's error is reported.
pub fn verify_registry(
    headers: &dyn HeaderLookup,
    body: &[u8],
    tokens: &[Secret],
    hmac_secrets: &[Secret],
) -> std::result::Result<(), RegistryAuthError> {
    let tokens = signing::usable(tokens);
    let secrets = signing::usable(hmac_secrets);
    if tokens.is_empty() && secrets.is_empty() {
        return Err(RegistryAuthError::NotConfigured);
    }
    let auth = header(headers, "Authorization");
    let signature = header(headers, SIGNATURE_HEADER);
    let mut first_error = None;
    if let Some(sig) = signature {
        match check_signature(sig, body, &secrets) {
            Ok(()) => return Ok(()),
            Err(e) => first_error = Some(e),
        }
    }
    if let Some(auth) = auth {
        match check_bearer(auth, &tokens) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(RegistryAuthError::Missing))
}

fn check_signature(
    value: &str,
    body: &[u8],
    secrets: &[&Secret],
) -> std::result::Result<(), RegistryAuthError> {
    signing::check_signature(value, Some(SHA256_PREFIX), body, secrets).map_err(|e| match e {
        SignatureError::Malformed(why) => RegistryAuthError::Malformed(format!(
            "malformed {SIGNATURE_HEADER} header: {why}; expected {}",
            signing::expected_form(Some(SHA256_PREFIX))
        )),
        SignatureError::Mismatch => RegistryAuthError::WrongSignature,
    })
}

fn check_bearer(value: &str, tokens: &[&Secret]) -> std::result::Result<(), RegistryAuthError> {
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Name the scheme only when it looks like one, so a bare credential
        // never ends up in an error message or log line.
        let plain = scheme.len() <= 20 && scheme.bytes().all(|b| b.is_ascii_alphabetic());
        return Err(RegistryAuthError::Malformed(if plain && !rest.is_empty() {
            format!(
                "authorization header uses the '{}' scheme: expected 'Authorization: Bearer <token>'",
                scheme.to_ascii_lowercase()
            )
        } else {
            "authorization header is not of the form 'Bearer <token>'".to_string()
        }));
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(RegistryAuthError::Malformed(
            "authorization header has an empty bearer token".to_string(),
        ));
    }
    if signing::token_matches_any(token, tokens) {
        Ok(())
    } else {
        Err(RegistryAuthError::WrongToken)
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

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
fn short_digest(d: &str) -> String {
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

// ---------------------------------------------------------------------------
// Decision
// ---------------------------------------------------------------------------

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
    },
    /// The task's base-image trigger is off.
    TriggerDisabled { task: String },
    /// The task's trigger type is `Runtime` and this image is only a
    /// build-time base of it.
    BuildTimeOnly { task: String },
    /// The task was already rebuilt in the cascade that produced this update
    /// (its own output is its base, or a cycle of tasks): no run, no loop.
    InCascade { task: String },
}

impl Verdict {
    /// The task the verdict is about.
    pub fn task(&self) -> &str {
        match self {
            Verdict::Trigger { task, .. }
            | Verdict::Unchanged { task, .. }
            | Verdict::TriggerDisabled { task }
            | Verdict::BuildTimeOnly { task }
            | Verdict::InCascade { task } => task,
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
            | Verdict::InCascade { .. } => "ignored",
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
            Verdict::InCascade { task } => write!(
                f,
                "task '{task}': already rebuilt in this cascade (its own output or a cycle)"
            ),
        }
    }
}

/// Normalised tagged form of a reference, or the reference as given when
/// it does not parse.
fn tagged(s: &str) -> String {
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
    decide_cascade(update, dependents, &[])
}

/// Like [`decide`], for an update produced by a rebuild: `chain` lists the
/// tasks already rebuilt in the cascade that led to this update (the
/// producer last). A dependent in the chain gets [`Verdict::InCascade`], so a
/// task whose output is its own base, or a cycle of tasks, never loops.
pub fn decide_cascade(
    update: &TagUpdate,
    dependents: &[Dependent],
    chain: &[String],
) -> Vec<Verdict> {
    let image = tagged(&update.image);
    // task -> (runtime use, last digest of the runtime entry, first known digest, enabled, type)
    struct Use<'a> {
        runtime: bool,
        runtime_digest: Option<&'a str>,
        any_digest: Option<&'a str>,
        enabled: bool,
        kind: BaseImageTriggerType,
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
        });
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
            if chain.contains(&task) {
                return Verdict::InCascade { task };
            }
            if !u.enabled {
                return Verdict::TriggerDisabled { task };
            }
            if u.kind == BaseImageTriggerType::Runtime && !u.runtime {
                return Verdict::BuildTimeOnly { task };
            }
            let last = u.runtime_digest.or(u.any_digest);
            if last == Some(update.digest.as_str()) {
                return Verdict::Unchanged {
                    task,
                    image: image.clone(),
                    digest: update.digest.clone(),
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

// ---------------------------------------------------------------------------
// Debounce
// ---------------------------------------------------------------------------

/// How a later item folds into an earlier one for the same key.
pub trait Settle {
    /// Fold `later` into `self` (both for the same key, inside one window).
    fn settle(&mut self, later: Self);
    /// Whether `other` describes the same change as `self` (a redelivery).
    fn same_change(&self, other: &Self) -> bool;
}

impl Settle for Verdict {
    /// A trigger wins over any other verdict. Two triggers of the same image
    /// keep the first old digest and take the newest digest; a trigger of
    /// another image replaces the earlier one (the run records the latest).
    fn settle(&mut self, later: Self) {
        match (&mut *self, later) {
            (
                Verdict::Trigger {
                    image, new_digest, ..
                },
                Verdict::Trigger {
                    image: later_image,
                    new_digest: later_new,
                    old_digest: later_old,
                    task,
                },
            ) => {
                if *image == later_image {
                    *new_digest = later_new;
                } else {
                    *self = Verdict::Trigger {
                        task,
                        image: later_image,
                        old_digest: later_old,
                        new_digest: later_new,
                    };
                }
            }
            (Verdict::Trigger { .. }, _) => {}
            (_, later) => *self = later,
        }
    }

    fn same_change(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Verdict::Trigger {
                    task: a,
                    image: ai,
                    new_digest: an,
                    ..
                },
                Verdict::Trigger {
                    task: b,
                    image: bi,
                    new_digest: bn,
                    ..
                },
            ) => a == b && ai == bi && an == bn,
            _ => self == other,
        }
    }
}

impl Settle for TagUpdate {
    /// The later update replaces the earlier one.
    fn settle(&mut self, later: Self) {
        *self = later;
    }

    fn same_change(&self, other: &Self) -> bool {
        self.image == other.image && self.digest == other.digest
    }
}

/// What [`Debouncer::offer`] did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Offer {
    /// First item for the key: a window opened.
    New,
    /// Folded into the item already waiting for the key ("debounced").
    Merged,
    /// The same change was released for this key shortly before (a
    /// redelivery): dropped.
    Duplicate,
}

#[derive(Debug, Clone)]
struct Waiting<T> {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    item: T,
}

/// Settle window: several items for one key (a task) within `window` of each
/// other collapse into one, released by [`Debouncer::due`].
///
/// A pure state machine driven by the caller's clock. The window slides: each
/// item extends the wait until `window` after the latest one, but never past
/// `max_wait` after the first (default 5 × `window`), so a steady stream of
/// pushes cannot postpone a rebuild for ever. After release, the same change
/// offered again within `memory` (default 10 minutes) is a
/// [`Offer::Duplicate`]: registries and EventBridge deliver at least once.
/// The memory lives in this process only; a durable store should also check
/// for an existing run with the same trigger.
#[derive(Debug, Clone)]
pub struct Debouncer<T> {
    window: Duration,
    max_wait: Duration,
    memory: Duration,
    waiting: BTreeMap<String, Waiting<T>>,
    released: BTreeMap<String, (DateTime<Utc>, T)>,
}

impl<T: Settle + Clone> Debouncer<T> {
    /// A debouncer with settle `window` (negative counts as zero), maximum
    /// wait 5 × `window` and a 10-minute redelivery memory.
    pub fn new(window: Duration) -> Self {
        let window = window.max(Duration::zero());
        Debouncer {
            window,
            max_wait: window * 5,
            memory: Duration::minutes(10),
            waiting: BTreeMap::new(),
            released: BTreeMap::new(),
        }
    }

    /// Sets the longest wait after a key's first item (at least the window).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait.max(self.window);
        self
    }

    /// Sets how long a released change is remembered for duplicate detection
    /// (zero turns it off).
    pub fn with_memory(mut self, memory: Duration) -> Self {
        self.memory = memory.max(Duration::zero());
        self
    }

    /// Offers an item for `key` at `now`.
    pub fn offer(&mut self, key: &str, now: DateTime<Utc>, item: T) -> Offer {
        if let Some(w) = self.waiting.get_mut(key) {
            w.item.settle(item);
            w.last = w.last.max(now);
            return Offer::Merged;
        }
        if let Some((at, prev)) = self.released.get(key) {
            if now - *at <= self.memory && prev.same_change(&item) {
                return Offer::Duplicate;
            }
        }
        self.waiting.insert(
            key.to_string(),
            Waiting {
                first: now,
                last: now,
                item,
            },
        );
        Offer::New
    }

    fn deadline(&self, w: &Waiting<T>) -> DateTime<Utc> {
        (w.last + self.window).min(w.first + self.max_wait)
    }

    /// Releases every key whose window has passed at `now`, in key order,
    /// and forgets released changes older than the memory.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<(String, T)> {
        let ready: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, w)| self.deadline(w) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(ready.len());
        for key in ready {
            if let Some(w) = self.waiting.remove(&key) {
                self.released.insert(key.clone(), (now, w.item.clone()));
                out.push((key, w.item));
            }
        }
        let memory = self.memory;
        self.released.retain(|_, (at, _)| now - *at <= memory);
        out
    }

    /// When the next key becomes due, if any is waiting (for the caller's
    /// sleep).
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.waiting.values().map(|w| self.deadline(w)).min()
    }

    /// Number of keys waiting.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether `key` has an item waiting.
    pub fn is_waiting(&self, key: &str) -> bool {
        self.waiting.contains_key(key)
    }
}

// ---------------------------------------------------------------------------
// Cascades
// ---------------------------------------------------------------------------

/// Task-to-task edges `(upstream, downstream)`: the upstream task pushes an
/// image (`outputs`: task, normalised tagged output reference) that the
/// downstream task uses as a base in a way its trigger reacts to (enabled,
/// and runtime base or type `All`). Self edges are kept out. Sorted, unique.
pub fn cascade_edges(
    outputs: &[(String, String)],
    dependents: &[Dependent],
) -> Vec<(String, String)> {
    let mut by_image: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for d in dependents {
        let reacts =
            d.trigger_enabled && (d.runtime || d.trigger_type == BaseImageTriggerType::All);
        if reacts {
            by_image
                .entry(tagged(&d.image))
                .or_default()
                .insert(&d.task);
        }
    }
    let mut edges = BTreeSet::new();
    for (task, image) in outputs {
        if let Some(downs) = by_image.get(&tagged(image)) {
            for down in downs {
                if *down != task {
                    edges.insert((task.clone(), (*down).to_string()));
                }
            }
        }
    }
    edges.into_iter().collect()
}

/// Which pending rebuilds may start now and which wait for an upstream one.
///
/// `pending` holds the tasks whose rebuild in this cascade is triggered but
/// not finished (waiting, queued or running); `edges` are `(upstream,
/// downstream)` task pairs (see [`cascade_edges`]). A pending task waits
/// while another pending task reaches it along the edges (directly or
/// through tasks that are not pending, since their rebuild will follow): in a
/// chain A -> B -> C only A is ready; in a diamond D waits for both B and C.
/// Self edges are ignored, so a task whose output is its own base is never
/// held back by itself. Tasks on a cycle cannot all wait for each other:
/// among pending tasks of one cycle the first by name is ready and the others
/// wait for it (use [`decide_cascade`] to stop the cycle from rebuilding
/// again). When a rebuild finishes or fails, remove it from `pending` and call
/// again. Both lists are in name order; tasks not in `pending` never appear.
pub fn schedule_cascade(
    pending: &BTreeSet<String>,
    edges: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    // Index every node.
    let mut names: Vec<&str> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for n in pending
        .iter()
        .map(String::as_str)
        .chain(edges.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]))
    {
        if !index.contains_key(n) {
            index.insert(n, names.len());
            names.push(n);
        }
    }
    let n = names.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (a, b) in edges {
        if a == b {
            continue;
        }
        if let (Some(&ia), Some(&ib)) = (index.get(a.as_str()), index.get(b.as_str())) {
            if let (Some(s), Some(p)) = (succ.get_mut(ia), pred.get_mut(ib)) {
                s.push(ib);
                p.push(ia);
            }
        }
    }
    let comp = strongly_connected(&succ, &pred);
    // comp[v] numbers components in topological order of the condensation
    // (sources first), so one pass in that order propagates "a pending task
    // is strictly upstream".
    let comps = comp.iter().copied().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); comps];
    for (v, &c) in comp.iter().enumerate() {
        if let Some(m) = members.get_mut(c) {
            m.push(v);
        }
    }
    let is_pending: Vec<bool> = names.iter().map(|nm| pending.contains(*nm)).collect();
    // upstream[c]: some pending task in a component strictly upstream of c.
    let mut upstream = vec![false; comps];
    // has_pending[c]: component c holds a pending task.
    let has_pending: Vec<bool> = members
        .iter()
        .map(|m| {
            m.iter()
                .any(|&v| is_pending.get(v).copied().unwrap_or(false))
        })
        .collect();
    for c in 0..comps {
        let flag = upstream.get(c).copied().unwrap_or(false)
            || has_pending.get(c).copied().unwrap_or(false);
        if !flag {
            continue;
        }
        for &v in members.get(c).map(Vec::as_slice).unwrap_or_default() {
            for &w in succ.get(v).map(Vec::as_slice).unwrap_or_default() {
                if let Some(&cw) = comp.get(w) {
                    if cw != c {
                        if let Some(u) = upstream.get_mut(cw) {
                            *u = true;
                        }
                    }
                }
            }
        }
    }
    let mut ready = Vec::new();
    let mut waiting = Vec::new();
    for task in pending {
        let Some(&v) = index.get(task.as_str()) else {
            continue;
        };
        let c = comp.get(v).copied().unwrap_or(0);
        let held_by_upstream = upstream.get(c).copied().unwrap_or(false);
        // On a cycle: the first pending member by name goes first.
        let first_in_cycle = members
            .get(c)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|&&w| is_pending.get(w).copied().unwrap_or(false))
            .filter_map(|&w| names.get(w).copied())
            .min();
        let held_in_cycle = first_in_cycle.is_some_and(|f| f != task.as_str());
        if held_by_upstream || held_in_cycle {
            waiting.push(task.clone());
        } else {
            ready.push(task.clone());
        }
    }
    (ready, waiting)
}

/// Strongly connected components (Kosaraju, iterative). Returns each node's
/// component number; components are numbered in topological order of the
/// condensation (a component's upstream components have smaller numbers).
fn strongly_connected(succ: &[Vec<usize>], pred: &[Vec<usize>]) -> Vec<usize> {
    let n = succ.len();
    // Pass 1: finish order on the graph.
    let mut visited = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if visited.get(start).copied().unwrap_or(true) {
            continue;
        }
        if let Some(v) = visited.get_mut(start) {
            *v = true;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(top) = stack.last_mut() {
            let (v, next) = *top;
            let edges = succ.get(v).map(Vec::as_slice).unwrap_or_default();
            if let Some(&w) = edges.get(next) {
                top.1 += 1;
                if let Some(seen) = visited.get_mut(w) {
                    if !*seen {
                        *seen = true;
                        stack.push((w, 0));
                    }
                }
            } else {
                order.push(v);
                stack.pop();
            }
        }
    }
    // Pass 2: on the reversed graph in reverse finish order; each tree is a
    // component, found sources-first.
    let mut comp = vec![usize::MAX; n];
    let mut next_comp = 0;
    for &start in order.iter().rev() {
        if comp.get(start).copied() != Some(usize::MAX) {
            continue;
        }
        let mut stack = vec![start];
        if let Some(c) = comp.get_mut(start) {
            *c = next_comp;
        }
        while let Some(v) = stack.pop() {
            for &w in pred.get(v).map(Vec::as_slice).unwrap_or_default() {
                if let Some(c) = comp.get_mut(w) {
                    if *c == usize::MAX {
                        *c = next_comp;
                        stack.push(w);
                    }
                }
            }
        }
        next_comp += 1;
    }
    comp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::request::Headers;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    type Want = std::result::Result<(), RegistryAuthError>;
    /// (name, headers, expected result)
    type AuthCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Want);
    /// (name, pending, edges, ready, waiting)
    type CascadeCase<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<(String, String)>,
        Vec<&'a str>,
        Vec<&'a str>,
    );

    fn pairs(h: &[(&str, &str)]) -> Vec<(String, String)> {
        h.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        signing::sign_sha256(&Secret::new(secret), body)
    }

    #[test]
    fn verify_registry_table() {
        let body = br#"{"events":[]}"#;
        let good_sig = sign("s3cret", body);
        let other_sig = sign("other", body);
        let not_hex = format!("sha256={}", "z".repeat(64));
        let tokens = secrets(&["tok-one", "tok-two"]);
        let hmac_secrets = secrets(&["", "s3cret"]);
        let malformed = |s: &str| Err(RegistryAuthError::Malformed(s.to_string()));
        let cases: Vec<AuthCase> = vec![
            ("first token", vec![("Authorization", "Bearer tok-one")], Ok(())),
            ("second token", vec![("Authorization", "Bearer tok-two")], Ok(())),
            ("scheme case", vec![("authorization", "bearer tok-two")], Ok(())),
            ("extra spaces", vec![("Authorization", "Bearer   tok-one  ")], Ok(())),
            (
                "wrong token",
                vec![("Authorization", "Bearer tok-three")],
                Err(RegistryAuthError::WrongToken),
            ),
            (
                "token prefix",
                vec![("Authorization", "Bearer tok-on")],
                Err(RegistryAuthError::WrongToken),
            ),
            ("missing", vec![], Err(RegistryAuthError::Missing)),
            ("empty header", vec![("Authorization", "  ")], Err(RegistryAuthError::Missing)),
            (
                "basic scheme",
                vec![("Authorization", "Basic dG9rLW9uZQ==")],
                malformed("authorization header uses the 'basic' scheme: expected 'Authorization: Bearer <token>'"),
            ),
            (
                "bare token, no scheme",
                vec![("Authorization", "tok-one")],
                malformed("authorization header is not of the form 'Bearer <token>'"),
            ),
            (
                "tab after scheme",
                vec![("Authorization", "Bearer\ttok-one")],
                Ok(()),
            ),
            (
                "bearer without token",
                vec![("Authorization", "Bearer")],
                malformed("authorization header has an empty bearer token"),
            ),
            ("hmac ok", vec![("X-Crtask-Signature", good_sig.as_str())], Ok(())),
            (
                "hmac other secret",
                vec![("x-crtask-signature", other_sig.as_str())],
                Err(RegistryAuthError::WrongSignature),
            ),
            (
                "hmac no prefix",
                vec![("X-Crtask-Signature", good_sig.trim_start_matches("sha256="))],
                malformed("malformed X-Crtask-Signature header: it does not start with 'sha256='; expected 'sha256=' followed by 64 hex digits"),
            ),
            (
                "hmac short",
                vec![("X-Crtask-Signature", "sha256=abcd")],
                malformed("malformed X-Crtask-Signature header: the digest has 4 characters; expected 'sha256=' followed by 64 hex digits"),
            ),
            (
                "hmac not hex",
                vec![("X-Crtask-Signature", not_hex.as_str())],
                malformed("malformed X-Crtask-Signature header: the digest is not hexadecimal; expected 'sha256=' followed by 64 hex digits"),
            ),
            (
                "bad hmac, good token",
                vec![("X-Crtask-Signature", other_sig.as_str()), ("Authorization", "Bearer tok-one")],
                Ok(()),
            ),
            (
                "good hmac, bad token",
                vec![("X-Crtask-Signature", good_sig.as_str()), ("Authorization", "Bearer nope")],
                Ok(()),
            ),
            (
                "both bad: signature reported",
                vec![("X-Crtask-Signature", other_sig.as_str()), ("Authorization", "Bearer nope")],
                Err(RegistryAuthError::WrongSignature),
            ),
        ];
        for (name, h, want) in cases {
            let p = pairs(&h);
            let got = verify_registry(&Headers::new(&p), body, &tokens, &hmac_secrets);
            assert_eq!(got, want, "{name}");
        }
        // The body is covered: one byte changed fails.
        let p = pairs(&[("X-Crtask-Signature", good_sig.as_str())]);
        assert_eq!(
            verify_registry(
                &Headers::new(&p),
                br#"{"events":[ ]}"#,
                &tokens,
                &hmac_secrets
            ),
            Err(RegistryAuthError::WrongSignature)
        );
        // Nothing configured, or only empty values.
        let p = pairs(&[("Authorization", "Bearer ")]);
        for (t, s) in [(vec![], vec![]), (secrets(&[""]), secrets(&[""]))] {
            assert_eq!(
                verify_registry(&Headers::new(&p), body, &t, &s),
                Err(RegistryAuthError::NotConfigured)
            );
        }
        // An empty configured token never matches an empty bearer.
        let p = pairs(&[("Authorization", "Bearer x")]);
        assert_eq!(
            verify_registry(&Headers::new(&p), body, &secrets(&[""]), &secrets(&["k"])),
            Err(RegistryAuthError::WrongToken)
        );
        // Only secrets configured: a token is wrong, a signature works.
        let p = pairs(&[("Authorization", "Bearer tok-one")]);
        assert_eq!(
            verify_registry(&Headers::new(&p), body, &[], &hmac_secrets),
            Err(RegistryAuthError::WrongToken)
        );
        assert!(RegistryAuthError::Missing.is_missing());
        assert!(!RegistryAuthError::WrongToken.is_missing());
        for e in [
            RegistryAuthError::NotConfigured,
            RegistryAuthError::Missing,
            RegistryAuthError::WrongToken,
            RegistryAuthError::WrongSignature,
        ] {
            let m = e.to_string();
            assert_eq!(
                m.chars().next().map(|c| c.is_lowercase()),
                Some(true),
                "{m}"
            );
        }
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
    fn sign_matches_github_vector() {
        // Same construction as GitHub's documented X-Hub-Signature-256 vector.
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn content_types() {
        for ok in [
            None,
            Some(""),
            Some("application/vnd.docker.distribution.events.v1+json"),
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/cloudevents+json"),
        ] {
            assert!(check_content_type(ok).is_ok(), "{ok:?}");
        }
        for bad in ["text/plain", "application/x-www-form-urlencoded", "json"] {
            let e = check_content_type(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("expected"), "{e}");
        }
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

    fn dep(
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
        }
    }

    fn update(image: &str, digest: &str) -> TagUpdate {
        TagUpdate {
            image: image.to_string(),
            digest: digest.to_string(),
            media_type: None,
            event_id: None,
        }
    }

    fn trig(task: &str, image: &str, old: Option<&str>, new: &str) -> Verdict {
        Verdict::Trigger {
            task: task.to_string(),
            image: image.to_string(),
            old_digest: old.map(str::to_string),
            new_digest: new.to_string(),
        }
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
    fn decide_cascade_stops_loops() {
        use BaseImageTriggerType::Runtime;
        let img = "r.io/self:latest";
        let deps = vec![
            dep("self", img, Some(D1), true, true, Runtime),
            dep("other", img, Some(D1), true, true, Runtime),
        ];
        let got = decide_cascade(&update(img, D2), &deps, &["self".to_string()]);
        assert_eq!(
            got,
            vec![
                trig("other", img, Some(D1), D2),
                Verdict::InCascade {
                    task: "self".to_string()
                }
            ]
        );
        assert_eq!(got[1].outcome(), "ignored");
        assert!(got[1]
            .to_string()
            .contains("already rebuilt in this cascade"));
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

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn debouncer_merges_arch_pushes_and_releases_after_window() {
        let mut d: Debouncer<Verdict> = Debouncer::new(Duration::seconds(5));
        let img = "r.io/base:1";
        // three per-architecture events and the index, 1 s apart
        assert_eq!(
            d.offer("app", at(0), trig("app", img, Some(D1), D2)),
            Offer::New
        );
        assert_eq!(
            d.offer("app", at(1), trig("app", img, Some(D1), D3)),
            Offer::Merged
        );
        assert_eq!(
            d.offer("web", at(1), trig("web", img, Some(D1), D2)),
            Offer::New
        );
        assert_eq!(
            d.offer("app", at(2), trig("app", img, Some(D1), D2)),
            Offer::Merged
        );
        assert_eq!(d.waiting_len(), 2);
        assert!(d.is_waiting("app"));
        assert_eq!(d.next_deadline(), Some(at(6)));
        assert!(d.due(at(5)).is_empty());
        // web's window (1 + 5) and app's (2 + 5) end in order
        assert_eq!(
            d.due(at(6)),
            vec![("web".to_string(), trig("web", img, Some(D1), D2))]
        );
        assert_eq!(
            d.due(at(7)),
            vec![("app".to_string(), trig("app", img, Some(D1), D2))]
        );
        assert_eq!(d.waiting_len(), 0);
        assert_eq!(d.next_deadline(), None);
        // a redelivery of the released change is a duplicate ...
        assert_eq!(
            d.offer("app", at(30), trig("app", img, Some(D1), D2)),
            Offer::Duplicate
        );
        // ... a new digest is not
        assert_eq!(
            d.offer("app", at(31), trig("app", img, Some(D2), D3)),
            Offer::New
        );
        assert_eq!(d.due(at(36)).len(), 1);
        // memory expires
        let mut d: Debouncer<Verdict> =
            Debouncer::new(Duration::seconds(5)).with_memory(Duration::seconds(60));
        d.offer("app", at(0), trig("app", img, Some(D1), D2));
        assert_eq!(d.due(at(5)).len(), 1);
        assert_eq!(
            d.offer("app", at(50), trig("app", img, Some(D1), D2)),
            Offer::Duplicate
        );
        assert_eq!(d.due(at(200)).len(), 0);
        assert_eq!(
            d.offer("app", at(200), trig("app", img, Some(D1), D2)),
            Offer::New
        );
    }

    #[test]
    fn debouncer_max_wait_and_settle_rules() {
        let img = "r.io/base:1";
        let mut d: Debouncer<Verdict> =
            Debouncer::new(Duration::seconds(2)).with_max_wait(Duration::seconds(5));
        d.offer("app", at(0), trig("app", img, Some(D1), D2));
        for s in 1..=6 {
            // a push every second keeps extending the window, up to max wait
            let released = d.due(at(s));
            if s < 5 {
                assert!(released.is_empty(), "at {s}");
                assert_eq!(
                    d.offer("app", at(s), trig("app", img, Some(D1), D2)),
                    Offer::Merged
                );
            } else if s == 5 {
                assert_eq!(released.len(), 1);
            }
        }
        // zero window releases at once
        let mut d: Debouncer<TagUpdate> = Debouncer::new(Duration::zero());
        d.offer("k", at(0), update(img, D1));
        assert_eq!(d.due(at(0)), vec![("k".to_string(), update(img, D1))]);
        // settle: trigger beats others; another image replaces
        let mut v = Verdict::TriggerDisabled { task: "a".into() };
        v.settle(trig("a", img, Some(D1), D2));
        assert_eq!(v, trig("a", img, Some(D1), D2));
        v.settle(Verdict::Unchanged {
            task: "a".into(),
            image: img.into(),
            digest: D2.into(),
        });
        assert_eq!(v, trig("a", img, Some(D1), D2));
        v.settle(trig("a", img, Some(D2), D3));
        assert_eq!(v, trig("a", img, Some(D1), D3));
        v.settle(trig("a", "r.io/golang:1", Some(D2), D1));
        assert_eq!(v, trig("a", "r.io/golang:1", Some(D2), D1));
        let mut u = update(img, D1);
        u.settle(update(img, D2));
        assert_eq!(u, update(img, D2));
        assert!(u.same_change(&update(img, D2)));
        assert!(!u.same_change(&update(img, D1)));
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn edges(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn schedule_cascade_table() {
        let chain = edges(&[("a", "b"), ("b", "c")]);
        let diamond = edges(&[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]);
        let cases: Vec<CascadeCase> = vec![
            (
                "chain: a first",
                vec!["a", "b", "c"],
                chain.clone(),
                vec!["a"],
                vec!["b", "c"],
            ),
            (
                "chain: after a",
                vec!["b", "c"],
                chain.clone(),
                vec!["b"],
                vec!["c"],
            ),
            (
                "chain: through a non-pending task",
                vec!["a", "c"],
                chain.clone(),
                vec!["a"],
                vec!["c"],
            ),
            ("chain: last", vec!["c"], chain.clone(), vec!["c"], vec![]),
            (
                "diamond: b and c first",
                vec!["b", "c", "d"],
                diamond.clone(),
                vec!["b", "c"],
                vec!["d"],
            ),
            (
                "diamond: d waits for c",
                vec!["c", "d"],
                diamond.clone(),
                vec!["c"],
                vec!["d"],
            ),
            (
                "diamond: d after both",
                vec!["d"],
                diamond.clone(),
                vec!["d"],
                vec![],
            ),
            (
                "diamond: from the top",
                vec!["a", "b", "c", "d"],
                diamond.clone(),
                vec!["a"],
                vec!["b", "c", "d"],
            ),
            (
                "self loop",
                vec!["s"],
                edges(&[("s", "s")]),
                vec!["s"],
                vec![],
            ),
            (
                "self loop in a chain",
                vec!["s", "t"],
                edges(&[("s", "s"), ("s", "t")]),
                vec!["s"],
                vec!["t"],
            ),
            ("no edges", vec!["x", "y"], vec![], vec!["x", "y"], vec![]),
            (
                "downstream only is not held",
                vec!["b"],
                edges(&[("b", "c")]),
                vec!["b"],
                vec![],
            ),
            (
                "cycle: first by name goes",
                vec!["p", "q"],
                edges(&[("p", "q"), ("q", "p")]),
                vec!["p"],
                vec!["q"],
            ),
            (
                "cycle fed from upstream",
                vec!["a", "p", "q"],
                edges(&[("a", "p"), ("p", "q"), ("q", "p")]),
                vec!["a"],
                vec!["p", "q"],
            ),
            (
                "below a cycle",
                vec!["q", "z"],
                edges(&[("p", "q"), ("q", "p"), ("q", "z")]),
                vec!["q"],
                vec!["z"],
            ),
            ("empty", vec![], chain.clone(), vec![], vec![]),
        ];
        for (name, pending, e, ready, waiting) in cases {
            let (r, w) = schedule_cascade(&set(&pending), &e);
            assert_eq!(r, ready, "{name}: ready");
            assert_eq!(w, waiting, "{name}: waiting");
        }
    }

    #[test]
    fn schedule_cascade_long_chain_is_linear_and_iterative() {
        // 20,000 tasks in one chain: no recursion, no quadratic blow-up.
        let n = 20_000;
        let names: Vec<String> = (0..n).map(|i| format!("t{i:05}")).collect();
        let e: Vec<(String, String)> = names
            .windows(2)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect();
        let pending: BTreeSet<String> = names.iter().cloned().collect();
        let (r, w) = schedule_cascade(&pending, &e);
        assert_eq!(r, vec!["t00000".to_string()]);
        assert_eq!(w.len(), n - 1);
    }

    #[test]
    fn cascade_edges_from_outputs() {
        use BaseImageTriggerType::{All, Runtime};
        let deps = vec![
            dep("b", "r.io/a:latest", Some(D1), true, true, Runtime),
            dep("c", "r.io/a:latest", Some(D1), false, true, All),
            dep("x", "r.io/a:latest", Some(D1), false, true, Runtime),
            dep("y", "r.io/a:latest", Some(D1), true, false, All),
            dep("a", "r.io/a:latest", Some(D1), true, true, Runtime),
            dep("d", "r.io/b:1", Some(D1), true, true, Runtime),
        ];
        let outputs = vec![
            ("a".to_string(), "r.io/a".to_string()),
            ("b".to_string(), "r.io/b:1".to_string()),
        ];
        assert_eq!(
            cascade_edges(&outputs, &deps),
            edges(&[("a", "b"), ("a", "c"), ("b", "d")])
        );
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
