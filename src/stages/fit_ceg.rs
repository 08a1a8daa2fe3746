//! `fit_ceg`: compute-equivalent gains from every upstream `train` node. Needs no libtorch.
//!
//! ```yaml
//! fit:
//!   kind: fit_ceg
//!   deps: [train_s1, train_s2, train_s3]
//!   params: { baseline: baseline, combinations: {combined: [flash, rope, layernorm]} }
//! ```
//!
//! # Inputs
//! Every upstream node with an output named `curve.json` (the `train` kind's schema: `variant`,
//! `seed`, `flops_per_token`, `points[{step, tokens, flops, val_loss, …}]`). Variant, scale and
//! seed come from the upstream node's matrix values (`variant_key`, `scale_key`, `seed_key`),
//! falling back to curve.json's `variant`/`seed`; a node without a scale value is put in scale
//! `default`. Upstream nodes without curve.json are skipped (named in `notes`).
//!
//! # Params (all optional)
//! `baseline` ("baseline"), `scale_key` ("scale"), `variant_key` ("variant"), `seed_key`
//! ("seed"), `estimators` (list of `paper`, `crossing`, `scaling_law`; default all),
//! `intervals` (true: 95% Student-t intervals over paired seeds, 3+ seeds; false: point
//! estimates only), `tolerance` (0.01: |ln CEG| below it is "no measurable difference"),
//! `max_fit_rmse` (0.05 nats: a poorer scaling-law fit is shown but not used),
//! `max_budget_ratio` (2.0: no compute-dependence verdict when tokens/parameter differ more
//! between scales), `bootstrap` and `bootstrap_seed` (accepted from older pipelines and noted
//! as unused; `bootstrap: 0` still turns intervals off), `combinations` ({combined: [components…]}; a combination whose variants are not all present
//! is left out with a note), `max_extrapolation` (4.0: the scaling-law estimate is refused
//! when the baseline would need compute more than this factor outside its fitted range),
//! `skip_initial_fraction` (0.1: leading eval points of each baseline run left out of the
//! law's fit), `equivalence_margin` (0.05) and `min_scales` (3) for the compute-dependence test.
//!
//! # Outputs (in this order)
//! * `ceg.json` — [`crate::analysis::CegTable`] (every field, flattened) plus `inputs`:
//!   `[{node, variant, scale, seed}]`, sorted; see [`crate::report::CegDocument`].
//! * `ceg.csv` — one row per variant × scale × estimator ([`crate::analysis::CegTable::to_csv`]).
//!
//! Both are deterministic: nothing depends on time, paths or a random draw.
//! Curves at a scale where the baseline has none are left out with a note; no baseline curve
//! at all fails the node (nothing can be measured against it).
//!
//! # Metrics
//! `curves`, `variants`, `scales`, `min_seeds`, `scaling_law_exponent`, and for every
//! non-baseline variant at the largest scale `ceg.<estimator>.<variant>` (point estimates).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::util::{
    ParamError, check_known, fail, param_bool, param_f64, param_string, param_u64, param_usize,
    write,
};
use crate::analysis::{AnalysisOptions, Curve, Estimator, EvalPoint, analyse};
use crate::kind::{Input, OutputDecl, Params, StageContext, StageFailure, StageKind, StageOutcome};
use crate::report::{CegDocument, CurveSource};

pub struct FitCeg;

pub const OUTPUTS: [&str; 2] = ["ceg.json", "ceg.csv"];

const KNOWN: &[&str] = &[
    "baseline",
    "scale_key",
    "variant_key",
    "seed_key",
    "estimators",
    "bootstrap",
    "bootstrap_seed",
    "intervals",
    "tolerance",
    "max_fit_rmse",
    "max_budget_ratio",
    "combinations",
    "max_extrapolation",
    "skip_initial_fraction",
    "equivalence_margin",
    "min_scales",
];

/// The scale given to curves whose node has no scale value.
pub const DEFAULT_SCALE: &str = "default";

/// The part of the train kind's curve.json the analysis needs.
#[derive(Deserialize)]
struct TrainCurveFile {
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    flops_per_token: f64,
    #[serde(default)]
    params: Option<TrainParamCounts>,
    points: Vec<EvalPoint>,
}

/// The train kind's parameter counts (only what the tokens-per-parameter budget needs).
#[derive(Deserialize)]
struct TrainParamCounts {
    #[serde(default)]
    non_embedding: Option<f64>,
    #[serde(default)]
    active_non_embedding: Option<f64>,
}

/// The keys naming variant, scale and seed in upstream matrices.
#[derive(Debug, Clone)]
pub struct Keys {
    pub variant: String,
    pub scale: String,
    pub seed: String,
}

