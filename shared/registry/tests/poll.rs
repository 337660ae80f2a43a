//! `Poller::round` against a real CNCF distribution registry
//! (`docker-registry`) and, where a behaviour needs a registry that
//! misbehaves on purpose (429 + Retry-After, the 401 token flow, broken
//! answers), small axum servers started by the test. The store is the local
//! SQLite store (in memory); a settable clock drives the intervals.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use crtask_core::domain::model::{BaseDependency, EventRecord, EventSource, Outcome, Trigger};
use crtask_core::ports::{Clock, Store};
use crtask_local::store::SqliteStore;
use crtask_registry::{PollConfig, Poller, Probe, RegistryClient};
use crtask_testkit::clock::at;
use crtask_testkit::{FixedClock, TaskBuilder};
use sha2::{Digest, Sha256};

const D0: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// A clock the test moves by hand.
fn test_clock() -> FixedClock {
    FixedClock::at("2026-01-01T00:00:00Z")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A `docker-registry` on plain HTTP with its access log in a file.
struct Registry {
    child: Child,
    host: String,
    dir: tempfile::TempDir,
}

impl Registry {
    async fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("127.0.0.1:{}", free_port());
        let cfg = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: \"{}\"}}\nhttp: {{addr: \"{host}\"}}\n",
            dir.path().join("data").display()
        );
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start docker-registry (run infra/local/setup.sh)");
        let reg = Registry { child, host, dir };
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("http://{}/v2/", reg.host)).send().await {
                if r.status().is_success() {
                    return reg;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("docker-registry did not answer: {}", reg.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `HEAD /v2/<repo>/manifests/<tag>` requests served so far; waits a
    /// little for the access log to catch up with `at_least`.
    async fn manifest_heads(&self, repo: &str, tag: &str, at_least: usize) -> usize {
        let needle = format!("\"HEAD /v2/{repo}/manifests/{tag} ");
        let mut n = 0;
        for _ in 0..40 {
            n = self.log().matches(&needle).count();
            if n >= at_least {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let any stray request show up too.
        tokio::time::sleep(Duration::from_millis(200)).await;
        n.max(self.log().matches(&needle).count())
    }

    /// Pushes a one-layer OCI image as `repo:tag` through the registry API;
    /// `content` varies it. Returns the manifest digest.
    async fn push(&self, repo: &str, tag: &str, content: &str) -> String {
        let http = reqwest::Client::new();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"v":"{content}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let layer = format!("layer {content}").into_bytes();
        let mut descriptors = Vec::new();
        for (media, blob) in [
            (
                "application/vnd.oci.image.config.v1+json",
                config.into_bytes(),
            ),
            ("application/vnd.oci.image.layer.v1.tar", layer),
        ] {
            let digest = sha256(&blob);
            let start = http
                .post(format!("http://{}/v2/{repo}/blobs/uploads/", self.host))
                .send()
                .await
                .unwrap();
            assert_eq!(start.status().as_u16(), 202, "start upload");
            let loc = start.headers()["location"].to_str().unwrap().to_string();
            let loc = if loc.starts_with('/') {
                format!("http://{}{loc}", self.host)
            } else {
                loc
            };
            let sep = if loc.contains('?') { '&' } else { '?' };
            let put = http
                .put(format!("{loc}{sep}digest={digest}"))
                .header("content-type", "application/octet-stream")
                .body(blob.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(put.status().as_u16(), 201, "blob upload");
            descriptors.push(serde_json::json!({
                "mediaType": media, "digest": digest, "size": blob.len()
            }));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptors[0],
            "layers": [descriptors[1]],
        }))
        .unwrap();
        let put = http
            .put(format!("http://{}/v2/{repo}/manifests/{tag}", self.host))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status().as_u16(), 201, "manifest push");
        sha256(&manifest)
    }
}

impl Registry {
    /// Pushes an image index `repo:tag` with one image per `(arch,
    /// content)`; returns the index digest and each platform's digest.
    async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        images: &[(&str, &str)],
    ) -> (String, Vec<(String, String)>) {
        let http = reqwest::Client::new();
        let mut entries = Vec::new();
        let mut platforms = Vec::new();
        for (arch, content) in images {
            let digest = self.push(repo, &format!("{tag}-{arch}"), content).await;
            let head = http
                .head(format!("http://{}/v2/{repo}/manifests/{digest}", self.host))
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .unwrap();
            let size: u64 = head.headers()["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            entries.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": size,
                "platform": {"os": "linux", "architecture": arch},
            }));
            platforms.push((format!("linux/{arch}"), digest));
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }))
        .unwrap();
        let put = http
            .put(format!("http://{}/v2/{repo}/manifests/{tag}", self.host))
            .header("content-type", "application/vnd.oci.image.index.v1+json")
            .body(index.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status().as_u16(), 201, "index push");
        (sha256(&index), platforms)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A task that depends on `deps` (image, digest it last built from).
