//! The HTTP API in process: any request — method, path, query, headers,
//! body — gets an answer, and every error is JSON `{"error": {...}}`; no
//! request crashes the node or answers 500.
//!
//! Input layout: the first byte picks the method, the text up to the first
//! newline is the path and query, the next line says whether to send the
//! token, and the rest is the body.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.splitn(3, '\n');
    let (target, auth, body) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let path = format!("/{}", target.trim_start_matches('/'));
    let api = pigeon_fuzz::api();
    let mut request = Request::builder().method(METHODS[usize::from(selector) % METHODS.len()].clone()).uri(path);
    if !auth.is_empty() {
        request = request.header("authorization", format!("Bearer {}", api.token));
    }
    request = request.header("content-type", "application/json").header("host", "127.0.0.1:7070");
    let Ok(request) = request.body(Body::from(body.to_string())) else { return };
    let response = api.runtime.block_on(api.router.clone().oneshot(request)).expect("the router answers");
    let status = response.status();
    assert!(status.as_u16() != 500, "a request answered 500: {input:?}");
    if status.is_client_error() || status.is_server_error() {
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert_eq!(kind, "application/json", "error {status} without JSON: {input:?}");
    }
});
