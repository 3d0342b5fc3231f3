//! `deploy/monavis.service` and `deploy/monavis.env.example` (README, "Deployment"):
//!
//! - `systemd-analyze verify` accepts the unit, with `ExecStart` pointing at the binary just
//!   built, and prints no warning about it (it exits 0 on unknown keys and bad values, so the
//!   output is what counts). Without `systemd-analyze` the test fails: `scripts/test.sh`
//!   installs `systemd`, which provides it.
//! - Every `MONAVIS_*` variable the unit and the env example name (commented-out ones too) is
//!   one the binary knows, their values parse (`widget-server migrate` with that environment),
//!   and the server serves with the unit's layout: the secret read from a credential directory
//!   where nothing else gets written, the data directory in the state directory, exit status 0
//!   at SIGTERM.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_widget-server");
/// Where the unit expects the binary; the test points `ExecStart` at the one just built.
const INSTALLED_BIN: &str = "/usr/local/bin/widget-server";
/// Where the unit's state directory is (`StateDirectory=monavis`).
const STATE_DIR: &str = "/var/lib/monavis";
fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `KEY=value` lines of the unit's `[Service]` section, in order.
fn unit_settings(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
        .map(str::to_string)
        .collect()
}

/// The assignments of an environment file, commented-out ones included (`#NAME=value`), with the
/// outer quotes systemd removes: (name, value, commented out).
fn env_file(text: &str) -> Vec<(String, String, bool)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (commented, line) = match line.strip_prefix('#') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (name, value) = line.split_once('=')?;
            let well_formed =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !well_formed {
                assert!(commented, "not a NAME=value line: {line:?}");
                return None;
            }
            let value = value.trim();
            let value = ['\'', '"']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(value);
            Some((name.to_string(), value.to_string(), commented))
        })
        .collect()
}

