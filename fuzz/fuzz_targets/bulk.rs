//! `POST /Bulk` bodies through the app the server runs, in-process over an
//! in-memory SQLite store. Each input gets a fresh tenant holding a User
//! `alice` and a Group `team` (with alice). The body is either the input
//! itself (first byte even: JSON-ish bytes, mutated from seeds) or built
//! from a compact encoding of operations over known targets, templates,
//! bulkId references (forward, circular, unknown, failed) and
//! `failOnErrors` (first byte odd), so that deep states come quickly.
//!
//! Properties: nothing panics; no answer is a 5xx; the tenant's resources
//! after the request are exactly explained by it:
//! - a refused request (any status but 200) changed nothing;
//! - resources created = successful POSTs (a resource created and then
//!   undone because its reference failed must not stay), each at the
//!   location its operation answered;
//! - resources gone = successful DELETEs;
//! - a resource whose version changed was the location of a successful
//!   operation (or is a Group that lost a deleted member).
//!
//! Run (see docs/TESTING.md):
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run -s none bulk -- -max_total_time=600 -dict=bulk.dict
//! ```

#![no_main]

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::Method;
use libfuzzer_sys::fuzz_target;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

#[path = "common/server.rs"]
mod server;

use server::{World, assert_no_5xx};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

thread_local! {
    static INPUTS: Cell<u64> = const { Cell::new(0) };
}

/// `(endpoint, id) -> meta.version` of every User and Group of the tenant.
type Snapshot = BTreeMap<(String, String), String>;

fn snapshot(world: &World, token: &str) -> Snapshot {
    let mut out = Snapshot::new();
    for endpoint in ["Users", "Groups"] {
        let answer = world.request(
            Method::GET,
            &format!("/scim/v2/{endpoint}?count=1000"),
            token,
            None,
        );
        assert_eq!(answer.status, 200, "listing {endpoint}");
        let list: Value = serde_json::from_slice(&answer.body).expect("a list response");
        let resources = list["Resources"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            list["totalResults"].as_u64(),
            Some(resources.len() as u64),
            "one page holds the tenant"
        );
        for r in resources {
            let id = r["id"].as_str().expect("an id").to_owned();
            let version = r["meta"]["version"].as_str().unwrap_or_default().to_owned();
            out.insert((endpoint.to_owned(), id), version);
        }
    }
    out
}

fn create(world: &World, token: &str, endpoint: &str, body: Value) -> String {
    let answer = world.request(
        Method::POST,
        &format!("/scim/v2/{endpoint}"),
        token,
        Some(body.to_string().into_bytes()),
    );
    assert_eq!(answer.status, 201, "seeding {endpoint}");
    let doc: Value = serde_json::from_slice(&answer.body).expect("a resource");
    doc["id"].as_str().expect("an id").to_owned()
}

/// The body of a compact input: operations of three bytes each.
fn compact(data: &[u8], alice: &str, team: &str) -> Value {
    let fail_on_errors = data.first().map_or(0, |b| b >> 1);
    let mut ops = Vec::new();
    for (n, chunk) in data.get(1..).unwrap_or_default().chunks(3).take(24).enumerate() {
        let [a, b, c] = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let method = ["POST", "PUT", "PATCH", "DELETE"][usize::from(a % 4)];
        let endpoint = if a & 4 == 0 { "Users" } else { "Groups" };
        let k = b >> 2;
        let bulk_ref = format!("bulkId:b{}", k % 4);
        let target = match b % 4 {
            0 => alice.to_owned(),
            1 => team.to_owned(),
            2 => bulk_ref.clone(),
            _ => "missing".to_owned(),
        };
        let j = c >> 3;
        let other_ref = format!("bulkId:b{}", j % 4);
        let user_data = match c % 8 {
            0 => json!({"schemas": [USER], "userName": format!("u{n}")}),
            1 => json!({"schemas": [USER], "userName": "alice"}),
            2 => json!({"schemas": [USER]}),
            3 => json!({"schemas": [USER], "userName": format!("u{n}"), "emails": [{"value": 3}]}),
            4 => json!({"schemas": [USER, ENTERPRISE], "userName": format!("u{n}"),
                        ENTERPRISE: {"manager": {"value": other_ref}}}),
            5 => json!({"schemas": [USER], "userName": format!("u{n}"), "active": "yes"}),
            6 => json!({"schemas": [USER], "userName": format!("U{}", j % 3), "displayName": "\u{0}"}),
            _ => json!({"schemas": [GROUP], "userName": format!("u{n}")}),
        };
        let group_data = match c % 8 {
            0 => json!({"schemas": [GROUP], "displayName": format!("g{n}")}),
            1 => json!({"schemas": [GROUP], "displayName": "team"}),
            2 => json!({"schemas": [GROUP], "displayName": format!("g{n}"),
                        "members": [{"value": other_ref}]}),
            3 => json!({"schemas": [GROUP], "displayName": format!("g{n}"),
                        "members": [{"value": "nonexistent"}]}),
            4 => json!({"schemas": [GROUP], "displayName": format!("g{n}"),
                        "members": [{"value": alice}, {"value": other_ref, "type": "Group"}]}),
            5 => json!({"schemas": [GROUP]}),
            6 => json!({"schemas": [GROUP], "displayName": format!("G{}", j % 3),
                        "members": [{"value": team}]}),
            _ => json!({"schemas": [GROUP], "displayName": 7}),
        };
        let patch_data = match c % 8 {
            0 => json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "displayName", "value": format!("p{n}")}]}),
            1 => json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": other_ref}]}]}),
            2 => json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "remove", "path": format!("members[value eq \"{alice}\"]")}]}),
            3 => json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "nonsense[[", "value": 1}]}),
            4 => json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "userName", "value": "alice"}]}),
            5 => json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "value": {"displayName": format!("p{n}"), "title": "t"}},
                {"op": "remove", "path": "userName"}]}),
            6 => json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": alice}, {"value": "nope"}]}]}),
            _ => json!({"schemas": [PATCH_OP], "Operations": []}),
        };
        let mut op = json!({"method": method});
        match method {
            "POST" => {
                op["path"] = json!(format!("/{endpoint}"));
                op["bulkId"] = json!(format!("b{}", k % 4));
                op["data"] = if endpoint == "Users" { user_data } else { group_data };
            }
            "PUT" => {
                op["path"] = json!(format!("/{endpoint}/{target}"));
                op["data"] = if endpoint == "Users" { user_data } else { group_data };
            }
            "PATCH" => {
                op["path"] = json!(format!("/{endpoint}/{target}"));
                op["data"] = patch_data;
            }
            _ => op["path"] = json!(format!("/{endpoint}/{target}")),
        }
        if c & 0x80 != 0 {
            op["version"] = json!("W/\"stale\"");
        }
        ops.push(op);
    }
    let mut body = json!({"schemas": [BULK], "Operations": ops});
    if fail_on_errors % 4 != 0 {
        body["failOnErrors"] = json!(fail_on_errors % 4);
    }
    body
}

