//! What `cegraph run` shows while it runs: one line per node that did something, a failed
//! node's last log lines, `-v` output prefixed by node, and on a terminal a progress bar with
//! the running nodes and their elapsed time. Off a terminal: plain lines, no escape codes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::exec::{Observer, Outcome};
use crate::kind::PROGRESS_PREFIX;

/// How many lines of a failed node's log are shown inline.
pub const FAILURE_TAIL_LINES: usize = 20;

/// A running node: its name, when it started, and the status its last `::progress` line gave.
type Running = Arc<Mutex<Vec<(String, Instant, String)>>>;

/// Without `-v` only progress lines are looked for: a node that prints a long line without a
/// newline keeps at most this much of it.
const MAX_PARTIAL: usize = 64 * 1024;

pub struct Progress {
    pub bar: ProgressBar,
    quiet: bool,
    verbose: bool,
    /// Colour and dimming for failure tails: only on a terminal, and not under NO_COLOR.
    styled: bool,
    running: Running,
    /// `-v`: each node's output not yet ended by a newline.
    partial: Mutex<HashMap<String, Vec<u8>>>,
}

impl Progress {
    pub fn new(total: usize, jobs: usize, quiet: bool, verbose: bool) -> Self {
        let running: Running = Arc::default();
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        let shown = running.clone();
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}{running}",
        )
        .expect("valid template")
        .with_key(
            "running",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let now = Instant::now();
                for (node, since, status) in shown.lock().unwrap().iter().take(jobs.max(1)) {
                    let _ = write!(w, "\n  {node} ({})", elapsed(now - *since));
                    if !status.is_empty() {
                        let _ = write!(w, " {status}");
                    }
                }
            },
        );
        bar.set_style(style);
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(500));
        }
        let styled = std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Progress {
            bar,
            quiet,
            verbose,
            styled,
            running,
            partial: Mutex::default(),
        }
    }

    fn say(&self, line: &str) {
        if self.bar.is_hidden() {
            sayln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// The last lines of a failed node's log, indented (dimmed on a terminal).
    fn say_tail(&self, log: &Path) {
        let Ok(bytes) = std::fs::read(log) else {
            return;
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(FAILURE_TAIL_LINES);
        if start > 0 {
            self.say(&format!("          … {start} earlier line(s) in the log"));
        }
        for line in &lines[start..] {
            let line = strip_controls(line);
            if self.styled {
                self.say(&format!("\x1b[2m          │ {line}\x1b[0m"));
            } else {
                self.say(&format!("          │ {line}"));
            }
        }
    }

    /// The complete lines of a node's output: a progress line sets its status; with `-v` the
    /// others are printed, prefixed by the node's name.
    fn flush_lines(&self, node: &str, all: bool) {
        let mut partial = self.partial.lock().unwrap();
        let Some(buf) = partial.get_mut(node) else {
            return;
        };
        let end = if all {
            buf.len()
        } else {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => {
                    if !self.verbose && buf.len() > MAX_PARTIAL {
                        buf.clear();
                    }
                    return;
                }
            }
        };
        let chunk: Vec<u8> = buf.drain(..end).collect();
        drop(partial);
        for line in String::from_utf8_lossy(&chunk).lines() {
            if let Some(status) = line.strip_prefix(PROGRESS_PREFIX) {
                self.set_status(node, strip_controls(status.trim()));
            } else if self.verbose {
                self.say(&format!("{node} | {}", strip_controls(line)));
            }
        }
    }

    fn set_status(&self, node: &str, status: String) {
        if let Some(entry) = self
            .running
            .lock()
            .unwrap()
            .iter_mut()
            .find(|e| e.0 == node)
        {
            entry.2 = status;
        }
    }
}

impl Observer for Progress {
    fn warning(&self, node: &str, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {node}: {message}"));
    }

    fn started(&self, node: &str) {
        self.running
            .lock()
            .unwrap()
            .push((node.to_string(), Instant::now(), String::new()));
        self.bar.tick();
    }

    fn output(&self, node: &str, bytes: &[u8]) {
        self.partial
            .lock()
            .unwrap()
            .entry(node.to_string())
            .or_default()
            .extend_from_slice(bytes);
        self.flush_lines(node, false);
    }

    fn finished(&self, node: &str, outcome: &Outcome) {
        self.flush_lines(node, true);
        self.running.lock().unwrap().retain(|(n, ..)| n != node);
        self.partial.lock().unwrap().remove(node);
        self.bar.inc(1);
        let line = match outcome {
            Outcome::Ran { seconds } => format!("ran       {node} ({seconds:.2}s)"),
            Outcome::Restored => format!("restored  {node} (from cache)"),
            Outcome::Fetched => format!("fetched   {node} (from remote)"),
            Outcome::Failed { message, log } => {
                self.say(&format!("FAILED    {node}: {message}"));
                if !log.as_os_str().is_empty() {
                    // With -v its output was already shown as it came.
                    if !self.verbose {
                        self.say_tail(log);
                    }
                    self.say(&format!("          log: {}", log.display()));
                }
                return;
            }
            Outcome::Interrupted { .. } => format!("interrupted {node}"),
            Outcome::WouldRun { why } => format!("would run {node}: {}", why.join("; ")),
            Outcome::WouldRestore { why } => {
                format!("would restore {node} (from cache): {}", why.join("; "))
            }
            Outcome::UpToDate | Outcome::Skipped => return,
        };
        if !self.quiet || matches!(outcome, Outcome::Interrupted { .. }) {
            self.say(&line);
        }
    }
}

/// `1m05s`, `12s`.
fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// A node's output with its control characters (escape codes, carriage returns) removed, so
/// what cegraph prints never carries a command's terminal codes.
fn strip_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI sequence: ESC [ … final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(p: &Progress, node: &str) -> Option<String> {
        let running = p.running.lock().unwrap();
        running.iter().find(|e| e.0 == node).map(|e| e.2.clone())
    }

    #[test]
    fn progress_lines_set_the_running_nodes_status() {
        let p = Progress::new(2, 2, true, false);
        p.started("train");
        p.started("other");
        p.output("train", b"model baseline: 1 params\n::progress step 250/2");
        assert_eq!(
            status_of(&p, "train").as_deref(),
            Some(""),
            "a line counts once it ends"
        );
        p.output("train", b"000 val 1.9348\nstep 250 ...\n");
        assert_eq!(
            status_of(&p, "train").as_deref(),
            Some("step 250/2000 val 1.9348")
        );
        p.output("train", b"::progress \x1b[1mstep 500/2000 val 1.8\x1b[0m\n");
        assert_eq!(
            status_of(&p, "train").as_deref(),
            Some("step 500/2000 val 1.8"),
            "escape codes never reach the display"
        );
        assert_eq!(status_of(&p, "other").as_deref(), Some(""));
        p.finished("train", &Outcome::Ran { seconds: 1.0 });
        assert_eq!(status_of(&p, "train"), None);
    }
}
