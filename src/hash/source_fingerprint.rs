//! The fingerprint of each built-in kind: a blake3 over the source files that implement it and
//! the exact versions (from Cargo.lock) of the crates they use. `build.rs` includes this file
//! with `#[path]` and bakes the result into the binary; unit tests run it over a copy of the
//! tree. Only `std` and `blake3`, so both can compile it.
//!
//! Which files: a kind is a file `src/stages/<stem>.rs` holding `impl StageKind for`. Its files
//! are the closure of that file under "reaches": a path `crate::…`, `super::…`, `self::…` or
//! `<child module>::…` (in `use` or in code) reaches the module it names (longest prefix that
//! is a module); `include_bytes!`/`include_str!`/`include!` and `#[path]` reach their file;
//! and a file that writes `impl T` / `impl Tr for T` for a `T` of another module is reached
//! whenever that module is (an impl may live anywhere in a crate). A kind that calls
//! `run_with_torch` runs in `crates/cegraph-torch`: every file of that crate's library is added
//! (not `src/bin`, the process shell), with the root-crate modules its `cegraph::…` paths reach. Crates: every dependency named by
//! a path in those files, with its `Cargo.toml` line (features) and the Cargo.lock versions of
//! it and everything it depends on.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The worker crate, relative to the workspace root.
pub const WORKER_DIR: &str = "crates/cegraph-torch";

/// What [`compute`] found.
pub struct Fingerprints {
    /// Kind module stem (`src/stages/<stem>.rs`) → its fingerprint.
    pub kinds: BTreeMap<String, KindPrint>,
    /// Every file of `src/`, `Cargo.toml` and `Cargo.lock`: the build's own identity.
    pub build: [u8; 32],
    /// Every file and directory read, for `cargo:rerun-if-changed`.
    pub read: BTreeSet<PathBuf>,
}

pub struct KindPrint {
    pub hash: [u8; 32],
    /// Runs in `cegraph-worker` (libtorch).
    pub torch: bool,
    /// Workspace-relative files hashed, sorted.
    pub files: Vec<String>,
    /// `name version` of every crate hashed, sorted.
    pub crates: Vec<String>,
}

/// Fingerprints of every kind under the workspace `root`.
pub fn compute(root: &Path) -> Result<Fingerprints, String> {
    let mut read = BTreeSet::new();
    let main = Crate::load(root, "", &mut read)?;
    let worker = Crate::load(root, WORKER_DIR, &mut read)?;
    let lock_text = read_text(&root.join("Cargo.lock"), &mut read)?;
    let lock = parse_lock(&lock_text);
    let mut kinds = BTreeMap::new();
    for (rel, text) in &main.files {
        let Some(stem) = rel
            .strip_prefix("src/stages/")
            .and_then(|s| s.strip_suffix(".rs"))
        else {
            continue;
        };
        let toks = lex(text);
        if stem.contains('/') || !has_seq(&toks, &["impl", "StageKind", "for"]) {
            continue;
        }
        let torch = toks.iter().any(|t| t == "run_with_torch");
        let mut files = main.closure(std::slice::from_ref(rel));
        let mut worker_files = Vec::new();
        if torch {
            // The worker's library; its `src/bin` is the process shell (like `cegraph`'s CLI
            // for the other kinds), not the kinds' code.
            worker_files = worker
                .files
                .keys()
                .filter(|f| worker.module_of(f).is_some())
                .cloned()
                .collect();
            files.extend(main.closure(&worker.cegraph_roots(&main)));
        }
        let mut used = main.crates_used(&files);
        used.extend(worker.crates_used(&worker_files));
        files.extend(worker_files);
        let mut h = blake3::Hasher::new_derive_key("cegraph kind fingerprint v1");
        for f in &files {
            let bytes = main
                .files
                .get(f)
                .or_else(|| worker.files.get(f))
                .map(|t| t.as_bytes().to_vec())
                .map_or_else(|| read_bytes(&root.join(f), &mut read), Ok)?;
            put(&mut h, f.as_bytes());
            put(&mut h, &bytes);
        }
        let crates = lock.closure(used.values().map(|(pkg, _)| pkg.as_str()));
        for (_, line) in used.values() {
            put(&mut h, line.as_bytes());
        }
        for c in &crates {
            put(&mut h, c.as_bytes());
        }
        kinds.insert(
            stem.to_string(),
            KindPrint {
                hash: *h.finalize().as_bytes(),
                torch,
                files: files.into_iter().collect(),
                crates,
            },
        );
    }
    let mut h = blake3::Hasher::new_derive_key("cegraph build fingerprint v1");
    for (rel, text) in &main.files {
        put(&mut h, rel.as_bytes());
        put(&mut h, text.as_bytes());
    }
    put(&mut h, main.manifest.as_bytes());
    put(&mut h, lock_text.as_bytes());
    Ok(Fingerprints {
        kinds,
        build: *h.finalize().as_bytes(),
        read,
    })
}

