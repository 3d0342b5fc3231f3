//! End-to-end tests of « Tous les avis » and its exports, over real sockets against the real
//! binary, on both stores: votes posted through a real form link appear, after the flush, in the
//! keyset pages (each exactly once), under every filter and the text search (accents ignored),
//! and in the CSV and XLSX exports parsed back — with the same numbers as a recount from the
//! store.

mod common;

use std::collections::HashSet;
use std::io::Read;

use common::browser::{porteur, Browser, Mailbox};
use common::{cli, open_store, post_vote, vote_body, Server};
use hyper::StatusCode;

const PW: &str = "une phrase de passe solide";
const ID: i64 = 77;
const VOTES: usize = 120;

/// The i-th vote: every answer varies; a comment on one in three, accented, one a formula.
fn vote(i: usize) -> String {
    let sat = ["bien", "moyen", "pas-bien"][i % 3];
    let mut body = format!("satisfaction={sat}&facilite={}", ["facile", "moyen", "difficile"][i / 3 % 3]);
    body += &format!("&aide={}", ["aucune", "agent", "internet"][i % 3]);
    if i.is_multiple_of(3) {
        let text = match i % 4 {
            0 => "Tr%C3%A8s+compliqu%C3%A9%2C+l%27agent+%C3%A9tait+aimable",
            1 => "Formulaire+clair%0D%0Aet+rapide",
            2 => "%3DHYPERLINK%28%22http%3A%2F%2Fx%22%29",
            _ => "Rien+%C3%A0+dire",
        };
        body += &format!("&commentaire={text}");
    }
    body
}

