//! Timer triggers end to end: cron timers fire real builds once per minute,
//! coinciding timers fire separately, disabling stops them, a minute missed
//! while the server was down is caught up exactly once, and invalid crons are
//! rejected. Waits are computed from the wall clock (the next minute
//! boundary), never long fixed sleeps.

use crtask_tests::{show, write_files, Registry, Server};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, fractional.
fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Sleeps until `second` (0-59.x) of a minute: the next one, or this one if
/// it is still ahead. Returns the epoch time woken at.
fn sleep_to_second(second: f64) -> f64 {
    let now = now_secs();
    let wait = (second - now % 60.0).rem_euclid(60.0);
    std::thread::sleep(Duration::from_secs_f64(wait));
    now_secs()
}

/// The RFC 3339 text runs use for the minute boundary at or after `t`.
fn minute_after(t: f64) -> String {
    rfc3339((t / 60.0).ceil() as i64 * 60)
}

/// RFC 3339 in UTC with milliseconds, as runs show times.
fn rfc3339(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    let days = t.div_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A task directory with a tiny Dockerfile on the seeded base.
fn context(reg: &Registry) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nRUN echo timer build\n", reg.host),
        )],
    );
    dir
}

/// Every timer run of `task`: (timer, scheduled time) -> run ids.
fn timer_runs(srv: &Server, task: &str) -> BTreeMap<(String, String), Vec<Value>> {
    let runs = srv
        .cli_json(&["task", "list-runs", "--name", task, "--top", "500"])
        .unwrap();
    let mut out: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for r in runs.as_array().unwrap() {
        let t = &r["trigger"];
        if t["type"] != "Timer" {
            continue;
        }
        let key = (
            t["timerName"].as_str().unwrap_or("").to_string(),
            t["scheduledTime"].as_str().unwrap_or("").to_string(),
        );
        out.entry(key).or_default().push(r.clone());
    }
    out
}

/// Asserts no (timer, scheduled time) has more than one run.
fn assert_one_run_each(runs: &BTreeMap<(String, String), Vec<Value>>) {
    for ((timer, at), rs) in runs {
        assert_eq!(
            rs.len(),
            1,
            "timer {timer} at {at} has {} runs: {rs:?}",
            rs.len()
        );
        assert!(at.ends_with(":00.000Z"), "scheduled on a minute: {at}");
    }
}

/// Polls `pred` over the task's timer runs for at most `secs`.
fn wait_runs(
    srv: &Server,
    task: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&BTreeMap<(String, String), Vec<Value>>) -> bool,
) -> BTreeMap<(String, String), Vec<Value>> {
    let start = Instant::now();
    loop {
        let runs = timer_runs(srv, task);
        if pred(&runs) {
            return runs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what} within {secs} s; runs: {:?}\nserver log:\n{}",
            runs.keys().collect::<Vec<_>>(),
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn timer_events(srv: &Server) -> Vec<Value> {
    srv.cli_json(&["events", "list", "--source", "timer", "--top", "500"])
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn coinciding_timers_each_fire_once_per_minute() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = context(&reg);
    let t = srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "tick",
            "-c",
            ctx.path().to_str().unwrap(),
            "-t",
            "tick:{{.Run.ID}}",
            "--schedule",
            "t:* * * * *",
            "--schedule",
            "* * * * *",
        ])
        .unwrap();
    assert_eq!(t["timers"][0]["name"], "t");
    assert_eq!(
        t["timers"][1]["name"], "t1",
        "unnamed timers become t1, ..."
    );

    let list = srv.cli(&["task", "timer", "list", "--name", "tick"]).stdout;
    let list = String::from_utf8_lossy(&list);
    assert!(
        list.contains("NAME") && list.contains("NEXT") && list.contains("* * * * *"),
        "{list}"
    );

    // Within about two minutes both timers have a run for the same minute.
    let runs = wait_runs(&srv, "tick", 130, "both timers fired for one minute", |r| {
        r.keys()
            .any(|(timer, at)| timer == "t" && r.contains_key(&("t1".to_string(), at.clone())))
    });
    assert_one_run_each(&runs);
    let at = runs
        .keys()
        .find(|(timer, at)| timer == "t" && runs.contains_key(&("t1".to_string(), at.clone())))
        .map(|(_, at)| at.clone())
        .unwrap();
    let a = &runs[&("t".to_string(), at.clone())][0];
    let b = &runs[&("t1".to_string(), at.clone())][0];
    assert_ne!(a["runId"], b["runId"]);
    assert_eq!(a["runType"], "AutoBuild");
    for r in [a, b] {
        let id = r["runId"].as_str().unwrap();
        let done = srv.wait_status(id, 180, |s| {
            s != "Queued" && s != "Running" && s != "Started"
        });
        let done = done.unwrap();
        assert_eq!(done["status"], "Succeeded", "{done}");
        assert_eq!(
            reg.digest("tick", id).as_deref(),
            done["outputImages"][0]["digest"].as_str()
        );
    }

    // Each firing is an event naming the task, timer and scheduled time.
    let events = timer_events(&srv);
    let scheduled = &at[..19];
    for timer in ["t", "t1"] {
        let e = events
            .iter()
            .find(|e| {
                e["outcome"] == "triggered"
                    && e["detail"]["timer"] == timer
                    && e["detail"]["scheduledTime"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(scheduled))
            })
            .unwrap_or_else(|| panic!("no triggered event for {timer} at {at}: {events:?}"));
        assert_eq!(e["detail"]["task"], "tick");
        assert_eq!(e["runs"].as_array().map(Vec::len), Some(1));
    }
    // And still exactly one run per (timer, minute) after everything settled.
    assert_one_run_each(&timer_runs(&srv, "tick"));
}

