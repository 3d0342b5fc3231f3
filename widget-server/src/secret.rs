//! The server secret that signs form links: 32 random bytes in a 0600 file, created on first run.

use std::io::Write;
use std::path::Path;

/// Length of a newly created secret.
pub const SECRET_LEN: usize = 32;

/// Reads the secret at `path`, creating it (and its directory) with fresh random bytes if it
/// does not exist. A secret shorter than 16 bytes is refused: links signed with it would be
/// guessable.
pub fn load_or_create(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 16 => return Ok(bytes),
        Ok(bytes) => {
            anyhow::bail!("{}: the secret is {} bytes long; at least 16 are needed", path.display(), bytes.len())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("{}: cannot read the secret: {e}", path.display()),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut secret = vec![0u8; SECRET_LEN];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&secret)?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "created a new server secret");
            Ok(secret)
        }
        // Another process created it first: use theirs, so both sign alike.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read(path)?),
        Err(e) => anyhow::bail!("{}: cannot create the secret: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused_with_0600() {
        let dir = std::env::temp_dir().join(format!("monavis-secret-{}", std::process::id()));
        let path = dir.join("sub/secret");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.len(), SECRET_LEN);
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(load_or_create(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
