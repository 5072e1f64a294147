/* SPDX-License-Identifier: MIT */
/*
 * test_tlsutil.c: shared fixtures and the handshake driver of the tls/
 * unit tests (see tlsutil.h). Registers no tests of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "tls/internal.h"
#include "tls/tls.h"
#include "tlsutil.h"

static struct tpki pki;
static bool pki_ready;

static void gen(const char *cn, const char *const *sans, size_t n, bool ca, const char *icrt,
		const char *ikey, char **crt, char **key)
{
	int64_t now = (int64_t)time(NULL);
	struct tls_gen_req r = {
		.cn = cn,
		.sans = sans,
		.n_sans = n,
		.not_before = now - 3600,
		.not_after = now + 86400 * 30,
		.is_ca = ca,
		.issuer_cert_pem = icrt,
		.issuer_key_pem = ikey,
	};

	if (tls_gen_cert(&r, crt, key) != 0) {
		fprintf(stderr, "tlsutil: cannot generate %s\n", cn);
		abort();
	}
}

const struct tpki *tpki_get(void)
{
	static const char *www[] = {"www.example.com", "example.com"};
	static const char *wild[] = {"*.example.com"};
	static const char *other[] = {"other.test"};
	static const char *ip[] = {"127.0.0.1", "::1", "localhost"};
	static const char *uri[] = {"spiffe://cluster.local/ns/default/sa/backend",
				    "backend.internal"};
	struct tpki *k = &pki;

	if (pki_ready)
		return k;
	gen("waygate test CA", NULL, 0, true, NULL, NULL, &k->ca_crt, &k->ca_key);
	gen("untrusted CA", NULL, 0, true, NULL, NULL, &k->ca2_crt, &k->ca2_key);
	gen("www.example.com", www, 2, false, k->ca_crt, k->ca_key, &k->www_crt, &k->www_key);
	gen("*.example.com", wild, 1, false, k->ca_crt, k->ca_key, &k->wild_crt, &k->wild_key);
	gen("other.test", other, 1, false, k->ca_crt, k->ca_key, &k->other_crt, &k->other_key);
	gen("127.0.0.1", ip, 3, false, k->ca_crt, k->ca_key, &k->ip_crt, &k->ip_key);
	gen("backend", uri, 2, false, k->ca_crt, k->ca_key, &k->uri_crt, &k->uri_key);
	gen("client", NULL, 0, false, k->ca_crt, k->ca_key, &k->cli_crt, &k->cli_key);
	gen("client2", NULL, 0, false, k->ca2_crt, k->ca2_key, &k->cli2_crt, &k->cli2_key);
	gen("www.example.com", www, 2, false, k->ca2_crt, k->ca2_key, &k->rogue_crt, &k->rogue_key);
	pki_ready = true;
	return k;
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int tpair_open(struct tpair *p, struct tls_server *srv, struct tls_client *cli,
	       const char *server_name)
{
	memset(p, 0, sizeof(*p));
	p->fd[0] = p->fd[1] = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd) == -1)
		return -1;
	if (nonblock(p->fd[0]) == -1 || nonblock(p->fd[1]) == -1)
		goto fail;
	p->s = tls_conn_server(srv, p->fd[0]);
	p->c = tls_conn_client(cli, p->fd[1], server_name);
	if (!p->s || !p->c)
		goto fail;
	p->s_ret = p->c_ret = -WG_EAGAIN_READ;
	return 0;
fail:
	tpair_close(p);
	return -1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool pending(int r)
{
	return r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE;
}

static short events_for(int r)
{
	return r == -WG_EAGAIN_WRITE ? POLLOUT : POLLIN;
}

int tpair_handshake(struct tpair *p)
{
	int64_t deadline = now_ms() + 5000;

	while (now_ms() < deadline) {
		struct pollfd pf[2];
		int n = 0;

		if (pending(p->c_ret))
			p->c_ret = tls_handshake(p->c);
		if (pending(p->s_ret))
			p->s_ret = tls_handshake(p->s);
		if (p->c_ret == 0 && p->s_ret == 0)
			return 0;
		if (!pending(p->c_ret) && !pending(p->s_ret))
			return -1;
		if (pending(p->s_ret))
			pf[n++] = (struct pollfd){.fd = p->fd[0], .events = events_for(p->s_ret)};
		if (pending(p->c_ret))
			pf[n++] = (struct pollfd){.fd = p->fd[1], .events = events_for(p->c_ret)};
		/* One side done or failed and the other waits for nothing. */
		if (poll(pf, (nfds_t)n, 200) == 0 && (!pending(p->c_ret) || !pending(p->s_ret)))
			return -1;
	}
	return -1;
}

