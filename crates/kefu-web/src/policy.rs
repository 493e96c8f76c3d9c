//! The cache and security headers of each kind of web file.
//!
//! Pages carry a strict Content-Security-Policy (no inline script or style,
//! no eval), so a message that somehow became markup still could not run.
//! `/chat` may be framed by the widget's host sites, `/agent` by no one.

use crate::BadOrigin;
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `widget.js`: a fixed name that sites link to, so always revalidated.
    Loader,
    /// The customer chat, framed by the widget or opened as a page.
    Chat,
    /// The agent console.
    Console,
    /// A file under `assets/`, named by its content's hash.
    Asset,
}

/// What every page may load: its own scripts and styles only; pictures and
/// media also from elsewhere, because cards show a shop's product images.
const PAGE_SOURCES: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";

pub struct Policy {
    chat_csp: HeaderValue,
    console_csp: HeaderValue,
}

impl Policy {
    pub fn new(widget_origins: &[String]) -> Result<Policy, BadOrigin> {
        for origin in widget_origins {
            check_origin(origin)?;
        }
        let ancestors = if widget_origins.is_empty() {
            "*".to_owned()
        } else {
            widget_origins.join(" ")
        };
        let chat = format!("{PAGE_SOURCES}; frame-ancestors {ancestors}");
        let console = format!("{PAGE_SOURCES}; frame-ancestors 'none'");
        Ok(Policy {
            chat_csp: HeaderValue::from_str(&chat).map_err(|_| BadOrigin(ancestors))?,
            console_csp: HeaderValue::from_str(&console)
                .unwrap_or(HeaderValue::from_static("default-src 'none'")),
        })
    }

    /// Chat framed by any site.
    pub fn any_origin() -> Policy {
        match Policy::new(&[]) {
            Ok(policy) => policy,
            Err(_) => unreachable!("an empty origin list is always valid"),
        }
    }

    pub fn headers(&self, kind: Kind) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
        match kind {
            Kind::Loader => {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                // Host sites load it cross-origin, whatever their own policy.
                h.insert(
                    HeaderName::from_static("cross-origin-resource-policy"),
                    HeaderValue::from_static("cross-origin"),
                );
            }
            Kind::Chat => {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                h.insert(header::CONTENT_SECURITY_POLICY, self.chat_csp.clone());
            }
            Kind::Console => {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                h.insert(header::CONTENT_SECURITY_POLICY, self.console_csp.clone());
                h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            }
            Kind::Asset => {
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                );
            }
        }
        h
    }
}

/// Sites allowed to call the API and open WebSockets from their pages:
/// `https://shop.example.com`, or `https://*.example.com` for its
/// subdomains.
#[derive(Debug, Clone)]
pub struct Origins {
    patterns: Vec<String>,
}

impl Origins {
    pub fn new(patterns: &[String]) -> Result<Origins, BadOrigin> {
        for pattern in patterns {
            check_origin(pattern)?;
        }
        Ok(Origins {
            patterns: patterns
                .iter()
                .map(|p| p.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        })
    }

    /// Whether a request's `Origin` header names an allowed site.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.patterns.iter().any(|pattern| {
            if let Some((scheme, host)) = pattern.split_once("://*.") {
                origin
                    .strip_prefix(scheme)
                    .and_then(|rest| rest.strip_prefix("://"))
                    .is_some_and(|rest| rest.ends_with(&format!(".{host}")))
            } else {
                *pattern == origin
            }
        })
    }
}

/// An origin as CSP writes one: `scheme://host[:port]`, the host possibly
/// starting with `*.`; nothing that could end the directive.
fn check_origin(origin: &str) -> Result<(), BadOrigin> {
    let bad = || BadOrigin(origin.to_owned());
    let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return Err(bad());
    }
    let host = rest.strip_prefix("*.").unwrap_or(rest);
    let ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if ok && !host.is_empty() {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests;
