//! Plain HTTP/1.1 on std threads, and the recording proxy between the
//! functions and moto: every AWS call a function makes, with its
//! operation and timing (the Lambda benchmark's timeline; the tests'
//! check that no function ever Scans).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Errors as text: this is test and benchmark plumbing.
pub type Res<T> = Result<T, String>;

/// One HTTP/1.1 message (request or response), body de-chunked.
pub struct Message {
    pub first: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the first line arrived.
    pub arrived: Instant,
    /// The peer ends the connection after this message.
    pub close: bool,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The message with `content-length` framing, in one buffer (one write:
    /// no Nagle/delayed-ACK stall between head and body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        out.extend_from_slice(self.first.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (k, v) in &self.headers {
            if [
                "content-length",
                "transfer-encoding",
                "connection",
                "keep-alive",
            ]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
            {
                continue;
            }
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

pub fn read_line(r: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// Reads one message; `None` when the peer closed the connection first.
/// `head` tells that a response answers a `HEAD` request (no body).
pub fn read_message(r: &mut impl BufRead, head: bool) -> std::io::Result<Option<Message>> {
    let Some(first) = read_line(r)? else {
        return Ok(None);
    };
    let arrived = Instant::now();
    let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
    let mut headers = Vec::new();
    loop {
        let h = read_line(r)?.ok_or_else(eof)?;
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut m = Message {
        first,
        headers,
        body: Vec::new(),
        arrived,
        close: false,
    };
    let response = m.first.starts_with("HTTP/");
    let status: u16 = m
        .first
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    m.close = m.first.starts_with("HTTP/1.0")
        || m.header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
    let chunked = m
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = m
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    if response && (head || status < 200 || status == 204 || status == 304) {
        // No body.
    } else if chunked {
        loop {
            let size = read_line(r)?.ok_or_else(eof)?;
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size '{size}'")))?;
            if size == 0 {
                while !read_line(r)?.ok_or_else(eof)?.is_empty() {}
                break;
            }
            let at = m.body.len();
            m.body.resize(at + size, 0);
            r.read_exact(&mut m.body[at..])?;
            read_line(r)?;
        }
    } else if let Some(n) = length {
        m.body.resize(n, 0);
        r.read_exact(&mut m.body)?;
    } else if response {
        r.read_to_end(&mut m.body)?;
        m.close = true;
    }
    Ok(Some(m))
}

/// Accepts connections on a free loopback port, one thread each; `handle`
/// serves one connection. Returns `127.0.0.1:<port>`.
pub fn serve(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Res<String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?
        .to_string();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = conn.set_nodelay(true);
            let h = handle.clone();
            std::thread::spawn(move || h(conn));
        }
    });
    Ok(addr)
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------- timing proxy

/// One AWS call as the proxy saw it.
#[derive(Clone)]
pub struct Call {
    pub start: Instant,
    pub end: Instant,
    pub op: String,
}

/// Forwards every request to the upstream (moto) and records its timing.
pub struct Proxy {
    pub addr: String,
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// Connections the functions opened to the proxy.
    pub connections: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Res<Self> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let log = calls.clone();
        let connections: Arc<AtomicUsize> = Arc::default();
        let n = connections.clone();
        let addr = serve(move |client| {
            n.fetch_add(1, Ordering::Relaxed);
            let _ = proxy_connection(client, &upstream, &log);
        })?;
        Ok(Proxy {
            addr,
            calls,
            connections,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The calls that started and ended inside `[from, to]`.
    pub fn calls_in(&self, from: Instant, to: Instant) -> Vec<Call> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.start >= from && c.end <= to)
            .cloned()
            .collect()
    }
}

pub fn proxy_connection(client: TcpStream, upstream: &str, log: &Mutex<Vec<Call>>) -> Res<()> {
    let mut out = client.try_clone().map_err(|e| e.to_string())?;
    let mut input = BufReader::new(client);
    let mut up: Option<(TcpStream, BufReader<TcpStream>)> = None;
    while let Some(req) = read_message(&mut input, false).map_err(|e| e.to_string())? {
        let head = req.first.starts_with("HEAD ");
        let op = req
            .header("x-amz-target")
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| {
                let mut p = req.first.split_whitespace();
                format!("{} {}", p.next().unwrap_or(""), p.next().unwrap_or(""))
            });
        let (mut w, mut r) = match up.take() {
            Some(c) => c,
            None => {
                let s = TcpStream::connect(upstream).map_err(|e| format!("{upstream}: {e}"))?;
                let _ = s.set_nodelay(true);
                let r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
                (s, r)
            }
        };
        w.write_all(&req.to_bytes()).map_err(|e| e.to_string())?;
        let resp = read_message(&mut r, head)
            .map_err(|e| e.to_string())?
            .ok_or("upstream closed the connection")?;
        if !resp.close {
            up = Some((w, r));
        }
        // Logged before the answer goes back, so the call is on record (and
        // ends) before the function can act on it; the write itself counts
        // as the function's time.
        let bytes = resp.to_bytes();
        lock(log).push(Call {
            start: req.arrived,
            end: Instant::now(),
            op,
        });
        // The client's connection stays open, as with the real endpoints.
        out.write_all(&bytes).map_err(|e| e.to_string())?;
        if req.close {
            return Ok(());
        }
    }
    Ok(())
}
