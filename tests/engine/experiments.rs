//! Experiments (issue 14): `run -S`, params files per key, `exp show|list|apply|remove`,
//! `metrics show|diff`, `params diff`, and their bad input.

use crate::project::Project;

/// The example of examples/exp in a fresh workspace; `None` (said aloud) without python3.
fn example() -> Option<Project> {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: python3 is not installed; the experiments example needs it");
        return None;
    }
    let p = Project::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/exp");
    for f in ["cegraph.yaml", "params.yaml", "train.py"] {
        p.write(f, &std::fs::read_to_string(format!("{dir}/{f}")).unwrap());
    }
    Some(p)
}

/// Nothing of an experiment exists: no record, lock and params files as they were.
#[track_caller]
fn nothing_written(p: &Project, lock_before: &str) {
    assert!(
        !p.join("cache/experiments").exists()
            || std::fs::read_dir(p.join("cache/experiments"))
                .unwrap()
                .next()
                .is_none()
    );
    assert_eq!(
        std::fs::read_to_string(p.join("cegraph.lock")).unwrap_or_default(),
        lock_before
    );
}

#[test]
fn experiments_walkthrough_three_runs_one_table() {
    let Some(p) = example() else { return };
    p.cegraph(&["run"]).ok();
    insta::assert_snapshot!("metrics_show", p.cegraph(&["metrics", "show"]).ok().stdout);
    let lock = p.read("cegraph.lock");
    let params = p.read("params.yaml");
    let pipeline = p.read("cegraph.yaml");
    let out = p.cegraph(&["run", "-S", "train.lr=0.05"]).ok().stdout;
    assert!(out.contains("experiment exp-1 recorded"), "{out}");
    p.cegraph(&["run", "-S", "params.yaml:train.lr=0.1", "--name", "fast"])
        .ok();
    // An override edits neither the params file nor the committed lock file.
    assert_eq!(p.read("cegraph.lock"), lock);
    assert_eq!(p.read("params.yaml"), params);
    insta::assert_snapshot!("exp_show", p.cegraph(&["exp", "show"]).ok().stdout);
    insta::assert_snapshot!(
        "exp_show_md",
        p.cegraph(&["exp", "show", "--md"]).ok().stdout
    );
    let sorted = p
        .cegraph(&["exp", "show", "--sort-by", "loss", "--csv"])
        .ok()
        .stdout;
    let names: Vec<&str> = sorted
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(names, ["fast", "exp-1", "workspace"]);
    let one = p
        .cegraph(&["exp", "show", "--filter", "experiment=fast", "--csv"])
        .ok()
        .stdout;
    assert_eq!(one.lines().count(), 2, "{one}");
    let e = p
        .cegraph(&["exp", "show", "--sort-by", "los"])
        .code(2)
        .stderr;
    assert!(e.contains("no column `los`"), "{e}");
    let csv = p.cegraph(&["exp", "show", "--csv"]).ok().stdout;
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&p.cegraph(&["exp", "show", "--json"]).ok().stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    let list = p.cegraph(&["exp", "list"]).ok().stdout;
    assert!(
        list.contains("exp-1") && list.contains("train.lr=0.05"),
        "{list}"
    );
    insta::assert_snapshot!(
        "metrics_diff",
        p.cegraph(&["metrics", "diff", "workspace", "fast"])
            .ok()
            .stdout
    );
    insta::assert_snapshot!(
        "params_diff",
        p.cegraph(&["params", "diff", "workspace", "exp-1"])
            .ok()
            .stdout
    );
    // Same overrides again: nothing runs, the result comes from the cache.
    let again = p
        .cegraph(&["run", "-S", "train.lr=0.05", "--name", "again"])
        .ok()
        .stdout;
    assert!(again.contains("restored  train"), "{again}");
    p.cegraph(&["exp", "remove", "again"]).ok();
    assert!(!p.cegraph(&["exp", "list"]).ok().stdout.contains("again"));
    // exp apply writes a params-file override into that file, in place.
    p.cegraph(&["exp", "apply", "fast"]).ok();
    assert_eq!(p.read("params.yaml"), params.replace("lr: 0.01", "lr: 0.1"));
    assert_eq!(p.read("cegraph.yaml"), pipeline);
    let ran = p.executed(|| {
        p.cegraph(&["run"]).ok();
    });
    assert!(ran.is_empty(), "{ran:?}");
    p.write("params.yaml", &params);
    p.cegraph(&["run"]).ok();
    // --lock promotes an experiment into the lock file.
    p.cegraph(&["run", "-S", "train.lr=0.05", "--name", "promoted", "--lock"])
        .ok();
    assert_ne!(p.read("cegraph.lock"), lock);
}

