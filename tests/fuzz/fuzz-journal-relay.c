/* fuzz-journal-relay.c: the journal relay (daemon/log.c), what the
 * supervisor reads from its children: u16be field count, then per field a
 * u16be length and "NAME=value" bytes.  A child runs the client's request,
 * so the supervisor trusts nothing in the datagram beyond its framing, and
 * lets through only the fields a child's entries have.
 *
 * relay_forward() is static, so the datagram goes the real way: sent on a
 * datagram socket pair (with SO_PASSCRED, as netlabd's) and read by
 * log_relay_dispatch(), which writes entries to journald's socket itself.
 * So the process first moves into a mount namespace of its own (a user
 * namespace too when not root), mounts a tmpfs on /run there, and binds its
 * own socket at /run/systemd/journal/socket: no entry reaches a real
 * journal, and each one written is decoded here (journald's native
 * protocol, both the "NAME=value\n" and the length-prefixed form).
 *
 * Checked against an independent decoder of the framing: a malformed
 * datagram writes nothing; a written entry holds exactly the datagram's
 * fields in order, then NETLAB_CHILD_PID= with the sender's pid, and never
 * a NETLAB_CHILD_PID= or a PRIORITY below 3 of the child's own; dispatch
 * returns 0 either way. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "log.h"

/* log.c's RELAY_MAX_ENTRY and RELAY_MAX_FIELDS. */
#define ENTRY_MAX 16384u
#define FIELDS_MAX 32u
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static int sv[2] = { -1, -1 };
static int journal = -1;

struct field {
        const uint8_t *p;
        size_t len;
};

static void write_text(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);

        fuzz_check(fd >= 0, "open %s: %s", path, strerror(errno));
        fuzz_check(write(fd, text, strlen(text)) == (ssize_t) strlen(text), "write %s: %s", path,
                   strerror(errno));
        fuzz_check(close(fd) == 0, "close %s", path);
}

/* A mount namespace whose /run is a fresh tmpfs, changes never propagated
 * back to the host. */
