//! Rate limits on log-in, sign-up and password-reset requests, per client IP and per e-mail
//! address (DESIGN §10), with governor's keyed limiters like the vote path.
//!
//! Per address, the limits stop password guessing and mailbox flooding; per IP, they stop one
//! machine from sweeping many addresses. The per-IP quotas are generous because a whole
//! ministry may reach us through one proxy address.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::limit::client_key;

/// Which form is being submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    LogIn,
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

/// The limiters of the three forms.
pub struct AuthLimits {
    log_in: Pair,
    sign_up: Pair,
    reset: Pair,
    mailing: Pair,
    clock: DefaultClock,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            // Ten tries on one address, then one every two minutes: the 11th wrong password in a
            // minute is refused, and guessing runs at 30 an hour at most.
            log_in: Pair::new(quota(60, Duration::from_secs(1)), quota(10, Duration::from_secs(120))),
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
            Action::LogIn => &self.log_in,
            Action::SignUp => &self.sign_up,
            Action::Reset => &self.reset,
            Action::Mailing => &self.mailing,
        };
        // Bound the key: an address is at most 254 characters once validated, but this runs
        // before validation.
        let address: String = address.chars().take(254).collect();
        pair.per_ip
            .check_key(&client_key(client))
            .and_then(|_| pair.per_address.check_key(&address))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys whose limits have recovered.
    pub fn prune(&self) {
        for pair in [&self.log_in, &self.sign_up, &self.reset, &self.mailing] {
            pair.per_ip.retain_recent();
            pair.per_address.retain_recent();
            pair.per_ip.shrink_to_fit();
            pair.per_address.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleventh_log_in_on_one_address_is_refused() {
        let limits = AuthLimits::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..10 {
            assert!(limits.check(Action::LogIn, ip, "a@b.gouv.fr").is_ok(), "try {}", i + 1);
        }
        let wait = limits.check(Action::LogIn, ip, "a@b.gouv.fr").unwrap_err();
        assert!(wait > Duration::from_secs(60) && wait <= Duration::from_secs(120), "{wait:?}");
        assert!(limits.check(Action::LogIn, ip, "other@b.gouv.fr").is_ok(), "another address is not blocked");
        assert!(limits.check(Action::SignUp, ip, "a@b.gouv.fr").is_ok(), "another form is not blocked");
    }

    #[test]
    fn one_ip_cannot_sweep_addresses() {
        let limits = AuthLimits::default();
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        for i in 0..20 {
            assert!(limits.check(Action::Reset, ip, &format!("a{i}@x.fr")).is_ok());
        }
        assert!(limits.check(Action::Reset, same_64, "z@x.fr").is_err(), "the /64 shares the limit");
    }
}
