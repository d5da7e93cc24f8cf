//! The route table: every endpoint the server answers, in one place.
//!
//! | Method | Path | Handler |
//! |--------|------|---------|
//! | GET | `/healthz` | [`health::healthz`] |
//! | GET | `/metrics` | [`metrics::get_metrics`] |
//! | GET | `/scim/v2/ServiceProviderConfig` | [`discovery::get_service_provider_config`] |
//! | GET | `/scim/v2/ResourceTypes` | [`discovery::list_resource_types`] |
//! | GET | `/scim/v2/ResourceTypes/{id}` | [`discovery::get_resource_type`] |
//! | GET | `/scim/v2/Schemas` | [`discovery::list_schemas`] |
//! | GET | `/scim/v2/Schemas/{id}` | [`discovery::get_schema`] |
//! | GET, POST | `/scim/v2/Users` | [`list::list_users`], [`users::create_user`] |
//! | POST | `/scim/v2/Users/.search` | [`list::search_users`] |
//! | GET, PUT, PATCH, DELETE | `/scim/v2/Users/{id}` | [`users`]`::{get,replace,patch,delete}_user` |
//! | GET, POST | `/scim/v2/Groups` | [`list::list_groups`], [`groups::create_group`] |
//! | POST | `/scim/v2/Groups/.search` | [`list::search_groups`] |
//! | GET, PUT, PATCH, DELETE | `/scim/v2/Groups/{id}` | [`groups`]`::{get,replace,patch,delete}_group` |
//! | POST | `/scim/v2/.search` | [`list::search_all`] |
//! | GET, PUT, PATCH, DELETE | `/scim/v2/Me` | [`me`]`::{get,replace,patch,delete}_me` |
//! | POST | `/scim/v2/Bulk` | [`bulk::post_bulk`] |
//! | GET, POST | `/api/v1/applications` | [`applications`]`::{list,create}_application(s)` |
//! | GET, PATCH, DELETE | `/api/v1/applications/{id}` | [`applications`]`::{get,update,delete}_application` |
//! | GET | `/api/v1/applications/{id}/provisioning` | [`provisioning::get_provisioning_status`] |
//! | GET | `/api/v1/applications/{id}/plan` | [`provisioning::get_plan`] |
//! | POST | `/api/v1/applications/{id}/provision/{userId}` | [`provisioning::provision_user`] |
//! | POST | `/api/v1/applications/{id}/reconcile` | [`reconcile::reconcile_application`] |
//! | GET | `/api/v1/applications/{id}/reconcile/runs[/{runId}]` | [`reconcile`]`::{list_runs,get_run}` |
//! | GET | `/api/v1/applications/{id}/orphans` | [`reconcile::list_orphans`] |
//! | GET | `/api/v1/provisioning/log` | [`provisioning::get_provisioning_log`] |
//! | GET | `/api/v1/provisioning/dead-letters` | [`provisioning::list_dead_letters`] |
//! | POST | `/api/v1/provisioning/dead-letters/replay` | [`provisioning::replay_dead_letters`] |
//! | GET, POST | `/api/v1/assignments` | [`assignments`]`::{list,create}_assignment(s)` |
//! | DELETE | `/api/v1/assignments/{id}` | [`assignments::delete_assignment`] |
//! | GET, POST | `/api/v1/playbooks` | [`playbooks`]`::{list,create}_playbook(s)` |
//! | GET, PUT, DELETE | `/api/v1/playbooks/{id}` | [`playbooks`]`::{get,replace,delete}_playbook` |
//! | GET, POST | `/api/v1/playbooks/{id}/runs` | [`playbooks`]`::{list_runs,run_playbook}` |
//! | POST | `/api/v1/playbooks/{id}/preview` | [`playbooks::preview_playbook`] |
//! | GET | `/api/v1/runs/{id}` | [`playbooks::get_run`] |
//! | GET, POST | `/api/v1/rules` | [`rules`]`::{list,create}_rule(s)` |
//! | GET, PUT, DELETE | `/api/v1/rules/{id}` | [`rules`]`::{get,replace,delete}_rule` |
//! | POST | `/api/v1/rules/preview` | [`rules::preview_rule`] |
//! | GET, POST | `/api/v1/exclusions` | [`access::list_exclusions`], [`access::create_exclusion`] |
//! | DELETE | `/api/v1/exclusions/{id}` | [`access::delete_exclusion`] |
//! | GET | `/api/v1/users/{id}/access` | [`access::get_user_access`] |
//! | GET | `/api/v1/users/{id}/lifecycle` | [`access::get_user_lifecycle`] |
//! | POST | `/api/v1/users/{id}/preview` | [`access::preview_user`] |
//! | GET | `/api/v1/applications/{id}/access` | [`access::get_application_access`] |
//! | POST | `/api/v1/assignments/{id}/extend` | [`access::extend_assignment`] |
//! | GET | `/api/v1/assignments/{id}/extensions` | [`access::list_extensions`] |
//! | GET | `/api/v1/audit` | [`audit::list_audit`] |
//! | GET | `/api/v1/audit/export` | [`audit::export_audit`] |
//! | GET | `/api/v1/audit/verify` | [`audit::verify_audit`] |
//! | GET, POST | `/api/v1/reviews` | [`reviews`]`::{list,create}_review(s)` |
//! | GET | `/api/v1/reviews/{id}` | [`reviews::get_review`] |
//! | GET | `/api/v1/reviews/{id}/items` | [`reviews::list_review_items`] |
//! | POST | `/api/v1/reviews/{id}/items/{item}/decision` | [`reviews::decide_review_item`] |
//! | POST | `/api/v1/reviews/{id}/close` | [`reviews::close_review`] |
//! | GET | `/api/v1/reviews/{id}/export` | [`reviews::export_review`] |
//! | GET | `/api/v1/openapi.json` | [`openapi::get_openapi`] (no token needed) |
//!
//! Other methods on these paths answer 405 with an `Allow` header; any
//! other path answers 404. Both as SCIM errors.

