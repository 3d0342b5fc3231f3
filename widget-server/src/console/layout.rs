//! The console's one French layout (header with the operator's name, navigation, footer) and
//! the pieces every screen shares: field errors, notices, problem pages. Same look as the
//! citizen form (avis.css), plus console.css; no JavaScript, no inline style.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::Viewer;

/// Everything the layout needs besides the page itself.
pub struct Chrome<'a> {
    pub operator: &'a str,
    pub marianne: bool,
    pub css: [&'a str; 2],
    pub viewer: &'a Viewer,
    /// The path of the page, to mark the current navigation link.
    pub path: &'a str,
}

/// The whole page around `main`.
pub fn page(c: &Chrome, title: &str, main: Markup) -> Markup {
    let account = c.viewer.account();
    let nav_link = |href: &'static str, text: &'static str| {
        let current = c.path == href || (href != "/console" && c.path.starts_with(href));
        html! { li { a href=(href) aria-current=[current.then_some("page")] { (text) } } }
    };
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " – " (c.operator) }
                link rel="stylesheet" href=(c.css[0]);
                link rel="stylesheet" href=(c.css[1]);
            }
            body {
                a.evitement href="#contenu" { "Aller au contenu" }
                header.entete {
                    div.conteneur.conteneur-large {
                        @if c.marianne { p.marque { "République" br; "Française" } }
                        p.service { a href="/" { (c.operator) } }
                        nav.nav aria-label="Menu principal" {
                            ul {
                                @if let Some(a) = account {
                                    (nav_link("/console", "Mes démarches"))
                                    (nav_link("/console/compte", "Mon compte"))
                                    @if a.is_admin { (nav_link("/console/admin", "Administration")) }
                                    li {
                                        form method="post" action="/deconnexion" {
                                            input type="hidden" name="csrf" value=(c.viewer.csrf());
                                            button.lien-bouton type="submit" { "Se déconnecter (" (a.name) ")" }
                                        }
                                    }
                                } @else {
                                    (nav_link("/observatoire", "Observatoire"))
                                    (nav_link("/connexion", "Se connecter"))
                                    (nav_link("/inscription", "Créer un compte"))
                                }
                            }
                        }
                    }
                }
                main #contenu .conteneur.conteneur-large { (main) }
                footer.pied {
                    div.conteneur.conteneur-large {
                        p { (c.operator) " – le bouton «\u{a0}Je donne mon avis\u{a0}» et la satisfaction des usagers des démarches en ligne." }
                        ul {
                            li { a href="/" { "Accueil" } }
                            li { a href="/observatoire" { "Observatoire" } }
                            li { a href="/observatoire.csv" { "Données ouvertes (CSV)" } }
                            li { a href="/connexion" { "Espace porteurs" } }
                        }
                    }
                }
            }
        }
    }
}

/// An instant as porteurs read it: Paris time, `23/11/2026 14:05`.
pub fn paris_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Paris).format("%d/%m/%Y %H:%M").to_string()
}

/// The same in a sentence: `23/11/2026 à 14:05`.
pub fn paris_time_a(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Paris).format("%d/%m/%Y à %H:%M").to_string()
}

/// An HTML response. Security headers and `Cache-Control: no-store` are added to every console
/// response by the router's outer layer.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut res = (status, markup.into_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    res
}

/// 303 See Other to `location` (a path of ours).
pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Messages of a form, per field, in the order of the form.
#[derive(Debug, Default)]
pub struct Errors(Vec<(&'static str, &'static str, String)>);

