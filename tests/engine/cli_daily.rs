//! The daily loop: forcing exactly what you mean, matrix outputs, the default pipeline and
//! targets given alone.

use crate::project::matrix_project;

#[test]
fn force_target_does_not_rerun_upstream() {
    let p = matrix_project();
    p.cegraph(&["run"]).ok();
    let ran = p.executed(|| {
        p.cegraph(&["run", "--force", "report"]).ok();
    });
    assert_eq!(ran, ["report"]);
}

#[test]
fn forced_node_with_unchanged_outputs_leaves_downstream_alone() {
    let p = matrix_project();
    p.cegraph(&["run"]).ok();
    let ran = p.executed(|| {
        p.cegraph(&["run", "--force", "prepare"]).ok();
    });
    // prepare's output is the same bytes, so train's keys do not change (early cutoff).
    assert_eq!(ran, ["prepare"]);
}

#[test]
fn force_downstream_reruns_the_node_and_all_that_depends_on_it() {
    let p = matrix_project();
    p.cegraph(&["run"]).ok();
    let ran = p.executed(|| {
        p.cegraph(&["run", "-R", "train[variant=rope]"]).ok();
    });
    assert_eq!(
        ran,
        [
            "report",
            "train[variant=rope,seed=1]",
            "train[variant=rope,seed=2]"
        ]
    );
}

#[test]
fn force_all_reruns_every_selected_node() {
    let p = matrix_project();
    p.cegraph(&["run"]).ok();
    let ran = p.executed(|| {
        p.cegraph(&["run", "report", "--force-all"]).ok();
    });
    assert_eq!(
        ran,
        [
            "prepare",
            "report",
            "train[variant=rope,seed=1]",
            "train[variant=rope,seed=2]"
        ]
    );
}