#[test]
fn params_file_key_change_is_named_and_other_keys_rerun_nothing() {
    let Some(p) = example() else { return };
    p.cegraph(&["run"]).ok();
    // seed is not a listed key: the node stays up to date.
    p.edit("params.yaml", "seed: 0", "seed: 7");
    p.cegraph(&["status"]).ok();
    p.edit("params.yaml", "lr: 0.01", "lr: 0.02");
    let st = p.cegraph(&["status"]).code(1).stdout;
    assert!(st.contains("params.yaml:train.lr 0.01 → 0.02"), "{st}");
}

#[test]
fn override_of_a_param_that_does_not_exist_is_refused_with_a_suggestion() {
    let p = Project::with_pipeline(
        "vars: {seed: 1}\nstages:\n  train:\n    cmd: echo ${params.lr} ${vars.seed} > out.txt\n    params: {lr: 0.001}\n    outs: [out.txt]\n",
    );
    let lock = String::new();
    let e = p.cegraph(&["run", "-S", "train.lrr=1"]).code(2).stderr;
    assert!(e.contains("did you mean `train.lr`?"), "{e}");
    let e = p.cegraph(&["run", "-S", "trian.lr=1"]).code(2).stderr;
    assert!(e.contains("did you mean `train`?"), "{e}");
    let e = p.cegraph(&["run", "-S", "vars.sed=1"]).code(2).stderr;
    assert!(e.contains("did you mean `vars.seed`?"), "{e}");
    let e = p.cegraph(&["run", "-S", "lr=1"]).code(2).stderr;
    assert!(e.contains("STAGE.PARAM=VALUE"), "{e}");
    let e = p.cegraph(&["run", "-S", "train.lr=[1,"]).code(2).stderr;
    assert!(e.contains("is not a YAML value"), "{e}");
    // One line of error, one of help.
    assert!(e.trim().lines().count() <= 2, "{e}");
    nothing_written(&p, &lock);
}

#[test]
fn experiment_name_that_exists_is_refused_before_running() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: echo ${params.n} > out.txt; echo t >> runs.log\n    params: {n: 1}\n    outs: [out.txt]\n",
    );
    p.cegraph(&["run", "-S", "t.n=2", "--name", "two"]).ok();
    let ran = p.executed(|| {
        let e = p
            .cegraph(&["run", "-S", "t.n=3", "--name", "two"])
            .code(2)
            .stderr;
        assert!(e.contains("experiment `two` exists already"), "{e}");
    });
    assert!(ran.is_empty(), "{ran:?}");
    let e = p
        .cegraph(&["run", "-S", "t.n=3", "--name", "../x"])
        .code(2)
        .stderr;
    assert!(e.contains("is not allowed"), "{e}");
}

#[test]
fn exp_apply_writes_overrides_into_the_yaml_keeping_comments() {
    let p = Project::with_pipeline(
        "# my pipeline\nvars:\n  seed: 1 # the seed\nstages:\n  t:\n    cmd: echo ${params.n} ${vars.seed} > out.txt; echo t >> runs.log\n    params: {n: 1, tag: a} # inline\n    outs: [out.txt]\n",
    );
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "t.n=5", "-S", "vars.seed=2", "--name", "five"])
        .ok();
    p.cegraph(&["exp", "apply", "five"]).ok();
    assert_eq!(
        p.read("cegraph.yaml"),
        "# my pipeline\nvars:\n  seed: 2 # the seed\nstages:\n  t:\n    cmd: echo ${params.n} ${vars.seed} > out.txt; echo t >> runs.log\n    params: {n: 5, tag: a} # inline\n    outs: [out.txt]\n"
    );
    // The applied file has the experiment's key: its result is restored, nothing runs.
    let ran = p.executed(|| {
        p.cegraph(&["run"]).ok();
    });
    assert!(ran.is_empty(), "{ran:?}");
    assert_eq!(p.read("out.txt").trim(), "5 2");
    let e = p.cegraph(&["exp", "apply", "nope"]).code(2).stderr;
    assert!(
        e.contains("no experiment named `nope`") && e.contains("five"),
        "{e}"
    );
}

