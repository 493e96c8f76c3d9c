//! TLS for a gateway that faces clients without a proxy in front: rustls,
//! with the certificate chain and key read from PEM files at start and
//! again on SIGHUP, so a renewed certificate (certbot, cert-manager) is
//! taken without a restart. A reload that fails keeps the certificate in
//! use and says why.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain and key; an error names the file and
    /// what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Tls>, String> {
        let config = server_config(cert, key)?;
        Ok(Arc::new(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            config: RwLock::new(Arc::new(config)),
        }))
    }

    /// Reads the files again; on an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.cert, &self.key)?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(())
    }

    /// An acceptor with the certificate in use now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.config
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// Reloads on every SIGHUP, for as long as the process runs.
    pub fn reload_on_sighup(self: &Arc<Self>, lifecycle: &kefu_lifecycle::Lifecycle) {
        #[cfg(not(unix))]
        let _ = lifecycle;
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let tls = self.clone();
            let mut hangups = match signal(SignalKind::hangup()) {
                Ok(s) => s,
                Err(e) => return tracing::warn!(error = %e, "cannot listen for SIGHUP"),
            };
            lifecycle.spawn_loop(async move {
                while hangups.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => {
                            tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded")
                        }
                        Err(e) => {
                            tracing::error!("TLS certificate not reloaded, the old one stays: {e}")
                        }
                    }
                }
            });
        }
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it (want PEM: -----BEGIN CERTIFICATE-----)",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "--tls-cert {} and --tls-key {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
    // HTTP/1.1 only: browsers open WebSockets over it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
