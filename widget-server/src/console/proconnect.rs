//! ProConnect (DESIGN §16): the State's identity federation for public agents, an OpenID Connect
//! provider. This module is the relying party's side, with the `openidconnect` crate: discovery,
//! the authorization URL, the code exchange, the ID token and the signed userinfo, the log-out
//! URL. The pages that use it are in [`super::pages::proconnect`].
//!
//! - **Discovery and keys, cached.** `{issuer}/.well-known/openid-configuration` and its JWKS are
//!   fetched at the first use (the server starts whether or not ProConnect answers), then kept
//!   [`DISCOVERY_MAX_AGE`]; if ProConnect cannot be reached then, the metadata already known is
//!   kept. A token signed with a key id that the cached JWKS does not hold makes one fetch of
//!   the JWKS (key rotation); still unknown, the token is refused.
//! - **What is checked.** The ID token: signature by the JWKS (RS256 or ES256 only), `iss`,
//!   `aud`, `exp`, `nonce` (and `acr` when `--proconnect-acr` asks for one). The userinfo answer
//!   must be a signed JWT (`application/jwt`), verified with the same keys and algorithms, for the
//!   same `iss`, `aud` and `sub`. The crate's own userinfo request only accepts RS256 for a signed
//!   answer, so the JWT is checked here with the crate's keys ([`JsonWebKey::verify_signature`])
//!   and parsed into its [`UserInfoClaims`].
//! - **Nothing else is sent.** The authorization request carries exactly `response_type`,
//!   `client_id`, `redirect_uri`, `scope`, `state`, `nonce` (and `claims` for `acr`): ProConnect
//!   refuses any other parameter. The code is exchanged with `client_secret_post`.
//! - No HTTP redirect is followed (a provider's redirect could point anywhere), and every
//!   request to ProConnect times out after [`HTTP_TIMEOUT`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::Engine;
use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreResponseType, CoreTokenResponse,
};
use openidconnect::url;
use openidconnect::{
    AdditionalClaims, AuthType, AuthenticationContextClass, AuthenticationFlow, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeySet, JsonWebKeyUse, JwsSigningAlgorithm,
    LogoutRequest, Nonce, OAuth2TokenResponse, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, SubjectIdentifier, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

/// How long discovery metadata is trusted before it is fetched again.
pub const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(3600);
/// Longest wait for any answer of ProConnect.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The scopes ProConnect documents, each naming its claim (`openid` is added by the crate).
pub const SCOPES: [&str; 6] = ["email", "given_name", "usual_name", "siret", "uid", "idp_id"];
/// The signature algorithms accepted on the ID token and the userinfo JWT.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 2] =
    [CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, CoreJwsSigningAlgorithm::EcdsaP256Sha256];

/// The client built from discovery: authorization endpoint set, token and userinfo endpoints as
/// the metadata gave them.
type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// What the operator configured (`--proconnect-*`).
#[derive(Clone)]
pub struct Settings {
    /// `--proconnect-issuer`, e.g. `https://auth.agentconnect.gouv.fr/api/v2`.
    pub issuer: String,
    pub client_id: String,
    /// The content of `--proconnect-client-secret-file`, trimmed.
    pub client_secret: String,
    /// `--proconnect-acr`: the `acr` values asked for (comma-separated on the command line);
    /// empty, none is asked and none is checked.
    pub acr: Vec<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("acr", &self.acr)
            .finish_non_exhaustive()
    }
}

/// ProConnect's claims beyond the standard ones (`given_name` and `email` are standard).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ProConnectClaims {
    #[serde(default)]
    pub usual_name: Option<String>,
    #[serde(default)]
    pub siret: Option<String>,
    #[serde(default)]
    pub idp_id: Option<String>,
}

impl AdditionalClaims for ProConnectClaims {}

