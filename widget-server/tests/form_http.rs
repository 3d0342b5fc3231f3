//! The avis form and the citizen pages over real sockets: valid links render a small, script-free,
//! self-contained French form; every bad link gets the French 404 page.

mod common;

use common::*;
use hyper::Method;

fn css_path(page: &str) -> String {
    let href = page.split("href=\"/static/avis.").nth(1).expect("hashed stylesheet link");
    format!("/static/avis.{}", &href[..href.find('"').unwrap()])
}

#[tokio::test]
async fn valid_link_renders_the_form() {
    let server = Server::sqlite_with(&[(42, "Demande de carte grise <test> & co")], &[]);
    let key = server.signer().sign(42);
    // Legacy links carry nd_mode and other unknown parameters: ignored.
    let path = format!("/Demarches/42?view-mode=formulaire-avis&nd_source=email&nd_mode=popup&utm=x&key={key}");
    let (status, h, body) = get(&server.url(&path), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "max-age=300, s-maxage=3600");
    assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let page = text(&body);
    assert!(page.starts_with("<!DOCTYPE html><html lang=\"fr\">"));
    assert!(page.contains("Demande de carte grise &lt;test&gt; &amp; co"), "name escaped");
    for question in [
        "De façon générale, comment s'est passée cette démarche",
        "La démarche était-elle facile",
        "Le langage employé était-il clair",
        "Avez-vous eu besoin d'aide",
        "Souhaitez-vous nous en dire plus",
    ] {
        assert!(page.contains(question), "missing question {question}");
    }
    for value in [
        "bien",
        "moyen",
        "pas-bien",
        "facile",
        "difficile",
        "clair",
        "pas-clair",
        "aucune",
        "proche",
        "association",
        "agent",
        "internet",
        "autre",
    ] {
        assert!(page.contains(&format!("value=\"{value}\"")), "missing answer {value}");
    }
    assert!(page.contains(&format!("name=\"key\" value=\"{key}\"")));
    assert!(page.contains("name=\"nd_source\" value=\"email\""), "nd_source carried to the vote");
    assert!(page.contains("action=\"/Demarches/42/avis\""));
    // Accessible structure: fieldsets with legends, labels tied to inputs.
    assert_eq!(page.matches("<fieldset").count(), 4);
    assert_eq!(page.matches("<legend>").count(), 4);
    assert!(page.contains("<label for=\"satisfaction-bien\">Très bien</label>"));
    assert!(page.contains("<label for=\"commentaire\">"));

    // No JavaScript, no external request, small.
    assert_self_contained(&page, "the form");
    let (status, _, css) = get(&server.url(&css_path(&page)), &[]).await;
    assert_eq!(status, 200);
    let css = text(&css);
    assert!(!css.contains("url(") && !css.contains("@import"), "CSS fetches nothing");
    let total = page.len() + css.len();
    assert!(total < 10 * 1024, "form + CSS = {total} bytes");

    // HEAD of the form.
    let (status, h, body) = request(Method::HEAD, &server.url(&path), &[], "").await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(h["content-length"], page.len().to_string().as_str());

    // The thank-you page.
    let (status, h, body) = get(&server.url("/Demarches/42/merci"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(h["cache-control"], "max-age=300, s-maxage=3600");
    assert!(text(&body).contains("Merci pour votre avis"));
}

#[tokio::test]
async fn bad_links_get_the_french_404() {
    let server = Server::sqlite_with(&[(42, "Démarche active")], &[]);
    let (tmp_dir, url) = (server.dir.clone(), server.db_url.clone());
    cli(&tmp_dir, &url, &["demarche", "add", "--id", "43", "--name", "Inactive", "--inactive"]);
    let signer = server.signer();
    let good = signer.sign(42);
    let mut tampered = good.clone().into_bytes();
    tampered[0] = if tampered[0] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = vec![
        format!("/Demarches/42?view-mode=formulaire-avis&key={tampered}"),
        format!("/Demarches/42?view-mode=formulaire-avis&key={}", &good[..31]),
        "/Demarches/42?view-mode=formulaire-avis".to_string(),
        format!("/Demarches/42?key={}", signer.sign(41)),
        format!("/Demarches/999?key={}", signer.sign(999)),
        // Known to the store but added after start, and inactive anyway.
        format!("/Demarches/43?key={}", signer.sign(43)),
        format!("/Demarches/abc?key={good}"),
        format!("/Demarches/-42?key={good}"),
        format!("/Demarches/0?key={good}"),
        format!("/Demarches/42abc?key={good}"),
        format!("/Demarches/99999999999999999999999?key={good}"),
        format!("/Demarches/%34%32?key={good}"),
        "/Demarches/42/merci/x".to_string(),
        "/Demarches/999/merci".to_string(),
    ];
    for path in cases {
        let (status, h, body) = get(&server.url(&path), &[]).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{path}");
        assert_eq!(h["cache-control"], "no-store", "a CDN must not keep a 404 of a démarche added later: {path}");
        let page = text(&body);
        assert!(page.contains("lang=\"fr\""), "{path}");
        if path.starts_with("/Demarches/42/merci/") {
            assert!(page.contains("Page introuvable"), "{path}");
        } else {
            assert!(page.contains("Ce lien d'avis n'est pas valide"), "{path}");
        }
    }
    // The right key still works.
    let (status, _, _) = get(&server.url(&format!("/Demarches/42?key={}", good.to_uppercase())), &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn snippet_subcommand_prints_a_working_link() {
    let server = Server::sqlite_with(&[(7, "Démarche sept")], &[]);
    let base = format!("http://{}", server.addr);
    let html = cli(
        &server.dir,
        &server.db_url,
        &["--public-url", &base, "snippet", "--demarche", "7", "--style", "blanc", "--source", "guichet"],
    );
    assert!(html.contains(&format!("src=\"{base}/static/bouton-blanc.svg\"")));
    assert!(!html.contains("target="));
    let href = html.split("href=\"").nth(1).unwrap();
    let href = href[..href.find('"').unwrap()].replace("&amp;", "&");
    assert!(href.contains("nd_source=guichet"));
    let (status, _, body) = get(&href, &[]).await;
    assert_eq!(status, 200, "{href}");
    assert!(text(&body).contains("name=\"nd_source\" value=\"guichet\""));
    let (status, _, _) = get(html.split("src=\"").nth(1).unwrap().split('"').next().unwrap(), &[]).await;
    assert_eq!(status, 200);
    // Unknown démarche: the command refuses.
    let out = std::process::Command::new(BIN)
        .current_dir(&server.dir)
        .args(["--database-url", &server.db_url, "snippet", "--demarche", "8"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the catalogue"));
}
