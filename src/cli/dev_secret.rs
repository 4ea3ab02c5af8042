//! The development server's secret in a private file, so that `ezenroll token --dev` can
//! sign tokens for a server that runs without a configured secret and without restarting
//! it (a restart would empty its memory store).
//!
//! The file is `dev-<port>.secret` in `$XDG_RUNTIME_DIR/ezenroll/`, or else in
//! `<temp dir>/ezenroll-<uid>/`: a directory only its owner may enter, a file only its owner
//! may read. A directory someone else owns, or others may enter, is refused, never used.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The secret file of the server listening on `port`, removed when dropped.
#[derive(Debug)]
pub struct DevSecretFile {
    path: PathBuf,
}

impl DevSecretFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DevSecretFile {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the development secret file");
        }
    }
}

/// Writes `secret` as the secret of the development server on `port`, replacing what a
/// server killed before it could clean up left behind.
pub fn write(port: u16, secret: &str) -> io::Result<DevSecretFile> {
    let dir = private_dir(true)?;
    let path = dir.join(file_name(port));
    let staging = dir.join(format!("{}.{}", file_name(port), std::process::id()));
    let mut file = open_private(&staging)?;
    let written = file
        .write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&staging, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&staging);
        return Err(e);
    }
    Ok(DevSecretFile { path })
}

/// The secret of the development server on `port`, with an error that says what to do
/// when there is none.
pub fn read(port: u16) -> io::Result<String> {
    let dir = private_dir(false)?;
    let path = dir.join(file_name(port));
    let secret = fs::read_to_string(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            io::Error::new(
                e.kind(),
                format!(
                    "no development server of this user listens on port {port} (there is no \
                     {}); start `ezenroll serve` without a secret, or name the server's \
                     address with --listen",
                    path.display()
                ),
            )
        } else {
            io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
        }
    })?;
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(secret.to_owned())
}

fn file_name(port: u16) -> String {
    format!("dev-{port}.secret")
}

/// The directory the secret files live in; with `create`, made if missing.
fn private_dir(create: bool) -> io::Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("ezenroll"),
        None => std::env::temp_dir().join(format!("ezenroll-{}", user_id())),
    };
    if create {
        make_private_dir(&dir)?;
    }
    check_private(&dir)?;
    Ok(dir)
}

#[cfg(unix)]
fn make_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io::Error::new(
            e.kind(),
            format!("cannot create {}: {e}", dir.display()),
        )),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn make_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// A directory that is no link, belongs to this user and that nobody else may enter.
#[cfg(unix)]
fn check_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(dir)?;
    let private = meta.is_dir() && meta.uid() == user_id() && meta.mode() & 0o077 == 0;
    if private {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a private directory of this user (mode 700); not using it",
                dir.display()
            ),
        ))
    }
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn user_id() -> u32 {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn user_id() -> u32 {
    0
}