#[test]
fn params_file_missing_key_or_invalid_is_an_error_at_its_place() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: echo ${params.train.lr} > out.txt\n    params_files:\n      - file: params.json\n        keys: [train.lr, train.bacth]\n    outs: [out.txt]\n",
    );
    p.write("params.json", "{\"train\": {\"lr\": 0.1, \"batch\": 8}}");
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(
        e.contains("has no key `train.bacth`") && e.contains("did you mean `train.batch`?"),
        "{e}"
    );
    assert!(e.contains("cegraph.yaml:6"), "{e}");
    p.edit("cegraph.yaml", "train.bacth", "train.batch");
    p.write(
        "params.json",
        "{\"train\": {\"lr\": 0.1,\n \"batch\": 8,,}}",
    );
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(e.contains("params file params.json:2:"), "{e}");
    p.write("params.json", "{\"train\": {\"lr\": 0.1, \"batch\": 8}}");
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out.txt").trim(), "0.1");
    let e = p
        .cegraph(&["run", "-S", "params.json:train.epochs=3"])
        .code(2)
        .stderr;
    assert!(e.contains("no stage reads that params-file key"), "{e}");
    // Inline params (a kind's) may take a params-file value.
    p.write(
        "cegraph.yaml",
        "stages:\n  t:\n    cmd: echo ${params.rate} > out.txt\n    params: {rate: '${params.train.lr}'}\n    params_files: [{file: params.json, keys: [train.lr]}]\n    outs: [out.txt]\n",
    );
    p.cegraph(&["run", "-S", "train.lr=0.3"]).ok();
    assert_eq!(p.read("out.txt").trim(), "0.3");
    // TOML too; the overridden copy is what the command reads.
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: cat ${params_file} > out.txt\n    params_files: [{file: p.toml, keys: [lr]}]\n    outs: [out.txt]\n",
    );
    p.write("p.toml", "lr = 0.5\nother = 'x'\n");
    p.cegraph(&["run", "-S", "lr=0.25"]).ok();
    assert!(
        p.read("out.txt").contains("lr = 0.25"),
        "{}",
        p.read("out.txt")
    );
    assert_eq!(p.read("p.toml"), "lr = 0.5\nother = 'x'\n");
}

