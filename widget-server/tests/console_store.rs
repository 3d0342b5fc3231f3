//! One conformance suite for the console's store, run against both backends: SQLite (a temporary
//! file) and a fresh database on the ephemeral PostgreSQL cluster of scripts/test.sh. Same calls,
//! same answers, including when two callers race.
//!
//! SQLite keeps times to the millisecond, so every time used here is whole milliseconds and every
//! time read back is compared at that precision.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures_util::{StreamExt, TryStreamExt};
use widget_server::catalogue::{Demarche, PrivacyNotice};
use widget_server::console::store::{
    self as console, Account, AccountDetails, AccountStatus, ApiKey, AuditEntry, AvisFilter, AvisRow, Claim,
    ConsoleStore, Criteria, DemarcheDetails, DemarcheRow, EmailRetry, EnLigne, Merged, NewAccount, OutboxStats,
    ProConnectIdentity, ProConnectLink, ProConnectLogIn, SignUp, TokenKind, TokenState,
};
use widget_server::stats::Counts;
use widget_server::store::{self, Store};
use widget_server::vote::{Answers, Lang, Level, Question, Source, Vote};

type Console = Arc<dyn ConsoleStore>;

/// `t` truncated to the millisecond.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).expect("a time in range")
}

fn now() -> DateTime<Utc> {
    ms(Utc::now())
}

/// A hash no other call returns (sessions and links are stored by their SHA-256).
fn fresh_hash() -> [u8; 32] {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let mut h = [0xa5u8; 32];
    h[..4].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    h
}

fn new_account(email: &str, name: &str) -> NewAccount {
    NewAccount { email: email.into(), name: name.into(), administration: format!("Administration de {name}") }
}

/// A password hash as the confirmation page would store it.
fn phc(name: &str) -> String {
    format!("$argon2id$v=19$m=19456,t=2,p=1$c2VsJ3tuYW1lfQ${name}")
}

/// Signs up `new` with a fresh confirmation link valid one hour; the outcome and the link.
async fn sign_up(s: &Console, new: NewAccount, t: DateTime<Utc>) -> (SignUp, [u8; 32]) {
    let link = fresh_hash();
    (s.sign_up(new, link, t, t + Duration::hours(1)).await.unwrap(), link)
}

async fn created(s: &Console, email: &str, t: DateTime<Utc>) -> i64 {
    match sign_up(s, new_account(email, "Porteur"), t).await.0 {
        SignUp::Created(id) => id,
        other => panic!("{email}: expected Created, got {other:?}"),
    }
}

/// The state of a link, without its details.
async fn peek(s: &Console, hash: [u8; 32], kind: TokenKind, t: DateTime<Utc>) -> TokenState {
    s.peek_token(hash, kind, t).await.unwrap().0
}

async fn account_id(s: &Console, email: &str) -> i64 {
    s.account_by_email(email.into()).await.unwrap().expect("signed up").id
}

async fn account(s: &Console, id: i64) -> Account {
    s.account_by_id(id).await.unwrap().unwrap_or_else(|| panic!("account {id} exists"))
}

async fn accounts(s: &Console) {
    let t0 = now();
    assert_eq!(s.account_by_email("camille@interieur.gouv.fr".into()).await.unwrap(), None);
    assert_eq!(s.account_by_id(987_654).await.unwrap(), None);
    assert!(s.admins().await.unwrap().is_empty());

    // Created: unconfirmed, no password, not an administrator, as given; its link proposes the
    // sign-up's details.
    let first = new_account("camille@interieur.gouv.fr", "Camille");
    let (SignUp::Created(id), first_link) = sign_up(s, first.clone(), t0).await else {
        panic!("a new address is created")
    };
    let a = s.account_by_email(first.email.clone()).await.unwrap().expect("found by address");
    assert_eq!(a.id, id);
    assert_eq!(a.email, "camille@interieur.gouv.fr");
    assert_eq!((a.name.as_str(), a.administration.as_str()), ("Camille", "Administration de Camille"));
    assert_eq!(a.password_hash, "", "no password before confirmation");
    assert_eq!(a.status, AccountStatus::Unconfirmed);
    assert!(!a.is_admin);
    assert_eq!(ms(a.created_at), t0);
    assert_eq!(a.domain(), "interieur.gouv.fr");
    assert_eq!(account(s, id).await, a, "by id and by address agree");
    let proposed = AccountDetails { name: "Camille".into(), administration: "Administration de Camille".into() };
    assert_eq!(
        s.peek_token(first_link, TokenKind::Confirm, t0).await.unwrap(),
        (TokenState::Valid(id), Some(proposed))
    );

    // Signed up again while unconfirmed (the attack: an intruder first, the owner next, or the
    // other way round): the account is unchanged, the earlier link is revoked, the new one is
    // the only live one and proposes the new details.
    let second = new_account("camille@interieur.gouv.fr", "Dominique");
    let (outcome, second_link) = sign_up(s, second.clone(), t0 + Duration::minutes(1)).await;
    assert_eq!(outcome, SignUp::Unconfirmed(id));
    assert_eq!(account(s, id).await, a, "unchanged by the second sign-up itself");
    assert_eq!(peek(s, first_link, TokenKind::Confirm, t0).await, TokenState::Revoked);
    let chosen = AccountDetails { name: "Dominique D.".into(), administration: "ANTS".into() };
    assert!(
        s.confirm_account(first_link, chosen.clone(), phc("intrus"), t0).await.unwrap() == TokenState::Revoked,
        "the older mail cannot confirm"
    );
    assert_eq!(account(s, id).await.password_hash, "", "and set nothing");
    let (state, details) = s.peek_token(second_link, TokenKind::Confirm, t0).await.unwrap();
    assert_eq!(state, TokenState::Valid(id));
    assert_eq!(details.map(|d| d.name), Some("Dominique".to_string()));
    // Confirming sets the details and the password chosen on the page, creation time kept.
    assert_eq!(s.confirm_account(second_link, chosen.clone(), phc("owner"), t0).await.unwrap(), TokenState::Valid(id));
    let a = account(s, id).await;
    assert_eq!((a.name.as_str(), a.administration.as_str()), ("Dominique D.", "ANTS"));
    assert_eq!(a.password_hash, phc("owner"));
    assert_eq!(a.status, AccountStatus::Unconfirmed, "confirming is the caller's next step");
    assert_eq!(ms(a.created_at), t0);
    assert_eq!(s.confirm_account(second_link, chosen, phc("again"), t0).await.unwrap(), TokenState::Used);
    assert_eq!(account(s, id).await.password_hash, phc("owner"));

    // Addresses are unique: another one is another account.
    let other = created(s, "claude@ants.gouv.fr", t0).await;
    assert_ne!(other, id);
    assert_eq!(account(s, other).await.email, "claude@ants.gouv.fr");
    assert_eq!(account(s, id).await.email, "camille@interieur.gouv.fr");

    // Compare-and-set: only the first of two identical moves happens.
    assert!(s.set_status(id, AccountStatus::Unconfirmed, AccountStatus::Pending, t0).await.unwrap());
    assert!(!s.set_status(id, AccountStatus::Unconfirmed, AccountStatus::Pending, t0).await.unwrap());
    assert!(!s.set_status(id, AccountStatus::Active, AccountStatus::Unconfirmed, t0).await.unwrap(), "wrong `from`");
    assert_eq!(account(s, id).await.status, AccountStatus::Pending);
    assert!(
        !s.set_status(987_654, AccountStatus::Pending, AccountStatus::Active, t0).await.unwrap(),
        "no such account"
    );

    // Exists once confirmed: nothing changes, and the link given is not recorded.
    let before = account(s, id).await;
    let (outcome, unrecorded) = sign_up(s, new_account("camille@interieur.gouv.fr", "Intrus"), t0).await;
    assert_eq!(outcome, SignUp::Exists(id));
    assert_eq!(account(s, id).await, before);
    assert_eq!(peek(s, unrecorded, TokenKind::Confirm, t0).await, TokenState::Unknown);

    // Pending accounts, longest waiting first (created and confirmed in the same order here).
    let later = created(s, "alix@interieur.gouv.fr", t0 + Duration::seconds(5)).await;
    assert!(s
        .set_status(later, AccountStatus::Unconfirmed, AccountStatus::Pending, t0 + Duration::seconds(30))
        .await
        .unwrap());
    let pending: Vec<i64> = s.pending_accounts().await.unwrap().iter().map(|a| a.id).collect();
    assert_eq!(pending, vec![id, later]);
    assert!(s.set_status(id, AccountStatus::Pending, AccountStatus::Active, t0).await.unwrap());
    let pending = s.pending_accounts().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0], account(s, later).await);
    assert_eq!(sign_up(s, new_account("camille@interieur.gouv.fr", "Intrus"), t0).await.0, SignUp::Exists(id));

    // An administrator is active whatever its status was.
    s.make_admin(later, t0).await.unwrap();
    let a = account(s, later).await;
    assert!(a.is_admin);
    assert_eq!(a.status, AccountStatus::Active);
    assert!(s.pending_accounts().await.unwrap().is_empty());
    s.make_admin(other, t0).await.unwrap();
    assert_eq!((account(s, other).await.status, account(s, other).await.is_admin), (AccountStatus::Active, true));
    s.make_admin(id, t0).await.unwrap();
    assert_eq!(account(s, id).await.status, AccountStatus::Active);
    assert!(account(s, id).await.is_admin);

    // Active administrators, by address; one set back to pending is not listed, nor an active
    // account that is not an administrator.
    let plain = created(s, "aaa@ants.gouv.fr", t0).await;
    assert!(s.set_status(plain, AccountStatus::Unconfirmed, AccountStatus::Active, t0).await.unwrap());
    let admins: Vec<String> = s.admins().await.unwrap().into_iter().map(|a| a.email).collect();
    assert_eq!(admins, vec!["alix@interieur.gouv.fr", "camille@interieur.gouv.fr", "claude@ants.gouv.fr"]);
    assert_eq!(s.admins().await.unwrap()[1], account(s, id).await);
    assert!(s.set_status(other, AccountStatus::Active, AccountStatus::Pending, t0).await.unwrap());
    let admins: Vec<i64> = s.admins().await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(admins, vec![later, id]);
    s.make_admin(other, t0).await.unwrap();

    // A new password changes nothing else on the account.
    let before = account(s, id).await;
    s.change_password(id, "$argon2id$v=19$nouveau".into(), None, t0).await.unwrap();
    let after = account(s, id).await;
    assert_eq!(after.password_hash, "$argon2id$v=19$nouveau");
    assert_eq!(Account { password_hash: before.password_hash.clone(), ..after }, before);
    assert_eq!(account(s, other).await.password_hash, "");

    // Two sign-ups with one new address at once: one creates, the other finds it unconfirmed,
    // and exactly one of the two links is live (the other revoked).
    for i in 0..10 {
        let email = format!("course{i}@interieur.gouv.fr");
        let ((a, la), (b, lb)) = tokio::join!(
            sign_up(s, new_account(&email, "Un"), t0),
            sign_up(s, new_account(&email, "Deux"), t0 + Duration::seconds(1))
        );
        let mut outcomes = [a, b];
        outcomes.sort_by_key(|o| matches!(o, SignUp::Unconfirmed(_)));
        let (SignUp::Created(x), SignUp::Unconfirmed(y)) = (&outcomes[0], &outcomes[1]) else {
            panic!("one Created and one Unconfirmed, got {outcomes:?}")
        };
        assert_eq!(x, y);
        assert_eq!(s.account_by_email(email).await.unwrap().unwrap().id, *x);
        let mut states = [peek(s, la, TokenKind::Confirm, t0).await, peek(s, lb, TokenKind::Confirm, t0).await];
        states.sort_by_key(|st| *st == TokenState::Revoked);
        assert_eq!(states, [TokenState::Valid(*x), TokenState::Revoked], "one live link");
    }
}

async fn tokens(s: &Console) {
    let t0 = now();
    let in_1h = t0 + Duration::hours(1);
    let (SignUp::Created(alice), confirm) = sign_up(s, new_account("alice@jeunesse.gouv.fr", "Alice"), t0).await else {
        panic!("created")
    };
    let bob = created(s, "bob@jeunesse.gouv.fr", t0).await;
    let details = || AccountDetails { name: "Alice".into(), administration: "Jeunesse".into() };

    // Peeking says valid and uses nothing; the other kind does not know the link.
    for _ in 0..2 {
        assert_eq!(peek(s, confirm, TokenKind::Confirm, t0).await, TokenState::Valid(alice));
    }
    assert_eq!(peek(s, confirm, TokenKind::Reset, t0).await, TokenState::Unknown);
    assert_eq!(s.reset_password(confirm, phc("x"), t0).await.unwrap(), (TokenState::Unknown, 0));
    assert_eq!(peek(s, fresh_hash(), TokenKind::Confirm, t0).await, TokenState::Unknown);
    assert_eq!(s.confirm_account(fresh_hash(), details(), phc("x"), t0).await.unwrap(), TokenState::Unknown);

    // Expiry: valid until just before `expires_at`, expired from it on, and using it then fails.
    let just_before = in_1h - Duration::milliseconds(1);
    assert_eq!(peek(s, confirm, TokenKind::Confirm, just_before).await, TokenState::Valid(alice));
    assert_eq!(peek(s, confirm, TokenKind::Confirm, in_1h).await, TokenState::Expired);
    assert_eq!(s.confirm_account(confirm, details(), phc("x"), in_1h).await.unwrap(), TokenState::Expired);
    assert_eq!(account(s, alice).await.password_hash, "");

    // Used once; then used, even past its expiry.
    assert_eq!(s.confirm_account(confirm, details(), phc("alice"), t0).await.unwrap(), TokenState::Valid(alice));
    assert_eq!(s.confirm_account(confirm, details(), phc("x"), t0).await.unwrap(), TokenState::Used);
    assert_eq!(peek(s, confirm, TokenKind::Confirm, t0).await, TokenState::Used);
    assert_eq!(peek(s, confirm, TokenKind::Confirm, in_1h + Duration::hours(5)).await, TokenState::Used);
    assert!(s.set_status(alice, AccountStatus::Unconfirmed, AccountStatus::Active, t0).await.unwrap());

    // A reset: password set, every session ended, every live API key revoked, sibling links
    // void; another account's untouched.
    let (sa1, sa2, sb) = (fresh_hash(), fresh_hash(), fresh_hash());
    s.create_session(sa1, alice, "c".into(), t0).await.unwrap();
    s.create_session(sa2, alice, "c".into(), t0).await.unwrap();
    s.create_session(sb, bob, "c".into(), t0).await.unwrap();
    let (ka1, ka2, kb) = (fresh_hash(), fresh_hash(), fresh_hash());
    let k1 = s.create_api_key(ka1, alice, "export".into(), t0).await.unwrap();
    s.create_api_key(ka2, alice, "tableau".into(), t0).await.unwrap();
    s.create_api_key(kb, bob, "bob".into(), t0).await.unwrap();
    assert!(s.revoke_api_key(k1, alice, t0).await.unwrap(), "already revoked: not counted again");
    let (reset_1, reset_2, reset_3, bob_reset) = (fresh_hash(), fresh_hash(), fresh_hash(), fresh_hash());
    s.insert_token(reset_1, alice, TokenKind::Reset, t0, in_1h).await.unwrap();
    s.insert_token(reset_2, alice, TokenKind::Reset, t0 + Duration::seconds(1), in_1h).await.unwrap();
    s.insert_token(reset_3, alice, TokenKind::Reset, t0 + Duration::seconds(2), in_1h).await.unwrap();
    s.insert_token(bob_reset, bob, TokenKind::Reset, t0, in_1h).await.unwrap();
    assert_eq!(s.reset_password(reset_2, phc("reset"), t0).await.unwrap(), (TokenState::Valid(alice), 1));
    assert_eq!(account(s, alice).await.password_hash, phc("reset"));
    assert!(s.session(sa1).await.unwrap().is_none() && s.session(sa2).await.unwrap().is_none());
    assert!(s.session(sb).await.unwrap().is_some());
    assert!(s.use_api_key(ka2, t0).await.unwrap().is_none(), "a key made with the old password stops");
    assert!(s.use_api_key(kb, t0).await.unwrap().is_some());
    assert!(s.api_keys(alice).await.unwrap().iter().all(|k| k.revoked_at.is_some()));
    // The older and newer siblings are void; a link sent after the use works.
    assert_eq!(peek(s, reset_1, TokenKind::Reset, t0).await, TokenState::Revoked);
    assert_eq!(s.reset_password(reset_3, phc("x"), t0).await.unwrap(), (TokenState::Revoked, 0));
    assert_eq!(account(s, alice).await.password_hash, phc("reset"));
    assert_eq!(peek(s, bob_reset, TokenKind::Reset, t0).await, TokenState::Valid(bob));
    let reset_4 = fresh_hash();
    s.insert_token(reset_4, alice, TokenKind::Reset, t0 + Duration::seconds(3), in_1h).await.unwrap();
    assert_eq!(s.reset_password(reset_4, phc("reset 4"), t0).await.unwrap(), (TokenState::Valid(alice), 0));

    // A password change from « Mon compte » voids the pending reset links and ends the other
    // sessions, the kept one stays.
    let (keep, other) = (fresh_hash(), fresh_hash());
    s.create_session(keep, alice, "c".into(), t0).await.unwrap();
    s.create_session(other, alice, "c".into(), t0).await.unwrap();
    let mailed_before = fresh_hash();
    s.insert_token(mailed_before, alice, TokenKind::Reset, t0, in_1h).await.unwrap();
    s.change_password(alice, phc("changed"), Some(keep), t0).await.unwrap();
    assert_eq!(peek(s, mailed_before, TokenKind::Reset, t0).await, TokenState::Revoked);
    assert_eq!(s.reset_password(mailed_before, phc("stale"), t0).await.unwrap(), (TokenState::Revoked, 0));
    assert_eq!(account(s, alice).await.password_hash, phc("changed"));
    assert!(s.session(keep).await.unwrap().is_some() && s.session(other).await.unwrap().is_none());
    assert_eq!(peek(s, bob_reset, TokenKind::Reset, t0).await, TokenState::Valid(bob), "another account's");

    // Two posts of one link at once: one uses it.
    for _ in 0..10 {
        let h = fresh_hash();
        s.insert_token(h, bob, TokenKind::Reset, t0, in_1h).await.unwrap();
        let (a, b) = tokio::join!(s.reset_password(h, phc("a"), t0), s.reset_password(h, phc("b"), t0));
        let mut got = [a.unwrap().0, b.unwrap().0];
        got.sort_by_key(|st| *st == TokenState::Used);
        assert_eq!(got, [TokenState::Valid(bob), TokenState::Used]);
    }
    // Two sibling links at once: one is used, the other revoked; neither call fails.
    for _ in 0..10 {
        let (h1, h2) = (fresh_hash(), fresh_hash());
        s.insert_token(h1, bob, TokenKind::Reset, t0, in_1h).await.unwrap();
        s.insert_token(h2, bob, TokenKind::Reset, t0, in_1h).await.unwrap();
        let (a, b) = tokio::join!(s.reset_password(h1, phc("a"), t0), s.reset_password(h2, phc("b"), t0));
        let mut got = [a.unwrap().0, b.unwrap().0];
        got.sort_by_key(|st| *st != TokenState::Valid(bob));
        assert_eq!(got, [TokenState::Valid(bob), TokenState::Revoked]);
    }
    // Two confirmation posts of one account's two links (sign-up twice, then both mails): one
    // confirms, the other is revoked.
    for i in 0..5 {
        let email = format!("double{i}@jeunesse.gouv.fr");
        let (_, l1) = sign_up(s, new_account(&email, "Un"), t0).await;
        assert_eq!(peek(s, l1, TokenKind::Confirm, t0).await, TokenState::Valid(account_id(s, &email).await));
        let (SignUp::Unconfirmed(id), l2) = sign_up(s, new_account(&email, "Deux"), t0).await else { panic!() };
        let (a, b) = tokio::join!(
            s.confirm_account(l1, details(), phc("1"), t0),
            s.confirm_account(l2, details(), phc("2"), t0)
        );
        assert_eq!((a.unwrap(), b.unwrap()), (TokenState::Revoked, TokenState::Valid(id)));
        assert_eq!(account(s, id).await.password_hash, phc("2"));
    }
}

