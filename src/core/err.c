/* SPDX-License-Identifier: MIT */
/*
 * err.c: names for error codes (negative errno values and waygate's own
 * range). Pure; any thread.
 */
#include <string.h>

#include "core/err.h"

const char *err_str(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
	case 0: return "ok";
	case WG_EPROTO: return "protocol error";
	case WG_ELIMIT: return "limit exceeded";
	case WG_ENOTFOUND: return "not found";
	case WG_EINVAL_CONFIG: return "invalid configuration";
	case WG_ETLS: return "tls failure";
	case WG_ESTORE: return "store failure";
	case WG_EAGAIN_READ: return "would block on read";
	case WG_EAGAIN_WRITE: return "would block on write";
	default: return strerror(code);
	}
}
