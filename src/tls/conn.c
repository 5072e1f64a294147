/* SPDX-License-Identifier: MIT */
/*
 * conn.c: one TLS connection over a caller-owned non-blocking fd: the BIO
 * (send/recv with MSG_NOSIGNAL), server set-up deferred until the whole
 * ClientHello is in, the handshake driven step by step (so that a
 * resumption can be told from a full handshake), reads and writes mapped
 * to waygate's results (bytes, 0 for a clean close, -WG_EAGAIN_READ/WRITE,
 * other negatives fatal), and what the proxy asks afterwards (SNI, ALPN,
 * version, suite, peer verified, a short failure reason). A tls_conn
 * belongs to the thread that made it; it never closes the fd and never
 * logs above debug: the connection's owner logs the one line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/x509.h>

#include "core/err.h"
#include "core/log.h"
#include "tls/internal.h"
#include "tls/tls.h"

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct tls_conn *c = ctx;
	ssize_t n;

	for (;;) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_WRITE;
		c->sys_errno = errno;
		return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
							     : MBEDTLS_ERR_NET_SEND_FAILED;
	}
}

static __thread unsigned char ra_buf[TLS_RA_SIZE];

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct tls_conn *c = ctx;
	ssize_t n;

	/* First the ClientHello bytes server_prepare() had to take. */
	if (c->pre) {
		size_t k = c->pre_len - c->pre_off < len ? c->pre_len - c->pre_off : len;

		memcpy(buf, c->pre + c->pre_off, k);
		c->pre_off += k;
		if (c->pre_off == c->pre_len) {
			mbedtls_free(c->pre);
			c->pre = NULL;
			c->pre_len = c->pre_off = c->pre_cap = 0;
		}
		return (int)k;
	}
	/* Then what an earlier read took ahead. */
	if (c->ra_off < c->ra_len) {
		size_t k = (size_t)(c->ra_len - c->ra_off) < len ? (size_t)(c->ra_len - c->ra_off)
								  : len;

		memcpy(buf, (c->ra_tl ? ra_buf : c->ra) + c->ra_off, k);
		c->ra_off = (uint16_t)(c->ra_off + k);
		if (!c->ra_tl && c->ra_off == c->ra_len) {
			mbedtls_free(c->ra); /* held only while it has bytes */
			c->ra = NULL;
		}
		return (int)k;
	}
	/* mbedTLS asks for a record's 5-byte header, then for its body: on a
	 * server, a short read also takes what follows (typically the rest of
	 * the record) into the thread's ra_buf, so that a small record costs
	 * one syscall, not two. ra_keep() moves what is left when the call
	 * returns; tls_pending() counts it. */
	if (c->side == TLS_SIDE_SERVER && len < TLS_RA_SIZE / 2) {
		struct iovec v[2] = {{buf, len}, {ra_buf, TLS_RA_SIZE}};

		for (;;) {
			n = readv(c->fd, v, 2);
			if (n >= 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return MBEDTLS_ERR_SSL_WANT_READ;
			c->sys_errno = errno;
			return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
						   : MBEDTLS_ERR_NET_RECV_FAILED;
		}
		c->ra_off = c->ra_len = 0;
		if ((size_t)n > len) {
			c->ra_len = (uint16_t)((size_t)n - len);
			c->ra_tl = true;
			n = (ssize_t)len;
		}
		return (int)n; /* 0: EOF */
	}
	for (;;) {
		n = recv(c->fd, buf, len, 0);
		if (n >= 0)
			return (int)n; /* 0: EOF, mbedTLS reports MBEDTLS_ERR_SSL_CONN_EOF */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_READ;
		c->sys_errno = errno;
		return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
					   : MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

static int conn_setup(struct tls_conn *c, const mbedtls_ssl_config *conf)
{
	if (mbedtls_ssl_setup(&c->ssl, conf) != 0)
		return -ENOMEM;
	mbedtls_ssl_set_user_data_p(&c->ssl, c);
	mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
	c->setup = true;
	return 0;
}

static struct tls_conn *conn_new(int fd)
{
	struct tls_conn *c = mbedtls_calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	mbedtls_ssl_init(&c->ssl);
	c->fd = fd;
	return c;
}

/* What is looked at without taking it (real hellos are under 2 KiB), and
 * the most taken while waiting (a 16 KiB hello over a few records). */
#define HELLO_PEEK 4096
#define HELLO_PEEK_MAX (16384 + 4 + 8 * 5)

static __thread unsigned char hello_peek[HELLO_PEEK];

/* Server connections set up mbedTLS (its 24 KiB of record buffers) only
 * once the whole ClientHello is there: a client that connects and sends
 * nothing, or trickles, costs a few hundred bytes, not 32 KB. The hello
 * also picks the configuration: with a ChaCha20-first server and a TLS 1.3
 * client offering ChaCha20, s->conf13 (ChaCha20 only) makes the server's
 * preference win. The common case only peeks (the bytes stay in the
 * socket); an incomplete hello is taken into c->pre, or a level-triggered
 * loop would wake up for it again and again, and handed to mbedTLS by
 * bio_recv. Anything that is not a ClientHello goes to mbedTLS as is, so
 * that it fails the way it always does. */
static int server_prepare(struct tls_conn *c)
{
	struct tls_hello h = {0};
	const mbedtls_ssl_config *conf;
	int scan = 0;

	for (;;) {
		const unsigned char *data;
		size_t len;
		ssize_t n;

		if (!c->pre) {
			n = recv(c->fd, hello_peek, sizeof(hello_peek), MSG_PEEK);
			data = hello_peek;
		} else {
			if (c->pre_len == c->pre_cap) {
				size_t cap = c->pre_cap * 2 < HELLO_PEEK_MAX ? c->pre_cap * 2
									     : HELLO_PEEK_MAX;
				unsigned char *p = mbedtls_calloc(1, cap);

				if (!p)
					return -ENOMEM;
				memcpy(p, c->pre, c->pre_len);
				mbedtls_free(c->pre);
				c->pre = p;
				c->pre_cap = cap;
			}
			n = recv(c->fd, c->pre + c->pre_len, c->pre_cap - c->pre_len, 0);
			if (n > 0)
				c->pre_len += (size_t)n;
			data = c->pre;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -WG_EAGAIN_READ;
		if (n <= 0)
			break; /* EOF or error: mbedTLS reads it again and reports it */
		len = c->pre ? c->pre_len : (size_t)n;
		scan = tls_hello_scan(data, len, &h);
		if (scan == -ENOMEM)
			return -ENOMEM;
		if (scan != 0 || len >= HELLO_PEEK_MAX)
			break;
		if (!c->pre) {
			/* Incomplete at first sight: take what is there. */
			c->pre_cap = len < 1024 ? 1024 : len;
			c->pre = mbedtls_calloc(1, c->pre_cap);
			if (!c->pre)
				return -ENOMEM;
			n = recv(c->fd, c->pre, len, 0);
			if (n <= 0) {
				mbedtls_free(c->pre);
				c->pre = NULL;
				c->pre_cap = 0;
				if (n == -1 && (errno == EAGAIN || errno == EINTR))
					continue;
				break;
			}
			c->pre_len = (size_t)n;
		}
	}
	conf = scan > 0 && h.chacha13 && c->srv->has_conf13 ? &c->srv->conf13 : &c->srv->conf;
	return conn_setup(c, conf);
}

struct tls_conn *tls_conn_server(struct tls_server *s, int fd)
{
	struct tls_conn *c;

	if (!s)
		return NULL;
	c = conn_new(fd);
	if (!c)
		return NULL;
	c->side = TLS_SIDE_SERVER;
	tls_server_ref(s);
	c->srv = s;
	return c;
}

struct tls_conn *tls_conn_client(struct tls_client *cl, int fd, const char *server_name)
{
	struct tls_conn *c;

	if (!cl)
		return NULL;
	c = conn_new(fd);
	if (!c)
		return NULL;
	if (conn_setup(c, &cl->conf) != 0) {
		tls_conn_free(c);
		return NULL;
	}
	c->side = TLS_SIDE_CLIENT;
	tls_client_ref(cl);
	c->cli = cl;
	if (tls_client_conn_setup(cl, c, server_name) != 0) {
		tls_conn_free(c);
		return NULL;
	}
	return c;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	mbedtls_ssl_free(&c->ssl);
	if (c->pre)
		mbedtls_free(c->pre);
	if (c->ra)
		mbedtls_free(c->ra);
	if (c->name)
		mbedtls_free(c->name);
	if (c->srv)
		tls_server_unref(c->srv);
	if (c->cli)
		tls_client_unref(c->cli);
	mbedtls_free(c);
}

static void set_err(struct tls_conn *c, const char *fmt, const char *arg)
{
	snprintf(c->err, sizeof(c->err), fmt, arg);
}

/* The first reason found in verification flags, in the order a person
 * fixing the setup needs it. */
static const char *verify_reason(uint32_t flags)
{
	if (flags & MBEDTLS_X509_BADCERT_SKIP_VERIFY)
		return "no certificate";
	if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
		return "unknown authority";
	if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
		return "certificate expired";
	if (flags & MBEDTLS_X509_BADCERT_FUTURE)
		return "certificate not yet valid";
	if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
		return "name mismatch";
	if (flags & MBEDTLS_X509_BADCERT_REVOKED)
		return "certificate revoked";
	if (flags & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
		     MBEDTLS_X509_BADCERT_NS_CERT_TYPE))
		return "certificate not usable for TLS";
	if (flags & (MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK |
		     MBEDTLS_X509_BADCERT_BAD_KEY))
		return "weak or unsupported certificate algorithm";
	return "certificate rejected";
}

/* The alert the peer just sent (RFC 8446 section 6), by name: tells a
 * person whether the other side disliked our certificate, our CA list,
 * our versions or our ALPN. */
static const char *alert_name(const struct tls_conn *c)
{
	static const struct {
		uint8_t code;
		const char *name;
	} names[] = {
		{10, "unexpected_message"},
		{20, "bad_record_mac"},
		{22, "record_overflow"},
		{40, "handshake_failure"},
		{42, "bad_certificate"},
		{43, "unsupported_certificate"},
		{44, "certificate_revoked"},
		{45, "certificate_expired"},
		{46, "certificate_unknown"},
		{47, "illegal_parameter"},
		{48, "unknown_ca"},
		{49, "access_denied"},
		{50, "decode_error"},
		{51, "decrypt_error"},
		{70, "protocol_version"},
		{71, "insufficient_security"},
		{80, "internal_error"},
		{86, "inappropriate_fallback"},
		{109, "missing_extension"},
		{110, "unsupported_extension"},
		{112, "unrecognized_name"},
		{113, "bad_certificate_status_response"},
		{115, "unknown_psk_identity"},
		{116, "certificate_required"},
		{120, "no_application_protocol"},
	};
	const unsigned char *msg = c->ssl.MBEDTLS_PRIVATE(in_msg);

	if (!msg || c->ssl.MBEDTLS_PRIVATE(in_msgtype) != MBEDTLS_SSL_MSG_ALERT)
		return "(unknown)";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].code == msg[1])
			return names[i].name;
	}
	return "(unknown)";
}

