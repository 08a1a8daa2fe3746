//! ceg.json as the `fit_ceg` kind writes it: the analysis's [`CegTable`] with, beside it, the
//! node every curve came from (`inputs`), so a report can link each number to its nodes.

use serde::{Deserialize, Serialize};

use super::ReportError;
use crate::analysis::{CegTable, Curve, Estimator};

/// One curve the analysis used, and the node that produced it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CurveSource {
    /// The upstream node name, e.g. `train_s1[scale=s1,variant=rope,seed=2]`.
    pub node: String,
    pub variant: String,
    pub scale: String,
    pub seed: u64,
}

/// ceg.json: every field of [`CegTable`] (flattened, so readers of the plain table still work)
/// plus `inputs`, sorted by (variant, scale, seed).
#[derive(Debug, Clone, PartialEq)]
pub struct CegDocument {
    pub table: CegTable,
    pub inputs: Vec<CurveSource>,
}

#[derive(Serialize)]
struct DocumentRef<'a> {
    #[serde(flatten)]
    table: &'a CegTable,
    inputs: &'a [CurveSource],
}

#[derive(Deserialize)]
struct InputsOnly {
    #[serde(default)]
    inputs: Vec<CurveSource>,
}

impl CegDocument {
    /// Pretty JSON with a trailing newline; identical bytes for identical documents.
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, ReportError> {
        let mut bytes = serde_json::to_vec_pretty(&DocumentRef {
            table: &self.table,
            inputs: &self.inputs,
        })
        .map_err(|e| ReportError::CegJson(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Reads ceg.json (a plain table without `inputs` is accepted: no node links then).
    pub fn from_json(text: &str) -> Result<CegDocument, ReportError> {
        let table = CegTable::from_json(text).map_err(|e| ReportError::CegJson(e.to_string()))?;
        let inputs = serde_json::from_str::<InputsOnly>(text)
            .map_err(|e| ReportError::CegJson(e.to_string()))?
            .inputs;
        Ok(CegDocument { table, inputs })
    }

    /// The nodes behind one variant × scale, seeds in order.
    pub fn nodes_for(&self, variant: &str, scale: &str) -> Vec<&CurveSource> {
        self.inputs
            .iter()
            .filter(|s| s.variant == variant && s.scale == scale)
            .collect()
    }
}

/// Everything a report is made from.
pub struct ReportData<'a> {
    pub title: &'a str,
    /// The node that wrote ceg.json.
    pub fit_node: &'a str,
    pub document: &'a CegDocument,
    /// Curves for the loss chart (may be empty), with their sources.
    pub curves: &'a [(CurveSource, Curve)],
    /// The estimator the verdict is read from.
    pub headline: Estimator,
    /// Show the paper's published numbers.
    pub paper_reference: bool,
    /// Problems met while gathering the inputs, shown under "Notes".
    pub notes: &'a [String],
}
