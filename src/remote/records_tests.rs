//! Record pushes against stores that do not honour "only if absent".

use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use super::{RecordPush, RecordSent, push_record};
use crate::hash::{Hash, KeyInputs};
use crate::remote::connect::{Connection, Scheme};
use crate::store::{OutputRecord, RECORD_FORMAT, RunRecord};

/// A server that accepts If-None-Match and ignores it (as s3rver does), where another
/// machine's PUT of the same key lands right after ours.
#[derive(Debug)]
struct IgnoresIfNoneMatch {
    inner: InMemory,
    rival: Mutex<Option<(Path, Vec<u8>)>>,
}

impl std::fmt::Display for IgnoresIfNoneMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IgnoresIfNoneMatch")
    }
}

#[async_trait::async_trait]
impl ObjectStore for IgnoresIfNoneMatch {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        _ignored: PutOptions,
    ) -> object_store::Result<PutResult> {
        let ours = self.inner.put(location, payload).await?;
        let rival = self.rival.lock().unwrap().take();
        if let Some((key, bytes)) = rival {
            self.inner.put(&key, PutPayload::from(bytes)).await?;
        }
        Ok(ours)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn connection(store: Arc<dyn ObjectStore>) -> Connection {
    Connection {
        store,
        prefix: Path::from("cache"),
        scheme: Scheme::S3,
        name: "s3".into(),
        url: "s3://bucket/cache".into(),
        endpoint: "http://127.0.0.1:1".into(),
        dir: None,
    }
}

fn inputs() -> KeyInputs {
    serde_json::from_value(serde_json::json!({
        "action": "cmd", "cmd": "python noise.py", "params": {}, "env": {},
        "deps": {}, "upstream": {}, "outs": ["noise.txt"]
    }))
    .unwrap()
}

/// A record for `inputs()` whose one output has content `bytes`.
fn record(bytes: &[u8]) -> (Vec<OutputRecord>, Vec<u8>) {
    let outs: Vec<OutputRecord> = serde_json::from_value(serde_json::json!([
        {"path": "noise.txt", "hash": Hash::of_bytes(bytes), "size": bytes.len()}
    ]))
    .unwrap();
    let inputs = inputs();
    let rec = RunRecord {
        format: RECORD_FORMAT,
        key: inputs.key(),
        node: "noise".into(),
        inputs,
        outputs: outs.clone(),
        metrics: Default::default(),
        metrics_from: None,
        started_at: 0.0,
        duration_s: 0.0,
        host: "here".into(),
        tool_version: "test".into(),
    };
    (outs, serde_json::to_vec(&rec).unwrap())
}

fn push(store: Arc<dyn ObjectStore>) -> RecordSent {
    let (outs, bytes) = record(b"ours");
    let rec = RecordPush {
        node: "noise".into(),
        key: inputs().key(),
        outs,
        objects: vec![],
        payload: Some((bytes, None)),
    };
    let conn = connection(store);
    let rt = tokio::runtime::Runtime::new().unwrap();
    match rt.block_on(push_record(&conn, &rec, false)) {
        Ok(sent) => sent,
        Err(f) => panic!("push failed: {f:?}"),
    }
}

#[test]
fn a_record_overwritten_on_a_server_ignoring_if_none_match_is_a_conflict() {
    let key = inputs().key().to_string();
    let key = Path::from(format!("cache/runs/{}/{}.json", &key[..2], &key[2..]));
    let store = IgnoresIfNoneMatch {
        inner: InMemory::new(),
        rival: Mutex::new(Some((key, record(b"theirs").1))),
    };
    match push(Arc::new(store)) {
        RecordSent::Conflict(theirs) => {
            assert_eq!(theirs[0].hash, Hash::of_bytes(b"theirs"));
        }
        _ => panic!("the overwritten push was reported as a success"),
    }
}

#[test]
fn a_record_read_back_as_ours_is_pushed() {
    assert!(matches!(
        push(Arc::new(InMemory::new())),
        RecordSent::Pushed
    ));
}
