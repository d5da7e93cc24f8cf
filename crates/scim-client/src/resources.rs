//! Typed CRUD and search on one endpoint (`/Users`, `/Groups`, ...).

use std::collections::VecDeque;
use std::marker::PhantomData;

use futures::{Stream, StreamExt as _};
use reqwest::Method;
use scim_core::filter::Filter;
use scim_core::messages::{ListResponse, PatchRequest, SEARCH_REQUEST_SCHEMA, SearchRequest};
use scim_core::resource::{Group, User};
use scim_core::schema::SchemaRegistry;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::{Call, Reply, ScimClient};
use crate::error::{ClientError, Result};
use crate::paging::{PageRequest, Pager, Query};
use crate::patch::{PatchOperation, patch_request};

/// A resource with its version (the `ETag`, or `meta.version`).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The resource.
    pub resource: T,
    /// The version, when the provider gave one.
    pub version: Option<String>,
}

/// One endpoint of a service provider, with its resources read and
/// written as `T` (a typed [`User`] or [`Group`], or a [`Value`]).
pub struct Endpoint<T = Value> {
    client: ScimClient,
    path: String,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Clone for Endpoint<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            path: self.path.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Endpoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("path", &self.path)
            .finish()
    }
}

impl ScimClient {
    /// The endpoint at `path` (e.g. `/Users`, or a resource type's
    /// `endpoint` from discovery), read and written as `T`.
    pub fn endpoint<T>(&self, path: &str) -> Endpoint<T> {
        Endpoint {
            client: self.clone(),
            path: path.trim_matches('/').to_string(),
            _marker: PhantomData,
        }
    }

    /// `/Users` as typed [`User`]s.
    pub fn users(&self) -> Endpoint<User> {
        self.endpoint("Users")
    }

    /// `/Groups` as typed [`Group`]s.
    pub fn groups(&self) -> Endpoint<Group> {
        self.endpoint("Groups")
    }
}

