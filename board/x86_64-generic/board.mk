# SPDX-License-Identifier: MIT
# board/x86_64-generic: read by the top-level Makefile when BOARD=x86_64-generic.
# Any x86-64 box with SSE4.2 (x86-64-v2: Atom/Celeron/Pentium mini PCs and virtual machines), 1 GiB or more.
# AES-GCM first: x86-64 cores of this class have AES-NI, which mbedTLS's AESNI code detects at run time.
ARCH := x86_64
CPU_CFLAGS := -march=x86-64-v2 -mtune=generic
BOARD_CPPFLAGS := -DWG_BOARD='"x86_64-generic"' \
	-DWG_BOARD_WORKERS=0 \
	-DWG_BOARD_MAX_CONNS=65536 \
	-DWG_BOARD_BUF_SIZE=16384 \
	-DWG_BOARD_CIPHER_PREF_CHACHA=0 \
	-DWG_BOARD_CIPHER_PREF='"aes"'
