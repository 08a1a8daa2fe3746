//! Bad pipelines get a clear error with file:line:col and a fix — never a panic.

use crate::project::Project;

/// Load the pipeline with `dag` and return the rendered error (exit code 2).
fn error_of(yaml: &str) -> String {
    let p = Project::with_pipeline(yaml);
    let out = p.cegraph(&["dag"]).code(2);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out.stderr
}

#[test]
fn yaml_syntax_error() {
    insta::assert_snapshot!(error_of(
        "stages:\n  a:\n    cmd: 'unclosed\n    outs: [x]\n"
    ));
}

#[test]
fn unknown_key() {
    insta::assert_snapshot!(error_of("stages:\n  a:\n    cmd: echo\n    outz: [x]\n"));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(error_of(
        "stages:\n  a:\n    cmd: echo\n    resources: {cpus: many}\n"
    ));
}

#[test]
fn unknown_var_reference() {
    insta::assert_snapshot!(error_of(
        "vars: {lr: 1}\nstages:\n  a:\n    cmd: echo ${vars.rl} > ${outs[0]}\n    outs: [x]\n"
    ));
}

#[test]
fn unclosed_interpolation() {
    let e = error_of("stages:\n  a:\n    cmd: echo ${oops\n");
    assert!(e.contains("cegraph.yaml:3:10"), "{e}");
    assert!(e.contains("unclosed `${`"), "{e}");
}

#[test]
fn unknown_stage_in_a_filter() {
    let e = error_of(
        "stages:\n  a:\n    matrix: {v: [x, y]}\n    cmd: echo ${v} > ${outs[0]}\n    outs: [\"o/${v}\"]\n  b:\n    deps: [\"a[v=z]\"]\n    cmd: echo\n",
    );
    assert!(
        e.contains("cegraph.yaml:7:12: no node of `a` matches [v=z]"),
        "{e}"
    );
    let e = error_of(
        "stages:\n  a:\n    matrix: {v: [x]}\n    cmd: echo ${v} > ${outs[0]}\n    outs: [\"o/${v}\"]\n  b:\n    deps: [\"a[w=x]\"]\n    cmd: echo\n",
    );
    assert!(e.contains("`a` has no matrix key `w`"), "{e}");
    assert!(e.contains("its keys are: v"), "{e}");
}

#[test]
fn matrix_errors() {
    let e = error_of("stages:\n  a:\n    matrix: {v: []}\n    cmd: echo\n");
    assert!(
        e.contains("cegraph.yaml:3:17: matrix `v` of stage `a` is empty"),
        "{e}"
    );
    let e = error_of("stages:\n  a:\n    matrix: {v: [x, x]}\n    cmd: echo\n");
    assert!(e.contains("lists `x` twice"), "{e}");
    let e = error_of("stages:\n  a:\n    matrix: {v: [x]}\n    exclude: [{w: x}]\n    cmd: echo\n");
    assert!(
        e.contains("exclude names `w`, which is not a matrix key of `a`"),
        "{e}"
    );
    let e =
        error_of("vars: {n: 3}\nstages:\n  a:\n    matrix: {v: \"${vars.n}\"}\n    cmd: echo\n");
    assert!(e.contains("matrix `v` must be a list"), "{e}");
}

#[test]
fn dependency_cycle_names_its_nodes() {
    insta::assert_snapshot!(error_of(
        "stages:\n  a:\n    deps: [c]\n    cmd: x\n  b:\n    deps: [a]\n    cmd: y\n  c:\n    deps: [b]\n    cmd: z\n"
    ));
}

#[test]
fn outputs_outside_the_workspace_are_refused() {
    let e = error_of("stages:\n  a:\n    cmd: x\n    outs: [../escape.txt]\n");
    assert!(
        e.contains("cegraph.yaml:4:12: output `../escape.txt` is outside the workspace"),
        "{e}"
    );
    let e = error_of("stages:\n  a:\n    cmd: x\n    outs: [/tmp/abs.txt]\n");
    assert!(e.contains("is outside the workspace"), "{e}");
    // A symlink is checked when the node is about to run (it may appear after loading).
    let p = Project::with_pipeline(
        "stages:\n  a:\n    cmd: echo x > ${outs[0]}\n    outs: [link/escape.txt]\n",
    );
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), p.join("link")).unwrap();
    let out = p.cegraph(&["run"]).code(1);
    assert!(
        out.stdout
            .contains("leads outside the workspace through a symlink"),
        "{}",
        out.stdout
    );
    assert!(
        !outside.path().join("escape.txt").exists(),
        "wrote through the symlink"
    );
}