/* Maps an mbedTLS error to a waygate result, recording why it failed. */
static int fail(struct tls_conn *c, int ret, const char *during)
{
	char e[128];

	switch (ret) {
	case MBEDTLS_ERR_SSL_WANT_READ: return -WG_EAGAIN_READ;
	case MBEDTLS_ERR_SSL_WANT_WRITE: return -WG_EAGAIN_WRITE;
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
	case MBEDTLS_ERR_SSL_BAD_CERTIFICATE:
		set_err(c, "certificate verify failed: %s",
			verify_reason(mbedtls_ssl_get_verify_result(&c->ssl)));
		break;
	case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
		set_err(c, "%s", "certificate required: the client sent none");
		break;
	case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
		snprintf(c->err, sizeof(c->err), "%s: peer sent alert %s", during, alert_name(c));
		break;
	case MBEDTLS_ERR_SSL_NO_APPLICATION_PROTOCOL:
		set_err(c, "%s: no common ALPN protocol", during);
		break;
	case MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION:
		set_err(c, "%s: unsupported protocol version", during);
		break;
	case MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE:
		set_err(c, "%s: no common cipher suite, group or signature algorithm", during);
		break;
	case MBEDTLS_ERR_SSL_INVALID_MAC:
	case MBEDTLS_ERR_SSL_INVALID_RECORD:
	case MBEDTLS_ERR_SSL_DECODE_ERROR:
		set_err(c, "%s: malformed or undecryptable record from peer", during);
		break;
	case MBEDTLS_ERR_SSL_CONN_EOF: set_err(c, "%s: connection closed by peer", during); break;
	case MBEDTLS_ERR_NET_CONN_RESET: set_err(c, "%s: connection reset by peer", during); break;
	case MBEDTLS_ERR_NET_SEND_FAILED:
	case MBEDTLS_ERR_NET_RECV_FAILED:
		snprintf(c->err, sizeof(c->err), "%s: %s", during, strerror(c->sys_errno));
		break;
	case MBEDTLS_ERR_SSL_ALLOC_FAILED:
		set_err(c, "%s: out of memory", during);
		log_debug("event=tls_error fd=%d during=%s err=%s", c->fd, during,
			  log_q(tls_strerror(ret, e, sizeof(e))));
		return -ENOMEM;
	default:
		snprintf(c->err, sizeof(c->err), "%s: error -0x%04x", during, (unsigned)-ret);
		break;
	}
	log_debug("event=tls_error fd=%d during=%s reason=%s err=%s", c->fd, during, log_q(c->err),
		  log_q(tls_strerror(ret, e, sizeof(e))));
	return -WG_ETLS;
}

