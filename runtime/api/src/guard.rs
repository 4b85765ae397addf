//! What protects a node from the browsers that can reach it.
//!
//! - **DNS rebinding.** A node on loopback serves reads without the token,
//!   so that the dashboard opens with no set-up. A web page elsewhere could
//!   point its own host name at 127.0.0.1 and read them through the
//!   victim's browser; its requests then carry that name in `Host`. So a
//!   node on loopback answers only requests for a loopback name
//!   (`localhost`, `*.localhost`, `127.x.x.x`, `[::1]`) and refuses the rest
//!   with `403 host_not_allowed`. A node on another address needs the token
//!   for everything and is not affected.
//! - **Framing and injected scripts.** Every response says
//!   `Content-Security-Policy` (only the node's own scripts, styles and
//!   connections; no framing), `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::error::ApiError;

/// The dashboard's policy: everything from the node itself, nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Refuses requests for a non-loopback host name when the node listens on
/// loopback (see the module doc).
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Result<Response, ApiError> {
    if state.loopback
        && let Some(host) = request.headers().get(header::HOST)
    {
        let name = host.to_str().unwrap_or_default();
        if !is_loopback_host(name) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                format!(
                    "this node listens on loopback and answers requests for localhost, 127.0.0.1 or [::1] only \
                     (Host was `{}`), which keeps other web sites from reading it through your browser: use \
                     http://localhost:PORT/, or start the node on another address with `pigeon up --listen`",
                    name.chars().take(100).collect::<String>()
                ),
            ));
        }
    }
    Ok(next.run(request).await)
}

/// Whether a `Host` header value names this machine's loopback.
fn is_loopback_host(value: &str) -> bool {
    let host = match value.strip_prefix('[') {
        // `[::1]:7070`
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        },
        None => value.rsplit_once(':').map_or(value, |(host, _)| host),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Adds the security headers of the module doc to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_names_pass_and_others_do_not() {
        for host in ["localhost", "localhost:7070", "LOCALHOST.", "app.localhost:1", "127.0.0.1:7070", "127.1.2.3"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["[::1]:7070", "[::1]"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.com", "evil.com:7070", "localhost.evil.com", "127.0.0.1.nip.io", "[::2]:80", "10.0.0.1", ""]
        {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
