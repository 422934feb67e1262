//! `runner check`: needs no Docker.

use std::process::ExitCode;

use runner::cluster::settings::Settings;

pub fn run() -> anyhow::Result<ExitCode> {
    let settings = Settings::discover()?;
    let summary = runner::book::check(&settings.book_dir())?;
    for problem in &summary.problems {
        println!("{problem}");
    }
    println!("{}", summary.line());
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
