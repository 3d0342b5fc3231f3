//! The avis form: parsing and validation of a posted vote (pure functions, benchable), and the
//! pages citizens see (form, thank-you, problems), rendered with maud in the citizen's language
//! (DESIGN §17; every text in [`crate::form_text`]).
//!
//! Pages hold no per-visitor data except a re-rendered form, so they are cacheable (each language
//! on its own URL); none has JavaScript or an external reference, and each language's form with
//! its CSS stays under 10 kB.

use std::borrow::Cow;

use maud::{html, Markup, DOCTYPE};
use snippet::Lang;

use crate::catalogue::{Demarche, PrivacyNotice};
use crate::form_text::{self, texts, Problem, Texts};
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
    fn label(self, t: &Texts) -> &'static str {
        t.fields[self as usize]
    }

    fn question(q: Question) -> Field {
        match q {
            Question::Satisfaction => Field::Satisfaction,
            Question::Facilite => Field::Facilite,
            Question::Clarte => Field::Clarte,
        }
    }
}

/// What is wrong with a field; the page says it in the citizen's language ([`Flaw::message`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// The required question has no answer.
    Missing,
    /// Two answers to a single-choice question.
    OneOnly,
    /// A value the question does not offer.
    NotOffered,
    /// A value « aide » does not offer.
    AideNotOffered,
    CommentTwice,
    /// The comment's length in characters.
    CommentTooLong(usize),
    /// The body was not UTF-8.
    Unreadable,
}

impl Flaw {
    /// The message in the language of `t`.
    pub fn message(self, t: &Texts) -> Cow<'static, str> {
        match self {
            Flaw::Missing => t.err_missing.into(),
            Flaw::OneOnly => t.err_one_only.into(),
            Flaw::NotOffered => t.err_not_offered.into(),
            Flaw::AideNotOffered => t.err_aide_not_offered.into(),
            Flaw::CommentTwice => t.err_comment_twice.into(),
            Flaw::CommentTooLong(n) => form_text::fill(t.err_comment_too_long, "{n}", &n.to_string()).into(),
            Flaw::Unreadable => t.err_unreadable.into(),
        }
    }
}

/// What is wrong, per field, in the order of the form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(Field, Flaw)>);

impl FieldErrors {
    /// No error at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The flaw of `field`, if any.
    pub fn get(&self, field: Field) -> Option<Flaw> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| *m)
    }

    fn add(&mut self, field: Field, flaw: Flaw) {
        if self.get(field).is_none() {
            self.0.push((field, flaw));
        }
    }

    fn sorted(mut self) -> Self {
        self.0.sort_by_key(|(f, _)| *f as u8);
        self
    }

    /// Iterates over (field, flaw).
    pub fn iter(&self) -> impl Iterator<Item = (Field, Flaw)> + '_ {
        self.0.iter().copied()
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
/// Never fails: every problem becomes a [`Flaw`] tied to a field, and whatever could be
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
                None => posted.errors.add(Field::Aide, Flaw::AideNotOffered),
            },
            "commentaire" => {
                if comment_seen {
                    posted.errors.add(Field::Commentaire, Flaw::CommentTwice);
                    continue;
                }
                comment_seen = true;
                let text = clean_comment(value);
                let chars = text.chars().count();
                if chars > MAX_COMMENT_CHARS {
                    posted.errors.add(Field::Commentaire, Flaw::CommentTooLong(chars));
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
                    posted.errors.add(Field::question(q), Flaw::OneOnly);
                    continue;
                }
                seen_single[i] = true;
                match q.parse(value) {
                    Some(level) => *slot = Some(level),
                    None => posted.errors.add(Field::question(q), Flaw::NotOffered),
                }
            }
        }
    }
    if posted.answers.satisfaction.is_none() && !seen_single[0] {
        posted.errors.add(Field::Satisfaction, Flaw::Missing);
    }
    if !utf8_ok {
        posted.errors.add(Field::Commentaire, Flaw::Unreadable);
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

/// The query of a form link: `key`, `nd_source` and `lang` matter, `view-mode` only tells a form
/// link from the public page; `nd_mode` and anything else are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FormLink {
    /// Whether the link asks for the form: it has a `key` (even empty) or
    /// `view-mode=formulaire-avis`. Otherwise `/Demarches/{id}` is the démarche's public page
    /// (DESIGN §3, §12), and a form link that lost its key still gets the citizen's 404.
    pub wants_form: bool,
    pub key: String,
    pub source: Source,
    /// The form's language; French when missing or unknown.
    pub lang: Lang,
}

