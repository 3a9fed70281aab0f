/* privs.h: netlabd started as root becomes the config's `user` for good.
 *
 * Without systemd (whose unit runs netlabd as User=netlab from the start),
 * netlabd started as root binds or adopts its listening sockets first, ports
 * below 1024 included, then drops every privilege before it serves anything:
 * supplementary groups, gid, uid (real, effective and saved), capabilities,
 * and sets no_new_privs.  Everything that changes credentials lives here, so
 * it can be reviewed on one screen. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

struct config;

/* Who to become: the names and ids from the user and group databases. */
struct privs_target {
        char user[33];          /* config.c allows names of 1..32 bytes */
        uid_t uid;
        gid_t gid;              /* the config's group's, or the user's primary group */
};

/* Look up c->user (and c->group, if set) in the user and group databases.
 * Does not log.  On failure, why (why_size bytes, always written) says what
 * is wrong, starting with the key's name ("user: no user \"x\" on this
 * system"), and *fault_line is the line of that key in c->path.
 * Return: 0 and *ret; -EINVAL when c->user is not set; -ENOENT when the user
 * or the group does not exist; -EPERM when the user is uid 0 (a "drop" to it
 * would keep every privilege); another negative errno when the lookup itself
 * failed (NSS). */
int privs_lookup(const struct config *c, struct privs_target *ret, char *why, size_t why_size,
                 int *fault_line);

/* Become t for good: its user's supplementary groups (initgroups(3)), its
 * gid and its uid as real, effective and saved ids, no capabilities left
 * (effective, permitted, inheritable, ambient), and no_new_privs.  Then
 * checks with the kernel that all of it took and that root cannot be had
 * back.  Must run with euid 0.  Logs every failure, naming the user, and the
 * success once ("dropped privileges to user U (uid N, gid M)", with journal
 * fields NETLAB_EVENT=privileges, USER, UID, GID, GROUPS), at notice unless
 * max_level (the config's log level) is below that.
 * Return: 0; negative errno after a failure, when the process may be half
 * dropped and must not serve: the caller exits. */
int privs_drop(const struct privs_target *t, int max_level);

/* socket(2) for a socket that owner will share later: the kernel lets a
 * socket join a port shared with SO_REUSEPORT only when its owner uid (the
 * creating process's fsuid) is the same, and netlabd's UDP transfer children
 * join their listener's port after the drop.  So the fsuid is set to owner
 * just around socket(), and back after (both checked).  Must run with euid
 * 0.  Return: the fd (the caller owns it), or negative errno. */
int privs_socket(int family, int type, uid_t owner);
