//! Object stores: inputs and `--out` given as `s3://bucket/key` URLs.
//!
//! A path flag holds either a local (or mounted) path or an object-store URL; the commands carry
//! both as `PathBuf` and tell them apart with [`url_of`]. Every session (local, the Ballista
//! client, scheduler and executors) resolves URLs through the one [`StoreRegistry`] of its
//! process, which builds an S3 client per bucket from the process's `AWS_*` environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, …), so credentials never travel inside plans.
//!
//! The helpers here list, upload, move and delete whole "directories" (key prefixes), which is
//! what staging and publishing a run's tables need.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use datafusion::error::DataFusionError;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::error::{Error, Result};

/// The schemes path flags accept besides local paths.
pub const SCHEMES: [&str; 1] = ["s3"];

/// The URL a path flag holds, if it is one (`scheme://…`); `None` for a local path.
pub fn url_of(path: &Path) -> Option<Url> {
    let text = path.to_str()?;
    scheme_of(text)?;
    Url::parse(text).ok()
}

/// The scheme of `text` if it looks like a URL (`scheme://…`, the scheme made of letters,
/// digits, `+`, `-` and `.`), whether or not the rest parses.
pub fn scheme_of(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let scheme_like = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_like.then_some(scheme)
}

/// Whether a path flag names an object-store location.
pub fn is_remote(path: &Path) -> bool {
    url_of(path).is_some()
}

/// Resolves object-store URLs for every session of this process: `file://` to the local
/// filesystem, `s3://bucket` to an S3 client for that bucket configured from `AWS_*` variables
/// (built on first use, then shared).
#[derive(Debug, Default)]
pub struct StoreRegistry {
    local: DefaultObjectStoreRegistry,
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

/// The key stores are cached under: `scheme://bucket`.
fn store_key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        if url.scheme() == "file" {
            return self.local.register_store(url, store);
        }
        let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
        stores.insert(store_key(url), store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        match url.scheme() {
            "file" => self.local.get_store(url),
            "s3" => {
                let key = store_key(url);
                if let Some(store) = self
                    .stores
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                {
                    return Ok(store.clone());
                }
                let store: Arc<dyn ObjectStore> = Arc::new(
                    AmazonS3Builder::from_env()
                        .with_url(key.as_str())
                        .build()
                        .map_err(|e| DataFusionError::External(Box::new(e)))?,
                );
                let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
                Ok(stores.entry(key).or_insert(store).clone())
            }
            other => Err(DataFusionError::Configuration(format!(
                "{other}:// URLs are not supported: use s3:// or a local path"
            ))),
        }
    }
}

/// The registry of this process, shared by all its sessions.
pub fn registry() -> Arc<StoreRegistry> {
    static REGISTRY: OnceLock<Arc<StoreRegistry>> = OnceLock::new();
    REGISTRY.get_or_init(Arc::default).clone()
}

/// A location in an object store: the store and a key prefix ("directory") or object key.
#[derive(Clone, Debug)]
pub struct Remote {
    pub store: Arc<dyn ObjectStore>,
    /// `scheme://bucket`, without a trailing slash.
    pub root: String,
    pub key: Key,
}

impl Remote {
    /// The store and key of the URL `path` holds.
    pub fn of(path: &Path) -> Result<Remote> {
        let url =
            url_of(path).ok_or_else(|| Error::Usage(format!("{} is not a URL", path.display())))?;
        let store = registry()
            .get_store(&url)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let key = Key::from_url_path(url.path())
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        Ok(Remote {
            store,
            root: store_key(&url),
            key,
        })
    }

    /// The same store at another key.
    pub fn at(&self, key: Key) -> Remote {
        Remote {
            store: self.store.clone(),
            root: self.root.clone(),
            key,
        }
    }

    /// The key `name` inside this one.
    pub fn child(&self, name: &str) -> Remote {
        self.at(join(&self.key, name))
    }

