//! Values are data, not code: whatever a matrix value, param or var holds, the command
//! receives it verbatim and the shell runs none of it.

use crate::project::Project;

/// A YAML double-quoted string for `s` (JSON's escapes are YAML's).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Files an injected `touch` would have created, anywhere in the workspace.
fn pwned(p: &Project) -> Vec<String> {
    walkdir::WalkDir::new(p.path())
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("PWNED"))
        .map(|e| e.path().display().to_string())
        .collect()
}

#[test]
fn matrix_value_cannot_inject_shell() {
    let values = [
        "a; touch PWNED1",
        "$(touch PWNED2)",
        "`touch PWNED3`",
        "x && touch PWNED5 #",
        "' ; touch PWNED6 ; '",
        "\" ; touch PWNED7 ; \"",
        "X=1",
    ];
    let list: Vec<String> = values.iter().map(|v| yaml_str(v)).collect();
    let p = Project::with_pipeline(&format!(
        "stages:\n  m:\n    matrix:\n      v: [{}]\n    cmd: printf '%s' ${{v}} > ${{outs[0]}} && printf '%s' ${{node}} > ${{outs[1]}}\n    outs: [\"${{out_dir}}/v.txt\", \"${{out_dir}}/node.txt\"]\n",
        list.join(", ")
    ));
    p.cegraph(&["run"]).ok();
    assert_eq!(pwned(&p), Vec::<String>::new());
    for v in values {
        let dir = format!("out/m/v={v}");
        assert_eq!(p.read(&format!("{dir}/v.txt")), v);
        assert_eq!(p.read(&format!("{dir}/node.txt")), format!("m[v={v}]"));
    }
}

#[test]
fn param_and_var_cannot_inject_shell() {
    let p = Project::with_pipeline(
        r#"
vars:
  x: "x; touch PWNED4"
  y: "$(touch PWNED8)"
stages:
  a:
    params: {p: "`touch PWNED9`"}
    cmd: printf '%s|%s|%s|%s' ${x} ${vars.y} ${params.p} "${params.p}" > ${outs[0]}
    outs: [out/a.txt]
"#,
    );
    p.cegraph(&["run"]).ok();
    assert_eq!(pwned(&p), Vec::<String>::new());
    assert_eq!(
        p.read("out/a.txt"),
        "x; touch PWNED4|$(touch PWNED8)|`touch PWNED9`|`touch PWNED9`"
    );
}

#[test]
fn values_reach_the_command_verbatim_in_every_quoting_context() {
    let values = [
        "two  spaces",
        "it's",
        "say \"hi\"",
        "$HOME $$ $(x",
        "back\\slash\\",
        "tick ` tock",
        "new\nline",
        "naïve — 日本語 🚀",
        "*",
        "",
        "#hash",
        "-n",
        "tab\there",
        "}{)(][",
    ];
    let mut stages = String::from("stages:\n");
    for (i, v) in values.iter().enumerate() {
        stages.push_str(&format!(
            "  s{i}:\n    params: {{v: {}}}\n    cmd: >-\n      printf '%s' ${{params.v}} > ${{outs[0]}} &&\n      printf '%s' \"${{params.v}}\" > ${{outs[1]}} &&\n      printf '%s' '${{params.v}}' > ${{outs[2]}} &&\n      printf '%s' \"$(printf '%s' ${{params.v}})\" > ${{outs[3]}}\n    outs: [out/{i}/bare, out/{i}/double, out/{i}/single, out/{i}/subst]\n",
            yaml_str(v)
        ));
    }
    let p = Project::with_pipeline(&stages);
    p.cegraph(&["run"]).ok();
    for (i, v) in values.iter().enumerate() {
        for ctx in ["bare", "double", "single", "subst"] {
            assert_eq!(p.read(&format!("out/{i}/{ctx}")), *v, "value {v:?} {ctx}");
        }
    }
}

#[test]
fn a_list_becomes_separate_quoted_words() {
    let p = Project::with_pipeline(
        r#"
vars:
  files: ["a b", "c;d", "$(e)"]
stages:
  a:
    cmd: printf '[%s]' ${vars.files} > ${outs[0]} && printf '[%s]' "${vars.files}" > ${outs[1]}
    outs: [out/words.txt, out/joined.txt]
"#,
    );
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out/words.txt"), "[a b][c;d][$(e)]");
    assert_eq!(p.read("out/joined.txt"), "[a b c;d $(e)]");
}

#[test]
fn raw_opt_out_splices_shell_text() {
    let p = Project::with_pipeline(
        r#"
stages:
  a:
    params: {words: "a b  c", redirect: "> out/raw.txt"}
    cmd: printf '%s,' ${raw:params.words} ${raw:params.redirect} && printf '%s,' ${params.words} > ${outs[1]}
    outs: [out/raw.txt, out/quoted.txt]
"#,
    );
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out/raw.txt"), "a,b,c,");
    assert_eq!(p.read("out/quoted.txt"), "a b  c,");
}

#[test]
fn values_where_quoting_cannot_be_followed_are_refused() {
    for (cmd, why) in [
        ("echo `echo ${v}`", "inside backticks"),
        (
            "cat <<EOF > ${outs[0]}\n      ${v}\n      EOF",
            "here-document",
        ),
        ("echo \\${v}", "`\\` right before it"),
    ] {
        let p = Project::with_pipeline(&format!(
            "vars: {{v: x}}\nstages:\n  a:\n    cmd: |-\n      {cmd}\n    outs: [o]\n"
        ));
        let out = p.cegraph(&["dag"]).code(2);
        assert!(out.stderr.contains("cegraph.yaml:5:7"), "{}", out.stderr);
        assert!(out.stderr.contains(why), "{cmd}: {}", out.stderr);
    }
}

#[test]
fn values_outside_cmd_are_not_quoted() {
    let p = Project::with_pipeline(
        r#"
vars: {name: "a b"}
stages:
  a:
    env: {GREETING: "hello ${name}"}
    cmd: printf '%s' "$GREETING" > ${outs[0]}
    outs: ["out/${name}.txt"]
"#,
    );
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out/a b.txt"), "hello a b");
}

#[test]
fn case_pattern_in_command_substitution_cannot_inject() {
    // The `)` of a case pattern inside `$(...)` was taken for the end of the `$(`, so the
    // value was quoted for the wrong context and ran. Now it is refused at load.
    for (cmd, why) in [
        (
            r#"echo "$(case x in x) echo "${v}";; esac)" > ${outs[0]}"#,
            "a `case` inside `$(...)`",
        ),
        (
            r#"echo "$(case x in x) echo ${v};; esac)" > ${outs[0]}"#,
            "a `case` inside `$(...)`",
        ),
        (
            r#"echo "$${NOPE:-"${v}"}" > ${outs[0]}"#,
            "a shell `${...}`",
        ),
    ] {
        let p = Project::with_pipeline(&format!(
            "vars: {{v: \"$(touch PWNED1); touch PWNED2\"}}\nstages:\n  a:\n    cmd: |-\n      {cmd}\n    outs: [o]\n"
        ));
        let out = p.cegraph(&["run"]).code(2);
        assert!(out.stderr.contains("cegraph.yaml:5:7"), "{}", out.stderr);
        assert!(out.stderr.contains(why), "{cmd}: {}", out.stderr);
        assert!(out.stderr.contains("env:"), "{cmd}: {}", out.stderr);
        assert_eq!(pwned(&p), Vec::<String>::new());
    }
}
