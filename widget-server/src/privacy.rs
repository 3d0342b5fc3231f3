//! Personal data out of citizens' comments (DESIGN §13): e-mail addresses, phone numbers, social
//! security numbers (NIR), IBANs and bank card numbers are replaced by « [supprimé] » before a vote
//! is buffered, journaled or stored. The form already asks for no personal data; this keeps out
//! the ones people type anyway.
//!
//! [`scrub`] is pure and made for the hot path. Most comments hold no `@` and fewer than
//! [`MIN_DIGITS`] ASCII digits: they cost one byte scan and come back borrowed. Otherwise two
//! regular expressions, compiled once, run over the text (e-mails only when there is an `@`).
//! Text around what is replaced is kept byte for byte; nothing is normalised.
//!
//! What is recognised, and what is deliberately left alone:
//!
//! - **E-mail**: `local@domain.tld`, Unicode letters allowed on both sides, dots, `+`, `-`, `_`,
//!   `%` in the local part, any number of subdomains. Not recognised: obfuscated forms
//!   (« jean arobase gmail point com »), a domain without a dot (`jean@localhost`). An apostrophe
//!   ends the local part, so « l'adresse » never swallows the « l' » before an address.
//! - **French phone numbers**: `0X XX XX XX XX`, `0X XXXX XXXX`, `0XXX XX XX XX` or ten digits
//!   in a row; `+33` or `0033`, optionally `(0)` or `0`, then nine digits (`X XX XX XX XX`,
//!   `XXX XXX XXX`, `X XXXX XXXX` or in a row). Separators are a space, a dot, a dash or a non-breaking space
//!   (U+00A0, U+202F); between groups one is required, so « 01.02.2023 14:30 » (a date and a
//!   time, ten digits) is no phone number. Other countries: `+`, a country code and 8 to 12
//!   digits. Public numbers written like a phone number (« 09 69 32 39 39 ») are removed too;
//!   `0 800 123 456` (numéro vert grouping) and short numbers (« 3939 ») are kept.
//! - **NIR**: first digit 1, 2 (3, 4, 7, 8: temporary numbers), year, month 01–12 or 20–99,
//!   département (two digits, `2A`, `2B`), commune, order, optional two-digit key; groups
//!   separated or not. The key is not checked: a mistyped NIR is still one. Any other 13- or
//!   15-digit number of that shape goes too (a French EAN-13 barcode, a numéro fiscal).
//! - **IBAN**: two letters, two digits, then the account either in one run or in groups of four
//!   separated like above; any case; at least [`IBAN_MIN_DIGITS`] digits in all, so words and
//!   product codes stay. After the first group, every group holds a digit, so a short word after
//!   an IBAN is kept. The mod-97 check is not made, for the same reason as the NIR key.
//! - **Bank card**: 16 digits in four groups of four or in a row, passing the Luhn check.
//!
//! A candidate is only taken between ASCII word boundaries: digits glued to letters
//! (« Windows10 », « 0612345678abc ») stay. Dates (`01/02/2023`), times, amounts (`1 250,00 €`),
//! postcodes, years, percentages and dossier numbers shorter than ten digits are never
//! candidates; a dossier number of ten digits starting with 0 is taken for a phone number.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What replaces each piece of personal data.
pub const REDACTED: &str = "[supprimé]";

/// The fewest ASCII digits any number pattern needs (a national phone number has ten, every
/// other kind more): a comment with fewer, and no `@`, is returned as it is after one scan.
pub const MIN_DIGITS: usize = 10;

/// The fewest digits an IBAN match must hold, check digits included (Norway's IBAN, the
/// shortest, has 13; the Netherlands', with a four-letter bank code, 12).
pub const IBAN_MIN_DIGITS: usize = 12;

/// One separator between groups of digits, where `~` stands in the patterns below.
const SEP: &str = r"[\x20.\-\x{A0}\x{202F}]";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?x)
        [\p{L}\p{M}\p{N}._%+\-]+
        @
        (?: [\p{L}\p{M}\p{N}\-]+ \. )+ [\p{L}\p{M}]{2,}",
    )
});