impl Errors {
    /// Adds a message for the field with id `field`, named `label` in the summary.
    pub fn add(&mut self, field: &'static str, label: &'static str, msg: impl Into<String>) {
        if self.get(field).is_none() {
            self.0.push((field, label, msg.into()));
        }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _, _)| *f == field).map(|(_, _, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The summary at the top of a form, each message linking to its field.
    pub fn summary(&self, heading: &str) -> Markup {
        html! {
            @if !self.is_empty() {
                div.alerte role="alert" tabindex="-1" id="erreurs" {
                    h2 { (heading) }
                    ul { @for (field, label, msg) in &self.0 { li { a href={ "#" (field) } { (label) "\u{a0}: " (msg) } } } }
                }
            }
        }
    }
}

/// A text field with its label, optional hint and error.
pub struct Input<'a> {
    pub id: &'static str,
    pub label: &'a str,
    pub kind: &'static str,
    pub value: &'a str,
    pub autocomplete: &'static str,
    pub hint: Option<&'a str>,
    pub required: bool,
}

/// What a field's control needs from its frame: whether it is in error, and the ids of its
/// hint and error for `aria-describedby`.
struct Described {
    invalid: Option<&'static str>,
    describedby: Option<String>,
}

/// The frame every field shares: label (with its required mark), hint and error tied to the
/// control that `control` draws.
fn field(
    id: &'static str,
    label: &str,
    hint: Option<&str>,
    required: bool,
    errors: &Errors,
    control: impl FnOnce(&Described) -> Markup,
) -> Markup {
    let error = errors.get(id);
    let hint_id = format!("{id}-aide");
    let err_id = format!("{id}-erreur");
    let described: Vec<&str> =
        [hint.map(|_| hint_id.as_str()), error.map(|_| err_id.as_str())].into_iter().flatten().collect();
    let d =
        Described { invalid: error.map(|_| "true"), describedby: (!described.is_empty()).then(|| described.join(" ")) };
    html! {
        div.champ.erreur-champ[error.is_some()] {
            label for=(id) { (label) @if required { "\u{a0}" span.requis aria-hidden="true" { "*" } } }
            @if let Some(h) = hint { p.indication id=(hint_id) { (h) } }
            @if let Some(m) = error { p.message-erreur id=(err_id) { (m) } }
            (control(&d))
        }
    }
}

impl Input<'_> {
    pub fn render(&self, errors: &Errors) -> Markup {
        // « numeric »: a text field that brings the numeric keyboard on phones (a type=number
        // field would turn « 12 000 » into an error, and spin on scroll).
        let (kind, inputmode) = if self.kind == "numeric" { ("text", Some("numeric")) } else { (self.kind, None) };
        field(self.id, self.label, self.hint, self.required, errors, |d| {
            html! {
                input type=(kind) inputmode=[inputmode] id=(self.id) name=(self.id) value=(self.value) autocomplete=(self.autocomplete)
                    required[self.required] aria-invalid=[d.invalid] aria-describedby=[d.describedby.as_deref()];
            }
        })
    }
}

/// Checks a new password typed twice (fields `mot_de_passe` and `confirmation`, the first named
/// `label` in the summary), adding the French messages to `errors`.
pub fn check_new_password(password: &str, confirmation: &str, label: &'static str, errors: &mut Errors) {
    if let Err(m) = super::password::check_new(password) {
        errors.add("mot_de_passe", label, m);
    } else if confirmation != password {
        errors.add("confirmation", "Confirmation", "Les deux mots de passe ne sont pas identiques.");
    }
}

/// A source label as porteurs read it: the default `button` (the value stored, and rewritten by
/// demarches-simplifiees.fr) is « Bouton »; other labels are the porteurs' own.
pub fn source_label(source: &str) -> &str {
    if source == snippet::DEFAULT_SOURCE {
        "Bouton"
    } else {
        source
    }
}

/// A labelled multi-line text field, with its hint and error tied to it like [`Input`]'s.
pub struct TextArea<'a> {
    pub id: &'static str,
    pub label: &'a str,
    pub value: &'a str,
    pub rows: u8,
    pub hint: Option<&'a str>,
    pub required: bool,
}

