//! Opening a remote from its URL, with endpoints, regions and credentials from the
//! environment (never from the pipeline file), and turning the store's failures into
//! one-line errors that say what to set or fix.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Gcs,
    Azure,
    File,
    Http,
}

/// An opened remote: the store, the key prefix inside it, and what error messages need.
pub struct Connection {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Key,
    pub scheme: Scheme,
    /// Remote name and URL as declared.
    pub name: String,
    pub url: String,
    /// Where requests go: the endpoint URL, or the directory of a `file://` remote.
    pub endpoint: String,
    /// `file://` remotes: the directory.
    pub dir: Option<PathBuf>,
}

/// An unreachable endpoint should fail in seconds, not after minutes of retries; large
/// transfers must not hit a whole-request timeout, so only connect and read are bounded.
fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_read_timeout(Duration::from_secs(60))
        .with_timeout_disabled()
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    }
}

/// Open the remote `name` at `url`; `create` makes a missing `file://` directory (for pushes).
pub fn connect(name: &str, url: &str, create: bool) -> Result<Connection, Error> {
    let parsed = url::Url::parse(url).map_err(|e| Error::Remote {
        remote: name.into(),
        message: format!("`{url}` is not a URL: {e}"),
        help: "fix the remote's URL in the pipeline's `remotes:`".into(),
    })?;
    let prefix = Key::from(parsed.path().trim_matches('/'));
    let fail = |message: String, help: &str| Error::Remote {
        remote: name.into(),
        message,
        help: help.into(),
    };
    let (store, scheme, endpoint, prefix, dir): (Arc<dyn ObjectStore>, _, _, _, _) = match parsed
        .scheme()
    {
        "s3" => {
            let (builder, endpoint) = s3_builder(name, url)?;
            let store = builder
                .build()
                .map_err(|e| fail(one_line(&e), "check the s3:// URL and the AWS_* variables"))?;
            (Arc::new(store), Scheme::S3, endpoint, prefix, None)
        }
        "gs" => {
            let store = GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .with_client_options(client_options())
                    .with_retry(retry())
                    .build()
                    .map_err(|e| {
                        fail(
                            one_line(&e),
                            "set GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT) to a service account key",
                        )
                    })?;
            let endpoint = "https://storage.googleapis.com".to_string();
            (Arc::new(store), Scheme::Gcs, endpoint, prefix, None)
        }
        "az" => {
            let store = MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_client_options(client_options())
                    .with_retry(retry())
                    .build()
                    .map_err(|e| {
                        fail(
                            one_line(&e),
                            "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or a SAS token)",
                        )
                    })?;
            let endpoint = std::env::var("AZURE_STORAGE_ACCOUNT_NAME")
                .map(|a| format!("https://{a}.blob.core.windows.net"))
                .unwrap_or_else(|_| "Azure Blob Storage".into());
            (Arc::new(store), Scheme::Azure, endpoint, prefix, None)
        }
        "file" => {
            let dir = PathBuf::from(parsed.path());
            // The directory is created by the first push; reads of a missing one say so.
            if create {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    fail(
                        format!("cannot create {}: {e}", dir.display()),
                        "fix the file:// URL or the directory's permissions",
                    )
                })?;
            } else if !dir.is_dir() {
                return Err(fail(
                    format!("directory {} does not exist", dir.display()),
                    "fix the file:// URL, or `cegraph push` to it first",
                ));
            }
            let store = LocalFileSystem::new_with_prefix(&dir).map_err(|e| {
                fail(
                    format!("cannot open {}: {}", dir.display(), one_line(&e)),
                    "create the directory, or fix the file:// URL",
                )
            })?;
            let endpoint = dir.display().to_string();
            (
                Arc::new(store),
                Scheme::File,
                endpoint,
                Key::default(),
                Some(dir),
            )
        }
        "http" | "https" => {
            // The URL's path is the base of every key: the store is rooted there.
            let store = HttpBuilder::new()
                .with_url(url.trim_end_matches('/'))
                // The URL says http:// explicitly: allow it.
                .with_client_options(client_options().with_allow_http(parsed.scheme() == "http"))
                .with_retry(retry())
                .build()
                .map_err(|e| fail(one_line(&e), "fix the http(s):// URL"))?;
            (
                Arc::new(store),
                Scheme::Http,
                url.to_string(),
                Key::default(),
                None,
            )
        }
        other => {
            return Err(fail(
                format!("unsupported URL scheme `{other}://`"),
                "use s3://, gs://, az://, file:// or https://",
            ));
        }
    };
    // For tests only: slow every upload down (object_store's own throttle), so that a push can
    // be killed midway reliably.
    let store = match std::env::var("CEGRAPH_TEST_PUT_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(ms) => Arc::new(ThrottledStore::new(
            store,
            ThrottleConfig {
                wait_put_per_call: Duration::from_millis(ms),
                ..ThrottleConfig::default()
            },
        )) as Arc<dyn ObjectStore>,
        None => store,
    };
    Ok(Connection {
        store,
        prefix,
        scheme,
        name: name.into(),
        url: url.into(),
        endpoint,
        dir,
    })
}

