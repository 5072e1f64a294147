# SPDX-License-Identifier: MIT
# board/qemu-aarch64: read by the top-level Makefile when BOARD=qemu-aarch64.
# QEMU virt machine, Cortex-A53 (ARMv8.0-A with the crypto extensions), 512 MiB: the emulated reference board the firmware test boots.
# AES-GCM first: QEMU's Cortex-A53 model has the ARMv8 AES/PMULL instructions and mbedTLS's AESCE code uses them.
ARCH := aarch64
CPU_CFLAGS := -mcpu=cortex-a53
BOARD_CPPFLAGS := -DWG_BOARD='"qemu-aarch64"' \
	-DWG_BOARD_WORKERS=2 \
	-DWG_BOARD_MAX_CONNS=4096 \
	-DWG_BOARD_BUF_SIZE=16384 \
	-DWG_BOARD_CIPHER_PREF_CHACHA=0 \
	-DWG_BOARD_CIPHER_PREF='"aes"'
