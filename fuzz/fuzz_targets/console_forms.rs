//! Arbitrary bytes posted to the console's forms, read by its own extractor
//! (`console::pages::Fields`, the same call the handlers get) into each posted form type; then
//! the pure checks the handlers make on what was read.
//!
//! Checked beyond « never panics »: the extractor accepts a body exactly when serde_urlencoded
//! reads it and it fits in `MAX_FORM_BYTES`; a normalised e-mail address holds no control
//! character (it goes into mail headers); a folded search key holds no `LIKE` wildcard.

#![no_main]

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use widget_server::console::layout::Errors;
use widget_server::console::pages::{self, account, admin, demarches, fiche, login, porteurs, reset, signup};
use widget_server::console::MAX_FORM_BYTES;
use widget_server::search;

/// What the extractor makes of `body` as a `T`: `Some` when it was read.
fn extract<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    let req = Request::new(Body::from(body.to_vec()));
    // An in-memory body is all there at the first poll: the future never waits.
    match pages::Fields::<T>::from_request(req, &()).now_or_never() {
        Some(result) => result.ok().map(|pages::Fields(form)| form),
        None => panic!("the extractor waited on an in-memory body"),
    }
}

fuzz_target!(|body: &[u8]| {
    // Every form a console page posts.
    let signup_read = extract::<signup::SignUpForm>(body).is_some();
    extract::<signup::TokenQuery>(body);
    extract::<login::LoginForm>(body);
    extract::<reset::ForgotForm>(body);
    extract::<reset::ResetForm>(body);
    extract::<account::PasswordForm>(body);
    extract::<account::KeyForm>(body);
    extract::<account::DeleteForm>(body);
    extract::<porteurs::InviteForm>(body);
    extract::<admin::ApproveForm>(body);
    extract::<admin::DomainForm>(body);
    extract::<admin::ActivationForm>(body);
    extract::<admin::MergeForm>(body);
    extract::<fiche::FicheForm>(body);

    if let Some(form) = extract::<demarches::DemarcheForm>(body) {
        if let Some((name, administration, url, volume)) = demarches::validate(&form, &mut Errors::default()) {
            assert!((3..=200).contains(&name.chars().count()), "{name:?}");
            assert!(!administration.is_empty() && administration.chars().count() <= 200);
            assert!(url.len() <= 500);
            assert!(volume.is_none_or(|v| (0..=1_000_000_000).contains(&v)));
            let key = search::key(&name, &administration);
            assert!(!key.contains(['%', '_', '\\']), "LIKE wildcard in search key {key:?}");
            assert_eq!(key.trim(), key);
        }
    }

    // The extractor reads a body within `MAX_FORM_BYTES` exactly as serde_urlencoded does, and
    // none beyond (libFuzzer's inputs stay under 4 KiB unless `-max_len` says otherwise).
    if body.len() <= MAX_FORM_BYTES {
        assert_eq!(signup_read, serde_urlencoded::from_bytes::<signup::SignUpForm>(body).is_ok());
    } else {
        assert!(!signup_read, "a body over the limit was read");
    }

    // What the handlers do with single values: addresses, domains, free text.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    for (_, value) in &pairs {
        if let Ok(email) = pages::normalize_email(value) {
            assert!(email.len() <= 254 && email.contains('@'));
            assert!(!email.chars().any(char::is_control), "control character in address {email:?}");
        }
        if let Some(domain) = pages::normalize_domain(value) {
            assert!(domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
        }
        let text = pages::text_field(value, 200);
        assert!(text.chars().count() <= 200 && !text.chars().any(char::is_control));
    }
});
