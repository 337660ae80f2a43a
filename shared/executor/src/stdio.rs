//! A `cmd` step's output, read straight from the container's process.
//!
//! Why: with `--isolation chroot`, buildah (1.28 and later) relays a
//! container's stdout and stderr through pipes it copies in a goroutine of
//! its `buildah-chroot-runtime` subprocess, and that subprocess calls
//! `os.Exit` as soon as the container process has been waited for, without
//! waiting for the copying goroutine (`runUsingChrootMain` in buildah's
//! `chroot/run_common.go`). Whatever the container printed last and the
//! goroutine had not yet copied is lost. On an idle machine the goroutine
//! nearly always wins; with the CPU loaded (load 9-11 on 2 cores) a plain
//! `buildah run ctr -- sh -c 'echo out; echo err >&2'` printed nothing at all
//! in 1 of 100 runs, and lines went missing from crtask's logs while the
//! steps succeeded. Nothing on our side of the pipe can recover bytes that
//! never reach it.
//!
//! The workaround: the container's stdout and stderr are two FIFOs in a
//! host directory mounted into the container, which crtask reads itself,
//! so buildah's relay carries nothing. A static shell (the host's static
//! busybox) is mounted read-only next to them and opens the FIFOs before it
//! `exec`s the step's command, which keeps working for images without a
//! shell. The command is looked up in the container's `PATH` by the script
//! (busybox would otherwise prefer its own applets over the image's
//! programs), and the variables the shell adds (`SHLVL`, `PWD`) are removed
//! again unless the step set them. Without a static busybox, steps run
//! as before and the server warns once at start.

use crate::process::Lines;
use crtask_core::ports::LogSink;
use std::io::Read;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// Where the FIFO directory is mounted inside the container.
pub const MOUNT: &str = "/.crtask-stdio";

