//! Reading and parsing a pipeline file, whatever it holds: a size limit checked before
//! anything is read, invalid UTF-8 located, the parser bounded (depth, nodes, aliases), and
//! every parser error told in cegraph's words (the table in [`describe`]) — never the
//! library's own text, which speaks to Rust programmers ("use Option<String>").

use std::io::Read;
use std::path::Path;

use serde_saphyr::granit_parser::ErrorKind as Syntax;
use serde_saphyr::{Error as YamlError, ExternalMessageSource};

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
    serde_saphyr::from_str_with_options(&src.text, options).map_err(|e| {
        let d = describe(&e);
        src.error(d.at, d.message, d.help)
    })
}

/// A parser error in cegraph's words.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub message: String,
    pub help: Option<String>,
    /// 1-based (line, column); (0, 0) when the library gave none.
    pub at: (u64, u64),
}

/// The table: each kind of error the YAML library reports → what cegraph says.
pub fn describe(e: &YamlError) -> Described {
    let at = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let (message, help) = words(e);
    Described {
        message,
        help: help.map(String::from),
        at,
    }
}

const SYNTAX_HELP: &str =
    "check the indentation, quotes and brackets here; `key: value` pairs need a space after `:`";
const LIMIT_HELP: &str =
    "a pipeline file never needs this; if it was generated, write plain lists and mappings";
const ANCHOR_HELP: &str =
    "define the anchor (`&name`) before using it (`*name`), and never inside itself";

fn words(e: &YamlError) -> (String, Option<&'static str>) {
    use YamlError as E;
    let s = |m: &str| m.to_string();
    match e {
        E::WithSnippet { error, .. } => words(error),
        E::AliasError { error, .. } => words(error),
        E::ExternalMessage { source, .. } => match source.as_ref() {
            ExternalMessageSource::Parser(scan) => syntax_words(scan.kind()),
            _ => (s("this value is not valid here"), None),
        },
        E::Message { msg, .. } => custom_words(msg),
        E::Eof { .. } => (
            s("the file ends in the middle of a value"),
            Some(SYNTAX_HELP),
        ),
        E::MultipleDocuments { .. } => (
            s("the file holds more than one YAML document (`---`)"),
            Some("keep one pipeline per file"),
        ),
        E::Unexpected { expected, .. } => (format!("expected {}", expected_words(expected)), None),
        E::MergeValueNotMapOrSeqOfMaps { .. } | E::MergeKeyNotAllowed { .. } => (
            s("a merge key (`<<`) must name a mapping or a list of mappings"),
            None,
        ),
        E::UnsupportedTag { tag, .. } | E::TaggedStructFieldName { tag, .. } => (
            format!("tag `{tag}` is not supported"),
            Some("remove the `!tag`: pipelines use plain strings, numbers, lists and mappings"),
        ),
        E::InvalidBinaryBase64 { .. }
        | E::BinaryNotUtf8 { .. }
        | E::TaggedScalarCannotDeserializeIntoString { .. }
        | E::BytesNotSupportedMissingBinaryTag { .. } => (
            s("a tagged value (`!!binary`, `!tag`) cannot be used here"),
            Some("write the value as plain text"),
        ),
        E::InvalidBooleanStrict { .. } => (
            s("expected `true` or `false`"),
            Some("`yes`, `no`, `on` and `off` are strings in a pipeline"),
        ),
        E::NullIntoString { .. } | E::InvalidCharNull { .. } => (
            s("this value is empty, but text is needed here"),
            Some("write a value after the `:`, or remove the key"),
        ),
        E::InvalidScalar { ty, .. } => (
            format!("expected {}", expected_words(ty)),
            Some(number_help(ty)),
        ),
        E::NonFiniteFloat { value, .. } => (
            format!("`{value}` is not a finite number"),
            Some("write an ordinary number"),
        ),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            format!(
                "expected {}, found {}",
                expected_words(expected),
                found_words(unexpected)
            ),
            Some(number_help(expected)),
        ),
        E::SerdeInvalidLength { expected, .. } => (
            format!(
                "wrong number of items: expected {}",
                expected_words(expected)
            ),
            None,
        ),
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!("`{variant}` is not one of: {}", expected.join(", ")),
            None,
        ),
        E::SerdeUnknownField {
            field, expected, ..
        } => (
            format!(
                "unknown key `{field}`; known keys here: {}",
                expected.join(", ")
            ),
            Some("check the spelling; schemas/pipeline.schema.json lists every field"),
        ),
        E::SerdeMissingField { field, .. } => (
            format!("missing key `{field}`"),
            Some("add it; schemas/pipeline.schema.json lists every field"),
        ),
        E::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!(
                    "key `{}` appears twice in this mapping",
                    crate::error::bounded(k, 80)
                ),
                None => s("a key appears twice in this mapping"),
            },
            Some("each key may appear once in a mapping: remove or rename one"),
        ),
        E::UnknownAnchor { .. } => (
            s("`*alias` names an anchor that is not defined"),
            Some(ANCHOR_HELP),
        ),
        E::RecursiveReferencesRequireWeakTypes { .. } => {
            (s("an anchor refers to itself"), Some(ANCHOR_HELP))
        }
        E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => (
            s("aliases (`*name`) expand to too much data (an alias bomb?)"),
            Some(LIMIT_HELP),
        ),
        E::Budget { breach, .. } => (budget_words(breach), Some(LIMIT_HELP)),
        E::FoldedBlockScalarMustIndentContent { .. } | E::IndentationError { .. } => (
            s("the text of this block (`>` or `|`) must be indented"),
            Some(SYNTAX_HELP),
        ),
        E::QuotingRequired { value, .. } => (
            format!("`{}` must be quoted", crate::error::bounded(value, 80)),
            Some("write it in quotes"),
        ),
        E::InvalidUtf8Input => (
            s("the file is not valid UTF-8"),
            Some("re-save it as UTF-8"),
        ),
        E::IOError { .. } => (s("the file could not be read"), None),
        _ => (
            s("this part of the file cannot be read as a pipeline"),
            Some(SYNTAX_HELP),
        ),
    }
}

