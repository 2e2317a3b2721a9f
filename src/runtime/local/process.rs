//! Spawning a local challenge process, choosing its port and signalling its process group.
//!
//! Decisions:
//! - The command runs as `/bin/sh -c <command>` in its own process group (`process_group(0)`),
//!   so the group id is the shell's pid and a signal to the group reaches every process the
//!   command started (a shell that forks, a server that spawns workers).
//! - Signals go through `rustix::process::kill_process_group`, a safe wrapper of `kill(-pgid)`
//!   (the crate forbids `unsafe`; rustix was already in the dependency tree, unlike `nix`, and
//!   spawning `kill(1)` for every stop would add a process per signal). Groups 0 and 1 and our
//!   own pid are refused, since `kill(-1)` would signal every process we may signal.
//! - The environment is cleared and rebuilt: only [`INHERITED_ENV`] passes through from fctf,
//!   then `spec.env`, then the runtime's own variables (`PORT`, `HOST`, `FLAG`, `FCTF_*`), which
//!   win over `spec.env`. fctf's own environment may hold secrets (database URLs, signing keys)
//!   and challenge processes are often meant to be exploited. This is not a sandbox: the
//!   process runs as fctf's user and can read what that user can read.
//! - The working directory is fctf's own; a challenge that needs another one `cd`s in its
//!   command.
//! - Ports: a rotating cursor, starting at a random offset, walks the configured range so a
//!   just-freed port is not handed out again at once, not even right after an fctf restart
//!   (stale gateway connections cannot reach a new instance), and two runtimes sharing a range
//!   rarely race for one port. A candidate must
//!   not be held by another live instance and must bind on the configured host right now.
//!   Another program can still take it between the test and the child's own bind; the child
//!   then fails to listen and the instance fails with its output as the reason (if that program
//!   listens, the readiness probe may reach it first: `Running`, then `Failed` when the child
//!   exits). Keep the configured range for fctf alone.

use std::collections::HashSet;
use std::process::Stdio;

use rustix::io::Errno;
use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::{Child, Command};

use crate::runtime::InstanceSpec;

/// Variables passed through from fctf's own environment.
pub(super) const INHERITED_ENV: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

/// Starts `command` for `spec`, listening on `host:port`.
pub(super) fn spawn(spec: &InstanceSpec, command: &str, host: &str, port: u16) -> std::io::Result<Child> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command).env_clear();
    for key in INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd.envs(&spec.env);
    cmd.env("PORT", port.to_string())
        .env("HOST", host)
        .env("FCTF_INSTANCE_ID", spec.instance_id.to_string())
        .env("FCTF_TEAM_ID", spec.team_id.to_string())
        .env("FCTF_CHALLENGE_ID", spec.challenge_id.to_string());
    if let Some(flag) = &spec.flag {
        cmd.env("FLAG", flag);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).process_group(0);
    cmd.spawn()
}

/// Checks what `spawn` would otherwise fail on, so a bad spec is an `InvalidSpec` error.
pub(super) fn validate_spec(spec: &InstanceSpec) -> Result<&str, String> {
    let command = match spec.command.as_deref() {
        Some(command) if !command.trim().is_empty() => command,
        _ => return Err("the local runtime needs a command to run".to_owned()),
    };
    if command.contains('\0') {
        return Err("the command contains a NUL byte".to_owned());
    }
    if let Some(flag) = &spec.flag
        && flag.contains('\0')
    {
        return Err("the flag contains a NUL byte".to_owned());
    }
    for (key, value) in &spec.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(format!("invalid environment variable name {key:?}"));
        }
        if value.contains('\0') {
            return Err(format!("environment variable {key} contains a NUL byte"));
        }
    }
    Ok(command)
}

/// `host:port`, with brackets around an IPv6 literal.
pub(super) fn upstream(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Picks a port from `start..=end` that is not in `held` and binds on `host`, starting at
/// `*cursor` (an offset into the range) and advancing it past the chosen port.
pub(super) fn pick_port(host: &str, start: u16, end: u16, cursor: &mut u32, held: &HashSet<u16>) -> Option<u16> {
    if start == 0 || start > end {
        return None;
    }
    let span = u32::from(end) - u32::from(start) + 1;
    for step in 0..span {
        let offset = (*cursor % span + step) % span;
        let Ok(candidate) = u16::try_from(u32::from(start) + offset) else {
            continue;
        };
        if held.contains(&candidate) || std::net::TcpListener::bind((host, candidate)).is_err() {
            continue;
        }
        *cursor = (offset + 1) % span;
        return Some(candidate);
    }
    None
}

/// The process group of a spawned challenge (its id is the leader's pid).
#[derive(Debug, Clone, Copy)]
pub(super) struct ProcessGroup(Pid);

impl ProcessGroup {
    /// The group led by the process `leader_pid`, which was spawned with `process_group(0)`.
    pub(super) fn led_by(leader_pid: u32) -> Option<Self> {
        let raw = i32::try_from(leader_pid).ok()?;
        if raw <= 1 || leader_pid == std::process::id() {
            return None;
        }
        Pid::from_raw(raw).map(Self)
    }

    /// Sends SIGTERM to every process of the group.
    pub(super) fn terminate(self) {
        self.signal(Signal::TERM);
    }

    /// Sends SIGKILL to every process of the group.
    pub(super) fn kill(self) {
        self.signal(Signal::KILL);
    }

    fn signal(self, signal: Signal) {
        match kill_process_group(self.0, signal) {
            // ESRCH: the group is already empty.
            Ok(()) | Err(Errno::SRCH) => {}
            Err(error) => {
                tracing::warn!(pgid = self.0.as_raw_nonzero().get(), error = %error, "failed to signal challenge process group");
            }
        }
    }
}

/// Kills a process group when dropped unless disarmed, so no challenge process outlives its
/// supervisor even when the supervisor task is dropped (tokio runtime teardown, panic).
#[derive(Debug)]
pub(super) struct KillGroupOnDrop(Option<ProcessGroup>);

impl KillGroupOnDrop {
    /// Arms the guard for `group`.
    pub(super) fn new(group: ProcessGroup) -> Self {
        Self(Some(group))
    }

    /// Disarms the guard once the group has been cleaned up.
    pub(super) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            group.kill();
        }
    }
}
