//! `POST /api/upload` and the URLs it hands out.

use crate::support::*;

#[tokio::test]
async fn an_uploaded_png_is_a_picture_served_without_a_token() {
    let server = Server::start().await;
    let customer = server.token("c1", "customer");

    let (status, body) = server
        .upload(Some(&customer), "dot.png", "image/png", PNG_1X1.to_vec())
        .await;

    assert!(status == 200 || status == 201, "{status} {body}");
    assert_eq!(body["kind"], "picture", "{body}");
    let url = body["url"].as_str().expect("an upload has a url");
    let served = server.fetch(url).await;
    assert_eq!(served.status().as_u16(), 200);
    let header = |name: &str| {
        served
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        header("content-type").starts_with("image/png"),
        "content-type: {}",
        header("content-type")
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    let bytes = served.bytes().await.expect("the file's bytes");
    assert_eq!(bytes.as_ref(), PNG_1X1);
}

#[tokio::test]
async fn upload_urls_are_unguessable() {
    let server = Server::start().await;
    let customer = server.token("c1", "customer");

    let (_, first) = server
        .upload(Some(&customer), "a.png", "image/png", PNG_1X1.to_vec())
        .await;
    let (_, second) = server
        .upload(Some(&customer), "a.png", "image/png", PNG_1X1.to_vec())
        .await;

    let first = first["url"].as_str().expect("url").to_owned();
    let second = second["url"].as_str().expect("url").to_owned();
    assert_ne!(first, second);
    let name = first.rsplit('/').next().unwrap_or_default();
    assert!(
        name.len() >= 16,
        "a file name with enough randomness: {first}"
    );
}

#[tokio::test]
async fn a_plain_file_is_served_back_with_nosniff() {
    let server = Server::start().await;
    let agent = server.token("a1", "agent");
    let text = b"order 1234: two blue shoes\n".to_vec();

    let (status, body) = server
        .upload(Some(&agent), "order.txt", "text/plain", text.clone())
        .await;

    assert!(status == 200 || status == 201, "{status} {body}");
    let kind = body["kind"].as_str().unwrap_or_default();
    assert!(
        kind == "file" || kind == "unknown",
        "a text file is not a picture: {body}"
    );
    let served = server.fetch(body["url"].as_str().expect("url")).await;
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        served.bytes().await.expect("bytes").as_ref(),
        text.as_slice()
    );
}

#[tokio::test]
async fn an_upload_over_the_limit_is_413() {
    let server = Server::builder().max_upload_bytes(1000).start().await;
    let customer = server.token("c1", "customer");

    let (status, body) = server
        .upload(
            Some(&customer),
            "big.bin",
            "application/octet-stream",
            vec![7u8; 5000],
        )
        .await;

    assert_http_error(status, &body, 413, "too_large");
}

#[tokio::test]
async fn an_unknown_upload_url_is_404() {
    let server = Server::start().await;
    let customer = server.token("c1", "customer");
    let (_, body) = server
        .upload(Some(&customer), "a.png", "image/png", PNG_1X1.to_vec())
        .await;
    let url = body["url"].as_str().expect("url");
    let cut = url.len() - 4;
    let wrong = format!("{}{}", &url[..cut], "zzzz");

    let response = server.fetch(&wrong).await;

    assert_eq!(response.status().as_u16(), 404);
}

/// A mono 8 kHz 8-bit PCM WAV of eight samples.
fn tiny_wav() -> Vec<u8> {
    let samples = [128u8; 8];
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    wav
}

#[tokio::test]
async fn an_uploaded_wav_is_audio() {
    let server = Server::start().await;
    let customer = server.token("c1", "customer");

    let (status, body) = server
        .upload(Some(&customer), "hello.wav", "audio/wav", tiny_wav())
        .await;

    assert!(status == 200 || status == 201, "{status} {body}");
    assert_eq!(body["kind"], "audio", "{body}");
}

#[tokio::test]
async fn an_upload_over_20_mib_is_413_by_default() {
    let server = Server::start().await;
    let customer = server.token("c1", "customer");

    let (status, body) = server
        .upload(
            Some(&customer),
            "big.bin",
            "application/octet-stream",
            vec![1u8; 21 << 20],
        )
        .await;

    assert_http_error(status, &body, 413, "too_large");
}

#[tokio::test]
async fn an_upload_just_under_the_limit_is_accepted() {
    let server = Server::builder().max_upload_bytes(4096).start().await;
    let customer = server.token("c1", "customer");

    let (status, body) = server
        .upload(
            Some(&customer),
            "small.bin",
            "application/octet-stream",
            vec![1u8; 4000],
        )
        .await;

    assert!(status == 200 || status == 201, "{status} {body}");
}

#[tokio::test]
async fn only_images_audio_video_and_pdf_are_shown_inline_the_rest_downloads() {
    let server = Server::start().await;
    let customer = server.token("c1", "customer");
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest-of-a-zip".to_vec();
    let cases = [
        ("dot.png", "image/png", PNG_1X1.to_vec(), false),
        ("page.html", "text/html", html, true),
        ("files.zip", "application/zip", zip, true),
    ];
    for (name, mime, data, attachment) in cases {
        let (status, body) = server.upload(Some(&customer), name, mime, data).await;
        assert_eq!(status, 201, "{body}");
        let served = server.fetch(body["url"].as_str().expect("url")).await;
        let disposition = served
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            disposition == "attachment",
            attachment,
            "{name}: {disposition:?}"
        );
    }
}