#[test]
fn disabling_a_timer_stops_it_and_re_enabling_skips_the_gap() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = context(&reg);
    let out = srv.cli(&[
        "task",
        "create",
        "--name",
        "pause",
        "-c",
        ctx.path().to_str().unwrap(),
        "--no-push",
        "true",
        "--schedule",
        "* * * * *",
    ]);
    assert!(out.status.success(), "{}", show(&out));

    // Timer commands: add, list (JSON), remove, with clear errors.
    let added = srv
        .cli_json(&[
            "task",
            "timer",
            "add",
            "--name",
            "pause",
            "--schedule",
            "yearly:@yearly",
        ])
        .unwrap();
    let names: Vec<&str> = added
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["t1", "yearly"]);
    assert!(added[1]["next"]
        .as_str()
        .unwrap()
        .ends_with("-01-01T00:00:00.000Z"));
    let dup = srv.cli(&[
        "task",
        "timer",
        "add",
        "--name",
        "pause",
        "--timer-name",
        "t1",
        "--schedule",
        "0 * * * *",
    ]);
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already has a timer 't1'"),
        "{}",
        show(&dup)
    );
    let unknown = srv.cli(&[
        "task",
        "timer",
        "update",
        "--name",
        "pause",
        "--timer-name",
        "nope",
        "--enabled",
        "false",
    ]);
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("task 'pause' has no timer 'nope' (its timers: t1, yearly)"),
        "{}",
        show(&unknown)
    );
    let out = srv.cli(&[
        "task",
        "timer",
        "remove",
        "--name",
        "pause",
        "--timer-name",
        "yearly",
    ]);
    assert!(out.status.success(), "{}", show(&out));

    // t1 fires within about two minutes.
    wait_runs(&srv, "pause", 130, "t1 fired", |r| !r.is_empty());

    let out = srv.cli(&[
        "task",
        "timer",
        "update",
        "--name",
        "pause",
        "--timer-name",
        "t1",
        "--enabled",
        "false",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let disabled_at = now_secs();
    let listed = srv
        .cli_json(&["task", "timer", "list", "--name", "pause"])
        .unwrap();
    assert_eq!(listed[0]["enabled"], false);
    assert_eq!(listed[0]["next"], Value::Null);
    let before = timer_runs(&srv, "pause");

    // Past the next minute boundary (and the scheduler's wake-up), nothing new.
    sleep_to_second(8.0);
    let after = timer_runs(&srv, "pause");
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "a disabled timer fired"
    );

    // Re-enabled, it fires again from the next minute, without catching up
    // the minutes it was off.
    let out = srv.cli(&[
        "task",
        "timer",
        "update",
        "--name",
        "pause",
        "--timer-name",
        "t1",
        "--enabled",
        "true",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let enabled_at = now_secs();
    let next = minute_after(enabled_at);
    let runs = wait_runs(&srv, "pause", 75, "t1 fired again after re-enabling", |r| {
        r.contains_key(&("t1".to_string(), next.clone()))
    });
    assert_one_run_each(&runs);
    let gap_start = minute_after(disabled_at);
    for (_, at) in runs.keys() {
        assert!(
            !(at.as_str() >= gap_start.as_str() && at.as_str() < next.as_str()),
            "fired for {at}, while the timer was disabled ({gap_start} .. {next})"
        );
    }
}

#[test]
fn a_minute_missed_while_down_is_caught_up_exactly_once() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let mut srv = Server::start(&reg, &[]).unwrap();
    let ctx = context(&reg);
    let out = srv.cli(&[
        "task",
        "create",
        "--name",
        "catchup",
        "-c",
        ctx.path().to_str().unwrap(),
        "--no-push",
        "true",
        "--schedule",
        "t:* * * * *",
    ]);
    assert!(out.status.success(), "{}", show(&out));

    // Down across one minute boundary: that minute fires once at start-up.
    let killed_at = sleep_to_second(50.0);
    srv.kill();
    let missed = minute_after(killed_at);
    sleep_to_second(6.0);
    let restarted_at = now_secs();
    srv.restart().unwrap();
    let runs = wait_runs(&srv, "catchup", 20, "the missed minute caught up", |r| {
        r.contains_key(&("t".to_string(), missed.clone()))
    });
    assert_one_run_each(&runs);
    let run = &runs[&("t".to_string(), missed.clone())][0];
    let created = run["createTime"].as_str().unwrap();
    let restarted = rfc3339(restarted_at.floor() as i64);
    assert!(
        created >= restarted.as_str(),
        "the catch-up run was created after the restart ({restarted}): {created}"
    );
    // More restarts in the same minute start nothing more for it.
    for _ in 0..2 {
        srv.restart().unwrap();
        std::thread::sleep(Duration::from_secs(2));
    }
    let runs = timer_runs(&srv, "catchup");
    assert_one_run_each(&runs);
    assert!(runs.contains_key(&("t".to_string(), missed.clone())));
    let events = timer_events(&srv);
    let fired: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["detail"]["timer"] == "t"
                && e["detail"]["scheduledTime"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&missed[..19]))
        })
        .collect();
    assert_eq!(fired.len(), 1, "one event for {missed}: {events:?}");
    assert_eq!(fired[0]["outcome"], "triggered");

    // Down across two boundaries: only the latest minute fires; the earlier
    // one is recorded as missed, not fired.
    let killed_at = sleep_to_second(50.0);
    srv.kill();
    let first = minute_after(killed_at);
    let second = minute_after(killed_at + 60.0);
    sleep_to_second(6.0);
    std::thread::sleep(Duration::from_secs(60));
    srv.restart().unwrap();
    let runs = wait_runs(
        &srv,
        "catchup",
        20,
        "the latest missed minute caught up",
        |r| r.contains_key(&("t".to_string(), second.clone())),
    );
    assert_one_run_each(&runs);
    assert!(
        !runs.contains_key(&("t".to_string(), first.clone())),
        "{first} should be missed, not fired"
    );
    let events = timer_events(&srv);
    let missed_event = events
        .iter()
        .find(|e| {
            e["detail"]["scheduledTime"]
                .as_str()
                .is_some_and(|s| s.starts_with(&first[..19]))
        })
        .unwrap_or_else(|| panic!("no event for {first}: {events:?}"));
    assert_eq!(missed_event["outcome"], "ignored");
    let reason = missed_event["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("missed: the server was down at {}Z", &first[..19])),
        "{reason}"
    );
}