#[test]
fn metrics_file_not_numeric_fails_and_nan_is_shown() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: cp src.json m.json\n    deps: [src.json]\n    outs: [m.json]\n    metrics: m.json\n",
    );
    p.write("src.json", r#"{"loss": "low"}"#);
    let e = p.cegraph(&["run"]).code(1);
    let all = format!("{}{}", e.stdout, e.stderr);
    assert!(
        all.contains("metric `loss` is `low`, not a number"),
        "{all}"
    );
    p.write("src.json", r#"{"loss": NaN, "acc": Infinity}"#);
    p.cegraph(&["run"]).ok();
    let shown = p.cegraph(&["metrics", "show"]).ok().stdout;
    assert!(shown.contains("NaN") && shown.contains("inf"), "{shown}");
    p.cegraph(&["exp", "show"]).ok();
}

#[test]
fn revision_that_is_not_git_or_has_no_lock_file_is_refused() {
    let p =
        Project::with_pipeline("stages:\n  t:\n    cmd: echo 1 > out.txt\n    outs: [out.txt]\n");
    p.cegraph(&["run"]).ok();
    let e = p.cegraph(&["metrics", "diff", "nosuchrev"]).code(2).stderr;
    assert!(
        e.contains("`nosuchrev` is not a git revision, an experiment or `workspace`"),
        "{e}"
    );
    p.git(&["init", "-q"]);
    p.git(&["add", "cegraph.yaml"]);
    p.git(&["commit", "-qm", "pipeline only"]);
    let e = p.cegraph(&["metrics", "diff", "HEAD"]).code(2).stderr;
    assert!(e.contains("revision `HEAD` has no"), "{e}");
    p.git(&["add", "cegraph.lock"]);
    p.git(&["commit", "-qm", "lock"]);
    let out = p.cegraph(&["params", "diff", "HEAD"]).ok().stdout;
    assert!(
        out.contains("no param changed between HEAD and workspace"),
        "{out}"
    );
}

#[test]
fn override_of_a_matrix_stage_param_applies_to_all_its_nodes() {
    let p = Project::with_pipeline(
        "vars: {seeds: [1, 2]}\nstages:\n  t:\n    matrix:\n      seed: ${vars.seeds}\n    cmd: echo ${params.lr} ${matrix.seed} > ${outs[0]}; echo t >> runs.log\n    params: {lr: 1}\n    outs: [\"${out_dir}/o.txt\"]\n",
    );
    p.cegraph(&["run"]).ok();
    let ran = p.executed(|| {
        p.cegraph(&["run", "-S", "t.lr=2"]).ok();
    });
    assert_eq!(ran, ["t", "t"]);
    assert_eq!(p.read("out/t/seed=1/o.txt").trim(), "2 1");
    assert_eq!(p.read("out/t/seed=2/o.txt").trim(), "2 2");
    // A var override can widen the matrix: only the new node runs.
    let ran = p.executed(|| {
        p.cegraph(&["run", "-S", "vars.seeds=[1, 2, 3]", "-S", "t.lr=2"])
            .ok();
    });
    assert_eq!(ran, ["t"]);
    let e = p.cegraph(&["exp", "show"]).ok().stdout;
    assert!(e.contains("t[seed=3]") && e.contains("exp-2"), "{e}");
}

#[test]
fn metrics_diff_of_a_commit_shows_what_it_changed() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: 'echo loss: ${params.loss} > m.yaml'\n    params: {loss: 4}\n    outs: [m.yaml]\n    metrics: m.yaml\n",
    );
    p.git(&["init", "-q"]);
    p.cegraph(&["run"]).ok();
    p.git(&["add", "cegraph.yaml", "cegraph.lock"]);
    p.git(&["commit", "-qm", "loss 4"]);
    p.edit("cegraph.yaml", "loss: 4", "loss: 3");
    p.cegraph(&["run"]).ok();
    p.git(&["commit", "-qam", "loss 3"]);
    insta::assert_snapshot!(
        "metrics_diff_commit",
        p.cegraph(&["metrics", "diff", "HEAD~1", "HEAD"])
            .ok()
            .stdout
    );
    let json: serde_json::Value = serde_json::from_str(
        &p.cegraph(&["metrics", "diff", "HEAD~1", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(json[0]["relative"], "-25%");
    // The experiment records its commit; a dirty tree is marked.
    p.edit("cegraph.yaml", "metrics: m.yaml", "metrics: m.yaml # dirty");
    p.cegraph(&["run", "-S", "t.loss=2", "--name", "two"]).ok();
    let list = p.cegraph(&["exp", "list"]).ok().stdout;
    assert!(
        list.lines().nth(1).is_some_and(|l| l.contains('*')),
        "{list}"
    );
}

#[test]
fn gc_keeps_what_recorded_experiments_name() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: 'echo loss: ${params.loss} > m.yaml'\n    params: {loss: 4}\n    outs: [m.yaml]\n    metrics: m.yaml\n",
    );
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "t.loss=2", "--name", "two"]).ok();
    p.cegraph(&["gc", "--keep-days", "0", "--grace", "0s"]).ok();
    let diff = p.cegraph(&["metrics", "diff", "workspace", "two"]).ok();
    assert!(diff.stdout.contains("-50%"), "{}", diff.stdout);
    assert!(!diff.stderr.contains("no run record"), "{}", diff.stderr);
    // Applying it restores the experiment's output from the cache.
    p.cegraph(&["exp", "apply", "two"]).ok();
    let out = p.cegraph(&["run"]).ok().stdout;
    assert!(out.contains("restored  t"), "{out}");
}

