//! The fault-injecting proxy of `scim-test-proxy` in front of a real
//! server, with what the client tests add: bodies stripped from answers,
//! the ServiceProviderConfig only under its plural spelling, and an OAuth
//! token endpoint.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use scim_test_proxy::{Answer, Hooks, Request};
pub use scim_test_proxy::{Fault, Seen};

#[derive(Debug, Default)]
struct Rules {
    /// Strip the bodies of successful answers to these methods (PATCH and
    /// PUT become 204; POST keeps its status and Location).
    empty_bodies: Vec<String>,
    /// Serve the ServiceProviderConfig only under the plural spelling.
    plural_config: bool,
    /// `(expected Authorization, token)`: answer POST /oauth/token.
    token_endpoint: Option<(String, String)>,
}

#[derive(Debug, Default)]
struct ClientHooks(Mutex<Rules>);

impl ClientHooks {
    fn rules(&self) -> MutexGuard<'_, Rules> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Hooks for ClientHooks {
    fn intercept(&self, req: &mut Request) -> Option<Answer> {
        let rules = self.rules();
        if req.target == "/oauth/token"
            && let Some((expected, token)) = &rules.token_endpoint
        {
            let json = "application/json";
            return Some(if req.header("authorization") == Some(expected.as_str()) {
                let body = format!(
                    r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#
                );
                Answer::new(200, json, body)
            } else {
                let body = r#"{"error":"invalid_client","error_description":"unknown client"}"#;
                Answer::new(401, json, body)
            });
        }
        if rules.plural_config {
            if req.target.ends_with("/ServiceProviderConfig") {
                let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"no such endpoint"}"#;
                return Some(Answer {
                    status: 404,
                    headers: Vec::new(),
                    body: body.into(),
                });
            }
            if let Some(stem) = req.target.strip_suffix("/ServiceProviderConfigs") {
                req.target = format!("{stem}/ServiceProviderConfig");
            }
        }
        None
    }

    /// Without its body: PATCH and PUT successes become 204; other
    /// successes keep their status, `Location` and `ETag`.
    fn rewrite(&self, req: &Request, answer: &mut Answer) {
        if !self.rules().empty_bodies.contains(&req.method) || !(200..300).contains(&answer.status)
        {
            return;
        }
        answer
            .headers
            .retain(|(k, _)| k.eq_ignore_ascii_case("location") || k.eq_ignore_ascii_case("etag"));
        answer.body.clear();
        if req.method == "PATCH" || req.method == "PUT" {
            answer.status = 204;
        }
    }
}

/// The proxy; stops when dropped. The scripting and the log of requests
/// are those of [`scim_test_proxy::Proxy`].
#[derive(Debug)]
pub struct Proxy {
    inner: scim_test_proxy::Proxy,
    hooks: Arc<ClientHooks>,
}

impl Deref for Proxy {
    type Target = scim_test_proxy::Proxy;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Proxy {
    /// A proxy on a free port in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_on(0, upstream).await
    }

    /// A proxy on `port` in front of `upstream`.
    pub async fn start_on(port: u16, upstream: SocketAddr) -> Self {
        let hooks = Arc::new(ClientHooks::default());
        let inner = scim_test_proxy::Proxy::start_with(port, upstream, hooks.clone()).await;
        Self { inner, hooks }
    }

    /// The SCIM base URL through the proxy.
    pub fn base(&self) -> String {
        format!("{}/v2", self.root())
    }

    /// Strips the bodies of successful answers to these methods.
    pub fn empty_bodies(&self, methods: &[&str]) {
        self.hooks.rules().empty_bodies = methods.iter().map(|m| m.to_string()).collect();
    }

    /// Serves the ServiceProviderConfig only as `/ServiceProviderConfigs`.
    pub fn plural_config(&self) {
        self.hooks.rules().plural_config = true;
    }

    /// Answers `POST /oauth/token` with `token` when the request carries
    /// `expected_authorization`, else 401 `invalid_client`.
    pub fn token_endpoint(&self, expected_authorization: &str, token: &str) {
        self.hooks.rules().token_endpoint = Some((expected_authorization.into(), token.into()));
    }
}
