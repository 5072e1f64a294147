# SPDX-License-Identifier: MIT
# board/rpi4: read by the top-level Makefile when BOARD=rpi4.
# Raspberry Pi 4 Model B (BCM2711, 4x Cortex-A72, 1-8 GiB; tuned for 2 GiB).
# ChaCha20-Poly1305 first: the BCM2711's Cortex-A72 cores are built without the ARMv8 crypto extensions, so AES runs in table-based software and ChaCha20 is faster and constant-time.
ARCH := aarch64
CPU_CFLAGS := -mcpu=cortex-a72
BOARD_CPPFLAGS := -DWG_BOARD_NAME='"rpi4"' \
	-DWG_BOARD_WORKERS=4 \
	-DWG_BOARD_MAX_CONNS=16384 \
	-DWG_BOARD_BUF_SIZE=16384 \
	-DWG_BOARD_CIPHER_PREF_CHACHA=1 \
	-DWG_BOARD_CIPHER_PREF='"chacha"' \
	-DWG_BOARD_USER='"waygate"' \
	-DWG_BOARD_LIMITS='"max-body-bytes 64M; max-client-connections 256"'
