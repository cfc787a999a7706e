#!/bin/sh
# Installs the peers chunkbench measures chunkback against: restic, from the
# Debian package. Idempotent: does nothing when restic is on PATH. Needs root
# (or sudo) and waits for other apt/dpkg runs to release their lock.
#
#	sudo scripts/bench/install.sh
set -eu

if command -v restic >/dev/null 2>&1; then
	echo "restic already installed: $(restic version)"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi

# apt-get waits up to this many seconds for the dpkg lock another apt or
# dpkg run holds (DPkg::Lock::Timeout), as scripts/cinder/install.sh does.
LOCK_WAIT=${CHUNKBACK_APT_LOCK_WAIT:-1800}

apt_get() {
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$LOCK_WAIT" "$@"
}

# Refresh the package lists only when they do not know restic.
if ! apt-cache policy restic 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	apt_get update -q
fi
apt_get install -y -q --no-install-recommends restic
echo "installed: $(restic version)"
