//! `plots:` and `cegraph plots show|diff` (issue 14): overlays of cmd stages' series, of
//! recorded experiments and of committed revisions, and their bad input.

use crate::project::Project;

/// A matrix cmd stage writing a loss curve whose first point is its `scale` param.
const PIPELINE: &str = r#"stages:
  t:
    matrix: {seed: [1, 2]}
    cmd: printf 'step,loss,acc\n1,%s,0.9\n2,0.5,0.9\n3,0.25,0.9\n' ${params.scale} > ${outs[0]}
    params: {scale: 4}
    outs: ["${out_dir}/loss.csv"]
    plots:
      - {file: "${out_dir}/loss.csv", x: step, y: loss}
"#;

/// Simpler: a stage whose CSV is copied from a file the test writes.
fn copying(plot: &str) -> Project {
    let p = Project::with_pipeline(&format!(
        "stages:\n  t:\n    cmd: cp src.csv out.csv\n    deps: [src.csv]\n    outs: [out.csv]\n    plots:\n      - {plot}\n"
    ));
    p.write("src.csv", "step,loss\n1,2\n2,1\n");
    p
}

/// A refused plot: exit 2, one line of error and one of help, no output directory.
#[track_caller]
fn refused(p: &Project, args: &[&str], says: &str) {
    let e = p.cegraph(args).code(2).stderr;
    assert!(e.contains(says), "{e}");
    assert!(e.trim().lines().count() <= 2, "{e}");
    assert!(!p.join("plots").exists(), "{args:?} wrote plots/");
}

#[test]
fn plots_show_overlays_a_cmd_stages_nodes_as_png_svg_and_one_html_page() {
    let p = Project::with_pipeline(PIPELINE);
    p.cegraph(&["run"]).ok();
    assert_eq!(
        p.read("out/t/seed=1/loss.csv"),
        "step,loss,acc\n1,4,0.9\n2,0.5,0.9\n3,0.25,0.9\n"
    );
    let out = p.cegraph(&["plots", "show"]).ok().stdout;
    for f in ["plots/loss.png", "plots/loss.svg", "plots/index.html"] {
        assert!(
            out.contains(&format!("wrote {}", p.join(f).display())) || out.contains(f),
            "{out}"
        );
        assert!(p.join(f).exists(), "{f}");
    }
    let png = std::fs::read(p.join("plots/loss.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let svg = p.read("plots/loss.svg");
    assert!(
        svg.contains("t[seed=1]") && svg.contains("t[seed=2]"),
        "{svg}"
    );
    let html = p.read("plots/index.html");
    assert!(
        html.contains("data:image/png;base64,iVBORw0KGgo"),
        "not inlined"
    );
    assert!(!html.contains("src=\"loss.png\""));
    // Targets resolve like `run`'s; --x/--y/--out choose columns and place.
    p.cegraph(&[
        "plots",
        "show",
        "t[seed=2]",
        "--y",
        "acc",
        "--x",
        "loss",
        "--logx",
        "--out",
        "one",
    ])
    .ok();
    let svg = p.read("one/acc.svg");
    assert!(
        svg.contains("t[seed=2]") && !svg.contains("t[seed=1]"),
        "{svg}"
    );
    assert!(svg.contains("loss (log scale)"), "{svg}");
}

#[test]
fn plots_show_draws_a_recorded_experiment_beside_the_workspace() {
    let p = Project::with_pipeline(PIPELINE);
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "t.scale=8", "--name", "big"]).ok();
    p.cegraph(&["plots", "show", "t[seed=1]", "--exp", "big"])
        .ok();
    let svg = p.read("plots/loss.svg");
    assert!(
        svg.contains("\nt[seed=1]\n") && svg.contains("big: t[seed=1]"),
        "{svg}"
    );
    std::fs::remove_dir_all(p.join("plots")).unwrap();
    refused(
        &p,
        &["plots", "show", "--exp", "nope"],
        "no experiment named `nope`",
    );
}

