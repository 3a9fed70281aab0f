/* log.c: see log.h.
 *
 * journald entries are sent with sd_journal_send(); if that fails (journald
 * gone), the entry is written to stderr instead so nothing is lost silently. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static enum log_target log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;

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
        if (log_target == LOG_TARGET_JOURNAL &&
            sd_journal_send("MESSAGE=%s", text, "PRIORITY=%d", level,
                            "SYSLOG_IDENTIFIER=netlabd", NULL) >= 0)
                return;
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
                if (sd_journal_sendv(iov, (int) n) >= 0)
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
                if (sd_journal_sendv(iov, (int) n) >= 0)
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
