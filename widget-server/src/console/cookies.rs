//! The console's cookies (DESIGN §10): their names in one place, and the two the server signs.
//!
//! - **Names.** Over http (a laptop, a test) `monavis_session`, `monavis_csrf` and
//!   `monavis_appareil`; behind https the same with the `__Host-` prefix, which browsers accept
//!   only with `Secure`, `Path=/` and no `Domain`: neither a sibling subdomain nor a plain-http
//!   page can then plant or shadow them.
//! - **The pre-log-in CSRF cookie** is a random token and its HMAC: a well-formed value the server
//!   never issued (planted by someone else) is replaced by a fresh one, so a form posted with it
//!   fails the double-submit check.
//! - **The « appareil connu » device cookie** (OWASP's device cookies) is set at every successful
//!   log-in. It binds that browser to the address it logged in with through a MAC over the
//!   address (never the address itself) and an expiry; [`super::limit`] then keys its failures by
//!   the cookie's random id instead of locking it out with strangers' failures on the address.
//!
//! - **The ProConnect flow cookie** (DESIGN §16) binds a log-in started here to this browser:
//!   the `state` and `nonce` sent to ProConnect, where to go afterwards, an expiry a few minutes
//!   away, and a MAC. The return is accepted only with the `state` of this cookie.
//!
//! Each purpose has its own key derived from the server secret, so a MAC made for one (a form
//! link, a CSRF token) is never valid for another.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::secret::{self, SecretToken};

type HmacSha256 = Hmac<Sha256>;

/// How long a browser stays « connu » after its last successful log-in.
pub const DEVICE_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long a ProConnect log-in may take, from our redirect to its return (choosing one's
/// ministry, its own log-in, a second factor…).
pub const FLOW_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// The names of the console's cookies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieNames {
    /// The session (a random token; the store keeps its SHA-256).
    pub session: &'static str,
    /// The signed double-submit token of visitors who are not signed in.
    pub csrf: &'static str,
    /// The « appareil connu » device cookie.
    pub device: &'static str,
    /// A ProConnect log-in under way ([`Flow`]).
    pub proconnect: &'static str,
}

impl CookieNames {
    /// `__Host-` names when cookies are `Secure` (the public URL is https), the plain ones
    /// otherwise, so that laptops over http keep their sessions.
    pub fn new(secure: bool) -> CookieNames {
        if secure {
            CookieNames {
                session: "__Host-monavis_session",
                csrf: "__Host-monavis_csrf",
                device: "__Host-monavis_appareil",
                proconnect: "__Host-monavis_proconnect",
            }
        } else {
            CookieNames {
                session: "monavis_session",
                csrf: "monavis_csrf",
                device: "monavis_appareil",
                proconnect: "monavis_proconnect",
            }
        }
    }
}

/// The random id of a valid device cookie: what a known browser's own log-in failures are
/// counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceId([u8; 16]);

#[cfg(test)]
impl DeviceId {
    /// A device id for the limiter's unit tests.
    pub fn for_tests(n: u8) -> DeviceId {
        DeviceId([n; 16])
    }
}

/// A ProConnect log-in under way, as its cookie holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Flow {
    /// Sent as `state` (64 hex characters: ProConnect asks for at least 32).
    pub state: String,
    /// Sent as `nonce`, found again in the ID token.
    pub nonce: String,
    /// Where to go once logged in (a console path, checked again when used).
    pub suite: Option<String>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow").field("suite", &self.suite).finish_non_exhaustive()
    }
}

/// Signs and checks the CSRF, device and ProConnect flow cookies with keys derived from the
/// server secret.
pub struct CookieSigner {
    csrf: HmacSha256,
    device: HmacSha256,
    flow: HmacSha256,
}

impl std::fmt::Debug for CookieSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieSigner(***)")
    }
}

/// HMAC accepts keys of any length: `new_from_slice` cannot fail.
fn hmac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// `HMAC(secret, purpose)`, the key of one purpose. The link signer's messages are démarche
/// ids in decimal digits, which no purpose string is.
fn derive(secret: &[u8], purpose: &str) -> HmacSha256 {
    hmac(&hmac(secret).chain_update(purpose.as_bytes()).finalize().into_bytes())
}

