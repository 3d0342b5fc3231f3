//! Records the commit the binary is built from, for `monavis_build_info` (DESIGN §11):
//! `MONAVIS_COMMIT` if set (a build outside git: a tarball, a distribution package), else
//! `git rev-parse --short=12 HEAD`, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MONAVIS_COMMIT");
    let from_env = std::env::var("MONAVIS_COMMIT").ok().filter(|c| !c.is_empty());
    let commit = from_env.unwrap_or_else(|| {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_string())
        };
        // Built again when HEAD moves: HEAD itself (a branch switch) and the ref it points to
        // (a commit), wherever git keeps them (worktrees included).
        // Only files that exist: cargo reruns a build script whose watched file is missing on
        // every build (a repository without packed-refs made every build compile widget-server).
        let watch = |p: String| {
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        };
        for path in ["HEAD", "packed-refs"] {
            if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                watch(p);
            }
        }
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            if let Some(p) = git(&["rev-parse", "--git-path", &r]) {
                watch(p);
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
    });
    println!("cargo:rustc-env=MONAVIS_COMMIT={commit}");
}
