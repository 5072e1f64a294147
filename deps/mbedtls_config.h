/* SPDX-License-Identifier: MIT */
/*
 * deps/mbedtls_config.h: waygate's trimmed Mbed TLS 3.6 configuration.
 *
 * The dependency build copies this file over include/mbedtls/mbedtls_config.h
 * of the Mbed TLS tree before compiling, and stages that header, so the
 * library and waygate's tls/ module see one configuration (the same struct
 * layouts) without any -DMBEDTLS_CONFIG_FILE flag. Changing this file changes
 * the dependency cache key: `make deps` rebuilds Mbed TLS (a few seconds).
 *
 * What waygate needs and therefore what is on:
 *   - TLS 1.2 and TLS 1.3, client and server; SNI, ALPN ("h2"), session
 *     tickets (1.2 tickets and 1.3 PSK-ephemeral resumption), EMS, EtM.
 *   - ECDHE with X25519 and P-256; P-384 to verify peers whose chains use it.
 *   - ECDSA and RSA certificates (Kubernetes API servers and the conformance
 *     suite's certificates are RSA 2048); RSA-PSS, needed by TLS 1.3 with
 *     RSA certificates (without X509_RSASSA_PSS_SUPPORT the handshake fails
 *     with -0x6e00 even though PKCS1_V21 is set).
 *   - AES-GCM and ChaCha20-Poly1305 (AES-CBC only for PKCS#5/PEM key files
 *     and TLS 1.2 CBC suites); SHA-256/384/512 (SHA-1 only to verify legacy
 *     chains); HKDF; PSA crypto (a TLS 1.3 prerequisite: call
 *     psa_crypto_init() before the first handshake).
 *   - PKCS#1 and PKCS#8 key parsing, PEM read and write, X.509 parsing and
 *     certificate/CSR writing (self-signed certificate generation), key
 *     generation (EC; RSA via GENPRIME), PKCS#5 PBKDF2 (password hashing),
 *     base64.
 *   - MBEDTLS_PLATFORM_MEMORY: tls/ may install its own calloc/free.
 *   - Hardware AES chosen at run time: AES-NI on x86_64, the Armv8 crypto
 *     extension (and SHA-256 instructions) on aarch64.
 *   - Speed where handshakes spend it: Everest X25519 (with the local patch
 *     in deps/patches/mbedtls/), NIST curve optimisations, fixed-point
 *     tables, window size 6; the library is built at -O2 (MBEDTLS_OPT in
 *     mk/deps.mk) while the others are -Os.
 *
 * Deliberately off: DTLS, renegotiation, TLS 1.3 early data, NET_C (waygate
 * owns its sockets), PSA persistent key storage, MD5/DES/CCM/CAMELLIA/ARIA,
 * the self tests, and every deprecated interface (DEPRECATED_REMOVED).
 */
#ifndef WG_MBEDTLS_CONFIG_H
#define WG_MBEDTLS_CONFIG_H

/* --- System support ------------------------------------------------------ */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_DEPRECATED_REMOVED
#define MBEDTLS_FS_IO
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD
#define MBEDTLS_ERROR_C
#define MBEDTLS_VERSION_C

/* --- Randomness and PSA -------------------------------------------------- */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_PSA_KEY_STORE_DYNAMIC /* key slots grow with connections */

/* --- Hashes and KDFs ----------------------------------------------------- */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA1_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_HKDF_C
#define MBEDTLS_PKCS5_C

/* --- Ciphers --------------------------------------------------------------- */
#define MBEDTLS_CIPHER_C
#define MBEDTLS_AES_C
#define MBEDTLS_GCM_C
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_PADDING_PKCS7

/* Hardware acceleration, detected at run time; a no-op elsewhere. */
#if defined(__x86_64__)
#define MBEDTLS_AESNI_C
#endif
#if defined(__aarch64__)
#define MBEDTLS_AESCE_C
#define MBEDTLS_SHA256_USE_ARMV8_A_CRYPTO_IF_PRESENT
#endif

/* --- Public key ------------------------------------------------------------ */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_GENPRIME
#define MBEDTLS_OID_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21
#define MBEDTLS_ECP_C
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 1
/* Speed, requested and measured by tls/ (deps/CONFIG-REQUESTS.md): Project
 * Everest's verified constant-time X25519 (Apache-2.0, in Mbed TLS's
 * 3rdparty/; used for every X25519 operation through
 * deps/patches/mbedtls/0001-*.patch) and a larger comb window (a few percent
 * on ECDSA verify and P-256 agreement, about 3 KiB more stack per
 * operation). */
#define MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED
#define MBEDTLS_ECP_WINDOW_SIZE 6
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_BASE64_C

/* --- X.509 ----------------------------------------------------------------- */
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_CRL_PARSE_C
#define MBEDTLS_X509_CSR_PARSE_C
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CRT_WRITE_C
#define MBEDTLS_X509_CSR_WRITE_C

/* --- TLS ------------------------------------------------------------------- */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_ALPN
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_ENCRYPT_THEN_MAC
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_TICKET_C
#define MBEDTLS_SSL_MAX_CONTENT_LEN 16384
/* Records we send are at most 8 KiB: 8 KiB less heap per connection (40.4
 * -> 32.2 KB idle), and still room for any certificate chain we send (Mbed
 * TLS does not fragment outgoing handshake messages). What we receive
 * stays 16 KiB: peers send full-size records. */
#define MBEDTLS_SSL_OUT_CONTENT_LEN 8192

#endif /* WG_MBEDTLS_CONFIG_H */