/// How many avis the pages of `path` show, following « Avis suivants » to the end.
async fn walk(b: &mut Browser, path: &str) -> usize {
    let mut n = 0;
    let mut next = Some(path.to_string());
    let mut pages = 0;
    while let Some(p) = next {
        let page = b.get(&p).await;
        assert_eq!(page.status, StatusCode::OK, "{p}: {}", page.body);
        pages += 1;
        let count = count_on(&page.body);
        assert!(count <= 50, "pages of 50");
        n += count;
        next = page
            .body
            .split(r#"<a href=""#)
            .skip(1)
            .find_map(|s| s.split_once(r#"">Avis suivants<"#).map(|(href, _)| href.replace("&amp;", "&")));
        assert!(pages < 20);
    }
    n
}

fn count_on(body: &str) -> usize {
    body.matches("<li><p class=\"indication\">").count()
}

async fn scenario(server: &Server, tag: &str) {
    // The porteur claims the démarche while it is new (granted at once), then the avis come.
    let mailbox = Mailbox::Outbox;
    let email = format!("avis.{tag}@interieur.gouv.fr");
    let mut b = porteur(server, &mailbox, "Porteuse des avis", &email, PW).await;
    b.get(&format!("/console/demarches/{ID}")).await;
    let claimed = b.post(&format!("/console/demarches/{ID}/porteur"), &[]).await;
    assert_eq!(claimed.location(), format!("/console/demarches/{ID}/code?info=porteur"));
    for i in 0..VOTES {
        let (status, _, _) = post_vote(server, ID, &vote_body(server, ID, &vote(i))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }

    // Wait for the flush.
    let store = open_store(&server.db_url).await;
    for _ in 0..100 {
        if store.count_avis().await.unwrap() as usize == VOTES {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(store.count_avis().await.unwrap() as usize, VOTES);

    // Every avis once, newest first, in pages of 50 with a cursor.
    let base = format!("/console/demarches/{ID}/avis");
    let first = b.get(&base).await;
    assert_eq!(count_on(&first.body), 50);
    assert_eq!(walk(&mut b, &base).await, VOTES);

    // Filters, each against a count of the votes sent.
    let expect = |f: &dyn Fn(usize) -> bool| (0..VOTES).filter(|i| f(*i)).count();
    let cases: Vec<(String, usize)> = vec![
        ("satisfaction=pas-bien".into(), expect(&|i| i % 3 == 2)),
        ("facilite=facile".into(), expect(&|i| i / 3 % 3 == 0)),
        ("commentaire=oui".into(), expect(&|i| i % 3 == 0)),
        ("satisfaction=bien&commentaire=oui".into(), expect(&|i| i % 3 == 0)),
        ("q=tres+COMPLIQUE".into(), expect(&|i| i % 3 == 0 && i % 4 == 0)),
        ("q=agent+aimable".into(), expect(&|i| i % 3 == 0 && i % 4 == 0)),
        ("q=%C3%A0+dire".into(), expect(&|i| i % 3 == 0 && i % 4 == 3)),
        ("q=simple".into(), 0),
        // The start of a word, from 3 letters, finds it (both stores).
        ("q=compli".into(), expect(&|i| i % 3 == 0 && i % 4 == 0)),
        ("q=aimab+AGEN".into(), expect(&|i| i % 3 == 0 && i % 4 == 0)),
        ("q=rapi".into(), expect(&|i| i % 3 == 0 && i % 4 == 1)),
        ("q=%22+OR+*+NEAR%28".into(), 0),
        ("source=autre".into(), 0),
        ("du=2000-01-01&au=2000-12-31".into(), 0),
    ];
    for (query, n) in &cases {
        assert_eq!(walk(&mut b, &format!("{base}?{query}")).await, *n, "{query}");
        // The count above the list says the same (from avis_daily where it can, else counted).
        let page = b.get(&format!("{base}?{query}")).await;
        let shown = page.body.split(r#"id="nombre-resultats""#).nth(1).expect("a count").to_string();
        assert!(
            shown.contains(&format!("<strong>{n}</strong>")),
            "{query}: {n} expected in {}",
            &shown[..shown.len().min(200)]
        );
    }
    // The sources seen are offered as a list, « button » shown as « Bouton ».
    assert!(first.body.contains(r#"<option value="button">Bouton</option>"#), "a list of sources");
    let bad = b.get(&format!("{base}?du=hier&satisfaction=bof")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // CSV: BOM, `;`, CRLF, every avis once, formulas neutralised, line breaks kept.
    let csv = b.get(&format!("{base}.csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let disposition = csv.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with(&format!("attachment; filename=\"avis-{ID}-")), "{disposition}");
    let bytes = csv.body.as_bytes();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
    assert!(csv.body.contains("\r\n"));
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(&bytes[3..]);
    assert_eq!(reader.headers().unwrap().get(0), Some("Date (heure de Paris)"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), VOTES);
    let ids: HashSet<&str> = records.iter().map(|r| r.get(7).unwrap()).collect();
    assert_eq!(ids.len(), VOTES, "every avis once");
    assert!(records.iter().any(|r| r.get(6) == Some("'=HYPERLINK(\"http://x\")")), "formula neutralised");
    assert!(records.iter().any(|r| r.get(6) == Some("Formulaire clair\net rapide")), "line break kept, quoted");
    assert_eq!(records.iter().filter(|r| r.get(2) == Some("Pas bien")).count(), expect(&|i| i % 3 == 2));
    let filtered = b.get(&format!("{base}.csv?satisfaction=pas-bien")).await;
    let n = csv::ReaderBuilder::new().delimiter(b';').from_reader(&filtered.body.as_bytes()[3..]).records().count();
    assert_eq!(n, expect(&|i| i % 3 == 2), "the export follows the filters");

    // XLSX: a real workbook with a header row and every avis.
    let xlsx = common::request(
        hyper::Method::GET,
        &server.url(&format!("{base}.xlsx")),
        &[("cookie", &b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))],
        "",
    )
    .await;
    assert_eq!(xlsx.0, StatusCode::OK);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx.2.to_vec())).expect("a zip file");
    let mut sheet = String::new();
    zip.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut sheet).unwrap();
    assert_eq!(sheet.matches("<row ").count(), VOTES + 1);
    let mut strings = String::new();
    zip.by_name("xl/sharedStrings.xml").map(|mut f| f.read_to_string(&mut strings).unwrap()).ok();
    assert!(sheet.contains("compliqu") || strings.contains("compliqu"), "comments are in the workbook");
    // A spreadsheet for people: dates are dates (numbers with a date format), the header row is
    // frozen and filterable, columns have widths, and strings are typed (no CSV `'` in them).
    assert!(sheet.contains(r#"<pane ySplit="1""#) && sheet.contains(r#"state="frozen""#), "frozen header");
    assert!(sheet.contains(&format!(r#"<autoFilter ref="A1:H{}"/>"#, VOTES + 1)), "filters on the header");
    assert!(sheet.contains("<cols>") && sheet.contains("customWidth=\"1\""), "column widths");
    let first_data_row = sheet.split("<row r=\"2\"").nth(1).expect("a data row");
    let a2 = first_data_row.split("<c r=\"A2\"").nth(1).unwrap().split("</c>").next().unwrap();
    assert!(!a2.contains("t=\"s\"") && !a2.contains("t=\"str\"") && a2.contains("<v>4"), "a date serial: {a2}");
    let mut styles = String::new();
    zip.by_name("xl/styles.xml").unwrap().read_to_string(&mut styles).unwrap();
    assert!(styles.contains("dd/mm/yyyy hh:mm:ss"), "a date format");
    let text = format!("{sheet}{strings}");
    assert!(text.contains(">=HYPERLINK(") && !text.contains("'=HYPERLINK("), "XLSX strings are not neutralised");

    // The dashboard says the same, from the aggregates: count and breakdown equal the recount.
    let recount = common::assert_aggregates(&store, &[ID]).await;
    assert_eq!(recount as usize, VOTES);
    let dashboard = b.get(&format!("/console/demarches/{ID}/satisfaction")).await;
    assert!(dashboard.body.contains(&format!(r#"id="nombre-avis">{VOTES}<"#)), "dashboard count");
    let bad = expect(&|i| i % 3 == 2);
    let share = format!("{:.0}\u{a0}%", 100.0 * bad as f64 / VOTES as f64);
    assert!(dashboard.body.contains(&format!("<td>Pas bien</td><td>{bad}</td><td>{share}</td>")), "breakdown");
    assert!(dashboard.body.contains("class=\"badge "), "120 avis: an index is shown");

    // Another account cannot read nor export these avis.
    let mut other = porteur(server, &mailbox, "Autre", &format!("autre.{tag}@interieur.gouv.fr"), PW).await;
    for path in [base.clone(), format!("{base}.csv"), format!("{base}.xlsx"), format!("{base}?apres=1_0")] {
        assert_eq!(other.get(&path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
}

async fn run(db_url: &str, dir: &std::path::Path) {
    cli(dir, db_url, &["demarche", "add", "--id", &ID.to_string(), "--name", "Démarche des avis"]);
    let server = Server::start_in(
        dir,
        db_url,
        &["--flush-interval-ms", "50", "--rate-per-minute", "100000", "--rate-per-minute-demarche", "100000"],
    );
    let tag = format!("a{}", server.addr.port());
    scenario(&server, &tag).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn avis_on_sqlite() {
    let (tmp, url) = Server::sqlite_dir();
    run(&url, tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn avis_on_postgres() {
    let url = common::fresh_pg_database("console_avis").await;
    let tmp = tempfile::tempdir().unwrap();
    run(&url, tmp.path()).await;
}