/// Every number pattern in one expression, one pass over the text. Alternatives cannot match
/// at the same position (cards and NIRs start with other digits than phones, IBANs with
/// letters), so their order matters only for `+33` before other countries. ASCII word
/// boundaries keep the lazy DFA usable on accented text (a Unicode `\b` would not).
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        &r"(?x)
        # Bank card: four groups of four digits, or sixteen in a row (Luhn checked after).
          (?-u:\b) [0-9]{4} (?: ~[0-9]{4} ){3} (?-u:\b)
        | (?-u:\b) [0-9]{16} (?-u:\b)
        # French phone, national.
        | (?-u:\b) 0[1-9]
          (?: (?: ~[0-9]{2} ){4} | ~[0-9]{4} ~[0-9]{4} | [0-9]{2} (?: ~[0-9]{2} ){3} | [0-9]{8} ) (?-u:\b)
        # French phone, international: +33 6 12 34 56 78, +33 (0)6 …, 0033 6…, +336…
        | (?: \+ | (?-u:\b) 00 ) 33 ~? (?: \(0\) ~? | 0 )? [1-9]
          (?: (?: ~[0-9]{2} ){4} | ~[0-9]{4} ~[0-9]{4} | [0-9]{2} ~[0-9]{3} ~[0-9]{3} | [0-9]{8} ) (?-u:\b)
        # Other countries: a country code and 8 to 12 digits.
        | \+ [1-9][0-9]{0,2} (?: ~?[0-9] ){8,12} (?-u:\b)
        # NIR: sex, year, month (01-12, 20-99), département (2A, 2B in Corsica), commune, order, key.
        | (?-u:\b) [1-478] ~?[0-9]{2} ~?(?: 0[1-9] | 1[0-2] | [2-9][0-9] ) ~?(?: [0-9]{2} | 2[ABab] )
          ~?[0-9]{3} ~?[0-9]{3} (?: ~?[0-9]{2} )? (?-u:\b)
        # IBAN: in one run, or in groups of four whose later groups each hold a digit.
        | (?-u:\b) [A-Za-z]{2} [0-9]{2}
          (?: [A-Za-z0-9]{11,30}
            | ~[A-Za-z0-9]{4}
              (?: ~(?: [0-9][A-Za-z0-9]{3} | [A-Za-z][0-9][A-Za-z0-9]{2}
                    | [A-Za-z]{2}[0-9][A-Za-z0-9] | [A-Za-z]{3}[0-9] ) ){1,6}
              (?: ~[0-9][A-Za-z0-9]{0,3} )?
          ) (?-u:\b)"
            .replace('~', SEP),
    )
});

fn compile(pattern: &str) -> Regex {
    // A constant pattern, covered by the unit tests: failing here is a programming error.
    Regex::new(pattern).unwrap_or_else(|e| panic!("privacy pattern does not compile: {e}"))
}

/// `comment` with every e-mail address, phone number, NIR, IBAN and bank card number replaced by
/// [`REDACTED`]; borrowed when nothing was found.
pub fn scrub(comment: &str) -> Cow<'_, str> {
    let (mut at, mut digits) = (false, 0usize);
    for &b in comment.as_bytes() {
        at |= b == b'@';
        digits += usize::from(b.is_ascii_digit());
    }
    let mut scrubbed = None;
    if at {
        scrubbed = redact(&EMAIL, comment, |_| true);
    }
    if digits >= MIN_DIGITS {
        let current = scrubbed.as_deref().unwrap_or(comment);
        if let Some(s) = redact(&NUMBER, current, is_personal_number) {
            scrubbed = Some(s);
        }
    }
    match scrubbed {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(comment),
    }
}

/// Scrubs a vote's comment in place (see [`scrub`]); allocates only when something is replaced.
pub fn scrub_comment(comment: &mut Option<Box<str>>) {
    let Some(text) = comment else { return };
    if let Cow::Owned(clean) = scrub(text) {
        *text = clean.into_boxed_str();
    }
}

/// `text` with the matches of `re` that `accept` takes replaced; `None` when none was.
fn redact(re: &Regex, text: &str, accept: fn(&str) -> bool) -> Option<String> {
    let mut out: Option<String> = None;
    let (mut copied, mut from) = (0, 0);
    while let Some(m) = re.find_at(text, from) {
        if accept(m.as_str()) {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..m.start()]);
            out.push_str(REDACTED);
            copied = m.end();
            from = m.end();
        } else {
            // A refused candidate (sixteen digits failing Luhn, say): look again one character
            // further; `find_at` still sees the text before, so boundaries hold.
            from = m.start() + m.as_str().chars().next().map_or(1, char::len_utf8);
        }
    }
    let mut out = out?;
    out.push_str(&text[copied..]);
    Some(out)
}

/// The checks a regular expression cannot make on a [`NUMBER`] match.
fn is_personal_number(candidate: &str) -> bool {
    let digits = candidate.bytes().filter(u8::is_ascii_digit).count();
    if candidate.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return digits >= IBAN_MIN_DIGITS;
    }
    // Only a card has sixteen digits: phones have at most 14 (`0033 (0)6…`), NIRs 15.
    digits != 16 || luhn(candidate)
}

