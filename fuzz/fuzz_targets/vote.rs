//! An arbitrary vote body through what `intake::take_vote` does with it once read: parse and
//! validate, check the key; then either the form re-rendered with its messages, or the comment
//! scrubbed, the vote accepted and written as its journal line.
//!
//! Beyond « never panics », it checks what `form::parse_vote` promises whatever the body, and
//! that the journal line of an accepted vote is one line that reads back as the same vote.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use snippet::KeySigner;
use widget_server::catalogue::{Demarche, PrivacyNotice};
use widget_server::form::{self, Chrome, FormView};
use widget_server::privacy;
use widget_server::vote::{Vote, AIDE, MAX_COMMENT_CHARS};

/// The démarche every body is posted to. The seeds carry its key for [`SIGNER`]'s secret.
const DEMARCHE_ID: i64 = 42;

static SIGNER: LazyLock<KeySigner> = LazyLock::new(|| KeySigner::new(b"fuzzing secret: not the server one, 32+ bytes"));

static CHROME: LazyLock<Chrome> = LazyLock::new(|| Chrome::plain("/static/avis.0123abcd.css"));

static DEMARCHE: LazyLock<Demarche> = LazyLock::new(|| Demarche {
    id: DEMARCHE_ID,
    name: "Demande de carte grise".into(),
    administration: "Agence nationale des titres sécurisés".into(),
    volume_annuel: Some(12_000),
    high_volume_approved: false,
    active: true,
    merged_into: None,
    privacy: PrivacyNotice::default(),
});

fuzz_target!(|body: &[u8]| {
    let mut posted = form::parse_vote(body);

    assert!(posted.key.chars().count() <= 64, "key not bounded: {:?}", posted.key);
    assert!(snippet::is_valid_source(posted.source.as_str()));
    assert!(usize::from(posted.answers.aide) < 1 << AIDE.len());
    if let Some(comment) = &posted.answers.commentaire {
        assert!(!comment.is_empty() && comment.trim() == &**comment, "comment not trimmed: {comment:?}");
        assert!(
            !comment.chars().any(|c| c == '\r' || (c.is_control() && c != '\n' && c != '\t')),
            "control character kept in {comment:?}"
        );
    }
    if posted.errors.is_empty() {
        assert!(posted.answers.satisfaction.is_some(), "no error but no satisfaction");
        let chars = posted.answers.commentaire.as_deref().map_or(0, |c| c.chars().count());
        assert!(chars <= MAX_COMMENT_CHARS, "comment of {chars} characters accepted");
    }

    // Intake refuses a bad key here; both branches below still run whatever the key, so the
    // fuzzer does not have to forge one to reach them.
    let _key_ok = SIGNER.verify(DEMARCHE_ID as u64, &posted.key);

    match posted.answers.satisfaction {
        Some(satisfaction) if posted.errors.is_empty() => {
            let had_comment = posted.answers.commentaire.is_some();
            privacy::scrub_comment(&mut posted.answers.commentaire);
            assert_eq!(posted.answers.commentaire.is_some(), had_comment);
            let vote = Vote::accept(DEMARCHE_ID, posted.source, satisfaction, posted.answers);
            // The journal appends one JSON line per vote and replays it at start.
            let line = serde_json::to_vec(&vote).expect("a vote always serialises");
            assert!(!line.contains(&b'\n'), "journal line spans lines");
            let back: Vote = serde_json::from_slice(&line).expect("a journal line reads back");
            assert_eq!(back, vote);
        }
        _ => {
            let view = FormView {
                chrome: &CHROME,
                demarche: &DEMARCHE,
                key: &posted.key,
                source: posted.source,
                answers: &posted.answers,
                errors: &posted.errors,
            };
            let page = form::form_page(&view).into_string();
            // The page has no script of its own: one would be the citizen's text unescaped.
            assert!(!page.contains("<script"), "unescaped input in the form page");
        }
    }
});
