//! Client configurations for the load generator's TLS sessions
//! ([`TlsSession::client`](crate::TlsSession::client)): key-exchange groups
//! in order of preference, protocol versions, certificate verification
//! against a CA file or none at all (a load generator measures the server;
//! it does not protect a user), and resumption on or off.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{aws_lc_rs, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};

/// The server name a client session sends and verifies (SNI).
pub use rustls::pki_types::ServerName;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::groups::Group;

/// What a client configuration offers.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Key-exchange groups, most preferred first (the first is the key
    /// share of the ClientHello).
    pub groups: Vec<Group>,
    /// Offer TLS 1.3.
    pub tls13: bool,
    /// Offer TLS 1.2.
    pub tls12: bool,
    /// Verify the server's chain against these CA certificates (PEM);
    /// `None`: accept any certificate (signatures are still checked).
    pub ca_pem: Option<String>,
    /// Keep sessions (tickets, TLS 1.2 session IDs) and offer them on the
    /// next connections.
    pub resumption: bool,
}

/// Accepts any certificate chain; checks the handshake signatures with it.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// Parses PEM certificates into a root store.
pub fn roots_from_pem(pem: &str) -> Result<RootCertStore, String> {
    let mut r = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let c = c.map_err(|e| format!("bad PEM: {e}"))?;
        r.add(c).map_err(|e| format!("bad CA certificate: {e}"))?;
    }
    if r.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(r)
}

/// Reads a CA file for [`ClientSettings::ca_pem`].
pub fn read_ca(path: &Path) -> Result<String, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    roots_from_pem(&pem)?;
    Ok(pem)
}

/// A rustls client configuration for `s`.
pub fn client_config(s: &ClientSettings) -> Result<Arc<ClientConfig>, String> {
    if s.groups.is_empty() {
        return Err("no key-exchange group".into());
    }
    let provider = Arc::new(CryptoProvider {
        kx_groups: s.groups.iter().map(|g| g.kx()).collect(),
        ..aws_lc_rs::default_provider()
    });
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if s.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if s.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let b = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let mut cfg = match &s.ca_pem {
        Some(pem) => b
            .with_root_certificates(roots_from_pem(pem)?)
            .with_no_client_auth(),
        None => b
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth(),
    };
    cfg.resumption = if s.resumption {
        Resumption::in_memory_sessions(4096)
    } else {
        Resumption::disabled()
    };
    Ok(Arc::new(cfg))
}
