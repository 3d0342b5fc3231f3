//! What each kind of request looks like: paths, headers and vote bodies.
//!
//! Everything that does not change between requests (signed keys, form paths, ETags) is
//! computed once in [`Traffic::new`]; building a request is then a few string copies and, for a
//! vote, one small form-encoded body.

use std::net::Ipv4Addr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use snippet::KeySigner;

use crate::mix::Kind;
use crate::rng::Rng;

/// The body type of every request: known in full before sending.
pub type Body = Full<Bytes>;

/// The two button images, as pasted in porteurs' pages.
pub const BUTTON_PATHS: [&str; 2] = ["/static/bouton-bleu.svg", "/static/bouton-blanc.svg"];

/// `nd_source` labels and their share of votes in percent: mostly the button, as in production.
const SOURCES: [(&str, u64); 3] = [("button", 60), ("site", 25), ("email", 15)];

const SATISFACTION: [&str; 3] = ["bien", "moyen", "pas-bien"];
const FACILITE: [&str; 3] = ["facile", "moyen", "difficile"];
const CLARTE: [&str; 3] = ["clair", "moyen", "pas-clair"];
/// `aucune` first: it is sent alone, the others in combinations.
const AIDE: [&str; 6] = ["aucune", "proche", "association", "agent", "internet", "autre"];

/// Comments as citizens write them: accents, typographic quotes, an emoji, and the characters
/// that form encoding must escape (`&`, `=`, `+`, `%`, `#`, line breaks).
const COMMENTS: [&str; 10] = [
    "Très simple, merci.",
    "Démarche rapide mais le formulaire était un peu long.",
    "Je n'ai pas compris la différence entre « justificatif » et « pièce jointe ».",
    "Impossible de téléverser mon document depuis mon téléphone ; j'ai dû recommencer.",
    "Parfait 👍",
    "L'agent au téléphone m'a bien aidé, même si l'attente était longue.",
    "Ça a marché du premier coup !",
    "Les délais ne sont pas indiqués : où en est ma demande ?",
    "Trop de questions répétées, c'était fastidieux. Coût = 0 € + 2 h & 100 % de patience #bof",
    "Première ligne.\r\nDeuxième ligne, avec des caractères spéciaux : ÀÉÎÕÜ ç œ æ.",
];

/// One démarche, with what its requests need.
#[derive(Clone, Debug)]
struct Demarche {
    /// Its form link path and query, per label of [`SOURCES`].
    form_links: Vec<String>,
    /// `/Demarches/{id}/avis`.
    vote_path: String,
    key: String,
}

/// Builds requests for one target.
#[derive(Clone, Debug)]
pub struct Traffic {
    host: HeaderValue,
    demarches: Vec<Demarche>,
    /// ETag of each of [`BUTTON_PATHS`], fetched once at start; `None` until then.
    etags: [Option<HeaderValue>; 2],
    /// Number of synthetic client addresses sent in `X-Forwarded-For` (0: no header).
    xff: u32,
    /// Share of votes carrying a comment, in percent.
    comment_percent: u32,
}

impl Traffic {
    /// Requests to `authority` (the `Host` header) for `demarche_ids`, their keys signed with
    /// `signer`; `xff` > 0 adds an `X-Forwarded-For` among that many addresses.
    pub fn new(authority: &str, demarche_ids: &[u64], signer: &KeySigner, xff: u32) -> Result<Traffic, String> {
        let host = HeaderValue::from_str(authority).map_err(|_| format!("{authority:?} is not a valid Host header"))?;
        let demarches = demarche_ids
            .iter()
            .map(|&id| {
                let key = signer.sign(id);
                Demarche {
                    form_links: SOURCES
                        .iter()
                        .map(|(source, _)| {
                            format!("/Demarches/{id}?view-mode=formulaire-avis&nd_source={source}&key={key}")
                        })
                        .collect(),
                    vote_path: format!("/Demarches/{id}/avis"),
                    key,
                }
            })
            .collect();
        Ok(Traffic { host, demarches, etags: [None, None], xff, comment_percent: 20 })
    }

    /// Sets the share of votes carrying a comment (percent, 20 by default).
    pub fn with_comment_percent(mut self, percent: u32) -> Traffic {
        self.comment_percent = percent.min(100);
        self
    }

    /// The form links of every démarche with the default label, for the start-up probe.
    pub fn form_links(&self) -> impl Iterator<Item = &str> {
        self.demarches.iter().filter_map(|d| d.form_links.first().map(String::as_str))
    }

    /// Remembers the ETags fetched at start, in [`BUTTON_PATHS`] order.
    pub fn set_etags(&mut self, etags: [HeaderValue; 2]) {
        self.etags = etags.map(Some);
    }

    /// A bare GET of `path_and_query`, for probes.
    pub fn get(&self, path_and_query: &str) -> Result<Request<Body>, hyper::http::Error> {
        self.builder(Method::GET, path_and_query).body(Body::default())
    }