#[test]
fn metrics_columns_pick_named_csv_columns_and_a_missing_one_fails_the_node() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: printf 'run,step,loss\\nfirst,1,2.5\\nlast,2,${params.loss}\\n' > m.csv\n    params: {loss: 1.5}\n    outs: [m.csv]\n    metrics: {file: m.csv, columns: [loss, step]}\n",
    );
    p.cegraph(&["run"]).ok();
    insta::assert_snapshot!(
        "metrics_show_columns",
        p.cegraph(&["metrics", "show"]).ok().stdout
    );
    // Which metrics are kept is not part of the key (see the report): a new value re-runs.
    p.edit("cegraph.yaml", "columns: [loss, step]", "columns: [los]");
    p.edit("cegraph.yaml", "loss: 1.5", "loss: 1.25");
    let e = p.cegraph(&["run"]).code(1);
    let all = format!("{}{}", e.stdout, e.stderr);
    assert!(
        all.contains("metrics file m.csv: no metric `los` (did you mean `loss`?)"),
        "{all}"
    );
    // Without columns, the text column `run` fails the node and says how to pick columns.
    p.edit(
        "cegraph.yaml",
        "metrics: {file: m.csv, columns: [los]}",
        "metrics: m.csv",
    );
    let e = p.cegraph(&["run"]).code(1);
    let all = format!("{}{}", e.stdout, e.stderr);
    assert!(
        all.contains("metric `run` is `last`, not a number") && all.contains("columns: [...]"),
        "{all}"
    );
}

#[test]
fn metrics_spec_of_wrong_shape_is_an_error_at_its_place() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: \"echo 'loss: 1' > m.yaml\"\n    outs: [m.yaml]\n    metrics: {file: m.yaml, colums: [loss]}\n",
    );
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(
        e.contains("cegraph.yaml:5:") && e.contains("metrics must be a file or"),
        "{e}"
    );
    p.edit("cegraph.yaml", "colums: [loss]", "columns: []");
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(
        e.contains("cegraph.yaml:5:") && e.contains("`columns:` of `metrics:` is empty"),
        "{e}"
    );
    p.edit("cegraph.yaml", "columns: []", "columns: [loss, loss]");
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(e.contains("listed twice"), "{e}");
    p.edit(
        "cegraph.yaml",
        "file: m.yaml, columns: [loss, loss]",
        "file: n.yaml, columns: [loss]",
    );
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(
        e.contains("metrics file `n.yaml` is not one of the stage's `outs`"),
        "{e}"
    );
    assert!(!p.join("m.yaml").exists() && !p.join("cegraph.lock").exists());
}

#[test]
fn metrics_file_missing_fails_the_node_naming_the_file() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: mkdir -p out && echo hi > out/other.txt\n    outs: [out/other.txt, out/m.json]\n    metrics: out/m.json\n",
    );
    let e = p.cegraph(&["run"]).code(1);
    let all = format!("{}{}", e.stdout, e.stderr);
    assert!(all.contains("out/m.json"), "{all}");
    assert!(!p.join("cegraph.lock").exists() || !p.read("cegraph.lock").contains("m.json"));
}

#[test]
fn metrics_file_with_no_numeric_value_fails_the_node() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: echo '{}' > m.json\n    outs: [m.json]\n    metrics: m.json\n",
    );
    let e = p.cegraph(&["run"]).code(1);
    let all = format!("{}{}", e.stdout, e.stderr);
    assert!(
        all.contains("t: metrics file m.json holds no metric: write at least one number"),
        "{all}"
    );
}

#[test]
fn nan_and_inf_metrics_never_crash_a_table_or_a_diff() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: echo '{\"loss\":${params.loss},\"acc\":0.5}' > m.json\n    params: {loss: NaN}\n    outs: [m.json]\n    metrics: m.json\n",
    );
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "t.loss=Infinity", "--name", "inf"])
        .ok();
    p.cegraph(&["run", "-S", "t.loss=2", "--name", "two"]).ok();
    insta::assert_snapshot!(
        "metrics_diff_nan_inf",
        p.cegraph(&["metrics", "diff", "inf", "two", "--all"])
            .ok()
            .stdout
    );
    for (a, b) in [
        ("workspace", "inf"),
        ("workspace", "two"),
        ("two", "workspace"),
    ] {
        let out = p.cegraph(&["metrics", "diff", a, b, "--all"]).ok().stdout;
        assert!(out.contains("loss"), "{out}");
    }
    insta::assert_snapshot!(
        "exp_show_nan_inf",
        p.cegraph(&["exp", "show", "--sort-by", "loss"]).ok().stdout
    );
    for f in ["--json", "--csv", "--md"] {
        p.cegraph(&["exp", "show", "--sort-by", "loss", "--desc", f])
            .ok();
        p.cegraph(&["metrics", "show", f]).ok();
        p.cegraph(&["metrics", "diff", "workspace", "inf", f]).ok();
    }
}