    /// This location as a path flag would hold it (`s3://bucket/key`).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("{}/{}", self.root, self.key))
    }

    fn error(&self, doing: &str, e: impl std::fmt::Display) -> Error {
        Error::Io {
            context: format!("{doing} {}", self.path().display()),
            source: std::io::Error::other(e.to_string()),
        }
    }

    /// The object at exactly this key, if there is one.
    pub async fn object(&self) -> Result<Option<ObjectMeta>> {
        if self.key.as_ref().is_empty() {
            return Ok(None);
        }
        match self.store.head(&self.key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("reading", e)),
        }
    }

    /// The footer of the Parquet object at this key (two ranged reads: the footer's length,
    /// then the footer).
    pub async fn parquet_metadata(&self) -> Result<ParquetMetaData> {
        let not_parquet = |why: String| Error::Input {
            file: self.path(),
            message: format!("not a Parquet file ({why})"),
        };
        let meta = self
            .object()
            .await?
            .ok_or_else(|| not_parquet("no such object".into()))?;
        if meta.size < 12 {
            return Err(not_parquet(format!("{} bytes", meta.size)));
        }
        let tail = self
            .store
            .get_range(&self.key, meta.size - 8..meta.size)
            .await
            .map_err(|e| self.error("reading", e))?;
        if &tail[4..] != b"PAR1" {
            return Err(not_parquet("no PAR1 footer".into()));
        }
        let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        if length + 12 > meta.size {
            return Err(not_parquet(format!("a footer of {length} bytes")));
        }
        let footer = self
            .store
            .get_range(&self.key, meta.size - 8 - length..meta.size - 8)
            .await
            .map_err(|e| self.error("reading", e))?;
        ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| not_parquet(e.to_string()))
    }

    /// The object at this key, if any, and every object under it as a prefix, sorted by key.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>> {
        let mut all = self.children().await?;
        all.extend(self.object().await?);
        all.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(all)
    }

    /// Every object under this key as a prefix (not the object at the key itself), sorted.
    pub async fn children(&self) -> Result<Vec<ObjectMeta>> {
        let prefix = (!self.key.as_ref().is_empty()).then_some(&self.key);
        let mut all: Vec<ObjectMeta> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| self.error("listing", e))?;
        all.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(all)
    }

    /// The names of the "subdirectories" directly under this prefix.
    pub async fn subdirectories(&self) -> Result<Vec<String>> {
        let prefix = (!self.key.as_ref().is_empty()).then_some(&self.key);
        let listed = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.error("listing", e))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Whether an object lies at or under this key.
    pub async fn exists(&self) -> Result<bool> {
        Ok(self.object().await?.is_some() || self.has_children().await?)
    }

    /// Whether any object lies under this key as a prefix.
    pub async fn has_children(&self) -> Result<bool> {
        let prefix = (!self.key.as_ref().is_empty()).then_some(&self.key);
        let mut listed = self.store.list(prefix);
        match listed.try_next().await {
            Ok(first) => Ok(first.is_some()),
            Err(e) => Err(self.error("listing", e)),
        }
    }

    /// Deletes every object under this prefix.
    pub async fn delete_all(&self) -> Result<()> {
        for meta in self.list().await? {
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error("deleting", e)),
            }
        }
        Ok(())
    }

    /// Moves every object under this prefix to the same relative key under `to`: copies them
    /// all, then deletes them (object stores have no rename of a prefix). If a copy fails, the
    /// copies made so far are deleted, so `to` gets nothing and this prefix keeps everything.
    pub async fn move_to(&self, to: &Remote) -> Result<()> {
        let objects = self.list().await?;
        let mut copied = Vec::new();
        for meta in &objects {
            let target = rebase(&meta.location, &self.key, &to.key);
            if let Err(e) = self.store.copy(&meta.location, &target).await {
                for done in &copied {
                    let _ = self.store.delete(done).await;
                }
                return Err(self.error("copying", e));
            }
            copied.push(target);
        }
        for meta in &objects {
            self.store
                .delete(&meta.location)
                .await
                .map_err(|e| self.error("deleting", e))?;
        }
        Ok(())
    }

    /// Uploads local file or directory `from` to this key: a file as the object at this key,
    /// a directory's files to the same relative keys under it. What was there goes first.
    pub async fn upload(&self, from: &Path) -> Result<()> {
        self.delete_all().await?;
        if from.is_file() {
            return self.upload_file(from, self.key.clone()).await;
        }
        let files = local_files(from, |_| false)
            .map_err(|(d, e)| Error::io(format!("reading {}", d.display()), e))?;
        for file in files {
            let rel = file.strip_prefix(from).unwrap_or(&file);
            let mut key = self.key.clone();
            for part in rel.components() {
                key = join(&key, &part.as_os_str().to_string_lossy());
            }
            self.upload_file(&file, key).await?;
        }
        Ok(())
    }

    async fn upload_file(&self, file: &Path, key: Key) -> Result<()> {
        let local = |e: std::io::Error| Error::io(format!("reading {}", file.display()), e);
        let mut source = tokio::fs::File::open(file).await.map_err(local)?;
        let mut sink = object_store::buffered::BufWriter::new(self.store.clone(), key);
        tokio::io::copy(&mut source, &mut sink)
            .await
            .map_err(|e| self.error("uploading to", e))?;
        sink.shutdown()
            .await
            .map_err(|e| self.error("uploading to", e))
    }
}

