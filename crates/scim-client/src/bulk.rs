//! Bulk requests (RFC 7644 section 3.7), within the provider's limits.
//!
//! ```
//! use scim_client::bulk::BulkBuilder;
//! use scim_client::patch::PatchBuilder;
//! use serde_json::json;
//!
//! let ops = BulkBuilder::new()
//!     .post("/Users", "qwerty", json!({"userName": "alice"}))
//!     .patch("/Groups/g1", &PatchBuilder::new().add("members", json!([{"value": "bulkId:qwerty"}])).build())
//!     .delete("/Users/u9")
//!     .into_operations();
//! assert_eq!(ops.len(), 3);
//! assert_eq!(ops[0].bulk_id.as_deref(), Some("qwerty"));
//! ```

use reqwest::Method;
use scim_core::messages::{
    BulkMethod, BulkOperation, BulkOperationResponse, BulkRequest, BulkResponse, PatchRequest,
};
use serde_json::Value;

use crate::client::{Call, ScimClient};
use crate::error::{ClientError, Result};

/// Builds the operations of a BulkRequest.
#[derive(Debug, Clone, Default)]
pub struct BulkBuilder {
    ops: Vec<BulkOperation>,
}

impl BulkBuilder {
    /// No operations yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, method: BulkMethod, path: &str, data: Option<Value>) -> Self {
        self.ops.push(BulkOperation {
            method,
            bulk_id: None,
            version: None,
            path: path.to_string(),
            data,
        });
        self
    }

    /// `POST path` creating `data`, which later operations can reference
    /// as `bulkId:{bulk_id}`.
    #[must_use]
    pub fn post(mut self, path: &str, bulk_id: &str, data: Value) -> Self {
        self = self.push(BulkMethod::Post, path, Some(data));
        if let Some(op) = self.ops.last_mut() {
            op.bulk_id = Some(bulk_id.to_string());
        }
        self
    }

    /// `PUT path` with `data`.
    #[must_use]
    pub fn put(self, path: &str, data: Value) -> Self {
        self.push(BulkMethod::Put, path, Some(data))
    }

    /// `PATCH path` with a PatchOp message.
    #[must_use]
    pub fn patch(self, path: &str, request: &PatchRequest) -> Self {
        let data = serde_json::to_value(request).ok();
        self.push(BulkMethod::Patch, path, data)
    }

    /// `DELETE path`.
    #[must_use]
    pub fn delete(self, path: &str) -> Self {
        self.push(BulkMethod::Delete, path, None)
    }

    /// Sets the expected version (`If-Match`) of the last operation.
    #[must_use]
    pub fn version(mut self, version: &str) -> Self {
        if let Some(op) = self.ops.last_mut() {
            op.version = Some(version.to_string());
        }
        self
    }

    /// The operations.
    pub fn into_operations(self) -> Vec<BulkOperation> {
        self.ops
    }
}

