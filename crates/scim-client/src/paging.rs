//! Queries and automatic pagination.
//!
//! [`crate::Endpoint::search`] returns a stream of resources that fetches
//! pages as it is read. With RFC 9865 cursor support announced it follows
//! `nextCursor`; otherwise it pages by `startIndex` and `count`, with
//! `count` the configured page size lowered to the provider's `maxResults`
//! and `maxPageSize`.
//!
//! The stream stops on an empty page, when `startIndex` passes
//! `totalResults`, when there is no `nextCursor`, or when the `limit` is
//! reached. It tolerates providers that ignore `count` (it advances by the
//! number of resources actually returned), omit `itemsPerPage` or
//! `totalResults` (it reads on until an empty page), or serve the same page
//! again (a page with no resource it has not already yielded, or a cursor
//! it has already followed, ends the stream). Resources seen on an earlier
//! page are not yielded twice. No stream fetches more than
//! [`MAX_PAGES`] pages.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use scim_core::messages::{ListResponse, SortOrder};
use serde_json::Value;

use crate::discovery::Paging;

/// The most pages one search stream fetches.
pub const MAX_PAGES: u64 = 100_000;

/// A query: filter, projection, sorting and paging options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// The filter expression.
    pub filter: Option<String>,
    /// The attributes to return.
    pub attributes: Vec<String>,
    /// The attributes to leave out.
    pub excluded_attributes: Vec<String>,
    /// The attribute to sort by (sent only when the provider supports sorting).
    pub sort_by: Option<String>,
    /// The sort order.
    pub sort_order: Option<SortOrder>,
    /// The page size, overriding the client's (still lowered to the
    /// provider's limits).
    pub page_size: Option<u64>,
    /// Stop after this many resources.
    pub limit: Option<u64>,
    /// Send the query as `POST {endpoint}/.search` instead of a GET.
    pub use_post: bool,
}

impl Query {
    /// A query for every resource.
    pub fn all() -> Self {
        Self::default()
    }

    /// A query with a filter.
    pub fn filter(filter: impl Into<String>) -> Self {
        Self {
            filter: Some(filter.into()),
            ..Self::default()
        }
    }

    /// Asks for these attributes only.
    #[must_use]
    pub fn attributes<I, S>(mut self, attributes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.attributes = attributes.into_iter().map(Into::into).collect();
        self
    }

    /// Sorts by `attribute`.
    #[must_use]
    pub fn sort_by(mut self, attribute: impl Into<String>, order: SortOrder) -> Self {
        self.sort_by = Some(attribute.into());
        self.sort_order = Some(order);
        self
    }

    /// Asks for pages of this size.
    #[must_use]
    pub fn page_size(mut self, page_size: u64) -> Self {
        self.page_size = Some(page_size.max(1));
        self
    }

    /// Stops after `limit` resources.
    #[must_use]
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Uses `POST /.search`.
    #[must_use]
    pub fn via_post(mut self) -> Self {
        self.use_post = true;
        self
    }
}

/// Which page to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// By index: the 1-based `startIndex` and the `count`.
    Index {
        /// The 1-based index of the first resource.
        start_index: u64,
        /// The page size.
        count: u64,
    },
    /// By cursor (RFC 9865): empty for the first page.
    Cursor {
        /// The cursor; `""` asks for the first page.
        cursor: String,
        /// The page size.
        count: u64,
    },
}

/// The paging state machine behind the search stream. Pure: it is told
/// each page and says which page to fetch next.
#[derive(Debug)]
pub(crate) struct Pager {
    next: Option<PageRequest>,
    seen_ids: HashSet<String>,
    seen_cursors: HashSet<String>,
    previous_fingerprint: Option<u64>,
    yielded: u64,
    limit: Option<u64>,
    pages: u64,
    max_pages: u64,
}

impl Pager {
    pub(crate) fn new(paging: Paging, count: u64, limit: Option<u64>) -> Self {
        let count = count.max(1);
        let first = match paging {
            Paging::Index => PageRequest::Index {
                start_index: 1,
                count,
            },
            Paging::Cursor => PageRequest::Cursor {
                cursor: String::new(),
                count,
            },
        };
        Self {
            next: (limit != Some(0)).then_some(first),
            seen_ids: HashSet::new(),
            seen_cursors: HashSet::new(),
            previous_fingerprint: None,
            yielded: 0,
            limit,
            pages: 0,
            max_pages: MAX_PAGES,
        }
    }

