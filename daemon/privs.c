/* privs.c: see privs.h.
 *
 * Trusts the user and group databases (NSS) for the ids behind the names in
 * the config, and nothing else: after the drop it asks the kernel whether
 * every id changed, whether any capability is left and whether root can be
 * had back, rather than assume the calls did what they say.  The process is
 * single-threaded (sd-event starts no threads), so the set*id() calls change
 * every thread there is. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privs.h"
#include "util.h"

/* getpwnam_r()/getgrnam_r() buffers start at sysconf()'s hint and double on
 * ERANGE up to this: a group with thousands of members needs more. */
#define LOOKUP_BUFFER_MAX (1u << 20)

/* Most supplementary groups the success entry lists. */
#define GROUPS_LOGGED 32

static size_t lookup_buffer_size(int sc)
{
        long hint = sysconf(sc);

        return hint > 0 && hint < (long) LOOKUP_BUFFER_MAX ? (size_t) hint : 1024;
}

/* glibc says "no such entry" with 0 and a NULL result; some NSS modules say
 * it with one of these (getpwnam_r(3)). */
static bool not_found(int r)
{
        return r == 0 || r == ENOENT || r == ESRCH;
}

/* Return: 0 and the user's uid and primary gid; -ENOENT; -ENOMEM; -errno. */
static int lookup_user(const char *name, uid_t *ret_uid, gid_t *ret_gid)
{
        for (size_t size = lookup_buffer_size(_SC_GETPW_R_SIZE_MAX);; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd pw, *found = NULL;

                if (!buf)
                        return -ENOMEM;
                int r = getpwnam_r(name, &pw, buf, size, &found);
                if (r == 0 && found) {
                        *ret_uid = pw.pw_uid;
                        *ret_gid = pw.pw_gid;
                        return 0;
                }
                if (not_found(r))
                        return -ENOENT;
                if (r != ERANGE || size >= LOOKUP_BUFFER_MAX)
                        return -r;
        }
}

/* Return: 0 and the group's gid; -ENOENT; -ENOMEM; -errno. */
static int lookup_group(const char *name, gid_t *ret_gid)
{
        for (size_t size = lookup_buffer_size(_SC_GETGR_R_SIZE_MAX);; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                struct group gr, *found = NULL;

                if (!buf)
                        return -ENOMEM;
                int r = getgrnam_r(name, &gr, buf, size, &found);
                if (r == 0 && found) {
                        *ret_gid = gr.gr_gid;
                        return 0;
                }
                if (not_found(r))
                        return -ENOENT;
                if (r != ERANGE || size >= LOOKUP_BUFFER_MAX)
                        return -r;
        }
}

int privs_lookup(const struct config *c, struct privs_target *ret, char *why, size_t why_size,
                 int *fault_line)
{
        struct privs_target t = {};
        int r;

        *fault_line = c->user_line;
        if (!c->user) {
                (void) xsnprintf(why, why_size, "user: not set");
                return -EINVAL;
        }
        /* The config's checks allow 1..32 bytes: it fits. */
        if (xsnprintf(t.user, sizeof t.user, "%s", c->user) < 0) {
                (void) xsnprintf(why, why_size, "user: name too long");
                return -EINVAL;
        }

        r = lookup_user(c->user, &t.uid, &t.gid);
        if (r == -ENOENT) {
                (void) xsnprintf(why, why_size, "user: no user \"%s\" on this system", c->user);
                return r;
        }
        if (r < 0) {
                (void) xsnprintf(why, why_size, "user: cannot look up \"%s\": %s", c->user, strerror(-r));
                return r;
        }
        if (t.uid == 0) {
                (void) xsnprintf(why, why_size,
                                 "user: \"%s\" is uid 0, so netlabd would keep every privilege "
                                 "(remove user to run as root on purpose)", c->user);
                return -EPERM;
        }

        if (c->group) {
                *fault_line = c->group_line;
                r = lookup_group(c->group, &t.gid);
                if (r == -ENOENT) {
                        (void) xsnprintf(why, why_size, "group: no group \"%s\" on this system", c->group);
                        return r;
                }
                if (r < 0) {
                        (void) xsnprintf(why, why_size, "group: cannot look up \"%s\": %s", c->group,
                                         strerror(-r));
                        return r;
                }
        }

        /* Group 0 would keep read access to everything root's group may read,
         * and setgid(0) could not be refused afterwards. */
        if (t.gid == 0) {
                (void) xsnprintf(why, why_size,
                                 "%s: netlabd would run with group id 0 (root's group); "
                                 "name an unprivileged group", c->group ? "group" : "user");
                return -EPERM;
        }

        *ret = t;
        return 0;
}

/* The failure of one step of the drop.  Return: -err. */
static int drop_failed(const struct privs_target *t, int err, const char *step)
{
        return log_error_errno(err, "cannot drop privileges to user %s (uid %u, gid %u): %s", t->user,
                               (unsigned) t->uid, (unsigned) t->gid, step);
}

/* A check after the drop that found it incomplete.  Return: -EPERM. */
static int drop_incomplete(const struct privs_target *t, const char *what)
{
        log_msg(LOG_ERR, "dropping privileges to user %s (uid %u, gid %u) did not take: %s; not serving",
                t->user, (unsigned) t->uid, (unsigned) t->gid, what);
        return -EPERM;
}

/* Clear what the uid change leaves (the inheritable set survives it; the
 * ambient set is emptied by the kernel, cleared here again in case), then
 * read every set back.  Lowering our own sets needs no privilege.
 * Return: 0 when no capability is left; -EPERM when one is; -errno. */