async fn task_with_deps(store: &dyn Store, name: &str, deps: &[(&str, Option<&str>)]) {
    let task = TaskBuilder::new(name)
        .context("/dev/null")
        .images(&[&format!("{name}:1")])
        .created(at("2026-01-01T00:00:00Z"))
        .build();
    store.create_task(&task).await.unwrap();
    let deps: Vec<BaseDependency> = deps
        .iter()
        .map(|(image, digest)| BaseDependency {
            image: image.to_string(),
            digest: digest.map(str::to_string),
            runtime: true,
        })
        .collect();
    store.set_dependencies(name, &deps).await.unwrap();
}

async fn poll_events(store: &dyn Store) -> Vec<EventRecord> {
    let mut e = store
        .list_events(Some(EventSource::Poll), 1000)
        .await
        .unwrap();
    e.reverse(); // oldest first
    e
}

fn config(interval: u64, insecure: &[&str]) -> PollConfig {
    PollConfig {
        interval: Duration::from_secs(interval),
        insecure: insecure.iter().map(|s| s.to_string()).collect(),
        ..PollConfig::default()
    }
}

#[tokio::test]
async fn a_task_never_built_waits_for_a_move_not_a_first_sighting() {
    let reg = Registry::start().await;
    let h = reg.host.clone();
    reg.push("base", "3", "v1").await;
    let store = SqliteStore::in_memory().unwrap();
    let clock = test_clock();
    let base3 = format!("{h}/base:3");
    // Created (its Dockerfile pre-scanned) but never run.
    task_with_deps(&store, "fresh", &[(&base3, None)]).await;
    let mut poller = Poller::new(config(60, &[&h]));
    let r = poller.round(&store, &clock).await;
    assert_eq!(r.requests, 1);
    assert!(r.new_runs.is_empty(), "nothing moved: {:?}", r.new_runs);
    let events = poll_events(&store).await;
    let last = events.last().map(|e| (e.outcome, e.reason.clone()));
    assert!(
        matches!(&last, Some((Outcome::Ignored, why)) if why.contains("first sighting")),
        "{last:?}"
    );
    // A restart forgets what was seen: still nothing to rebuild.
    let mut restarted = Poller::new(config(60, &[&h]));
    assert!(restarted.round(&store, &clock).await.new_runs.is_empty());
    // The tag really moves: the task is rebuilt on the new digest.
    let v2 = reg.push("base", "3", "v2").await;
    clock.advance_secs(67);
    let r = restarted.round(&store, &clock).await;
    assert_eq!(r.new_runs.len(), 1);
    assert!(matches!(
        &r.new_runs[0].trigger,
        Trigger::ImageUpdate { new_digest, old_digest: None, .. } if *new_digest == v2
    ));
}

