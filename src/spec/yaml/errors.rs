//! The table: each kind of error the YAML library (serde-saphyr, and granit-parser under it)
//! reports → what cegraph says, with a fix. The library's own text is never shown.

use serde_saphyr::granit_parser::ErrorKind as Syntax;
use serde_saphyr::{Error as YamlError, ExternalMessageSource};

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

pub(super) fn words(e: &YamlError) -> (String, Option<&'static str>) {
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
            Some("check the spelling; `cegraph schema` prints every field"),
        ),
        E::SerdeMissingField { field, .. } => (
            format!("missing key `{field}`"),
            Some("add it; `cegraph schema` prints every field"),
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
pub(super) fn syntax_words(kind: &Syntax) -> (String, Option<&'static str>) {
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
    } else if msg.contains("MetricsSpec") {
        (
            "metrics must be a file or `{file: ..., columns: [...]}`".into(),
            Some(
                "e.g. `metrics: out/m.json` or `metrics: {file: out/m.csv, columns: [loss, acc]}`",
            ),
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
    "`cegraph schema` says what each field takes"
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
