/* log.c: see log.h.
 *
 * journald entries are sent with sd_journal_send(); if that fails (journald
 * gone), the entry is written to stderr instead so nothing is lost silently.
 *
 * The journal relay: journald finds an entry's unit (_SYSTEMD_UNIT, what
 * `journalctl -u netlabd` matches) by reading the sender's /proc/PID/cgroup
 * when the entry arrives. A child sends its request entry and exits at once,
 * and the supervisor reaps it within microseconds, so journald often finds
 * no process: most request entries lost their unit (measured: 34 of 60).
 * So children do not write to journald themselves: they hand each entry to
 * the supervisor over a datagram socket pair, and the supervisor, which
 * lives as long as the unit, writes it with NETLAB_CHILD_PID= added. The
 * supervisor trusts nothing in a relayed datagram beyond its framing
 * (bounded, parsed with the wire cursor); a child that cannot relay (queue
 * full, supervisor gone) writes the entry itself rather than lose it. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "wire.h"

static enum log_target log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;

/* One journal field "NAME=value" in its own buffer, for sd_journal_sendv(). */
struct field {
        char buf[320];
};

static void field_set(struct iovec *iov, struct field *f, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void field_set(struct iovec *iov, struct field *f, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        int r = vsnprintf(f->buf, sizeof f->buf, fmt, ap);
        va_end(ap);
        /* A truncated field keeps its prefix; only peer strings can be that long. */
        iov->iov_base = f->buf;
        iov->iov_len = r < 0 ? 0 : ((size_t) r < sizeof f->buf ? (size_t) r : sizeof f->buf - 1);
}

static void stderr_line(int level, const char *text);

/* The relay: [0] is the supervisor's receiving end, [1] the children's
 * sending end; relay_owner is the supervisor's pid. */
static int relay_fd[2] = { -1, -1 };
static pid_t relay_owner;

/* One relayed entry: u16be field count, then per field u16be length and
 * the "NAME=value" bytes. Entries are at most a few KiB (see log_request). */
#define RELAY_MAX_ENTRY 16384
#define RELAY_MAX_FIELDS 32

int log_relay_open(void)
{
        int sv[2];

        /* Opened whatever the target: a reload may switch to the journal. */
        if (relay_fd[0] >= 0)
                return relay_fd[0];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                return -errno;
        /* The kernel then tells which child sent each entry. */
        if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &(int) { 1 }, sizeof(int)) < 0) {
                int r = -errno;
                (void) close(sv[0]);
                (void) close(sv[1]);
                return r;
        }
        relay_fd[0] = sv[0];
        relay_fd[1] = sv[1];
        relay_owner = getpid();
        return relay_fd[0];
}

void log_relay_child(void)
{
        relay_fd[0] = safe_close(relay_fd[0]);
}