#[tokio::test]
async fn real_registry_one_head_per_reference_per_interval_and_changes_start_runs() {
    let reg = Registry::start().await;
    let h = reg.host.clone();
    let v1 = reg.push("base", "1", "v1").await;
    let other = reg.push("base", "2", "other").await;
    let store = SqliteStore::in_memory().unwrap();
    let clock = test_clock();
    let base1 = format!("{h}/base:1");
    let base2 = format!("{h}/base:2");
    let pinned = format!("{h}/base@{other}");
    // Three tasks, two distinct tagged references (one written two ways),
    // and a digest-pinned one that never moves.
    task_with_deps(&store, "a", &[(&base1, Some(&v1))]).await;
    task_with_deps(&store, "b", &[(&base1, Some(&v1)), (&base2, Some(&other))]).await;
    task_with_deps(&store, "c", &[(&pinned, None)]).await;

    let mut poller = Poller::new(config(60, &[&h]));
    let r = poller.round(&store, &clock).await;
    assert_eq!(r.requests, 2, "one HEAD per distinct reference");
    assert!(r.new_runs.is_empty(), "digests match what the tasks built");
    assert_eq!(reg.manifest_heads("base", "1", 1).await, 1);
    assert_eq!(reg.manifest_heads("base", "2", 1).await, 1);
    assert_eq!(reg.manifest_heads("base", &other, 0).await, 0);

    // Not again before the interval (jitter keeps it within 54-66 s).
    for secs in [1, 29, 23] {
        clock.advance_secs(secs);
        let r = poller.round(&store, &clock).await;
        assert_eq!(r.requests, 0, "polled again {secs} s later");
    }
    assert_eq!(reg.manifest_heads("base", "1", 1).await, 1);
    clock.advance_secs(14); // 67 s after the first round
    let before = poll_events(&store).await.len();
    let r = poller.round(&store, &clock).await;
    assert_eq!((r.requests, r.new_runs.len()), (2, 0));
    assert_eq!(reg.manifest_heads("base", "1", 2).await, 2);
    let events = poll_events(&store).await;
    let new: Vec<&EventRecord> = events[before..].iter().collect();
    assert_eq!(new.len(), 2, "{new:?}");
    for e in &new {
        assert_eq!(e.outcome, Outcome::Unchanged, "{e:?}");
        assert!(e.reason.contains(" is still sha256:"), "{e:?}");
    }
    assert!(new
        .iter()
        .any(|e| e.reason == format!("{base1} is still {v1}")));

    // The base moves: both dependents get a run, recorded but not dispatched.
    let v2 = reg.push("base", "1", "v2").await;
    assert_ne!(v1, v2);
    clock.advance_secs(67);
    let r = poller.round(&store, &clock).await;
    assert_eq!(r.requests, 2);
    let mut tasks: Vec<String> = r.new_runs.iter().filter_map(|r| r.task.clone()).collect();
    tasks.sort();
    assert_eq!(tasks, ["a", "b"]);
    for run in &r.new_runs {
        match &run.trigger {
            Trigger::ImageUpdate {
                image,
                old_digest,
                new_digest,
                cause,
            } => {
                assert_eq!(image, &base1);
                assert_eq!(old_digest.as_deref(), Some(v1.as_str()));
                assert_eq!(new_digest, &v2);
                assert_eq!(cause.as_deref(), Some("poll"));
            }
            t => panic!("unexpected trigger {t:?}"),
        }
        let stored = store.get_run(&run.run_id).await.unwrap().unwrap();
        assert_eq!(stored.status, crtask_core::domain::model::RunStatus::Queued);
    }
    let events = poll_events(&store).await;
    let triggered = events
        .iter()
        .find(|e| e.outcome == Outcome::Triggered)
        .expect("a triggered poll event");
    assert_eq!(triggered.detail["image"], base1.as_str());
    assert_eq!(triggered.detail["digest"], v2.as_str());
    assert_eq!(triggered.detail["cause"], "poll");
    assert_eq!(triggered.runs.len(), 2);

    // Seen once, the new digest is unchanged on the next round.
    clock.advance_secs(67);
    let before = poll_events(&store).await.len();
    let r = poller.round(&store, &clock).await;
    assert_eq!((r.requests, r.new_runs.len()), (2, 0));
    let events = poll_events(&store).await;
    assert!(
        events[before..].iter().any(
            |e| e.outcome == Outcome::Unchanged && e.reason == format!("{base1} is still {v2}")
        ),
        "{:?}",
        &events[before..]
    );
    assert_eq!(reg.manifest_heads("base", "1", 4).await, 4);

    // The client on its own: a tag the registry does not have.
    let client = RegistryClient::new(vec![h.clone()]);
    let head = client
        .head_manifest(&format!("{h}/base:nope"), clock.now())
        .await;
    assert_eq!(head.requests, 1);
    assert!(
        matches!(&head.probe, Probe::Failed(why) if why.contains("/v2/base/manifests/nope answered 404")),
        "{head:?}"
    );
    let head = client.head_manifest("Not A Ref", clock.now()).await;
    assert_eq!(head.requests, 0);
    assert!(
        matches!(&head.probe, Probe::Failed(why) if why.contains("'Not A Ref' is not valid")),
        "{head:?}"
    );
}

