//! « Mon compte » (`/console/compte`): who I am, change my password (ending my other
//! sessions), my API keys (named, shown once right after creation, stored only as their
//! SHA-256, revocable), delete my account.

use axum::http::{header, StatusCode};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{Fields, Id, Params};
use crate::console::api::API_KEY_PREFIX;
use crate::console::guard::clear_cookie;
use crate::console::layout::{check_new_password, csrf_field, notice, paris_time_a, see_other, Errors, Input};
use crate::console::secret::{self, SecretToken};
use crate::console::store::{Account, ApiKey, AuditEntry};
use crate::console::{emails, Answer, Ctx, Problem, Viewer};

/// Longest name of a key, in characters.
pub const MAX_KEY_NAME: usize = 60;
/// Live keys an account may hold at once.
pub const MAX_LIVE_KEYS: usize = 20;

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    info: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    actuel: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    confirmation: String,
}

#[derive(Deserialize, Default)]
pub struct KeyForm {
    #[serde(default)]
    nom_cle: String,
}

#[derive(Deserialize, Default)]
pub struct DeleteForm {
    #[serde(default)]
    mot_de_passe_suppression: String,
}

/// The « Clés d'API » section: the account's keys, the creation form, and the secret of a key
/// created by this very request (shown on that one answer only).
#[derive(Default)]
struct KeysView<'a> {
    keys: Vec<ApiKey>,
    errors: Errors,
    /// The name typed, kept when the form comes back with an error.
    name: &'a str,
    /// (name, full key) of the key just created.
    created: Option<(&'a str, &'a str)>,
}