    /// A request of `kind`, varied with `rng`.
    pub fn request(&self, kind: Kind, rng: &mut Rng) -> Result<Request<Body>, hyper::http::Error> {
        let button = rng.below(BUTTON_PATHS.len() as u64) as usize;
        let mut builder = match kind {
            Kind::Button => self.builder(Method::GET, BUTTON_PATHS[button]),
            Kind::Button304 => {
                let b = self.builder(Method::GET, BUTTON_PATHS[button]);
                match &self.etags[button] {
                    Some(etag) => b.header(header::IF_NONE_MATCH, etag.clone()),
                    None => b,
                }
            }
            Kind::ButtonGzip => self.builder(Method::GET, BUTTON_PATHS[button]).header(header::ACCEPT_ENCODING, "gzip"),
            Kind::Form => {
                let d = self.pick_demarche(rng);
                let link = d.form_links.get(pick_source(rng)).or(d.form_links.first());
                self.builder(Method::GET, link.map_or("/", String::as_str))
            }
            Kind::Vote => {
                let d = self.pick_demarche(rng);
                let body = vote_body(rng, &d.key, self.comment_percent);
                let b = self
                    .builder(Method::POST, &d.vote_path)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::CONTENT_LENGTH, body.len())
                    // What a browser adds to a post from our own form: the server checks it
                    // (a post from another site is refused), so the load pays for the check.
                    .header("sec-fetch-site", "same-origin");
                return self.with_xff(b, rng).body(Body::new(Bytes::from(body)));
            }
        };
        builder = self.with_xff(builder, rng);
        builder.body(Body::default())
    }

    fn pick_demarche(&self, rng: &mut Rng) -> &Demarche {
        // `main` refuses form and vote requests without démarches, so the fallback is never
        // used; it keeps this total without a panic path.
        static NONE: Demarche = Demarche { form_links: Vec::new(), vote_path: String::new(), key: String::new() };
        rng.pick(&self.demarches).unwrap_or(&NONE)
    }

    fn builder(&self, method: Method, path_and_query: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::HOST, self.host.clone())
            .header(header::USER_AGENT, "monavis-loadtest")
    }

    fn with_xff(&self, builder: hyper::http::request::Builder, rng: &mut Rng) -> hyper::http::request::Builder {
        if self.xff == 0 {
            return builder;
        }
        let ip = xff_address(rng.below(u64::from(self.xff)) as u32);
        builder.header("x-forwarded-for", ip.to_string())
    }
}

/// Highest `--xff`: the size of 198.18.0.0/15 less its first and last address.
pub const MAX_XFF: u32 = (1 << 17) - 2;

/// Synthetic client address `index` for `X-Forwarded-For`, in 198.18.0.0/15 (RFC 2544, set
/// aside for benchmarks): never a real citizen's address, and outside 127.0.0.0/8 so that a
/// server trusting loopback proxies takes it as the client.
pub fn xff_address(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + 1 + index % MAX_XFF)
}

fn pick_source(rng: &mut Rng) -> usize {
    let mut roll = rng.below(100);
    for (i, (_, share)) in SOURCES.iter().enumerate() {
        if roll < *share {
            return i;
        }
        roll -= share;
    }
    0
}

/// A valid vote body for a démarche whose link key is `key`: a random satisfaction, facilité
/// and clarté each answered 70 % of the time, 0 to 3 aide values, a comment in
/// `comment_percent` % of votes, and a label among `button`, `site` and `email`.
pub fn vote_body(rng: &mut Rng, key: &str, comment_percent: u32) -> String {
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(10);
    fields.push(("key", key));
    fields.push(("nd_source", SOURCES[pick_source(rng)].0));
    fields.push(("satisfaction", rng.pick(&SATISFACTION).copied().unwrap_or("bien")));
    if rng.percent(70) {
        fields.push(("facilite", rng.pick(&FACILITE).copied().unwrap_or("facile")));
    }
    if rng.percent(70) {
        fields.push(("clarte", rng.pick(&CLARTE).copied().unwrap_or("clair")));
    }
    match rng.below(4) {
        0 => {}
        1 if rng.percent(50) => fields.push(("aide", AIDE[0])),
        n => {
            // n distinct helpers among the five that are not « aucune »: a partial shuffle.
            let mut helpers = [1, 2, 3, 4, 5];
            for i in 0..n as usize {
                let j = i + rng.below((helpers.len() - i) as u64) as usize;
                helpers.swap(i, j);
                fields.push(("aide", AIDE[helpers[i]]));
            }
        }
    }
    if rng.percent(u64::from(comment_percent)) {
        fields.push(("commentaire", rng.pick(&COMMENTS).copied().unwrap_or("")));
    }
    form_encode(&fields)
}