/// Syntax errors of the YAML scanner and parser.
fn syntax_words(kind: &Syntax) -> (String, Option<&'static str>) {
    use Syntax as K;
    let s = |m: &str| (m.to_string(), Some(SYNTAX_HELP));
    match kind {
        K::UnclosedQuotedScalar => (
            "this quote is never closed".into(),
            Some("end the value with the quote it starts with; inside '...' write a `'` as `''`"),
        ),
        K::UnclosedFlowCollection { open } => s(&format!("`{open}` is never closed")),
        K::MismatchedFlowCollectionEnd { open, close } => {
            s(&format!("`{open}` is closed by `{close}`"))
        }
        K::MisplacedFlowCollectionEnd => s("a closing bracket with no opening one"),
        K::UnexpectedEof
        | K::UnexpectedEofFlowSequence
        | K::UnexpectedEofFlowMapping
        | K::UnexpectedEofImplicitFlowMapping
        | K::UnexpectedEofBlockSequence
        | K::UnexpectedEofBlockMapping => s("the file ends in the middle of a value"),
        K::InvalidIndentation
        | K::InvalidFlowScalarIndent
        | K::InvalidQuotedScalarIndent
        | K::InvalidBlockScalarIndent => {
            s("this line is not indented consistently with the ones before")
        }
        K::TabNotAllowed | K::TabInBlockIndentation | K::TabInIndentation | K::TabInPlainScalar => {
            (
                "a tab where YAML needs spaces".into(),
                Some("indent with spaces, not tabs"),
            )
        }
        K::ExpectedBlockMappingKey | K::SimpleKeyExpected | K::InvalidSimpleKey => {
            s("expected a `key: value` line here")
        }
        K::ExpectedBlockSequenceEntry => s("expected a `- item` line here"),
        K::ExpectedFlowMappingSeparator => s("expected `,` or `}` in this `{...}` mapping"),
        K::ExpectedFlowSequenceSeparator => s("expected `,` or `]` in this `[...]` list"),
        K::ExpectedNodeContent => s("expected a value here"),
        K::UnknownAnchor => (
            "`*alias` names an anchor that is not defined".into(),
            Some(ANCHOR_HELP),
        ),
        K::MissingAnchorOrAliasName => (
            "`&` or `*` must be followed by a name".into(),
            Some(ANCHOR_HELP),
        ),
        K::UnexpectedCharacter { character } => s(&format!(
            "unexpected character `{}`",
            character.escape_default()
        )),
        K::RecursionLimitExceeded => ("the file nests too deeply".into(), Some(LIMIT_HELP)),
        K::MultipleDocumentsUnsupported | K::ExpectedDocumentStart | K::InvalidDocumentEnd => (
            "the file holds more than one YAML document (`---`)".into(),
            Some("keep one pipeline per file"),
        ),
        K::UnknownQuotedScalarEscape
        | K::InvalidQuotedScalarHexEscape
        | K::InvalidLowSurrogateHexEscape
        | K::InvalidLowSurrogate
        | K::MissingLowSurrogate
        | K::UnpairedLowSurrogate
        | K::InvalidUnicodeEscape => (
            "invalid `\\` escape in a double-quoted string".into(),
            Some("use single quotes for text with backslashes, or write `\\\\`"),
        ),
        K::UndeclaredTagHandle
        | K::ExpectedTagBang
        | K::InvalidGlobalTagCharacter
        | K::InvalidTagTerminator
        | K::MissingTagUri
        | K::UnclosedVerbatimTag
        | K::InvalidTagEscape => (
            "invalid or unsupported tag (`!...`)".into(),
            Some("remove the `!tag`: pipelines use plain strings, numbers, lists and mappings"),
        ),
        K::MappingValueNotAllowed
        | K::MappingKeyNotAllowed
        | K::InvalidColonPlacement
        | K::InvalidMappingValueWhitespace
        | K::FlowMappingValueAdjacentCollection => (
            "a `:` here starts a mapping where a plain value was expected".into(),
            Some("put a value that holds `: ` (or ` #`) in quotes: '...' or \"...\""),
        ),
        K::BlockSequenceEntryNotAllowed
        | K::BlockEntryInFlowCollection
        | K::InvalidBlockEntryWhitespace => s("a `- ` list item is not allowed here"),
        K::PlainScalarStartsWithDashFlowIndicator | K::UnexpectedEndOfPlainScalar => (
            "this unquoted value cannot be read as text".into(),
            Some("put the value in quotes: '...' or \"...\""),
        ),
        K::InvalidTrailingSingleQuotedScalar | K::InvalidTrailingDoubleQuotedScalar => (
            "text follows the closing quote".into(),
            Some("put the whole value inside the quotes"),
        ),
        K::BomInsideDocument => s("a byte-order mark in the middle of the file"),
        K::CommentNotSeparated => s("a `#` comment needs a space before it"),
        _ => s("this is not valid YAML"),
    }
}

