//! Hostile or broken pipeline files get a short, located answer in cegraph's words and
//! exit 2: never the input echoed whole, never the YAML library's own text, never a panic.

use crate::project::{Project, Run};

/// Write raw bytes as the pipeline and run `status` on it.
fn status_of(bytes: &[u8]) -> Run {
    let p = Project::new();
    std::fs::write(p.join("cegraph.yaml"), bytes).unwrap();
    p.cegraph(&["status"])
}

#[track_caller]
fn rejected(bytes: &[u8]) -> String {
    let out = status_of(bytes).code(2);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        out.stderr.len() < 4_000,
        "{} bytes of stderr",
        out.stderr.len()
    );
    out.stderr
}

/// Text of the YAML library (written for Rust programmers) that must never be shown.
const LIBRARY_TEXT: &[&str] = &[
    "DuplicateKeyPolicy",
    "span-aware",
    "newtype",
    "weak recursion",
    "Option<",
    "untagged enum",
    "budget breached",
    "in Options",
    "struct ",
    "serde",
    "deserialize",
    "<stream-start>",
    "simple key",
    "u32",
];

#[test]
fn parser_library_text_never_reaches_the_user() {
    let cases: &[(&str, &str)] = &[
        ("", "the pipeline file is empty"),
        ("# only a comment\n", "the pipeline file is empty"),
        (
            "stages:\n  a:\n    cmd: echo\n    cmd: echo\n",
            "key `cmd` appears twice in this mapping",
        ),
        (
            "stages:\n  a:\n    cmd: echo\n    outs: [~]\n",
            "this value is empty, but text is needed here",
        ),
        ("stages: &s\n  a: *s\n", "cegraph.yaml:2:"),
        ("stages:\n  a: 5\n", "expected a mapping"),
        (
            "stages:\n  a:\n    cmd: echo\n    resources: {cpus: many}\n",
            "expected a whole number, 0 or more",
        ),
        (
            "stages:\n  a:\n    cmd: echo\n    resources: {cpus: -1}\n",
            "expected a whole number, 0 or more",
        ),
        (
            "stages:\n  a:\n    cmd: echo\n    outz: [x]\n",
            "unknown key `outz`",
        ),
        ("vars: {a: 1}\n", "missing key `stages`"),
        (
            "stages:\n  a:\n    matrix: {v: {x: 1}}\n    cmd: echo\n",
            "a matrix axis must be a list",
        ),
        (
            "stages:\n  a:\n    cmd: 'unclosed\n",
            "quote is never closed",
        ),
        (
            "stages:\n  a:\n    cmd: [1, 2\n",
            "expected text (a single value)",
        ),
        (
            "stages:\n  a:\n    cmd: echo\n    outs: [a, b\n",
            "is never closed",
        ),
        (
            "stages:\n  a:\n    cmd: echo\n   outs: [x]\n",
            "cegraph.yaml:4:",
        ),
        ("stages:\n  a:\n\tcmd: echo\n", "cegraph.yaml:3:"),
        ("stages:\n  a:\n    cmd: \"\\q\"\n", "invalid `\\` escape"),
        (
            "stages:\n  a:\n    cmd: *nope\n",
            "names an anchor that is not defined",
        ),
        (
            "stages:\n  a: {cmd: echo}\n---\nstages:\n  b: {cmd: echo}\n",
            "more than one YAML document",
        ),
        (
            "stages:\n  a:\n    cmd: !!python/object echo\n",
            "is not supported",
        ),
        (
            "stages:\n  a:\n    cmd: echo\nslurm: {shared_fs: yes}\n",
            "expected `true` or `false`",
        ),
        (
            "remotes: {r: [1]}\nstages:\n  a: {cmd: echo}\n",
            "a remote must be a URL",
        ),
    ];
    for (yaml, expected) in cases {
        let err = rejected(yaml.as_bytes());
        assert!(
            err.contains(expected),
            "{yaml:?}: expected {expected:?} in\n{err}"
        );
        assert!(
            regex_like_location(&err),
            "{yaml:?}: no file:line:col in\n{err}"
        );
        for text in LIBRARY_TEXT {
            assert!(
                !err.contains(text),
                "{yaml:?}: library text {text:?} in\n{err}"
            );
        }
    }
}

/// `cegraph.yaml:<line>:<col>:` with both numbers non-zero.
fn regex_like_location(s: &str) -> bool {
    s.split("cegraph.yaml:").skip(1).any(|rest| {
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().and_then(|l| l.parse::<u64>().ok());
        let col = parts.next().and_then(|c| c.parse::<u64>().ok());
        matches!((line, col), (Some(l), Some(c)) if l > 0 && c > 0)
    })
}

#[test]
fn duplicate_key_is_named_in_the_users_words() {
    insta::assert_snapshot!(rejected(
        b"stages:\n  train:\n    cmd: echo\n    outs: [a]\n    outs: [b]\n"
    ));
}

