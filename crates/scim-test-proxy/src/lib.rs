//! A fault-injecting HTTP/1.1 proxy on loopback, in front of a real
//! server, for the integration tests of scim-client and scim-server.
//!
//! One request per connection (answers always close it). Each request
//! takes the first queued [`Fault`] for its method (or for any method),
//! else passes through; a suite's own behaviour (a token endpoint, a
//! target without PATCH) goes in its [`Hooks`]. Every request is recorded
//! with the status answered. Only 127.0.0.1 is ever bound.
//!
//! ```no_run
//! # async fn example(upstream: std::net::SocketAddr) {
//! use scim_test_proxy::{Fault, Proxy};
//!
//! let proxy = Proxy::start(upstream).await;
//! proxy.push([Fault::retry_after(429, "1")]);
//! // ... send requests to proxy.root() ...
//! assert_eq!(proxy.seen()[0].status, Some(429));
//! # }
//! ```

#![deny(missing_docs)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward it.
    Pass,
    /// Answer with this status (and `Retry-After`, body) without forwarding.
    Status {
        /// The status code.
        status: u16,
        /// A `Retry-After` value.
        retry_after: Option<String>,
        /// The body.
        body: String,
    },
    /// Answer 429 with `Retry-After` as an HTTP date this far after the
    /// moment of the answer (whole seconds, so at least one second less).
    RetryAt(Duration),
    /// Read the request, then close the connection without an answer.
    Drop,
    /// Read the request, then say nothing for this long and close,
    /// without forwarding.
    Hang(Duration),
    /// Forward the request (the downstream carries it out), then say
    /// nothing for this long and close: an answer lost on the way back.
    LoseAnswer(Duration),
}

impl Fault {
    /// A bare status.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
            body: String::new(),
        }
    }

    /// A status with `Retry-After`.
    pub fn retry_after(status: u16, retry_after: &str) -> Self {
        Self::Status {
            status,
            retry_after: Some(retry_after.to_owned()),
            body: String::new(),
        }
    }
}

/// A request the proxy saw and what it answered.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The request target (path and query), as sent.
    pub target: String,
    /// The JSON body (`Null` when none or not JSON).
    pub body: Value,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// When it arrived.
    pub at: Instant,
    /// The status answered (`None`: no answer).
    pub status: Option<u16>,
}

/// A request as read from the client.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: String,
    /// The request target; [`Hooks::intercept`] may change it before it
    /// is forwarded.
    pub target: String,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// An answer, from the downstream or made up by the proxy.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, without `Content-Length`, `Transfer-Encoding` and
    /// `Connection` (the proxy sets those).
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Answer {
    /// An answer with a `Content-Type` and a body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }
}

/// A suite's own behaviour of the target, beyond the scripted faults.
pub trait Hooks: std::fmt::Debug + Send + Sync + 'static {
    /// Called for a request no fault stopped: answer it here (`Some`)
    /// instead of forwarding it, or change its target before it goes on.
    fn intercept(&self, req: &mut Request) -> Option<Answer> {
        let _ = req;
        None
    }

    /// Changes the downstream's answer before it goes back.
    fn rewrite(&self, req: &Request, answer: &mut Answer) {
        let _ = (req, answer);
    }
}

/// A target that behaves as the downstream does.
#[derive(Debug)]
struct Plain;

impl Hooks for Plain {}

#[derive(Debug, Default)]
struct State {
    /// `(method or None for any, fault)`.
    faults: VecDeque<(Option<String>, Fault)>,
    seen: Vec<Seen>,
    /// Added before each forwarded request.
    delay: Duration,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    hooks: Arc<dyn Hooks>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = self.lock_task().take() {
            t.abort();
        }
    }
}

impl Proxy {
    /// A proxy on a free loopback port in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_with(0, upstream, Arc::new(Plain)).await
    }

    /// A proxy on loopback `port` (0: a free one) in front of `upstream`,
    /// with a suite's own [`Hooks`].
    pub async fn start_with(port: u16, upstream: SocketAddr, hooks: Arc<dyn Hooks>) -> Self {
        assert!(upstream.ip().is_loopback(), "a loopback upstream");
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let proxy = Self {
            addr,
            shared: Arc::new(Shared {
                upstream,
                state: Mutex::new(State::default()),
                hooks,
            }),
            task: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn lock_task(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        // Runs until the proxy is dropped or taken down (task aborted,
        // which closes the listener).
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = handle(conn, &shared).await;
                });
            }
        });
        *self.lock_task() = Some(task);
    }

    /// The proxy's root URL (`http://127.0.0.1:PORT`).
    pub fn root(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Scripts the next requests, whatever their method.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared
            .state()
            .faults
            .extend(faults.into_iter().map(|f| (None, f)));
    }

    /// The next request with this method (`None`: any) gets `fault`.
    pub fn fail_next(&self, method: Option<&str>, fault: Fault) {
        self.shared
            .state()
            .faults
            .push_back((method.map(str::to_owned), fault));
    }

    /// Faults still queued.
    pub fn pending_faults(&self) -> usize {
        self.shared.state().faults.len()
    }

    /// Delays every forwarded request.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.state().delay = delay;
    }

    /// Stops listening: connections are refused until [`Proxy::up`].
    pub async fn down(&self) {
        let task = self.lock_task().take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) {
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        self.serve(listener.expect("rebind the proxy port"));
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state().seen.clone()
    }

    /// The requests seen with `method` whose target starts with `prefix`
    /// (after the `/scim/v2` of our own servers, if any: see [`scim_path`]).
    pub fn seen_matching(&self, method: &str, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && scim_path(&s.target).starts_with(prefix))
            .collect()
    }

    /// Forgets the requests seen.
    pub fn clear(&self) {
        self.shared.state().seen.clear();
    }
}

