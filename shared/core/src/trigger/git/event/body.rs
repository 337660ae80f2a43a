//! The delivery's body as JSON: plain, or form-encoded in a `payload=`
//! field (GitHub's `application/x-www-form-urlencoded` deliveries).

use serde_json::Value;

use crate::error::{Error, Result};

/// Turns the raw body into a JSON object, undoing form encoding.
pub(super) fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("payload is empty"));
    }
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    let is_form = match mime.as_deref() {
        Some("application/x-www-form-urlencoded") => true,
        Some(m) if m.contains("json") => false,
        _ => body.starts_with(b"payload="),
    };
    let value: Value = if is_form {
        let json = form_field(body, "payload")
            .ok_or_else(|| Error::invalid("form-encoded payload has no 'payload' field"))?;
        if json.bytes().all(|b| b.is_ascii_whitespace()) {
            return Err(Error::invalid("form-encoded 'payload' field is empty"));
        }
        serde_json::from_str(&json).map_err(|e| {
            Error::invalid(format!(
                "form-encoded 'payload' field is not valid json: {e}"
            ))
        })?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| Error::invalid(format!("payload is not valid json: {e}")))?
    };
    if !value.is_object() {
        return Err(Error::invalid("payload must be a json object"));
    }
    Ok(value)
}

/// The decoded value of the first `name` field of an
/// `application/x-www-form-urlencoded` body (`+` is a space; a `%` not
/// followed by two hex digits stays as it is, as browsers do).
pub(super) fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
