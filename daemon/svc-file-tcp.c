/* svc-file-tcp.c: the file service over TCP: GET (whole, from an offset, or a
 * validated resume), STAT and LIST beneath the listener's root, in netlab
 * frames; and, when the listener names a lab_file, the lab's broken download
 * on the same port (svc-lab-download.c), told apart by the first byte.
 *
 * Runs in the forked child.  Trusts nothing the client sends: the request is
 * read into a fixed buffer under the header deadline, decoded by
 * common/proto-file.c, its path checked lexically and then opened only
 * beneath the root (fileroot.c).  Data leaves with sendfile(2); the file is
 * fstat()ed again afterwards so a file that changed or shrank mid-transfer
 * is reported as an error, never as success.  The options, those checks and
 * their refusal texts are shared with the UDP transfers (svc-file.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "fileroot.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "svc-file.h"
#include "util.h"
#include "wire.h"

/* Send a frame with a status and error text (or an OK body). */
static int send_frame(struct conn *c, uint8_t type, unsigned status, const void *body, size_t len)
{
        uint8_t buf[NL_HEADER_SIZE + NL_ENTRIES_MAX];
        int n = nl_frame_encode(buf, sizeof buf, type, (uint8_t) status, body, len);

        if (n < 0)
                return n;
        return conn_write_all(c, buf, (size_t) n);
}

/* Send the refusal recorded in s in a FILE_INFO frame. */
static int send_refusal(struct conn *c, const struct file_session *s)
{
        return send_frame(c, NL_TYPE_FILE_INFO, s->status, s->text, strlen(s->text));
}

/* Refuse the request with status and text in a FILE_INFO frame, and record it. */
static int refuse(struct conn *c, struct file_session *s, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int refuse(struct conn *c, struct file_session *s, unsigned status, const char *fmt, ...)
{
        char text[sizeof s->text];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof text, fmt, ap); /* a cut text is fine */
        va_end(ap);
        file_session_refuse(s, status, "%s", text);
        return send_refusal(c, s);
}

/* The request failed a shared check (svc-file.c), which recorded a
 * refusal: send it.  Return: err for the admin's problems (INTERNAL), else
 * the send's result (the client was answered). */
static int refused(struct conn *c, struct file_session *s, int err)
{
        int k = send_refusal(c, s);
        return s->status == NL_STATUS_INTERNAL ? err : k;
}

static int send_info(struct conn *c, const struct file_info *info)
{
        uint8_t body[NL_INFO_SIZE];
        int n = file_info_encode(body, sizeof body, info);

        if (n < 0)
                return n;
        return send_frame(c, NL_TYPE_FILE_INFO, NL_STATUS_OK, body, (size_t) n);
}

static int serve_get(struct conn *c, struct file_session *s, const struct file_request *req)
{
        _cleanup_close_ int fd = -1;
        struct file_info info;
        uint64_t sent = 0;
        char why[160];
        int r;

        fd = file_get_prepare(s, req, &info);
        if (fd < 0)
                return refused(c, s, fd);

        /* Header, data and FILE_END leave as full segments: a small file is
         * one packet, not three.  Uncorked (flushed) when the child closes. */
        static const int one = 1;
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one); /* an optimisation only */
        r = send_info(c, &info);
        if (r < 0)
                goto io_failed;

        r = conn_sendfile(c, fd, info.offset, info.length, &sent);
        if (r == -ENODATA) {
                /* The client counts on `length` bytes; it will see the
                 * connection end short and keep its partial file. */
                file_session_shrank(s, sent, info.length);
                return r;
        }
        if (r < 0)
                goto io_failed;

        uint8_t digest[NL_DIGEST_SIZE];
        r = file_get_verify(s, fd, req, &info, sent, digest);
        if (r < 0) {
                (void) send_frame(c, NL_TYPE_FILE_END, s->status, s->text, strlen(s->text));
                return r;
        }

        uint8_t body[1 + NL_DIGEST_SIZE];
        int n = file_end_encode(body, sizeof body, (req->flags & FILE_GET_DIGEST) ? digest : NULL);
        if (n < 0)
                return n;
        r = send_frame(c, NL_TYPE_FILE_END, NL_STATUS_OK, body, (size_t) n);
        if (r < 0)
                goto io_failed;
        file_session_result(s, "ok", LOG_INFO, NULL);
        return 0;

io_failed:
        file_session_result(s, r == -ETIMEDOUT ? "timeout" : "send-failed", LOG_NOTICE,
                            "%llu of %llu bytes sent: %s%s", (unsigned long long) sent,
                            (unsigned long long) info.length,
                            r == -ETIMEDOUT ? "the client stopped reading; " : "",
                            r == -ETIMEDOUT ? conn_timeout_text(c, why, sizeof why) : strerror(-r));
        return r;
}

static int serve_stat(struct conn *c, struct file_session *s, const struct file_request *req)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        struct file_info info;

        fd = file_session_open(s, req, FILEROOT_WANT_ANY, &st);
        if (fd < 0)
                return refused(c, s, fd);
        file_info_from_stat(&st, &info);
        int r = send_info(c, &info);
        file_session_result(s, r < 0 ? "send-failed" : "ok", r < 0 ? LOG_NOTICE : LOG_INFO, NULL);
        return r;
}

