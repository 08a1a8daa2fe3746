//! Splicing values into a `cmd` as data. The text of the command is scanned as the shell
//! would read it, and each value is quoted for the place it lands: outside quotes it becomes
//! its own quoted word(s), inside `'...'` or `"..."` it is escaped for those quotes, in a
//! comment it stays on its line. So no value can end a word, a quote or a command.
//! Where the scanner cannot follow the shell with certainty (backticks, here-documents,
//! `$'...'`, a shell `${...}` holding quotes or parentheses, a `case` inside `$(...)`, whose
//! patterns end in an unmatched `)`) values are refused rather than guessed at.

/// A value that cannot be spliced where it was asked for: why, and what to write instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub why: String,
    pub help: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Frame {
    Single,
    Double,
    /// `$(...)`, `<(...)`, `>(...)`: a command inside a command; counts open `(`.
    Subst {
        parens: u32,
    },
    /// `$((...))`: shells expand `$(...)` in it even inside quotes, so values are refused
    /// inside; counts open `(`.
    Arith {
        parens: u32,
    },
    Backtick,
    Comment,
    /// The shell's own `${...}` (written `$${...}` in a pipeline): values are refused inside.
    Param,
}

/// The shell's reading state after the text fed so far.
#[derive(Debug, Default)]
pub struct Scanner {
    stack: Vec<Frame>,
    /// The previous character was an unquoted `\`: it escapes whatever comes next.
    escaped: bool,
    /// The last character ended a word (or nothing came yet): a `#` here starts a comment.
    after_word: bool,
    /// The previous character was an unescaped `$` (so `(` opens `$(`, `'` opens `$'`).
    dollar: bool,
    /// The previous two characters were `$$` (the pid), which dash and bash read differently
    /// when a `(` or `{` follows.
    pid: bool,
    /// The previous character was an unquoted `(`: `Some(true)` if it opened a `$(` (so
    /// another `(` makes it `$((`), `Some(false)` if not (`((` is bash's arithmetic command).
    open_paren: Option<bool>,
    /// Consecutive unquoted `<`: two open a here-document, three a here-string.
    less_than: u8,
    /// The previous character was an unquoted `<` or `>` (so `(` opens `<(` or `>(`).
    redirect: bool,
    /// A construct whose quoting the scanner does not follow; values after it are refused.
    opaque: Option<&'static str>,
    /// The text of the shell `${...}` being read.
    param: String,
    /// The unquoted word being read inside `$(...)`, to spot the reserved word `case`
    /// (`None` once anything but a letter is in it: `"case"` or `ca\se` is no keyword).
    word: Option<String>,
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner {
            after_word: true,
            word: Some(String::new()),
            ..Scanner::default()
        }
    }

    /// Advance over shell text written in the pipeline (not a spliced value).
    pub fn feed(&mut self, text: &str) {
        for c in text.chars() {
            self.step(c);
        }
    }

    fn step(&mut self, c: char) {
        if std::mem::take(&mut self.escaped) {
            self.word = None;
            self.after_word = false;
            self.dollar = false;
            self.pid = false;
            self.open_paren = None;
            self.less_than = 0;
            self.redirect = false;
            return;
        }
        let dollar = std::mem::take(&mut self.dollar);
        let pid = std::mem::take(&mut self.pid);
        let open_paren = self.open_paren.take();
        if pid && (c == '(' || c == '{') {
            self.opaque = Some("`$$(` or `$${`, which dash and bash read differently");
        }
        match self.stack.last().copied() {
            Some(Frame::Comment) => {
                if c == '\n' {
                    self.stack.pop();
                    self.after_word = true;
                    self.word = Some(String::new());
                }
                return;
            }
            Some(Frame::Param) => {
                match c {
                    '}' => {
                        self.stack.pop();
                        if !plain_parameter(&std::mem::take(&mut self.param)) {
                            self.opaque =
                                Some("a shell `${...}` of a form cegraph does not follow");
                        }
                    }
                    // Quotes, escapes, substitutions and nested expansions inside `${...}`
                    // nest differently in dash and bash; the scanner stops following.
                    '\'' | '"' | '`' | '\\' | '(' | ')' | '{' => {
                        self.opaque = Some("a shell `${...}` holding quotes, `\\`, `(`, `)` or `{`")
                    }
                    _ if self.param.len() < 256 => self.param.push(c),
                    _ => self.opaque = Some("a long shell `${...}`"),
                }
                return;
            }
            Some(Frame::Arith { .. }) => {
                self.step_arith(c, dollar);
                return;
            }
            Some(Frame::Single) => {
                if c == '\'' {
                    self.stack.pop();
                }
                return;
            }
            Some(Frame::Backtick) => {
                match c {
                    '\\' => self.escaped = true,
                    '`' => {
                        self.stack.pop();
                    }
                    _ => {}
                }
                return;
            }
            Some(Frame::Double) => {
                match c {
                    '\\' => self.escaped = true,
                    '"' => {
                        self.stack.pop();
                    }
                    '`' => self.stack.push(Frame::Backtick),
                    // `$$` is the shell's pid: its second `$` opens nothing.
                    '$' => {
                        self.dollar = !dollar;
                        self.pid = dollar;
                    }
                    '(' if dollar => {
                        self.stack.push(Frame::Subst { parens: 1 });
                        self.word = Some(String::new());
                        self.open_paren = Some(true);
                    }
                    '{' if dollar => self.stack.push(Frame::Param),
                    _ => {}
                }
                return;
            }
            None | Some(Frame::Subst { .. }) => {}
        }
        self.step_unquoted(c, dollar, open_paren);
    }

    /// Inside `$((...))`: find its end; anything whose quoting shells disagree on there
    /// (quotes, escapes, nested substitutions) stops the scanner following.
    fn step_arith(&mut self, c: char, dollar: bool) {
        let Some(Frame::Arith { parens }) = self.stack.last_mut() else {
            return;
        };
        match c {
            '(' if dollar => self.opaque = Some("a substitution inside `$((...))`"),
            '{' if dollar => self.opaque = Some("a substitution inside `$((...))`"),
            '(' => *parens += 1,
            ')' => {
                *parens -= 1;
                if *parens == 0 {
                    self.stack.pop();
                    self.after_word = false;
                }
            }
            '\'' | '"' | '`' | '\\' => self.opaque = Some("quotes or `\\` inside `$((...))`"),
            '$' => self.dollar = true,
            _ => {}
        }
    }

    fn step_unquoted(&mut self, c: char, dollar: bool, open_paren: Option<bool>) {
        self.read_word(c);
        if self.less_than == 2 && c != '<' {
            self.opaque = Some("a here-document (`<<`)");
        }
        let after_redirect = std::mem::replace(&mut self.redirect, c == '<' || c == '>');
        self.less_than = if c == '<' {
            self.less_than.saturating_add(1)
        } else {
            0
        };
        match c {
            '\\' => self.escaped = true,
            '\'' => {
                if dollar {
                    self.opaque = Some("`$'...'` quoting");
                }
                self.stack.push(Frame::Single);
            }
            '"' => self.stack.push(Frame::Double),
            '`' => self.stack.push(Frame::Backtick),
            '$' => {
                self.dollar = !dollar;
                self.pid = dollar;
            }
            '#' if self.after_word => self.stack.push(Frame::Comment),
            // `$((`: the `$(` just opened is arithmetic.
            '(' if open_paren == Some(true) => {
                self.stack.pop();
                self.stack.push(Frame::Arith { parens: 2 });
            }
            '(' if open_paren == Some(false) => {
                self.opaque = Some("`((` (an arithmetic command in bash)");
            }
            '(' if dollar || after_redirect => {
                self.stack.push(Frame::Subst { parens: 1 });
                self.open_paren = Some(dollar);
            }
            '{' if dollar => self.stack.push(Frame::Param),
            '(' => {
                if let Some(Frame::Subst { parens }) = self.stack.last_mut() {
                    *parens += 1;
                }
                self.open_paren = Some(false);
            }
            ')' => {
                if let Some(Frame::Subst { parens }) = self.stack.last_mut() {
                    *parens -= 1;
                    if *parens == 0 {
                        self.stack.pop();
                        // The `)` of `$(...)`, `$((...))` or `<(...)` ends the substitution,
                        // not the word it is part of: a `#` right after it is no comment.
                        self.after_word = false;
                        return;
                    }
                }
            }
            _ => {}
        }
        self.after_word = c.is_whitespace() || ";&|()<>".contains(c);
    }

    /// Follow the unquoted word `c` extends or ends. A `case` inside `$(...)` ends its
    /// patterns with a `)` that does not close the `$(`; the scanner does not follow that
    /// (whether the word is in command position is beyond it too), so values after it are
    /// refused.
    fn read_word(&mut self, c: char) {
        if c.is_whitespace() || ";&|()<>".contains(c) {
            let word = self.word.replace(String::new());
            if word.as_deref() == Some("case")
                && matches!(self.stack.last(), Some(Frame::Subst { .. }))
            {
                self.opaque = Some("a `case` inside `$(...)` (its patterns end in `)`)");
            }
        } else if c.is_ascii_alphabetic() {
            if let Some(w) = &mut self.word
                && w.len() < 8
            {
                w.push(c);
            }
        } else {
            self.word = None;
        }
    }

    /// The text that puts `words` into the command at this point as data: one quoted word
    /// each outside quotes, or escaped into the surrounding quotes (joined by spaces).
    pub fn splice(&mut self, words: &[String]) -> Result<String, Refusal> {
        if words.iter().any(|w| w.contains('\0')) {
            return Err(Refusal {
                why: "the value contains a NUL byte, which no command line can carry".into(),
                help: "remove the NUL byte from the value".into(),
            });
        }
        if self.escaped {
            return Err(Refusal {
                why: "a `\\` right before it would escape cegraph's quoting of the value".into(),
                help: "remove the `\\` (write `$${` for a literal `${`)".into(),
            });
        }
        if self.less_than == 2 {
            self.opaque = Some("a here-document (`<<`)");
        }
        if let Some(what) = self.opaque {
            return Err(Refusal {
                why: format!("it comes after {what}, whose quoting cegraph does not follow"),
                help: ENV_HELP.into(),
            });
        }
        let text = match self.stack.last() {
            None | Some(Frame::Subst { .. }) => words
                .iter()
                .map(|w| quote_word(w))
                .collect::<Vec<_>>()
                .join(" "),
            Some(Frame::Single) => words.join(" ").replace('\'', r"'\''"),
            Some(Frame::Double) => escape_double(&words.join(" ")),
            Some(Frame::Comment) => words.join(" ").replace(['\n', '\r'], " "),
            Some(Frame::Backtick) => {
                return Err(Refusal {
                    why: "it is inside backticks, where values cannot be quoted safely".into(),
                    help: "write `$(...)` instead of backticks".into(),
                });
            }
            Some(Frame::Arith { .. }) => {
                return Err(Refusal {
                    why: "it is inside `$((...))`, where shells run `$(...)` even inside quotes"
                        .into(),
                    help: "splice it outside the arithmetic; in bash, arithmetic also runs \
                           `$(...)` inside array subscripts of a variable's value, so use only \
                           values you control there"
                        .into(),
                });
            }
            Some(Frame::Param) => {
                return Err(Refusal {
                    why: "it is inside the shell's own `${...}`, whose quoting differs between shells"
                        .into(),
                    help: ENV_HELP.into(),
                });
            }
        };
        if !text.is_empty() {
            self.after_word = false;
            self.word = None;
        }
        self.dollar = false;
        self.pid = false;
        self.open_paren = None;
        self.less_than = 0;
        self.redirect = false;
        Ok(text)
    }
}

