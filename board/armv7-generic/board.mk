# SPDX-License-Identifier: MIT
# board/armv7-generic: read by the top-level Makefile when BOARD=armv7-generic.
# Any ARMv7-A board with hard-float VFP (Cortex-A7/A9/A15 routers and boards, 256 MiB or more).
# ChaCha20-Poly1305 first: ARMv7 cores have no AES instructions.
ARCH := armv7
CPU_CFLAGS := -march=armv7-a+fp -mtune=cortex-a7
BOARD_CPPFLAGS := -DWG_BOARD_NAME='"armv7-generic"' \
	-DWG_BOARD_WORKERS=2 \
	-DWG_BOARD_MAX_CONNS=2048 \
	-DWG_BOARD_BUF_SIZE=8192 \
	-DWG_BOARD_CIPHER_PREF_CHACHA=1 \
	-DWG_BOARD_CIPHER_PREF='"chacha"' \
	-DWG_BOARD_USER='"waygate"' \
	-DWG_BOARD_LIMITS='"max-body-bytes 64M; max-client-connections 256"'