#[test]
fn metrics_show_all_lists_every_node_with_metrics() {
    let p = Project::with_pipeline(
        "stages:\n  data:\n    kind: source\n    params: {builtin: grammar, size: 2000}\n  t:\n    cmd: echo '{\"loss\":1.5}' > m.json\n    outs: [m.json]\n    metrics: m.json\n",
    );
    p.cegraph(&["run"]).ok();
    let default = p.cegraph(&["metrics", "show", "--csv"]).ok().stdout;
    assert_eq!(default, "node,metric,value\nt,loss,1.5\n");
    let all = p
        .cegraph(&["metrics", "show", "--all", "--csv"])
        .ok()
        .stdout;
    assert!(
        all.contains("data,bytes,") && all.contains("t,loss,1.5"),
        "{all}"
    );
    let one = p.cegraph(&["metrics", "show", "data", "--csv"]).ok().stdout;
    assert!(
        one.contains("data,bytes") && !one.contains("t,loss"),
        "{one}"
    );
    // The formats say the same thing.
    let json: serde_json::Value = serde_json::from_str(
        &p.cegraph(&["metrics", "show", "--all", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    let md = p.cegraph(&["metrics", "show", "--all", "--md"]).ok().stdout;
    assert_eq!(json.as_array().unwrap().len(), all.lines().count() - 1);
    assert_eq!(md.lines().count(), all.lines().count() + 1, "{md}");
    let e = p.cegraph(&["metrics", "show", "nosuch"]).code(2).stderr;
    assert!(e.contains("nosuch"), "{e}");
}

#[test]
fn exp_show_only_changed_keeps_only_columns_that_differ() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: echo '{\"loss\":${params.loss},\"acc\":0.5}' > m.json\n    params: {loss: 4, width: 8}\n    outs: [m.json]\n    metrics: m.json\n",
    );
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "t.loss=2", "--name", "two"]).ok();
    p.cegraph(&["run", "-S", "t.width=16", "--name", "wide"])
        .ok();
    insta::assert_snapshot!(
        "exp_show_only_changed",
        p.cegraph(&["exp", "show", "--only-changed"]).ok().stdout
    );
    // Among the rows a filter keeps, `loss` no longer differs.
    let csv = p
        .cegraph(&[
            "exp",
            "show",
            "--only-changed",
            "--filter",
            "loss=4",
            "--csv",
        ])
        .ok()
        .stdout;
    assert_eq!(csv, "experiment,node,width\nworkspace,t,8\nwide,t,16\n");
}

#[test]
fn metrics_diff_fetches_missing_run_records_from_the_remote() {
    let remote = tempfile::tempdir().unwrap();
    let p = Project::with_pipeline(&format!(
        "remotes:\n  shared: file://{}\nstages:\n  t:\n    cmd: 'echo loss: ${{params.loss}} > m.yaml'\n    params: {{loss: 4}}\n    outs: [m.yaml]\n    metrics: m.yaml\n",
        remote.path().display()
    ));
    p.git(&["init", "-q"]);
    p.cegraph(&["run", "--push"]).ok();
    p.git(&["add", "cegraph.yaml", "cegraph.lock"]);
    p.git(&["commit", "-qm", "loss 4"]);
    p.edit("cegraph.yaml", "loss: 4", "loss: 3");
    p.cegraph(&["run", "--push"]).ok();
    // This cache forgets every run record; the remote has them.
    std::fs::remove_dir_all(p.join("cache/runs")).unwrap();
    let d = p.cegraph(&["metrics", "diff", "HEAD", "--csv"]).ok();
    assert!(d.stdout.contains("t,loss,4,3,-1,-25%"), "{}", d.stdout);
    assert!(!d.stderr.contains("no run record"), "{}", d.stderr);
    // Nowhere: the warning names the node.
    std::fs::remove_dir_all(p.join("cache/runs")).unwrap();
    for f in walk(remote.path()) {
        if f.to_string_lossy().contains("runs") {
            std::fs::remove_file(f).unwrap();
        }
    }
    let d = p.cegraph(&["params", "diff", "HEAD"]).ok();
    assert!(
        d.stderr
            .contains("no run record in this cache or on remote `shared` for t;"),
        "{}",
        d.stderr
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn params_file_that_is_not_valid_yaml_or_toml_is_located() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: echo ${params.train.lr} > out.txt\n    params_files: [{file: params.yaml, keys: [train.lr]}]\n    outs: [out.txt]\n",
    );
    p.write("params.yaml", "train:\n  lr: [0.1,\n");
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(e.contains("params file params.yaml:"), "{e}");
    p.write(
        "cegraph.yaml",
        "stages:\n  t:\n    cmd: echo ${params.lr} > out.txt\n    params_files: [{file: p.toml, keys: [lr]}]\n    outs: [out.txt]\n",
    );
    p.write("p.toml", "other = 1\nlr = \n");
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(e.contains("params file p.toml:2:"), "{e}");
    nothing_written(&p, "");
    assert!(!p.join("out.txt").exists());
}

