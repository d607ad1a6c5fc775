//! Process and socket facts from /proc (Linux only): what the checker sees of a program
//! without talking to it.
//!
//! Plain reads of /proc files; each function says which file it reads.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A process as /proc/PID/stat describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// The command name, as in `ps -o comm`.
    pub comm: String,
    /// The state letter: R running, S sleeping, Z zombie, ...
    pub state: char,
    pub ppid: i32,
    /// Its process group (a zombie keeps it, while its environment is gone).
    pub pgrp: i32,
    /// The kernel's flags for it (`PF_*`): [`ProcStat::exiting`] reads one.
    pub flags: u64,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// What its reaped children used (cutime + cstime), in clock ticks.
    pub reaped_children_ticks: u64,
}

impl ProcStat {
    /// Whether the process is on its way out (PF_EXITING): it has begun to exit, and is
    /// closing its files, before it becomes a zombie.
    pub fn exiting(&self) -> bool {
        const PF_EXITING: u64 = 0x4;
        self.flags & PF_EXITING != 0
    }
}

/// Whether a signal waits to be delivered to the process (`SigPnd` or `ShdPnd` in
/// /proc/PID/status not zero): a SIGPIPE sent, say, that the process has not yet run to
/// take.
pub fn signal_pending(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|text| {
        text.lines().any(|l| {
            (l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
                && l.split_whitespace()
                    .nth(1)
                    .and_then(|v| u64::from_str_radix(v, 16).ok())
                    .is_some_and(|v| v != 0)
        })
    })
}

/// Reads /proc/PID/stat; None when the process is gone.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain ") ", so split at the
    // last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 2..].split_whitespace().collect();
    let state = rest.first()?.chars().next()?;
    let ppid = rest.get(1)?.parse().ok()?;
    let pgrp = rest.get(2)?.parse().ok()?;
    let flags = rest.get(6)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    let cutime: u64 = rest.get(13)?.parse().ok()?;
    let cstime: u64 = rest.get(14)?.parse().ok()?;
    Some(ProcStat {
        pid,
        comm,
        state,
        ppid,
        pgrp,
        flags,
        cpu_ticks: utime + stime,
        reaped_children_ticks: cutime + cstime,
    })
}

/// The state letter of thread `tid` of `pid` (/proc/PID/task/TID/stat).
pub fn task_state(pid: i32, tid: i32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let close = text.rfind(')')?;
    text[close + 1..].split_whitespace().next()?.chars().next()
}

/// Clock ticks per second, the unit of `cpu_ticks` (sysconf(_SC_CLK_TCK), 100 on Linux).
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t as u64)
        .unwrap_or(100)
}

/// Every process on the machine (the numeric entries of /proc).
pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The processes whose parent is `pid`, from every /proc/PID/stat.
pub fn children(pid: i32) -> Vec<ProcStat> {
    all_pids()
        .into_iter()
        .filter_map(stat)
        .filter(|s| s.ppid == pid)
        .collect()
}

/// `pid` and every process below it, parents before children.
pub fn subtree(pid: i32) -> Vec<ProcStat> {
    let all: Vec<ProcStat> = all_pids().into_iter().filter_map(stat).collect();
    let mut by_parent: HashMap<i32, Vec<&ProcStat>> = HashMap::new();
    for s in &all {
        by_parent.entry(s.ppid).or_default().push(s);
    }
    let mut out: Vec<ProcStat> = all.iter().filter(|s| s.pid == pid).cloned().collect();
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = by_parent.get(&out[i].pid) {
            out.extend(kids.iter().map(|k| (*k).clone()));
        }
        i += 1;
    }
    out
}

/// `pid` and its descendants, parents first, from /proc/PID/task/TID/children: no scan
/// of every process, so it is quick enough to read at a measurement's edges.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", out[i])) {
            for task in tasks.flatten() {
                if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                    out.extend(
                        text.split_whitespace()
                            .filter_map(|c| c.parse::<i32>().ok()),
                    );
                }
            }
        }
        i += 1;
    }
    out
}

