//! The one kind of server this tool may talk to: `http://` on a loopback address.
//!
//! A load generator pointed at the wrong host is a denial-of-service tool, so the target is
//! checked before anything is sent, and host names are not resolved at all (a resolver or an
//! `/etc/hosts` line could send `localhost` anywhere): only IP literals in 127.0.0.0/8 or `::1`
//! are accepted, plus the word `localhost`, taken to mean 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where the load goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The server's socket address, always loopback.
    pub addr: SocketAddr,
    /// The `Host` header to send, as written in the URL (`127.0.0.1:8080`).
    pub authority: String,
}

/// Whether `ip` is a loopback address (127.0.0.0/8, `::1`, or 127.x mapped into IPv6).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Parses `--target`: `http://HOST[:PORT][/]` where HOST is a loopback IP literal
/// (`127.0.0.1`, `[::1]`) or `localhost`. Anything else is refused with the reason.
pub fn parse_target(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported (the server speaks plain HTTP/1.1)"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(format!("{url:?}: expected http://HOST:PORT with no path, query or user"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| format!("{url:?}: cannot read HOST:PORT"))?;
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().map_err(|_| {
            format!("{url:?}: {host:?} is not an IP literal; write 127.0.0.1 or [::1] (names are not resolved)")
        })?
    };
    if !is_loopback(ip) {
        return Err(format!(
            "{url:?}: {ip} is not a loopback address; this tool only sends traffic to 127.0.0.0/8 or ::1"
        ));
    }
    Ok(Target { addr: SocketAddr::new(ip, port), authority: authority.to_string() })
}

/// `host:port`, `[v6]:port`, `host` or `[v6]` (port 80).
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse().ok()?,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_are_accepted() {
        let t = parse_target("http://127.0.0.1:18181").unwrap();
        assert_eq!(t.addr, "127.0.0.1:18181".parse().unwrap());
        assert_eq!(t.authority, "127.0.0.1:18181");
        assert_eq!(parse_target("http://127.9.8.7:1/").unwrap().addr, "127.9.8.7:1".parse().unwrap());
        assert_eq!(parse_target("http://[::1]:8080").unwrap().addr, "[::1]:8080".parse().unwrap());
        assert_eq!(parse_target("http://localhost:8080").unwrap().addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse_target("http://127.0.0.1").unwrap().addr.port(), 80);
        assert_eq!(parse_target("http://[::ffff:127.0.0.1]:9").unwrap().addr.port(), 9);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "http://10.0.0.1:8080",
            "http://192.168.1.1",
            "http://0.0.0.0:8080",
            "http://[::]:8080",
            "http://[2001:db8::1]:80",
            "http://example.fr:8080",
            "http://127.0.0.1.nip.io:8080",
            "https://127.0.0.1:8443",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/static",
            "http://user@127.0.0.1:8080",
            "http://127.0.0.1:99999",
            "http://",
        ] {
            assert!(parse_target(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn loopback_ranges() {
        assert!(is_loopback("127.255.255.254".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("128.0.0.1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
    }
}
