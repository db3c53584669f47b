//! `[lb.vips.tls_options]`: cipher suites (server order), OCSP response
//! files; each bad value named by key, value and reason.

use std::path::PathBuf;

use qsplice_config::{parse, ConfigError, TLS_OCSP_MAX};

/// A directory with a certificate, a key and OCSP files of several sizes
/// (validation only checks that files are there, not what is in them).
struct Files(PathBuf);

impl Files {
    fn new(tag: &str) -> Files {
        let d = std::env::temp_dir().join(format!("qs-config-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("c.pem"), "cert").unwrap();
        std::fs::write(d.join("k.pem"), "key").unwrap();
        std::fs::write(d.join("ocsp.der"), [0x30, 0x03, 0x0a, 0x01, 0x00]).unwrap();
        std::fs::write(d.join("empty.der"), []).unwrap();
        std::fs::write(d.join("big.der"), vec![0u8; TLS_OCSP_MAX as usize + 1]).unwrap();
        std::fs::write(d.join("max.der"), vec![0u8; TLS_OCSP_MAX as usize]).unwrap();
        Files(d)
    }

    fn p(&self, f: &str) -> String {
        self.0.join(f).display().to_string()
    }

    /// A config with one terminated VIP: `cert_extra` inside the
    /// certificate entry, `options` appended to `tls_options`.
    fn config(&self, cert_extra: &str, options: &str) -> String {
        format!(
            r#"
[eal]
main_lcore = 0
worker_lcores = [1]

[[ports]]
name = "client"
device = "net_af_packet0,iface=veth0"
addresses = ["10.10.1.1/24"]

[[ports]]
name = "backend"
device = "net_af_packet1,iface=veth1"
addresses = ["10.10.2.1/24"]

[lb]
client_port = "client"
backend_port = "backend"

[[lb.vips]]
name = "web-tls"
address = "10.10.1.1:443"
tls = "terminate"
backends = [{{ address = "10.10.2.11:80" }}]

[lb.vips.tls_options]
certificates = [{{ cert = "{}", key = "{}"{cert_extra} }}]
{options}
"#,
            self.p("c.pem"),
            self.p("k.pem"),
        )
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reject(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_keep_the_provider_suites_and_prefer_server_order() {
    let f = Files::new("defaults");
    let c = parse(&f.config("", "")).unwrap_or_else(|e| panic!("{e}"));
    let t = c.lb.unwrap().vips[0].tls_options.clone().unwrap();
    assert!(t.cipher_suites.is_empty());
    assert!(t.prefer_server_ciphers);
    assert_eq!(t.certificates[0].ocsp, None);
}

#[test]
fn suites_and_ocsp_parse() {
    let f = Files::new("ok");
    let text = f.config(
        &format!(", ocsp = \"{}\"", f.p("ocsp.der")),
        r#"cipher_suites = ["TLS13_CHACHA20_POLY1305_SHA256", "TLS13_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]
prefer_server_ciphers = false"#,
    );
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let t = c.lb.unwrap().vips[0].tls_options.clone().unwrap();
    assert_eq!(
        t.cipher_suites,
        [
            "TLS13_CHACHA20_POLY1305_SHA256",
            "TLS13_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        ]
    );
    assert!(!t.prefer_server_ciphers);
    assert_eq!(t.certificates[0].ocsp, Some(f.0.join("ocsp.der")));
    // TLS 1.3 suites alone are fine without TLS 1.2; a file of exactly
    // the limit too.
    let text = f.config(
        &format!(", ocsp = \"{}\"", f.p("max.der")),
        "cipher_suites = [\"TLS13_AES_128_GCM_SHA256\"]\ntls12 = false",
    );
    parse(&text).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn bad_suites_are_named_with_key_value_and_reason() {
    let f = Files::new("suites");
    let key = "lb.vips[0].tls_options.cipher_suites";
    for (options, value, reason) in [
        (
            r#"cipher_suites = ["TLS13_AES_256_GCM_SHA384", "TLS_RSA_WITH_RC4_128_MD5"]"#,
            "TLS_RSA_WITH_RC4_128_MD5",
            "unknown cipher suite (known: TLS13_AES_256_GCM_SHA384, ",
        ),
        (
            r#"cipher_suites = ["tls13_aes_256_gcm_sha384"]"#,
            "tls13_aes_256_gcm_sha384",
            "unknown cipher suite",
        ),
        (
            r#"cipher_suites = ["TLS13_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS13_AES_256_GCM_SHA384"]"#,
            "TLS13_AES_256_GCM_SHA384",
            "listed twice",
        ),
        (
            r#"cipher_suites = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]"#,
            r#"["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]"#,
            "list at least one TLS13_* suite",
        ),
        (
            r#"cipher_suites = ["TLS13_AES_256_GCM_SHA384"]"#,
            r#"["TLS13_AES_256_GCM_SHA384"]"#,
            "no TLS 1.2 suite is listed",
        ),
    ] {
        let e = reject(&f.config("", options));
        assert_eq!(e.key, key, "{options}: {e}");
        assert_eq!(e.value, value, "{options}: {e}");
        assert!(e.reason.contains(reason), "{options}: {e}");
        assert!(e.line.is_some(), "{options}: {e} has no line");
    }
    // A wrong type is a schema error on the same key.
    let e = reject(&f.config("", "prefer_server_ciphers = \"yes\""));
    assert_eq!(e.key, "lb.vips[0].tls_options.prefer_server_ciphers", "{e}");
}

#[test]
fn bad_ocsp_files_are_named_with_key_value_and_reason() {
    let f = Files::new("ocsp");
    let key = "lb.vips[0].tls_options.certificates[0].ocsp";
    for (file, reason) in [
        ("missing.der", "cannot read the file"),
        ("empty.der", "the file is empty"),
        ("big.der", "an OCSP response file is at most 65536 bytes"),
        ("", "not a regular file"),
    ] {
        let path = f.p(file);
        let e = reject(&f.config(&format!(", ocsp = \"{path}\""), ""));
        assert_eq!(e.key, key, "{file}: {e}");
        assert_eq!(e.value, path, "{file}: {e}");
        assert!(e.reason.contains(reason), "{file}: {e}");
    }
}
