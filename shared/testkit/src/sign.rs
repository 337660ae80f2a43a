//! Reference signers for webhook deliveries: what GitHub, Gitea, Forgejo,
//! Bitbucket, GitLab and a registry sender put in their headers.
//!
//! Written from the providers' documentation, independently of
//! crtask-core (HMAC-SHA256 is spelled out here from RFC 2104 over a plain
//! SHA-256), so a test that signs with this module checks core's
//! verification against a second implementation, not against itself.

use sha2::{Digest, Sha256};

/// GitHub's signature header (`sha256=<hex>`).
pub const GITHUB_HEADER: &str = "X-Hub-Signature-256";
/// crtask's registry notification signature header (`sha256=<hex>`).
pub const REGISTRY_HEADER: &str = "X-Crtask-Signature";

/// HMAC-SHA256 (RFC 2104): `H((K ^ opad) || H((K ^ ipad) || message))`,
/// the key hashed first when longer than the 64-byte block.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Lower-case hex of [`hmac_sha256`].
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), body))
}

/// The value of GitHub's [`GITHUB_HEADER`]: `sha256=<hex hmac>`.
pub fn github(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, body))
}

/// The value of Gitea's `X-Gitea-Signature` (and Forgejo's
/// `X-Forgejo-Signature`): the bare hex HMAC.
pub fn gitea(secret: &str, body: &[u8]) -> String {
    hmac_hex(secret, body)
}

/// The value of Bitbucket's `X-Hub-Signature`: `sha256=<hex hmac>`.
pub fn bitbucket(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, body))
}

/// GitLab sends its secret token as is: the `X-Gitlab-Token` pair.
pub fn gitlab(token: &str) -> (String, String) {
    ("X-Gitlab-Token".to_string(), token.to_string())
}

/// The value of [`REGISTRY_HEADER`] on a registry notification:
/// `sha256=<hex hmac>`.
pub fn registry(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, body))
}

/// The headers of a GitHub delivery of `event` (`push`, `ping`, ...) with
/// id `delivery`, signed with `secret`.
pub fn github_headers(
    event: &str,
    delivery: &str,
    secret: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-GitHub-Event".into(), event.into()),
        ("X-GitHub-Delivery".into(), delivery.into()),
        (GITHUB_HEADER.into(), github(secret, body)),
        ("User-Agent".into(), "GitHub-Hookshot/7e5a3b1".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_vectors() {
        // Test cases 1, 2 and 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_hex("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn githubs_documented_example() {
        // docs.github.com, "Validating webhook deliveries".
        assert_eq!(
            github("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert_eq!(
            gitea("It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