use actix_web::dev::Handler;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{
    FromRequest, HttpRequest, HttpResponse, Resource, Responder, ResponseError, Route, web,
};
use scim_core::ErrorKind;

use super::{
    SCIM_PREFIX, applications, assignments, audit, bulk, discovery, groups, health, list, me,
    metrics, openapi, provisioning, reconcile, request, reviews, users,
};
use super::{access, playbooks, rules};
use crate::error::Error;

/// Registers every route, the extractor configurations and the 404
/// default service.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(request::json_config(max_body_bytes))
        .app_data(request::payload_config(max_body_bytes))
        .app_data(request::query_config())
        .app_data(request::path_config())
        .service(get_only("/healthz", health::healthz))
        .service(get_only("/metrics", metrics::get_metrics))
        .service(
            web::scope(SCIM_PREFIX)
                .service(get_only(
                    "/ServiceProviderConfig",
                    discovery::get_service_provider_config,
                ))
                .service(get_only("/ResourceTypes", discovery::list_resource_types))
                .service(get_only(
                    "/ResourceTypes/{id}",
                    discovery::get_resource_type,
                ))
                .service(get_only("/Schemas", discovery::list_schemas))
                .service(get_only("/Schemas/{id}", discovery::get_schema))
                // Queries (api/list.rs). The `.search` paths must come
                // before the `/Users/{id}` and `/Groups/{id}` resources,
                // which would match them.
                .service(post_only("/.search", list::search_all))
                .service(post_only("/Users/.search", list::search_users))
                .service(post_only("/Groups/.search", list::search_groups))
                // Collections: list (GET) and create (POST) on one resource.
                .service(
                    web::resource("/Users")
                        .route(web::get().to(list::list_users))
                        .route(web::post().to(users::create_user))
                        .default_service(not_allowed(COLLECTION)),
                )
                .service(
                    web::resource("/Users/{id}")
                        .route(web::get().to(users::get_user))
                        .route(web::put().to(users::replace_user))
                        .route(web::patch().to(users::patch_user))
                        .route(web::delete().to(users::delete_user))
                        .default_service(not_allowed(BY_ID)),
                )
                .service(
                    web::resource("/Groups")
                        .route(web::get().to(list::list_groups))
                        .route(web::post().to(groups::create_group))
                        .default_service(not_allowed(COLLECTION)),
                )
                .service(
                    web::resource("/Groups/{id}")
                        .route(web::get().to(groups::get_group))
                        .route(web::put().to(groups::replace_group))
                        .route(web::patch().to(groups::patch_group))
                        .route(web::delete().to(groups::delete_group))
                        .default_service(not_allowed(BY_ID)),
                )
                .service(
                    web::resource("/Me")
                        .route(web::get().to(me::get_me))
                        .route(web::put().to(me::replace_me))
                        .route(web::patch().to(me::patch_me))
                        .route(web::delete().to(me::delete_me))
                        .default_service(not_allowed(BY_ID)),
                )
                .service(
                    web::resource("/Bulk")
                        .route(web::post().to(bulk::post_bulk))
                        .default_service(not_allowed("POST")),
                ),
        )
        // The management API (admin scope): applications, assignments and
        // the provisioning engine. Keep these routes together.
        .service(
            web::scope("/api/v1")
                .service(
                    web::resource("/applications")
                        .route(web::get().to(applications::list_applications))
                        .route(web::post().to(applications::create_application))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/applications/{id}")
                        .route(web::get().to(applications::get_application))
                        .route(web::patch().to(applications::update_application))
                        .route(web::delete().to(applications::delete_application))
                        .default_service(not_allowed("GET, PATCH, DELETE")),
                )
                .service(get_only(
                    "/applications/{id}/provisioning",
                    provisioning::get_provisioning_status,
                ))
                .service(get_only("/applications/{id}/plan", provisioning::get_plan))
                .service(
                    web::resource("/applications/{id}/provision/{user_id}")
                        .route(web::post().to(provisioning::provision_user))
                        .default_service(not_allowed("POST")),
                )
                .service(post_only(
                    "/applications/{id}/reconcile",
                    reconcile::reconcile_application,
                ))
                .service(get_only(
                    "/applications/{id}/reconcile/runs",
                    reconcile::list_runs,
                ))
                .service(get_only(
                    "/applications/{id}/reconcile/runs/{run_id}",
                    reconcile::get_run,
                ))
                .service(get_only(
                    "/applications/{id}/orphans",
                    reconcile::list_orphans,
                ))
                .service(get_only(
                    "/provisioning/log",
                    provisioning::get_provisioning_log,
                ))
                .service(get_only(
                    "/provisioning/dead-letters",
                    provisioning::list_dead_letters,
                ))
                .service(
                    web::resource("/provisioning/dead-letters/replay")
                        .route(web::post().to(provisioning::replay_dead_letters))
                        .default_service(not_allowed("POST")),
                )
                .service(
                    web::resource("/assignments")
                        .route(web::get().to(assignments::list_assignments))
                        .route(web::post().to(assignments::create_assignment))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/assignments/{id}")
                        .route(web::delete().to(assignments::delete_assignment))
                        .default_service(not_allowed("DELETE")),
                )
                // Lifecycle automation: playbooks, rules, previews, the
                // centralized view, temporary-access extensions.
                .service(
                    web::resource("/playbooks")
                        .route(web::get().to(playbooks::list_playbooks))
                        .route(web::post().to(playbooks::create_playbook))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/playbooks/{id}")
                        .route(web::get().to(playbooks::get_playbook))
                        .route(web::put().to(playbooks::replace_playbook))
                        .route(web::delete().to(playbooks::delete_playbook))
                        .default_service(not_allowed("GET, PUT, DELETE")),
                )
                .service(
                    web::resource("/playbooks/{id}/runs")
                        .route(web::get().to(playbooks::list_runs))
                        .route(web::post().to(playbooks::run_playbook))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(post_only(
                    "/playbooks/{id}/preview",
                    playbooks::preview_playbook,
                ))
                .service(get_only("/runs/{id}", playbooks::get_run))
                .service(post_only("/rules/preview", rules::preview_rule))
                .service(
                    web::resource("/rules")
                        .route(web::get().to(rules::list_rules))
                        .route(web::post().to(rules::create_rule))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/rules/{id}")
                        .route(web::get().to(rules::get_rule))
                        .route(web::put().to(rules::replace_rule))
                        .route(web::delete().to(rules::delete_rule))
                        .default_service(not_allowed("GET, PUT, DELETE")),
                )
                .service(
                    web::resource("/exclusions")
                        .route(web::get().to(access::list_exclusions))
                        .route(web::post().to(access::create_exclusion))
                        .default_service(not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/exclusions/{id}")
                        .route(web::delete().to(access::delete_exclusion))
                        .default_service(not_allowed("DELETE")),
                )
                .service(get_only("/users/{id}/access", access::get_user_access))
                .service(get_only(
                    "/users/{id}/lifecycle",
                    access::get_user_lifecycle,
                ))
                .service(post_only("/users/{id}/preview", access::preview_user))
                .service(get_only(
                    "/applications/{id}/access",
                    access::get_application_access,
                ))
                .service(post_only(
                    "/assignments/{id}/extend",
                    access::extend_assignment,
                ))
                .service(get_only(
                    "/assignments/{id}/extensions",
                    access::list_extensions,
                ))
                // Governance: audit log, access reviews, the OpenAPI document.
                .configure(governance_routes),
        )
        .default_service(web::to(not_found));
}

/// The governance routes under `/api/v1` (api/audit.rs, api/reviews.rs,
/// api/openapi.rs).
fn governance_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/audit", audit::list_audit))
        .service(get_only("/audit/export", audit::export_audit))
        .service(get_only("/audit/verify", audit::verify_audit))
        .service(
            web::resource("/reviews")
                .route(web::get().to(reviews::list_reviews))
                .route(web::post().to(reviews::create_review))
                .default_service(not_allowed("GET, POST")),
        )
        .service(get_only("/reviews/{id}", reviews::get_review))
        .service(get_only("/reviews/{id}/items", reviews::list_review_items))
        .service(post_only(
            "/reviews/{id}/items/{item}/decision",
            reviews::decide_review_item,
        ))
        .service(post_only("/reviews/{id}/close", reviews::close_review))
        .service(get_only("/reviews/{id}/export", reviews::export_review))
        .service(get_only("/openapi.json", openapi::get_openapi));
}

/// The methods of a collection (list and create).
const COLLECTION: &str = "GET, POST";

/// The methods of a single resource.
const BY_ID: &str = "GET, PUT, PATCH, DELETE";

/// A resource answering GET with `handler` and 405 to anything else.
fn get_only<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(not_allowed("GET"))
}

/// A resource answering POST with `handler` and 405 to anything else.
fn post_only<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(not_allowed("POST"))
}

/// The 405 route for a resource that allows the methods in `allow`.
fn not_allowed(allow: &'static str) -> Route {
    web::route().to(move |req: HttpRequest| async move {
        let mut response = Error::from(scim_core::Error::new(
            ErrorKind::MethodNotAllowed,
            format!("{} is not supported on {}", req.method(), req.path()),
        ))
        .error_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        response
    })
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    Error::from(scim_core::Error::not_found(format!(
        "no endpoint at {}",
        req.path()
    )))
    .error_response()
}
