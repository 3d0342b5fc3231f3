//! Personal data typed into a comment never reaches the store (DESIGN §13): votes posted through
//! real form links to the real binary, on both stores, with e-mail addresses, phone numbers in
//! several French formats, a NIR and an IBAN in their comments, are stored with « [supprimé] » in
//! their place and the rest of the text intact; the journal on disk never holds them either.

mod common;

use common::{cli, post_vote, vote_body, Server};
use hyper::StatusCode;

const ID: i64 = 61;

/// (comment as typed, comment as stored).
const CASES: &[(&str, &str)] = &[
    (
        "Joignable à jean.dupont@gmail.com ou au 06 12 34 56 78. Mon NIR : 1 85 05 78 006 084 36. Merci !",
        "Joignable à [supprimé] ou au [supprimé]. Mon NIR : [supprimé]. Merci !",
    ),
    ("Rappelez-moi au +33 6 12 34 56 78 svp", "Rappelez-moi au [supprimé] svp"),
    ("Tél. 01.40.20.50.50, poste 12", "Tél. [supprimé], poste 12"),
    ("Remboursez sur FR76 3000 6000 0112 3456 7890 189 merci", "Remboursez sur [supprimé] merci"),
    ("NIR 185057800608436 (sans espaces)", "NIR [supprimé] (sans espaces)"),
    // Nothing personal: stored as typed, dates, amounts and postcodes included.
    (
        "Dossier déposé le 01/02/2024, payé 1 250,00 €, 75015 Paris, réponse en 45 jours.",
        "Dossier déposé le 01/02/2024, payé 1 250,00 €, 75015 Paris, réponse en 45 jours.",
    ),
];

fn encode(s: &str) -> String {
    serde_urlencoded::to_string([("commentaire", s)]).unwrap()
}

/// Every stored comment of démarche `ID`.
async fn stored_comments(db_url: &str) -> Vec<String> {
    let sql = format!("SELECT commentaire FROM avis WHERE demarche_id = {ID} AND commentaire IS NOT NULL");
    if let Some(path) = db_url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut st = conn.prepare(&sql).unwrap();
        st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    } else {
        let (client, conn) = tokio_postgres::connect(db_url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.query(&sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
    }
}

async fn run(db_url: &str, dir: &std::path::Path) {
    cli(dir, db_url, &["demarche", "add", "--id", &ID.to_string(), "--name", "Démarche aux commentaires"]);
    let journal = dir.join("journal");
    let journal_arg = journal.to_str().unwrap().to_string();
    let mut server = Server::start_in(
        dir,
        db_url,
        &[
            "--flush-interval-ms",
            "3600000",
            "--journal",
            &journal_arg,
            "--rate-per-minute",
            "1000",
            "--rate-per-minute-demarche",
            "1000",
        ],
    );
    for (typed, _) in CASES {
        let body = vote_body(&server, ID, &format!("satisfaction=bien&{}", encode(typed)));
        let (status, _, _) = post_vote(&server, ID, &body).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{typed}");
    }
    // What the journal wrote before the 303s (no flush yet: the votes are all in it).
    let mut journaled = Vec::new();
    for entry in std::fs::read_dir(&journal).unwrap().flatten() {
        journaled.extend(std::fs::read(entry.path()).unwrap());
    }
    let journaled = String::from_utf8_lossy(&journaled);
    for secret in ["jean.dupont", "12 34 56 78", "3000 6000", "185057800608436", "006 084"] {
        assert!(!journaled.contains(secret), "the journal holds « {secret} »");
    }
    assert!(journaled.contains("supprim"), "the journal holds the scrubbed comments");

    common::stop_and_check_stored(&mut server, &[ID], CASES.len()).await;
    let mut stored = stored_comments(db_url).await;
    let mut expected: Vec<String> = CASES.iter().map(|(_, s)| s.to_string()).collect();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn comments_are_scrubbed_on_sqlite() {
    let (tmp, url) = Server::sqlite_dir();
    run(&url, tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn comments_are_scrubbed_on_postgres() {
    let url = common::fresh_pg_database("privacy_scrub").await;
    let tmp = tempfile::tempdir().unwrap();
    run(&url, tmp.path()).await;
}
