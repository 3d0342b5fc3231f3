//! `privacy::scrub` on arbitrary UTF-8: never panics; a comment without `@` and with fewer than
//! `MIN_DIGITS` ASCII digits comes back as it is, borrowed; and scrubbing twice gives what
//! scrubbing once gave (what replaces personal data, « [supprimé] », never makes a new match).

#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use widget_server::privacy::{scrub, MIN_DIGITS};

fuzz_target!(|comment: &str| {
    let once = scrub(comment);
    let digits = comment.bytes().filter(u8::is_ascii_digit).count();
    if !comment.contains('@') && digits < MIN_DIGITS {
        assert!(matches!(once, Cow::Borrowed(c) if c == comment), "changed: {comment:?} → {once:?}");
    }
    let twice = scrub(&once);
    assert_eq!(twice, once, "not idempotent on {comment:?}");
});
