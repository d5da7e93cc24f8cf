//! A fault-injecting HTTP/1.1 proxy on loopback, placed between the
//! provisioning engine and a downstream SCIM server. One request per
//! connection (answers always close it). Faults are scripted per method:
//! each request takes the first queued fault for its method (or for any
//! method), else passes through. Modes change the whole target: slow,
//! down (connections refused), without PATCH, or answering 204 to PATCH
//! and leaving `members` out of groups. Every request is recorded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After`) without forwarding.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Answer 429 with `Retry-After` as an HTTP date this far after the
    /// moment of the answer (whole seconds, so at least one second less).
    RetryAt(Duration),
    /// Say nothing for this long, then close, without forwarding.
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
        }
    }

    /// A status with `Retry-After`.
    pub fn retry_after(status: u16, value: &str) -> Self {
        Self::Status {
            status,
            retry_after: Some(value.into()),
        }
    }
}

/// A request the proxy saw and what it answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The JSON body (`Null` when none).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The status answered (`None`: no answer).
    pub status: Option<u16>,
}

#[derive(Debug, Default)]
struct State {
    /// `(method or None for any, fault)`.
    faults: VecDeque<(Option<String>, Fault)>,
    seen: Vec<Seen>,
    /// Added before each forwarded request.
    delay: Duration,
    /// Announce `patch.supported: false` and answer 501 to PATCH.
    no_patch: bool,
    /// Answer 204 to successful PATCHes and drop `members` from groups.
    terse_groups: bool,
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(t) = self.lock_task().take() {
            t.abort();
        }
    }
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of the server at
    /// `upstream_base` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream_base: &str) -> Self {
        let upstream: SocketAddr = upstream_base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("an http://IP:PORT upstream");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("proxy address");
        let proxy = Self {
            addr,
            upstream,
            state: Arc::new(Mutex::new(State::default())),
            task: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn lock_task(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let upstream = self.upstream;
        // Runs until the proxy is dropped or taken down (task aborted,
        // which closes the listener).
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = handle(conn, upstream, state).await;
                });
            }
        });
        *self.lock_task() = Some(task);
    }

    /// The SCIM base URL through the proxy (the downstream is one of ours).
    pub fn scim_base(&self) -> String {
        format!("http://{}/scim/v2", self.addr)
    }

    /// The proxy's root URL, for downstreams serving SCIM at `/`.
    pub fn root(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next request with this method (`None`: any) gets `fault`.
    pub fn fail_next(&self, method: Option<&str>, fault: Fault) {
        self.state()
            .faults
            .push_back((method.map(str::to_owned), fault));
    }

    /// Faults still queued.
    pub fn pending_faults(&self) -> usize {
        self.state().faults.len()
    }

    /// Delays every forwarded request.
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// A target without PATCH.
    pub fn set_no_patch(&self, on: bool) {
        self.state().no_patch = on;
    }

    /// A target answering 204 to PATCH and omitting group members.
    pub fn set_terse_groups(&self, on: bool) {
        self.state().terse_groups = on;
    }

    /// Stops listening: connections are refused until [`FaultProxy::up`].
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
        self.state().seen.clone()
    }

    /// The requests seen with `method` whose path starts with `prefix`
    /// (after the `/scim/v2` of our own servers, if any).
    pub fn seen_matching(&self, method: &str, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && scim_path(&s.target).starts_with(prefix))
            .collect()
    }

    /// Forgets the requests seen.
    pub fn clear(&self) {
        self.state().seen.clear();
    }
}

/// `target` without the `/scim/v2` prefix of our servers.
pub fn scim_path(target: &str) -> &str {
    target.strip_prefix("/scim/v2").unwrap_or(target)
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
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
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
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

fn response(status: u16, extra: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A parsed answer of the downstream.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
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

/// Removes `members` from a group or from each group of a list.
fn strip_members(doc: &mut Value) {
    if let Some(items) = doc.get_mut("Resources").and_then(Value::as_array_mut) {
        for item in items {
            strip_members(item);
        }
    }
    if let Value::Object(o) = doc {
        o.remove("members");
    }
}

fn take_fault(st: &mut State, method: &str) -> Option<Fault> {
    let i = st
        .faults
        .iter()
        .position(|(m, _)| m.as_deref().is_none_or(|m| m == method))?;
    st.faults.remove(i).map(|(_, f)| f)
}

async fn handle(
    mut conn: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let req = read_request(&mut conn).await?;
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let (index, fault, delay, no_patch, terse) = {
        let mut st = lock();
        st.seen.push(Seen {
            method: req.method.clone(),
            target: req.target.clone(),
            body: serde_json::from_slice(&req.body).unwrap_or(Value::Null),
            at: Instant::now(),
            status: None,
        });
        let fault = take_fault(&mut st, &req.method);
        (
            st.seen.len() - 1,
            fault,
            st.delay,
            st.no_patch,
            st.terse_groups,
        )
    };
    let answered = |status: u16| lock().seen[index].status = Some(status);
    let mut lose_answer = None;
    match fault {
        None => {}
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            answered(status);
            let extra: Vec<(String, String)> = retry_after
                .map(|v| vec![("Retry-After".to_owned(), v)])
                .unwrap_or_default();
            return conn.write_all(&response(status, &extra, b"")).await;
        }
        Some(Fault::RetryAt(d)) => {
            answered(429);
            let at = chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or_default();
            let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            let extra = vec![("Retry-After".to_owned(), date)];
            return conn.write_all(&response(429, &extra, b"")).await;
        }
        Some(Fault::Hang(d)) => {
            tokio::time::sleep(d).await;
            return Ok(());
        }
        Some(Fault::LoseAnswer(d)) => lose_answer = Some(d),
    }
    if no_patch && req.method == "PATCH" {
        answered(501);
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"501","detail":"PATCH is not supported"}"#;
        let ct = vec![(
            "Content-Type".to_owned(),
            "application/scim+json".to_owned(),
        )];
        return conn.write_all(&response(501, &ct, body)).await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut up = TcpStream::connect(upstream).await?;
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
        return conn.write_all(&raw).await;
    };
    let path = scim_path(&req.target).to_owned();
    let ok = (200..300).contains(&answer.status);
    if ok
        && no_patch
        && path.starts_with("/ServiceProviderConfig")
        && let Ok(mut doc) = serde_json::from_slice::<Value>(&answer.body)
    {
        doc["patch"] = serde_json::json!({"supported": false});
        answer.body = doc.to_string().into_bytes();
    }
    if ok && terse && req.method == "PATCH" {
        answer.status = 204;
        answer.body.clear();
        answer
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
    } else if ok
        && terse
        && path.starts_with("/Groups")
        && let Ok(mut doc) = serde_json::from_slice::<Value>(&answer.body)
    {
        strip_members(&mut doc);
        answer.body = doc.to_string().into_bytes();
    }
    answered(answer.status);
    conn.write_all(&response(answer.status, &answer.headers, &answer.body))
        .await?;
    conn.shutdown().await
}