/// Who ProConnect says logged in, verified.
#[derive(Clone)]
pub struct Identity {
    /// The issuer (as configured), with `sub` the key of the identity.
    pub issuer: String,
    pub sub: String,
    /// As the claims gave them; checked by the caller.
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub usual_name: Option<String>,
    pub siret: Option<String>,
    /// The identity provider the agent chose (its ministry's), for the audit.
    pub idp_id: Option<String>,
    /// The ID token as received, kept with the session for the log-out (`id_token_hint`).
    pub id_token: String,
}

impl std::fmt::Debug for Identity {
    // Claims are personal data and the ID token a credential: out of debug output and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("issuer", &self.issuer).field("idp_id", &self.idp_id).finish_non_exhaustive()
    }
}

/// Why a ProConnect log-in failed. Each maps to one French message on `/connexion`
/// ([`Failure::code`]); the cause goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// ProConnect (or the network to it) does not answer: discovery, keys, token or userinfo.
    #[error("ProConnect unreachable: {0}")]
    Unavailable(String),
    /// The agent refused, or ProConnect answered the authorization with `access_denied`.
    #[error("access denied by the agent or ProConnect")]
    Refused,
    /// No flow of this browser, or a `state` that is not its own.
    #[error("state: {0}")]
    State(&'static str),
    /// The code was refused (replayed, expired), or a token did not verify.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The claims lack a usable e-mail address.
    #[error("no usable e-mail address in the claims")]
    NoEmail,
}

impl Failure {
    /// The `erreur` code of `/connexion` that explains it.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Unavailable(_) => "proconnect-indisponible",
            Failure::Refused => "proconnect-refus",
            Failure::State(_) => "proconnect-session",
            Failure::Rejected(_) => "proconnect-echec",
            Failure::NoEmail => "proconnect-adresse",
        }
    }
}

/// Discovery metadata (with the JWKS), and when it was fetched.
struct Discovered {
    metadata: ProviderMetadataWithLogout,
    fetched_at: Instant,
}

/// The relying party: configuration, HTTP client, cached metadata and keys.
pub struct ProConnect {
    settings: Settings,
    issuer: IssuerUrl,
    origin: String,
    redirect: RedirectUrl,
    post_logout: PostLogoutRedirectUrl,
    http: openidconnect::reqwest::Client,
    discovered: ArcSwapOption<Discovered>,
    /// One discovery or JWKS fetch at a time: a burst of log-ins during a key rotation fetches
    /// the keys once, and while ProConnect does not answer, those that waited for a fetch that
    /// failed share its failure rather than each trying (and waiting) in turn.
    fetching: tokio::sync::Mutex<()>,
    /// Fetches begun so far, to tell whether one happened while a caller waited for its turn.
    attempts: AtomicU64,
}

