//! `widget-server demarche import FILE.csv`: an operator loads a real catalogue (DESIGN §9).
//!
//! The file is UTF-8 (a BOM is fine), separated by `;` or `,` (whichever its header uses), with
//! a header row naming its columns in any order: `id` and `nom` are required, `administration`,
//! `url` and `volume` optional. Every row is checked as the console checks a new démarche (names
//! refuse links and formulas); a row that fails is reported with its line number and skipped,
//! the others are loaded in one transaction ([`super::store::ConsoleStore::import_demarches`]).
//! Loading the same file twice changes nothing.

use std::collections::HashSet;

use super::pages::name_field;
use super::store::CatalogueRow;

/// A row of the file that was not loaded, and why (in English, for the operator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line of the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// The rows of a catalogue file, checked; or why the file as a whole cannot be read.
pub fn parse(text: &str) -> Result<(Vec<CatalogueRow>, Vec<Rejected>), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header =
        text.lines().next().ok_or("the file is empty: expected a header row (id;nom;administration;url;volume)")?;
    let delimiter = if header.matches(';').count() >= header.matches(',').count() { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(text.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let at = |name: &str| columns.iter().position(|c| c == name);
    let (Some(id_at), Some(name_at)) = (at("id"), at("nom")) else {
        return Err(format!(
            "the header row must name the columns id and nom (and may name administration, url, volume); found: {}",
            columns.join(", ")
        ));
    };
    let (admin_at, url_at, volume_at) = (at("administration"), at("url"), at("volume"));
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                rejected.push(Rejected { line, reason: format!("unreadable row: {e}") });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").trim();
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        match row(field(Some(id_at)), field(Some(name_at)), field(admin_at), field(url_at), field(volume_at)) {
            Ok(r) if !seen.insert(r.id) => {
                rejected.push(Rejected { line, reason: format!("id {} already appears earlier in the file", r.id) })
            }
            Ok(r) => rows.push(r),
            Err(reason) => rejected.push(Rejected { line, reason }),
        }
    }
    Ok((rows, rejected))
}

/// One row, checked.
fn row(id: &str, name: &str, administration: &str, url: &str, volume: &str) -> Result<CatalogueRow, String> {
    let id: i64 = match id.parse() {
        Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => n,
        _ => return Err(format!("id {id:?} is not a positive whole number")),
    };
    let name = name_field(name, 200).map_err(|m| format!("nom: {}", english(&m)))?;
    if name.chars().count() < 3 {
        return Err("nom: empty or shorter than 3 characters".into());
    }
    let administration = name_field(administration, 200).map_err(|m| format!("administration: {}", english(&m)))?;
    let url = url.to_string();
    let url_ok = url.is_empty()
        || (url.len() <= 500
            && (url.starts_with("https://") || url.starts_with("http://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>'));
    if !url_ok {
        return Err(format!("url {url:?} is not an http(s) address"));
    }
    let digits: String = volume.chars().filter(|c| !c.is_whitespace() && *c != '\u{202f}').collect();
    let volume_annuel = if digits.is_empty() {
        None
    } else {
        match digits.parse::<i64>() {
            Ok(v) if (0..=1_000_000_000).contains(&v) => Some(v),
            _ => return Err(format!("volume {volume:?} is not a whole number of dossiers a year")),
        }
    };
    let search = crate::search::key(&name, &administration);
    Ok(CatalogueRow { id, name, administration, url, volume_annuel, search })
}

/// The console's French message on a name, for the operator's report.
fn english(french: &str) -> &'static str {
    if french.contains("contrôle") {
        "contains a control character"
    } else if french.contains("dépasser") {
        "longer than 200 characters"
    } else if french.contains("commencer") {
        "starts with =, +, - or @ (a spreadsheet formula)"
    } else {
        "contains a web or e-mail address"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_checked_and_reported_by_line() {
        let text = "\u{feff}id;nom;administration;url;volume\n\
                    12;Carte grise;ANTS;https://ants.gouv.fr;1 200 000\n\
                    abc;Sans numéro;ANTS;;\n\
                    13;=HYPERLINK(\"x\");ANTS;;\n\
                    14;Démarche;Voir https://evil.example;;\n\
                    15;Permis;ANTS;ftp://x;\n\
                    16;Titre;ANTS;;beaucoup\n\
                    12;Doublon;ANTS;;\n\
                    \n\
                    17;Passeport;;;\n";
        let (rows, rejected) = parse(text).unwrap();
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![12, 17]);
        assert_eq!(rows[0].volume_annuel, Some(1_200_000));
        assert_eq!(rows[0].search, crate::search::key("Carte grise", "ANTS"));
        let lines: Vec<u64> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "{rejected:?}");
        assert!(rejected[1].reason.contains("formula") && rejected[2].reason.contains("web"), "{rejected:?}");
        assert!(rejected[5].reason.contains("earlier"));
    }

    #[test]
    fn commas_and_any_column_order() {
        let (rows, rejected) = parse("nom,id\n\"Aide, logement\",3\n").unwrap();
        assert!(rejected.is_empty());
        assert_eq!((rows[0].id, rows[0].name.as_str()), (3, "Aide, logement"));
        assert!(parse("numero;titre\n1;x\n").unwrap_err().contains("id and nom"));
        assert!(parse("").is_err());
    }
}
