//! Content hashes: a stable, versioned key encoding ([`CacheKey`]) and file hashing.
//!
//! Keys must stay identical across cegraph versions unless the encoding version changes:
//! tests pin golden keys, so an accidental change of the encoding is caught.

pub mod files;
#[cfg(test)]
#[allow(dead_code)]
mod source_fingerprint;
#[cfg(test)]
mod source_fingerprint_tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A blake3 digest. Files hash to the plain blake3 of their bytes (what `b3sum` prints).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn of_bytes(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
    /// The first 12 hex digits, for display.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
    pub fn from_hex(s: &str) -> Option<Hash> {
        blake3::Hash::from_hex(s).ok().map(|h| Hash(*h.as_bytes()))
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Hash(*h.as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a blake3 hash: {s}")))
    }
}

/// The canonical byte encoding that node keys are computed over: every item is
/// type-tagged and length-prefixed, maps are sorted, so distinct inputs never collide.
pub struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    /// A hasher for one purpose; the context string versions the encoding.
    pub fn new(context: &str) -> Self {
        KeyHasher(blake3::Hasher::new_derive_key(context))
    }
    pub fn tag(&mut self, t: u8) -> &mut Self {
        self.0.update(&[t]);
        self
    }
    pub fn u64(&mut self, x: u64) -> &mut Self {
        self.0.update(&x.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.update(b);
        self
    }
    pub fn item<T: CacheKey + ?Sized>(&mut self, x: &T) -> &mut Self {
        x.cache_key(self);
        self
    }
    pub fn finish(&self) -> Hash {
        self.0.finalize().into()
    }
}

/// A value that contributes to a cache key. Implementations must never change their
/// encoding without bumping the key context version.
pub trait CacheKey {
    fn cache_key(&self, h: &mut KeyHasher);
}

impl CacheKey for str {
    fn cache_key(&self, h: &mut KeyHasher) {
        h.tag(b's').bytes(self.as_bytes());
    }
}

impl CacheKey for String {
    fn cache_key(&self, h: &mut KeyHasher) {
        self.as_str().cache_key(h)
    }
}

impl CacheKey for u32 {
    fn cache_key(&self, h: &mut KeyHasher) {
        h.tag(b'u').u64(*self as u64);
    }
}

impl CacheKey for Hash {
    fn cache_key(&self, h: &mut KeyHasher) {
        h.tag(b'h');
        h.0.update(&self.0);
    }
}

impl<T: CacheKey> CacheKey for Option<T> {
    fn cache_key(&self, h: &mut KeyHasher) {
        match self {
            None => {
                h.tag(b'0');
            }
            Some(x) => {
                h.tag(b'1').item(x);
            }
        }
    }
}

impl<T: CacheKey> CacheKey for [T] {
    fn cache_key(&self, h: &mut KeyHasher) {
        h.tag(b'a').u64(self.len() as u64);
        for x in self {
            x.cache_key(h);
        }
    }
}

impl<T: CacheKey> CacheKey for Vec<T> {
    fn cache_key(&self, h: &mut KeyHasher) {
        self.as_slice().cache_key(h)
    }
}

impl<K: CacheKey, V: CacheKey> CacheKey for BTreeMap<K, V> {
    fn cache_key(&self, h: &mut KeyHasher) {
        h.tag(b'm').u64(self.len() as u64);
        for (k, v) in self {
            k.cache_key(h);
            v.cache_key(h);
        }
    }
}

impl CacheKey for Value {
    fn cache_key(&self, h: &mut KeyHasher) {
        match self {
            Value::Null => {
                h.tag(b'n');
            }
            Value::Bool(b) => {
                h.tag(b'b').tag(*b as u8);
            }
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    h.tag(b'i').u64(i as u64);
                } else if let Some(u) = n.as_u64() {
                    h.tag(b'p').u64(u);
                } else {
                    h.tag(b'f').u64(n.as_f64().unwrap_or(f64::NAN).to_bits());
                }
            }
            Value::String(s) => s.cache_key(h),
            Value::Array(items) => items.cache_key(h),
            Value::Object(map) => {
                // Sorted explicitly: serde_json's map order depends on its features.
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                h.tag(b'm').u64(entries.len() as u64);
                for (k, v) in entries {
                    k.cache_key(h);
                    v.cache_key(h);
                }
            }
        }
    }
}