/// `(endpoint, id)` of a location under the base URL.
fn located(base: &str, location: &str) -> Option<(String, String)> {
    let rest = location.strip_prefix(base)?.strip_prefix('/')?;
    let (endpoint, id) = rest.split_once('/')?;
    Some((endpoint.to_owned(), id.to_owned()))
}

fuzz_target!(|data: &[u8]| {
    let Some(&mode) = data.first() else {
        return;
    };
    World::with(|world| {
        let n = INPUTS.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        let token = world.tenant(&format!("bulk-{n}"), &[Scope::Write]);
        let alice = create(world, &token, "Users", json!({"schemas": [USER], "userName": "alice"}));
        let team = create(
            world,
            &token,
            "Groups",
            json!({"schemas": [GROUP], "displayName": "team", "members": [{"value": alice}]}),
        );
        let body = if mode % 2 == 0 {
            data[1..].to_vec()
        } else {
            compact(&data[1..], &alice, &team).to_string().into_bytes()
        };
        let before = snapshot(world, &token);
        let answer = world.request(Method::POST, "/scim/v2/Bulk", &token, Some(body.clone()));
        assert_no_5xx(&answer, || format!("POST /Bulk {}", String::from_utf8_lossy(&body)));
        let after = snapshot(world, &token);
        let shown = || String::from_utf8_lossy(&answer.body).into_owned();
        if answer.status != 200 {
            assert_eq!(before, after, "a refused bulk request changed resources: {}", shown());
            return;
        }
        let response: Value = serde_json::from_slice(&answer.body).expect("a BulkResponse");
        let ops = response["Operations"].as_array().cloned().unwrap_or_default();
        let mut posted = BTreeSet::new();
        let mut deleted = BTreeSet::new();
        let mut touched = BTreeSet::new();
        let mut user_deleted = false;
        for op in &ops {
            let status: u16 = match &op["status"] {
                Value::String(s) => s.parse().expect("a numeric status"),
                Value::Number(n) => u16::try_from(n.as_u64().expect("a status")).expect("a status"),
                other => panic!("status {other}"),
            };
            assert!(status < 500, "an operation answered {status}: {}", shown());
            let at = op["location"].as_str().and_then(|l| located(&world.base_url, l));
            if !(200..300).contains(&status) {
                continue;
            }
            let at = at.unwrap_or_else(|| panic!("a successful operation without location: {op}"));
            match op["method"].as_str() {
                Some("POST") => {
                    posted.insert(at.clone());
                }
                Some("DELETE") => {
                    user_deleted |= at.0 == "Users";
                    deleted.insert(at.clone());
                }
                _ => {}
            }
            touched.insert(at);
        }
        let created: BTreeSet<_> = after.keys().filter(|k| !before.contains_key(*k)).cloned().collect();
        let gone: BTreeSet<_> = before.keys().filter(|k| !after.contains_key(*k)).cloned().collect();
        // A resource may be created and deleted by the same request.
        let (posted, deleted): (BTreeSet<_>, BTreeSet<_>) = (
            posted.difference(&deleted).cloned().collect(),
            deleted.difference(&posted).cloned().collect(),
        );
        assert_eq!(created, posted, "created resources and successful POSTs differ: {}", shown());
        assert_eq!(gone, deleted, "removed resources and successful DELETEs differ: {}", shown());
        for (key, version) in &after {
            let Some(old) = before.get(key) else { continue };
            if old != version {
                assert!(
                    touched.contains(key) || (key.0 == "Groups" && user_deleted),
                    "{key:?} changed without a successful operation on it: {}",
                    shown()
                );
            }
        }
    });
});
