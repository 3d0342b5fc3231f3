//! The avis form: parsing and validation of a posted vote (pure functions, benchable), and the
//! French pages citizens see (form, thank-you, problems), rendered with maud.
//!
//! Pages hold no per-visitor data except a re-rendered form, so they are cacheable; none has
//! JavaScript or an external reference, and the form with its CSS stays under 10 kB.

use std::borrow::Cow;

use maud::{html, Markup, DOCTYPE};

use crate::catalogue::{Demarche, PrivacyNotice};
use crate::vote::{aide_bit, Answers, Level, Question, Source, AIDE, MAX_COMMENT_CHARS};

/// Name of the honeypot field: hidden from people, tempting for bots.
pub const HONEYPOT: &str = "site_web";

/// Largest accepted vote body. DESIGN §6 says 8 KiB, but a legal comment (2,000 characters of up
/// to 4 UTF-8 bytes, each percent-encoded as 3 bytes) can take 24,000 bytes: 8 KiB would answer
/// 413 to a real citizen writing in accented French and lose their text. 25 KiB admits every
/// legal form and still bounds what a request can make us read.
pub const MAX_BODY_BYTES: usize = 25 * 1024;

/// A form field that can carry an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Satisfaction,
    Facilite,
    Clarte,
    Aide,
    Commentaire,
}

impl Field {
    /// The `id` of the element an error summary links to.
    fn anchor(self) -> &'static str {
        match self {
            Field::Satisfaction => "satisfaction-bien",
            Field::Facilite => "facilite-facile",
            Field::Clarte => "clarte-clair",
            Field::Aide => "aide-aucune",
            Field::Commentaire => "commentaire",
        }
    }

    /// How the error summary names the question.
    fn label(self) -> &'static str {
        match self {
            Field::Satisfaction => "Votre avis général",
            Field::Facilite => "Facilité de la démarche",
            Field::Clarte => "Clarté du langage",
            Field::Aide => "Aide reçue",
            Field::Commentaire => "Commentaire",
        }
    }

    fn question(q: Question) -> Field {
        match q {
            Question::Satisfaction => Field::Satisfaction,
            Question::Facilite => Field::Facilite,
            Question::Clarte => Field::Clarte,
        }
    }
}

/// Messages per field, in the order of the form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(Field, Cow<'static, str>)>);

impl FieldErrors {
    /// No error at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message for `field`, if any.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_ref())
    }

    fn add(&mut self, field: Field, msg: impl Into<Cow<'static, str>>) {
        if self.get(field).is_none() {
            self.0.push((field, msg.into()));
        }
    }

    fn sorted(mut self) -> Self {
        self.0.sort_by_key(|(f, _)| *f as u8);
        self
    }

    /// Iterates over (field, message).
    pub fn iter(&self) -> impl Iterator<Item = (Field, &str)> {
        self.0.iter().map(|(f, m)| (*f, m.as_ref()))
    }
}

/// A posted form, parsed. `errors` empty means `answers.satisfaction` is set and every value
/// is valid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Posted {
    /// The link key carried by the form (verified by the caller).
    pub key: String,
    /// The `nd_source` label; the default when missing or invalid (never the citizen's fault).
    pub source: Source,
    /// The honeypot was filled: a bot.
    pub honeypot: bool,
    /// What was answered, kept as far as possible even when invalid, to re-render the form.
    pub answers: Answers,
    pub errors: FieldErrors,
}