impl Keys {
    pub fn from_params(params: &Params) -> Result<Keys, ParamError> {
        Ok(Keys {
            variant: param_string(params, "variant_key", "variant")?,
            scale: param_string(params, "scale_key", "scale")?,
            seed: param_string(params, "seed_key", "seed")?,
        })
    }
}

fn matrix_value<'a>(input: &'a Input, key: &str) -> Option<&'a Value> {
    input.matrix.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads one upstream train node's curve.json into an analysis curve, naming its source.
/// `Ok(None)`: the node has no curve.json output (not a train node).
pub fn read_curve(
    input: &Input,
    keys: &Keys,
) -> Result<Option<(CurveSource, Curve)>, StageFailure> {
    let Some(path) = input
        .outs
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "curve.json"))
    else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        StageFailure::new(format!(
            "cannot read curve.json of node `{}` ({}): {e}",
            input.node,
            path.display()
        ))
    })?;
    let file: TrainCurveFile = serde_json::from_str(&text).map_err(|e| {
        StageFailure::new(format!(
            "curve.json of node `{}` is not a train curve ({e}); expected fields \
             flops_per_token and points[{{step, tokens, flops, val_loss}}]",
            input.node
        ))
    })?;
    let variant = match matrix_value(input, &keys.variant) {
        Some(v) => label(v),
        None => file.variant.clone().ok_or_else(|| {
            StageFailure::new(format!(
                "node `{}` has no matrix value `{}` and its curve.json no `variant`: cannot tell \
                 which variant it is (set `variant_key`)",
                input.node, keys.variant
            ))
        })?,
    };
    let scale = matrix_value(input, &keys.scale).map_or_else(|| DEFAULT_SCALE.to_string(), label);
    let seed = match matrix_value(input, &keys.seed) {
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().expect("checked"),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => {
            s.trim().parse().expect("checked")
        }
        Some(other) => {
            return Err(StageFailure::new(format!(
                "node `{}`: matrix value `{}` = {other} is not a non-negative integer seed",
                input.node, keys.seed
            )));
        }
        None => file.seed.unwrap_or(0),
    };
    let curve = Curve {
        variant: variant.clone(),
        scale: scale.clone(),
        seed,
        flops_per_token: file.flops_per_token,
        // Active parameters: a mixture-of-experts model trains only its routed experts.
        non_embedding_params: file
            .params
            .as_ref()
            .and_then(|p| p.active_non_embedding.or(p.non_embedding)),
        points: file.points,
    };
    curve
        .validate()
        .map_err(|e| StageFailure::new(format!("node `{}`: {e}", input.node)))?;
    Ok(Some((
        CurveSource {
            node: input.node.clone(),
            variant,
            scale,
            seed,
        },
        curve,
    )))
}

fn parse_estimators(params: &Params) -> Result<Vec<Estimator>, ParamError> {
    let Some(v) = params.get("estimators") else {
        return Ok(Estimator::ALL.to_vec());
    };
    let bad = || {
        (
            "estimators".to_string(),
            format!(
                "`estimators` must be a non-empty list of paper, crossing, scaling_law; got {v}"
            ),
        )
    };
    let items = v.as_array().ok_or_else(bad)?;
    let mut out = BTreeSet::new();
    for item in items {
        let name = item.as_str().ok_or_else(bad)?;
        let e = Estimator::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| {
                (
                    "estimators".to_string(),
                    format!("unknown estimator `{name}`; valid: paper, crossing, scaling_law"),
                )
            })?;
        out.insert(e);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out.into_iter().collect())
}

fn parse_combinations(params: &Params) -> Result<BTreeMap<String, Vec<String>>, ParamError> {
    let Some(v) = params.get("combinations") else {
        return Ok(BTreeMap::new());
    };
    let bad = || {
        (
            "combinations".to_string(),
            format!(
                "`combinations` must map a combined variant to its component variants, e.g. \
                 {{combined: [flash, rope, layernorm]}}; got {v}"
            ),
        )
    };
    let map = v.as_object().ok_or_else(bad)?;
    let mut out = BTreeMap::new();
    for (name, parts) in map {
        let parts = parts.as_array().ok_or_else(bad)?;
        let parts: Vec<String> = parts
            .iter()
            .map(|p| p.as_str().map(String::from).ok_or_else(bad))
            .collect::<Result<_, _>>()?;
        if parts.is_empty() {
            return Err(bad());
        }
        out.insert(name.clone(), parts);
    }
    Ok(out)
}

