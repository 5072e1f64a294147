/* SPDX-License-Identifier: MIT */
/*
 * err.h: error codes. Functions that can fail return 0 or a negative code:
 * -errno where an errno fits, else one of the WG_E* values below (outside the
 * errno range). err_str() names any of them.
 */
#ifndef WG_CORE_ERR_H
#define WG_CORE_ERR_H

#include <errno.h>

enum wg_err {
	WG_EPROTO = 10000, /* peer violated a protocol */
	WG_ELIMIT,         /* a configured limit was exceeded */
	WG_ENOTFOUND,      /* the thing looked for does not exist */
	WG_EINVAL_CONFIG,  /* configuration is invalid (details in a diag) */
	WG_ETLS,           /* TLS failure (details logged at debug by tls/) */
	WG_ESTORE,         /* store failure (details logged at debug by store/) */
	WG_EAGAIN_READ,    /* non-blocking I/O: retry when readable */
	WG_EAGAIN_WRITE,   /* non-blocking I/O: retry when writable */
};

/* Returns a static description of a negative code (or a positive errno). */
const char *err_str(int code);

#endif
