//! Hostile input over loopback against the real binary (issue 12): bodies over the limit, a
//! Content-Length that lies, headers dribbled a byte at a time, thousands of idle connections,
//! invalid UTF-8 and NUL bytes, path traversal under /static/, huge query strings, header floods,
//! forged and cross-démarche keys, the honeypot, a spoofed X-Forwarded-For from an untrusted
//! peer. Every answer is the right one, nothing bad is stored, honest clients are still served,
//! the server never panics and its memory stays bounded (measured).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Server;

const ID: i64 = 71;
const OTHER: i64 = 72;

/// Sends `bytes` on a new connection, then reads the answer until the server closes or 5 s pass.
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may answer and close before reading everything (a flood): a write error is fine.
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn post(path: &str, body: &[u8], extra: &str) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// GET /healthz answered 200 within `within`.
fn healthy(addr: SocketAddr, within: Duration) -> bool {
    let started = Instant::now();
    let answer = raw(addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    status_of(&answer) == 200 && started.elapsed() < within
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_gets_the_right_answers_and_loses_nothing() {
    let (tmp, url) = Server::sqlite_dir();
    for id in [ID, OTHER] {
        common::cli(tmp.path(), &url, &["demarche", "add", "--id", &id.to_string(), "--name", "Démarche visée"]);
    }
    // Default rate limits (30 a minute per address, 5 per address and démarche): the spoofing
    // check relies on them.
    let server = Server::start_logged(tmp.path(), &url, &["--flush-interval-ms", "50"]);
    let addr = server.addr;
    let key = server.signer().sign(ID as u64);
    let vote_path = format!("/Demarches/{ID}/avis");
    let rss_before = server.rss_kib();

    // Headers dribbled a byte every 300 ms: closed at the header timeout (10 s), no answer.
    let dribble = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        for b in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n" {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (started.elapsed(), String::from_utf8_lossy(&buf).into_owned())
    });

    // Thousands of idle connections: honest clients are still served at once. (The server
    // raises its own file-descriptor limit; this process needs one too.)
    let fds = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(fds >= 4000, "ulimit -n is {fds}: too few descriptors for this test");
    let mut idle = Vec::new();
    for _ in 0..3000 {
        idle.push(TcpStream::connect(addr).unwrap());
    }
    assert!(healthy(addr, Duration::from_secs(2)), "served with 3,000 idle connections open");

    // Bodies over the limit: declared, or streamed without a length.
    let big = vec![b'a'; 30 * 1024];
    let answer = raw(addr, &post(&vote_path, &big, ""));
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("Votre avis est trop long"), "a French page");
    let mut chunked = format!(
        "POST {vote_path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("400\r\n{}\r\n", "a".repeat(1024)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(status_of(&raw(addr, &chunked)), 413, "streamed over the limit");

    // A Content-Length that lies: longer than the body (then silence), shorter than the body.
    let body = format!("key={key}&satisfaction=bien");
    let mut longer = post(&vote_path, body.as_bytes(), "");
    let cl = format!("Content-Length: {}", body.len());
    let at = longer.windows(cl.len()).position(|w| w == cl.as_bytes()).unwrap();
    longer.splice(at..at + cl.len(), format!("Content-Length: {}", body.len() + 50).into_bytes());
    let liar = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&longer).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let shorter = format!(
        "POST {vote_path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\nConnection: close\r\n\r\n{body}"
    );
    let answer = raw(addr, shorter.as_bytes());
    assert_eq!(status_of(&answer), 404, "the first 8 bytes hold a truncated key: {answer}");

    // Invalid UTF-8 and NUL bytes, in the body and in the query.
    let mut nasty = format!("key={key}&satisfaction=bien&commentaire=").into_bytes();
    nasty.extend_from_slice(b"\xff\xfe\x00%00%C3%28\x00fin");
    let answer = raw(addr, &post(&vote_path, &nasty, "X-Forwarded-For: 198.51.100.1\r\n"));
    assert!([303, 400, 422].contains(&status_of(&answer)), "{answer}");
    let answer = raw(
        addr,
        format!(
            "GET /Demarches/{ID}?view-mode=formulaire-avis&key=%00%ff HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&answer), 404, "{answer}");
    let mut bad_path = b"GET /Demarches/\xff\x00 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec();
    assert_eq!(status_of(&raw(addr, &bad_path)), 400, "bytes the URI grammar refuses");
    bad_path.clear();

    // Path traversal under /static/.
    for path in [
        "/static/../Cargo.toml",
        "/static/..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static//etc/passwd",
        "/static/avis.css%00.svg",
    ] {
        let answer = raw(addr, format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
        assert!([400, 404].contains(&status_of(&answer)), "{path}: {answer}");
        assert!(!answer.contains("root:") && !answer.contains("[workspace]"), "{path} leaked a file");
    }

    // A huge query string, a header flood, a one-megabyte header: refused (the head is capped
    // at 16 KiB, below).
    let huge_query = format!(
        "GET /Demarches/{ID}?view-mode=formulaire-avis&key={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "a".repeat(200_000)
    );
    let answer = raw(addr, huge_query.as_bytes());
    assert!(answer.is_empty() || [400, 414, 431].contains(&status_of(&answer)), "huge query: {answer}");
    let mut flood = String::from("GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for i in 0..5000 {
        flood += &format!("X-Flood-{i}: x\r\n");
    }
    flood += "\r\n";
    let answer = raw(addr, flood.as_bytes());
    assert!(answer.is_empty() || [400, 431].contains(&status_of(&answer)), "header flood: {answer}");
    let huge_header = format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "b".repeat(1_000_000));
    let answer = raw(addr, huge_header.as_bytes());
    assert!(answer.is_empty() || [400, 431].contains(&status_of(&answer)), "huge header: {answer}");

    // The head is capped at 16 KiB (http::MAX_HEAD_BYTES), start line included: one byte under
    // is answered, one over gets 431, whether in one header or in many.
    let head = |total: usize, headers: usize| {
        let start = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n";
        let mut h = String::from(start);
        // Each header line "X-Pad-NN: …\r\n"; the last pads to the exact total, the final CRLF counted.
        for i in 0..headers {
            let name = format!("X-Pad-{i:02}: ");
            let left = total - h.len() - 2;
            let share = if i + 1 == headers {
                left - name.len() - 2
            } else {
                (left / (headers - i)).saturating_sub(name.len() + 2)
            };
            h += &format!("{name}{}\r\n", "p".repeat(share));
        }
        h += "\r\n";
        assert_eq!(h.len(), total);
        h
    };
    for headers in [1, 40] {
        let answer = raw(addr, head(16 * 1024, headers).as_bytes());
        assert_eq!(status_of(&answer), 200, "a head of 16 KiB ({headers} headers): {answer}");
        let answer = raw(addr, head(16 * 1024 + 1, headers).as_bytes());
        assert_eq!(status_of(&answer), 431, "a head of 16 KiB + 1 ({headers} headers): {answer}");
    }
    let answer = raw(addr, head(20_000, 1).replace("/healthz", &format!("/Demarches/{ID}/avis")).as_bytes());
    assert_eq!(status_of(&answer), 431, "a vote's head too");

    // Forged keys: tampered, another démarche's, none; a right key upper-cased is the same key.
    let mut tampered = key.clone().into_bytes();
    tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other_key = server.signer().sign(OTHER as u64);
    for (what, k) in [("tampered", tampered.as_str()), ("another démarche's", other_key.as_str()), ("empty", "")] {
        let answer = raw(
            addr,
            &post(&vote_path, format!("key={k}&satisfaction=bien").as_bytes(), "X-Forwarded-For: 198.51.100.2\r\n"),
        );
        assert_eq!(status_of(&answer), 404, "{what} key: {answer}");
    }

    // The honeypot: answered like a success, never stored.
    let answer =
        raw(addr, &post(&vote_path, format!("key={key}&satisfaction=bien&site_web=http://spam").as_bytes(), ""));
    assert_eq!(status_of(&answer), 303, "{answer}");

    // A spoofed X-Forwarded-For from an untrusted peer (no --trusted-proxies): the limit of 5
    // votes a minute per address and démarche holds, whatever the header says.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let forwarded = format!("X-Forwarded-For: 203.0.113.{i}\r\n");
        let answer = raw(
            addr,
            &post(
                &format!("/Demarches/{OTHER}/avis"),
                format!("key={other_key}&satisfaction=moyen").as_bytes(),
                &forwarded,
            ),
        );
        statuses.push(status_of(&answer));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 303).count(), 5, "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");

    let (took, answer) = dribble.join().unwrap();
    assert!(took < Duration::from_secs(16), "the dribbling client was cut off after {took:?}");
    assert!(!answer.contains("200 OK"), "a dribbled request was never answered: {answer}");
    let answer = liar.join().unwrap();
    assert!(!answer.contains(" 303 "), "a body that never came in full is no vote: {answer}");

    // Still healthy, memory bounded, nothing stored but the honest votes, no panic.
    drop(idle);
    assert!(healthy(addr, Duration::from_secs(2)));
    let rss_after = server.rss_kib();
    eprintln!("RSS: {rss_before} KiB before, {rss_after} KiB after the attacks");
    assert!(rss_after < rss_before + 64 * 1024, "RSS grew from {rss_before} to {rss_after} KiB");
    let stored = common::wait_for_avis(&server.db_url, 5, Duration::from_secs(5)).await;
    // The five honest votes on OTHER, plus at most the one with invalid UTF-8 (303 or 400).
    assert!(stored == 5 || stored == 6, "stored {stored}");
    let log = server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}
