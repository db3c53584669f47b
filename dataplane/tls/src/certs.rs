//! Certificates from PEM files, chosen per connection by SNI and by the
//! signature schemes the client offers.
//!
//! Several certificates may serve one name (say ML-DSA-65 and ECDSA
//! P-256): the first one, in configuration order, whose key can sign with
//! a scheme the client offered wins, so a PQ-capable client gets the
//! ML-DSA chain and everyone else the ECDSA one. Names match exactly
//! (case-insensitive) or by one-label wildcard (`*.example.com`); a client
//! without SNI, or with a name nothing matches, gets the default list (the
//! certificates configured without names, or else all of them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

/// One certificate chain and its key, and the names it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// PEM file: the end-entity certificate first, then intermediates.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// SNI names (`www.example.com`, `*.example.com`); empty: a default
    /// certificate.
    pub names: Vec<String>,
    /// A DER OCSP response to staple (TLS 1.3 `status_request` in the
    /// Certificate message, TLS 1.2 CertificateStatus), sent to clients
    /// that ask for one. Read with the certificate; not checked (rustls
    /// does not parse it): keeping it fresh is the operator's job.
    pub ocsp: Option<PathBuf>,
}

/// Largest OCSP response file accepted, bytes.
pub const OCSP_MAX: u64 = 64 * 1024;

/// Reads an OCSP response file: non-empty, at most [`OCSP_MAX`] bytes.
pub fn load_ocsp(path: &Path) -> Result<Vec<u8>, CertError> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| err(path, format!("cannot read the OCSP response: {e}")))?;
    let mut der = Vec::new();
    // One byte more than allowed tells an oversized file without reading
    // all of it.
    f.take(OCSP_MAX + 1)
        .read_to_end(&mut der)
        .map_err(|e| err(path, format!("cannot read the OCSP response: {e}")))?;
    if der.is_empty() {
        return Err(err(path, "the OCSP response file is empty"));
    }
    if der.len() as u64 > OCSP_MAX {
        return Err(err(
            path,
            format!("an OCSP response file is at most {OCSP_MAX} bytes"),
        ));
    }
    Ok(der)
}

/// Why certificates could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertError {
    /// The file concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub why: String,
}

impl core::fmt::Display for CertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.why)
    }
}

impl std::error::Error for CertError {}

fn err(path: &Path, why: impl Into<String>) -> CertError {
    CertError {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Loads one chain and key, checks that they belong together, and reads
/// the OCSP response to staple, if any.
pub fn load(spec: &CertSpec, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&spec.cert)
        .map_err(|e| err(&spec.cert, format!("cannot read certificates: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(&spec.cert, format!("bad PEM: {e}")))?;
    if chain.is_empty() {
        return Err(err(&spec.cert, "no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_file(&spec.key)
        .map_err(|e| err(&spec.key, format!("no usable private key: {e}")))?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| err(&spec.key, format!("unsupported private key: {e}")))?;
    let mut ck = CertifiedKey::new(chain, signer);
    if let Some(path) = &spec.ocsp {
        ck.ocsp = Some(load_ocsp(path)?);
    }
    match ck.keys_match() {
        Ok(()) => {}
        // rustls cannot compare keys it cannot derive a public key for
        // (it then says so); anything else is a real mismatch.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(err(
                &spec.key,
                format!("key does not match {}: {e}", spec.cert.display()),
            ))
        }
    }
    Ok(Arc::new(ck))
}

/// A served certificate, for the management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The names it is configured for (empty: the default).
    pub names: Vec<String>,
    /// The leaf's subject.
    pub subject: String,
    /// The leaf's notAfter, Unix seconds.
    pub not_after: i64,
}

/// The certificate resolver (see the module docs).
#[derive(Debug, Default)]
pub struct CertStore {
    /// Every certificate loaded, with the names it was configured for.
    loaded: Vec<(Vec<String>, Arc<CertifiedKey>)>,
    exact: HashMap<String, Vec<Arc<CertifiedKey>>>,
    wildcard: HashMap<String, Vec<Arc<CertifiedKey>>>,
    default: Vec<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Loads every spec; fails on the first unreadable or mismatched one.
    pub fn load(specs: &[CertSpec], provider: &CryptoProvider) -> Result<CertStore, CertError> {
        let mut s = CertStore::default();
        let mut all = Vec::new();
        for spec in specs {
            let ck = load(spec, provider)?;
            s.loaded.push((spec.names.clone(), ck.clone()));
            s.add(&spec.names, ck.clone());
            all.push(ck);
        }
        if s.default.is_empty() {
            s.default = all;
        }
        Ok(s)
    }

    /// Adds a loaded certificate for `names` (none: default).
    pub fn add(&mut self, names: &[String], ck: Arc<CertifiedKey>) {
        if names.is_empty() {
            self.default.push(ck);
            return;
        }
        for n in names {
            let n = n.to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(suffix) => self.wildcard.entry(suffix.to_string()).or_default(),
                None => self.exact.entry(n).or_default(),
            }
            .push(ck.clone());
        }
    }

    /// What is served: per loaded certificate, its configured names, the
    /// leaf's subject and its notAfter (Unix seconds).
    pub fn served(&self) -> Vec<CertInfo> {
        self.loaded
            .iter()
            .map(|(names, ck)| {
                let (subject, not_after) = ck
                    .cert
                    .first()
                    .and_then(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok())
                    .map(|(_, c)| (c.subject().to_string(), c.validity().not_after.timestamp()))
                    .unwrap_or_default();
                CertInfo {
                    names: names.clone(),
                    subject,
                    not_after,
                }
            })
            .collect()
    }

    /// Candidates for `sni`, best first.
    pub fn candidates(&self, sni: Option<&str>) -> &[Arc<CertifiedKey>] {
        let Some(name) = sni.map(str::to_ascii_lowercase) else {
            return &self.default;
        };
        if let Some(v) = self.exact.get(&name) {
            return v;
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(v) = self.wildcard.get(parent) {
                return v;
            }
        }
        &self.default
    }

    /// The certificate for `sni` that can sign with one of `schemes`.
    pub fn choose(
        &self,
        sni: Option<&str>,
        schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.candidates(sni)
            .iter()
            .find(|ck| ck.key.choose_scheme(schemes).is_some())
            .cloned()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(hello.server_name(), hello.signature_schemes())
    }
}