fn put(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn read_text(p: &Path, read: &mut BTreeSet<PathBuf>) -> Result<String, String> {
    read.insert(p.to_path_buf());
    fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn read_bytes(p: &Path, read: &mut BTreeSet<PathBuf>) -> Result<Vec<u8>, String> {
    read.insert(p.to_path_buf());
    fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// One crate's sources: its `.rs` files by workspace-relative path, and its module tree.
struct Crate {
    /// `""` for the root crate, else e.g. `crates/cegraph-torch/`.
    prefix: String,
    files: BTreeMap<String, String>,
    /// Module path → file.
    modules: BTreeMap<Vec<String>, String>,
    /// Dependency name (as written in paths, `-` → `_`) → (package name, its Cargo.toml line).
    deps: BTreeMap<String, (String, String)>,
    manifest: String,
}

impl Crate {
    fn load(root: &Path, dir: &str, read: &mut BTreeSet<PathBuf>) -> Result<Crate, String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let base = root.join(dir);
        let mut files = BTreeMap::new();
        read.insert(base.join("src"));
        collect_rs(&base.join("src"), &format!("{prefix}src"), &mut files, read)?;
        let mut modules = BTreeMap::new();
        for rel in files.keys() {
            let inner = &rel[prefix.len() + "src/".len()..];
            if let Some(m) = module_path(inner) {
                modules.insert(m, rel.clone());
            }
        }
        let manifest = read_text(&base.join("Cargo.toml"), read)?;
        Ok(Crate {
            prefix,
            files,
            modules,
            deps: manifest_deps(&manifest),
            manifest,
        })
    }

    /// The module a file defines (`a/b.rs` and `a/b/mod.rs` → `[a, b]`); `None` for binaries.
    fn module_of(&self, rel: &str) -> Option<Vec<String>> {
        module_path(rel.strip_prefix(&self.prefix)?.strip_prefix("src/")?)
    }

    /// Every file reachable from `roots` (see the module docs for the rule).
    fn closure(&self, roots: &[String]) -> BTreeSet<String> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (rel, text) in &self.files {
            let refs = self.references(rel, text);
            edges.entry(rel.clone()).or_default().extend(refs.reaches);
            // An impl for another module's type travels with that module.
            for target in refs.impls_for {
                edges.entry(target).or_default().insert(rel.clone());
            }
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = roots.to_vec();
        while let Some(f) = todo.pop() {
            if !seen.insert(f.clone()) {
                continue;
            }
            todo.extend(edges.get(&f).into_iter().flatten().cloned());
        }
        seen
    }

    /// Root-crate files the worker's `cegraph::…` paths reach.
    fn cegraph_roots(&self, main: &Crate) -> Vec<String> {
        let mut out = Vec::new();
        let lib = self
            .files
            .iter()
            .filter(|(f, _)| self.module_of(f).is_some());
        for (_, text) in lib {
            for path in paths(&lex(text)) {
                if path.first().map(String::as_str) == Some("cegraph")
                    && let Some(f) = main.longest_module(&path[1..])
                {
                    out.push(f);
                }
            }
        }
        out
    }

    /// Dependencies named by a path in `files`.
    fn crates_used<'a>(
        &self,
        files: impl IntoIterator<Item = &'a String>,
    ) -> BTreeMap<String, (String, String)> {
        let mut used = BTreeMap::new();
        for f in files {
            let Some(text) = self.files.get(f) else {
                continue;
            };
            for path in paths(&lex(text)) {
                if let Some(d) = path.first().and_then(|s| self.deps.get(s)) {
                    used.insert(path[0].clone(), d.clone());
                }
            }
        }
        used
    }

    fn longest_module(&self, abs: &[String]) -> Option<String> {
        (0..=abs.len())
            .rev()
            .find_map(|n| self.modules.get(&abs[..n]).cloned())
    }

    fn references(&self, rel: &str, text: &str) -> Refs {
        let toks = lex(text);
        let here = self.module_of(rel);
        let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
        let mut refs = Refs::default();
        let mut imported: BTreeMap<String, String> = BTreeMap::new();
        let (scope_of, scopes) = inline_modules(&toks);
        for (at, path) in paths_at(&toks) {
            // Inside `mod tests { … }`, `super` is this file's module, and so on.
            let inner: Option<Vec<String>> = here
                .as_ref()
                .map(|h| h.iter().chain(&scopes[scope_of[at]]).cloned().collect());
            if let Some(f) = self.resolve(inner.as_deref(), &path) {
                if let Some(last) = path.last() {
                    imported.insert(last.clone(), f.clone());
                }
                refs.reaches.insert(f);
            }
        }
        for lit in included_files(&toks) {
            refs.reaches.insert(normalize(&dir.join(lit)));
        }
        let locals = local_types(&toks);
        for (trait_path, ty) in impl_headers(&toks) {
            let target = match &ty {
                Some(t) if t.len() == 1 && locals.contains(&t[0]) => None,
                Some(t) if t.len() == 1 => imported.get(&t[0]).cloned(),
                Some(t) => self.resolve(here.as_deref(), t),
                None => None,
            };
            // A foreign or unknown type: the impl travels with its trait instead.
            let target = target.or_else(|| match (&ty, &trait_path) {
                (Some(t), Some(tr)) if !(t.len() == 1 && locals.contains(&t[0])) => {
                    if tr.len() == 1 {
                        imported.get(&tr[0]).cloned()
                    } else {
                        self.resolve(here.as_deref(), tr)
                    }
                }
                _ => None,
            });
            if let Some(t) = target.filter(|t| t != rel) {
                refs.impls_for.insert(t);
            }
        }
        refs
    }

    /// The file a path in module `here` names, if it names a module of this crate.
    fn resolve(&self, here: Option<&[String]>, path: &[String]) -> Option<String> {
        let here = here.unwrap_or(&[]);
        let first = path.first()?.as_str();
        let abs: Vec<String> = match first {
            "crate" => path[1..].to_vec(),
            "self" => here.iter().chain(&path[1..]).cloned().collect(),
            "super" => {
                let ups = path.iter().take_while(|s| *s == "super").count();
                let base = &here[..here.len().checked_sub(ups)?];
                base.iter().chain(&path[ups..]).cloned().collect()
            }
            _ => {
                let mut child = here.to_vec();
                child.push(first.to_string());
                if !self.modules.contains_key(&child) {
                    return None;
                }
                here.iter().chain(path).cloned().collect()
            }
        };
        self.longest_module(&abs)
    }
}

#[derive(Default)]
struct Refs {
    reaches: BTreeSet<String>,
    /// Files whose types this file implements something for.
    impls_for: BTreeSet<String>,
}

fn collect_rs(
    dir: &Path,
    rel: &str,
    out: &mut BTreeMap<String, String>,
    read: &mut BTreeSet<PathBuf>,
) -> Result<(), String> {
    let rd = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let child = format!("{rel}/{name}");
        if path.is_dir() {
            collect_rs(&path, &child, out, read)?;
        } else if name.ends_with(".rs") {
            out.insert(child, read_text(&path, read)?);
        }
    }
    Ok(())
}

