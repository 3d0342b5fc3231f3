//! One conformance suite for the console's store, run against both backends: SQLite (a temporary
//! file) and a fresh database on the ephemeral PostgreSQL cluster of scripts/test.sh. Same calls,
//! same answers, including when two callers race.
//!
//! SQLite keeps times to the millisecond, so every time used here is whole milliseconds and every
//! time read back is compared at that precision.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use widget_server::console::store::{
    self as console, Account, AccountDetails, AccountStatus, AuditEntry, ConsoleStore, NewAccount, SignUp, TokenKind,
    TokenState,
};
use widget_server::store;

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
    NewAccount {
        email: email.into(),
        name: name.into(),
        administration: format!("Administration de {name}"),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2VsJ3tuYW1lfQ${name}"),
    }
}

async fn created(s: &Console, email: &str, t: DateTime<Utc>) -> i64 {
    match s.sign_up(new_account(email, "Porteur"), t).await.unwrap() {
        SignUp::Created(id) => id,
        other => panic!("{email}: expected Created, got {other:?}"),
    }
}

async fn account(s: &Console, id: i64) -> Account {
    s.account_by_id(id).await.unwrap().unwrap_or_else(|| panic!("account {id} exists"))
}

async fn accounts(s: &Console) {
    let t0 = now();
    assert_eq!(s.account_by_email("camille@interieur.gouv.fr".into()).await.unwrap(), None);
    assert_eq!(s.account_by_id(987_654).await.unwrap(), None);
    assert!(s.admins().await.unwrap().is_empty());

    // Created: unconfirmed, not an administrator, as given.
    let first = new_account("camille@interieur.gouv.fr", "Camille");
    let SignUp::Created(id) = s.sign_up(first.clone(), t0).await.unwrap() else { panic!("a new address is created") };
    let a = s.account_by_email(first.email.clone()).await.unwrap().expect("found by address");
    assert_eq!(a.id, id);
    assert_eq!(a.email, "camille@interieur.gouv.fr");
    assert_eq!((a.name.as_str(), a.administration.as_str()), ("Camille", "Administration de Camille"));
    assert_eq!(a.password_hash, first.password_hash);
    assert_eq!(a.status, AccountStatus::Unconfirmed);
    assert!(!a.is_admin);
    assert_eq!(ms(a.created_at), t0);
    assert_eq!(a.domain(), "interieur.gouv.fr");
    assert_eq!(account(s, id).await, a, "by id and by address agree");

    // Signed up again while unconfirmed: nothing changes until a link carrying the new
    // details is used; then they replace the old ones, creation time kept.
    let second = new_account("camille@interieur.gouv.fr", "Dominique");
    assert_eq!(s.sign_up(second.clone(), t0 + Duration::minutes(1)).await.unwrap(), SignUp::Unconfirmed(id));
    assert_eq!(account(s, id).await, a, "unchanged by the second sign-up itself");
    let (first_link, second_link) = (fresh_hash(), fresh_hash());
    let in_1h = t0 + Duration::hours(1);
    s.insert_token(first_link, id, TokenKind::Confirm, t0, in_1h, None).await.unwrap();
    let details = AccountDetails {
        name: second.name.clone(),
        administration: second.administration.clone(),
        password_hash: second.password_hash.clone(),
    };
    s.insert_token(second_link, id, TokenKind::Confirm, t0, in_1h, Some(details)).await.unwrap();
    assert_eq!(s.take_token(second_link, TokenKind::Confirm, t0).await.unwrap(), TokenState::Valid(id));
    let a = account(s, id).await;
    assert_eq!((a.name.as_str(), a.administration.as_str()), ("Dominique", "Administration de Dominique"));
    assert_eq!(a.password_hash, second.password_hash);
    assert_eq!(a.status, AccountStatus::Unconfirmed, "confirming is the caller's next step");
    assert_eq!(ms(a.created_at), t0);
    assert_eq!(
        s.take_token(first_link, TokenKind::Confirm, t0).await.unwrap(),
        TokenState::Used,
        "its sibling is void"
    );

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

    // Exists once confirmed: nothing changes.
    let before = account(s, id).await;
    assert_eq!(s.sign_up(new_account("camille@interieur.gouv.fr", "Intrus"), t0).await.unwrap(), SignUp::Exists(id));
    assert_eq!(account(s, id).await, before);

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
    assert_eq!(s.sign_up(new_account("camille@interieur.gouv.fr", "Intrus"), t0).await.unwrap(), SignUp::Exists(id));

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

    // A new password changes nothing else.
    let before = account(s, id).await;
    s.set_password(id, "$argon2id$v=19$nouveau".into()).await.unwrap();
    let after = account(s, id).await;
    assert_eq!(after.password_hash, "$argon2id$v=19$nouveau");
    assert_eq!(Account { password_hash: before.password_hash.clone(), ..after }, before);
    assert_eq!(account(s, other).await.password_hash, new_account("", "Porteur").password_hash);

    // Two sign-ups with one new address at once: one creates, the other finds it unconfirmed.
    for i in 0..10 {
        let email = format!("course{i}@interieur.gouv.fr");
        let (a, b) = tokio::join!(
            s.sign_up(new_account(&email, "Un"), t0),
            s.sign_up(new_account(&email, "Deux"), t0 + Duration::seconds(1))
        );
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| matches!(o, SignUp::Unconfirmed(_)));
        let (SignUp::Created(x), SignUp::Unconfirmed(y)) = (&outcomes[0], &outcomes[1]) else {
            panic!("one Created and one Unconfirmed, got {outcomes:?}")
        };
        assert_eq!(x, y);
        assert_eq!(s.account_by_email(email).await.unwrap().unwrap().id, *x);
    }
}

