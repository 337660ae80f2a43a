//! Registry notifications captured from a real `docker-registry` (and ECR
//! events shaped as documented) parse, authenticate and decide as intended.
//! See tests/fixtures/registry/README.md for where each fixture comes from.

use std::path::PathBuf;

use crtask_core::domain::model::BaseImageTriggerType;
use crtask_core::signing::Secret;
use crtask_core::trigger::registry::decide::{decide, Dependent, Verdict};
use crtask_core::trigger::registry::event::{
    parse_distribution, parse_ecr, parse_registry_event, TagUpdate, MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use crtask_core::trigger::registry::verify::{verify_registry, RegistryAuthError};
use crtask_core::trigger::request::Headers;
use crtask_testkit::sign;

const BASE_V1: &str = "sha256:c7a633f6ae84b63c850122a66de283302a9a427dcc18404684207aa59b643d06";
const BASE_V2: &str = "sha256:dfe8f2d865b90b3927483bb2cdf352e5a556a1206396280d718309349a59dcb6";
const ECR_DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12341234";

/// (file, updates as (image, digest), substrings of the ignore reasons in order)
type DistCase = (&'static str, Vec<(String, &'static str)>, Vec<&'static str>);
/// (file, updates as (image, digest), substring of the one ignore reason or "")
type EcrCase = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);
/// (name, headers, expected result)
type AuthCase = (
    &'static str,
    Vec<(String, String)>,
    Result<(), RegistryAuthError>,
);

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/registry")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn images(updates: &[TagUpdate]) -> Vec<(&str, &str)> {
    updates
        .iter()
        .map(|u| (u.image.as_str(), u.digest.as_str()))
        .collect()
}

#[test]
fn distribution_fixtures() {
    let host = "127.0.0.1:5931";
    let cases: Vec<DistCase> = vec![
        ("dist-push-blob.json", vec![], vec!["blob push to base@sha256:3e3307348f01 ignored: application/octet-stream is a layer or config blob"]),
        ("dist-push-manifest-oci-tagged.json", vec![(format!("{host}/base:1"), BASE_V1)], vec![]),
        ("dist-repush-same-digest.json", vec![(format!("{host}/base:1"), BASE_V1)], vec![]),
        (
            "dist-update-base-blobs-and-manifest.json",
            vec![(format!("{host}/base:1"), BASE_V2)],
            vec!["event 1 (", "event 2 ("],
        ),
        (
            "dist-push-manifest-docker-v2-tagged.json",
            vec![(format!("{host}/base:docker"), "sha256:f42958693bd5989734d3e7e96063f54c4ddf51527993e8ef72e2155b445f7ceb")],
            vec![],
        ),
        (
            "dist-multiarch-push.json",
            vec![(format!("{host}/multi:1"), "sha256:3f5fe94d8883c12d37e64dcce49e845003c51ba288bd834e529c6733be014935")],
            vec![
                "blob mount into multi ignored",
                "blob push to multi@",
                "manifest push of multi@sha256:b43a8e6f721b ignored: it carries no tag",
                "blob push to multi@",
                "blob push to multi@",
                "manifest push of multi@sha256:5170ca82fdcb ignored: it carries no tag",
            ],
        ),
        ("dist-push-manifest-untagged.json", vec![], vec!["it carries no tag (a platform manifest of a multi-arch image"]),
        ("dist-mount-blob.json", vec![], vec!["blob mount into multi ignored: mounts copy layers"]),
        ("dist-pull-manifest.json", vec![], vec!["pull of base:1 ignored: only pushes move a tag"]),
        ("dist-pull-manifest-head.json", vec![], vec!["pull of base:1 ignored"]),
        ("dist-delete-manifest.json", vec![], vec!["delete of base@sha256:f42958693bd5 ignored"]),
        ("dist-delete-tag.json", vec![], vec!["delete of base:docker ignored"]),
    ];
    for (file, want_updates, want_ignored) in cases {
        let got =
            parse_distribution(&fixture(file), None).unwrap_or_else(|e| panic!("{file}: {e}"));
        let want: Vec<(&str, &str)> = want_updates.iter().map(|(i, d)| (i.as_str(), *d)).collect();
        assert_eq!(images(&got.updates), want, "{file}");
        assert_eq!(
            got.ignored.len(),
            want_ignored.len(),
            "{file}: {:?}",
            got.ignored
        );
        for (g, w) in got.ignored.iter().zip(&want_ignored) {
            assert!(g.contains(w), "{file}: {g:?} lacks {w:?}");
        }
        if file == "dist-update-base-blobs-and-manifest.json" {
            assert!(
                got.ignored.iter().all(|g| g.contains("blob push to base@")),
                "{:?}",
                got.ignored
            );
        }
        if file == "dist-multiarch-push.json" {
            assert_eq!(got.updates[0].media_type.as_deref(), Some(MEDIA_OCI_INDEX));
        }
        // every update carries the event id and a manifest media type
        for u in &got.updates {
            assert!(
                u.event_id.as_deref().is_some_and(|id| id.len() == 36),
                "{file}: {u:?}"
            );
            assert!(
                [MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST]
                    .contains(&u.media_type.as_deref().unwrap_or_default()),
                "{file}: {u:?}"
            );
        }
        // the generic entry point agrees
        assert_eq!(
            parse_registry_event(&fixture(file), None).unwrap(),
            got,
            "{file}"
        );
    }
    // The host users write in FROM lines may differ from the one the pusher used.
    let got = parse_distribution(
        &fixture("dist-push-manifest-oci-tagged.json"),
        Some("registry.internal:5000"),
    )
    .unwrap();
    assert_eq!(
        images(&got.updates),
        [("registry.internal:5000/base:1", BASE_V1)]
    );
}

