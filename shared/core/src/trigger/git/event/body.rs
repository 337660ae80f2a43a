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
        let json = form_field(body, "payload")?
            .ok_or_else(|| Error::invalid("form-encoded payload has no 'payload' field"))?;
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid("form-encoded 'payload' field is empty"));
        }
        serde_json::from_slice(&json).map_err(|e| {
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
/// `application/x-www-form-urlencoded` body.
pub(super) fn form_field(body: &[u8], name: &str) -> Result<Option<Vec<u8>>> {
    for pair in body.split(|&b| b == b'&') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if url_decode(k)? == name.as_bytes() {
            return url_decode(v).map(Some);
        }
    }
    Ok(None)
}

/// Percent-decoding with `+` as space; a `%` not followed by two hex digits
/// is an error.
pub(super) fn url_decode(s: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = s.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = s.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        return Err(Error::invalid(format!(
                            "form-encoded payload has a bad percent escape at byte {i}"
                        )))
                    }
                }
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}