/// `application/x-www-form-urlencoded` of `fields`, every non-alphanumeric byte escaped.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(name, NON_ALPHANUMERIC));
        out.push('=');
        out.extend(utf8_percent_encode(value, NON_ALPHANUMERIC));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::collections::HashMap;

    /// Decodes a body the simple way (names and values are percent-encoded, no `+`).
    fn decode(body: &str) -> Vec<(String, String)> {
        body.split('&')
            .map(|pair| {
                let (n, v) = pair.split_once('=').unwrap();
                let d = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().unwrap().into_owned();
                (d(n), d(v))
            })
            .collect()
    }

    #[test]
    fn vote_bodies_are_valid_for_the_server() {
        let signer = KeySigner::new(b"a secret of at least sixteen bytes");
        let key = signer.sign(42);
        let mut rng = Rng::new(3, 0);
        let mut with_comment = 0;
        let mut aide_counts = [0u32; 4];
        let mut labels = HashMap::new();
        for _ in 0..2000 {
            let body = vote_body(&mut rng, &key, 20);
            let posted = widget_server::form::parse_vote(body.as_bytes());
            assert!(posted.errors.is_empty(), "{body}: {:?}", posted.errors);
            assert!(!posted.honeypot);
            assert_eq!(posted.key, key);
            assert!(signer.verify(42, &posted.key));
            let fields = decode(&body);
            let aide: Vec<_> = fields.iter().filter(|(n, _)| n == "aide").map(|(_, v)| v.as_str()).collect();
            assert!(aide.len() <= 3);
            assert!(aide.len() == 1 || !aide.contains(&"aucune"), "« aucune » comes alone: {aide:?}");
            let mut unique = aide.clone();
            unique.dedup();
            assert_eq!(unique.len(), aide.len());
            aide_counts[aide.len()] += 1;
            let label = &fields.iter().find(|(n, _)| n == "nd_source").unwrap().1;
            assert_eq!(posted.source.as_str(), label);
            *labels.entry(label.clone()).or_insert(0) += 1;
            if let Some((_, c)) = fields.iter().find(|(n, _)| n == "commentaire") {
                assert!(c.chars().count() <= 2000);
                with_comment += 1;
            }
        }
        assert!((300..500).contains(&with_comment), "about 20 % carry a comment: {with_comment}");
        assert!(aide_counts.iter().all(|&n| n > 100), "0 to 3 aide values: {aide_counts:?}");
        assert_eq!(labels.len(), 3, "{labels:?}");
    }

    #[test]
    fn form_encoding_escapes_what_it_must() {
        let body = form_encode(&[("commentaire", "a&b=c+d %e#f\r\né")]);
        assert_eq!(body, "commentaire=a%26b%3Dc%2Bd%20%25e%23f%0D%0A%C3%A9");
        assert_eq!(decode(&body), [("commentaire".to_string(), "a&b=c+d %e#f\r\né".to_string())]);
    }

    #[tokio::test]
    async fn requests_carry_host_key_and_headers() {
        let signer = KeySigner::new(b"a secret of at least sixteen bytes");
        let mut t = Traffic::new("127.0.0.1:8080", &[42, 43], &signer, 10).unwrap();
        t.set_etags([HeaderValue::from_static("\"bleu\""), HeaderValue::from_static("\"blanc\"")]);
        let mut rng = Rng::new(1, 0);
        for _ in 0..50 {
            let req = t.request(Kind::Button304, &mut rng).unwrap();
            let inm = req.headers()[header::IF_NONE_MATCH].to_str().unwrap();
            assert_eq!(inm, if req.uri().path().ends_with("bleu.svg") { "\"bleu\"" } else { "\"blanc\"" });
            assert_eq!(req.headers()[header::HOST], "127.0.0.1:8080");
            let xff: Ipv4Addr = req.headers()["x-forwarded-for"].to_str().unwrap().parse().unwrap();
            assert!((1..=10).contains(&(u32::from(xff) - u32::from(Ipv4Addr::new(198, 18, 0, 0)))));

            let form = t.request(Kind::Form, &mut rng).unwrap();
            let (id, query) = form.uri().path_and_query().unwrap().as_str().split_once('?').unwrap();
            let id: u64 = id.strip_prefix("/Demarches/").unwrap().parse().unwrap();
            let key = query.rsplit_once("key=").unwrap().1;
            assert!(signer.verify(id, key), "{query}");

            let vote = t.request(Kind::Vote, &mut rng).unwrap();
            assert_eq!(vote.method(), Method::POST);
            assert!(["/Demarches/42/avis", "/Demarches/43/avis"].contains(&vote.uri().path()));
            assert_eq!(vote.headers()[header::CONTENT_TYPE], "application/x-www-form-urlencoded");
            assert_eq!(vote.headers()["sec-fetch-site"], "same-origin", "as a browser posting our form");
            let id: u64 =
                vote.uri().path().trim_start_matches("/Demarches/").trim_end_matches("/avis").parse().unwrap();
            let body = vote.into_body().collect().await.unwrap().to_bytes();
            let posted = widget_server::form::parse_vote(&body);
            assert!(signer.verify(id, &posted.key), "the key in the body is the one of the démarche posted to");
        }
        let gz = t.request(Kind::ButtonGzip, &mut rng).unwrap();
        assert_eq!(gz.headers()[header::ACCEPT_ENCODING], "gzip");
    }

    #[test]
    fn xff_addresses_stay_in_the_benchmark_range() {
        let net = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        for i in [0, 1, MAX_XFF - 1, MAX_XFF, u32::MAX] {
            let ip = u32::from(xff_address(i));
            assert!(ip > net && ip < net + (1 << 17) - 1, "{i}: {}", xff_address(i));
        }
    }
}
