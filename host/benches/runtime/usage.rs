//! What a stretch of calls costs the process besides time: minor page
//! faults and context switches (`getrusage(RUSAGE_SELF)`, all threads),
//! resident memory (`/proc/self/statm`), and the memory-mapping system calls
//! counted by `strace -f -c` on a child run of this benchmark.

use std::collections::BTreeMap;
use std::process::Command;

/// Counters of the whole process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Minor page faults.
    pub minflt: i64,
    /// Voluntary plus involuntary context switches.
    pub csw: i64,
}

impl Usage {
    /// The counters now.
    #[allow(unsafe_code)]
    pub fn now() -> Self {
        let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `ru` is a valid, writable rusage; getrusage fills it and
        // cannot fail for RUSAGE_SELF.
        let ru = unsafe {
            libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
            ru.assume_init()
        };
        Self {
            minflt: ru.ru_minflt,
            csw: ru.ru_nvcsw + ru.ru_nivcsw,
        }
    }

    /// Per-call figures of the stretch since `start`, over `calls` calls.
    pub fn per_call(start: Self, calls: usize) -> String {
        let end = Self::now();
        let n = calls.max(1) as f64;
        format!(
            "{:.2} minor faults, {:.3} context switches per call",
            (end.minflt - start.minflt) as f64 / n,
            (end.csw - start.csw) as f64 / n
        )
    }
}

/// Resident memory of this process, MiB.
pub fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

/// The memory system calls counted per call of `phase`: this benchmark is
/// run twice under `strace -f -c` with `n` and `2n` calls of the phase only,
/// and the difference is divided by `n` (setup cancels out). None when
/// strace is missing or cannot trace here.
pub fn syscalls_per_call(phase: &str, n: usize) -> Option<BTreeMap<String, f64>> {
    let exe = std::env::current_exe().ok()?;
    let mut counts = Vec::new();
    for calls in [n, 2 * n] {
        let dir = tempfile::tempdir().ok()?;
        let out = dir.path().join("strace.txt");
        let status = Command::new("strace")
            .args([
                "-f",
                "-c",
                "-e",
                "trace=madvise,mprotect,mmap,munmap,ioctl",
                "-o",
            ])
            .arg(&out)
            .arg(&exe)
            .args(["--phase", phase, "--iterations", &calls.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        counts.push(parse_strace(&std::fs::read_to_string(out).ok()?));
    }
    let mut per_call = BTreeMap::new();
    for name in ["madvise", "mprotect", "mmap", "munmap", "ioctl"] {
        let a = counts[0].get(name).copied().unwrap_or(0);
        let b = counts[1].get(name).copied().unwrap_or(0);
        per_call.insert(name.to_owned(), (b as f64 - a as f64) / n as f64);
    }
    Some(per_call)
}

/// Calls per system call from `strace -c` output.
fn parse_strace(text: &str) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[0].parse::<f64>().is_err() {
            continue;
        }
        if let (Ok(n), Some(name)) = (cols[3].parse::<u64>(), cols.last())
            && *name != "total"
        {
            calls.insert((*name).to_owned(), n);
        }
    }
    calls
}