async fn sessions(s: &Console) {
    let t0 = now();
    let eve = created(s, "eve@culture.gouv.fr", t0).await;
    let ivan = created(s, "ivan@culture.gouv.fr", t0).await;
    let (s1, s2, s3, s4) = (fresh_hash(), fresh_hash(), fresh_hash(), fresh_hash());
    s.create_session(s1, eve, "csrf-1".into(), t0).await.unwrap();
    s.create_session(s2, eve, "csrf-2".into(), t0).await.unwrap();
    s.create_session(s3, eve, "csrf-3".into(), t0).await.unwrap();
    s.create_session(s4, ivan, "csrf-4".into(), t0).await.unwrap();

    // Read back with its account.
    let row = s.session(s1).await.unwrap().expect("session exists");
    assert_eq!(row.account, account(s, eve).await);
    assert_eq!(row.csrf, "csrf-1");
    assert_eq!((ms(row.created_at), ms(row.last_seen_at)), (t0, t0));
    assert_eq!(s.session(s4).await.unwrap().unwrap().account.id, ivan);
    assert!(s.session(fresh_hash()).await.unwrap().is_none());
    // The account read is the current one.
    s.make_admin(eve, t0).await.unwrap();
    assert!(s.session(s1).await.unwrap().unwrap().account.is_admin);

    // Touching moves only last_seen_at.
    let t1 = t0 + Duration::minutes(5);
    s.touch_session(s1, t1).await.unwrap();
    let row = s.session(s1).await.unwrap().unwrap();
    assert_eq!((ms(row.created_at), ms(row.last_seen_at)), (t0, t1));
    assert_eq!(ms(s.session(s2).await.unwrap().unwrap().last_seen_at), t0);
    s.touch_session(fresh_hash(), t1).await.unwrap();

    // Ending one session, then all of an account's but one, then all.
    s.delete_session(s2).await.unwrap();
    assert!(s.session(s2).await.unwrap().is_none());
    assert!(s.session(s1).await.unwrap().is_some());
    assert_eq!(s.delete_sessions_of(eve, Some(s1)).await.unwrap(), 1);
    assert!(s.session(s3).await.unwrap().is_none());
    assert!(s.session(s1).await.unwrap().is_some(), "kept");
    assert!(s.session(s4).await.unwrap().is_some(), "another account's");
    assert_eq!(s.delete_sessions_of(eve, Some(s1)).await.unwrap(), 0);
    assert_eq!(s.delete_sessions_of(eve, None).await.unwrap(), 1);
    assert!(s.session(s1).await.unwrap().is_none());
    assert_eq!(s.delete_sessions_of(ivan, Some(s1)).await.unwrap(), 1, "keep names another account's session");
    assert!(s.session(s4).await.unwrap().is_none());

    // Purge: idle sessions, too old sessions, expired links; nothing else.
    let old = t0 - Duration::days(40);
    let idle = fresh_hash(); // seen 3 h ago
    let ancient = fresh_hash(); // seen now, but created 40 days ago
    let fresh = fresh_hash();
    let at_the_limit = fresh_hash(); // seen exactly at idle_before: kept
    s.create_session(idle, eve, "c".into(), t0 - Duration::hours(3)).await.unwrap();
    s.create_session(ancient, eve, "c".into(), old).await.unwrap();
    s.touch_session(ancient, t0).await.unwrap();
    s.create_session(fresh, ivan, "c".into(), t0 - Duration::minutes(10)).await.unwrap();
    s.create_session(at_the_limit, ivan, "c".into(), t0 - Duration::hours(1)).await.unwrap();
    let (expired, expiring_now, valid) = (fresh_hash(), fresh_hash(), fresh_hash());
    s.insert_token(expired, eve, TokenKind::Reset, old, t0 - Duration::seconds(1)).await.unwrap();
    s.insert_token(expiring_now, eve, TokenKind::Reset, old, t0).await.unwrap();
    s.insert_token(valid, ivan, TokenKind::Reset, t0, t0 + Duration::hours(1)).await.unwrap();

    let purged = s.purge_expired(t0 - Duration::hours(1), t0 - Duration::days(30), t0).await.unwrap();
    assert_eq!(purged, 3, "two sessions and one link");
    assert!(s.session(idle).await.unwrap().is_none());
    assert!(s.session(ancient).await.unwrap().is_none());
    assert!(s.session(fresh).await.unwrap().is_some());
    assert!(s.session(at_the_limit).await.unwrap().is_some());
    assert_eq!(peek(s, expired, TokenKind::Reset, old).await, TokenState::Unknown);
    assert_eq!(peek(s, expiring_now, TokenKind::Reset, old).await, TokenState::Valid(eve));
    assert_eq!(peek(s, valid, TokenKind::Reset, t0).await, TokenState::Valid(ivan));
    assert_eq!(s.purge_expired(t0 - Duration::hours(1), t0 - Duration::days(30), t0).await.unwrap(), 0);
}

async fn domains(s: &Console) {
    let t0 = now();
    let admin = created(s, "admin@numerique.gouv.fr", t0).await;
    assert!(s.allowed_domains().await.unwrap().is_empty());
    assert!(s.add_allowed_domain("interieur.gouv.fr".into(), Some(admin), t0).await.unwrap());
    assert!(!s.add_allowed_domain("interieur.gouv.fr".into(), None, t0 + Duration::hours(1)).await.unwrap());
    assert!(s.add_allowed_domain("ants.gouv.fr".into(), None, t0 + Duration::seconds(1)).await.unwrap());
    let mut list: Vec<(String, DateTime<Utc>)> =
        s.allowed_domains().await.unwrap().into_iter().map(|d| (d.domain, ms(d.added_at))).collect();
    list.sort();
    assert_eq!(
        list,
        vec![("ants.gouv.fr".to_string(), t0 + Duration::seconds(1)), ("interieur.gouv.fr".to_string(), t0)],
        "the second add changed nothing"
    );
    assert!(s.remove_allowed_domain("ants.gouv.fr".into()).await.unwrap());
    assert!(!s.remove_allowed_domain("ants.gouv.fr".into()).await.unwrap());
    assert!(!s.remove_allowed_domain("jamais.gouv.fr".into()).await.unwrap());
    let list: Vec<String> = s.allowed_domains().await.unwrap().into_iter().map(|d| d.domain).collect();
    assert_eq!(list, vec!["interieur.gouv.fr"]);
    // Deleting the administrator who added it keeps the domain.
    s.delete_account(admin).await.unwrap();
    let list: Vec<String> = s.allowed_domains().await.unwrap().into_iter().map(|d| d.domain).collect();
    assert_eq!(list, vec!["interieur.gouv.fr"]);
    assert!(s.remove_allowed_domain("interieur.gouv.fr".into()).await.unwrap());
}

async fn outbox(s: &Console) {
    let t0 = now();
    let (a, b) = ("a@exemple.gouv.fr".to_string(), "b@exemple.gouv.fr".to_string());
    let m1 = s.queue_email(a.clone(), "Confirmez".into(), "https://lien/1".into(), t0).await.unwrap();
    let m2 = s.queue_email(b.clone(), "Bienvenue".into(), "Bonjour B".into(), t0 + Duration::seconds(1)).await.unwrap();
    let m3 = s
        .queue_email(a.clone(), "Réinitialisez".into(), "https://lien/3".into(), t0 + Duration::seconds(2))
        .await
        .unwrap();
    assert!(m1 < m2 && m2 < m3, "ids grow: {m1} {m2} {m3}");

    // Claims made at t0 or later are fresh for a `stale_before` 10 minutes earlier.
    let stale = t0 - Duration::minutes(10);
    assert_eq!(s.unsent_emails(t0, stale, 10).await.unwrap(), vec![m1, m2, m3]);
    assert_eq!(s.unsent_emails(t0, stale, 2).await.unwrap(), vec![m1, m2], "oldest first");

    let mail = s.claim_email(m1, t0, stale).await.unwrap().expect("unclaimed mail is claimed");
    assert_eq!((mail.id, mail.to.as_str(), mail.subject.as_str()), (m1, a.as_str(), "Confirmez"));
    assert_eq!(mail.body, "https://lien/1");
    assert_eq!((ms(mail.created_at), mail.sent_at), (t0, None));
    assert_eq!(s.claim_email(m1, t0, stale).await.unwrap(), None, "claimed already");
    assert_eq!(s.unsent_emails(t0, stale, 10).await.unwrap(), vec![m2, m3]);

    // Two replicas claiming one mail at once: one gets it.
    let (x, y) = tokio::join!(s.claim_email(m2, t0, stale), s.claim_email(m2, t0, stale));
    let got: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(got.len(), 1, "exactly one claim wins");
    assert_eq!(got[0].subject, "Bienvenue");
    assert_eq!(s.unsent_emails(t0, stale, 10).await.unwrap(), vec![m3]);

    // A claim older than `stale_before` has lapsed: the mail is listed and claimable again.
    let later = t0 + Duration::minutes(20);
    let stale_later = later - Duration::minutes(10);
    assert_eq!(s.unsent_emails(later, stale_later, 10).await.unwrap(), vec![m1, m2, m3]);
    assert!(s.claim_email(m2, later, stale_later).await.unwrap().is_some());
    assert_eq!(s.claim_email(m2, later, stale_later).await.unwrap(), None);

    // A failure due again at once releases the claim at once.
    s.mark_email_failed(m1, "421 4.7.0 try again later".into(), EmailRetry::At(t0)).await.unwrap();
    assert_eq!(s.unsent_emails(t0, stale, 10).await.unwrap(), vec![m1, m3]);
    let again = s.claim_email(m1, t0 + Duration::seconds(5), stale).await.unwrap().expect("claimable after failure");
    assert_eq!(again.body, "https://lien/1", "body kept until sent");

    // Sent: body emptied, never listed nor claimed again, even once its claim is stale.
    let sent_at = t0 + Duration::seconds(6);
    s.mark_email_sent(m1, sent_at).await.unwrap();
    let far = t0 + Duration::days(1);
    assert_eq!(s.unsent_emails(far, far, 10).await.unwrap(), vec![m2, m3]);
    assert_eq!(s.claim_email(m1, far, far).await.unwrap(), None);
    s.mark_email_failed(m1, "late failure report".into(), EmailRetry::GiveUp(far)).await.unwrap();
    assert_eq!(s.unsent_emails(far, far, 10).await.unwrap(), vec![m2, m3], "a sent mail stays sent");

    // The list: newest first, optionally to one address.
    let all = s.outbox(None, 10).await.unwrap();
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m3, m2, m1]);
    let sent = &all[2];
    assert_eq!((sent.body.as_str(), sent.sent_at.map(ms)), ("", Some(sent_at)));
    assert_eq!(sent.subject, "Confirmez");
    assert_eq!((all[0].body.as_str(), all[0].sent_at), ("https://lien/3", None));
    assert_eq!(ms(all[1].created_at), t0 + Duration::seconds(1));
    let to_a: Vec<i64> = s.outbox(Some(a.clone()), 10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(to_a, vec![m3, m1]);
    let to_a: Vec<i64> = s.outbox(Some(a), 1).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(to_a, vec![m3]);
    assert_eq!(s.outbox(Some(b), 10).await.unwrap().len(), 1);
    assert!(s.outbox(Some("personne@exemple.gouv.fr".into()), 10).await.unwrap().is_empty());
    assert_eq!(s.outbox(None, 2).await.unwrap().len(), 2);
    assert!(s.undelivered_emails(10).await.unwrap().is_empty(), "a sent mail is never given up");
    retries(s).await;
}

/// Backoff and giving up (issue 23): a failed mail waits for its next attempt, a given-up one
/// is listed for administrators until « Renvoyer » starts it again; the counts follow.
async fn retries(s: &Console) {
    // A fresh outbox for the counts: the mails above are sent or claimed by now.
    let before = s.outbox_stats().await.unwrap();
    let t0 = now() + Duration::days(30);
    let stale = t0 - Duration::minutes(10);
    let to = "retry@exemple.gouv.fr".to_string();
    let m = s.queue_email(to.clone(), "Réessayez".into(), "https://lien/r".into(), t0).await.unwrap();
    let claimed = s.claim_email(m, t0, stale).await.unwrap().expect("claimed");
    assert_eq!((claimed.attempts, claimed.retry_since, claimed.given_up_at), (1, t0, None));
    let stats = s.outbox_stats().await.unwrap();
    assert_eq!(stats.waiting, before.waiting + 1);
    assert_eq!(stats.given_up, before.given_up);

    // Failed: not due until its next attempt, then due again.
    let next = t0 + Duration::minutes(1);
    s.mark_email_failed(m, "421 busy".into(), EmailRetry::At(next)).await.unwrap();
    let due = |at: DateTime<Utc>| async move { s.unsent_emails(at, at - Duration::minutes(10), 100).await.unwrap() };
    assert!(!due(t0 + Duration::seconds(59)).await.contains(&m), "not before its next attempt");
    assert!(due(next).await.contains(&m), "due at its next attempt");
    let mail = s.outbox(Some(to.clone()), 1).await.unwrap().remove(0);
    assert_eq!((mail.next_attempt_at, mail.last_error.as_deref(), mail.attempts), (Some(next), Some("421 busy"), 1));

    // Given up: never listed as due nor claimable, listed for administrators, counted.
    let second = s.claim_email(m, next, next - Duration::minutes(10)).await.unwrap().expect("claimed again");
    assert_eq!(second.attempts, 2);
    let gave_up = t0 + Duration::days(3);
    s.mark_email_failed(m, "550 refused".into(), EmailRetry::GiveUp(gave_up)).await.unwrap();
    assert!(!due(gave_up + Duration::days(1)).await.contains(&m));
    assert_eq!(s.claim_email(m, gave_up, gave_up).await.unwrap(), None, "a given-up mail is not claimed");
    let listed = s.undelivered_emails(10).await.unwrap();
    assert_eq!(listed.iter().map(|x| x.id).collect::<Vec<_>>(), vec![m]);
    assert_eq!((listed[0].given_up_at, listed[0].last_error.as_deref()), (Some(gave_up), Some("550 refused")));
    assert_eq!(listed[0].body, "https://lien/r", "kept, to be sent again");
    let stats = s.outbox_stats().await.unwrap();
    assert_eq!(
        stats,
        OutboxStats { waiting: before.waiting, oldest_waiting: before.oldest_waiting, given_up: before.given_up + 1 }
    );

    // « Renvoyer »: due at once, its retries counted from then; twice is once.
    let resent = gave_up + Duration::hours(2);
    assert!(s.resend_email(m, resent).await.unwrap());
    assert!(!s.resend_email(m, resent).await.unwrap(), "not given up any more");
    assert!(s.undelivered_emails(10).await.unwrap().is_empty());
    assert!(due(resent).await.contains(&m));
    let third = s.claim_email(m, resent, resent - Duration::minutes(10)).await.unwrap().expect("claimable again");
    assert_eq!(
        (third.retry_since, third.created_at, third.given_up_at, third.next_attempt_at),
        (resent, t0, None, None)
    );
    s.mark_email_sent(m, resent).await.unwrap();
    assert!(!s.resend_email(m, resent).await.unwrap(), "a sent mail is not resent");
    assert_eq!(s.outbox_stats().await.unwrap(), before);
}

