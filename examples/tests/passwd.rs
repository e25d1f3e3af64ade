//! The `passwd` tool: creates, changes and deletes password-file entries
//! that the broker's `PasswordFile` then checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_broker_core::auth::PasswordFile;
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

const PASSWD: &str = env!("CARGO_BIN_EXE_passwd");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mqtt-passwd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(PASSWD)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str], stdin: Option<&str>) {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fails(args: &[&str], stdin: Option<&str>, message: &str) {
    let out = run(args, stdin);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(message), "{args:?}: {err}");
}

fn load(path: &Path) -> PasswordFile {
    PasswordFile::load(path).unwrap()
}

#[test]
fn create_add_change_and_delete_users() {
    let d = dir("cycle");
    let file = d.join("passwords");
    let f = file.to_str().unwrap();
    // Without -c the file must exist.
    fails(&["-b", f, "alice", "pw"], None, "use -c");
    ok(&["-c", "-b", f, "alice", "alice-pw"], None);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // --password, and standard input with --scram.
    ok(&["--password", "bob-pw", f, "bob"], None);
    ok(
        &["--scram", "--iterations", "5000", f, "carol"],
        Some("carol-pw\n"),
    );
    let p = load(&file);
    assert_eq!(p.len(), 3);
    assert!(p.verify("alice", b"alice-pw"));
    assert!(p.verify("bob", b"bob-pw"));
    assert!(p.verify("carol", b"carol-pw"));
    assert!(p.scram_credentials("alice").is_none());
    assert_eq!(p.scram_credentials("carol").unwrap().iterations, 5000);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("alice:$argon2id$v=19$"), "{text}");
    assert!(text.contains("carol:$scram-sha-256$i=5000$"), "{text}");

    // Comments stay; a changed entry keeps its place.
    std::fs::write(&file, format!("# keep me\n{text}")).unwrap();
    ok(&["-b", "--scram", f, "alice", "new-pw"], None);
    let p = load(&file);
    assert_eq!(p.len(), 3);
    assert!(p.verify("alice", b"new-pw"));
    assert!(!p.verify("alice", b"alice-pw"));
    assert!(p.scram_credentials("alice").is_some());
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("# keep me\nalice:$scram-sha-256$")
    );

    ok(&["-D", f, "bob"], None);
    let p = load(&file);
    assert!(!p.contains("bob") && p.contains("alice") && p.contains("carol"));
    fails(&["-D", f, "bob"], None, "not found");

    // -c starts over.
    ok(&["-c", "-b", f, "dave", "dave-pw"], None);
    let p = load(&file);
    assert_eq!(p.users().collect::<Vec<_>>(), ["dave"]);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_input_is_refused_and_the_file_left_alone() {
    let d = dir("bad");
    let file = d.join("passwords");
    let f = file.to_str().unwrap();
    ok(&["-c", "-b", f, "alice", "pw"], None);
    let before = std::fs::read_to_string(&file).unwrap();
    fails(&["-b", f, "a:b", "pw"], None, "cannot contain");
    fails(&["-b", f, "#x", "pw"], None, "cannot start");
    fails(&["-b", f, "bob", ""], None, "empty password");
    fails(&[f, "bob"], Some(""), "empty password");
    fails(&[f, "bob", "pw"], None, "only then");
    fails(&["-b", f, "bob"], None, "only then");
    // A file the broker would refuse is not edited.
    std::fs::write(&file, "broken line\n").unwrap();
    fails(&["-b", f, "bob", "pw"], None, "line 1");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "broken line\n");
    std::fs::write(&file, &before).unwrap();
    assert!(load(&file).verify("alice", b"pw"));
    std::fs::remove_dir_all(&d).unwrap();
}
