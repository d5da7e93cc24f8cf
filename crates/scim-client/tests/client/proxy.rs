//! A small fault-injecting HTTP/1.1 proxy on loopback, in front of a real
//! server. One request per connection (it always closes), which is all
//! the client under test needs. Each request takes the next scripted
//! [`Fault`] (or passes through when none is left) and is logged.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Read the request, then close the connection without an answer.
    Drop,
    /// Read the request, then say nothing for this long and close.
    Hang(Duration),
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
            retry_after: Some(retry_after.to_string()),
            body: String::new(),
        }
    }
}

/// A request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// When it arrived.
    pub at: Instant,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    faults: VecDeque<Fault>,
    seen: Vec<Seen>,
    /// Strip the bodies of successful answers to these methods (PATCH and
    /// PUT become 204; POST keeps its status and Location).
    empty_bodies: Vec<String>,
    /// Serve the ServiceProviderConfig only under the plural spelling.
    plural_config: bool,
    /// `(expected Authorization, token)`: answer POST /oauth/token.
    token_endpoint: Option<(String, String)>,
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy on a free port in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_on(0, upstream).await
    }

    /// A proxy on `port` in front of `upstream`.
    pub async fn start_on(port: u16, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        // Runs until the proxy is dropped (the task is aborted).
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = handle(conn, upstream, state).await;
                });
            }
        });
        Self { addr, state, task }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The SCIM base URL through the proxy.
    pub fn base(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// Scripts the next requests.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    /// Strips the bodies of successful answers to these methods.
    pub fn empty_bodies(&self, methods: &[&str]) {
        self.state().empty_bodies = methods.iter().map(|m| m.to_string()).collect();
    }

    /// Serves the ServiceProviderConfig only as `/ServiceProviderConfigs`.
    pub fn plural_config(&self) {
        self.state().plural_config = true;
    }

    /// Answers `POST /oauth/token` with `token` when the request carries
    /// `expected_authorization`, else 401 `invalid_client`.
    pub fn token_endpoint(&self, expected_authorization: &str, token: &str) {
        self.state().token_endpoint = Some((expected_authorization.into(), token.into()));
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// The requests seen with this method whose target starts with `prefix`.
    pub fn seen_matching(&self, method: &str, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && s.target.starts_with(prefix))
            .collect()
    }

    /// Forgets the requests seen.
    pub fn clear(&self) {
        self.state().seen.clear();
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_request(conn: &mut TcpStream) -> std::io::Result<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
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
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
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

fn response(status: u16, extra: &[(&str, &str)], body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

async fn handle(
    mut conn: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let mut req = read_request(&mut conn).await?;
    let (fault, empty_bodies, plural, token) = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.seen.push(Seen {
            method: req.method.clone(),
            target: req.target.clone(),
            at: Instant::now(),
            authorization: req.header("authorization").map(str::to_string),
        });
        (
            st.faults.pop_front().unwrap_or(Fault::Pass),
            st.empty_bodies.clone(),
            st.plural_config,
            st.token_endpoint.clone(),
        )
    };
    match fault {
        Fault::Pass => {}
        Fault::Status {
            status,
            retry_after,
            body,
        } => {
            let mut extra = Vec::new();
            if let Some(ra) = &retry_after {
                extra.push(("Retry-After", ra.as_str()));
            }
            return conn.write_all(&response(status, &extra, &body)).await;
        }
        Fault::Drop => return Ok(()),
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            return Ok(());
        }
    }
    if req.target == "/oauth/token"
        && let Some((expected, token)) = token
    {
        let answer = if req.header("authorization") == Some(expected.as_str()) {
            let body =
                format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#);
            response(200, &[("Content-Type", "application/json")], &body)
        } else {
            let body = r#"{"error":"invalid_client","error_description":"unknown client"}"#;
            response(401, &[("Content-Type", "application/json")], body)
        };
        return conn.write_all(&answer).await;
    }
    if plural {
        if req.target.ends_with("/ServiceProviderConfig") {
            let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"no such endpoint"}"#;
            return conn.write_all(&response(404, &[], body)).await;
        }
        if let Some(stem) = req.target.strip_suffix("/ServiceProviderConfigs") {
            req.target = format!("{stem}/ServiceProviderConfig");
        }
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
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), up.read_to_end(&mut answer))
        .await
        .map_err(|_| std::io::Error::other("upstream timed out"))??;
    if empty_bodies.iter().any(|m| m == &req.method) {
        answer = strip_body(&answer, &req.method);
    }
    conn.write_all(&answer).await?;
    conn.shutdown().await
}

/// The answer without its body: PATCH and PUT successes become 204; other
/// successes keep their status, `Location` and `ETag`.
fn strip_body(answer: &[u8], method: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(answer);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    if !(200..300).contains(&status) {
        return answer.to_vec();
    }
    let kept: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("location") || k.eq_ignore_ascii_case("etag"))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let extra: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let status = if method == "PATCH" || method == "PUT" {
        204
    } else {
        status
    };
    response(status, &extra, "")
}
