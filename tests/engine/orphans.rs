//! No command outlives its cegraph, and nothing a killed process was writing stays behind.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::project::Project;

/// Two nodes that record their shell's pid (`sh`) and a background child's (`bg`), sleep, and
/// only then write their output.
const SLOW: &str = r#"
stages:
  slow:
    matrix:
      n: [1, 2]
    cmd: >-
      echo sh $$ >> pids.txt; sleep 2 & echo bg $! >> pids.txt; wait;
      echo done > ${outs[0]}
    outs: ["${out_dir}/slow.txt"]
"#;

/// A process as first seen: pid and kernel start time, so a reused pid is not mistaken for it.
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: i32,
    start: u64,
}

fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some((fields[0].chars().next()?, fields[19].parse().ok()?))
}

impl Proc {
    fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|(state, start)| state != 'Z' && start == self.start)
    }
}

/// Wait (up to 20 s) until the stages have recorded `n` pids; returns them by kind.
fn wait_for_pids(p: &Project, n: usize) -> (Vec<Proc>, Vec<Proc>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(p.join("pids.txt")).unwrap_or_default();
        let lines: Vec<(String, i32)> = text
            .lines()
            .filter_map(|l| {
                let (kind, pid) = l.split_once(' ')?;
                Some((kind.to_string(), pid.trim().parse().ok()?))
            })
            .collect();
        if lines.len() >= n {
            let of = |k: &str| -> Vec<Proc> {
                lines
                    .iter()
                    .filter(|(kind, _)| kind == k)
                    .filter_map(|&(_, pid)| {
                        Some(Proc {
                            pid,
                            start: stat(pid)?.1,
                        })
                    })
                    .collect()
            };
            return (of("sh"), of("bg"));
        }
        assert!(
            Instant::now() < deadline,
            "the stages never started: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (up to 5 s) for processes to be gone; the ones still alive.
fn survivors(procs: &[Proc]) -> Vec<Proc> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<Proc> = procs.iter().copied().filter(Proc::alive).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_run(p: &Project) -> Child {
    p.command(&["run", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn outputs_written(p: &Project) -> Vec<String> {
    walkdir::WalkDir::new(p.join("out"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_name() == "slow.txt")
        .map(|e| e.path().display().to_string())
        .collect()
}

#[test]
fn killed_run_leaves_no_orphan_commands() {
    let p = Project::with_pipeline(SLOW);
    let mut run = start_run(&p);
    let (shells, background) = wait_for_pids(&p, 4);
    assert_eq!((shells.len(), background.len()), (2, 2));
    run.kill().unwrap(); // SIGKILL: cegraph cannot clean up by itself.
    run.wait().unwrap();

    // The kernel kills the shells with cegraph (the death signal): they write nothing more.
    assert!(
        survivors(&shells).is_empty(),
        "stage shells outlived a kill -9 of cegraph: {shells:?}"
    );
    // Their children do not get that signal: the next cegraph command ends them.
    let status = p.cegraph(&["status"]);
    let left = survivors(&background);
    assert!(
        left.is_empty(),
        "processes of the killed run survived `cegraph status`: {left:?}\n{}",
        status.stderr
    );
    assert!(
        status.stderr.contains("killed 2 process(es) left running"),
        "{}",
        status.stderr
    );
    // Past the point where the stages would have written their outputs: nothing was written.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(outputs_written(&p), Vec::<String>::new());

    // And the next run does the work properly.
    p.cegraph(&["run"]).ok();
    assert_eq!(outputs_written(&p).len(), 2);
    assert!(!p.join("cache/running").read_dir().unwrap().any(|_| true));
}

#[test]
fn sigterm_interrupts_running_nodes() {
    let p = Project::with_pipeline(SLOW);
    let run = start_run(&p);
    let (shells, background) = wait_for_pids(&p, 4);
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    let interrupted: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("interrupted "))
        .collect();
    assert_eq!(interrupted.len(), 2, "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("2 interrupted"), "{stdout}");
    let all: Vec<Proc> = shells.iter().chain(&background).copied().collect();
    assert!(survivors(&all).is_empty(), "commands outlived cegraph");
    assert_eq!(outputs_written(&p), Vec::<String>::new());
    let lock = std::fs::read_to_string(p.join("cegraph.lock")).unwrap_or_default();
    assert!(!lock.contains("slow"), "{lock}");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(outputs_written(&p), Vec::<String>::new());
}

/// `host` as cegraph writes it in temporary names.
fn host_tag() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let tag: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if tag.is_empty() { "host".into() } else { tag }
}

/// Leave in `dir` what a cegraph killed mid-copy leaves: a temporary file and a job staging
/// directory named after a process that no longer exists.
fn leave_dead_temp_files(dir: &Path) {
    let mut gone = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = gone.id() as i32;
    let start = stat(pid).unwrap().1;
    gone.kill().unwrap();
    gone.wait().unwrap();
    let stem = format!(".tmp-{pid}-{start}-{}", host_tag());
    std::fs::write(dir.join(format!("{stem}-AbC123")), vec![7u8; 1 << 20]).unwrap();
    let job = dir.join(format!("{stem}-JoB456"));
    std::fs::create_dir_all(&job).unwrap();
    std::fs::write(job.join("job.json"), "{}").unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn killed_copy_leaves_no_tmp_garbage() {
    let p = Project::with_pipeline(
        "stages:\n  one:\n    cmd: echo hi > ${outs[0]}\n    outs: [out/one.txt]\n",
    );
    p.cegraph(&["run"]).ok();
    let tmp = p.join("cache/tmp");
    leave_dead_temp_files(&tmp);
    assert_eq!(entries(&tmp).len(), 2);
    // The next run removes them at once, even with nothing to do.
    p.cegraph(&["run"]).ok();
    assert_eq!(entries(&tmp), Vec::<String>::new());

    // `gc` reports and removes them too, and those a killed restore left beside an output.
    leave_dead_temp_files(&tmp);
    leave_dead_temp_files(&p.join("out"));
    let gc = p.cegraph(&["gc"]).ok();
    assert!(
        gc.stdout
            .contains("removed 4 temporary file(s) left by killed processes (2.1 MB)"),
        "{}",
        gc.stdout
    );
    assert_eq!(entries(&tmp), Vec::<String>::new());
    assert_eq!(entries(&p.join("out")), vec!["one.txt".to_string()]);
}

#[test]
fn failure_log_path_exists() {
    let p = Project::with_pipeline(
        r#"
stages:
  escapes:
    cmd: echo hi > ${outs[0]}
    outs: [link/x.txt]
  uncopyable:
    cmd: mkdir -p out/d && ln -s /nonexistent/target out/d/broken
    outs: [out/d]
  missing:
    cmd: "true"
    outs: [out/none.txt]
"#,
    );
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), p.join("link")).unwrap();
    let run = p.cegraph(&["run", "-k"]).code(1);
    let logs: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("log: "))
        .collect();
    assert_eq!(logs.len(), 3, "{}", run.stdout);
    let texts: Vec<String> = logs
        .iter()
        .map(|log| std::fs::read_to_string(log).unwrap_or_else(|e| panic!("log {log}: {e}")))
        .collect();
    for reason in [
        "leads outside the workspace through a symlink",
        "finished without writing its output `out/none.txt`",
        "broken",
    ] {
        assert!(
            texts.iter().any(|t| t
                .lines()
                .any(|l| l.starts_with("cegraph: ") && l.contains(reason))),
            "no log says {reason:?}: {texts:?}"
        );
    }
}

/// Start `cegraph args` with `signal` already pending: the child blocks SIGINT, SIGTERM and
/// SIGHUP and sends itself `signal` before it becomes cegraph (a blocked signal stays pending
/// across exec), exactly as one that arrives before cegraph's handler exists, whatever the
/// timing.
fn signalled_at_start(p: &Project, args: &[&str], signal: libc::c_int) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = p.command(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            Ok(())
        });
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn signal_before_the_handler_is_installed_exits_130() {
    let p = Project::with_pipeline(
        "stages:\n  a:\n    cmd: echo a > ${outs[0]}\n    outs: [out/a.txt]\n",
    );
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let out = signalled_at_start(&p, &["run"], signal);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "signal {signal}: {stderr}");
        // Interrupted before any node started: nothing ran, nothing was published.
        assert!(!p.join("out/a.txt").exists());
        assert!(!p.join("cegraph.lock").exists() || p.read("cegraph.lock").contains("{}"));
    }
    // The run after it does the work.
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out/a.txt"), "a\n");
    // Other commands still die of the signal at once, as processes do by default.
    let out = signalled_at_start(&p, &["status"], libc::SIGTERM);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{:?}", out.status);
}

#[test]
fn interrupt_while_waiting_for_another_run_ends_the_wait() {
    let p = Project::with_pipeline(SLOW);
    let mut first = start_run(&p);
    wait_for_pids(&p, 4);
    // The second run waits for the first one's run lock; its interrupt must end the wait
    // (it used to block until the first run had finished).
    let second = signalled_at_start(&p, &["run"], libc::SIGTERM);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("waiting for another cegraph run"),
        "{stderr}"
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the second run only ended once the first one had: {stderr}"
    );
    assert_eq!(first.wait().unwrap().code(), Some(0));
}
