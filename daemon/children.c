/* children.c: see children.h.  Runs only in the supervisor. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "children.h"
#include "conn.h"
#include "netlab-config.h"
#include "util.h"

void children_source_key(const struct sockaddr *sa, struct in6_addr *ret)
{
        memset(ret, 0, sizeof *ret);
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                ret->s6_addr[10] = 0xff;
                ret->s6_addr[11] = 0xff;
                memcpy(&ret->s6_addr[12], &in->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6)
                *ret = ((const struct sockaddr_in6 *) sa)->sin6_addr;
}

static unsigned hash_pid(pid_t pid)
{
        return (unsigned) pid % CHILDREN_BUCKETS;
}

static unsigned hash_source(const struct in6_addr *a)
{
        /* FNV-1a; the table only bounds lookup cost, an attacker choosing
         * colliding sources still cannot exceed max_children entries. */
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < sizeof a->s6_addr; i++) {
                h ^= a->s6_addr[i];
                h *= 16777619u;
        }
        return h % CHILDREN_BUCKETS;
}

static struct source_count **source_slot(struct children *ch, const struct in6_addr *a)
{
        struct source_count **p = &ch->by_source[hash_source(a)];

        while (*p && memcmp(&(*p)->source, a, sizeof *a) != 0)
                p = &(*p)->next;
        return p;
}

int children_check_limits(const struct children *ch, const struct in6_addr *source,
                          uint64_t max_children, uint64_t max_per_source)
{
        if (ch->n >= max_children)
                return -EBUSY;

        for (const struct source_count *s = ch->by_source[hash_source(source)]; s; s = s->next)
                if (memcmp(&s->source, source, sizeof *source) == 0)
                        return s->count >= max_per_source ? -EUSERS : 0;
        return 0;
}

int children_add(struct children *ch, pid_t pid, const struct in6_addr *source, const char *listener)
{
        struct child *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        struct source_count **slot = source_slot(ch, source);
        if (!*slot) {
                *slot = calloc(1, sizeof **slot);
                if (!*slot) {
                        free(c);
                        return -ENOMEM;
                }
                (*slot)->source = *source;
        }
        (*slot)->count++;

        c->pid = pid;
        c->source = *source;
        c->start_usec = now_usec();
        (void) xsnprintf(c->listener, sizeof c->listener, "%s", listener); /* names are <= 64 */
        c->next = ch->by_pid[hash_pid(pid)];
        ch->by_pid[hash_pid(pid)] = c;
        ch->n++;
        return 0;
}

static struct child *take_child(struct children *ch, pid_t pid)
{
        for (struct child **p = &ch->by_pid[hash_pid(pid)]; *p; p = &(*p)->next) {
                if ((*p)->pid != pid)
                        continue;

                struct child *c = *p;
                *p = c->next;
                ch->n--;

                struct source_count **slot = source_slot(ch, &c->source);
                if (*slot && --(*slot)->count == 0) {
                        struct source_count *dead = *slot;
                        *slot = dead->next;
                        free(dead);
                }
                return c;
        }
        return NULL;
}

size_t children_reap(struct children *ch, children_exit_fn fn, void *userdata)
{
        size_t n = 0;

        for (;;) {
                siginfo_t si = {};

                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0) {
                        if (errno == EINTR)
                                continue;
                        break; /* ECHILD: none left */
                }
                if (si.si_pid == 0)
                        break;

                struct child *c = take_child(ch, si.si_pid);
                if (c) {
                        if (fn)
                                fn(c, &si, userdata);
                        free(c);
                }
                n++;
        }
        return n;
}

size_t children_signal_all(struct children *ch, int sig)
{
        size_t n = 0;

        for (size_t b = 0; b < CHILDREN_BUCKETS; b++)
                for (struct child *c = ch->by_pid[b]; c; c = c->next)
                        if (kill(c->pid, sig) == 0) {
                                c->signalled = true;
                                n++;
                        }
        return n;
}

void children_forget_all(struct children *ch)
{
        for (size_t b = 0; b < CHILDREN_BUCKETS; b++) {
                while (ch->by_pid[b]) {
                        struct child *c = ch->by_pid[b];
                        ch->by_pid[b] = c->next;
                        free(c);
                }
                while (ch->by_source[b]) {
                        struct source_count *s = ch->by_source[b];
                        ch->by_source[b] = s->next;
                        free(s);
                }
        }
        ch->n = 0;
}

/* Libraries a child never calls into.  A child runs our code, libc and, to
 * log, libsystemd's sd_journal_send(); libconfig only parses config in the
 * supervisor, and the rest serve libsystemd features (journal compression,
 * sealing, capabilities) that sending an entry does not use. */
static const char *const child_unused_libraries[] = {
        "libconfig.so", "libgcrypt.so", "libgpg-error.so", "liblzma.so",
        "libzstd.so", "liblz4.so", "libcap.so",
};

static bool unused_in_child(const char *path)
{
        const char *base = strrchr(path, '/');

        base = base ? base + 1 : path;
        for (size_t i = 0; i < ELEMENTSOF(child_unused_libraries); i++)
                if (strncmp(base, child_unused_libraries[i], strlen(child_unused_libraries[i])) == 0)
                        return true;
        return false;
}

ssize_t children_trim_fork_image(void)
{
        _cleanup_fclose_ FILE *f = NULL;
        char line[512];
        size_t trimmed = 0;

        /* A sanitizer report walks every loaded object: keep them all. */
        if (NETLAB_SANITIZE)
                return 0;

        f = fopen("/proc/self/maps", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                unsigned long start, end;
                char path[256] = "";

                /* "start-end perms offset dev inode path"; skip what we cannot parse. */
                if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &start, &end, path) != 3 ||
                    path[0] != '/' || end <= start || !unused_in_child(path))
                        continue;
                if (madvise((void *) start, end - start, MADV_DONTFORK) < 0)
                        return -errno;
                trimmed += end - start;
        }
        return (ssize_t) trimmed;
}