    /// The page to fetch next; `None` when the search is over.
    pub(crate) fn next_request(&self) -> Option<&PageRequest> {
        self.next.as_ref()
    }

    /// Takes the page answering [`Pager::next_request`]; returns the
    /// resources to yield (new ones only, up to the limit).
    pub(crate) fn accept(&mut self, page: ListResponse<Value>) -> Vec<Value> {
        let Some(request) = self.next.take() else {
            return Vec::new();
        };
        self.pages += 1;
        let returned = page.resources.len() as u64;
        if returned == 0 {
            return Vec::new();
        }
        let fingerprint = fingerprint(&page.resources);
        if self.previous_fingerprint == Some(fingerprint) {
            log::debug!("search: the provider served the same page again; stopping");
            return Vec::new();
        }
        self.previous_fingerprint = Some(fingerprint);
        let mut fresh = Vec::with_capacity(page.resources.len());
        let mut any_with_id = false;
        for r in page.resources {
            match r.get("id").and_then(Value::as_str) {
                Some(id) => {
                    any_with_id = true;
                    if self.seen_ids.insert(id.to_string()) {
                        fresh.push(r);
                    }
                }
                None => fresh.push(r),
            }
        }
        if any_with_id && fresh.is_empty() {
            log::debug!("search: a page held only resources already seen; stopping");
            return Vec::new();
        }
        if let Some(limit) = self.limit {
            let room = limit.saturating_sub(self.yielded);
            fresh.truncate(usize::try_from(room).unwrap_or(usize::MAX));
            if self.yielded + fresh.len() as u64 >= limit {
                self.yielded += fresh.len() as u64;
                return fresh;
            }
        }
        self.yielded += fresh.len() as u64;
        if self.pages >= self.max_pages {
            log::warn!("search: stopped after {} pages", self.pages);
            return fresh;
        }
        self.next = match request {
            PageRequest::Index { start_index, count } => {
                let next_start = start_index + returned;
                let past_end = page.total_results.is_some_and(|total| next_start > total);
                (!past_end).then_some(PageRequest::Index {
                    start_index: next_start,
                    count,
                })
            }
            PageRequest::Cursor { count, .. } => page
                .next_cursor
                .filter(|c| !c.is_empty() && self.seen_cursors.insert(c.clone()))
                .map(|cursor| PageRequest::Cursor { cursor, count }),
        };
        fresh
    }
}

