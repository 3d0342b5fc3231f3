//! Signed avis links and the embed snippet of the « Je donne mon avis » button.
//!
//! This crate is tiny and pure: no I/O, no clock, no allocation beyond the strings it returns.
//! Both the hot path (`widget-server` verifies the `key` of every form link) and the console
//! (which prints the code a porteur pastes at the end of a démarche) use it, so a link signed by
//! one is always accepted by the other.
//!
//! What it is not for: storing secrets, rendering pages, or knowing which démarches exist.
//!
//! ```
//! use snippet::{KeySigner, Snippet, Style};
//! let signer = KeySigner::new(b"a server secret of at least 32 bytes!!");
//! let key = signer.sign(42);
//! assert!(signer.verify(42, &key));
//! assert!(!signer.verify(43, &key));
//! let html = Snippet::new("https://avis.example.fr", 42, Style::Bleu).html(&signer);
//! assert!(html.contains("/Demarches/42?view-mode=formulaire-avis&amp;nd_source=button&amp;key="));
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Number of hex characters in a link key (the first 16 bytes of the HMAC).
pub const KEY_HEX_LEN: usize = 32;

/// Signs and verifies the `key` parameter of avis links.
///
/// `key` = first 32 hex chars of HMAC-SHA256(secret, "demarche:{id}"). The hot path verifies a link
/// with this alone, no lookup; verification is constant-time so a forger learns nothing from timing.
#[derive(Clone)]
pub struct KeySigner {
    /// The keyed state after absorbing the secret; cloned per use so the secret is hashed once.
    mac: HmacSha256,
}

impl KeySigner {
    /// A signer for `secret` (any length; the server uses 32 random bytes).
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
        KeySigner { mac }
    }

    fn mac_for(&self, demarche_id: u64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(b"demarche:");
        let mut digits = [0u8; 20];
        mac.update(format_u64(demarche_id, &mut digits));
        mac
    }

    /// The link key of a démarche: 32 lowercase hex characters.
    pub fn sign(&self, demarche_id: u64) -> String {
        let tag = self.mac_for(demarche_id).finalize().into_bytes();
        hex::encode(&tag[..KEY_HEX_LEN / 2])
    }

    /// Whether `key` is the link key of `demarche_id`. Accepts upper- or lowercase hex; anything
    /// else (wrong length, non-hex) is rejected. The comparison of the MAC is constant-time.
    pub fn verify(&self, demarche_id: u64, key: &str) -> bool {
        let mut given = [0u8; KEY_HEX_LEN / 2];
        if key.len() != KEY_HEX_LEN || hex::decode_to_slice(key, &mut given).is_err() {
            return false;
        }
        self.mac_for(demarche_id).verify_truncated_left(&given).is_ok()
    }
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySigner(..)")
    }
}

/// Decimal digits of `n` without allocating.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The two buttons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Blue background, white text: for light pages.
    Bleu,
    /// White background, blue border and text: for dark or busy pages.
    Blanc,
}

impl Style {
    /// The name used in URLs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Bleu => "bleu",
            Style::Blanc => "blanc",
        }
    }
}

impl std::str::FromStr for Style {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bleu" => Ok(Style::Bleu),
            "blanc" => Ok(Style::Blanc),
            other => Err(format!("unknown button style {other:?} (expected bleu or blanc)")),
        }
    }
}

/// The languages of the avis form (DESIGN §17), named in links by `lang` (`fr` by default).
///
/// French is the default and the only language of the rest of the service; the others let
/// citizens who do not read French well answer. The stored answers are the same values whatever
/// the language; each avis records its `langue` ([`Lang::code`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    #[default]
    Fr,
    En,
    Es,
    De,
    Pt,
    Ar,
    Uk,
}

impl Lang {
    /// Every language, in the order of the form's language links and of the console's lists.
    pub const ALL: [Lang; 7] = [Lang::Fr, Lang::En, Lang::Es, Lang::De, Lang::Pt, Lang::Ar, Lang::Uk];