impl std::fmt::Debug for ProConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProConnect").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Whether `url` may be an issuer: https, or http on a loopback address (a test provider).
fn acceptable_issuer(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

impl ProConnect {
    /// Checks the configuration; nothing is fetched yet. `public_url` has no trailing slash.
    pub fn new(settings: Settings, public_url: &str) -> anyhow::Result<ProConnect> {
        let issuer = IssuerUrl::new(settings.issuer.trim_end_matches('/').to_string())
            .map_err(|e| anyhow::anyhow!("--proconnect-issuer {:?} is not a URL: {e}", settings.issuer))?;
        anyhow::ensure!(
            acceptable_issuer(issuer.url()),
            "--proconnect-issuer must be an https:// URL (http:// only on a loopback address), got {}",
            issuer.as_str()
        );
        anyhow::ensure!(!settings.client_id.is_empty(), "--proconnect-client-id is empty");
        anyhow::ensure!(!settings.client_secret.is_empty(), "the file of --proconnect-client-secret-file is empty");
        let redirect = RedirectUrl::new(format!("{public_url}/connexion/proconnect/retour"))?;
        let post_logout = PostLogoutRedirectUrl::new(format!("{public_url}/connexion?info=deconnecte"))?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT / 2)
            .build()?;
        let origin = issuer.url().origin().ascii_serialization();
        Ok(ProConnect {
            settings,
            issuer,
            origin,
            redirect,
            post_logout,
            http,
            discovered: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
        })
    }

    /// The redirect URI to declare to ProConnect.
    pub fn redirect_uri(&self) -> &str {
        self.redirect.as_str()
    }

    /// The post-log-out redirect URI to declare to ProConnect.
    pub fn post_logout_redirect_uri(&self) -> &str {
        self.post_logout.as_str()
    }

    /// The issuer, as configured.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The issuer's origin (`scheme://host[:port]`), where the browser is sent to log in and out.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The metadata, from the cache while it is fresh; fetched otherwise (the stale one kept if
    /// ProConnect cannot be reached).
    async fn metadata(&self) -> Result<Arc<Discovered>, Failure> {
        if let Some(d) = self.discovered.load_full().filter(|d| d.fetched_at.elapsed() < DISCOVERY_MAX_AGE) {
            return Ok(d);
        }
        let before = self.attempts.load(Ordering::Acquire);
        let _one_at_a_time = self.fetching.lock().await;
        let stale = self.discovered.load_full();
        if let Some(d) = stale.clone().filter(|d| d.fetched_at.elapsed() < DISCOVERY_MAX_AGE) {
            return Ok(d);
        }
        if self.attempts.load(Ordering::Acquire) != before {
            // A fetch failed while this caller waited: ProConnect did not answer just now.
            return stale.ok_or_else(|| Failure::Unavailable("discovery failed a moment ago".into()));
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http).await {
            Ok(metadata) => {
                tracing::info!(issuer = %self.issuer.as_str(), keys = metadata.jwks().keys().len(), "ProConnect: discovery done");
                let d = Arc::new(Discovered { metadata, fetched_at: Instant::now() });
                self.discovered.store(Some(d.clone()));
                Ok(d)
            }
            Err(e) => match stale {
                Some(d) => {
                    tracing::warn!(error = %error_chain(&e), "ProConnect: discovery failed, keeping the metadata known");
                    Ok(d)
                }
                None => Err(Failure::Unavailable(format!("discovery: {}", error_chain(&e)))),
            },
        }
    }

    /// Fetches the JWKS again, once for everyone who found the keys of `seen` wanting: the
    /// metadata with the new keys.
    async fn refetch_keys(&self, seen: &Arc<Discovered>) -> Result<Arc<Discovered>, Failure> {
        let before = self.attempts.load(Ordering::Acquire);
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(current) = self.discovered.load_full().filter(|d| !Arc::ptr_eq(d, seen)) {
            return Ok(current);
        }
        if self.attempts.load(Ordering::Acquire) != before {
            return Err(Failure::Unavailable("fetching the keys failed a moment ago".into()));
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
        let jwks = CoreJsonWebKeySet::fetch_async(seen.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| Failure::Unavailable(format!("JWKS: {}", error_chain(&e))))?;
        tracing::info!(keys = jwks.keys().len(), "ProConnect: keys fetched again (unknown key id)");
        let metadata = seen.metadata.clone().set_jwks(jwks);
        let d = Arc::new(Discovered { metadata, fetched_at: seen.fetched_at });
        self.discovered.store(Some(d.clone()));
        Ok(d)
    }

    fn client(&self, d: &Discovered) -> Client {
        CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone())
        .set_auth_type(AuthType::RequestBody)
    }

    /// The authorization URL for this `state` and `nonce` (DESIGN §16: exactly ProConnect's
    /// parameters).
    pub async fn authorization_url(&self, state: &str, nonce: &str) -> Result<url::Url, Failure> {
        let d = self.metadata().await?;
        let (state, nonce) = (state.to_string(), nonce.to_string());
        let client = self.client(&d);
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(SCOPES.iter().map(|s| Scope::new(s.to_string())));
        if let Some(claims) = self.acr_claims() {
            request = request.add_extra_param("claims", claims);
        }
        let (url, _, _) = request.url();
        Ok(url)
    }

    /// The `claims` parameter asking for `acr`, when configured.
    fn acr_claims(&self) -> Option<String> {
        let acr = match self.settings.acr.as_slice() {
            [] => return None,
            [one] => serde_json::json!({ "essential": true, "value": one }),
            many => serde_json::json!({ "essential": true, "values": many }),
        };
        Some(serde_json::json!({ "id_token": { "acr": acr } }).to_string())
    }

    /// Exchanges `code`, verifies the ID token against `nonce`, fetches and verifies the signed
    /// userinfo: who logged in.
    pub async fn finish(&self, code: &str, nonce: &str) -> Result<Identity, Failure> {
        let d = self.metadata().await?;
        let client = self.client(&d);
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Failure::Unavailable(e.to_string()))?;
        let token: CoreTokenResponse = request.request_async(&self.http).await.map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => Failure::Rejected(format!("token endpoint: {r}")),
            RequestTokenError::Request(e) => Failure::Unavailable(format!("token endpoint: {}", error_chain(&e))),
            other => Failure::Rejected(format!("token endpoint: {}", error_chain(&other))),
        })?;
        let id_token = token.id_token().ok_or_else(|| Failure::Rejected("no ID token".into()))?.clone();

        // The ID token, with one more fetch of the keys if its key id is unknown.
        let nonce = Nonce::new(nonce.to_string());
        let (d, sub, acr) = match self.check_id_token(&d, &id_token, &nonce) {
            Err(e) if unknown_key(&e) => {
                let d = self.refetch_keys(&d).await?;
                let (sub, acr) = self.check_id_token(&d, &id_token, &nonce).map_err(rejected("ID token"))?;
                (d, sub, acr)
            }
            other => {
                let (sub, acr) = other.map_err(rejected("ID token"))?;
                (d, sub, acr)
            }
        };
        if !acr_accepted(&self.settings.acr, acr.as_deref()) {
            return Err(Failure::Rejected(format!("acr {acr:?} is not one of those asked for")));
        }

        // Userinfo, a signed JWT, same keys.
        let url = d
            .metadata
            .userinfo_endpoint()
            .ok_or_else(|| Failure::Rejected("no userinfo endpoint in the metadata".into()))?
            .url()
            .clone();
        let answer = self
            .http
            .get(url)
            .bearer_auth(token.access_token().secret())
            .header(reqwest_header::ACCEPT, "application/jwt")
            .send()
            .await
            .map_err(|e| Failure::Unavailable(format!("userinfo: {}", error_chain(&e))))?;
        let status = answer.status();
        let jwt_type = answer
            .headers()
            .get(reqwest_header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/jwt")));
        let body = answer.text().await.map_err(|e| Failure::Unavailable(format!("userinfo: {}", error_chain(&e))))?;
        if !status.is_success() {
            return Err(Failure::Rejected(format!("userinfo answered {status}")));
        }
        if !jwt_type {
            return Err(Failure::Rejected("userinfo is not a signed JWT (application/jwt)".into()));
        }
        let claims = match self.check_userinfo(&d, body.trim(), &sub) {
            Err(Checked::Signature(SignatureVerificationError::NoMatchingKey)) => {
                let d = self.refetch_keys(&d).await?;
                self.check_userinfo(&d, body.trim(), &sub)
            }
            other => other,
        }
        .map_err(|e| Failure::Rejected(format!("userinfo: {e}")))?;

        let extra = claims.additional_claims();
        Ok(Identity {
            issuer: self.issuer.as_str().to_string(),
            sub: sub.as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            given_name: claims.given_name().and_then(|g| g.get(None)).map(|g| g.as_str().to_string()),
            usual_name: extra.usual_name.clone(),
            siret: extra.siret.clone(),
            idp_id: extra.idp_id.clone(),
            id_token: id_token.to_string(),
        })
    }

    /// Verifies the ID token with the keys of `d`: its subject and `acr`.
    fn check_id_token(
        &self,
        d: &Discovered,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<(SubjectIdentifier, Option<String>), ClaimsVerificationError> {
        let verifier = CoreIdTokenVerifier::new_confidential_client(
            ClientId::new(self.settings.client_id.clone()),
            ClientSecret::new(self.settings.client_secret.clone()),
            self.issuer.clone(),
            d.metadata.jwks().clone(),
        )
        .set_allowed_algs(ALGORITHMS);
        let claims = id_token.claims(&verifier, nonce)?;
        Ok((claims.subject().clone(), claims.auth_context_ref().map(|a: &AuthenticationContextClass| a.to_string())))
    }

    /// Verifies the userinfo JWT with the keys of `d`: its claims, for the subject `sub`.
    fn check_userinfo(
        &self,
        d: &Discovered,
        jwt: &str,
        sub: &SubjectIdentifier,
    ) -> Result<UserInfoClaims<ProConnectClaims, CoreGenderClaim>, Checked> {
        let payload = verify_jws(jwt, d.metadata.jwks()).map_err(Checked::Signature)?;
        let claims =
            UserInfoClaims::<ProConnectClaims, CoreGenderClaim>::from_json::<std::io::Error>(&payload, Some(sub))
                .map_err(|e| Checked::Claims(error_chain(&e)))?;
        if claims.issuer() != Some(&self.issuer) {
            return Err(Checked::Claims(format!("iss {:?}", claims.issuer().map(|i| i.as_str()))));
        }
        if !claims.audiences().is_some_and(|a| a.iter().any(|a| a.as_str() == self.settings.client_id)) {
            return Err(Checked::Claims("aud is not this client".into()));
        }
        #[derive(Deserialize)]
        struct Expiry {
            exp: Option<i64>,
        }
        let expiry: Expiry = serde_json::from_slice(&payload).map_err(|e| Checked::Claims(e.to_string()))?;
        if expiry.exp.is_some_and(|exp| exp <= chrono::Utc::now().timestamp()) {
            return Err(Checked::Claims("expired".into()));
        }
        Ok(claims)
    }

    /// Where to send the browser after our session of this ID token ended: ProConnect's
    /// `end_session_endpoint` with `id_token_hint`, `state` and our `post_logout_redirect_uri`.
    /// `None` when ProConnect's metadata cannot be had or gives no such endpoint.
    pub async fn logout_url(&self, id_token: &str, state: &str) -> Option<url::Url> {
        let d = match self.metadata().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "ProConnect: log-out only here, the end-session endpoint is unknown");
                return None;
            }
        };
        let endpoint = d.metadata.additional_metadata().end_session_endpoint.clone()?;
        let id_token: CoreIdToken = id_token.parse().ok()?;
        Some(
            LogoutRequest::from(endpoint)
                .set_id_token_hint(&id_token)
                .set_state(CsrfToken::new(state.to_string()))
                .set_post_logout_redirect_uri(self.post_logout.clone())
                .http_get_url(),
        )
    }
}

