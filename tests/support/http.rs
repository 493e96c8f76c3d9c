//! The HTTP API of a test server, as an operator's backend or a browser calls it.

use super::frames::messages_in;
use super::server::Server;
use serde_json::Value;
use std::time::Duration;

impl Server {
    /// Any request; `token` goes in `Authorization: Bearer`. Returns the
    /// status and the body as JSON (a JSON string holding the text if the body
    /// is not JSON).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the HTTP request completes");
        body_of(response).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PUT, path, Some(token), Some(body))
            .await
    }

    /// A GET with no token, returning the whole response (headers included).
    /// `url` may be absolute or a path on this server.
    pub async fn fetch(&self, url: &str) -> reqwest::Response {
        let url = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else {
            format!("{}{url}", self.url())
        };
        self.http
            .get(url)
            .send()
            .await
            .expect("the HTTP request completes")
    }

    /// `POST /api/upload` with `bytes` in the multipart field `file`.
    pub async fn upload(
        &self,
        token: Option<&str>,
        file_name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_owned())
            .mime_str(mime)
            .expect("a valid mime type");
        let form = reqwest::multipart::Form::new().part("file", part);
        let mut request = self
            .http
            .post(format!("{}/api/upload", self.url()))
            .multipart(form);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => body_of(response).await,
            // A server may answer 413 and close before reading the whole body.
            Err(e) => panic!("upload failed without a response: {e}"),
        }
    }

    /// `GET /api/offline` for `token`: the messages, asserting 200.
    pub async fn offline(&self, token: &str) -> Vec<Value> {
        let (status, body) = self.get("/api/offline?limit=500", token).await;
        assert_eq!(status, 200, "offline: {body}");
        messages_in(&body)
    }

    /// Waits until message `id` has left `token`'s offline list: its
    /// `receive` (which has no ack) has been recorded.
    pub async fn wait_until_confirmed(&self, token: &str, id: i64) {
        super::eventually(
            "the confirmation is recorded",
            Duration::from_secs(5),
            || async {
                let waiting = self.offline(token).await;
                (!waiting.iter().any(|m| m["id"] == id)).then_some(())
            },
        )
        .await;
    }

    /// One page of `GET /api/tasks/{task}/messages{query}`, asserting 200.
    pub async fn history(&self, token: &str, task: i64, query: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/api/tasks/{task}/messages{query}"), token)
            .await;
        assert_eq!(status, 200, "history of task {task}{query}: {body}");
        messages_in(&body)
    }

    /// The whole history of a task, paged backwards with `before`, in id order.
    pub async fn full_history(&self, token: &str, task: i64) -> Vec<Value> {
        let mut all = self.history(token, task, "?limit=200").await;
        while let Some(oldest) = all.iter().filter_map(|m| m["id"].as_i64()).min() {
            let page = self
                .history(token, task, &format!("?limit=200&before={oldest}"))
                .await;
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        all.sort_by_key(|m| m["id"].as_i64());
        all
    }
}

async fn body_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The start of a raw `POST /api/upload` announcing `content_length` bytes
/// of multipart body: the headers and the `file` part's own, so that what
/// is written next is the file.
pub fn upload_head(token: &str, content_length: usize) -> String {
    format!(
        "POST /api/upload HTTP/1.1\r\nHost: kefu\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {content_length}\r\n\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n"
    )
}
