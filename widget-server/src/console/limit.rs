//! Rate limits of the account forms (DESIGN §10), per client IP and per e-mail address.
//!
//! Sign-up, reset and the porteurs' mailing actions count every submission, with governor's
//! keyed limiters like the vote path: per address they stop mailbox flooding, per IP one machine
//! sweeping many addresses. The per-IP quotas are generous because a whole ministry may reach us
//! through one proxy address.
//!
//! Log-in counts **failures only** ([`LogInLimits`]): a wrong password or an unknown address,
//! never a successful log-in. A locked key is refused before any argon2 work. A browser with a
//! valid « appareil connu » cookie for the address ([`super::cookies`]) is limited by its own
//! failures only, never by strangers' failures on that address (OWASP's device cookies).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::cookies::DeviceId;
use crate::limit::client_key;

/// Which form is being submitted (log-in has its own rules: [`LogInLimits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SignUp,
    Reset,
    /// Porteurs' actions that send e-mail: invitations, « Je suis porteur » requests, new
    /// démarches (keyed by the account's address, so no account floods mailboxes).
    Mailing,
}

struct Pair {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_address: DefaultKeyedRateLimiter<String>,
}

/// `burst` at once, then one more every `every`.
fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every).map_or(Quota::per_minute(burst), |q| q.allow_burst(burst))
}

impl Pair {
    fn new(ip: Quota, address: Quota) -> Pair {
        Pair { per_ip: RateLimiter::keyed(ip), per_address: RateLimiter::keyed(address) }
    }
}

/// An address as a limiter key: at most 254 characters once validated, but keys are made before
/// validation.
fn address_key(address: &str) -> String {
    address.chars().take(254).collect()
}

/// The limiters of the account forms.
pub struct AuthLimits {
    pub log_in: LogInLimits,
    sign_up: Pair,
    reset: Pair,
    mailing: Pair,
    clock: DefaultClock,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            log_in: LogInLimits::default(),
            sign_up: Pair::new(quota(20, Duration::from_secs(60)), quota(3, Duration::from_secs(600))),
            reset: Pair::new(quota(20, Duration::from_secs(60)), quota(3, Duration::from_secs(600))),
            // Twenty at once (inviting a team), then one every three minutes.
            mailing: Pair::new(quota(60, Duration::from_secs(1)), quota(20, Duration::from_secs(180))),
            clock: DefaultClock::default(),
        }
    }
}

impl AuthLimits {
    /// Counts one submission of `action` from `client` about `address` (lower-cased);
    /// `Err(wait)` when over a limit.
    pub fn check(&self, action: Action, client: IpAddr, address: &str) -> Result<(), Duration> {
        let pair = match action {
            Action::SignUp => &self.sign_up,
            Action::Reset => &self.reset,
            Action::Mailing => &self.mailing,
        };
        pair.per_ip
            .check_key(&client_key(client))
            .and_then(|_| pair.per_address.check_key(&address_key(address)))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys whose limits have recovered.
    pub fn prune(&self) {
        for pair in [&self.sign_up, &self.reset, &self.mailing] {
            pair.per_ip.retain_recent();
            pair.per_address.retain_recent();
            pair.per_ip.shrink_to_fit();
            pair.per_address.shrink_to_fit();
        }
        self.log_in.prune(Instant::now());
    }
}

/// Failures counted per key: `burst` at once, then one more every `every` (GCRA, as governor's
/// limiters: one instant of state per key).
///
/// Not a governor limiter because a log-in needs two calls governor does not have: a look that
/// takes nothing (is this key locked?) before the password is checked, and giving back a try
/// that turned out to be a successful log-in.
struct Failures<K: Hash + Eq> {
    every: Duration,
    /// `(burst - 1) × every`: how far ahead of now a key's due instant may be and still let one
    /// more try through.
    tolerance: Duration,
    /// Per key, the instant at which every try counted against it will have been forgotten.
    due: DashMap<K, Instant>,
}

impl<K: Hash + Eq> Failures<K> {
    fn new(burst: u32, every: Duration) -> Failures<K> {
        Failures { every, tolerance: every * burst.saturating_sub(1), due: DashMap::new() }
    }

