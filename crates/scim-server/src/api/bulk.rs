//! `POST /Bulk` (RFC 7644 section 3.7).
//!
//! - **Limits.** More operations than `--bulk-max-operations`, or a body
//!   over `--max-body-bytes`, is 413 before anything runs; both limits are
//!   advertised in the ServiceProviderConfig (`maxOperations`,
//!   `maxPayloadSize`).
//! - **Fairness.** Operations run in chunks of [`BULK_CHUNK`], each its
//!   own trip to the blocking pool, so a long bulk request does not hold a
//!   blocking thread for its whole length; passwords are hashed before
//!   each write (see [`crate::password`]). A tenant has at most
//!   `--bulk-max-concurrent` bulk requests in progress (429 beyond, see
//!   [`super::limits`]).
//! - **One transaction per operation**, as if each were its own request;
//!   a failed operation does not undo the others. The response lists each
//!   processed operation's `status`, `location`, `version`, and for errors
//!   the SCIM Error as `response`.
//! - **failOnErrors** `n`: processing stops once an operation fails and
//!   `n` operations have failed (0 behaves like 1); the operations not
//!   processed are left out of the response. Without it every operation
//!   runs.
//! - **bulkId references.** `"bulkId:<id>"` is replaced by the id of the
//!   resource the POST with that bulkId created, wherever it appears as a
//!   whole string in `data` (members, the enterprise manager, nested values)
//!   and as a segment of `path`. bulkIds must be unique in a request (400).
//! - **Order and forward references** (section 3.7.1). Operations run in
//!   order. A POST whose `data` refers to a bulkId created later is created
//!   without the attributes (or multi-valued elements) holding the
//!   reference, and those are PATCHed in as soon as the referenced POST has
//!   succeeded; its `version` in the response is the one after that PATCH.
//!   This resolves circular references such as two groups that contain each
//!   other. Other methods with a forward reference wait and run right after
//!   the POST they need.
//! - **Unresolvable references.** A reference to a bulkId no POST in the
//!   request defines is `invalidValue` (400). A reference to a POST that
//!   failed cannot be resolved: 409, the status section 3.7.1 names; a
//!   resource already created without that reference is deleted again, so
//!   no half-made resource stays.

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use scim_core::ErrorKind;
use scim_core::messages::{
    BULK_REQUEST_SCHEMA, BulkMethod, BulkOperation, BulkOperationResponse, BulkRequest,
    BulkResponse, require_schema,
};
use scim_core::patch::{self, PatchOperation};
use serde_json::{Map, Value};

use super::auth::Auth;
use super::etag::Tags;
use super::render::location;
use super::resources::{self, expected_version, resource_schema};
use super::{AppState, blocking, scim_json};
use crate::error::{Error, Result};
use crate::store::{ChangeOp, WriteContext, etag};
use crate::tokens::Scope;

/// Operations run in one trip to the blocking pool.
const BULK_CHUNK: usize = 10;

/// The prefix of a bulkId reference.
const BULK_ID_PREFIX: &str = "bulkId:";

/// `POST /Bulk`.
pub async fn post_bulk(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    auth.require(Scope::Write)?;
    let request: BulkRequest = serde_json::from_value(body.into_inner()).map_err(|e| {
        scim_core::Error::invalid_syntax(format!("the request body is not a BulkRequest: {e}"))
    })?;
    require_schema(&request.schemas, BULK_REQUEST_SCHEMA)?;
    let max = state.settings.bulk_max_operations as usize;
    if request.operations.len() > max {
        return Err(scim_core::Error::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the bulk request has {} operations; maxOperations is {max}",
                request.operations.len()
            ),
        )
        .into());
    }
    let defined = defined_bulk_ids(&request.operations)?;
    let ctx = WriteContext::from(auth.principal);
    // In chunks, each a trip to the blocking pool: between two chunks the
    // requests queued behind this one (other tenants, health checks) run.
    let mut job = Job::new(state.clone(), ctx, request, defined);
    loop {
        let (back, done) = blocking(move || {
            let done = job.run_chunk(BULK_CHUNK);
            Ok((job, done))
        })
        .await?;
        job = back;
        if done {
            break;
        }
    }
    let results = job.into_results();
    // A large load refreshes PostgreSQL's statistics in the background.
    state
        .storage
        .note_load(results.iter().filter(|r| r.is_success()).count());
    let body = serde_json::to_value(BulkResponse::new(results))
        .map_err(|e| Error::internal(format!("bulk response: {e}")))?;
    Ok(scim_json(StatusCode::OK, &body))
}

