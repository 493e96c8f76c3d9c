//! A gateway's limits and timeouts; the defaults are the contract's.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Unique in the cluster; prefixes connection ids.
    pub id: String,
    /// HS256 secret for client tokens.
    pub secret: Vec<u8>,
    /// A connection silent this long is closed with 1001.
    pub idle_timeout: Duration,
    /// The first frame must authenticate within this.
    pub auth_timeout: Duration,
    /// An unconfirmed push is pushed again this long after, then after
    /// doubling waits.
    pub retransmit_after: Duration,
    /// A text frame over this closes the connection with 1009.
    pub max_frame_bytes: usize,
    pub max_upload_bytes: usize,
    /// Refused frames tolerated per `refused_window` before closing with 1008.
    pub max_refused: usize,
    pub refused_window: Duration,
    /// Frames a connection may send per second, on average (receipts and
    /// heartbeats not counted); more are refused with `rate_limited`. 0: no limit.
    pub max_frames_per_sec: f64,
    /// How many frames a connection may send at once above that rate.
    pub frame_burst: f64,
    /// Message ids a connection may confirm per second with `receive`
    /// (twice that at once); more are refused with `rate_limited`. 0: no limit.
    pub max_receipts_per_sec: f64,
    /// Connections one user may hold on this gateway; a further one is
    /// refused (error ack, then close 4429). 0: no limit.
    pub max_devices_per_user: usize,
    /// Frames queued for one connection before it is closed as too slow
    /// (1013).
    pub send_queue: usize,
    /// Lifetime of access tokens minted by /api/visitor, /api/login and
    /// /api/refresh.
    pub token_ttl: Duration,
    /// Lifetime of the refresh tokens minted with them.
    pub refresh_ttl: Duration,
    pub limits: kefu_protocol::Limits,
    /// The widget loader, the chat and the console, and how they are served.
    pub pages: kefu_web::Pages,
    /// Where clients reach the server (`https://chat.example.com`), for the
    /// URLs of uploads; None: from each request's Host and X-Forwarded-Proto.
    pub public_url: Option<String>,
    /// Visitor creation and login, per client address.
    pub client_limits: crate::LimitsConfig,
    /// Timeouts and connections per address of the HTTP listener.
    pub server: crate::server::ServerLimits,
    /// A request body with no data for this long fails the request.
    pub body_timeout: Duration,
    /// Other sites whose pages may call the API (CORS) and open WebSockets.
    /// None: no CORS (the API answers this server's own pages), and any
    /// page may open a WebSocket (it needs a token anyway).
    pub allowed_origins: Option<kefu_web::policy::Origins>,
    /// Uploads received at once (0: no limit); more get 429.
    pub max_concurrent_uploads: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            id: "gateway-1".into(),
            secret: Vec::new(),
            idle_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            retransmit_after: crate::retransmit::FIRST,
            max_frame_bytes: 64 * 1024,
            max_upload_bytes: 20 * 1024 * 1024,
            max_refused: 10,
            refused_window: Duration::from_secs(10),
            max_frames_per_sec: 500.0,
            frame_burst: 1000.0,
            max_receipts_per_sec: 2000.0,
            max_devices_per_user: 10,
            send_queue: 1024,
            token_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            limits: kefu_protocol::Limits::default(),
            pages: kefu_web::Pages::default(),
            public_url: None,
            client_limits: crate::LimitsConfig::default(),
            server: crate::server::ServerLimits::default(),
            body_timeout: Duration::from_secs(30),
            allowed_origins: None,
            max_concurrent_uploads: 8,
        }
    }
}