/// An S3 client for `url`: `AWS_*` variables first, then the shared credentials and config
/// files (`AWS_PROFILE`, default `default`), then web identity, container or instance roles.
fn s3_builder(name: &str, url: &str) -> Result<(AmazonS3Builder, String), Error> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let profile_name = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let home = env("HOME").map(PathBuf::from).unwrap_or_default();
    let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let config_file = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let profile = read_ini_section(&credentials_file, &profile_name);
    let config = read_ini_section(&config_file, &format!("profile {profile_name}"))
        .or_else(|| read_ini_section(&config_file, &profile_name));

    let mut b = AmazonS3Builder::from_env()
        .with_url(url)
        .with_retry(retry())
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            "5s",
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout),
            "60s",
        )
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "1h");
    // Run records are created "only if absent" (If-None-Match), so that of two machines
    // pushing one key at once exactly one wins and the other learns of the conflict.
    if env("AWS_CONDITIONAL_PUT").is_none() {
        b = b.with_conditional_put(S3ConditionalPut::ETagMatch);
    }
    let env_keys = env("AWS_ACCESS_KEY_ID").is_some() || env("AWS_SECRET_ACCESS_KEY").is_some();
    let mut from_profile = false;
    if !env_keys
        && let Some(p) = &profile
        && let (Some(id), Some(secret)) =
            (p.get("aws_access_key_id"), p.get("aws_secret_access_key"))
    {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
        if let Some(token) = p.get("aws_session_token") {
            b = b.with_token(token);
        }
        from_profile = true;
    }
    if env("AWS_PROFILE").is_some() && !env_keys && profile.is_none() && config.is_none() {
        return Err(Error::Remote {
            remote: name.into(),
            message: format!(
                "AWS_PROFILE={profile_name} names no profile in {}",
                credentials_file.display()
            ),
            help: "fix AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
        });
    }
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| config.as_ref().and_then(|c| c.get("region").cloned()));
    if let Some(r) = &region {
        b = b.with_region(r);
    }
    let endpoint = env("AWS_ENDPOINT_URL_S3")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| config.as_ref().and_then(|c| c.get("endpoint_url").cloned()));
    if let Some(e) = &endpoint {
        b = b.with_endpoint(e);
        // The user chose a plain-http endpoint (a local S3 such as MinIO or moto): allow it.
        if e.starts_with("http://") {
            b = b.with_allow_http(true);
        }
    }
    let anonymous = env("AWS_SKIP_SIGNATURE").is_some_and(|v| v == "true" || v == "1");
    let role = env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
    let metadata_disabled = env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v == "true");
    if !env_keys && !from_profile && !anonymous && !role && metadata_disabled {
        return Err(no_credentials(name));
    }
    let endpoint = endpoint.unwrap_or_else(|| {
        format!(
            "https://s3.{}.amazonaws.com",
            region.as_deref().unwrap_or("us-east-1")
        )
    });
    Ok((b, endpoint))
}

fn no_credentials(name: &str) -> Error {
    Error::Remote {
        remote: name.into(),
        message: "no AWS credentials found".into(),
        help: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile \
               in ~/.aws/credentials (AWS_SKIP_SIGNATURE=true for a public bucket)"
            .into(),
    }
}