static void handshake_done(struct tls_conn *c)
{
	bool cert = mbedtls_ssl_get_peer_cert(&c->ssl) != NULL;
	bool clean = mbedtls_ssl_get_verify_result(&c->ssl) == 0;

	c->done = true;
	if (c->side == TLS_SIDE_CLIENT) {
		/* A TLS 1.3 resumption carries no certificate; the session was
		 * cached by this verifying client only after it verified. */
		c->peer_ok = !c->cli->insecure && clean && (cert || !c->full);
	} else if (c->srv->client_auth == TLS_CLIENT_AUTH_REQUIRE) {
		/* mbedTLS fails a full handshake without a valid certificate, and
		 * tickets come only from such handshakes with this context. */
		c->peer_ok = true;
	} else {
		/* Optional: mbedTLS reports a TLS 1.3 resumption as verified even
		 * when the original certificate was not, and the ticket does not
		 * carry the certificate: only a certificate seen here counts. */
		c->peer_ok = c->srv->client_auth == TLS_CLIENT_AUTH_OPTIONAL && cert && clean;
	}
	/* TLS 1.3 tickets arrive after the handshake (see tls_read). */
	if (c->side == TLS_SIDE_CLIENT &&
	    mbedtls_ssl_get_version_number(&c->ssl) == MBEDTLS_SSL_VERSION_TLS1_2)
		tls_client_session_store(c);
}

