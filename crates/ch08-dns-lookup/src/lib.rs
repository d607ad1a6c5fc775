//! # Chapter 8: domain names and addresses
//!
//! A program asks the system resolver, not DNS directly: getaddrinfo() reads
//! /etc/nsswitch.conf and goes to /etc/hosts, then to DNS servers, and answers with
//! every address of a name, IPv4 and IPv6, and (with AI_CANONNAME) its official name.
//! getnameinfo() goes the other way, from an address to a name.
//!
//! Subcommands: `name <host>` (forward), `addr <ip>` (reverse), `lookup <host-or-ip>`
//! (either, chosen by the argument, as `host(1)` does).
//!
//! Calls: `getaddrinfo(host, NULL, {AI_CANONNAME, SOCK_STREAM})`, `getaddrinfo(ip, NULL,
//! {AI_NUMERICHOST})` to parse an address as the C library does (`127.1`, `fe80::1%lo`) and
//! `getnameinfo(addr, NI_NAMEREQD)`, through the `dns-lookup` crate (nix has no
//! resolver). These are library calls, not system calls: the resolver opens files and
//! sockets of its own.
//!
//! What the book's C gets wrong: gethostbyname() and gethostbyaddr() are obsolete
//! (POSIX removed them in 2008): IPv4 only, a static result overwritten by the next
//! call, errors in h_errno instead of a return value. The book prints `h_aliases`, which
//! getaddrinfo() does not give (see the README). Ours uses getaddrinfo/getnameinfo and
//! tells apart "no such host" from "the resolver could not answer".

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use anyhow::{anyhow, bail};
use clap::{Parser, Subcommand};
use dns_lookup::{AddrInfoHints, LookupError, LookupErrorKind, getaddrinfo, getnameinfo};

/// Chapter 8: names and addresses through the system resolver.
/// With no subcommand, runs a demo: localhost both ways, and a name that does not exist.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Query>,
}

#[derive(Subcommand, Debug)]
pub enum Query {
    /// A name's official name and every address, IPv4 and IPv6 (gethostbyname, done with getaddrinfo)
    Name { host: String },
    /// An address's name (gethostbyaddr, done with getnameinfo)
    Addr { ip: String },
    /// A name or an address, whichever the argument is; or say which with --name/--addr
    Lookup {
        /// A host name or an IP address
        #[arg(required_unless_present_any = ["name", "addr"], conflicts_with_all = ["name", "addr"])]
        query: Option<String>,
        /// Look up this name (even a numeric one such as ::1)
        #[arg(long, conflicts_with = "addr")]
        name: Option<String>,
        /// Look up the name of this address
        #[arg(long)]
        addr: Option<String>,
    },
}

/// Runs the query, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Query::Name { host }) => print_name(&host),
        Some(Query::Addr { ip }) => print_addr(&ip),
        Some(Query::Lookup { query, name, addr }) => match (query, name, addr) {
            (Some(query), _, _) => lookup(&query),
            (None, Some(name), _) => print_name(&name),
            (None, None, Some(addr)) => print_addr(&addr),
            (None, None, None) => unreachable!("clap requires one of them"),
        },
        None => demo(),
    }
}

/// What a name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub canonical: String,
    /// Each address once, in the resolver's order.
    pub addresses: Vec<IpAddr>,
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "AF_INET" } else { "AF_INET6" }
}

/// Turns a resolver error into the workbook's words.
fn explain(err: &LookupError, what: &str, subject: &str) -> anyhow::Error {
    match err.kind() {
        LookupErrorKind::NoName | LookupErrorKind::NoData => anyhow!("{what}: {subject}"),
        LookupErrorKind::Again => anyhow!(
            "name resolution failed temporarily: {subject} (the resolver could not reach a DNS server; are you offline?)"
        ),
        _ => anyhow!(
            "name resolution failed: {subject}: {}",
            std::io::Error::from(clone_err(err))
        ),
    }
}

fn clone_err(err: &LookupError) -> LookupError {
    LookupError::new(err.error_num())
}

/// getaddrinfo(host, NULL, {AI_CANONNAME, SOCK_STREAM}): one entry per address (asking
/// for one socket type avoids the same address once per type), de-duplicated.
pub fn resolve(host: &str) -> anyhow::Result<Resolved> {
    let hints = AddrInfoHints {
        flags: libc::AI_CANONNAME,
        address: libc::AF_UNSPEC,
        socktype: libc::SOCK_STREAM,
        protocol: 0,
    };
    let entries = getaddrinfo(Some(host), None, Some(hints))
        .map_err(|e| explain(&e, "no such host", host))?;
    let mut canonical = None;
    let mut addresses = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| anyhow!("name resolution failed: {host}: {e}"))?;
        if canonical.is_none() {
            canonical = entry.canonname.clone();
        }
        let ip = entry.sockaddr.ip();
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    if addresses.is_empty() {
        bail!("no such host: {host}");
    }
    Ok(Resolved {
        canonical: canonical.unwrap_or_else(|| host.to_string()),
        addresses,
    })
}

