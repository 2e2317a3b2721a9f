//! Process-level smoke tests of the built `fctf` executable: starts with no configuration
//! (only a private data directory and free ports), answers on the ops port, exits 0 on SIGTERM;
//! refuses impossible topologies with exit code 64; prints its defaults.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_fctf");

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(data_dir: &std::path::Path, args: &[&str]) -> Self {
        let mut child = Command::new(BINARY)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FCTF_DATA_DIR", data_dir)
            .env("FCTF_API__LISTEN", "127.0.0.1:0")
            .env("FCTF_CENTER__LISTEN", "127.0.0.1:0")
            .env("FCTF_GATEWAY__HTTP_LISTEN", "127.0.0.1:0")
            .env("FCTF_GATEWAY__TCP_LISTEN", "127.0.0.1:0")
            .env("FCTF_OPS__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("fctf starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for the announcement line naming the ops port and returns `host:port`.
    fn ops_addr(&self) -> (String, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                seen.push(line.clone());
                if let Some(rest) = line.trim().strip_prefix("health        : http://") {
                    let addr = rest.split('/').next().unwrap().to_owned();
                    return (addr, seen);
                }
            }
        }
        panic!("fctf did not announce its ops port; output: {seen:?}");
    }

    fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                assert!(exit.success(), "fctf exited with {exit:?} after SIGTERM");
                return started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(15), "fctf did not exit within the grace period");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response)
}

#[test]
fn binary_starts_without_configuration_serves_ops_and_exits_zero_on_sigterm() {
    let data_dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut running = Running::start(data_dir.path(), &[]);
    let (ops, announcement) = running.ops_addr();
    let startup = started.elapsed();
    let (status, _) = http_get(&ops, "/healthz");
    assert_eq!(status, 200);
    let (status, metrics) = http_get(&ops, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("fctf_uptime_seconds"), "{metrics}");
    let text = announcement.join("\n");
    assert!(text.contains("admin         : http://localhost:8000/admin"), "{text}");
    assert!(text.contains("first start: log in as `admin` with password"), "{text}");
    assert!(data_dir.path().join("fctf.db").exists());
    assert!(data_dir.path().join("secrets.toml").exists());
    assert!(data_dir.path().join("initial-admin.txt").exists());

    let healthcheck = Command::new(BINARY).args(["healthcheck", &format!("http://{ops}/healthz")]).output().unwrap();
    assert!(healthcheck.status.success(), "{healthcheck:?}");

    let drain = running.terminate();
    eprintln!("figures: start-up to announcement {startup:?}, SIGTERM to exit {drain:?}");

    // A second start reuses the data directory: same secrets, no second initial admin.
    let mut again = Running::start(data_dir.path(), &[]);
    let (_, announcement) = again.ops_addr();
    assert!(!announcement.join("\n").contains("first start"), "{announcement:?}");
    again.terminate();
}

#[test]
fn split_topology_on_embedded_backends_exits_with_code_64_listing_every_problem() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args(["--role", "api", "--role", "gateway"])
        .env("FCTF_DATA_DIR", data_dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("problems"), "{stderr}");
    assert!(stderr.contains("store.backend = sqlite"), "{stderr}");
    assert!(stderr.contains("cache.backend = memory"), "{stderr}");
}

#[test]
fn print_default_prints_the_embedded_defaults() {
    let output = Command::new(BINARY).args(["config", "print-default"]).output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), fctf::config::DEFAULT_TOML);
}

#[test]
fn config_check_validates_and_redacts() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args(["config", "check"])
        .env("FCTF_DATA_DIR", data_dir.path())
        .env("FCTF_SECRETS__JWT", "very-secret-jwt-key")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("configuration is valid for roles: center,consumer,listener,api,gateway"), "{stdout}");
    assert!(!stdout.contains("very-secret-jwt-key"), "{stdout}");
}

#[test]
fn admin_create_prints_a_token_and_migrate_succeeds() {
    let data_dir = tempfile::tempdir().unwrap();
    let migrate = Command::new(BINARY).arg("migrate").env("FCTF_DATA_DIR", data_dir.path()).output().unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let create = Command::new(BINARY)
        .args(["admin", "create", "--name", "root", "--password", "long enough password"])
        .env("FCTF_DATA_DIR", data_dir.path())
        .output()
        .unwrap();
    assert!(create.status.success(), "{create:?}");
    let stdout = String::from_utf8_lossy(&create.stdout);
    assert!(stdout.contains("admin API token: fctf_"), "{stdout}");
    assert!(!stdout.contains("password:"), "a given password is not echoed: {stdout}");
    let duplicate = Command::new(BINARY)
        .args(["admin", "create", "--name", "root"])
        .env("FCTF_DATA_DIR", data_dir.path())
        .output()
        .unwrap();
    assert!(!duplicate.status.success());
}
