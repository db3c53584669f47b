//! The lab CA (`qsplice tls-cert`): explicit validity windows, read back
//! from the certificates, bad day counts refused, private keys mode 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use qsplice_tls::certgen::{
    write_key, write_lab_set, KeyAlg, LabCa, LabSetOpts, BACKDATE, DEFAULT_CA_DAYS,
    DEFAULT_LEAF_DAYS, MAX_CA_DAYS, MAX_LEAF_DAYS,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const DAY: i64 = 86_400;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("qs-certgen-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// (not_before, not_after) of a DER certificate, Unix seconds.
fn window(der: &[u8]) -> (i64, i64) {
    let (_, c) = x509_parser::parse_x509_certificate(der).expect("certificate parses");
    let v = c.validity();
    (v.not_before.timestamp(), v.not_after.timestamp())
}

fn pem_window(path: &Path) -> (i64, i64) {
    let der = CertificateDer::from_pem_file(path).expect("PEM certificate");
    window(&der)
}

/// Starts `BACKDATE` before `made` (± a minute for a slow test).
fn assert_starts_backdated(nb: i64, made: i64) {
    let want = made - BACKDATE.as_secs() as i64;
    assert!(
        (nb - want).abs() <= 60,
        "not_before {nb} is not about {want} (one hour before {made})"
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn defaults_are_90_days_for_leaves_and_3650_for_the_ca() {
    let made = now();
    let ca = LabCa::new().unwrap();
    let leaf = ca.leaf(KeyAlg::EcdsaP256, &["vip.test"]).unwrap();
    let (nb, na) = window(&leaf.der);
    assert_starts_backdated(nb, made);
    assert_eq!(na - nb, i64::from(DEFAULT_LEAF_DAYS) * DAY);
    let (cnb, cna) = window(ca.der());
    assert_starts_backdated(cnb, made);
    assert_eq!(cna - cnb, i64::from(DEFAULT_CA_DAYS) * DAY);
    assert_eq!(
        (
            ca.validity().not_before as i64,
            ca.validity().not_after as i64
        ),
        (cnb, cna)
    );
}

#[test]
fn tls_cert_writes_the_windows_asked_for_and_keys_0600() {
    let d = Dir::new("set");
    let made = now();
    let files = write_lab_set(
        &d.0,
        &LabSetOpts {
            names: vec!["vip.test".into()],
            algs: vec![KeyAlg::EcdsaP256, KeyAlg::Ed25519],
            days: 30,
            ca_days: 400,
        },
    )
    .unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "ca.pem",
            "ecdsa-p256.pem",
            "ecdsa-p256.key",
            "ed25519.pem",
            "ed25519.key"
        ]
    );
    let (cnb, cna) = pem_window(&d.0.join("ca.pem"));
    assert_starts_backdated(cnb, made);
    assert_eq!(cna - cnb, 400 * DAY);
    for alg in ["ecdsa-p256", "ed25519"] {
        let (nb, na) = pem_window(&d.0.join(format!("{alg}.pem")));
        assert_starts_backdated(nb, made);
        assert_eq!(na - nb, 30 * DAY, "{alg}");
        assert!(nb <= now() && now() < na, "{alg}: valid now");
        assert_eq!(mode(&d.0.join(format!("{alg}.key"))), 0o600, "{alg}.key");
        // certificates are public
        assert_eq!(
            mode(&d.0.join(format!("{alg}.pem"))) & 0o600,
            0o600,
            "{alg}.pem"
        );
    }
}

#[test]
fn a_leaf_never_outlives_its_ca() {
    let ca = LabCa::with_days(10).unwrap();
    let leaf = ca
        .leaf_with_days(KeyAlg::EcdsaP256, &["vip.test"], 20)
        .unwrap();
    let (_, na) = window(&leaf.der);
    assert!(na as u64 <= ca.validity().not_after);
}

#[test]
fn bad_day_counts_are_refused_with_the_flag_named() {
    let d = Dir::new("bad");
    let opts = |days, ca_days| LabSetOpts {
        names: vec!["vip.test".into()],
        algs: vec![KeyAlg::EcdsaP256],
        days,
        ca_days,
    };
    for (days, ca_days, flag) in [
        (0, 3650, "--days 0"),
        (MAX_LEAF_DAYS + 1, MAX_CA_DAYS, "--days 3651"),
        (u32::MAX, MAX_CA_DAYS, "--days 4294967295"),
        (30, 0, "--ca-days 0"),
        (30, MAX_CA_DAYS + 1, "--ca-days 7301"),
        (100, 50, "--days 100 exceeds --ca-days 50"),
    ] {
        let e = write_lab_set(&d.0, &opts(days, ca_days)).unwrap_err();
        assert!(e.contains(flag), "{days}/{ca_days}: {e}");
        assert!(!d.0.join("ca.pem").exists(), "nothing written on {e}");
    }
    assert!(LabCa::with_days(0).is_err());
    let ca = LabCa::new().unwrap();
    assert!(ca.leaf_with_days(KeyAlg::EcdsaP256, &["x"], 0).is_err());
}

#[test]
fn an_existing_key_file_ends_up_0600() {
    let d = Dir::new("key");
    std::fs::create_dir_all(&d.0).unwrap();
    let p = d.0.join("old.key");
    std::fs::write(&p, "old contents that are longer than the new ones").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_key(&p, "new").unwrap();
    assert_eq!(mode(&p), 0o600);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
    // and through tls-cert, over a previous run's world-readable key
    let key = d.0.join("ecdsa-p256.key");
    std::fs::write(&key, "x").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o666)).unwrap();
    write_lab_set(
        &d.0,
        &LabSetOpts {
            names: vec!["vip.test".into()],
            algs: vec![KeyAlg::EcdsaP256],
            days: DEFAULT_LEAF_DAYS,
            ca_days: DEFAULT_CA_DAYS,
        },
    )
    .unwrap();
    assert_eq!(mode(&key), 0o600);
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("PRIVATE KEY"));
}
