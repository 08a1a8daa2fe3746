//! Remote endpoints: S3 (against moto, when `scripts/moto.sh start` runs and
//! `CEGRAPH_TEST_S3_ENDPOINT` is exported; otherwise those tests say SKIPPED and return),
//! remotes served over HTTP, and clear errors for missing credentials and unreachable
//! endpoints.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::project::{Project, Run};
use crate::remote::*;

/// `cegraph` with no AWS configuration at all (and a HOME without ~/.aws).
fn without_aws(p: &Project, args: &[&str]) -> std::process::Command {
    let mut c = p.command(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", p.join("home"));
    c
}

#[test]
fn missing_aws_credentials_are_one_clear_line() {
    let p = Project::with_pipeline(&pipeline("  s3: s3://cegraph-bucket/cache"));
    p.cegraph(&["run"]).ok();
    let started = Instant::now();
    let out: Run = without_aws(&p, &["push"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
        .into();
    let out = out.code(1);
    assert!(
        out.stderr.contains("remote `s3`: no AWS credentials found")
            && out
                .stderr
                .contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // A profile that does not exist is named.
    let out: Run = without_aws(&p, &["pull"])
        .env("AWS_PROFILE", "paper")
        .output()
        .unwrap()
        .into();
    let out = out.code(1);
    assert!(
        out.stderr.contains("AWS_PROFILE=paper names no profile"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unreachable_endpoint_fails_in_seconds() {
    let p = Project::with_pipeline(&pipeline("  s3: s3://cegraph-bucket/cache"));
    p.cegraph(&["run"]).ok();
    let started = Instant::now();
    let out: Run = without_aws(&p, &["push"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap()
        .into();
    let out = out.code(1);
    assert!(
        out.stderr
            .contains("remote `s3`: cannot reach http://127.0.0.1:9")
            && out.stderr.contains("check AWS_ENDPOINT_URL"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Against a real S3 endpoint (moto), when one is running.

/// Say that a test did not run, past the test harness's capture (so it shows without
/// `--nocapture`).
fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// The S3 endpoint to test against, or `None` after saying the tests are skipped.
pub(crate) fn s3_endpoint(test: &str) -> Option<String> {
    match std::env::var("CEGRAPH_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e.trim_end_matches('/').to_string()),
        _ => {
            skipped(&format!(
                "{test} needs an S3 endpoint (run `scripts/moto.sh start` and export \
                 the CEGRAPH_TEST_S3_ENDPOINT it prints)"
            ));
            None
        }
    }
}

/// A plain, unsigned HTTP request to the endpoint (moto accepts these): status and body.
pub(crate) fn http(endpoint: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let hostport = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    // Anonymous access is allowed because the test buckets are created public-read-write.
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: {}\r\n\
         x-amz-acl: public-read-write\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body_at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(resp.len());
    (status, resp[body_at..].to_vec())
}

/// A new bucket with a unique name.
pub(crate) fn bucket(endpoint: &str, test: &str) -> String {
    let name = format!(
        "cegraph-{}-{}",
        test.replace('_', "-").chars().take(30).collect::<String>(),
        std::process::id()
    );
    let (status, body) = http(endpoint, "PUT", &format!("/{name}"), b"");
    assert!(
        status == 200,
        "creating bucket {name}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    name
}

pub(crate) fn s3_command(p: &Project, endpoint: &str, args: &[&str]) -> Run {
    s3_spawnable(p, endpoint, args).output().unwrap().into()
}

/// The command [`s3_command`] runs, to start in the background.
pub(crate) fn s3_spawnable(p: &Project, endpoint: &str, args: &[&str]) -> std::process::Command {
    let mut c = without_aws(p, args);
    c.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint);
    c
}

#[test]
fn s3_push_then_pull_checkout_and_verify_in_a_fresh_clone() {
    let Some(endpoint) = s3_endpoint("s3_push_then_pull_checkout_and_verify_in_a_fresh_clone")
    else {
        return;
    };
    let b = bucket(&endpoint, "roundtrip");
    let p = Project::with_pipeline(&pipeline(&format!("  s3: s3://{b}/paper/cache")));
    p.cegraph(&["run"]).ok();
    let pushed = s3_command(&p, &endpoint, &["push"]).ok();
    assert!(
        pushed.stdout.contains("pushed 7 object(s)"),
        "{}",
        pushed.stdout
    );
    // Under the prefix, in the cache's layout.
    let blob = locked_hash(&p, "make");
    let (status, _) = http(
        &endpoint,
        "GET",
        &format!("/{b}/paper/cache/objects/{}/{}", &blob[..2], &blob[2..]),
        b"",
    );
    assert_eq!(status, 200);

    let c = clone_of(&p);
    s3_command(&c, &endpoint, &["pull"]).ok();
    c.cegraph(&["checkout"]).ok();
    assert_same_outputs(&p, &c);
    c.cegraph(&["verify"]).ok();
    s3_command(&c, &endpoint, &["verify", "--remote", "s3", "--deep"]).ok();
    let d = clone_of(&p);
    let ran = d.executed(|| {
        let out = s3_command(&d, &endpoint, &["run", "--remote", "s3"]).ok();
        assert!(out.stdout.contains("2 fetched"), "{}", out.stdout);
    });
    assert!(ran.is_empty(), "{ran:?}");
}

#[test]
fn s3_a_corrupt_object_on_the_server_is_rejected_on_pull() {
    let Some(endpoint) = s3_endpoint("s3_a_corrupt_object_on_the_server_is_rejected_on_pull")
    else {
        return;
    };
    let b = bucket(&endpoint, "corrupt");
    let p = Project::with_pipeline(&pipeline(&format!("  s3: s3://{b}")));
    p.cegraph(&["run"]).ok();
    s3_command(&p, &endpoint, &["push"]).ok();
    let blob = locked_hash(&p, "make");
    let key = format!("/{b}/objects/{}/{}", &blob[..2], &blob[2..]);
    let (status, _) = http(&endpoint, "PUT", &key, &vec![b'x'; 300000]);
    assert_eq!(status, 200);
    let c = clone_of(&p);
    let pulled = s3_command(&c, &endpoint, &["pull"]).code(1);
    assert!(
        pulled
            .stdout
            .contains(&format!("object {} on remote `s3` is corrupt", &blob[..12])),
        "{}",
        pulled.stdout
    );
    assert!(!sharded(&c.join("cache"), "objects", &blob).exists());
    s3_command(&c, &endpoint, &["verify", "--remote", "s3", "--deep"]).code(1);
}

#[test]
fn s3_a_missing_bucket_and_a_killed_push_are_handled() {
    let Some(endpoint) = s3_endpoint("s3_a_missing_bucket_and_a_killed_push_are_handled") else {
        return;
    };
    let p = Project::with_pipeline(&format!(
        "remotes:\n  s3: s3://cegraph-no-such-bucket-{}/x\n{MANY}",
        std::process::id()
    ));
    p.cegraph(&["run"]).ok();
    let err = s3_command(&p, &endpoint, &["push"]).code(1);
    assert!(
        err.stderr.contains("bucket `cegraph-no-such-bucket")
            && err
                .stderr
                .contains(&format!("does not exist at {endpoint}")),
        "{}",
        err.stderr
    );

    let b = bucket(&endpoint, "killed");
    let p = Project::with_pipeline(&format!("remotes:\n  s3: s3://{b}\n{MANY}"));
    p.cegraph(&["run"]).ok();
    let mut child = without_aws(&p, &["push", "-j", "2"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("CEGRAPH_TEST_PUT_DELAY_MS", "10")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some objects are on the server.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, listing) = http(
            &endpoint,
            "GET",
            &format!("/{b}?list-type=2&prefix=objects/"),
            b"",
        );
        let keys = String::from_utf8_lossy(&listing).matches("<Key>").count();
        if keys >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the push never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the push finished before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = s3_command(&p, &endpoint, &["push"]).ok();
    let already: usize = resumed
        .stdout
        .split("; ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(already > 0 && already < 401, "{}", resumed.stdout);
    let c = clone_of(&p);
    s3_command(&c, &endpoint, &["verify", "--remote", "s3", "--deep"]).ok();
}

/// A free local TCP port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves `dir` over HTTP until dropped.
struct HttpServer(std::process::Child);

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, port: u16) -> Option<HttpServer> {
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--directory")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let server = HttpServer(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(server)
}

#[test]
fn a_remote_served_over_http_can_be_pulled_from_and_verified_but_not_pushed_to() {
    let o = origin();
    o.project.cegraph(&["push"]).ok();
    // The file:// remote's directory, served by a plain static HTTP server, under a prefix.
    let site = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(o.remote.path(), site.path().join("cache")).unwrap();
    let port = free_port();
    let Some(_server) = serve(site.path(), port) else {
        skipped("the http remote test needs python3 (for `python3 -m http.server`)");
        return;
    };
    let c = Project::new();
    c.write(
        "cegraph.yaml",
        &pipeline(&format!("  web: http://127.0.0.1:{port}/cache/")),
    );
    c.write("cegraph.lock", &o.project.read("cegraph.lock"));
    c.cegraph(&["verify", "--remote", "web"]).ok();
    let pulled = c.cegraph(&["pull"]).ok();
    assert!(
        pulled.stdout.contains("pulled 7 object(s)"),
        "{}",
        pulled.stdout
    );
    c.cegraph(&["checkout"]).ok();
    assert_same_outputs(&o.project, &c);
    let ran = c.executed(|| {
        let d = clone_of(&c);
        d.cegraph(&["run", "--remote", "web"]).ok();
        assert_same_outputs(&o.project, &d);
    });
    assert!(ran.is_empty(), "{ran:?}");
    let err = c.cegraph(&["push"]).code(1);
    assert!(err.stderr.contains("is read-only"), "{}", err.stderr);
}

#[test]
fn s3_credentials_region_and_endpoint_can_come_from_an_aws_profile() {
    let Some(endpoint) =
        s3_endpoint("s3_credentials_region_and_endpoint_can_come_from_an_aws_profile")
    else {
        return;
    };
    let b = bucket(&endpoint, "profile");
    let p = Project::with_pipeline(&pipeline(&format!("  s3: s3://{b}/cache")));
    p.cegraph(&["run"]).ok();
    p.write(
        "home/.aws/credentials",
        "[default]\naws_access_key_id = wrong\n\n[paper]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    );
    p.write(
        "home/.aws/config",
        &format!("[profile paper]\nregion = eu-west-1\nendpoint_url = {endpoint}\n"),
    );
    // No AWS_* variable but the profile's name.
    let out: Run = without_aws(&p, &["push"])
        .env("AWS_PROFILE", "paper")
        .output()
        .unwrap()
        .into();
    let out = out.ok();
    assert!(out.stdout.contains("pushed 7 object(s)"), "{}", out.stdout);
    let c = clone_of(&p);
    let out: Run = without_aws(&c, &["verify", "--remote", "s3"])
        .env("HOME", p.join("home"))
        .env("AWS_PROFILE", "paper")
        .output()
        .unwrap()
        .into();
    out.ok();
}

/// A file above the multipart threshold (16 MiB parts: two full, one short) and an empty file
/// (Content-Length 0, which some servers answer oddly) survive a push and a pull.
const BIG_AND_EMPTY: &str = r#"
stages:
  big:
    cmd: head -c 41943041 /dev/urandom > ${outs[0]} && touch ${outs[1]}
    outs: [out/big.bin, out/empty.txt]
"#;

#[test]
fn s3_a_multipart_object_and_an_empty_file_round_trip() {
    let Some(endpoint) = s3_endpoint("s3_a_multipart_object_and_an_empty_file_round_trip") else {
        return;
    };
    let b = bucket(&endpoint, "multipart");
    let p = Project::with_pipeline(&format!("remotes:\n  s3: s3://{b}/c\n{BIG_AND_EMPTY}"));
    p.cegraph(&["run"]).ok();
    let pushed = s3_command(&p, &endpoint, &["push"]).ok();
    assert!(
        pushed.stdout.contains("pushed 2 object(s)"),
        "{}",
        pushed.stdout
    );
    let c = clone_of(&p);
    s3_command(&c, &endpoint, &["pull"]).ok();
    c.cegraph(&["checkout"]).ok();
    for out in ["out/big.bin", "out/empty.txt"] {
        assert_eq!(
            std::fs::read(p.join(out)).unwrap(),
            std::fs::read(c.join(out)).unwrap(),
            "{out}"
        );
    }
    assert_eq!(
        std::fs::metadata(c.join("out/big.bin")).unwrap().len(),
        41943041
    );
    s3_command(&c, &endpoint, &["verify", "--remote", "s3", "--deep"]).ok();
}
