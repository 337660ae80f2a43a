//! Container image references, parsed and normalised the way Docker does.
//!
//! Grammar (from the distribution project's reference package):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ host [ ":" port ] "/" ] path-component ( "/" path-component )*
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" hex
//! ```
//!
//! Normalisation: no registry host -> `docker.io`; a single-component Docker
//! Hub name -> `library/<name>`; no tag and no digest -> tag `latest`. A first
//! component is a registry host when it contains `.` or `:` or is
//! `localhost`. Unlike ACR, `localhost:5000/x` is a local registry, not a
//! Docker Hub user.

use std::fmt;

use crate::{Error, Result};

/// The registry host of Docker Hub after normalisation.
pub const DOCKER_HUB: &str = "docker.io";

/// Longest accepted name (registry and repository as written), as in Docker.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Longest accepted tag.
const TAG_MAX: usize = 128;

/// Host names that mean Docker Hub and are normalised to [`DOCKER_HUB`].
const DOCKER_HUB_ALIASES: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// A normalised image reference: `registry/repository[:tag][@digest]`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ImageRef {
    /// Lower-case registry host, with port if any (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/alpine`, `team/app`).
    pub repository: String,
    /// Tag; `latest` when the reference had neither tag nor digest.
    pub tag: Option<String>,
    /// Content digest (`sha256:<hex>`), when pinned.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parse and normalise a reference as Docker does.
    ///
    /// No registry host -> `docker.io`; a single-component Docker Hub name ->
    /// `library/<name>`; no tag and no digest -> tag `latest`. Errors name the
    /// bad reference and say why.
    pub fn parse(s: &str) -> Result<ImageRef> {
        parse_inner(s, None)
    }

    /// Like [`ImageRef::parse`], but a reference without a registry host gets
    /// `default_registry` instead of `docker.io` (and no `library/` prefix,
    /// unless the default is Docker Hub itself).
    ///
    /// `default_registry` is a registry host, optionally with a port and a
    /// namespace path (`myreg.example.com`, `localhost:5000/team`).
    pub fn parse_with_default_registry(s: &str, default_registry: &str) -> Result<ImageRef> {
        let default = parse_default_registry(default_registry)?;
        parse_inner(s, Some(&default))
    }

    /// Normalised full string: `registry/repository[:tag][@digest]`.
    pub fn full(&self) -> String {
        let mut out = format!("{}/{}", self.registry, self.repository);
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// `registry/repository:tag` without the digest (the "tracked
    /// reference"); tag `latest` when there is none.
    pub fn tagged(&self) -> String {
        format!(
            "{}/{}:{}",
            self.registry,
            self.repository,
            self.tag.as_deref().unwrap_or("latest")
        )
    }

    /// Whether the image lives on Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ImageRef::parse(s)
    }
}

/// Whether the first component of a reference names a registry host: it
/// contains `.` or `:`, or it is `localhost`.
pub fn is_registry_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

/// Whether an image reference names its registry (`host/name...`), rather
/// than leaving it to the `docker.io` default (`app:1`, `team/app`).
pub fn names_registry(reference: &str) -> bool {
    reference
        .split_once('/')
        .is_some_and(|(first, _)| is_registry_host(first))
}

/// Whether `s` is a content digest this crate accepts: `sha256:<64 hex>`,
/// `sha384:<96 hex>` or `sha512:<128 hex>`, hex in lower case.
pub fn is_digest(s: &str) -> bool {
    digest_problem(s).is_none()
}

/// A parsed default registry: host plus optional namespace path.
struct DefaultRegistry {
    host: String,
    namespace: Option<String>,
}