    /// How long `key` stays locked from `now`, if it is.
    fn locked(&self, key: &K, now: Instant) -> Option<Duration> {
        let ahead = self.due.get(key)?.saturating_duration_since(now);
        (ahead > self.tolerance).then(|| ahead - self.tolerance)
    }

    /// Counts one try against `key`.
    fn charge(&self, key: K, now: Instant) {
        let mut due = self.due.entry(key).or_insert(now);
        *due = (*due).max(now) + self.every;
    }

    /// Gives back one try counted against `key`.
    fn refund(&self, key: &K) {
        if let Some(mut due) = self.due.get_mut(key) {
            *due = due.checked_sub(self.every).unwrap_or(*due);
        }
    }

    /// Forgets keys that have recovered every try: they behave as new ones anyway.
    fn prune(&self, now: Instant) {
        self.due.retain(|_, due| *due > now);
        self.due.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.due.len()
    }
}

/// Log-in failures: per client IP across addresses, per (IP, address), per address across IPs
/// (browsers the address does not know), per « appareil connu » cookie (browsers it knows).
pub struct LogInLimits {
    /// Sixty at once, then one every six seconds: generous, as a whole ministry may sit behind
    /// one proxy address, yet one machine tries at most 600 addresses an hour.
    per_ip: Failures<IpAddr>,
    /// Ten, then one every two minutes: a person mistyping on one machine.
    per_ip_address: Failures<(IpAddr, String)>,
    /// Twenty, then one every two minutes: guessing from many machines runs at thirty an hour
    /// at most, and the owner's own slips on one machine (held at ten) leave their other
    /// browsers free.
    per_address: Failures<String>,
    /// Ten, then one every two minutes: a known browser is held by its own failures.
    per_device: Failures<DeviceId>,
}

impl Default for LogInLimits {
    fn default() -> Self {
        let two_minutes = Duration::from_secs(120);
        LogInLimits {
            per_ip: Failures::new(60, Duration::from_secs(6)),
            per_ip_address: Failures::new(10, two_minutes),
            per_address: Failures::new(20, two_minutes),
            per_device: Failures::new(10, two_minutes),
        }
    }
}

/// One log-in being checked. Its try counts as a failure from the start, so that tries sent
/// side by side cannot all pass the lock before the first of them has failed; dropping it gives
/// the try back (a successful log-in, or one that could not be checked), unless
/// [`LogInTry::failed`] said otherwise.
#[must_use = "dropping a log-in try gives it back: call failed() on a wrong password"]
pub struct LogInTry<'a> {
    limits: &'a LogInLimits,
    ip: IpAddr,
    address: String,
    device: Option<DeviceId>,
    failed: bool,
}

impl LogInLimits {
    /// Starts a log-in from `client` on `address` (lower-cased), from a browser whose device
    /// cookie is valid for that address if `device` is set; `Err(wait)` while it is locked out.
    ///
    /// A browser the address does not know is held by the per-IP, per-(IP, address) and
    /// per-address locks. A known browser is held by its own device's lock only: strangers'
    /// failures on the address, from anywhere (its own proxy's address included), never lock it
    /// out, and its cookie is worth nothing on another address, so it cannot sweep. Its failures
    /// still count per IP and per (IP, address): dropping the cookie brings no fresh tries.
    pub fn start(&self, client: IpAddr, address: &str, device: Option<DeviceId>) -> Result<LogInTry<'_>, Duration> {
        let now = Instant::now();
        let ip = client_key(client);
        let address = address_key(address);
        let ip_address = (ip, address.clone());
        let wait = match &device {
            Some(d) => self.per_device.locked(d, now),
            None => [
                self.per_ip.locked(&ip, now),
                self.per_ip_address.locked(&ip_address, now),
                self.per_address.locked(&address, now),
            ]
            .into_iter()
            .flatten()
            .max(),
        };
        if let Some(wait) = wait {
            return Err(wait);
        }
        self.per_ip.charge(ip, now);
        self.per_ip_address.charge(ip_address, now);
        match device {
            Some(d) => self.per_device.charge(d, now),
            None => self.per_address.charge(address.clone(), now),
        }
        Ok(LogInTry { limits: self, ip, address, device, failed: false })
    }

    fn prune(&self, now: Instant) {
        self.per_ip.prune(now);
        self.per_ip_address.prune(now);
        self.per_address.prune(now);
        self.per_device.prune(now);
    }

    /// Keys currently held, all limits together.
    pub fn keys(&self) -> usize {
        self.per_ip.len() + self.per_ip_address.len() + self.per_address.len() + self.per_device.len()
    }
}

