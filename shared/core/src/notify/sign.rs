//! The headers of a signed notification: the inbound webhooks' scheme
//! ([`crate::signing`]) turned around.

use crate::notify::Phase;
use crate::signing::{sign_sha256, Secret};

/// `sha256=<hex HMAC-SHA256 of the body>` under the notification secret.
pub const SIGNATURE_HEADER: &str = "X-Crtask-Signature";
/// `run.started` or `run.finished`.
pub const EVENT_HEADER: &str = "X-Crtask-Event";
/// The delivery's id: the same on every retry of one notification, so a
/// receiver can drop a repeat.
pub const DELIVERY_HEADER: &str = "X-Crtask-Delivery";
/// Which attempt this is (1, 2, ...).
pub const ATTEMPT_HEADER: &str = "X-Crtask-Attempt";

/// The headers of one delivery attempt of `body` (besides
/// `Content-Type: application/json`).
pub fn headers(
    secret: &Secret,
    body: &[u8],
    phase: Phase,
    delivery: &str,
    attempt: u32,
) -> Vec<(&'static str, String)> {
    vec![
        (SIGNATURE_HEADER, sign_sha256(secret, body)),
        (EVENT_HEADER, phase.as_str().to_string()),
        (DELIVERY_HEADER, delivery.to_string()),
        (ATTEMPT_HEADER, attempt.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{check_signature, SHA256_PREFIX};

    #[test]
    fn a_receiver_verifies_with_the_inbound_check() {
        let secret = Secret::new("It's a Secret to Everybody");
        let h = headers(&secret, b"Hello, World!", Phase::Finished, "n7", 2);
        let get = |k: &str| h.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        // GitHub's documented vector: the same scheme as X-Hub-Signature-256.
        assert_eq!(
            get(SIGNATURE_HEADER),
            Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        );
        let sig = get(SIGNATURE_HEADER).unwrap();
        assert!(check_signature(sig, Some(SHA256_PREFIX), b"Hello, World!", &[&secret]).is_ok());
        assert!(check_signature(sig, Some(SHA256_PREFIX), b"Hello, World?", &[&secret]).is_err());
        assert_eq!(get(EVENT_HEADER), Some("run.finished"));
        assert_eq!(get(DELIVERY_HEADER), Some("n7"));
        assert_eq!(get(ATTEMPT_HEADER), Some("2"));
    }
}
