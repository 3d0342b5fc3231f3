//! A full disk under the journal and the data directory (issue 12): a 256 KiB tmpfs mounted by
//! the test (CI runs as root, as on a server). Votes are answered 303 while the journal can
//! fsync them, then 503 with Retry-After and a French page, with a clear error in the log;
//! nothing answered 303 is lost (SIGTERM drains every one into the store) and nothing answered
//! 503 is stored.

mod common;

use std::process::Command;

use common::*;

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("mount: {e}"));
        assert!(
            out.status.success(),
            "cannot mount a tmpfs for the disk-full test (run the tests as root, as scripts/test.sh does in CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_answers_503_and_loses_nothing_acknowledged() {
    let disk = Tmpfs::mount("256k");
    let journal = disk.dir.path().join("journal");
    let data = disk.dir.path().join("data");
    let (tmp, url) = Server::sqlite_dir();
    cli(tmp.path(), &url, &["demarche", "add", "--id", "1", "--name", "Carte grise"]);
    let (journal_arg, data_arg) = (journal.to_str().unwrap().to_string(), data.to_str().unwrap().to_string());
    let mut server = Server::start_logged(
        tmp.path(),
        &url,
        &[
            "--journal",
            &journal_arg,
            "--data-dir",
            &data_arg,
            // No flush while the disk fills: the journal keeps every vote.
            "--flush-interval-ms",
            "3600000",
            "--flush-max-votes",
            "1000000",
            "--rate-per-minute",
            "1000000000",
            "--rate-per-minute-demarche",
            "1000000000",
        ],
    );
    let key = server.signer().sign(1);
    let comment = "commentaire=".to_string() + &"Un+commentaire+assez+long+pour+remplir+le+disque.+".repeat(20);
    let (mut accepted, mut refused) = (0usize, 0usize);
    let client = client();
    for i in 0..5_000 {
        let sat = ["bien", "moyen", "pas-bien"][i % 3];
        let body = format!("key={key}&satisfaction={sat}&{comment}");
        let (status, headers, page) = try_post_form(&client, &server.url("/Demarches/1/avis"), body).await.unwrap();
        match status.as_u16() {
            303 => accepted += 1,
            503 => {
                assert!(headers.contains_key("retry-after"), "503 with Retry-After");
                assert!(text(&page).contains("momentanément"), "a French page");
                refused += 1;
                if refused >= 20 {
                    break;
                }
            }
            other => panic!("vote answered {other}: {}", text(&page)),
        }
    }
    assert!(accepted > 10, "votes were accepted while the disk had room: {accepted}");
    assert!(refused >= 20, "a full disk answers 503 ({accepted} accepted)");
    let log = server.log();
    assert!(
        log.contains("vote not journaled") && log.to_lowercase().contains("no space left on device"),
        "the log says why: {log}"
    );
    eprintln!("{accepted} votes answered 303, then 503 once the 256 KiB journal disk was full");

    // Every vote answered 303 reaches the store, once; none answered 503 does.
    stop_and_check_stored(&mut server, &[1], accepted).await;
}

/// Fills `dir` (on a tmpfs) to the last byte.
fn fill(dir: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("ballast")).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_down_and_spill_disk_full_at_shutdown_the_journal_keeps_every_vote() {
    let disk = Tmpfs::mount("64k");
    let data = disk.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cluster = std::sync::Arc::new(tokio::task::spawn_blocking(OwnCluster::start).await.unwrap());
    let tmp = tempfile::tempdir().unwrap();
    cli(tmp.path(), &cluster.url, &["demarche", "add", "--id", "1", "--name", "Carte grise"]);
    let journal = tmp.path().join("journal");
    let args = [
        "--journal",
        journal.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--flush-interval-ms",
        "100",
        "--shutdown-timeout",
        "2s",
        "--rate-per-minute",
        "1000000000",
        "--rate-per-minute-demarche",
        "1000000000",
    ];
    let mut server = Server::start_logged(tmp.path(), &cluster.url, &args);
    let key = server.signer().sign(1);
    for i in 0..20 {
        assert_eq!(post_vote(&server, 1, &varied_vote(&key, i)).await.0, 303);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.pause()).await.unwrap();
    // The data directory's disk fills up while the store is down.
    fill(&data);
    for i in 20..70 {
        assert_eq!(post_vote(&server, 1, &varied_vote(&key, i)).await.0, 303, "the journal has room");
    }
    let status = server.terminate();
    let log = server.log();
    eprintln!("exit status {status}");
    assert_eq!(status.code(), Some(3), "exit status 3: votes left for the next start (here in the journal)");
    assert!(log.to_lowercase().contains("no space left on device"), "the log says why: {log}");
    assert!(log.contains("the votes stay in the journal"), "and where the votes are: {log}");

    // Next start, store back: the journal is replayed, every vote answered 303 stored once.
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.resume()).await.unwrap();
    let _ = std::fs::remove_file(data.join("ballast"));
    let mut server = Server::start_in(tmp.path(), &cluster.url, &args);
    assert_eq!(wait_for_avis(&cluster.url, 70, std::time::Duration::from_secs(30)).await, 70, "journal replayed");
    stop_and_check_stored(&mut server, &[1], 70).await;
}
