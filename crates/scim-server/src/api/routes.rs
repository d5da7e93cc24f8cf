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
    SCIM_PREFIX, applications, assignments, bulk, discovery, groups, health, list, me, metrics,
    provisioning, reconcile, request, users,
};
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
                ),
        )
        .default_service(web::to(not_found));
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
