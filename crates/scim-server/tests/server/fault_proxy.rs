//! The fault-injecting proxy of `scim-test-proxy`, placed between the
//! provisioning engine and a downstream SCIM server, with the target modes
//! the engine tests add: without PATCH, or answering 204 to PATCH and
//! leaving `members` out of groups. Faults are scripted per method with
//! [`scim_test_proxy::Proxy::fail_next`]; slow and down targets are
//! [`scim_test_proxy::Proxy::set_delay`] and [`scim_test_proxy::Proxy::down`].

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use scim_test_proxy::{Answer, Hooks, Request};
pub use scim_test_proxy::{Fault, Seen, scim_path};
use serde_json::Value;

#[derive(Debug, Default)]
struct Modes {
    /// Announce `patch.supported: false` and answer 501 to PATCH.
    no_patch: AtomicBool,
    /// Answer 204 to successful PATCHes and drop `members` from groups.
    terse_groups: AtomicBool,
}

impl Hooks for Modes {
    fn intercept(&self, req: &mut Request) -> Option<Answer> {
        if self.no_patch.load(Ordering::SeqCst) && req.method == "PATCH" {
            let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"501","detail":"PATCH is not supported"}"#;
            return Some(Answer::new(501, "application/scim+json", body));
        }
        None
    }

    fn rewrite(&self, req: &Request, answer: &mut Answer) {
        let path = scim_path(&req.target);
        if !(200..300).contains(&answer.status) {
            return;
        }
        if self.no_patch.load(Ordering::SeqCst)
            && path.starts_with("/ServiceProviderConfig")
            && let Ok(mut doc) = serde_json::from_slice::<Value>(&answer.body)
        {
            doc["patch"] = serde_json::json!({"supported": false});
            answer.body = doc.to_string().into_bytes();
        }
        if !self.terse_groups.load(Ordering::SeqCst) {
            return;
        }
        if req.method == "PATCH" {
            answer.status = 204;
            answer.body.clear();
            answer
                .headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        } else if path.starts_with("/Groups")
            && let Ok(mut doc) = serde_json::from_slice::<Value>(&answer.body)
        {
            strip_members(&mut doc);
            answer.body = doc.to_string().into_bytes();
        }
    }
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

/// The proxy; stops when dropped. The scripting, the log of requests and
/// taking the target down are those of [`scim_test_proxy::Proxy`].
#[derive(Debug)]
pub struct FaultProxy {
    inner: scim_test_proxy::Proxy,
    modes: Arc<Modes>,
}

impl Deref for FaultProxy {
    type Target = scim_test_proxy::Proxy;

    fn deref(&self) -> &Self::Target {
        &self.inner
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
        let modes = Arc::new(Modes::default());
        let inner = scim_test_proxy::Proxy::start_with(0, upstream, modes.clone()).await;
        Self { inner, modes }
    }

    /// The SCIM base URL through the proxy (the downstream is one of ours).
    pub fn scim_base(&self) -> String {
        format!("{}/scim/v2", self.root())
    }

    /// A target without PATCH.
    pub fn set_no_patch(&self, on: bool) {
        self.modes.no_patch.store(on, Ordering::SeqCst);
    }

    /// A target answering 204 to PATCH and omitting group members.
    pub fn set_terse_groups(&self, on: bool) {
        self.modes.terse_groups.store(on, Ordering::SeqCst);
    }
}