fn module_path(inner: &str) -> Option<Vec<String>> {
    if inner == "main.rs" || inner.starts_with("bin/") {
        return None;
    }
    let stem = inner.strip_suffix(".rs")?;
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    Some(parts)
}

/// `a/./b/../c` → `a/c`, as a `/`-separated string.
fn normalize(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    out.join("/")
}

/// `[dependencies]`-like sections of a manifest: name → (package, the line).
fn manifest_deps(manifest: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            // Build and dev dependencies never reach the kinds' code.
            in_deps = t.ends_with("dependencies]") && !t.contains("dev-") && !t.contains("build-");
            continue;
        }
        // A path dependency (the worker's `cegraph`) is hashed as source, not as a crate.
        if !in_deps || t.starts_with('#') || t.contains("path =") {
            continue;
        }
        let Some((key, _)) = t.split_once('=') else {
            continue;
        };
        let key = key.trim().split('.').next().unwrap_or("").trim();
        if key.is_empty() {
            continue;
        }
        let package = t
            .split("package")
            .nth(1)
            .and_then(|s| s.split('"').nth(1))
            .unwrap_or(key);
        out.insert(key.replace('-', "_"), (package.to_string(), t.to_string()));
    }
    out
}

/// Cargo.lock: package name → [(version, dependency names)].
struct Lock(BTreeMap<String, Vec<(String, Vec<String>)>>);

