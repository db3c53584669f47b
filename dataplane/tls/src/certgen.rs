//! A lab certificate authority: ECDSA, Ed25519, RSA and ML-DSA leaf
//! certificates for test VIPs (`qsplice tls-cert`, the tests, the
//! benches). Debian's OpenSSL 3.0 cannot make ML-DSA certificates; rcgen
//! with aws-lc-rs can.

use core::fmt;
use core::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    SignatureAlgorithm,
};
use rustls::pki_types::CertificateDer;

/// Key algorithm of a generated certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// ECDSA P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA 2048 (PKCS#1 v1.5 signature on the certificate; rustls signs
    /// handshakes with RSA-PSS or PKCS#1 as the client allows).
    Rsa2048,
    /// ML-DSA-44.
    MlDsa44,
    /// ML-DSA-65.
    MlDsa65,
    /// ML-DSA-87.
    MlDsa87,
}

impl KeyAlg {
    /// All algorithms.
    pub const ALL: [KeyAlg; 7] = [
        KeyAlg::EcdsaP256,
        KeyAlg::EcdsaP384,
        KeyAlg::Ed25519,
        KeyAlg::Rsa2048,
        KeyAlg::MlDsa44,
        KeyAlg::MlDsa65,
        KeyAlg::MlDsa87,
    ];

    /// Name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::EcdsaP256 => "ecdsa-p256",
            KeyAlg::EcdsaP384 => "ecdsa-p384",
            KeyAlg::Ed25519 => "ed25519",
            KeyAlg::Rsa2048 => "rsa2048",
            KeyAlg::MlDsa44 => "ml-dsa-44",
            KeyAlg::MlDsa65 => "ml-dsa-65",
            KeyAlg::MlDsa87 => "ml-dsa-87",
        }
    }

    fn rcgen(self) -> &'static SignatureAlgorithm {
        match self {
            KeyAlg::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlg::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlg::Ed25519 => &rcgen::PKCS_ED25519,
            KeyAlg::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
            KeyAlg::MlDsa44 => &rcgen::PKCS_ML_DSA_44,
            KeyAlg::MlDsa65 => &rcgen::PKCS_ML_DSA_65,
            KeyAlg::MlDsa87 => &rcgen::PKCS_ML_DSA_87,
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<KeyAlg, String> {
        KeyAlg::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let known: Vec<_> = KeyAlg::ALL.iter().map(|a| a.name()).collect();
                format!("unknown key algorithm {s:?} (known: {})", known.join(", "))
            })
    }
}

/// A generated certificate and its key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The certificate (DER).
    pub der: CertificateDer<'static>,
}

/// A throwaway CA (ECDSA P-256) that signs [`Leaf`] certificates.
pub struct LabCa {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl fmt::Debug for LabCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabCa").finish_non_exhaustive()
    }
}

fn gen_err(e: rcgen::Error) -> String {
    format!("certificate generation failed: {e}")
}

impl LabCa {
    /// A fresh CA named "qsplice lab CA".
    pub fn new() -> Result<LabCa, String> {
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "qsplice lab CA");
        p.distinguished_name = dn;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        Ok(LabCa {
            ca: CertifiedIssuer::self_signed(p, key).map_err(gen_err)?,
        })
    }

    /// The CA certificate (PEM), for clients' trust stores.
    pub fn cert_pem(&self) -> String {
        self.ca.pem()
    }

    /// The CA certificate (DER).
    pub fn der(&self) -> &CertificateDer<'static> {
        self.ca.der()
    }

    /// A leaf certificate for DNS `names` (the first is also the CN).
    pub fn leaf(&self, alg: KeyAlg, names: &[&str]) -> Result<Leaf, String> {
        let key = KeyPair::generate_for(alg.rcgen()).map_err(gen_err)?;
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .map_err(gen_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("qsplice"),
        );
        p.distinguished_name = dn;
        let cert = p.signed_by(&key, &self.ca).map_err(gen_err)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }
}