fn parse_default_registry(default_registry: &str) -> Result<DefaultRegistry> {
    let trimmed = default_registry.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(Error::invalid("default registry is empty"));
    }
    let (host, namespace) = match trimmed.split_once('/') {
        Some((h, ns)) => (h, Some(ns)),
        None => (trimmed, None),
    };
    if !is_registry_host(host) && !host.eq_ignore_ascii_case("localhost") {
        return Err(Error::invalid(format!(
            "default registry '{default_registry}' is not a registry host \
             (it needs a '.' or ':' or to be 'localhost', e.g. myregistry.example.com)"
        )));
    }
    let host = normalise_host(host).map_err(|why| {
        Error::invalid(format!(
            "invalid default registry '{default_registry}': {why}"
        ))
    })?;
    if let Some(ns) = namespace {
        check_path(ns).map_err(|why| {
            Error::invalid(format!(
                "invalid default registry '{default_registry}': {why}"
            ))
        })?;
    }
    Ok(DefaultRegistry {
        host,
        namespace: namespace.map(str::to_string),
    })
}

fn parse_inner(s: &str, default: Option<&DefaultRegistry>) -> Result<ImageRef> {
    let bad = |why: String| Error::invalid(format!("invalid image reference '{s}': {why}"));
    if s.is_empty() {
        return Err(Error::invalid("image reference is empty"));
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!("contains the character {c:?}")));
    }

    // name[:tag][@digest]
    let (name_tag, digest) = match s.split_once('@') {
        Some((nt, d)) => {
            if let Some(why) = digest_problem(d) {
                return Err(bad(why));
            }
            (nt, Some(d.to_string()))
        }
        None => (s, None),
    };
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            let tag = name_tag.get(colon + 1..).unwrap_or_default();
            if let Some(why) = tag_problem(tag) {
                return Err(bad(why));
            }
            (
                name_tag.get(..colon).unwrap_or_default(),
                Some(tag.to_string()),
            )
        }
        _ => (name_tag, None),
    };
    if name.is_empty() {
        return Err(bad("the repository name is empty".to_string()));
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(bad(format!(
            "the repository name is {} characters long, the limit is {NAME_TOTAL_LENGTH_MAX}",
            name.len()
        )));
    }

    // [host/]path
    let (host, path) = match name.split_once('/') {
        Some((first, rest)) if is_registry_host(first) => (Some(first), rest),
        _ => (None, name),
    };
    check_path(path).map_err(bad)?;
    let (registry, mut repository) = match (host, default) {
        (Some(h), _) => (normalise_host(h).map_err(bad)?, path.to_string()),
        (None, Some(d)) => {
            let repo = match &d.namespace {
                Some(ns) => format!("{ns}/{path}"),
                None => path.to_string(),
            };
            (d.host.clone(), repo)
        }
        (None, None) => (DOCKER_HUB.to_string(), path.to_string()),
    };
    if registry == DOCKER_HUB && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    let tag = if tag.is_none() && digest.is_none() {
        Some("latest".to_string())
    } else {
        tag
    };
    Ok(ImageRef {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Validate a registry host (`name[:port]` or `[ipv6][:port]`) and return it
/// lower-cased, with Docker Hub aliases mapped to `docker.io`.
fn normalise_host(host: &str) -> std::result::Result<String, String> {
    let lower = host.to_ascii_lowercase();
    let (name, port) = if let Some(rest) = lower.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!("registry host '{host}' has an unclosed '['"));
        };
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!(
                "registry host '{host}' is not a valid ipv6 address"
            ));
        }
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(format!("registry host '{host}' has junk after ']'")),
            },
        };
        (None, port)
    } else {
        match lower.split_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(lower.as_str()), None),
        }
    };
    if let Some(name) = name {
        if name.is_empty() {
            return Err(format!("registry host '{host}' has an empty name"));
        }
        for label in name.split('.') {
            let ok = !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!(
                    "registry host '{host}' is not a valid host name \
                     (labels are letters, digits and inner '-', separated by '.')"
                ));
            }
        }
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.len() <= 5
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !ok {
            return Err(format!(
                "registry port '{port}' in '{host}' is not a number from 1 to 65535"
            ));
        }
    }
    if DOCKER_HUB_ALIASES.contains(&lower.as_str()) {
        return Ok(DOCKER_HUB.to_string());
    }
    Ok(lower)
}

