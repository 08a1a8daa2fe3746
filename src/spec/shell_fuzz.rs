//! Seeded fuzzing of [`super::shell`]: random shell snippets with values spliced into them,
//! run by every shell at hand. A value built to end quotes, words and commands (and to
//! `touch` a marker when it does) must either be refused or reach the shell as data: the
//! marker never appears, and where the snippet prints the value unchanged, it is printed.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::rng::SplitMix64;

/// Pieces of hostile values.
const ATOMS: &[&str] = &[
    "'",
    "\"",
    "$(touch PWNED)",
    "`touch PWNED`",
    ";touch PWNED;",
    "|touch PWNED",
    "&&touch PWNED",
    "\ntouch PWNED\n",
    ")",
    "(",
    "}",
    "{",
    "${x}",
    "\\",
    "esac",
    ";;",
    "#",
    " ",
    "*",
    "~",
    "!",
    "$'",
    "<<E",
    "'\"'\"'",
    "a",
    "%s",
    "-n",
    "\t",
    "$((1))",
    "x)",
    "\r",
];

/// Characters sprinkled into some templates, to reach states no hand-written case does.
const JUNK: &[char] = &[
    '(', ')', '\'', '"', '`', '$', '\\', '#', ';', '|', '&', '{', '}', ' ', '\n', '<',
];

struct Gen {
    rng: SplitMix64,
    /// Whether every value the snippet prints comes out byte for byte (no word splitting).
    exact: bool,
}

impl Gen {
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.rng.index(xs.len())]
    }

    fn value(&mut self) -> String {
        let n = 1 + self.rng.index(5);
        let mut v: String = (0..n).map(|_| self.pick(ATOMS)).collect();
        // `$(...)` strips trailing newlines: end on a plain character.
        v.push('Z');
        v
    }

    /// A command that prints its argument(s).
    fn command(&mut self, depth: u32) -> String {
        let mut c = format!("printf '%s\\n' {}", self.arg(depth));
        match self.rng.index(6) {
            0 => c.push_str(&format!("; {}", self.command(depth.saturating_sub(1)))),
            1 => c.push_str(" # a comment with ) ' \" ;;\n"),
            _ => {}
        }
        c
    }

    /// An argument holding one or more `@` holes, in a random quoting context.
    fn arg(&mut self, depth: u32) -> String {
        let choices = if depth == 0 { 4 } else { 22 };
        match self.rng.index(choices) {
            0 => "@".into(),
            1 => "'a@b'".into(),
            2 => "\"a@b\"".into(),
            3 => "x@y".into(),
            4 => {
                self.exact = false;
                format!("$({})", self.command(depth - 1))
            }
            5 => format!("\"$({})\"", self.command(depth - 1)),
            6 => {
                self.exact = false;
                format!("$(case x in x) {};; esac)", self.command(depth - 1))
            }
            7 => format!("\"$(case x in (x) {};; esac)\"", self.command(depth - 1)),
            8 => "\"$(case x in x) printf '%s' \"@\";; esac)\"".into(),
            9 => format!("${{NOPE:-{}}}", self.arg(depth - 1)),
            10 => "\"${NOPE:-\"@\"}\"".into(),
            11 => "`printf %s @`".into(),
            12 => "$((1+2))@".into(),
            13 => "$'a'@".into(),
            14 => "$((2+3))#@".into(),
            15 => format!("\"$(cat <({}))\"", self.command(depth - 1)),
            16 => format!("\"$({{ {}; }})\"", self.command(depth - 1)),
            17 => "\"$(cat <<< @)\"".into(),
            18 => "$((1 + @))".into(),
            19 => "\"$$(printf %s @)\"".into(),
            20 => "(( 1 )) && printf %s @".into(),
            _ => format!("\"${{HOME}}\"/@ {}", self.arg(depth - 1)),
        }
    }

    fn sprinkle(&mut self, template: &str) -> String {
        let mut chars: Vec<char> = template.chars().collect();
        for _ in 0..1 + self.rng.index(3) {
            let at = self.rng.index(chars.len() + 1);
            chars.insert(at, JUNK[self.rng.index(JUNK.len())]);
        }
        chars.into_iter().collect()
    }
}

/// The command with `value` spliced at every `@`, or `None` if the scanner refuses it.
fn splice(template: &str, value: &str) -> Option<String> {
    super::shell::spliced(template, value).ok()
}

fn shells() -> Vec<&'static str> {
    [
        "/bin/sh",
        "/bin/dash",
        "/usr/bin/dash",
        "/bin/bash",
        "/usr/bin/bash",
    ]
    .into_iter()
    .filter(|s| Path::new(s).exists())
    .collect()
}

#[test]
fn spliced_values_are_never_executed_by_any_shell() {
    let shells = shells();
    assert!(!shells.is_empty(), "no shell to run");
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("PWNED");
    let mut snippets = Gen {
        rng: SplitMix64::new(20261130),
        exact: true,
    };
    let (cases, mut ran) = (1000, 0);
    for case in 0..cases {
        snippets.exact = true;
        let mut template = snippets.command(2);
        let junk = snippets.rng.index(3) == 0;
        if junk {
            template = snippets.sprinkle(&template);
        }
        let value = snippets.value();
        let Some(cmd) = splice(&template, &value) else {
            continue;
        };
        ran += 1;
        for shell in &shells {
            let out = Command::new(shell)
                .arg("-c")
                .arg(&cmd)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                !marker.exists(),
                "case {case}: {shell} ran part of the value\ntemplate: {template:?}\nvalue: {value:?}\ncommand: {cmd:?}"
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !junk && snippets.exact && template.contains('@') && out.status.success() {
                assert!(
                    stdout.contains(&value),
                    "case {case}: {shell} did not print the value verbatim\ntemplate: {template:?}\nvalue: {value:?}\ncommand: {cmd:?}\nstdout: {stdout:?}"
                );
            }
        }
    }
    // Not a test that passes by refusing everything.
    assert!(ran * 4 >= cases, "only {ran} of {cases} commands were run");
}