/// Each POST's bulkId and its operation index; a bulkId used twice is 400.
fn defined_bulk_ids(ops: &[BulkOperation]) -> Result<HashMap<String, usize>> {
    let mut defined = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let Some(bulk_id) = op.bulk_id.as_deref() else {
            continue;
        };
        if op.method != BulkMethod::Post {
            continue;
        }
        if let Some(first) = defined.insert(bulk_id.to_owned(), i) {
            return Err(scim_core::Error::invalid_value(format!(
                "bulkId '{bulk_id}' is used by Operations[{first}] and Operations[{i}]; \
                 bulkIds must be unique"
            ))
            .into());
        }
    }
    Ok(defined)
}

/// Attributes of a POST held back until the bulkIds they refer to exist.
#[derive(Debug)]
struct Fixup {
    /// The POST's operation index.
    op: usize,
    type_name: String,
    id: String,
    waits: HashSet<String>,
    ops: Vec<PatchOperation>,
}

struct Job {
    state: web::Data<AppState>,
    /// The next operation to start.
    next: usize,
    ctx: WriteContext,
    ops: Vec<BulkOperation>,
    fail_on_errors: Option<u64>,
    defined: HashMap<String, usize>,
    created: HashMap<String, String>,
    failed: HashSet<String>,
    results: Vec<Option<BulkOperationResponse>>,
    errors: u64,
    stopped: bool,
    deferred: Vec<usize>,
    fixups: Vec<Fixup>,
}

impl Job {
    fn new(
        state: web::Data<AppState>,
        ctx: WriteContext,
        request: BulkRequest,
        defined: HashMap<String, usize>,
    ) -> Self {
        let n = request.operations.len();
        Self {
            state,
            next: 0,
            ctx,
            ops: request.operations,
            fail_on_errors: request.fail_on_errors,
            defined,
            created: HashMap::new(),
            failed: HashSet::new(),
            results: vec![None; n],
            errors: 0,
            stopped: false,
            deferred: Vec::new(),
            fixups: Vec::new(),
        }
    }

    /// Starts up to `chunk` more operations (with what they make
    /// possible); `true` once the job is over.
    fn run_chunk(&mut self, chunk: usize) -> bool {
        let end = self.ops.len().min(self.next + chunk);
        while self.next < end && !self.stopped {
            self.start(self.next);
            self.settle();
            self.next += 1;
        }
        if self.next < self.ops.len() && !self.stopped {
            return false;
        }
        // What still waits depends on POSTs that did not run or failed.
        for fixup in std::mem::take(&mut self.fixups) {
            self.abandon(fixup);
        }
        true
    }

    fn into_results(self) -> Vec<BulkOperationResponse> {
        self.results.into_iter().flatten().collect()
    }

    /// Records the outcome of operation `i`.
    fn record(&mut self, i: usize, outcome: Result<BulkOperationResponse>) {
        let op = &self.ops[i];
        let response = match outcome {
            Ok(r) => r,
            Err(e) => {
                if e.is_internal() {
                    log::error!("bulk Operations[{i}]: {e}");
                }
                if let (BulkMethod::Post, Some(bulk_id)) = (op.method, &op.bulk_id) {
                    self.failed.insert(bulk_id.clone());
                }
                self.errors += 1;
                if self.fail_on_errors.is_some_and(|n| self.errors >= n) {
                    self.stopped = true;
                }
                BulkOperationResponse::error(op.method, op.bulk_id.clone(), None, &e.to_scim())
            }
        };
        self.results[i] = Some(response);
    }