#[test]
fn target_without_pipeline_path_is_a_target() {
    let p = matrix_project();
    let ran = p.executed(|| {
        p.cegraph(&["run", "prepare"]).ok();
    });
    assert_eq!(ran, ["prepare"]);
    // `status train` shows train's nodes and what they need, nothing else.
    let status = p.cegraph(&["status", "train"]).code(1);
    assert!(
        status.stdout.contains("up-to-date  prepare"),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("report"), "{}", status.stdout);
    assert!(
        status.stdout.contains("1 of 5 node(s) up to date"),
        "{}",
        status.stdout
    );
    // A name that is neither a file nor a node says so.
    let bad = p.cegraph(&["run", "sumarise"]).code(2);
    assert!(
        bad.stderr.contains("no stage or node named `sumarise`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn default_pipeline_is_the_only_file_in_pipelines() {
    let p = crate::project::Project::new();
    p.write(
        "pipelines/one.yaml",
        "stages:\n  hello:\n    cmd: echo hi > ${outs[0]}\n    outs: [out/hi.txt]\n",
    );
    p.cegraph(&["run", "hello"]).ok();
    assert_eq!(p.read("out/hi.txt"), "hi\n");
    p.write("pipelines/two.yaml", "stages: {}\n");
    let several = p.cegraph(&["status"]).code(2);
    insta::assert_snapshot!(several.stderr);
}

const TWO_OUTPUT_MATRIX: &str = r#"
stages:
  train:
    matrix:
      seed: [1, 2]
    cmd: echo model ${seed} > ${outs[0]} && echo log ${seed} > ${outs[1]}
    outs: ["${out_dir}/model.txt", "${out_dir}/train.log"]
  summarise:
    deps: [train]
    cmd: cat ${stages.train.outs[0]} > ${outs[0]}
    outs: [out/summary.txt]
  pick:
    deps: [train]
    cmd: cat ${stages.train[seed=2].outs[0]} > ${outs[0]}
    outs: [out/pick.txt]
"#;

#[test]
fn matrix_outs_index_reads_every_node() {
    let p = crate::project::Project::with_pipeline(TWO_OUTPUT_MATRIX);
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out/summary.txt"), "model 1\nmodel 2\n");
    assert_eq!(p.read("out/pick.txt"), "model 2\n");
}

#[test]
fn indexing_the_nodes_of_a_matrix_stage_is_a_located_error() {
    let yaml = TWO_OUTPUT_MATRIX.replace(
        "cat ${stages.train[seed=2].outs[0]}",
        "cat ${stages.train[1]}",
    );
    let p = crate::project::Project::with_pipeline(&yaml);
    let out = p.cegraph(&["status"]).code(2);
    insta::assert_snapshot!(out.stderr);
}

const FAILING: &str = r#"
stages:
  bad:
    cmd: >-
      for i in $(seq 1 25); do echo "line $i"; done;
      printf '\033[31mred\033[0m\n' >&2; exit 1
    outs: [out/never.txt]
"#;

/// The run's output with the log path (a hash) made stable.
fn without_log_path(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("log: ") {
            Some(i) => format!("{}log: <log>", &l[..i]),
            None => l.to_string(),
        })
        .map(|l| match l.find(" in ") {
            Some(i) if l.contains("failed") => format!("{} in <time>", &l[..i]),
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn failed_node_shows_the_end_of_its_log_without_escape_codes() {
    let p = crate::project::Project::with_pipeline(FAILING);
    let out = p.cegraph(&["run"]).code(1);
    // Piped: plain lines, never a terminal escape code (the command's own are removed too).
    assert!(!out.stdout.contains("\x1b["), "{:?}", out.stdout);
    assert!(!out.stderr.contains("\x1b["), "{:?}", out.stderr);
    assert!(out.stdout.contains("│ line 25"), "{}", out.stdout);
    assert!(!out.stdout.contains("│ line 5\n"), "{}", out.stdout);
    insta::assert_snapshot!(without_log_path(&out.stdout));
}

#[test]
fn verbose_streams_each_line_prefixed_by_its_node() {
    let p = crate::project::Project::with_pipeline(FAILING);
    let out = p.cegraph(&["run", "-v"]).code(1);
    assert!(out.stdout.contains("bad | line 1\n"), "{}", out.stdout);
    assert!(out.stdout.contains("bad | line 25\n"), "{}", out.stdout);
    assert!(out.stdout.contains("bad | red\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("\x1b["), "{:?}", out.stdout);
}

#[test]
fn dry_run_prints_each_command_that_would_run() {
    let p = matrix_project();
    p.cegraph(&["run", "prepare"]).ok();
    let dry = p.cegraph(&["run", "-n", "report"]).ok();
    insta::assert_snapshot!(dry.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&p.cegraph(&["run", "-n", "--json", "report"]).ok().stdout).unwrap();
    let plan = json.as_array().unwrap();
    assert_eq!(plan.len(), 3, "{json:#}");
    assert_eq!(plan[0]["action"], "run");
    assert!(
        plan[0]["cmd"]
            .as_str()
            .unwrap()
            .starts_with("echo 'train[variant=rope,seed=1]' >> runs.log"),
        "{json:#}"
    );
    assert_eq!(plan[2]["node"], "report");
    assert_eq!(
        plan[2]["why"][0],
        "upstream train[variant=rope,seed=1] will run"
    );
}

fn load_error(yaml: &str) -> String {
    let p = crate::project::Project::with_pipeline(yaml);
    p.cegraph(&["status"]).code(2).stderr
}

#[test]
fn matrix_of_wrong_type_says_what_it_takes() {
    insta::assert_snapshot!(load_error(
        "stages:\n  a:\n    cmd: echo ${seed}\n    matrix: 5\n"
    ));
}

#[test]
fn unknown_key_suggests_the_nearest_and_names_cegraph_schema() {
    let e = load_error("stages:\n  a:\n    cmd: echo\n    outz: [x]\n");
    assert!(!e.contains("schemas/pipeline.schema.json"), "{e}");
    insta::assert_snapshot!(e);
}

#[test]
fn missing_dep_points_at_its_deps_entry() {
    let p = crate::project::Project::with_pipeline(
        "stages:\n  a:\n    cmd: echo\n    deps:\n      - data/here.txt\n      - data/missing.txt\n",
    );
    p.write("data/here.txt", "x");
    insta::assert_snapshot!(p.cegraph(&["status"]).code(2).stderr);
}

#[test]
fn dependency_cycle_closes_the_loop_at_its_deps_entry() {
    insta::assert_snapshot!(load_error(
        "stages:\n  a:\n    cmd: x\n    deps: [c]\n  b:\n    cmd: y\n    deps: [a]\n  c:\n    cmd: z\n    deps: [b]\n"
    ));
}

#[test]
fn unclosed_bracket_is_named_where_it_opens() {
    insta::assert_snapshot!(load_error(
        "stages:\n  a:\n    cmd: echo\n    deps: [x,\n    outs: [y]\n"
    ));
}

#[test]
fn default_pipeline_is_found_from_a_subdirectory_of_the_workspace() {
    let p = matrix_project();
    std::fs::create_dir_all(p.join("src/deep")).unwrap();
    let out: crate::project::Run = p
        .command(&["run", "prepare"])
        .current_dir(p.join("src/deep"))
        .output()
        .unwrap()
        .into();
    let out = out.ok();
    assert!(out.stdout.contains("ran       prepare"), "{}", out.stdout);
    assert!(p.join("out/corpus.upper").exists());
}