/// Check a repository path: `/`-separated components of lower-case letters
/// and digits joined by `.`, `_`, `__` or runs of `-`.
fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("the repository name is empty".to_string());
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "repository name '{path}' must be lower-case (try '{}')",
            path.to_ascii_lowercase()
        ));
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(format!(
                "repository name '{path}' has an empty path component (a leading, \
                 trailing or doubled '/')"
            ));
        }
        if !is_path_component(component) {
            return Err(format!(
                "repository name component '{component}' is invalid: use lower-case \
                 letters and digits, separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn is_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    // Must start with an alphanumeric run.
    if !bytes.first().copied().is_some_and(alnum) {
        return false;
    }
    while i < bytes.len() {
        let Some(&b) = bytes.get(i) else { break };
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or one or more '-'.
        let start = i;
        match b {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        // A separator must be followed by an alphanumeric.
        if i == start || !bytes.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

/// Why `tag` is not a valid tag, or `None` when it is.
fn tag_problem(tag: &str) -> Option<String> {
    if tag.is_empty() {
        return Some("the tag after ':' is empty".to_string());
    }
    if tag.len() > TAG_MAX {
        return Some(format!(
            "tag is {} characters long, the limit is {TAG_MAX}",
            tag.len()
        ));
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(word);
    if !first_ok || !chars.all(|c| word(c) || c == '.' || c == '-') {
        return Some(format!(
            "tag '{tag}' is invalid: use letters, digits, '_', '.' and '-', \
             not starting with '.' or '-'"
        ));
    }
    None
}

/// Why `d` is not an accepted digest, or `None` when it is.
fn digest_problem(d: &str) -> Option<String> {
    let Some((algo, hex)) = d.split_once(':') else {
        return Some(format!(
            "digest '{d}' is invalid: expected <algorithm>:<hex>, e.g. sha256:<64 hex characters>"
        ));
    };
    let want = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Some(format!(
                "digest '{d}' uses unsupported algorithm '{algo}' (use sha256, sha384 or sha512)"
            ))
        }
    };
    if hex.len() != want
        || !hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Some(format!(
            "digest '{d}' is invalid: {algo} needs exactly {want} lower-case hex characters"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_its_registry_only_with_a_host_first() {
        for named in [
            "localhost/app",
            "localhost:5000/a/b:1",
            "r.example.com/app",
            "127.0.0.1:5000/app",
        ] {
            assert!(names_registry(named), "{named}");
        }
        for bare in ["app", "app:1", "team/app", "team/app:1", "library/alpine"] {
            assert!(!names_registry(bare), "{bare}");
        }
    }

    const H64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn r(registry: &str, repository: &str, tag: Option<&str>, digest: Option<&str>) -> ImageRef {
        ImageRef {
            registry: registry.into(),
            repository: repository.into(),
            tag: tag.map(Into::into),
            digest: digest.map(Into::into),
        }
    }

    #[test]
    fn parse_normalises() {
        let d = format!("sha256:{H64}");
        let cases: Vec<(String, ImageRef)> = vec![
            (
                "alpine".into(),
                r("docker.io", "library/alpine", Some("latest"), None),
            ),
            (
                "alpine:3.19".into(),
                r("docker.io", "library/alpine", Some("3.19"), None),
            ),
            (
                "library/alpine".into(),
                r("docker.io", "library/alpine", Some("latest"), None),
            ),
            (
                "user/app:v1".into(),
                r("docker.io", "user/app", Some("v1"), None),
            ),
            (
                "docker.io/alpine".into(),
                r("docker.io", "library/alpine", Some("latest"), None),
            ),
            (
                "index.docker.io/alpine".into(),
                r("docker.io", "library/alpine", Some("latest"), None),
            ),
            (
                "registry-1.docker.io/user/x".into(),
                r("docker.io", "user/x", Some("latest"), None),
            ),
            (
                "localhost/app".into(),
                r("localhost", "app", Some("latest"), None),
            ),
            (
                "localhost:5000/app".into(),
                r("localhost:5000", "app", Some("latest"), None),
            ),
            (
                "localhost:5000/x:1".into(),
                r("localhost:5000", "x", Some("1"), None),
            ),
            (
                "127.0.0.1:5000/a/b:t".into(),
                r("127.0.0.1:5000", "a/b", Some("t"), None),
            ),
            (
                "[::1]:5000/a".into(),
                r("[::1]:5000", "a", Some("latest"), None),
            ),
            (
                "MyReg.Example.COM/team/app".into(),
                r("myreg.example.com", "team/app", Some("latest"), None),
            ),
            (
                "mcr.microsoft.com/dotnet/sdk:8.0".into(),
                r("mcr.microsoft.com", "dotnet/sdk", Some("8.0"), None),
            ),
            (
                "host:443/a/b/c".into(),
                r("host:443", "a/b/c", Some("latest"), None),
            ),
            (
                format!("alpine@{d}"),
                r("docker.io", "library/alpine", None, Some(&d)),
            ),
            (
                format!("alpine:3@{d}"),
                r("docker.io", "library/alpine", Some("3"), Some(&d)),
            ),
            (format!("my.reg/x@{d}"), r("my.reg", "x", None, Some(&d))),
            (
                "a_b__c-d---e.f:T_1.x-y".into(),
                r("docker.io", "library/a_b__c-d---e.f", Some("T_1.x-y"), None),
            ),
            ("a:_x".into(), r("docker.io", "library/a", Some("_x"), None)),
            // dots are separators inside a component, so no '/' means no host
            (
                "my.reg".into(),
                r("docker.io", "library/my.reg", Some("latest"), None),
            ),
            // no '/' means "localhost:5000" is name:tag, as in Docker
            (
                "localhost:5000".into(),
                r("docker.io", "library/localhost", Some("5000"), None),
            ),
            // a first component without '.' or ':' is a Docker Hub user
            (
                "myuser/app".into(),
                r("docker.io", "myuser/app", Some("latest"), None),
            ),
        ];
        for (input, want) in cases {
            let got = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            // full() round-trips
            let again = ImageRef::parse(&got.full()).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(again, got, "round trip of {input}");
            assert_eq!(got.to_string(), got.full());
        }
    }

    #[test]
    fn parse_errors_name_input_and_reason() {
        let long = format!("a/{}", "b".repeat(300));
        let long_tag = format!("a:{}", "t".repeat(129));
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty"),
            ("Alpine".into(), "must be lower-case"),
            ("docker.io/Library/alpine".into(), "must be lower-case"),
            ("alpine:".into(), "tag after ':' is empty"),
            ("alpine:-x".into(), "tag '-x' is invalid"),
            ("alpine:a/b".into(), "invalid"),
            (long_tag, "limit is 128"),
            ("alpine@sha256:abc".into(), "64 lower-case hex"),
            (
                format!("alpine@sha256:{}", H64.to_uppercase()),
                "lower-case hex",
            ),
            (format!("alpine@md5:{H64}"), "unsupported algorithm 'md5'"),
            ("alpine@".into(), "expected <algorithm>:<hex>"),
            ("a//b".into(), "empty path component"),
            ("a/".into(), "empty path component"),
            ("/a".into(), "empty path component"),
            ("a b".into(), "contains the character ' '"),
            ("a..b".into(), "component 'a..b' is invalid"),
            ("a-".into(), "component 'a-' is invalid"),
            ("a___b".into(), "component 'a___b' is invalid"),
            (".a".into(), "component '.a' is invalid"),
            ("my.reg:99999/x".into(), "not a number from 1 to 65535"),
            ("my.reg:/x".into(), "not a number"),
            ("my.reg:ab/x".into(), "not a number"),
            ("-bad.host/x".into(), "not a valid host name"),
            ("bad..host/x".into(), "not a valid host name"),
            ("[::1/x".into(), "invalid"),
            ("_a".into(), "component '_a' is invalid"),
            (long, "limit is 255"),
            (":tag".into(), "empty"),
            ("my.reg/".into(), "empty"),
        ];
        for (input, want) in cases {
            match ImageRef::parse(&input) {
                Ok(got) => panic!("{input:?} parsed as {got:?}, want error containing {want:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(want), "{input:?}: {msg:?} lacks {want:?}");
                    if !input.is_empty() && input.len() < 100 {
                        assert!(msg.contains(&input), "{input:?}: {msg:?} does not name it");
                    }
                }
            }
        }
    }

    #[test]
    fn default_registry_variant() {
        let cases = [
            ("app:v1", "myreg.azurecr.io", "myreg.azurecr.io/app:v1"),
            (
                "team/app",
                "myreg.azurecr.io",
                "myreg.azurecr.io/team/app:latest",
            ),
            ("app", "localhost:5000", "localhost:5000/app:latest"),
            ("app", "localhost", "localhost/app:latest"),
            ("app", "localhost:5000/ns/", "localhost:5000/ns/app:latest"),
            ("app", "MyReg.IO", "myreg.io/app:latest"),
            ("other.io/app:1", "myreg.io", "other.io/app:1"),
            (
                "localhost:5000/app",
                "myreg.io",
                "localhost:5000/app:latest",
            ),
            ("app", "docker.io", "docker.io/library/app:latest"),
        ];
        for (input, default, want) in cases {
            let got = ImageRef::parse_with_default_registry(input, default)
                .unwrap_or_else(|e| panic!("{input} with {default}: {e}"));
            assert_eq!(got.full(), want, "{input} with {default}");
        }
        let errors = [
            ("app", "", "default registry is empty"),
            ("app", "myreg", "'myreg' is not a registry host"),
            ("app", "my_reg.io", "invalid default registry 'my_reg.io'"),
            ("app", "my.io/NS", "must be lower-case"),
            ("App", "my.io", "'App'"),
        ];
        for (input, default, want) in errors {
            let err = ImageRef::parse_with_default_registry(input, default)
                .expect_err(&format!("{input} with {default} should fail"));
            assert!(err.to_string().contains(want), "{input} {default}: {err}");
        }
    }

    #[test]
    fn tagged_and_hub() {
        let d = format!("sha256:{H64}");
        let a = ImageRef::parse(&format!("alpine@{d}")).unwrap();
        assert_eq!(a.tagged(), "docker.io/library/alpine:latest");
        assert_eq!(a.full(), format!("docker.io/library/alpine@{d}"));
        assert!(a.is_docker_hub());
        let b = ImageRef::parse(&format!("my.io/x:2@{d}")).unwrap();
        assert_eq!(b.tagged(), "my.io/x:2");
        assert!(!b.is_docker_hub());
        let json = serde_json::to_string(&b).unwrap();
        let back: ImageRef = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        assert_eq!(
            "alpine".parse::<ImageRef>().unwrap().tagged(),
            "docker.io/library/alpine:latest"
        );
    }

    #[test]
    fn host_and_digest_predicates() {
        for (c, want) in [
            ("localhost", true),
            ("localhost:5000", true),
            ("my.reg", true),
            ("host:1", true),
            ("user", false),
            ("library", false),
            ("", false),
        ] {
            assert_eq!(is_registry_host(c), want, "{c}");
        }
        let h128 = format!("{H64}{H64}");
        for (d, want) in [
            (format!("sha256:{H64}"), true),
            (format!("sha512:{h128}"), true),
            (format!("sha384:{}", &h128[..96]), true),
            (format!("sha512:{H64}"), false),
            (format!("sha256:{}", &H64[1..]), false),
            (format!("sha256:{}", H64.replace('a', "A")), false),
            (format!("sha256:{}", H64.replace('a', "g")), false),
            (format!("md5:{H64}"), false),
            (H64.to_string(), false),
            (String::new(), false),
        ] {
            assert_eq!(is_digest(&d), want, "{d}");
        }
    }
}
