//! One case per kind of library error: each is told in cegraph's words.
use serde_saphyr::Location;
use serde_saphyr::budget::BudgetBreach;

use serde_saphyr::Error as YamlError;
use serde_saphyr::granit_parser::ErrorKind as Syntax;

use super::errors::{syntax_words, words};

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