/// The language a citizen page's query asks for (`lang=…`); French when missing or unknown.
/// Cheap: no allocation unless the query is percent-encoded.
pub fn query_lang(query: Option<&str>) -> Lang {
    let Some(query) = query else { return Lang::Fr };
    query.split('&').rev().find_map(|pair| pair.strip_prefix("lang=")).and_then(Lang::from_code).unwrap_or_default()
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
            "lang" => link.lang = Lang::from_code(&value).unwrap_or_default(),
            _ => {}
        }
    }
    link
}

// ---------------------------------------------------------------------------------------------
// Pages

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

/// `lang="fr"` on French words inside a page in another language (the démarche's name, the
/// administration, the controller), so screen readers pronounce them as French.
fn french_inside(lang: Lang) -> Option<&'static str> {
    (lang != Lang::Fr).then_some("fr")
}

/// French text written by people (a démarche's name, a controller): as is on a French page;
/// elsewhere isolated (`bdi`, so it reads right inside Arabic) and marked French.
fn french_words(lang: Lang, text: &str) -> Markup {
    html! {
        @if lang == Lang::Fr { (text) } @else { bdi lang="fr" { (text) } }
    }
}

fn layout(chrome: &Chrome, lang: Lang, title: &str, main: Markup) -> Markup {
    let t = texts(lang);
    html! {
        (DOCTYPE)
        html lang=(lang.code()) dir=[lang.is_rtl().then_some("rtl")] {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                link rel="stylesheet" href=(chrome.css_href);
            }
            body {
                a.evitement href="#contenu" { (t.skip) }
                header.entete {
                    div.conteneur {
                        @if chrome.marianne { p.marque lang=[french_inside(lang)] { "République" br; "Française" } }
                        p.service { (chrome.operator) span.sous-titre { (t.site) } }
                    }
                }
                main #contenu .conteneur { (main) }
                footer.pied {
                    div.conteneur {
                        p { (t.footer) }
                    }
                }
            }
        }
    }
}

/// The privacy notice of a form (DESIGN §13): the démarche's when its porteurs filled it in,
/// else the operator's. Its fixed text in the citizen's language; the names as written.
fn privacy_notice(chrome: &Chrome, d: &Demarche, lang: Lang) -> Markup {
    let t = texts(lang);
    let notice = if d.privacy.controller.trim().is_empty() { &chrome.privacy } else { &d.privacy };
    html! {
        section.donnees aria-labelledby="donnees" {
            h2 #donnees { (t.privacy_title) }
            p {
                (t.privacy_controller) (french_words(lang, &notice.controller)) "."
                @if !notice.dpo.trim().is_empty() { " " (t.privacy_dpo) (french_words(lang, &notice.dpo)) "." }
            }
            p { (form_text::fill(t.privacy_text, "{months}", &chrome.retention_months.to_string())) }
        }
    }
}

/// The French answers, as the console shows them.
pub const LABELS_SATISFACTION: [&str; 3] = form_text::FR.satisfaction;
pub const LABELS_FACILITE: [&str; 3] = form_text::FR.facilite;
pub const LABELS_CLARTE: [&str; 3] = form_text::FR.clarte;
pub const LABELS_AIDE: [&str; 6] = form_text::FR.aide;

/// What the form page needs to know beyond the démarche.
pub struct FormView<'a> {
    pub chrome: &'a Chrome,
    pub demarche: &'a Demarche,
    pub key: &'a str,
    pub source: Source,
    pub lang: Lang,
    pub answers: &'a Answers,
    pub errors: &'a FieldErrors,
}