static bool relayed(const struct iovec *iov, size_t n)
{
        uint8_t buf[RELAY_MAX_ENTRY];
        struct wire_writer w;

        if (relay_fd[1] < 0 || getpid() == relay_owner || n > RELAY_MAX_FIELDS)
                return false;
        wire_writer_init(&w, buf, sizeof buf);
        if (wire_put_u16be(&w, (uint16_t) n) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (iov[i].iov_len > UINT16_MAX || wire_put_u16be(&w, (uint16_t) iov[i].iov_len) < 0 ||
                    wire_put_bytes(&w, iov[i].iov_base, iov[i].iov_len) < 0)
                        return false;
        /* Non-blocking: a supervisor too busy to drain the queue must not
         * hold a child (and its client's slot); the caller then writes the
         * entry directly. */
        return send(relay_fd[1], buf, w.pos, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t) w.pos;
}

/* Every structured entry goes out here: relayed from a child, else direct. */
static int journal_sendv(const struct iovec *iov, size_t n)
{
        if (relayed(iov, n))
                return 0;
        return sd_journal_sendv(iov, (int) n);
}

/* The fields a child's entries have (log_request(), log_text()): a relayed
 * entry may carry only these, so a child cannot speak for the supervisor
 * (NETLAB_EVENT=privileges, NETLAB_CHILD_PID=) through it. */
static const char *const relay_fields[] = {
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "NETLAB_EVENT", "LISTENER", "SERVICE",
        "REMOTE_ADDR", "REMOTE_PORT", "BYTES_IN", "BYTES_OUT", "DURATION_USEC", "RESULT",
        "DETAIL", "CLIENT_MESSAGE", "FILE", "OFFSET",
};

static bool relay_field_ok(const uint8_t *field, size_t len)
{
        const uint8_t *eq = memchr(field, '=', len);

        if (!eq)
                return false;
        size_t name_len = (size_t) (eq - field), value_len = len - name_len - 1;
        for (size_t i = 0; i < ELEMENTSOF(relay_fields); i++) {
                if (strlen(relay_fields[i]) != name_len || memcmp(relay_fields[i], field, name_len) != 0)
                        continue;
                if (strcmp(relay_fields[i], "PRIORITY") == 0)
                        /* 3 (error) to 7: a child never needs to page anyone. */
                        return value_len == 1 && eq[1] >= '0' + LOG_ERR && eq[1] <= '0' + LOG_DEBUG;
                if (strcmp(relay_fields[i], "NETLAB_EVENT") == 0)
                        return value_len == 7 && memcmp(eq + 1, "request", 7) == 0;
                return true;
        }
        return false;
}

/* The supervisor's own writer for relayed entries: journald's native
 * protocol over a non-blocking socket, so a stalled journald costs entries
 * (counted, and reported once it takes entries again), never the event loop
 * that accepts and reaps. sd_journal_sendv() would block. Values with a
 * newline use the protocol's length-prefixed form. */
static int journal_fd = -1;
static uint64_t relay_dropped;

static int journal_send_nonblocking(const struct iovec *iov, size_t n)
{
        static const struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
        uint8_t buf[RELAY_MAX_ENTRY + 256];
        struct wire_writer w;

        if (journal_fd < 0) {
                journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (journal_fd < 0)
                        return -errno;
        }
        wire_writer_init(&w, buf, sizeof buf);
        for (size_t i = 0; i < n; i++) {
                const uint8_t *f = iov[i].iov_base, *eq = memchr(f, '=', iov[i].iov_len);
                size_t name_len = (size_t) (eq - f), value_len = iov[i].iov_len - name_len - 1;
                int r;
                if (!memchr(eq + 1, '\n', value_len))
                        r = wire_put_bytes(&w, f, iov[i].iov_len) < 0 || wire_put_u8(&w, '\n') < 0;
                else {
                        uint8_t le[8];
                        for (int b = 0; b < 8; b++)
                                le[b] = (uint8_t) ((uint64_t) value_len >> (8 * b));
                        r = wire_put_bytes(&w, f, name_len) < 0 || wire_put_u8(&w, '\n') < 0 ||
                            wire_put_bytes(&w, le, sizeof le) < 0 ||
                            wire_put_bytes(&w, eq + 1, value_len) < 0 || wire_put_u8(&w, '\n') < 0;
                }
                if (r)
                        return -E2BIG;
        }
        if (sendto(journal_fd, buf, w.pos, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *) &sa,
                   sizeof sa) < 0)
                return -errno;
        return 0;
}

/* Supervisor: write one relayed entry. Return: 0; -EBADMSG for a malformed
 * one; -EAGAIN when journald is not taking entries (dropped, counted). */
