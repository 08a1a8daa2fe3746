//! The cache is cegraph's: no stage may write into it (or over it), nor read from it.

use crate::project::Project;

#[track_caller]
fn refused(p: &Project, args: &[&str], at: &str, what: &str) {
    let out = p.cegraph(args).code(2);
    assert!(out.stderr.contains(at), "expected {at} in\n{}", out.stderr);
    assert!(
        out.stderr.contains(what),
        "expected {what:?} in\n{}",
        out.stderr
    );
}

#[test]
fn stage_output_inside_cache_is_refused() {
    let p = Project::with_pipeline(
        "stages:\n  a:\n    cmd: echo x > ${outs[0]}\n    outs: [out/ok.txt, cache/evil.txt]\n",
    );
    refused(
        &p,
        &["dag"],
        "cegraph.yaml:4:24",
        "output `cache/evil.txt` is inside the cache directory",
    );
    refused(
        &p,
        &["run"],
        "cegraph.yaml:4:24",
        "inside the cache directory",
    );
    assert!(!p.join("cache/evil.txt").exists());
    // Written another way, it is the same place.
    p.write(
        "cegraph.yaml",
        "stages:\n  a:\n    cmd: echo x > ${outs[0]}\n    outs: [out/../cache/./objects/x]\n",
    );
    refused(
        &p,
        &["status"],
        "cegraph.yaml:4:12",
        "inside the cache directory",
    );
}

#[test]
fn stage_output_inside_a_moved_cache_is_refused() {
    let p = Project::with_pipeline(
        "stages:\n  a:\n    cmd: echo x > ${outs[0]}\n    outs: [store/evil.txt]\n",
    );
    p.cegraph(&["dag"]).ok();
    refused(
        &p,
        &["dag", "--cache", "store"],
        "cegraph.yaml:4:12",
        "inside the cache directory",
    );
    let out = p
        .command(&["status"])
        .env("CEGRAPH_CACHE", p.join("store"))
        .output()
        .unwrap();
    let out = crate::project::Run::from(out).code(2);
    assert!(
        out.stderr.contains("inside the cache directory"),
        "{}",
        out.stderr
    );
    // An output that contains the cache would overwrite it when restored.
    refused(
        &p,
        &["dag", "--cache", "store/evil.txt/c"],
        "cegraph.yaml:4:12",
        "contains the cache directory",
    );
}

#[test]
fn stage_output_through_a_symlink_into_the_cache_is_refused() {
    let p = Project::with_pipeline(
        "stages:\n  a:\n    cmd: echo x > ${outs[0]}\n    outs: [c/evil.txt]\n",
    );
    std::fs::create_dir(p.join("cache")).unwrap();
    std::os::unix::fs::symlink(p.join("cache"), p.join("c")).unwrap();
    refused(
        &p,
        &["dag"],
        "cegraph.yaml:4:12",
        "inside the cache directory",
    );
}

#[test]
fn dep_inside_cache_is_refused() {
    let p = Project::with_pipeline(
        "stages:\n  a:\n    cmd: cat ${deps} > ${outs[0]}\n    deps: [data.txt, cache/stat.bin]\n    outs: [o.txt]\n",
    );
    p.write("data.txt", "x");
    refused(
        &p,
        &["dag"],
        "cegraph.yaml:4:22",
        "dep `cache/stat.bin` is inside the cache directory",
    );
}
