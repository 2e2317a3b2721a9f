//! The Files seam: challenge attachments, page media and solution images as plain files under
//! `<data_dir>/files/<dir>/<name>` (in production the same path on an NFS-backed volume).
//!
//! A location is exactly two segments, `<dir>/<name>` (ctfcli identifies a file by the last two
//! segments of its URL and by its basename, admin-api §0.6). `dir` is 32 random hex characters
//! unless the uploader names it (`media/…`), and is restricted to ASCII letters, digits, `-`
//! and `_`. The file name is kept *as uploaded* (unlike CTFd's `secure_filename`), so a sync
//! never re-uploads a file whose name has spaces or non-ASCII letters; names that could escape
//! the directory (`/`, `\`, `..`, control characters) are refused instead of rewritten.
//!
//! Writes go to a temporary file under `<root>/.incoming` and are renamed into place, so a
//! reader never sees a half-written file and a failed upload leaves nothing behind. Deleting a
//! file removes only that file (and its directory once empty), never its siblings.

use std::path::{Path, PathBuf};

use rand::RngCore;
use ring::digest;
use tokio::io::AsyncWriteExt;

/// The files directory of a data directory.
#[derive(Debug, Clone)]
pub struct FileStorage {
    root: PathBuf,
}

/// Why a location was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadLocation(pub String);

/// Checks an uploaded file name.
pub fn validate_name(name: &str) -> Result<(), BadLocation> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(BadLocation("the file name is empty".into()));
    }
    if name.len() > 255 {
        return Err(BadLocation("the file name is longer than 255 bytes".into()));
    }
    if name.chars().any(|character| character == '/' || character == '\\' || character.is_control()) {
        return Err(BadLocation("the file name must not contain slashes or control characters".into()));
    }
    Ok(())
}

/// Checks a `<dir>/<name>` location.
pub fn validate_location(location: &str) -> Result<(), BadLocation> {
    let Some((dir, name)) = location.split_once('/') else {
        return Err(BadLocation("Location must contain two parts, a directory and a filename".into()));
    };
    if dir.is_empty() || dir.len() > 64 || !dir.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(BadLocation("the directory must be 1 to 64 letters, digits, `-` or `_`".into()));
    }
    validate_name(name).map_err(|BadLocation(message)| {
        if name.contains('/') {
            BadLocation("Location must contain two parts, a directory and a filename".into())
        } else {
            BadLocation(message)
        }
    })
}

/// A fresh random directory name (32 hex characters).
pub fn random_dir() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Lowercase hex SHA-1 of `bytes`.
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bytes).as_ref())
}

/// An upload being written to a temporary file; [`Upload::commit_to`] moves it into place.
pub struct Upload {
    temporary: PathBuf,
    file: tokio::fs::File,
    hasher: digest::Context,
    size: u64,
}

impl Upload {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes and renames the file to `location` (replacing what is there); returns its
    /// SHA-1 (lowercase hex) and size.
    pub async fn commit_to(mut self, storage: &FileStorage, location: &str) -> std::io::Result<(String, u64)> {
        let target = match storage.path_of(location) {
            Ok(path) => path,
            Err(error) => {
                self.abort().await;
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, error));
            }
        };
        let result = async {
            self.file.flush().await?;
            self.file.sync_all().await?;
            if let Some(directory) = target.parent() {
                tokio::fs::create_dir_all(directory).await?;
            }
            tokio::fs::rename(&self.temporary, &target).await
        }
        .await;
        if let Err(error) = result {
            let _ = tokio::fs::remove_file(&self.temporary).await;
            return Err(error);
        }
        Ok((hex::encode(self.hasher.finish().as_ref()), self.size))
    }

    /// Removes the partial file.
    pub async fn abort(self) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.temporary).await;
    }
}

impl FileStorage {
    /// The storage of a data directory (`<data_dir>/files`).
    pub fn new(data_dir: &Path) -> Self {
        Self { root: data_dir.join("files") }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a valid location.
    pub fn path_of(&self, location: &str) -> Result<PathBuf, BadLocation> {
        validate_location(location)?;
        let (dir, name) = location.split_once('/').unwrap_or((location, ""));
        Ok(self.root.join(dir).join(name))
    }

    /// Starts an upload into a temporary file (under `<root>/.incoming`).
    pub async fn begin(&self) -> std::io::Result<Upload> {
        let directory = self.root.join(".incoming");
        tokio::fs::create_dir_all(&directory).await?;
        let temporary = directory.join(random_dir());
        let file = tokio::fs::File::create(&temporary).await?;
        Ok(Upload { temporary, file, hasher: digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY), size: 0 })
    }

    /// Writes a whole file at `location`; returns its SHA-1 (hex) and size.
    pub async fn write(&self, location: &str, bytes: &[u8]) -> std::io::Result<(String, u64)> {
        self.path_of(location).map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
        let mut upload = self.begin().await?;
        if let Err(error) = upload.write(bytes).await {
            upload.abort().await;
            return Err(error);
        }
        upload.commit_to(self, location).await
    }

    /// Reads a whole file.
    pub async fn read(&self, location: &str) -> std::io::Result<Vec<u8>> {
        let path =
            self.path_of(location).map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
        tokio::fs::read(path).await
    }

    /// Removes a file and its directory once empty; a missing file is not an error.
    pub async fn remove(&self, location: &str) -> std::io::Result<()> {
        let path =
            self.path_of(location).map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        if let Some(directory) = path.parent() {
            // Fails harmlessly while other files remain.
            let _ = tokio::fs::remove_dir(directory).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_two_safe_segments() {
        assert!(validate_location("0123abcd/flag.txt").is_ok());
        assert!(validate_location("media/logo with space é.png").is_ok());
        for bad in ["flag.txt", "a/b/c", "../x", "a/..", "a/", "/x", "a.b/x", "a/x\ny", "a/x\\y"] {
            assert!(validate_location(bad).is_err(), "{bad}");
        }
        assert_eq!(random_dir().len(), 32);
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[tokio::test]
    async fn writes_are_atomic_and_removal_keeps_siblings() {
        let directory = tempfile::tempdir().unwrap();
        let storage = FileStorage::new(directory.path());
        let (sha1, size) = storage.write("media/a.txt", b"abc").await.unwrap();
        assert_eq!((sha1.as_str(), size), ("a9993e364706816aba3e25717850c26c9cd0d89d", 3));
        storage.write("media/b.txt", b"b").await.unwrap();
        storage.remove("media/a.txt").await.unwrap();
        assert_eq!(storage.read("media/b.txt").await.unwrap(), b"b");
        storage.remove("media/a.txt").await.unwrap();
        storage.remove("media/b.txt").await.unwrap();
        assert!(!directory.path().join("files/media").exists());
        let mut upload = storage.begin().await.unwrap();
        upload.write(b"partial").await.unwrap();
        upload.abort().await;
        assert!(std::fs::read_dir(directory.path().join("files/.incoming")).unwrap().next().is_none());
        let upload = storage.begin().await.unwrap();
        assert!(upload.commit_to(&storage, "../escape").await.is_err());
        assert!(std::fs::read_dir(directory.path().join("files/.incoming")).unwrap().next().is_none());
    }
}
