//! Carrying out a [`Plan`] at a provider, and finding or adopting the
//! existing account a create would duplicate.

use serde_json::Value;

use crate::client::ScimClient;
use crate::error::{ClientError, Result};
use crate::paging::Query;
use crate::plan::{MatchStrategy, Matched, Plan, match_queries, pick_match};

/// How many candidates a match lookup reads: enough to see ambiguity.
const MATCH_CANDIDATES: u64 = 10;

/// What carrying out a plan did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Applied {
    /// Nothing was sent.
    Nothing,
    /// The resource was created; the provider's representation.
    Created(Value),
    /// The create found the resource already there (409) and adopted it;
    /// the provider's representation. Plan again against it: it may differ
    /// from the desired state.
    Adopted(Value),
    /// The resource was patched; the provider's representation when it
    /// sent one (`None` after 204 No Content).
    Patched(Option<Value>),
    /// The resource was replaced; the provider's representation.
    Replaced(Value),
    /// The resource was deactivated.
    Deactivated,
    /// The resource was deleted (`existed` is false when it was already gone).
    Deleted {
        /// Whether the provider still had it.
        existed: bool,
    },
}

/// The outcome of [`ScimClient::create_or_adopt`].
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// The provider created the resource.
    New(Value),
    /// The provider already had it (it answered 409) and it was found by
    /// the match strategy.
    Adopted(Value),
}

impl ScimClient {
    /// Looks up the remote resource that corresponds to `desired`, trying
    /// each of the strategy's filters in order ([`match_queries`]) and
    /// checking each candidate again ([`pick_match`]), so a provider that
    /// ignores filters cannot make us adopt a stranger. Two matching
    /// candidates are [`ClientError::AmbiguousMatch`].
    pub async fn find_match(
        &self,
        endpoint: &str,
        desired: &Value,
        strategy: &MatchStrategy,
    ) -> Result<Option<Value>> {
        let ep = self.endpoint::<Value>(endpoint);
        for filter in match_queries(desired, strategy) {
            let candidates = ep
                .search_all(Query::filter(filter.clone()).limit(MATCH_CANDIDATES))
                .await?;
            match pick_match(desired, &candidates, strategy) {
                Matched::One(found) => return Ok(Some(found.clone())),
                Matched::Ambiguous(count) => {
                    return Err(ClientError::AmbiguousMatch { filter, count });
                }
                Matched::None => {}
            }
        }
        Ok(None)
    }

    /// Creates `desired` at `endpoint`; when the provider answers 409 (the
    /// account exists, e.g. made by hand or by an earlier run whose answer
    /// was lost), finds it with the strategy and adopts it. A 409 with no
    /// match found is returned as it came.
    pub async fn create_or_adopt(
        &self,
        endpoint: &str,
        desired: &Value,
        strategy: &MatchStrategy,
    ) -> Result<Created> {
        let ep = self.endpoint::<Value>(endpoint);
        match ep.create(desired).await {
            Ok(created) => Ok(Created::New(created)),
            Err(conflict) if conflict.is_conflict() => {
                log::info!("{conflict}; looking for the existing resource");
                match self.find_match(endpoint, desired, strategy).await? {
                    Some(existing) => Ok(Created::Adopted(existing)),
                    None => Err(conflict),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Carries out a plan for the resource `id` (`None` before it exists)
    /// at `endpoint`. `remote` is the provider's representation, used to
    /// deactivate by PUT at providers without PATCH (read with a GET when
    /// not given). A create that meets a 409 adopts the existing resource
    /// ([`ScimClient::create_or_adopt`]).
    pub async fn apply(
        &self,
        endpoint: &str,
        id: Option<&str>,
        plan: &Plan,
        remote: Option<&Value>,
        strategy: &MatchStrategy,
    ) -> Result<Applied> {
        let ep = self.endpoint::<Value>(endpoint);
        let need_id = || {
            id.ok_or_else(|| ClientError::InvalidRequest("the plan needs the resource id".into()))
        };
        Ok(match plan {
            Plan::Nothing => Applied::Nothing,
            Plan::Create(doc) => match self.create_or_adopt(endpoint, doc, strategy).await? {
                Created::New(v) => Applied::Created(v),
                Created::Adopted(v) => Applied::Adopted(v),
            },
            Plan::Patch(ops) => Applied::Patched(ep.patch_ops(need_id()?, ops, None).await?),
            Plan::Replace(doc) => Applied::Replaced(ep.replace(need_id()?, doc, None).await?),
            Plan::Deactivate => {
                let id = need_id()?;
                if self.capabilities().patch {
                    let ops = [crate::patch::PatchOperation::replace(
                        "active",
                        Value::Bool(false),
                    )];
                    ep.patch_ops(id, &ops, None).await?;
                } else {
                    let mut doc = match remote {
                        Some(r) => r.clone(),
                        None => ep.get(id).await?,
                    };
                    if let Value::Object(obj) = &mut doc {
                        scim_core::json::remove_ci(obj, "meta");
                        scim_core::json::remove_ci(obj, "active");
                        obj.insert("active".into(), Value::Bool(false));
                    }
                    ep.replace(id, &doc, None).await?;
                }
                Applied::Deactivated
            }
            Plan::Delete => Applied::Deleted {
                existed: ep.delete(need_id()?, None).await?,
            },
        })
    }
}