/// `target` without the `/scim/v2` prefix of our servers.
pub fn scim_path(target: &str) -> &str {
    target.strip_prefix("/scim/v2").unwrap_or(target)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Splits an HTTP head into its first line and headers.
fn parse_head(head: &str) -> (&str, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    (first, headers)
}

async fn read_request(conn: &mut TcpStream) -> std::io::Result<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("head too large"));
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let (first, headers) = parse_head(&head);
    let mut first = first.split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let length: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Request {
        method,
        target,
        headers,
        body,
    })
}

fn encode(answer: &Answer) -> Vec<u8> {
    let status = answer.status;
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in &answer.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", answer.body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(&answer.body);
    out
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let (first, headers) = parse_head(&head);
    let status = first.split(' ').nth(1)?.parse().ok()?;
    let mut body = raw[end + 4..].to_vec();
    if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    }
    Some(Answer {
        status,
        headers: headers
            .into_iter()
            .filter(|(k, _)| {
                !["content-length", "transfer-encoding", "connection"]
                    .iter()
                    .any(|h| k.eq_ignore_ascii_case(h))
            })
            .collect(),
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    // At most one chunk per byte: bounded.
    for _ in 0..=data.len() {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
    None
}

fn take_fault(st: &mut State, method: &str) -> Option<Fault> {
    let i = st
        .faults
        .iter()
        .position(|(m, _)| m.as_deref().is_none_or(|m| m == method))?;
    st.faults.remove(i).map(|(_, f)| f)
}

async fn handle(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut req = read_request(&mut conn).await?;
    let (index, fault, delay) = {
        let mut st = shared.state();
        st.seen.push(Seen {
            method: req.method.clone(),
            target: req.target.clone(),
            body: serde_json::from_slice(&req.body).unwrap_or(Value::Null),
            authorization: req.header("authorization").map(str::to_owned),
            at: Instant::now(),
            status: None,
        });
        let fault = take_fault(&mut st, &req.method);
        (st.seen.len() - 1, fault, st.delay)
    };
    let answered = |status: u16| shared.state().seen[index].status = Some(status);
    let mut lose_answer = None;
    let made_up = match fault.unwrap_or(Fault::Pass) {
        Fault::Pass => shared.hooks.intercept(&mut req),
        Fault::Status {
            status,
            retry_after,
            body,
        } => {
            let headers = retry_after
                .map(|v| vec![("Retry-After".to_owned(), v)])
                .unwrap_or_default();
            Some(Answer {
                status,
                headers,
                body: body.into_bytes(),
            })
        }
        Fault::RetryAt(d) => {
            let date = httpdate::fmt_http_date(SystemTime::now() + d);
            Some(Answer {
                status: 429,
                headers: vec![("Retry-After".to_owned(), date)],
                body: Vec::new(),
            })
        }
        Fault::Drop => return Ok(()),
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            return Ok(());
        }
        Fault::LoseAnswer(d) => {
            lose_answer = Some(d);
            shared.hooks.intercept(&mut req)
        }
    };
    if let Some(answer) = made_up {
        answered(answer.status);
        return conn.write_all(&encode(&answer)).await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut up = TcpStream::connect(shared.upstream).await?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("keep-alive") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes()).await?;
    up.write_all(&req.body).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), up.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("upstream timed out"))??;
    if let Some(d) = lose_answer {
        tokio::time::sleep(d).await;
        return Ok(());
    }
    let Some(mut answer) = parse_answer(&raw) else {
        conn.write_all(&raw).await?;
        return conn.shutdown().await;
    };
    shared.hooks.rewrite(&req, &mut answer);
    answered(answer.status);
    conn.write_all(&encode(&answer)).await?;
    conn.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_answers_are_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: W/\"1\"\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let answer = parse_answer(raw).expect("an answer");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"abcde");
        assert_eq!(
            answer.headers,
            vec![("ETag".to_owned(), "W/\"1\"".to_owned())]
        );
    }

    #[test]
    fn truncated_chunks_are_refused() {
        assert_eq!(dechunk(b"5\r\nab"), None);
        assert_eq!(dechunk(b"zz\r\n"), None);
    }

    #[test]
    fn a_fault_goes_to_the_first_request_of_its_method() {
        let mut st = State::default();
        st.faults
            .push_back((Some("PATCH".into()), Fault::status(500)));
        st.faults.push_back((None, Fault::status(503)));
        let status = |f: Option<Fault>| match f {
            Some(Fault::Status { status, .. }) => Some(status),
            _ => None,
        };
        assert_eq!(status(take_fault(&mut st, "GET")), Some(503));
        assert_eq!(status(take_fault(&mut st, "GET")), None);
        assert_eq!(status(take_fault(&mut st, "PATCH")), Some(500));
        assert!(st.faults.is_empty());
    }

    #[test]
    fn encoded_answers_close_and_carry_their_length() {
        let answer = Answer::new(201, "application/scim+json", "{}");
        assert_eq!(
            encode(&answer),
            b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Type: application/scim+json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }
}
