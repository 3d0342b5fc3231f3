//! The vote path, glued together: origin of the post, démarche, content type, body, parse and
//! validate, key, honeypot, rate limits, buffer. Each refusal is a [`Refusal`], mapped to a
//! status, a metric and a French page in one place ([`Refusal::response`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};

use crate::app::App;
use crate::catalogue::{Demarche, Lookup};
use crate::form::{self, FormView, Posted, MAX_BODY_BYTES};
use crate::http::{html, Body, BODY_READ_TIMEOUT};
use crate::metrics::Rejection;
use crate::vote::Vote;

/// `Retry-After` of a 503: the buffer frees up as soon as the next flush commits.
const BACKPRESSURE_RETRY_SECS: u64 = 5;

/// Set by browsers on every request (a page cannot set or change it): where the request comes
/// from, relative to the URL it goes to.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Whether a browser says the post comes from another site (`Sec-Fetch-Site: cross-site`) or from
/// another origin of the same site (`same-site`): a page elsewhere made its visitor vote. Our form
/// posts from our own origin (`same-origin`); `none` is a request the user made themself; older
/// browsers send no header at all, and so do programs, which could forge any value anyway: all
/// three are accepted. One header lookup, no allocation: it runs before anything else of a vote.
pub fn from_another_site(headers: &HeaderMap) -> bool {
    headers.get(SEC_FETCH_SITE).is_some_and(|v| {
        let v = v.as_bytes();
        v.eq_ignore_ascii_case(b"cross-site") || v.eq_ignore_ascii_case(b"same-site")
    })
}

/// Why a request got no vote in.
#[derive(Debug)]
pub enum Refusal {
    /// Posted from a page of another site (or of another origin of ours) by a browser: 403.
    CrossSite,
    /// Unknown, inactive or malformed démarche id, or a link key that does not verify.
    InvalidLink(Rejection),
    /// A high-volume démarche (or the target of a merged one) not yet approved: 404 of its own.
    NotYetOpen,
    UnsupportedMediaType,
    TooLarge,
    BodyTimeout,
    /// Failed validation: the form again, answers kept, one message per field.
    Invalid(Box<Posted>, Arc<Demarche>),
    RateLimited(Duration),
    Backpressure,
    /// `--journal` is on and the vote could not be made durable.
    JournalFailed,
}

impl Refusal {
    /// The metric reason.
    pub fn reason(&self) -> Rejection {
        match self {
            Refusal::CrossSite => Rejection::cross_site,
            Refusal::InvalidLink(r) => *r,
            Refusal::NotYetOpen => Rejection::not_found,
            Refusal::UnsupportedMediaType => Rejection::unsupported_media_type,
            Refusal::TooLarge => Rejection::too_large,
            Refusal::BodyTimeout => Rejection::body_timeout,
            Refusal::Invalid(..) => Rejection::invalid,
            Refusal::RateLimited(_) => Rejection::rate_limited,
            Refusal::Backpressure => Rejection::backpressure,
            Refusal::JournalFailed => Rejection::journal,
        }
    }

    /// The status and French page.
    pub fn response(self, app: &App) -> Response<Body> {
        let problem = |status, title: &str, paragraphs: &[&str]| {
            html(status, form::problem_page(&app.chrome, title, paragraphs), "no-store")
        };
        match self {
            // No link back to the form: its key would have to be signed for the id in the URL,
            // and answering a request with a valid key for any id it names would hand out the
            // keys that make links unforgeable. The citizen goes back to the démarche's button.
            Refusal::CrossSite => problem(
                StatusCode::FORBIDDEN,
                "Votre avis n'a pas été enregistré",
                &[
                    "Un avis se donne depuis le formulaire du service, et cet envoi venait d'un autre site.",
                    "Revenez à la page de la démarche et cliquez sur le bouton «\u{a0}Je donne mon avis\u{a0}»\u{a0}: \
                     le formulaire s'ouvrira et vous pourrez donner votre avis.",
                ],
            ),
            Refusal::InvalidLink(_) => problem(
                StatusCode::NOT_FOUND,
                "Ce lien d'avis n'est pas valide",
                &[
                    "Le lien que vous avez suivi est incomplet ou a été modifié.",
                    "Revenez à la page de la démarche et cliquez à nouveau sur le bouton «\u{a0}Je donne mon avis\u{a0}».",
                ],
            ),
            Refusal::NotYetOpen => problem(
                StatusCode::NOT_FOUND,
                "Ce formulaire n'est pas encore ouvert",
                &[
                    "Le formulaire d'avis de cette démarche attend la validation des administrateurs du service.",
                    "Revenez plus tard\u{a0}: vous pourrez alors donner votre avis.",
                ],
            ),
            Refusal::UnsupportedMediaType => problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Envoi non reconnu",
                &["Votre avis doit être envoyé depuis le formulaire. Revenez au formulaire et envoyez-le à nouveau."],
            ),
            Refusal::TooLarge => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Votre avis est trop long",
                &["Le formulaire reçu dépasse la taille autorisée. Raccourcissez votre commentaire et envoyez-le à nouveau."],
            ),
            Refusal::BodyTimeout => problem(
                StatusCode::REQUEST_TIMEOUT,
                "Envoi interrompu",
                &["Votre avis n'est pas arrivé en entier. Vérifiez votre connexion et envoyez-le à nouveau."],
            ),
            Refusal::Invalid(posted, demarche) => {
                let view = FormView {
                    chrome: &app.chrome,
                    demarche: &demarche,
                    key: &posted.key,
                    source: posted.source,
                    answers: &posted.answers,
                    errors: &posted.errors,
                };
                html(StatusCode::UNPROCESSABLE_ENTITY, form::form_page(&view), "no-store")
            }
            Refusal::RateLimited(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut res = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Trop d'avis envoyés",
                    &[
                        "Plusieurs avis ont été envoyés depuis votre connexion en peu de temps.",
                        "Patientez une minute avant d'envoyer à nouveau votre avis.",
                    ],
                );
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
                res
            }
            Refusal::Backpressure | Refusal::JournalFailed => {
                let mut res = problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service momentanément surchargé",
                    &[
                        "Nous recevons beaucoup d'avis en ce moment et le vôtre n'a pas pu être enregistré.",
                        "Envoyez-le à nouveau dans quelques secondes\u{a0}: vos réponses sont encore dans le formulaire.",
                    ],
                );
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(BACKPRESSURE_RETRY_SECS));
                res
            }
        }
    }
}