#[test]
fn huge_scalar_is_rejected_without_echoing_it() {
    let mut yaml = b"stages:\n  a:\n    cmd: echo\n    outz: ".to_vec();
    yaml.extend(std::iter::repeat_n(b'x', 10_000_000));
    yaml.push(b'\n');
    let err = rejected(&yaml);
    assert!(err.contains("cegraph.yaml:4:5"), "{err}");
    assert!(err.contains('…'), "{err}");
    // A wrong value in the middle of a 200 KB line: the line is cut around the column.
    let mut yaml = b"stages:\n  a: {cmd: echo, outs: [".to_vec();
    for i in 0..20_000 {
        yaml.extend(format!("f{i:05}, ").as_bytes());
    }
    yaml.extend(b"{x: 1}]}\n");
    let err = rejected(&yaml);
    assert!(err.contains("cegraph.yaml:2:"), "{err}");
}

#[test]
fn pipeline_over_the_size_limit_is_refused_before_parsing() {
    let p = Project::new();
    let mut yaml = "stages:\n  a: {cmd: echo}\n".to_string();
    yaml.push_str(&"# padding\n".repeat(200));
    p.write("cegraph.yaml", &yaml);
    let out = p
        .command(&["status"])
        .env("CEGRAPH_MAX_PIPELINE_BYTES", "1000")
        .output()
        .unwrap();
    let out = Run::from(out).code(2);
    assert!(
        out.stderr.contains("over the 1000-byte limit"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("CEGRAPH_MAX_PIPELINE_BYTES"),
        "{}",
        out.stderr
    );
    // Under the limit (the default, 16 MiB) the same file loads.
    p.cegraph(&["dag"]).ok();
}

#[test]
fn invalid_utf8_is_located_and_exits_2() {
    let err = rejected(b"stages:\n  a:\n    cmd: echo caf\xe9 > x\n");
    assert!(err.contains("cegraph.yaml:3:18"), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(err.contains("0xe9"), "{err}");
}

#[test]
fn nul_bytes_are_located_and_never_printed() {
    let err = rejected(b"stages:\n  a:\n    cmd: echo \0 > x\n");
    assert!(regex_like_location(&err), "{err}");
    assert!(!err.contains('\0'), "{err:?}");
}

#[test]
fn billion_laughs_is_refused() {
    let mut yaml = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, next) = (w[0], w[1]);
        yaml.push_str(&format!(
            "{next}: &{next} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
    }
    yaml = format!(
        "vars:\n  {}stages:\n  s: {{cmd: echo}}\n",
        yaml.replace('\n', "\n  ")
    );
    let err = rejected(yaml.as_bytes());
    assert!(err.contains("alias"), "{err}");
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 100_000;
    let yaml = format!(
        "vars:\n  x: {}{}\nstages:\n  s: {{cmd: echo}}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let err = rejected(yaml.as_bytes());
    assert!(err.contains("nests"), "{err}");
    let block: String = (0..5_000)
        .map(|i| format!("{}k:\n", " ".repeat(i + 1)))
        .collect();
    let err = rejected(format!("vars:\n{block}stages: {{}}\n").as_bytes());
    assert!(regex_like_location(&err), "{err}");
}

#[test]
fn binary_tagged_values_are_refused_like_other_tags() {
    // `ZWNobyBoaQ==` is base64 for `echo hi`: it used to be decoded and run. Each case: the
    // pipeline, and the line and text of the tagged value the error must point at.
    let cases = [
        (
            "stages:\n  a:\n    cmd: !!binary ZWNobyBoaQ==\n",
            3,
            "ZWNobyBoaQ==",
        ),
        (
            "stages:\n  a:\n    cmd: echo\n    outs: [!!binary eA==]\n",
            4,
            "eA==",
        ),
        (
            "stages:\n  a:\n    cmd: !binary ZWNobyBoaQ==\n",
            3,
            "ZWNobyBoaQ==",
        ),
        (
            "%TAG !y! tag:yaml.org,2002:\n---\nstages:\n  a:\n    cmd: !y!binary ZWNobyBoaQ==\n",
            5,
            "ZWNobyBoaQ==",
        ),
        (
            "stages:\n  a:\n    cmd: !<tag:yaml.org,2002:binary> ZWNobyBoaQ==\n",
            3,
            "ZWNobyBoaQ==",
        ),
        (
            "vars:\n  t: !!timestamp 2001-12-14\nstages:\n  a: {cmd: echo}\n",
            2,
            "2001",
        ),
    ];
    for (yaml, line, value) in cases {
        let text = yaml.lines().nth(line - 1).unwrap();
        let col = text.find(value).unwrap() + 1;
        let err = rejected(yaml.as_bytes());
        assert!(err.contains("is not supported"), "{yaml:?}:\n{err}");
        assert!(err.contains("remove the `!tag`"), "{yaml:?}:\n{err}");
        assert!(
            err.contains(&format!("cegraph.yaml:{line}:{col}")),
            "{yaml:?}: expected cegraph.yaml:{line}:{col} in\n{err}"
        );
    }
    // Core-schema tags name what plain YAML already means and stay accepted.
    status_of(b"stages:\n  a:\n    cmd: !!str echo\n").code(1);
}