fn version_of(reply: &Reply, body: &Value) -> Option<String> {
    reply.etag().or_else(|| {
        body.get("meta")
            .and_then(|m| m.get("version"))
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

/// The id at the end of a `Location` URL.
fn id_from_location(location: &str) -> Option<String> {
    let url = reqwest::Url::parse(location).ok()?;
    let last = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    Some(percent_decode(last).unwrap_or_else(|| last.to_string()))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl<T> Endpoint<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// The endpoint path, without slashes (`Users`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The client.
    pub fn client(&self) -> &ScimClient {
        &self.client
    }

    fn if_match(&self, call: &mut Call, version: Option<&str>) {
        if let Some(v) = version
            && self.client.capabilities().etag
        {
            call.if_match = Some(v.to_string());
        }
    }

    /// Reads a reply's body as `T`; an empty body is read from `Location`
    /// (or `fallback_id`) with a GET, for providers that answer 201 or 200
    /// without a body.
    async fn resource_from(
        &self,
        call: &Call,
        reply: Reply,
        fallback_id: Option<&str>,
    ) -> Result<Versioned<T>> {
        if reply.is_empty() {
            let id = reply
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(id_from_location)
                .or_else(|| fallback_id.map(str::to_string))
                .ok_or_else(|| ClientError::Decode {
                    method: call.method.clone(),
                    url: call.display_url(),
                    status: reply.status,
                    reason: "an empty body and no Location".into(),
                })?;
            return self.get_versioned(&id).await;
        }
        let value: Value = self.client.decode(call, &reply)?;
        let version = version_of(&reply, &value);
        let resource = serde_json::from_value(value).map_err(|e| ClientError::Decode {
            method: call.method.clone(),
            url: call.display_url(),
            status: reply.status,
            reason: e.to_string(),
        })?;
        Ok(Versioned { resource, version })
    }

    /// Creates a resource (POST) and returns it as the provider stored it.
    /// A POST is retried only when it certainly did not reach the provider
    /// (see [`crate::retry`]); a 409 is returned as
    /// [`ClientError::Http`] (see [`ScimClient::create_or_adopt`]).
    pub async fn create(&self, resource: &T) -> Result<T> {
        Ok(self.create_versioned(resource).await?.resource)
    }

    /// [`Endpoint::create`], with the new version.
    pub async fn create_versioned(&self, resource: &T) -> Result<Versioned<T>> {
        let call = Call::new(Method::POST, self.client.url(&self.path, None)?).json(resource)?;
        let reply = self.client.send(&call).await?;
        self.resource_from(&call, reply, None).await
    }

    /// Reads a resource by id.
    pub async fn get(&self, id: &str) -> Result<T> {
        Ok(self.get_versioned(id).await?.resource)
    }

    /// Reads a resource by id, with its version.
    pub async fn get_versioned(&self, id: &str) -> Result<Versioned<T>> {
        let call = Call::new(Method::GET, self.client.url(&self.path, Some(id))?);
        let reply = self.client.send(&call).await?;
        if reply.is_empty() {
            return Err(ClientError::Decode {
                method: call.method.clone(),
                url: call.display_url(),
                status: reply.status,
                reason: "an empty body".into(),
            });
        }
        let value: Value = self.client.decode(&call, &reply)?;
        let version = version_of(&reply, &value);
        let resource = serde_json::from_value(value).map_err(|e| ClientError::Decode {
            method: call.method.clone(),
            url: call.display_url(),
            status: reply.status,
            reason: e.to_string(),
        })?;
        Ok(Versioned { resource, version })
    }

    /// Reads a resource by id; `None` when the provider answers 404.
    pub async fn try_get(&self, id: &str) -> Result<Option<T>> {
        match self.get(id).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces a resource (PUT). `version` is sent as `If-Match` when the
    /// provider supports ETags. A 204 answer is followed by a GET.
    pub async fn replace(&self, id: &str, resource: &T, version: Option<&str>) -> Result<T> {
        let mut call =
            Call::new(Method::PUT, self.client.url(&self.path, Some(id))?).json(resource)?;
        self.if_match(&mut call, version);
        let reply = self.client.send(&call).await?;
        Ok(self.resource_from(&call, reply, Some(id)).await?.resource)
    }

    /// Modifies a resource (PATCH). Returns the resource when the provider
    /// sends it back, `None` when it answers 204 No Content. Fails with
    /// [`ClientError::Unsupported`] when the provider does not support
    /// PATCH (the planner emits a PUT for such providers instead).
    pub async fn patch(
        &self,
        id: &str,
        request: &PatchRequest,
        version: Option<&str>,
    ) -> Result<Option<T>> {
        if !self.client.capabilities().patch {
            return Err(ClientError::Unsupported("PATCH".into()));
        }
        let mut call =
            Call::new(Method::PATCH, self.client.url(&self.path, Some(id))?).json(request)?;
        self.if_match(&mut call, version);
        let reply = self.client.send(&call).await?;
        if reply.is_empty() {
            return Ok(None);
        }
        let value: Value = self.client.decode(&call, &reply)?;
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| ClientError::Decode {
                method: call.method.clone(),
                url: call.display_url(),
                status: reply.status,
                reason: e.to_string(),
            })
    }

    /// [`Endpoint::patch`] with typed operations.
    pub async fn patch_ops(
        &self,
        id: &str,
        operations: &[PatchOperation],
        version: Option<&str>,
    ) -> Result<Option<T>> {
        self.patch(id, &patch_request(operations), version).await
    }

    /// [`Endpoint::patch`], then a GET when the provider answered 204.
    pub async fn patch_and_get(
        &self,
        id: &str,
        request: &PatchRequest,
        version: Option<&str>,
    ) -> Result<T> {
        match self.patch(id, request, version).await? {
            Some(r) => Ok(r),
            None => self.get(id).await,
        }
    }

    /// Deletes a resource. Returns `false` when it was already gone (404),
    /// as after a DELETE retried because its first answer was lost.
    pub async fn delete(&self, id: &str, version: Option<&str>) -> Result<bool> {
        let mut call = Call::new(Method::DELETE, self.client.url(&self.path, Some(id))?);
        self.if_match(&mut call, version);
        match self.client.send(&call).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fetches one page of a query.
    pub async fn page(&self, query: &Query, page: &PageRequest) -> Result<ListResponse<T>> {
        let list = self
            .page_values(query, page, query.filter.as_deref())
            .await?;
        let call_url = self.client.url(&self.path, None)?;
        let mut out = Vec::with_capacity(list.resources.len());
        let ListResponse {
            schemas,
            total_results,
            items_per_page,
            start_index,
            next_cursor,
            previous_cursor,
            resources,
        } = list;
        for r in resources {
            out.push(serde_json::from_value(r).map_err(|e| ClientError::Decode {
                method: Method::GET,
                url: crate::error::display_url(&call_url),
                status: 200,
                reason: e.to_string(),
            })?);
        }
        Ok(ListResponse {
            schemas,
            total_results,
            items_per_page,
            start_index,
            next_cursor,
            previous_cursor,
            resources: out,
        })
    }

    async fn page_values(
        &self,
        query: &Query,
        page: &PageRequest,
        filter: Option<&str>,
    ) -> Result<ListResponse<Value>> {
        let caps = self.client.capabilities();
        let (start_index, cursor, count) = match page {
            PageRequest::Index { start_index, count } => (Some(*start_index), None, *count),
            PageRequest::Cursor { cursor, count } => (None, Some(cursor.clone()), *count),
        };
        let sort_by = query.sort_by.clone().filter(|_| caps.sort);
        let sort_order = query.sort_order.filter(|_| sort_by.is_some());
        let call = if query.use_post {
            let body = SearchRequest {
                schemas: vec![SEARCH_REQUEST_SCHEMA.to_string()],
                attributes: query.attributes.clone(),
                excluded_attributes: query.excluded_attributes.clone(),
                filter: filter.map(str::to_string),
                sort_by,
                sort_order,
                start_index: start_index.and_then(|i| i64::try_from(i).ok()),
                count: i64::try_from(count).ok(),
                cursor,
            };
            let path = format!("{}/.search", self.path);
            Call::new(Method::POST, self.client.url(&path, None)?).json(&body)?
        } else {
            let mut url = self.client.url(&self.path, None)?;
            {
                let mut q = url.query_pairs_mut();
                if let Some(f) = filter {
                    q.append_pair("filter", f);
                }
                if !query.attributes.is_empty() {
                    q.append_pair("attributes", &query.attributes.join(","));
                }
                if !query.excluded_attributes.is_empty() {
                    q.append_pair("excludedAttributes", &query.excluded_attributes.join(","));
                }
                if let Some(s) = &sort_by {
                    q.append_pair("sortBy", s);
                }
                if let Some(o) = sort_order {
                    q.append_pair("sortOrder", o.as_str());
                }
                if let Some(i) = start_index {
                    q.append_pair("startIndex", &i.to_string());
                }
                if let Some(c) = &cursor {
                    q.append_pair("cursor", c);
                }
                q.append_pair("count", &count.to_string());
            }
            Call::new(Method::GET, url)
        };
        // A search changes nothing: a POST to /.search is safe to repeat.
        let reply = self.client.send_as(&call, true).await?;
        self.client.decode(&call, &reply)
    }

    /// The resources matching a query, as a stream that fetches pages as it
    /// is read (see [`crate::paging`]). When the provider does not support
    /// filters, pages are fetched unfiltered and the filter is evaluated
    /// here (for endpoints whose schema the client knows: `/Users`,
    /// `/Groups`). An error ends the stream after it is yielded.
    pub fn search(&self, query: Query) -> impl Stream<Item = Result<T>> + Send + 'static {
        let caps = self.client.capabilities();
        let mut count = caps.page_size(query.page_size.unwrap_or(self.client.inner.page_size));
        let mut local_filter = None;
        let mut early_error = None;
        if let Some(text) = query.filter.as_deref().filter(|_| !caps.filter) {
            match local_filter_for(&self.path, text) {
                Ok(f) => local_filter = Some(f),
                Err(e) => early_error = Some(e),
            }
        }
        // With a local filter, the limit applies to matches, not to pages;
        // without, no page needs to be larger than the limit.
        let pager_limit = if local_filter.is_some() {
            None
        } else {
            query.limit
        };
        if let Some(limit) = pager_limit {
            count = count.min(limit.max(1));
        }
        let state = SearchState {
            endpoint: self.clone(),
            pager: Pager::new(caps.paging, count, pager_limit),
            remote_filter: if caps.filter {
                query.filter.clone()
            } else {
                None
            },
            local_filter,
            matched: 0,
            query,
            buffer: VecDeque::new(),
            early_error,
            finished: false,
        };
        futures::stream::unfold(state, |mut st| async move {
            let item = st.next_item().await?;
            Some((item, st))
        })
    }

    /// Every resource matching a query, collected.
    pub async fn search_all(&self, query: Query) -> Result<Vec<T>> {
        let mut stream = std::pin::pin!(self.search(query));
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            out.push(item?);
        }
        Ok(out)
    }

    /// The first resource matching `filter`, if any (one page of one).
    pub async fn find_one(&self, filter: &str) -> Result<Option<T>> {
        let mut stream = std::pin::pin!(self.search(Query::filter(filter).limit(1)));
        stream.next().await.transpose()
    }
}

fn local_filter_for(path: &str, text: &str) -> Result<Filter> {
    let registry = SchemaRegistry::core();
    let schema = registry.resource_schema(path).ok_or_else(|| {
        ClientError::Unsupported(format!(
            "filters (and the schema of /{path} is unknown, so the client cannot filter itself)"
        ))
    })?;
    Filter::parse(text, &schema).map_err(|e| ClientError::InvalidRequest(format!("filter: {e}")))
}

struct SearchState<T> {
    endpoint: Endpoint<T>,
    pager: Pager,
    query: Query,
    remote_filter: Option<String>,
    local_filter: Option<Filter>,
    matched: u64,
    buffer: VecDeque<Value>,
    early_error: Option<ClientError>,
    finished: bool,
}

impl<T> SearchState<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    async fn next_item(&mut self) -> Option<Result<T>> {
        if let Some(e) = self.early_error.take() {
            self.finished = true;
            return Some(Err(e));
        }
        // Bounded: each pass yields, ends, or fetches a page, and the pager
        // stops after MAX_PAGES pages.
        loop {
            if self.finished {
                return None;
            }
            if let Some(limit) = self.query.limit
                && self.local_filter.is_some()
                && self.matched >= limit
            {
                self.finished = true;
                return None;
            }
            if let Some(v) = self.buffer.pop_front() {
                if let Some(f) = &self.local_filter {
                    if !f.matches(&v) {
                        continue;
                    }
                    self.matched += 1;
                }
                return Some(serde_json::from_value(v).map_err(|e| ClientError::Decode {
                    method: Method::GET,
                    url: format!("/{}", self.endpoint.path),
                    status: 200,
                    reason: e.to_string(),
                }));
            }
            let request = self.pager.next_request()?.clone();
            let page = self
                .endpoint
                .page_values(&self.query, &request, self.remote_filter.as_deref())
                .await;
            match page {
                Ok(page) => self.buffer.extend(self.pager.accept(page)),
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_locations() {
        assert_eq!(
            id_from_location("https://h/scim/v2/Users/2819c223%2F7f76").as_deref(),
            Some("2819c223/7f76")
        );
        assert_eq!(
            id_from_location("https://h/Users/abc/").as_deref(),
            Some("abc")
        );
        assert_eq!(id_from_location("relative/abc"), None);
    }

    #[test]
    fn local_filters_need_a_known_schema() {
        assert!(local_filter_for("Users", r#"userName eq "x""#).is_ok());
        assert!(matches!(
            local_filter_for("Devices", "x pr"),
            Err(ClientError::Unsupported(_))
        ));
        assert!(matches!(
            local_filter_for("Users", "userName eq"),
            Err(ClientError::InvalidRequest(_))
        ));
    }
}