#[test]
fn exp_remove_of_an_unknown_name_removes_nothing() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: echo ${params.n} > out.txt\n    params: {n: 1}\n    outs: [out.txt]\n",
    );
    p.cegraph(&["run", "-S", "t.n=2", "--name", "two"]).ok();
    let e = p.cegraph(&["exp", "remove", "two", "nope"]).code(2).stderr;
    assert!(
        e.contains("no experiment named `nope`") && e.contains("known: two"),
        "{e}"
    );
    assert!(p.cegraph(&["exp", "list"]).ok().stdout.contains("two"));
}

#[test]
fn exp_show_filter_without_equals_or_of_an_unknown_column_is_refused() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: \"echo 'loss: ${params.n}' > m.yaml\"\n    params: {n: 1}\n    outs: [m.yaml]\n    metrics: m.yaml\n",
    );
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "t.n=2"]).ok();
    let e = p.cegraph(&["exp", "show", "--filter", "n"]).code(2).stderr;
    assert!(e.contains("--filter `n` is not COLUMN=VALUE"), "{e}");
    let e = p
        .cegraph(&["exp", "show", "--filter", "m=2"])
        .code(2)
        .stderr;
    assert!(
        e.contains("no column `m`") && e.contains("columns: experiment, node, n, loss"),
        "{e}"
    );
    let one = p
        .cegraph(&["exp", "show", "--filter", "n=2", "--csv"])
        .ok()
        .stdout;
    assert_eq!(one, "experiment,node,n,loss\nexp-1,t,2,2\n");
}

#[test]
fn lock_without_an_experiment_is_refused() {
    let p =
        Project::with_pipeline("stages:\n  t:\n    cmd: echo 1 > out.txt\n    outs: [out.txt]\n");
    let e = p.cegraph(&["run", "--lock"]).code(2).stderr;
    assert!(e.contains("--lock promotes an experiment"), "{e}");
    nothing_written(&p, "");
    assert!(!p.join("out.txt").exists());
}

#[test]
fn metrics_diff_of_more_than_two_revisions_is_a_usage_error() {
    let p =
        Project::with_pipeline("stages:\n  t:\n    cmd: echo 1 > out.txt\n    outs: [out.txt]\n");
    p.cegraph(&["metrics", "diff", "a", "b", "c"]).code(2);
    p.cegraph(&["params", "diff", "a", "b", "c"]).code(2);
}

#[test]
fn exp_show_has_matrix_values_as_columns_to_filter_and_sort_on() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    matrix: {variant: [baseline, rope], seed: [1, 2]}\n    cmd: echo '{\"loss\":${params.lr}${matrix.seed}}' > ${outs[0]}\n    params: {lr: 1}\n    outs: [\"${out_dir}/m.json\"]\n    metrics: \"${out_dir}/m.json\"\n",
    );
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "t.lr=2", "--name", "two"]).ok();
    insta::assert_snapshot!(
        "exp_show_matrix_filter",
        p.cegraph(&[
            "exp",
            "show",
            "--filter",
            "variant=rope",
            "--sort-by",
            "loss",
            "--desc"
        ])
        .ok()
        .stdout
    );
    // The axes name the rows: --only-changed keeps them even where they do not differ.
    let csv = p
        .cegraph(&[
            "exp",
            "show",
            "--filter",
            "variant=rope",
            "--filter",
            "seed=1",
            "--only-changed",
            "--csv",
        ])
        .ok()
        .stdout;
    assert_eq!(
        csv,
        "experiment,node,variant,seed,lr,loss\nworkspace,\"t[variant=rope,seed=1]\",rope,1,1,11\ntwo,\"t[variant=rope,seed=1]\",rope,1,2,21\n"
    );
}