static int serve_list(struct conn *c, struct file_session *s, const struct file_request *req)
{
        uint8_t body[NL_ENTRIES_MAX];
        struct wire_writer w;
        struct stat st;
        struct file_info info;
        uint64_t n_entries = 0;
        DIR *dir = NULL;
        int fd, r;

        fd = file_session_open(s, req, FILEROOT_WANT_DIRECTORY, &st);
        if (fd < 0)
                return refused(c, s, fd);
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                (void) close(fd);
                (void) refuse(c, s, NL_STATUS_INTERNAL, "cannot read the directory");
                return r;
        }

        file_info_from_stat(&st, &info);
        r = send_info(c, &info);
        if (r < 0)
                goto finish;

        wire_writer_init(&w, body, sizeof body);
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(dir);
                if (!de) {
                        r = errno ? -errno : 0;
                        break;
                }

                const uint8_t *name = (const uint8_t *) de->d_name;
                size_t len = strlen(de->d_name);
                const char *problem;
                struct stat est;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                /* A name no request could ask for is not listed either. */
                if (memchr(name, '/', len) ||
                    file_path_check(name, len, false, s->o->hide_dotfiles, &problem) < 0)
                        continue;
                if (fstatat(dirfd(dir), de->d_name, &est, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* vanished meanwhile */

                struct file_entry e = {
                        .kind = file_kind_of(est.st_mode),
                        .size = S_ISREG(est.st_mode) && est.st_size > 0 ? (uint64_t) est.st_size : 0,
                        .mtime_sec = (int64_t) est.st_mtim.tv_sec,
                        .name = name,
                        .name_len = len,
                };
                if (file_entry_put(&w, &e) == -ENOBUFS) {
                        r = send_frame(c, NL_TYPE_FILE_ENTRIES, NL_STATUS_OK, body, w.pos);
                        if (r < 0)
                                goto finish;
                        wire_writer_init(&w, body, sizeof body);
                        (void) file_entry_put(&w, &e); /* fits: one entry is < 300 bytes */
                }
                n_entries++;
        }
        if (r < 0) {
                static const char text[] = "reading the directory failed";
                (void) send_frame(c, NL_TYPE_FILE_END, NL_STATUS_INTERNAL, text, strlen(text));
                file_session_result(s, "internal-error", LOG_ERR, "readdir: %s", strerror(-r));
                goto done;
        }
        if (w.pos > 0) {
                r = send_frame(c, NL_TYPE_FILE_ENTRIES, NL_STATUS_OK, body, w.pos);
                if (r < 0)
                        goto finish;
        }
        uint8_t end[1];
        int n = file_end_encode(end, sizeof end, NULL);
        r = n < 0 ? n : send_frame(c, NL_TYPE_FILE_END, NL_STATUS_OK, end, (size_t) n);

finish:
        if (r < 0)
                file_session_result(s, r == -ETIMEDOUT ? "timeout" : "send-failed", LOG_NOTICE,
                                    "sending the listing failed: %s", strerror(-r));
        else
                file_session_result(s, "ok", LOG_INFO, "%llu entries", (unsigned long long) n_entries);
done:
        (void) closedir(dir);
        return r;
}

/* Read until buf holds at least `want` bytes.  Return: 0; -EPIPE on EOF
 * first; -ETIMEDOUT; negative errno. */
static int read_at_least(struct conn *c, uint8_t *buf, size_t size, size_t *n, size_t want)
{
        while (*n < want) {
                ssize_t k = conn_read(c, buf + *n, size - *n);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return -EPIPE;
                *n += (size_t) k;
        }
        return 0;
}