    /// The ISO 639-1 code: the `lang` of links and pages, the stored `langue`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
            Lang::Es => "es",
            Lang::De => "de",
            Lang::Pt => "pt",
            Lang::Ar => "ar",
            Lang::Uk => "uk",
        }
    }

    /// The language of `code` (exact, lower case), if the form speaks it.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The language named in itself, as the form's language links show it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Fr => "Français",
            Lang::En => "English",
            Lang::Es => "Español",
            Lang::De => "Deutsch",
            Lang::Pt => "Português",
            Lang::Ar => "العربية",
            Lang::Uk => "Українська",
        }
    }

    /// The language named in French, as porteurs read it in the console.
    pub fn french_name(self) -> &'static str {
        match self {
            Lang::Fr => "Français",
            Lang::En => "Anglais",
            Lang::Es => "Espagnol",
            Lang::De => "Allemand",
            Lang::Pt => "Portugais",
            Lang::Ar => "Arabe",
            Lang::Uk => "Ukrainien",
        }
    }

    /// Written right to left.
    pub fn is_rtl(self) -> bool {
        self == Lang::Ar
    }
}

/// The default `nd_source` label. demarches-simplifiees.fr rewrites the literal
/// `nd_source=button` into `site` or `email` depending on where it shows the button, so the
/// default must stay exactly this word.
pub const DEFAULT_SOURCE: &str = "button";

/// Whether `s` is an acceptable `nd_source` label: `[a-z0-9-]{1,32}`.
pub fn is_valid_source(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The HTML a porteur pastes at the end of a démarche.
#[derive(Clone, Debug)]
pub struct Snippet<'a> {
    public_url: &'a str,
    demarche_id: u64,
    style: Style,
    source: &'a str,
    new_window: bool,
    lang: Lang,
}

impl<'a> Snippet<'a> {
    /// A snippet for `demarche_id` served from `public_url` (e.g. `https://avis.example.fr`).
    pub fn new(public_url: &'a str, demarche_id: u64, style: Style) -> Self {
        Snippet { public_url, demarche_id, style, source: DEFAULT_SOURCE, new_window: false, lang: Lang::Fr }
    }

    /// Sets the `nd_source` label (callers validate it with [`is_valid_source`]; it is escaped
    /// here regardless).
    pub fn source(mut self, source: &'a str) -> Self {
        self.source = source;
        self
    }

    /// Opens the form in a new window (`target="_blank" rel="noopener noreferrer"`) and says so
    /// in the title. demarches-simplifiees.fr adds its own target/rel, so the default is off.
    pub fn new_window(mut self, yes: bool) -> Self {
        self.new_window = yes;
        self
    }

    /// The language of the form the button opens (French by default: no `lang` in the link).
    pub fn lang(mut self, lang: Lang) -> Self {
        self.lang = lang;
        self
    }

    /// The form link carried by the button. `lang` goes last and only when not French, so a
    /// French link is byte for byte the legacy one (demarches-simplifiees.fr rewrites its
    /// `nd_source=button` and checks the rest).
    pub fn form_url(&self, signer: &KeySigner) -> String {
        let mut url = format!(
            "{}/Demarches/{}?view-mode=formulaire-avis&nd_source={}&key={}",
            self.public_url.trim_end_matches('/'),
            self.demarche_id,
            self.source,
            signer.sign(self.demarche_id)
        );
        if self.lang != Lang::Fr {
            url.push_str("&lang=");
            url.push_str(self.lang.code());
        }
        url
    }

    /// The button image URL.
    pub fn image_url(&self) -> String {
        format!("{}/static/bouton-{}.svg", self.public_url.trim_end_matches('/'), self.style.as_str())
    }

    /// The HTML to paste: one `a` around one `img`, every attribute escaped.
    pub fn html(&self, signer: &KeySigner) -> String {
        let (title, extra) = if self.new_window {
            (
                "Je donne mon avis sur cette démarche - nouvelle fenêtre",
                " target=\"_blank\" rel=\"noopener noreferrer\"",
            )
        } else {
            ("Je donne mon avis sur cette démarche", "")
        };
        format!(
            "<a href=\"{}\" title=\"{}\"{}><img src=\"{}\" alt=\"Je donne mon avis\"/></a>",
            escape_attr(&self.form_url(signer)),
            title,
            extra,
            escape_attr(&self.image_url()),
        )
    }
}