/// `key = value` lines of one `[section]` of an AWS-style INI file.
fn read_ini_section(path: &std::path::Path, section: &str) -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut found = None;
    let mut current: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim());
            if current == Some(section) {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if current == Some(section)
            && let Some((k, v)) = line.split_once('=')
            && let Some(map) = found.as_mut()
        {
            map.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    found
}

/// An error and its causes on one line (`a: b: c`), without repeats.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(s.as_str())) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

impl Connection {
    /// A store failure as a one-line error saying what to fix. `what` names the operation.
    pub fn explain(&self, what: &str, e: &object_store::Error) -> Error {
        let text = one_line(e);
        let lower = text.to_ascii_lowercase();
        let (message, help): (String, String) = if lower.contains("nosuchbucket")
            || lower.contains("bucket does not exist")
            || lower.contains("containernotfound")
        {
            let bucket = url::Url::parse(&self.url)
                .ok()
                .and_then(|u| u.host_str().map(String::from))
                .unwrap_or_default();
            (
                format!("bucket `{bucket}` does not exist at {}", self.endpoint),
                "create the bucket, or fix the remote's URL (and AWS_ENDPOINT_URL)".into(),
            )
        } else if lower.contains("169.254.169.254")
            || lower.contains("169.254.170.2")
            || lower.contains("credential")
                && !lower.contains("invalidaccesskeyid")
                && !lower.contains("signature")
        {
            let e = no_credentials(&self.name);
            return match (e, self.scheme) {
                (
                    Error::Remote {
                        remote,
                        message,
                        help,
                    },
                    Scheme::S3,
                ) => Error::Remote {
                    remote,
                    message: format!("{message} ({what}: {text})"),
                    help,
                },
                (_, scheme) => Error::Remote {
                    remote: self.name.clone(),
                    message: format!("no usable credentials ({what}: {text})"),
                    help: match scheme {
                        Scheme::Gcs => "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file (or GOOGLE_SERVICE_ACCOUNT)",
                        Scheme::Azure => "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_KEY)",
                        _ => "set the credentials for this store in the environment",
                    }
                    .into(),
                },
            };
        } else if matches!(e, object_store::Error::Unauthenticated { .. })
            || lower.contains("invalidaccesskeyid")
            || lower.contains("signaturedoesnotmatch")
        {
            (
                format!(
                    "the credentials were rejected by {} ({what})",
                    self.endpoint
                ),
                "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)".into(),
            )
        } else if matches!(e, object_store::Error::PermissionDenied { .. })
            || lower.contains("accessdenied")
            || lower.contains("permission denied")
            || lower.contains("403 forbidden")
        {
            (
                format!("permission denied: {what} at {}", self.url),
                "grant these credentials read (pull, verify) and write (push) access to the bucket and prefix"
                    .into(),
            )
        } else if lower.contains("connection refused")
            || lower.contains("error trying to connect")
            || lower.contains("tcp connect")
            || lower.contains("dns error")
            || lower.contains("operation timed out")
            || lower.contains("timed out")
            || lower.contains("connect error")
        {
            (
                format!("cannot reach {} ({what}): {text}", self.endpoint),
                match self.scheme {
                    Scheme::S3 => "check AWS_ENDPOINT_URL (and AWS_REGION), the network, and that the service is running",
                    _ => "check the remote's URL, the network, and that the service is running",
                }
                .into(),
            )
        } else {
            (
                format!("{what} failed: {text}"),
                "check the remote's URL and access; rerun to resume what is left".into(),
            )
        };
        Error::Remote {
            remote: self.name.clone(),
            message,
            help,
        }
    }

    /// The remote's key for `rel` (`objects/ab/cdef…`), under its prefix.
    pub fn key(&self, rel: &str) -> Key {
        if self.prefix.as_ref().is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_ini_section;

    #[test]
    fn aws_ini_sections_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "# comment\n[default]\nregion = us-east-1\n\n[profile paper]\nRegion=eu-west-1\n\
             endpoint_url = http://127.0.0.1:9000\n; other\n[profile other]\nregion = x\n",
        )
        .unwrap();
        let paper = read_ini_section(&path, "profile paper").unwrap();
        assert_eq!(paper["region"], "eu-west-1");
        assert_eq!(paper["endpoint_url"], "http://127.0.0.1:9000");
        assert_eq!(
            read_ini_section(&path, "default").unwrap()["region"],
            "us-east-1"
        );
        assert!(read_ini_section(&path, "profile nope").is_none());
        assert!(read_ini_section(&dir.path().join("missing"), "default").is_none());
    }
}