fn parse_lock(text: &str) -> Lock {
    let mut pkgs: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for block in text.split("[[package]]").skip(1) {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(k)?.trim().strip_prefix('=').map(str::trim))
                .map(|v| v.trim_matches('"').to_string())
        };
        let (Some(name), Some(version)) = (field("name "), field("version ")) else {
            continue;
        };
        let deps = block
            .split_once("dependencies = [")
            .map(|(_, rest)| rest.split(']').next().unwrap_or(""))
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').strip_prefix('"'))
            .filter_map(|l| l.strip_suffix('"'))
            .map(str::to_string)
            .collect();
        pkgs.entry(name).or_default().push((version, deps));
    }
    Lock(pkgs)
}

impl Lock {
    /// `name version` of these packages and everything they depend on, sorted.
    fn closure<'a>(&self, roots: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(String, Option<String>)> =
            roots.map(|r| (r.to_string(), None)).collect();
        while let Some((name, version)) = todo.pop() {
            for (v, deps) in self.0.get(&name).into_iter().flatten() {
                if version.as_ref().is_some_and(|want| want != v) {
                    continue;
                }
                if seen.insert(format!("{name} {v}")) {
                    for d in deps {
                        let mut parts = d.split_whitespace();
                        let n = parts.next().unwrap_or("").to_string();
                        todo.push((n, parts.next().map(str::to_string)));
                    }
                }
            }
        }
        seen.into_iter().collect()
    }
}

// ---- a small Rust lexer: enough to find paths, impls and included files ----

/// Identifiers, `::`, string literals (as `"…"`, unescaped) and single punctuation
/// characters; comments dropped.
fn lex(src: &str) -> Vec<String> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' || ((ch == 'r' || ch == 'b') && raw_start(&c, i).is_some()) {
            let (lit, end) = string_lit(&c, i);
            out.push(format!("\"{lit}\""));
            i = end;
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(c[start..i].iter().collect());
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else if ch.is_whitespace() || ch.is_ascii_digit() {
            i += 1;
        } else {
            out.push(ch.to_string());
            i += 1;
        }
    }
    out
}

/// At `r"`, `r#"`, `b"`, `br#"`: the index of the opening quote and the number of `#`.
fn raw_start(c: &[char], i: usize) -> Option<(usize, usize, bool)> {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    let raw = c.get(j) == Some(&'r');
    if raw {
        j += 1;
    }
    let mut hashes = 0;
    while raw && c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"') && j > i).then_some((j, hashes, raw))
}

/// The literal starting at `i` and the index after it.
fn string_lit(c: &[char], i: usize) -> (String, usize) {
    let (open, hashes, raw) = raw_start(c, i).unwrap_or((i, 0, false));
    let mut j = open + 1;
    let mut s = String::new();
    while j < c.len() {
        if !raw && c[j] == '\\' {
            if let Some(&n) = c.get(j + 1) {
                s.push(n);
            }
            j += 2;
            continue;
        }
        if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
            return (s, j + 1 + hashes);
        }
        s.push(c[j]);
        j += 1;
    }
    (s, j)
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

fn has_seq(toks: &[String], seq: &[&str]) -> bool {
    toks.windows(seq.len())
        .any(|w| w.iter().zip(seq).all(|(a, b)| a == b))
}

/// Every `a::b::c` path (and each branch of `a::{b, c::d}`), as segments.
fn paths(toks: &[String]) -> Vec<Vec<String>> {
    paths_at(toks).into_iter().map(|(_, p)| p).collect()
}

/// [`paths`], each with the index of the token it starts at.
fn paths_at(toks: &[String]) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let starts = is_ident(&toks[i])
            && toks.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || toks[i - 1] != "::");
        if starts {
            let mut found = Vec::new();
            let start = i;
            i = path_at(toks, i, Vec::new(), &mut found);
            out.extend(found.into_iter().map(|p| (start, p)));
        } else {
            i += 1;
        }
    }
    out
}

