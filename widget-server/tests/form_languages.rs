//! The form in every language (DESIGN §17), through the real server over real sockets: each
//! language renders its own page (`lang`, `dir`), stays small and self-contained, is its own
//! cacheable URL, answers a bad vote (422), a refusal (403, 404) and the thank-you page in its
//! words; a vote from it is stored with its `langue` and the same values as in French.

mod common;

use common::*;
use hyper::Method;
use snippet::Lang;
use widget_server::form_text::texts;

const NAME: &str = "Titre de séjour";

/// How maud writes `s` in a page.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn css_path(page: &str) -> String {
    let href = page.split("href=\"/static/avis.").nth(1).expect("hashed stylesheet link");
    format!("/static/avis.{}", &href[..href.find('"').unwrap()])
}

fn lang_query(lang: Lang, first: bool) -> String {
    match lang {
        Lang::Fr => String::new(),
        l => format!("{}lang={}", if first { "?" } else { "&" }, l.code()),
    }
}

fn html_start(lang: Lang) -> String {
    let dir = if lang == Lang::Ar { " dir=\"rtl\"" } else { "" };
    format!("<!DOCTYPE html><html lang=\"{}\"{dir}>", lang.code())
}

#[tokio::test]
async fn every_language_renders_takes_a_vote_and_thanks_in_its_own_words() {
    let demarches: Vec<(i64, &str)> = (1..=Lang::ALL.len() as i64).map(|i| (i, NAME)).collect();
    let mut server = Server::sqlite_with(&demarches, &[]);
    let signer = server.signer();
    let mut css_len = 0;
    let mut sizes = Vec::new();
    for (i, &lang) in Lang::ALL.iter().enumerate() {
        let id = i as i64 + 1;
        let t = texts(lang);
        let key = signer.sign(id as u64);
        let path = format!("{}{}", server.form_path(id), lang_query(lang, false));

        // The form, in its language, cacheable on its own URL like the French one.
        let (status, h, body) = get(&server.url(&path), &[]).await;
        assert_eq!(status, 200, "{lang:?}");
        assert_eq!(h["cache-control"], "max-age=300, s-maxage=3600", "{lang:?}");
        assert!(h.get("vary").is_none_or(|v| !v.to_str().unwrap().to_ascii_lowercase().contains("accept-language")));
        let page = text(&body);
        assert!(page.starts_with(&html_start(lang)), "{lang:?}: {}", &page[..60]);
        for s in [t.q_satisfaction, t.q_facilite, t.q_clarte, t.q_aide, t.q_commentaire, t.submit, t.privacy_title] {
            assert!(page.contains(&escaped(s)), "{lang:?} lacks {s:?}");
        }
        for labels in [&t.satisfaction[..], &t.facilite[..], &t.clarte[..], &t.aide[..]] {
            for l in labels {
                assert!(page.contains(&format!(">{}</label>", escaped(l))), "{lang:?} lacks the answer {l:?}");
            }
        }
        assert!(page.contains(&escaped(NAME)), "the démarche's name as written");
        // The stored values are the French ones whatever the language.
        for value in ["bien", "pas-bien", "difficile", "pas-clair", "aucune", "agent"] {
            assert!(page.contains(&format!("value=\"{value}\"")), "{lang:?} {value}");
        }
        assert!(page.contains(&format!("action=\"/Demarches/{id}/avis{}\"", lang_query(lang, true))), "{lang:?}");
        // A row of language links: each language named in itself, each its own URL.
        for other in Lang::ALL.into_iter().filter(|l| *l != lang) {
            let href = format!("/Demarches/{id}?key={key}{}", lang_query(other, false).replace('&', "&amp;"));
            assert!(page.contains(&format!("href=\"{href}\"")), "{lang:?} → {other:?}");
            assert!(page.contains(&format!(">{}</a>", other.native_name())), "{lang:?} names {other:?}");
        }
        let current = format!("<span lang=\"{}\" aria-current=\"true\">{}</span>", lang.code(), lang.native_name());
        assert!(page.contains(&current), "{lang:?}: the current language is said, not linked");
        // No script, no external request; small with its stylesheet.
        assert_self_contained(&page, &format!("{lang:?}"));
        if css_len == 0 {
            let (status, _, css) = get(&server.url(&css_path(&page)), &[]).await;
            assert_eq!(status, 200);
            css_len = css.len();
        }
        sizes.push((lang, page.len()));
        assert!(page.len() + css_len < 10 * 1024, "{lang:?}: form {} + CSS {css_len} bytes", page.len());

        // Revalidation: 304 for this language's ETag.
        let etag = h["etag"].to_str().unwrap().to_string();
        let (status, _, _) = get(&server.url(&path), &[("if-none-match", &etag)]).await;
        assert_eq!(status, 304, "{lang:?}");

        // A vote with a mistake comes back in the language, answers kept, messages tied.
        let action = format!("/Demarches/{id}/avis{}", lang_query(lang, true));
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let (status, _, body) =
            request(Method::POST, &server.url(&action), &form, format!("key={key}&clarte=bof&aide=agent")).await;
        assert_eq!(status, 422, "{lang:?}");
        let page = text(&body);
        assert!(page.starts_with(&html_start(lang)), "{lang:?} 422");
        for s in [t.summary_title, t.err_missing, t.err_not_offered, t.fields[0], t.fields[2]] {
            assert!(page.contains(&escaped(s)), "{lang:?} 422 lacks {s:?}");
        }
        assert!(page.contains("value=\"agent\" checked"), "{lang:?}: answers kept");

        // A vote: 303 to the thank-you page in the same language.
        let body = format!(
            "key={key}&nd_source=button&satisfaction=moyen&facilite=difficile&clarte=pas-clair&aide=agent&aide=internet"
        );
        let (status, h, _) = request(Method::POST, &server.url(&action), &form, body).await;
        assert_eq!(status, 303, "{lang:?}");
        let merci = format!("/Demarches/{id}/merci{}", lang_query(lang, true));
        assert_eq!(h["location"], merci.as_str(), "{lang:?}");
        let (status, h, body) = get(&server.url(&merci), &[]).await;
        assert_eq!(status, 200);
        assert_eq!(h["cache-control"], "max-age=300, s-maxage=3600");
        let page = text(&body);
        assert!(page.starts_with(&html_start(lang)), "{lang:?} merci");
        assert!(page.contains(&escaped(t.merci_title)) && page.contains(&escaped(NAME)), "{lang:?} merci");

        // Refusals speak it too: a broken link (404), a post from another site (403).
        let (status, _, body) =
            get(&server.url(&format!("/Demarches/{id}?key=0000{}", lang_query(lang, false))), &[]).await;
        assert_eq!(status, 404);
        let page = text(&body);
        assert!(page.starts_with(&html_start(lang)) && page.contains(&escaped(t.invalid_link.title)), "{lang:?} 404");
        let (status, _, body) = request(
            Method::POST,
            &server.url(&action),
            &[("content-type", "application/x-www-form-urlencoded"), ("sec-fetch-site", "cross-site")],
            format!("key={key}&satisfaction=bien"),
        )
        .await;
        assert_eq!(status, 403);
        assert!(text(&body).contains(&escaped(t.cross_site.title)), "{lang:?} 403");
    }
    eprintln!("form sizes (bytes, CSS {css_len} apart): {sizes:?}");

    // An unknown or badly written language gives the French form.
    for odd in ["xx", "EN", "", "ar%00"] {
        let (status, _, body) = get(&server.url(&format!("{}&lang={odd}", server.form_path(1))), &[]).await;
        assert_eq!(status, 200);
        assert!(text(&body).starts_with(&html_start(Lang::Fr)), "lang={odd}");
    }
    // The honeypot is as blind in every language: answered as a success, never stored.
    let (status, h, _) = request(
        Method::POST,
        &server.url("/Demarches/2/avis?lang=en"),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("key={}&satisfaction=bien&site_web=http://spam", signer.sign(2)),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(h["location"], "/Demarches/2/merci?lang=en");

    // Stored: one vote a démarche, its language recorded, the same values as a French vote.
    let n = Lang::ALL.len() as i64;
    assert_eq!(wait_for_avis(&server.db_url, n, std::time::Duration::from_secs(10)).await, n);
    let status = server.terminate();
    assert!(status.success());
    let store = open_store(&server.db_url).await;
    assert_eq!(store.count_avis().await.unwrap(), n, "the honeypot stored nothing");
    assert_eq!(assert_aggregates(&store, &(1..=n).collect::<Vec<_>>()).await, n);
    for (i, &lang) in Lang::ALL.iter().enumerate() {
        let id = i as i64 + 1;
        let days = store.recount(id).await.unwrap();
        assert_eq!(days.len(), 1);
        let c = days[0].counts;
        assert_eq!((c.n, c.satisfaction, c.facilite, c.clarte), (1, [0, 1, 0], [0, 0, 1], [0, 0, 1]), "{lang:?}");
        assert_eq!(c.aide, [0, 0, 0, 1, 1, 0], "{lang:?}");
        let langues = store.daily_langues(id).await.unwrap();
        match lang {
            Lang::Fr => assert!(langues.is_empty(), "French is not in avis_daily_langue"),
            l => assert_eq!(
                langues.iter().map(|r| (r.langue.as_str(), r.n)).collect::<Vec<_>>(),
                [(l.code(), 1)],
                "{l:?}"
            ),
        }
    }
}
