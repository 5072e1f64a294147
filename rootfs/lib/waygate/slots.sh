# SPDX-License-Identifier: MIT
# /lib/waygate/slots.sh: the A/B system slots and their boot state. Sourced
# by the stage1 (which picks the slot to boot), by /sbin/init (which
# confirms a trial boot once waygate serves) and by /sbin/sysupgrade
# (which writes the other slot and asks for a trial boot).
#
# The system disk holds two partitions, slot a (1) and slot b (2), each a
# squashfs root. The boot state lives on the state partition, in
# /data/firmware/:
#   active    the slot last confirmed good ("a" when absent)
#   pending   "SLOT TRIES": boot SLOT while TRIES > 0; the stage1 takes one
#             try per boot; init removes the file when the trial boot
#             serves; a boot that finds TRIES = 0 rolls back to active
#   log       one line per decision, newest last, at most 200 lines
# Every write goes to a temporary file, is synced and renamed, so a power
# cut leaves the old or the new content, never half of it.

FW_STATE=${FW_STATE:-/data/firmware}

# slots_partdev DISK N: the device of partition N of /dev/DISK.
slots_partdev() {
	case $1 in
	*[0-9]) echo "/dev/${1}p$2" ;;
	*) echo "/dev/$1$2" ;;
	esac
}

# slots_is_squashfs DEV: true when DEV starts with the squashfs magic.
slots_is_squashfs() {
	[ -b "$1" ] && [ "$(head -c 4 "$1" 2>/dev/null)" = hsqs ]
}

# slots_disk: the system disk (vda, mmcblk0, ...): the first disk with a
# squashfs in partition 1 or 2. Prints nothing and fails when none.
slots_disk() {
	local d n
	for d in /sys/block/*; do
		n=${d##*/}
		case $n in loop* | ram* | zram*) continue ;; esac
		if slots_is_squashfs "$(slots_partdev "$n" 1)" || slots_is_squashfs "$(slots_partdev "$n" 2)"; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

# slots_dev SLOT: the partition of SLOT (a or b) on the system disk.
slots_dev() {
	local disk
	disk=${FW_DISK:-$(slots_disk)} || return 1
	case $1 in
	a) slots_partdev "$disk" 1 ;;
	b) slots_partdev "$disk" 2 ;;
	*) return 1 ;;
	esac
}

slots_other() { if [ "$1" = a ]; then echo b; else echo a; fi; }

slots_active() {
	local s
	s=$(cat "$FW_STATE/active" 2>/dev/null)
	case $s in a | b) echo "$s" ;; *) echo a ;; esac
}

# slots_put FILE CONTENT: atomic replace (CONTENT "" removes FILE).
slots_put() {
	mkdir -p "$FW_STATE" || return 1
	if [ -z "$2" ]; then
		rm -f "$FW_STATE/$1"
	else
		echo "$2" >"$FW_STATE/$1.tmp" && sync && mv "$FW_STATE/$1.tmp" "$FW_STATE/$1"
	fi
	sync
}

# slots_log MESSAGE: append one line to the decision log.
slots_log() {
	[ -d "$FW_STATE" ] || mkdir -p "$FW_STATE" 2>/dev/null || return 0
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >>"$FW_STATE/log"
	if [ "$(wc -l <"$FW_STATE/log")" -gt 200 ]; then
		tail -n 100 "$FW_STATE/log" >"$FW_STATE/log.tmp" && mv "$FW_STATE/log.tmp" "$FW_STATE/log"
	fi
}

# slots_choose: sets SLOT and MODE (normal, trial, rollback) for this boot
# and records the try. FORCE_SLOT (a or b) overrides, with MODE=forced.
slots_choose() {
	local s tries
	ROLLBACK_REASON=
	if [ -n "${FORCE_SLOT:-}" ]; then
		SLOT=$FORCE_SLOT MODE=forced
		return 0
	fi
	SLOT=$(slots_active) MODE=normal
	[ -f "$FW_STATE/pending" ] || return 0
	read -r s tries <"$FW_STATE/pending"
	case $s in a | b) ;; *) slots_put pending "" && return 0 ;; esac
	case $tries in '' | *[!0-9]*) tries=0 ;; esac
	if [ "$tries" -gt 0 ]; then
		slots_put pending "$s $((tries - 1))"
		slots_log "boot slot=$s mode=trial tries_left=$((tries - 1))"
		SLOT=$s MODE=trial
	else
		slots_put pending ""
		ROLLBACK_REASON="slot $s was not confirmed"
		slots_log "rollback from=$s to=$SLOT reason=not-confirmed"
		MODE=rollback
	fi
}

# slots_confirm SLOT: the running trial system serves: make it the active
# slot and end the trial.
slots_confirm() {
	slots_put active "$1" && slots_put pending "" && slots_log "confirm slot=$1"
}