/// `serde::de::Error::custom` texts from cegraph's own types.
fn custom_words(msg: &str) -> (String, Option<&'static str>) {
    if msg.contains("MatrixAxis") {
        (
            "a matrix axis must be a list of values or `${vars.NAME}`".into(),
            Some("e.g. `variant: [baseline, rope]`"),
        )
    } else if msg.contains("RemoteSpec") {
        (
            "a remote must be a URL or `{url: ..., default: true}`".into(),
            None,
        )
    } else {
        ("this value is not valid here".into(), None)
    }
}

/// Serde's "expected ..." phrases for the types a pipeline uses, in plain words.
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    let plain = match e {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" | "a float" => "a number",
        "a string" | "string" | "a borrowed string" | "char" | "a character" | "string scalar"
        | "scalar" | "single YAML node" => "text (a single value)",
        "mapping start" | "empty mapping start" | "mapping end" | "empty mapping end" | "map" => {
            "a mapping"
        }
        "sequence start" | "seq" => "a list",
        "null" => "nothing",
        "an integer" => "a whole number",
        "a boolean" | "bool" => "`true` or `false`",
        "a sequence" | "a list" => "a list",
        "a map" => "a mapping",
        "any valid JSON value" | "a span-aware newtype wrapper" => "a value",
        _ if e.starts_with("struct ") || e.contains("map") => "a mapping",
        _ if e.starts_with("a sequence") || e.starts_with("tuple") => "a list",
        _ => "a different kind of value",
    };
    plain.to_string()
}