/// `?lang=xx` for a citizen page's URL, empty in French (the URLs French links always had).
/// No allocation: the vote's 303 and every language link use it.
pub fn lang_query(lang: Lang, first: bool) -> &'static str {
    const FIRST: [&str; 7] = ["", "?lang=en", "?lang=es", "?lang=de", "?lang=pt", "?lang=ar", "?lang=uk"];
    const NEXT: [&str; 7] = ["", "&lang=en", "&lang=es", "&lang=de", "&lang=pt", "&lang=ar", "&lang=uk"];
    (if first { FIRST } else { NEXT })[lang as usize]
}

/// A text with the démarche's name in it (see [`french_words`]).
fn with_name(template: &str, name: &str, lang: Lang) -> Markup {
    let (before, after) = form_text::split(template, "{name}");
    html! { (before) (french_words(lang, name)) (after) }
}

/// The row of language links at the top of the form: plain links to the same form in each
/// language (each its own cacheable URL), each language named in itself.
fn language_links(v: &FormView) -> Markup {
    let d = v.demarche;
    // `nd_source` only when not the default, which a missing one means: each byte here is paid
    // seven times in a page that must stay under 10 kB with its CSS.
    let source = (v.source != Source::default()).then(|| v.source.as_str());
    html! {
        nav.langues aria-label=(texts(v.lang).languages) {
            ul {
                @for l in Lang::ALL {
                    li {
                        // The current language is said, not linked (as GOV.UK's switcher does).
                        @if l == v.lang {
                            span lang=(l.code()) aria-current="true" { (l.native_name()) }
                        } @else {
                            a lang=(l.code()) href={ "/Demarches/" (d.id) "?key=" (v.key) @if let Some(s) = source { "&nd_source=" (s) } (lang_query(l, false)) } { (l.native_name()) }
                        }
                    }
                }
            }
        }
    }
}