/// Parses and validates a posted vote body (`application/x-www-form-urlencoded`).
///
/// Never fails: every problem becomes a French message tied to a field, and whatever could be
/// understood is kept so the citizen does not answer again. Unknown fields are ignored.
pub fn parse_vote(body: &[u8]) -> Posted {
    let mut posted = Posted::default();
    // serde_urlencoded replaces invalid UTF-8 silently; check first, on the decoded bytes
    // (separators are ASCII, so decoding the whole body at once is the same as per field).
    let utf8_ok = percent_encoding::percent_decode(body).decode_utf8().is_ok();
    let pairs: Vec<(Cow<str>, Cow<str>)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut seen_single = [false; 3];
    let mut comment_seen = false;
    for (name, value) in &pairs {
        match name.as_ref() {
            "key" => posted.key = value.chars().take(64).collect(),
            "nd_source" => posted.source = Source::new(value).unwrap_or_default(),
            HONEYPOT => posted.honeypot |= !value.trim().is_empty(),
            "aide" => match aide_bit(value) {
                Some(bit) => posted.answers.aide |= bit,
                None => posted.errors.add(Field::Aide, "Choisissez parmi les réponses proposées."),
            },
            "commentaire" => {
                if comment_seen {
                    posted.errors.add(Field::Commentaire, "Le commentaire a été envoyé deux fois.");
                    continue;
                }
                comment_seen = true;
                let text = clean_comment(value);
                let chars = text.chars().count();
                if chars > MAX_COMMENT_CHARS {
                    posted.errors.add(
                        Field::Commentaire,
                        format!(
                            "Votre commentaire compte {chars} caractères\u{a0}: raccourcissez-le à {} caractères au maximum.",
                            "2 000"
                        ),
                    );
                }
                posted.answers.commentaire = (!text.is_empty()).then(|| text.into_boxed_str());
            }
            field => {
                let Some((i, q)) = [Question::Satisfaction, Question::Facilite, Question::Clarte]
                    .into_iter()
                    .enumerate()
                    .find(|(_, q)| q.field() == field)
                else {
                    continue;
                };
                // An empty value is no answer (a required one is then reported missing).
                if value.is_empty() {
                    continue;
                }
                let slot = match q {
                    Question::Satisfaction => &mut posted.answers.satisfaction,
                    Question::Facilite => &mut posted.answers.facilite,
                    Question::Clarte => &mut posted.answers.clarte,
                };
                if seen_single[i] {
                    posted.errors.add(Field::question(q), "Choisissez une seule réponse.");
                    continue;
                }
                seen_single[i] = true;
                match q.parse(value) {
                    Some(level) => *slot = Some(level),
                    None => posted.errors.add(Field::question(q), "Choisissez une des réponses proposées."),
                }
            }
        }
    }
    if posted.answers.satisfaction.is_none() && !seen_single[0] {
        posted.errors.add(Field::Satisfaction, "Indiquez comment s'est passée la démarche.");
    }
    if !utf8_ok {
        posted.errors.add(
            Field::Commentaire,
            "Le texte reçu contient des caractères illisibles\u{a0}: vérifiez votre commentaire et envoyez-le à nouveau.",
        );
    }
    posted.errors = std::mem::take(&mut posted.errors).sorted();
    posted
}

/// Normalises a comment: CRLF to LF, control characters other than newline and tab dropped,
/// surrounding white space trimmed.
fn clean_comment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_string()
    }
}

/// The query of a form link: `key` and `nd_source` matter, `view-mode` only tells a form link
/// from the public page; `nd_mode` and anything else are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FormLink {
    /// Whether the link asks for the form: it has a `key` (even empty) or
    /// `view-mode=formulaire-avis`. Otherwise `/Demarches/{id}` is the démarche's public page
    /// (DESIGN §3, §12), and a form link that lost its key still gets the citizen's 404.
    pub wants_form: bool,
    pub key: String,
    pub source: Source,
}

/// Parses a form link's query string (never fails: missing parts stay empty).
pub fn parse_form_link(query: &str) -> FormLink {
    let mut link = FormLink::default();
    let pairs: Vec<(Cow<str>, Cow<str>)> = serde_urlencoded::from_str(query).unwrap_or_default();
    for (name, value) in pairs {
        match name.as_ref() {
            "key" => {
                link.wants_form = true;
                link.key = value.chars().take(64).collect();
            }
            "nd_source" => link.source = Source::new(&value).unwrap_or_default(),
            "view-mode" => link.wants_form |= value == "formulaire-avis",
            _ => {}
        }
    }
    link
}

// ---------------------------------------------------------------------------------------------
// Pages

const SITE: &str = "Je donne mon avis";

