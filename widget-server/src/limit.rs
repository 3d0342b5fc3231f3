//! Rate limits on votes, per client IP and per (client IP, démarche), with governor's keyed
//! limiters (GCRA: a few bytes of state per key).
//!
//! The client IP is the TCP peer, unless the peer is one of `--trusted-proxies`: then it is read
//! from `X-Forwarded-For` (or `Forwarded`), right to left, skipping trusted hops, so a client
//! cannot pick its own address by prepending one. IPv6 clients are keyed by /64, the block one
//! subscriber usually gets. Keys unseen for a while are pruned on a timer so that millions of
//! distinct addresses do not grow memory without bound.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper::header::HeaderMap;
use ipnet::IpNet;

/// The rate-limiting key of a client address: itself for IPv4, its /64 for IPv6.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Both limiters.
pub struct Limits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_ip_demarche: DefaultKeyedRateLimiter<(IpAddr, i64)>,
    clock: DefaultClock,
}

impl Limits {
    /// `per_minute` votes a minute per client, `per_minute_demarche` per client and démarche;
    /// each may be used in one burst.
    pub fn new(per_minute: u32, per_minute_demarche: u32) -> Limits {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Limits {
            per_ip: RateLimiter::keyed(quota(per_minute)),
            per_ip_demarche: RateLimiter::keyed(quota(per_minute_demarche)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one vote of `client` on `demarche`; `Err(wait)` when over a limit.
    pub fn check(&self, client: IpAddr, demarche: i64) -> Result<(), Duration> {
        let key = client_key(client);
        self.per_ip_demarche
            .check_key(&(key, demarche))
            .and_then(|_| self.per_ip.check_key(&key))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys whose limit has fully recovered: they would behave as new ones anyway.
    pub fn prune(&self) {
        self.per_ip.retain_recent();
        self.per_ip_demarche.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_ip_demarche.shrink_to_fit();
    }

    /// Keys currently held (both limiters).
    pub fn keys(&self) -> usize {
        self.per_ip.len() + self.per_ip_demarche.len()
    }
}

/// The client address of a request from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    let xff: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    if !xff.is_empty() {
        for value in xff {
            let Ok(value) = value.to_str() else { return peer };
            hops.extend(value.split(',').filter_map(|h| parse_node(h.trim())));
        }
    } else {
        for value in headers.get_all("forwarded") {
            let Ok(value) = value.to_str() else { return peer };
            for element in value.split(',') {
                for pair in element.split(';') {
                    let mut kv = pair.splitn(2, '=');
                    let (k, v) = (kv.next().unwrap_or("").trim(), kv.next().unwrap_or("").trim());
                    if k.eq_ignore_ascii_case("for") {
                        if let Some(ip) = parse_node(v.trim_matches('"')) {
                            hops.push(ip);
                        }
                    }
                }
            }
        }
    }
    // The rightmost hop not ours is the client as far as we can vouch for.
    hops.iter().rev().find(|ip| !is_trusted(ip)).or(hops.first()).copied().unwrap_or(peer)
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:567`, `2001:db8::1`, `[2001:db8::1]:567`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.rsplit_once(':').and_then(|(host, _)| host.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_demarche_then_per_ip() {
        let l = Limits::new(3, 2);
        let a = ip("10.0.0.1");
        assert!(l.check(a, 1).is_ok());
        assert!(l.check(a, 1).is_ok());
        let wait = l.check(a, 1).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30), "{wait:?}");
        assert!(l.check(a, 2).is_ok(), "another démarche has its own allowance");
        assert!(l.check(a, 3).is_err(), "but the per-IP limit (3) is reached");
        assert!(l.check(ip("10.0.0.2"), 1).is_ok(), "another client is not affected");
    }

    #[test]
    fn ipv6_is_keyed_by_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), client_key(ip("2001:db8:1:2:bbbb::2")));
        assert_ne!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:3::1")));
        assert_eq!(client_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn prune_forgets_recovered_keys() {
        // A key is dropped once its state is indistinguishable from a new one: one vote at
        // 60 a minute (one a second) is forgotten after 2 × 1 s. (Wide margins: filling
        // 100,000 keys on a loaded machine in a debug build can take a good part of a second.)
        let l = Limits::new(60, 60);
        for i in 0..50_000u32 {
            let _ = l.check(IpAddr::V4(i.into()), 1);
        }
        assert_eq!(l.keys(), 100_000);
        l.prune();
        assert_eq!(l.keys(), 100_000, "fresh keys are kept");
        std::thread::sleep(Duration::from_millis(2500));
        l.prune();
        assert_eq!(l.keys(), 0);
    }

    #[test]
    fn forwarded_headers_trusted_only_from_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.1.1.1"));
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &trusted), ip("198.51.100.1"), "untrusted peer");
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("203.0.113.7"), "rightmost untrusted hop");
        let mut f = HeaderMap::new();
        f.insert("forwarded", HeaderValue::from_static("for=192.0.2.60;proto=http, for=\"[2001:db8::7]:4711\""));
        assert_eq!(client_ip(ip("::1"), &f, &trusted), ip("2001:db8::7"));
        assert_eq!(client_ip(ip("10.0.0.5"), &HeaderMap::new(), &trusted), ip("10.0.0.5"), "no header");
        let mut junk = HeaderMap::new();
        junk.insert("x-forwarded-for", HeaderValue::from_static("not an ip"));
        assert_eq!(client_ip(ip("10.0.0.5"), &junk, &trusted), ip("10.0.0.5"));
    }
}
