//! Moving one object between the local cache and a remote, verifying its blake3 on the way.
//!
//! Nothing half-transferred is ever published under a final name. Downloads go to a temporary
//! file in the cache's `tmp/` and are only renamed into `objects/` once their hash matches.
//! Uploads are single atomic writes of the final key: a PUT (or, for large files, a multipart
//! upload that becomes visible only when completed) is all-or-nothing on S3, GCS and Azure,
//! and `file://` stages the bytes beside the target and renames. That gives the guarantee of
//! "upload to a temporary key, then rename" without a server-side copy of every object (which
//! would triple the requests for small objects and re-copy every gigabyte-sized one).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::hash::Hash;

/// Files larger than this are uploaded in parts (S3 needs parts of at least 5 MiB).
pub const MULTIPART_MIN: u64 = 16 << 20;
const PART_SIZE: usize = 16 << 20;
/// Parts of one file in flight at once: bounds memory to about PART_SIZE × this per file.
const PARTS_IN_FLIGHT: usize = 4;

/// Bytes and objects moved so far, shared by the transfer tasks and the progress display.
#[derive(Default)]
pub struct Counters {
    pub bytes: AtomicU64,
    pub objects: AtomicU64,
}

impl Counters {
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why one object could not be moved.
#[derive(Debug)]
pub enum Failure {
    /// The remote has no such key.
    Missing,
    /// The downloaded bytes hash to `actual`, not to the object's name.
    Corrupt { actual: Hash, bytes: u64 },
    /// The local object no longer hashes to its name: not uploaded.
    LocalCorrupt { actual: Hash },
    /// The store failed (network, access, …): stops the whole transfer.
    Store(object_store::Error),
    /// Local I/O failed: stops the whole transfer.
    Io(PathBuf, std::io::Error),
}

impl Failure {
    /// Whether the failure is about the one object (the rest may go on) or the whole remote.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Failure::Store(_) | Failure::Io(..))
    }
}

impl From<object_store::Error> for Failure {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Failure::Missing,
            e => Failure::Store(e),
        }
    }
}

/// The size of the object at `key`, or `None` when the remote lacks it.
pub async fn head(store: &dyn ObjectStore, key: &Key) -> Result<Option<u64>, Failure> {
    match store.head(key).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(Failure::Store(e)),
    }
}

/// Upload the local file `src` (an object named `hash`) to `key`, hashing as it is read so a
/// damaged local object is never shared.
pub async fn upload(
    store: Arc<dyn ObjectStore>,
    key: Key,
    src: PathBuf,
    hash: Hash,
    counters: Arc<Counters>,
) -> Result<u64, Failure> {
    let io = |e| Failure::Io(src.clone(), e);
    let size = tokio::fs::metadata(&src).await.map_err(io)?.len();
    if size < MULTIPART_MIN {
        let bytes = tokio::fs::read(&src).await.map_err(io)?;
        let actual = Hash::of_bytes(&bytes);
        if actual != hash {
            return Err(Failure::LocalCorrupt { actual });
        }
        store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(Failure::Store)?;
        counters.add_bytes(size);
        return Ok(size);
    }
    let mut file = tokio::fs::File::open(&src).await.map_err(io)?;
    let upload = store.put_multipart(&key).await.map_err(Failure::Store)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; PART_SIZE];
    let outcome: Result<(), Failure> = async {
        loop {
            let n = read_full(&mut file, &mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(Failure::Store)?;
            writer.write(&buf[..n]);
            counters.add_bytes(n as u64);
        }
        Ok(())
    }
    .await;
    let actual = Hash::from(hasher.finalize());
    match outcome {
        Ok(()) if actual == hash => {
            writer.finish().await.map_err(Failure::Store)?;
            Ok(size)
        }
        Ok(()) => {
            // Never completed, so the object never appears under its name.
            let _ = writer.abort().await;
            Err(Failure::LocalCorrupt { actual })
        }
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// Fill `buf` as far as the file allows; 0 at the end.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Upload small bytes (a run record, a log) to `key`.
pub async fn put_bytes(store: &dyn ObjectStore, key: &Key, bytes: Vec<u8>) -> Result<(), Failure> {
    store
        .put(key, PutPayload::from(bytes))
        .await
        .map_err(Failure::Store)?;
    Ok(())
}

/// The whole object at `key`, in memory (records, logs, directory manifests).
pub async fn get_bytes(store: &dyn ObjectStore, key: &Key) -> Result<Vec<u8>, Failure> {
    Ok(store.get(key).await?.bytes().await?.to_vec())
}

/// Download the object `hash` from `key`, streaming it through blake3. With `tmp_dir`, the bytes
/// go to a temporary file there, returned only when they hash to `hash`; without, they are
/// only checked (`verify --deep`).
pub async fn download(
    store: Arc<dyn ObjectStore>,
    key: Key,
    hash: Hash,
    tmp_dir: Option<PathBuf>,
    counters: Arc<Counters>,
) -> Result<Option<tempfile::NamedTempFile>, Failure> {
    let mut file = match &tmp_dir {
        Some(dir) => {
            Some(crate::store::tmp::file_in(dir).map_err(|e| Failure::Io(dir.clone(), e))?)
        }
        None => None,
    };
    let mut stream = store.get(&key).await?.into_stream();
    let mut hasher = blake3::Hasher::new();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Failure::from)?;
        hasher.update(&chunk);
        if let Some(f) = file.as_mut() {
            f.write_all(&chunk)
                .map_err(|e| Failure::Io(f.path().to_path_buf(), e))?;
        }
        bytes += chunk.len() as u64;
        counters.add_bytes(chunk.len() as u64);
    }
    let actual = Hash::from(hasher.finalize());
    if actual != hash {
        // The temporary file is deleted when dropped: nothing is published.
        return Err(Failure::Corrupt { actual, bytes });
    }
    Ok(file)
}