static int relay_forward(const uint8_t *data, size_t size, pid_t child)
{
        struct iovec iov[RELAY_MAX_FIELDS + 1];
        struct wire_reader r;
        uint16_t n;
        char pidfield[40];
        const uint8_t *message = NULL;
        size_t message_len = 0;
        int prio = LOG_INFO;

        wire_reader_init(&r, data, size);
        if (wire_get_u16be(&r, &n) < 0 || n == 0 || n > RELAY_MAX_FIELDS)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                uint16_t len;
                const uint8_t *field;
                if (wire_get_u16be(&r, &len) < 0 || len == 0 || wire_get_view(&r, len, &field) < 0 ||
                    !relay_field_ok(field, len))
                        return -EBADMSG;
                iov[i] = (struct iovec) { .iov_base = (void *) field, .iov_len = len };
                if (len > 8 && memcmp(field, "MESSAGE=", 8) == 0)
                        message = field + 8, message_len = len - 8u;
                else if (len == 10 && memcmp(field, "PRIORITY=", 9) == 0)
                        prio = field[9] - '0';
        }
        if (wire_reader_remaining(&r) != 0)
                return -EBADMSG;
        int k = xsnprintf(pidfield, sizeof pidfield, "NETLAB_CHILD_PID=%d", (int) child);
        iov[n] = (struct iovec) { .iov_base = pidfield, .iov_len = k < 0 ? 0 : (size_t) k };

        int q = journal_send_nonblocking(iov, n + 1u);
        if (q == -EAGAIN || q == -EWOULDBLOCK || q == -ENOBUFS) {
                relay_dropped++;
                return -EAGAIN;
        }
        if (q < 0) {
                /* journald gone: the entry goes to stderr, as every other does. */
                char text[1200];
                (void) xsnprintf(text, sizeof text, "child %d: %.*s", (int) child,
                                 (int) (message_len < 1024 ? message_len : 1024),
                                 message ? (const char *) message : "");
                stderr_line(prio, text);
        }
        return 0;
}

int log_relay_dispatch(int fd)
{
        uint64_t malformed = 0;
        pid_t last_bad = 0;
        bool forwarded = false;     /* journald took one: time to report drops */

        /* Bounded per wakeup so a flood of entries cannot starve the loop. */
        for (int i = 0; i < 64; i++) {
                uint8_t buf[RELAY_MAX_ENTRY + 1];
                /* Room for one ucred only: descriptors a child might send
                 * (SCM_RIGHTS) do not fit, so the kernel closes them
                 * (MSG_CTRUNC); any that did arrive are closed below. */
                union {
                        struct cmsghdr align;
                        uint8_t buf[CMSG_SPACE(sizeof(struct ucred))];
                } control;
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
                struct msghdr mh = {
                        .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = &control, .msg_controllen = sizeof control,
                };
                pid_t child = 0;

                ssize_t k = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                                break;
                        return -errno;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        if (c->cmsg_level != SOL_SOCKET)
                                continue;
                        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
                                struct ucred uc;
                                memcpy(&uc, CMSG_DATA(c), sizeof uc);
                                child = uc.pid;
                        } else if (c->cmsg_type == SCM_RIGHTS) {
                                size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t j = 0; j < nfd; j++) {
                                        int passed;
                                        memcpy(&passed, CMSG_DATA(c) + j * sizeof(int), sizeof passed);
                                        (void) close(passed);
                                }
                        }
                }
                int r = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t) k > RELAY_MAX_ENTRY
                                ? -EBADMSG : relay_forward(buf, (size_t) k, child);
                if (r == -EBADMSG) {
                        malformed++;
                        last_bad = child;
                } else if (r == 0)
                        forwarded = true;
        }
        /* One warning per wakeup, whatever a broken child sends. */
        if (malformed > 0)
                log_msg(LOG_WARNING, "%llu malformed journal entr%s from children (last from %d), ignoring",
                        (unsigned long long) malformed, malformed == 1 ? "y" : "ies", (int) last_bad);
        if (relay_dropped > 0 && forwarded) {
                log_msg(LOG_WARNING, "journald was not taking entries: %llu children's entries dropped",
                        (unsigned long long) relay_dropped);
                relay_dropped = 0;
        }
        return 0;
}

static const char *level_name(int level)
{
        switch (level) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
        case LOG_ERR: return "error";
        case LOG_WARNING: return "warning";
        case LOG_NOTICE: return "notice";
        case LOG_INFO: return "info";
        default: return "debug";
        }
}