static void private_run(void)
{
        uid_t uid = geteuid();
        gid_t gid = getegid();
        char map[64];

        if (uid != 0) {
                fuzz_check(unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0,
                           "unshare(user, mount): %s (the relay target needs a namespace of its own)",
                           strerror(errno));
                write_text("/proc/self/setgroups", "deny");
                fuzz_check(snprintf(map, sizeof map, "0 %u 1", (unsigned) uid) > 0, "snprintf");
                write_text("/proc/self/uid_map", map);
                fuzz_check(snprintf(map, sizeof map, "0 %u 1", (unsigned) gid) > 0, "snprintf");
                write_text("/proc/self/gid_map", map);
        } else
                fuzz_check(unshare(CLONE_NEWNS) == 0, "unshare(mount): %s", strerror(errno));
        fuzz_check(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make / private: %s",
                   strerror(errno));
        fuzz_check(mount("netlab-fuzz", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") == 0,
                   "tmpfs on /run: %s", strerror(errno));
        fuzz_check(mkdir("/run/systemd", 0755) == 0 && mkdir("/run/systemd/journal", 0755) == 0,
                   "mkdir: %s", strerror(errno));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
        int one = 1, size = 4 * (int) ENTRY_MAX;

        private_run();
        journal = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        fuzz_check(journal >= 0, "socket: %s", strerror(errno));
        fuzz_check(bind(journal, (const struct sockaddr *) &sa, sizeof sa) == 0, "bind %s: %s",
                   JOURNAL_SOCKET, strerror(errno));
        fuzz_check(setsockopt(journal, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0, "SO_RCVBUF");

        /* Warnings about malformed entries would flood stderr. */
        log_setup(LOG_TARGET_STDERR, LOG_ERR);
        fuzz_check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0,
                   "socketpair: %s", strerror(errno));
        fuzz_check(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0, "SO_PASSCRED");
        fuzz_check(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0, "SO_SNDBUF");
        return 0;
}

/* The relay framing, decoded here without log.c's code.
 * Return: the number of fields, or 0 if malformed. */
static size_t framing_decode(const uint8_t *buf, size_t n, struct field *fields)
{
        size_t pos = 2, count;

        if (n > ENTRY_MAX || n < 2)
                return 0;
        count = (size_t) buf[0] << 8 | buf[1];
        if (count == 0 || count > FIELDS_MAX)
                return 0;
        for (size_t i = 0; i < count; i++) {
                if (n - pos < 2)
                        return 0;
                size_t len = (size_t) buf[pos] << 8 | buf[pos + 1];
                pos += 2;
                if (len == 0 || n - pos < len || !memchr(buf + pos, '=', len))
                        return 0;
                fields[i] = (struct field) { buf + pos, len };
                pos += len;
        }
        return pos == n ? count : 0;
}

static bool field_is(const struct field *f, const char *prefix)
{
        size_t len = strlen(prefix);

        return f->len >= len && memcmp(f->p, prefix, len) == 0;
}

/* One datagram of journald's native protocol: "NAME=value\n", or "NAME\n",
 * a little-endian u64 length, the value and "\n".  Fields are rebuilt as
 * "NAME=value" into out.  Return: the number of fields. */
static size_t native_decode(const uint8_t *buf, size_t n, uint8_t *out, struct field *fields,
                            size_t max)
{
        size_t pos = 0, o = 0, count = 0;

        while (pos < n) {
                const uint8_t *nl = memchr(buf + pos, '\n', n - pos);
                const uint8_t *eq = memchr(buf + pos, '=', n - pos);

                fuzz_check(nl != NULL && count < max, "native entry: a field without LF");
                fields[count].p = out + o;
                if (eq && eq < nl) {
                        size_t len = (size_t) (nl - (buf + pos));

                        memcpy(out + o, buf + pos, len);
                        o += len;
                        fields[count].len = len;
                        pos += len + 1;
                } else {
                        size_t name_len = (size_t) (nl - (buf + pos));
                        uint64_t value_len = 0;

                        fuzz_check(n - pos - name_len - 1 >= 8, "native entry: truncated length");
                        for (int b = 7; b >= 0; b--)
                                value_len = value_len << 8 | buf[pos + name_len + 1 + (size_t) b];
                        size_t v = pos + name_len + 9;
                        fuzz_check(value_len < n && n - v > value_len && buf[v + value_len] == '\n',
                                   "native entry: bad binary field");
                        memcpy(out + o, buf + pos, name_len);
                        out[o + name_len] = '=';
                        memcpy(out + o + name_len + 1, buf + v, (size_t) value_len);
                        fields[count].len = name_len + 1 + (size_t) value_len;
                        o += fields[count].len;
                        pos = v + (size_t) value_len + 1;
                }
                count++;
        }
        return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t entry[4 * ENTRY_MAX], rebuilt[4 * ENTRY_MAX];
        struct field sent[FIELDS_MAX], got[FIELDS_MAX + 2];
        char pid_field[40];
        size_t n_sent;
        ssize_t k;

        if (size > ENTRY_MAX + 64)
                return 0; /* larger datagrams only test the truncation check */
        n_sent = framing_decode(data, size, sent);
        fuzz_check(snprintf(pid_field, sizeof pid_field, "NETLAB_CHILD_PID=%d", (int) getpid()) > 0,
                   "snprintf");

        k = send(sv[1], data, size, MSG_DONTWAIT);
        fuzz_check(k == (ssize_t) size, "send %zd of %zu: %s", k, size, strerror(errno));
        fuzz_check(log_relay_dispatch(sv[0]) == 0, "dispatch failed");

        k = recv(journal, entry, sizeof entry, MSG_DONTWAIT);
        if (k < 0) {
                fuzz_check(errno == EAGAIN, "recv: %s", strerror(errno));
                return 0; /* refused: malformed, or a field a child may not send */
        }
        fuzz_check(n_sent > 0, "a malformed datagram was written to the journal");

        size_t n_got = native_decode(entry, (size_t) k, rebuilt, got, FIELDS_MAX + 2);
        fuzz_check(n_got == n_sent + 1, "%zu fields written for %zu sent", n_got, n_sent);
        for (size_t i = 0; i < n_sent; i++) {
                fuzz_check(got[i].len == sent[i].len && memcmp(got[i].p, sent[i].p, sent[i].len) == 0,
                           "field %zu differs", i);
                fuzz_check(!field_is(&sent[i], "NETLAB_CHILD_PID="), "a child set NETLAB_CHILD_PID=");
                fuzz_check(!(field_is(&sent[i], "PRIORITY=") && sent[i].len == 10 &&
                             sent[i].p[9] >= '0' && sent[i].p[9] < '3'),
                           "a child set PRIORITY=%c", sent[i].p[9]);
        }
        fuzz_check(got[n_sent].len == strlen(pid_field) &&
                           memcmp(got[n_sent].p, pid_field, got[n_sent].len) == 0,
                   "the last field is %.*s", (int) got[n_sent].len, (const char *) got[n_sent].p);
        return 0;
}