/// The environment variables the binary reads, as `--help` lists them (`[env: NAME=]`).
fn known_variables() -> Vec<String> {
    let out = Command::new(BIN).arg("--help").output().expect("run widget-server --help");
    assert!(out.status.success(), "widget-server --help failed");
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    let known: Vec<String> =
        help.split("[env: ").skip(1).filter_map(|s| s.split('=').next()).map(str::to_string).collect();
    assert!(known.iter().any(|v| v == "MONAVIS_LISTEN"), "--help lists no variable:\n{help}");
    known
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].into_iter().find(|p| Path::new(p).exists());
    let Some(analyze) = analyze else {
        panic!(
            "systemd-analyze not found: install the Debian package `systemd` (scripts/test.sh does) to check \
             deploy/monavis.service"
        );
    };
    let unit = read(&deploy_file("monavis.service"));
    let exec = unit_settings(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart: {exec:?}");
    assert!(exec[0].starts_with(INSTALLED_BIN), "ExecStart runs {INSTALLED_BIN}: {}", exec[0]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monavis.service");
    std::fs::write(&path, unit.replace(&format!("ExecStart={INSTALLED_BIN}"), &format!("ExecStart={BIN}"))).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("run systemd-analyze");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("systemd-analyze verify: {}\n{output}", out.status);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{output}");
    let about_us: Vec<&str> = output
        .lines()
        .filter(|l| {
            l.contains("monavis") || l.contains(&dir.path().display().to_string()) || l.contains("widget-server")
        })
        .collect();
    assert!(about_us.is_empty(), "systemd-analyze verify warns about the unit:\n{}", about_us.join("\n"));
}

#[test]
fn the_unit_and_env_example_agree_with_the_binary() {
    let unit = read(&deploy_file("monavis.service"));
    let example = read(&deploy_file("monavis.env.example"));
    let known = known_variables();

    // The unit's own Environment= lines, then the example's assignments.
    let mut vars: Vec<(String, String, bool)> = unit_settings(&unit, "Environment")
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("Environment={kv}: not NAME=value"));
            (k.to_string(), v.to_string(), false)
        })
        .collect();
    let from_example = env_file(&example);
    assert!(from_example.len() >= 8, "the env example sets the usual variables: {from_example:?}");
    vars.extend(from_example.iter().cloned());
    for (name, _, _) in &vars {
        assert!(name.starts_with("MONAVIS_"), "{name}: the server reads MONAVIS_* variables");
        assert!(
            known.contains(name),
            "{name} is named by deploy/ but widget-server does not know it (--help lists {known:?})"
        );
    }
    for required in ["MONAVIS_DATABASE_URL", "MONAVIS_PUBLIC_URL", "MONAVIS_LISTEN", "MONAVIS_TRUSTED_PROXIES"] {
        assert!(from_example.iter().any(|(n, _, c)| n == required && !c), "the env example sets {required}");
    }
    for set_by_unit in ["MONAVIS_DATA_DIR", "MONAVIS_SECRET_FILE"] {
        assert!(
            !from_example.iter().any(|(n, _, _)| n == set_by_unit),
            "{set_by_unit} is the unit's, not the env file's"
        );
    }

    // The stop timeout leaves the shutdown flush its time, and exit status 3 is not a failure.
    let stop = unit_settings(&unit, "TimeoutStopSec");
    let stop = humantime::parse_duration(stop.last().expect("TimeoutStopSec")).expect("TimeoutStopSec");
    let shutdown =
        from_example.iter().find(|(n, _, _)| n == "MONAVIS_SHUTDOWN_TIMEOUT").map_or("30s", |(_, v, _)| v.as_str());
    let shutdown = humantime::parse_duration(shutdown).expect("MONAVIS_SHUTDOWN_TIMEOUT");
    assert!(stop >= shutdown + Duration::from_secs(15), "TimeoutStopSec {stop:?} vs shutdown timeout {shutdown:?}");
    assert!(unit_settings(&unit, "SuccessExitStatus").iter().any(|s| s.split_whitespace().any(|c| c == "3")));

    // Every value parses: `migrate` with the unit's and the example's environment (every
    // variable, commented-out ones too), the store replaced by a SQLite file.
    let dir = tempfile::tempdir().unwrap();
    // %S is the root of state directories; the unit's is %S/monavis, i.e. /var/lib/monavis.
    let state_root = dir.path().join("state");
    let state = state_root.join("monavis");
    let creds = dir.path().join("credentials");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("secret"), [7u8; 32]).unwrap();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (name, value, _) in &vars {
        if name.starts_with("MONAVIS_DATABASE_") || !known.contains(name) {
            continue;
        }
        let value = value
            .replace("%S", &state_root.display().to_string())
            .replace("%d", &creds.display().to_string())
            .replace(STATE_DIR, &state.display().to_string());
        env.insert(name.clone(), value);
    }
    assert_eq!(env.get("MONAVIS_DATA_DIR").map(String::as_str), Some(state.to_str().unwrap()));
    assert_eq!(env.get("MONAVIS_SECRET_FILE"), Some(&creds.join("secret").display().to_string()));
    env.insert("MONAVIS_DATABASE_URL".into(), format!("sqlite://{}", state.join("monavis.db").display()));
    env.insert("MONAVIS_LISTEN".into(), "127.0.0.1:0".into());
    let run = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear().envs(&env).current_dir(&state);
        cmd
    };
    let out = run(&["migrate"]).output().expect("run widget-server migrate");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("schema up to date"),
        "migrate with the deploy environment: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // And it serves that way: the secret only read, then SIGTERM, exit status 0.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let mut child = run(&["serve"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let listening = rx.recv_timeout(Duration::from_secs(60));
    if !matches!(&listening, Ok(l) if l.contains("listening on")) {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("serve did not start ({listening:?}):\n{}", String::from_utf8_lossy(&out.stderr));
    }
    // One answered request: the accept loop, and with it the SIGTERM handler, is running (a
    // SIGTERM between the "listening" line and then would end the process with the default action).
    let addr = listening.unwrap().rsplit("http://").next().unwrap().to_string();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect to the server");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "/healthz: {answer}");
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("serve did not stop within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = child.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "exit status at SIGTERM with nothing pending:\n{stderr}");
    let in_creds: Vec<_> = std::fs::read_dir(&creds).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(in_creds, ["secret"], "nothing is written next to the credential");
    assert_eq!(std::fs::read(creds.join("secret")).unwrap(), [7u8; 32], "the secret is only read");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
