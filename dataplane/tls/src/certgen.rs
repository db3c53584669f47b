//! A lab certificate authority: ECDSA, Ed25519, RSA and ML-DSA leaf
//! certificates for test VIPs (`qsplice tls-cert`, the tests, the
//! benches). Debian's OpenSSL 3.0 cannot make ML-DSA certificates; rcgen
//! with aws-lc-rs can.
//!
//! Validity is explicit: a certificate is valid from [`BACKDATE`] (one
//! hour) before it was made — so a client whose clock runs a little
//! behind still accepts it — for a number of days: [`DEFAULT_LEAF_DAYS`]
//! (90) for leaves, at most [`MAX_LEAF_DAYS`]; [`DEFAULT_CA_DAYS`] (3650)
//! for the CA, at most [`MAX_CA_DAYS`]. A leaf never outlives its CA (its
//! end is capped at the CA's). [`write_lab_set`] writes a CA and its
//! leaves as `qsplice tls-cert` does: private keys with mode 0600.

use core::fmt;
use core::str::FromStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    validity: Validity,
}

impl fmt::Debug for LabCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabCa").finish_non_exhaustive()
    }
}

fn gen_err(e: rcgen::Error) -> String {
    format!("certificate generation failed: {e}")
}

/// How long before "now" a certificate's validity starts (clock skew
/// between the machine that made it and the clients).
pub const BACKDATE: Duration = Duration::from_secs(3600);
/// Default validity of a leaf certificate, days (`qsplice tls-cert --days`).
pub const DEFAULT_LEAF_DAYS: u32 = 90;
/// Longest validity of a leaf certificate, days (ten years).
pub const MAX_LEAF_DAYS: u32 = 3650;
/// Default validity of the lab CA, days (`qsplice tls-cert --ca-days`).
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Longest validity of the lab CA, days (twenty years).
pub const MAX_CA_DAYS: u32 = 7300;

const DAY: u64 = 86_400;

/// `days` checked against `1..=max`; `what` names the setting in the
/// error (`--days`, `--ca-days`).
pub fn check_days(what: &str, days: u32, max: u32) -> Result<(), String> {
    if days == 0 || days > max {
        return Err(format!(
            "{what} {days}: a certificate's validity must be between 1 and {max} days"
        ));
    }
    Ok(())
}

/// A validity window, whole seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First second of validity.
    pub not_before: u64,
    /// Last second of validity.
    pub not_after: u64,
}

impl Validity {
    /// From [`BACKDATE`] before `now` for `days` days.
    pub fn days_from(now: SystemTime, days: u32) -> Validity {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let not_before = now.saturating_sub(BACKDATE.as_secs());
        Validity {
            not_before,
            not_after: not_before + u64::from(days) * DAY,
        }
    }

    fn apply(self, p: &mut CertificateParams) {
        // rcgen takes `time::OffsetDateTime`; the epoch plus seconds
        // spares a direct dependency on `time`.
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        p.not_before = epoch + Duration::from_secs(self.not_before);
        p.not_after = epoch + Duration::from_secs(self.not_after);
    }
}

impl LabCa {
    /// A fresh CA named "qsplice lab CA", valid for [`DEFAULT_CA_DAYS`].
    pub fn new() -> Result<LabCa, String> {
        LabCa::with_days(DEFAULT_CA_DAYS)
    }

    /// A fresh CA valid for `days` (`1..=`[`MAX_CA_DAYS`]) from
    /// [`BACKDATE`] before now.
    pub fn with_days(days: u32) -> Result<LabCa, String> {
        check_days("CA validity", days, MAX_CA_DAYS)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "qsplice lab CA");
        p.distinguished_name = dn;
        let validity = Validity::days_from(SystemTime::now(), days);
        validity.apply(&mut p);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        Ok(LabCa {
            ca: CertifiedIssuer::self_signed(p, key).map_err(gen_err)?,
            validity,
        })
    }

    /// The CA's validity window.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// The CA certificate (PEM), for clients' trust stores.
    pub fn cert_pem(&self) -> String {
        self.ca.pem()
    }

    /// The CA certificate (DER).
    pub fn der(&self) -> &CertificateDer<'static> {
        self.ca.der()
    }

    /// A leaf certificate for DNS `names` (the first is also the CN),
    /// valid for [`DEFAULT_LEAF_DAYS`].
    pub fn leaf(&self, alg: KeyAlg, names: &[&str]) -> Result<Leaf, String> {
        self.leaf_with_days(alg, names, DEFAULT_LEAF_DAYS)
    }

    /// A leaf certificate valid for `days` (`1..=`[`MAX_LEAF_DAYS`]) from
    /// [`BACKDATE`] before now, but not beyond the CA's end.
    pub fn leaf_with_days(&self, alg: KeyAlg, names: &[&str], days: u32) -> Result<Leaf, String> {
        check_days("leaf validity", days, MAX_LEAF_DAYS)?;
        let mut validity = Validity::days_from(SystemTime::now(), days);
        validity.not_after = validity.not_after.min(self.validity.not_after);
        let key = KeyPair::generate_for(alg.rcgen()).map_err(gen_err)?;
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .map_err(gen_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("qsplice"),
        );
        p.distinguished_name = dn;
        validity.apply(&mut p);
        let cert = p.signed_by(&key, &self.ca).map_err(gen_err)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }
}

/// Writes a private key (PEM) to `path` with mode 0600: a new file is
/// created so, an existing one is truncated and set to 0600 before the key
/// is written into it.
pub fn write_key(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode through open(2): narrow it first.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()
}

/// What [`write_lab_set`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSetOpts {
    /// DNS names of the leaves (the first is also the CN).
    pub names: Vec<String>,
    /// One leaf per algorithm.
    pub algs: Vec<KeyAlg>,
    /// Leaf validity, days.
    pub days: u32,
    /// CA validity, days.
    pub ca_days: u32,
}

/// `qsplice tls-cert`: a fresh CA (`ca.pem`) and one leaf per algorithm
/// (`<alg>.pem`, `<alg>.key`, keys mode 0600) in `out` (created). Checks
/// the validity settings first (`--days`, `--ca-days`; a leaf may not
/// outlive its CA). Returns the files written, in order.
pub fn write_lab_set(out: &Path, o: &LabSetOpts) -> Result<Vec<PathBuf>, String> {
    check_days("--days", o.days, MAX_LEAF_DAYS)?;
    check_days("--ca-days", o.ca_days, MAX_CA_DAYS)?;
    if o.days > o.ca_days {
        return Err(format!(
            "--days {} exceeds --ca-days {}: the leaves would outlive their CA",
            o.days, o.ca_days
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let ca = LabCa::with_days(o.ca_days)?;
    let mut written = Vec::new();
    let mut put = |name: String, body: &str, key: bool| -> Result<(), String> {
        let p = out.join(name);
        let r = if key {
            write_key(&p, body)
        } else {
            std::fs::write(&p, body)
        };
        r.map_err(|e| format!("writing {}: {e}", p.display()))?;
        written.push(p);
        Ok(())
    };
    put("ca.pem".into(), &ca.cert_pem(), false)?;
    let names: Vec<&str> = o.names.iter().map(String::as_str).collect();
    for &a in &o.algs {
        let leaf = ca.leaf_with_days(a, &names, o.days)?;
        put(format!("{a}.pem"), &leaf.cert_pem, false)?;
        put(format!("{a}.key"), &leaf.key_pem, true)?;
    }
    Ok(written)
}