void log_setup(enum log_target target, int max_level)
{
        struct stat st;

        log_max_level = max_level;
        if (target == LOG_TARGET_AUTO)
                target = (stat("/run/systemd/journal/socket", &st) == 0 && !isatty(STDERR_FILENO))
                                 ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
        log_target = target;
}

enum log_target log_get_target(void)
{
        return log_target;
}

static void stderr_line(int level, const char *text)
{
        /* One write per line so lines from concurrent children do not interleave. */
        char line[2048];
        int r = xsnprintf(line, sizeof line, "netlabd[%d]: %s: %s\n", (int) getpid(), level_name(level), text);
        size_t len = r < 0 ? strlen(line) : (size_t) r;

        if (r < 0 && len > 0)
                line[len - 1] = '\n';
        (void) !write(STDERR_FILENO, line, len); /* nowhere left to report a failed log write */
}

static void log_text(int level, const char *text)
{
        if (level > log_max_level)
                return;
        if (log_target == LOG_TARGET_JOURNAL) {
                struct field f[2];
                struct iovec iov[3];
                char message[1040];
                int k = xsnprintf(message, sizeof message, "MESSAGE=%s", text);

                iov[0] = (struct iovec) { .iov_base = message, .iov_len = k < 0 ? strlen(message) : (size_t) k };
                field_set(&iov[1], &f[0], "PRIORITY=%d", level);
                field_set(&iov[2], &f[1], "SYSLOG_IDENTIFIER=netlabd");
                if (journal_sendv(iov, 3) >= 0)
                        return;
        }
        stderr_line(level, text);
}

void log_msg(int level, const char *fmt, ...)
{
        char text[1024];
        va_list ap;

        if (level > log_max_level)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof text, fmt, ap); /* truncation of a log line is acceptable */
        va_end(ap);
        log_text(level, text);
}

int log_error_errno(int err, const char *fmt, ...)
{
        char text[1024];
        va_list ap;

        if (err < 0)
                err = -err;
        va_start(ap, fmt);
        int r = vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (r >= 0 && (size_t) r < sizeof text)
                (void) xsnprintf(text + r, sizeof text - (size_t) r, ": %s", strerror(err));
        log_text(LOG_ERR, text);
        return -err;
}

/* The fields every structured entry starts with; MESSAGE= carries the whole
 * summary in its own buffer (message, size bytes), not a struct field.
 * Return: how many of iov/f were used. */
static size_t journal_head(struct iovec *iov, struct field *f, char *message, size_t size,
                           const char *msg, int prio, const char *event, const char *listener,
                           const char *service)
{
        size_t n = 0;
        int k = xsnprintf(message, size, "MESSAGE=%s", msg);

        iov[n].iov_base = message;
        iov[n++].iov_len = k < 0 ? strlen(message) : (size_t) k;
        field_set(&iov[n], &f[n], "PRIORITY=%d", prio), n++;
        field_set(&iov[n], &f[n], "SYSLOG_IDENTIFIER=netlabd"), n++;
        field_set(&iov[n], &f[n], "NETLAB_EVENT=%s", event), n++;
        field_set(&iov[n], &f[n], "LISTENER=%s", listener), n++;
        field_set(&iov[n], &f[n], "SERVICE=%s", service), n++;
        return n;
}

