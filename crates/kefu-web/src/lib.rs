//! Kefu's web pages, served by every gateway and so by `kefu serve`: the
//! loader a site embeds (`/widget.js`), the customer chat (`/chat`), the
//! agent console (`/agent`) and their hashed assets (`/assets/*`).
//!
//! The pages are built from `web/` by Vite into `web/dist`, which is
//! committed and compiled into the binary, so a machine without Node serves
//! them; CI rebuilds `web/dist` from the lockfile and fails on any
//! difference. `--web-dir` serves a folder from disk instead, for front-end
//! work. The gateway merges [`router`] into its own routes; this crate knows
//! files and headers, nothing of tokens or tasks.
//!
//! # Layout
//! - [`source`]: where the files come from (embedded, or a folder).
//! - [`policy`]: the cache and security headers of each kind of file.

#![forbid(unsafe_code)]

pub mod policy;
pub mod source;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use policy::{Kind, Policy};
use source::Source;
use std::path::PathBuf;
use std::sync::Arc;

/// How the gateway serves its pages.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Serve this folder (a Vite build) instead of the embedded files.
    pub dir: Option<PathBuf>,
    /// Origins allowed to frame `/chat` (the widget's host sites), as CSP
    /// sources such as `https://shop.example.com` or `https://*.example.com`.
    /// Empty: any site.
    pub widget_origins: Vec<String>,
}

/// A site's origin (for `--widget-origins`, `--allowed-origins`) that is
/// not one.
#[derive(Debug, PartialEq, Eq)]
pub struct BadOrigin(pub String);

impl std::fmt::Display for BadOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not an origin like https://shop.example.com or https://*.example.com",
            self.0
        )
    }
}

impl std::error::Error for BadOrigin {}

struct Web {
    source: Source,
    policy: Policy,
}

/// The web pages, checked and ready to serve; cheap to clone.
#[derive(Clone)]
pub struct Pages(Arc<Web>);

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.source {
            Source::Embedded => f.write_str("Pages(embedded)"),
            Source::Dir(dir) => write!(f, "Pages({})", dir.display()),
        }
    }
}

impl Default for Pages {
    /// The embedded pages, framed by any site.
    fn default() -> Self {
        Pages(Arc::new(Web {
            source: Source::Embedded,
            policy: Policy::any_origin(),
        }))
    }
}

impl Pages {
    pub fn new(config: WebConfig) -> Result<Pages, BadOrigin> {
        let policy = Policy::new(&config.widget_origins)?;
        let source = match config.dir {
            Some(dir) => Source::Dir(dir),
            None => Source::Embedded,
        };
        Ok(Pages(Arc::new(Web { source, policy })))
    }

    /// The routes of the pages, for the gateway to merge into its own.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route(
                "/widget.js",
                get(|s, h| page(s, h, "widget.js", Kind::Loader)),
            )
            .route("/chat", get(|s, h| page(s, h, "chat.html", Kind::Chat)))
            .route(
                "/agent",
                get(|s, h| page(s, h, "agent.html", Kind::Console)),
            )
            .route("/assets/{*path}", get(asset))
            .layer(tower_http::compression::CompressionLayer::new())
            .with_state(self.0.clone())
    }
}

async fn page(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    path: &'static str,
    kind: Kind,
) -> Response {
    serve(&web, &headers, path, kind).await
}

async fn asset(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    serve(&web, &headers, &format!("assets/{path}"), Kind::Asset).await
}

async fn serve(web: &Web, request: &HeaderMap, path: &str, kind: Kind) -> Response {
    let file = match web.source.get(path).await {
        Ok(Some(file)) => file,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(path, error = %e, "web file unreadable");
            return not_found();
        }
    };
    let mut headers = web.policy.headers(kind);
    headers.insert(header::CONTENT_TYPE, file.content_type);
    if let Some(etag) = file.etag {
        let matches = request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes());
        headers.insert(header::ETAG, etag);
        if matches {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
    }
    (StatusCode::OK, headers, file.data).into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":{"code":"not_found","message":"no such file"}}"#,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