size_t tpair_xfer(struct tpair *p, bool from_server, const void *data, size_t n, void *out)
{
	struct tls_conn *w = from_server ? p->s : p->c, *r = from_server ? p->c : p->s;
	int wfd = from_server ? p->fd[0] : p->fd[1], rfd = from_server ? p->fd[1] : p->fd[0];
	int64_t deadline = now_ms() + 5000;
	size_t sent = 0, got = 0;

	while (got < n && now_ms() < deadline) {
		struct pollfd pf[2];
		int k = 0;
		ssize_t ret;
		short wev = 0, rev = POLLIN;

		while (sent < n) {
			ret = tls_write(w, (const char *)data + sent, n - sent);
			if (ret > 0) {
				sent += (size_t)ret;
				continue;
			}
			if (ret == -WG_EAGAIN_WRITE)
				wev = POLLOUT;
			else if (ret == -WG_EAGAIN_READ)
				wev = POLLIN;
			else
				return got;
			break;
		}
		for (;;) {
			ret = tls_read(r, (char *)out + got, n - got);
			if (ret > 0) {
				got += (size_t)ret;
				if (got == n)
					return got;
				continue;
			}
			if (ret == -WG_EAGAIN_WRITE)
				rev = POLLOUT;
			else if (ret != -WG_EAGAIN_READ)
				return got;
			break;
		}
		if (wev)
			pf[k++] = (struct pollfd){.fd = wfd, .events = wev};
		pf[k++] = (struct pollfd){.fd = rfd, .events = rev};
		poll(pf, (nfds_t)k, 100);
	}
	return got;
}

void tpair_close(struct tpair *p)
{
	tls_conn_free(p->s);
	tls_conn_free(p->c);
	p->s = p->c = NULL;
	for (int i = 0; i < 2; i++) {
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		p->fd[i] = -1;
	}
}

struct tls_server *tsrv_new(const char *const *alpn, enum tls_client_auth auth,
			    const char *client_ca, const char *cert1, const char *key1, ...)
{
	struct tls_cert_pem certs[8];
	struct tls_server_opts o = {0};
	struct tls_server *s;
	struct diag d = {0};
	size_t n = 0;
	va_list ap;

	certs[n++] = (struct tls_cert_pem){.cert_pem = cert1, .key_pem = key1, .name = "test/c0"};
	va_start(ap, key1);
	for (;;) {
		const char *c = va_arg(ap, const char *);

		if (!c || n == 8)
			break;
		certs[n] = (struct tls_cert_pem){
			.cert_pem = c, .key_pem = va_arg(ap, const char *), .name = "test/cN"};
		n++;
	}
	va_end(ap);
	o.certs = certs;
	o.n_certs = n;
	o.alpn = alpn;
	o.client_auth = auth;
	o.client_ca_pem = client_ca;
	s = tls_server_new(&o, &d);
	for (size_t i = 0; i < d.n; i++) {
		char buf[512];

		fprintf(stderr, "tsrv_new: %s\n", diag_format(&d.v[i], buf, sizeof(buf)));
	}
	diag_fini(&d);
	return s;
}

struct tls_client *tcli_new(const char *ca, const char *const *alpn)
{
	struct tls_client_opts o = {0};
	struct tls_client *c;
	struct diag d = {0};

	o.ca_pem = ca;
	o.insecure_skip_verify = ca == NULL;
	o.alpn = alpn;
	c = tls_client_new(&o, &d);
	diag_fini(&d);
	return c;
}