/// What every citizen page shows around its content, the same for every démarche: the
/// operator's identity (DESIGN §13) and the stylesheet. Built once at start.
#[derive(Clone, Debug)]
pub struct Chrome {
    /// Hashed URL of avis.css.
    pub css_href: String,
    /// `--operator-name`, in every page header.
    pub operator: String,
    /// `--operator-marianne`: the « République française » block (only the State may use it).
    pub marianne: bool,
    /// The operator's privacy notice, shown on forms whose porteurs filled in none.
    pub privacy: PrivacyNotice,
    /// `--retention-months`: how long comments are kept.
    pub retention_months: u32,
}

impl Chrome {
    /// A chrome for tests and benches: operator « monavis », no Marianne.
    pub fn plain(css_href: &str) -> Chrome {
        Chrome {
            css_href: css_href.to_string(),
            operator: "monavis".into(),
            marianne: false,
            privacy: PrivacyNotice { controller: "monavis".into(), dpo: String::new() },
            retention_months: 24,
        }
    }
}

fn layout(chrome: &Chrome, title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                link rel="stylesheet" href=(chrome.css_href);
            }
            body {
                a.evitement href="#contenu" { "Aller au contenu" }
                header.entete {
                    div.conteneur {
                        @if chrome.marianne { p.marque { "République" br; "Française" } }
                        p.service { (chrome.operator) span.sous-titre { (SITE) } }
                    }
                }
                main #contenu .conteneur { (main) }
                footer.pied {
                    div.conteneur {
                        p { "Vos réponses sont anonymes\u{a0}: elles servent à améliorer cette démarche." }
                    }
                }
            }
        }
    }
}

/// The privacy notice of a form (DESIGN §13): the démarche's when its porteurs filled it in,
/// else the operator's.
fn privacy_notice(chrome: &Chrome, d: &Demarche) -> Markup {
    let notice = if d.privacy.controller.trim().is_empty() { &chrome.privacy } else { &d.privacy };
    html! {
        section.donnees aria-labelledby="donnees" {
            h2 #donnees { "Vos données" }
            p {
                "Responsable du traitement\u{a0}: " (notice.controller) "."
                @if !notice.dpo.trim().is_empty() { " Délégué à la protection des données\u{a0}: " (notice.dpo) "." }
            }
            p {
                "Ni nom, ni adresse IP, ni cookie ne sont enregistrés. Adresses e-mail, numéros de téléphone, de sécurité sociale et IBAN écrits dans le commentaire en sont retirés. Les commentaires sont effacés après "
                (chrome.retention_months) "\u{a0}mois."
            }
        }
    }
}

pub const LABELS_SATISFACTION: [&str; 3] = ["Très bien", "Moyen", "Pas bien"];
pub const LABELS_FACILITE: [&str; 3] = ["Facile", "Ni facile ni difficile", "Difficile"];
pub const LABELS_CLARTE: [&str; 3] = ["Clair", "Moyennement clair", "Pas clair"];
pub const LABELS_AIDE: [&str; 6] = [
    "Je n'ai pas eu besoin d'aide",
    "Un proche",
    "Une association",
    "Un agent (guichet, téléphone, e-mail)",
    "Internet",
    "Autre",
];

/// What the form page needs to know beyond the démarche.
pub struct FormView<'a> {
    pub chrome: &'a Chrome,
    pub demarche: &'a Demarche,
    pub key: &'a str,
    pub source: Source,
    pub answers: &'a Answers,
    pub errors: &'a FieldErrors,
}