async fn audit(s: &Console) {
    let t0 = now();
    let e1 = AuditEntry {
        actor_id: Some(1),
        action: "account.approve".into(),
        account_id: Some(2),
        demarche_id: None,
        detail: "camille@interieur.gouv.fr".into(),
    };
    let e2 = AuditEntry {
        actor_id: None,
        action: "domain.add".into(),
        account_id: None,
        demarche_id: Some(42),
        detail: "ants.gouv.fr".into(),
    };
    let e3 = AuditEntry { detail: String::new(), ..e1.clone() };
    s.audit(e1.clone(), t0).await.unwrap();
    s.audit(e2.clone(), t0 + Duration::seconds(1)).await.unwrap();
    s.audit(e3.clone(), t0 + Duration::seconds(1)).await.unwrap();
    let log: Vec<(DateTime<Utc>, AuditEntry)> =
        s.audit_log(10).await.unwrap().into_iter().map(|(t, e)| (ms(t), e)).collect();
    assert_eq!(log, vec![(t0 + Duration::seconds(1), e3.clone()), (t0 + Duration::seconds(1), e2), (t0, e1)]);
    let log = s.audit_log(1).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].1, e3);
}

async fn deletion(s: &Console) {
    let t0 = now();
    let gone = created(s, "parti@travail.gouv.fr", t0).await;
    let stays = created(s, "reste@travail.gouv.fr", t0).await;
    let (session, confirm, reset) = (fresh_hash(), fresh_hash(), fresh_hash());
    let (other_session, other_token) = (fresh_hash(), fresh_hash());
    let in_1h = t0 + Duration::hours(1);
    s.create_session(session, gone, "c".into(), t0).await.unwrap();
    s.insert_token(confirm, gone, TokenKind::Reset, t0, in_1h).await.unwrap();
    s.insert_token(reset, gone, TokenKind::Reset, t0, in_1h).await.unwrap();
    s.create_session(other_session, stays, "c".into(), t0).await.unwrap();
    s.insert_token(other_token, stays, TokenKind::Reset, t0, in_1h).await.unwrap();

    s.delete_account(gone).await.unwrap();
    assert_eq!(s.account_by_id(gone).await.unwrap(), None);
    assert_eq!(s.account_by_email("parti@travail.gouv.fr".into()).await.unwrap(), None);
    assert!(s.session(session).await.unwrap().is_none());
    assert_eq!(s.delete_sessions_of(gone, None).await.unwrap(), 0, "no session left behind");
    assert_eq!(peek(s, confirm, TokenKind::Reset, t0).await, TokenState::Unknown);
    assert_eq!(s.reset_password(reset, phc("x"), t0).await.unwrap(), (TokenState::Unknown, 0));
    // A link hash freed by the deletion can be stored again (the row is really gone).
    s.insert_token(reset, stays, TokenKind::Reset, t0, in_1h).await.unwrap();
    assert_eq!(peek(s, reset, TokenKind::Reset, t0).await, TokenState::Valid(stays));

    // The other account is untouched, and the address is free again.
    assert!(s.session(other_session).await.unwrap().is_some());
    assert_eq!(peek(s, other_token, TokenKind::Reset, t0).await, TokenState::Valid(stays));
    let again = created(s, "parti@travail.gouv.fr", t0).await;
    assert_ne!(again, gone);
    s.delete_account(987_654).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Porteurs' console, part 2: démarches, porteurs, what « Mes démarches » shows.

/// An active account with this address and name.
async fn named(s: &Console, email: &str, name: &str, t: DateTime<Utc>) -> Account {
    let id = match sign_up(s, new_account(email, name), t).await.0 {
        SignUp::Created(id) => id,
        other => panic!("{email}: expected Created, got {other:?}"),
    };
    assert!(s.set_status(id, AccountStatus::Unconfirmed, AccountStatus::Active, t).await.unwrap());
    account(s, id).await
}

fn details(name: &str, administration: &str, volume: Option<i64>) -> DemarcheDetails {
    DemarcheDetails {
        name: name.into(),
        administration: administration.into(),
        volume_annuel: volume,
        ..DemarcheDetails::default()
    }
}

async fn create(s: &Console, name: &str, search: &str, volume: Option<i64>, creator: i64, t: DateTime<Utc>) -> i64 {
    s.create_demarche(details(name, "Administration", volume), search.into(), creator, None, t)
        .await
        .unwrap()
        .expect("created")
}

async fn demarche(s: &Console, id: i64) -> DemarcheRow {
    s.demarche(id).await.unwrap().unwrap_or_else(|| panic!("démarche {id} exists"))
}

async fn search(s: &Console, terms: &[&str], id: Option<i64>, limit: i64, offset: i64) -> Vec<i64> {
    let terms = terms.iter().map(|t| t.to_string()).collect();
    s.search_demarches(terms, id, limit, offset).await.unwrap().into_iter().map(|d| d.id).collect()
}

async fn porteur_ids(s: &Console, d: i64) -> Vec<i64> {
    s.porteurs_of(d).await.unwrap().into_iter().map(|a| a.id).collect()
}

/// Runs first among the démarche sections: the table holds only what it creates. `other`: a
/// second store on the same database, for the race.
async fn demarches(s: &Console, other: &Console) {
    let t0 = now();
    let creator = named(s, "createur@ants.gouv.fr", "Createur", t0).await;
    assert_eq!(s.demarche(1).await.unwrap(), None);
    assert!(search(s, &[], None, 100, 0).await.is_empty());

    // Created: next free id, as given, active, not approved; its creator carries it.
    let full = DemarcheDetails {
        name: "Demande de carte grise".into(),
        administration: "Agence nationale des titres sécurisés".into(),
        url: "https://immatriculation.ants.gouv.fr".into(),
        volume_annuel: Some(6_000_000),
        criteria: Criteria {
            en_ligne: Some(EnLigne::Oui),
            franceconnect: Some(true),
            mobile: Some(false),
            support_qualite: None,
            disponibilite: Some(true),
        },
        privacy_controller: "ANTS".into(),
        privacy_dpo: "dpo@ants.gouv.fr".into(),
    };
    let grise = s
        .create_demarche(
            full.clone(),
            "demande de carte grise agence nationale des titres securises".into(),
            creator.id,
            None,
            t0,
        )
        .await
        .unwrap()
        .expect("created");
    assert_eq!(grise, 1, "the first id of an empty table");
    let row = demarche(s, grise).await;
    assert_eq!(row.id, grise);
    assert_eq!(row.details, full);
    assert!(row.active && !row.high_volume_approved);
    assert_eq!((row.merged_into, ms(row.created_at)), (None, t0));
    assert!(s.is_porteur(creator.id, grise).await.unwrap());
    assert_eq!(s.porteurs_of(grise).await.unwrap(), vec![creator.clone()]);

    let t1 = t0 + Duration::seconds(1);
    let duplicata =
        create(s, "Carte grise : duplicata", "carte grise duplicata ants", Some(500_000), creator.id, t1).await;
    let postale = create(s, "Grise mine", "carte postale grise", None, creator.id, t1).await;
    let permis = create(s, "Permis de conduire", "permis de conduire ants", Some(6_000_000), creator.id, t1).await;
    let pourcent = create(s, "Remboursement", "taux 100% remboursement_sante c:\\dossier", None, creator.id, t1).await;
    let leurre = create(s, "Taux", "taux 1000 remboursementxsante c:dossier", None, creator.id, t1).await;
    assert_eq!(vec![duplicata, postale, permis, pourcent, leurre], vec![2, 3, 4, 5, 6], "ids increase by one");
    assert_eq!(demarche(s, duplicata).await.details.criteria, Criteria::default(), "nothing declared");
    assert!(!s.is_porteur(creator.id, 987_654).await.unwrap());

    // Carried, by name.
    let carried: Vec<i64> = s.carried_by(creator.id).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(carried, vec![duplicata, grise, postale, permis, pourcent, leurre]);
    assert_eq!(s.carried_by(creator.id).await.unwrap()[1], demarche(s, grise).await);

    // Every term, anywhere in the folded column; by volume (none last), then name.
    assert_eq!(search(s, &["carte", "grise"], None, 10, 0).await, vec![grise, duplicata, postale]);
    assert_eq!(search(s, &["grise", "carte"], None, 10, 0).await, vec![grise, duplicata, postale]);
    assert_eq!(search(s, &["titres", "securises"], None, 10, 0).await, vec![grise]);
    assert_eq!(search(s, &["carte", "postale"], None, 10, 0).await, vec![postale], "every term");
    assert_eq!(search(s, &["carte", "mine"], None, 10, 0).await, Vec::<i64>::new(), "the column, not the name");
    assert_eq!(search(s, &["ants"], None, 10, 0).await, vec![permis, duplicata]);
    assert_eq!(search(s, &["rte gri"], None, 10, 0).await, vec![grise, duplicata], "substrings");
    // Nothing given: all of them, volume 6 000 000 twice (then by name), the undeclared last.
    assert_eq!(search(s, &[], None, 10, 0).await, vec![grise, permis, duplicata, postale, pourcent, leurre]);

    // An id: that démarche too, or alone without terms.
    assert_eq!(search(s, &[], Some(permis), 10, 0).await, vec![permis]);
    assert_eq!(search(s, &["carte", "grise"], Some(permis), 10, 0).await, vec![grise, permis, duplicata, postale]);
    assert_eq!(search(s, &["introuvable"], Some(postale), 10, 0).await, vec![postale]);
    assert_eq!(search(s, &["introuvable"], Some(987_654), 10, 0).await, Vec::<i64>::new());
    assert_eq!(search(s, &["introuvable"], None, 10, 0).await, Vec::<i64>::new());

    // LIKE's metacharacters in a term match themselves only.
    assert_eq!(search(s, &["100%"], None, 10, 0).await, vec![pourcent]);
    assert_eq!(search(s, &["%"], None, 10, 0).await, vec![pourcent]);
    assert_eq!(search(s, &["remboursement_sante"], None, 10, 0).await, vec![pourcent]);
    assert_eq!(search(s, &["_"], None, 10, 0).await, vec![pourcent]);
    assert_eq!(search(s, &["c:\\dossier"], None, 10, 0).await, vec![pourcent]);
    assert_eq!(search(s, &["\\"], None, 10, 0).await, vec![pourcent]);
    assert_eq!(search(s, &["c:dossier"], None, 10, 0).await, vec![leurre]);
    assert_eq!(search(s, &["taux"], None, 10, 0).await, vec![pourcent, leurre]);
    assert_eq!(search(s, &["'; DROP TABLE demarche; --"], None, 10, 0).await, Vec::<i64>::new());

    // Pages.
    assert_eq!(search(s, &["carte", "grise"], None, 2, 0).await, vec![grise, duplicata]);
    assert_eq!(search(s, &["carte", "grise"], None, 2, 2).await, vec![postale]);
    assert_eq!(search(s, &["carte", "grise"], None, 2, 3).await, Vec::<i64>::new());
    assert_eq!(search(s, &[], None, 1, 1).await, vec![permis]);

    // Inactive: not found, even by id; found again once active.
    s.set_demarche_active(duplicata, false).await.unwrap();
    assert!(!demarche(s, duplicata).await.active);
    assert_eq!(search(s, &["carte", "grise"], None, 10, 0).await, vec![grise, postale]);
    assert_eq!(search(s, &[], Some(duplicata), 10, 0).await, Vec::<i64>::new());
    s.set_demarche_active(duplicata, true).await.unwrap();
    assert_eq!(search(s, &["carte", "grise"], None, 10, 0).await, vec![grise, duplicata, postale]);

    // The fiche replaced, and the search column with it; nothing else changes.
    let before = demarche(s, postale).await;
    let fiche = DemarcheDetails {
        name: "Carte postale".into(),
        administration: "La Poste".into(),
        url: "https://www.laposte.fr".into(),
        volume_annuel: Some(12_345),
        criteria: Criteria {
            en_ligne: Some(EnLigne::Partiel),
            franceconnect: Some(false),
            mobile: Some(true),
            support_qualite: Some(false),
            disponibilite: None,
        },
        privacy_controller: "La Poste SA".into(),
        privacy_dpo: "https://www.laposte.fr/dpo".into(),
    };
    s.update_demarche(postale, fiche.clone(), "carte postale la poste".into()).await.unwrap();
    let after = demarche(s, postale).await;
    assert_eq!(after.details, fiche);
    assert_eq!(DemarcheRow { details: before.details.clone(), ..after }, before);
    assert_eq!(search(s, &["carte", "grise"], None, 10, 0).await, vec![grise, duplicata]);
    assert_eq!(search(s, &["la", "poste"], None, 10, 0).await, vec![postale]);
    let non = DemarcheDetails {
        criteria: Criteria { en_ligne: Some(EnLigne::Non), ..Criteria::default() },
        volume_annuel: None,
        ..fiche.clone()
    };
    s.update_demarche(postale, non.clone(), "carte postale la poste".into()).await.unwrap();
    assert_eq!(demarche(s, postale).await.details, non, "declared criteria can be withdrawn");
    s.update_demarche(987_654, fiche, String::new()).await.unwrap();
    assert_eq!(s.demarche(987_654).await.unwrap(), None);
    assert_eq!(demarche(s, grise).await.details, full, "another démarche is untouched");

    // High volumes waiting for approval: active, over the threshold (strictly), by volume.
    let ids = |v: Vec<DemarcheRow>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(ids(s.high_volume_pending(100_000).await.unwrap()), vec![grise, permis, duplicata]);
    assert_eq!(ids(s.high_volume_pending(500_000).await.unwrap()), vec![grise, permis]);
    assert_eq!(ids(s.high_volume_pending(6_000_000).await.unwrap()), Vec::<i64>::new());
    s.approve_high_volume(grise).await.unwrap();
    assert!(demarche(s, grise).await.high_volume_approved);
    assert_eq!(ids(s.high_volume_pending(100_000).await.unwrap()), vec![permis, duplicata]);
    s.set_demarche_active(permis, false).await.unwrap();
    assert_eq!(ids(s.high_volume_pending(100_000).await.unwrap()), vec![duplicata]);
    s.set_demarche_active(permis, true).await.unwrap();
    assert_eq!(s.high_volume_pending(100_000).await.unwrap()[0], demarche(s, permis).await);

    // Two creations at once (two stores) get the next two ids.
    let mut last = leurre;
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            s.create_demarche(details("Course A", "", None), "course".into(), creator.id, None, t1),
            other.create_demarche(details("Course B", "", None), "course".into(), creator.id, None, t1)
        );
        let mut got = [a.unwrap().unwrap(), b.unwrap().unwrap()];
        got.sort();
        assert_eq!(got, [last + 1, last + 2]);
        last += 2;
    }
    // A chosen number (a démarche moved from the legacy service keeps its number): once; the
    // next free number then follows it.
    let chosen = last + 1000;
    assert_eq!(
        s.create_demarche(details("Reprise", "", None), "reprise".into(), creator.id, Some(chosen), t1).await.unwrap(),
        Some(chosen)
    );
    assert!(s.is_porteur(creator.id, chosen).await.unwrap());
    assert_eq!(
        other
            .create_demarche(details("Doublon", "", None), "doublon".into(), creator.id, Some(chosen), t1)
            .await
            .unwrap(),
        None,
        "taken"
    );
    assert_eq!(demarche(s, chosen).await.details.name, "Reprise");
    assert_eq!(
        s.create_demarche(details("Suivante", "", None), "suivante".into(), creator.id, None, t1).await.unwrap(),
        Some(chosen + 1)
    );
}

/// A démarche of the catalogue that nobody ever carried (as `widget-server demarche add` makes).
async fn catalogue_only(votes: &Arc<dyn Store>, id: i64, name: &str) -> i64 {
    let d = Demarche {
        id,
        name: name.into(),
        administration: String::new(),
        volume_annuel: None,
        high_volume_approved: false,
        active: true,
        merged_into: None,
        privacy: PrivacyNotice::default(),
    };
    votes.upsert_demarche(&d).await.unwrap();
    id
}

