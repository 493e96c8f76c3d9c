//! The gRPC contract between Kefu's roles, generated from `proto/kefu/v1`.
//!
//! Gateways call [`v1::worker_client::WorkerClient`] and serve
//! [`v1::gateway_server::Gateway`]; workers serve [`v1::worker_server::Worker`]
//! and call gateways; both call the register through
//! [`v1::register_client::RegisterClient`]. `kefu serve` uses the same
//! messages in-process.

#![forbid(unsafe_code)]

pub mod v1 {
    tonic::include_proto!("kefu.v1");
}

mod api;
mod command;

/// The URL of a role's gRPC address: as given when it has a scheme, else
/// `http://` in front (members register `host:port`).
pub fn grpc_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// The cluster secret on internal gRPC calls: a process without it cannot
/// join the register, open a worker stream or push to a gateway.
pub mod auth {
    use tonic::metadata::MetadataValue;
    use tonic::service::Interceptor;
    use tonic::{Request, Status};

    const HEADER: &str = "x-kefu-cluster-secret";

    /// Adds the secret to outgoing calls (nothing when there is none).
    #[derive(Clone, Default)]
    pub struct Attach(Option<MetadataValue<tonic::metadata::Ascii>>);

    impl Attach {
        pub fn new(secret: Option<&str>) -> Attach {
            Attach(secret.and_then(|s| MetadataValue::try_from(s).ok()))
        }
    }

    impl Interceptor for Attach {
        fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
            if let Some(v) = &self.0 {
                request.metadata_mut().insert(HEADER, v.clone());
            }
            Ok(request)
        }
    }

    /// Refuses incoming calls without the secret (accepts all when none is set).
    #[derive(Clone, Default)]
    pub struct Check(Option<String>);

    impl Check {
        pub fn new(secret: Option<&str>) -> Check {
            Check(secret.map(str::to_owned))
        }
    }

    impl Interceptor for Check {
        fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
            let Some(expected) = &self.0 else {
                return Ok(request);
            };
            let given = request.metadata().get(HEADER).and_then(|v| v.to_str().ok());
            // Compare every byte so timing tells nothing about the secret.
            let ok = given.is_some_and(|g| {
                g.len() == expected.len()
                    && g.bytes()
                        .zip(expected.bytes())
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0
            });
            if ok {
                Ok(request)
            } else {
                Err(Status::unauthenticated("missing or wrong cluster secret"))
            }
        }
    }
}
