//! The server in-process for the fuzz targets that drive it: the app that
//! `scim-server serve` runs ([`scim_server::server::app`]), over one
//! in-memory SQLite store kept for the whole run (no file per input, none
//! left behind), on one actix system kept per thread.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web};
use scim_server::api::AppState;
use scim_server::api::metrics::Metrics;
use scim_server::config::Settings;
use scim_server::db::{DatabaseUrl, PoolOptions};
use scim_server::store::{Store, StoreOptions, TenantStore, TokenStore};
use scim_server::tokens::{Scope, Scopes};

/// The request type of the app.
pub type Request = actix_http::Request;

type Call = Rc<
    dyn Fn(Request) -> Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>>>,
>;

/// The server, its store and a system to run it on.
pub struct World {
    runner: actix_web::rt::SystemRunner,
    call: Call,
    /// The store behind the app.
    pub store: Store,
    /// The public base URL the app uses in `meta.location`.
    pub base_url: String,
}

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl World {
    fn new() -> Self {
        let mut settings = Settings::defaults();
        settings.database_url = ":memory:".into();
        // The fuzzed requests run one at a time; keep the limits small
        // enough that an input cannot make one request take seconds.
        settings.bulk_max_operations = 64;
        settings.patch_max_operations = 64;
        settings.max_body_bytes = 256 * 1024;
        let store = Store::open(
            &DatabaseUrl::parse(":memory:").expect("memory URL"),
            StoreOptions {
                pool: PoolOptions {
                    size: 1,
                    timeout: std::time::Duration::from_secs(5),
                },
                migrate: true,
                events: None,
            },
        )
        .expect("in-memory store")
        .with_registry(Arc::new(
            scim_server::server::schema_registry(&settings).expect("registry"),
        ));
        let base_url = "http://fuzz.test/scim/v2".to_owned();
        let state = web::Data::new(AppState {
            storage: Arc::new(store.clone()),
            registry: Arc::new(scim_server::server::schema_registry(&settings).expect("registry")),
            settings: Arc::new(settings.clone()),
            base_url: base_url.clone(),
            metrics: Arc::new(Metrics::new().expect("metrics")),
        });
        let runner = actix_web::rt::System::new();
        let limits = web::Data::new(scim_server::api::limits::Limits::new(&settings));
        let health = web::Data::from(
            scim_server::api::health::Health::monitor(Arc::new(store.clone())).expect("health"),
        );
        let service = runner.block_on(test::init_service(scim_server::server::app(
            state,
            limits,
            health,
            settings.max_body_bytes,
        )));
        let service = Rc::new(service);
        let call: Call = Rc::new(move |req| {
            let service = service.clone();
            Box::pin(async move { Ok(service.call(req).await?.map_into_boxed_body()) })
        });
        Self {
            runner,
            call,
            store,
            base_url,
        }
    }

    /// Runs `fut` on the world's actix system (what needs its runtime,
    /// such as actix-http's date service in a codec, is made inside).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.runner.block_on(fut)
    }

    /// Runs `f` with this thread's world.
    pub fn with<T>(f: impl FnOnce(&World) -> T) -> T {
        thread_local! {
            static WORLD: OnceCell<World> = const { OnceCell::new() };
        }
        WORLD.with(|w| f(w.get_or_init(World::new)))
    }

    /// A new tenant with one token of `scopes`; answers the secret.
    pub fn tenant(&self, name: &str, scopes: &[Scope]) -> String {
        let tenant = self.store.ensure_tenant(name).expect("tenant");
        self.store
            .create_token(tenant.id, "fuzz", Scopes::of(scopes))
            .expect("token")
            .secret
    }

    /// Sends one request through the app. An error the app returns
    /// instead of a response is rendered as actix would render it.
    pub fn send(&self, req: Request) -> Answer {
        let call = self.call.clone();
        self.runner.block_on(async move {
            let res = match call(req).await {
                Ok(res) => res.into_parts().1,
                Err(e) => e.error_response().map_into_boxed_body(),
            };
            let status = res.status().as_u16();
            let body = actix_web::body::to_bytes(res.into_body())
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            Answer { status, body }
        })
    }

    /// `send` of a request built by `TestRequest`.
    pub fn request(
        &self,
        method: actix_web::http::Method,
        uri: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut req = test::TestRequest::default()
            .method(method)
            .uri(uri)
            .peer_addr("127.0.0.1:1".parse().expect("address"))
            .insert_header(("Authorization", format!("Bearer {token}")));
        if let Some(body) = body {
            req = req
                .insert_header(("Content-Type", "application/scim+json"))
                .set_payload(body);
        }
        self.send(req.to_request())
    }
}

/// Panics (a finding) on a 5xx answer, showing what was sent.
pub fn assert_no_5xx(answer: &Answer, what: impl FnOnce() -> String) {
    assert!(
        answer.status < 500,
        "{} answered {}: {}",
        what(),
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
}
