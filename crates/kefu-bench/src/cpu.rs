//! How much processor the generator and the server used during a run, so a
//! reader sees whether the generator, not the target, set the pace, and how
//! much the host of a virtual machine took away meanwhile.

use std::time::Instant;

/// Processor time of some processes, from `/proc/PID/stat` (user plus
/// system, every thread, including threads that have ended).
pub struct CpuClock {
    generator: Option<u64>,
    server: Vec<(u32, Option<u64>)>,
    stolen: Option<u64>,
    at: Instant,
}

/// Cores used over a window: 1.0 is one core busy all the time.
#[derive(Debug, Clone)]
pub struct CpuShare {
    pub generator: f64,
    /// Each named server process that could be read, in the order named:
    /// where a cluster's processor goes (its gateways, workers, database).
    pub processes: Vec<ProcessShare>,
    /// Time the machine's virtual processors were ready to run but the
    /// hypervisor ran something else (`steal` in `/proc/stat`), over all
    /// processors; `None` where it is not readable. Latency tails are
    /// not comparable between runs whose steal differs.
    pub stolen: Option<f64>,
}

/// One server process's cores over the window.
#[derive(Debug, Clone)]
pub struct ProcessShare {
    /// What it runs, e.g. `kefu worker` or `mariadbd`.
    pub name: String,
    pub cores: f64,
}

impl CpuShare {
    /// The server processes' cores together; `None` when none was named
    /// (`--server-pid`) or could be read.
    pub fn server(&self) -> Option<f64> {
        (!self.processes.is_empty()).then(|| self.processes.iter().map(|p| p.cores).sum())
    }
}

impl CpuClock {
    /// Starts counting for this process and the `server` processes.
    pub fn start(server: &[u32]) -> CpuClock {
        CpuClock {
            generator: ticks(std::process::id()),
            server: server.iter().map(|&pid| (pid, ticks(pid))).collect(),
            stolen: stolen_ticks(),
            at: Instant::now(),
        }
    }

    /// The cores each side used since [`CpuClock::start`].
    pub fn share(&self) -> CpuShare {
        let seconds = self.at.elapsed().as_secs_f64().max(1e-3);
        let hz = rustix::param::clock_ticks_per_second() as f64;
        let cores = |before: Option<u64>, pid: u32| -> Option<f64> {
            let used = ticks(pid)?.checked_sub(before?)?;
            Some(used as f64 / hz / seconds)
        };
        let processes: Vec<ProcessShare> = self
            .server
            .iter()
            .filter_map(|&(pid, before)| {
                Some(ProcessShare {
                    cores: cores(before, pid)?,
                    name: name(pid),
                })
            })
            .collect();
        CpuShare {
            generator: cores(self.generator, std::process::id()).unwrap_or(0.0),
            processes,
            stolen: stolen_ticks()
                .zip(self.stolen)
                .and_then(|(now, before)| now.checked_sub(before))
                .map(|t| t as f64 / hz / seconds),
        }
    }
}

/// Steal ticks of all processors together, from `/proc/stat`.
fn stolen_ticks() -> Option<u64> {
    parse_steal(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The eighth number of the `cpu` line (user, nice, system, idle, iowait,
/// irq, softirq, steal).
fn parse_steal(stat: &str) -> Option<u64> {
    let all = stat.lines().find(|l| l.starts_with("cpu "))?;
    all.split_whitespace().nth(8)?.parse().ok()
}

/// User plus system clock ticks of a process, or `None` if it is not
/// readable (gone, or not Linux).
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// A process's program (its `comm`) and, when its first argument is a word
/// rather than an option, that word: `kefu worker`, `mariadbd`.
fn name(pid: u32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    match comm.trim() {
        "" => format!("pid {pid}"),
        program => describe(program, &cmdline),
    }
}

fn describe(program: &str, cmdline: &[u8]) -> String {
    let first_argument = cmdline
        .split(|&b| b == 0)
        .nth(1)
        .map(String::from_utf8_lossy)
        .filter(|a| !a.is_empty() && !a.starts_with('-'));
    match first_argument {
        Some(word) => format!("{program} {word}"),
        None => program.to_owned(),
    }
}

/// Fields 14 and 15 of `/proc/PID/stat` (utime, stime), counted after the
/// command name, which is in parentheses and may itself hold spaces.
fn parse_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_time_are_read_after_a_name_with_spaces() {
        let stat = "4242 (kefu (bench) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 \
                    250 37 0 0 20 0 9 0 100 1000 50";
        assert_eq!(parse_stat(stat), Some(287));
    }

    #[test]
    fn a_process_is_named_by_its_program_and_subcommand() {
        let worker = b"/work/bins/kefu\0worker\0--listen\0::1\0";
        assert_eq!(describe("kefu", worker), "kefu worker");
        assert_eq!(
            describe("mariadbd", b"/usr/sbin/mariadbd\0--basedir=/usr\0"),
            "mariadbd"
        );
        // Redis rewrites its arguments into one title.
        assert_eq!(
            describe("redis-server", b"redis-server 127.0.0.1:6379\0\0\0"),
            "redis-server"
        );
        assert_eq!(describe("kefu", b""), "kefu");
    }

    #[test]
    fn steal_is_the_eighth_number_of_the_all_processors_line() {
        let stat = "cpu  100 2 30 4000 5 0 6 77 0 0\n\
                    cpu0 50 1 15 2000 2 0 3 40 0 0\n\
                    intr 12345\n";
        assert_eq!(parse_steal(stat), Some(77));
        assert_eq!(parse_steal("intr 1\n"), None);
    }

    #[test]
    fn this_process_uses_some_processor_time() {
        let clock = CpuClock::start(&[std::process::id()]);
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed().as_millis() < 60 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let share = clock.share();
        assert!(share.generator > 0.0, "{share:?}");
        assert!(share.server().is_some_and(|s| s > 0.0), "{share:?}");
        assert_eq!(share.processes.len(), 1);
        assert!(share.processes[0].name.contains("kefu_bench"), "{share:?}");
    }
}
