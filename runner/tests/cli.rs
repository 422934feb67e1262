//! The command line's fatal errors: one line, with what the reader needs, exit 2.
//! Snapshots with snapbox: `[..]` stands for the part that varies between machines.

use snapbox::cmd::Command;
use snapbox::str;

fn runner() -> Command {
    Command::new(snapbox::cmd::cargo_bin!("runner"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
}

#[test]
fn unreachable_docker_is_one_line_naming_the_socket() {
    runner()
        .arg("status")
        .assert()
        .code(2)
        .stdout_eq(str![""])
        .stderr_eq(str![[r#"
runner: cannot reach Docker at unix:///nonexistent/docker.sock[..]

"#]]);
}

#[test]
fn unknown_chapter_lists_the_chapters() {
    runner()
        .args(["exec", "chapter-99"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
runner: no lab chapter matches "chapter-99" (chapters: chapter-0-prerequisites, chapter-1-run-a-cluster, [..])

"#]]);
}

#[test]
fn dry_run_lists_steps_without_docker() {
    runner()
        .args(["exec", "1", "--dry-run"])
        .assert()
        .success()
        .stdout_eq(str![[r#"
chapter-1-run-a-cluster.md
  precondition: fresh, 
[..]export BASE_IMAGE=$(runner base)
...
"#]]);
}