/// Everything that determines a node's result. Its hash is the node's key; it is also kept
/// in the node's run record so `status` can say, field by field, why a node is stale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInputs {
    /// `cmd`, or the built-in kind's name.
    pub action: String,
    /// The fingerprint of the kind's code (computed at build time from its sources and the
    /// crate versions it uses); `None` for `cmd`.
    #[serde(default)]
    pub kind_fingerprint: Option<Hash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    pub params: BTreeMap<String, Value>,
    pub env: BTreeMap<String, String>,
    /// Plain file/directory deps: path → content hash.
    pub deps: BTreeMap<String, Hash>,
    /// Upstream node → its outputs (path → content hash). Outputs, not keys: an upstream
    /// that re-runs and produces identical bytes leaves this node's key unchanged.
    pub upstream: BTreeMap<String, BTreeMap<String, Hash>>,
    /// Declared output paths.
    pub outs: Vec<String>,
    /// Facts of the run that change what a node produces, resolved when the plan is made.
    /// `cegraph-worker` (libtorch) kinds: `libtorch` (the version the worker loads), `device`
    /// (`auto` resolved to `cpu` or `cuda:0`) and `threads`; `cmd` nodes: `threads` (their
    /// `OMP_NUM_THREADS`). Empty for the other kinds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runtime: BTreeMap<String, String>,
}

/// Context string of the node-key encoding. Changing it invalidates every cache.
/// v2: the kind's code fingerprint replaced its hand-bumped version; `runtime` added.
pub const NODE_KEY_CONTEXT: &str = "cegraph 2026-11 node key v2";

impl CacheKey for KeyInputs {
    fn cache_key(&self, h: &mut KeyHasher) {
        h.item(&self.action)
            .item(&self.kind_fingerprint)
            .item(&self.cmd)
            .item(&self.params)
            .item(&self.env)
            .item(&self.deps)
            .item(&self.upstream)
            .item(&self.outs)
            .item(&self.runtime);
    }
}

impl KeyInputs {
    pub fn key(&self) -> Hash {
        KeyHasher::new(NODE_KEY_CONTEXT).item(self).finish()
    }

    /// Human-readable differences from an earlier version of this node's inputs.
    pub fn changes_since(&self, old: &KeyInputs) -> Vec<String> {
        let mut why = Vec::new();
        if self.action != old.action {
            why.push(format!("action: {} → {}", old.action, self.action));
        } else if self.kind_fingerprint != old.kind_fingerprint {
            let short = |h: &Option<Hash>| h.map_or("unrecorded".to_string(), |h| h.short());
            why.push(format!(
                "kind {}: code changed ({} → {})",
                self.action,
                short(&old.kind_fingerprint),
                short(&self.kind_fingerprint)
            ));
        }
        for (k, v) in &self.runtime {
            match old.runtime.get(k) {
                Some(o) if o == v => {}
                Some(o) => why.push(format!("{k}: {o} → {v}")),
                None => why.push(format!("{k}: {v} (not recorded before)")),
            }
        }
        for (k, o) in old
            .runtime
            .iter()
            .filter(|(k, _)| !self.runtime.contains_key(*k))
        {
            why.push(format!("{k}: {o} → none"));
        }
        if self.cmd != old.cmd {
            why.push(match (&old.cmd, &self.cmd) {
                (Some(a), Some(b)) => format!("cmd: {}", text_change(a, b)),
                _ => "cmd changed".into(),
            });
        }
        map_changes(
            "params",
            &old.params,
            &self.params,
            |v| v.to_string(),
            &mut why,
        );
        map_changes("env", &old.env, &self.env, |v| v.clone(), &mut why);
        for (path, h) in &self.deps {
            match old.deps.get(path) {
                None => why.push(format!("dep {path} added")),
                Some(o) if o != h => why.push(format!("dep {path} changed")),
                _ => {}
            }
        }
        for path in old.deps.keys().filter(|p| !self.deps.contains_key(*p)) {
            why.push(format!("dep {path} removed"));
        }
        for (node, outs) in &self.upstream {
            match old.upstream.get(node) {
                None => why.push(format!("upstream {node} added")),
                Some(o) if o != outs => why.push(format!("upstream {node}: output changed")),
                _ => {}
            }
        }
        for node in old
            .upstream
            .keys()
            .filter(|n| !self.upstream.contains_key(*n))
        {
            why.push(format!("upstream {node} removed"));
        }
        if self.outs != old.outs {
            why.push(format!("outs: {:?} → {:?}", old.outs, self.outs));
        }
        why
    }
}

/// `a → b`, or for long texts only the region around the first difference.
fn text_change(a: &str, b: &str) -> String {
    const WIDE: usize = 60;
    if a.chars().count() <= WIDE && b.chars().count() <= WIDE {
        return format!("{a:?} → {b:?}");
    }
    let start = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let from = start.saturating_sub(12);
    let window = |s: &str| {
        let w: String = s.chars().skip(from).take(36).collect();
        let more = s.chars().count() > from + 36;
        format!(
            "\"{}{}{}\"",
            if from > 0 { "…" } else { "" },
            w,
            if more { "…" } else { "" }
        )
    };
    format!("{} → {}", window(a), window(b))
}

