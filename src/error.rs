//! The library's errors. Each says what went wrong, where, and how to fix it;
//! the CLI renders them with miette and owns the exit codes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::hash::Hash;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem in a pipeline file, pointing at its line and column.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{col}: {message}")]
pub struct SpecError {
    pub message: String,
    #[help]
    pub help: Option<String>,
    pub file: String,
    /// 1-based; 0 when the position is unknown.
    pub line: u64,
    pub col: u64,
    #[source_code]
    pub source_text: Excerpt,
    #[label("here")]
    pub span: Option<SourceSpan>,
}

/// The text of one pipeline file, for pointing errors at it.
#[derive(Clone)]
pub struct SourceFile {
    pub display_name: String,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> Self {
        SourceFile {
            display_name: path.display().to_string(),
            text: Arc::from(text),
        }
    }

    /// An error at 1-based `line`:`col` (0 = unknown position). The message, help and the
    /// lines shown are bounded, whatever the file holds (a 10 MB line is shown as ~120 chars).
    pub fn error(
        &self,
        (line, col): (u64, u64),
        message: impl Into<String>,
        help: Option<String>,
    ) -> Error {
        let (source_text, span) = match byte_offset(&self.text, line, col) {
            Some(at) => {
                let (excerpt, span) = Excerpt::around(&self.display_name, &self.text, line, at);
                (excerpt, Some(span))
            }
            None => (Excerpt::empty(&self.display_name), None),
        };
        Error::Spec(Box::new(SpecError {
            message: bounded(&message.into(), MAX_MESSAGE_CHARS),
            help: help.map(|h| bounded(&h, MAX_MESSAGE_CHARS)),
            file: self.display_name.clone(),
            line,
            col,
            source_text,
            span,
        }))
    }
}

/// The most characters of one source line an error shows.
const EXCERPT_CHARS: usize = 120;
/// The most characters of a message or help text (values quoted in them can be huge).
const MAX_MESSAGE_CHARS: usize = 600;

/// `s` with control characters made visible and cut to `max` characters (with `…`).
pub fn bounded(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).map(visible).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn visible(c: char) -> char {
    if c.is_control() && c != '\n' && c != '\t' {
        '\u{FFFD}'
    } else {
        c
    }
}

/// The few lines around an error, each cut to a window of [`EXCERPT_CHARS`] around the
/// error's column, remembering where they sit in the file so miette numbers them right.
#[derive(Debug)]
pub struct Excerpt {
    name: String,
    text: String,
    /// 0-based line number of the excerpt's first line in the file.
    first_line: usize,
    /// What turns miette's column on the error line (bytes into the window) into the
    /// error's column in the file (characters into the whole line).
    column_shift: isize,
}

impl Excerpt {
    fn empty(name: &str) -> Excerpt {
        Excerpt {
            name: name.to_string(),
            text: String::new(),
            first_line: 0,
            column_shift: 0,
        }
    }

    /// The error's line with one line either side; and the error's span in the excerpt.
    fn around(name: &str, text: &str, line: u64, at: usize) -> (Excerpt, SourceSpan) {
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let col_chars = text[line_start..at].chars().count();
        let skip = col_chars.saturating_sub(EXCERPT_CHARS / 2);
        let prev_start =
            (line_start > 0).then(|| text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1));
        let next_start = text[at..]
            .find('\n')
            .map(|i| at + i + 1)
            .filter(|&i| i < text.len());
        let mut out = String::new();
        if let Some(p) = prev_start {
            out.push_str(&context_window(line_of(text, p), skip));
            out.push('\n');
        }
        let error_line = window(line_of(text, line_start), skip);
        let line_offset = out.len();
        // Where the column lands in the window: after a leading `…` when cut.
        let lead = usize::from(skip > 0);
        let in_line: usize = error_line
            .chars()
            .take(col_chars - skip + lead)
            .map(char::len_utf8)
            .sum();
        let rest = &error_line[in_line..];
        let len: usize = rest
            .chars()
            .take(80)
            .map(char::len_utf8)
            .sum::<usize>()
            .max(usize::from(!rest.is_empty()));
        out.push_str(&error_line);
        if let Some(n) = next_start {
            out.push('\n');
            out.push_str(&context_window(line_of(text, n), skip));
        }
        let first_line = (line as usize).saturating_sub(1 + usize::from(prev_start.is_some()));
        let excerpt = Excerpt {
            name: name.to_string(),
            text: out,
            first_line,
            column_shift: col_chars as isize - in_line as isize,
        };
        (
            excerpt,
            SourceSpan::new((line_offset + in_line).into(), len),
        )
    }
}

