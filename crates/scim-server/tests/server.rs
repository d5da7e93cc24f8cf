//! The scim-server integration tests: one binary, one module per area.
//! Every `backend_test!` / `store_test!` runs against SQLite and, when
//! `SCIM_TEST_POSTGRES_URL` is set, against PostgreSQL too.

#[path = "server/harness.rs"]
#[macro_use]
mod harness;

#[path = "server/access_model.rs"]
mod access_model;
#[path = "server/applications.rs"]
mod applications;
#[path = "server/audit.rs"]
mod audit;
#[path = "server/audit_chain.rs"]
mod audit_chain;
#[path = "server/auth.rs"]
mod auth;
#[path = "server/bulk.rs"]
mod bulk;
#[path = "server/cli.rs"]
mod cli;
#[path = "server/discovery.rs"]
mod discovery;
#[path = "server/engine_crash.rs"]
mod engine_crash;
#[path = "server/engine_faults.rs"]
mod engine_faults;
#[path = "server/engine_faults_groups.rs"]
mod engine_faults_groups;
#[path = "server/engine_features_engine.rs"]
mod engine_features_engine;
#[path = "server/engine_features_groups.rs"]
mod engine_features_groups;
#[path = "server/engine_roles.rs"]
mod engine_roles;
#[path = "server/engine_scim2.rs"]
mod engine_scim2;
#[path = "server/entra.rs"]
mod entra;
#[path = "server/etag.rs"]
mod etag;
#[path = "server/fault_proxy.rs"]
mod fault_proxy;
#[path = "server/filter_corpus.rs"]
mod filter_corpus;
#[path = "server/foreign_ids.rs"]
mod foreign_ids;
#[path = "server/groups.rs"]
mod groups;
#[path = "server/hostile.rs"]
mod hostile;
#[path = "server/lifecycle_api.rs"]
mod lifecycle_api;
#[path = "server/lifecycle_jml.rs"]
mod lifecycle_jml;
#[path = "server/lifecycle_temporary.rs"]
mod lifecycle_temporary;
#[path = "server/limits.rs"]
mod limits;
#[path = "server/me.rs"]
mod me;
#[path = "server/metrics_labels.rs"]
mod metrics_labels;
#[path = "server/okta.rs"]
mod okta;
#[path = "server/ops.rs"]
mod ops;
#[path = "server/outbound.rs"]
mod outbound;
#[path = "server/provisioning.rs"]
mod provisioning;
#[path = "server/queries.rs"]
mod queries;
#[path = "server/reviews.rs"]
mod reviews;
#[path = "server/starvation.rs"]
mod starvation;
#[path = "server/statistics.rs"]
mod statistics;
#[path = "server/store.rs"]
mod store;
#[path = "server/users.rs"]
mod users;
