//! The commands this cegraph runs, so that none outlives it.
//!
//! - Each node's command runs in a process group of its own ([`spawn`]): a signal reaches the
//!   command and everything it started, and when the command exits, whatever it left running in
//!   its group is killed with it.
//! - On Linux the command also gets `PR_SET_PDEATHSIG(SIGKILL)`: if cegraph dies, even by
//!   `kill -9`, the kernel kills the command.
//! - SIGINT, SIGTERM and SIGHUP to cegraph ([`interrupt`]) send SIGTERM to every running group,
//!   then SIGKILL to those still there after [`GRACE`].
//! - Nothing survives `kill -9` of cegraph by itself, and grandchildren of a command do not
//!   get the death signal. So a run records its running groups in a run-state file
//!   ([`RunState`]), and marks every command it starts with `CEGRAPH_RUN=<run id>` in its
//!   environment; the next command of that pipeline ends what a dead run left
//!   ([`end_leftovers`]), checking each process is still the one recorded.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::tmp::{ProcessId, host_tag, proc_stat};

/// How long a command may take to end after SIGTERM before it gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// The environment variable that marks every process of a run.
pub const RUN_VAR: &str = "CEGRAPH_RUN";

/// What the run-state file of a running pipeline holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub host: String,
    /// The cegraph process of the run.
    pub owner: ProcessId,
    /// The value of [`RUN_VAR`] in its commands' environments.
    pub run_id: String,
    /// Running nodes: the group id is the leader's pid, recorded with its start time.
    pub groups: Vec<GroupRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRecord {
    pub node: String,
    pub leader: ProcessId,
}

