//! Static assets (buttons, CSS): embedded at build time, compressed once at start, served for
//! edge caching (DESIGN §8).
//!
//! Every response is prepared before the first request: bytes, gzip and brotli variants, strong
//! ETags, header values. Serving one is a lookup, an `Accept-Encoding` choice and a few `Bytes`
//! clones, so a CDN miss costs microseconds and a revalidation is a 304 with no body.

use std::io::Write;

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::http::{full, if_none_match_hits, Body};

/// `Cache-Control` of stable URLs (pasted in porteurs' pages forever): browsers recheck daily,
/// the CDN weekly, and may serve stale copies while revalidating or when we are down.
pub const CACHE_STABLE: &str = "max-age=86400, s-maxage=604800, stale-while-revalidate=86400, stale-if-error=604800";
/// `Cache-Control` of content-hashed URLs: the URL changes when the bytes do.
pub const CACHE_IMMUTABLE: &str = "max-age=31536000, immutable";
/// SVG may carry script; this makes sure no browser runs any, even opened directly (the buttons
/// use presentation attributes, never a style element, so they need nothing more).
const SVG_CSP: &str = "default-src 'none'";
/// Lets porteurs' pages on any origin embed the buttons even under a strict COEP.
const CORP: header::HeaderName = header::HeaderName::from_static("cross-origin-resource-policy");

struct Source {
    /// Name without extension, e.g. `bouton-bleu`.
    stem: &'static str,
    ext: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// Served at `/static/{stem}.{ext}` too, not only at the hashed URL.
    stable: bool,
}

const SOURCES: &[Source] = &[
    Source {
        stem: "bouton-bleu",
        ext: "svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/bouton-bleu.svg"),
        stable: true,
    },
    Source {
        stem: "bouton-blanc",
        ext: "svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/bouton-blanc.svg"),
        stable: true,
    },
    Source {
        stem: "avis",
        ext: "css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/avis.css"),
        stable: false,
    },
    // The console's additions to avis.css (forms, tables, navigation): kept apart so that the
    // citizen form stays under 10 kB.
    Source {
        stem: "console",
        ext: "css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/console.css"),
        stable: false,
    },
];

/// `/static/{stem}.{first 12 hex of sha256}.{ext}`.
fn hashed_path(src: &Source, hash: &str) -> String {
    format!("/static/{}.{}.{}", src.stem, &hash[..12], src.ext)
}

/// The content-hashed URL path of the embedded asset named `stem`, without building the
/// served variants (for the console, which is set up before the server).
pub fn hashed_href(stem: &str) -> Option<String> {
    let src = SOURCES.iter().find(|s| s.stem == stem)?;
    Some(hashed_path(src, &hex::encode(Sha256::digest(src.bytes))))
}

/// One encoding of an asset.
struct Variant {
    body: Bytes,
    etag: HeaderValue,
    content_length: HeaderValue,
}

/// An asset ready to serve.
struct Asset {
    content_type: HeaderValue,
    is_svg: bool,
    /// Hex sha256 of the identity bytes; the ETag of each variant starts with it.
    hash: String,
    identity: Variant,
    gzip: Option<Variant>,
    brotli: Option<Variant>,
}

/// Which bytes to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

/// All assets, by URL path.
pub struct Assets {
    /// (path, asset index, cache-control) — a handful of entries, so a linear scan beats hashing.
    routes: Vec<(String, usize, HeaderValue)>,
    assets: Vec<Asset>,
    css_href: String,
}

impl Assets {
    /// Compresses and hashes every embedded asset. Takes a few milliseconds (brotli level 11).
    pub fn build() -> Assets {
        let mut routes = Vec::new();
        let mut assets = Vec::new();
        let mut css_href = String::new();
        for (i, src) in SOURCES.iter().enumerate() {
            let hash = hex::encode(Sha256::digest(src.bytes));
            let hashed_path = hashed_path(src, &hash);
            if src.stem == "avis" {
                css_href = hashed_path.clone();
            }
            routes.push((hashed_path, i, HeaderValue::from_static(CACHE_IMMUTABLE)));
            if src.stable {
                routes.push((format!("/static/{}.{}", src.stem, src.ext), i, HeaderValue::from_static(CACHE_STABLE)));
            }
            let identity = variant(Bytes::from_static(src.bytes), &hash, "");
            let gzip = smaller(gzip(src.bytes), src.bytes.len()).map(|b| variant(b, &hash, "-gz"));
            let brotli = smaller(brotli(src.bytes), src.bytes.len()).map(|b| variant(b, &hash, "-br"));
            assets.push(Asset {
                content_type: HeaderValue::from_static(src.content_type),
                is_svg: src.ext == "svg",
                hash,
                identity,
                gzip,
                brotli,
            });
        }
        Assets { routes, assets, css_href }
    }

    /// The content-hashed URL path of the form stylesheet.
    pub fn css_href(&self) -> &str {
        &self.css_href
    }

