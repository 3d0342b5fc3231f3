//! End-to-end tests of the console's démarches, over real sockets against the real binary, on
//! both stores: search with and without accents, add a missing démarche, its code, a vote
//! through that code's link, « Je suis porteur » requests accepted and refused, invitations,
//! the fiche, the high-volume rule, deactivation and merging; and every door a porteur of one
//! démarche must find shut on another.

mod common;

use common::browser::{link, porteur, Browser, Mailbox, Page};
use common::{cli, open_store, Server};
use hyper::StatusCode;

const PW: &str = "une phrase de passe solide";
const PUBLIC: &str = "https://avis.example.test";

/// The HTML-unescaped content of the `snippet` text area.
fn snippet_of(page: &Page) -> String {
    let at = page.body.find(r#"<textarea id="snippet""#).expect("a snippet text area");
    let start = page.body[at..].find('>').unwrap() + at + 1;
    let end = page.body[start..].find("</textarea>").unwrap() + start;
    page.body[start..end].replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// demarches-simplifiees.fr keeps a « MonAvis » snippet only when it is made of `a` and `img`,
/// with no other attributes than href/title/target/rel and src/alt, and https URLs.
fn assert_accepted_by_demarches_simplifiees(html: &str) {
    let mut rest = html;
    let mut tags = Vec::new();
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("closed tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(name, "a", "only a closing </a>");
            continue;
        }
        let tag = tag.trim_end_matches('/');
        let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        tags.push(name.to_string());
        let allowed: &[&str] = match name {
            "a" => &["href", "title", "target", "rel"],
            "img" => &["src", "alt"],
            other => panic!("tag <{other}> is not accepted"),
        };
        while let Some(eq) = attrs.find("=\"") {
            let key = attrs[..eq].trim();
            let value_end = attrs[eq + 2..].find('"').unwrap() + eq + 2;
            let value = &attrs[eq + 2..value_end];
            assert!(allowed.contains(&key), "attribute {key} on <{name}>");
            if key == "href" || key == "src" {
                assert!(value.starts_with("https://"), "{key}={value}");
            }
            attrs = &attrs[value_end + 1..];
        }
        assert!(attrs.trim().is_empty(), "unquoted attribute in {tag}");
    }
    assert_eq!(tags, ["a", "img"]);
}

fn id_from(location: &str) -> i64 {
    location.trim_start_matches("/console/demarches/").split(['/', '?']).next().unwrap().parse().unwrap()
}

/// Posts the citizen form shown at `path` with a satisfaction answer, as a browser would.
async fn vote_through(server: &Server, path: &str) -> (String, Page) {
    let mut citizen = Browser::new(server);
    let form = citizen.get(path).await;
    assert_eq!(form.status, StatusCode::OK, "{path}: {}", form.body);
    let action =
        form.body.split(r#"<form method="post" action=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let key = form.body.split(r#"name="key" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let body =
        format!("key={key}&nd_source=guichet&satisfaction=bien&facilite=facile&commentaire=Tr%C3%A8s+simple%2C+merci");
    let page = citizen
        .send(hyper::Method::POST, &action, body, &[("content-type", "application/x-www-form-urlencoded")])
        .await;
    (form.body, page)
}

/// The account id of the first porteur on the Porteurs tab of démarche 102, as an
/// administrator sees it.
async fn first_porteur_of_102(admin: &mut Browser) -> String {
    let tab = admin.get("/console/demarches/102/porteurs").await;
    tab.body.split("/porteurs/").nth(1).unwrap().split('/').next().unwrap().to_string()
}

async fn scenario(server: &Server, tag: &str) {
    let mailbox = Mailbox::Outbox;
    let email = |who: &str| format!("{who}.{tag}@interieur.gouv.fr");
    let mut alice = porteur(server, &mailbox, "Alice Porteuse", &email("alice"), PW).await;

    let home = alice.get("/console").await;
    assert!(home.body.contains("Vous ne portez encore aucune démarche"));

    // Search: accents and case do not matter; a number finds its démarche.
    for q in ["electricite", "ÉLECTRICITÉ", "Aide%20%C3%A0%20l%27%C3%A9lectricit%C3%A9", "energie", "102"] {
        let page = alice.get(&format!("/console/demarches?q={q}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(r#"href="/console/demarches/102""#), "{q}");
        assert!(!page.body.contains(r#"href="/console/demarches/101""#), "{q}");
    }
    let page = alice.get("/console/demarches?q=carte+grise+titres+securises").await;
    assert!(page.body.contains(r#"href="/console/demarches/101""#));
    let none = alice.get("/console/demarches?q=permis+de+construire").await;
    assert!(none.body.contains("Aucune démarche trouvée"));
    assert!(none.body.contains(r#"href="/console/demarches/nouvelle?nom=permis+de+construire""#));

    // « Ajouter une démarche manquante »: close names first, French messages per field.
    let close = alice.get("/console/demarches/nouvelle?nom=Duplicata+de+carte+grise").await;
    assert!(close.body.contains("Est-ce l'une de ces démarches") && close.body.contains("Demande de carte grise"));
    let bad = alice
        .post(
            "/console/demarches/nouvelle",
            &[("nom", "X"), ("administration", ""), ("url", "ftp://x"), ("volume", "beaucoup")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for msg in
        ["Indiquez le nom de la démarche", "Indiquez l'administration", "commençant par https://", "nombre entier"]
    {
        assert!(bad.body.contains(msg), "{msg}");
    }
    let fields = [
        ("nom", "Permis de construire"),
        ("administration", "Ministère de la Transition écologique"),
        ("url", "https://www.demarches-simplifiees.fr/commencer/permis"),
        ("volume", "120 000"),
    ];
    let added = alice.post("/console/demarches/nouvelle", &fields).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let id = id_from(added.location());
    assert!(id > 102, "a new id after the catalogue's");

    // Its code: a GET form, both buttons, a valid source label; the snippet from the snippet crate.
    let code = alice.get(&format!("/console/demarches/{id}/code")).await;
    assert_eq!(code.status, StatusCode::OK);
    assert!(code.body.contains("bouton-bleu.svg") && code.body.contains("bouton-blanc.svg"));
    let wrong = alice.get(&format!("/console/demarches/{id}/code?style=blanc&source=Mauvaise+%C3%A9tiquette")).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!wrong.body.contains("<textarea"));
    let code = alice.get(&format!("/console/demarches/{id}/code?style=blanc&source=guichet&fenetre=oui")).await;
    let snippet = snippet_of(&code);
    assert_accepted_by_demarches_simplifiees(&snippet);
    let expected = cli(
        &server.dir,
        &server.db_url,
        &[
            "--public-url",
            PUBLIC,
            "snippet",
            "--demarche",
            &id.to_string(),
            "--style",
            "blanc",
            "--source",
            "guichet",
            "--new-window",
        ],
    );
    assert_eq!(snippet, expected.trim(), "the same HTML as `widget-server snippet`");
    assert!(code.body.contains(r#"<div class="apercu"><a href=""#), "a live preview");
    let plain = snippet_of(&alice.get(&format!("/console/demarches/{id}/code?style=bleu")).await);
    assert_accepted_by_demarches_simplifiees(&plain);
    assert!(plain.contains("nd_source=button") && !plain.contains("target="));

    // A citizen follows that link: the form exists at once in this process, and the vote counts.
    let href = snippet.split("href=\"").nth(1).unwrap().split('"').next().unwrap();
    // The attribute's `&amp;` is `&` once a browser has parsed it.
    let form_path = href.strip_prefix(PUBLIC).expect("a link on the public URL").replace("&amp;", "&");
    let (form, voted) = vote_through(server, &form_path).await;
    assert!(form.contains("Permis de construire"));
    assert_eq!(voted.status, StatusCode::SEE_OTHER);
    // The dashboard shows it once flushed (« en direct »), from the aggregates.
    let dashboard = format!("/console/demarches/{id}/satisfaction");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let page = loop {
        let page = alice.get(&dashboard).await;
        assert_eq!(page.status, StatusCode::OK);
        if page.body.contains(r#"id="nombre-avis">1<"#) || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(page.body.contains(r#"id="nombre-avis">1<"#), "the vote is counted");
    assert!(page.body.contains("badge indicatif") && page.body.contains("10,0"), "under 100 avis: indicative");
    assert!(page.body.contains("<td>Très bien</td><td>1</td><td>100\u{a0}%</td>"), "breakdown");
    assert!(page.body.contains("<td>Facile</td><td>1</td><td>100\u{a0}%</td>"));
    assert!(page.body.contains("Très simple, merci"), "latest comments");
    assert!(page.body.contains("<td>guichet</td><td>1</td>"), "per source");
    assert!(page.body.contains("<svg") && page.body.contains("Tendance par mois"));
    let week = alice.get(&format!("{dashboard}?periode=7j&source=guichet")).await;
    assert!(week.body.contains("Tendance par jour") && week.body.contains(r#"id="nombre-avis">1<"#));
    let other_source = alice.get(&format!("{dashboard}?periode=30j&source=courriel")).await;
    assert!(other_source.body.contains(r#"id="nombre-avis">0<"#));
    let bad = alice.get(&format!("{dashboard}?periode=perso&du=2026-05-01&au=2026-04-01")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("La date de fin doit suivre la date de début."));
    let mine = alice.get("/console").await;
    assert!(
        mine.body.contains(&format!(r#"href="/console/demarches/{id}/satisfaction""#))
            && mine.body.contains("Permis de construire")
    );

    // A second account asks to carry it; the first accepts; the second then sees it.
    let mut bob = porteur(server, &mailbox, "Bob Demandeur", &email("bob"), PW).await;
    let page = bob.get(&format!("/console/demarches/{id}")).await;
    assert!(
        page.body.contains("Je suis porteur de cette démarche") && page.body.contains("déjà un ou plusieurs porteurs")
    );
    assert_eq!(bob.get(&format!("/console/demarches/{id}/code")).await.status, StatusCode::FORBIDDEN);
    let asked = bob.post(&format!("/console/demarches/{id}/porteur"), &[("motif", "Chef de projet")]).await;
    assert_eq!(asked.location(), format!("/console/demarches/{id}?info=demande-envoyee"));
    assert_eq!(
        bob.get(&format!("/console/demarches/{id}/code")).await.status,
        StatusCode::FORBIDDEN,
        "asking is not carrying"
    );
    mailbox.wait_for(server, &email("alice"), "Demande pour porter", 1);
    mailbox.wait_for(server, &email("bob"), "Votre demande pour porter", 1);
    let tab = alice.get(&format!("/console/demarches/{id}/porteurs")).await;
    let request = tab.body.split("/demandes/").nth(1).unwrap().split('/').next().unwrap().to_string();
    let accepted = alice.post(&format!("/console/demarches/{id}/demandes/{request}/accepter"), &[]).await;
    assert_eq!(accepted.location(), format!("/console/demarches/{id}/porteurs?info=demande-acceptee"));
    mailbox.wait_for(server, &email("bob"), "Demande acceptée", 1);
    assert!(bob.get("/console").await.body.contains("Permis de construire"));
    assert_eq!(bob.get(&format!("/console/demarches/{id}/code")).await.status, StatusCode::OK);

    // A third is refused, and stays out of every tab, whatever URL it tries.
    let mut carol = porteur(server, &mailbox, "Carol Refusée", &email("carol"), PW).await;
    carol.get(&format!("/console/demarches/{id}")).await;
    carol.post(&format!("/console/demarches/{id}/porteur"), &[("motif", "Stagiaire")]).await;
    let tab = bob.get(&format!("/console/demarches/{id}/porteurs")).await;
    let request = tab.body.split("/demandes/").nth(1).unwrap().split('/').next().unwrap().to_string();
    bob.post(&format!("/console/demarches/{id}/demandes/{request}/refuser"), &[]).await;
    mailbox.wait_for(server, &email("carol"), "Demande refusée", 1);
    for path in ["satisfaction", "code", "code?style=bleu", "fiche", "porteurs"] {
        let page = carol.get(&format!("/console/demarches/{id}/{path}")).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!page.body.contains("<textarea"), "{path}");
    }
    carol.get("/console").await;
    let edit =
        carol.post(&format!("/console/demarches/{id}/fiche"), &[("nom", "Piraté"), ("administration", "Moi")]).await;
    assert_eq!(edit.status, StatusCode::FORBIDDEN);
    let invite = carol.post(&format!("/console/demarches/{id}/inviter"), &[("email", &email("carol"))]).await;
    assert_eq!(invite.status, StatusCode::FORBIDDEN);
    let bare = carol.post(&format!("/console/demarches/{id}/porteur"), &[]).await;
    assert_eq!(bare.status, StatusCode::UNPROCESSABLE_ENTITY, "a démarche with a porteur: a reason is needed");
    assert!(bare.body.contains("Indiquez le motif de votre demande"));
    let again = carol.post(&format!("/console/demarches/{id}/porteur"), &[("motif", "Encore moi")]).await;
    assert_eq!(again.location(), format!("/console/demarches/{id}?info=demande-envoyee"), "claiming by URL only asks");
    assert_eq!(carol.get(&format!("/console/demarches/{id}/code")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(carol.get("/console/admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!(carol.get("/console/demarches/987654/code").await.status, StatusCode::NOT_FOUND);
    assert_eq!(carol.get("/console/demarches/abc").await.status, StatusCode::NOT_FOUND);
    // Carol takes a démarche nobody carries: granted at once. Alice cannot decide Carol's
    // pending request on her own démarche through hers, nor open Carol's.
    let granted = carol.post("/console/demarches/102/porteur", &[]).await;
    assert_eq!(granted.location(), "/console/demarches/102/code?info=porteur");
    assert_eq!(alice.get("/console/demarches/102/fiche").await.status, StatusCode::FORBIDDEN);
    let tab = alice.get(&format!("/console/demarches/{id}/porteurs")).await;
    let carols = tab.body.split("/demandes/").nth(1).unwrap().split('/').next().unwrap().to_string();
    let cross = carol.post(&format!("/console/demarches/102/demandes/{carols}/accepter"), &[]).await;
    assert_eq!(cross.status, StatusCode::CONFLICT, "a request of another démarche");
    assert_eq!(carol.get(&format!("/console/demarches/{id}/code")).await.status, StatusCode::FORBIDDEN);

    // The fiche: changes reach the citizen form at once.
    let fiche = [
        ("nom", "Permis de construire une maison"),
        ("administration", "Ministère de la Transition écologique"),
        ("url", "https://www.demarches-simplifiees.fr/commencer/permis"),
        ("volume", "120000"),
        ("en_ligne", "partiel"),
        ("franceconnect", "oui"),
        ("mobile", "non"),
        ("privacy_controller", "Direction de l'habitat"),
        ("privacy_dpo", "dpd@ecologie.gouv.fr"),
    ];
    let saved = alice
        .submit(&format!("/console/demarches/{id}/fiche"), &format!("/console/demarches/{id}/fiche"), &fiche)
        .await;
    assert_eq!(saved.location(), format!("/console/demarches/{id}/fiche?info=fiche-enregistree"));
    let page = alice.get(&format!("/console/demarches/{id}/fiche")).await;
    assert!(page.body.contains(r#"id="en_ligne-partiel" name="en_ligne" value="partiel" checked"#), "criteria kept");
    assert!(page.body.contains("dpd@ecologie.gouv.fr"));
    let form = Browser::new(server).get(&form_path).await;
    assert!(form.body.contains("Permis de construire une maison"), "the form's header follows the fiche");

    // An invitation: a single-use link for one address.
    let dave_email = email("dave");
    alice.post(&format!("/console/demarches/{id}/inviter"), &[("email", &dave_email)]).await;
    let body = mailbox.wait_for(server, &dave_email, "Invitation à porter", 1);
    let invitation = link(&body, "/console/invitation");
    let token = invitation.split("jeton=").nth(1).unwrap().to_string();
    let taken = carol.submit(&invitation, "/console/invitation", &[("jeton", &token)]).await;
    assert_eq!(taken.status, StatusCode::FORBIDDEN, "not Carol's invitation");
    // Opened before logging in, the link survives the log-in page.
    let mut visitor = Browser::new(server);
    let to_login = visitor.get(&invitation).await;
    assert_eq!(to_login.status, StatusCode::SEE_OTHER);
    let back = serde_urlencoded::to_string([("suite", invitation.as_str())]).unwrap();
    assert_eq!(to_login.location(), format!("/connexion?{back}"));
    let mut dave = porteur(server, &mailbox, "Dave Invité", &dave_email, PW).await;
    let taken = dave.submit(&invitation, "/console/invitation", &[("jeton", &token)]).await;
    assert_eq!(taken.location(), format!("/console/demarches/{id}/code?info=porteur"));
    assert_eq!(dave.get(&format!("/console/demarches/{id}/code")).await.status, StatusCode::OK);
    let reused = dave.submit(&invitation, "/console/invitation", &[("jeton", &token)]).await;
    assert_eq!(reused.status, StatusCode::GONE);

    // Leaving: the tabs close behind.
    let left = bob
        .submit(&format!("/console/demarches/{id}/porteurs"), &format!("/console/demarches/{id}/quitter"), &[])
        .await;
    assert_eq!(left.location(), "/console?info=demarche-quittee");
    assert_eq!(bob.get(&format!("/console/demarches/{id}/code")).await.status, StatusCode::FORBIDDEN);

    // High volume: no code and a closed form until an administrator approves.
    let high = [("nom", "Permis de construire une maison"), ("administration", "Ministère"), ("volume", "6 000 000")];
    alice.submit(&format!("/console/demarches/{id}/fiche"), &format!("/console/demarches/{id}/fiche"), &high).await;
    let code = alice.get(&format!("/console/demarches/{id}/code?style=bleu")).await;
    assert!(code.body.contains("Conditions particulières") && !code.body.contains("<textarea"));
    let closed = Browser::new(server).get(&form_path).await;
    assert_eq!(closed.status, StatusCode::NOT_FOUND);
    assert!(closed.body.contains("pas encore ouvert"));
    let root_email = email("root");
    let mut root = porteur(server, &mailbox, "Root Admin", &root_email, PW).await;
    cli(&server.dir, &server.db_url, &["account", "admin", &root_email]);
    let admin = root.get("/console/admin").await;
    assert!(
        admin.body.contains("Démarches à fort volume")
            && admin.body.contains(&format!("/console/admin/demarches/{id}/valider-volume"))
    );
    let approved = root.post(&format!("/console/admin/demarches/{id}/valider-volume"), &[]).await;
    assert_eq!(approved.location(), "/console/admin?info=volume-valide#fort-volume");
    assert!(snippet_of(&alice.get(&format!("/console/demarches/{id}/code?style=bleu")).await).contains("<img"));
    assert_eq!(Browser::new(server).get(&form_path).await.status, StatusCode::OK);

    // An administrator can take a démarche back from whoever took it.
    let carol_id = first_porteur_of_102(&mut root).await;
    let removed = root.post(&format!("/console/admin/demarches/102/porteurs/{carol_id}/retirer"), &[]).await;
    assert_eq!(removed.location(), "/console/demarches/102/porteurs?info=porteur-retire");
    assert_eq!(carol.get("/console/demarches/102/code").await.status, StatusCode::FORBIDDEN);
    assert_eq!(carol.get(&format!("/console/demarches/{id}/inviter")).await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(carol
        .get(&format!("/console/demarches/{id}/inviter"))
        .await
        .body
        .contains("Page à ouvrir depuis un formulaire"));
    let no_action = root.submit("/console/admin", "/console/admin/demarches/activation", &[("demarche", "101")]).await;
    assert_eq!(no_action.status, StatusCode::UNPROCESSABLE_ENTITY, "no choice, no change");

    // Deactivation closes the form; merging keeps old links working for the target.
    let key101 = server.signer().sign(101);
    let link101 = format!("/Demarches/101?view-mode=formulaire-avis&nd_source=button&key={key101}");
    assert_eq!(Browser::new(server).get(&link101).await.status, StatusCode::OK);
    root.get("/console/admin").await;
    let off = root.post("/console/admin/demarches/activation", &[("demarche", "101"), ("actif", "non")]).await;
    assert_eq!(off.location(), "/console/admin?info=demarche-desactivee#gestion");
    assert_eq!(Browser::new(server).get(&link101).await.status, StatusCode::NOT_FOUND);
    root.post("/console/admin/demarches/activation", &[("demarche", "101"), ("actif", "oui")]).await;
    let bad_merge = root.post("/console/admin/demarches/fusion", &[("doublon", "101"), ("cible", "101")]).await;
    assert_eq!(bad_merge.status, StatusCode::UNPROCESSABLE_ENTITY);
    let merged = root.post("/console/admin/demarches/fusion", &[("doublon", "101"), ("cible", &id.to_string())]).await;
    assert_eq!(merged.location(), "/console/admin?info=demarches-fusionnees#gestion");
    let (form, voted) = vote_through(server, &link101).await;
    assert!(form.contains("Permis de construire une maison"), "the old link shows the démarche kept");
    assert_eq!(voted.status, StatusCode::SEE_OTHER);
    let search = alice.get("/console/demarches?q=carte+grise").await;
    assert!(!search.body.contains(r#"href="/console/demarches/101""#), "a merged duplicate leaves the search");
}

async fn run(db_url: &str, dir: &std::path::Path) {
    cli(
        dir,
        db_url,
        &[
            "demarche",
            "add",
            "--id",
            "101",
            "--name",
            "Demande de carte grise",
            "--administration",
            "Agence nationale des titres sécurisés",
        ],
    );
    cli(
        dir,
        db_url,
        &[
            "demarche",
            "add",
            "--id",
            "102",
            "--name",
            "Aide à l'électricité",
            "--administration",
            "Ministère de l'Énergie",
        ],
    );
    let mut server = Server::start_in(dir, db_url, &["--public-url", PUBLIC, "--flush-interval-ms", "50"]);
    let tag = format!("d{}", server.addr.port());
    scenario(&server, &tag).await;
    // Both votes (through the new démarche's code and through the merged duplicate's old link)
    // are stored under the démarche kept.
    let status = server.terminate();
    assert!(status.success());
    let store = open_store(db_url).await;
    assert_eq!(store.count_avis().await.unwrap(), 2);
    let id = 103;
    assert_eq!(common::assert_aggregates(&store, &[id]).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn demarches_on_sqlite() {
    let (tmp, url) = Server::sqlite_dir();
    run(&url, tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn demarches_on_postgres() {
    let url = common::fresh_pg_database("console_demarches").await;
    let tmp = tempfile::tempdir().unwrap();
    run(&url, tmp.path()).await;
}