/// `POST /Demarches/{id}/avis`: a 303 to the thank-you page (of the démarche that got the vote:
/// the target of a merged one), or the refusal's page.
pub async fn post_vote(app: &Arc<App>, peer: SocketAddr, demarche_id: i64, req: Request<Incoming>) -> Response<Body> {
    match take_vote(app, peer, demarche_id, req).await {
        Ok(demarche_id) => {
            let mut res = Response::new(crate::http::full(bytes::Bytes::new()));
            *res.status_mut() = StatusCode::SEE_OTHER;
            let location = format!("/Demarches/{demarche_id}/merci");
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(refusal) => {
            app.metrics.rejected(refusal.reason());
            refusal.response(app)
        }
    }
}

fn is_form_content_type(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Takes a vote posted to `url_id`'s URL; the id of the démarche it counts for. The key is
/// checked against `url_id`; the vote goes to the démarche the catalogue opens for it (the target
/// of a merged one: forms rendered before the merge keep working).
async fn take_vote(app: &Arc<App>, peer: SocketAddr, url_id: i64, req: Request<Incoming>) -> Result<i64, Refusal> {
    // First: nothing of a post another site made is read, parsed or kept.
    if from_another_site(req.headers()) {
        return Err(Refusal::CrossSite);
    }
    let demarche = match app.catalogue.for_citizens(url_id) {
        Lookup::Open(d) => d,
        Lookup::AwaitingApproval => return Err(Refusal::NotYetOpen),
        Lookup::Unknown => return Err(Refusal::InvalidLink(Rejection::not_found)),
    };
    let demarche_id = demarche.id;
    if !is_form_content_type(&req) {
        return Err(Refusal::UnsupportedMediaType);
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(Refusal::TooLarge);
    }
    let client = crate::limit::client_ip(peer.ip(), req.headers(), &app.config.trusted_proxies);
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES);
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, body.collect()).await {
        Err(_) => return Err(Refusal::BodyTimeout),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(Refusal::TooLarge),
        // The connection broke mid-body: nobody is left to read an answer.
        Ok(Err(_)) => return Err(Refusal::BodyTimeout),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let mut posted = form::parse_vote(&body);
    if !app.signer.verify(url_id as u64, &posted.key) {
        return Err(Refusal::InvalidLink(Rejection::bad_key));
    }
    if posted.honeypot {
        // Answered like a success so the bot learns nothing; counted, never stored.
        app.metrics.rejected(Rejection::honeypot);
        return Ok(demarche_id);
    }
    let satisfaction = match posted.answers.satisfaction {
        Some(s) if posted.errors.is_empty() => s,
        _ => {
            if demarche_id != url_id {
                // The form comes back as the target's, posting to the target: with its key.
                posted.key = app.signer.sign(demarche_id as u64);
            }
            return Err(Refusal::Invalid(Box::new(posted), demarche));
        }
    };
    app.limits.check(client, demarche_id).map_err(Refusal::RateLimited)?;
    // Before the vote exists: the buffer, the journal and the store only ever see the scrubbed text.
    crate::privacy::scrub_comment(&mut posted.answers.commentaire);
    let vote = Vote::accept(demarche_id, posted.source, satisfaction, posted.answers);
    match &app.journal {
        None => {
            app.buffer.push(vote).map_err(|_| Refusal::Backpressure)?;
            app.metrics.accepted();
        }
        Some(_) => {
            // A vote on disk must reach the buffer even if the client goes away meanwhile (the
            // request future is then dropped): the journal write and the insert run in a task
            // of their own, which this request only waits for.
            let app = app.clone();
            tokio::spawn(async move { journal_then_buffer(&app, vote).await })
                .await
                .map_err(|_| Refusal::JournalFailed)??;
        }
    }
    Ok(demarche_id)
}

/// Reserves a place in the buffer, fsyncs the vote in the journal, then inserts it: a vote is
/// never journaled and refused. On a journal failure the place is given back.
async fn journal_then_buffer(app: &App, mut vote: Vote) -> Result<(), Refusal> {
    let journal = app.journal.as_ref().ok_or(Refusal::JournalFailed)?;
    let place = app.buffer.reserve().map_err(|_| Refusal::Backpressure)?;
    vote.journal_segment = journal.append(&vote).await.map_err(|e| {
        tracing::error!(error = %e, "vote not journaled");
        Refusal::JournalFailed
    })?;
    place.insert(vote);
    // Counted here, not by the request: the vote is accepted even if its client has gone.
    app.metrics.accepted();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(sec_fetch_site: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = sec_fetch_site {
            h.insert(SEC_FETCH_SITE, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn posts_from_other_sites_are_told_apart() {
        for other in ["cross-site", "same-site", "Cross-Site"] {
            assert!(from_another_site(&headers(Some(other))), "{other}");
        }
        for ours in [None, Some("same-origin"), Some("none"), Some("")] {
            assert!(!from_another_site(&headers(ours)), "{ours:?}");
        }
    }
}
