/* SPDX-License-Identifier: MIT */
/*
 * cert.c: reads the expiry (notAfter) of the first certificate in a PEM
 * chain, for the Gateways page. A minimal DER walk over the fixed prefix of
 * an X.509 Certificate; it verifies nothing and reads nothing else (tls/
 * owns real certificate handling, and key material never comes here: the
 * caller passes only the certificate PEM). Pure; any thread.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "ui/internal.h"

/* Reads one DER TLV header at *p (bounded by end): tag and content length.
 * Returns the content start, or NULL when malformed. */
static const uint8_t *tlv(const uint8_t *p, const uint8_t *end, uint8_t *tag, size_t *len)
{
	size_t l;

	if (end - p < 2)
		return NULL;
	*tag = p[0];
	l = p[1];
	p += 2;
	if (l & 0x80) {
		size_t nb = l & 0x7f;

		if (nb == 0 || nb > 4 || (size_t)(end - p) < nb)
			return NULL;
		l = 0;
		for (size_t i = 0; i < nb; i++)
			l = (l << 8) | *p++;
	}
	if (l > (size_t)(end - p))
		return NULL;
	*len = l;
	return p;
}

static int digits(const uint8_t *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return dm[m - 1] + (m == 2 && leap);
}

/* UTCTime (tag 0x17, YYMMDDHHMMSSZ) or GeneralizedTime (0x18,
 * YYYYMMDDHHMMSSZ) to seconds since the epoch; 0 when malformed or before
 * 1970. */
static int64_t der_time(uint8_t tag, const uint8_t *p, size_t len)
{
	int y, mo, d, h, mi, s, off;

	if (tag == 0x17 && len == 13) {
		y = digits(p, 2);
		if (y < 0)
			return 0;
		y += y < 50 ? 2000 : 1900;
		off = 2;
	} else if (tag == 0x18 && len == 15) {
		y = digits(p, 4);
		off = 4;
	} else {
		return 0;
	}
	mo = digits(p + off, 2);
	d = digits(p + off + 2, 2);
	h = digits(p + off + 4, 2);
	mi = digits(p + off + 6, 2);
	s = digits(p + off + 8, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || s < 0 || s > 60 || p[len - 1] != 'Z')
		return 0;
	return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

int64_t ui_der_not_after(const uint8_t *der, size_t n)
{
	const uint8_t *p = der, *end = der + n, *c;
	uint8_t tag;
	size_t len;

	/* Certificate SEQUENCE { tbsCertificate SEQUENCE { ... } } */
	if (!(c = tlv(p, end, &tag, &len)) || tag != 0x30)
		return 0;
	end = c + len;
	if (!(c = tlv(c, end, &tag, &len)) || tag != 0x30)
		return 0;
	end = c + len;
	p = c;
	/* [0] version, optional */
	if (!(c = tlv(p, end, &tag, &len)))
		return 0;
	if (tag == 0xa0) {
		p = c + len;
		if (!(c = tlv(p, end, &tag, &len)))
			return 0;
	}
	/* serialNumber INTEGER, signature SEQ, issuer SEQ: skip */
	if (tag != 0x02)
		return 0;
	p = c + len;
	for (int i = 0; i < 2; i++) {
		if (!(c = tlv(p, end, &tag, &len)) || tag != 0x30)
			return 0;
		p = c + len;
	}
	/* validity SEQUENCE { notBefore, notAfter } */
	if (!(c = tlv(p, end, &tag, &len)) || tag != 0x30)
		return 0;
	end = c + len;
	if (!(c = tlv(c, end, &tag, &len)))
		return 0;
	p = c + len;
	if (!(c = tlv(p, end, &tag, &len)))
		return 0;
	return der_time(tag, c, len);
}

int64_t ui_pem_not_after(const char *pem)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	const char *b, *e;
	uint8_t *der;
	long n;
	int64_t t;

	if (!pem || !(b = strstr(pem, begin)))
		return 0;
	b += sizeof(begin) - 1;
	if (!(e = strstr(b, "-----END CERTIFICATE-----")))
		return 0;
	der = malloc((size_t)(e - b) / 4 * 3 + 3);
	if (!der)
		return 0;
	n = base64_decode(b, (size_t)(e - b), der);
	t = n > 0 ? ui_der_not_after(der, (size_t)n) : 0;
	free(der);
	return t;
}