const char fx_rsa_ca_crt[] = "-----BEGIN CERTIFICATE-----\n"
			     "MIIDLzCCAhegAwIBAgIUKeKMwu55RL9t8OQ81DEDaLd4n4MwDQYJKoZIhvcNAQEL\n"
			     "BQAwHjEcMBoGA1UEAwwTd2F5Z2F0ZSB0ZXN0IFJTQSBDQTAgFw0yNjExMjYwNTE5\n"
			     "MzVaGA8yMTI2MTEwMjA1MTkzNVowHjEcMBoGA1UEAwwTd2F5Z2F0ZSB0ZXN0IFJT\n"
			     "QSBDQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAK1tvHYd7nrhdhgk\n"
			     "At6Kr9Xa3SLgeafOdvMLMX6juY9cP+rq2ZG0Nw+5bRNdZ3hor+P8tVi7V0aELvYe\n"
			     "/hL440LSbsTZMjkfGQ/6jcD7V5QnWE9wUb872pOLTealgPz+4t9wi/MkP1vESmEF\n"
			     "nS9lLrZLjrtgikjT9ZNYnFBVzNr/vIt3NKhFUKOIZrlJbKYQTxpQj191OSbMSFkt\n"
			     "0BBGK9Bk0+wAx+wlXEW7xP9JLIRV8nr6rds3PmmenNmwpC21Kz0zM6UmZh40i+E6\n"
			     "1ma3HcpzZByKu58ouLVNk85VuuebIRQ2DDH+CgnpdndbQTQbUcIOS3oJucoEdnYz\n"
			     "6IKZDwcCAwEAAaNjMGEwHQYDVR0OBBYEFGflrtCPQsY0elMbYdc2JvL0MkGWMB8G\n"
			     "A1UdIwQYMBaAFGflrtCPQsY0elMbYdc2JvL0MkGWMA8GA1UdEwEB/wQFMAMBAf8w\n"
			     "DgYDVR0PAQH/BAQDAgEGMA0GCSqGSIb3DQEBCwUAA4IBAQBYfLsc7EuuXwwmYqpo\n"
			     "wHupMCCIVPMGfOxFEDfOGfdi3NANh7gpjBkfmEAE3DIMlUo0Y41SP0ZQGrz1c47k\n"
			     "K86UQjyBX5AMMMmPwqsMW5S1sSt3VPMhFuNvkiZ1xiyKU6VcujmCSS4i7XypJdN+\n"
			     "qw/lh/pdnueRxpFot2PfwoNsVO4bj3m8ep5YBAb5J3+osK2AwRf8XG7ODQRwCQ2b\n"
			     "RB2zXCK9ibPh0TLzIS1LcwicVAZwLbL141t9yGhj38W0gQMjroapFXei83ok81Rs\n"
			     "opKbP4/w+B1mKkL/9Yf11Mw+iPkBOkPhJQkdPKjH0BwTTeEEEiRXioAuRKZMee8t\n"
			     "5owE\n"
			     "-----END CERTIFICATE-----\n";