/// Byte offset of a 1-based line/column (columns count characters).
fn byte_offset(text: &str, line: u64, col: u64) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut offset = 0usize;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            let col_bytes = l
                .char_indices()
                .nth(col.saturating_sub(1) as usize)
                .map(|(b, _)| b)
                .unwrap_or(l.trim_end_matches('\n').len());
            return Some(offset + col_bytes);
        }
        offset += l.len();
    }
    None
}

/// A cache object whose bytes do not hash to its name (boxed in [`Error`]: it is large).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error(
    "cache object {} for {} is corrupt: it should hash to {expected} but holds {actual}{}",
    object.display(),
    dest.display(),
    quarantined.as_ref().map(|q| format!("; moved to {}", q.display())).unwrap_or_default()
)]
#[diagnostic(help(
    "run `cegraph run` (without --locked) to rebuild it, `cegraph run --force NODE` to \
     rebuild one node, or `cegraph pull` to fetch a good copy from a remote"
))]
pub struct CorruptObject {
    /// Where the object was in the cache.
    pub object: PathBuf,
    /// Where its bytes were going (a workspace path).
    pub dest: PathBuf,
    pub expected: Hash,
    pub actual: Hash,
    pub quarantined: Option<PathBuf>,
}

/// The line starting at byte `start`, without its newline.
fn line_of(text: &str, start: usize) -> &str {
    let rest = &text[start..];
    &rest[..rest.find('\n').unwrap_or(rest.len())]
}

/// `EXCERPT_CHARS` characters of `line` from character `skip`, with `…` where cut.
fn window(line: &str, skip: usize) -> String {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut chars = line.chars().skip(skip);
    let mut out = String::new();
    if skip > 0 {
        out.push('…');
    }
    out.extend(chars.by_ref().take(EXCERPT_CHARS).map(visible));
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// A line around the error: in the error line's window when it reaches that far, else
/// from its start.
fn context_window(line: &str, skip: usize) -> String {
    if line.chars().nth(skip).is_some() {
        window(line, skip)
    } else {
        window(line, 0)
    }
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> std::result::Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.as_str().read_span(span, before, after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            (inner.column() as isize + self.column_shift).max(0) as usize,
            inner.line_count(),
        )))
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(Box<SpecError>),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    Usage { message: String, help: String },

    #[error("{}: not a valid lock file: {message}", path.display())]
    #[diagnostic(help("regenerate it with `cegraph run`, or restore it from version control"))]
    Lock { path: PathBuf, message: String },

    #[error("cache entry {}: {message}", path.display())]
    #[diagnostic(help(
        "run `cegraph gc` to drop damaged entries; they are rebuilt on the next run"
    ))]
    Cache { path: PathBuf, message: String },

    #[error("{count} node(s) failed: {first}")]
    #[diagnostic(help("see each node's log (path above); fix, then rerun `cegraph run`"))]
    NodesFailed { count: usize, first: String },

    /// Slurm refused, is unreachable, or the set-up cannot work (e.g. a cache not shared).
    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    Slurm { message: String, help: String },
    /// A remote cache could not be used: what failed, and what to set or fix.
    #[error("remote `{remote}`: {message}")]
    #[diagnostic(help("{help}"))]
    Remote {
        remote: String,
        message: String,
        help: String,
    },

    /// A cache object whose bytes do not hash to its name; it has been moved aside.
    #[error(transparent)]
    #[diagnostic(transparent)]
    CorruptObject(Box<CorruptObject>),

    /// A write ran out of space.
    #[error("{}: no space left on the device ({} free there)", path.display(), human_bytes(*free_bytes))]
    #[diagnostic(help(
        "free space there (`cegraph gc` drops cache entries no lock file needs) or point \
         --cache / CEGRAPH_CACHE at a bigger disk, then rerun; nothing half-written was published"
    ))]
    DiskFull { path: PathBuf, free_bytes: u64 },

    #[error("interrupted; {done} node(s) finished and were recorded")]
    #[diagnostic(help("rerun `cegraph run` to pick up where it stopped"))]
    Interrupted { done: usize },
}

impl Error {
    /// An I/O error at `path`; running out of space becomes [`Error::DiskFull`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::StorageFull {
            let free_bytes = free_space(&path).unwrap_or(0);
            return Error::DiskFull { path, free_bytes };
        }
        Error::Io { path, source }
    }

    pub fn slurm(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Slurm {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            help: help.into(),
        }
    }
}

/// Bytes available to unprivileged users on the filesystem holding `path` (or its
/// nearest existing ancestor).
pub fn free_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// Attach a path to I/O errors: `fs::read(p).at(p)?`.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_reported_with_path_and_free_space() {
        // /dev/full fails every write with ENOSPC.
        let err = std::fs::write("/dev/full", b"x").unwrap_err();
        let e = Error::io("/dev/full", err);
        assert!(matches!(e, Error::DiskFull { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("/dev/full: no space left on the device (")
                && text.ends_with(" free there)"),
            "{text}"
        );
    }
}
