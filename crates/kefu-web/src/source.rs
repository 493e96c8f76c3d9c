//! Where the web files come from: compiled into the binary, or a folder.

use axum::body::Bytes;
use axum::http::HeaderValue;
use std::path::{Component, PathBuf};

/// `web/dist`, compiled in (in debug builds too, so tests serve what a
/// release serves).
#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/dist"]
struct Dist;

pub enum Source {
    Embedded,
    Dir(PathBuf),
}

pub struct File {
    pub data: Bytes,
    pub content_type: HeaderValue,
    /// Only embedded files carry one: their hash is known at compile time.
    pub etag: Option<HeaderValue>,
}

impl Source {
    /// The file at `path` (relative, `/`-separated), if there is one.
    pub async fn get(&self, path: &str) -> std::io::Result<Option<File>> {
        if !is_plain(path) {
            return Ok(None);
        }
        match self {
            Source::Embedded => Ok(Dist::get(path).map(|file| {
                let hash = file.metadata.sha256_hash();
                let etag = format!("\"{}\"", hex(&hash[..16]));
                // Compiled-in files are served without a copy.
                let data = match file.data {
                    std::borrow::Cow::Borrowed(bytes) => Bytes::from_static(bytes),
                    std::borrow::Cow::Owned(bytes) => Bytes::from(bytes),
                };
                File {
                    data,
                    content_type: content_type(file.metadata.mimetype()),
                    etag: HeaderValue::from_str(&etag).ok(),
                }
            })),
            Source::Dir(dir) => match tokio::fs::read(dir.join(path)).await {
                Ok(data) => Ok(Some(File {
                    data: Bytes::from(data),
                    content_type: content_type(
                        mime_guess::from_path(path).first_or_octet_stream().as_ref(),
                    ),
                    etag: None,
                })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
}

/// A relative path of plain names: no `..`, no root, no backslash, so a
/// request never leaves the folder.
fn is_plain(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && std::path::Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn content_type(mime: &str) -> HeaderValue {
    let value = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::is_plain;

    #[test]
    fn only_plain_relative_paths_are_served() {
        assert!(is_plain("assets/chat-abc.js"));
        assert!(is_plain("widget.js"));
        for bad in [
            "",
            "../secret",
            "assets/../../etc/passwd",
            "/etc/passwd",
            "a\\b",
            "./x/../y",
        ] {
            assert!(!is_plain(bad), "{bad:?} should be refused");
        }
    }
}
