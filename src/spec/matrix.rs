//! Matrix stages: expanding `matrix:` (minus `exclude:`) into one combination per node, and
//! naming those nodes and their default output directories.

use indexmap::IndexMap;
use serde_json::Value;

use super::interp::matrix_label;
use super::model::{MatrixAxis, StageSpec};
use super::{Resolver, Scope, valid_name};
use crate::error::Result;

impl Resolver<'_> {
    pub(super) fn expand_matrix(
        &self,
        stage_name: &str,
        stage: &StageSpec,
        vars: &IndexMap<String, Value>,
        at: (u64, u64),
    ) -> Result<Vec<Vec<(String, Value)>>> {
        let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for (axis, values) in &stage.matrix {
            if !valid_name(axis) {
                return self.err(
                    values.line_col(),
                    format!("matrix key `{axis}` may only use letters, digits, `_` and `-`"),
                    None,
                );
            }
            let list = match values.value() {
                MatrixAxis::Values(v) => v.clone(),
                MatrixAxis::Var(s) => {
                    let scope = Scope {
                        file_params: None,
                        vars,
                        matrix: &[],
                        params: None,
                        node: None,
                    };
                    match self.interpolate_value(
                        &Value::String(s.clone()),
                        &scope,
                        values.line_col(),
                    )? {
                        Value::Array(v) => v,
                        other => {
                            return self.err(
                                values.line_col(),
                                format!("matrix `{axis}` must be a list, but `{s}` is {other}"),
                                Some("write `[a, b]` or name a var that holds a list"),
                            );
                        }
                    }
                }
            };
            if list.is_empty() {
                return self.err(
                    values.line_col(),
                    format!("matrix `{axis}` of stage `{stage_name}` is empty"),
                    Some("give at least one value"),
                );
            }
            let mut labels = std::collections::HashSet::new();
            for v in &list {
                if v.is_object() || v.is_array() || v.is_null() {
                    return self.err(
                        values.line_col(),
                        format!(
                            "matrix `{axis}` values must be strings, numbers or booleans, not {v}"
                        ),
                        None,
                    );
                }
                if !labels.insert(matrix_label(v)) {
                    return self.err(
                        values.line_col(),
                        format!("matrix `{axis}` lists `{}` twice", matrix_label(v)),
                        None,
                    );
                }
            }
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    list.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((axis.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        for ex in &stage.exclude {
            for key in ex.value().keys() {
                if !stage.matrix.contains_key(key) {
                    return self.err(
                        ex.line_col(),
                        format!(
                            "exclude names `{key}`, which is not a matrix key of `{stage_name}`"
                        ),
                        None,
                    );
                }
            }
            combos.retain(|c| {
                !ex.value().iter().all(|(k, v)| {
                    c.iter()
                        .any(|(ck, cv)| ck == k && matrix_label(cv) == matrix_label(v))
                })
            });
        }
        if combos.is_empty() {
            return self.err(
                at,
                format!("`exclude` removes every node of `{stage_name}`"),
                None,
            );
        }
        Ok(combos)
    }
}

/// `train` or `train[scale=s2,variant=rope,seed=1]`.
pub fn node_name(stage: &str, matrix: &[(String, Value)]) -> String {
    if matrix.is_empty() {
        return stage.to_string();
    }
    let parts: Vec<String> = matrix
        .iter()
        .map(|(k, v)| format!("{k}={}", matrix_label(v)))
        .collect();
    format!("{stage}[{}]", parts.join(","))
}

pub(super) fn default_out_dir(stage: &str, matrix: &[(String, Value)]) -> String {
    if matrix.is_empty() {
        return format!("out/{stage}");
    }
    let parts: Vec<String> = matrix
        .iter()
        .map(|(k, v)| format!("{k}={}", matrix_label(v).replace('/', "_")))
        .collect();
    format!("out/{stage}/{}", parts.join(","))
}