/// The avis form, blank or re-rendered with the citizen's answers and messages.
pub fn form_page(v: &FormView) -> Markup {
    let d = v.demarche;
    let title = if v.errors.is_empty() {
        format!("{SITE} – {}", d.name)
    } else {
        format!("Erreur – {SITE} – {}", d.name)
    };
    let single = |q: Question, legend: &str, labels: [&str; 3], required: bool| {
        let field = Field::question(q);
        let chosen = match q {
            Question::Satisfaction => v.answers.satisfaction,
            Question::Facilite => v.answers.facilite,
            Question::Clarte => v.answers.clarte,
        };
        let error = v.errors.get(field);
        let err_id = format!("{}-erreur", q.field());
        html! {
            fieldset.question.erreur-champ[error.is_some()] aria-describedby=[error.map(|_| &err_id)] {
                legend { (legend) @if required { "\u{a0}" span.requis aria-hidden="true" { "*" } } }
                @if let Some(msg) = error { p.message-erreur id=(err_id) { (msg) } }
                @for level in Level::ALL {
                    @let value = q.value(level);
                    @let id = format!("{}-{}", q.field(), value);
                    div.choix {
                        input type="radio" id=(id) name=(q.field()) value=(value)
                            checked[chosen == Some(level)] required[required]
                            aria-invalid=[error.map(|_| "true")];
                        label for=(id) { (labels[level.index()]) }
                    }
                }
            }
        }
    };
    let aide_error = v.errors.get(Field::Aide);
    let comment_error = v.errors.get(Field::Commentaire);
    let main = html! {
        h1 { "Votre avis sur la démarche «\u{a0}" (d.name) "\u{a0}»" }
        @if !d.administration.is_empty() { p.administration { (d.administration) } }
        @if !v.errors.is_empty() {
            div.alerte role="alert" tabindex="-1" id="erreurs" {
                h2 { "Votre avis n'a pas pu être envoyé" }
                ul { @for (field, msg) in v.errors.iter() { li { a href={ "#" (field.anchor()) } { (field.label()) "\u{a0}: " (msg) } } } }
            }
        }
        p.mention { "Les champs marqués d'un astérisque (" span.requis { "*" } ") sont obligatoires." }
        form method="post" action={ "/Demarches/" (d.id) "/avis" } {
            input type="hidden" name="key" value=(v.key);
            input type="hidden" name="nd_source" value=(v.source.as_str());
            (single(Question::Satisfaction, "De façon générale, comment s'est passée cette démarche\u{a0}?", LABELS_SATISFACTION, true))
            (single(Question::Facilite, "La démarche était-elle facile\u{a0}?", LABELS_FACILITE, false))
            (single(Question::Clarte, "Le langage employé était-il clair\u{a0}?", LABELS_CLARTE, false))
            fieldset.question.erreur-champ[aide_error.is_some()] aria-describedby=[aide_error.map(|_| "aide-erreur")] {
                legend { "Avez-vous eu besoin d'aide\u{a0}? " span.indication { "Plusieurs réponses possibles." } }
                @if let Some(msg) = aide_error { p.message-erreur id="aide-erreur" { (msg) } }
                @for (i, value) in AIDE.iter().enumerate() {
                    @let id = format!("aide-{value}");
                    div.choix {
                        input type="checkbox" id=(id) name="aide" value=(value) checked[v.answers.aide & (1 << i) != 0];
                        label for=(id) { (LABELS_AIDE[i]) }
                    }
                }
            }
            div.question.erreur-champ[comment_error.is_some()] {
                label for="commentaire" { "Souhaitez-vous nous en dire plus\u{a0}?" }
                p.indication id="commentaire-aide" {
                    "Ne donnez aucune information personnelle (nom, adresse, numéro de dossier…). 2 000 caractères au maximum."
                }
                @if let Some(msg) = comment_error { p.message-erreur id="commentaire-erreur" { (msg) } }
                textarea id="commentaire" name="commentaire" rows="5" maxlength="2000"
                    aria-describedby=(if comment_error.is_some() { "commentaire-aide commentaire-erreur" } else { "commentaire-aide" })
                    aria-invalid=[comment_error.map(|_| "true")] {
                    @if let Some(c) = &v.answers.commentaire { (c) }
                }
            }
            div.pot aria-hidden="true" {
                label for=(HONEYPOT) { "Ne pas remplir ce champ" }
                input type="text" id=(HONEYPOT) name=(HONEYPOT) tabindex="-1" autocomplete="off";
            }
            button.bouton type="submit" { "Envoyer mon avis" }
        }
        (privacy_notice(v.chrome, d))
    };
    layout(v.chrome, &title, main)
}

/// The thank-you page.
pub fn merci_page(chrome: &Chrome, d: &Demarche) -> Markup {
    let main = html! {
        div.merci {
            h1 { "Merci pour votre avis\u{a0}!" }
            p { "Votre avis sur la démarche «\u{a0}" (d.name) "\u{a0}» a bien été enregistré." }
            p { "Il aide l'administration à simplifier ses démarches. Vous pouvez maintenant fermer cette page." }
        }
    };
    layout(chrome, &format!("Merci – {SITE}"), main)
}

