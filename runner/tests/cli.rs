//! The command line's fatal errors: one line, with what the reader needs, exit 2.

use std::process::Command;

fn runner() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

#[test]
fn unreachable_docker_is_one_line_naming_the_socket() {
    let out = runner()
        .arg("status")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("runner: cannot reach Docker at unix:///nonexistent/docker.sock"),
        "{stderr}"
    );
}

#[test]
fn unknown_chapter_lists_the_chapters() {
    let out = runner()
        .args(["exec", "chapter-99"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no lab chapter matches \"chapter-99\""),
        "{stderr}"
    );
    assert!(stderr.contains("chapter-1-run-a-cluster"), "{stderr}");
}

#[test]
fn dry_run_lists_steps_without_docker() {
    let out = runner()
        .args(["exec", "1", "--dry-run"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("precondition: fresh"), "{stdout}");
    assert!(
        stdout.contains("docker compose up --build -d pgbouncer"),
        "{stdout}"
    );
}
