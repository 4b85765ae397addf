//! The dashboard: the static files of `web-ui/`, compiled into the binary.
//!
//! No separate server and no build step: the page is plain ES modules
//! (Preact with htm templates, uPlot for charts, vendored in
//! `web-ui/vendor/`) that talk to the public API like any other client.
//! `/` serves `index.html`; everything else lives under `/ui/`. The files
//! hold no data, so they are served without the token; the API calls the
//! page makes are checked as usual.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `(name under /ui/, content type, bytes)`.
type File = (&'static str, &'static str, &'static [u8]);

macro_rules! web_ui {
    ($($name:literal => $kind:expr),* $(,)?) => {
        &[$(($name, $kind, include_bytes!(concat!("../../../web-ui/", $name)))),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

static FILES: &[File] = web_ui![
    "index.html" => HTML,
    "style.css" => CSS,
    "app.js" => JS,
    "api.js" => JS,
    "format.js" => JS,
    "overview.js" => JS,
    "actors.js" => JS,
    "actor.js" => JS,
    "routing.js" => JS,
    "dead.js" => JS,
    "lattice.js" => JS,
    "placements.js" => JS,
    "vendor/htm-preact-standalone.mjs" => JS,
    "vendor/uPlot.esm.js" => JS,
    "vendor/uPlot.min.css" => CSS,
];

fn serve(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        // `no-cache`: revalidate, so a node upgrade shows its own page.
        Some((_, kind, bytes)) => {
            ([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")], *bytes).into_response()
        }
        None => crate::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such dashboard file: /ui/{name}"),
        )
        .into_response(),
    }
}

/// `GET /`: the dashboard.
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET /ui/{file}`: its scripts, styles and vendored libraries.
pub async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_embedded_with_a_type() {
        for (name, kind, bytes) in FILES {
            assert!(!bytes.is_empty(), "{name} is empty");
            let expected = match name.rsplit('.').next() {
                Some("js" | "mjs") => JS,
                Some("css") => CSS,
                _ => HTML,
            };
            assert_eq!(*kind, expected, "{name}");
        }
    }

    #[test]
    fn every_file_of_web_ui_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web-ui");
        for dir in ["", "vendor"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let served =
                    path.extension().is_some_and(|e| ["js", "mjs", "css", "html"].contains(&&*e.to_string_lossy()));
                if path.is_file() && served {
                    let name = path.strip_prefix(&root).unwrap().to_string_lossy().to_string();
                    assert!(FILES.iter().any(|(n, _, _)| *n == name), "web-ui/{name} is not served: add it to FILES");
                }
            }
        }
    }
}