/// A finite positive number param.
fn positive(params: &Params, name: &str, default: f64) -> Result<f64, ParamError> {
    let value = param_f64(params, name, default)?;
    if !(value.is_finite() && value > 0.0) {
        return Err((
            name.to_string(),
            format!("`{name}` must be a positive number, got {value}"),
        ));
    }
    Ok(value)
}

/// Analysis options from params (combinations not yet checked against the variants present).
pub fn options(params: &Params) -> Result<(AnalysisOptions, Vec<Estimator>), ParamError> {
    check_known(params, KNOWN, "fit_ceg")?;
    Keys::from_params(params)?;
    let mut opts = AnalysisOptions {
        baseline: param_string(params, "baseline", "baseline")?,
        ..AnalysisOptions::default()
    };
    if opts.baseline.is_empty() {
        return Err(("baseline".into(), "`baseline` must name a variant".into()));
    }
    // Older pipelines' bootstrap settings: still validated; `bootstrap: 0` meant no intervals.
    let resamples = param_usize(params, "bootstrap", 1000)?;
    param_u64(params, "bootstrap_seed", 0)?;
    opts.intervals = param_bool(params, "intervals", resamples > 0)?;
    opts.tolerance = positive(params, "tolerance", opts.tolerance)?;
    opts.scaling_law.max_rmse = positive(params, "max_fit_rmse", opts.scaling_law.max_rmse)?;
    opts.dependence.max_budget_ratio =
        positive(params, "max_budget_ratio", opts.dependence.max_budget_ratio)?;
    if opts.dependence.max_budget_ratio < 1.0 {
        return Err((
            "max_budget_ratio".into(),
            "`max_budget_ratio` is a factor between scales and must be at least 1".into(),
        ));
    }
    let factor = param_f64(
        params,
        "max_extrapolation",
        opts.scaling_law.max_extrapolation_factor,
    )?;
    if !(factor.is_finite() && factor >= 1.0) {
        return Err((
            "max_extrapolation".into(),
            format!("`max_extrapolation` must be a factor ≥ 1, got {factor}"),
        ));
    }
    opts.scaling_law.max_extrapolation_factor = factor;
    let skip = param_f64(
        params,
        "skip_initial_fraction",
        opts.scaling_law.skip_initial_fraction,
    )?;
    if !(0.0..1.0).contains(&skip) {
        return Err((
            "skip_initial_fraction".into(),
            format!("`skip_initial_fraction` must be in [0, 1), got {skip}"),
        ));
    }
    opts.scaling_law.skip_initial_fraction = skip;
    let margin = param_f64(
        params,
        "equivalence_margin",
        opts.dependence.equivalence_margin,
    )?;
    if !(margin.is_finite() && margin > 0.0) {
        return Err((
            "equivalence_margin".into(),
            format!("`equivalence_margin` must be positive, got {margin}"),
        ));
    }
    opts.dependence.equivalence_margin = margin;
    let min_scales = param_usize(params, "min_scales", opts.dependence.min_scales)?;
    if min_scales < 2 {
        return Err((
            "min_scales".into(),
            "`min_scales` must be at least 2 (a slope needs two points)".into(),
        ));
    }
    opts.dependence.min_scales = min_scales;
    opts.combinations = parse_combinations(params)?;
    Ok((opts, parse_estimators(params)?))
}

