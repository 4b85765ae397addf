//! The CLI's side of the HTTP API: requests, the token, and turning every
//! failure into one clear line.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use pigeon_api::model::ErrorBody;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A connection to one node's API.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Where the token was looked for when none was given.
    token_file: PathBuf,
    /// The lattice node the requests are for, through this one (`?node=`).
    on: Option<String>,
}

impl Client {
    /// `node` is the node's base URL; the token is `token`, else the one in
    /// `data/token` when the node runs from that directory.
    pub fn new(node: &str, token: Option<String>, data: &Path) -> Self {
        let token_file = data.join(pigeon_api::auth::TOKEN_FILE);
        let token_file = std::path::absolute(&token_file).unwrap_or(token_file);
        let token = token.or_else(|| std::fs::read_to_string(&token_file).ok().map(|t| t.trim().to_string()));
        let base = node.trim_end_matches('/').to_string();
        Self { http: reqwest::Client::new(), base, token, token_file, on: None }
    }

    /// The same connection, for requests that lattice node `id` answers.
    pub fn on(&self, id: Option<String>) -> Self {
        Self { on: id, ..self.clone() }
    }

    /// The lattice node the requests are for, when not the one connected to.
    pub fn target(&self) -> Option<&str> {
        self.on.as_deref()
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}/api/v1{path}", self.base));
        if let Some(node) = &self.on {
            request = request.query(&[("node", node)]);
        }
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn execute<T: DeserializeOwned>(&self, request: RequestBuilder) -> anyhow::Result<T> {
        Ok(self.execute_with_header(request, "").await?.0)
    }

    /// [`Client::execute`], with the value of the answer's header `header`.
    async fn execute_with_header<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        header: &str,
    ) -> anyhow::Result<(T, Option<String>)> {
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!("cannot reach the node at {}: is it running (`pigeon up`)? Or pass --node URL", self.base)
            } else {
                anyhow!("request to {} failed: {e}", self.base)
            }
        })?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            anyhow::bail!(
                "the node wants its API token, and none was given: no --token or PIGEON_TOKEN, and no file {} \
                 (run from the node's directory, pass --data DIR of the node, or --token) [unauthorized]",
                self.token_file.display()
            );
        }
        let value = response.headers().get(header).and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok((decode(response).await?, value))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.execute(self.request(Method::GET, path)).await
    }

    /// A GET, with the value of the answer's header `header`.
    pub async fn get_with_header<T: DeserializeOwned>(
        &self,
        path: &str,
        header: &str,
    ) -> anyhow::Result<(T, Option<String>)> {
        self.execute_with_header(self.request(Method::GET, path), header).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        self.execute(self.request(Method::POST, path).json(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        self.execute(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn put_bytes<T: DeserializeOwned>(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<T> {
        let request = self.request(Method::PUT, path).header("content-type", "application/wasm").body(bytes);
        self.execute(request).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.delete_json::<serde_json::Value>(path).await.map(drop)
    }

    /// A DELETE whose answer has a body.
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.execute(self.request(Method::DELETE, path)).await
    }
}

/// The body of a success, or the API's error message.
async fn decode<T: DeserializeOwned>(response: Response) -> anyhow::Result<T> {
    let status = response.status();
    let bytes = response.bytes().await.context("the node's answer was cut short")?;
    if status.is_success() {
        let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        return serde_json::from_slice(body).context("the node answered something this CLI does not understand");
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(e) => Err(anyhow!("{} [{}]", e.error.message, e.error.code)),
        Err(_) => Err(anyhow!("the node answered {status}: {}", String::from_utf8_lossy(&bytes).trim())),
    }
}

/// Everything but RFC 3986's unreserved characters is encoded, so no
/// character of an address, a topic or a name can end a path segment
/// (`/`), start a query (`?`) or a fragment (`#`), or be decoded twice (`%`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// One path segment (an address, a topic, a type name), percent-encoded.
/// `.` and `..` cannot be sent as segments (URLs resolve them), so they are
/// refused here; no valid address or topic is either.
pub fn segment(value: &str) -> anyhow::Result<String> {
    if value == "." || value == ".." {
        anyhow::bail!("`{value}` is not a valid name here (it cannot be part of a URL path)");
    }
    Ok(utf8_percent_encode(value, COMPONENT).to_string())
}

/// A query parameter value, percent-encoded.
pub fn encode_query(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}
