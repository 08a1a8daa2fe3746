//! The `remotes:` section: remote caches by name, checked when the pipeline is loaded so a
//! typo'd URL is reported at its line rather than at the first `push`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::model::{At, RemoteSpec};
use crate::error::{Result, SourceFile};

/// URL schemes a remote may use; `http(s)` remotes are read-only.
pub const SCHEMES: &[&str] = &["s3", "gs", "az", "file", "http", "https"];

/// One declared remote cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteDecl {
    pub url: String,
    /// Picked when `--remote` is not given.
    pub default: bool,
    /// Where it is declared, for error messages.
    pub line_col: (u64, u64),
}

pub fn resolve(
    src: &SourceFile,
    specs: &IndexMap<String, At<RemoteSpec>>,
) -> Result<IndexMap<String, RemoteDecl>> {
    let mut out = IndexMap::new();
    for (name, spec) in specs {
        let at = spec.line_col();
        if !super::valid_name(name) {
            return Err(src.error(
                at,
                format!("remote name `{name}` may only use letters, digits, `_` and `-`"),
                None,
            ));
        }
        let (url, default) = match spec.value() {
            RemoteSpec::Url(u) => (u.clone(), false),
            RemoteSpec::Table(t) => (t.url.clone(), t.default),
        };
        check_url(&url).map_err(|why| {
            src.error(
                at,
                format!("remote `{name}`: {why}"),
                Some(
                    "use s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, \
                     file:///absolute/dir or https://host/prefix"
                        .into(),
                ),
            )
        })?;
        if default && let Some((other, _)) = out.iter().find(|(_, d): &(_, &RemoteDecl)| d.default)
        {
            return Err(src.error(
                at,
                format!("remotes `{other}` and `{name}` are both marked `default: true`"),
                Some("mark at most one remote as the default".into()),
            ));
        }
        out.insert(
            name.clone(),
            RemoteDecl {
                url,
                default,
                line_col: at,
            },
        );
    }
    Ok(out)
}

/// Why `url` cannot name a remote cache, if it cannot.
fn check_url(url: &str) -> std::result::Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    let scheme = parsed.scheme();
    if !SCHEMES.contains(&scheme) {
        return Err(format!("unsupported URL scheme `{scheme}://`"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "credentials do not belong in the pipeline file; use the environment (AWS_ACCESS_KEY_ID, …)"
                .into(),
        );
    }
    match scheme {
        "file" if parsed.host_str().is_some_and(|h| !h.is_empty()) => Err(format!(
            "`{url}` names a host; write an absolute path as file:///dir"
        )),
        "file" => Ok(()),
        _ if parsed.host_str().is_none_or(str::is_empty) => {
            Err(format!("`{url}` has no bucket or host"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn remote_urls_are_checked() {
        for ok in [
            "s3://bucket/prefix",
            "s3://bucket",
            "gs://b/p",
            "az://container/p",
            "file:///mnt/shared/cache",
            "https://host/cache",
            "http://127.0.0.1:8000",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("ftp://host/x", "unsupported URL scheme `ftp://`"),
            ("bucket/prefix", "is not a URL"),
            ("s3:///prefix", "has no bucket or host"),
            ("file://host/dir", "names a host"),
            ("s3://AKIA:secret@bucket/x", "credentials do not belong"),
        ] {
            let err = check_url(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
