//! Which base the images build from, and making it when there is no registry.
//!
//! The Dockerfile builds from `BASE_IMAGE`: `debian:trixie-slim` where Docker Hub is
//! reachable, or a base made locally by `compose/scripts/build-base.sh` (debootstrap +
//! `docker import`) where no registry is. [`ensure_base`] picks the way — or takes the
//! one asked for — says which, and returns the image reference to build from.
//!
//! One node is built on another Debian release: chapter 7's PostgreSQL 15, from Debian
//! 12 (bookworm). It is the same recipe on another base, `BASE_IMAGE_BOOKWORM`: a
//! [`Suite`] names the release, its Docker Hub image and its variable.

use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;

use crate::docker::Docker;
use crate::settings::Settings;

/// The official base image of the lab's Debian 13 images.
pub const HUB_BASE: &str = Suite::Trixie.hub_image();

pub use lab_core::topology::Suite;

/// How to get the base image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaseWay {
    /// `debian:trixie-slim` if present or pullable, else debootstrap.
    Auto,
    /// Pull `debian:trixie-slim` from Docker Hub.
    Hub,
    /// Build a base with debootstrap + `docker import` (no registry needed).
    Debootstrap,
}

/// Makes sure a base image of `suite` exists and returns its reference.
pub async fn ensure_base(
    settings: &Settings,
    engine: &Docker,
    way: BaseWay,
    suite: Suite,
) -> Result<String> {
    let hub = suite.hub_image();
    match way {
        BaseWay::Hub => {
            pull_hub_base(engine, hub).await?;
            tracing::info!("base image: {hub} (Docker Hub)");
            Ok(hub.to_string())
        }
        BaseWay::Debootstrap => debootstrap_base(settings, engine, suite).await,
        BaseWay::Auto => {
            if engine.image_exists(hub).await? {
                tracing::info!("base image: {hub} (present locally)");
                return Ok(hub.to_string());
            }
            match pull_hub_base(engine, hub).await {
                Ok(()) => {
                    tracing::info!("base image: {hub} (pulled from Docker Hub)");
                    Ok(hub.to_string())
                }
                Err(err) => {
                    // The error names the registry's host; the reader needs the decision.
                    tracing::debug!("pulling {hub}: {err:#}");
                    tracing::info!(
                        "base image: {hub} cannot be pulled here; building one with debootstrap"
                    );
                    debootstrap_base(settings, engine, suite).await
                }
            }
        }
    }
}

async fn pull_hub_base(engine: &Docker, hub: &str) -> Result<()> {
    let (image, tag) = hub.split_once(':').unwrap_or((hub, "latest"));
    let pull = async {
        let mut stream = engine.client().create_image(
            Some(bollard::query_parameters::CreateImageOptions {
                from_image: Some(image.to_string()),
                tag: Some(tag.to_string()),
                ..Default::default()
            }),
            None,
            None,
        );
        while let Some(item) = stream.next().await {
            item?;
        }
        Ok::<_, bollard::errors::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(300), pull).await {
        Ok(result) => result.with_context(|| format!("pulling {hub}")),
        Err(_) => bail!("pulling {hub}: no progress within 300 s"),
    }
}

/// The tag `build-base.sh` gives the base of `suite` made from the Dockerfile's
/// package list.
pub async fn debootstrap_tag(settings: &Settings, suite: Suite) -> Result<String> {
    let script = settings.compose_dir().join("scripts/build-base.sh");
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .args(["--suite", suite.name(), "--print-tag"])
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} --print-tag failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

async fn debootstrap_base(settings: &Settings, engine: &Docker, suite: Suite) -> Result<String> {
    let tag = debootstrap_tag(settings, suite).await?;
    if engine.image_exists(&tag).await? {
        tracing::info!("base image: {tag} (debootstrap, already built)");
        return Ok(tag);
    }
    let script = settings.compose_dir().join("scripts/build-base.sh");
    tracing::info!("base image: building {tag} with debootstrap (a few minutes)…");
    // Its progress goes to stderr: stdout is the tag alone (`export BASE_IMAGE=$(runner base)`).
    let progress = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating stderr for the base build's progress")?;
    let mut child = tokio::process::Command::new("bash")
        .arg(&script)
        .args(["--suite", suite.name()])
        .stdout(std::process::Stdio::from(progress))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("running {}", script.display()))?;
    let status = match tokio::time::timeout(Duration::from_secs(1200), child.wait()).await {
        Ok(status) => status?,
        Err(_) => bail!("{} did not finish within 20 min", script.display()),
    };
    if !status.success() {
        bail!(
            "building the base image failed ({}): see the output above",
            script.display()
        );
    }
    tracing::info!("base image: {tag} (debootstrap)");
    Ok(tag)
}