fn keys_section(csrf: &str, v: &KeysView) -> Markup {
    html! {
        section.carte #cles {
            h2 { "Clés d'API" }
            p {
                "Une clé d'API permet à un programme de lire en JSON les statistiques et les avis des démarches que vous portez. "
                "Elle donne accès aux mêmes démarches que votre compte\u{a0}: gardez-la secrète et révoquez-la dès qu'elle ne sert plus."
            }
            @if v.keys.is_empty() {
                p { "Vous n'avez encore aucune clé d'API." }
            } @else {
                div.tableau-defilant role="region" tabindex="0" aria-label="Mes clés d'API" {
                    table.tableau {
                        caption { "Mes clés d'API" }
                        thead {
                            tr {
                                th scope="col" { "Nom" }
                                th scope="col" { "Créée le" }
                                th scope="col" { "Dernière utilisation" }
                                th scope="col" { "État" }
                                th scope="col" { span.sr-only { "Action" } }
                            }
                        }
                        tbody {
                            @for k in &v.keys {
                                tr {
                                    td { (k.name) }
                                    td { (paris_time_a(k.created_at)) }
                                    td { @if let Some(t) = k.last_used_at { (paris_time_a(t)) } @else { "Jamais utilisée" } }
                                    td { @if let Some(t) = k.revoked_at { "Révoquée le " (paris_time_a(t)) } @else { "Active" } }
                                    td {
                                        @if k.revoked_at.is_none() {
                                            form method="post" action={ "/console/compte/cles/" (k.id) "/revoquer" } {
                                                (csrf_field(csrf))
                                                button.bouton-secondaire.bouton-danger type="submit" {
                                                    "Révoquer" span.sr-only { " la clé «\u{a0}" (k.name) "\u{a0}»" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Créer une clé" }
            (v.errors.summary("La clé n'a pas été créée"))
            form method="post" action="/console/compte/cles#cle-creee" novalidate {
                (csrf_field(csrf))
                (Input { id: "nom_cle", label: "Nom de la clé", kind: "text", value: v.name, autocomplete: "off",
                         hint: Some("Pour la reconnaître, par exemple «\u{a0}Tableau de bord du service\u{a0}» (60 caractères au maximum)."),
                         required: true }.render(&v.errors))
                button.bouton type="submit" { "Créer la clé" }
            }
        }
    }
}

fn account_page(
    ctx: &Ctx,
    a: &Account,
    password_errors: &Errors,
    delete_errors: &Errors,
    keys: &KeysView,
    info: Option<&str>,
) -> Markup {
    let csrf = ctx.viewer.csrf();
    html! {
        (notice(info))
        h1 { "Mon compte" }
        // A new key is shown once: at the top, full width, where the page opens (GOV.UK's
        // notification banner).
        @if let Some((name, key)) = keys.created {
            section.bandeau-succes #cle-creee role="status" aria-labelledby="cle-creee-titre" {
                h2 #cle-creee-titre { "La clé «\u{a0}" (name) "\u{a0}» a été créée" }
                p { strong { "Copiez-la maintenant\u{a0}: elle ne sera plus jamais affichée." } }
                div.champ {
                    label for="cle-secrete" { "Clé «\u{a0}" (name) "\u{a0}»" }
                    input type="text" id="cle-secrete" value=(key) readonly autocomplete="off" spellcheck="false";
                }
                p { "Envoyez-la dans l'en-tête " code { "Authorization: Bearer " (API_KEY_PREFIX) "…" } " de chaque requête." }
            }
        }
        section.carte {
            h2 { "Mes informations" }
            dl {
                dt { "Nom" } dd { (a.name) }
                dt { "Adresse e-mail" } dd { (a.email) }
                dt { "Administration" } dd { (a.administration) }
                dt { "Rôle" } dd { @if a.is_admin { "Administrateur" } @else { "Porteur" } }
            }
            p { a href="/console/compte/profil" { "Modifier mon nom ou mon administration" } }
        }
        section.carte #mot-de-passe {
            h2 { "Changer de mot de passe" }
            (password_errors.summary("Le mot de passe n'a pas été changé"))
            p { "Vos autres sessions (autres navigateurs, autres appareils) seront fermées." }
            form method="post" action="/console/compte/mot-de-passe" novalidate {
                (csrf_field(csrf))
                (Input { id: "actuel", label: "Mot de passe actuel", kind: "password", value: "", autocomplete: "current-password", hint: None, required: true }.render(password_errors))
                (Input { id: "mot_de_passe", label: "Nouveau mot de passe", kind: "password", value: "", autocomplete: "new-password",
                         hint: Some("12 caractères au minimum."), required: true }.render(password_errors))
                (Input { id: "confirmation", label: "Confirmation du nouveau mot de passe", kind: "password", value: "", autocomplete: "new-password", hint: None, required: true }.render(password_errors))
                button.bouton type="submit" { "Changer mon mot de passe" }
            }
        }
        section.carte #notifications {
            h2 { "Notifications" }
            p { "La synthèse des avis par e-mail et les alertes de vos démarches (nouveaux commentaires, baisse de satisfaction, bouton silencieux)." }
            p { a href="/console/compte/notifications" { "Choisir mes notifications" } }
        }
        (keys_section(csrf, keys))
        section.carte #suppression {
            h2 { "Supprimer mon compte" }
            (delete_errors.summary("Le compte n'a pas été supprimé"))
            p { "La suppression est définitive. Les avis des usagers sur vos démarches sont conservés." }
            form method="post" action="/console/compte/suppression" novalidate {
                (csrf_field(csrf))
                (Input { id: "mot_de_passe_suppression", label: "Mot de passe, pour confirmer", kind: "password", value: "",
                         autocomplete: "current-password", hint: None, required: true }.render(delete_errors))
                button.bouton-secondaire.bouton-danger type="submit" { "Supprimer définitivement mon compte" }
            }
        }
    }
}

/// The keys of `a`, for a page that shows no new key.
async fn keys_of(ctx: &Ctx, a: &Account) -> Result<KeysView<'static>, Problem> {
    Ok(KeysView { keys: ctx.console.store.api_keys(a.id).await?, ..KeysView::default() })
}

pub async fn account_get(ctx: Ctx, Params(q): Params<AccountQuery>) -> Answer {
    let a = ctx.account()?;
    let keys = keys_of(&ctx, a).await?;
    let main = account_page(&ctx, a, &Errors::default(), &Errors::default(), &keys, q.info.as_deref());
    Ok(ctx.render(StatusCode::OK, "Mon compte", main))
}

/// Changes the password; every other session of the account ends.
pub async fn password_post(ctx: Ctx, Fields(f): Fields<PasswordForm>) -> Answer {
    let a = ctx.account()?;
    let c = &ctx.console;
    let mut errors = Errors::default();
    if !c.passwords.verify(f.actuel, Some(a.password_hash.clone())).await {
        errors.add("actuel", "Mot de passe actuel", "Le mot de passe actuel est incorrect.");
    }
    check_new_password(&f.mot_de_passe, &f.confirmation, "Nouveau mot de passe", &mut errors);
    if !errors.is_empty() {
        let keys = keys_of(&ctx, a).await?;
        let main = account_page(&ctx, a, &errors, &Errors::default(), &keys, None);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Mon compte", main));
    }
    let hash = c.passwords.hash(f.mot_de_passe).await?;
    let keep = match &ctx.viewer {
        Viewer::SignedIn { token_hash, .. } => Some(*token_hash),
        Viewer::Anonymous { .. } => None,
    };
    let now = Utc::now();
    // Other sessions end, and a reset link mailed before (perhaps to whoever knew the old
    // password) no longer works.
    c.store.change_password(a.id, hash, keep, now).await?;
    let entry = AuditEntry {
        actor_id: Some(a.id),
        action: "account.password.change".into(),
        account_id: Some(a.id),
        demarche_id: None,
        detail: String::new(),
    };
    c.store.audit(entry, now).await?;
    c.mailer.send(&a.email, emails::password_changed(&c.settings.operator_name, &c.settings.public_url)).await?;
    Ok(see_other("/console/compte?info=mot-de-passe-change"))
}

/// The name of a new key, trimmed and without control characters, or the French message.
fn key_name(raw: &str) -> Result<String, String> {
    let name: String = raw.trim().chars().filter(|c| !c.is_control()).collect();
    let len = name.chars().count();
    if len == 0 {
        Err("Indiquez un nom pour la clé, par exemple «\u{a0}Tableau de bord du service\u{a0}».".into())
    } else if len > MAX_KEY_NAME {
        Err(format!("Le nom de la clé ne peut pas dépasser {MAX_KEY_NAME}\u{a0}caractères (il en compte {len})."))
    } else {
        Ok(name)
    }
}

/// A new key: `mav_` and 64 hex characters (256 random bits).
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", SecretToken::generate().expose())
}

/// Creates an API key and shows it on this answer only: 200, never a redirect (the secret must
/// not travel in a URL), and `no-store` keeps it out of every cache. Only its SHA-256 is stored.
pub async fn key_create_post(ctx: Ctx, Fields(f): Fields<KeyForm>) -> Answer {
    let a = ctx.account()?;
    let c = &ctx.console;
    let keys = c.store.api_keys(a.id).await?;
    let mut errors = Errors::default();
    let name = key_name(&f.nom_cle).map_err(|m| errors.add("nom_cle", "Nom de la clé", m)).ok();
    if keys.iter().filter(|k| k.revoked_at.is_none()).count() >= MAX_LIVE_KEYS {
        errors.add(
            "nom_cle",
            "Nom de la clé",
            format!(
                "Vous avez déjà {MAX_LIVE_KEYS}\u{a0}clés actives\u{a0}: révoquez-en une avant d'en créer une autre."
            ),
        );
    }
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        let view = KeysView { keys, errors, name: &f.nom_cle, created: None };
        let main = account_page(&ctx, a, &Errors::default(), &Errors::default(), &view, None);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Mon compte", main));
    };
    let key = new_api_key();
    let now = Utc::now();
    c.store.create_api_key(secret::hash(&key), a.id, name.clone(), now).await?;
    let entry = AuditEntry {
        actor_id: Some(a.id),
        action: "api_key.create".into(),
        account_id: Some(a.id),
        demarche_id: None,
        detail: name.clone(),
    };
    c.store.audit(entry, now).await?;
    let view = KeysView { keys: c.store.api_keys(a.id).await?, created: Some((&name, &key)), ..KeysView::default() };
    let main = account_page(&ctx, a, &Errors::default(), &Errors::default(), &view, None);
    Ok(ctx.render(StatusCode::OK, "Clé créée – Mon compte", main))
}

/// Revokes a key of the account (a key of another account is a 404): the very next API call
/// with it gets 401.
pub async fn key_revoke_post(ctx: Ctx, Id(id): Id) -> Answer {
    let a = ctx.account()?;
    let c = &ctx.console;
    let Some(key) = c.store.api_keys(a.id).await?.into_iter().find(|k| k.id == id) else {
        return Err(Problem { link: Some(("Mon compte", "/console/compte")), ..Problem::not_found() });
    };
    let now = Utc::now();
    if c.store.revoke_api_key(id, a.id, now).await? {
        let entry = AuditEntry {
            actor_id: Some(a.id),
            action: "api_key.revoke".into(),
            account_id: Some(a.id),
            demarche_id: None,
            detail: key.name,
        };
        c.store.audit(entry, now).await?;
    }
    Ok(see_other("/console/compte?info=cle-revoquee#cles"))
}

/// Deletes the account (password required), with its sessions.
pub async fn delete_post(ctx: Ctx, Fields(f): Fields<DeleteForm>) -> Answer {
    let a = ctx.account()?;
    let c = &ctx.console;
    if !c.passwords.verify(f.mot_de_passe_suppression, Some(a.password_hash.clone())).await {
        let mut errors = Errors::default();
        errors.add("mot_de_passe_suppression", "Mot de passe", "Le mot de passe est incorrect.");
        let keys = keys_of(&ctx, a).await?;
        let main = account_page(&ctx, a, &Errors::default(), &errors, &keys, None);
        return Ok(ctx.render(StatusCode::UNPROCESSABLE_ENTITY, "Erreur – Mon compte", main));
    }
    c.store.delete_account(a.id).await?;
    let entry = AuditEntry {
        actor_id: Some(a.id),
        action: "account.delete".into(),
        account_id: Some(a.id),
        demarche_id: None,
        detail: a.email.clone(),
    };
    c.store.audit(entry, Utc::now()).await?;
    c.mailer.send(&a.email, emails::deleted(&c.settings.operator_name)).await?;
    let mut res = see_other("/?info=compte-supprime");
    res.headers_mut().append(header::SET_COOKIE, clear_cookie(c, c.settings.cookies.session));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_hex() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_eq!(a.len(), 4 + 64);
        assert!(a.starts_with("mav_") && a[4..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn key_names_are_trimmed_and_bounded() {
        assert_eq!(key_name("  Tableau de bord  "), Ok("Tableau de bord".into()));
        assert_eq!(key_name(&"é".repeat(60)).map(|n| n.chars().count()), Ok(60));
        assert!(key_name("").is_err() && key_name(" \t ").is_err());
        assert!(key_name(&"a".repeat(61)).unwrap_err().contains("60"));
    }
}
