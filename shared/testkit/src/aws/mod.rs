//! The AWS test harness (feature `aws`): one `moto_server` per test binary
//! and clients, tables, buckets and secrets on it; [`lambda`] runs the
//! function binaries against a Lambda Runtime API emulator; [`codebuild`]
//! and [`logs`] stand in for what CodeBuild creates and writes.
//!
//! The server runs under `sh`, reading the test process's pipe: when the
//! test binary exits the pipe closes and the server is stopped.

pub mod codebuild;
pub mod http;
pub mod lambda;
pub mod logs;
pub mod registry;

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Moto {
    url: String,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

fn start() -> Moto {
    assert!(
        which("moto_server"),
        "moto_server is not installed: run `pip install 'moto[server]'` (infra/test.sh does)"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    // moto_server handles requests on threads, and its TransactWriteItems is
    // not atomic across threads (it rolls back by restoring a whole-table
    // copy). DynamoDB applies each request atomically: serve one request at
    // a time, the same app moto_server runs, when moto is importable.
    let script = r#"
if python3 -c 'from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app' 2>/dev/null; then
  python3 -c '
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)
' "$1" >"$2" 2>&1 &
else
  moto_server -H 127.0.0.1 -p "$1" >"$2" 2>&1 &
fi
m=$!; cat >/dev/null; kill "$m""#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(port.to_string())
        .arg(std::env::temp_dir().join(format!("crtask-moto-{port}.log")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start moto_server");
    let _ = child.stdout.take().map(|o| {
        std::thread::spawn(move || BufReader::new(o).lines().for_each(drop));
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on port {port} within 60 s (log: {})",
            std::env::temp_dir()
                .join(format!("crtask-moto-{port}.log"))
                .display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        url: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
    }
}

/// The emulator's endpoint, starting it on first use.
pub fn endpoint() -> &'static str {
    &MOTO.get_or_init(start).url
}

/// SDK configuration for the emulator (fixed test credentials).
pub async fn sdk_config() -> SdkConfig {
    crtask_aws::config::loader()
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// A name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh table with the store's schema, and a store on it.
pub async fn store() -> crtask_aws::DynamoStore {
    let conf = sdk_config().await;
    let client = crtask_aws::config::dynamodb(&conf);
    let table = unique("crtask");
    crtask_aws::create_table(&client, &table)
        .await
        .expect("create table");
    crtask_aws::DynamoStore::new(client, table)
}

/// A fresh bucket.
pub async fn bucket() -> (aws_sdk_s3::Client, String) {
    let conf = sdk_config().await;
    let client = crtask_aws::config::s3(&conf);
    let bucket = unique("crtask-ctx");
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    (client, bucket)
}

/// A new Secrets Manager secret (name `prefix-<unique>`) holding `value`; its ARN.
pub async fn secret(prefix: &str, value: &str) -> String {
    crtask_aws::config::secretsmanager(&sdk_config().await)
        .create_secret()
        .name(unique(prefix))
        .secret_string(value)
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("secret arn")
}

/// The `crtask` binary next to the running test's directory
/// (`target/<profile>/crtask`), or `CRTASK_BIN`. Build it first
/// (`cargo build -p crtask`).
pub fn crtask_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("CRTASK_BIN") {
        return std::path::PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test-exe> -> target/<profile>/crtask
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("crtask"))
        .expect("target directory");
    assert!(
        bin.is_file(),
        "the crtask binary is not at {}: run `cargo build -p crtask` first",
        bin.display()
    );
    bin
}

/// `crtask --platform aws ARGS` with only the emulator's environment and
/// the stack's table and bucket.
pub fn crtask_on_aws(table: &str, bucket: &str, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(crtask_bin());
    c.args(["--platform", "aws"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CRTASK_AWS_TABLE", table)
        .env("CRTASK_AWS_BUCKET", bucket)
        .stdin(std::process::Stdio::null());
    c
}
