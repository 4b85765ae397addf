//! The API's OpenAPI document is true: schemathesis (from PyPI) generates
//! requests from it, valid and invalid, against the real binary with the
//! example actors, and checks every answer against the document — status
//! codes, content types, bodies, authentication. The budget is bounded
//! (`--max-examples`) and the seed fixed, so the test takes under a minute
//! and explores the same cases on every run; try other seeds by hand with
//! `st run --seed N` (see docs/operations.md).
//!
//! Its settings are in `tests/schemathesis.toml`, with the reasons for the
//! few expectations it relaxes.

use std::process::Command;

use pigeon_tests::process::PigeonNode;

#[test]
fn schemathesis_finds_nothing_the_document_does_not_say() {
    if Command::new("st").arg("--version").output().is_err() {
        return pigeon_tests::skip("schemathesis: `pip install schemathesis`");
    }
    let dir = tempfile::tempdir().unwrap();
    let node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &["--demo"])
        .unwrap_or_else(|log| panic!("pigeon up starts:\n{log}"));
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");
    let output = Command::new("st")
        .args(["--config-file", config, "run"])
        .arg(format!("{}/api/v1/openapi.json", node.url))
        .args(["--url", &node.url])
        .args(["-H", &format!("Authorization: Bearer {}", node.token())])
        .args(["--checks", "all", "--exclude-path", "/api/v1/events", "--max-examples", "40", "--seed", "1"])
        .args(["--no-color"])
        .current_dir(dir.path())
        .output()
        .expect("st runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_and_browsers_get_the_guards() {
    let dir = tempfile::tempdir().unwrap();
    let node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &[])
        .unwrap_or_else(|log| panic!("pigeon up starts:\n{log}"));
    let http = reqwest::Client::new();
    let error_code = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(kind.as_deref(), Some("application/json"), "status {status}");
        let body: serde_json::Value = response.json().await.expect("a JSON error");
        (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
    };
    let url = |path: &str| format!("{}{path}", node.url);
    // Unknown paths, wrong methods, bad queries, bad bodies.
    assert_eq!(error_code(http.get(url("/api/v1/nope")).send().await.unwrap()).await, (404, "not_found".into()));
    assert_eq!(error_code(http.get(url("/ui/nope.js")).send().await.unwrap()).await, (404, "not_found".into()));
    let wrong = http.delete(url("/api/v1/health")).send().await.unwrap();
    assert_eq!(error_code(wrong).await, (405, "method_not_allowed".into()));
    let query = http.get(url("/api/v1/actors?limit=x")).send().await.unwrap();
    assert_eq!(error_code(query).await, (400, "invalid_query".into()));
    let token = node.token();
    let array = http.post(url("/api/v1/topics/t/messages")).bearer_auth(&token).json(&[0, 1]).send().await.unwrap();
    assert_eq!(error_code(array).await, (400, "bad_request".into()));
    // The Bearer scheme in any case.
    let lower = http
        .post(url("/api/v1/dead-letters/purge"))
        .header("authorization", format!("bearer {token}"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status().as_u16(), 200);
    // DNS rebinding: a name that is not loopback is refused, even for reads.
    let rebound = http.get(url("/api/v1/health")).header("host", "evil.example:7070").send().await.unwrap();
    assert_eq!(error_code(rebound).await, (403, "host_not_allowed".into()));
    // The dashboard comes with its policy.
    let page = http.get(url("/")).send().await.unwrap();
    let csp = page.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(page.headers().get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"));
}