#[test]
fn exp_show_rebuilds_a_corrupt_or_stale_experiments_index_from_the_records() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: echo '{\"loss\":${params.loss}}' > m.json\n    params: {loss: 4}\n    outs: [m.json]\n    metrics: m.json\n",
    );
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "t.loss=2", "--name", "two"]).ok();
    let index = p.join("cache/experiments/.index");
    let before = std::fs::read(&index).unwrap();
    p.cegraph(&["run", "-S", "t.loss=3", "--name", "three"])
        .ok();
    let want = "experiment,node,param:loss,loss\nworkspace,t,4,4\ntwo,t,2,2\nthree,t,3,3\n";
    // The index as a concurrent run left it, without `three`: read `three` from its record.
    std::fs::write(&index, &before).unwrap();
    assert_eq!(p.cegraph(&["exp", "show", "--csv"]).ok().stdout, want);
    // Damaged: ignored and rebuilt.
    std::fs::write(&index, b"CEGXIDX\0 not an index").unwrap();
    assert_eq!(p.cegraph(&["exp", "show", "--csv"]).ok().stdout, want);
    // A record removed by hand is gone from the table, though the index named it.
    std::fs::remove_file(p.join("cache/experiments/two.json")).unwrap();
    assert_eq!(
        p.cegraph(&["exp", "show", "--csv"]).ok().stdout,
        "experiment,node,param:loss,loss\nworkspace,t,4,4\nthree,t,3,3\n"
    );
}

#[test]
fn changing_metrics_columns_updates_metrics_without_rerunning() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: printf 'step,loss,acc\\n1,2.5,0.1\\n2,${params.loss},0.9\\n' > m.csv\n    params: {loss: 1.5}\n    outs: [m.csv]\n    metrics: {file: m.csv, columns: [loss]}\n",
    );
    p.cegraph(&["run"]).ok();
    let shown = p.cegraph(&["metrics", "show", "--csv"]).ok().stdout;
    assert_eq!(shown, "node,metric,value\nt,loss,1.5\n");
    p.edit("cegraph.yaml", "columns: [loss]", "columns: [acc, step]");
    // Not stale (the declaration is not in the key), but `status` says what `run` will do.
    let status = p.cegraph(&["status"]).ok().stdout;
    assert!(status.contains("up-to-date  t\n"), "{status}");
    assert!(status.contains("metrics: declaration changed"), "{status}");
    let ran = p.executed(|| {
        p.cegraph(&["run"]).ok();
    });
    assert!(ran.is_empty(), "re-ran {ran:?}");
    let shown = p.cegraph(&["metrics", "show", "--csv"]).ok().stdout;
    assert_eq!(shown, "node,metric,value\nt,acc,0.9\nt,step,2\n");
    let status = p.cegraph(&["status"]).ok().stdout;
    assert!(!status.contains("metrics: declaration"), "{status}");
    // Experiments record the new selection too, and a restored node is re-read as well.
    p.cegraph(&["run", "-S", "t.loss=3", "--name", "three"])
        .ok();
    p.edit("cegraph.yaml", "columns: [acc, step]", "columns: [loss]");
    p.cegraph(&["run", "-S", "t.loss=3", "--name", "again"])
        .ok();
    let table = p.cegraph(&["exp", "show", "--csv"]).ok().stdout;
    // `three` keeps what it recorded; `again` (restored, same key) reads the new selection.
    assert!(table.contains("three,t,3,0.9,,2\n"), "{table}");
    assert!(table.contains("again,t,3,,3,\n"), "{table}");
    // A selection the file cannot satisfy fails the node, as on a fresh run.
    p.edit("cegraph.yaml", "columns: [loss]", "columns: [los]");
    let e = p.cegraph(&["run"]).code(1);
    let all = format!("{}{}", e.stdout, e.stderr);
    assert!(all.contains("no metric `los`"), "{all}");
}