#[test]
fn plots_diff_overlays_a_committed_revision_over_the_workspace() {
    let p = Project::with_pipeline(PIPELINE);
    refused(&p, &["plots", "diff"], "`HEAD` is not a git revision here");
    p.git(&["init", "-q"]);
    p.git(&["add", "cegraph.yaml"]);
    p.git(&["commit", "-qm", "pipeline only"]);
    refused(&p, &["plots", "diff"], "revision `HEAD` has no");
    refused(
        &p,
        &["plots", "diff", "nosuchrev"],
        "`nosuchrev` is not a git revision, a stage or a node",
    );
    p.cegraph(&["run"]).ok();
    p.git(&["add", "cegraph.lock"]);
    p.git(&["commit", "-qm", "scale 4"]);
    p.edit("cegraph.yaml", "scale: 4", "scale: 2");
    p.cegraph(&["run"]).ok();
    // The first argument is a target when it names one: HEAD is the default revision.
    p.cegraph(&["plots", "diff", "t"]).ok();
    let svg = p.read("plots/loss.svg");
    for label in ["HEAD: t[seed=1]", "\nt[seed=1]\n", "HEAD: t[seed=2]"] {
        assert!(svg.contains(label), "{label}: {svg}");
    }
    let html = p.read("plots/index.html");
    assert!(html.contains("HEAD (dashed) vs the workspace"), "{html}");
    // The revision's outputs come from the cache by hash: gone, the error says so.
    std::fs::remove_dir_all(p.join("plots")).unwrap();
    std::fs::remove_dir_all(p.join("cache/objects")).unwrap();
    refused(
        &p,
        &["plots", "diff", "HEAD", "t[seed=1]"],
        "is not in this cache",
    );
}

#[test]
fn plot_column_that_does_not_exist_is_refused_and_nothing_written() {
    let p = copying("{file: out.csv, x: step, y: los}");
    p.cegraph(&["run"]).ok();
    refused(
        &p,
        &["plots", "show"],
        "out.csv: no column `los` (columns: step, loss)",
    );
    p.edit("cegraph.yaml", "y: los", "y: loss");
    refused(&p, &["plots", "show", "--x", "epoch"], "no column `epoch`");
    refused(&p, &["plots", "show", "--y", "acc"], "no column `acc`");
}

#[test]
fn plot_file_missing_is_refused_with_how_to_produce_it() {
    let p = copying("{file: out.csv, x: step, y: loss}");
    refused(
        &p,
        &["plots", "show", "t"],
        "`out.csv` (a series of `t`) cannot be read",
    );
    let e = p.cegraph(&["plots", "show"]).code(2).stderr;
    assert!(e.contains("cegraph run t"), "{e}");
    // A stage's nodes that have not run yet are left out with a note; a node named is not.
    let p = Project::with_pipeline(PIPELINE);
    p.cegraph(&["run", "t[seed=1]"]).ok();
    let run = p.cegraph(&["plots", "show", "t"]).ok();
    assert!(
        run.stderr
            .contains("a series of `t[seed=2]`) cannot be read")
            && run.stderr.contains("not drawn"),
        "{}",
        run.stderr
    );
    assert!(!p.read("plots/loss.svg").contains("t[seed=2]"));
    std::fs::remove_dir_all(p.join("plots")).unwrap();
    refused(&p, &["plots", "show", "t[seed=2]"], "cannot be read");
}

