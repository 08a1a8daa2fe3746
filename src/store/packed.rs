//! Nodes' params and metrics packed for tables over many runs (`exp show` over thousands of
//! experiments): names and text values interned once, values as numbers or symbols, every
//! node's entries in one shared vector. Building 100k small maps instead cost most of the
//! command's time (allocation and page faults, measured).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use serde_json::{Number, Value};

use crate::hash::Hash;

/// An interned string: an index into [`Packed::strings`].
pub type Sym = u32;

/// A param or metric value. Numbers keep their JSON kind (an integer stays an integer), so
/// a value packed and unpacked is the value it was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PackedValue {
    PosInt(u64),
    NegInt(i64),
    Float(f64),
    Str(Sym),
    /// Null, a bool, a list or a map: kept whole in [`Packed::others`] (rare).
    Other(u32),
}

/// One node of one run: its name, key (where known) and the ranges of its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedNode {
    pub name: Sym,
    pub key: Option<Hash>,
    pub params: Range<u32>,
    pub metrics: Range<u32>,
}

/// Interned strings, values and nodes. Equal strings have equal symbols (interning is
/// checked when an index file is read), so symbols compare as their text does.
#[derive(Debug, Default, Clone)]
pub struct Packed {
    pub strings: Vec<Box<str>>,
    pub others: Vec<Value>,
    pub nodes: Vec<PackedNode>,
    pub entries: Vec<(Sym, PackedValue)>,
    lookup: HashMap<Box<str>, Sym>,
}

impl Packed {
    pub fn str(&self, s: Sym) -> &str {
        &self.strings[s as usize]
    }

    /// The symbol of `s`, adding it when new.
    pub fn intern(&mut self, s: &str) -> Sym {
        if self.lookup.len() != self.strings.len() {
            self.lookup = (0..)
                .zip(&self.strings)
                .map(|(i, s)| (s.clone(), i))
                .collect();
        }
        if let Some(&sym) = self.lookup.get(s) {
            return sym;
        }
        let sym = Sym::try_from(self.strings.len()).expect("fewer than 4G strings");
        self.strings.push(s.into());
        self.lookup.insert(s.into(), sym);
        sym
    }

    pub fn pack(&mut self, v: &Value) -> PackedValue {
        match v {
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    PackedValue::PosInt(u)
                } else if let Some(i) = n.as_i64() {
                    PackedValue::NegInt(i)
                } else {
                    PackedValue::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => PackedValue::Str(self.intern(s)),
            other => {
                self.others.push(other.clone());
                PackedValue::Other((self.others.len() - 1) as u32)
            }
        }
    }

    pub fn unpack(&self, v: PackedValue) -> Value {
        match v {
            PackedValue::PosInt(u) => Value::Number(u.into()),
            PackedValue::NegInt(i) => Value::Number(i.into()),
            PackedValue::Float(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
            PackedValue::Str(s) => Value::String(self.str(s).to_string()),
            PackedValue::Other(i) => self.others[i as usize].clone(),
        }
    }

    /// The value as a number: numbers, and NaN/inf spelled as strings (as metrics files
    /// write them); `None` for anything else.
    pub fn as_f64(&self, v: PackedValue) -> Option<f64> {
        match v {
            PackedValue::PosInt(u) => Some(u as f64),
            PackedValue::NegInt(i) => Some(i as f64),
            PackedValue::Float(x) => Some(x),
            PackedValue::Str(s) => match crate::exec::metrics::non_finite(self.str(s))? {
                "NaN" => Some(f64::NAN),
                "inf" => Some(f64::INFINITY),
                _ => Some(f64::NEG_INFINITY),
            },
            PackedValue::Other(_) => None,
        }
    }

    /// Whether two values are equal as JSON values are.
    pub fn same(&self, a: PackedValue, b: PackedValue) -> bool {
        match (a, b) {
            (PackedValue::Other(x), PackedValue::Other(y)) => {
                self.others[x as usize] == self.others[y as usize]
            }
            _ => a == b,
        }
    }

    /// Append one node; returns its index.
    pub fn push_node(
        &mut self,
        name: &str,
        key: Option<Hash>,
        params: &BTreeMap<String, Value>,
        metrics: &BTreeMap<String, Value>,
    ) -> u32 {
        let name = self.intern(name);
        let params = self.push_entries(params);
        let metrics = self.push_entries(metrics);
        self.nodes.push(PackedNode {
            name,
            key,
            params,
            metrics,
        });
        (self.nodes.len() - 1) as u32
    }

    fn push_entries(&mut self, map: &BTreeMap<String, Value>) -> Range<u32> {
        let start = self.entries.len() as u32;
        for (k, v) in map {
            let entry = (self.intern(k), self.pack(v));
            self.entries.push(entry);
        }
        start..self.entries.len() as u32
    }

    pub fn params(&self, n: &PackedNode) -> &[(Sym, PackedValue)] {
        &self.entries[n.params.start as usize..n.params.end as usize]
    }

    pub fn metrics(&self, n: &PackedNode) -> &[(Sym, PackedValue)] {
        &self.entries[n.metrics.start as usize..n.metrics.end as usize]
    }

    /// Copy node `i` of `from` (another table) into this one; returns its new index.
    pub fn copy_node(&mut self, from: &Packed, i: u32) -> u32 {
        let n = &from.nodes[i as usize];
        let name = self.intern(from.str(n.name));
        let copy = |range: &Range<u32>, this: &mut Packed| {
            let start = this.entries.len() as u32;
            for &(k, v) in &from.entries[range.start as usize..range.end as usize] {
                let k = this.intern(from.str(k));
                let v = match v {
                    PackedValue::Str(s) => PackedValue::Str(this.intern(from.str(s))),
                    PackedValue::Other(o) => this.pack(&from.others[o as usize]),
                    number => number,
                };
                this.entries.push((k, v));
            }
            start..this.entries.len() as u32
        };
        let params = copy(&n.params, self);
        let metrics = copy(&n.metrics, self);
        self.nodes.push(PackedNode {
            name,
            key: n.key,
            params,
            metrics,
        });
        (self.nodes.len() - 1) as u32
    }

    /// Trusted parts read back from an index file whose interning was checked.
    pub(super) fn from_parts(
        strings: Vec<Box<str>>,
        others: Vec<Value>,
        nodes: Vec<PackedNode>,
        entries: Vec<(Sym, PackedValue)>,
    ) -> Packed {
        Packed {
            strings,
            others,
            nodes,
            entries,
            lookup: HashMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packed_values_unpack_to_what_they_were() {
        let mut p = Packed::default();
        for v in [
            json!(3),
            json!(-3),
            json!(0.25),
            json!("NaN"),
            json!([1, 2]),
            json!(null),
            json!({"a": true}),
        ] {
            let packed = p.pack(&v);
            assert_eq!(p.unpack(packed), v);
        }
        assert_eq!(p.intern("x"), p.intern("x"));
        let (a, b) = (p.pack(&json!([1])), p.pack(&json!([1])));
        assert!(p.same(a, b));
        let (int, float) = (p.pack(&json!(1)), p.pack(&json!(1.0)));
        assert!(!p.same(int, float));
        let minus_inf = p.pack(&json!("-inf"));
        assert!(p.as_f64(minus_inf).unwrap().is_infinite());
    }
}
