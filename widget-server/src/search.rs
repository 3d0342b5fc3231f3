//! Search keys of the démarche catalogue: names and administrations folded (lower case, no
//! accents, no punctuation) in Rust, so that both stores search them with a plain `LIKE` and
//! agree on what matches.

/// Text as the search column holds it: lower case, accents removed (canonical decomposition
/// without its combining marks), every run of other characters than letters and digits one
/// space. Both stores then only need `LIKE`.
pub fn fold(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase) {
        match c {
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            c if c.is_alphanumeric() => out.push(c),
            _ if !out.ends_with(' ') && !out.is_empty() => out.push(' '),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

/// The search key of a démarche: its name and administration, folded.
pub fn key(name: &str, administration: &str) -> String {
    fold(&format!("{name} {administration}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_drops_case_accents_and_punctuation() {
        assert_eq!(
            fold("Demande d'Aide à l'ÉLECTRICITÉ – Île-de-France"),
            "demande d aide a l electricite ile de france"
        );
        assert_eq!(fold("  Cœur  ÇA  "), "coeur ca");
        assert_eq!(fold("n° 42"), "n 42");
        assert_eq!(fold("%_\\"), "");
    }

    #[test]
    fn keys_join_name_and_administration() {
        assert_eq!(
            key("Carte grise", "Agence nationale des titres sécurisés"),
            "carte grise agence nationale des titres securises"
        );
    }
}
