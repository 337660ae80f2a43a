//! Timing cold starts and warm invocations.

use super::*;

#[derive(Default)]
pub(crate) struct Measured {
    pub(crate) init: Vec<f64>,
    pub(crate) cold: Vec<f64>,
    pub(crate) cold_excl: Vec<f64>,
    pub(crate) cold_calls: Vec<usize>,
    pub(crate) warm: Vec<f64>,
    pub(crate) warm_excl: Vec<f64>,
    pub(crate) warm_calls: Vec<usize>,
    pub(crate) cold_ops: Vec<String>,
    /// One warm invocation: the function's own stretches and the AWS calls.
    pub(crate) timeline: String,
    pub(crate) warm_ops: Vec<String>,
    pub(crate) notes: Vec<String>,
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn aws_ms(calls: &[Call]) -> f64 {
    calls.iter().map(|c| ms(c.end - c.start)).sum()
}

/// `own 0.120 | GetItem 1.300 | own 0.210 | ...` (ms) for one invocation.
pub(crate) fn timeline(from: Instant, to: Instant, calls: &[Call]) -> String {
    let mut parts = Vec::new();
    let mut at = from;
    for c in calls {
        parts.push(format!(
            "own {:.3}",
            ms(c.start.saturating_duration_since(at))
        ));
        parts.push(format!("{} {:.3}", c.op, ms(c.end - c.start)));
        at = c.end;
    }
    parts.push(format!("own {:.3}", ms(to.saturating_duration_since(at))));
    parts.join(" | ")
}

pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// One cold start of `case` with event `i`: a fresh process (and
/// emulator), the event queued before the spawn.
pub(crate) fn cold_once(case: &Case, proxy: &Proxy, i: usize, m: &mut Measured) -> Res<()> {
    let mut env = case.env.clone();
    env.push(("AWS_ENDPOINT_URL".into(), proxy.url()));
    let emu = Emulator::start()?;
    let id = emu.push(&(case.event)(i));
    let mut p = Process::spawn(&case.binary, &emu, &env)?;
    let fail = |p: &Process, e: String| format!("{e}\n--- last output:\n{}", p.log());
    let d = emu
        .wait(&id, TIMEOUT, &mut || p.alive())
        .map_err(|e| fail(&p, e))?;
    (case.check)(&d.outcome).map_err(|e| fail(&p, e))?;
    let calls = proxy.calls_in(p.spawned, d.done);
    let total = ms(d.done - p.spawned);
    m.init
        .push(emu.first_next().map(|t| ms(t - p.spawned)).unwrap_or(total));
    m.cold.push(total);
    m.cold_excl.push(total - aws_ms(&calls));
    m.cold_calls.push(calls.len());
    if i == 0 {
        m.cold_ops = calls.iter().map(|c| c.op.clone()).collect();
        if let Outcome::Error(e) = &d.outcome {
            m.notes.push(format!("answered an error: {e}"));
        }
    }
    Ok(())
}

/// Warm: one process; event `first` starts it, then `warm` events queued
/// at once are served back to back.
pub(crate) fn warm_run(
    case: &Case,
    proxy: &Proxy,
    first: usize,
    warm: usize,
    m: &mut Measured,
) -> Res<()> {
    let mut env = case.env.clone();
    env.push(("AWS_ENDPOINT_URL".into(), proxy.url()));
    let emu = Emulator::start()?;
    let start = emu.push(&(case.event)(first));
    let mut p = Process::spawn(&case.binary, &emu, &env)?;
    let fail = |p: &Process, e: String| format!("{e}\n--- last output:\n{}", p.log());
    emu.wait(&start, TIMEOUT, &mut || p.alive())
        .map_err(|e| fail(&p, e))?;
    let ids: Vec<String> = (0..warm)
        .map(|i| emu.push(&(case.event)(first + 1 + i)))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let d = emu
            .wait(id, TIMEOUT, &mut || p.alive())
            .map_err(|e| fail(&p, e))?;
        (case.check)(&d.outcome).map_err(|e| fail(&p, e))?;
        let calls = proxy.calls_in(d.handed, d.done);
        let total = ms(d.done - d.handed);
        m.warm.push(total);
        m.warm_excl.push(total - aws_ms(&calls));
        m.warm_calls.push(calls.len());
        if i == warm / 2 {
            m.warm_ops = calls.iter().map(|c| c.op.clone()).collect();
            m.timeline = timeline(d.handed, d.done, &calls);
        }
    }
    Ok(())
}

/// Measures every case: the cold starts interleaved (repetition `i` of
/// each case, then `i + 1`), so that all see the same machine load; then
/// the warm runs. A case that fails is reported and left out.
pub(crate) fn measure(
    cases: &[Case],
    proxy: &Proxy,
    cold: usize,
    warm: usize,
) -> Vec<Res<Measured>> {
    let mut out: Vec<Res<Measured>> = cases.iter().map(|_| Ok(Measured::default())).collect();
    for i in 0..cold {
        for (case, r) in cases.iter().zip(out.iter_mut()) {
            if let Ok(m) = r {
                if let Err(e) = cold_once(case, proxy, i, m) {
                    *r = Err(e);
                }
            }
        }
    }
    for (case, r) in cases.iter().zip(out.iter_mut()) {
        eprintln!("warm: {} ...", case.label);
        if let Ok(m) = r {
            if let Err(e) = warm_run(case, proxy, cold, warm, m) {
                *r = Err(e);
            }
        }
    }
    out
}

/// The emulator with no function: this thread plays the runtime over one
/// keep-alive connection (`GET /next`, `POST /response` echoing the event).
pub(crate) fn measure_emulator(warm: usize) -> Res<Measured> {
    let emu = Emulator::start()?;
    let ids: Vec<String> = (0..warm)
        .map(|i| emu.push(&json!({"hello": "world", "n": i})))
        .collect();
    let conn = TcpStream::connect(&emu.addr).map_err(|e| e.to_string())?;
    let _ = conn.set_nodelay(true);
    let mut out = conn.try_clone().map_err(|e| e.to_string())?;
    let mut input = BufReader::new(conn);
    let host = emu.addr.clone();
    let client = std::thread::spawn(move || -> Res<()> {
        for _ in 0..warm {
            let get = format!("GET {NEXT} HTTP/1.1\r\nhost: {host}\r\n\r\n");
            out.write_all(get.as_bytes()).map_err(|e| e.to_string())?;
            let ev = read_message(&mut input, false)
                .map_err(|e| e.to_string())?
                .ok_or("closed")?;
            let id = ev
                .header("lambda-runtime-aws-request-id")
                .ok_or("no request id")?
                .to_string();
            let post = Message {
                first: format!("POST {INVOCATION}{id}/response HTTP/1.1"),
                headers: vec![("host".into(), host.clone())],
                body: ev.body,
                arrived: Instant::now(),
                close: false,
            };
            out.write_all(&post.to_bytes()).map_err(|e| e.to_string())?;
            read_message(&mut input, false)
                .map_err(|e| e.to_string())?
                .ok_or("closed")?;
        }
        Ok(())
    });
    let mut m = Measured::default();
    for id in &ids {
        let d = emu.wait(id, TIMEOUT, &mut || true)?;
        m.warm.push(ms(d.done - d.handed));
        m.warm_excl.push(ms(d.done - d.handed));
        m.warm_calls.push(0);
    }
    client
        .join()
        .map_err(|_| "the client thread panicked".to_string())??;
    Ok(m)
}
