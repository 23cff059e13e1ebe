//! Links the `silt` binary with packed relative relocations (`DT_RELR`)
//! where the build machine's C library can load them.
//!
//! A position-independent executable of this size carries about 190,000
//! relative relocations: 4.5 MB of `.rela.dyn` that the dynamic loader
//! reads at every start and that then stays resident. Packed, they take
//! 52 KB. An idle server's resident set drops by 5.5 MB (27.9 → 22.4
//! MB), which is felt at every scale (see `docs/benchmarks.md`, session
//! 28).
//!
//! The loader of glibc 2.36 and later understands `DT_RELR`; the linker
//! (GNU ld 2.38+, lld 15+) makes such a binary require
//! `GLIBC_ABI_DT_RELR`, so it refuses to start on an older glibc instead
//! of crashing. Packing is therefore only asked for when the binary is
//! built natively on x86-64 Linux with glibc 2.36 or later; an older GNU
//! ld ignores the option with a warning. A binary built so does not start
//! on an older glibc: set `SILT_NO_RELR=1` when building one for such a
//! machine.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=SILT_NO_RELR");
    if env::var_os("SILT_NO_RELR").is_some_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    let var = |k: &str| env::var(k).unwrap_or_default();
    let native = var("HOST") == var("TARGET");
    let target = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if native && target && host_glibc_at_least(2, 36) {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the C library this build script runs on is glibc `major.minor`
/// or later.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn host_glibc_at_least(major: u32, minor: u32) -> bool {
    use std::ffi::{CStr, c_char};
    unsafe extern "C" {
        fn gnu_get_libc_version() -> *const c_char;
    }
    // SAFETY: glibc returns a pointer to a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(gnu_get_libc_version()) };
    let mut parts = version
        .to_str()
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    have >= (major, minor)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn host_glibc_at_least(_major: u32, _minor: u32) -> bool {
    false
}
