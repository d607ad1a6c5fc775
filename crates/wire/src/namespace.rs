//! A network of one's own, without root: a user namespace holding a network namespace.
//!
//! `unshare(CLONE_NEWUSER | CLONE_NEWNET)` gives the calling process a new user
//! namespace, in which it holds every capability, and a new network namespace owned by
//! it: a loopback interface of its own (down until brought up), no other interface, no
//! route out. Whatever the process starts afterwards inherits both. So a demo, or the
//! checker, can open a packet socket on that loopback (CAP_NET_RAW, which it now has
//! there) and see every segment its own programs exchange, and nothing of anyone else's.
//!
//! The user namespace maps our own uid and gid to themselves, so the programs we start
//! see the same ids as before; only root can map more. A process that is already root
//! (with CAP_SYS_ADMIN) needs no user namespace and makes only the network one.
//!
//! unshare(CLONE_NEWUSER) is refused to a process with more than one thread (EINVAL):
//! call [`enter`] first thing, before any thread starts.

use std::fmt;

use nix::sched::{CloneFlags, unshare};

/// Why there is no private network: one line a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to do when unprivileged user namespaces are switched off, for each switch that
/// exists on this kernel: the one text every part of the workbook that needs a private
/// network gives (the wire, the loss lab, ch14's hosts).
pub fn how_to_enable() -> String {
    let mut ways = Vec::new();
    if std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .is_ok_and(|v| v.trim() == "0")
    {
        ways.push("sysctl -w kernel.unprivileged_userns_clone=1");
    }
    if std::fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|v| v.trim() == "0")
    {
        ways.push("sysctl -w user.max_user_namespaces=15000");
    }
    if std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        .is_ok_and(|v| v.trim() == "1")
    {
        ways.push("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0");
    }
    if ways.is_empty() {
        "enable unprivileged user namespaces (e.g. `sysctl -w user.max_user_namespaces=15000`; on Debian also `sysctl -w kernel.unprivileged_userns_clone=1`)".to_string()
    } else {
        format!(
            "enable unprivileged user namespaces as root: `{}`",
            ways.join("` and `")
        )
    }
}

/// Who the process is inside the user namespace it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// Its own uid and gid, mapped to themselves: the programs it starts see the ids
    /// they had (the wire: a demo and a check run as they would without it).
    Same,
    /// Root (uid 0 inside is our uid outside): programs it starts hold every capability
    /// in the namespace (the loss lab's `nft`).
    Root,
}

/// The kernel would not make the namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// What failed: `unshare(CLONE_NEWUSER|CLONE_NEWNET)`, `write /proc/self/uid_map`.
    pub what: String,
    pub errno: nix::errno::Errno,
    /// Whether the kernel refuses unprivileged user namespaces (the remedy is a sysctl),
    /// rather than something else going wrong.
    pub switched_off: bool,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({})", self.what, self.errno)?;
        if self.switched_off {
            write!(f, "; {}", how_to_enable())?;
        }
        Ok(())
    }
}

/// Moves this process (and everything it starts from now on) into a network namespace
/// of its own, inside a user namespace of its own unless it is root, as `ids` there, and
/// brings its loopback up: what `unshare --user --net` and `ip link set lo up` do. Call
/// it before any thread starts.
pub fn enter_private(ids: Ids) -> Result<(), Refused> {
    use nix::errno::Errno;
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    // Root makes only the network namespace; if even root may not (a container without
    // CAP_SYS_ADMIN), the user namespace is tried as for anyone.
    let alone = uid.is_root() && unshare(CloneFlags::CLONE_NEWNET).is_ok();
    if !alone {
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(|errno| Refused {
            what: "unshare(CLONE_NEWUSER|CLONE_NEWNET)".into(),
            errno,
            switched_off: matches!(
                errno,
                Errno::EPERM | Errno::EACCES | Errno::ENOSPC | Errno::EUSERS
            ),
        })?;
        // setgroups must be denied before an unprivileged process may write gid_map
        // (user_namespaces(7)).
        let inside = |id: u32| match ids {
            Ids::Same => id,
            Ids::Root => 0,
        };
        let maps = [
            ("/proc/self/setgroups", "deny".to_string()),
            (
                "/proc/self/uid_map",
                format!("{} {uid} 1", inside(uid.as_raw())),
            ),
            (
                "/proc/self/gid_map",
                format!("{} {gid} 1", inside(gid.as_raw())),
            ),
        ];
        for (path, text) in maps {
            std::fs::write(path, text).map_err(|e| Refused {
                what: format!("write {path}"),
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                switched_off: false,
            })?;
        }
    }
    loopback_up().map_err(|e| Refused {
        what: "ioctl(SIOCSIFFLAGS, lo up)".into(),
        errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        switched_off: false,
    })
}

/// [`enter_private`] for the wire: our own ids inside, and one line a person can act on
/// when it cannot be done.
pub fn enter() -> Result<(), Unavailable> {
    enter_private(Ids::Same).map_err(|refused| {
        Unavailable(format!(
            "--wire: no private network: {refused}; running without the wire"
        ))
    })
}

/// `ioctl(SIOCSIFFLAGS)` setting IFF_UP on `lo`, what `ip link set lo up` does.
/// libc, not nix: nix has no interface-flag ioctl.
fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: an all-zero ifreq is valid: an empty name and zero flags.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: req is a valid ifreq naming an interface; SIOCGIFFLAGS fills its flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &raw mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just wrote the flags member of the union.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS reads the flags we set.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &raw const req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
