//! The kinds' fingerprints (build.rs runs [`super::source_fingerprint`]) cover their code:
//! one changed byte anywhere a kind reaches changes its fingerprint, and only its.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::source_fingerprint::{Fingerprints, WORKER_DIR, compute};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of everything the fingerprints read, to edit freely.
fn copy_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let worker = format!("{WORKER_DIR}/src");
    for sub in ["src", "assets", worker.as_str()] {
        for e in walkdir::WalkDir::new(root().join(sub)) {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root()).unwrap();
            let to = dir.path().join(rel);
            if e.file_type().is_dir() {
                std::fs::create_dir_all(&to).unwrap();
            } else {
                std::fs::copy(e.path(), &to).unwrap();
            }
        }
    }
    let worker_manifest = format!("{WORKER_DIR}/Cargo.toml");
    for f in ["Cargo.toml", "Cargo.lock", worker_manifest.as_str()] {
        std::fs::copy(root().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn hashes(p: &Fingerprints) -> BTreeMap<String, [u8; 32]> {
    p.kinds.iter().map(|(k, v)| (k.clone(), v.hash)).collect()
}

/// Flip one byte of `rel` (a letter inside its first doc comment: the code still compiles)
/// and return the kinds whose fingerprint changed.
fn changed_by(tree: &Path, before: &BTreeMap<String, [u8; 32]>, rel: &str) -> Vec<String> {
    let path = tree.join(rel);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.iter().position(|b| b.is_ascii_lowercase()).unwrap();
    bytes[at] = bytes[at].to_ascii_uppercase();
    std::fs::write(&path, bytes).unwrap();
    let after = hashes(&compute(tree).unwrap());
    before
        .iter()
        .filter(|(k, h)| after.get(*k) != Some(h))
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn one_byte_of_analysis_code_changes_fit_ceg_and_report_fingerprints_only() {
    let tree = copy_tree();
    let before = hashes(&compute(tree.path()).unwrap());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["eval", "fit_ceg", "report", "source", "tokenize", "train"]
    );
    assert_eq!(
        changed_by(tree.path(), &before, "src/analysis/crossing.rs"),
        ["fit_ceg", "report"]
    );
}

#[test]
fn one_byte_of_worker_code_changes_train_and_eval_fingerprints_only() {
    let tree = copy_tree();
    let before = hashes(&compute(tree.path()).unwrap());
    let model = format!("{WORKER_DIR}/src/model.rs");
    assert_eq!(changed_by(tree.path(), &before, &model), ["eval", "train"]);
}

#[test]
fn one_byte_of_corpus_code_changes_source_but_not_tokenize() {
    let tree = copy_tree();
    let before = hashes(&compute(tree.path()).unwrap());
    let changed = changed_by(tree.path(), &before, "src/ml/corpus.rs");
    assert!(changed.contains(&"source".to_string()), "{changed:?}");
    assert!(!changed.contains(&"tokenize".to_string()), "{changed:?}");
}

#[test]
fn the_report_font_and_plotters_version_are_in_the_report_fingerprint() {
    let tree = copy_tree();
    let before = hashes(&compute(tree.path()).unwrap());
    let font = "assets/fonts/DejaVuSans-subset.ttf";
    let mut bytes = std::fs::read(tree.path().join(font)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(tree.path().join(font), bytes).unwrap();
    let after = hashes(&compute(tree.path()).unwrap());
    assert_ne!(before["report"], after["report"]);
    assert_eq!(before["tokenize"], after["tokenize"]);

    let lock = std::fs::read_to_string(tree.path().join("Cargo.lock")).unwrap();
    let plotters = lock.find("name = \"plotters\"\nversion = \"").unwrap();
    let mut lock = lock.into_bytes();
    let digit = plotters + "name = \"plotters\"\nversion = \"".len();
    lock[digit] = if lock[digit] == b'9' { b'8' } else { b'9' };
    std::fs::write(tree.path().join("Cargo.lock"), lock).unwrap();
    let after2 = hashes(&compute(tree.path()).unwrap());
    assert_ne!(after["report"], after2["report"]);
    assert_eq!(after["tokenize"], after2["tokenize"]);
}

/// An `impl` block for a kind's type written in a module nothing names still reaches the
/// kind (Rust lets an impl live anywhere in the crate).
#[test]
fn an_impl_in_an_unreferenced_module_is_in_the_fingerprint() {
    let tree = copy_tree();
    let before = hashes(&compute(tree.path()).unwrap());
    std::fs::write(
        tree.path().join("src/rng_extra.rs"),
        "use crate::analysis::table::CegTable;\nimpl CegTable {\n    pub fn extra(&self) {}\n}\n",
    )
    .unwrap();
    let after = hashes(&compute(tree.path()).unwrap());
    assert_ne!(before["fit_ceg"], after["fit_ceg"]);
    assert_eq!(before["tokenize"], after["tokenize"]);
}

#[test]
fn compiled_fingerprints_are_those_of_this_source_tree() {
    let prints = compute(&root()).unwrap();
    let catalog = crate::stages::catalog();
    for name in catalog.names() {
        let kind = catalog.get(name).unwrap();
        let k = &prints.kinds[name];
        assert_eq!(kind.fingerprint(), k.hash, "{name}");
        assert_eq!(kind.runs_in_worker(), k.torch, "{name}");
    }
    assert_eq!(prints.build, crate::kind::fingerprints::BUILD);
    let report = &prints.kinds["report"];
    for f in [
        "src/stages/report.rs",
        "src/report/charts.rs",
        "src/analysis/crossing.rs",
        "assets/fonts/DejaVuSans-subset.ttf",
    ] {
        assert!(
            report.files.iter().any(|x| x == f),
            "{f}: {:?}",
            report.files
        );
    }
    assert!(report.crates.iter().any(|c| c.starts_with("plotters ")));
    let tokenize = &prints.kinds["tokenize"];
    assert!(
        !tokenize
            .files
            .iter()
            .any(|f| f.starts_with("src/analysis/")),
        "{:?}",
        tokenize.files
    );
    let train = &prints.kinds["train"];
    assert!(train.crates.iter().any(|c| c.starts_with("tch ")));
    assert!(
        train
            .files
            .iter()
            .any(|f| f.ends_with("cegraph-torch/src/train.rs"))
    );
}