void log_request(const struct request_log *r)
{
        char text[256] = "", file[256] = "", msg[1024], remote[96], offset[40] = "", offset_num[24] = "";
        int prio = r->priority ? r->priority : LOG_INFO;

        if (prio > log_max_level)
                return;

        if (r->text)
                text_escape(text, sizeof text, r->text, r->text_len);
        if (r->file)
                text_escape(file, sizeof file, r->file, r->file_len);
        /* stderr's [KEY=value ...] list is split on spaces: spell them \x20. */
        char file_field[sizeof file * 4] = "";
        for (size_t i = 0, k = 0; file[i] && k + 5 < sizeof file_field; i++) {
                if (file[i] == ' ') {
                        memcpy(file_field + k, "\\x20", 4);
                        k += 4;
                } else
                        file_field[k++] = file[i];
                file_field[k] = '\0';
        }
        if (r->has_offset) {
                (void) xsnprintf(offset_num, sizeof offset_num, "%llu", (unsigned long long) r->offset);
                (void) xsnprintf(offset, sizeof offset, " at offset %s", offset_num);
        }
        if (strchr(r->remote_addr, ':'))
                (void) xsnprintf(remote, sizeof remote, "[%s]:%u", r->remote_addr, r->remote_port);
        else
                (void) xsnprintf(remote, sizeof remote, "%s:%u", r->remote_addr, r->remote_port);

        /* Truncation only shortens the human summary; the fields stay whole. */
        (void) xsnprintf(msg, sizeof msg,
                         "listener %s (%s) from %s: %s%s%s%s%s%s%s, %llu bytes in, %llu bytes out, %llu us%s%s%s",
                         r->listener, r->service, remote, r->result,
                         r->detail ? ": " : "", r->detail ? r->detail : "",
                         r->file ? ", file \"" : "", r->file ? file : "", r->file ? "\"" : "", offset,
                         (unsigned long long) r->bytes_in, (unsigned long long) r->bytes_out,
                         (unsigned long long) r->duration_usec,
                         r->text ? ", message \"" : "", r->text ? text : "", r->text ? "\"" : "");

        if (log_target == LOG_TARGET_JOURNAL) {
                struct field f[16];
                struct iovec iov[16];
                char message[sizeof msg + 16];
                size_t n = journal_head(iov, f, message, sizeof message, msg, prio, "request",
                                        r->listener, r->service);

                field_set(&iov[n], &f[n], "REMOTE_ADDR=%s", r->remote_addr), n++;
                field_set(&iov[n], &f[n], "REMOTE_PORT=%u", r->remote_port), n++;
                field_set(&iov[n], &f[n], "BYTES_IN=%llu", (unsigned long long) r->bytes_in), n++;
                field_set(&iov[n], &f[n], "BYTES_OUT=%llu", (unsigned long long) r->bytes_out), n++;
                field_set(&iov[n], &f[n], "DURATION_USEC=%llu", (unsigned long long) r->duration_usec), n++;
                field_set(&iov[n], &f[n], "RESULT=%s", r->result), n++;
                field_set(&iov[n], &f[n], "DETAIL=%s", r->detail ? r->detail : ""), n++;
                if (r->text)
                        field_set(&iov[n], &f[n], "CLIENT_MESSAGE=%.*s", (int) r->text_len,
                                  (const char *) r->text), n++;
                /* The raw path (journald fields are binary-safe with sendv; a
                 * control byte cannot reach here: such paths are refused
                 * before they are logged raw). */
                if (r->file)
                        field_set(&iov[n], &f[n], "FILE=%.*s", (int) r->file_len, (const char *) r->file), n++;
                if (r->has_offset)
                        field_set(&iov[n], &f[n], "OFFSET=%llu", (unsigned long long) r->offset), n++;
                if (journal_sendv(iov, n) >= 0)
                        return;
        }

        /* stderr: key=value fields after the summary, for scripts and tests. */
        char line[1536];
        (void) xsnprintf(line, sizeof line,
                         "%s [LISTENER=%s SERVICE=%s REMOTE_ADDR=%s REMOTE_PORT=%u BYTES_IN=%llu "
                         "BYTES_OUT=%llu DURATION_USEC=%llu RESULT=%s%s%s%s%s]",
                         msg, r->listener, r->service, r->remote_addr, r->remote_port,
                         (unsigned long long) r->bytes_in, (unsigned long long) r->bytes_out,
                         (unsigned long long) r->duration_usec, r->result,
                         r->file ? " FILE=" : "", r->file ? file_field : "",
                         r->has_offset ? " OFFSET=" : "",
                         offset_num);
        stderr_line(prio, line);
}

