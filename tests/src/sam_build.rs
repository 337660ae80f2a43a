//! The artifacts of `infra/aws/build.sh` (`sam build`), for the tests that
//! check them, and what runs the arm64 ones here.
//!
//! [`sam_build`] looks at `CRTASK_SAM_BUILD_DIR` (the variable build.sh
//! also reads; a relative path is from the workspace root), else
//! `.aws-sam/build`. A build directory without SAM's `template.yaml` means
//! "not built": the test is skipped with the reason on stderr and in the
//! skip log, except when `CRTASK_REQUIRE_SAM_BUILD=1` (.ci/run sets it after
//! running build.sh first, unless `CRTASK_CI_SAM_BUILD=0`), where the
//! absence fails the test.

use crate::acr_samples::note_skip;
use crate::repo_root;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The environment variable naming SAM's build directory.
pub const BUILD_DIR_VAR: &str = "CRTASK_SAM_BUILD_DIR";

/// The template's functions: logical id and binary.
pub const FUNCTIONS: [(&str, &str); 4] = [
    ("GitWebhookFunction", "git-webhook"),
    ("BuildStatusFunction", "build-status"),
    ("RegistryEventFunction", "registry-event"),
    ("ScheduleFunction", "schedule"),
];

/// The executor layer's binary, under the build directory.
pub const EXECUTOR: &str = "ExecutorLayer/bin/crtask";

/// Where Debian's `libc6-arm64-cross` puts the arm64 C library: the
/// library root `qemu-aarch64 -L` needs for a dynamically linked binary.
pub const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// SAM's build directory, or `None` (after saying that `test` was skipped)
/// when nothing was built. Panics when nothing was built and
/// `CRTASK_REQUIRE_SAM_BUILD=1`.
pub fn sam_build(test: &str) -> Option<PathBuf> {
    let root = repo_root();
    let dir = match std::env::var_os(BUILD_DIR_VAR).filter(|v| !v.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join(".aws-sam").join("build"),
    };
    if dir.join("template.yaml").is_file() {
        return Some(dir);
    }
    let message = format!(
        "no `sam build` output at {} (run infra/aws/build.sh, or set {BUILD_DIR_VAR})",
        dir.display()
    );
    if std::env::var("CRTASK_REQUIRE_SAM_BUILD").is_ok_and(|v| v == "1") {
        panic!("{test}: {message}");
    }
    eprintln!("skipped {test}: {message}");
    note_skip(test);
    None
}

/// The program and arguments that run an arm64 Linux binary here:
/// `qemu-aarch64 -L <sysroot>` (Debian's `qemu-user-static` names it
/// `qemu-aarch64-static` too).
pub fn arm64_launcher() -> Result<Vec<OsString>, String> {
    let qemu = ["qemu-aarch64", "qemu-aarch64-static"]
        .iter()
        .find_map(|name| which(name))
        .ok_or("qemu-aarch64 is not installed (Debian: qemu-user-static; infra/aws/build.sh installs it)")?;
    if !Path::new(ARM64_SYSROOT).join("lib").is_dir() {
        return Err(format!(
            "{ARM64_SYSROOT} is missing (Debian: libc6-arm64-cross; infra/aws/build.sh installs it)"
        ));
    }
    Ok(vec![qemu.into(), "-L".into(), ARM64_SYSROOT.into()])
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `e_machine` of an x86-64 ELF file.
pub const EM_X86_64: u16 = 62;
/// `e_machine` of an AArch64 ELF file.
pub const EM_AARCH64: u16 = 183;
/// `e_type` of a position-dependent executable (a PIE is 3, `ET_DYN`).
pub const ET_EXEC: u16 = 2;

/// What an ELF header says about a binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elf {
    pub machine: u16,
    pub kind: u16,
}

/// Reads the ELF header of `path`: a 64-bit little-endian ELF file, else a
/// reason.
pub fn elf(path: &Path) -> Result<Elf, String> {
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| format!("cannot read an ELF header from {}: {e}", path.display()))?;
    if &header[..4] != b"\x7fELF" {
        return Err(format!("{} is not an ELF file", path.display()));
    }
    // EI_CLASS 2: 64-bit; EI_DATA 1: little-endian.
    if header[4] != 2 || header[5] != 1 {
        return Err(format!(
            "{} is not a 64-bit little-endian ELF file (class {}, data {})",
            path.display(),
            header[4],
            header[5]
        ));
    }
    Ok(Elf {
        kind: u16::from_le_bytes([header[16], header[17]]),
        machine: u16::from_le_bytes([header[18], header[19]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        f
    }

    fn header(class: u8, kind: u16, machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.extend([class, 1, 1, 0]);
        h.extend([0; 8]);
        h.extend(kind.to_le_bytes());
        h.extend(machine.to_le_bytes());
        h.extend([0; 44]);
        h
    }

    #[test]
    fn reads_machine_and_type() {
        let f = file(&header(2, ET_EXEC, EM_AARCH64));
        assert_eq!(
            elf(f.path()),
            Ok(Elf {
                machine: EM_AARCH64,
                kind: ET_EXEC
            })
        );
        let f = file(&header(2, 3, EM_X86_64));
        assert_eq!(
            elf(f.path()),
            Ok(Elf {
                machine: EM_X86_64,
                kind: 3
            })
        );
    }

    #[test]
    fn rejects_what_is_not_a_64_bit_elf_file() {
        let script = file(b"#!/bin/sh\necho this is not a binary at all\n");
        assert!(elf(script.path()).unwrap_err().contains("not an ELF file"));
        let short = file(b"\x7fELF");
        assert!(elf(short.path()).unwrap_err().contains("cannot read"));
        let elf32 = file(&header(1, ET_EXEC, 40));
        assert!(elf(elf32.path()).unwrap_err().contains("not a 64-bit"));
        assert!(elf(Path::new("/nonexistent/bootstrap"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
