//! Criterion benches of the hot-path pieces, each guarding one cost a vote or a button pays.
//!
//! Run: `cargo bench -p monavis-benches` (HTML reports in target/criterion). Figures are only
//! comparable within one run on one machine; `scripts/bench.sh` puts them beside baselines.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use snippet::KeySigner;
use widget_server::buffer::BufferedVotes;
use widget_server::catalogue::Demarche;
use widget_server::form::{self, FieldErrors, FormView};
use widget_server::privacy;
use widget_server::store::aggregate;
use widget_server::vote::{Answers, Level, Source, Vote};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn typical_body(key: &str) -> String {
    format!(
        "key={key}&nd_source=button&satisfaction=bien&facilite=moyen&clarte=clair&aide=proche&aide=agent\
         &commentaire=Tr%C3%A8s+bien+expliqu%C3%A9%2C+mais+le+d%C3%A9lai+%C3%A9tait+long.&site_web="
    )
}

/// Key verification runs on every form view and every vote: one HMAC-SHA256 and a
/// constant-time compare. Protects against a slower MAC or an allocation sneaking in.
fn key_verify(c: &mut Criterion) {
    let signer = KeySigner::new(SECRET);
    let key = signer.sign(123_456);
    c.bench_function("key_verify", |b| b.iter(|| signer.verify(black_box(123_456), black_box(&key))));
}

/// Parsing and validating a posted form: the CPU of a vote. Protects against quadratic
/// validation and needless copies of the comment.
fn parse_validate(c: &mut Criterion) {
    let signer = KeySigner::new(SECRET);
    let body = typical_body(&signer.sign(42));
    let mut g = c.benchmark_group("vote");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_validate", |b| b.iter(|| form::parse_vote(black_box(body.as_bytes()))));
    g.bench_function("parse_validate_verify", |b| {
        b.iter(|| {
            let posted = form::parse_vote(black_box(body.as_bytes()));
            assert!(posted.errors.is_empty());
            signer.verify(42, &posted.key)
        })
    });
    g.finish();
}