fn map_changes<V: PartialEq>(
    what: &str,
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
    show: impl Fn(&V) -> String,
    why: &mut Vec<String>,
) {
    // Params-file values are named by their file: `params.yaml:train.lr 0.001 → 0.003`.
    let label = |k: &str| match k.contains(':') {
        true => k.to_string(),
        false => format!("{what}.{k}:"),
    };
    for (k, v) in new {
        match old.get(k) {
            None => why.push(format!("{} added ({})", label(k), show(v))),
            Some(o) if o != v => why.push(format!("{} {} → {}", label(k), show(o), show(v))),
            _ => {}
        }
    }
    for (k, v) in old.iter().filter(|(k, _)| !new.contains_key(*k)) {
        why.push(format!("{} removed (was {})", label(k), show(v)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> KeyInputs {
        let mut params = BTreeMap::new();
        params.insert("lr".to_string(), json!(0.001));
        params.insert("layers".to_string(), json!(4));
        params.insert("name".to_string(), json!("rope"));
        let mut deps = BTreeMap::new();
        deps.insert("data/x.txt".to_string(), Hash::of_bytes(b"hello"));
        let mut up = BTreeMap::new();
        up.insert("out/tok.bin".to_string(), Hash::of_bytes(b"tokens"));
        let mut upstream = BTreeMap::new();
        upstream.insert("tokenize".to_string(), up);
        KeyInputs {
            action: "cmd".into(),
            kind_fingerprint: None,
            cmd: Some("echo hi > out/a".into()),
            params,
            env: BTreeMap::new(),
            deps,
            upstream,
            outs: vec!["out/a".into()],
            runtime: BTreeMap::new(),
        }
    }

    /// Golden keys: if this fails, the key encoding changed and every user's cache is
    /// invalidated. Only update it together with NODE_KEY_CONTEXT.
    #[test]
    fn golden_node_keys_are_stable() {
        assert_eq!(
            sample().key().to_hex(),
            "acc5d727b4b6ef26ad868366f1dcc1b65e5ad286e5bc0e527447e899ccf587ae"
        );
        let mut k = sample();
        k.action = "train".into();
        k.kind_fingerprint = Some(Hash::of_bytes(b"train kind sources"));
        k.cmd = None;
        k.runtime.insert("libtorch".into(), "2.11.0+cpu".into());
        k.runtime.insert("device".into(), "cpu".into());
        k.runtime.insert("threads".into(), "2".into());
        assert_eq!(
            k.key().to_hex(),
            "48e68e72c4d92832bb1af81c8a4c4e888de20911c05b3877df29d457840cd24c"
        );
    }

    #[test]
    fn ints_floats_and_strings_do_not_collide() {
        let enc = |v: Value| KeyHasher::new("t").item(&v).finish();
        assert_ne!(enc(json!(1)), enc(json!(1.0)));
        assert_ne!(enc(json!(1)), enc(json!("1")));
        assert_ne!(enc(json!(["a", "b"])), enc(json!(["ab"])));
        assert_eq!(enc(json!({"a": 1, "b": 2})), enc(json!({"b": 2, "a": 1})));
    }

    #[test]
    fn changes_are_explained_field_by_field() {
        let old = sample();
        let mut new = sample();
        new.params.insert("lr".into(), json!(0.0003));
        new.deps.insert("data/x.txt".into(), Hash::of_bytes(b"bye"));
        new.upstream
            .get_mut("tokenize")
            .unwrap()
            .insert("out/tok.bin".into(), Hash::of_bytes(b"other"));
        assert_eq!(
            new.changes_since(&old),
            vec![
                "params.lr: 0.001 → 0.0003",
                "dep data/x.txt changed",
                "upstream tokenize: output changed",
            ]
        );
    }

    #[test]
    fn kind_code_and_runtime_changes_are_explained() {
        let mut old = sample();
        old.action = "train".into();
        old.cmd = None;
        old.kind_fingerprint = Some(Hash::of_bytes(b"a"));
        old.runtime.insert("device".into(), "cpu".into());
        old.runtime.insert("threads".into(), "1".into());
        let mut new = old.clone();
        new.kind_fingerprint = Some(Hash::of_bytes(b"b"));
        new.runtime.insert("device".into(), "cuda:0".into());
        new.runtime.insert("libtorch".into(), "2.11.0".into());
        assert_ne!(old.key(), new.key());
        let why = new.changes_since(&old);
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].starts_with("kind train: code changed ("), "{why:?}");
        assert_eq!(why[1], "device: cpu → cuda:0");
        assert_eq!(why[2], "libtorch: 2.11.0 (not recorded before)");
    }
}