#[test]
fn plot_file_not_among_outs_is_an_error_at_its_place() {
    let p = copying("{file: other.csv, x: step, y: loss}");
    let e = p.cegraph(&["plots", "show"]).code(2).stderr;
    assert!(
        e.contains("cegraph.yaml:7:")
            && e.contains("plot file `other.csv` is not one of the stage's `outs`"),
        "{e}"
    );
    let p = copying("{file: out.csv, x: step, y: []}");
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(
        e.contains("cegraph.yaml:7:") && e.contains("plot `y` names no column"),
        "{e}"
    );
    let p = copying("{file: out.csv, x: step, y: loss, logy: true}");
    let e = p.cegraph(&["run"]).code(2).stderr;
    assert!(e.contains("logy"), "{e}");
    let p = Project::with_pipeline("stages:\n  t:\n    cmd: echo 1 > o.txt\n    outs: [o.txt]\n");
    refused(&p, &["plots", "show"], "no stage of cegraph.yaml has plots");
    refused(&p, &["plots", "show", "t"], "`t` has no plots");
}

#[test]
fn non_numeric_plot_values_are_refused_naming_row_and_column() {
    let p = copying("{file: out.csv, x: step, y: loss}");
    p.write("src.csv", "step,loss\n1,2\n2,low\n");
    p.cegraph(&["run"]).ok();
    refused(
        &p,
        &["plots", "show"],
        "out.csv: line 3, column `loss`: `low` is not a number",
    );
}

#[test]
fn nan_and_inf_plot_points_are_skipped_with_a_note() {
    let p = copying("{file: out.csv, x: step, y: loss, log_y: true}");
    p.write("src.csv", "step,loss\n1,2\n2,nan\n3,inf\n4,\n5,0.5\n");
    p.cegraph(&["run"]).ok();
    let run = p.cegraph(&["plots", "show"]).ok();
    assert!(
        run.stderr
            .contains("note: t: 2 point(s) of `loss` with NaN or infinite values skipped"),
        "{}",
        run.stderr
    );
    assert!(
        p.read("plots/index.html")
            .contains("NaN or infinite values skipped")
    );
    assert!(p.read("plots/loss.svg").contains("loss (log scale)"));
}

#[test]
fn plots_show_on_the_example_overlays_its_experiments() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: python3 is not installed; the experiments example needs it");
        return;
    }
    let p = Project::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/exp");
    for f in ["cegraph.yaml", "params.yaml", "train.py"] {
        p.write(f, &std::fs::read_to_string(format!("{dir}/{f}")).unwrap());
    }
    p.cegraph(&["run"]).ok();
    p.cegraph(&["run", "-S", "train.lr=0.05"]).ok();
    p.cegraph(&["plots", "show", "--exp", "exp-1"]).ok();
    let svg = p.read("plots/loss.svg");
    // The workspace line is the lock file's result, not the experiment's left in out/.
    assert!(
        svg.contains("\ntrain\n")
            && svg.contains("exp-1: train")
            && svg.contains("loss (log scale)"),
        "{svg}"
    );
    // Two data lines (more than a legend stroke's two points), at different places: the
    // workspace's is not the experiment's output that `run -S` left in out/train.
    let data: std::collections::BTreeSet<&str> = svg
        .split("points=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .filter(|points| points.split_whitespace().count() > 2)
        .collect();
    assert_eq!(data.len(), 2, "{svg}");
}

#[test]
fn plots_read_a_series_inside_an_output_directory_at_a_revision() {
    let p = Project::with_pipeline(
        "stages:\n  t:\n    cmd: mkdir -p out/d && printf 'step,loss\\n1,%s\\n2,1\\n' ${params.first} > out/d/loss.csv\n    params: {first: 3}\n    outs: [out/d]\n    plots:\n      - {file: out/d/loss.csv, x: step, y: loss}\n",
    );
    p.git(&["init", "-q"]);
    p.cegraph(&["run"]).ok();
    p.git(&["add", "cegraph.yaml", "cegraph.lock"]);
    p.git(&["commit", "-qm", "first 3"]);
    p.edit("cegraph.yaml", "first: 3", "first: 5");
    p.cegraph(&["run"]).ok();
    p.cegraph(&["plots", "diff", "HEAD"]).ok();
    let svg = p.read("plots/loss.svg");
    assert!(svg.contains("HEAD: t") && svg.contains("\nt\n"), "{svg}");
}