/// The headers Chromium sends with a vote posted from our form, `Sec-Fetch-Site` among them
/// (`same-origin`), or without that header (an old browser): all read by the cross-site check.
fn browser_post_headers(sec_fetch_site: bool) -> hyper::HeaderMap {
    let mut h = hyper::HeaderMap::new();
    for (name, value) in [
        ("host", "avis.example.fr"),
        ("connection", "keep-alive"),
        ("content-length", "212"),
        ("cache-control", "max-age=0"),
        ("origin", "https://avis.example.fr"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("upgrade-insecure-requests", "1"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-user", "?1"),
        ("sec-fetch-dest", "document"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("accept-language", "fr-FR,fr;q=0.9"),
    ] {
        if sec_fetch_site || name != "sec-fetch-site" {
            h.insert(name, hyper::header::HeaderValue::from_static(value));
        }
    }
    h
}

/// The first check of every vote: does the browser say it was posted from another site? One
/// header lookup; protects against an allocation or a parse creeping into it.
fn cross_site_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("vote");
    g.throughput(Throughput::Elements(1));
    for (name, present) in [("cross_site_check", true), ("cross_site_check_no_header", false)] {
        let headers = browser_post_headers(present);
        g.bench_function(name, |b| b.iter(|| widget_server::intake::from_another_site(black_box(&headers))));
    }
    g.finish();
}

/// A typical comment without personal data, about 300 characters, fewer than ten digits.
const CLEAN_COMMENT: &str = "Démarche faite en ligne un dimanche soir. Le formulaire était clair mais la pièce \
    justificative n'était pas acceptée au format PDF, j'ai dû recommencer deux fois. L'agent au téléphone a été \
    très aimable et m'a expliqué quoi faire. Réponse reçue en 15 jours, c'est correct. Merci pour ce service !";

/// About 300 characters of dates, times, amounts and a postcode, no personal data: past the
/// pre-filter, the regular expression runs and finds nothing.
const DIGITS_COMMENT: &str = "Dossier n° 12345 déposé le 01/02/2024 à 14h30, relancé le 15/03/2024. J'ai payé \
    1 250,00 € de frais pour mon logement au 12 rue de la Paix, 75015 Paris. Réponse en 45 jours au lieu des 30 \
    annoncés, soit 50 % de plus. Le site était lent mais l'agent a été très aimable. Merci.";

/// An e-mail address, a phone number and a NIR.
const PERSONAL_COMMENT: &str = "Bonjour, je suis joignable à jean.dupont@gmail.com ou au 06 12 34 56 78. Mon \
    numéro de sécurité sociale est le 1 85 05 78 006 084 36, vous pouvez vérifier. Le dossier a mis trois \
    semaines à arriver, merci de me rappeler.";

/// `s` as a form value (application/x-www-form-urlencoded).
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => char::from(b).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What scrubbing personal data out of the comment (DESIGN §13) adds to a vote: parsing a vote
/// with a ~300-character comment with and without the scrub, then the scrub alone on clean
/// comments (which the pre-filter lets through after one byte scan, or not when they hold ten
/// digits or more) and on one holding an e-mail, a phone number and a NIR.
fn scrub(c: &mut Criterion) {
    let key = KeySigner::new(SECRET).sign(42);
    let body = |comment: &str| {
        format!(
            "key={key}&nd_source=button&satisfaction=bien&facilite=moyen&clarte=clair&aide=proche&commentaire={}",
            form_encode(comment)
        )
    };
    let (clean_body, digits_body) = (body(CLEAN_COMMENT), body(DIGITS_COMMENT));
    let clean_2000: String = CLEAN_COMMENT.chars().cycle().take(2000).collect();
    let mut g = c.benchmark_group("scrub");
    g.throughput(Throughput::Elements(1));
    for (name, body) in [("300_clean", &clean_body), ("300_digits", &digits_body)] {
        g.bench_function(format!("parse_validate_{name}"), |b| b.iter(|| form::parse_vote(black_box(body.as_bytes()))));
        g.bench_function(format!("parse_validate_scrub_{name}"), |b| {
            b.iter(|| {
                let mut posted = form::parse_vote(black_box(body.as_bytes()));
                privacy::scrub_comment(&mut posted.answers.commentaire);
                posted
            })
        });
    }
    let alone = [
        ("300_clean", CLEAN_COMMENT),
        ("2000_clean", clean_2000.as_str()),
        ("300_digits", DIGITS_COMMENT),
        ("email_phone_nir", PERSONAL_COMMENT),
    ];
    for (name, comment) in alone {
        g.bench_function(format!("alone_{name}"), |b| b.iter(|| privacy::scrub(black_box(comment)).len()));
    }
    g.finish();
}

/// Rendering the form page (maud): every CDN miss on a form link pays it.
fn form_render(c: &mut Criterion) {
    let d = Demarche {
        id: 42,
        name: "Demande de carte grise".into(),
        administration: "Agence nationale des titres sécurisés".into(),
        volume_annuel: None,
        high_volume_approved: false,
        active: true,
        merged_into: None,
        privacy: Default::default(),
    };
    let key = KeySigner::new(SECRET).sign(42);
    let answers = Answers::default();
    let errors = FieldErrors::default();
    let chrome = form::Chrome::plain("/static/avis.0123456789ab.css");
    // French, and Arabic (right to left, two bytes a letter): the heaviest page.
    for (name, lang) in [("form_render", snippet::Lang::Fr), ("form_render/ar", snippet::Lang::Ar)] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let view = FormView {
                    chrome: &chrome,
                    demarche: &d,
                    key: &key,
                    source: Source::default(),
                    lang,
                    answers: &answers,
                    errors: &errors,
                };
                form::form_page(black_box(&view)).into_string().len()
            })
        });
    }
}

