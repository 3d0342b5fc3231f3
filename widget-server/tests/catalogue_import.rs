//! `widget-server demarche import FILE.csv` on both stores, as an operator runs it: a catalogue
//! of 20,000 rows with a few bad ones, loaded, reported by line, loaded again (nothing changes),
//! edited and loaded again (only the edited rows change); a running server lists the imported
//! démarches in its console search and opens their forms.

mod common;

use std::process::Command;

use common::{Server, BIN};
use hyper::StatusCode;

const ROWS: usize = 20_000;

/// The catalogue: ids 100_001.., `;`-separated with a BOM, and bad rows at known lines.
fn catalogue(edited: bool) -> (String, Vec<(u64, &'static str)>) {
    let mut text = String::from("\u{feff}id;nom;administration;url;volume\n");
    let mut bad = Vec::new();
    for i in 0..ROWS {
        let line = i as u64 + 2;
        let id = 100_001 + i;
        let row = match i {
            10 => {
                bad.push((line, "formula"));
                format!("{id};=HYPERLINK(\"http://evil.example\");DGFiP;;\n")
            }
            11 => {
                bad.push((line, "positive whole number"));
                "douze;Sans numéro;DGFiP;;\n".to_string()
            }
            12 => {
                bad.push((line, "web or e-mail address"));
                format!("{id};Démarche;Voir https://evil.example;;\n")
            }
            13 => {
                bad.push((line, "http(s) address"));
                format!("{id};Démarche sans lien;DGFiP;javascript:alert(1);\n")
            }
            14 => {
                bad.push((line, "earlier in the file"));
                "100001;Doublon;DGFiP;;\n".to_string()
            }
            _ => {
                let name = if edited && i % 1000 == 0 {
                    format!("Démarche {i} (renommée)")
                } else {
                    format!("Démarche {i}")
                };
                format!("{id};{name};Ministère {};https://exemple.gouv.fr/d/{id};{}\n", i % 40, i * 10)
            }
        };
        text.push_str(&row);
    }
    (text, bad)
}

/// Runs the import; (exit code, stdout).
fn import(dir: &std::path::Path, db_url: &str, file: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .args(["--database-url", db_url, "--log", "warn", "demarche", "import"])
        .arg(file)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn run(db_url: &str, dir: &std::path::Path) {
    // A démarche already in the catalogue, whose number the file also holds: renamed by it.
    common::cli(dir, db_url, &["demarche", "add", "--id", "100005", "--name", "Ancien nom"]);
    let file = dir.join("catalogue.csv");
    let (text, bad) = catalogue(false);
    std::fs::write(&file, &text).unwrap();
    let started = std::time::Instant::now();
    let (code, out) = import(dir, db_url, &file);
    let took = started.elapsed();
    assert_eq!(code, 2, "some rows were rejected: {out}");
    let good = ROWS - bad.len();
    assert!(
        out.contains(&format!("{good} rows loaded ({} new, 1 updated, 0 unchanged), {} rejected", good - 1, bad.len())),
        "{out}"
    );
    for (line, why) in &bad {
        let reported = out
            .lines()
            .find(|l| l.starts_with(&format!("line {line}:")))
            .unwrap_or_else(|| panic!("line {line}: {out}"));
        assert!(reported.contains(why), "{reported}");
    }
    eprintln!("imported {ROWS} rows in {took:?}");

    // Again: nothing changes.
    let (code, out) = import(dir, db_url, &file);
    assert_eq!(code, 2);
    assert!(out.contains(&format!("{good} rows loaded (0 new, 0 updated, {good} unchanged)")), "{out}");
    // Edited: only the edited rows change.
    let (text, _) = catalogue(true);
    std::fs::write(&file, &text).unwrap();
    let (_, out) = import(dir, db_url, &file);
    assert!(out.contains(&format!("{good} rows loaded (0 new, 20 updated, {} unchanged)", good - 20)), "{out}");
    // A file that cannot be read as a catalogue: exit 1, a precise message, nothing loaded.
    std::fs::write(&file, "numero,titre\n1,x\n").unwrap();
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["--database-url", db_url, "demarche", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("id and nom"));

    // A running server: its console finds an imported démarche, its form opens.
    let server = Server::start_in(dir, db_url, &[]);
    let mailbox = common::browser::Mailbox::Outbox;
    let email = format!("import.{}@interieur.gouv.fr", server.addr.port());
    let mut b = common::browser::porteur(&server, &mailbox, "Porteuse", &email, "une phrase de passe solide").await;
    let page = b.get("/console/demarches?q=demarche+19999").await;
    assert!(page.body.contains("/console/demarches/120000"), "found by name");
    let page = b.get("/console/demarches/100005").await;
    assert!(page.body.contains("Démarche 4"), "renamed by the catalogue");
    let (status, _, _) = common::get(&server.url(&server.form_path(119_000)), &[]).await;
    assert_eq!(status, StatusCode::OK, "an imported démarche's form opens");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_on_sqlite() {
    let (tmp, url) = Server::sqlite_dir();
    run(&url, tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn import_on_postgres() {
    let url = common::fresh_pg_database("catalogue_import").await;
    let tmp = tempfile::tempdir().unwrap();
    run(&url, tmp.path()).await;
}