const char fx_rsa_srv_crt[] = "-----BEGIN CERTIFICATE-----\n"
			      "MIIDUjCCAjqgAwIBAgIUCei/Ywrkwtrn5cvc1OdqGorXz3cwDQYJKoZIhvcNAQEL\n"
			      "BQAwHjEcMBoGA1UEAwwTd2F5Z2F0ZSB0ZXN0IFJTQSBDQTAgFw0yNjExMjYwNTE5\n"
			      "MzZaGA8yMTI2MTEwMjA1MTkzNlowFDESMBAGA1UEAwwJa3ViZS50ZXN0MIIBIjAN\n"
			      "BgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxsl5L7EndLju1PK7L3NFDTPU3IRZ\n"
			      "3VOHsafR5vxugDDZz2TRjNlkAg6BRrHklDSWvSAxDTBkLiR45uhRzoMjDuwFre9v\n"
			      "GV0um7uawWyC8iK0O52a8lr0cTJE8JpQ7Iz1R5JTruhBU0bhlXWMAT9tcYC/B3Fi\n"
			      "5/AaLEKFcrW1FvsHhB1beyXl74eZx/TNKYpYETLBwlgOA2X/D8TW6jM+3srX3eR+\n"
			      "uirPqfBfGf535UOf9/n1geEa8uweY24sqhe+3ZJ4oXEIIBwBySlQnMk+zo0BLLW6\n"
			      "Y/lBojpokUJHbNwZSe6bjyCIrokuAkrR3/1Hu5PO4ERHmfsotwaBTwI40QIDAQAB\n"
			      "o4GPMIGMMBoGA1UdEQQTMBGCCWt1YmUudGVzdIcEfwAAATAJBgNVHRMEAjAAMA4G\n"
			      "A1UdDwEB/wQEAwIFoDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUflK8\n"
			      "ednkInWDaesrCh8qzQhr8p8wHwYDVR0jBBgwFoAUZ+Wu0I9CxjR6Uxth1zYm8vQy\n"
			      "QZYwDQYJKoZIhvcNAQELBQADggEBAKPjUEZ4GI3/TEstzNTDuVStoEmrCjxpWAuJ\n"
			      "aNnlunwON1X0fR3IGTmX36LZ3vOiphN9kLb3hmgweAZk1vf+dLGNfAsaFWe2V8LZ\n"
			      "Q3v/NPLAMNNrOVln3PYzncaeQwuRhG6SuwKDHUNMIIVNM0o4Q4SVnRs/yrElO7L4\n"
			      "Udv85AqG3JEtg7QuRnWAF8dNYouy1CtPgRXJ3AYvWDS/PhlgzHOUKwaAcL2sWiWw\n"
			      "3pQfhkHUmJoa658n29n+OlEeeKY3M0wIgfsl6q+CDqZgT+3+7cFpMvECKB9mVV3v\n"
			      "zfkgWKb0HOFVDG36a0VvoFJfmUcMAnxc5b6NFceJ1mwTfIdLuOA=\n"
			      "-----END CERTIFICATE-----\n";

const char fx_rsa_srv_key[] = "-----BEGIN PRIVATE KEY-----\n"
			      "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDGyXkvsSd0uO7U\n"
			      "8rsvc0UNM9TchFndU4exp9Hm/G6AMNnPZNGM2WQCDoFGseSUNJa9IDENMGQuJHjm\n"
			      "6FHOgyMO7AWt728ZXS6bu5rBbILyIrQ7nZryWvRxMkTwmlDsjPVHklOu6EFTRuGV\n"
			      "dYwBP21xgL8HcWLn8BosQoVytbUW+weEHVt7JeXvh5nH9M0pilgRMsHCWA4DZf8P\n"
			      "xNbqMz7eytfd5H66Ks+p8F8Z/nflQ5/3+fWB4Rry7B5jbiyqF77dknihcQggHAHJ\n"
			      "KVCcyT7OjQEstbpj+UGiOmiRQkds3BlJ7puPIIiuiS4CStHf/Ue7k87gREeZ+yi3\n"
			      "BoFPAjjRAgMBAAECggEADm6WI8ZCzRCYFlHBEULXIow+yfu54n2r/lPmw1RUWW4y\n"
			      "ggIZzJYD0rpm3FER/UiMIRLzPLfkrgzr0ifPuKSAqRatmuElObwwJBJMu/o6z4WB\n"
			      "fEqG801zLbyukKFDeskJDbcr6CjohTlCK22rSnPmaDUmqU2sFpax78Csm5Vhnlde\n"
			      "hLvxJIx4CRwbGiwSjvpMn7I6hWSK9+f3VZsFY0OToO/fsIYxXebFhJH+IFXP0rU2\n"
			      "+8xH8yDqKK4EGvWqtr8OUM55SMoiSA1usH7mudK7LJLZpO9myzWMbGbEhPVdpdCA\n"
			      "729zyjsqMK6Jsx9NvfJ6DhCxx6pefdWtFcskBtlSeQKBgQDisNEW8vQ1us34bgq5\n"
			      "LZUKUaZ3ho9adIwPs+OpjPe8qYzAPKHVhDECqY2r5E0rAF4DiGKjntMrTBBRiTfu\n"
			      "pAUl5ONNgO4/qQ7R+759qEGbvoBBcYDk6Z5cN8xFln6gbwgzlenfAVFkEfPUVssO\n"
			      "gkI0Zu8PwQW1c0MB1wWBfId8OwKBgQDgfRQ13vJ9pxrlj1Ub5AXllW1lDGEOI9aj\n"
			      "10mA9eBsjRPgTEGXPDWphrT7nMjbqYyHLr4uFcyMdXT9+hOAnGnrFXsUyLvdi9XW\n"
			      "D55Ne2RlObFguYk2nYZIM+qW/veYL4jan3HJDbQ34bx/yBGiJ86o/Aqo73VVxaXP\n"
			      "GGDjTnqqYwKBgQCgng2YCA6WX0R/CGEasbxPMmkTeUjrG3b9zUS6poIFr9BliNBV\n"
			      "u7MKIt6Zc0pl9H2oXSMesXMH034gd2wk7xwirFmNWZP1kTBKAegHmobZ9hFjzSs5\n"
			      "hnnI91QJ3kbcH6+c9VReyM1FbR7pTZHUNuD3xhMOg4Iq/X71t8dT5ssMbwKBgQCr\n"
			      "+ycgnkzoNr1EYSqy014xJOlKING6I3qsyqJlSflFME+p5sHZOydhWPIOUW8P2jTu\n"
			      "28CXTdwHP3UBnjSSs0Hx9+LzaVWDxT1tYUnF0mJ3qltZ3spgLQ5TAnMWev70eHZA\n"
			      "BycFAJqwtR/URVI9CIIqs+z2v30E2QbOQb74ZYdUQQKBgCLFB1uAr06MQu2GFX97\n"
			      "AdxdTfN57h8k/lNyNZcFvQ1KBw1KAN2Isn/FJ7wU+UdK3nHXVD3S7CSVVvLSpkEy\n"
			      "tU6cHRvz/RNUani8tH5JobzQGnohZlMoKjeh8GhQuhFj3LCGOMoMDl1CPZrYZlRm\n"
			      "pA1NSrBEdfCeDUnkAxEG9GOt\n"
			      "-----END PRIVATE KEY-----\n";