fn found_words(unexpected: &str) -> String {
    let u = unexpected.trim();
    if u.starts_with("sequence") {
        "a list".into()
    } else if u.starts_with("map") {
        "a mapping".into()
    } else if u == "unit" || u.contains("null") {
        "nothing".into()
    } else {
        crate::error::bounded(u, 80)
    }
}

fn number_help(_expected: &str) -> &'static str {
    "schemas/pipeline.schema.json says what each field takes"
}

fn budget_words(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Depth { .. } => "the file nests lists and mappings more than 64 deep".into(),
        B::Nodes { .. } => "the file holds too many values (over 250,000)".into(),
        B::Aliases { .. } | B::AliasAnchorRatio { .. } => {
            "the file uses too many aliases (`*name`) for its anchors (an alias bomb?)".into()
        }
        B::Anchors { .. } => "the file defines too many anchors (`&name`)".into(),
        B::Documents { .. } => "the file holds more than one YAML document (`---`)".into(),
        B::ScalarBytes { .. } | B::InputBytes { .. } => "the file's text is too large".into(),
        _ => "the file is too large or too complex to be a pipeline".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_saphyr::Location;
    use serde_saphyr::budget::BudgetBreach;

    use super::*;

    /// Words a Rust developer would write, never a pipeline author.
    const LIBRARY_WORDS: &[&str] = &[
        "Option<",
        "Options",
        "DuplicateKeyPolicy",
        "span-aware",
        "newtype",
        "weak recursion",
        "serde",
        "deserialize",
        "struct",
        "enum",
        "budget",
        "scalar",
        "<stream-start>",
        "simple key",
        "u32",
        "unit",
        "seed",
        "internal",
    ];

    #[track_caller]
    fn assert_plain(message: &str, help: Option<&str>, library_text: &str) {
        assert_ne!(message, library_text);
        for w in LIBRARY_WORDS {
            assert!(!message.contains(w), "{w:?} in {message:?}");
            assert!(!help.unwrap_or("").contains(w), "{w:?} in {help:?}");
        }
    }

    #[test]
    fn every_library_error_kind_is_told_in_cegraphs_words() {
        let at = Location::UNKNOWN;
        let cases: Vec<(YamlError, &str)> = vec![
            (
                YamlError::DuplicateMappingKey {
                    key: Some("x".into()),
                    location: at,
                },
                "key `x` appears twice in this mapping",
            ),
            (
                YamlError::DuplicateMappingKey {
                    key: None,
                    location: at,
                },
                "a key appears twice",
            ),
            (
                YamlError::NullIntoString { location: at },
                "this value is empty",
            ),
            (
                YamlError::InvalidCharNull { location: at },
                "this value is empty",
            ),
            (
                YamlError::RecursiveReferencesRequireWeakTypes { location: at },
                "an anchor refers to itself",
            ),
            (YamlError::UnknownAnchor { location: at }, "not defined"),
            (
                YamlError::SerdeInvalidType {
                    unexpected: "string \"many\"".into(),
                    expected: "u32".into(),
                    location: at,
                },
                "expected a whole number, 0 or more, found string \"many\"",
            ),
            (
                YamlError::SerdeInvalidType {
                    unexpected: "integer `5`".into(),
                    expected: "a span-aware newtype wrapper".into(),
                    location: at,
                },
                "expected a value",
            ),
            (
                YamlError::SerdeInvalidValue {
                    unexpected: "sequence".into(),
                    expected: "struct StageSpec".into(),
                    location: at,
                },
                "expected a mapping, found a list",
            ),
            (
                YamlError::SerdeInvalidLength {
                    len: 3,
                    expected: "a sequence".into(),
                    location: at,
                },
                "wrong number of items",
            ),
            (
                YamlError::SerdeUnknownVariant {
                    variant: "x".into(),
                    expected: vec!["a", "b"],
                    location: at,
                },
                "`x` is not one of: a, b",
            ),
            (
                YamlError::SerdeUnknownField {
                    field: "outz".into(),
                    expected: vec!["outs"],
                    location: at,
                },
                "unknown key `outz`",
            ),
            (
                YamlError::SerdeMissingField {
                    field: "stages",
                    location: at,
                },
                "missing key `stages`",
            ),
            (
                YamlError::Unexpected {
                    expected: "string scalar",
                    location: at,
                },
                "expected text",
            ),
            (
                YamlError::Unexpected {
                    expected: "mapping start",
                    location: at,
                },
                "expected a mapping",
            ),
            (
                YamlError::Message {
                    msg: "data did not match any variant of untagged enum MatrixAxis".into(),
                    location: at,
                },
                "a matrix axis must be a list",
            ),
            (
                YamlError::Message {
                    msg: "data did not match any variant of untagged enum RemoteSpec".into(),
                    location: at,
                },
                "a remote must be a URL",
            ),
            (
                YamlError::Message {
                    msg: "anything else from a Deserialize impl".into(),
                    location: at,
                },
                "this value is not valid here",
            ),
            (YamlError::Eof { location: at }, "ends in the middle"),
            (
                YamlError::MultipleDocuments {
                    hint: "use from_multiple",
                    location: at,
                },
                "more than one YAML document",
            ),
            (
                YamlError::MergeValueNotMapOrSeqOfMaps { location: at },
                "merge key",
            ),
            (YamlError::MergeKeyNotAllowed { location: at }, "merge key"),
            (
                YamlError::UnsupportedTag {
                    tag: "!!python/object".into(),
                    location: at,
                },
                "tag `!!python/object` is not supported",
            ),
            (
                YamlError::TaggedStructFieldName {
                    tag: "!x".into(),
                    location: at,
                },
                "is not supported",
            ),
            (
                YamlError::InvalidBinaryBase64 { location: at },
                "tagged value",
            ),
            (YamlError::BinaryNotUtf8 { location: at }, "tagged value"),
            (
                YamlError::TaggedScalarCannotDeserializeIntoString { location: at },
                "tagged value",
            ),
            (
                YamlError::BytesNotSupportedMissingBinaryTag { location: at },
                "tagged value",
            ),
            (
                YamlError::InvalidBooleanStrict { location: at },
                "`true` or `false`",
            ),
            (
                YamlError::InvalidScalar {
                    ty: "u32",
                    location: at,
                },
                "expected a whole number, 0 or more",
            ),
            (
                YamlError::NonFiniteFloat {
                    value: ".nan".into(),
                    location: at,
                },
                "not a finite number",
            ),
            (
                YamlError::AliasReplayCounterOverflow { location: at },
                "aliases",
            ),
            (
                YamlError::AliasReplayLimitExceeded {
                    total_replayed_events: 9,
                    max_total_replayed_events: 1,
                    location: at,
                },
                "aliases",
            ),
            (
                YamlError::AliasExpansionLimitExceeded {
                    anchor_id: 1,
                    expansions: 9,
                    max_expansions_per_anchor: 1,
                    location: at,
                },
                "aliases",
            ),
            (
                YamlError::AliasReplayStackDepthExceeded {
                    depth: 9,
                    max_depth: 1,
                    location: at,
                },
                "aliases",
            ),
            (
                YamlError::Budget {
                    breach: BudgetBreach::Depth { depth: 65 },
                    location: at,
                },
                "nests",
            ),
            (
                YamlError::Budget {
                    breach: BudgetBreach::Nodes { nodes: 250_001 },
                    location: at,
                },
                "too many values",
            ),
            (
                YamlError::Budget {
                    breach: BudgetBreach::Aliases { aliases: 10_001 },
                    location: at,
                },
                "aliases",
            ),
            (
                YamlError::Budget {
                    breach: BudgetBreach::AliasAnchorRatio {
                        aliases: 1000,
                        anchors: 1,
                    },
                    location: at,
                },
                "aliases",
            ),
            (
                YamlError::Budget {
                    breach: BudgetBreach::Anchors { anchors: 10_001 },
                    location: at,
                },
                "anchors",
            ),
            (
                YamlError::Budget {
                    breach: BudgetBreach::Documents { documents: 2 },
                    location: at,
                },
                "more than one YAML document",
            ),
            (
                YamlError::Budget {
                    breach: BudgetBreach::ScalarBytes {
                        total_scalar_bytes: 1,
                    },
                    location: at,
                },
                "too large",
            ),
            (
                YamlError::Budget {
                    breach: BudgetBreach::SequenceUnbalanced,
                    location: at,
                },
                "too large or too complex",
            ),
            (
                YamlError::FoldedBlockScalarMustIndentContent { location: at },
                "must be indented",
            ),
            (
                YamlError::QuotingRequired {
                    value: "1".into(),
                    location: at,
                },
                "`1` must be quoted",
            ),
            (YamlError::InvalidUtf8Input, "not valid UTF-8"),
            (
                YamlError::UnexpectedValueForUnit { location: at },
                "cannot be read as a pipeline",
            ),
            (
                YamlError::InternalDepthUnderflow { location: at },
                "cannot be read as a pipeline",
            ),
            (
                YamlError::ContainerEndMismatch { location: at },
                "cannot be read as a pipeline",
            ),
        ];
        for (e, expected) in cases {
            let library_text = e.to_string();
            let (message, help) = words(&e);
            assert!(
                message.contains(expected),
                "{e:?}: {message:?} lacks {expected:?}"
            );
            assert_plain(&message, help, &library_text);
        }
    }

    #[test]
    fn every_syntax_error_kind_is_told_in_cegraphs_words() {
        use Syntax as K;
        let cases = [
            (K::UnclosedQuotedScalar, "quote is never closed"),
            (
                K::UnclosedFlowCollection { open: '[' },
                "`[` is never closed",
            ),
            (
                K::MismatchedFlowCollectionEnd {
                    open: '[',
                    close: '}',
                },
                "`[` is closed by `}`",
            ),
            (K::MisplacedFlowCollectionEnd, "closing bracket"),
            (K::UnexpectedEofBlockMapping, "ends in the middle"),
            (K::InvalidIndentation, "indented"),
            (K::TabInIndentation, "a tab"),
            (K::ExpectedBlockMappingKey, "`key: value`"),
            (K::SimpleKeyExpected, "`key: value`"),
            (K::ExpectedBlockSequenceEntry, "`- item`"),
            (K::ExpectedFlowMappingSeparator, "`,` or `}`"),
            (K::ExpectedFlowSequenceSeparator, "`,` or `]`"),
            (K::ExpectedNodeContent, "expected a value"),
            (K::UnknownAnchor, "not defined"),
            (K::MissingAnchorOrAliasName, "followed by a name"),
            (
                K::UnexpectedCharacter { character: '@' },
                "unexpected character `@`",
            ),
            (K::RecursionLimitExceeded, "nests too deeply"),
            (K::ExpectedDocumentStart, "more than one YAML document"),
            (K::UnknownQuotedScalarEscape, "escape"),
            (K::UndeclaredTagHandle, "tag"),
            (K::MappingValueNotAllowed, "a `:` here"),
            (K::MappingKeyNotAllowed, "a `:` here"),
            (K::BlockSequenceEntryNotAllowed, "`- ` list item"),
            (K::UnexpectedEndOfPlainScalar, "unquoted value"),
            (
                K::InvalidTrailingSingleQuotedScalar,
                "follows the closing quote",
            ),
            (K::CommentNotSeparated, "`#` comment"),
            (K::DuplicateVersionDirective, "not valid YAML"),
            (K::Custom("anything".into()), "not valid YAML"),
        ];
        for (kind, expected) in cases {
            let library_text = kind.to_string();
            let (message, help) = syntax_words(&kind);
            assert!(
                message.contains(expected),
                "{kind:?}: {message:?} lacks {expected:?}"
            );
            assert_plain(&message, help, &library_text);
        }
    }
}
