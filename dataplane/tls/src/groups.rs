//! Key-exchange groups by name, and the post-quantum policy.

use core::fmt;
use core::str::FromStr;

use rustls::crypto::aws_lc_rs::kx_group;
use rustls::crypto::SupportedKxGroup;
use rustls::NamedGroup;

/// A key-exchange group qsplice can negotiate (all from aws-lc-rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// X25519 + ML-KEM-768 hybrid (0x11ec): what Chromium, Firefox, Go ≥ 1.24
    /// and OpenSSL ≥ 3.5 offer by default.
    X25519MlKem768,
    /// P-256 + ML-KEM-768 hybrid (0x11eb).
    SecP256r1MlKem768,
    /// ML-KEM-768 alone (0x0201).
    MlKem768,
    /// ML-KEM-1024 alone (0x0202).
    MlKem1024,
    /// X25519 (classical).
    X25519,
    /// NIST P-256 (classical).
    P256,
    /// NIST P-384 (classical).
    P384,
}

impl Group {
    /// Every group, in qsplice's default preference order.
    pub const ALL: [Group; 7] = [
        Group::X25519MlKem768,
        Group::SecP256r1MlKem768,
        Group::MlKem768,
        Group::MlKem1024,
        Group::X25519,
        Group::P256,
        Group::P384,
    ];

    /// The default allowed list: the hybrids first, then the classical
    /// groups every TLS 1.3 client supports (ML-KEM alone is opt-in).
    pub const DEFAULT: [Group; 5] = [
        Group::X25519MlKem768,
        Group::SecP256r1MlKem768,
        Group::X25519,
        Group::P256,
        Group::P384,
    ];

    /// Number of groups (size of per-group counter arrays).
    pub const COUNT: usize = Group::ALL.len();

    /// Index into per-group counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The configuration / counter name (IANA-registry spelling).
    pub fn name(self) -> &'static str {
        match self {
            Group::X25519MlKem768 => "X25519MLKEM768",
            Group::SecP256r1MlKem768 => "SecP256r1MLKEM768",
            Group::MlKem768 => "MLKEM768",
            Group::MlKem1024 => "MLKEM1024",
            Group::X25519 => "X25519",
            Group::P256 => "secp256r1",
            Group::P384 => "secp384r1",
        }
    }

    /// The TLS `NamedGroup` code point.
    pub fn code(self) -> u16 {
        match self {
            Group::X25519MlKem768 => 0x11ec,
            Group::SecP256r1MlKem768 => 0x11eb,
            Group::MlKem768 => 0x0201,
            Group::MlKem1024 => 0x0202,
            Group::X25519 => 0x001d,
            Group::P256 => 0x0017,
            Group::P384 => 0x0018,
        }
    }

    /// The group with TLS code point `code`, if qsplice supports it.
    pub fn from_code(code: u16) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.code() == code)
    }

    /// The group rustls negotiated.
    pub fn from_named(n: NamedGroup) -> Option<Group> {
        Group::from_code(u16::from(n))
    }

    /// Post-quantum (hybrid or pure ML-KEM)?
    pub fn is_post_quantum(self) -> bool {
        matches!(
            self,
            Group::X25519MlKem768 | Group::SecP256r1MlKem768 | Group::MlKem768 | Group::MlKem1024
        )
    }

    /// Usable with TLS 1.2 (ECDHE)? The ML-KEM groups are TLS 1.3 only.
    pub fn tls12(self) -> bool {
        !self.is_post_quantum()
    }

    pub(crate) fn kx(self) -> &'static dyn SupportedKxGroup {
        match self {
            Group::X25519MlKem768 => kx_group::X25519MLKEM768,
            Group::SecP256r1MlKem768 => kx_group::SECP256R1MLKEM768,
            Group::MlKem768 => kx_group::MLKEM768,
            Group::MlKem1024 => kx_group::MLKEM1024,
            Group::X25519 => kx_group::X25519,
            Group::P256 => kx_group::SECP256R1,
            Group::P384 => kx_group::SECP384R1,
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of [`Group::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownGroup(pub String);

impl fmt::Display for UnknownGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown key-exchange group {:?} (known: ", self.0)?;
        for (i, g) in Group::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(g.name())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownGroup {}

impl FromStr for Group {
    type Err = UnknownGroup;

    /// Case-insensitive; accepts the IANA names and the common aliases
    /// (`P-256`, `prime256v1`, `x25519_mlkem768`, ...).
    fn from_str(s: &str) -> Result<Group, UnknownGroup> {
        let k: String = s
            .chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect();
        Ok(match k.as_str() {
            "x25519mlkem768" => Group::X25519MlKem768,
            "secp256r1mlkem768" | "p256mlkem768" => Group::SecP256r1MlKem768,
            "mlkem768" => Group::MlKem768,
            "mlkem1024" => Group::MlKem1024,
            "x25519" => Group::X25519,
            "secp256r1" | "p256" | "prime256v1" => Group::P256,
            "secp384r1" | "p384" => Group::P384,
            _ => return Err(UnknownGroup(s.to_string())),
        })
    }
}

/// How post-quantum key exchange is applied on a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PqPolicy {
    /// Hybrid/PQ whenever the client sent a key share for an allowed PQ
    /// group (whatever its preference order says); otherwise the client's
    /// preferred allowed group, classical included.
    #[default]
    Prefer,
    /// Only the allowed PQ groups: a client that supports one but sent only
    /// a classical share gets a HelloRetryRequest; a classical-only client
    /// gets a `handshake_failure` alert.
    Require,
}

impl FromStr for PqPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<PqPolicy, String> {
        match s {
            "prefer" => Ok(PqPolicy::Prefer),
            "require" => Ok(PqPolicy::Require),
            _ => Err(format!("unknown policy {s:?} (known: prefer, require)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for g in Group::ALL {
            assert_eq!(g.name().parse::<Group>().unwrap(), g);
            assert_eq!(Group::from_code(g.code()), Some(g));
            assert_eq!(u16::from(g.kx().name()), g.code(), "{g}");
            assert_eq!(Group::from_named(g.kx().name()), Some(g));
        }
        assert_eq!("P-256".parse::<Group>().unwrap(), Group::P256);
        assert_eq!(
            "x25519_mlkem768".parse::<Group>().unwrap(),
            Group::X25519MlKem768
        );
        let e = "X448".parse::<Group>().unwrap_err().to_string();
        assert!(e.contains("X448") && e.contains("X25519MLKEM768"), "{e}");
        assert_eq!(Group::from_code(0x001e), None);
    }

    #[test]
    fn indexes_are_dense() {
        for (i, g) in Group::ALL.iter().enumerate() {
            assert_eq!(g.index(), i);
        }
        assert_eq!(Group::ALL.iter().filter(|g| g.is_post_quantum()).count(), 4);
    }
}
