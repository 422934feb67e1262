#!/usr/bin/env bash
# build-base.sh: makes the lab's base image without a container registry.
#
# debootstrap a Debian root filesystem holding every package the Dockerfile's stages
# install, and `docker import` it. The Dockerfile then builds from it with
# BASE_IMAGE=<tag>, and its install-packages steps find everything installed. The
# package list is read from the Dockerfile, so the two cannot drift; the tag carries a
# hash of that list, so a changed list makes a new base.
#
#   build-base.sh                    Debian 13 (trixie): every stage, PostgreSQL 17
#   build-base.sh --suite bookworm   Debian 12: the postgres stage only, PostgreSQL 15
#   build-base.sh [--suite S] --print-tag   print the tag only
#
# The Debian mirror is read from this host's apt configuration (or LAB_DEBIAN_MIRROR).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dockerfile="$here/../images/Dockerfile"
suite=trixie
print_tag=
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suite=${2:?--suite needs trixie or bookworm}; shift 2 ;;
    --print-tag) print_tag=1; shift ;;
    *) echo "build-base: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Which stages each suite serves, and the PostgreSQL major version its packages carry.
case "$suite" in
  trixie) pg_major=17; lines=$(grep -E '^RUN install-packages ' "$dockerfile") ;;
  bookworm)
    pg_major=15
    lines=$(awk '/^FROM debian AS postgres$/ { p = 1; next } /^FROM / { p = 0 } p && /^RUN install-packages /' "$dockerfile")
    ;;
  *) echo "build-base: --suite must be trixie or bookworm" >&2; exit 2 ;;
esac
packages=$(printf '%s\n' "$lines" | sed 's/^RUN install-packages //; s/\${PG_MAJOR}/'"$pg_major"'/g' \
  | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')
packages="$packages ca-certificates"
hash=$(printf '%s\n' "$suite" $packages | sha256sum | cut -c1-12)
tag="replication-lab/base:$suite-$hash"

if [ -n "$print_tag" ]; then
  echo "$tag"
  exit 0
fi

# One build at a time (tests bring up several clusters at once); the second waits,
# then finds the image built.
exec 9>"${TMPDIR:-/tmp}/replication-lab-base-$suite.lock"
flock 9

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag: already built"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "build-base: debootstrap is not installed (apt-get install debootstrap)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build-base: debootstrap needs root" >&2
  exit 1
fi

# shellcheck source=compose/scripts/debian-mirror.sh
source "$here/debian-mirror.sh"
mirror=$(debian_mirror)

root=$(mktemp -d "${TMPDIR:-/tmp}/lab-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
include=$(echo $packages | tr ' ' ',')
echo "base image $tag: debootstrap $suite with: $packages"
start=$(date +%s)
if ! debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
  echo "build-base: debootstrap failed; its last lines:" >&2
  tail -n 30 "$root.log" >&2
  [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
  rm -f "$root.log"
  exit 1
fi
rm -f "$root.log"

# The packaging created a default cluster; the entrypoints create their own.
mkdir -p "$root/etc/postgresql-common"
echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
rm -rf "$root/etc/postgresql/"*/main "$root/var/lib/postgresql/"*/main
# apt in the image points at the same mirror, for readers who add packages by hand.
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/debootstrap"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "base image $tag: built in $(( $(date +%s) - start )) s"