/// A fixed-length hex field, decoded.
fn hex_field<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl CookieSigner {
    pub fn new(secret: &[u8]) -> CookieSigner {
        CookieSigner {
            csrf: derive(secret, "monavis console: pre-log-in CSRF cookie"),
            device: derive(secret, "monavis console: device cookie"),
            flow: derive(secret, "monavis console: ProConnect flow cookie"),
        }
    }

    /// The MAC of a flow cookie's fields (each of hex or decimal digits only, so that the
    /// message cannot be read two ways).
    fn flow_mac(&self, state: &str, nonce: &str, expires: i64, suite: &str) -> HmacSha256 {
        self.flow.clone().chain_update(format!("{state}.{nonce}.{expires}.{suite}").as_bytes())
    }

    /// A new ProConnect flow (fresh `state` and `nonce`) returning to `suite`, and the value of
    /// its cookie, valid [`FLOW_MAX_AGE`] from `now` (Unix seconds):
    /// `state.nonce.expires.suite-in-hex.mac`.
    pub fn new_flow(&self, suite: Option<&str>, now: i64) -> (Flow, String) {
        let flow = Flow {
            state: SecretToken::generate().expose().to_string(),
            nonce: SecretToken::generate().expose().to_string(),
            suite: suite.map(str::to_string),
        };
        let expires = now.saturating_add(FLOW_MAX_AGE.as_secs() as i64);
        let suite = hex::encode(suite.unwrap_or_default());
        let mac = self.flow_mac(&flow.state, &flow.nonce, expires, &suite).finalize().into_bytes();
        let value = format!("{}.{}.{expires}.{suite}.{}", flow.state, flow.nonce, hex::encode(mac));
        (flow, value)
    }

    /// The flow of `value` if it is a flow cookie this server issued and it has not expired at
    /// `now` (Unix seconds); `None` for anything else.
    pub fn flow(&self, value: &str, now: i64) -> Option<Flow> {
        let mut fields = value.split('.');
        let (state, nonce, expires, suite, mac) =
            (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() || !secret::well_formed(state) || !secret::well_formed(nonce) {
            return None;
        }
        let mac = hex_field::<32>(mac)?;
        let expires: i64 = expires.parse().ok().filter(|e| *e > now)?;
        let suite_bytes = hex::decode(suite).ok()?;
        self.flow_mac(state, nonce, expires, suite).verify_slice(&mac).ok()?;
        let suite = String::from_utf8(suite_bytes).ok().filter(|s| !s.is_empty());
        Some(Flow { state: state.to_string(), nonce: nonce.to_string(), suite })
    }

    /// A fresh CSRF cookie value: `token.mac` (64 + 1 + 64 hex characters). Forms carry the
    /// same value.
    pub fn new_csrf(&self) -> String {
        let token = SecretToken::generate();
        let mac = self.csrf.clone().chain_update(token.expose().as_bytes()).finalize().into_bytes();
        format!("{}.{}", token.expose(), hex::encode(mac))
    }

    /// Whether `value` is a CSRF cookie this server issued (constant-time MAC check).
    pub fn csrf_is_ours(&self, value: &str) -> bool {
        let Some((token, mac)) = value.split_once('.') else { return false };
        let Some(mac) = hex_field::<32>(mac) else { return false };
        secret::well_formed(token) && self.csrf.clone().chain_update(token.as_bytes()).verify_slice(&mac).is_ok()
    }

    fn device_mac(&self, id: &[u8; 16], expires: i64, address: &str) -> HmacSha256 {
        // Fixed-length fields first, so the message cannot be read two ways.
        self.device.clone().chain_update(id).chain_update(expires.to_be_bytes()).chain_update(address.as_bytes())
    }

    /// A fresh device cookie value for `address` (normalised, lower case), valid
    /// [`DEVICE_MAX_AGE`] from `now` (Unix seconds): `id.expires.mac`.
    pub fn new_device(&self, address: &str, now: i64) -> String {
        let mut id = [0u8; 16];
        // As in `SecretToken::generate`: without an entropy source nothing here can be safe.
        getrandom::fill(&mut id).expect("the operating system's random source is unavailable");
        let expires = now.saturating_add(DEVICE_MAX_AGE.as_secs() as i64);
        let mac = self.device_mac(&id, expires, address).finalize().into_bytes();
        format!("{}.{expires}.{}", hex::encode(id), hex::encode(mac))
    }

    /// The id of `value` if it is a device cookie this server issued for `address` and it has
    /// not expired at `now` (Unix seconds); `None` for anything else (forged, tampered, another
    /// address's, expired).
    pub fn known_device(&self, value: &str, address: &str, now: i64) -> Option<DeviceId> {
        let mut fields = value.split('.');
        let (id, expires, mac) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() {
            return None;
        }
        let id = hex_field::<16>(id)?;
        let mac = hex_field::<32>(mac)?;
        let expires: i64 = expires.parse().ok().filter(|e| *e > now)?;
        self.device_mac(&id, expires, address).verify_slice(&mac).is_ok().then_some(DeviceId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    #[test]
    fn names_are_host_prefixed_behind_https_only() {
        let https = CookieNames::new(true);
        for name in [https.session, https.csrf, https.device, https.proconnect] {
            assert!(name.starts_with("__Host-monavis_"), "{name}");
        }
        assert_eq!(CookieNames::new(false).session, "monavis_session", "laptops keep their sessions");
        assert_eq!(CookieNames::new(false).csrf, "monavis_csrf");
    }

    #[test]
    fn only_issued_csrf_values_are_ours() {
        let signer = CookieSigner::new(b"server secret");
        let value = signer.new_csrf();
        assert_eq!(value.len(), 129);
        assert!(signer.csrf_is_ours(&value));
        assert_ne!(signer.new_csrf(), value, "random");
        let (token, mac) = value.split_once('.').unwrap();
        assert!(!signer.csrf_is_ours(token), "a well-formed token without its MAC");
        assert!(!signer.csrf_is_ours(&"a".repeat(64)), "a planted token");
        assert!(!signer.csrf_is_ours(&format!("{}.{mac}", "b".repeat(64))), "another token with this MAC");
        let flipped = if mac.ends_with('0') { format!("{}1", &mac[..63]) } else { format!("{}0", &mac[..63]) };
        assert!(!signer.csrf_is_ours(&format!("{token}.{flipped}")), "a tampered MAC");
        assert!(!signer.csrf_is_ours(&format!("{token}.")), "no MAC");
        assert!(!CookieSigner::new(b"another secret").csrf_is_ours(&value), "another server's");
    }

    #[test]
    fn a_device_cookie_is_bound_to_its_address_and_expires() {
        let signer = CookieSigner::new(b"server secret");
        let value = signer.new_device("marie@interieur.gouv.fr", NOW);
        assert!(!value.contains("marie"), "the address is not in clear: {value}");
        let id = signer.known_device(&value, "marie@interieur.gouv.fr", NOW + 1).expect("valid");
        assert_eq!(signer.known_device(&value, "marie@interieur.gouv.fr", NOW + 100), Some(id));
        let other = signer.new_device("marie@interieur.gouv.fr", NOW);
        assert_ne!(signer.known_device(&other, "marie@interieur.gouv.fr", NOW), Some(id), "a new id each log-in");
        assert_eq!(signer.known_device(&value, "jean@interieur.gouv.fr", NOW), None, "another address");
        let expiry = NOW + DEVICE_MAX_AGE.as_secs() as i64;
        assert_eq!(signer.known_device(&value, "marie@interieur.gouv.fr", expiry), None, "expired");
        assert_eq!(CookieSigner::new(b"another secret").known_device(&value, "marie@interieur.gouv.fr", NOW), None);
    }

    #[test]
    fn a_flow_cookie_holds_its_state_and_nonce_and_expires() {
        let signer = CookieSigner::new(b"server secret");
        let (flow, value) = signer.new_flow(Some("/console/compte"), NOW);
        assert!(flow.state.len() >= 32 && flow.nonce.len() >= 32, "ProConnect asks for 32 characters at least");
        assert_ne!(flow.state, flow.nonce);
        assert_eq!(signer.flow(&value, NOW + 1), Some(flow.clone()));
        assert_eq!(signer.flow(&value, NOW + FLOW_MAX_AGE.as_secs() as i64), None, "expired");
        assert_eq!(CookieSigner::new(b"another secret").flow(&value, NOW), None, "another server's");
        let (other, _) = signer.new_flow(None, NOW);
        assert_ne!(other.state, flow.state, "random");
        let (none, value_none) = signer.new_flow(None, NOW);
        assert_eq!(signer.flow(&value_none, NOW).unwrap().suite, None);
        assert!(none.suite.is_none());
        let fields: Vec<&str> = value.split('.').collect();
        let tampered = [
            format!("{}.{}.{}.{}.{}", other.state, fields[1], fields[2], fields[3], fields[4]),
            format!("{}.{}.{}.{}.{}", fields[0], fields[1], NOW + 100_000, fields[3], fields[4]),
            format!("{}.{}.{}.{}.{}", fields[0], fields[1], fields[2], hex::encode("/ailleurs"), fields[4]),
            format!("{}.{}.{}.{}", fields[0], fields[1], fields[2], fields[4]),
            format!("{value}.x"),
            String::new(),
        ];
        for t in tampered {
            assert_eq!(signer.flow(&t, NOW), None, "{t}");
        }
        assert_eq!(signer.known_device(&value, "a@b.fr", NOW), None, "a flow cookie is no device cookie");
        assert!(!signer.csrf_is_ours(&value));
    }

    #[test]
    fn a_tampered_device_cookie_is_not_known() {
        let signer = CookieSigner::new(b"server secret");
        let address = "marie@interieur.gouv.fr";
        let value = signer.new_device(address, NOW);
        let fields: Vec<&str> = value.split('.').collect();
        let later = (NOW + 10 * DEVICE_MAX_AGE.as_secs() as i64).to_string();
        let tampered = [
            format!("{}.{}.{}", "0".repeat(32), fields[1], fields[2]),
            format!("{}.{later}.{}", fields[0], fields[2]),
            format!("{}.{}.{}", fields[0], fields[1], "f".repeat(64)),
            format!("{value}.x"),
            format!("{}.{}", fields[0], fields[2]),
            String::new(),
            "n'importe quoi".into(),
        ];
        for t in tampered {
            assert_eq!(signer.known_device(&t, address, NOW), None, "{t}");
        }
    }
}