#[test]
fn two_nodes_writing_one_file() {
    let e =
        error_of("stages:\n  a:\n    matrix: {v: [x, y]}\n    cmd: echo\n    outs: [same.txt]\n");
    assert!(
        e.contains("`a[v=x]` and `a[v=y]` both write `same.txt`"),
        "{e}"
    );
}

#[test]
fn kind_and_cmd_conflicts_and_unknown_kinds() {
    let e = error_of("stages:\n  a:\n    kind: nonsense\n");
    assert!(
        e.contains("cegraph.yaml:3:11: unknown stage kind `nonsense`"),
        "{e}"
    );
    let e = error_of("stages:\n  a:\n    kind: source\n    cmd: echo\n");
    assert!(e.contains("has both `kind` and `cmd`"), "{e}");
    let e = error_of("stages:\n  a:\n    deps: [x]\n");
    assert!(e.contains("has neither `kind` nor `cmd`"), "{e}");
}

#[test]
fn a_missing_dep_file_is_named_with_the_stage() {
    let p = Project::with_pipeline(
        "stages:\n  a:\n    cmd: cat ${deps} > ${outs[0]}\n    deps: [data/missing.txt]\n    outs: [o]\n",
    );
    let out = p.cegraph(&["run"]).code(2);
    assert!(
        out.stderr
            .contains("a: dep `data/missing.txt` does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_panic_on_odd_documents() {
    for yaml in [
        "",
        "---\n",
        "[]\n",
        "stages: 3\n",
        "stages: {}\n",
        "stages:\n  a: 7\n",
        "\t\u{0}",
        "stages:\n  'a b':\n    cmd: x\n",
    ] {
        let p = Project::with_pipeline(yaml);
        let out = p.cegraph(&["dag"]);
        assert_eq!(out.code, 2, "{yaml:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{yaml:?}: {}", out.stderr);
    }
}

#[test]
fn unknown_target_and_missing_pipeline() {
    let p = Project::with_pipeline("stages:\n  a:\n    cmd: echo hi > ${outs[0]}\n    outs: [o]\n");
    let out = p.cegraph(&["run", "cegraph.yaml", "nope"]).code(2);
    assert!(
        out.stderr
            .contains("no stage or node named `nope` (stages: a)"),
        "{}",
        out.stderr
    );
    let out = p.cegraph(&["run", "missing.yaml"]).code(2);
    assert!(
        out.stderr
            .contains("pipeline file missing.yaml does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_misspelt_stage_dependency_suggests_the_stage() {
    let p = Project::with_pipeline(
        "stages:\n  prepare:\n    cmd: echo > ${outs[0]}\n    outs: [o]\n  train:\n    deps: [prepar]\n    cmd: echo\n",
    );
    let out = p.cegraph(&["status"]).code(2);
    assert!(
        out.stderr.contains("train: dep `prepar` does not exist"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean the stage `prepare`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn slurm_memory_without_a_valid_unit() {
    let err = error_of("stages:\n  a:\n    cmd: echo\n    resources: {mem: 16GB}\n");
    assert!(
        err.contains("resources.mem `16GB` is not a memory size"),
        "{err}"
    );
    assert!(err.contains("cegraph.yaml:4:16"), "{err}");
    assert!(err.contains("512M, 16G"), "{err}");
}

#[test]
fn unknown_key_in_the_slurm_block() {
    let err = error_of("stages:\n  a:\n    cmd: echo\nslurm: {partion: gpu}\n");
    assert!(err.contains("unknown key `partion`"), "{err}");
    assert!(err.contains("cegraph.yaml:4:"), "{err}");
}