/// Reads every curve, analyses them and returns ceg.json's document (no files written).
pub fn fit(inputs: &[Input], params: &Params) -> Result<CegDocument, StageFailure> {
    let (mut opts, estimators) = options(params).map_err(fail)?;
    let keys = Keys::from_params(params).map_err(fail)?;
    let mut notes = Vec::new();
    if params.contains_key("bootstrap") || params.contains_key("bootstrap_seed") {
        notes.push(
            "`bootstrap`/`bootstrap_seed` are no longer used: intervals are Student-t over \
             paired seeds (`intervals: false` turns them off)"
                .to_string(),
        );
    }
    let mut read = Vec::new();
    for input in inputs {
        match read_curve(input, &keys)? {
            Some(pair) => read.push(pair),
            None => notes.push(format!(
                "upstream node `{}` has no curve.json output: not used",
                input.node
            )),
        }
    }
    if read.is_empty() {
        return Err(StageFailure::new(format!(
            "fit_ceg found no curve.json among its {} upstream node(s); add the train stages to \
             its deps",
            inputs.len()
        )));
    }
    let mut seen = BTreeMap::new();
    for (source, _) in &read {
        if let Some(other) = seen.insert(
            (source.variant.clone(), source.scale.clone(), source.seed),
            source.node.clone(),
        ) {
            return Err(StageFailure::new(format!(
                "nodes `{other}` and `{}` are both variant={} scale={} seed={}: give them \
                 distinct matrix values (or set variant_key/scale_key/seed_key)",
                source.node, source.variant, source.scale, source.seed
            )));
        }
    }
    let baseline_scales: BTreeSet<String> = read
        .iter()
        .filter(|(s, _)| s.variant == opts.baseline)
        .map(|(s, _)| s.scale.clone())
        .collect();
    if baseline_scales.is_empty() {
        let present: BTreeSet<&str> = read.iter().map(|(s, _)| s.variant.as_str()).collect();
        return Err(StageFailure::new(format!(
            "no curves of the baseline variant `{}` (variants present: {}); set `baseline` to \
             one of them or add the baseline's train nodes",
            opts.baseline,
            present.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    read.retain(|(source, _)| {
        let keep = baseline_scales.contains(&source.scale);
        if !keep {
            notes.push(format!(
                "`{}` (variant {} at scale {}) left out: the baseline has no run at scale {}",
                source.node, source.variant, source.scale, source.scale
            ));
        }
        keep
    });
    let variants: BTreeSet<String> = read.iter().map(|(s, _)| s.variant.clone()).collect();
    opts.combinations.retain(|combined, parts| {
        let missing: Vec<&str> = std::iter::once(combined)
            .chain(parts.iter())
            .filter(|v| !variants.contains(*v))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "combination `{combined}` = {} left out: no curves for {}",
                parts.join(" × "),
                missing.join(", ")
            ));
        }
        missing.is_empty()
    });
    read.sort_by(|a, b| a.0.cmp(&b.0));
    let curves: Vec<Curve> = read.iter().map(|(_, c)| c.clone()).collect();
    let mut table =
        analyse(&curves, &opts).map_err(|e| StageFailure::new(format!("CEG analysis: {e}")))?;
    if estimators.len() < Estimator::ALL.len() {
        table.rows.retain(|r| estimators.contains(&r.estimator));
        table
            .compute_dependence
            .retain(|d| estimators.contains(&d.estimator));
        table.combined.retain(|c| estimators.contains(&c.estimator));
        notes.push(format!(
            "estimators reported: {}",
            estimators
                .iter()
                .map(|e| e.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    table.notes.extend(notes);
    let mut inputs: Vec<CurveSource> = read.into_iter().map(|(s, _)| s).collect();
    inputs.sort();
    Ok(CegDocument { table, inputs })
}

fn metrics(doc: &CegDocument) -> BTreeMap<String, Value> {
    let table = &doc.table;
    let mut m = BTreeMap::new();
    m.insert("curves".into(), json!(doc.inputs.len()));
    m.insert("variants".into(), json!(table.variants.len()));
    m.insert("scales".into(), json!(table.scales.len()));
    if let Some(min_seeds) = table.rows.iter().map(|r| r.seeds.len()).min() {
        m.insert("min_seeds".into(), json!(min_seeds));
    }
    if let Some(fit) = &table.scaling_law.fit {
        m.insert("scaling_law_exponent".into(), json!(fit.law.exponent));
    }
    if let Some(largest) = table.scales.last() {
        for row in &table.rows {
            if row.scale == largest.scale
                && row.variant != table.baseline
                && let Some(ceg) = row.ceg
            {
                m.insert(
                    format!("ceg.{}.{}", row.estimator.name(), row.variant),
                    json!(ceg),
                );
            }
        }
    }
    m
}

impl StageKind for FitCeg {
    fn name(&self) -> &'static str {
        "fit_ceg"
    }

    fn fingerprint(&self) -> [u8; 32] {
        crate::kind::fingerprints::FIT_CEG
    }

    fn check_params(&self, params: &Params) -> Result<(), (String, String)> {
        options(params).map(|_| ())
    }

    fn outputs(&self, _params: &Params, out_dir: &str) -> Vec<OutputDecl> {
        crate::kind::files_in(out_dir, &OUTPUTS)
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure> {
        let doc = fit(ctx.inputs, ctx.params)?;
        let table = &doc.table;
        let _ = writeln!(
            ctx.log,
            "fit_ceg: {} curves, variants [{}], scales [{}], baseline {}",
            doc.inputs.len(),
            table.variants.join(", "),
            table
                .scales
                .iter()
                .map(|s| s.scale.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            table.baseline
        );
        for note in &table.notes {
            let _ = writeln!(ctx.log, "note: {note}");
        }
        let bytes = doc
            .to_json_bytes()
            .map_err(|e| StageFailure::new(e.to_string()))?;
        write(&ctx.outs[0], bytes)?;
        write(&ctx.outs[1], table.to_csv())?;
        Ok(StageOutcome {
            metrics: metrics(&doc),
        })
    }
}
