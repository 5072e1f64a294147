/* SPDX-License-Identifier: MIT */
/*
 * privdrop.c: `waygate run` gives up root once its first sockets are bound
 * (`--user NAME`, else the board's WG_BOARD_USER). Before dropping, the
 * state folder is handed to that user (owner, folders 0700, files 0600), so
 * the store, generated keys and uploaded kubeconfigs stay writable and
 * private. The supplementary groups, the group and the user are set for
 * every thread (libc broadcasts set*id to all of them); the control thread
 * alone keeps one capability, CAP_NET_BIND_SERVICE, because a Gateway may
 * add a listener on a port below 1024 at any time and binding happens on
 * that thread. Workers and the UI thread keep none.
 *
 * Not running as root: nothing to drop, one log line says so.
 *
 * Control thread, once, at start.
 */

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli/privdrop.h"
#include "core/err.h"
#include "core/log.h"

int priv_lookup(const char *name, struct priv_user *out, struct diag *d)
{
	struct passwd *pw;

	memset(out, 0, sizeof(*out));
	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "--user", "no user '%s' on this system%s%s",
			 name, errno ? ": " : "", errno ? strerror(errno) : "");
		return -WG_ENOTFOUND;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	return 0;
}

/* nftw has no user argument: the owner being given, for chown_one. */
static struct priv_user chown_to;
static int chown_err;

static int chown_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_SL)
		return 0; /* never follow, never change what a link points to */
	if (lchown(path, chown_to.uid, chown_to.gid) == -1 ||
	    ((type == FTW_D || type == FTW_DP) && chmod(path, 0700) == -1) ||
	    (type == FTW_F && (st->st_mode & 077) && chmod(path, st->st_mode & 0700) == -1)) {
		chown_err = -errno;
		log_error("event=privdrop_failed path=%s error=%s", log_q(path),
			  log_q(strerror(errno)));
		return 1;
	}
	return 0;
}

/* Keeps CAP_NET_BIND_SERVICE alone, effective and permitted, on this thread. */
static int keep_bind_cap(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	data[CAP_NET_BIND_SERVICE / 32].effective = 1u << (CAP_NET_BIND_SERVICE % 32);
	data[CAP_NET_BIND_SERVICE / 32].permitted = 1u << (CAP_NET_BIND_SERVICE % 32);
	if (syscall(SYS_capset, &hdr, data) == -1)
		return -errno;
	return 0;
}

int priv_drop(const struct priv_user *u, const char *state_dir)
{
	gid_t gid = u->gid;
	int r;

	if (geteuid() != 0) {
		log_info("event=privileges_kept reason=\"not running as root\" uid=%u user=%s",
			 (unsigned)geteuid(), log_q(u->name));
		return 0;
	}
	if (u->uid == 0) {
		log_warn("event=privileges_kept reason=\"user is root\" user=%s", log_q(u->name));
		return 0;
	}
	chown_to = *u;
	chown_err = 0;
	if (nftw(state_dir, chown_one, 16, FTW_PHYS) != 0)
		return chown_err ? chown_err : -errno;
	/* keep the permitted set across setuid on this thread only */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1)
		return -errno;
	if (setgroups(1, &gid) == -1 || setgid(u->gid) == -1 || setuid(u->uid) == -1) {
		r = -errno;
		log_error("event=privdrop_failed user=%s error=%s", log_q(u->name),
			  log_q(strerror(errno)));
		return r;
	}
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	r = keep_bind_cap();
	if (r < 0) {
		log_error("event=privdrop_failed what=capabilities error=%s", log_q(strerror(-r)));
		return r;
	}
	/* a drop that can be undone is no drop */
	if (setuid(0) == 0 || setgid(0) == 0) {
		log_error("event=privdrop_failed reason=\"root could be regained\"");
		return -EPERM;
	}
	log_info("event=privileges_dropped user=%s uid=%u gid=%u kept=cap_net_bind_service",
		 log_q(u->name), (unsigned)u->uid, (unsigned)u->gid);
	return 0;
}