/// Escapes text for a double-quoted HTML attribute.
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> KeySigner {
        KeySigner::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn sign_matches_independent_hmac() {
        // Recompute with the plain HMAC API over the formatted message, no shared helper.
        let mut mac = HmacSha256::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
        mac.update(b"demarche:1234567");
        let full = hex::encode(mac.finalize().into_bytes());
        assert_eq!(signer().sign(1234567), full[..32]);
        assert_eq!(signer().sign(1234567).len(), KEY_HEX_LEN);
    }

    #[test]
    fn format_u64_edges() {
        let mut b = [0u8; 20];
        assert_eq!(format_u64(0, &mut b), b"0");
        assert_eq!(format_u64(u64::MAX, &mut b), u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn verify_accepts_own_key_and_uppercase() {
        let s = signer();
        let key = s.sign(77);
        assert!(s.verify(77, &key));
        assert!(s.verify(77, &key.to_uppercase()));
    }

    #[test]
    fn verify_rejects_tampering() {
        let s = signer();
        let key = s.sign(77);
        assert!(!s.verify(78, &key), "key of another démarche");
        assert!(!KeySigner::new(b"another secret").verify(77, &key), "another secret");
        for i in 0..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let forged = String::from_utf8(bytes).unwrap();
            assert!(!s.verify(77, &forged), "one hex digit changed at {i}");
        }
        assert!(!s.verify(77, &key[..31]), "too short");
        assert!(!s.verify(77, &format!("{key}0")), "too long");
        assert!(!s.verify(77, ""), "empty");
        assert!(!s.verify(77, &format!("{}zz", &key[..30])), "not hex");
        assert!(!s.verify(77, "é1234567890123456789012345678901"), "multibyte");
    }

    #[test]
    fn snippet_default_has_no_target_and_button_source() {
        let s = signer();
        let html = Snippet::new("https://avis.example.fr/", 42, Style::Blanc).html(&s);
        let expected = format!(
            "<a href=\"https://avis.example.fr/Demarches/42?view-mode=formulaire-avis&amp;nd_source=button&amp;key={}\" \
             title=\"Je donne mon avis sur cette démarche\"><img src=\"https://avis.example.fr/static/bouton-blanc.svg\" \
             alt=\"Je donne mon avis\"/></a>",
            s.sign(42)
        );
        assert_eq!(html, expected);
        assert!(!html.contains("target"));
    }

    #[test]
    fn snippet_new_window_and_source() {
        let s = signer();
        let html = Snippet::new("https://a.fr", 7, Style::Bleu).source("guichet").new_window(true).html(&s);
        assert!(html.contains("nd_source=guichet&amp;key="));
        assert!(html.contains("target=\"_blank\" rel=\"noopener noreferrer\""));
        assert!(html.contains("title=\"Je donne mon avis sur cette démarche - nouvelle fenêtre\""));
        assert!(html.contains("bouton-bleu.svg"));
    }

    #[test]
    fn snippet_escapes_everything() {
        let s = signer();
        let html = Snippet::new("https://a.fr/\"><script>", 7, Style::Bleu).source("x\"'<>&").html(&s);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&quot;&gt;&lt;script&gt;"));
        assert!(html.contains("x&quot;&#39;&lt;&gt;&amp;"));
    }

    #[test]
    fn snippet_lang_goes_last_and_only_when_not_french() {
        let s = signer();
        let fr = Snippet::new("https://a.fr", 7, Style::Bleu).lang(Lang::Fr).form_url(&s);
        assert!(!fr.contains("lang="), "{fr}");
        let ar = Snippet::new("https://a.fr", 7, Style::Bleu).lang(Lang::Ar).form_url(&s);
        assert_eq!(ar, format!("{fr}&lang=ar"));
    }

    #[test]
    fn lang_codes_round_trip() {
        for l in Lang::ALL {
            assert_eq!(Lang::from_code(l.code()), Some(l));
        }
        assert_eq!(Lang::from_code("EN"), None);
        assert_eq!(Lang::from_code("zz"), None);
        assert_eq!(Lang::default(), Lang::Fr);
        assert!(Lang::Ar.is_rtl() && !Lang::Uk.is_rtl());
    }

    #[test]
    fn source_labels() {
        assert!(is_valid_source("button"));
        assert!(is_valid_source("e-mail-2024"));
        assert!(is_valid_source(&"a".repeat(32)));
        assert!(!is_valid_source(&"a".repeat(33)));
        assert!(!is_valid_source(""));
        assert!(!is_valid_source("Email"));
        assert!(!is_valid_source("a b"));
        assert!(!is_valid_source("é"));
    }

    #[test]
    fn style_parse() {
        assert_eq!("bleu".parse::<Style>().unwrap(), Style::Bleu);
        assert_eq!("blanc".parse::<Style>().unwrap(), Style::Blanc);
        assert!("rouge".parse::<Style>().is_err());
    }
}