struct Registry {
    /// Running groups by group id (= the leader's pid).
    groups: BTreeMap<i32, GroupRecord>,
    /// Where to record them, with the run's id (a local run; not exec-node).
    state: Option<(PathBuf, String)>,
    /// Whether the run-state file exists (it is first written when a command starts).
    written: bool,
    /// Signals received so far.
    signals: u32,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: BTreeMap::new(),
    state: None,
    written: false,
    signals: 0,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves the map consistent: every change is one call.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Record this run's running groups in `path` until the returned guard is dropped (which
/// removes the file: nothing of the run is left running then).
pub fn record_run(path: PathBuf) -> RunRecording {
    let me = ProcessId::current();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let run_id = format!("{}-{}-{nanos}", me.pid, me.start);
    let mut r = registry();
    r.state = Some((path.clone(), run_id));
    r.written = false;
    RunRecording { path }
}

/// Removes the run-state file when the run ends.
pub struct RunRecording {
    path: PathBuf,
}

impl Drop for RunRecording {
    fn drop(&mut self) {
        let mut r = registry();
        r.state = None;
        if std::mem::take(&mut r.written) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Best effort: a run whose state cannot be written still runs; its commands still die with
/// it through the death signal.
fn write_state(r: &mut Registry) {
    let Some((path, run_id)) = &r.state else {
        return;
    };
    let state = RunState {
        host: host_tag().to_string(),
        owner: ProcessId::current(),
        run_id: run_id.clone(),
        groups: r.groups.values().cloned().collect(),
    };
    let bytes = serde_json::to_vec(&state).expect("run states serialise");
    let part = path.with_extension("json.part");
    if !r.written
        && let Some(dir) = path.parent()
    {
        let _ = fs::create_dir_all(dir);
    }
    if fs::write(&part, bytes).is_ok() && fs::rename(&part, path).is_ok() {
        r.written = true;
    }
}

/// A node's command running in its own process group.
pub struct Group {
    child: Option<Child>,
    pgid: i32,
}

/// Start `cmd` as the leader of a new process group that dies with this process, and register
/// the group. The calling thread must wait for it ([`Group::wait`]): on Linux the death signal
/// fires when the *thread* that started the child ends.
pub fn spawn(cmd: &mut Command, node: &str) -> io::Result<Group> {
    cmd.process_group(0);
    {
        let mut r = registry();
        if let Some((_, run_id)) = r.state.clone() {
            cmd.env(RUN_VAR, run_id);
            if !r.written {
                // Before the first command starts: a kill -9 from now on leaves the run id.
                write_state(&mut r);
            }
        }
    }
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe and nothing here allocates.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // cegraph died between fork and prctl: the signal will never come.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    let child = cmd.spawn()?;
    let pgid = child.id() as i32;
    let leader = ProcessId {
        pid: pgid,
        start: proc_stat(pgid).map(|s| s.start).unwrap_or(0),
    };
    let mut r = registry();
    r.groups.insert(
        pgid,
        GroupRecord {
            node: node.to_string(),
            leader,
        },
    );
    write_state(&mut r);
    if r.signals > 0 || super::INTERRUPTED.load(Ordering::SeqCst) {
        // Started as the signal came in: it goes with the others.
        signal_group(pgid, libc::SIGTERM);
    }
    Ok(Group {
        child: Some(child),
        pgid,
    })
}

impl Group {
    /// Wait for the command to exit, then kill what it left running in its group.
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        let child = self.child.take().expect("waited once");
        self.finish(child)
    }

    fn finish(&self, mut child: Child) -> io::Result<ExitStatus> {
        // Wait without reaping: while the leader is a zombie its pid, and so the group id,
        // cannot be reused, so signalling the group cannot hit a stranger.
        let waited = wait_unreaped(self.pgid);
        {
            let mut r = registry();
            if r.groups.remove(&self.pgid).is_some() {
                write_state(&mut r);
            }
            signal_group(self.pgid, libc::SIGKILL);
        }
        if let Err(e) = waited {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        child.wait()
    }
}

impl Drop for Group {
    /// A group dropped without a wait (its log could not be read): kill it, leave nothing.
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            signal_group(self.pgid, libc::SIGKILL);
            let _ = self.finish(child);
        }
    }
}

fn wait_unreaped(pid: i32) -> io::Result<()> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn signal_group(pgid: i32, signal: libc::c_int) {
    // SAFETY: plain system call; ESRCH (group already gone) is fine.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// SIGINT, SIGTERM or SIGHUP reached cegraph: start no more nodes, and end the running ones
/// (SIGTERM now, SIGKILL after [`GRACE`]; a second signal sends SIGKILL at once).
pub fn interrupt() {
    super::INTERRUPTED.store(true, Ordering::SeqCst);
    let mut r = registry();
    r.signals += 1;
    let first = r.signals == 1;
    let signal = if first { libc::SIGTERM } else { libc::SIGKILL };
    for &pgid in r.groups.keys() {
        signal_group(pgid, signal);
    }
    drop(r);
    if first {
        std::thread::spawn(|| {
            std::thread::sleep(GRACE);
            let r = registry();
            for &pgid in r.groups.keys() {
                signal_group(pgid, libc::SIGKILL);
            }
        });
    }
}

/// Where the run-state file of a pipeline lives in the cache.
pub fn state_path(cache: &Path, run_name: &str) -> PathBuf {
    cache.join("running").join(format!("{run_name}.json"))
}

/// What [`end_leftovers`] found.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// A run-state file of a run that is no longer running was there.
    pub dead_run: bool,
    /// Processes of it that were still running and were killed.
    pub killed: usize,
}

/// If the run recorded in `path` died without cleaning up (its cegraph is gone), kill what
/// is left of it: recorded groups whose leader is still the same process, and every process
/// carrying its run id. With `remove`, the file goes too (the caller holds the pipeline's
/// run lock). A run still alive, or one recorded on another host, is left alone.
pub fn end_leftovers(path: &Path, remove: bool) -> Leftovers {
    let Some(state) = fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<RunState>(&b).ok())
    else {
        return Leftovers::default();
    };
    if state.host != host_tag() || state.owner.is_alive() {
        return Leftovers::default();
    }
    let mut victims: Vec<ProcessId> = Vec::new();
    for g in &state.groups {
        if g.leader.is_alive() {
            signal_group(g.leader.pid, libc::SIGKILL);
            victims.push(g.leader);
        }
    }
    for p in marked_processes(&state.run_id) {
        // SAFETY: plain system call; the pid was just read with the run's mark.
        unsafe {
            libc::kill(p.pid, libc::SIGKILL);
        }
        victims.push(p);
    }
    wait_gone(&victims);
    if remove {
        let _ = fs::remove_file(path);
    }
    victims.sort_by_key(|p| p.pid);
    victims.dedup();
    Leftovers {
        dead_run: true,
        killed: victims.len(),
    }
}

/// Live processes whose environment holds `CEGRAPH_RUN=<run_id>`.
fn marked_processes(run_id: &str) -> Vec<ProcessId> {
    let needle = format!("{RUN_VAR}={run_id}");
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
        })
        .filter_map(|pid| {
            let s = proc_stat(pid)?;
            let p = ProcessId {
                pid,
                start: s.start,
            };
            p.is_alive().then_some(p)
        })
        .collect()
}

/// SIGKILL is delivered asynchronously: wait (briefly) until the killed processes are gone,
/// so the command that killed them can promise they are.
fn wait_gone(victims: &[ProcessId]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while victims.iter().any(ProcessId::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