async fn tokens(s: &Console) {
    let t0 = now();
    let alice = created(s, "alice@jeunesse.gouv.fr", t0).await;
    let bob = created(s, "bob@jeunesse.gouv.fr", t0).await;
    let in_1h = t0 + Duration::hours(1);

    let confirm = fresh_hash();
    s.insert_token(confirm, alice, TokenKind::Confirm, t0, in_1h, None).await.unwrap();

    // Peeking says valid and uses nothing; the other kind does not know the link.
    for _ in 0..2 {
        assert_eq!(s.peek_token(confirm, TokenKind::Confirm, t0).await.unwrap(), TokenState::Valid(alice));
    }
    assert_eq!(s.peek_token(confirm, TokenKind::Reset, t0).await.unwrap(), TokenState::Unknown);
    assert_eq!(s.take_token(confirm, TokenKind::Reset, t0).await.unwrap(), TokenState::Unknown);
    assert_eq!(s.peek_token(fresh_hash(), TokenKind::Confirm, t0).await.unwrap(), TokenState::Unknown);
    assert_eq!(s.take_token(fresh_hash(), TokenKind::Confirm, t0).await.unwrap(), TokenState::Unknown);

    // Expiry: valid until just before `expires_at`, expired from it on, and taking it then fails.
    let just_before = in_1h - Duration::milliseconds(1);
    assert_eq!(s.peek_token(confirm, TokenKind::Confirm, just_before).await.unwrap(), TokenState::Valid(alice));
    assert_eq!(s.peek_token(confirm, TokenKind::Confirm, in_1h).await.unwrap(), TokenState::Expired);
    assert_eq!(s.take_token(confirm, TokenKind::Confirm, in_1h).await.unwrap(), TokenState::Expired);
    assert_eq!(
        s.take_token(confirm, TokenKind::Confirm, in_1h + Duration::hours(1)).await.unwrap(),
        TokenState::Expired
    );

    // Taken once; then used, even past its expiry.
    assert_eq!(s.take_token(confirm, TokenKind::Confirm, t0).await.unwrap(), TokenState::Valid(alice));
    assert_eq!(s.take_token(confirm, TokenKind::Confirm, t0).await.unwrap(), TokenState::Used);
    assert_eq!(s.peek_token(confirm, TokenKind::Confirm, t0).await.unwrap(), TokenState::Used);
    assert_eq!(s.peek_token(confirm, TokenKind::Confirm, in_1h + Duration::hours(5)).await.unwrap(), TokenState::Used);

    // Using a link voids its siblings (same account, same kind), and only them.
    let reset_1 = fresh_hash();
    let reset_2 = fresh_hash();
    let reset_3 = fresh_hash();
    let alice_confirm = fresh_hash();
    let bob_reset = fresh_hash();
    s.insert_token(reset_1, alice, TokenKind::Reset, t0, in_1h, None).await.unwrap();
    s.insert_token(reset_2, alice, TokenKind::Reset, t0 + Duration::seconds(1), in_1h, None).await.unwrap();
    s.insert_token(reset_3, alice, TokenKind::Reset, t0 + Duration::seconds(2), in_1h, None).await.unwrap();
    s.insert_token(alice_confirm, alice, TokenKind::Confirm, t0, in_1h, None).await.unwrap();
    s.insert_token(bob_reset, bob, TokenKind::Reset, t0, in_1h, None).await.unwrap();
    // The middle one is used: older and newer siblings alike are void.
    assert_eq!(s.take_token(reset_2, TokenKind::Reset, t0).await.unwrap(), TokenState::Valid(alice));
    assert_eq!(s.peek_token(reset_1, TokenKind::Reset, t0).await.unwrap(), TokenState::Used);
    assert_eq!(s.take_token(reset_3, TokenKind::Reset, t0).await.unwrap(), TokenState::Used);
    assert_eq!(s.peek_token(alice_confirm, TokenKind::Confirm, t0).await.unwrap(), TokenState::Valid(alice));
    assert_eq!(s.peek_token(bob_reset, TokenKind::Reset, t0).await.unwrap(), TokenState::Valid(bob));
    // A link sent after the use is valid.
    let reset_4 = fresh_hash();
    s.insert_token(reset_4, alice, TokenKind::Reset, t0 + Duration::seconds(3), in_1h, None).await.unwrap();
    assert_eq!(s.take_token(reset_4, TokenKind::Reset, t0).await.unwrap(), TokenState::Valid(alice));

    // Two posts of one link at once: one uses it.
    for _ in 0..10 {
        let h = fresh_hash();
        s.insert_token(h, bob, TokenKind::Confirm, t0, in_1h, None).await.unwrap();
        let (a, b) = tokio::join!(s.take_token(h, TokenKind::Confirm, t0), s.take_token(h, TokenKind::Confirm, t0));
        let mut got = [a.unwrap(), b.unwrap()];
        got.sort_by_key(|st| *st == TokenState::Used);
        assert_eq!(got, [TokenState::Valid(bob), TokenState::Used]);
    }
    // Two sibling links at once: one is used, the other voided; neither call fails.
    for _ in 0..10 {
        let (h1, h2) = (fresh_hash(), fresh_hash());
        s.insert_token(h1, bob, TokenKind::Reset, t0, in_1h, None).await.unwrap();
        s.insert_token(h2, bob, TokenKind::Reset, t0, in_1h, None).await.unwrap();
        let (a, b) = tokio::join!(s.take_token(h1, TokenKind::Reset, t0), s.take_token(h2, TokenKind::Reset, t0));
        let mut got = [a.unwrap(), b.unwrap()];
        got.sort_by_key(|st| *st == TokenState::Used);
        assert_eq!(got, [TokenState::Valid(bob), TokenState::Used]);
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
    s.insert_token(expired, eve, TokenKind::Confirm, old, t0 - Duration::seconds(1), None).await.unwrap();
    s.insert_token(expiring_now, eve, TokenKind::Reset, old, t0, None).await.unwrap();
    s.insert_token(valid, ivan, TokenKind::Confirm, t0, t0 + Duration::hours(1), None).await.unwrap();

    let purged = s.purge_expired(t0 - Duration::hours(1), t0 - Duration::days(30), t0).await.unwrap();
    assert_eq!(purged, 3, "two sessions and one link");
    assert!(s.session(idle).await.unwrap().is_none());
    assert!(s.session(ancient).await.unwrap().is_none());
    assert!(s.session(fresh).await.unwrap().is_some());
    assert!(s.session(at_the_limit).await.unwrap().is_some());
    assert_eq!(s.peek_token(expired, TokenKind::Confirm, old).await.unwrap(), TokenState::Unknown);
    assert_eq!(s.peek_token(expiring_now, TokenKind::Reset, old).await.unwrap(), TokenState::Valid(eve));
    assert_eq!(s.peek_token(valid, TokenKind::Confirm, t0).await.unwrap(), TokenState::Valid(ivan));
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
    assert_eq!(s.unsent_emails(stale, 10).await.unwrap(), vec![m1, m2, m3]);
    assert_eq!(s.unsent_emails(stale, 2).await.unwrap(), vec![m1, m2], "oldest first");

    let mail = s.claim_email(m1, t0, stale).await.unwrap().expect("unclaimed mail is claimed");
    assert_eq!((mail.id, mail.to.as_str(), mail.subject.as_str()), (m1, a.as_str(), "Confirmez"));
    assert_eq!(mail.body, "https://lien/1");
    assert_eq!((ms(mail.created_at), mail.sent_at), (t0, None));
    assert_eq!(s.claim_email(m1, t0, stale).await.unwrap(), None, "claimed already");
    assert_eq!(s.unsent_emails(stale, 10).await.unwrap(), vec![m2, m3]);

    // Two replicas claiming one mail at once: one gets it.
    let (x, y) = tokio::join!(s.claim_email(m2, t0, stale), s.claim_email(m2, t0, stale));
    let got: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(got.len(), 1, "exactly one claim wins");
    assert_eq!(got[0].subject, "Bienvenue");
    assert_eq!(s.unsent_emails(stale, 10).await.unwrap(), vec![m3]);

    // A claim older than `stale_before` has lapsed: the mail is listed and claimable again.
    let later = t0 + Duration::minutes(20);
    let stale_later = later - Duration::minutes(10);
    assert_eq!(s.unsent_emails(stale_later, 10).await.unwrap(), vec![m1, m2, m3]);
    assert!(s.claim_email(m2, later, stale_later).await.unwrap().is_some());
    assert_eq!(s.claim_email(m2, later, stale_later).await.unwrap(), None);

    // A failure releases the claim at once.
    s.mark_email_failed(m1, "421 4.7.0 try again later".into()).await.unwrap();
    assert_eq!(s.unsent_emails(stale, 10).await.unwrap(), vec![m1, m3]);
    let again = s.claim_email(m1, t0 + Duration::seconds(5), stale).await.unwrap().expect("claimable after failure");
    assert_eq!(again.body, "https://lien/1", "body kept until sent");

    // Sent: body emptied, never listed nor claimed again, even once its claim is stale.
    let sent_at = t0 + Duration::seconds(6);
    s.mark_email_sent(m1, sent_at).await.unwrap();
    let far = t0 + Duration::days(1);
    assert_eq!(s.unsent_emails(far, 10).await.unwrap(), vec![m2, m3]);
    assert_eq!(s.claim_email(m1, far, far).await.unwrap(), None);
    s.mark_email_failed(m1, "late failure report".into()).await.unwrap();
    assert_eq!(s.unsent_emails(far, 10).await.unwrap(), vec![m2, m3], "a sent mail stays sent");

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
    s.insert_token(confirm, gone, TokenKind::Confirm, t0, in_1h, None).await.unwrap();
    s.insert_token(reset, gone, TokenKind::Reset, t0, in_1h, None).await.unwrap();
    s.create_session(other_session, stays, "c".into(), t0).await.unwrap();
    s.insert_token(other_token, stays, TokenKind::Confirm, t0, in_1h, None).await.unwrap();

    s.delete_account(gone).await.unwrap();
    assert_eq!(s.account_by_id(gone).await.unwrap(), None);
    assert_eq!(s.account_by_email("parti@travail.gouv.fr".into()).await.unwrap(), None);
    assert!(s.session(session).await.unwrap().is_none());
    assert_eq!(s.delete_sessions_of(gone, None).await.unwrap(), 0, "no session left behind");
    assert_eq!(s.peek_token(confirm, TokenKind::Confirm, t0).await.unwrap(), TokenState::Unknown);
    assert_eq!(s.take_token(reset, TokenKind::Reset, t0).await.unwrap(), TokenState::Unknown);
    // A link hash freed by the deletion can be stored again (the row is really gone).
    s.insert_token(reset, stays, TokenKind::Reset, t0, in_1h, None).await.unwrap();
    assert_eq!(s.peek_token(reset, TokenKind::Reset, t0).await.unwrap(), TokenState::Valid(stays));

    // The other account is untouched, and the address is free again.
    assert!(s.session(other_session).await.unwrap().is_some());
    assert_eq!(s.peek_token(other_token, TokenKind::Confirm, t0).await.unwrap(), TokenState::Valid(stays));
    let again = created(s, "parti@travail.gouv.fr", t0).await;
    assert_ne!(again, gone);
    s.delete_account(987_654).await.unwrap();
}

async fn conformance(s: Console) {
    accounts(&s).await;
    tokens(&s).await;
    sessions(&s).await;
    domains(&s).await;
    outbox(&s).await;
    audit(&s).await;
    deletion(&s).await;
}

/// The vote store migrates (the console's tables are among its migrations); the console store
/// then opens its own connection(s).
async fn open(url: &str) -> Console {
    store::open(url).await.unwrap().migrate().await.unwrap();
    console::open(url).await.unwrap()
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
