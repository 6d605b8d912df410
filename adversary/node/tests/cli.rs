//! The `rollcall-adversary` command line (issue 12): a home that cannot be loaded
//! or an unknown behaviour is a clear error and a failing exit, nothing started.
//! (This test also makes `cargo test --workspace` build the binary, so the docker
//! tests find it in the target directory instead of building it in release mode.)

use std::process::Command;

fn adversary(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollcall-adversary"))
        .args(args)
        .output()
        .expect("run rollcall-adversary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_home_or_an_unknown_behaviour_is_a_clear_error() {
    let empty = tempfile::tempdir().expect("tempdir");
    let home = empty.path().join("absent");
    let home = home.to_str().expect("utf-8 path");
    let (code, err) = adversary(&["--home", home, "--behaviour", "flood"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    let (code, err) = adversary(&["--home", home, "--behaviour", "be-nice"]);
    assert_eq!(code, Some(2), "clap refuses it: {err}");
    assert!(err.contains("be-nice"), "{err}");
}
