//! TLS for `https://` and `wss://` targets, and for the embedded target when it serves TLS: rustls
//! with the `ring` provider. The engine's loop drives client sessions on buffers (`event_loop`);
//! the embedded target serves through `monoio-rustls` on its monoio runtime.
//!
//! Certificates are verified by default, against the operating system's roots (`rustls-native-certs`),
//! or against the certificates of a `ca_file` instead. `insecure: true` turns verification off; the
//! handshake's signatures are still checked, so a peer still has to hold the key of the certificate it
//! shows, but any certificate is accepted. The console warns about it and the manifest's resolved
//! profile records it. docs/protocols.md has the profile fields.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// TLS client settings, resolved from the profile (`tls: (...)`, or the environment's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Trust the certificates in this PEM file instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (the handshake signature is still checked).
    pub insecure: bool,
    /// The name sent in SNI and verified; default: the target's host.
    pub server_name: Option<String>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The server name is neither a DNS name nor an IP address.
    #[error("{0:?} is not a valid TLS server name (a DNS name or an IP address)")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The system's root certificates could not be loaded at all.
    #[error(
        "no system root certificates could be loaded ({0}); install ca-certificates, or set `tls: (ca_file: \"ca.pem\")`"
    )]
    NoRoots(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the certificates of a PEM file; at least one is required.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let file_error = |message: String| TlsSetupError::File {
        path: path.to_owned(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| file_error(format!("cannot read it: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            "holds no `-----BEGIN CERTIFICATE-----` block: give the CA certificate in PEM".into(),
        ));
    }
    Ok(certs)
}

/// A client configuration offering `alpn` (e.g. `http/1.1`).
pub fn client_config(
    settings: &TlsSettings,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let mut config = if settings.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match &settings.ca_file {
            Some(path) => {
                let (_, refused) = roots.add_parsable_certificates(read_certificates(path)?);
                if roots.is_empty() {
                    return Err(TlsSetupError::File {
                        path: path.clone(),
                        message: format!("none of its certificates is usable ({refused} refused)"),
                    });
                }
            }
            None => {
                let loaded = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(loaded.certs);
                if roots.is_empty() {
                    let why = loaded
                        .errors
                        .first()
                        .map_or_else(|| "the store is empty".to_owned(), ToString::to_string);
                    return Err(TlsSetupError::NoRoots(why));
                }
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The server name for SNI and verification.
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsSetupError> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsSetupError::ServerName(name.to_owned()))
}

/// What a core needs to open TLS connections: the shared configuration and the server name.
#[derive(Clone)]
pub(crate) struct TlsClient {
    /// The configuration every connection's session is made from.
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    pub fn new(config: Arc<ClientConfig>, server_name: ServerName<'static>) -> TlsClient {
        TlsClient {
            config,
            server_name,
        }
    }
}

/// The message and whether it is a TLS failure, for an error of a TLS stream or handshake.
pub(crate) fn classify(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?;
    inner
        .downcast_ref::<rustls::Error>()
        .map(|r| format!("TLS: {r}"))
}

/// A server configuration from PEM files (for the embedded target), offering `http/1.1`.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let certs = read_certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsSetupError::File {
        path: key_file.to_owned(),
        message: format!("not a PEM private key: {e}"),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any certificate, but still checks that the peer signed the handshake with the key of
/// the certificate it presented.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