static int serve_netlab(struct conn *c, struct file_session *s, uint8_t *buf, size_t size, size_t n)
{
        struct nl_header h;
        struct file_request req;
        int r;

        /* The header, refusing a wrong magic as soon as it shows. */
        for (;;) {
                r = nl_header_decode(buf, n, &h);
                if (r != -EAGAIN)
                        break;
                r = read_at_least(c, buf, size, &n, n + 1);
                if (r < 0)
                        goto read_failed;
        }
        if (r == -EPROTONOSUPPORT)
                return refuse(c, s, NL_STATUS_UNSUPPORTED,
                              "unsupported protocol version %u (this server speaks version %u)",
                              h.version, NL_VERSION);
        if (r < 0)
                return refuse(c, s, NL_STATUS_BAD_REQUEST, "malformed frame header");
        if (h.status != 0)
                return refuse(c, s, NL_STATUS_BAD_REQUEST, "status must be 0 in a request");
        if (h.type != NL_TYPE_FILE_GET && h.type != NL_TYPE_FILE_STAT && h.type != NL_TYPE_FILE_LIST)
                return refuse(c, s, NL_STATUS_UNSUPPORTED,
                              "frame type 0x%02x is not a file request (this is a file listener)", h.type);
        if (h.length > NL_FILE_REQUEST_MAX)
                return refuse(c, s, NL_STATUS_TOO_LONG, "request of %u bytes: more than the %u allowed",
                              h.length, NL_FILE_REQUEST_MAX);

        r = read_at_least(c, buf, size, &n, NL_HEADER_SIZE + h.length);
        if (r < 0)
                goto read_failed;
        conn_header_done(c);

        r = file_request_decode(h.type, buf + NL_HEADER_SIZE, h.length, &req);
        if (r < 0)
                return refuse(c, s, nl_status_from_errno(r), "%s", req.problem ? req.problem : "bad request");

        r = file_session_check_path(s, &req);
        if (r < 0)
                return send_refusal(c, s);

        /* The request is in: a download may now take as long as it
         * progresses.  The header deadline bounded receiving the request
         * (slow-header clients); the idle timeout bounds every step of the
         * transfer. */
        c->deadline_usec = UINT64_MAX;

        switch (h.type) {
        case NL_TYPE_FILE_GET:
                return serve_get(c, s, &req);
        case NL_TYPE_FILE_STAT:
                return serve_stat(c, s, &req);
        default:
                return serve_list(c, s, &req);
        }

read_failed:
        if (r == -ETIMEDOUT) {
                /* The client's text is docs/PROTOCOL.md's; the log also
                 * says which limit it was. */
                char why[160];
                (void) conn_timeout_text(c, why, sizeof why);
                int k = refuse(c, s, NL_STATUS_TIMEOUT, "the request did not arrive in time");
                file_session_result(s, "timeout", LOG_NOTICE, "the request did not arrive in time: %s",
                                    why);
                return k;
        }
        if (r == -EPIPE)
                /* Half-closed inside the request: answer anyway, the client
                 * may still be reading. */
                return refuse(c, s, NL_STATUS_BAD_REQUEST, "%s",
                              n < NL_HEADER_SIZE ? "connection closed inside the frame header"
                                                 : "connection closed before the whole request arrived");
        file_session_result(s, "io-error", LOG_NOTICE, "reading the request failed: %s", strerror(-r));
        return r;
}

static int svc_file_serve(struct conn *c)
{
        const struct file_options *o = c->listener->options;
        uint8_t buf[NL_HEADER_SIZE + NL_FILE_REQUEST_MAX];
        struct file_session s = {
                .o = o,
                .entry = {
                        .listener = c->listener->name,
                        .service = "file",
                        .remote_addr = c->remote_addr,
                        .remote_port = c->remote_port,
                },
        };
        size_t n = 0;
        int r;

        r = read_at_least(c, buf, sizeof buf, &n, 1);
        if (r == 0 && nl_is_frame_start(buf, n))
                r = serve_netlab(c, &s, buf, sizeof buf, n);
        else if (r == 0 && buf[0] >= '0' && buf[0] <= '9') {
                if (o->lab_file)
                        return svc_lab_download_serve(c, o, buf, n); /* logs on its own */
                /* The lab client writes every byte it receives into its
                 * file, so it gets no error text: a close, and the log. */
                file_session_result(&s, "not-permitted", LOG_NOTICE,
                                    "a lab download request, but this listener has no lab_file");
        } else if (r == 0) {
                static const char text[] = "error: not a netlab file request\n";
                (void) conn_write_all(c, text, strlen(text));
                file_session_result(&s, "bad-request", LOG_NOTICE, "not a netlab file request");
        } else if (r == -EPIPE) {
                file_session_result(&s, "no-request", LOG_INFO, "client closed without sending a request");
                r = 0;
        } else if (r == -ETIMEDOUT) {
                /* Nothing arrived, so the form is unknown: a line, as the
                 * message service does (a lab client never gets here: it
                 * sends at once). */
                static const char text[] = "error: no request arrived in time\n";
                char why[160];
                (void) conn_timeout_text(c, why, sizeof why);
                (void) conn_write_all(c, text, strlen(text));
                file_session_result(&s, "timeout", LOG_NOTICE, "no request arrived in time: %s", why);
        } else {
                file_session_result(&s, "io-error", LOG_NOTICE, "reading the request failed: %s", strerror(-r));
        }

        if (!s.entry.result)
                file_session_result(&s, r < 0 ? "io-error" : "ok", r < 0 ? LOG_NOTICE : LOG_INFO, NULL);
        conn_end_request(c, &s.entry, FILE_LINGER_USEC);
        return r < 0 ? r : 0;
}

static int svc_file_refuse(int fd, const uint8_t *first, size_t n_first, unsigned status, const char *text)
{
        if (n_first > 0 && first[0] >= '0' && first[0] <= '9')
                return 0; /* a lab client: any byte would land in its file */
        return service_refuse_in_form(fd, first, n_first, NL_TYPE_FILE_INFO, status, text);
}

const struct service svc_file_tcp = {
        .name = "file",
        .socktype = SOCK_STREAM,
        .summary = "download files beneath a root directory, whole or resumed, with sendfile (lab 2)",
        .keys = file_tcp_keys,
        .options_size = sizeof(struct file_options),
        .options_check = file_options_check,
        .serve_stream = svc_file_serve,
        .refuse_stream = svc_file_refuse,
        .refuse_wants_first_byte = true,
};
