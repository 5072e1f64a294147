# SPDX-License-Identifier: MIT
# firmware/lib.sh: shell helpers shared by the image build (firmware/build)
# and the boot test (tests/firmware/). Sourced, never run.

FW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FW_CACHE=${WAYGATE_CACHE:-$HOME/.cache/waygate}/firmware

fw_die() { echo "firmware: $*" >&2; exit 1; }
fw_log() { echo "firmware: $*" >&2; }

# fw_board NAME: source board/NAME/board.conf into the caller's shell.
fw_board() {
	local f=$FW_ROOT/board/$1/board.conf
	[ -n "$1" ] || fw_die "BOARD is not set (one of: $(ls "$FW_ROOT/board" | tr '\n' ' '))"
	[ -f "$f" ] || fw_die "no board '$1' (one of: $(ls "$FW_ROOT/board" | tr '\n' ' '))"
	BOARD=$1
	# shellcheck disable=SC1090
	. "$f"
}

# fw_default_bin ARCH [BOARD]: where the top-level Makefile leaves the
# binary: build/BOARD/waygate when there is one, else the architecture's.
fw_default_bin() {
	local host
	if [ -n "${2:-}" ] && [ -x "$FW_ROOT/build/$2/waygate" ]; then
		echo "$FW_ROOT/build/$2/waygate"
		return
	fi
	host=$(uname -m | sed -e 's/^armv[78].*/armv7/' -e 's/^arm64$/aarch64/')
	if [ "$1" = "$host" ]; then echo "$FW_ROOT/build/waygate"; else echo "$FW_ROOT/build/$1/waygate"; fi
}

# fw_host_tools_missing: prints the Debian packages the image build and the
# boot test need that are not installed.
fw_host_tools_missing() {
	local need="" t
	for t in mksquashfs:squashfs-tools cpio:cpio mke2fs:e2fsprogs e2fsck:e2fsprogs \
		debugfs:e2fsprogs busybox:busybox-static curl:curl setpriv:util-linux \
		openssl:openssl xz:xz-utils qemu-system-aarch64:qemu-system-arm \
		qemu-system-arm:qemu-system-arm qemu-system-x86_64:qemu-system-x86; do
		command -v "${t%%:*}" >/dev/null 2>&1 || need="$need ${t#*:}"
	done
	[ -f /etc/ssl/certs/ca-certificates.crt ] || need="$need ca-certificates"
	echo "$need" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/^ *//; s/ *$//'
}

# fw_host_tools: install what is missing (root only; a clear message else).
# Waits for the dpkg lock, as other users of the machine may hold it.
fw_host_tools() {
	local missing
	missing=$(fw_host_tools_missing)
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		fw_die "missing host packages: $missing (run as root: apt-get install --no-install-recommends $missing)"
	fi
	fw_log "installing host packages: $missing"
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y \
		--no-install-recommends $missing >"$FW_CACHE.apt.log" 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >>"$FW_CACHE.apt.log" 2>&1
		DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y \
			--no-install-recommends $missing >>"$FW_CACHE.apt.log" 2>&1 ||
			{ tail -n 20 "$FW_CACHE.apt.log" >&2; fw_die "apt-get install $missing failed"; }
	fi
}

# fw_apt DEB_ARCH ARGS...: apt-get/apt-cache with a private state for one
# Debian architecture: its own lists and archive cache under FW_CACHE, the
# machine's own sources (linked, so no mirror address is written), nothing
# changed for other users of the machine's apt.
fw_apt_config() {
	local arch=$1 w=$FW_CACHE/apt-$1 f
	mkdir -p "$w/lists/partial" "$w/cache/archives/partial" "$w/sources.list.d"
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
		[ -f "$f" ] || continue
		# Only Debian's own sources; others (disabled or third-party) stay out.
		grep -qs 'debian' "$f" || continue
		ln -sfn "$f" "$w/sources.list.d/$(echo "${f#/etc/apt/}" | tr / _)"
	done
	{
		echo "APT::Architecture \"$arch\";"
		echo "APT::Architectures { \"$arch\"; };"
		echo "Dir::State::Lists \"$w/lists\";"
		echo "Dir::Cache \"$w/cache\";"
		echo "Dir::State::status \"/dev/null\";"
		echo "Dir::Etc::SourceList \"/dev/null\";"
		echo "Dir::Etc::SourceParts \"$w/sources.list.d\";"
		echo "Dir::Etc::Preferences \"/dev/null\";"
		echo "Dir::Etc::PreferencesParts \"/dev/null\";"
		[ "$(id -u)" = 0 ] && echo "APT::Sandbox::User \"root\";"
	} >"$w/apt.conf"
	echo "$w/apt.conf"
}

# fw_now: seconds since the epoch, with fractions.
fw_now() { date +%s.%N; }