const char fx_rsa_cli_crt[] = "-----BEGIN CERTIFICATE-----\n"
			      "MIIDSTCCAjGgAwIBAgIUCei/Ywrkwtrn5cvc1OdqGorXz3gwDQYJKoZIhvcNAQEL\n"
			      "BQAwHjEcMBoGA1UEAwwTd2F5Z2F0ZSB0ZXN0IFJTQSBDQTAgFw0yNjExMjYwNTE5\n"
			      "MzZaGA8yMTI2MTEwMjA1MTkzNlowKTEXMBUGA1UECgwOc3lzdGVtOm1hc3RlcnMx\n"
			      "DjAMBgNVBAMMBWFkbWluMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
			      "mt6XhfgKM3tqz+UAvEuo3iIVqbfob7F3ovz3nNGngUcgyyxZuNGrdiTD1iKKUfBs\n"
			      "+rpJEKO7PQnvhlflsuQxiOhn2c4BA4ofKNW95j8ElLaRpqSYIU8jLGBB5jFtMdSV\n"
			      "QaLTo0iOSv26W/Dz7gegD15pHnri3+uc3/UlQxXJHa//ZdY1ytNENgXA9MEI0SMZ\n"
			      "iMZg6nOy0ndJhJQ5KE0ne0UHKNha0AZ2WSU+4oBMzEYLR38TYgem+VAjU4be6QdC\n"
			      "o0kHbRrd9O6c5JpzaQE6JqU8da7ejmfn4O2Ci2IdPkI2piTTavrUaawz4deZOMNV\n"
			      "7S8hHk6mls2HPI7ta+cpsQIDAQABo3IwcDAJBgNVHRMEAjAAMA4GA1UdDwEB/wQE\n"
			      "AwIFoDATBgNVHSUEDDAKBggrBgEFBQcDAjAdBgNVHQ4EFgQU+mU4oIyU1a+XLCeY\n"
			      "ZFNubsekQEswHwYDVR0jBBgwFoAUZ+Wu0I9CxjR6Uxth1zYm8vQyQZYwDQYJKoZI\n"
			      "hvcNAQELBQADggEBAJ1ma+rA3guvHe8ir+JvK/1ywJHitWstzTk79Ii3a4BWFfcb\n"
			      "nQj1+XA/3O/9IUsPiUiL1wfy8Nrd2hNK9BtgAya4XOeuCGyEAyElVfdEvKQtFmFG\n"
			      "FZyiDCnJb9iL8vOm/K2XG9fmK2cHGj9hDqEZUoWhbNt/EvP2tHvtzK6lDFJnWfjL\n"
			      "RjzrrJcgTCDIvtOMC7h0aNLedrRcuBh2dfMObpgO2W8DaUjdkc1rZAox3R0grJ82\n"
			      "7xg/N8uV52BKiCaPa9htSY0otrEFzEsrbj0+sFrSyxdn7Eje0ZBymzNRm0Lrikug\n"
			      "qIgpPGAIuxJp5XDnK/NLR1KkCM6R4vJxQ7qh+mg=\n"
			      "-----END CERTIFICATE-----\n";

