//! The bytes of the experiments index (see [`super::exp_index`]): a header (magic, format,
//! payload length, blake3 of the payload), then little-endian tables of strings, whole JSON
//! values, nodes, entries and experiments. Decoding checks every length, index and range
//! and that strings are unique; anything off reads as no index.

use super::exp_index::{ExperimentIndex, INDEX_FORMAT, IndexedExperiment, MAGIC, Stamp};
use super::packed::{Packed, PackedNode, PackedValue};
use crate::hash::Hash;

const HEADER: usize = 8 + 4 + 8 + 32;

pub fn encode(index: &ExperimentIndex) -> Vec<u8> {
    let p = &index.packed;
    let mut w = Vec::with_capacity(64 + p.entries.len() * 13 + p.nodes.len() * 52);
    put_u32(&mut w, p.strings.len());
    for s in &p.strings {
        put_bytes(&mut w, s.as_bytes());
    }
    put_u32(&mut w, p.others.len());
    for v in &p.others {
        put_bytes(&mut w, v.to_string().as_bytes());
    }
    put_u32(&mut w, p.nodes.len());
    for n in &p.nodes {
        w.extend(n.name.to_le_bytes());
        // Only experiments' nodes are indexed, and they all have keys.
        w.extend(n.key.map_or([0; 32], |k| k.0));
        for x in [n.params.start, n.params.end, n.metrics.start, n.metrics.end] {
            w.extend(x.to_le_bytes());
        }
    }
    put_u32(&mut w, p.entries.len());
    for &(k, v) in &p.entries {
        w.extend(k.to_le_bytes());
        let (tag, bits) = match v {
            PackedValue::PosInt(u) => (0u8, u),
            PackedValue::NegInt(i) => (1, i as u64),
            PackedValue::Float(x) => (2, x.to_bits()),
            PackedValue::Str(s) => (3, s as u64),
            PackedValue::Other(o) => (4, o as u64),
        };
        w.push(tag);
        w.extend(bits.to_le_bytes());
    }
    put_u32(&mut w, index.experiments.len());
    for e in &index.experiments {
        for x in [e.file, e.name, e.pipeline, e.nodes.start, e.nodes.end] {
            w.extend(x.to_le_bytes());
        }
        w.extend(e.stamp.size.to_le_bytes());
        w.extend(e.stamp.mtime_ns.to_le_bytes());
        w.extend(e.stamp.ctime_ns.to_le_bytes());
        w.extend(e.stamp.ino.to_le_bytes());
        w.extend(e.created_at.to_bits().to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + w.len());
    out.extend(MAGIC);
    out.extend(INDEX_FORMAT.to_le_bytes());
    out.extend((w.len() as u64).to_le_bytes());
    out.extend(blake3::hash(&w).as_bytes());
    out.extend(w);
    out
}

fn put_u32(w: &mut Vec<u8>, n: usize) {
    w.extend(
        u32::try_from(n)
            .expect("index tables under 4G")
            .to_le_bytes(),
    );
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u32(w, b.len());
    w.extend(b);
}

pub fn decode(bytes: &[u8]) -> Option<ExperimentIndex> {
    let (head, payload) = bytes.split_at_checked(HEADER)?;
    let mut h = Reader { b: head };
    if h.take(8)? != MAGIC || h.u32()? != INDEX_FORMAT || h.u64()? != payload.len() as u64 {
        return None;
    }
    if h.take(32)? != blake3::hash(payload).as_bytes() {
        return None;
    }
    let mut r = Reader { b: payload };
    let strings = r.list(|r| {
        let len = r.u32()? as usize;
        Some(Box::<str>::from(std::str::from_utf8(r.take(len)?).ok()?))
    })?;
    let mut unique = std::collections::HashSet::with_capacity(strings.len());
    if !strings.iter().all(|s| unique.insert(&**s)) {
        return None;
    }
    let others = r.list(|r| {
        let len = r.u32()? as usize;
        serde_json::from_slice(r.take(len)?).ok()
    })?;
    let nodes = r.list(|r| {
        let name = r.u32()?;
        let key = Some(Hash(r.take(32)?.try_into().ok()?));
        let (a, b, c, d) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        Some(PackedNode {
            name,
            key,
            params: a..b,
            metrics: c..d,
        })
    })?;
    let entries = r.list(|r| {
        let k = r.u32()?;
        let tag = r.take(1)?[0];
        let bits = r.u64()?;
        let v = match tag {
            0 => PackedValue::PosInt(bits),
            1 => PackedValue::NegInt(bits as i64),
            2 => PackedValue::Float(f64::from_bits(bits)),
            3 => PackedValue::Str(u32::try_from(bits).ok()?),
            4 => PackedValue::Other(u32::try_from(bits).ok()?),
            _ => return None,
        };
        Some((k, v))
    })?;
    let experiments = r.list(|r| {
        let (file, name, pipeline, start, end) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        let stamp = Stamp {
            size: r.u64()?,
            mtime_ns: r.i128()?,
            ctime_ns: r.i128()?,
            ino: r.u64()?,
        };
        Some(IndexedExperiment {
            file,
            stamp,
            name,
            pipeline,
            created_at: f64::from_bits(r.u64()?),
            nodes: start..end,
        })
    })?;
    if !r.b.is_empty() {
        return None;
    }
    let packed = Packed::from_parts(strings, others, nodes, entries);
    let index = ExperimentIndex {
        packed,
        experiments,
    };
    in_bounds(&index).then_some(index)
}

/// Every symbol, value and range points inside its table.
fn in_bounds(index: &ExperimentIndex) -> bool {
    let p = &index.packed;
    let sym = |s: u32| (s as usize) < p.strings.len();
    let range = |r: &std::ops::Range<u32>, len: usize| r.start <= r.end && r.end as usize <= len;
    let value_ok = |v: &PackedValue| match *v {
        PackedValue::Str(s) => sym(s),
        PackedValue::Other(o) => (o as usize) < p.others.len(),
        _ => true,
    };
    p.entries.iter().all(|(k, v)| sym(*k) && value_ok(v))
        && p.nodes.iter().all(|n| {
            sym(n.name) && range(&n.params, p.entries.len()) && range(&n.metrics, p.entries.len())
        })
        && index.experiments.iter().all(|e| {
            sym(e.file) && sym(e.name) && sym(e.pipeline) && range(&e.nodes, p.nodes.len())
        })
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.b.split_at_checked(n)?;
        self.b = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }

    /// A u32 count, then that many items; the count is checked against the bytes left
    /// (every item takes at least one), so a damaged count cannot reserve gigabytes.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = self.u32()? as usize;
        if n > self.b.len() {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::exp_index::Stamp;
    use serde_json::json;

    /// An index of two nodes with every kind of value, as bytes.
    fn sample() -> Vec<u8> {
        let mut index = ExperimentIndex::default();
        let p = &mut index.packed;
        let values = [
            json!(1),
            json!(-2),
            json!(0.5),
            json!("NaN"),
            json!([1, {"a": null}]),
        ];
        let map: std::collections::BTreeMap<String, serde_json::Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("m{i}"), v.clone()))
            .collect();
        p.push_node("t[i=0]", Some(Hash([7; 32])), &map, &map);
        p.push_node("t[i=1]", Some(Hash([8; 32])), &map, &Default::default());
        let (file, name, pipeline) = (p.intern("e.json"), p.intern("e"), p.intern("p.yaml"));
        index.experiments.push(IndexedExperiment {
            file,
            stamp: Stamp {
                size: 1,
                mtime_ns: 2,
                ctime_ns: 3,
                ino: 4,
            },
            name,
            pipeline,
            created_at: 1.5,
            nodes: 0..2,
        });
        encode(&index)
    }

    #[test]
    fn damaged_index_bytes_with_a_recomputed_checksum_never_panic() {
        let good = sample();
        let index = decode(&good).expect("the sample decodes");
        assert_eq!(index.packed.nodes.len(), 2);
        for at in HEADER..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                let hash = blake3::hash(&bad[HEADER..]);
                bad[20..HEADER].copy_from_slice(hash.as_bytes());
                // Whatever decodes is in bounds: reading every value of it must not panic.
                if let Some(index) = decode(&bad) {
                    let p = &index.packed;
                    for n in &p.nodes {
                        for (k, v) in p.params(n).iter().chain(p.metrics(n)) {
                            let _ = (p.str(*k), p.unpack(*v), p.as_f64(*v));
                        }
                    }
                }
            }
        }
    }
}