void log_dgram_summary(const struct dgram_summary *s)
{
        uint64_t dropped = s->port_zero + s->blocked_port + s->source_rate + s->total_rate + s->other;
        int prio = dropped > 0 || s->suppressed > 0 ? LOG_NOTICE : LOG_DEBUG;
        char msg[512], extra[64] = "";

        if (prio > log_max_level)
                return;
        if (s->suppressed > 0)
                (void) xsnprintf(extra, sizeof extra, "; %llu request entries not logged",
                                 (unsigned long long) s->suppressed);
        (void) xsnprintf(msg, sizeof msg,
                         "listener '%s': in the last %llu s: %llu datagrams answered, %llu dropped "
                         "(%llu over the per-source rate, %llu over the total budget, %llu from "
                         "blocked source ports, %llu from port 0, %llu other)%s",
                         s->listener, (unsigned long long) s->interval_sec,
                         (unsigned long long) s->replies, (unsigned long long) dropped,
                         (unsigned long long) s->source_rate, (unsigned long long) s->total_rate,
                         (unsigned long long) s->blocked_port, (unsigned long long) s->port_zero,
                         (unsigned long long) s->other, extra);

        if (log_target == LOG_TARGET_JOURNAL) {
                struct field f[18];
                struct iovec iov[18];
                char message[sizeof msg + 16];
                size_t n = journal_head(iov, f, message, sizeof message, msg, prio, "datagrams",
                                        s->listener, s->service);

                field_set(&iov[n], &f[n], "INTERVAL_SEC=%llu", (unsigned long long) s->interval_sec), n++;
                field_set(&iov[n], &f[n], "REPLIES=%llu", (unsigned long long) s->replies), n++;
                field_set(&iov[n], &f[n], "REPLY_BYTES=%llu", (unsigned long long) s->reply_bytes), n++;
                field_set(&iov[n], &f[n], "DROPPED=%llu", (unsigned long long) dropped), n++;
                field_set(&iov[n], &f[n], "DROPPED_SOURCE_RATE=%llu", (unsigned long long) s->source_rate), n++;
                field_set(&iov[n], &f[n], "DROPPED_TOTAL_RATE=%llu", (unsigned long long) s->total_rate), n++;
                field_set(&iov[n], &f[n], "DROPPED_BLOCKED_PORT=%llu", (unsigned long long) s->blocked_port), n++;
                field_set(&iov[n], &f[n], "DROPPED_PORT_ZERO=%llu", (unsigned long long) s->port_zero), n++;
                field_set(&iov[n], &f[n], "DROPPED_OTHER=%llu", (unsigned long long) s->other), n++;
                field_set(&iov[n], &f[n], "SUPPRESSED=%llu", (unsigned long long) s->suppressed), n++;
                if (journal_sendv(iov, n) >= 0)
                        return;
        }

        /* stderr: the fields after the summary; EVENT= first, so the list
         * cannot be mistaken for a request entry's [LISTENER=...]. */
        char line[1024];
        (void) xsnprintf(line, sizeof line,
                         "%s [EVENT=datagrams LISTENER=%s SERVICE=%s INTERVAL_SEC=%llu REPLIES=%llu "
                         "REPLY_BYTES=%llu DROPPED=%llu DROPPED_SOURCE_RATE=%llu DROPPED_TOTAL_RATE=%llu "
                         "DROPPED_BLOCKED_PORT=%llu DROPPED_PORT_ZERO=%llu DROPPED_OTHER=%llu SUPPRESSED=%llu]",
                         msg, s->listener, s->service, (unsigned long long) s->interval_sec,
                         (unsigned long long) s->replies, (unsigned long long) s->reply_bytes,
                         (unsigned long long) dropped, (unsigned long long) s->source_rate,
                         (unsigned long long) s->total_rate, (unsigned long long) s->blocked_port,
                         (unsigned long long) s->port_zero, (unsigned long long) s->other,
                         (unsigned long long) s->suppressed);
        stderr_line(prio, line);
}