static int clear_capabilities(void)
{
        struct __user_cap_header_struct head = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

        if (syscall(SYS_capset, &head, data) < 0)
                return -errno;
        /* EINVAL: a kernel before 4.3, which has no ambient set. */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        if (syscall(SYS_capget, &head, data) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(data); i++)
                if (data[i].effective || data[i].permitted || data[i].inheritable)
                        return -EPERM;
        return 0;
}

/* The one entry that says the drop happened, with journal fields. */
static void log_dropped(const struct privs_target *t, int max_level)
{
        gid_t groups[GROUPS_LOGGED];
        char msg[256], list[GROUPS_LOGGED * 11 + 8] = "";
        int n = getgroups(0, NULL);

        if (LOG_NOTICE > max_level)
                return;

        /* Only for the log: a list too long to show ends in "...". */
        if (n > 0 && n <= (int) ELEMENTSOF(groups) && getgroups(n, groups) == n) {
                for (int i = 0; i < n; i++) {
                        size_t used = strlen(list);
                        (void) xsnprintf(list + used, sizeof list - used, "%s%u", i ? "," : "",
                                         (unsigned) groups[i]);
                }
        } else if (n > 0)
                (void) xsnprintf(list, sizeof list, "(%d groups)", n);

        (void) xsnprintf(msg, sizeof msg, "dropped privileges to user %s (uid %u, gid %u)", t->user,
                         (unsigned) t->uid, (unsigned) t->gid);
        if (log_get_target() == LOG_TARGET_JOURNAL &&
            sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", LOG_NOTICE, "SYSLOG_IDENTIFIER=netlabd",
                            "NETLAB_EVENT=privileges", "USER=%s", t->user, "UID=%u", (unsigned) t->uid,
                            "GID=%u", (unsigned) t->gid, "GROUPS=%s", list, NULL) >= 0)
                return;
        /* stderr (or journald refused it): the fields after the text, EVENT=
         * first as in the other non-request entries. */
        log_msg(LOG_NOTICE, "%s [EVENT=privileges USER=%s UID=%u GID=%u GROUPS=%s]", msg, t->user,
                (unsigned) t->uid, (unsigned) t->gid, list);
}

int privs_drop(const struct privs_target *t, int max_level)
{
        uid_t ruid, euid, suid;
        gid_t rgid, egid, sgid;
        int r;

        /* Supplementary groups: the user's own from the group database, as
         * systemd's User= and login(1) set them, so an admin grants access
         * to a file root through a group the same way for both; and none of
         * root's.  (Only the one gid would deny such a grant, for no gain:
         * membership is what the admin put in /etc/group.) */
        if (initgroups(t->user, t->gid) < 0)
                return drop_failed(t, errno, "initgroups()");
        /* Capabilities must not survive the uid change (SECBIT_KEEP_CAPS). */
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                return drop_failed(t, errno, "prctl(PR_SET_KEEPCAPS, 0)");
        /* The gid first: without root it could not change any more. */
        if (setresgid(t->gid, t->gid, t->gid) < 0)
                return drop_failed(t, errno, "setresgid()");
        if (setresuid(t->uid, t->uid, t->uid) < 0)
                return drop_failed(t, errno, "setresuid()");

        if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
                return drop_failed(t, errno, "getresuid()/getresgid()");
        if (ruid != t->uid || euid != t->uid || suid != t->uid || rgid != t->gid || egid != t->gid ||
            sgid != t->gid)
                return drop_incomplete(t, "the real, effective or saved ids differ");
        /* setfs*id(-1) changes nothing and returns the current fs id. */
        if ((uid_t) setfsuid((uid_t) -1) != t->uid || (gid_t) setfsgid((gid_t) -1) != t->gid)
                return drop_incomplete(t, "the filesystem ids differ");

        /* Irreversible: with every id the user's and no CAP_SETUID or
         * CAP_SETGID, the way back must be refused.  (Should it succeed, we
         * are root again, but the caller exits.) */
        if (setuid(0) == 0 || errno != EPERM)
                return drop_incomplete(t, "setuid(0) did not fail with EPERM");
        if (t->gid != 0 && (setgid(0) == 0 || errno != EPERM))
                return drop_incomplete(t, "setgid(0) did not fail with EPERM");

        r = clear_capabilities();
        if (r == -EPERM)
                return drop_incomplete(t, "capabilities are left");
        if (r < 0)
                return drop_failed(t, r, "clearing capabilities");

        /* Nothing netlabd or its children could execute gains privileges
         * (setuid binaries, file capabilities). */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return drop_failed(t, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
                return drop_incomplete(t, "no_new_privs is not set");

        log_dropped(t, max_level);
        return 0;
}

/* setfsuid() never fails visibly: it returns the previous fsuid either way.
 * Return: 0 when the fsuid is now uid, else -EPERM. */
static int set_fsuid(uid_t uid)
{
        (void) setfsuid(uid);
        return (uid_t) setfsuid((uid_t) -1) == uid ? 0 : -EPERM;
}

int privs_socket(int family, int type, uid_t owner)
{
        uid_t was = (uid_t) setfsuid((uid_t) -1);
        int r = set_fsuid(owner);

        if (r < 0) {
                (void) set_fsuid(was);
                return r;
        }
        int fd = socket(family, type, 0);
        int err = errno;
        /* Back, and checked: running on with another fsuid would make every
         * later file access fail in confusing ways. */
        r = set_fsuid(was);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        if (fd < 0)
                return -err;
        return fd;
}