/// A POSIX `${...}` whose end every shell finds at its first `}`: `name`, `#name`, or `name`
/// with one of the standard operators and a word of plain characters (the caller has refused
/// quotes, `\`, `(`, `)` and `{` inside already).
fn plain_parameter(body: &str) -> bool {
    let body = body
        .strip_prefix('#')
        .filter(|b| !b.is_empty())
        .unwrap_or(body);
    let name_len = if body.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len())
    } else if body.starts_with(|c: char| c.is_ascii_digit()) {
        body.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(body.len())
    } else if body.starts_with(['@', '*', '#', '?', '-', '$', '!']) {
        1
    } else {
        return false;
    };
    let rest = &body[name_len..];
    rest.is_empty()
        || [
            ":-", ":=", ":?", ":+", "%%", "##", "-", "=", "?", "+", "%", "#",
        ]
        .iter()
        .any(|op| rest.starts_with(op))
}

const ENV_HELP: &str =
    "pass the value through `env:` and write \"$NAME\" in the command, or use `${raw:...}`";

/// Inside `"..."` only `\`, `$`, `` ` `` and `"` are special.
fn escape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '$' | '`' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One shell word whose text is exactly `s`: left bare when nothing in it is special to the
/// shell (`out/a-1.txt`, `0.001`, `--lr=3`), else single-quoted.
pub fn quote_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,+:@%".contains(c))
        && !looks_like_assignment(s);
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `NAME=...` in command position would set a variable instead of being a word.
fn looks_like_assignment(s: &str) -> bool {
    let Some((name, _)) = s.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splice `value` at each `@` of `template` (the tests' and the fuzzer's command builder).
#[cfg(test)]
pub(crate) fn spliced(template: &str, value: &str) -> Result<String, Refusal> {
    let mut sh = Scanner::new();
    let mut out = String::new();
    let mut parts = template.split('@').peekable();
    while let Some(text) = parts.next() {
        sh.feed(text);
        out.push_str(text);
        if parts.peek().is_some() {
            out.push_str(&sh.splice(&[value.to_string()])?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(quote_word("out/a-1.txt"), "out/a-1.txt");
        assert_eq!(quote_word("--lr=0.1"), "--lr=0.1");
        assert_eq!(
            quote_word("out/t/variant=rope,seed=1"),
            "out/t/variant=rope,seed=1"
        );
        assert_eq!(quote_word("PATH=/x"), "'PATH=/x'");
        assert_eq!(quote_word(""), "''");
        assert_eq!(quote_word("a b"), "'a b'");
        assert_eq!(quote_word("it's"), r"'it'\''s'");
        assert_eq!(quote_word("t[v=1]"), "'t[v=1]'");
    }

    #[test]
    fn each_context_gets_its_own_quoting() {
        let v = r#"a'b"c$d`e\f"#;
        assert_eq!(spliced("echo @", v).unwrap(), r#"echo 'a'\''b"c$d`e\f'"#);
        assert_eq!(spliced("echo '@'", v).unwrap(), r#"echo 'a'\''b"c$d`e\f'"#);
        assert_eq!(
            spliced(r#"echo "@""#, v).unwrap(),
            r#"echo "a'b\"c\$d\`e\\f""#
        );
        assert_eq!(
            spliced("echo $(cat @)", "a b").unwrap(),
            "echo $(cat 'a b')"
        );
        assert_eq!(
            spliced(r#"echo "$(cat @)""#, "a b").unwrap(),
            r#"echo "$(cat 'a b')""#
        );
        assert_eq!(
            spliced("echo $((1 + 2)) @", "a b").unwrap(),
            "echo $((1 + 2)) 'a b'"
        );
        assert_eq!(spliced("echo x # @", "a\nb").unwrap(), "echo x # a b");
        assert_eq!(spliced("echo a#@", "x y").unwrap(), "echo a#'x y'");
        assert_eq!(spliced("cat <<< @", "a b").unwrap(), "cat <<< 'a b'");
    }

    #[test]
    fn case_pattern_inside_command_substitution_cannot_inject() {
        // The `)` of `x)` used to close the `$(`: the value below was then escaped for the
        // outer "..." while the shell read it unquoted (or bare-quoted inside "...").
        for tpl in [
            r#"echo "$(case x in x) echo @;; esac)""#,
            r#"echo "$(case x in x) echo "@";; esac)""#,
            "echo $(case x in (x) echo @;; esac)",
            "echo $(\ncase x in x) echo @;; esac)",
            "echo $(# c\ncase x in x) echo @;; esac)",
            "echo <(case x in x) cat @;; esac)",
            r#"echo "$(echo "$(case x in x) echo @;; esac)")""#,
        ] {
            let err = spliced(tpl, "$(touch PWNED)").unwrap_err();
            assert!(err.why.contains("`case`"), "{tpl}: {err:?}");
        }
        // Values before it, and `case` outside `$(...)` or quoted, are fine.
        assert!(spliced("echo @ $(case x in x) :;; esac)", "a").is_ok());
        assert!(spliced("case x in x) echo @;; esac", "a").is_ok());
        assert!(spliced(r#"echo $(echo "case" x) @"#, "a").is_ok());
    }

    #[test]
    fn hash_right_after_a_substitution_is_not_a_comment() {
        // `$((1+2))#x` is one word: the value was left unquoted as if in a comment.
        for tpl in ["echo $((1+2))#@", "echo $(echo a)#@", "cat <(echo a)#@"] {
            let out = spliced(tpl, "$(touch PWNED)").unwrap();
            assert!(out.ends_with("#'$(touch PWNED)'"), "{tpl}: {out}");
        }
        // After a subshell's `)` a `#` does start a comment.
        assert_eq!(spliced("(echo) #@", "a\nb").unwrap(), "(echo) #a b");
    }

    #[test]
    fn dollar_dollar_before_a_paren_or_brace_is_refused() {
        // `"$$(x @)"`: dash reads the pid and a plain `(`, bash a `$(` it matches quotes in; a
        // value quoted for either reading runs in the other.
        for tpl in [r#"echo "$$(x @)""#, "echo $$(x @)", r#"echo "$${N:-"@"}""#] {
            assert!(spliced(tpl, "$(touch PWNED)").is_err(), "{tpl}");
        }
        assert_eq!(
            spliced(r#"echo "$$$(printf %s @)" $$ @"#, "a b").unwrap(),
            r#"echo "$$$(printf %s 'a b')" $$ 'a b'"#
        );
    }

    #[test]
    fn values_inside_arithmetic_are_refused() {
        // Both dash and bash run `$(...)` inside `$((...))` even in single quotes.
        for tpl in [
            "echo $((1 + @))",
            r#"echo "$((1 + @))""#,
            "echo $(( (1) + @ ))",
            "(( x = @ ))",
            "echo $(( $(echo 1) )) @",
        ] {
            assert!(spliced(tpl, "$(touch PWNED)").is_err(), "{tpl}");
        }
        assert_eq!(
            spliced("echo $(( (1 + 2) * 3 )) @ $(echo @)", "a b").unwrap(),
            "echo $(( (1 + 2) * 3 )) 'a b' $(echo 'a b')"
        );
        assert_eq!(
            spliced(r#"echo "$((1 + 2)) @""#, "a\"b").unwrap(),
            r#"echo "$((1 + 2)) a\"b""#
        );
    }

    #[test]
    fn shell_parameter_expansion_cannot_inject() {
        // `"${x:-"@"}"`: the inner quotes nest in bash and dash, so a value the scanner took
        // for bare text was read inside double quotes, where `$(...)` runs.
        assert!(spliced(r#"echo "${NOPE:-"@"}""#, "$(touch PWNED)").is_err());
        assert!(spliced("echo ${NOPE:-@}", "a").is_err());
        assert!(spliced(r#"echo "${NOPE:-"x"}" @"#, "a").is_err());
        // dash does not end `${NOPE:}` at its `}`: the value below landed inside "...".
        assert!(spliced(r#"echo "${NOPE:}-"@"}""#, "$(touch PWNED)").is_err());
        for odd in ["${x:}", "${}", "${x/a/b}", "${!x}", "${x:1}", "${ x}"] {
            assert!(spliced(&format!("echo {odd} @"), "a").is_err(), "{odd}");
        }
        for plain in [
            "${x}",
            "${#x}",
            "${x:-a b}",
            "${x%%.*}",
            "${1}",
            "${#}",
            "${x+y}",
        ] {
            assert!(spliced(&format!("echo {plain} @"), "a").is_ok(), "{plain}");
        }
        assert_eq!(
            spliced("echo ${HOME} ${NOPE:-x} @", "a b").unwrap(),
            "echo ${HOME} ${NOPE:-x} 'a b'"
        );
        assert_eq!(
            spliced(r#"echo "${HOME}/@""#, "a\"b").unwrap(),
            r#"echo "${HOME}/a\"b""#
        );
    }

    #[test]
    fn unfollowable_contexts_refuse_values() {
        assert!(spliced("echo `cat @`", "a").is_err());
        assert!(spliced("cat <<EOF\n@\nEOF", "a").is_err());
        assert!(spliced("cat <<@", "a").is_err());
        assert!(spliced("echo $'x' @", "a").is_err());
        assert!(spliced(r"echo \@", "a").is_err());
        assert!(spliced("echo @", "a\0b").is_err());
    }
}
