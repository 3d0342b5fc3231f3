//! `KeySigner::verify` on arbitrary secrets, démarche ids and key strings: never panics, and a
//! key verifies exactly when it is the démarche's signed key, in any letter case.
//!
//! Random strings almost never come near a real key, so half of the inputs start from the real
//! key and edit it (characters replaced, letters upper-cased, cut, extended): near misses and
//! case changes are what the property is about.
//!
//! The seeds (`fuzz/seeds/key/`) are inputs laid out as `arbitrary` reads them: the secret, the
//! two ids (little-endian u64), the variant (u32, below 2^31 for `Raw`), the key or the edits,
//! then the secret's length as the last byte. The real ones use the vote target's secret.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use snippet::{KeySigner, KEY_HEX_LEN};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a [u8],
    demarche_id: u64,
    /// Another démarche the same key is tried on.
    other_id: u64,
    key: Key<'a>,
}

#[derive(Arbitrary, Debug)]
enum Key<'a> {
    /// Any string.
    Raw(&'a str),
    /// The real key of `demarche_id`, edited.
    Edited {
        /// (position, character): the character at `position % 32` replaced.
        replace: Vec<(u8, char)>,
        /// Positions (modulo 32) whose letter is upper-cased.
        upper: Vec<u8>,
        /// Keep only the first `keep % 33` characters, when set.
        keep: Option<u8>,
        suffix: &'a str,
    },
}

fuzz_target!(|input: Input| {
    let signer = KeySigner::new(input.secret);
    let signed = signer.sign(input.demarche_id);
    assert_eq!(signed.len(), KEY_HEX_LEN);
    assert!(signed.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{signed:?}");

    let key = match input.key {
        Key::Raw(s) => s.to_string(),
        Key::Edited { replace, upper, keep, suffix } => {
            let mut chars: Vec<char> = signed.chars().collect();
            for (at, c) in replace {
                chars[usize::from(at) % KEY_HEX_LEN] = c;
            }
            for at in upper {
                let c = &mut chars[usize::from(at) % KEY_HEX_LEN];
                *c = c.to_ascii_uppercase();
            }
            if let Some(keep) = keep {
                chars.truncate(usize::from(keep) % (KEY_HEX_LEN + 1));
            }
            chars.into_iter().chain(suffix.chars()).collect()
        }
    };

    for id in [input.demarche_id, input.other_id] {
        let expected = key.eq_ignore_ascii_case(&signer.sign(id));
        assert_eq!(signer.verify(id, &key), expected, "démarche {id}, key {key:?}");
    }
});
