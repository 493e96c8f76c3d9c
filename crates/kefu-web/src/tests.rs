use super::*;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(app: &Router, path: &str, headers: &[(&str, &str)]) -> Response<Body> {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn embedded() -> Router {
    Pages::default().router()
}

#[tokio::test]
async fn the_chat_page_is_served_from_the_binary_with_its_policy() {
    let response = get(&embedded(), "/chat", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("frame-ancestors *"));
    assert!(text(response).await.contains("<div id=\"app\">"));
}

#[tokio::test]
async fn every_asset_the_chat_page_names_is_served_and_cached_for_good() {
    let app = embedded();
    let html = text(get(&app, "/chat", &[]).await).await;
    let assets: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    assert!(!assets.is_empty(), "no assets in {html}");
    for path in assets {
        let response = get(&app, path, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
    }
}

#[tokio::test]
async fn the_loader_revalidates_by_etag() {
    let app = embedded();
    let first = get(&app, "/widget.js", &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
    let again = get(&app, "/widget.js", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn text_files_are_gzipped_for_clients_that_accept_it() {
    let response = get(&embedded(), "/widget.js", &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn paths_outside_the_build_are_not_found() {
    let app = embedded();
    for path in [
        "/assets/../chat.html",
        "/assets/%2e%2e/chat.html",
        "/assets/nope.js",
    ] {
        let response = get(&app, path, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_web_dir_is_served_instead_of_the_embedded_files() {
    let dir = std::env::temp_dir().join(format!("kefu-web-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("chat.html"), "<p>from disk</p>").unwrap();
    let app = Pages::new(WebConfig {
        dir: Some(dir.clone()),
        widget_origins: vec!["https://shop.example.com".into()],
    })
    .unwrap()
    .router();
    let response = get(&app, "/chat", &[]).await;
    assert!(response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .ends_with("frame-ancestors https://shop.example.com"));
    assert_eq!(text(response).await, "<p>from disk</p>");
    assert_eq!(
        get(&app, "/agent", &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    std::fs::remove_dir_all(dir).unwrap();
}
