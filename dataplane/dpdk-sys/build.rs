//! Generates bindings to the system DPDK (found with `pkg-config libdpdk`)
//! and compiles the C shim for DPDK's `static inline` API.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "DPDK >= 22.11 not found via `pkg-config libdpdk` ({e}).\n\
                 Install it with scripts/setup.sh (Debian: apt-get install libdpdk-dev)."
            )
        });

    // The shim: compiled with DPDK's own cflags. rte_memcpy.h needs SSSE3
    // (`__builtin_ia32_palignr128`), hence -march=corei7 (pkg-config also says so).
    let mut cc = cc::Build::new();
    cc.file("csrc/shim.c")
        .include("csrc")
        .flag("-march=corei7")
        // DPDK's per-lcore variables (`rte_lcore_id()`, read by every
        // mempool-cache access) live in librte_eal, a library linked at
        // startup: initial-exec TLS reads them with one load instead of a
        // `__tls_get_addr` call per access.
        .flag("-ftls-model=initial-exec")
        .warnings(false);
    for p in &dpdk.include_paths {
        cc.include(p);
    }
    cc.flag("-include").flag("rte_config.h");
    cc.opt_level(3);
    cc.compile("qsplice_dpdk_shim");

    let mut clang_args: Vec<String> = dpdk
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    clang_args.push("-Icsrc".into());
    clang_args.push("-march=corei7".into());
    clang_args.push("-include".into());
    clang_args.push("rte_config.h".into());

    let bindings = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_args(&clang_args)
        .allowlist_function("rte_.*")
        .allowlist_function("qs_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        // rustc rejects these two generated types (E0588: packed type
        // containing an aligned one; a Debug derive on a packed struct).
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .blocklist_function("rte_.*_vprintf")
        .blocklist_function("rte_vlog")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .generate()
        .expect("bindgen failed on DPDK headers");
    // `rte_eth_from_rings` (back-to-back ring port pairs) lives in the
    // net_ring PMD's library, which `pkg-config libdpdk` does not list (EAL
    // loads PMDs as plugins; the same file, so it registers once).
    println!("cargo:rustc-link-lib=rte_net_ring");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(&out).expect("write bindings");
}
