//! Internal traffic needs the cluster secret: a register served with one
//! refuses a client without it.

use kefu_proto::auth;
use kefu_proto::v1::register_server::RegisterServer;
use kefu_register::grpc::RegisterService;
use kefu_register::{Member, MemoryRegister, Register, RemoteRegister};
use std::sync::Arc;
use std::time::Duration;

async fn register_with_secret(secret: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = RegisterServer::with_interceptor(
        RegisterService::new(Arc::new(MemoryRegister::new())),
        auth::Check::new(Some(secret)),
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

fn worker() -> Member {
    Member {
        id: "w1".into(),
        role: "worker".into(),
        addr: "127.0.0.1:1".into(),
    }
}

#[tokio::test]
async fn a_process_without_the_cluster_secret_cannot_join() {
    let url = register_with_secret("s3cret").await;
    let stranger = RemoteRegister::new(std::slice::from_ref(&url), None).unwrap();
    assert!(stranger
        .keep_alive(worker(), Duration::from_secs(10))
        .await
        .is_err());
    let impostor = RemoteRegister::new(std::slice::from_ref(&url), Some("guess")).unwrap();
    assert!(impostor
        .keep_alive(worker(), Duration::from_secs(10))
        .await
        .is_err());
    let member = RemoteRegister::new(&[url], Some("s3cret")).unwrap();
    assert!(
        member
            .keep_alive(worker(), Duration::from_secs(10))
            .await
            .unwrap(),
        "joins"
    );
    assert_eq!(member.members("worker").await.unwrap(), vec![worker()]);
    assert!(
        stranger.members("worker").await.is_err(),
        "nor read the membership"
    );
}