const char fx_rsa_cli_key_pkcs1[] =
	"-----BEGIN RSA PRIVATE KEY-----\n"
	"MIIEogIBAAKCAQEAmt6XhfgKM3tqz+UAvEuo3iIVqbfob7F3ovz3nNGngUcgyyxZ\n"
	"uNGrdiTD1iKKUfBs+rpJEKO7PQnvhlflsuQxiOhn2c4BA4ofKNW95j8ElLaRpqSY\n"
	"IU8jLGBB5jFtMdSVQaLTo0iOSv26W/Dz7gegD15pHnri3+uc3/UlQxXJHa//ZdY1\n"
	"ytNENgXA9MEI0SMZiMZg6nOy0ndJhJQ5KE0ne0UHKNha0AZ2WSU+4oBMzEYLR38T\n"
	"Ygem+VAjU4be6QdCo0kHbRrd9O6c5JpzaQE6JqU8da7ejmfn4O2Ci2IdPkI2piTT\n"
	"avrUaawz4deZOMNV7S8hHk6mls2HPI7ta+cpsQIDAQABAoIBAAPfNc2ZJnQkDUcW\n"
	"VB7hC19GXeFI4kxMlQ+joHMwwK3YP+ckfDfFMjK5d5X2dhvXVXotRx9d4JQFmBH1\n"
	"R55h2yUvnk0RO/BBN0c3lNBZWf131QtkCROoHVqCK5OcP70jsfmanwzxhvE0B8E9\n"
	"tHOKiENqGlmzO9HaW6kzwVM8i7Msxcu1BJEmKglAwc90Caj0bN6Mm3ZQWreApyW/\n"
	"ibUMbQaWu08uIbsAk7GCwhcCNo7ZTVIsaws6b4gwMdAZMPShAJC1Zq90y5d4Aecw\n"
	"n8+uKOeOfHvGrFnGimBaJC5i/KHI7/tz4RDfWrf6zMI+fdpAt5r9aMRXZxMjfmC7\n"
	"yFcag6ECgYEA1kBN/G5Lz3LXR6FOIbqy2LhOvNmF6WfHlKJNcP0jUBdsXSHfZbFh\n"
	"ZCAxL3i7muuzPsr+YqdX4npQkYye9fAPbQtzfpG1WKUXMtMl59LzlEeFJAU3eWHs\n"
	"t90GPSh7XKzoydE/R63NrtW5QSJa13O4DYjUOOFh4KlYf1c61wCv7jkCgYEAuQwY\n"
	"FCZvDbwa2xmB4lLP5lrmaeD93/AO1WW5UCmUisB066l4xrICeO/XI9bG3y1jMm/j\n"
	"Un5Nh57+AcFv1LB6p8geH/a93gPkovyrxqzycudEVkUBzfDkeEsRc2UP/y2ANYoo\n"
	"QfRDeZVGL+jGGMHoipsJdzyp/lLstV2Hyqj0FzkCgYAMytAdN1StcTTrYPUyTFxr\n"
	"Vi3VVsOJGRowhLRM/8BBAvUEZoZZIwsmmEl3hSTmbhZItIQVzdoQeq8e0Z+YHZo+\n"
	"L4XY08hZH5pP/Y1w1waWHuMTMICMbc1deQPrWORstyI7EpRNqlHyk245NlzoKk+d\n"
	"90J8lvBqIpJXIBUySyc1+QKBgA6utvpiUk10r2zTCUs75uMQM1gTUhGCqqqj96A0\n"
	"rGSWALDyMXMSjL+ryBY/5Gew4j4OQqs4+k3Yf68D+iuWFSVa64j9uvLyvCFyiu6o\n"
	"qlQTpYhy0UHV60rgKfJOAobsxU96NteE2hW7kmYawh0Uxa65vnaHibV0PvPlB/E8\n"
	"lqGBAoGAVtm/PqKXtar44SCejo1aDxPt6QcxaH6e0CDaijvsE+s59bMd/iTFhUV4\n"
	"e+HUoIMDrguqkIMY1w2MQ1DrgWcnctYFax3loKy/gQCo84wtXmRcJrsMPfz2dWWt\n"
	"Cwb4kIhlHsUYeCNBeyb1q6cp5yRMZuzL8XQOJc+P+FF7VDmYxGo=\n"
	"-----END RSA PRIVATE KEY-----\n";

