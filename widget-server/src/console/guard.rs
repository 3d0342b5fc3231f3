//! The console's layers, outermost first:
//!
//! 1. [`security_headers`]: a strict CSP, `nosniff`, `Referrer-Policy: same-origin` (links
//!    carry single-use tokens: no other site ever sees a console URL; `no-referrer` would make
//!    browsers send `Origin: null` with every form, which layer 3 refuses) and `no-store` on
//!    every console response.
//! 2. [`load_session`]: reads the session cookie, ends idle or too old sessions, hands a
//!    [`Viewer`] to the handlers, and renders [`Problem`]s in the layout on the way back. A
//!    visitor's CSRF cookie is kept only if this server signed it; any other value is replaced.
//! 3. [`check_origin_and_csrf`]: every state-changing request must come from our own pages
//!    (`Sec-Fetch-Site`, `Origin`) and carry the CSRF token of its session (or, before log-in,
//!    of its CSRF cookie).
//! 4. [`require_account`] and [`require_admin`], on their route groups only (the API's own
//!    guard, [`super::api::require_key`], is on the API group; layers 2 and 3 let it through).

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use cookie::{Cookie, SameSite};
use maud::html;

use super::secret;
use super::{layout, Console, Problem, Viewer, MAX_FORM_BYTES};

/// `Content-Security-Policy` of console pages: our stylesheets, forms posting to ourselves,
/// images from ourselves and from the public URL (the buttons' preview), nothing else, no
/// framing. With ProConnect, forms may also lead to its origin: browsers check `form-action`
/// along the redirects that follow a form, and « Se déconnecter » of a ProConnect session ends
/// at ProConnect's end-session endpoint (as the ProConnect button's form leads to its log-in).
pub fn console_csp(public_origin: &str, proconnect_origin: Option<&str>) -> String {
    // An http:// public URL is a laptop's or a test's, reached at that same address: 'self'
    // covers it, and naming it would allow images over plain HTTP.
    let public = if public_origin.starts_with("https://") { public_origin } else { "" };
    let forms = proconnect_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' {public}; form-action 'self'{forms}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
    .replace("'self' ;", "'self';")
}