/// The avis form, blank or re-rendered with the citizen's answers and messages.
pub fn form_page(v: &FormView) -> Markup {
    let d = v.demarche;
    let t = texts(v.lang);
    let title = if v.errors.is_empty() {
        format!("{} – {}", t.site, d.name)
    } else {
        format!("{} – {} – {}", t.error_prefix, t.site, d.name)
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
                @if let Some(flaw) = error { p.message-erreur id=(err_id) { (flaw.message(t)) } }
                @for level in Level::ALL {
                    @let value = q.value(level);
                    @let id = format!("{}-{}", q.field(), value);
                    p.choix {
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
    let (required_before, required_after) = form_text::split(t.required, "{*}");
    let colon = form_text::colon(v.lang);
    let main = html! {
        (language_links(v))
        h1 { (with_name(t.heading, &d.name, v.lang)) }
        @if !d.administration.is_empty() { p.administration lang=[french_inside(v.lang)] { (d.administration) } }
        @if !v.errors.is_empty() {
            div.alerte role="alert" tabindex="-1" id="erreurs" {
                h2 { (t.summary_title) }
                ul { @for (field, flaw) in v.errors.iter() { li { a href={ "#" (field.anchor()) } { (field.label(t)) (colon) (flaw.message(t)) } } } }
            }
        }
        p.mention { (required_before) span.requis { "*" } (required_after) }
        form method="post" action={ "/Demarches/" (d.id) "/avis" (lang_query(v.lang, true)) } {
            input type="hidden" name="key" value=(v.key);
            @if v.source != Source::default() { input type="hidden" name="nd_source" value=(v.source.as_str()); }
            (single(Question::Satisfaction, t.q_satisfaction, t.satisfaction, true))
            (single(Question::Facilite, t.q_facilite, t.facilite, false))
            (single(Question::Clarte, t.q_clarte, t.clarte, false))
            fieldset.question.erreur-champ[aide_error.is_some()] aria-describedby=[aide_error.map(|_| "aide-erreur")] {
                legend { (t.q_aide) " " span.indication { (t.aide_hint) } }
                @if let Some(flaw) = aide_error { p.message-erreur id="aide-erreur" { (flaw.message(t)) } }
                @for (i, value) in AIDE.iter().enumerate() {
                    @let id = format!("aide-{value}");
                    p.choix {
                        input type="checkbox" id=(id) name="aide" value=(value) checked[v.answers.aide & (1 << i) != 0];
                        label for=(id) { (t.aide[i]) }
                    }
                }
            }
            div.question.erreur-champ[comment_error.is_some()] {
                label for="commentaire" { (t.q_commentaire) }
                p.indication id="commentaire-aide" { (t.commentaire_hint) }
                @if let Some(flaw) = comment_error { p.message-erreur id="commentaire-erreur" { (flaw.message(t)) } }
                textarea id="commentaire" name="commentaire" rows="5" maxlength="2000"
                    aria-describedby=(if comment_error.is_some() { "commentaire-aide commentaire-erreur" } else { "commentaire-aide" })
                    aria-invalid=[comment_error.map(|_| "true")] {
                    @if let Some(c) = &v.answers.commentaire { (c) }
                }
            }
            div.pot aria-hidden="true" {
                label for=(HONEYPOT) { (t.honeypot) }
                input type="text" id=(HONEYPOT) name=(HONEYPOT) tabindex="-1" autocomplete="off";
            }
            button.bouton type="submit" { (t.submit) }
        }
        (privacy_notice(v.chrome, d, v.lang))
    };
    layout(v.chrome, v.lang, &title, main)
}

/// The thank-you page.
pub fn merci_page(chrome: &Chrome, d: &Demarche, lang: Lang) -> Markup {
    let t = texts(lang);
    let main = html! {
        div.merci {
            h1 { (t.merci_title) }
            p { (with_name(t.merci_saved, &d.name, lang)) }
            p { (t.merci_close) }
        }
    };
    layout(chrome, lang, &format!("{} – {}", t.merci_title_short, t.site), main)
}

/// Something went wrong that the citizen should know about: 404, 413, 429, 503…
pub fn problem_page(chrome: &Chrome, lang: Lang, problem: &Problem) -> Markup {
    let main = html! {
        div.probleme {
            h1 { (problem.title) }
            @for para in problem.paragraphs { p { (para) } }
        }
    };
    layout(chrome, lang, &format!("{} – {}", problem.title, texts(lang).site), main)
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
        assert_eq!(p.errors.get(Field::Satisfaction), Some(Flaw::Missing));
        assert_eq!(Flaw::Missing.message(texts(Lang::Fr)), "Indiquez comment s'est passée la démarche.");
        assert_eq!(
            Flaw::CommentTooLong(2345).message(texts(Lang::En)),
            "Your comment has 2345 characters. Make it 2,000 characters at most."
        );
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
        assert_eq!(parse_form_link("key=k&lang=ar").lang, Lang::Ar);
        assert_eq!(parse_form_link("key=k&lang=xx").lang, Lang::Fr, "an unknown lang gives the French form");
        assert_eq!(parse_form_link("key=k&lang=EN").lang, Lang::Fr);
    }

    #[test]
    fn lang_query_follows_the_codes() {
        for l in Lang::ALL.into_iter().skip(1) {
            assert_eq!(lang_query(l, true), format!("?lang={}", l.code()));
            assert_eq!(lang_query(l, false), format!("&lang={}", l.code()));
        }
        assert_eq!((lang_query(Lang::Fr, true), lang_query(Lang::Fr, false)), ("", ""));
    }

    #[test]
    fn query_lang_reads_the_last_lang() {
        assert_eq!(query_lang(None), Lang::Fr);
        assert_eq!(query_lang(Some("lang=uk")), Lang::Uk);
        assert_eq!(query_lang(Some("a=1&lang=es&b=2")), Lang::Es);
        assert_eq!(query_lang(Some("lang=de&lang=pt")), Lang::Pt);
        assert_eq!(query_lang(Some("xlang=de")), Lang::Fr);
        assert_eq!(query_lang(Some("lang=zz")), Lang::Fr);
    }
}