#[test]
fn invalid_crons_are_rejected_with_a_clear_message() {
    let reg = Registry::start().unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    for (cron, want) in [
        ("61 * * * *", "error: timer 't1': minute field '61' is out of range 0-59"),
        (
            "* * * * * *",
            "error: timer 't1': expected 5 fields (minute hour day-of-month month day-of-week), got 6",
        ),
        (
            "* * 31 2 *",
            "error: timer 't1': day-of-month 31 never occurs in month 2: this schedule would never fire",
        ),
    ] {
        let out = srv.cli(&[
            "task",
            "create",
            "--name",
            "bad",
            "-c",
            "/dev/null",
            "--schedule",
            cron,
        ]);
        assert!(!out.status.success(), "{cron}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim(), want, "{cron}");
    }
    let named = srv.cli(&[
        "task",
        "create",
        "--name",
        "bad",
        "-c",
        "/dev/null",
        "--schedule",
        "nightly:0 25 * * *",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&named.stderr).trim(),
        "error: timer 'nightly': hour field '25' is out of range 0-23"
    );
    let tasks = srv.cli_json(&["task", "list"]).unwrap();
    assert_eq!(tasks, serde_json::json!([]), "no task was created");

    // The same checks guard `task timer add|update`; the task is unchanged.
    let out = srv.cli(&["task", "create", "--name", "ok", "-c", "/dev/null"]);
    assert!(out.status.success(), "{}", show(&out));
    let add = srv.cli(&[
        "task",
        "timer",
        "add",
        "--name",
        "ok",
        "--schedule",
        "61 * * * *",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&add.stderr).trim(),
        "error: timer 't1': minute field '61' is out of range 0-59"
    );
    let t = srv.cli_json(&["task", "show", "--name", "ok"]).unwrap();
    assert_eq!(t["timers"], serde_json::json!([]));
}
