/* children.h: the supervisor's book of forked children.
 *
 * Counts in total and per source address, so limits can be checked before a
 * fork.  Counters change in exactly two places: children_add() after a fork
 * and children_reap() when a child has exited (STYLE.md 2). */
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CHILDREN_BUCKETS 1024

struct child {
        pid_t pid;
        struct in6_addr source;       /* IPv4 stored as v4-mapped */
        char listener[65];
        uint64_t start_usec;
        bool signalled;               /* we sent it a signal (shutdown): not a crash */
        struct child *next;
};

struct source_count {
        struct in6_addr source;
        unsigned count;
        struct source_count *next;
};

struct children {
        struct child *by_pid[CHILDREN_BUCKETS];
        struct source_count *by_source[CHILDREN_BUCKETS];
        size_t n;
};

/* Normalise a peer address to the key used for per-source limits. */
void children_source_key(const struct sockaddr *sa, struct in6_addr *ret);

/* May one more child start for this source?
 * Return: 0 if yes; -EBUSY if max_children are running; -EUSERS if
 * max_per_source are running for this source. */
int children_check_limits(const struct children *ch, const struct in6_addr *source,
                          uint64_t max_children, uint64_t max_per_source);

/* Record a forked child.  Return: 0, or -ENOMEM (the caller then kills it). */
int children_add(struct children *ch, pid_t pid, const struct in6_addr *source, const char *listener);

/* Called by children_reap() for each child that ended. */
typedef void (*children_exit_fn)(const struct child *c, const siginfo_t *si, void *userdata);

/* Reap every exited child without blocking, forget it and report it.
 * Return: the number reaped. */
size_t children_reap(struct children *ch, children_exit_fn fn, void *userdata);

/* Send sig to every child.  Return: how many were signalled. */
size_t children_signal_all(struct children *ch, int sig);

/* Make forks cheaper: mark the mappings of shared libraries no child ever
 * calls into (libconfig, and the compression/crypto/capability libraries
 * libsystemd links but sd_journal_send() does not use) MADV_DONTFORK, so
 * fork() does not copy them and a child's exit does not tear them down.
 * Only libraries on an explicit list are touched; anything unknown stays.
 * Return: the number of bytes no longer inherited, or negative errno. */
ssize_t children_trim_fork_image(void);

/* Forget every child without touching it (used in a freshly forked child). */
void children_forget_all(struct children *ch);