/// Opens the FIFOs, then runs `$2` with the remaining arguments; `$1` lists
/// the variables to drop that the shell itself set. `$0` is `crtask`, the
/// name the shell puts before a message of its own. A path that is missing
/// or not executable is reported here (127, 126), as `docker run` does, not
/// by the shell's `exec`.
const SCRIPT: &str = r#"exec >/.crtask-stdio/out 2>/.crtask-stdio/err || exit 125
for v in $1; do unset "$v"; done
p=$2
shift 2
case $p in
*/*)
  if [ ! -e "$p" ]; then echo "$p: no such file or directory" >&2; exit 127; fi
  if [ -d "$p" ] || [ ! -x "$p" ]; then echo "$p: permission denied" >&2; exit 126; fi
  exec "$p" "$@" ;;
esac
IFS=:
for d in ${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}; do
  if [ -f "${d:-.}/$p" ] && [ -x "${d:-.}/$p" ]; then exec "${d:-.}/$p" "$@"; fi
done
echo "$p: executable file not found in \$PATH" >&2
exit 127
"#;

/// Finds a statically linked busybox on the host (one that runs inside any
/// image's root).
pub fn find_helper() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| is_static_elf(p))
}

/// True for an ELF executable with no program interpreter (statically
/// linked). Reads the program headers by hand: two fixed offsets of the
/// ELF64 header, not worth a parsing crate.
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = vec![0u8; 64 * 1024];
    let Ok(n) = f.read(&mut head) else {
        return false;
    };
    head.truncate(n);
    // ELF64, little-endian, executable or shared object.
    if n < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    if phentsize < 4 || phnum == 0 || phoff + phentsize * phnum > head.len() {
        return false;
    }
    const PT_INTERP: u32 = 3;
    !(0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]) == PT_INTERP
    })
}

/// The FIFO pair of one container, in a private host directory.
pub struct DirectOutput {
    dir: tempfile::TempDir,
}

impl DirectOutput {
    /// Creates the directory (readable by any user the step runs as) and
    /// its two FIFOs.
    pub fn new() -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("crtask-stdio-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        for name in ["out", "err"] {
            let p = dir.path().join(name);
            mkfifo(&p)?;
            // A step running as another user must be able to open them.
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666))?;
        }
        // The mount point of the shell, inside the mounted directory.
        std::fs::write(dir.path().join("sh"), b"")?;
        Ok(DirectOutput { dir })
    }

    /// `--volume` arguments for buildah run: the FIFO directory, and the
    /// shell read-only inside it.
    pub fn volumes(&self, helper: &Path) -> [String; 2] {
        [
            format!("{}:{MOUNT}", self.dir.path().display()),
            format!("{}:{MOUNT}/sh:ro", helper.display()),
        ]
    }

    /// The argv to run instead of `argv`; `drop` are the variables the
    /// shell sets that the step did not ask for.
    pub fn wrap(argv: &[String], drop: &[&str]) -> Vec<String> {
        // The shell is mounted as `sh`, so busybox runs as the shell.
        let mut a = vec![
            format!("{MOUNT}/sh"),
            "-c".into(),
            SCRIPT.into(),
            "crtask".into(),
            drop.join(" "),
        ];
        a.extend(argv.iter().cloned());
        a
    }

    /// Opens both FIFOs for reading. They are opened read-write so that the
    /// opening does not wait for a writer and no end-of-file is seen before
    /// the container opens them; [`Readers::finish`] drains what is left
    /// once the container has exited.
    pub fn readers(&self) -> std::io::Result<Readers> {
        let open = |name: &str| {
            pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(self.dir.path().join(name))
        };
        Ok(Readers {
            out: open("out")?,
            err: open("err")?,
        })
    }
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: a plain syscall on a NUL-terminated path we own.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The host ends of a container's stdout and stderr.
pub struct Readers {
    out: pipe::Receiver,
    err: pipe::Receiver,
}

impl Readers {
    /// Copies both streams into `log` until `done` resolves (the buildah
    /// process exited), then drains what the FIFOs still hold.
    pub async fn pump_until<F, T>(self, log: &dyn LogSink, done: F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let Readers { out, err } = self;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let copy = |mut r: pipe::Receiver, mut stop: tokio::sync::watch::Receiver<bool>| async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut lines = Lines::default();
            loop {
                tokio::select! {
                    biased;
                    n = r.read(&mut buf) => match n {
                        Ok(0) | Err(_) => break,
                        Ok(n) => lines.feed(&buf[..n], log),
                    },
                    _ = stop.changed() => {
                        // The container is gone: all it wrote is in the FIFO.
                        loop {
                            match r.try_read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => lines.feed(&buf[..n], log),
                                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                                Err(_) => break,
                            }
                        }
                        break;
                    }
                }
            }
            lines.finish(log);
        };
        let finish = async {
            let v = done.await;
            let _ = stop_tx.send(true);
            v
        };
        let (_, _, v) = tokio::join!(copy(out, stop_rx.clone()), copy(err, stop_rx), finish);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_busybox_is_static_and_this_test_binary_is_not() {
        // setup.sh installs busybox-static (the seed image copies it).
        assert!(find_helper().is_some(), "no static busybox on this machine");
        // Test binaries link glibc dynamically.
        assert!(!is_static_elf(&std::env::current_exe().unwrap()));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
        assert!(!is_static_elf(Path::new("/nonexistent")));
    }

    #[test]
    fn wrap_keeps_every_argument_whole() {
        let argv = vec!["echo".to_string(), "a b; $(id)".to_string()];
        let w = DirectOutput::wrap(&argv, &["SHLVL", "PWD"]);
        assert_eq!(w[0], "/.crtask-stdio/sh");
        assert_eq!(w[1], "-c");
        assert_eq!(w[3], "crtask");
        assert_eq!(w[4], "SHLVL PWD");
        assert_eq!(w[5..], ["echo", "a b; $(id)"]);
    }

    /// The script itself, run by the host busybox with the FIFO paths
    /// replaced: PATH lookup over applets, exit codes, dropped variables.
    #[test]
    fn the_script_runs_the_images_program_not_an_applet() {
        let Some(bb) = find_helper() else { return };
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let echo = bin.join("echo");
        std::fs::write(
            &echo,
            format!("#!{} sh\nprintf 'own echo %s\\n' \"$*\"\n", bb.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&echo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = dir.path().join("out");
        let err = dir.path().join("err");
        let script = SCRIPT
            .replace("/.crtask-stdio/out", out.to_str().unwrap())
            .replace("/.crtask-stdio/err", err.to_str().unwrap());
        let run = |args: &[&str]| {
            let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let mut wrapped = DirectOutput::wrap(&argv, &["SHLVL", "PWD"]);
            wrapped[2] = script.clone();
            std::process::Command::new(&bb)
                .arg("sh")
                .args(&wrapped[1..])
                .env_clear()
                .env("PATH", &bin)
                .status()
                .unwrap()
        };
        assert!(run(&["echo", "x y"]).success());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "own echo x y\n");
        let st = run(&["no-such-program"]);
        assert_eq!(st.code(), Some(127));
        assert!(std::fs::read_to_string(&err)
            .unwrap()
            .contains("no-such-program: executable file not found"));
        // a path: missing (127) or not executable (126), said plainly
        let st = run(&["/no/such/binary"]);
        assert_eq!(st.code(), Some(127));
        let text = std::fs::read_to_string(&err).unwrap();
        assert!(
            text.contains("/no/such/binary: no such file or directory"),
            "{text}"
        );
        assert!(!text.contains("SHLVL") && !text.contains("line "), "{text}");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "data").unwrap();
        let st = run(&[plain.to_str().unwrap()]);
        assert_eq!(st.code(), Some(126));
        assert!(std::fs::read_to_string(&err)
            .unwrap()
            .ends_with("plain: permission denied\n"));
        assert_eq!(run(&[dir.path().to_str().unwrap()]).code(), Some(126));
        // busybox's env applet (not a shell): prints exactly what it got.
        std::os::unix::fs::symlink(&bb, bin.join("env")).unwrap();
        assert!(run(&["env"]).success());
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(!text.contains("SHLVL") && !text.contains("PWD="), "{text}");
    }
}

/// buildah's own output around a `cmd` container read through the FIFOs,
/// without the lines in which buildah reports the container's exit status
/// (`Error: while running runtime: exit status 42` under runc,
/// `subprocess exited with status 42` and `Error: exit status 42` under
/// chroot): the step's record has the exit code, and ACR's `docker run`
/// prints no such line. Everything else buildah says (a mount that
/// failed, a missing image) is kept.
pub struct WithoutExitReports<'a>(pub &'a dyn LogSink);

impl WithoutExitReports<'_> {
    fn is_exit_report(line: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(line) else {
            return false;
        };
        let text = text.trim_end_matches(['\n', '\r']);
        let text = text.strip_prefix("Error: ").unwrap_or(text);
        let text = text.strip_prefix("while running runtime: ").unwrap_or(text);
        let code = text
            .strip_prefix("exit status ")
            .or_else(|| text.strip_prefix("subprocess exited with status "));
        code.is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl LogSink for WithoutExitReports<'_> {
    fn write(&self, bytes: &[u8]) {
        let kept: Vec<u8> = bytes
            .split_inclusive(|b| *b == b'\n')
            .filter(|l| !Self::is_exit_report(l))
            .flatten()
            .copied()
            .collect();
        if !kept.is_empty() {
            self.0.write(&kept);
        }
    }
    fn add_secret(&self, value: &str) {
        self.0.add_secret(value);
    }
}

#[cfg(test)]
mod exit_report_tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Sink(Mutex<Vec<u8>>);
    impl LogSink for Sink {
        fn write(&self, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
    }

    #[test]
    fn buildahs_exit_reports_go_and_everything_else_stays() {
        let sink = Sink::default();
        let w = WithoutExitReports(&sink);
        w.write(
            b"Error: while running runtime: exit status 42\nsubprocess exited with status 42\n",
        );
        w.write(b"Error: exit status 1\nError: mounting /x: permission denied\n");
        w.write(b"exit status 3 of something\nexit status \n");
        assert_eq!(
            String::from_utf8(sink.0.into_inner().unwrap()).unwrap(),
            "Error: mounting /x: permission denied\nexit status 3 of something\nexit status \n"
        );
    }
}