    /// Runs operation `i`, or defers it while it refers to bulkIds not yet
    /// created.
    fn start(&mut self, i: usize) {
        let op = &self.ops[i];
        let mut refs = HashSet::new();
        collect_path_refs(&op.path, &mut refs);
        if let Some(data) = &op.data {
            collect_refs(data, &mut refs);
        }
        if let Some(missing) = refs.iter().find(|r| !self.defined.contains_key(*r)) {
            let e = scim_core::Error::invalid_value(format!(
                "bulkId '{missing}' is not defined by any POST in this request"
            ));
            self.record(i, Err(e.into()));
            return;
        }
        if let Some(failed) = refs.iter().find(|r| self.failed.contains(*r)) {
            self.record(i, Err(unresolvable(failed)));
            return;
        }
        let pending: HashSet<String> = refs
            .into_iter()
            .filter(|r| !self.created.contains_key(r))
            .collect();
        if pending.is_empty() {
            let outcome = self.execute(i);
            self.record(i, outcome);
        } else if op.method == BulkMethod::Post && !path_has_refs(&op.path) {
            let outcome = self.create_without(i, pending);
            self.record(i, outcome);
        } else {
            self.deferred.push(i);
        }
    }

    /// Runs what became possible: held-back attributes whose bulkIds now
    /// exist, and deferred operations, until nothing changes.
    fn settle(&mut self) {
        loop {
            let mut progress = false;
            for fixup in std::mem::take(&mut self.fixups) {
                if fixup.waits.iter().any(|w| self.failed.contains(w)) {
                    self.abandon(fixup);
                    progress = true;
                } else if fixup.waits.iter().all(|w| self.created.contains_key(w)) {
                    self.complete(fixup);
                    progress = true;
                } else {
                    self.fixups.push(fixup);
                }
            }
            if !self.stopped {
                for i in std::mem::take(&mut self.deferred) {
                    let ready = self
                        .refs_of(i)
                        .iter()
                        .all(|r| self.created.contains_key(r) || self.failed.contains(r));
                    if ready && !self.stopped {
                        self.start(i);
                        progress = true;
                    } else {
                        self.deferred.push(i);
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn refs_of(&self, i: usize) -> HashSet<String> {
        let op = &self.ops[i];
        let mut refs = HashSet::new();
        collect_path_refs(&op.path, &mut refs);
        if let Some(data) = &op.data {
            collect_refs(data, &mut refs);
        }
        refs
    }

    /// A POST created without the attributes that refer to `pending`
    /// bulkIds; a [`Fixup`] adds them later.
    fn create_without(
        &mut self,
        i: usize,
        pending: HashSet<String>,
    ) -> Result<BulkOperationResponse> {
        let op = &self.ops[i];
        let (type_name, id) = parse_path(&op.path, op.method)?;
        if id.is_some() {
            return Err(bad_path(&op.path, op.method));
        }
        let mut data = op.data.clone().ok_or_else(|| no_data(op.method))?;
        substitute(&mut data, &self.created);
        let held = hold_back(&mut data, &pending);
        let rs = resource_schema(&self.state, &type_name)?;
        let stored = resources::create(&self.state, self.ctx, &rs, &data, "POST /Bulk")?;
        if let Some(bulk_id) = &op.bulk_id {
            self.created.insert(bulk_id.clone(), stored.id.clone());
        }
        self.fixups.push(Fixup {
            op: i,
            type_name: rs.resource_type().id.clone(),
            id: stored.id.clone(),
            waits: pending,
            ops: held,
        });
        Ok(self.success(i, &rs, &stored.id, stored.version, 201))
    }

    /// Patches held-back attributes into the resource they belong to.
    fn complete(&mut self, fixup: Fixup) {
        let outcome = (|| -> Result<i64> {
            let rs = resource_schema(&self.state, &fixup.type_name)?;
            let mut ops = fixup.ops.clone();
            for op in &mut ops {
                if let Some(value) = op.value.as_mut() {
                    substitute(value, &self.created);
                }
            }
            let stored = self.state.storage.update_resource(
                self.ctx,
                &rs,
                &fixup.id,
                None,
                ChangeOp::Patch,
                &mut |current| {
                    patch::apply(&current.document, &ops, &rs)
                        .map(|p| p.resource)
                        .map_err(|e| Error::from(e.into_error()))
                },
            )?;
            Ok(stored.version)
        })();
        match outcome {
            Ok(version) => {
                if let Some(Some(r)) = self.results.get_mut(fixup.op) {
                    r.version = Some(etag(version));
                }
            }
            // Deleted by a later operation of this request: the POST did
            // create it, and nothing half-made is left.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => self.undo(fixup, e),
        }
    }

    /// Held-back attributes that can never be resolved: the resource is
    /// deleted and the POST answers 409.
    fn abandon(&mut self, fixup: Fixup) {
        let missing = fixup
            .waits
            .iter()
            .find(|w| !self.created.contains_key(*w))
            .cloned()
            .unwrap_or_default();
        self.undo(fixup, unresolvable(&missing));
    }

    /// Deletes what a POST created and turns its result into `error`,
    /// unless a later operation of the request deleted it already: then the
    /// POST's success stands, and nothing half-made is left.
    fn undo(&mut self, fixup: Fixup, error: Error) {
        if let Ok(rs) = resource_schema(&self.state, &fixup.type_name)
            && let Err(e) = resources::delete(&self.state, self.ctx, &rs, &fixup.id, None)
        {
            if e.kind() == ErrorKind::NotFound {
                return;
            }
            log::warn!(
                "bulk Operations[{}]: could not delete the half-made {} {}: {e}",
                fixup.op,
                fixup.type_name,
                fixup.id
            );
        }
        if let Some(bulk_id) = &self.ops[fixup.op].bulk_id {
            self.created.remove(bulk_id);
        }
        self.record(fixup.op, Err(error));
    }

    /// Runs operation `i` with every bulkId reference resolved.
    fn execute(&mut self, i: usize) -> Result<BulkOperationResponse> {
        let op = &self.ops[i];
        let path = substitute_path(&op.path, &self.created);
        let (type_name, id) = parse_path(&path, op.method)?;
        let rs = resource_schema(&self.state, &type_name)?;
        let mut data = op.data.clone();
        if let Some(d) = data.as_mut() {
            substitute(d, &self.created);
        }
        let tags = op.version.as_deref().map(Tags::parse);
        let (state, ctx) = (&*self.state, self.ctx);
        match (op.method, id) {
            (BulkMethod::Post, None) => {
                let data = data.ok_or_else(|| no_data(op.method))?;
                let stored = resources::create(state, ctx, &rs, &data, "POST /Bulk")?;
                if let Some(bulk_id) = &op.bulk_id {
                    self.created.insert(bulk_id.clone(), stored.id.clone());
                }
                Ok(self.success(i, &rs, &stored.id, stored.version, 201))
            }
            (BulkMethod::Put, Some(id)) => {
                let data = data.ok_or_else(|| no_data(op.method))?;
                let expected = expected_version(state, ctx, &rs, &id, tags.as_ref())?;
                let route = format!("PUT /Bulk {path}");
                let stored = resources::replace(state, ctx, &rs, &id, expected, &data, &route)?;
                Ok(self.success(i, &rs, &id, stored.version, 200))
            }
            (BulkMethod::Patch, Some(id)) => {
                let data = data.ok_or_else(|| no_data(op.method))?;
                let expected = expected_version(state, ctx, &rs, &id, tags.as_ref())?;
                let route = format!("PATCH /Bulk {path}");
                let stored = resources::patch(state, ctx, &rs, &id, expected, &data, &route)?;
                Ok(self.success(i, &rs, &id, stored.version, 200))
            }
            (BulkMethod::Delete, Some(id)) => {
                let expected = expected_version(state, ctx, &rs, &id, tags.as_ref())?;
                resources::delete(state, ctx, &rs, &id, expected)?;
                let mut r = self.success(i, &rs, &id, 0, 204);
                r.version = None;
                Ok(r)
            }
            (method, _) => Err(bad_path(&path, method)),
        }
    }

    fn success(
        &self,
        i: usize,
        rs: &scim_core::schema::ResourceSchema,
        id: &str,
        version: i64,
        status: u16,
    ) -> BulkOperationResponse {
        let op = &self.ops[i];
        BulkOperationResponse {
            location: Some(location(&self.state, rs, id)),
            method: op.method,
            bulk_id: op.bulk_id.clone(),
            version: Some(etag(version)),
            status,
            response: None,
        }
    }
}

fn unresolvable(bulk_id: &str) -> Error {
    scim_core::Error::new(
        ErrorKind::Conflict,
        format!(
            "bulkId '{bulk_id}' cannot be resolved: the operation that creates it failed or did not run"
        ),
    )
    .into()
}

fn no_data(method: BulkMethod) -> Error {
    scim_core::Error::invalid_syntax(format!("a bulk {method} operation needs \"data\"")).into()
}

fn bad_path(path: &str, method: BulkMethod) -> Error {
    let wants = if method == BulkMethod::Post {
        "a resource type endpoint such as /Users"
    } else {
        "a resource such as /Users/{id}"
    };
    scim_core::Error::invalid_syntax(format!("bulk {method} path '{path}' must name {wants}"))
        .into()
}

/// `/Users` -> (`User`, None); `/Groups/abc` -> (`Group`, Some("abc")).
fn parse_path(path: &str, method: BulkMethod) -> Result<(String, Option<String>)> {
    let trimmed = path.trim().trim_start_matches('/');
    let (endpoint, id) = match trimmed.split_once('/') {
        Some((e, id)) if !id.is_empty() && !id.contains('/') => (e, Some(id.to_owned())),
        Some(_) => return Err(bad_path(path, method)),
        None => (trimmed, None),
    };
    let known = ["User", "Group"]
        .into_iter()
        .find(|t| {
            let plural = format!("{t}s");
            endpoint.eq_ignore_ascii_case(&plural)
        })
        .ok_or_else(|| {
            Error::from(scim_core::Error::not_found(format!(
                "bulk path '{path}' names no endpoint"
            )))
        })?;
    Ok((known.to_owned(), id))
}

/// The bulkIds referred to by whole strings `bulkId:<id>` in `value`.
fn collect_refs(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX) {
                out.insert(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn collect_path_refs(path: &str, out: &mut HashSet<String>) {
    for segment in path.split('/') {
        if let Some(id) = segment.strip_prefix(BULK_ID_PREFIX) {
            out.insert(id.to_owned());
        }
    }
}

fn path_has_refs(path: &str) -> bool {
    path.split('/').any(|s| s.starts_with(BULK_ID_PREFIX))
}

fn has_refs_in(value: &Value, pending: &HashSet<String>) -> bool {
    let mut refs = HashSet::new();
    collect_refs(value, &mut refs);
    refs.iter().any(|r| pending.contains(r))
}

/// Replaces every resolvable `bulkId:<id>` string in `value` by the id.
fn substitute(value: &mut Value, created: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(c) = s
                .strip_prefix(BULK_ID_PREFIX)
                .and_then(|id| created.get(id))
            {
                s.clone_from(c);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, created)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, created)),
        _ => {}
    }
}

fn substitute_path(path: &str, created: &HashMap<String, String>) -> String {
    path.split('/')
        .map(|segment| {
            segment
                .strip_prefix(BULK_ID_PREFIX)
                .and_then(|id| created.get(id))
                .map_or(segment, String::as_str)
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Takes out of a POST's `data` what refers to `pending` bulkIds and
/// returns the PATCH operations that put it back: the elements of a
/// multi-valued attribute (`add`), or a whole single-valued attribute
/// (`replace`), also inside extension objects. The values keep their
/// references until the PATCH runs.
fn hold_back(data: &mut Value, pending: &HashSet<String>) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    let Value::Object(doc) = data else {
        return ops;
    };
    hold_back_in(doc, "", pending, &mut ops);
    let urns: Vec<String> = doc.keys().filter(|k| is_urn(k)).cloned().collect();
    for urn in urns {
        if let Some(Value::Object(ext)) = doc.get_mut(&urn) {
            hold_back_in(ext, &format!("{urn}:"), pending, &mut ops);
            if ext.is_empty() {
                doc.shift_remove(&urn);
            }
        }
    }
    ops
}

fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

fn hold_back_in(
    obj: &mut Map<String, Value>,
    prefix: &str,
    pending: &HashSet<String>,
    ops: &mut Vec<PatchOperation>,
) {
    // At the top level extension objects are handled by the caller.
    let keys: Vec<String> = obj
        .keys()
        .filter(|k| !prefix.is_empty() || !is_urn(k))
        .cloned()
        .collect();
    for key in keys {
        let Some(value) = obj.get_mut(&key) else {
            continue;
        };
        if !has_refs_in(value, pending) {
            continue;
        }
        let path = format!("{prefix}{key}");
        match value {
            Value::Array(items) => {
                let (later, now): (Vec<Value>, Vec<Value>) = std::mem::take(items)
                    .into_iter()
                    .partition(|v| has_refs_in(v, pending));
                *items = now;
                if items.is_empty() {
                    obj.shift_remove(&key);
                }
                ops.push(PatchOperation::add(Some(&path), Value::Array(later)));
            }
            _ => {
                if let Some(v) = obj.shift_remove(&key) {
                    ops.push(PatchOperation::replace(Some(&path), v));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_and_replaced() {
        let mut data = json!({"members": [{"value": "bulkId:a"}, {"value": "x"}],
                              "manager": {"value": "bulkId:b"}, "note": "bulkId is a word"});
        let mut refs = HashSet::new();
        collect_refs(&data, &mut refs);
        assert_eq!(refs, HashSet::from(["a".to_owned(), "b".to_owned()]));
        let created = HashMap::from([("a".to_owned(), "id-a".to_owned())]);
        substitute(&mut data, &created);
        assert_eq!(data["members"][0]["value"], "id-a");
        assert_eq!(data["manager"]["value"], "bulkId:b");
        assert_eq!(substitute_path("/Users/bulkId:a", &created), "/Users/id-a");
        assert_eq!(
            substitute_path("/Users/bulkId:z", &created),
            "/Users/bulkId:z"
        );
    }

    #[test]
    fn forward_references_are_held_back() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let mut data = json!({
            "displayName": "A",
            "members": [{"value": "u1"}, {"value": "bulkId:b", "type": "Group"}],
            ext: {"manager": {"value": "bulkId:b"}, "department": "x"}
        });
        let pending = HashSet::from(["b".to_owned()]);
        let ops = hold_back(&mut data, &pending);
        assert_eq!(
            data,
            json!({"displayName": "A", "members": [{"value": "u1"}], ext: {"department": "x"}})
        );
        let ops: Vec<Value> = ops.iter().map(PatchOperation::to_json).collect();
        assert_eq!(
            ops,
            [
                json!({"op": "add", "path": "members", "value": [{"value": "bulkId:b", "type": "Group"}]}),
                json!({"op": "replace", "path": format!("{ext}:manager"), "value": {"value": "bulkId:b"}}),
            ]
        );
    }

    #[test]
    fn paths_name_endpoints() {
        assert_eq!(
            parse_path("/Users", BulkMethod::Post).unwrap(),
            ("User".to_owned(), None)
        );
        assert_eq!(
            parse_path("/groups/abc", BulkMethod::Patch).unwrap(),
            ("Group".to_owned(), Some("abc".to_owned()))
        );
        assert!(parse_path("/Users/a/b", BulkMethod::Put).is_err());
        assert_eq!(
            parse_path("/Devices", BulkMethod::Post).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
