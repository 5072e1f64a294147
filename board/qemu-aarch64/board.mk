# SPDX-License-Identifier: MIT
# board/qemu-aarch64: read by the top-level Makefile when BOARD=qemu-aarch64.
# QEMU virt machine, Cortex-A53 (ARMv8.0-A with the crypto extensions), 512 MiB: the emulated reference board the firmware test boots.
# ChaCha20-Poly1305 first, measured: QEMU reports the ARMv8 AES/PMULL
# instructions and mbedTLS's AESCE code uses them, but TCG runs each through
# a helper call: AES-128-GCM sealed 16 KiB records ten times slower than
# ChaCha20-Poly1305 in the emulated board (tests/firmware/bench-ciphers).
ARCH := aarch64
CPU_CFLAGS := -mcpu=cortex-a53
BOARD_CPPFLAGS := -DWG_BOARD_NAME='"qemu-aarch64"' \
	-DWG_BOARD_WORKERS=2 \
	-DWG_BOARD_MAX_CONNS=4096 \
	-DWG_BOARD_BUF_SIZE=16384 \
	-DWG_BOARD_CIPHER_PREF_CHACHA=1 \
	-DWG_BOARD_CIPHER_PREF='"chacha"' \
	-DWG_BOARD_USER='"waygate"' \
	-DWG_BOARD_LIMITS='"max-body-bytes 64M; max-client-connections 256"'