/// For each token, the inline modules (`mod tests { … }`) it sits in: an index into the
/// returned list of module paths (relative to the file's module).
fn inline_modules(toks: &[String]) -> (Vec<usize>, Vec<Vec<String>>) {
    let mut scopes: Vec<Vec<String>> = vec![Vec::new()];
    let mut scope_of = Vec::with_capacity(toks.len());
    // (scope id, brace depth at which it closes)
    let mut stack: Vec<(usize, usize)> = vec![(0, usize::MAX)];
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        let current = stack.last().map_or(0, |s| s.0);
        scope_of.push(current);
        match t.as_str() {
            "{" => {
                let opens_mod = i >= 2 && toks[i - 2] == "mod" && is_ident(&toks[i - 1]);
                depth += 1;
                if opens_mod {
                    let mut path = scopes[current].clone();
                    path.push(toks[i - 1].clone());
                    scopes.push(path);
                    stack.push((scopes.len() - 1, depth));
                }
            }
            "}" => {
                if stack.last().is_some_and(|s| s.1 == depth) {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    (scope_of, scopes)
}

/// Parse the path at `i` under `prefix`; push what it names; return the index after it.
fn path_at(
    toks: &[String],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut segs = prefix;
    while i < toks.len() && is_ident(&toks[i]) {
        segs.push(toks[i].clone());
        i += 1;
        if toks.get(i).is_some_and(|t| t == "::") {
            i += 1;
            if toks.get(i).is_some_and(|t| t == "{") {
                i += 1;
                while i < toks.len() && toks[i] != "}" {
                    if is_ident(&toks[i]) {
                        if toks[i] == "self" {
                            out.push(segs.clone());
                            i += 1;
                        } else {
                            i = path_at(toks, i, segs.clone(), out);
                        }
                    } else {
                        i += 1;
                    }
                }
                return i + 1;
            }
        } else {
            break;
        }
    }
    out.push(segs);
    i
}

/// String literals of `include_bytes!`, `include_str!`, `include!` and `#[path = …]`.
fn included_files(toks: &[String]) -> Vec<String> {
    let lit = |t: &String| t.strip_prefix('"')?.strip_suffix('"').map(str::to_string);
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let macro_arg = matches!(t.as_str(), "include_bytes" | "include_str" | "include")
            && toks.get(i + 1).is_some_and(|x| x == "!")
            && toks.get(i + 2).is_some_and(|x| x == "(");
        if macro_arg && let Some(l) = toks.get(i + 3).and_then(lit) {
            out.push(l);
        }
        let path_attr = t == "path"
            && i >= 2
            && toks[i - 1] == "["
            && toks[i - 2] == "#"
            && toks.get(i + 1).is_some_and(|x| x == "=");
        if path_attr && let Some(l) = toks.get(i + 2).and_then(lit) {
            out.push(l);
        }
    }
    out
}

/// Names this file defines as types.
fn local_types(toks: &[String]) -> BTreeSet<String> {
    toks.windows(2)
        .filter(|w| {
            matches!(
                w[0].as_str(),
                "struct" | "enum" | "union" | "type" | "trait"
            )
        })
        .map(|w| w[1].clone())
        .collect()
}

/// `(trait, type)` of every `impl` header: `impl Tr for T` and `impl T` (generics skipped).
#[allow(clippy::type_complexity)]
fn impl_headers(toks: &[String]) -> Vec<(Option<Vec<String>>, Option<Vec<String>>)> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        // Only item-position impls, not `-> impl Trait` or `x: impl Trait`.
        let item = i == 0 || matches!(toks[i - 1].as_str(), "}" | ";" | "]" | "{" | "unsafe");
        if t != "impl" || !item {
            continue;
        }
        let mut j = i + 1;
        let mut depth = 0;
        let mut parts: Vec<Vec<String>> = vec![Vec::new()];
        while j < toks.len() {
            let x = toks[j].as_str();
            match x {
                "<" => depth += 1,
                ">" => depth -= 1,
                "{" | ";" | "where" if depth <= 0 => break,
                "for" if depth == 0 => parts.push(Vec::new()),
                _ if depth == 0 && (is_ident(x) || x == "::") => {
                    if let Some(p) = parts.last_mut()
                        && (x == "::" || p.is_empty() || p.last().is_some_and(|l| l == "::"))
                    {
                        p.push(x.to_string());
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let clean = |p: &Vec<String>| -> Option<Vec<String>> {
            let segs: Vec<String> = p.iter().filter(|s| *s != "::").cloned().collect();
            (!segs.is_empty()).then_some(segs)
        };
        match parts.as_slice() {
            [ty] => out.push((None, clean(ty))),
            [tr, ty] => out.push((clean(tr), clean(ty))),
            _ => {}
        }
    }
    out
}
