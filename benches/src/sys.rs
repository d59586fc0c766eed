//! What the machine is, and what a process costs: `/proc/cpuinfo`, `/proc/<pid>/status`
//! (`VmRSS`) and `/proc/<pid>/stat` (`utime` + `stime`). Linux only; elsewhere the readings are
//! `None`.

use std::fs;
use std::time::Duration;

/// Clock ticks per second of the `/proc/<pid>/stat` times: Linux's `USER_HZ`, which the kernel
/// exports as 100 on every architecture it runs on.
pub const USER_HZ: u64 = 100;

/// One line describing the machine: logical CPUs, CPU model and the SIMD flags that matter to
/// ChaCha20-Poly1305.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let simd: Vec<&str> = ["sse2", "ssse3", "avx", "avx2", "avx512f", "avx512vl"]
        .into_iter()
        .filter(|f| has(f))
        .collect();
    format!(
        "{cpus} logical CPUs, {}, flags: {}",
        field("model name"),
        simd.join(" ")
    )
}

fn status_field_kib(pid: Option<u32>, name: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of a process (`None`: this one), in bytes.
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    status_field_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// CPU time a process (`None`: this one) spent so far, user plus system.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may contain spaces: count fields after it.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