fn vote(demarche: i64) -> Vote {
    Vote::accept(demarche, Source::default(), Level::Good, Answers::default())
}

/// Accepting a vote: clock read and UUIDv7 (random bits from a thread-local RNG, not a syscall).
fn vote_accept(c: &mut Criterion) {
    c.bench_function("vote_accept", |b| b.iter(|| vote(black_box(1))));
}

/// Pushing into the buffer: one shard lock and an atomic. Single thread, then 2 and 4 threads
/// pushing to the same démarche (the worst case: one hot shard) and to different ones.
fn buffer_push(c: &mut Criterion) {
    let mut g = c.benchmark_group("buffer_push");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_thread", |b| {
        let buffer = BufferedVotes::new(usize::MAX / 2, usize::MAX / 2);
        b.iter_batched(|| vote(1), |v| buffer.push(v), BatchSize::SmallInput);
        buffer.drain();
    });
    for threads in [2usize, 4] {
        for same_demarche in [true, false] {
            let name =
                format!("{threads}_threads_{}", if same_demarche { "same_demarche" } else { "distinct_demarches" });
            g.bench_function(&name, |b| {
                b.iter_custom(|iters| {
                    let buffer = Arc::new(BufferedVotes::new(usize::MAX / 2, usize::MAX / 2));
                    let per_thread = iters / threads as u64 + 1;
                    let start = Instant::now();
                    let handles: Vec<_> = (0..threads)
                        .map(|t| {
                            let buffer = buffer.clone();
                            std::thread::spawn(move || {
                                let d = if same_demarche { 1 } else { t as i64 + 1 };
                                for _ in 0..per_thread {
                                    let _ = buffer.push(vote(d));
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        let _ = h.join();
                    }
                    let took = start.elapsed();
                    drop(buffer.drain());
                    // Per push, as if one thread had done them all: throughput of the whole.
                    took.mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
                })
            });
        }
    }
    g.finish();
}

/// What the flusher computes in Rust per batch besides the COPY: the avis_daily aggregates
/// (Paris day of each vote, per-(démarche, day, source) counters). 10,000 votes, the default batch.
fn flush_aggregate(c: &mut Criterion) {
    let votes: Vec<Vote> = (0..10_000).map(|i| vote(i % 7)).collect();
    let refs: Vec<&Vote> = votes.iter().collect();
    let mut g = c.benchmark_group("flush");
    g.throughput(Throughput::Elements(votes.len() as u64));
    g.bench_function("aggregate_10k", |b| b.iter(|| aggregate(black_box(&refs)).len()));
    g.finish();
}

/// What counting a request costs (issue 23): the two clock reads around it and the record into
/// the route class's counter and histogram; one thread, then 2 threads recording the same class
/// at once (their counters share cache lines: the worst case on two cores).
fn request_metrics(c: &mut Criterion) {
    use widget_server::metrics::{Metrics, RouteClass};
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(1));
    let metrics = Metrics::default();
    g.bench_function("request_record", |b| {
        b.iter(|| {
            let started = Instant::now();
            metrics.request(black_box(RouteClass::vote), black_box(303), started.elapsed())
        })
    });
    g.bench_function("request_record_2_threads", |b| {
        b.iter_custom(|iters| {
            let metrics = Arc::new(Metrics::default());
            let per_thread = iters / 2 + 1;
            let start = Instant::now();
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let metrics = metrics.clone();
                    std::thread::spawn(move || {
                        for _ in 0..per_thread {
                            let started = Instant::now();
                            metrics.request(black_box(RouteClass::vote), black_box(303), started.elapsed());
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
            // Per request, as if one thread had done them all.
            start.elapsed().mul_f64(iters as f64 / (per_thread * 2) as f64)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = key_verify, vote_accept, parse_validate, cross_site_check, scrub, form_render, buffer_push, flush_aggregate,
        request_metrics
}
criterion_main!(benches);
