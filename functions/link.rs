//! Build script shared by the Lambda functions (each `Cargo.toml` names it
//! with `build = "../link.rs"`): link their binaries (and examples, so the
//! benchmark's hello-world baseline is linked the same way) as
//! position-dependent executables on Linux.
//!
//! A position-independent executable is relocated by the dynamic loader at
//! every start: for these 13-14 MiB binaries that is about 35,000
//! relocations writing over 130 pages of `.data.rel.ro`, each a
//! copy-on-write page fault, about 0.45 ms of every cold start (a
//! hello-world binary has 6,500). A position-dependent executable has
//! them resolved at link time. The cost is that the binary's own code and
//! data are not address-randomized (shared libraries, heap, stack and
//! mappings still are); Go's Lambda binaries are built this way by
//! default. See docs/BENCHMARKS.md, "Lambda cold start".

fn main() {
    println!("cargo:rerun-if-changed=../link.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        // Cargo refuses the instruction for a package without examples.
        if std::path::Path::new(&manifest).join("examples").is_dir() {
            println!("cargo:rustc-link-arg-examples=-no-pie");
        }
    }
}