/// `base/name` (an empty base gives `name`).
fn join(base: &Key, name: &str) -> Key {
    base.clone().join(name)
}

/// `location` moved from under `from` to under `to`.
fn rebase(location: &Key, from: &Key, to: &Key) -> Key {
    let mut key = to.clone();
    if let Some(parts) = location.prefix_match(from) {
        for part in parts {
            key = key.join(part);
        }
    }
    key
}

/// The files under local directory `dir`, recursively and sorted, leaving out the entries
/// (files or directories) whose names `skip` picks. An error names the directory it is about.
pub fn local_files(
    dir: &Path,
    skip: impl Fn(&str) -> bool,
) -> std::result::Result<Vec<PathBuf>, (PathBuf, std::io::Error)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| (d.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| (d.clone(), e))?;
            if skip(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert_eq!(
            url_of(Path::new("s3://lake/events")).unwrap().as_str(),
            "s3://lake/events"
        );
        assert!(url_of(Path::new("/data/events")).is_none());
        assert!(url_of(Path::new("relative/dir")).is_none());
        assert!(url_of(Path::new("odd name://x")).is_none());
    }

    #[test]
    fn keys_move_between_prefixes() {
        let from = Key::from("out/.staging/lead_scores");
        let to = Key::from("out/lead_scores");
        assert_eq!(
            rebase(
                &Key::from("out/.staging/lead_scores/as_of=2026-01-01/part-0.parquet"),
                &from,
                &to
            )
            .as_ref(),
            "out/lead_scores/as_of=2026-01-01/part-0.parquet"
        );
        assert_eq!(join(&Key::default(), "x").as_ref(), "x");
    }

    #[test]
    fn a_url_gives_its_bucket_and_key() {
        for (url, key) in [
            ("s3://lake/in/events", "in/events"),
            ("s3://lake/in/events/", "in/events"),
            ("s3://lake", ""),
            (
                "s3://lake/as_of=2026-01-01/x.parquet",
                "as_of=2026-01-01/x.parquet",
            ),
        ] {
            let remote = Remote::of(Path::new(url)).unwrap();
            assert_eq!(remote.root, "s3://lake");
            assert_eq!(remote.key.as_ref(), key, "{url}");
        }
        let root = Remote::of(Path::new("s3://lake")).unwrap();
        assert_eq!(
            root.child("out").child("t").path(),
            PathBuf::from("s3://lake/out/t")
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        let url = Url::parse("gs://bucket/x").unwrap();
        let e = registry().get_store(&url).unwrap_err().to_string();
        assert!(e.contains("gs:// URLs are not supported"), "{e}");
    }
}