/* After a call into mbedTLS: read-ahead bytes still in the thread's
 * buffer move to a buffer of the connection's own, of their size, freed
 * once they are read (rare: a TLS 1.3 client's first request behind its
 * Finished, pipelining), so an idle connection holds none. */
static void ra_keep(struct tls_conn *c)
{
	if (!c->ra_tl)
		return;
	c->ra_tl = false;
	if (c->ra_off >= c->ra_len) {
		c->ra_off = c->ra_len = 0;
		return;
	}
	mbedtls_free(c->ra); /* NULL: it is freed once read */
	c->ra = mbedtls_calloc(1, (size_t)(c->ra_len - c->ra_off));
	if (!c->ra) {
		c->ra_off = c->ra_len = 0;
		set_err(c, "%s", "read: out of memory");
		return;
	}
	memcpy(c->ra, ra_buf + c->ra_off, (size_t)(c->ra_len - c->ra_off));
	c->ra_len = (uint16_t)(c->ra_len - c->ra_off);
	c->ra_off = 0;
}

static int handshake(struct tls_conn *c)
{
	int ret;

	if (c->done)
		return 0;
	if (c->err[0])
		return -WG_ETLS;
	if (!c->setup) {
		ret = server_prepare(c);
		if (ret == -ENOMEM)
			set_err(c, "%s", "handshake: out of memory");
		if (ret != 0)
			return ret;
	}
	/* mbedtls_ssl_handshake() is this loop; doing it here lets us see
	 * whether a certificate was exchanged (a full handshake) or not. */
	while (!mbedtls_ssl_is_handshake_over(&c->ssl)) {
		ret = mbedtls_ssl_handshake_step(&c->ssl);
		if (c->ssl.MBEDTLS_PRIVATE(state) == MBEDTLS_SSL_SERVER_CERTIFICATE)
			c->full = true;
		if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			tls_client_session_store(c);
			continue;
		}
		if (ret != 0)
			return fail(c, ret, "handshake");
	}
	handshake_done(c);
	return 0;
}

int tls_handshake(struct tls_conn *c)
{
	int ret = handshake(c);

	ra_keep(c);
	return ret;
}

/* Before application data moves: a failed connection stays failed and a
 * pending handshake goes first. 0 when data may move. */
static int data_ready(struct tls_conn *c)
{
	if (c->err[0])
		return -WG_ETLS;
	return c->done ? 0 : tls_handshake(c);
}

static ssize_t read_records(struct tls_conn *c, void *buf, size_t len)
{
	int ret = data_ready(c);

	if (ret != 0)
		return ret;
	if (len > INT32_MAX)
		len = INT32_MAX;
	for (;;) {
		ret = mbedtls_ssl_read(&c->ssl, buf, len);
		if (ret >= 0)
			return ret;
		switch (ret) {
		case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
			tls_client_session_store(c);
			continue;
		case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
		case MBEDTLS_ERR_SSL_CONN_EOF: return 0;
		default: return fail(c, ret, "read");
		}
	}
}

