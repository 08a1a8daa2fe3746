//! What the command line promises: exit codes, a closed stdout, read-only commands that
//! create nothing.

use std::io::Read;
use std::process::Stdio;

use crate::project::{Project, matrix_project};

#[test]
fn help_lists_the_exit_codes() {
    let p = Project::new();
    let out = p.cegraph(&["--help"]).ok();
    for line in ["Exit codes:", "0 ", "1 ", "2 ", "130"] {
        assert!(out.stdout.contains(line), "{line:?} in\n{}", out.stdout);
    }
    // A usage error is 2, as the help says.
    p.cegraph(&["status", "--no-such-flag"]).code(2);
}

#[test]
fn pipeline_that_cannot_be_read_exits_2() {
    let p = Project::new();
    std::fs::create_dir(p.join("dir.yaml")).unwrap();
    let out = p.cegraph(&["status", "dir.yaml"]).code(2);
    assert!(
        out.stderr.contains("cannot read the pipeline file"),
        "{}",
        out.stderr
    );
}

#[test]
fn closed_stdout_exits_quietly() {
    // Far more output than a pipe holds, so the writer meets the closed end.
    let values: Vec<String> = (0..4000).map(|i| i.to_string()).collect();
    let p = Project::with_pipeline(&format!(
        "stages:\n  s:\n    matrix: {{i: [{}]}}\n    cmd: echo ${{i}} > ${{outs[0]}}\n    outs: [\"o/${{i}}\"]\n",
        values.join(", ")
    ));
    for cmd in [&["status"][..], &["dag"], &["dag", "--format", "dot"]] {
        let mut child = p
            .command(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The read end is dropped here, like `| head -c 16`.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{cmd:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{cmd:?}: {stderr}");
        assert!(stderr.is_empty(), "{cmd:?}: {stderr}");
    }
}

#[test]
fn status_does_not_create_the_cache() {
    let p = matrix_project();
    p.cegraph(&["status"]).code(1);
    p.cegraph(&["dag"]).ok();
    p.cegraph(&["show", "prepare"]).ok();
    p.cegraph(&["verify"]).code(1);
    assert!(
        !p.join("cache").exists(),
        "a read-only command created cache/"
    );
    // And with the cache elsewhere.
    p.cegraph(&["status", "--cache", "elsewhere"]).code(1);
    assert!(!p.join("elsewhere").exists());
    // Once it exists, they read it.
    p.cegraph(&["run"]).ok();
    p.cegraph(&["status"]).ok();
    p.cegraph(&["verify"]).ok();
}