#[test]
fn ecr_fixtures() {
    let cases: Vec<EcrCase> = vec![
        (
            "ecr-push-success-tagged.json",
            vec![(
                "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name:latest",
                ECR_DIGEST,
            )],
            "",
        ),
        (
            "ecr-push-success-tagged-media-type.json",
            vec![(
                "123456789012.dkr.ecr.eu-central-1.amazonaws.com/team/base:1",
                "sha256:3f5fe94d8883c6f1c9c7e1b0b6f5d8a6c0d1f4e2a3b4c5d6e7f8091a2b3c4d5e",
            )],
            "",
        ),
        (
            "ecr-push-success-untagged.json",
            vec![],
            "push of team/base@sha256:b43a8e6f721b ignored: it carries no tag",
        ),
        (
            "ecr-delete.json",
            vec![],
            "delete of my-repository-name:latest ignored",
        ),
        (
            "ecr-push-failed.json",
            vec![],
            "push of my-repository-name:latest ignored: its result is FAILURE, not SUCCESS",
        ),
        (
            "ecr-image-scan.json",
            vec![],
            "'ECR Image Scan' from 'aws.ecr' ignored",
        ),
    ];
    for (file, want, why) in cases {
        let got = parse_ecr(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(images(&got.updates), want, "{file}");
        if why.is_empty() {
            assert!(got.ignored.is_empty(), "{file}: {:?}", got.ignored);
            assert!(got.updates[0].event_id.is_some());
        } else {
            assert_eq!(got.ignored.len(), 1, "{file}");
            assert!(
                got.ignored[0].contains(why),
                "{file}: {:?} lacks {why:?}",
                got.ignored[0]
            );
        }
        assert_eq!(
            parse_registry_event(&fixture(file), Some("ignored.example")).unwrap(),
            got,
            "{file}"
        );
    }
}

/// The header lines the registry really sent, plus overrides.
fn captured_headers(replace_auth: Option<&str>) -> Vec<(String, String)> {
    let text = String::from_utf8(fixture("dist-headers.txt")).unwrap();
    let mut out: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(auth) = replace_auth {
        out.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        if !auth.is_empty() {
            out.push(("Authorization".to_string(), auth.to_string()));
        }
    }
    out
}

#[test]
fn auth_on_real_delivery() {
    let body = fixture("dist-push-manifest-oci-tagged.json");
    let tokens = [Secret::new("rotated-new"), Secret::new("capture-token")];
    let secrets = [Secret::new("hmac-secret")];
    let sig = sign::registry("hmac-secret", &body);
    let cases: Vec<AuthCase> = vec![
        ("real headers, second token", captured_headers(None), Ok(())),
        (
            "wrong token",
            captured_headers(Some("Bearer capture-tokem")),
            Err(RegistryAuthError::WrongToken),
        ),
        (
            "no authorization",
            captured_headers(Some("")),
            Err(RegistryAuthError::Missing),
        ),
        (
            "hmac instead of token",
            {
                let mut h = captured_headers(Some(""));
                h.push(("X-Crtask-Signature".to_string(), sig.clone()));
                h
            },
            Ok(()),
        ),
        (
            "hmac of another body",
            {
                let mut h = captured_headers(Some(""));
                h.push((
                    "X-Crtask-Signature".to_string(),
                    sign::registry("hmac-secret", b"{}"),
                ));
                h
            },
            Err(RegistryAuthError::WrongSignature),
        ),
    ];
    for (name, headers, want) in cases {
        assert_eq!(
            verify_registry(&Headers::new(&headers), &body, &tokens, &secrets),
            want,
            "{name}"
        );
    }
}

fn dep(
    task: &str,
    image: &str,
    last: Option<&str>,
    runtime: bool,
    kind: BaseImageTriggerType,
) -> Dependent {
    Dependent {
        task: task.to_string(),
        image: image.to_string(),
        last_digest: last.map(str::to_string),
        runtime,
        trigger_enabled: true,
        trigger_type: kind,
        platforms: Vec::new(),
    }
}

/// The acceptance story on real envelopes: `app` built FROM base:1; a re-push
/// of the same content starts nothing; new content triggers the tasks that
/// react to it (redeliveries fold into the queued run in the store, see
/// shared/local/tests/decisions.rs).
#[test]
fn real_update_story() {
    use BaseImageTriggerType::{All, Runtime};
    let base = "127.0.0.1:5931/base:1";
    let deps = vec![
        dep("app", base, Some(BASE_V1), true, Runtime),
        // multi-stage: base:1 only as the builder stage
        dep("tool", base, Some(BASE_V1), false, Runtime),
        dep("tool-all", base, Some(BASE_V1), false, All),
    ];
    let same = parse_distribution(&fixture("dist-repush-same-digest.json"), None).unwrap();
    let verdicts = decide(&same.updates[0], &deps);
    assert!(verdicts.iter().all(|v| !v.is_trigger()), "{verdicts:?}");
    assert!(verdicts.contains(&Verdict::Unchanged {
        task: "app".into(),
        image: base.into(),
        digest: BASE_V1.into(),
        platforms: Vec::new(),
    }));

    let update =
        parse_distribution(&fixture("dist-update-base-blobs-and-manifest.json"), None).unwrap();
    let trigger = |task: &str| Verdict::Trigger {
        task: task.into(),
        image: base.into(),
        old_digest: Some(BASE_V1.into()),
        new_digest: BASE_V2.into(),
    };
    let triggers: Vec<Verdict> = decide(&update.updates[0], &deps)
        .into_iter()
        .filter(Verdict::is_trigger)
        .collect();
    assert_eq!(triggers, vec![trigger("app"), trigger("tool-all")]);
}

/// A -> B -> C and a diamond: each rebuilt task's pushed output triggers the
/// tasks built on it. `decide` has no loop guard: a task built on its own
/// output is triggered by its push too (the handler skips a task's own push,
/// see shared/local/tests/decisions.rs).
#[test]
fn cascade_story() {
    use BaseImageTriggerType::{All, Runtime};
    let out = |t: &str| format!("127.0.0.1:5931/{t}:latest");
    let deps = vec![
        dep("b", &out("a"), Some(BASE_V1), true, Runtime),
        dep("c", &out("a"), Some(BASE_V1), true, Runtime),
        dep("d", &out("b"), Some(BASE_V1), false, All),
        dep("d", &out("c"), Some(BASE_V1), true, Runtime),
        dep("a", &out("a"), Some(BASE_V1), true, Runtime), // a builds on its own output
    ];
    let triggered = |pusher: &str| -> Vec<String> {
        let push = TagUpdate {
            image: out(pusher),
            digest: BASE_V2.into(),
            media_type: None,
            event_id: None,
            first_sighting: false,
            platforms: None,
        };
        decide(&push, &deps)
            .into_iter()
            .map(|v| {
                assert!(v.is_trigger(), "{pusher}: {v:?}");
                v.task().to_string()
            })
            .collect()
    };
    assert_eq!(triggered("a"), ["a", "b", "c"]);
    assert_eq!(triggered("b"), ["d"]);
    assert_eq!(triggered("c"), ["d"]);
    assert!(triggered("d").is_empty());
}