ssize_t tls_read(struct tls_conn *c, void *buf, size_t len)
{
	ssize_t n = read_records(c, buf, len);

	ra_keep(c);
	return n;
}

ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len)
{
	int ret = data_ready(c);

	if (ret != 0)
		return ret;
	if (len > INT32_MAX)
		len = INT32_MAX;
	for (;;) {
		ret = mbedtls_ssl_write(&c->ssl, buf, len);
		if (ret >= 0)
			return ret;
		if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			tls_client_session_store(c);
			continue;
		}
		return fail(c, ret, "write");
	}
}

ssize_t tls_writev(struct tls_conn *c, const struct iovec *iov, int iovcnt)
{
	unsigned char writev_buf[MBEDTLS_SSL_OUT_CONTENT_LEN]; /* one record's worth */
	size_t max = sizeof(writev_buf), n = 0;
	int i = 0, ret;

	while (i < iovcnt && iov[i].iov_len == 0)
		i++;
	if (i == iovcnt)
		return 0;
	if (!c->done && (ret = tls_handshake(c)) != 0)
		return ret;
	ret = mbedtls_ssl_get_max_out_record_payload(&c->ssl);
	if (ret > 0 && (size_t)ret < max)
		max = (size_t)ret;
	/* Large enough alone, or alone: no copy. */
	if (iov[i].iov_len >= max || i + 1 == iovcnt)
		return tls_write(c, iov[i].iov_base, iov[i].iov_len);
	for (; i < iovcnt && n < max; i++) {
		size_t take = iov[i].iov_len < max - n ? iov[i].iov_len : max - n;

		memcpy(writev_buf + n, iov[i].iov_base, take);
		n += take;
	}
	return tls_write(c, writev_buf, n);
}

void tls_close_notify(struct tls_conn *c)
{
	if (c && c->done)
		(void)mbedtls_ssl_close_notify(&c->ssl);
}

size_t tls_pending(const struct tls_conn *c)
{
	/* Hello bytes held before set-up are not counted: nothing can be done
	 * with them until the fd brings the rest (and once set up, mbedTLS
	 * drains them before it ever reports WANT_READ). */
	size_t n = mbedtls_ssl_get_bytes_avail(&c->ssl);

	/* Bytes read ahead (bio_recv) are not decrypted yet, but the fd will
	 * not say they are there. */
	if (n == 0 && c->ra_off < c->ra_len)
		n = 1;

	/* A record already in the input buffer but not yet decrypted also
	 * means "read again before waiting for the fd". */
	if (n == 0 && mbedtls_ssl_check_pending(&c->ssl))
		n = 1;
	return n;
}

const char *tls_conn_sni(const struct tls_conn *c)
{
	return c->name;
}

const char *tls_conn_alpn(const struct tls_conn *c)
{
	return mbedtls_ssl_get_alpn_protocol(&c->ssl);
}

const char *tls_conn_version(const struct tls_conn *c)
{
	switch (mbedtls_ssl_get_version_number(&c->ssl)) {
	case MBEDTLS_SSL_VERSION_TLS1_2: return "TLSv1.2";
	case MBEDTLS_SSL_VERSION_TLS1_3: return "TLSv1.3";
	default: return "unknown";
	}
}

/* IANA names (what access logs and other proxies print). */
static const struct {
	int id;
	const char *name;
} suite_names[] = {
	{MBEDTLS_TLS1_3_AES_128_GCM_SHA256, "TLS_AES_128_GCM_SHA256"},
	{MBEDTLS_TLS1_3_AES_256_GCM_SHA384, "TLS_AES_256_GCM_SHA384"},
	{MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, "TLS_CHACHA20_POLY1305_SHA256"},
	{MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	 "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
	{MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
	{MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	 "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
	{MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
	{MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	 "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
	{MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	 "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
};

const char *tls_conn_cipher(const struct tls_conn *c)
{
	int id = mbedtls_ssl_get_ciphersuite_id_from_ssl(&c->ssl);

	for (size_t i = 0; i < sizeof(suite_names) / sizeof(suite_names[0]); i++) {
		if (suite_names[i].id == id)
			return suite_names[i].name;
	}
	return mbedtls_ssl_get_ciphersuite(&c->ssl);
}

bool tls_conn_resumed(const struct tls_conn *c)
{
	return c->done && !c->full;
}

bool tls_conn_peer_verified(const struct tls_conn *c)
{
	return c->peer_ok;
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->err[0] ? c->err : NULL;
}