const char fx_ec_cli_crt[] = "-----BEGIN CERTIFICATE-----\n"
			     "MIICaTCCAVGgAwIBAgIUCei/Ywrkwtrn5cvc1OdqGorXz3kwDQYJKoZIhvcNAQEL\n"
			     "BQAwHjEcMBoGA1UEAwwTd2F5Z2F0ZSB0ZXN0IFJTQSBDQTAgFw0yNjExMjYwNTE5\n"
			     "MzZaGA8yMTI2MTEwMjA1MTkzNlowFDESMBAGA1UEAwwJZWMtY2xpZW50MFkwEwYH\n"
			     "KoZIzj0CAQYIKoZIzj0DAQcDQgAEMoE0/5H6GLox0Nr8ewwQYxiYqjD/FJEfr9D3\n"
			     "KHbC87eNZAVwBXVpFX+jr0sJDVAY2VzgW4t3+1NheenN078hrKNyMHAwCQYDVR0T\n"
			     "BAIwADAOBgNVHQ8BAf8EBAMCBaAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0O\n"
			     "BBYEFFevlibGTGi1Ay8kqEI0t1ANysLkMB8GA1UdIwQYMBaAFGflrtCPQsY0elMb\n"
			     "Ydc2JvL0MkGWMA0GCSqGSIb3DQEBCwUAA4IBAQBRvuUe00iJxWNThA8CE/8GD3R2\n"
			     "upbDPvHSSecskA9ZkVR94RcAiLgJNkD0J2zNi5VEyIW6uMb4Zh2ypRnnAFH0p+cs\n"
			     "qQrtrkMR2F3TVISxH0jv3H51gdJJyEUKhR7bw+R9iZKgVMIRWb6oZUAOA6emw8Fc\n"
			     "1TtkMtAJ/xfECJjGoFnkod/SdcyM1FwdU43162xZb67Yd5mxGYGQ9poEmTOTwc0x\n"
			     "JAzFCLujfR0brWu9OnS/Ea2gDWSGRxuIlfFYriLKv3E1sYTTZ6EXByqnCkVxGqfY\n"
			     "zfFyBaqYtvhJ+HcodY3HUGI3+8hCxgOxvl6eKgUq9WkpJS+B9FJ2Q/rZSRL2\n"
			     "-----END CERTIFICATE-----\n";

const char fx_ec_cli_key_sec1[] =
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEIH3DHTerc9YebxXMxDNB7923z6h/XHSGD1jjpvewI7bloAoGCCqGSM49\n"
	"AwEHoUQDQgAEMoE0/5H6GLox0Nr8ewwQYxiYqjD/FJEfr9D3KHbC87eNZAVwBXVp\n"
	"FX+jr0sJDVAY2VzgW4t3+1NheenN078hrA==\n"
	"-----END EC PRIVATE KEY-----\n";

const char fx_ec_cli_key_pkcs8[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfcMdN6tz1h5vFczE\n"
	"M0Hv3bfPqH9cdIYPWOOm97AjtuWhRANCAAQygTT/kfoYujHQ2vx7DBBjGJiqMP8U\n"
	"kR+v0PcodsLzt41kBXAFdWkVf6OvSwkNUBjZXOBbi3f7U2F56c3TvyGs\n"
	"-----END PRIVATE KEY-----\n";