/// `Pss:` from /proc/PID/smaps_rollup, in KiB: the process's share of the pages it maps
/// (a page shared by n processes counts 1/n to each).
pub fn pss_kib(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// How many descriptors the process has open (entries of /proc/PID/fd).
pub fn fd_count(pid: i32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// How many threads the process has (entries of /proc/PID/task).
pub fn thread_count(pid: i32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.count())
}

/// The socket inodes the process holds (links `socket:[N]` in /proc/PID/fd).
pub fn socket_inodes(pid: i32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| {
        let target = std::fs::read_link(e.ok()?.path()).ok()?;
        let target = target.to_str()?;
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// Whether the process's environment (as it was at exec, /proc/PID/environ) holds
/// `entry` exactly, such as `WORKBOOK_CHECK=abc123`.
pub fn environ_has(pid: i32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
        .unwrap_or(false)
}

/// The transport and the row of a socket table: the kernel's description of a socket,
/// shared with sock_diag ([`workbook::diag`]).
pub use workbook::diag::{Proto, SocketRow};

/// The TCP state number of LISTEN in /proc/net/tcp.
pub const TCP_LISTEN: u8 = 0x0A;

fn parse_addr(hex: &str) -> Option<std::net::SocketAddr> {
    let (ip, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // The kernel prints the address as 32-bit words in host byte order.
    let ip: std::net::IpAddr = match ip.len() {
        8 => std::net::Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes()).into(),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            std::net::Ipv6Addr::from(bytes).into()
        }
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

fn parse_table(path: &Path, port: Option<u16>) -> Vec<SocketRow> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    // A machine may hold thousands of sockets (TIME_WAIT after a test run): when one
    // port is wanted, only the lines that mention it in hex are parsed.
    let needle = port.map(|p| format!(":{p:04X} "));
    text.lines()
        .skip(1)
        .filter(|line| needle.as_ref().is_none_or(|n| line.contains(n.as_str())))
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (tx, rx) = f.get(4)?.split_once(':')?;
            Some(SocketRow {
                local: parse_addr(f.get(1)?)?,
                remote: parse_addr(f.get(2)?)?,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                tx_queue: u64::from_str_radix(tx, 16).ok()?,
                rx_queue: u64::from_str_radix(rx, 16).ok()?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// Every socket of `proto`, IPv4 and IPv6 (/proc/net/tcp and tcp6, or udp and udp6).
pub fn sockets(proto: Proto) -> Vec<SocketRow> {
    sockets_of(proto, None)
}

/// The sockets of `proto` whose local or remote port is `port`, asked of the kernel
/// through sock_diag ([`workbook::diag`]: a filter the kernel runs, not a line printed for
/// every socket of the machine), or read from /proc/net when it does not answer.
pub fn sockets_on(proto: Proto, port: u16) -> Vec<SocketRow> {
    if let Some(rows) = workbook::diag::on_port(proto, port) {
        return rows;
    }
    sockets_of(proto, Some(port))
        .into_iter()
        .filter(|r| r.local.port() == port || r.remote.port() == port)
        .collect()
}

/// The TCP connection from `local` to `remote` (the row of the side whose address is
/// `local`), looked up by its addresses.
pub fn connection(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> Option<SocketRow> {
    if let Some(row) = workbook::diag::connection(local, remote) {
        return Some(row);
    }
    sockets_on(Proto::Tcp, local.port())
        .into_iter()
        .find(|r| r.local == local && r.remote == remote)
}

fn sockets_of(proto: Proto, port: Option<u16>) -> Vec<SocketRow> {
    let (v4, v6) = match proto {
        Proto::Tcp => ("/proc/net/tcp", "/proc/net/tcp6"),
        Proto::Udp => ("/proc/net/udp", "/proc/net/udp6"),
    };
    let mut rows = parse_table(Path::new(v4), port);
    rows.extend(parse_table(Path::new(v6), port));
    rows
}

/// The sockets of `proto` bound to `port` in the network namespace of process `pid`
/// (`/proc/PID/net/...`): for a program on a host of a private network (ch14), whose
/// sockets the checker's own /proc/net does not show.
pub fn sockets_of_process(pid: i32, proto: Proto, port: u16) -> Vec<SocketRow> {
    let (v4, v6) = match proto {
        Proto::Tcp => ("tcp", "tcp6"),
        Proto::Udp => ("udp", "udp6"),
    };
    let mut rows = Vec::new();
    for table in [v4, v6] {
        rows.extend(parse_table(
            Path::new(&format!("/proc/{pid}/net/{table}")),
            Some(port),
        ));
    }
    rows.retain(|r| r.local.port() == port);
    rows
}

/// The IPv4 multicast groups the host of process `pid` has joined, by interface, as
/// `/proc/PID/net/igmp` lists them: (interface, group).
pub fn igmp_groups(pid: i32) -> Vec<(String, std::net::Ipv4Addr)> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/igmp")) else {
        return Vec::new();
    };
    let mut device = String::new();
    let mut groups = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // An interface line: `2 eth0 : 2 V3`; a group line under it: `020101E0 1 0:00000000 0`.
        if !line.starts_with(['\t', ' ']) {
            device = fields.get(1).unwrap_or(&"").to_string();
        } else if let Some(hex) = fields.first()
            && let Ok(word) = u32::from_str_radix(hex, 16)
        {
            // Printed as a 32-bit word in host byte order, as /proc/net/udp does.
            groups.push((device.clone(), std::net::Ipv4Addr::from(word.to_ne_bytes())));
        }
    }
    groups
}

/// The socket ready to take clients on `port`: a TCP socket in LISTEN, or a bound UDP
/// socket with no peer.
pub fn ready_socket(proto: Proto, port: u16) -> Option<SocketRow> {
    sockets_on(proto, port).into_iter().find(|row| {
        row.local.port() == port
            && match proto {
                Proto::Tcp => row.state == TCP_LISTEN,
                Proto::Udp => row.remote.port() == 0,
            }
    })
}

/// The receive queue of the program at `to` on the connection `from -> to`: the bytes
/// it has received and not read yet. None when the connection is not found.
pub fn unread_at(from: std::net::SocketAddr, to: std::net::SocketAddr) -> Option<u64> {
    connection(to, from).map(|r| r.rx_queue)
}

/// Whether process `pid` holds the server side of the connection `client -> server`:
/// true once the server has accept()ed it (before, it waits in the listen queue).
pub fn holds_connection(
    pid: i32,
    client: std::net::SocketAddr,
    server: std::net::SocketAddr,
) -> bool {
    connection(server, client).is_some_and(|r| socket_inodes(pid).contains(&r.inode))
}

/// The sockets ready to take clients among `inodes` (where a program listens when it
/// does not listen where it was told to).
pub fn ready_sockets_among(proto: Proto, inodes: &HashSet<u64>) -> Vec<SocketRow> {
    sockets(proto)
        .into_iter()
        .filter(|row| inodes.contains(&row.inode))
        .filter(|row| match proto {
            Proto::Tcp => row.state == TCP_LISTEN,
            Proto::Udp => row.remote.port() == 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_listening_socket_is_seen_with_its_inode() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind failed");
        let port = listener.local_addr().unwrap().port();
        let row = ready_socket(Proto::Tcp, port).expect("LISTEN row in /proc/net/tcp");
        assert_eq!(row.local, listener.local_addr().unwrap());
        assert!(socket_inodes(std::process::id() as i32).contains(&row.inode));
    }

    #[test]
    fn our_own_process_facts() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("own stat");
        assert_eq!(s.pid, me);
        assert!(matches!(s.state, 'R' | 'S'));
        assert!(fd_count(me).unwrap() >= 3);
        assert!(thread_count(me).unwrap() >= 1);
        assert!(subtree(me).iter().any(|p| p.pid == me));
    }

    #[test]
    fn parses_ipv4_and_ipv6_addresses_as_the_kernel_prints_them() {
        assert_eq!(
            parse_addr("0100007F:1F90").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0016")
                .unwrap()
                .to_string(),
            "[::1]:22"
        );
    }
}