/// Splits operations into batches of at most `max_operations` operations
/// and (roughly, by their JSON size) `max_payload_size` bytes; 0 means no
/// limit. Order is kept.
pub(crate) fn batches(
    ops: Vec<BulkOperation>,
    max_operations: u64,
    max_payload_size: u64,
) -> Vec<Vec<BulkOperation>> {
    // Room for the envelope: schemas, failOnErrors, brackets.
    const ENVELOPE: u64 = 128;
    let max_ops = usize::try_from(max_operations).unwrap_or(usize::MAX);
    let mut out: Vec<Vec<BulkOperation>> = Vec::new();
    let mut current: Vec<BulkOperation> = Vec::new();
    let mut size = ENVELOPE;
    for op in ops {
        let op_size = serde_json::to_vec(&op).map_or(0, |v| v.len() as u64 + 1);
        let full_by_count = max_ops > 0 && current.len() >= max_ops;
        let full_by_size = max_payload_size > 0 && size + op_size > max_payload_size;
        if !current.is_empty() && (full_by_count || full_by_size) {
            out.push(std::mem::take(&mut current));
            size = ENVELOPE;
        }
        size += op_size;
        current.push(op);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn references_bulk_ids(ops: &[BulkOperation]) -> bool {
    ops.iter().any(|op| {
        op.path.contains("bulkId:")
            || op
                .data
                .as_ref()
                .is_some_and(|d| d.to_string().contains("\"bulkId:"))
    })
}

impl ScimClient {
    /// Sends one BulkRequest as it is. Fails with
    /// [`ClientError::Unsupported`] when the provider does not support bulk
    /// or the request has more operations than its `maxOperations`. A
    /// BulkRequest is a POST: it is retried only on 429, 503 or when the
    /// connection could not be made.
    pub async fn bulk(&self, request: &BulkRequest) -> Result<BulkResponse> {
        let Some(limits) = self.capabilities().bulk else {
            return Err(ClientError::Unsupported("bulk operations".into()));
        };
        if limits.max_operations > 0 && request.operations.len() as u64 > limits.max_operations {
            return Err(ClientError::Unsupported(format!(
                "{} operations in one bulk request (maxOperations is {})",
                request.operations.len(),
                limits.max_operations
            )));
        }
        let call = Call::new(Method::POST, self.url("Bulk", None)?).json(request)?;
        let reply = self.send(&call).await?;
        self.decode(&call, &reply)
    }

    /// Sends any number of operations in as many BulkRequests as the
    /// provider's `maxOperations` and `maxPayloadSize` need, in order, and
    /// returns every operation's result. Operations that reference a
    /// `bulkId` are refused when they would have to be split, since a
    /// `bulkId` only resolves within one request.
    pub async fn bulk_all(
        &self,
        operations: Vec<BulkOperation>,
        fail_on_errors: Option<u64>,
    ) -> Result<Vec<BulkOperationResponse>> {
        let Some(limits) = self.capabilities().bulk else {
            return Err(ClientError::Unsupported("bulk operations".into()));
        };
        let refs = references_bulk_ids(&operations);
        let chunks = batches(operations, limits.max_operations, limits.max_payload_size);
        if refs && chunks.len() > 1 {
            return Err(ClientError::InvalidRequest(
                "operations that reference a bulkId must fit in one bulk request".into(),
            ));
        }
        let mut results = Vec::new();
        for chunk in chunks {
            let mut request = BulkRequest::new(chunk);
            request.fail_on_errors = fail_on_errors;
            let response = self.bulk(&request).await?;
            results.extend(response.operations);
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batches_respect_both_limits() {
        let ops = (0..10)
            .map(|i| BulkOperation {
                method: BulkMethod::Delete,
                bulk_id: None,
                version: None,
                path: format!("/Users/{i}"),
                data: None,
            })
            .collect::<Vec<_>>();
        let sizes = |b: &Vec<Vec<BulkOperation>>| b.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(&batches(ops.clone(), 4, 0)), [4, 4, 2]);
        assert_eq!(sizes(&batches(ops.clone(), 0, 0)), [10]);
        let one = serde_json::to_vec(&ops[0]).unwrap().len() as u64 + 1;
        assert_eq!(sizes(&batches(ops.clone(), 0, 128 + 3 * one)), [3, 3, 3, 1]);
        // An operation larger than the limit still goes, alone.
        assert_eq!(sizes(&batches(ops, 0, 1)), [1; 10]);
    }

    #[test]
    fn builder_and_references() {
        let ops = BulkBuilder::new()
            .post("/Users", "a", json!({"userName": "a"}))
            .put("/Users/1", json!({"userName": "b"}))
            .version("W/\"3\"")
            .into_operations();
        assert_eq!(ops[1].version.as_deref(), Some("W/\"3\""));
        assert!(!references_bulk_ids(&ops));
        let with_ref = BulkBuilder::new()
            .put("/Groups/1", json!({"members": [{"value": "bulkId:a"}]}))
            .into_operations();
        assert!(references_bulk_ids(&with_ref));
    }
}