/// `other`: a second console store on the same database (another replica), for the races.
async fn porteurs(s: &Console, other_store: &Console, votes: &Arc<dyn Store>) {
    let t0 = now();
    let owner = named(s, "owner@cnaf.fr", "Owner", t0).await;
    let alice = named(s, "alice@cnaf.fr", "Alice", t0).await;
    let bob = named(s, "bob@cnaf.fr", "Bob", t0).await;
    let carol = named(s, "carol@cnaf.fr", "Carol", t0).await;
    let admin = named(s, "admin@cnaf.fr", "Admin", t0).await;
    s.make_admin(admin.id, t0).await.unwrap();
    let d = create(s, "Allocations familiales", "allocations familiales caf", None, owner.id, t0).await;
    let other = create(s, "Prime d'activite", "prime d'activite caf", None, owner.id, t0).await;
    let why = |who: &str| format!("{who} : cheffe de projet de cette démarche");

    // Leaving: once.
    assert!(s.leave(d, owner.id, t0).await.unwrap());
    assert!(!s.leave(d, owner.id, t0).await.unwrap());
    assert!(!s.is_porteur(owner.id, d).await.unwrap());
    assert!(s.is_porteur(owner.id, other).await.unwrap(), "only that démarche");
    assert!(s.porteurs_of(d).await.unwrap().is_empty());

    // Nobody carries it any more, but it had a porteur: not granted to the first claimant (it
    // may hold avis and comments). A request, with a reason, that an administrator decides.
    assert!(!s.open_to_first_claim(d).await.unwrap());
    assert_eq!(s.claim(d, alice.id, "  ".into(), t0).await.unwrap(), Claim::ReasonNeeded);
    assert!(s.pending_requests(Some(d)).await.unwrap().is_empty(), "nothing recorded without a reason");
    let Claim::Requested(r_alice) = s.claim(d, alice.id, why("Alice"), t0).await.unwrap() else { panic!("a request") };
    assert!(!s.is_porteur(alice.id, d).await.unwrap());
    let decides =
        |v: Vec<widget_server::console::store::PorteurRequest>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert!(decides(s.requests_to_decide(admin.id, true).await.unwrap()).contains(&r_alice), "no porteur: admins");
    assert!(!decides(s.requests_to_decide(owner.id, false).await.unwrap()).contains(&r_alice), "owner left");
    assert!(!decides(s.requests_to_decide(bob.id, false).await.unwrap()).contains(&r_alice));
    let decided = s.decide_request(r_alice, true, admin.id, t0).await.unwrap().expect("pending");
    assert_eq!(decided.reason, why("Alice"));
    assert!(s.is_porteur(alice.id, d).await.unwrap());
    assert_eq!(s.claim(d, alice.id, why("Alice"), t0).await.unwrap(), Claim::AlreadyPorteur);

    // Someone carries it: requests, one pending per account, with their reasons.
    let Claim::Requested(r_bob) = s.claim(d, bob.id, why("Bob"), t0 + Duration::seconds(1)).await.unwrap() else {
        panic!("someone carries it: a request")
    };
    assert!(!s.is_porteur(bob.id, d).await.unwrap());
    assert_eq!(
        s.claim(d, bob.id, why("Bob"), t0 + Duration::seconds(5)).await.unwrap(),
        Claim::AlreadyRequested(r_bob)
    );
    assert_eq!(s.claim(d, bob.id, String::new(), t0).await.unwrap(), Claim::AlreadyRequested(r_bob));
    let Claim::Requested(r_carol) = s.claim(d, carol.id, why("Carol"), t0 + Duration::seconds(2)).await.unwrap() else {
        panic!("a request")
    };
    assert_ne!(r_bob, r_carol);
    let Claim::Requested(r_other) = s.claim(other, bob.id, why("Bob"), t0 + Duration::seconds(3)).await.unwrap() else {
        panic!("a request")
    };
    assert_eq!(porteur_ids(s, d).await, vec![alice.id]);

    // Pending requests, oldest first, with their account, démarche and reason.
    let pending = s.pending_requests(Some(d)).await.unwrap();
    assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r_bob, r_carol]);
    assert_eq!(pending[0].account, bob);
    assert_eq!((pending[0].demarche_id, pending[0].demarche_name.as_str()), (d, "Allocations familiales"));
    assert_eq!(pending[0].reason, why("Bob"));
    assert_eq!(ms(pending[0].created_at), t0 + Duration::seconds(1), "the first claim's time");
    assert_eq!(pending[1].account, carol);
    let all: Vec<i64> = s.pending_requests(None).await.unwrap().into_iter().map(|r| r.id).collect();
    let mine: Vec<i64> = all.into_iter().filter(|id| [r_bob, r_carol, r_other].contains(id)).collect();
    assert_eq!(mine, vec![r_bob, r_carol, r_other]);
    assert!(s.pending_requests(Some(987_654)).await.unwrap().is_empty());
    // Who decides what: a porteur those of the démarches they carry; an administrator, beyond
    // those, only the démarches no one carries.
    assert_eq!(decides(s.requests_to_decide(alice.id, false).await.unwrap()), vec![r_bob, r_carol]);
    assert_eq!(decides(s.requests_to_decide(owner.id, false).await.unwrap()), vec![r_other]);
    assert!(decides(s.requests_to_decide(carol.id, false).await.unwrap()).is_empty());
    let admin_sees = decides(s.requests_to_decide(admin.id, true).await.unwrap());
    assert!(![r_bob, r_carol, r_other].iter().any(|r| admin_sees.contains(r)), "{admin_sees:?}");

    // Accepted: the requester carries it; a second decision does nothing.
    let t1 = t0 + Duration::minutes(1);
    let decided = s.decide_request(r_bob, true, alice.id, t1).await.unwrap().expect("pending");
    assert_eq!((decided.id, decided.demarche_id, decided.account.id), (r_bob, d, bob.id));
    assert_eq!(ms(decided.created_at), t0 + Duration::seconds(1));
    assert!(s.is_porteur(bob.id, d).await.unwrap());
    assert_eq!(s.decide_request(r_bob, true, alice.id, t1).await.unwrap(), None);
    assert_eq!(s.decide_request(r_bob, false, alice.id, t1).await.unwrap(), None);
    assert!(s.is_porteur(bob.id, d).await.unwrap(), "a late refusal does not undo");
    assert_eq!(s.claim(d, bob.id, why("Bob"), t1).await.unwrap(), Claim::AlreadyPorteur);
    // Refused: nothing carried; the account may ask again.
    let refused = s.decide_request(r_carol, false, alice.id, t1).await.unwrap().expect("pending");
    assert_eq!(refused.account, carol);
    assert!(!s.is_porteur(carol.id, d).await.unwrap());
    assert_eq!(s.decide_request(r_carol, true, alice.id, t1).await.unwrap(), None);
    assert!(!s.is_porteur(carol.id, d).await.unwrap(), "a late acceptance does not undo");
    assert!(s.pending_requests(Some(d)).await.unwrap().is_empty());
    let Claim::Requested(again) = s.claim(d, carol.id, why("Carol"), t1).await.unwrap() else {
        panic!("a new request")
    };
    assert!(again != r_carol && again != r_bob);
    assert_eq!(s.decide_request(987_654, true, alice.id, t1).await.unwrap(), None);
    // Accepting someone who became porteur meanwhile is fine.
    assert!(s.add_porteur(other, bob.id, t1).await.unwrap());
    assert!(!s.add_porteur(other, bob.id, t1).await.unwrap());
    assert_eq!(s.decide_request(r_other, true, owner.id, t1).await.unwrap().map(|r| r.id), Some(r_other));
    assert_eq!(porteur_ids(s, other).await, vec![bob.id, owner.id]);

    // By name.
    assert_eq!(porteur_ids(s, d).await, vec![alice.id, bob.id]);
    assert_eq!(s.porteurs_of(d).await.unwrap(), vec![alice.clone(), bob.clone()]);
    let carried: Vec<i64> = s.carried_by(bob.id).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(carried, vec![d, other]);
    assert!(s.carried_by(carol.id).await.unwrap().is_empty());

    // A new démarche (never carried, no avis) goes to its first claimant, reason or not; once
    // it had a porteur, it stays closed to first claims after they leave.
    let fresh = catalogue_only(votes, 910_001, "Nouvelle démarche").await;
    assert!(s.open_to_first_claim(fresh).await.unwrap());
    assert_eq!(s.claim(fresh, carol.id, String::new(), t1).await.unwrap(), Claim::Granted);
    assert!(!s.open_to_first_claim(fresh).await.unwrap());
    assert!(s.leave(fresh, carol.id, t1).await.unwrap());
    assert!(!s.open_to_first_claim(fresh).await.unwrap(), "had a porteur");
    assert_eq!(s.claim(fresh, bob.id, String::new(), t1).await.unwrap(), Claim::ReasonNeeded);
    // Never carried, but holding avis (a catalogue imported with its history): a request.
    let with_avis = catalogue_only(votes, 910_002, "Démarche reprise avec ses avis").await;
    assert!(s.open_to_first_claim(with_avis).await.unwrap());
    assert_eq!(votes.store_batch(&[vote(with_avis, "button", t0, 1)]).await.unwrap(), 1);
    assert!(!s.open_to_first_claim(with_avis).await.unwrap(), "holds an avis");
    assert_eq!(s.claim(with_avis, bob.id, String::new(), t1).await.unwrap(), Claim::ReasonNeeded);
    assert!(matches!(s.claim(with_avis, bob.id, why("Bob"), t1).await.unwrap(), Claim::Requested(_)));
    assert!(!s.is_porteur(bob.id, with_avis).await.unwrap());
    assert!(!s.open_to_first_claim(987_654).await.unwrap(), "no such démarche");

    // Two first claims at once, through two stores: exactly one is granted.
    for i in 0..10 {
        let x = named(s, &format!("x{i}@cnaf.fr"), "X", t0).await;
        let y = named(s, &format!("y{i}@cnaf.fr"), "Y", t0).await;
        let race = catalogue_only(votes, 920_000 + i, "Course").await;
        let (a, b) = tokio::join!(s.claim(race, x.id, why("X"), t0), other_store.claim(race, y.id, why("Y"), t0));
        let (a, b) = (a.unwrap(), b.unwrap());
        let winner = match (a, b) {
            (Claim::Granted, Claim::Requested(_)) => x.id,
            (Claim::Requested(_), Claim::Granted) => y.id,
            other => panic!("one Granted and one Requested, got {other:?}"),
        };
        assert_eq!(porteur_ids(s, race).await, vec![winner]);
        assert_eq!(s.pending_requests(Some(race)).await.unwrap().len(), 1);
    }
}

async fn invites(s: &Console, other: &Console) {
    let t0 = now();
    let owner = named(s, "owner@impots.gouv.fr", "Owner", t0).await;
    let dana = named(s, "dana@impots.gouv.fr", "Dana", t0).await;
    let eve = named(s, "eve@impots.gouv.fr", "Eve", t0).await;
    let d = create(s, "Impot sur le revenu", "impot sur le revenu dgfip", None, owner.id, t0).await;
    let in_1h = t0 + Duration::hours(1);
    let (h, late, lost) = (fresh_hash(), fresh_hash(), fresh_hash());
    s.insert_invite(h, d, "Dana@Impots.gouv.fr".into(), owner.id, t0, in_1h).await.unwrap();
    s.insert_invite(late, d, "eve@impots.gouv.fr".into(), owner.id, t0 + Duration::seconds(1), in_1h).await.unwrap();

    // Listed while live, newest first, with who sent them.
    let listed = s.pending_invites(d, t0).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| (i.hash, i.email.as_str())).collect::<Vec<_>>(),
        vec![(late, "eve@impots.gouv.fr"), (h, "Dana@Impots.gouv.fr")]
    );
    assert_eq!(listed[0].invited_by, "Owner");
    assert_eq!((ms(listed[1].created_at), ms(listed[1].expires_at)), (t0, in_1h));
    assert!(s.pending_invites(d, in_1h).await.unwrap().is_empty(), "expired ones are not listed");

    // Not the invited address: unknown, and the invitation stays usable.
    assert_eq!(s.take_invite(h, eve.id, eve.email.clone(), t0).await.unwrap(), Err(TokenState::Unknown));
    assert!(!s.is_porteur(eve.id, d).await.unwrap());
    assert_eq!(s.take_invite(lost, dana.id, dana.email.clone(), t0).await.unwrap(), Err(TokenState::Unknown));
    // Expired from `expires_at` on.
    assert_eq!(s.take_invite(h, dana.id, dana.email.clone(), in_1h).await.unwrap(), Err(TokenState::Expired));
    assert_eq!(s.take_invite(late, eve.id, eve.email.clone(), in_1h).await.unwrap(), Err(TokenState::Expired));
    assert!(!s.is_porteur(eve.id, d).await.unwrap());
    // Valid (addresses compared in lower case): the account carries it; once.
    let just_before = in_1h - Duration::milliseconds(1);
    assert_eq!(s.take_invite(h, dana.id, "dana@impots.gouv.fr".into(), just_before).await.unwrap(), Ok(d));
    assert!(s.is_porteur(dana.id, d).await.unwrap());
    assert_eq!(s.take_invite(h, dana.id, dana.email.clone(), t0).await.unwrap(), Err(TokenState::Used));
    assert_eq!(porteur_ids(s, d).await, vec![dana.id, owner.id]);
    assert_eq!(s.pending_invites(d, t0).await.unwrap().len(), 1, "a used one is not listed");

    // Cancelled: only by its démarche, once; then void.
    let elsewhere = create(s, "Taxe fonciere", "taxe fonciere dgfip", None, owner.id, t0).await;
    assert_eq!(s.cancel_invite(elsewhere, late, t0).await.unwrap(), None, "another démarche's");
    assert_eq!(s.cancel_invite(d, late, t0).await.unwrap(), Some("eve@impots.gouv.fr".into()));
    assert_eq!(s.cancel_invite(d, late, t0).await.unwrap(), None);
    assert_eq!(s.cancel_invite(d, h, t0).await.unwrap(), None, "used");
    assert_eq!(s.take_invite(late, eve.id, eve.email.clone(), t0).await.unwrap(), Err(TokenState::Revoked));
    assert!(!s.is_porteur(eve.id, d).await.unwrap());
    assert!(s.pending_invites(d, t0).await.unwrap().is_empty());

    // An invitation to someone who carries it already is used, and changes nothing else.
    let again = fresh_hash();
    s.insert_invite(again, d, dana.email.clone(), owner.id, t0, in_1h).await.unwrap();
    assert_eq!(s.take_invite(again, dana.id, dana.email.clone(), t0).await.unwrap(), Ok(d));
    assert_eq!(porteur_ids(s, d).await, vec![dana.id, owner.id]);

    // Its author leaves (or is removed): the right they passed on ends with theirs. An
    // invitation sent by another porteur lives on.
    let (by_dana, by_owner) = (fresh_hash(), fresh_hash());
    s.insert_invite(by_dana, d, eve.email.clone(), dana.id, t0, in_1h).await.unwrap();
    s.insert_invite(by_owner, d, "frank@impots.gouv.fr".into(), owner.id, t0, in_1h).await.unwrap();
    assert!(s.leave(d, dana.id, t0).await.unwrap());
    assert_eq!(s.take_invite(by_dana, eve.id, eve.email.clone(), t0).await.unwrap(), Err(TokenState::Revoked));
    assert!(!s.is_porteur(eve.id, d).await.unwrap());
    let live: Vec<String> = s.pending_invites(d, t0).await.unwrap().into_iter().map(|i| i.email).collect();
    assert_eq!(live, vec!["frank@impots.gouv.fr"]);
    // …even when its row was not cancelled (the author deleted, say): the use checks again.
    let by_gone = fresh_hash();
    let gone = named(s, "gone@impots.gouv.fr", "Gone", t0).await;
    assert!(s.add_porteur(d, gone.id, t0).await.unwrap());
    s.insert_invite(by_gone, d, eve.email.clone(), gone.id, t0, in_1h).await.unwrap();
    s.delete_account(gone.id).await.unwrap();
    assert_eq!(s.take_invite(by_gone, eve.id, eve.email.clone(), t0).await.unwrap(), Err(TokenState::Revoked));
    // An administrator's invitation needs no porteur behind it.
    let admin = named(s, "admin@impots.gouv.fr", "Admin", t0).await;
    s.make_admin(admin.id, t0).await.unwrap();
    let by_admin = fresh_hash();
    s.insert_invite(by_admin, d, eve.email.clone(), admin.id, t0, in_1h).await.unwrap();
    assert_eq!(s.take_invite(by_admin, eve.id, eve.email.clone(), t0).await.unwrap(), Ok(d));
    assert!(s.leave(d, eve.id, t0).await.unwrap());

    // Two uses at once (two stores): one.
    for _ in 0..5 {
        let h = fresh_hash();
        s.insert_invite(h, d, eve.email.clone(), owner.id, t0, in_1h).await.unwrap();
        let (a, b) = tokio::join!(
            s.take_invite(h, eve.id, eve.email.clone(), t0),
            other.take_invite(h, eve.id, eve.email.clone(), t0)
        );
        let mut got = [a.unwrap(), b.unwrap()];
        got.sort_by_key(|r| r.is_err());
        assert_eq!(got, [Ok(d), Err(TokenState::Used)]);
        assert!(s.leave(d, eve.id, t0).await.unwrap());
    }
    // A use racing its author's departure (two stores): either it came first (the invitee
    // carries the démarche) or it finds the invitation void; never a use after the departure.
    for i in 0..5 {
        let author = named(s, &format!("author{i}@impots.gouv.fr"), "Author", t0).await;
        assert!(s.add_porteur(d, author.id, t0).await.unwrap());
        let h = fresh_hash();
        s.insert_invite(h, d, eve.email.clone(), author.id, t0, in_1h).await.unwrap();
        let (taken, left) =
            tokio::join!(s.take_invite(h, eve.id, eve.email.clone(), t0), other.leave(d, author.id, t0));
        assert!(left.unwrap());
        match taken.unwrap() {
            Ok(id) => {
                assert_eq!(id, d);
                assert!(s.leave(d, eve.id, t0).await.unwrap());
            }
            Err(state) => {
                assert_eq!(state, TokenState::Revoked);
                assert!(!s.is_porteur(eve.id, d).await.unwrap());
            }
        }
    }
}

/// A vote on `demarche` from `source`, received at `at`.
fn vote(demarche: i64, source: &str, at: DateTime<Utc>, k: usize) -> Vote {
    let level = |i: usize| Level::ALL[i % 3];
    let answers = Answers {
        satisfaction: None,
        facilite: (!k.is_multiple_of(4)).then(|| level(k + 1)),
        clarte: (!k.is_multiple_of(5)).then(|| level(k / 3)),
        aide: (k % 64) as u8,
        commentaire: None,
    };
    // One vote in four in another language than French, each in turn.
    let langue = if k % 4 == 1 { Lang::ALL[1 + (k / 4) % 6] } else { Lang::Fr };
    let mut v =
        Vote::accept(demarche, Source::new(source).expect("a valid source"), level(k), answers).given_in(langue);
    v.received_at_ms = at.timestamp_millis();
    v
}

