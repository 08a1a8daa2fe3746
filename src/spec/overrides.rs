//! `cegraph run -S stage.param=value` and `-S vars.NAME=value`: values set on the parsed
//! pipeline file before resolution, so an override changes node keys exactly as the same edit
//! of the YAML would, without touching the file.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::PipelineFile;
use crate::error::{Error, Result};

/// One `-S TARGET=VALUE`: `TARGET` is `stage.param` or `vars.NAME`; `text` is the value as
/// written (a YAML scalar or flow list), kept for `exp apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub target: String,
    pub text: String,
}

impl Override {
    /// Parse `stage.param=value`.
    pub fn parse(arg: &str) -> Result<Override> {
        let bad = || {
            Error::usage(
                format!("-S `{arg}` is not STAGE.PARAM=VALUE"),
                "write e.g. `-S train.lr=0.003` or `-S vars.seed=2`",
            )
        };
        let (target, text) = arg.split_once('=').ok_or_else(bad)?;
        let target = target.trim();
        // `params.yaml:train.lr` names a params file's key; a bare `lr` may name one too
        // (checked against the pipeline in `apply`).
        let name = target.rsplit_once(':').map_or(target, |(_, k)| k);
        let well_formed = match name.split_once('.') {
            Some((a, b)) => !a.is_empty() && !b.is_empty(),
            None => !name.is_empty() && !name.contains(char::is_whitespace),
        };
        if !well_formed {
            return Err(bad());
        }
        Ok(Override {
            target: target.to_string(),
            text: text.to_string(),
        })
    }

    /// The value, read as YAML (`0.003` is a number, `[1, 2]` a list, `rope` a string).
    pub fn value(&self) -> Result<Value> {
        if self.text.trim().is_empty() {
            return Ok(Value::String(String::new()));
        }
        let options = serde_saphyr::options! { strict_booleans: true, with_snippet: false };
        serde_saphyr::from_str_with_options::<Value>(&self.text, options).map_err(|e| {
            let why = e.to_string();
            let why = why
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            Error::usage(
                format!(
                    "-S {}: `{}` is not a YAML value: {why}",
                    self.target, self.text
                ),
                "quote it for the shell, e.g. -S 'train.layers=[2, 4]'",
            )
        })
    }

    /// `(stage or "vars", param)`.
    pub fn parts(&self) -> (&str, &str) {
        self.target.split_once('.').unwrap_or((&self.target, ""))
    }
}

/// Set each override on the parsed file; an unknown stage, param or var is a usage error
/// naming the closest known name. Returns the overrides of params-file keys
/// (`-S params.yaml:train.lr=…`, or `-S train.lr=…` naming a key some stage reads), which
/// resolution applies as it reads the files.
pub fn apply(file: &mut PipelineFile, overrides: &[Override]) -> Result<Vec<Override>> {
    let file_keys: Vec<String> = file
        .stages
        .values()
        .flat_map(|s| s.value().params_files.iter())
        .flat_map(|f| {
            let f = f.value();
            f.keys.iter().flat_map(move |k| {
                [
                    k.value().clone(),
                    format!("{}:{}", f.file.value(), k.value()),
                ]
            })
        })
        .collect();
    let mut deferred = Vec::new();
    for o in overrides {
        let value = o.value()?;
        let stage_param = file
            .stages
            .get(o.parts().0)
            .is_some_and(|s| s.value().params.contains_key(o.parts().1));
        if o.target.contains(':') || (!stage_param && file_keys.contains(&o.target)) {
            deferred.push(o.clone());
            continue;
        }
        let (head, name) = o.parts();
        if name.is_empty() {
            return Err(Error::usage(
                format!(
                    "-S `{}`: the pipeline has no params-file key `{head}`",
                    o.target
                ),
                "write STAGE.PARAM=VALUE, e.g. `-S train.lr=0.003`, or a key a stage lists in `params_files`",
            ));
        }
        let slot = if head == "vars" {
            let known: Vec<&str> = file.vars.keys().map(String::as_str).collect();
            let hint = suggest(name, &known, "vars.");
            file.vars
                .get_mut(name)
                .ok_or_else(|| unknown(o, format!("the pipeline has no var `{name}`"), hint))?
        } else {
            let known: Vec<&str> = file.stages.keys().map(String::as_str).collect();
            let hint = suggest(head, &known, "");
            let Some(stage) = file.stages.get_mut(head) else {
                return Err(unknown(
                    o,
                    format!("the pipeline has no stage `{head}`"),
                    hint,
                ));
            };
            let stage = &mut stage.0.value;
            let known: Vec<&str> = stage.params.keys().map(String::as_str).collect();
            let mut hint = suggest(name, &known, &format!("{head}."));
            let keys: Vec<&str> = file_keys.iter().map(String::as_str).collect();
            if let Some((_, k)) = closest(&o.target, &keys) {
                hint = format!("did you mean the params-file key `{k}`?");
            }
            stage
                .params
                .get_mut(name)
                .ok_or_else(|| unknown(o, format!("stage `{head}` has no param `{name}`"), hint))?
        };
        slot.0.value = value;
    }
    Ok(deferred)
}

fn closest<'k>(name: &str, known: &[&'k str]) -> Option<(f64, &'k str)> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn unknown(o: &Override, message: String, hint: String) -> Error {
    Error::usage(
        format!("-S {}: {message}", o.target),
        format!("{hint}; -S only changes params and vars the pipeline file declares"),
    )
}

/// "did you mean `train.lr`?" for the closest known name, else the list of known names.
fn suggest(name: &str, known: &[&str], prefix: &str) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!("did you mean `{prefix}{k}`?"),
        None if known.is_empty() => "there are none".to_string(),
        None => format!(
            "known: {}",
            known
                .iter()
                .map(|k| format!("{prefix}{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_yaml() {
        let v = |t: &str| {
            Override::parse(&format!("a.b={t}"))
                .unwrap()
                .value()
                .unwrap()
        };
        assert_eq!(v("0.003"), serde_json::json!(0.003));
        assert_eq!(v("[1, 2]"), serde_json::json!([1, 2]));
        assert_eq!(v("rope"), serde_json::json!("rope"));
        assert_eq!(v("no"), serde_json::json!("no"));
        assert_eq!(v("true"), serde_json::json!(true));
    }

    #[test]
    fn override_without_stage_or_value_is_usage_error() {
        for bad in ["train.lr", ".lr=1", "train.=1", "=1", "a b=1"] {
            assert!(Override::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn suggestion_names_the_closest_param() {
        assert_eq!(
            suggest("lrr", &["lr", "batch"], "train."),
            "did you mean `train.lr`?"
        );
        assert!(suggest("zzz", &["lr", "batch"], "train.").starts_with("known: train.lr"));
    }
}