/// Something went wrong that the citizen should know about: 404, 413, 429, 503…
pub fn problem_page(chrome: &Chrome, title: &str, paragraphs: &[&str]) -> Markup {
    let main = html! {
        div.probleme {
            h1 { (title) }
            @for para in paragraphs { p { (para) } }
        }
    };
    layout(chrome, &format!("{title} – {SITE}"), main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_valid_vote() {
        let p = parse_vote(
            b"key=abc&nd_source=guichet&satisfaction=pas-bien&facilite=moyen&clarte=clair&aide=proche&aide=autre\
              &aide=proche&commentaire=%C2%A0Bien+re%C3%A7u%0D%0Amerci%07+&unknown=1&site_web=",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.key, "abc");
        assert_eq!(p.source.as_str(), "guichet");
        assert!(!p.honeypot);
        assert_eq!(p.answers.satisfaction, Some(Level::Bad));
        assert_eq!(p.answers.facilite, Some(Level::Medium));
        assert_eq!(p.answers.clarte, Some(Level::Good));
        assert_eq!(p.answers.aide, 0b10_0010);
        assert_eq!(p.answers.commentaire.as_deref(), Some("Bien reçu\nmerci"), "trimmed, CRLF → LF, BEL dropped");
    }

    #[test]
    fn empty_values_are_no_answer() {
        let p = parse_vote(b"key=k&satisfaction=bien&facilite=&clarte=&commentaire=++");
        assert!(p.errors.is_empty());
        assert_eq!((p.answers.facilite, p.answers.clarte, p.answers.commentaire), (None, None, None));
        let p = parse_vote(b"key=k&satisfaction=");
        assert_eq!(p.errors.get(Field::Satisfaction), Some("Indiquez comment s'est passée la démarche."));
    }

    #[test]
    fn errors_keep_answers_and_follow_form_order() {
        let p = parse_vote(b"commentaire=x&clarte=bof&satisfaction=moyen&aide=voisin&aide=agent&nd_source=Bad%20Label");
        let fields: Vec<Field> = p.errors.iter().map(|(f, _)| f).collect();
        assert_eq!(fields, [Field::Clarte, Field::Aide]);
        assert_eq!(p.answers.satisfaction, Some(Level::Medium));
        assert_eq!(p.answers.aide, 0b1000);
        assert_eq!(p.source.as_str(), "button", "an invalid label falls back to the default");
    }

    #[test]
    fn comment_length_counts_characters() {
        let ok = format!("key=k&satisfaction=bien&commentaire={}", "%C3%A9".repeat(2000));
        assert!(parse_vote(ok.as_bytes()).errors.is_empty());
        let long = format!("key=k&satisfaction=bien&commentaire={}", "%C3%A9".repeat(2001));
        assert!(parse_vote(long.as_bytes()).errors.get(Field::Commentaire).is_some());
    }

    #[test]
    fn garbage_never_panics() {
        for body in [&b""[..], b"&&&", b"=", b"%", b"%zz", b"satisfaction=%FF", b"\xff\xfe", b"a=b=c&&=&"] {
            let p = parse_vote(body);
            assert!(!p.errors.is_empty());
        }
        assert!(parse_vote(b"key=k&satisfaction=bien&site_web=x").honeypot);
    }

    #[test]
    fn form_link_query() {
        let l = parse_form_link("view-mode=formulaire-avis&nd_source=email&nd_mode=popup&key=ABC");
        assert_eq!((l.key.as_str(), l.source.as_str(), l.wants_form), ("ABC", "email", true));
        assert!(parse_form_link("key=").wants_form, "an empty key is still a form link");
        assert!(parse_form_link("view-mode=formulaire-avis").wants_form, "a form link that lost its key");
        assert!(!parse_form_link("nd_source=email&view-mode=autre").wants_form);
        assert_eq!(parse_form_link("%%%&&=="), FormLink::default());
    }
}