fn fingerprint(resources: &[Value]) -> u64 {
    let mut h = DefaultHasher::new();
    for r in resources {
        r.to_string().hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn users(ids: std::ops::Range<u32>) -> Vec<Value> {
        ids.map(|i| json!({"id": format!("u{i}")})).collect()
    }

    fn page(resources: Vec<Value>, total: Option<u64>) -> ListResponse<Value> {
        let mut p = ListResponse::new(resources);
        p.total_results = total;
        p.items_per_page = None;
        p
    }

    /// Runs a pager against a simulated provider, bounded.
    fn run(
        mut pager: Pager,
        serve: impl Fn(&PageRequest) -> ListResponse<Value>,
    ) -> (Vec<String>, usize) {
        let mut out = Vec::new();
        let mut fetches = 0;
        while let Some(req) = pager.next_request().cloned() {
            fetches += 1;
            assert!(fetches < 1000, "runaway pager");
            for r in pager.accept(serve(&req)) {
                out.push(r["id"].as_str().unwrap_or("?").to_string());
            }
        }
        (out, fetches)
    }

    fn index_server(total: u32, max_per_page: u64) -> impl Fn(&PageRequest) -> ListResponse<Value> {
        move |req| {
            let PageRequest::Index { start_index, count } = req else {
                panic!("{req:?}")
            };
            let start = u32::try_from(*start_index).unwrap();
            let n = u32::try_from((*count).min(max_per_page)).unwrap();
            let end = (start + n).min(total + 1);
            page(users(start.min(end)..end), Some(u64::from(total)))
        }
    }

    #[test]
    fn index_paging_stops_at_total_results() {
        let (ids, fetches) = run(Pager::new(Paging::Index, 10, None), index_server(25, 100));
        assert_eq!(ids.len(), 25);
        assert_eq!(ids[0], "u1");
        assert_eq!(fetches, 3);
        // Exact multiple: no extra request for an empty page.
        let (ids, fetches) = run(Pager::new(Paging::Index, 10, None), index_server(20, 100));
        assert_eq!((ids.len(), fetches), (20, 2));
    }

    #[test]
    fn provider_serving_smaller_pages_than_asked() {
        let (ids, fetches) = run(Pager::new(Paging::Index, 10, None), index_server(25, 4));
        assert_eq!((ids.len(), fetches), (25, 7));
    }

    #[test]
    fn provider_ignoring_count_and_start_index() {
        // Always everything, whatever was asked: one page is enough.
        let all = |_: &PageRequest| page(users(0..30), Some(30));
        let (ids, fetches) = run(Pager::new(Paging::Index, 10, None), all);
        assert_eq!((ids.len(), fetches), (30, 1));
        // Always the same first page and a larger total: the repeat stops it.
        let stuck = |_: &PageRequest| page(users(0..10), Some(1000));
        let (ids, fetches) = run(Pager::new(Paging::Index, 10, None), stuck);
        assert_eq!((ids.len(), fetches), (10, 2));
        // Without totalResults, reading goes on to an empty page.
        let untotalled = |req: &PageRequest| {
            let PageRequest::Index { start_index, .. } = req else {
                panic!()
            };
            let s = u32::try_from(*start_index).unwrap();
            page(
                if s > 12 {
                    vec![]
                } else {
                    users(s..(s + 5).min(13))
                },
                None,
            )
        };
        let (ids, fetches) = run(Pager::new(Paging::Index, 5, None), untotalled);
        assert_eq!((ids.len(), fetches), (12, 4));
    }

    #[test]
    fn overlapping_pages_are_deduplicated() {
        // A provider whose pages overlap by one resource.
        let overlapping = |req: &PageRequest| {
            let PageRequest::Index { start_index, count } = req else {
                panic!()
            };
            let s = u32::try_from(*start_index).unwrap();
            let c = u32::try_from(*count).unwrap();
            page(users((s - 1).max(1)..(s - 1 + c).min(13)), Some(12))
        };
        let (ids, _) = run(Pager::new(Paging::Index, 5, None), overlapping);
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!((ids.len(), unique.len()), (12, 12));
    }

    #[test]
    fn limit_stops_early() {
        let (ids, fetches) = run(
            Pager::new(Paging::Index, 10, Some(15)),
            index_server(100, 100),
        );
        assert_eq!((ids.len(), fetches), (15, 2));
        let (ids, fetches) = run(
            Pager::new(Paging::Index, 10, Some(0)),
            index_server(100, 100),
        );
        assert_eq!((ids.len(), fetches), (0, 0));
    }

    #[test]
    fn cursor_paging() {
        let serve = |req: &PageRequest| {
            let PageRequest::Cursor { cursor, count } = req else {
                panic!("{req:?}")
            };
            let start: u32 = if cursor.is_empty() {
                0
            } else {
                cursor.parse().unwrap()
            };
            let end = (start + u32::try_from(*count).unwrap()).min(23);
            let mut p = ListResponse::cursor_page(users(start..end), None, None, None);
            if end < 23 {
                p.next_cursor = Some(end.to_string());
            }
            p
        };
        let (ids, fetches) = run(Pager::new(Paging::Cursor, 10, None), serve);
        assert_eq!((ids.len(), fetches), (23, 3));
        // A provider that hands out the same cursor forever.
        let looping = |req: &PageRequest| {
            let PageRequest::Cursor { cursor, .. } = req else {
                panic!()
            };
            let batch = if cursor.is_empty() { 0..5 } else { 5..10 };
            ListResponse::cursor_page(users(batch), None, Some("again".into()), None)
        };
        let (ids, fetches) = run(Pager::new(Paging::Cursor, 5, None), looping);
        assert_eq!((ids.len(), fetches), (10, 2));
    }

    #[test]
    fn resources_without_ids_are_kept_and_repeats_detected() {
        let anon = |_: &PageRequest| page(vec![json!({"userName": "a"})], None);
        let (ids, fetches) = run(Pager::new(Paging::Index, 1, None), anon);
        assert_eq!((ids.len(), fetches), (1, 2));
    }
}