impl LogInTry<'_> {
    /// A wrong password or an unknown address: the try stays counted.
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for LogInTry<'_> {
    fn drop(&mut self) {
        if self.failed {
            return;
        }
        let l = self.limits;
        l.per_ip.refund(&self.ip);
        match &self.device {
            Some(d) => l.per_device.refund(d),
            None => l.per_address.refund(&self.address),
        }
        l.per_ip_address.refund(&(self.ip, std::mem::take(&mut self.address)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_lock_after_the_burst_and_recover_one_at_a_time() {
        let f: Failures<u8> = Failures::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(f.locked(&1, t0), None);
            f.charge(1, t0);
        }
        assert_eq!(f.locked(&1, t0), Some(Duration::from_secs(10)), "locked after three");
        assert_eq!(f.locked(&2, t0), None, "other keys are free");
        assert_eq!(f.locked(&1, t0 + Duration::from_secs(4)), Some(Duration::from_secs(6)));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(f.locked(&1, later), None, "one try back after one period");
        f.charge(1, later);
        assert!(f.locked(&1, later).is_some(), "and only one");
        f.refund(&1);
        assert_eq!(f.locked(&1, later), None, "a refunded try is not counted");
        f.prune(t0 + Duration::from_secs(29));
        assert_eq!(f.len(), 1, "not yet recovered");
        f.prune(t0 + Duration::from_secs(30));
        assert_eq!(f.len(), 0, "recovered keys are forgotten");
    }

    #[test]
    fn successful_log_ins_are_never_counted() {
        let limits = LogInLimits::default();
        for i in 0..100 {
            let attempt = limits.start(ip("192.0.2.1"), "a@b.gouv.fr", None).unwrap_or_else(|w| panic!("{i}: {w:?}"));
            drop(attempt);
        }
        assert!(limits.start(ip("192.0.2.1"), "a@b.gouv.fr", None).is_ok());
    }

    #[test]
    fn ten_failures_from_one_machine_lock_that_machine_on_that_address() {
        let limits = LogInLimits::default();
        for i in 0..10 {
            limits.start(ip("192.0.2.1"), "a@b.gouv.fr", None).unwrap_or_else(|w| panic!("{i}: {w:?}")).failed();
        }
        let wait = limits.start(ip("192.0.2.1"), "a@b.gouv.fr", None).err().expect("locked");
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
        assert!(limits.start(ip("192.0.2.1"), "other@b.gouv.fr", None).is_ok(), "another address is free");
        assert!(limits.start(ip("192.0.2.2"), "a@b.gouv.fr", None).is_ok(), "another machine is free");
    }

    #[test]
    fn failures_from_many_machines_lock_unknown_browsers_not_known_ones() {
        let limits = LogInLimits::default();
        let known = DeviceId::for_tests(1);
        for i in 0..20 {
            let from = ip(&format!("198.51.100.{}", i % 4));
            limits.start(from, "victim@b.gouv.fr", None).unwrap_or_else(|w| panic!("{i}: {w:?}")).failed();
        }
        assert!(limits.start(ip("203.0.113.9"), "victim@b.gouv.fr", None).is_err(), "unknown browsers are locked");
        assert!(limits.start(ip("198.51.100.1"), "victim@b.gouv.fr", None).is_err());
        assert!(limits.start(ip("203.0.113.9"), "victim@b.gouv.fr", Some(known)).is_ok(), "the known browser is not");
        // Nor when it shares an attacker's address (one proxy for a whole ministry).
        assert!(limits.start(ip("198.51.100.1"), "victim@b.gouv.fr", Some(known)).is_ok());
        assert!(limits.start(ip("203.0.113.9"), "other@b.gouv.fr", None).is_ok(), "other addresses are free");
    }

    #[test]
    fn a_known_browser_is_held_by_its_own_failures() {
        let limits = LogInLimits::default();
        let (mine, other) = (DeviceId::for_tests(1), DeviceId::for_tests(2));
        for i in 0..10 {
            limits.start(ip("192.0.2.1"), "a@b.gouv.fr", Some(mine)).unwrap_or_else(|w| panic!("{i}: {w:?}")).failed();
        }
        assert!(limits.start(ip("192.0.2.7"), "a@b.gouv.fr", Some(mine)).is_err(), "its cookie is locked anywhere");
        assert!(limits.start(ip("192.0.2.1"), "a@b.gouv.fr", Some(other)).is_ok(), "another known browser is not");
        assert!(
            limits.start(ip("192.0.2.1"), "a@b.gouv.fr", None).is_err(),
            "dropping the cookie brings no fresh tries"
        );
        assert!(limits.start(ip("192.0.2.7"), "a@b.gouv.fr", None).is_ok(), "its failures do not lock the address");
    }

    #[test]
    fn one_machine_cannot_sweep_addresses_but_the_limit_is_generous() {
        let limits = LogInLimits::default();
        let from = ip("2001:db8::1");
        for i in 0..60 {
            limits.start(from, &format!("a{i}@x.fr"), None).unwrap_or_else(|w| panic!("{i}: {w:?}")).failed();
        }
        let wait = limits.start(ip("2001:db8::2"), "z@x.fr", None).err().expect("the /64 shares the limit");
        assert!(wait <= Duration::from_secs(6), "{wait:?}");
        assert!(limits.start(ip("2001:db8:1::1"), "z@x.fr", None).is_ok(), "another /64 is free");
    }

    #[test]
    fn tries_side_by_side_are_counted_before_they_fail() {
        let limits = LogInLimits::default();
        let pending: Vec<_> = (0..20).filter_map(|_| limits.start(ip("192.0.2.1"), "a@b.gouv.fr", None).ok()).collect();
        assert_eq!(pending.len(), 10, "only ten pass the lock while none has finished");
        pending.into_iter().for_each(LogInTry::failed);
        assert!(limits.start(ip("192.0.2.1"), "a@b.gouv.fr", None).is_err());
    }

    #[test]
    fn pruning_keeps_memory_bounded() {
        let limits = AuthLimits::default();
        limits.log_in.start(ip("192.0.2.1"), "a@b.gouv.fr", None).unwrap().failed();
        drop(limits.log_in.start(ip("192.0.2.2"), "b@b.gouv.fr", None).unwrap());
        limits.prune();
        assert_eq!(limits.log_in.keys(), 3, "the failure's keys stay, the success's are gone");
        limits.log_in.prune(Instant::now() + Duration::from_secs(121));
        assert_eq!(limits.log_in.keys(), 0);
    }

    #[test]
    fn sign_up_and_reset_count_every_submission() {
        let limits = AuthLimits::default();
        let from = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(limits.check(Action::SignUp, from, "a@b.gouv.fr").is_ok());
        }
        let wait = limits.check(Action::SignUp, from, "a@b.gouv.fr").unwrap_err();
        assert!(wait > Duration::from_secs(500) && wait <= Duration::from_secs(600), "{wait:?}");
        assert!(limits.check(Action::Reset, from, "a@b.gouv.fr").is_ok(), "another form is not blocked");
        let sweeper = ip("2001:db8::1");
        for i in 0..20 {
            assert!(limits.check(Action::Reset, sweeper, &format!("a{i}@x.fr")).is_ok());
        }
        assert!(limits.check(Action::Reset, ip("2001:db8::2"), "z@x.fr").is_err(), "the /64 shares the limit");
    }
}
