//! Everyday commands: completions, init, list, log.

use crate::project::{Project, matrix_project};

#[test]
fn completions_cover_bash_zsh_and_fish() {
    let p = Project::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = p.cegraph(&["completions", shell]).ok();
        assert!(
            out.stdout.contains("force-downstream"),
            "{shell}: {}",
            out.stdout
        );
        assert!(out.stdout.contains("completions"), "{shell}");
    }
    p.cegraph(&["completions", "tcsh"]).code(2);
}

#[test]
fn init_writes_a_runnable_pipeline_and_refuses_to_overwrite() {
    let p = Project::new();
    p.write(".gitignore", "target\nout/\n");
    let out = p.cegraph(&["init"]).ok();
    assert!(out.stdout.contains("wrote cegraph.yaml"), "{}", out.stdout);
    assert_eq!(p.read(".gitignore"), "target\nout/\ncache/\n");
    // The example runs as written.
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out/hello.txt"), "hello from cegraph\n");
    p.write("cegraph.yaml", "# mine\nstages: {}\n");
    let again = p.cegraph(&["init"]).code(2);
    assert!(
        again.stderr.contains("cegraph.yaml already exists"),
        "{}",
        again.stderr
    );
    assert_eq!(p.read("cegraph.yaml"), "# mine\nstages: {}\n");
    assert_eq!(p.read(".gitignore"), "target\nout/\ncache/\n");
}

#[test]
fn list_shows_stages_nodes_kind_command_and_state() {
    let p = matrix_project();
    p.cegraph(&["run", "prepare"]).ok();
    let out = p.cegraph(&["list"]).ok();
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn log_lists_past_runs_newest_first() {
    let p = matrix_project();
    p.cegraph(&["run", "prepare"]).ok();
    p.cegraph(&["run"]).ok();
    let out = p.cegraph(&["log"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("WHEN"), "{}", out.stdout);
    assert_eq!(lines.len(), 7, "{}", out.stdout);
    // prepare ran first, so it is last.
    assert!(lines[6].contains(" prepare "), "{}", out.stdout);
    assert!(lines[1].contains(" report "), "{}", out.stdout);
    assert!(
        lines.iter().skip(1).all(|l| l.contains("ok (locked)")),
        "{}",
        out.stdout
    );
    // A changed param makes a second run of train's nodes; the old ones stay listed.
    p.edit("cegraph.yaml", "lr: 0.001", "lr: 0.002");
    p.cegraph(&["run", "train[variant=rope,seed=1]"]).ok();
    let node = p.cegraph(&["log", "train[variant=rope,seed=1]"]).ok();
    let rows: Vec<&str> = node.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", node.stdout);
    assert!(
        rows[0].contains("ok (locked)") && !rows[1].contains("locked"),
        "{}",
        node.stdout
    );
}
