//! CPU load for the tests that must hold on a busy machine: load
//! generation, never a timing assertion.

use std::process::{Child, Command, Stdio};

/// Busy loops (`yes` into /dev/null), killed when dropped.
pub struct CpuLoad(Vec<Child>);

impl CpuLoad {
    pub fn start(n: usize) -> CpuLoad {
        CpuLoad(
            (0..n)
                .map(|_| {
                    Command::new("yes")
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("yes")
                })
                .collect(),
        )
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
