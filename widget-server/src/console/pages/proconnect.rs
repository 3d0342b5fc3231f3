//! « S'identifier avec ProConnect » (DESIGN §16): the button of `/connexion` and `/inscription`,
//! `GET /connexion/proconnect` (to ProConnect) and `GET /connexion/proconnect/retour` (back).
//!
//! The start sets the flow cookie ([`crate::console::cookies::Flow`]: `state`, `nonce`, where to
//! go) and sends the browser to ProConnect. The return accepts only the `state` of that cookie,
//! has the code exchanged and the tokens verified ([`crate::console::proconnect`]), then opens a
//! session as a password log-in does, in one transaction with the account's creation or link
//! ([`crate::console::store::ConsoleStore::proconnect_log_in`]). Every failure lands on
//! `/connexion?erreur=…` with a French message and creates nothing. Without `--proconnect-*`
//! both URLs are 404s and no button shows.

use axum::http::{header, HeaderMap};
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{name_field, normalize_email, Params};
use crate::console::cookies::{DEVICE_MAX_AGE, FLOW_MAX_AGE};
use crate::console::guard::{clear_cookie, cookie_value, safe_return_path, set_cookie};
use crate::console::layout::see_other;
use crate::console::proconnect::{Failure, Identity};
use crate::console::secret::{self, SecretToken};
use crate::console::store::{AccountDetails, ProConnectLink, ProConnectLogIn};
use crate::console::{Answer, Console, Ctx, Problem, Viewer};

/// ProConnect's page for agents, behind « Qu'est-ce que ProConnect ? ».
pub const ABOUT_URL: &str = "https://www.proconnect.gouv.fr/";

/// The ProConnect button and its explanation, as ProConnect asks its partners to show them
/// (an accessible button, then « Qu'est-ce que ProConnect ? » opening in a new window). A GET
/// form: it starts a flow, which changes nothing until ProConnect sends the browser back.
pub fn button(suite: Option<&str>) -> Markup {
    html! {
        div.proconnect {
            form method="get" action="/connexion/proconnect" {
                @if let Some(s) = suite { input type="hidden" name="suite" value=(safe_return_path(Some(s))); }
                button.proconnect-bouton type="submit" {
                    span.proconnect-connexion { "S'identifier avec" }
                    " "
                    span.proconnect-marque { "ProConnect" }
                }
            }
            p.proconnect-aide {
                a href=(ABOUT_URL) target="_blank" rel="noopener" title="Qu'est-ce que ProConnect\u{a0}? - nouvelle fenêtre" {
                    "Qu'est-ce que ProConnect\u{a0}?"
                }
            }
        }
    }
}

