#!/usr/bin/env bash
# debian_mirror: prints the Debian archive URI this host's apt configuration uses
# (deb822 .sources or one-line .list), so no mirror host is ever written into the repo.
# LAB_DEBIAN_MIRROR overrides it.
debian_mirror() {
  if [ -n "${LAB_DEBIAN_MIRROR:-}" ]; then
    echo "$LAB_DEBIAN_MIRROR"
    return
  fi
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' \
        | grep -v -- '-security' | grep -E '/debian/?$' | head -n1)
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
          | grep -v -- '-security' | grep -E '/debian/?$' | head -n1)
  fi
  if [ -z "$uri" ]; then
    echo "no Debian mirror found in /etc/apt (set LAB_DEBIAN_MIRROR)" >&2
    return 1
  fi
  echo "${uri%/}"
}
