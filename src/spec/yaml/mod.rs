//! Reading and parsing a pipeline file, whatever it holds: a size limit checked before
//! anything is read, invalid UTF-8 located, the parser bounded (depth, nodes, aliases), and
//! every parser error told in cegraph's words (the table in [`errors`]) — never the
//! library's own text, which speaks to Rust programmers ("use Option<String>").

use std::io::Read;
use std::path::Path;

mod errors;
mod fields;
#[cfg(test)]
mod tests;

pub use errors::{Described, describe};

use super::model::PipelineFile;
use crate::error::{Error, Result, SourceFile};

/// Environment variable that sets the largest pipeline file read, in bytes.
pub const MAX_BYTES_ENV: &str = "CEGRAPH_MAX_PIPELINE_BYTES";
/// 16 MiB: far beyond any hand-written pipeline, small enough to answer at once.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;

/// Read a pipeline file: refused unread above the size limit; located when not UTF-8.
pub fn read(path: &Path) -> Result<SourceFile> {
    let limit = max_bytes()?;
    // Unreadable input is bad input (exit 2), like every other load error.
    let unreadable = |e: std::io::Error| {
        Error::usage(
            format!("{}: cannot read the pipeline file: {e}", path.display()),
            "check the path and its permissions",
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let too_big = |size: u64| {
        Error::usage(
            format!(
                "{}: the file is {size} bytes, over the {limit}-byte limit for a pipeline file",
                path.display()
            ),
            format!(
                "a pipeline this large is almost surely not one; to read it anyway set {MAX_BYTES_ENV}"
            ),
        )
    };
    if len > limit {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow while read: never take more than the limit.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(path, text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bad = e.as_bytes()[valid];
            // The lossy text is identical up to the first bad byte, so positions agree.
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let line = text[..valid].matches('\n').count() as u64 + 1;
            let line_start = text[..valid].rfind('\n').map_or(0, |i| i + 1);
            let col = text[line_start..valid].chars().count() as u64 + 1;
            let src = SourceFile::new(path, text);
            Err(src.error(
                (line, col),
                format!("the file is not valid UTF-8: byte 0x{bad:02x} at byte offset {valid}"),
                Some("pipeline files are UTF-8 text; re-save it as UTF-8".into()),
            ))
        }
    }
}

fn max_bytes() -> Result<u64> {
    match std::env::var(MAX_BYTES_ENV) {
        Err(_) => Ok(DEFAULT_MAX_BYTES),
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            Error::usage(
                format!("{MAX_BYTES_ENV}=`{v}` is not a number of bytes"),
                format!("give a whole number, e.g. {MAX_BYTES_ENV}=33554432, or unset it"),
            )
        }),
    }
}

/// Parse the YAML of a pipeline, within limits no real pipeline reaches.
pub fn parse(src: &SourceFile) -> Result<PipelineFile> {
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    if src.text.lines().all(blank) {
        return Err(src.error(
            (1, 1),
            "the pipeline file is empty",
            Some("add a `stages:` mapping; README.md shows a first pipeline".into()),
        ));
    }
    let options = serde_saphyr::options! {
        // YAML 1.2 booleans only: `y`/`no`/`on` stay strings (a matrix value `no` is not `false`).
        strict_booleans: true,
        reject_unsupported_tags: true,
        // cegraph renders its own bounded excerpt; the library's would copy the input.
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_nodes: 250_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_documents: 1,
            max_total_scalar_bytes: DEFAULT_MAX_BYTES as usize,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
        },
    };
    // Tags first: the library turns some into other errors ("cannot be used here").
    refuse_tags(src)?;
    serde_saphyr::from_str_with_options(&src.text, options).map_err(|e| {
        let d = fields::refine(describe(&e), &e, &src.text);
        src.error(d.at, d.message, d.help)
    })
}

/// The YAML library decodes some tags itself rather than refusing them (`!!binary` into
/// text, `!!timestamp`, …). Only core-schema tags (`!!str`, `!!int`, …), which mean what
/// plain YAML already means, are accepted; any other tag is refused at its line:col. Only
/// when a `!` occurs at all; the event stream expands no alias and holds no tree, and a
/// syntax error ends the scan, leaving it to the parse that follows to report.
fn refuse_tags(src: &SourceFile) -> Result<()> {
    use serde_saphyr::granit_parser::{Event, Parser};
    if !src.text.contains('!') {
        return Ok(());
    }
    for item in Parser::new_from_str(&src.text) {
        let Ok((event, span)) = item else {
            return Ok(());
        };
        let tag = match &event {
            Event::Scalar(.., tag)
            | Event::SequenceStart(.., tag)
            | Event::MappingStart(.., tag) => tag.as_deref(),
            _ => None,
        };
        if let Some(tag) = tag.filter(|t| !t.is_yaml_core_schema()) {
            let at = (span.start.line() as u64, span.start.col() as u64 + 1);
            let written = format!("{}{}", tag.original_handle(), tag.suffix());
            return Err(src.error(
                at,
                format!("tag `{written}` is not supported"),
                Some(TAG_HELP.into()),
            ));
        }
    }
    Ok(())
}

const TAG_HELP: &str =
    "remove the `!tag`: pipelines use plain strings, numbers, lists and mappings";