/// The French message of `/connexion?erreur=…` after a failed ProConnect log-in: only fixed
/// texts, never what a URL carried.
pub fn error_notice(code: Option<&str>) -> Markup {
    let text = match code.unwrap_or("") {
        "proconnect-refus" => Some(
            "La connexion avec ProConnect a été annulée\u{a0}: l'autorisation de transmettre vos informations n'a pas \
             été donnée. Vous pouvez recommencer, ou vous connecter avec votre adresse e-mail et votre mot de passe.",
        ),
        "proconnect-session" => Some(
            "La connexion avec ProConnect n'a pas abouti\u{a0}: elle a expiré, ou elle n'a pas été commencée depuis ce \
             navigateur. Recommencez en cliquant sur «\u{a0}S'identifier avec ProConnect\u{a0}».",
        ),
        "proconnect-echec" => Some(
            "ProConnect n'a pas pu confirmer votre identité. Recommencez\u{a0}; si le problème persiste, connectez-vous \
             avec votre adresse e-mail et votre mot de passe.",
        ),
        "proconnect-indisponible" => Some(
            "ProConnect ne répond pas pour le moment. Réessayez dans quelques instants, ou connectez-vous avec votre \
             adresse e-mail et votre mot de passe.",
        ),
        "proconnect-adresse" => Some(
            "ProConnect n'a pas transmis d'adresse e-mail valide pour votre compte\u{a0}: la connexion est impossible. \
             Connectez-vous avec votre adresse e-mail et votre mot de passe, ou contactez le support de votre \
             administration.",
        ),
        _ => None,
    };
    html! {
        @if let Some(text) = text {
            div.alerte role="alert" {
                h2 { "Connexion avec ProConnect impossible" }
                p { (text) }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct StartQuery {
    suite: Option<String>,
}

/// Sends the browser to ProConnect with a fresh `state` and `nonce`, bound to it by the flow
/// cookie.
pub async fn start_get(ctx: Ctx, Params(q): Params<StartQuery>) -> Answer {
    let c = &ctx.console;
    let Some(pc) = c.proconnect.clone() else { return Err(Problem::not_found()) };
    let suite = q.suite.as_deref().map(|s| safe_return_path(Some(s)).to_string());
    let (flow, cookie) = c.cookie_signer.new_flow(suite.as_deref(), Utc::now().timestamp());
    match pc.authorization_url(&flow.state, &flow.nonce).await {
        Ok(url) => {
            let mut res = see_other(url.as_str());
            let cookie = set_cookie(c, c.settings.cookies.proconnect, &cookie, Some(FLOW_MAX_AGE));
            res.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(res)
        }
        Err(f) => Ok(failed(c, f)),
    }
}

/// What ProConnect sends back to the redirect URI.
#[derive(Deserialize, Default)]
pub struct ReturnQuery {
    code: Option<String>,
    state: Option<String>,
    /// The issuer of the answer (RFC 9207), checked when present.
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Checks the return against this browser's flow, has the identity verified, and opens the
/// session (making or linking the account the first time).
pub async fn return_get(ctx: Ctx, headers: HeaderMap, Params(q): Params<ReturnQuery>) -> Answer {
    let c = ctx.console.clone();
    let Some(pc) = c.proconnect.clone() else { return Err(Problem::not_found()) };
    let now = Utc::now();
    let names = c.settings.cookies;
    let flow = cookie_value(&headers, names.proconnect).and_then(|v| c.cookie_signer.flow(v, now.timestamp()));
    let Some(flow) = flow else { return Ok(failed(&c, Failure::State("no flow cookie of ours"))) };
    if !q.state.as_deref().is_some_and(|s| secret::same(s, &flow.state)) {
        return Ok(failed(&c, Failure::State("state is not this browser's")));
    }
    if q.iss.as_deref().is_some_and(|iss| iss.trim_end_matches('/') != pc.issuer().trim_end_matches('/')) {
        return Ok(failed(&c, Failure::Rejected("iss of the answer is another issuer".into())));
    }
    if let Some(error) = q.error.as_deref() {
        let f = if error == "access_denied" {
            Failure::Refused
        } else {
            let description: String = q.error_description.unwrap_or_default().chars().take(200).collect();
            Failure::Rejected(format!("authorization error {error:?}: {description:?}"))
        };
        return Ok(failed(&c, f));
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return Ok(failed(&c, Failure::Rejected("no code".into())));
    };
    let identity = match pc.finish(&code, &flow.nonce).await {
        Ok(identity) => identity,
        Err(f) => return Ok(failed(&c, f)),
    };
    let Some(email) = identity.email.as_deref().and_then(|e| normalize_email(e).ok()) else {
        return Ok(failed(&c, Failure::NoEmail));
    };
    let token = SecretToken::generate();
    let login = ProConnectLogIn {
        details: details_from_claims(&identity, &email),
        issuer: identity.issuer,
        sub: identity.sub,
        idp_id: identity.idp_id.as_deref().map(|i| super::text_field(i, 100)).unwrap_or_default(),
        email: email.clone(),
        session: token.hash(),
        csrf: SecretToken::generate().expose().to_string(),
        id_token: identity.id_token,
    };
    let (account, link) = c.store.proconnect_log_in(login, now).await?;
    tracing::info!(account = account.id, how = ?link, "ProConnect log-in");
    // The browser's earlier session, if any, ends: a log-in always starts a new one.
    if let Viewer::SignedIn { token_hash, .. } = &ctx.viewer {
        c.store.delete_session(*token_hash).await?;
    }
    let to = match link {
        // Made from the claims: its owner checks the name and administration first.
        ProConnectLink::Created => "/console/compte/profil?info=proconnect-compte-cree",
        ProConnectLink::Known | ProConnectLink::Linked => safe_return_path(flow.suite.as_deref()),
    };
    let mut res = see_other(to);
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(&c, names.session, token.expose(), Some(c.settings.session_max_age)));
    let device = c.cookie_signer.new_device(&email, now.timestamp());
    h.append(header::SET_COOKIE, set_cookie(&c, names.device, &device, Some(DEVICE_MAX_AGE)));
    h.append(header::SET_COOKIE, clear_cookie(&c, names.proconnect));
    Ok(res)
}

/// A failed log-in: logged with its cause, the browser sent to `/connexion` with the French
/// message, the flow cookie removed.
fn failed(c: &Console, f: Failure) -> Response {
    match &f {
        Failure::Refused | Failure::State(_) => tracing::info!(reason = %f, "ProConnect log-in not completed"),
        Failure::Unavailable(_) | Failure::Rejected(_) | Failure::NoEmail => {
            tracing::warn!(reason = %f, "ProConnect log-in failed")
        }
    }
    let mut res = see_other(&format!("/connexion?erreur={}", f.code()));
    res.headers_mut().append(header::SET_COOKIE, clear_cookie(c, c.settings.cookies.proconnect));
    res
}

/// The name and administration of an account made from ProConnect's claims, each checked as a
/// typed one would be ([`name_field`]): `given_name usual_name`, else the address's local part
/// made readable (`camille.martin` → « Camille Martin »), else « Agent public »; `SIRET …` from a
/// 14-digit `siret`, else nothing. Both can be changed on « Mon compte ».
pub fn details_from_claims(identity: &Identity, email: &str) -> AccountDetails {
    let claimed = format!(
        "{} {}",
        identity.given_name.as_deref().unwrap_or_default(),
        identity.usual_name.as_deref().unwrap_or_default()
    );
    let local = email.split('@').next().unwrap_or_default();
    let from_address = local
        .split(['.', '_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let name = [claimed, from_address]
        .iter()
        .find_map(|n| name_field(n, 100).ok().filter(|n| n.chars().any(char::is_alphabetic)))
        .unwrap_or_else(|| "Agent public".to_string());
    let administration = identity
        .siret
        .as_deref()
        .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .filter(|s| s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()))
        .map(|s| format!("SIRET {s}"))
        .unwrap_or_default();
    AccountDetails { name, administration }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(given: Option<&str>, usual: Option<&str>, siret: Option<&str>) -> Identity {
        Identity {
            issuer: "https://auth.example.gouv.fr/api/v2".into(),
            sub: "abc".into(),
            email: Some("camille.martin@interieur.gouv.fr".into()),
            given_name: given.map(Into::into),
            usual_name: usual.map(Into::into),
            siret: siret.map(Into::into),
            idp_id: None,
            id_token: String::new(),
        }
    }

    #[test]
    fn names_come_from_the_claims_when_they_are_fit() {
        let d = details_from_claims(&identity(Some("Camille"), Some("Martin"), Some("13002526500013")), "x@y.fr");
        assert_eq!(d, AccountDetails { name: "Camille Martin".into(), administration: "SIRET 13002526500013".into() });
        let d = details_from_claims(
            &identity(Some(" Jean  Pierre "), Some("L'Écuyer"), Some("130 025 265 00013")),
            "x@y.fr",
        );
        assert_eq!(d.name, "Jean Pierre L'Écuyer");
        assert_eq!(d.administration, "SIRET 13002526500013");
    }

    #[test]
    fn unfit_claims_fall_back_on_the_address_then_a_plain_name() {
        let email = "camille.martin@interieur.gouv.fr";
        for (given, usual) in [
            (Some("=HYPERLINK(\"http://evil.example\")"), Some("Martin")),
            (Some("Voir"), Some("https://evil.example")),
            (Some("-2+3"), None),
            (None, None),
            (Some("nul\u{0}"), Some("octet")),
        ] {
            let d = details_from_claims(&identity(given, usual, None), email);
            assert_eq!(d.name, "Camille Martin", "{given:?} {usual:?}");
            assert_eq!(d.administration, "", "no siret");
        }
        let d = details_from_claims(&identity(None, None, Some("pas un siret")), "=x@exemple.fr");
        assert_eq!(d.name, "Agent public");
        assert_eq!(d.administration, "");
        assert_eq!(details_from_claims(&identity(None, None, Some("1234")), email).administration, "");
    }

    #[test]
    fn only_known_error_codes_show_a_message() {
        for code in [
            "proconnect-refus",
            "proconnect-session",
            "proconnect-echec",
            "proconnect-indisponible",
            "proconnect-adresse",
        ] {
            assert!(error_notice(Some(code)).into_string().contains("role=\"alert\""), "{code}");
        }
        assert_eq!(error_notice(Some("<script>")).into_string(), "");
        assert_eq!(error_notice(None).into_string(), "");
        for f in [
            Failure::Unavailable(String::new()),
            Failure::Refused,
            Failure::State(""),
            Failure::Rejected(String::new()),
            Failure::NoEmail,
        ] {
            assert!(!error_notice(Some(f.code())).into_string().is_empty(), "{f}");
        }
    }
}
