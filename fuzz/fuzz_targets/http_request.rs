//! Arbitrary bytes as an HTTP/1.1 request, through the server's own HTTP
//! parser (actix-http's h1 codec, as the server reads a connection) and
//! then through the app the server runs (routes, authentication, body
//! limit, every handler), in-process over an in-memory SQLite store.
//!
//! The first byte chooses the credentials added when the request has no
//! `Authorization` of its own: none, a `scim:write` token, or an `admin`
//! token of the tenant `fuzz`, so the fuzzer reaches past authentication.
//!
//! Properties: nothing panics; no answer is a 5xx (a bad request is the
//! client's error: 4xx with a SCIM error, never a 500).
//!
//! Run (see docs/TESTING.md):
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run -s none http_request -- -max_total_time=600 -dict=http.dict
//! ```

#![no_main]

use std::sync::OnceLock;

use actix_codec::Decoder;
use actix_http::HttpMessage;
use actix_http::h1::{Codec, Message};
use actix_web::test::TestRequest;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use scim_server::tokens::Scope;

#[path = "common/server.rs"]
mod server;

use server::{World, assert_no_5xx};

/// The `scim:write` and `admin` tokens of the tenant `fuzz`.
static TOKENS: OnceLock<(String, String)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&choice, raw)) = data.split_first() else {
        return;
    };
    World::with(|world| {
        // The server's parser (its date service needs the actix runtime):
        // what it refuses, the dispatcher answers with a 400 (or closes);
        // only what it accepts reaches the app.
        let parsed = world.block_on(async {
            let mut buf = BytesMut::from(raw);
            let mut codec = Codec::new(actix_http::ServiceConfig::default());
            let Ok(Some(Message::Item(parsed))) = codec.decode(&mut buf) else {
                return None;
            };
            let mut body = Vec::new();
            while let Ok(Some(Message::Chunk(Some(chunk)))) = codec.decode(&mut buf) {
                body.extend_from_slice(&chunk);
                if body.len() > 1 << 20 {
                    break;
                }
            }
            Some((parsed, body))
        });
        let Some((parsed, body)) = parsed else {
            return;
        };
        let (write, admin) = TOKENS.get_or_init(|| {
            (
                world.tenant("fuzz", &[Scope::Write]),
                world.tenant("fuzz", &[Scope::Admin]),
            )
        });
        let mut req = TestRequest::default()
            .method(parsed.method().clone())
            .uri(&parsed.uri().to_string())
            .peer_addr("127.0.0.1:1".parse().expect("address"));
        for (name, value) in parsed.headers() {
            req = req.append_header((name.clone(), value.clone()));
        }
        if !parsed.headers().contains_key("authorization") {
            match choice % 3 {
                1 => req = req.insert_header(("Authorization", format!("Bearer {write}"))),
                2 => req = req.insert_header(("Authorization", format!("Bearer {admin}"))),
                _ => {}
            }
        }
        let answer = world.send(req.set_payload(body).to_request());
        assert_no_5xx(&answer, || {
            format!("{} {}", parsed.method(), parsed.uri())
        });
    });
});