/// Requests a fake registry saw: (method, path and query, authorization).
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

#[derive(Clone)]
struct Fake {
    host: String,
    seen: Seen,
    /// While false, every manifest HEAD answers 429 with `Retry-After: 45`.
    healthy: Arc<AtomicBool>,
}

impl Fake {
    fn heads(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _)| m == "HEAD" && p == path)
            .count()
    }
    fn all_heads(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _, _)| m == "HEAD")
            .count()
    }
}

fn digest_answer() -> Response {
    let mut h = HeaderMap::new();
    h.insert("docker-content-digest", HeaderValue::from_static(D1));
    h.insert(
        "content-type",
        HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
    );
    (StatusCode::OK, h).into_response()
}

fn challenge(fake: &Fake, realm_path: &str) -> Response {
    let mut h = HeaderMap::new();
    let v = format!(
        "Bearer realm=\"http://{}{realm_path}\",service=\"fake\"",
        fake.host
    );
    h.insert("www-authenticate", HeaderValue::from_str(&v).unwrap());
    (StatusCode::UNAUTHORIZED, h).into_response()
}

/// A registry that misbehaves on purpose, one way per repository.
async fn fake_handler(State(fake): State<Fake>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fake.seen
        .lock()
        .unwrap()
        .push((req.method().to_string(), path.clone(), auth.clone()));
    if !fake.healthy.load(Ordering::SeqCst) {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("45"));
        return (StatusCode::TOO_MANY_REQUESTS, h).into_response();
    }
    let bearer = auth.as_deref() == Some("Bearer t0k");
    match path.as_str() {
        "/token?service=fake&scope=repository%3Aprivate%3Apull" => {
            axum::Json(serde_json::json!({"token": "t0k"})).into_response()
        }
        "/token?service=fake&scope=repository%3Aloop%3Apull" => {
            axum::Json(serde_json::json!({"access_token": "wrong"})).into_response()
        }
        "/token?service=fake&scope=repository%3Agarbled%3Apull" => "not json".into_response(),
        p if p.starts_with("/token") => StatusCode::FORBIDDEN.into_response(),
        "/v2/private/manifests/1" if bearer => digest_answer(),
        "/v2/private/manifests/1" | "/v2/loop/manifests/1" | "/v2/garbled/manifests/1" => {
            challenge(&fake, "/token")
        }
        "/v2/refused/manifests/1" => challenge(&fake, "/token-refused"),
        "/v2/locked/manifests/1" => StatusCode::UNAUTHORIZED.into_response(),
        "/v2/nodigest/manifests/1" => StatusCode::OK.into_response(),
        "/v2/flaky/manifests/1" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        p if p.starts_with("/v2/") && p.contains("/manifests/") => digest_answer(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_fake(healthy: bool) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Fake {
        host: listener.local_addr().unwrap().to_string(),
        seen: Arc::default(),
        healthy: Arc::new(AtomicBool::new(healthy)),
    };
    let app = axum::Router::new()
        .fallback(fake_handler)
        .with_state(fake.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    fake
}

#[tokio::test]
async fn retry_after_is_honoured_per_registry() {
    // `slow` answers 429 + Retry-After: 45 until told otherwise; `ok` is
    // healthy; `off` has its interval set to zero.
    let slow = start_fake(false).await;
    let ok = start_fake(true).await;
    let off = start_fake(true).await;
    let store = SqliteStore::in_memory().unwrap();
    let clock = test_clock();
    let (s, o, z) = (&slow.host, &ok.host, &off.host);
    task_with_deps(
        &store,
        "t",
        &[
            (&format!("{s}/one:1"), None),
            (&format!("{s}/two:1"), None),
            (&format!("{o}/app:1"), Some(D1)),
            (&format!("{z}/app:1"), None),
        ],
    )
    .await;
    let mut cfg = config(10, &[s, o, z]);
    cfg.per_registry = BTreeMap::from([(z.to_string(), Duration::ZERO)]);
    let mut poller = Poller::new(cfg);

    let r = poller.round(&store, &clock).await;
    // The 429 stops the slow registry's round: `two` is not asked.
    assert_eq!(r.requests, 2);
    assert_eq!(
        (slow.all_heads(), ok.all_heads(), off.all_heads()),
        (1, 1, 0)
    );
    assert_eq!(slow.heads("/v2/one/manifests/1"), 1);
    let events = poll_events(&store).await;
    let backoff = events
        .iter()
        .find(|e| e.detail["image"] == format!("{s}/one:1").as_str())
        .expect("an event for the 429");
    assert_eq!(backoff.outcome, Outcome::Ignored);
    assert_eq!(
        backoff.reason,
        format!("http://{s}/v2/one/manifests/1 answered 429; backing off 45 s")
    );

    // 12 s and 31 s later (past the interval and past the 30 s the
    // backoff would wait without Retry-After): only `ok` is polled.
    for (step, ok_heads) in [(12, 2), (19, 3)] {
        clock.advance_secs(step);
        let r = poller.round(&store, &clock).await;
        assert_eq!(r.requests, 1, "at +{step} s");
        assert_eq!((slow.all_heads(), ok.all_heads()), (1, ok_heads));
    }
    // 46 s after the 429 the registry is asked again, and has recovered.
    slow.healthy.store(true, Ordering::SeqCst);
    clock.advance_secs(15);
    let r = poller.round(&store, &clock).await;
    assert_eq!(r.requests, 3);
    assert_eq!(slow.heads("/v2/one/manifests/1"), 2);
    assert_eq!(slow.heads("/v2/two/manifests/1"), 1);
    // Healthy again: the plain interval applies, no backoff left.
    clock.advance_secs(12);
    let r = poller.round(&store, &clock).await;
    assert_eq!(r.requests, 3);
    assert_eq!(off.all_heads(), 0, "a zero interval turns a registry off");

    // A 5xx without Retry-After backs off the doubling way (30 s first).
    let flaky = start_fake(true).await;
    let store = SqliteStore::in_memory().unwrap();
    let f = &flaky.host;
    task_with_deps(&store, "f", &[(&format!("{f}/flaky:1"), None)]).await;
    let mut poller = Poller::new(config(10, &[f]));
    poller.round(&store, &clock).await;
    let events = poll_events(&store).await;
    assert_eq!(
        events[0].reason,
        format!("http://{f}/v2/flaky/manifests/1 answered 503; backing off 30 s")
    );
    clock.advance_secs(12);
    assert_eq!(poller.round(&store, &clock).await.requests, 0);
    clock.advance_secs(19);
    assert_eq!(poller.round(&store, &clock).await.requests, 1);
    let events = poll_events(&store).await;
    assert!(events[1].reason.ends_with("backing off 60 s"), "{events:?}");
}

#[tokio::test]
async fn token_flow_and_broken_answers_are_recorded() {
    // One misbehaving registry, one way per repository (see fake_handler).
    let fake = start_fake(true).await;
    let store = SqliteStore::in_memory().unwrap();
    let clock = test_clock();
    let h = &fake.host;
    let dead = format!("127.0.0.1:{}", free_port()); // nothing listens
    let refs: Vec<String> = [
        "private", "loop", "garbled", "refused", "locked", "nodigest",
    ]
    .iter()
    .map(|r| format!("{h}/{r}:1"))
    .chain([format!("{dead}/gone:1")])
    .collect();
    // The task was built on an older digest of each image.
    let deps: Vec<(&str, Option<&str>)> = refs.iter().map(|r| (r.as_str(), Some(D0))).collect();
    task_with_deps(&store, "t", &deps).await;
    let mut poller = Poller::new(config(60, &[h, &dead]));

    let r = poller.round(&store, &clock).await;
    // private: 401 then 200; loop: 401 twice; garbled, refused: one 401
    // and a token request that fails; locked, nodigest, gone: one each.
    assert_eq!(r.requests, 2 + 2 + 1 + 1 + 1 + 1 + 1);
    let seen = fake.seen.lock().unwrap().clone();
    let private: Vec<_> = seen
        .iter()
        .filter(|(_, p, _)| p.contains("private"))
        .cloned()
        .collect();
    assert_eq!(
        private,
        [
            ("HEAD".into(), "/v2/private/manifests/1".into(), None),
            (
                "GET".into(),
                "/token?service=fake&scope=repository%3Aprivate%3Apull".into(),
                None
            ),
            (
                "HEAD".into(),
                "/v2/private/manifests/1".into(),
                Some("Bearer t0k".into())
            ),
        ]
    );
    // The token-flow digest went through reghook: the task was built on
    // another digest, so it starts a run.
    assert_eq!(r.new_runs.len(), 1);
    assert!(matches!(
        &r.new_runs[0].trigger,
        Trigger::ImageUpdate { new_digest, cause, .. }
            if new_digest == D1 && cause.as_deref() == Some("poll")
    ));
    let events = poll_events(&store).await;
    let reason = |repo: &str| {
        events
            .iter()
            .find(|e| {
                e.detail["image"]
                    .as_str()
                    .is_some_and(|i| i.contains(&format!("/{repo}:1")))
            })
            .map(|e| (e.outcome, e.reason.clone()))
            .unwrap_or_else(|| panic!("no event for {repo}: {events:?}"))
    };
    let url = |repo: &str| format!("http://{h}/v2/{repo}/manifests/1");
    assert_eq!(reason("private").0, Outcome::Triggered);
    let want = [
        (
            "loop",
            format!("{} refused the anonymous token", url("loop")),
        ),
        ("garbled", format!("token for {}: ", url("garbled"))),
        (
            "refused",
            format!(
                "anonymous token for {} refused (403 Forbidden)",
                url("refused")
            ),
        ),
        (
            "locked",
            format!("{} wants credentials crtask does not have", url("locked")),
        ),
        (
            "nodigest",
            format!(
                "{} answered without a valid Docker-Content-Digest",
                url("nodigest")
            ),
        ),
        (
            "gone",
            format!("HEAD http://{dead}/v2/gone/manifests/1 failed"),
        ),
    ];
    for (repo, want) in want {
        let (outcome, got) = reason(repo);
        assert_eq!(outcome, Outcome::Ignored, "{repo}: {got}");
        assert!(
            got.starts_with(&want),
            "{repo}: {got:?} does not start with {want:?}"
        );
    }
    assert!(reason("garbled").1.contains("not valid json"));

    // The next due round: the private digest is unchanged now.
    clock.advance_secs(67);
    let before = events.len();
    let r = poller.round(&store, &clock).await;
    assert!(r.new_runs.is_empty());
    let events = poll_events(&store).await;
    assert!(
        events[before..]
            .iter()
            .any(|e| e.outcome == Outcome::Unchanged
                && e.reason == format!("{h}/private:1 is still {D1}")),
        "{:?}",
        &events[before..]
    );
}

#[tokio::test]
async fn a_fixed_tick_polls_every_tick_whatever_the_jitter() {
    let reg = Registry::start().await;
    let h = reg.host.clone();
    let v1 = reg.push("base", "1", "v1").await;
    let store = SqliteStore::in_memory().unwrap();
    let clock = test_clock();
    let base1 = format!("{h}/base:1");
    task_with_deps(&store, "a", &[(&base1, Some(&v1))]).await;

    // The AWS schedule function: a round every 60 s, interval 60 s. Jitter
    // puts the next due time 54-66 s ahead; half a tick of tolerance makes
    // every tick poll (not every other one), and still never twice a tick.
    let mut poller = Poller::new(PollConfig {
        tick: Duration::from_secs(60),
        ..config(60, &[&h])
    });
    for n in 1..=8u64 {
        let r = poller.round(&store, &clock).await;
        assert_eq!(r.requests, 1, "tick {n}");
        let r = poller.round(&store, &clock).await;
        assert_eq!(r.requests, 0, "tick {n}, same minute");
        clock.advance_secs(60);
    }
    assert_eq!(reg.manifest_heads("base", "1", 8).await, 8);

    // A longer interval on the same tick: every fifth tick.
    let mut poller = Poller::new(PollConfig {
        tick: Duration::from_secs(60),
        ..config(300, &[&h])
    });
    let mut polled = Vec::new();
    for n in 0..11u64 {
        if poller.round(&store, &clock).await.requests > 0 {
            polled.push(n);
        }
        clock.advance_secs(60);
    }
    assert_eq!(polled, [0, 5, 10]);
}

/// A task that builds for linux/amd64 and linux/arm64 on a base index is
/// rebuilt when the index's arm64 manifest moves, not when only a platform
/// it does not build moves (the poller reads the index's contents).
#[tokio::test]
async fn an_index_base_triggers_only_for_the_platforms_the_task_builds() {
    use crtask_core::domain::model::{BaseImageUse, RunStatus};
    let reg = Registry::start().await;
    let h = reg.host.clone();
    let (_, v1) = reg
        .push_index(
            "base",
            "multi",
            &[("amd64", "a1"), ("arm64", "b1"), ("s390x", "c1")],
        )
        .await;
    let store = SqliteStore::in_memory().unwrap();
    let clock = test_clock();
    let base = format!("{h}/base:multi");
    // The task's last build used the amd64 and arm64 manifests.
    task_with_deps(&store, "multi", &[(&base, None)]).await;
    let id = store.next_run_id().await.unwrap();
    let mut run = crtask_testkit::RunBuilder::new(&id)
        .task(Some("multi"))
        .status(RunStatus::Succeeded)
        .build();
    run.platform = "linux/amd64,linux/arm64".into();
    run.base_images = v1[..2]
        .iter()
        .map(|(platform, digest)| BaseImageUse {
            image: base.clone(),
            digest: digest.clone(),
            runtime: true,
            platform: Some(platform.clone()),
        })
        .collect();
    store.insert_run(&run).await.unwrap();

    let mut poller = Poller::new(config(60, &[&h]));
    let r = poller.round(&store, &clock).await;
    assert!(r.new_runs.is_empty(), "{:?}", r.new_runs);
    // Only s390x moved: unchanged for this task.
    reg.push_index(
        "base",
        "multi",
        &[("amd64", "a1"), ("arm64", "b1"), ("s390x", "c2")],
    )
    .await;
    clock.advance_secs(67);
    let r = poller.round(&store, &clock).await;
    assert!(r.new_runs.is_empty(), "{:?}", r.new_runs);
    let last = poll_events(&store).await.pop().unwrap();
    assert_eq!(last.outcome, Outcome::Unchanged, "{last:?}");
    assert!(
        last.reason
            .contains("with the same linux/amd64 and linux/arm64 images its last build used"),
        "{last:?}"
    );
    // The arm64 manifest moved: one rebuild, naming the old arm64 digest.
    let (index3, _) = reg
        .push_index(
            "base",
            "multi",
            &[("amd64", "a1"), ("arm64", "b2"), ("s390x", "c2")],
        )
        .await;
    clock.advance_secs(67);
    let r = poller.round(&store, &clock).await;
    assert_eq!(
        r.new_runs.len(),
        1,
        "{} requests; {:?}",
        r.requests,
        poll_events(&store).await
    );
    let old_arm64 = v1[1].1.clone();
    assert!(
        matches!(
            &r.new_runs[0].trigger,
            Trigger::ImageUpdate { new_digest, old_digest: Some(old), .. }
                if *new_digest == index3 && *old == old_arm64
        ),
        "{:?}",
        r.new_runs[0].trigger
    );
}
