//! Which base the images build from, and making it when there is no registry.
//!
//! The Dockerfile builds from `BASE_IMAGE`: `debian:trixie-slim` where Docker Hub is
//! reachable, or a base made locally by `compose/scripts/build-base.sh` (debootstrap +
//! `docker import`) where no registry is. [`ensure_base`] picks the way — or takes the
//! one asked for — says which, and returns the image reference to build from.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;

use crate::cluster::docker::Docker;
use crate::cluster::settings::Settings;

/// The official base image.
pub const HUB_BASE: &str = "debian:trixie-slim";

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

/// Makes sure a base image exists and returns its reference.
pub async fn ensure_base(settings: &Settings, engine: &Docker, way: BaseWay) -> Result<String> {
    match way {
        BaseWay::Hub => {
            pull_hub_base(engine).await?;
            tracing::info!("base image: {HUB_BASE} (Docker Hub)");
            Ok(HUB_BASE.to_string())
        }
        BaseWay::Debootstrap => debootstrap_base(settings, engine).await,
        BaseWay::Auto => {
            if engine.image_exists(HUB_BASE).await? {
                tracing::info!("base image: {HUB_BASE} (present locally)");
                return Ok(HUB_BASE.to_string());
            }
            match pull_hub_base(engine).await {
                Ok(()) => {
                    tracing::info!("base image: {HUB_BASE} (pulled from Docker Hub)");
                    Ok(HUB_BASE.to_string())
                }
                Err(err) => {
                    tracing::info!(
                        "base image: Docker Hub unreachable ({err:#}); building one with debootstrap"
                    );
                    debootstrap_base(settings, engine).await
                }
            }
        }
    }
}

async fn pull_hub_base(engine: &Docker) -> Result<()> {
    let (image, tag) = HUB_BASE.split_once(':').unwrap_or((HUB_BASE, "latest"));
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
        Ok(result) => result.with_context(|| format!("pulling {HUB_BASE}")),
        Err(_) => bail!("pulling {HUB_BASE}: no progress within 300 s"),
    }
}

/// The tag `build-base.sh` gives the base made from the Dockerfile's package list.
pub async fn debootstrap_tag(settings: &Settings) -> Result<String> {
    let script = settings.compose_dir().join("scripts/build-base.sh");
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .arg("--print-tag")
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

async fn debootstrap_base(settings: &Settings, engine: &Docker) -> Result<String> {
    let tag = debootstrap_tag(settings).await?;
    if engine.image_exists(&tag).await? {
        tracing::info!("base image: {tag} (debootstrap, already built)");
        return Ok(tag);
    }
    let script = settings.compose_dir().join("scripts/build-base.sh");
    tracing::info!("base image: building {tag} with debootstrap (a few minutes)…");
    let mut child = tokio::process::Command::new("bash")
        .arg(&script)
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