    /// Answers a GET or HEAD of `path`, or `None` if no asset lives there.
    pub fn serve(&self, path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
        let (_, index, cache_control) = self.routes.iter().find(|(p, _, _)| p == path)?;
        let asset = &self.assets[*index];
        let encoding = choose_encoding(headers.get(header::ACCEPT_ENCODING), asset);
        let v = match encoding {
            Encoding::Brotli => asset.brotli.as_ref().unwrap_or(&asset.identity),
            Encoding::Gzip => asset.gzip.as_ref().unwrap_or(&asset.identity),
            Encoding::Identity => &asset.identity,
        };
        let not_modified =
            headers.get(header::IF_NONE_MATCH).is_some_and(|inm| if_none_match_hits(inm.as_bytes(), &asset.hash));
        // For HEAD, hyper sends the headers of this response (Content-Length included) and
        // drops the body.
        let (status, body) =
            if not_modified { (StatusCode::NOT_MODIFIED, Bytes::new()) } else { (StatusCode::OK, v.body.clone()) };
        let mut res = Response::new(full(body));
        *res.status_mut() = status;
        // Sized for every header below, so the map never regrows while we fill it.
        *res.headers_mut() = HeaderMap::with_capacity(16);
        let h = res.headers_mut();
        h.insert(header::ETAG, v.etag.clone());
        h.insert(header::CACHE_CONTROL, cache_control.clone());
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        if status == StatusCode::OK {
            h.insert(header::CONTENT_TYPE, asset.content_type.clone());
            h.insert(header::CONTENT_LENGTH, v.content_length.clone());
            match encoding {
                Encoding::Brotli if asset.brotli.is_some() => {
                    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
                }
                Encoding::Gzip if asset.gzip.is_some() => {
                    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                _ => {}
            }
        }
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if asset.is_svg {
            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(SVG_CSP));
            h.insert(CORP, HeaderValue::from_static("cross-origin"));
        }
        Some(res)
    }
}

fn variant(body: Bytes, hash: &str, suffix: &str) -> Variant {
    Variant {
        etag: HeaderValue::from_str(&format!("\"{hash}{suffix}\"")).unwrap_or_else(|_| unreachable!()),
        content_length: HeaderValue::from(body.len()),
        body,
    }
}

/// Keeps a compressed variant only if it saves bytes.
fn smaller(compressed: Vec<u8>, original: usize) -> Option<Bytes> {
    (compressed.len() < original).then(|| Bytes::from(compressed))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    enc.write_all(bytes).and_then(|_| enc.finish()).unwrap_or_default()
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    match brotli::BrotliCompress(&mut &bytes[..], &mut out, &params) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}

/// Picks the encoding to send: brotli, then gzip, then identity, among those the client accepts
/// with a non-zero q-value (RFC 9110 §12.5.3) and that we have.
fn choose_encoding(accept: Option<&HeaderValue>, asset: &Asset) -> Encoding {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Encoding::Identity;
    };
    let (mut br, mut gz) = (false, false);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if q_zero {
            continue;
        }
        if coding.eq_ignore_ascii_case("br") {
            br = true;
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gz = true;
        } else if coding == "*" {
            br = true;
            gz = true;
        }
    }
    if br && asset.brotli.is_some() {
        Encoding::Brotli
    } else if gz && asset.gzip.is_some() {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_smaller_compressed_variants() {
        let a = Assets::build();
        for asset in &a.assets {
            let id = asset.identity.body.len();
            assert!(asset.gzip.as_ref().is_some_and(|g| g.body.len() < id));
            assert!(asset.brotli.as_ref().is_some_and(|b| b.body.len() < id));
        }
        assert!(a.css_href().starts_with("/static/avis.") && a.css_href().ends_with(".css"));
        assert_eq!(hashed_href("avis").as_deref(), Some(a.css_href()));
        let console = hashed_href("console").unwrap();
        assert!(console.starts_with("/static/console.") && a.serve(&console, &HeaderMap::new()).is_some());
    }

    #[test]
    fn buttons_are_small() {
        for src in SOURCES.iter().filter(|s| s.ext == "svg") {
            assert!(src.bytes.len() < 3 * 1024, "{} is {} bytes", src.stem, src.bytes.len());
        }
    }

    #[test]
    fn encoding_negotiation() {
        let a = Assets::build();
        let asset = &a.assets[0];
        let pick = |s: &str| choose_encoding(Some(&HeaderValue::from_str(s).unwrap()), asset);
        assert_eq!(choose_encoding(None, asset), Encoding::Identity);
        assert_eq!(pick("gzip, deflate, br"), Encoding::Brotli);
        assert_eq!(pick("gzip"), Encoding::Gzip);
        assert_eq!(pick("br;q=0, gzip;q=0.5"), Encoding::Gzip);
        assert_eq!(pick("br;q=0.0,gzip;q=0"), Encoding::Identity);
        assert_eq!(pick("*"), Encoding::Brotli);
        assert_eq!(pick("identity"), Encoding::Identity);
    }

    #[test]
    fn if_none_match_forms() {
        let h = "abc123";
        assert!(if_none_match_hits(b"\"abc123\"", h));
        assert!(if_none_match_hits(b"\"abc123-gz\"", h));
        assert!(if_none_match_hits(b"W/\"abc123-br\"", h));
        assert!(if_none_match_hits(b"\"zzz\", \"abc123\"", h));
        assert!(if_none_match_hits(b"*", h));
        assert!(!if_none_match_hits(b"\"abc124\"", h));
        assert!(!if_none_match_hits(b"abc123", h));
        assert!(!if_none_match_hits(b"\"abc123-xx\"", h));
    }
}