impl TextArea<'_> {
    pub fn render(&self, errors: &Errors) -> Markup {
        field(self.id, self.label, self.hint, self.required, errors, |d| {
            html! {
                textarea id=(self.id) name=(self.id) rows=(self.rows) required[self.required]
                    aria-invalid=[d.invalid] aria-describedby=[d.describedby.as_deref()] { (self.value) }
            }
        })
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A notice shown after a redirect (`?info=…`): only fixed texts, never what a URL carried.
pub fn notice(code: Option<&str>) -> Markup {
    let text = match code.unwrap_or("") {
        "inscription" => Some(("info", "Si cette adresse peut recevoir des e-mails, un message vient de lui être envoyé. Ouvrez le lien qu'il contient (valable 24\u{a0}heures) pour confirmer votre adresse.")),
        "adresse-confirmee" => Some(("succes", "Votre adresse e-mail est confirmée et votre compte est actif. Vous pouvez vous connecter.")),
        "deconnecte" => Some(("succes", "Vous êtes déconnecté.")),
        "lien-envoye" => Some(("info", "Si un compte existe pour cette adresse, un e-mail vient de lui être envoyé avec un lien pour choisir un nouveau mot de passe (valable 2\u{a0}heures).")),
        "mot-de-passe-change" => Some(("succes", "Votre mot de passe a été changé. Vos autres sessions ont été fermées et les liens de réinitialisation envoyés avant ne fonctionnent plus.")),
        "mot-de-passe-reinitialise" => Some(("succes", "Votre mot de passe a été changé. Toutes les sessions de votre compte ont été fermées et ses clés d'API révoquées. Connectez-vous avec le nouveau mot de passe.")),
        "session-expiree" => Some(("info", "Votre session a expiré. Connectez-vous à nouveau.")),
        "compte-supprime" => Some(("succes", "Votre compte a été supprimé.")),
        "cle-revoquee" => Some(("succes", "La clé d'API est révoquée\u{a0}: elle ne donne plus accès à l'API.")),
        "compte-accepte" => Some(("succes", "Le compte a été validé et son titulaire prévenu par e-mail.")),
        "compte-refuse" => Some(("succes", "La demande a été refusée et son auteur prévenu par e-mail.")),
        "domaine-ajoute" => Some(("succes", "Le domaine a été ajouté à la liste.")),
        "domaine-retire" => Some(("succes", "Le domaine a été retiré de la liste.")),
        "demarche-ajoutee" => Some(("succes", "La démarche a été ajoutée au catalogue et vous en êtes le porteur. Générez maintenant le code du bouton.")),
        "porteur" => Some(("succes", "Vous êtes porteur de cette démarche.")),
        "demande-envoyee" => Some(("info", "Votre demande a été transmise aux porteurs de la démarche ou, s'il n'y en a plus, aux administrateurs. Vous recevrez un e-mail dès qu'elle aura reçu une réponse.")),
        "invitation-annulee" => Some(("succes", "L'invitation est annulée\u{a0}: son lien ne fonctionne plus.")),
        "demande-acceptee" => Some(("succes", "La demande a été acceptée et son auteur prévenu par e-mail.")),
        "demande-refusee" => Some(("succes", "La demande a été refusée et son auteur prévenu par e-mail.")),
        "invitation-envoyee" => Some(("succes", "L'invitation a été envoyée.")),
        "porteur-retire" => Some(("succes", "Le porteur a été retiré de la démarche.")),
        "demarche-quittee" => Some(("succes", "Vous ne portez plus cette démarche.")),
        "notifications-enregistrees" => Some(("succes", "Vos choix de notifications sont enregistrés.")),
        "fiche-enregistree" => Some(("succes", "La fiche a été enregistrée.")),
        "volume-valide" => Some(("succes", "La démarche à fort volume est validée\u{a0}: son bouton est ouvert.")),
        "demarche-desactivee" => Some(("succes", "La démarche est désactivée\u{a0}: son formulaire n'accepte plus d'avis.")),
        "demarche-activee" => Some(("succes", "La démarche est de nouveau active.")),
        "demarches-fusionnees" => Some(("succes", "Les démarches ont été fusionnées.")),
        _ => None,
    };
    html! {
        @if let Some((class, text)) = text { div class=(class) role="status" { p { (text) } } }
    }
}