/// Layer 1.
pub async fn security_headers(State(console): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let proconnect = console.proconnect.as_ref().map(|p| p.origin());
    if let Ok(csp) = HeaderValue::from_str(&console_csp(&console.settings.public_origin, proconnect)) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, no Domain, Secure on https (what the
/// `__Host-` names of [`super::cookies::CookieNames`] require).
pub fn set_cookie(console: &Console, name: &str, value: &str, max_age: Option<std::time::Duration>) -> HeaderValue {
    let mut c = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(console.settings.secure_cookies);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age.as_secs().min(i64::MAX as u64) as i64));
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// A `Set-Cookie` that removes cookie `name`.
pub fn clear_cookie(console: &Console, name: &str) -> HeaderValue {
    set_cookie(console, name, "", Some(std::time::Duration::ZERO))
}

/// Layer 2.
pub async fn load_session(State(console): State<Arc<Console>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // The API reads no cookie and sets none: its requests carry a Bearer key instead
    // (`api::require_key`).
    if super::api::is_api_path(&path) {
        return next.run(req).await;
    }
    let mut set_cookies = Vec::new();
    let mut expired = false;
    let mut viewer = None;
    let names = console.settings.cookies;
    if let Some(token) = cookie_value(req.headers(), names.session).filter(|t| secret::well_formed(t)) {
        let hash = secret::hash(token);
        match console.store.session(hash).await {
            Ok(Some(session)) => {
                let now = Utc::now();
                let idle = (now - session.last_seen_at).to_std().unwrap_or_default();
                let age = (now - session.created_at).to_std().unwrap_or_default();
                if idle > console.settings.session_idle || age > console.settings.session_max_age {
                    expired = true;
                    if let Err(e) = console.store.delete_session(hash).await {
                        return render_problem(&console, &anonymous(String::new()), &path, Problem::from(e));
                    }
                } else {
                    // Write last use at most every minute (or a tenth of the idle time).
                    if idle > (console.settings.session_idle / 10).min(std::time::Duration::from_secs(60)) {
                        if let Err(e) = console.store.touch_session(hash, now).await {
                            tracing::warn!(error = %e, "console: cannot record session use");
                        }
                    }
                    viewer = Some(Viewer::SignedIn { session: Arc::new(session), token_hash: hash });
                }
            }
            Ok(None) => expired = true,
            Err(e) => return render_problem(&console, &anonymous(String::new()), &path, Problem::from(e)),
        }
        if expired {
            set_cookies.push(clear_cookie(&console, names.session));
        }
    }
    let viewer = match viewer {
        Some(v) => v,
        None => {
            // Only a value this server signed: one planted by someone else (well-formed or not)
            // is replaced, so a form posted with it fails the check of layer 3.
            let csrf = match cookie_value(req.headers(), names.csrf).filter(|t| console.cookie_signer.csrf_is_ours(t)) {
                Some(t) => t.to_string(),
                None => {
                    let fresh = console.cookie_signer.new_csrf();
                    set_cookies.push(set_cookie(&console, names.csrf, &fresh, None));
                    fresh
                }
            };
            Viewer::Anonymous { csrf, expired }
        }
    };
    req.extensions_mut().insert(viewer.clone());
    let mut res = next.run(req).await;
    if let Some(problem) = res.extensions_mut().remove::<Problem>() {
        res = render_problem(&console, &viewer, &path, problem);
    }
    for c in set_cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// The layer of the public pages that every visitor sees alike (the observatory): no session
/// is read and no cookie set; problems are rendered as for a visitor.
pub async fn public_problems(State(console): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut res = next.run(req).await;
    if let Some(problem) = res.extensions_mut().remove::<Problem>() {
        res = render_problem(&console, &anonymous(String::new()), &path, problem);
    }
    res
}

fn anonymous(csrf: String) -> Viewer {
    Viewer::Anonymous { csrf, expired: false }
}

/// A problem page in the layout.
pub fn render_problem(console: &Console, viewer: &Viewer, path: &str, p: Problem) -> Response {
    let main = html! {
        div.probleme {
            h1 { (p.title) }
            @for para in &p.paragraphs { p { (para) } }
            @let (text, href) = p.link.unwrap_or(("Retour à l'accueil", "/"));
            p { a href=(href) { (text) } }
        }
    };
    let mut res = layout::respond(p.status, console.page(viewer, path, p.title, main));
    if let Some(secs) = p.retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// Whether the request's `Origin` is ours: the public URL's origin, or the origin of the host
/// the browser addressed (an operator reaching the server by another name).
fn origin_is_ours(console: &Console, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let origin = origin.to_ascii_lowercase();
    if origin == console.settings.public_origin {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    match (origin.split_once("://"), host) {
        (Some(("http" | "https", authority)), Some(host)) => authority == host,
        _ => false,
    }
}

fn refused(reason: &'static str) -> Response {
    tracing::info!(reason, "console: state-changing request refused");
    Problem::new(
        StatusCode::FORBIDDEN,
        "Action refusée",
        "La vérification de sécurité de ce formulaire a échoué. Revenez à la page précédente, \
         rechargez-la, puis recommencez.",
    )
    .into_response()
}

/// Layer 3: every request that is not a read must come from one of our pages and carry the
/// CSRF token of whoever is looking. The API (Bearer keys, no cookies) is exempt.
pub async fn check_origin_and_csrf(State(console): State<Arc<Console>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || super::api::is_api_path(req.uri().path())
    {
        return next.run(req).await;
    }
    let headers = req.headers();
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin") | Some("none") => {}
        Some(_) => return refused("sec-fetch-site"),
    }
    if !origin_is_ours(&console, headers) {
        return refused("origin");
    }
    let expected = match req.extensions().get::<Viewer>() {
        // The session ended while the form was open: its token died with it. Say so, rather
        // than « action refusée ».
        Some(Viewer::Anonymous { expired: true, .. }) => return to_login(req.uri().path(), None, true, req.method()),
        Some(v) => v.csrf().to_string(),
        None => return refused("no viewer"),
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Formulaire trop volumineux",
                "Les informations envoyées dépassent la taille permise.",
            )
            .into_response()
        }
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let sent = pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
    match sent {
        Some(sent) if !expected.is_empty() && secret::same(&sent, &expected) => {}
        _ => return refused("csrf token"),
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Layer 4a: signed-in routes. Visitors go to the log-in page, which brings them back.
pub async fn require_account(req: Request, next: Next) -> Response {
    match req.extensions().get::<Viewer>() {
        Some(Viewer::SignedIn { .. }) => next.run(req).await,
        Some(Viewer::Anonymous { expired, .. }) => {
            to_login(req.uri().path(), req.uri().query(), *expired, req.method())
        }
        None => Problem::forbidden().into_response(),
    }
}

/// Layer 4b: administrator routes: 403 for porteurs.
pub async fn require_admin(req: Request, next: Next) -> Response {
    match req.extensions().get::<Viewer>() {
        Some(Viewer::SignedIn { session, .. }) if session.account.is_admin => next.run(req).await,
        Some(Viewer::SignedIn { .. }) | None => Problem::new(
            StatusCode::FORBIDDEN,
            "Accès réservé aux administrateurs",
            "Cette page est réservée aux administrateurs du service.",
        )
        .into_response(),
        Some(Viewer::Anonymous { expired, .. }) => {
            to_login(req.uri().path(), req.uri().query(), *expired, req.method())
        }
    }
}

fn to_login(path: &str, query: Option<&str>, expired: bool, method: &Method) -> Response {
    // Only a page can be come back to (with its query: an invitation link keeps its token); a
    // form post is lost with its session anyway.
    let back = (*method == Method::GET).then(|| match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    });
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(p) = &back {
        query.push(("suite", p));
    }
    if expired {
        query.push(("info", "session-expiree"));
    }
    let location = if query.is_empty() {
        "/connexion".to_string()
    } else {
        format!("/connexion?{}", serde_urlencoded::to_string(&query).unwrap_or_default())
    };
    layout::see_other(&location)
}

/// Where to go after log-in: a console path of ours, never another site.
pub fn safe_return_path(suite: Option<&str>) -> &str {
    match suite {
        Some(p)
            if (p == "/console" || p.starts_with("/console/") || p.starts_with("/console?"))
                && !p.contains("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p
        }
        _ => "/console",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_in_the_console() {
        assert_eq!(safe_return_path(Some("/console/compte")), "/console/compte");
        assert_eq!(safe_return_path(Some("/console/invitation?jeton=ab")), "/console/invitation?jeton=ab");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/console//evil",
            "/\\evil",
            "/ailleurs",
            "",
            "/console/x\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(safe_return_path(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_return_path(None), "/console");
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; monavis_session_x=2; monavis_session=abc"));
        assert_eq!(cookie_value(&h, "monavis_session"), Some("abc"));
        assert_eq!(cookie_value(&h, "b"), None);
    }
}
