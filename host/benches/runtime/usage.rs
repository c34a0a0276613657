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

    /// Adds the counts between `from` and `to`.
    pub fn add(&mut self, from: Self, to: Self) {
        self.minflt += to.minflt - from.minflt;
        self.csw += to.csw - from.csw;
    }

    /// Per-call figures of these counts over `calls` calls.
    pub fn per_call_of(&self, calls: usize) -> String {
        let n = calls.max(1) as f64;
        format!(
            "{:.2} minor faults, {:.3} context switches per call",
            self.minflt as f64 / n,
            self.csw as f64 / n
        )
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

/// Resident memory after glibc's `malloc_trim(0)` gave the allocator's
/// free pages back to the kernel, MiB (a diagnostic: what the allocator
/// held).
#[allow(unsafe_code)]
pub fn trimmed_rss_mib() -> f64 {
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
    rss_mib()
}

/// Resident memory by kind of mapping, from `/proc/self/smaps`, each as
/// RSS and PSS (proportional: a page mapped `k` times counts `1/k`) in MiB:
/// wasm memory images (wasmtime's memfds, mapped into every pool slot a
/// component used: RSS counts a shared page once per slot, PSS once),
/// fiber stacks (anonymous mappings of exactly `stack_bytes`), the
/// allocator (`[heap]` and other anonymous mappings up to 64 MiB: glibc's
/// arenas), the pool's other reservations, and code and the rest.
pub fn residency(stack_bytes: u64) -> String {
    let text = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let kinds = [
        "memory images",
        "fiber stacks",
        "allocator",
        "pool",
        "code and other",
    ];
    let mut rss = [0.0f64; 5];
    let mut pss = [0.0f64; 5];
    let mut kind = 4;
    let kb = |v: &str| {
        v.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<f64>()
            .unwrap_or(0.0)
            / 1024.0
    };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
        {
            let name = words.nth(4).unwrap_or("");
            let size = b - a;
            kind = if name.contains("memfd:") {
                0
            } else if name.is_empty() && size == stack_bytes {
                1
            } else if name == "[heap]" || (name.is_empty() && size <= 64 << 20) {
                2
            } else if name.is_empty() {
                3
            } else {
                4
            };
        } else if let Some(v) = line.strip_prefix("Rss:") {
            rss[kind] += kb(v);
        } else if let Some(v) = line.strip_prefix("Pss:") {
            pss[kind] += kb(v);
        }
    }
    kinds
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} {:.0} ({:.0})", rss[i], pss[i]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Proportional set size of this process (`/proc/self/smaps_rollup`), MiB:
/// resident memory with each shared page divided among its mappings.
pub fn pss_mib() -> f64 {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
