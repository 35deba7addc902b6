//! Latency percentiles and CPU time, for the load generator's report.

/// The value at percentile `p` (0 to 100) of `sorted`, by nearest rank;
/// 0 when empty.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on every
/// Linux architecture this runs on).
const USER_HZ: f64 = 100.0;

/// The user + system CPU time of process `pid` (this process when `None`)
/// in seconds, from `/proc/PID/stat`; `None` off Linux or when it is gone.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    parse_stat_cpu(&text)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in seconds.
fn parse_stat_cpu(text: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// CPU time all processes of the machine spent busy (neither idle nor
/// waiting for I/O) since boot, in seconds summed over cores, from
/// `/proc/stat`; `None` off Linux.
pub fn machine_busy_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_busy(&text)
}

fn parse_machine_busy(text: &str) -> Option<f64> {
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal (guest time is
    // already counted in user).
    let ticks: Vec<u64> = line
        .split_whitespace()
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn reads_cpu_times() {
        let line =
            "4242 (tokio (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_cpu(line), Some(3.0));
        assert!(cpu_seconds(None).is_some());
    }

    #[test]
    fn reads_machine_busy_time() {
        let stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(1.6));
        assert!(machine_busy_seconds().is_some());
    }
}
