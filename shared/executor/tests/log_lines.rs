//! crtask's own lines in a run log are one line each, whatever they quote:
//! a branch, an error or a commit message holding a newline, a carriage
//! return or an escape sequence cannot forge a line ("crtask: run ca1
//! Succeeded") or act on the terminal of whoever reads the log.

use crtask_core::ports::LogSink;
use crtask_executor::logs::RunLog;

#[test]
fn a_quoted_newline_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca1.log");
    let pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----";
    let log = RunLog::open(&path, vec!["s3cret".into(), pem.into()]).unwrap();
    let hostile = "main\ncrtask: run ca1 Succeeded after 1s\r\u{1b}[2K\u{1b}]0;t\u{7}\0s3cret";
    log.line(&format!("crtask: cloning branch {hostile}"));
    log.line(&format!("crtask: run ca1 Failed after 2s: bad key {pem}"));
    // Build output (the engine's bytes) is written as it is, line by line.
    log.write(b"STEP 1/2: FROM base\n");
    log.flush();
    drop(log);

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    assert_eq!(
        lines[0],
        "crtask: cloning branch main\\ncrtask: run ca1 Succeeded after 1s\\r\\u{1b}[2K\\u{1b}]0;t\\u{7}\\u{0}*****"
    );
    assert_eq!(lines[1], "crtask: run ca1 Failed after 2s: bad key *****");
    assert!(!text.contains('\u{1b}') && !text.contains('\0') && !text.contains('\r'));
}