fn sum(votes: &[Vote]) -> Counts {
    let mut c = Counts::default();
    for v in votes {
        c.add_vote(v);
    }
    c
}

/// Noon UTC of that day: the same day in Paris.
fn noon(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(12, 0, 0).expect("a valid time").and_utc()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

async fn activity(s: &Console, votes: &Arc<dyn Store>) {
    let t0 = now();
    let owner = named(s, "owner@urssaf.fr", "Owner", t0).await;
    let d = create(s, "Declaration sociale", "declaration sociale urssaf", None, owner.id, t0).await;
    let elsewhere = create(s, "Autre", "autre urssaf", None, owner.id, t0).await;
    let (d1, d2, d3) = (day(2024, 3, 10), day(2024, 3, 11), day(2024, 3, 12));
    let (far_from, far_to) = (day(2000, 1, 1), day(2100, 1, 1));

    // Nothing yet.
    assert_eq!(s.last_avis(d).await.unwrap(), None);
    assert!(s.sources(d).await.unwrap().is_empty());
    assert_eq!(s.counts(d, far_from, far_to).await.unwrap(), Counts::default());

    let day1: Vec<Vote> = (0..4).map(|k| vote(d, "button", noon(d1) + Duration::minutes(k as i64), k)).collect();
    let day1_site: Vec<Vote> = (0..3).map(|k| vote(d, "site", noon(d1) + Duration::hours(2), 10 + k)).collect();
    let day2: Vec<Vote> = (0..5).map(|k| vote(d, "email", noon(d2) + Duration::seconds(k as i64), 20 + k)).collect();
    let last_at = noon(d3) + Duration::milliseconds(123_456);
    let day3: Vec<Vote> = vec![vote(d, "site", noon(d3), 30), vote(d, "courrier", last_at, 31)];
    let noise: Vec<Vote> = (0..3).map(|k| vote(elsewhere, "site", noon(d3) + Duration::days(1), k)).collect();
    let all: Vec<Vote> = [&day1, &day1_site, &day2, &day3, &noise].into_iter().flatten().cloned().collect();
    assert_eq!(votes.store_batch(&all).await.unwrap(), all.len() as u64);

    assert_eq!(s.last_avis(d).await.unwrap().map(ms), Some(last_at));
    assert_eq!(s.last_avis(elsewhere).await.unwrap().map(ms), Some(noon(d3) + Duration::days(1)));
    // Latest day first, then by label.
    assert_eq!(
        s.sources(d).await.unwrap(),
        vec![
            ("courrier".to_string(), d3),
            ("site".to_string(), d3),
            ("email".to_string(), d2),
            ("button".to_string(), d1)
        ]
    );
    assert_eq!(s.sources(elsewhere).await.unwrap(), vec![("site".to_string(), d3 + chrono::Days::new(1))]);

    // Sums over the days asked, bounds included, this démarche only.
    let mine: Vec<Vote> = [&day1, &day1_site, &day2, &day3].into_iter().flatten().cloned().collect();
    let total = s.counts(d, far_from, far_to).await.unwrap();
    assert_eq!(total, sum(&mine));
    assert_eq!(total.n, 14);
    assert_eq!(s.counts(d, d1, d3).await.unwrap(), sum(&mine));
    let first_two: Vec<Vote> = [&day1, &day1_site, &day2].into_iter().flatten().cloned().collect();
    assert_eq!(s.counts(d, d1, d2).await.unwrap(), sum(&first_two));
    assert_eq!(s.counts(d, d2, d2).await.unwrap(), sum(&day2));
    assert_eq!(s.counts(d, d3, far_to).await.unwrap(), sum(&day3));
    assert_eq!(s.counts(d, far_from, day(2024, 3, 9)).await.unwrap(), Counts::default());
    assert_eq!(s.counts(d, d3, d1).await.unwrap(), Counts::default(), "an empty range");
    assert_eq!(s.counts(elsewhere, far_from, far_to).await.unwrap(), sum(&noise));

    // One row a day (sources summed, or one source), and one a source, summed by the store.
    assert_eq!(
        s.day_counts(d, far_from, far_to, None).await.unwrap(),
        vec![(d1, sum(&[day1.clone(), day1_site.clone()].concat())), (d2, sum(&day2)), (d3, sum(&day3))]
    );
    assert_eq!(s.day_counts(d, d2, far_to, Some("site".into())).await.unwrap(), vec![(d3, sum(&day3[..1]))]);
    assert_eq!(s.day_counts(d, d1, d3, Some("nulle-part".into())).await.unwrap(), vec![]);
    assert_eq!(
        s.source_counts(d, d1, d3).await.unwrap(),
        vec![
            ("email".to_string(), sum(&day2)),
            ("button".to_string(), sum(&day1)),
            ("site".to_string(), sum(&[day1_site.clone(), day3[..1].to_vec()].concat())),
            ("courrier".to_string(), sum(&day3[1..])),
        ]
    );
}

async fn merging(s: &Console, votes: &Arc<dyn Store>) {
    let t0 = now();
    let p1 = named(s, "p1@msa.fr", "P1", t0).await;
    let p2 = named(s, "p2@msa.fr", "P2", t0).await;
    let p3 = named(s, "p3@msa.fr", "P3", t0).await;
    let p4 = named(s, "p4@msa.fr", "P4", t0).await;
    let target = create(s, "Cible", "fusion cible msa", Some(10), p2.id, t0).await;
    let duplicate = create(s, "Doublon", "fusion doublon msa", Some(10), p1.id, t0).await;
    let older = create(s, "Ancien doublon", "fusion ancien msa", None, p4.id, t0).await;
    let bystander = create(s, "Temoin", "fusion temoin msa", None, p4.id, t0).await;
    assert!(s.add_porteur(target, p3.id, t0).await.unwrap());
    assert!(s.add_porteur(duplicate, p2.id, t0).await.unwrap());
    let p5 = named(s, "p5@msa.fr", "P5", t0).await;
    // Pending requests: on the duplicate from someone who also asks for the target (it goes),
    // on the target (it stays), and on the duplicate only (it moves to the target).
    let reason = || "Responsable du service".to_string();
    let Claim::Requested(on_duplicate) = s.claim(duplicate, p4.id, reason(), t0).await.unwrap() else {
        panic!("a request")
    };
    let Claim::Requested(on_target) = s.claim(target, p4.id, reason(), t0).await.unwrap() else { panic!("a request") };
    let Claim::Requested(moved) = s.claim(duplicate, p5.id, reason(), t0).await.unwrap() else { panic!("a request") };
    // Invitations: live ones move.
    let (live, used) = (fresh_hash(), fresh_hash());
    let in_1h = t0 + Duration::hours(1);
    s.insert_invite(live, duplicate, "invitee@msa.fr".into(), p1.id, t0, in_1h).await.unwrap();
    s.insert_invite(used, duplicate, p5.email.clone(), p1.id, t0, in_1h).await.unwrap();

    let (d1, d2) = (day(2024, 5, 1), day(2024, 5, 2));
    let (far_from, far_to) = (day(2000, 1, 1), day(2100, 1, 1));
    let t_d1_site: Vec<Vote> = (0..3).map(|k| vote(target, "site", noon(d1), k)).collect();
    let t_d1_button: Vec<Vote> = vec![vote(target, "button", noon(d1), 3)];
    let dup_d1_site: Vec<Vote> =
        (0..2).map(|k| vote(duplicate, "site", noon(d1) + Duration::hours(1), 4 + k)).collect();
    let dup_d2_email: Vec<Vote> = vec![vote(duplicate, "email", noon(d2) + Duration::milliseconds(7), 7)];
    let old_d2: Vec<Vote> = vec![vote(older, "site", noon(d2), 8)];
    let side: Vec<Vote> = vec![vote(bystander, "site", noon(d1), 9)];
    let batch: Vec<Vote> = [&t_d1_site, &t_d1_button, &dup_d1_site, &dup_d2_email, &old_d2, &side]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    assert_eq!(votes.store_batch(&batch).await.unwrap(), batch.len() as u64);

    // Refused, nothing done: the same démarche, a missing one.
    assert_eq!(s.merge_demarche(target, target).await.unwrap(), None);
    assert_eq!(s.merge_demarche(987_654, target).await.unwrap(), None);
    assert_eq!(s.merge_demarche(duplicate, 987_654).await.unwrap(), None);
    assert_eq!(s.counts(duplicate, far_from, far_to).await.unwrap().n, 3);
    assert!(demarche(s, duplicate).await.active);

    // An earlier merge into the duplicate.
    assert_eq!(s.merge_demarche(older, duplicate).await.unwrap(), Some(Merged::default()));
    let row = demarche(s, older).await;
    assert_eq!((row.active, row.merged_into), (false, Some(duplicate)));
    assert_eq!(
        s.counts(duplicate, far_from, far_to).await.unwrap(),
        sum(&[dup_d1_site.clone(), dup_d2_email.clone(), old_d2.clone()].concat())
    );
    assert_eq!(porteur_ids(s, duplicate).await, vec![p1.id, p2.id, p4.id]);
    assert!(s.carried_by(p4.id).await.unwrap().iter().all(|d| d.id != older));
    // A merged démarche cannot be a target.
    assert_eq!(s.merge_demarche(bystander, older).await.unwrap(), None);
    assert!(demarche(s, bystander).await.active);
    assert_eq!(porteur_ids(s, bystander).await, vec![p4.id]);
    assert_eq!(s.counts(bystander, far_from, far_to).await.unwrap(), sum(&side));
    assert!(s.leave(duplicate, p4.id, t0).await.unwrap());

    let before_target = s.counts(target, far_from, far_to).await.unwrap();
    assert_eq!(before_target, sum(&[t_d1_site.clone(), t_d1_button.clone()].concat()));

    // The merge: it names who must be told.
    let mut merged = s.merge_demarche(duplicate, target).await.unwrap().expect("merged");
    merged.invitees.sort();
    assert_eq!(
        merged,
        Merged { requesters: vec![p5.email.clone()], invitees: vec!["invitee@msa.fr".into(), p5.email.clone()] }
    );
    let row = demarche(s, duplicate).await;
    assert_eq!((row.active, row.merged_into), (false, Some(target)));
    assert_eq!(demarche(s, older).await.merged_into, Some(target), "chained merges point at the target");
    let row = demarche(s, target).await;
    assert_eq!((row.active, row.merged_into), (true, None));
    // Votes still buffered for the duplicate when it was merged land under the target; votes
    // stored before the merge and replayed after it (a spill file, a retried batch) are found
    // again under the target and count once.
    let late: Vec<Vote> = vec![vote(duplicate, "site", noon(d2) + Duration::hours(1), 10)];
    assert_eq!(votes.store_batch(&late).await.unwrap(), 1);
    let replayed = [dup_d1_site.clone(), dup_d2_email.clone(), old_d2.clone(), late.clone()].concat();
    assert_eq!(votes.store_batch(&replayed).await.unwrap(), 0, "every one stored already");
    let mut mixed = replayed.clone();
    mixed.push(vote(older, "email", noon(d2) + Duration::hours(2), 11));
    assert_eq!(votes.store_batch(&mixed).await.unwrap(), 1, "only the new one");
    let late = [late, mixed[mixed.len() - 1..].to_vec()].concat();

    // Porteurs: the union, without duplicates.
    assert_eq!(porteur_ids(s, target).await, vec![p1.id, p2.id, p3.id]);
    assert!(s.porteurs_of(duplicate).await.unwrap().is_empty());
    assert!(s.is_porteur(p1.id, target).await.unwrap());
    assert!(!s.is_porteur(p1.id, duplicate).await.unwrap());
    // Requests: the redundant one went, the target's stayed, the other one moved to the target.
    assert!(s.pending_requests(Some(duplicate)).await.unwrap().is_empty());
    let left: Vec<i64> = s.pending_requests(Some(target)).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(left, vec![on_target, moved]);
    assert_eq!(s.decide_request(on_duplicate, true, p1.id, t0).await.unwrap(), None);
    // Invitations: the live one now makes its invitee porteur of the target.
    let live_now: Vec<String> = s.pending_invites(target, t0).await.unwrap().into_iter().map(|i| i.email).collect();
    assert_eq!(live_now.len(), 2, "{live_now:?}");
    assert!(s.pending_invites(duplicate, t0).await.unwrap().is_empty());
    assert_eq!(s.take_invite(used, p5.id, p5.email.clone(), t0).await.unwrap(), Ok(target));
    assert!(s.is_porteur(p5.id, target).await.unwrap());
    assert!(s.leave(target, p5.id, t0).await.unwrap());

    // Counts moved, added where the day and source are the same.
    let everything = [
        t_d1_site.clone(),
        t_d1_button.clone(),
        dup_d1_site.clone(),
        dup_d2_email.clone(),
        old_d2.clone(),
        late.clone(),
    ]
    .concat();
    assert_eq!(s.counts(target, far_from, far_to).await.unwrap(), sum(&everything));
    assert_eq!(s.counts(duplicate, far_from, far_to).await.unwrap(), Counts::default());
    assert_eq!(s.counts(older, far_from, far_to).await.unwrap(), Counts::default());
    assert_eq!(s.counts(bystander, far_from, far_to).await.unwrap(), sum(&side), "untouched");
    let daily = votes.daily(target, far_from, far_to).await.unwrap();
    let site_d1 = daily.iter().find(|r| r.day == d1 && r.source == "site").expect("a site row on day 1");
    assert_eq!(site_d1.counts, sum(&[t_d1_site.clone(), dup_d1_site.clone()].concat()));
    assert_eq!(site_d1.counts.n, 5);
    assert_eq!(daily.len(), 4, "site and button on day 1, email and site on day 2: {daily:?}");
    let avis = s.avis_after(target, None, 100).await.unwrap();
    assert_eq!(avis.len(), everything.len(), "each avis once: {avis:?}");
    // The avis rows moved too: a recount agrees with the counts, and the observatory's rollup
    // moved with avis_daily.
    assert_eq!(votes.recount(target).await.unwrap(), daily);
    for id in [target, duplicate, older, bystander] {
        common::assert_rollup(votes, id).await;
    }
    assert!(votes.monthly(duplicate).await.unwrap().is_empty(), "no empty month left behind");
    assert!(votes.recount(duplicate).await.unwrap().is_empty());
    assert!(votes.daily(duplicate, far_from, far_to).await.unwrap().is_empty());
    assert_eq!(s.last_avis(target).await.unwrap().map(ms), Some(noon(d2) + Duration::hours(2)));
    assert_eq!(s.last_avis(duplicate).await.unwrap(), None);
    assert_eq!(
        s.sources(target).await.unwrap(),
        vec![("email".to_string(), d2), ("site".to_string(), d2), ("button".to_string(), d1)]
    );

    // Merged démarches are not found, even active again, even by id; nor can they be targets.
    s.set_demarche_active(duplicate, true).await.unwrap();
    assert_eq!(search(s, &["fusion"], None, 10, 0).await, vec![target, bystander]);
    assert_eq!(search(s, &[], Some(duplicate), 10, 0).await, Vec::<i64>::new());
    assert_eq!(s.merge_demarche(bystander, duplicate).await.unwrap(), None);
    assert_eq!(s.merge_demarche(target, older).await.unwrap(), None);
    assert_eq!(s.counts(target, far_from, far_to).await.unwrap(), sum(&everything));
    // Merging the target away makes every earlier duplicate point at the new one.
    assert!(s.merge_demarche(target, bystander).await.unwrap().is_some());
    for id in [older, duplicate, target] {
        assert_eq!(demarche(s, id).await.merged_into, Some(bystander), "démarche {id}");
    }
    assert_eq!(s.counts(bystander, far_from, far_to).await.unwrap(), sum(&[everything, side].concat()));
    assert_eq!(porteur_ids(s, bystander).await, vec![p1.id, p2.id, p3.id, p4.id]);
    for id in [target, duplicate, older, bystander] {
        common::assert_rollup(votes, id).await;
    }
}

/// A merge while votes of both démarches are being flushed (issue 23: the primary key on
/// PostgreSQL holds the démarche): every vote ends under the target once, whether it was stored
/// before, during or after the merge, and replaying them all stores none again.
async fn merge_during_flushes(s: &Console, votes: &Arc<dyn Store>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let t0 = now();
    let owner = named(s, "fusion-vive@insee.fr", "Owner", t0).await;
    let target = create(s, "Cible vive", "cible vive", None, owner.id, t0).await;
    let duplicate = create(s, "Doublon vif", "doublon vif", None, owner.id, t0).await;
    let base = noon(day(2025, 6, 1));
    let at = move |k: usize| base + Duration::milliseconds(k as i64 * 37);
    let before: Vec<Vote> = (0..20_000).map(|k| vote(duplicate, "site", at(k), k)).collect();
    assert_eq!(votes.store_batch(&before).await.unwrap(), before.len() as u64);
    // Two flushers, batches of both démarches, until ten batches each after the merge.
    let merged = Arc::new(AtomicBool::new(false));
    let flushers: Vec<_> = (0..2usize)
        .map(|f| {
            let (votes, merged) = (votes.clone(), merged.clone());
            tokio::spawn(async move {
                let (mut stored, mut after, mut b) = (Vec::new(), 0, 0usize);
                while after < 10 {
                    after += usize::from(merged.load(Ordering::SeqCst));
                    let batch: Vec<Vote> = (0..50)
                        .map(|i| {
                            let k = 100_000 + (b * 2 + f) * 50 + i;
                            vote([duplicate, target][i % 2], "button", at(k), k)
                        })
                        .collect();
                    assert_eq!(votes.store_batch(&batch).await.unwrap(), 50);
                    stored.extend(batch);
                    b += 1;
                }
                stored
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(s.merge_demarche(duplicate, target).await.unwrap().is_some());
    merged.store(true, Ordering::SeqCst);
    let mut all = before;
    for f in flushers {
        all.extend(f.await.unwrap());
    }
    assert_eq!(votes.store_batch(&all).await.unwrap(), 0, "a replay of every vote stores none");
    let (far_from, far_to) = (day(2000, 1, 1), day(2100, 1, 1));
    assert_eq!(s.counts(target, far_from, far_to).await.unwrap(), sum(&all));
    assert_eq!(s.counts(duplicate, far_from, far_to).await.unwrap(), Counts::default());
    assert!(votes.recount(duplicate).await.unwrap().is_empty(), "no avis left on the duplicate");
    assert_eq!(votes.recount(target).await.unwrap(), votes.daily(target, far_from, far_to).await.unwrap());
    for id in [target, duplicate] {
        common::assert_rollup(votes, id).await;
    }
}

/// The row `v` becomes in `avis`.
fn avis_row(v: &Vote) -> AvisRow {
    AvisRow {
        id: v.id,
        received_at: DateTime::from_timestamp_millis(v.received_at_ms).expect("a time in range"),
        source: v.source.as_str().to_string(),
        satisfaction: Question::Satisfaction.value(v.satisfaction).to_string(),
        facilite: v.facilite.map(|l| Question::Facilite.value(l).to_string()),
        clarte: v.clarte.map(|l| Question::Clarte.value(l).to_string()),
        aide: i64::from(v.aide),
        commentaire: v.commentaire.as_deref().map(String::from),
        langue: v.langue.code().to_string(),
    }
}

/// What `filter` (but its text) keeps of `rows`, newest first.
fn selected(rows: &[AvisRow], filter: &AvisFilter) -> Vec<AvisRow> {
    let eq = |want: &Option<String>, got: Option<&str>| want.as_deref().is_none_or(|w| got == Some(w));
    let mut out: Vec<AvisRow> = rows
        .iter()
        .filter(|r| filter.from.is_none_or(|t| r.received_at >= t))
        .filter(|r| filter.until.is_none_or(|t| r.received_at < t))
        .filter(|r| eq(&filter.satisfaction, Some(&r.satisfaction)))
        .filter(|r| eq(&filter.facilite, r.facilite.as_deref()))
        .filter(|r| eq(&filter.clarte, r.clarte.as_deref()))
        .filter(|r| eq(&filter.source, Some(&r.source)))
        .filter(|r| eq(&filter.langue, Some(&r.langue)))
        .filter(|r| !filter.with_comment || r.commentaire.is_some())
        .cloned()
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse((r.received_at, r.id)));
    out
}

/// Every page of `filter`, `size` at a time, each starting after the last row of the one before.
async fn walk(s: &Console, d: i64, filter: &AvisFilter, size: usize) -> Vec<AvisRow> {
    let (mut out, mut cursor) = (Vec::new(), None);
    loop {
        let page = s.avis_page(d, filter.clone(), cursor, size as i64).await.unwrap();
        assert!(page.len() <= size);
        out.extend(page.iter().cloned());
        match page.last() {
            Some(last) if page.len() == size => cursor = Some((last.received_at, last.id)),
            _ => return out,
        }
    }
}

async fn export(s: &Console, d: i64, filter: &AvisFilter) -> Vec<AvisRow> {
    s.avis_export(d, filter.clone()).try_collect().await.unwrap()
}

async fn text_search(s: &Console, d: i64, text: &str) -> Vec<uuid::Uuid> {
    let filter = AvisFilter { text: Some(text.into()), ..AvisFilter::default() };
    let found = s.avis_page(d, filter, None, 1000).await.unwrap_or_else(|e| panic!("search {text:?}: {e}"));
    found.iter().map(|r| r.id).collect()
}

const TARGET_COMMENT: &str = "Très compliqué, l'agent était aimable";
const COMMENTS: [&str; 4] = [
    "Formulaire simple et rapide",
    "Le guichet etait ferme le samedi",
    "Rien compris au « OR » ni au NEAR(x) * \"test\" -moins",
    "Trop de pages à remplir",
];

async fn every_avis(s: &Console, votes: &Arc<dyn Store>) {
    let t0 = now();
    let owner = named(s, "owner@caf.fr", "Owner", t0).await;
    let d = create(s, "Allocations", "allocations caf", None, owner.id, t0).await;
    let elsewhere = create(s, "Autre allocation", "autre caf", None, owner.id, t0).await;
    let base = noon(day(2024, 6, 1));
    let sources = ["site", "email", "button"];

    // Two votes a minute: ties on received_at, broken by id.
    let mine: Vec<Vote> = (0..40)
        .map(|k| {
            let mut v = vote(d, sources[k % 3], base + Duration::minutes((k / 2) as i64), k);
            v.commentaire = match k {
                7 => Some(TARGET_COMMENT.into()),
                k if k.is_multiple_of(3) => Some(COMMENTS[(k / 3) % COMMENTS.len()].into()),
                _ => None,
            };
            v
        })
        .collect();
    let mut noise: Vec<Vote> = (0..5).map(|k| vote(elsewhere, "site", base + Duration::minutes(k as i64), k)).collect();
    noise[0].commentaire = Some(TARGET_COMMENT.into());
    let all: Vec<Vote> = mine.iter().chain(&noise).cloned().collect();
    assert_eq!(votes.store_batch(&all).await.unwrap(), all.len() as u64);
    let rows: Vec<AvisRow> = mine.iter().map(avis_row).collect();
    let target = mine[7].id;

    // Newest first, ties by id (descending); every answer as stored.
    let everything = AvisFilter::default();
    let page = s.avis_page(d, everything.clone(), None, 1000).await.unwrap();
    assert_eq!(page, selected(&rows, &everything));
    assert_eq!(page.len(), 40);
    assert!(page.windows(2).all(|w| (w[0].received_at, w[0].id) > (w[1].received_at, w[1].id)));
    assert_eq!(page.windows(2).filter(|w| w[0].received_at == w[1].received_at).count(), 20, "20 ties");
    assert!(s.avis_page(elsewhere + 1000, everything.clone(), None, 10).await.unwrap().is_empty());
    assert_eq!(s.avis_page(d, everything.clone(), None, 3).await.unwrap(), page[..3]);

    // Keyset pages: every row once, in order, whatever the page size (3 splits the ties).
    assert_eq!(walk(s, d, &everything, 3).await, page);
    assert_eq!(walk(s, d, &everything, 7).await, page);
    assert_eq!(walk(s, d, &everything, 40).await, page);
    let (last_at, last_id) = (page[39].received_at, page[39].id);
    assert!(s.avis_page(d, everything.clone(), Some((last_at, last_id)), 10).await.unwrap().is_empty());
    // A cursor inside a tie: the other row of that instant follows.
    let after_tie = s.avis_page(d, everything.clone(), Some((page[0].received_at, page[0].id)), 2).await.unwrap();
    assert_eq!(after_tie, page[1..3]);

    // Each filter alone, then together; walked by pages too.
    let at = |m: i64| base + Duration::minutes(m);
    let filters = [
        AvisFilter { from: Some(at(5)), ..AvisFilter::default() },
        AvisFilter { until: Some(at(12)), ..AvisFilter::default() },
        AvisFilter { from: Some(at(5)), until: Some(at(12)), ..AvisFilter::default() },
        AvisFilter { satisfaction: Some("moyen".into()), ..AvisFilter::default() },
        AvisFilter { facilite: Some("difficile".into()), ..AvisFilter::default() },
        AvisFilter { clarte: Some("clair".into()), ..AvisFilter::default() },
        AvisFilter { source: Some("email".into()), ..AvisFilter::default() },
        AvisFilter { source: Some("courrier".into()), ..AvisFilter::default() },
        AvisFilter { with_comment: true, ..AvisFilter::default() },
        AvisFilter {
            from: Some(at(2)),
            until: Some(at(18)),
            satisfaction: Some("bien".into()),
            source: Some("site".into()),
            ..AvisFilter::default()
        },
        AvisFilter { facilite: Some("moyen".into()), clarte: Some("pas-clair".into()), ..AvisFilter::default() },
        AvisFilter { with_comment: true, source: Some("site".into()), from: Some(at(3)), ..AvisFilter::default() },
        AvisFilter { langue: Some("fr".into()), ..AvisFilter::default() },
        AvisFilter { langue: Some("en".into()), ..AvisFilter::default() },
        AvisFilter { langue: Some("ar".into()), satisfaction: Some("moyen".into()), ..AvisFilter::default() },
    ];
    for filter in &filters {
        let want = selected(&rows, filter);
        let got = s.avis_page(d, filter.clone(), None, 1000).await.unwrap();
        assert_eq!(got, want, "{filter:?}");
        assert_eq!(walk(s, d, filter, 3).await, want, "{filter:?} by pages");
        assert_eq!(export(s, d, filter).await, want, "{filter:?} exported");
    }
    assert!(filters.iter().filter(|f| !selected(&rows, f).is_empty()).count() >= 12, "filters that keep rows");

    // Avis per language over a period, from avis_daily_langue: French is not in it.
    let (first, last) = (day(2024, 6, 1), day(2024, 6, 1));
    let mut want: Vec<(String, i64)> = Vec::new();
    for v in mine.iter().filter(|v| v.langue != Lang::Fr) {
        match want.iter_mut().find(|(l, _)| l == v.langue.code()) {
            Some((_, n)) => *n += 1,
            None => want.push((v.langue.code().to_string(), 1)),
        }
    }
    want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert!(want.len() >= 5, "{want:?}");
    assert_eq!(s.langue_counts(d, first, last).await.unwrap(), want);
    assert!(s.langue_counts(d, day(2024, 6, 2), day(2024, 6, 30)).await.unwrap().is_empty());
    assert_eq!(votes.daily_langues(d).await.unwrap(), votes.recount_langues(d).await.unwrap());
    assert_eq!(export(s, d, &everything).await, page);

    // Words in comments: accents and case ignored both ways, every word needed, this démarche only.
    for text in ["tres", "TRÈS", "COMPLIQUE", "compliqué", "agent aimable", "Aimable, AGENT !"] {
        assert_eq!(text_search(s, d, text).await, vec![target], "{text:?}");
    }
    let guichet: Vec<uuid::Uuid> =
        page.iter().filter(|r| r.commentaire.as_deref() == Some(COMMENTS[1])).map(|r| r.id).collect();
    assert!(!guichet.is_empty());
    assert_eq!(text_search(s, d, "GUICHET FERMÉ").await, guichet, "accented query, unaccented comment");
    assert_eq!(text_search(s, d, "guichet fermé").await, guichet);
    let simple = text_search(s, d, "simple").await;
    assert!(!simple.is_empty() && !simple.contains(&target));
    assert!(text_search(s, d, "aimable licorne").await.is_empty(), "every word is needed");
    assert!(text_search(s, d, "introuvable").await.is_empty());
    assert_eq!(text_search(s, elsewhere, "tres complique").await, vec![noise[0].id]);
    // Search syntax typed by a user is only words: never an error.
    for text in ["\"", "*", "OR", "-", "NEAR(", "a\"b", "(", ")", "AND NOT", "col:x", "^x", "x*", "''", "", "   "] {
        let found = text_search(s, d, text).await;
        assert!(found.iter().all(|id| rows.iter().any(|r| r.id == *id && r.commentaire.is_some())), "{text:?}");
    }
    for text in ["\"", "*", "-", "(", "", "   "] {
        assert!(text_search(s, d, text).await.is_empty(), "no word in {text:?}: nothing found");
    }
    // With the other filters, by pages, exported.
    let filter = AvisFilter { text: Some("tres".into()), source: Some(mine[7].source.as_str().into()), ..everything };
    assert_eq!(s.avis_page(d, filter.clone(), None, 10).await.unwrap(), vec![avis_row(&mine[7])]);
    assert_eq!(export(s, d, &filter).await, vec![avis_row(&mine[7])]);
    let filter = AvisFilter { text: Some("tres".into()), source: Some("courrier".into()), ..AvisFilter::default() };
    assert!(s.avis_page(d, filter, None, 10).await.unwrap().is_empty());
    let filter = AvisFilter { text: Some("simple".into()), ..AvisFilter::default() };
    let simple_rows: Vec<AvisRow> = page.iter().filter(|r| simple.contains(&r.id)).cloned().collect();
    assert_eq!(walk(s, d, &filter, 1).await, simple_rows);
    assert_eq!(export(s, d, &filter).await, simple_rows);

    // Oldest first after a cursor: every row once.
    let mut oldest_first = page.clone();
    oldest_first.reverse();
    let (mut read, mut cursor) = (Vec::new(), None);
    loop {
        let batch = s.avis_after(d, cursor, 3).await.unwrap();
        read.extend(batch.iter().cloned());
        match batch.last() {
            Some(last) => cursor = Some((last.received_at, last.id)),
            None => break,
        }
    }
    assert_eq!(read, oldest_first);
    assert_eq!(s.avis_after(d, None, 5).await.unwrap(), oldest_first[..5]);
    assert_eq!(s.avis_after(d, Some((page[1].received_at, page[1].id)), 5).await.unwrap(), page[..1]);
    assert!(s.avis_after(d, Some((page[0].received_at, page[0].id)), 5).await.unwrap().is_empty());
    let before_all = (base - Duration::days(1), uuid::Uuid::nil());
    assert_eq!(s.avis_after(d, Some(before_all), 100).await.unwrap(), oldest_first);
}

/// The observatory's counts (issue 23) read whole months from the rollup and the days around
/// them from avis_daily: over periods with and without whole months, ending on month ends or
/// not, they equal the votes of those days; and they stay so as votes come in (some replayed)
/// and as a démarche is merged into another.
async fn observatory_rollup(s: &Console, votes: &Arc<dyn Store>) {
    let t0 = now();
    let owner = named(s, "rollup@insee.fr", "Owner", t0).await;
    let a = create(s, "Recensement", "recensement insee", None, owner.id, t0).await;
    let b = create(s, "Recensement bis", "recensement bis insee", None, owner.id, t0).await;
    // Two or three votes a day over 15 months, at noon, one just after Paris midnight on the
    // first of each month (still the last day of the month before in UTC).
    let first = day(2025, 1, 1);
    let mut all: Vec<Vote> = Vec::new();
    for i in 0..456u32 {
        let d = first + chrono::Days::new(i as u64);
        for (k, (demarche, source)) in [(a, "site"), (a, "button"), (b, "site")].into_iter().enumerate() {
            if (i as usize + k).is_multiple_of(3) || demarche == a {
                all.push(vote(demarche, source, noon(d), i as usize * 3 + k));
            }
        }
        if d.format("%d").to_string() == "01" {
            all.push(vote(
                a,
                "email",
                d.and_hms_opt(0, 30, 0)
                    .unwrap()
                    .and_local_timezone(chrono_tz::Europe::Paris)
                    .unwrap()
                    .with_timezone(&Utc),
                i as usize,
            ));
        }
    }
    let (early, late) = all.split_at(all.len() / 2);
    votes.store_batch(early).await.unwrap();
    let check = |stored: Vec<Vote>, merged: bool| async move {
        for (from, to) in [
            (day(2025, 3, 7), day(2026, 3, 6)),    // the observatory's year: 11 whole months
            (day(2025, 2, 1), day(2026, 1, 31)),   // months only
            (day(2025, 4, 30), day(2025, 5, 31)),  // a day, then May
            (day(2025, 6, 2), day(2025, 6, 29)),   // inside one month
            (day(2024, 12, 1), day(2026, 12, 31)), // beyond the votes
        ] {
            let rows = s.observatory(from, to).await.unwrap();
            for id in [a, b] {
                let expected = sum(&stored
                    .iter()
                    .filter(|v| (if merged { a } else { v.demarche_id }) == id)
                    .filter(|v| (from..=to).contains(&v.day()))
                    .cloned()
                    .collect::<Vec<_>>());
                let got = rows.iter().find(|(d, _)| d.id == id).map(|(_, c)| *c);
                // The dashboard's and the avis page's counts read the same rollup.
                let own = if merged && id == b { Counts::default() } else { expected };
                assert_eq!(s.counts(id, from, to).await.unwrap(), own, "counts of {id}, {from} to {to}");
                if merged && id == b {
                    assert_eq!(got, None, "a merged démarche is not listed");
                } else {
                    assert_eq!(got, Some(expected), "démarche {id}, {from} to {to}");
                }
            }
        }
        for id in [a, b] {
            common::assert_rollup(votes, id).await;
        }
    };
    check(early.to_vec(), false).await;
    // The rest, with some of the first half again (a replayed spill file).
    let mut again = late.to_vec();
    again.extend_from_slice(&early[..100]);
    assert_eq!(votes.store_batch(&again).await.unwrap(), late.len() as u64);
    check(all.clone(), false).await;
    assert!(s.merge_demarche(b, a).await.unwrap().is_some());
    check(all, true).await;
}

/// Searches of words in thousands of comments (issue 23): SQLite walks the démarche's comments
/// for a frequent word instead of listing every match first, and falls back past a bound; the
/// pages are the same as for a rare word, on both stores: every match, in order, once.
async fn frequent_words(s: &Console, votes: &Arc<dyn Store>) {
    let t0 = now();
    let owner = named(s, "frequent@dgfip.finances.gouv.fr", "Owner", t0).await;
    let d = create(s, "Mots fréquents", "mots frequents", None, owner.id, t0).await;
    let elsewhere = create(s, "Ailleurs", "ailleurs", None, owner.id, t0).await;
    let base = noon(day(2024, 3, 1));
    // Every avis of `d` has a comment: « agent » in one in three (frequent), « mairie » in one
    // in 97 (rare), « guichet » in the newest and the second oldest only, though in 3,000
    // comments of `elsewhere`: a page of two walks past SQLite's bound and falls back.
    let mut all: Vec<Vote> = (0..20_000usize)
        .map(|k| {
            let mut v = vote(d, ["site", "button"][k % 2], base + Duration::seconds(k as i64 * 7), k);
            let mut text = format!("Avis numéro {k}.");
            if k.is_multiple_of(3) {
                text.push_str(" Un agent aimable.");
            }
            if k.is_multiple_of(97) {
                text.push_str(" La mairie était fermée.");
            }
            if [1, 19_998].contains(&k) {
                text.push_str(" Le guichet aussi.");
            }
            v.commentaire = Some(text.into());
            v
        })
        .collect();
    all.extend((0..3_000usize).map(|k| {
        let mut v = vote(elsewhere, "site", base + Duration::seconds(k as i64 * 11 + 3), k);
        v.commentaire = Some("Guichet lent, agent pressé.".into());
        v
    }));
    // Stored out of time order in part (the newest first), as replayed spill files would be.
    let (older, newer) = all.split_at(12_000);
    for chunk in newer.chunks(4_000).rev().chain(older.chunks(4_000)) {
        assert_eq!(votes.store_batch(chunk).await.unwrap(), chunk.len() as u64);
    }
    let rows: Vec<AvisRow> = all.iter().filter(|v| v.demarche_id == d).map(avis_row).collect();
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase()).collect()
    };
    let window = AvisFilter {
        from: Some(base + Duration::hours(6)),
        until: Some(base + Duration::hours(30)),
        ..AvisFilter::default()
    };
    for (text, filter, size, expected_n) in [
        ("agent", AvisFilter::default(), 51, Some(6_667)),
        ("AGENT aimable", AvisFilter { source: Some("site".into()), ..AvisFilter::default() }, 50, Some(3_334)),
        ("agent", window.clone(), 13, Some(4_114)),
        ("mairie", AvisFilter::default(), 7, Some(207)),
        ("mairie", window, 5, Some(128)),
        ("guichet", AvisFilter::default(), 2, Some(2)),
    ] {
        let filter = AvisFilter { text: Some(text.into()), ..filter };
        let wanted = words(text);
        let expected: Vec<AvisRow> = selected(&rows, &filter)
            .into_iter()
            .filter(|r| {
                let have = words(r.commentaire.as_deref().unwrap_or(""));
                wanted.iter().all(|w| have.contains(w))
            })
            .collect();
        if let Some(n) = expected_n {
            assert_eq!(expected.len(), n, "{text}: the test's own count");
        }
        assert!(!expected.is_empty(), "{text} {filter:?}");
        let got = walk(s, d, &filter, size).await;
        assert_eq!(got.len(), expected.len(), "{text} {filter:?}: pages of {size}");
        assert!(got == expected, "{text} {filter:?}: the same avis, in order");
        assert_eq!(export(s, d, &filter).await, expected, "{text}: the export too");
    }
}

/// An export of many rows: the same rows as one unlimited page, and one abandoned halfway
/// leaves the store usable.
async fn big_export(s: &Console, votes: &Arc<dyn Store>) {
    let t0 = now();
    let owner = named(s, "exports@dgfip.finances.gouv.fr", "Owner", t0).await;
    let d = create(s, "Impots", "impots dgfip", None, owner.id, t0).await;
    let base = noon(day(2024, 9, 1));
    let sources = ["site", "email", "button", "courrier"];
    let many: Vec<Vote> = (0..10_000)
        .map(|k| {
            let mut v = vote(d, sources[k % 4], base + Duration::seconds((k / 3) as i64), k);
            v.commentaire = k.is_multiple_of(10).then(|| format!("Commentaire numéro {k}").into());
            v
        })
        .collect();
    for chunk in many.chunks(2_000) {
        assert_eq!(votes.store_batch(chunk).await.unwrap(), chunk.len() as u64);
    }
    let everything = AvisFilter::default();
    let page = s.avis_page(d, everything.clone(), None, 20_000).await.unwrap();
    assert_eq!(page.len(), 10_000);
    let rows: Vec<AvisRow> = many.iter().map(avis_row).collect();
    assert_eq!(page, selected(&rows, &everything));
    assert_eq!(export(s, d, &everything).await, page);
    let commented = AvisFilter { with_comment: true, source: Some("site".into()), ..AvisFilter::default() };
    let want = selected(&rows, &commented);
    assert_eq!(want.len(), 500);
    assert_eq!(export(s, d, &commented).await, want);

    // Abandoned after a few rows, several times (more than the pool holds): nothing is stuck.
    for _ in 0..6 {
        let mut stream = s.avis_export(d, everything.clone());
        for expected in &page[..5] {
            assert_eq!(&stream.next().await.expect("a row").unwrap(), expected);
        }
        drop(stream);
        assert_eq!(s.avis_page(d, everything.clone(), None, 2).await.unwrap(), page[..2]);
    }
    for _ in 0..6 {
        assert_eq!(s.avis_page(d, everything.clone(), None, 3).await.unwrap(), page[..3]);
        assert_eq!(s.api_keys(owner.id).await.unwrap(), vec![]);
    }
    assert_eq!(export(s, d, &everything).await.len(), 10_000);

    // A word in more comments than PostgreSQL counts before choosing its plan (5,000), one in
    // fewer, one in none, two words: the same rows by pages and exported, whatever the plan.
    let d2 = create(s, "Cadastre", "cadastre dgfip", None, owner.id, t0).await;
    let dossiers: Vec<Vote> = (0..6_000)
        .map(|k| {
            let mut v = vote(d2, sources[k % 4], base + Duration::seconds((k / 2) as i64), k);
            let rare = match k % 2_000 {
                1 => " litige",
                _ if k.is_multiple_of(600) => " prioritaire",
                _ => "",
            };
            let urgent = if k.is_multiple_of(7) { " urgent" } else { "" };
            v.commentaire = Some(format!("Dossier numéro {k} reçu{rare}{urgent}").into());
            v
        })
        .collect();
    for chunk in dossiers.chunks(2_000) {
        assert_eq!(votes.store_batch(chunk).await.unwrap(), chunk.len() as u64);
    }
    let rows: Vec<AvisRow> = dossiers.iter().map(avis_row).collect();
    let has = |r: &AvisRow, word: &str| r.commentaire.as_deref().is_some_and(|c| c.contains(word));
    // Pages walk the newest 5,000 comments first: « dossier » and « urgent » fill theirs there,
    // « prioritaire » (one in 600) goes on walking, « litige » (three) and « introuvable » are
    // asked of the GIN index.
    for (text, source, want) in [
        ("dossier", None, 6_000),
        ("dossier", Some("site"), 1_500),
        ("URGENT", None, 858),
        ("Dossier, URGENT !", Some("email"), 214),
        ("introuvable", None, 0),
        ("prioritaire", None, 10),
        ("LITIGE", None, 3),
        ("litige", Some("site"), 0),
    ] {
        let filter = AvisFilter { text: Some(text.into()), source: source.map(String::from), ..AvisFilter::default() };
        let mut expected = selected(&rows, &AvisFilter { text: None, ..filter.clone() });
        match text {
            "dossier" => {}
            "prioritaire" | "introuvable" => expected.retain(|r| has(r, text)),
            "LITIGE" | "litige" => expected.retain(|r| has(r, "litige")),
            _ => expected.retain(|r| has(r, "urgent")),
        }
        assert_eq!(expected.len(), want, "{text:?} {source:?}");
        assert_eq!(walk(s, d2, &filter, 51).await, expected, "{text:?} {source:?}");
        assert_eq!(export(s, d2, &filter).await, expected, "{text:?} {source:?}");
    }
}

async fn api_keys(s: &Console) {
    let t0 = now();
    let alice = named(s, "alice@ameli.fr", "Alice", t0).await;
    let bob = named(s, "bob@ameli.fr", "Bob", t0).await;
    let (h1, h2, h3) = (fresh_hash(), fresh_hash(), fresh_hash());
    assert!(s.api_keys(alice.id).await.unwrap().is_empty());

    let k1 = s.create_api_key(h1, alice.id, "Tableau de bord".into(), t0).await.unwrap();
    let k2 = s.create_api_key(h2, alice.id, "Export nocturne".into(), t0 + Duration::seconds(1)).await.unwrap();
    let k3 = s.create_api_key(h3, bob.id, "Bob".into(), t0).await.unwrap();
    assert!(k1 != k2 && k2 != k3 && k1 != k3);
    let key = |id: i64, name: &str, created_at: DateTime<Utc>| ApiKey {
        id,
        name: name.into(),
        created_at,
        last_used_at: None,
        revoked_at: None,
    };
    let listed = s.api_keys(alice.id).await.unwrap();
    assert_eq!(
        listed,
        vec![key(k2, "Export nocturne", t0 + Duration::seconds(1)), key(k1, "Tableau de bord", t0)],
        "newest first"
    );
    assert_eq!(s.api_keys(bob.id).await.unwrap(), vec![key(k3, "Bob", t0)]);

    // Used: the key and its account; the use recorded at most once a minute.
    let t1 = t0 + Duration::minutes(5);
    assert_eq!(s.use_api_key(h1, t1).await.unwrap(), Some((k1, alice.clone())));
    let last_used = |keys: Vec<ApiKey>, id: i64| keys.into_iter().find(|k| k.id == id).expect("listed").last_used_at;
    assert_eq!(last_used(s.api_keys(alice.id).await.unwrap(), k1), Some(t1));
    assert_eq!(last_used(s.api_keys(alice.id).await.unwrap(), k2), None);
    assert_eq!(s.use_api_key(h1, t1 + Duration::seconds(30)).await.unwrap(), Some((k1, alice.clone())));
    assert_eq!(last_used(s.api_keys(alice.id).await.unwrap(), k1), Some(t1), "within a minute: not recorded");
    let t2 = t1 + Duration::seconds(61);
    assert_eq!(s.use_api_key(h1, t2).await.unwrap(), Some((k1, alice.clone())));
    assert_eq!(last_used(s.api_keys(alice.id).await.unwrap(), k1), Some(t2));
    assert_eq!(s.use_api_key(h1, t2 + Duration::seconds(60)).await.unwrap(), Some((k1, alice.clone())));
    assert_eq!(last_used(s.api_keys(alice.id).await.unwrap(), k1), Some(t2), "60 s later: not older than a minute");
    assert_eq!(s.use_api_key(h3, t1).await.unwrap(), Some((k3, bob.clone())));
    assert_eq!(s.use_api_key(fresh_hash(), t1).await.unwrap(), None, "unknown");

    // Revoked: by its account only, once; then unusable, still listed.
    let t3 = t2 + Duration::minutes(2);
    assert!(!s.revoke_api_key(k1, bob.id, t3).await.unwrap(), "not Bob's key");
    assert_eq!(s.use_api_key(h1, t3).await.unwrap(), Some((k1, alice.clone())));
    assert!(s.revoke_api_key(k1, alice.id, t3).await.unwrap());
    assert!(!s.revoke_api_key(k1, alice.id, t3 + Duration::minutes(1)).await.unwrap(), "already revoked");
    assert!(!s.revoke_api_key(987_654, alice.id, t3).await.unwrap(), "no such key");
    assert_eq!(s.use_api_key(h1, t3 + Duration::minutes(2)).await.unwrap(), None);
    let listed = s.api_keys(alice.id).await.unwrap();
    assert_eq!(listed.iter().map(|k| k.id).collect::<Vec<_>>(), vec![k2, k1]);
    assert_eq!(listed[1].revoked_at, Some(t3));
    assert_eq!(listed[1].last_used_at, Some(t3), "its last use before revocation");
    assert_eq!(listed[0].revoked_at, None);
    assert_eq!(s.use_api_key(h2, t3).await.unwrap(), Some((k2, alice.clone())));
    assert_eq!(s.use_api_key(h3, t3).await.unwrap(), Some((k3, bob.clone())), "other keys live on");

    // Keys go with their account.
    s.delete_account(bob.id).await.unwrap();
    assert_eq!(s.use_api_key(h3, t3).await.unwrap(), None);
    assert!(s.api_keys(bob.id).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// ProConnect (DESIGN §16): identities by (issuer, sub), first log-ins link or create.

const ISSUER: &str = "https://auth.example.gouv.fr/api/v2";

/// A verified ProConnect log-in of `sub` with `email`, its claims naming `name`.
fn pc_login(email: &str, sub: &str, name: &str) -> ProConnectLogIn {
    ProConnectLogIn {
        issuer: ISSUER.into(),
        sub: sub.into(),
        idp_id: "fia1v2".into(),
        email: email.into(),
        details: AccountDetails { name: name.into(), administration: "SIRET 13002526500013".into() },
        session: fresh_hash(),
        csrf: format!("csrf-{sub}"),
        id_token: format!("header.{sub}.signature"),
    }
}

/// The audit actions recorded about `account`, oldest first.
async fn audited(s: &Console, account: i64) -> Vec<(String, String)> {
    let mut log: Vec<(String, String)> = s
        .audit_log(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.account_id == Some(account) && e.actor_id == Some(account))
        .map(|(_, e)| (e.action, e.detail))
        .collect();
    log.reverse();
    log
}

async fn proconnect(s: &Console, other: &Console) {
    let t0 = now();
    let t1 = t0 + Duration::minutes(5);
    let identity = |sub: &str, idp: &str, created: DateTime<Utc>, last: DateTime<Utc>| ProConnectIdentity {
        issuer: ISSUER.into(),
        sub: sub.into(),
        idp_id: idp.into(),
        created_at: created,
        last_login_at: last,
    };
    let identities = |id: i64| async move {
        s.proconnect_identities(id)
            .await
            .unwrap()
            .into_iter()
            .map(|i| ProConnectIdentity { created_at: ms(i.created_at), last_login_at: ms(i.last_login_at), ..i })
            .collect::<Vec<_>>()
    };

    // A first log-in with a new address makes an active account named from the claims, without
    // password, and opens its session with the ID token.
    let first = pc_login("agent.un@finances.gouv.fr", "sub-un", "Agent Un");
    let (a, how) = s.proconnect_log_in(first.clone(), t0).await.unwrap();
    assert_eq!(how, ProConnectLink::Created);
    assert_eq!(
        (a.email.as_str(), a.name.as_str(), a.administration.as_str(), a.password_hash.as_str(), a.status),
        ("agent.un@finances.gouv.fr", "Agent Un", "SIRET 13002526500013", "", AccountStatus::Active)
    );
    assert_eq!(a, account(s, a.id).await);
    let row = s.session(first.session).await.unwrap().expect("the session is open");
    assert_eq!((row.account.id, row.csrf.as_str()), (a.id, "csrf-sub-un"));
    assert_eq!(row.id_token.as_deref(), Some("header.sub-un.signature"));
    assert_eq!((ms(row.created_at), ms(row.last_seen_at)), (t0, t0));
    assert_eq!(identities(a.id).await, vec![identity("sub-un", "fia1v2", t0, t0)]);
    // A password session holds no ID token.
    let by_password = fresh_hash();
    s.create_session(by_password, a.id, "c".into(), t0).await.unwrap();
    assert_eq!(s.session(by_password).await.unwrap().unwrap().id_token, None);

    // The next log-in of the identity finds its account by (issuer, sub), whatever the address
    // and names say now (from another replica too): nothing of the account changes.
    let again = ProConnectLogIn {
        email: "autre.adresse@finances.gouv.fr".into(),
        details: AccountDetails { name: "Autre Nom".into(), administration: String::new() },
        idp_id: "fia2v2".into(),
        session: fresh_hash(),
        ..first.clone()
    };
    let (found, how) = other.proconnect_log_in(again.clone(), t1).await.unwrap();
    assert_eq!((found, how), (a.clone(), ProConnectLink::Known));
    assert_eq!(identities(a.id).await, vec![identity("sub-un", "fia2v2", t0, t1)]);
    assert!(s.account_by_email("autre.adresse@finances.gouv.fr".into()).await.unwrap().is_none());
    // The same `sub` from another issuer is another identity: the address links it.
    let elsewhere = ProConnectLogIn {
        issuer: "https://autre.example.gouv.fr/api/v2".into(),
        session: fresh_hash(),
        ..first.clone()
    };
    assert_eq!(s.proconnect_log_in(elsewhere, t1).await.unwrap(), (a.clone(), ProConnectLink::Linked));
    // The agent through another identity provider (another sub), same address: linked too.
    let (found, how) = s.proconnect_log_in(pc_login("agent.un@finances.gouv.fr", "sub-deux", "X"), t1).await.unwrap();
    assert_eq!((found.id, how), (a.id, ProConnectLink::Linked));
    assert_eq!(s.proconnect_identities(a.id).await.unwrap().len(), 3);
    assert_eq!(
        audited(s, a.id).await,
        vec![
            ("account.proconnect.create".into(), "ProConnect, fournisseur d'identité fia1v2".into()),
            ("account.proconnect.login".into(), "ProConnect, fournisseur d'identité fia2v2".into()),
            ("account.proconnect.link".into(), "ProConnect, fournisseur d'identité fia1v2".into()),
            ("account.proconnect.link".into(), "ProConnect, fournisseur d'identité fia1v2".into()),
        ]
    );

    // A confirmed account of the address is linked: its password and details stay.
    let owner = named(s, "deja.inscrite@culture.gouv.fr", "Déjà Inscrite", t0).await;
    s.change_password(owner.id, phc("owner"), None, t0).await.unwrap();
    let (found, how) =
        s.proconnect_log_in(pc_login("deja.inscrite@culture.gouv.fr", "sub-owner", "Autre Nom"), t1).await.unwrap();
    assert_eq!(how, ProConnectLink::Linked);
    assert_eq!((found.id, found.name.as_str(), found.password_hash.clone()), (owner.id, "Déjà Inscrite", phc("owner")));
    // One waiting for an administrator becomes active (ProConnect serves public agents).
    let waiting = created(s, "prestataire@exemple.fr", t0).await;
    assert!(s.set_status(waiting, AccountStatus::Unconfirmed, AccountStatus::Pending, t0).await.unwrap());
    let (found, how) = s.proconnect_log_in(pc_login("prestataire@exemple.fr", "sub-wait", "P"), t1).await.unwrap();
    assert_eq!((found.id, found.status, how), (waiting, AccountStatus::Active, ProConnectLink::Linked));
    // An unconfirmed one (whoever signed up never proved the mailbox) is taken over: the claims'
    // details, active, and its confirmation link no longer works.
    let (outcome, link) = sign_up(s, new_account("usurpee@travail.gouv.fr", "Intrus"), t0).await;
    let SignUp::Created(usurped) = outcome else { panic!("{outcome:?}") };
    let (found, how) =
        s.proconnect_log_in(pc_login("usurpee@travail.gouv.fr", "sub-vraie", "Vraie Titulaire"), t1).await.unwrap();
    assert_eq!(how, ProConnectLink::Created);
    assert_eq!((found.id, found.name.as_str(), found.status), (usurped, "Vraie Titulaire", AccountStatus::Active));
    assert_eq!(found.administration, "SIRET 13002526500013");
    assert_eq!(peek(s, link, TokenKind::Confirm, t1).await, TokenState::Revoked);

    // The name and administration can be corrected.
    let fixed = AccountDetails { name: "Agent Un Corrigé".into(), administration: "DGFiP".into() };
    s.update_account_details(a.id, fixed).await.unwrap();
    let a2 = account(s, a.id).await;
    assert_eq!((a2.name.as_str(), a2.administration.as_str()), ("Agent Un Corrigé", "DGFiP"));

    // Deleting the account deletes its identities and sessions: the next log-in starts anew.
    s.delete_account(a.id).await.unwrap();
    assert!(s.proconnect_identities(a.id).await.unwrap().is_empty());
    assert!(s.session(first.session).await.unwrap().is_none());
    let (fresh, how) =
        s.proconnect_log_in(pc_login("agent.un@finances.gouv.fr", "sub-un", "Agent Un"), t1).await.unwrap();
    assert_eq!(how, ProConnectLink::Created);
    assert_ne!(fresh.id, a.id);

    // Two first log-ins of one new identity at once: one account, both sessions on it.
    let (x, y) = tokio::join!(
        s.proconnect_log_in(pc_login("course@interieur.gouv.fr", "sub-course", "Course"), t1),
        other.proconnect_log_in(pc_login("course@interieur.gouv.fr", "sub-course", "Course"), t1),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.0.id, y.0.id);
    let mut hows = [x.1, y.1];
    hows.sort_by_key(|h| *h as u8);
    assert_eq!(hows, [ProConnectLink::Known, ProConnectLink::Created]);
    assert_eq!(s.proconnect_identities(x.0.id).await.unwrap().len(), 1);
}

async fn conformance((s, s2, votes): (Console, Console, Arc<dyn Store>)) {
    accounts(&s).await;
    tokens(&s).await;
    sessions(&s).await;
    domains(&s).await;
    outbox(&s).await;
    audit(&s).await;
    deletion(&s).await;
    proconnect(&s, &s2).await;
    // `demarches` expects an empty démarche table: it runs before the others that create some.
    demarches(&s, &s2).await;
    porteurs(&s, &s2, &votes).await;
    invites(&s, &s2).await;
    activity(&s, &votes).await;
    merging(&s, &votes).await;
    merge_during_flushes(&s, &votes).await;
    every_avis(&s, &votes).await;
    big_export(&s, &votes).await;
    frequent_words(&s, &votes).await;
    observatory_rollup(&s, &votes).await;
    api_keys(&s).await;
    notifications(&s, &s2, &votes).await;
}

/// The vote store migrates (the console's tables are among its migrations) and writes the votes;
/// the console store opens its own connection(s), twice (as two replicas would).
async fn open(url: &str) -> (Console, Console, Arc<dyn Store>) {
    let votes = store::open(url).await.unwrap();
    votes.migrate().await.unwrap();
    (console::open(url).await.unwrap(), console::open(url).await.unwrap(), votes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_console_conformance() {
    let (tmp, url) = common::Server::sqlite_dir();
    conformance(open(&url).await).await;
    drop(tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_console_conformance() {
    let url = common::fresh_pg_database("console_conformance").await;
    conformance(open(&url).await).await;
}

/// Notifications (DESIGN §15): settings with their defaults, the digest's figures read in one
/// statement, the comments quoted, and each notification recorded once with its mail.
async fn notifications(s: &Console, other: &Console, votes: &Arc<dyn Store>) {
    use console::{DigestFrequency, DueNotification, Switches};
    let t0 = now();
    let alice = named(s, "alice.notif@exemple.gouv.fr", "Alice", t0).await;
    let bob = named(s, "bob.notif@exemple.gouv.fr", "Bob", t0).await;
    let (a, b) =
        (catalogue_only(votes, 920_001, "Allocation A").await, catalogue_only(votes, 920_002, "Bourse B").await);
    assert!(s.add_porteur(a, alice.id, t0).await.unwrap());
    assert!(s.add_porteur(b, alice.id, t0).await.unwrap());
    assert!(s.add_porteur(a, bob.id, t0).await.unwrap());

    // Defaults, for whoever joins: a weekly digest; comments off, drops and silences on.
    let settings = s.notification_settings(alice.id).await.unwrap();
    assert_eq!(settings.digest, DigestFrequency::Hebdomadaire);
    let defaults = Switches { comments: false, drop_alert: true, silent: true };
    assert_eq!(settings.demarches, vec![(a, "Allocation A".into(), defaults), (b, "Bourse B".into(), defaults)]);
    s.set_digest(alice.id, DigestFrequency::Quotidienne).await.unwrap();
    let chosen = Switches { comments: true, drop_alert: false, silent: true };
    assert!(s.set_switches(alice.id, b, chosen).await.unwrap());
    assert!(!s.set_switches(bob.id, b, chosen).await.unwrap(), "Bob does not carry B");
    let settings = s.notification_settings(alice.id).await.unwrap();
    assert_eq!(settings.digest, DigestFrequency::Quotidienne);
    assert_eq!(settings.demarches[1], (b, "Bourse B".into(), chosen));
    assert_eq!(s.notification_settings(bob.id).await.unwrap().demarches, vec![(a, "Allocation A".into(), defaults)]);

    // Avis on A: 3 on 10 March (4 comments among 5 votes there), 2 on the 9th; none on B.
    let (d9, d10) = (day(2025, 3, 9), day(2025, 3, 10));
    let mut batch: Vec<Vote> = (0..2).map(|k| vote(a, "button", noon(d9), k)).collect();
    for k in 0..3 {
        batch.push(vote(a, "button", noon(d10) + Duration::minutes(k as i64), k));
    }
    for k in 0..4 {
        let mut v = vote(a, "footer", noon(d10) + Duration::minutes(10 + k as i64), k);
        v.commentaire = Some(format!("commentaire {k}").into());
        batch.push(v);
    }
    let day10 = sum(&batch[2..]);
    votes.store_batch(&batch).await.unwrap();
    let mine = |lines: Vec<console::DigestLine>| -> Vec<console::DigestLine> {
        lines.into_iter().filter(|l| l.account_id == alice.id || l.account_id == bob.id).collect()
    };
    let daily = mine(s.digest_lines(DigestFrequency::Quotidienne, d9, d10, d10).await.unwrap());
    assert_eq!(daily.len(), 1, "Alice alone is daily, and B had no avis: {daily:?}");
    assert_eq!(
        (daily[0].account_id, daily[0].demarche_id, daily[0].email.as_str()),
        (alice.id, a, alice.email.as_str())
    );
    // Notifications read the count and the satisfaction answers only.
    let narrow = |c: Counts| Counts { n: c.n, satisfaction: c.satisfaction, ..Counts::default() };
    assert_eq!(daily[0].counts, narrow(day10));
    assert_eq!(daily[0].previous, narrow(sum(&batch[..2])));
    let weekly = mine(s.digest_lines(DigestFrequency::Hebdomadaire, d9, d10, d10).await.unwrap());
    assert_eq!(weekly.iter().map(|l| (l.account_id, l.demarche_id)).collect::<Vec<_>>(), vec![(bob.id, a)]);
    assert!(
        mine(
            s.digest_lines(DigestFrequency::Quotidienne, day(2025, 3, 10), day(2025, 3, 11), day(2025, 3, 11))
                .await
                .unwrap()
        )
        .is_empty(),
        "nothing arrived on the 11th"
    );

    let comments =
        s.comments_in(vec![a, b], noon(d10) - Duration::hours(12), noon(d10) + Duration::hours(12), 3).await.unwrap();
    let texts: Vec<(i64, i64, &str)> = comments.iter().map(|(d, n, c)| (*d, *n, c.text.as_str())).collect();
    assert_eq!(texts, vec![(a, 4, "commentaire 3"), (a, 4, "commentaire 2"), (a, 4, "commentaire 1")]);

    // Exactly once: two replicas record the same notification at once; one queues its mail.
    let due = DueNotification {
        account_id: alice.id,
        kind: "synthese".into(),
        demarche_id: 0,
        period: "2025-03-10/2025-03-10".into(),
        to: alice.email.clone(),
        subject: "Synthèse".into(),
        body: "texte".into(),
        html: "<p>html</p>".into(),
        unsubscribe: "https://avis.exemple.fr/desabonnement?jeton=x".into(),
        disarm: None,
    };
    let (x, y) =
        tokio::join!(s.record_notifications(vec![due.clone()], t0), other.record_notifications(vec![due.clone()], t0));
    let ids: Vec<i64> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(ids.len(), 1, "recorded once");
    assert!(s.record_notifications(vec![due.clone()], t0).await.unwrap().is_empty(), "a later run finds it sent");
    // A batch: only the keys not recorded yet queue a mail, each its own.
    let next_day = DueNotification { period: "2025-03-11/2025-03-11".into(), ..due.clone() };
    let day_after = DueNotification { period: "2025-03-12/2025-03-12".into(), body: "après".into(), ..due.clone() };
    let queued = s.record_notifications(vec![due.clone(), next_day.clone(), day_after], t0).await.unwrap();
    assert_eq!(queued.len(), 2, "another period is another mail");
    let mail = s.claim_email(*queued.iter().max().unwrap(), t0, t0 - Duration::minutes(10)).await.unwrap().unwrap();
    assert_eq!(mail.body, "après", "each key with its own mail");
    // Two replicas recording the same batch at once: each mail once.
    let batch: Vec<DueNotification> =
        (13..=20).map(|d| DueNotification { period: format!("2025-03-{d}/2025-03-{d}"), ..due.clone() }).collect();
    let (x, y) = tokio::join!(s.record_notifications(batch.clone(), t0), other.record_notifications(batch, t0));
    assert_eq!(x.unwrap().len() + y.unwrap().len(), 8, "every mail of the batch once");
    let mail = s.claim_email(ids[0], t0, t0 - Duration::minutes(10)).await.unwrap().expect("queued");
    assert_eq!((mail.body.as_str(), mail.html.as_deref()), ("texte", Some("<p>html</p>")));
    assert_eq!(mail.unsubscribe.as_deref(), Some("https://avis.exemple.fr/desabonnement?jeton=x"));
    s.mark_email_sent(ids[0], t0).await.unwrap();
    let sent = s.outbox(Some(alice.email.clone()), 50).await.unwrap();
    assert!(sent.iter().any(|m| m.id == ids[0] && m.body.is_empty() && m.html.is_none()), "emptied once sent");

    // Alerts: subscriptions with their switches, per-source windows, disarmed until re-armed.
    let subs: Vec<(i64, i64, Switches)> = s
        .subscriptions()
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.account_id == alice.id || x.account_id == bob.id)
        .map(|x| (x.account_id, x.demarche_id, x.switches))
        .collect();
    assert_eq!(subs, vec![(alice.id, a, defaults), (alice.id, b, chosen), (bob.id, a, defaults)]);
    let windows: Vec<(String, i64, i64, NaiveDate)> = s
        .source_windows(d9, d10, d10)
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.demarche_id == a)
        .map(|w| (w.source, w.before.n, w.after.n, w.last_day))
        .collect();
    assert_eq!(windows, vec![("button".into(), 2, 3, d10), ("footer".into(), 0, 4, d10)]);
    let silent = DueNotification {
        kind: "silencieux".into(),
        demarche_id: a,
        period: format!("button@{d10}"),
        disarm: Some(("button".into(), d10)),
        ..due.clone()
    };
    assert_eq!(s.record_notifications(vec![silent.clone()], t0).await.unwrap().len(), 1);
    let mine =
        |v: Vec<(i64, i64, String)>| -> Vec<(i64, i64, String)> { v.into_iter().filter(|x| x.0 == alice.id).collect() };
    assert_eq!(mine(s.disarmed_alerts("silencieux".into()).await.unwrap()), vec![(alice.id, a, "button".into())]);
    assert!(mine(s.disarmed_alerts("baisse".into()).await.unwrap()).is_empty());
    s.rearm_alerts("baisse".into(), vec![(alice.id, a, "button".into())]).await.unwrap();
    assert_eq!(mine(s.disarmed_alerts("silencieux".into()).await.unwrap()).len(), 1, "another kind");
    s.rearm_alerts("silencieux".into(), vec![(alice.id, a, "button".into())]).await.unwrap();
    assert!(mine(s.disarmed_alerts("silencieux".into()).await.unwrap()).is_empty());

    // The newest comments since each watch's instant, for every watch in one call.
    let since = s
        .comments_since(
            vec![(a, noon(d10) + Duration::minutes(12)), (b, noon(d9)), (a, noon(d9))],
            noon(d10) + Duration::hours(1),
            2,
        )
        .await
        .unwrap();
    let texts: Vec<(i64, DateTime<Utc>, &str)> = since.iter().map(|(d, t, c)| (*d, *t, c.text.as_str())).collect();
    assert_eq!(
        texts,
        vec![
            (a, noon(d10) + Duration::minutes(12), "commentaire 3"),
            (a, noon(d10) + Duration::minutes(12), "commentaire 2"),
            (a, noon(d9), "commentaire 3"),
            (a, noon(d9), "commentaire 2"),
        ]
    );

    // An unsubscribe from a kind holds for démarches joined later; turned back on, it does not.
    let c = catalogue_only(votes, 920_003, "Carte C").await;
    s.set_kind_off(bob.id, "silencieux".into(), true).await.unwrap();
    assert!(s.add_porteur(c, bob.id, t0).await.unwrap());
    let bob_c = |settings: console::NotificationSettings| settings.demarches.into_iter().find(|x| x.0 == c).unwrap().2;
    let off = Switches { silent: false, ..defaults };
    assert_eq!(bob_c(s.notification_settings(bob.id).await.unwrap()), off);
    let sub = s.subscriptions().await.unwrap().into_iter().find(|x| (x.account_id, x.demarche_id) == (bob.id, c));
    assert_eq!(sub.map(|x| x.switches), Some(off));
    assert_eq!(s.notification_settings(bob.id).await.unwrap().digest, DigestFrequency::Hebdomadaire, "digest kept");
    s.set_kind_off(bob.id, "silencieux".into(), false).await.unwrap();
    assert_eq!(bob_c(s.notification_settings(bob.id).await.unwrap()), defaults);
    assert!(s.set_kind_off(bob.id, "synthese".into(), true).await.is_err(), "not an alert kind");

    // Scheduled work: claimed by one run, done once per hour (or period), caught up later.
    let job = format!("horaire-test-{}", t0.timestamp_micros());
    let lease = t0 + Duration::minutes(15);
    let (x, y) = tokio::join!(
        s.claim_run(job.clone(), "2025-03-10T08".into(), t0, lease),
        other.claim_run(job.clone(), "2025-03-10T08".into(), t0, lease)
    );
    assert_eq!([x.unwrap(), y.unwrap()].iter().filter(|c| **c).count(), 1, "one run holds it");
    assert!(!s.claim_run(job.clone(), "2025-03-10T09".into(), t0 + Duration::minutes(5), lease).await.unwrap());
    s.finish_run(job.clone(), "2025-03-10T08".into(), true).await.unwrap();
    assert!(!s.claim_run(job.clone(), "2025-03-10T08".into(), t0, lease).await.unwrap(), "done");
    assert!(s.claim_run(job.clone(), "2025-03-10T07".into(), t0, lease).await.unwrap(), "another hour (--at)");
    s.finish_run(job.clone(), "2025-03-10T07".into(), true).await.unwrap();
    assert!(s.claim_run(job.clone(), "2025-03-10T10".into(), t0, lease).await.unwrap(), "a later hour");
    s.finish_run(job.clone(), "2025-03-10T10".into(), false).await.unwrap();
    assert!(s.claim_run(job.clone(), "2025-03-10T10".into(), t0, lease).await.unwrap(), "failed: tried again");
    assert!(
        s.claim_run(job.clone(), "2025-03-10T10".into(), lease, lease + Duration::minutes(15)).await.unwrap(),
        "a run that died is taken over"
    );

    // Everything of an account goes with it.
    assert!(s.record_notifications(vec![silent], t0).await.unwrap().is_empty());
    s.delete_account(alice.id).await.unwrap();
    assert_eq!(s.notification_settings(alice.id).await.unwrap().digest, DigestFrequency::Hebdomadaire);
    assert!(s.record_notifications(vec![due], t0).await.is_err(), "no account, no notification");
}
