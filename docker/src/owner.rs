//! Who owns a run: the process that started it, as `<host>:<pid>`, recorded in a
//! label on every object so start-up cleanup removes only runs whose owner is gone and
//! two runs can share one engine (issue 16).

use std::path::Path;

/// Label naming the process that owns a run, `<host>:<pid>`, so start-up cleanup
/// removes only runs whose owner is gone and two runs can share one engine (issue 16).
pub const LABEL_OWNER: &str = "rollcall.owner";

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// This process as a run owner (`<host>:<pid>`).
pub fn this_owner() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

/// Whether a run's owner may still be running: a live process of this host, or any
/// process of another host (it cannot be checked from here, so it is left alone).
/// No owner (a run from before the label) or a malformed one counts as gone.
pub fn owner_alive(owner: Option<&str>) -> bool {
    let Some((host, pid)) = owner.and_then(|o| o.rsplit_once(':')) else {
        return false;
    };
    if host != hostname() {
        return true;
    }
    pid.parse::<u32>().is_ok_and(pid_alive)
}

/// Whether process `pid` of this host exists.
pub fn pid_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether an object with these labels belongs to a run whose owner is gone.
pub fn orphan(labels: Option<&std::collections::HashMap<String, String>>) -> bool {
    !owner_alive(labels.and_then(|l| l.get(LABEL_OWNER)).map(String::as_str))
}
