# SPDX-License-Identifier: MIT
# tests/firmware/vm.sh: drives one emulated board under qemu-system for the
# firmware tests. Sourced by tests/firmware/run; needs firmware/lib.sh and a
# board.conf sourced first.
#
#   vm_start WORKDIR KERNEL STAGE1 SYSTEM_IMG DATA_IMG [MEDIA_IMG]
#       boots (TCG, user-mode network restricted to the host forwards),
#       console to WORKDIR/console.log, console input and the HMP monitor
#       on FIFOs; guest ports 8080, 8443 and 9443 forwarded to host ports
#       qemu picks (VM_PORT[8080] ..., read back with "info usernet")
#   vm_mark                  remember the console's current end
#   vm_expect RE SECONDS     wait for RE (extended regex) on the console
#                            after the mark; fails on qemu's exit or timeout
#   vm_sh CMD [SECONDS]      run CMD in the console shell; its output in
#                            VM_OUT, its status in VM_RC
#   vm_wait_exit SECONDS     wait for qemu to end; its status in VM_EXIT
#   vm_stop                  end qemu (monitor quit, then signals)
# A guest reboot keeps the qemu process, its disks and its port forwards;
# only power-off ends it. The kernel command line carries wg.nonce=VM_NONCE,
# which the guest's ready line repeats: the test never reads another
# machine's console or port.

VM_PID=
VM_DIR=
VM_MARK=0
declare -A VM_PORT=()

vm_start() {
	local wd=$1 kernel=$2 stage1=$3 sys=$4 data=$5 media=${6:-} net q append
	VM_DIR=$wd
	VM_NONCE=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	append="console=$CONSOLE panic=-1 quiet wg.shell=1 wg.log=console wg.nonce=$VM_NONCE ${VM_APPEND:-}"
	net="user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:0-:8080,hostfwd=tcp:127.0.0.1:0-:8443,hostfwd=tcp:127.0.0.1:0-:9443"
	q=("$QEMU" -M "$QEMU_MACHINE" -accel tcg -cpu "$QEMU_CPU" -smp "${VM_SMP:-$QEMU_SMP}" -m "$QEMU_MEM"
		-kernel "$kernel" -initrd "$stage1" -append "$append"
		-netdev "$net" -device "$QEMU_NIC,netdev=n0"
		-object rng-random,id=rng0,filename=/dev/urandom -device "$QEMU_RNG,rng=rng0"
		-drive "if=none,id=sys,format=raw,file=$sys" -device "$QEMU_BLK,drive=sys"
		-drive "if=none,id=data,format=raw,file=$data" -device "$QEMU_BLK,drive=data")
	[ -n "$media" ] && q+=(-drive "if=none,id=media,format=raw,readonly=on,file=$media" -device "$QEMU_BLK,drive=media")
	q+=(-display none -serial stdio -chardev "pipe,id=mon0,path=$wd/mon" -mon chardev=mon0,mode=readline)
	rm -f "$wd/console.in" "$wd/mon.in" "$wd/mon.out"
	mkfifo "$wd/console.in" "$wd/mon.in" "$wd/mon.out"
	exec 3<>"$wd/console.in" 4<>"$wd/mon.in" 5<>"$wd/mon.out"
	: >"$wd/console.log"
	VM_MARK=0
	VM_T0=$(fw_now)
	setpriv --pdeathsig KILL -- "${q[@]}" <&3 >"$wd/console.log" 2>"$wd/qemu.err" &
	VM_PID=$!
	vm_ports
}

# vm_ports: the host port of each forwarded guest port, from the monitor.
vm_ports() {
	local l i
	VM_PORT=()
	for i in 1 2 3 4 5 6 7 8 9 10; do
		printf 'info usernet\n' >&4
		while IFS= read -r -t 0.5 l <&5; do
			case $l in
			*HOST_FORWARD*)
				set -- $l
				VM_PORT[${6%$'\r'}]=$4
				;;
			esac
		done
		[ -n "${VM_PORT[8080]:-}" ] && [ -n "${VM_PORT[8443]:-}" ] && [ -n "${VM_PORT[9443]:-}" ] && return 0
	done
	return 1
}

vm_alive() { [ -n "$VM_PID" ] && kill -0 "$VM_PID" 2>/dev/null && [ "$(awk '{print $3}' /proc/$VM_PID/stat 2>/dev/null)" != Z ]; }

vm_mark() { VM_MARK=$(stat -c %s "$VM_DIR/console.log"); }

# vm_since: the console after the mark, without carriage returns.
vm_since() { tail -c +$((VM_MARK + 1)) "$VM_DIR/console.log" | tr -d '\r'; }

vm_expect() { # RE SECONDS
	local end=$(($(date +%s) + $2))
	until vm_since | grep -a -q -E "$1"; do
		if [ "$(date +%s)" -ge $end ]; then
			VM_WHY="no '$1' on the console within $2 s"
			return 1
		fi
		if ! vm_alive; then
			VM_WHY="qemu ended while waiting for '$1'"
			return 1
		fi
		if vm_since | grep -a -q -E 'Kernel panic|stage1: event=error'; then
			VM_WHY="guest failure while waiting for '$1'"
			return 1
		fi
		sleep 0.05
	done
}

vm_sh() { # CMD [SECONDS]
	local id=$RANDOM$RANDOM mark0=$VM_MARK
	vm_mark
	printf '%s\n' "echo @@B$id; $1; echo @@E$id rc=\$?" >&3
	if ! vm_expect "^@@E$id rc=[0-9]+" "${2:-30}"; then
		VM_RC=255 VM_OUT=
		VM_MARK=$mark0
		return 1
	fi
	VM_OUT=$(vm_since | sed -n "/^@@B$id\$/,/^@@E$id rc=/p" | sed '1d;$d')
	VM_RC=$(vm_since | sed -n "s/^@@E$id rc=\([0-9]*\).*/\1/p" | head -n 1)
	VM_MARK=$mark0
	return 0
}

vm_wait_exit() { # SECONDS
	local i=0
	while vm_alive && [ $i -lt $(($1 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	if vm_alive; then
		VM_EXIT=
		return 1
	fi
	wait "$VM_PID"
	VM_EXIT=$?
	VM_PID=
	return 0
}

# vm_cpu: qemu's CPU seconds so far (user + system).
vm_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' /proc/$VM_PID/stat 2>/dev/null; }

vm_stop() {
	[ -n "$VM_PID" ] || return 0
	if vm_alive; then
		printf 'quit\n' >&4 2>/dev/null
		for _ in $(seq 30); do vm_alive || break; sleep 0.1; done
		kill -TERM "$VM_PID" 2>/dev/null
		for _ in $(seq 30); do vm_alive || break; sleep 0.1; done
		kill -KILL "$VM_PID" 2>/dev/null
	fi
	wait "$VM_PID" 2>/dev/null
	VM_PID=
	exec 3>&- 4>&- 5>&-
}
