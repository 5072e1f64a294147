# SPDX-License-Identifier: MIT
# board/x86_64-generic: read by the top-level Makefile when BOARD=x86_64-generic.
# Any x86-64 box with SSE4.2 (x86-64-v2: Atom/Celeron/Pentium mini PCs and virtual machines), 1 GiB or more.
# ChaCha20-Poly1305 first, measured: with mbedTLS 3.6 (AES-NI detected and used
# one block at a time, GHASH by PCLMUL) AES-128-GCM sealed 16 KiB records
# 1.2-1.3x slower than ChaCha20-Poly1305 on the x86-64 build host
# (tests/firmware/bench-ciphers). Both are constant-time there.
ARCH := x86_64
CPU_CFLAGS := -march=x86-64-v2 -mtune=generic
BOARD_CPPFLAGS := -DWG_BOARD_NAME='"x86_64-generic"' \
	-DWG_BOARD_WORKERS=0 \
	-DWG_BOARD_MAX_CONNS=65536 \
	-DWG_BOARD_BUF_SIZE=16384 \
	-DWG_BOARD_CIPHER_PREF_CHACHA=1 \
	-DWG_BOARD_CIPHER_PREF='"chacha"' \
	-DWG_BOARD_USER='"waygate"' \
	-DWG_BOARD_LIMITS='"max-body-bytes 64M; max-client-connections 256"'