/// getnameinfo(addr, NI_NAMEREQD): the name, or an error when there is none.
pub fn reverse(addr: SocketAddr) -> anyhow::Result<String> {
    let (name, _service) = getnameinfo(&addr, libc::NI_NAMEREQD)
        .map_err(|e| explain(&e, "no name for address", &numeric(addr)))?;
    Ok(name)
}

/// An address as text the way the C library writes it: getnameinfo(NI_NUMERICHOST), which
/// (unlike inet_ntop) keeps an IPv6 scope by its interface's name, `fe80::1%lo`.
pub fn numeric(addr: SocketAddr) -> String {
    getnameinfo(&addr, libc::NI_NUMERICHOST)
        .map_or_else(|_| addr.ip().to_string(), |(host, _)| host)
}

/// Parses an address given on the command line the way the C library does, with
/// getaddrinfo(AI_NUMERICHOST), which looks nothing up: an IPv4 address in any form
/// inet_aton() accepts (`127.1` is 127.0.0.1, as it is to `name` and to every C
/// program), an IPv6 address with its scope (`fe80::1%lo`, RFC 4007). Anything else is a
/// clear error.
pub fn parse_address(text: &str) -> anyhow::Result<SocketAddr> {
    let hints = AddrInfoHints {
        flags: libc::AI_NUMERICHOST,
        address: libc::AF_UNSPEC,
        socktype: libc::SOCK_STREAM,
        protocol: 0,
    };
    getaddrinfo(Some(text), None, Some(hints))
        .ok()
        .and_then(|mut entries| entries.next())
        .and_then(Result::ok)
        .map(|entry| entry.sockaddr)
        .ok_or_else(|| {
            anyhow!("invalid address {text:?}: give an IPv4 address such as 127.0.0.1 or an IPv6 address such as ::1")
        })
}

/// Prints a forward lookup the way the book's gethostbyname example does.
pub fn print_name(host: &str) -> anyhow::Result<()> {
    let resolved = resolve(host)?;
    println!("Official name: {}", resolved.canonical);
    println!("Aliases: none reported (getaddrinfo gives no aliases)");
    let families: BTreeSet<&str> = resolved.addresses.iter().map(family).collect();
    println!(
        "Address type: {}",
        families.into_iter().collect::<Vec<_>>().join(", ")
    );
    for (i, ip) in resolved.addresses.iter().enumerate() {
        println!("IP addr {}: {ip} ({})", i + 1, family(ip));
    }
    Ok(())
}

/// Prints a reverse lookup the way the book's gethostbyaddr example does.
pub fn print_addr(text: &str) -> anyhow::Result<()> {
    let addr = parse_address(text)?;
    let name = reverse(addr)?;
    println!("Official name: {name}");
    println!("IP addr: {} ({})", numeric(addr), family(&addr.ip()));
    Ok(())
}

/// A name or an address, as `host(1)` decides: an address when the C library parses
/// it as one (so `127.1` and `fe80::1%lo` are addresses here as they are to `addr`), an
/// invalid address when it only looks like one (digits and dots only, or a colon:
/// `1.2.3.256`), and otherwise a host name.
pub fn lookup(query: &str) -> anyhow::Result<()> {
    let looks_numeric = query.contains(':')
        || (!query.is_empty() && query.chars().all(|c| c.is_ascii_digit() || c == '.'));
    if looks_numeric || parse_address(query).is_ok() {
        print_addr(query)
    } else {
        print_name(query)
    }
}

/// The demo: localhost forward and back, and a name in the reserved `.invalid` domain.
fn demo() -> anyhow::Result<()> {
    let steps: [(&str, &str); 4] = [
        ("name", "localhost"),
        ("addr", "127.0.0.1"),
        ("name", "::1"),
        ("name", "no-such-host.invalid"),
    ];
    for (i, (how, what)) in steps.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("$ ch08-dns-lookup {how} {what}");
        let result = if *how == "name" {
            print_name(what)
        } else {
            print_addr(what)
        };
        if let Err(e) = result {
            println!("error: {e:#}   (the command exits 1)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_names_resolve_without_any_resolver() {
        let r = resolve("::1").expect("::1 is numeric");
        assert_eq!(r.addresses, ["::1".parse::<IpAddr>().unwrap()]);
        let r = resolve("127.0.0.1").expect("numeric");
        assert_eq!(r.addresses, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_bad_address_is_a_clear_error() {
        let err = parse_address("1.2.3.256").unwrap_err().to_string();
        assert!(err.starts_with("invalid address \"1.2.3.256\""), "{err}");
    }

    #[test]
    fn addresses_parse_as_the_c_library_parses_them() {
        let short = parse_address("127.1").expect("inet_aton's a.b form");
        assert_eq!(short.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        // A scope names the link of a link-local address (fe80::/10), by interface name.
        let scoped = parse_address("fe80::1%lo").expect("a scope id by interface name");
        let std::net::SocketAddr::V6(v6) = scoped else {
            panic!("{scoped} is IPv6")
        };
        assert_ne!(v6.scope_id(), 0, "the scope is lo's interface index");
        assert_eq!(numeric(scoped), "fe80::1%lo");
        assert!(parse_address("fe80::1%no-such-interface").is_err());
    }
}
