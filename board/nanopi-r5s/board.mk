# SPDX-License-Identifier: MIT
# board/nanopi-r5s: read by the top-level Makefile when BOARD=nanopi-r5s.
# FriendlyElec NanoPi R5S (Rockchip RK3568, 4x Cortex-A55 with the crypto extensions, 2-4 GiB, 2x 2.5 GbE + 1 GbE).
# AES-GCM first: the RK3568's Cortex-A55 cores have the ARMv8 AES/PMULL instructions; mbedTLS's AESCE code (MBEDTLS_AESCE_C, detected at run time through HWCAP_AES) makes AES-GCM several times faster than ChaCha20 there.
ARCH := aarch64
CPU_CFLAGS := -mcpu=cortex-a55
BOARD_CPPFLAGS := -DWG_BOARD_NAME='"nanopi-r5s"' \
	-DWG_BOARD_WORKERS=4 \
	-DWG_BOARD_MAX_CONNS=16384 \
	-DWG_BOARD_BUF_SIZE=16384 \
	-DWG_BOARD_CIPHER_PREF_CHACHA=0 \
	-DWG_BOARD_CIPHER_PREF='"aes"' \
	-DWG_BOARD_USER='"waygate"' \
	-DWG_BOARD_LIMITS='"max-body-bytes 64M; max-client-connections 256"'