/// The Luhn check of the ASCII digits of `s`.
fn luhn(s: &str) -> bool {
    let sum: u32 = s
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            match i % 2 {
                0 => d,
                _ if d * 2 > 9 => d * 2 - 9,
                _ => d * 2,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: the comment, then what must be stored.
    fn check(cases: &[(&str, &str)]) {
        for (comment, expected) in cases {
            assert_eq!(scrub(comment), *expected, "scrubbing {comment:?}");
        }
    }

    /// A piece of personal data set in a sentence: all of it, and only it, must go.
    fn check_alone(kind: &str, items: &[&str]) {
        for item in items {
            let comment = format!("Mon {kind} : {item}, merci de me rappeler.");
            assert_eq!(
                scrub(&comment),
                format!("Mon {kind} : {REDACTED}, merci de me rappeler."),
                "{kind} {item:?} not scrubbed whole"
            );
            assert_eq!(scrub(item), REDACTED, "{kind} {item:?} alone");
        }
    }

    #[test]
    fn emails() {
        check_alone(
            "adresse",
            &[
                "jean.dupont@gmail.com",
                "marie-claire.durand+impots@orange.fr",
                "contact@mairie.saint-etienne.fr",
                "élodie.lefèvre@exemple.fr",
                "françois@société-générale.fr",
                "J.P.MARTIN@LAPOSTE.NET",
                "user_123@sub.domain.co.uk",
                "jean%test@xn--mnchen-3ya.de",
                "ünal.øre@ï.mail.example.org",
                "a@b.fr",
            ],
        );
        check(&[
            ("Écrivez-moi à toto@wanadoo.fr.", "Écrivez-moi à [supprimé]."),
            ("(mail : a.b@c.fr)", "(mail : [supprimé])"),
            ("l'adresse:jean@free.fr!", "l'adresse:[supprimé]!"),
            ("Voir l'agent@mairie.fr", "Voir l'[supprimé]"),
        ]);
    }

    #[test]
    fn french_phone_numbers() {
        check_alone(
            "numéro",
            &[
                "06 12 34 56 78",
                "06.12.34.56.78",
                "06-12-34-56-78",
                "0612345678",
                "06 1234 5678",
                "0612 34 56 78",
                "06\u{a0}12\u{a0}34\u{a0}56\u{a0}78",
                "06\u{202f}12\u{202f}34\u{202f}56\u{202f}78",
                "01 40 20 50 50",
                "09.69.32.39.39",
                "06 12.34-56 78",
                "+33 6 12 34 56 78",
                "+33 (0)6 12 34 56 78",
                "+33 (0) 6 12 34 56 78",
                "+33 06 12 34 56 78",
                "0033 6 12 34 56 78",
                "0033612345678",
                "+336 12 34 56 78",
                "+33612345678",
                "+33 612 345 678",
                "+33 6 1234 5678",
                "+33.1.40.20.50.50",
            ],
        );
        check(&[
            ("Tél.: 07 81 23 45 67.", "Tél.: [supprimé]."),
            ("appelez le 0612345678 ou le 0798765432", "appelez le [supprimé] ou le [supprimé]"),
        ]);
    }

    #[test]
    fn foreign_phone_numbers() {
        check_alone("numéro", &["+32 2 123 45 67", "+41 22 123 45 67", "+1 415 555 0123", "+49 30 12345678"]);
    }

    #[test]
    fn nir() {
        check_alone(
            "NIR",
            &[
                "1 85 05 78 006 084 36",
                "185057800608436",
                "1850578006084",
                "1 85 05 78 006 084",
                "2 69 05 2A 123 456 78",
                "2 69 05 2b 123 456 78",
                "1.85.05.78.006.084.36",
                "1-85-05-78-006-084-36",
                "1\u{a0}85\u{a0}05\u{a0}78\u{a0}006\u{a0}084\u{a0}36",
                "2 91 42 99 123 045 11",
                "7 85 05 78 006 084 36",
                "185 05 78 006 084 36",
            ],
        );
    }

    #[test]
    fn iban() {
        check_alone(
            "IBAN",
            &[
                "FR76 3000 6000 0112 3456 7890 189",
                "FR7630006000011234567890189",
                "fr76 3000 6000 0112 3456 7890 189",
                "FR76-3000-6000-0112-3456-7890-189",
                "DE89 3704 0044 0532 0130 00",
                "BE68 5390 0754 7034",
                "GB29 NWBK 6016 1331 9268 19",
                "NL91 ABNA 0417 1643 00",
                "NO93 8601 1117 947",
                "IT60 X054 2811 1010 0000 0123 456",
            ],
        );
        // A word after an IBAN is no part of it.
        check(&[("BE68 5390 0754 7034 est mon compte", "[supprimé] est mon compte")]);
    }

    #[test]
    fn bank_cards() {
        check_alone(
            "numéro",
            &["4111 1111 1111 1111", "5555-5555-5555-4444", "4012888888881881", "4970 1000 0000 0063"],
        );
        // Sixteen digits that fail Luhn: a reference, kept.
        check(&[("Référence 1234 5678 9012 3456", "Référence 1234 5678 9012 3456")]);
    }

    #[test]
    fn everything_at_once_and_the_rest_kept_byte_for_byte() {
        let comment = "Bonjour,\n\nje suis joignable à jean.dupont@gmail.com ou au 06 12 34 56 78 \
                       (NIR 1 85 05 78 006 084 36, IBAN FR76 3000 6000 0112 3456 7890 189).\n\
                       Dossier n° 12345 déposé le 01/02/2023 à 14h30 : 1 250,00 € — très long !";
        let expected = "Bonjour,\n\nje suis joignable à [supprimé] ou au [supprimé] \
                        (NIR [supprimé], IBAN [supprimé]).\n\
                        Dossier n° 12345 déposé le 01/02/2023 à 14h30 : 1 250,00 € — très long !";
        assert_eq!(scrub(comment), expected);
        // Twice is the same as once.
        assert_eq!(scrub(expected), expected);
    }

    #[test]
    fn negatives_stay_borrowed() {
        let sentences = [
            "Rendez-vous le 01/02/2023 à 14h30, tout s'est bien passé.",
            "Le 12.03.2024 14:30 j'ai enfin reçu la réponse.",
            "Le 01.02.2023 14:30 j'ai reçu un courrier, le 03.04.2023 10:15 un second.",
            "Déposé le 01-02-2023, relancé le 03-04-2023 et le 05-06-2023.",
            "J'ai payé 1 250,00 € et 35 € de frais, soit 1 285,00 € en tout.",
            "Montant : 12 345 678 € au budget 2024, contre 11 234 567 € en 2023.",
            "J'habite 12 rue de la Paix, 75015 Paris, depuis 2019 ; avant à 06000 Nice.",
            "dossier n° 12345, relancé le 05/06/2024 puis le 12/07/2024.",
            "Numéro de dossier 2023-00451, réponse en 15 jours, 2 relances.",
            "En 2022 et 2023, 85 % des démarches ont abouti en moins de 30 jours.",
            "Attente de 45 minutes au 3939, puis 20 min au 3646, 10 min au 3949.",
            "Le numéro vert 0 800 123 456 est gratuit.",
            "Horaires : 08:30-12:00 et 13:30-17:00, fermé le 14/07 et le 15/08.",
            "Le 03 04 2024 à 10 45, puis le 05 06 2024 à 11 30.",
            "Ticket du 2024-03-15, n° 00123, traité le 2024-03-18.",
            "Commune 2A004 en Corse, code postal 20000, 1 500 habitants.",
            "Taux de 4,5 % sur 12 mois pour 1 000 000 d'habitants en 2025.",
            "Cerfa n° 12100*02 rempli trois fois, version 2.10.3 du site.",
            "Contactez @monavis sur les réseaux, note 10/10 !!! @ bientôt",
            "Sous Windows10 avec IE11 et 16 Go de RAM, 1920x1080.",
            "SIRET 123 456 789 00012, SIREN 123 456 789, TVA FR 12 123456789.",
            "Les années 1985 1990 2000 2010 2020 et 2024.",
            "Horodatage 20240315143000 dans le courriel.",
            "Référence ABCD EFGH IJKL MNOP et code FR12 AB CD.",
            "Entre le 1er et le 15 du mois, 10 à 12 jours ouvrés, 3 appels, 2 courriers.",
            "Prix 19,99 €, TVA 20 %, total 23,99 €, remise 0,50 €.",
        ];
        for s in sentences {
            assert!(matches!(scrub(s), Cow::Borrowed(_)), "false positive in {s:?}: {:?}", scrub(s));
        }
    }

    #[test]
    fn prefilter_skips_comments_without_digits_or_at() {
        let long = "Très bien expliqué, mais le délai était long. ".repeat(40);
        assert!(matches!(scrub(&long), Cow::Borrowed(_)));
        assert!(matches!(scrub(""), Cow::Borrowed(_)));
        // Nine digits in all: never a candidate.
        assert!(matches!(scrub("06 12 34 56 7"), Cow::Borrowed(_)));
    }

    #[test]
    fn in_place() {
        let mut comment = Some("Mon mail: a.b@c.fr".into());
        scrub_comment(&mut comment);
        assert_eq!(comment.as_deref(), Some("Mon mail: [supprimé]"));
        let mut none = None;
        scrub_comment(&mut none);
        assert_eq!(none, None);
    }

    #[test]
    fn luhn_check() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("79927398713"));
        assert!(!luhn("4111 1111 1111 1112"));
    }
}
