//! Every URL of the console, grouped by who may reach it (anyone, signed-in porteurs,
//! administrators, programs holding an API key). A reviewer sees on one screen what
//! each kind of visitor can do; the guards are layers on whole groups, never checks repeated
//! in handlers.

use std::sync::Arc;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{any, get, post};
use axum::Router;

use super::pages::{
    account, admin, admin_emails, avis, code, demarche, demarches, fiche, home, login, notifications, observatoire,
    porteurs, proconnect, profile, reset, satisfaction, signup,
};
use super::{api, guard, Console, Problem};

/// The console's router (its state is the console itself).
pub fn router(console: Arc<Console>) -> Router {
    // Anyone.
    let public = Router::new()
        .route("/", get(home::home_get))
        .route("/inscription", get(signup::signup_get).post(signup::signup_post))
        .route("/inscription/envoyee", get(signup::sent_get))
        .route("/confirmation", get(signup::confirm_get).post(signup::confirm_post))
        .route("/connexion", get(login::login_get).post(login::login_post))
        // ProConnect (DESIGN §16): 404 unless --proconnect-* are set.
        .route("/connexion/proconnect", get(proconnect::start_get))
        .route("/connexion/proconnect/retour", get(proconnect::return_get))
        .route("/mot-de-passe-oublie", get(reset::forgot_get).post(reset::forgot_post))
        .route("/mot-de-passe", get(reset::reset_get).post(reset::reset_post));

    // Signed-in porteurs (and administrators).
    let signed_in = Router::new()
        .route("/deconnexion", post(login::logout_post))
        .route("/console", get(demarches::console_get))
        .route("/console/demarches", get(demarches::search_get))
        .route("/console/demarches/nouvelle", get(demarches::new_get).post(demarches::new_post))
        .route("/console/demarches/{id}", get(demarche::demarche_get))
        .route("/console/demarches/{id}/porteur", post(demarche::claim_post))
        // The tabs below check that the viewer carries the démarche (or is an administrator).
        .route("/console/demarches/{id}/satisfaction", get(satisfaction::satisfaction_get))
        .route("/console/demarches/{id}/avis", get(avis::avis_get))
        .route("/console/demarches/{id}/avis.csv", get(avis::csv_get))
        .route("/console/demarches/{id}/avis.xlsx", get(avis::xlsx_get))
        .route("/console/demarches/{id}/code", get(code::code_get))
        .route("/console/demarches/{id}/fiche", get(fiche::fiche_get).post(fiche::fiche_post))
        .route("/console/demarches/{id}/porteurs", get(porteurs::porteurs_get))
        .route("/console/demarches/{id}/demandes/{request}/accepter", post(porteurs::accept_post))
        .route("/console/demarches/{id}/demandes/{request}/refuser", post(porteurs::refuse_post))
        .route("/console/demarches/{id}/inviter", post(porteurs::invite_post))
        .route("/console/demarches/{id}/invitations/{invite}/annuler", post(porteurs::invite_cancel_post))
        .route("/console/demarches/{id}/quitter", post(porteurs::leave_post))
        .route("/console/invitation", get(porteurs::invitation_get).post(porteurs::invitation_post))
        .route("/console/compte", get(account::account_get))
        .route("/console/compte/profil", get(profile::profile_get).post(profile::profile_post))
        .route("/console/compte/mot-de-passe", post(account::password_post))
        .route("/console/compte/cles", post(account::key_create_post))
        .route("/console/compte/cles/{id}/revoquer", post(account::key_revoke_post))
        .route("/console/compte/suppression", post(account::delete_post))
        .route(
            "/console/compte/notifications",
            get(notifications::notifications_get).post(notifications::notifications_post),
        )
        .route_layer(from_fn(guard::require_account));

    // Administrators only.
    let admin = Router::new()
        .route("/console/admin", get(admin::admin_get))
        .route("/console/admin/comptes/{id}/accepter", post(admin::approve_post))
        .route("/console/admin/comptes/{id}/refuser", post(admin::refuse_post))
        .route("/console/admin/domaines", post(admin::domain_add_post))
        .route("/console/admin/domaines/retirer", post(admin::domain_remove_post))
        .route("/console/admin/demarches/{id}/valider-volume", post(admin::approve_volume_post))
        .route("/console/admin/demarches/activation", post(admin::activation_post))
        .route("/console/admin/demarches/fusion", post(admin::merge_post))
        .route("/console/admin/demarches/{id}/porteurs/{account}/retirer", post(porteurs::remove_post))
        .route("/console/admin/courriels/{id}/renvoyer", post(admin_emails::resend_post))
        .route_layer(from_fn(guard::require_admin));

    // Programs holding an API key (`Authorization: Bearer mav_…`): JSON only, no session, no
    // CSRF (no cookie is read); a démarche the key's account does not carry is a 404.
    let api = Router::new()
        .route("/api/v1/demarches", get(api::list_get).fallback(api::method_not_allowed))
        .route("/api/v1/demarches/{id}/stats", get(api::stats_get).fallback(api::method_not_allowed))
        .route("/api/v1/demarches/{id}/avis", get(api::avis_get).fallback(api::method_not_allowed))
        .route("/api", any(api::not_found))
        .route("/api/{*rest}", any(api::not_found))
        .route_layer(from_fn_with_state(console.clone(), api::require_key));

    // Anyone, and the same bytes for everyone (DESIGN §12): no session is read and no cookie
    // set, so a CDN may keep them.
    let observatory = Router::new()
        .route("/observatoire", get(observatoire::observatoire_get))
        .route("/observatoire.csv", get(observatoire::csv_get))
        .route("/observatoire.xlsx", get(observatoire::xlsx_get))
        .route("/observatoire.json", get(observatoire::json_get))
        .route("/observatoire.schema.json", get(observatoire::schema_get))
        .route("/Demarches/{id}", get(observatoire::public_get))
        .layer(from_fn_with_state(console.clone(), guard::public_problems));

    // Anyone holding a notification's unsubscribe link, and mail clients posting to it
    // cross-site (RFC 8058 one-click): no session, and deliberately no Origin/CSRF check; the
    // token in the link is the authority, and it can only turn one kind of mail off.
    let unsubscribe = Router::new()
        .route("/desabonnement", get(notifications::unsubscribe_get).post(notifications::unsubscribe_post))
        .layer(from_fn_with_state(console.clone(), guard::public_problems));

    let with_session = Router::new()
        .merge(public)
        .merge(signed_in)
        .merge(admin)
        .merge(api)
        .fallback(|| async { Problem::not_found() })
        .method_not_allowed_fallback(|| async {
            Problem {
                link: Some(("Mes démarches", "/console")),
                ..Problem::new(
                    axum::http::StatusCode::METHOD_NOT_ALLOWED,
                    "Page à ouvrir depuis un formulaire",
                    "Cette adresse ne s'ouvre pas directement\u{a0}: elle reçoit les formulaires de l'espace porteurs.",
                )
            }
        })
        // Innermost first: the CSRF check sees the viewer that load_session found.
        .layer(from_fn_with_state(console.clone(), guard::check_origin_and_csrf))
        .layer(from_fn_with_state(console.clone(), guard::load_session));

    Router::new()
        .merge(observatory)
        .merge(unsubscribe)
        .merge(with_session)
        .layer(from_fn_with_state(console.clone(), guard::security_headers))
        .with_state(console)
}