async fn upload_with(server: &Server, token: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(PNG_1X1.to_vec())
        .file_name("dot.png")
        .mime_str("image/png")
        .expect("a mime type");
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/upload", server.url()))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("file", part));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the upload completes");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_upload_url_never_carries_what_a_request_made_up() {
    let server = Server::start().await;
    let token = server.token("c1", "customer");

    let (_, evil_proto) = upload_with(
        &server,
        &token,
        &[("x-forwarded-proto", "javascript:alert(1)//")],
    )
    .await;
    let (status, evil_host) = upload_with(&server, &token, &[("host", "evil.example/<x>")]).await;

    let url = evil_proto["url"].as_str().unwrap_or_default();
    assert!(url.starts_with("http://"), "{url}");
    assert_eq!(status, 400, "{evil_host}");
}

#[tokio::test]
async fn with_a_public_url_uploads_point_there() {
    let server = Server::builder()
        .arg("--public-url", "https://chat.example.com/")
        .start()
        .await;
    let token = server.token("c1", "customer");

    let (status, body) = upload_with(&server, &token, &[("host", "internal:8080")]).await;

    assert_eq!(status, 201, "{body}");
    let url = body["url"].as_str().unwrap_or_default();
    assert!(url.starts_with("https://chat.example.com/files/"), "{url}");
}

/// A raw upload whose body never finishes: it holds an upload slot.
async fn stalled_upload(server: &Server, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!("{}abc", upload_head(token, 10_000_000));
    tcp.write_all(head.as_bytes()).await.expect("write");
    tcp
}

#[tokio::test]
async fn uploads_beyond_the_concurrent_limit_get_429_until_a_slot_frees() {
    let server = Server::builder()
        .arg("--max-concurrent-uploads", "2")
        .start()
        .await;
    let token = server.token("a1", "agent");
    let first = stalled_upload(&server, &token).await;
    let second = stalled_upload(&server, &token).await;
    // Both must hold their slot before the third comes: the server takes
    // connections in parallel, so a third sent at once may come first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for stalled in [&first, &second] {
        let mut byte = [0u8; 1];
        let answered = stalled.try_read(&mut byte);
        assert!(
            matches!(&answered, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a stalled upload was answered: {answered:?}"
        );
    }
    let refused = eventually(
        "the third upload is refused",
        Duration::from_secs(5),
        || async {
            let (status, body) = server
                .upload(Some(&token), "c.txt", "text/plain", b"third".to_vec())
                .await;
            (status == 429).then_some(body)
        },
    )
    .await;
    assert_eq!(error_code(&refused), Some("rate_limited"), "{refused}");
    drop((first, second));
    eventually("a slot frees", Duration::from_secs(10), || async {
        let (status, _) = server
            .upload(Some(&token), "d.txt", "text/plain", b"fourth".to_vec())
            .await;
        (status == 201).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_user_over_the_daily_upload_quota_gets_429() {
    let server = Server::builder()
        .arg("--upload-quota", "3000000")
        .start()
        .await;
    let token = server.token("a1", "agent");
    let two_mb = vec![7u8; 2_000_000];
    let (status, body) = server
        .upload(
            Some(&token),
            "a.bin",
            "application/octet-stream",
            two_mb.clone(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .upload(
            Some(&token),
            "b.bin",
            "application/octet-stream",
            two_mb.clone(),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(body.to_string().contains("last 24 hours"), "{body}");
    let other = server.token("a2", "agent");
    let (status, _) = server
        .upload(Some(&other), "c.bin", "application/octet-stream", two_mb)
        .await;
    assert_eq!(status, 201, "the quota is each user's own");
}

#[tokio::test]
async fn uploads_older_than_the_retention_are_deleted() {
    let server = Server::builder()
        .arg("--file-retention", "2s")
        .start()
        .await;
    let token = server.token("a1", "agent");
    let (status, body) = server
        .upload(Some(&token), "a.txt", "text/plain", b"short-lived".to_vec())
        .await;
    assert_eq!(status, 201, "{body}");
    let url = body["url"].as_str().expect("url").to_owned();
    assert_eq!(reqwest::get(&url).await.expect("get").status(), 200);
    eventually("the file is gone", Duration::from_secs(15), || async {
        let status = reqwest::get(&url).await.expect("get").status();
        (status == 404).then_some(())
    })
    .await;
}

/// The pieces of an upload, and its commit, pass between a gateway and a
/// worker only: a client calling them itself would get round the upload
/// limits, or make a file of nothing.
#[tokio::test]
async fn a_client_cannot_store_upload_pieces_itself() {
    let server = Server::start().await;
    let token = server.token("a1", "agent");
    for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
        let (status, body) = server
            .request(
                method.clone(),
                "/api/upload/parts?seq=0",
                Some(&token),
                Some(json!({"x": 1})),
            )
            .await;
        assert_eq!(status, 404, "{method} {body}");
    }
    // Nor through a path the worker would read the same (an empty segment).
    for path in [
        "/api/upload/?key=00000000000000000000000000000001&parts=0&size=1",
        "/api/login/",
    ] {
        let (status, body) = server
            .request(
                reqwest::Method::POST,
                path,
                Some(&token),
                Some(json!({"username": "a1", "password": "x"})),
            )
            .await;
        assert_eq!(status, 404, "{path} {body}");
    }
}