use openidconnect::reqwest::header as reqwest_header;

/// Why the userinfo JWT did not verify.
#[derive(Debug, thiserror::Error)]
enum Checked {
    #[error("signature: {0}")]
    Signature(SignatureVerificationError),
    #[error("claims: {0}")]
    Claims(String),
}

/// Whether the `acr` of an ID token is one of those `asked` (any, when none was asked).
pub fn acr_accepted(asked: &[String], acr: Option<&str>) -> bool {
    asked.is_empty() || acr.is_some_and(|a| asked.iter().any(|x| x == a))
}

/// Whether an ID token failed only because no key of the JWKS has its key id.
fn unknown_key(e: &ClaimsVerificationError) -> bool {
    matches!(e, ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
}

fn rejected(what: &'static str) -> impl Fn(ClaimsVerificationError) -> Failure {
    move |e| Failure::Rejected(format!("{what}: {}", error_chain(&e)))
}

/// An error with its causes, for the log.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The JOSE header fields that decide how a JWS is checked.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
    cty: Option<String>,
}

/// Checks a compact JWS (RS256 or ES256) against `jwks` as the crate checks an ID token: the
/// key is the only one of the set usable for signatures with that algorithm and, when the
/// header names one, that key id. Its payload.
pub fn verify_jws(jwt: &str, jwks: &JsonWebKeySet<CoreJsonWebKey>) -> Result<Vec<u8>, SignatureVerificationError> {
    let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let malformed = |what: &str| SignatureVerificationError::Other(format!("malformed JWT: {what}"));
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three parts"));
    };
    let header_json = b64.decode(header).map_err(|_| malformed("header"))?;
    let jose: JoseHeader = serde_json::from_slice(&header_json).map_err(|_| malformed("header"))?;
    if jose.crit.is_some() || jose.cty.is_some() {
        return Err(SignatureVerificationError::Other("nested or critical JWT headers are not supported".into()));
    }
    let alg = match jose.alg.as_str() {
        "RS256" => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        "ES256" => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        other => return Err(SignatureVerificationError::DisallowedAlg(other.to_string())),
    };
    let kid = jose.kid.map(JsonWebKeyId::new);
    let usable: Vec<&CoreJsonWebKey> = jwks
        .keys()
        .iter()
        .filter(|k| kid.is_none() || k.key_id() == kid.as_ref())
        .filter(|k| k.key_use().is_none_or(|u| u.allows_signature()))
        .filter(|k| alg.key_type().as_ref() == Some(k.key_type()))
        .filter(|k| match k.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Algorithm(a) => *a == alg,
            JsonWebKeyAlgorithm::Unsupported => false,
        })
        .collect();
    let key = match usable.as_slice() {
        [] => return Err(SignatureVerificationError::NoMatchingKey),
        [one] => *one,
        _ => return Err(SignatureVerificationError::AmbiguousKeyId(format!("{} keys fit", usable.len()))),
    };
    let signature = b64.decode(signature).map_err(|_| malformed("signature"))?;
    key.verify_signature(&alg, format!("{header}.{payload}").as_bytes(), &signature)?;
    b64.decode(payload).map_err(|_| malformed("payload"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::core::CoreRsaPrivateSigningKey;
    use openidconnect::PrivateSigningKey;

    /// A throwaway RSA key made for these tests only.
    const RSA_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAtoyKQkXkPUyh86/p7Q83lscEUwQJWn7szglpjBPlIBaJq+OG
lxnOZ6VxZcU94W4KGURKJZCri3VuyIDPPF3tD7QZBvPqx4ixNup1o7NZlSl9RFgp
GTSbiVbnxYNeygfbRCPK32ZmRzWfENvopFLMeDeU4GK0n5O66MFbapS4Gy+6MdTj
8AsrjPSwyhZxXHEAx8TtTJBC42Ws49moesxXPW3NzUWfhJ5AWti8ryDVyOnNwjzY
7P0GO5KPYbkQQcm2l5nu4cYSXoDhEURYdlUlufU7sU7X4r79B1+xUGcOb/V9CzlW
YKUcc2jLlRMBg4+yphAOUJlkYZh2TGZh1cIOKwIDAQABAoIBAEJi+tbeJwJZ7525
EEfbXFpzdvGfyq0D8qd9Scqc45sXRyrhHC2wP113D7W0lOv6AictLA/cPF6Dru2w
1my8Nb2bv+xE4VF+NwBjJLQLQd1akMk9jHizpoq8NZ6hR2QOlmGB6MH0seZcrEPL
zZ+Q0vY3NGejzc8owPTreIzal9eelYECirAvzdaz9R4fFmk/dsZ8L4VkxxVbKluH
Jzq2BeJHIYoIP61HPEOvR73gEl4N8CoZLXeYOWKT462jdLxPMxHeCJZztQEkwB6n
F93Own/+ynJSzo6QfbU4491slHHju93eAjznJ8vz5bZpyQxHo8lB7ZvyVCyzvzG5
K99v6tECgYEA+JgJ6IGVDrIWEsmsgdGpiY+Yn1slZ3pUrBzLgjmqHyaeq6OQTebg
pFjW0HUxHtQc817omQ3eIV3D5q+JYy6Ie+C4a99HGmTgaC7uvsuwhCsdhAEKV8gB
Z2RxZe46hIyyFKX2kAWGHaT6Rti1aN/RthLDYUx01zjg3kXIbGu1mbECgYEAu/zL
POFkYlWQHf+CZJ4OORZsuCKInEL1mvh1kBKZo3iJoRQ5CoO+GQD8kw6EZDtOs23p
LkDLJ+z/anNZT2zkA2blRCsqD2BaUDay3wHhsmA9KGvhkIzzeFkrii2uskJBpLuq
DNiNaZ2UJ2F+xrPV9dH+ViHQ4xPTj0RImlEuAJsCgYAIvkgy7kPQ1YCjPoabtkUR
OoSyriD9p7bMquKZfO+30sLn5IPRyZoDDcDYahbFL86o3KCvqWYzpDmcpnXdkChq
uvehi6PTkNK3t1bcTQuzSlTqbKLxfW5XNZgrbpqOSOiGg2PNovQZnNDUpxCSVLTq
g3RtuqOtYim+h5PKBGvJsQKBgQCeOwLqxKDVMEX1KgscG/nGzXxHZTHtrWLDxVxX
H4DYmu3lenskwY0xyKXQNgjzwQPWfa4nM3yMp6y5ckv7UaF+x4402cw2UxjRqajX
kuLhXKY9rsiW/j000IGYdik0fBZ6zUcuNtyYyH1axHKMV/TBS7cz0pTbfeW2Eni2
A5yf/wKBgCgnIz9uYFYD9gXYGa5/1Wtym9MJBfaMtXIvUcfGRn+nhM+pn5ZiR+eD
zUJ0fmjDibgASxOOkrmEkcQZT/wn/k3Od9lpzMuAvZXkD1qrC4/6AYe34JKpdfaL
Z0dsny0OvR/DzuEukEIBzK1Ue4JdWCx1NxD196l21Tss378vCRii
-----END RSA PRIVATE KEY-----";

    fn key(kid: &str) -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(RSA_PEM, Some(JsonWebKeyId::new(kid.into()))).unwrap()
    }

    /// A compact JWS of `payload` with header `header`, signed RS256 by `key`.
    fn jws(key: &CoreRsaPrivateSigningKey, header: serde_json::Value, payload: &str) -> String {
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!("{}.{}", b64.encode(header.to_string()), b64.encode(payload));
        let signature = key.sign(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, input.as_bytes()).unwrap();
        format!("{input}.{}", b64.encode(signature))
    }

    fn jwks(keys: &[CoreJsonWebKey]) -> CoreJsonWebKeySet {
        JsonWebKeySet::new(keys.to_vec())
    }

    #[test]
    fn acr_is_checked_only_when_asked() {
        assert!(acr_accepted(&[], None));
        assert!(acr_accepted(&[], Some("eidas1")));
        let asked = vec!["eidas2".to_string(), "eidas3".to_string()];
        assert!(acr_accepted(&asked, Some("eidas3")));
        assert!(!acr_accepted(&asked, Some("eidas1")));
        assert!(!acr_accepted(&asked, None));
    }

    #[test]
    fn a_jws_verifies_with_its_key_only() {
        let k = key("k1");
        let set = jwks(&[k.as_verification_key()]);
        let token = jws(&k, serde_json::json!({ "alg": "RS256", "kid": "k1" }), r#"{"sub":"abc"}"#);
        assert_eq!(verify_jws(&token, &set).unwrap(), br#"{"sub":"abc"}"#);
        // Without a kid, the one usable key of the set.
        let bare = jws(&k, serde_json::json!({ "alg": "RS256" }), "{}");
        assert!(verify_jws(&bare, &set).is_ok());

        // A key id the set does not hold: the caller fetches the keys again.
        let other = jws(&k, serde_json::json!({ "alg": "RS256", "kid": "k2" }), "{}");
        assert!(matches!(verify_jws(&other, &set), Err(SignatureVerificationError::NoMatchingKey)));
        // A payload changed after signing: a bad signature.
        let (h, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let tampered = format!("{h}.{}.{sig}", b64.encode(r#"{"sub":"someone else"}"#));
        assert!(matches!(verify_jws(&tampered, &set), Err(SignatureVerificationError::CryptoError(_))));
    }

    #[test]
    fn only_rs256_and_es256_and_signature_keys_are_used() {
        let k = key("k1");
        let set = jwks(&[k.as_verification_key()]);
        for alg in ["none", "HS256", "RS512", "PS256"] {
            let token = jws(&k, serde_json::json!({ "alg": alg, "kid": "k1" }), "{}");
            assert!(matches!(verify_jws(&token, &set), Err(SignatureVerificationError::DisallowedAlg(_))), "{alg}");
        }
        // An ES256 header cannot use an RSA key.
        let token = jws(&k, serde_json::json!({ "alg": "ES256", "kid": "k1" }), "{}");
        assert!(matches!(verify_jws(&token, &set), Err(SignatureVerificationError::NoMatchingKey)));
        // A key for encryption is no signature key.
        let mut enc = serde_json::to_value(k.as_verification_key()).unwrap();
        enc["use"] = "enc".into();
        let enc: CoreJsonWebKey = serde_json::from_value(enc).unwrap();
        let token = jws(&k, serde_json::json!({ "alg": "RS256", "kid": "k1" }), "{}");
        assert!(matches!(verify_jws(&token, &jwks(&[enc])), Err(SignatureVerificationError::NoMatchingKey)));
        // Two keys that fit and no kid to choose: refused rather than guessed.
        let two = jwks(&[key("a").as_verification_key(), key("b").as_verification_key()]);
        let bare = jws(&k, serde_json::json!({ "alg": "RS256" }), "{}");
        assert!(matches!(verify_jws(&bare, &two), Err(SignatureVerificationError::AmbiguousKeyId(_))));
        // Critical or nested headers, and malformed tokens.
        let crit = jws(&k, serde_json::json!({ "alg": "RS256", "kid": "k1", "crit": ["exp"] }), "{}");
        assert!(verify_jws(&crit, &set).is_err());
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(verify_jws(bad, &set).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuers_are_https_or_loopback() {
        let ok = |u: &str| acceptable_issuer(&url::Url::parse(u).unwrap());
        assert!(ok("https://auth.agentconnect.gouv.fr/api/v2"));
        assert!(ok("http://127.0.0.1:4000/api/v2"));
        assert!(ok("http://localhost:4000/api/v2"));
        assert!(!ok("http://auth.agentconnect.gouv.fr/api/v2"));
        assert!(!ok("ftp://127.0.0.1/api/v2"));
    }

    #[test]
    fn acr_goes_through_the_claims_parameter() {
        let settings = |acr: &[&str]| Settings {
            issuer: "https://auth.example.gouv.fr/api/v2".into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            acr: acr.iter().map(|a| a.to_string()).collect(),
        };
        let pc = |acr: &[&str]| ProConnect::new(settings(acr), "https://avis.example.gouv.fr").unwrap();
        assert_eq!(pc(&[]).acr_claims(), None);
        assert_eq!(
            pc(&["eidas1"]).acr_claims().unwrap(),
            r#"{"id_token":{"acr":{"essential":true,"value":"eidas1"}}}"#
        );
        assert_eq!(
            pc(&["eidas2", "eidas3"]).acr_claims().unwrap(),
            r#"{"id_token":{"acr":{"essential":true,"values":["eidas2","eidas3"]}}}"#
        );
        let p = pc(&[]);
        assert_eq!(p.redirect_uri(), "https://avis.example.gouv.fr/connexion/proconnect/retour");
        assert_eq!(p.post_logout_redirect_uri(), "https://avis.example.gouv.fr/connexion?info=deconnecte");
        assert_eq!(p.origin(), "https://auth.example.gouv.fr");
        assert!(format!("{:?}", settings(&[])).find("secret").is_none(), "the secret stays out of debug output");
    }
}
