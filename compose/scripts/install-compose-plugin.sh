#!/usr/bin/env bash
# Installs the `docker compose` v2 CLI plugin when it is missing.
#
# Debian 13's `docker-compose` package ships the v2 plugin. On a Debian 12 host we
# fetch that one .deb through a separate trixie sources list (its own lists and cache
# directories), so the host's own packages are never upgraded, then unpack only the
# plugin binary. The mirror is read from the host's apt configuration.
set -euo pipefail

plugin_dir=/usr/local/lib/docker/cli-plugins
if docker compose version >/dev/null 2>&1; then
  echo "docker compose: $(docker compose version --short 2>/dev/null || echo present)"
  exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/debian-mirror.sh
source "$here/debian-mirror.sh"
mirror=$(debian_mirror)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc/sources.list.d" "$work/etc/preferences.d"
echo "deb $mirror trixie main" >"$work/etc/sources.list"
apt_opts=(
  -o "Dir::Etc::sourcelist=$work/etc/sources.list"
  -o "Dir::Etc::sourceparts=$work/etc/sources.list.d"
  -o "Dir::Etc::preferencesparts=$work/etc/preferences.d"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "APT::Get::List-Cleanup=0"
)
echo "docker compose: fetching Debian 13's docker-compose package (v2 plugin)"
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" download docker-compose >/dev/null)
dpkg-deb -x "$work"/docker-compose_*.deb "$work/root"
src=$(find "$work/root" -path '*cli-plugins/docker-compose' -type f | head -n1)
if [ -z "$src" ]; then
  echo "docker compose: the docker-compose package holds no cli-plugins/docker-compose" >&2
  exit 1
fi
install -D -m 0755 "$src" "$plugin_dir/docker-compose"
echo "docker compose: installed $(docker compose version --short)"
