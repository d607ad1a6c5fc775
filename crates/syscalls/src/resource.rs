//! Resource limits: getrlimit(2) and setrlimit(2).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::error::SysResult;
use crate::trace::{start, traced, zero};

/// `setrlimit(RLIMIT_NOFILE)`: raises the soft open-file limit to the hard limit, after
/// `getrlimit(2)` has told both. Returns (old soft, new soft).
///
/// Every connection is an fd, and the usual soft limit is 1,024: a server meant for many
/// connections asks for all it may have (ch17). Only the hard limit bounds it; raising
/// the hard limit needs privilege.
pub fn raise_open_file_limit() -> SysResult<(u64, u64)> {
    let (soft, hard) = traced(
        start(),
        |_| "getrlimit(RLIMIT_NOFILE)".to_string(),
        getrlimit(Resource::RLIMIT_NOFILE),
        |(soft, hard)| format!("0 {{{soft}, {hard}}}"),
    )?;
    traced(
        start(),
        |_| format!("setrlimit(RLIMIT_NOFILE, {{{hard}, {hard}}})"),
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard),
        zero,
    )?;
    Ok((soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let (_, new) = raise_open_file_limit().expect("setrlimit failed");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit failed");
        assert_eq!((soft, hard), (new, new));
    }
}
