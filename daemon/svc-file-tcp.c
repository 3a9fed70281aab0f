/* svc-file-tcp.c: the file service over TCP: GET (whole, from an offset, or a
 * validated resume), STAT and LIST beneath the listener's root, in netlab
 * frames; and, when the listener names a lab_file, the lab's broken download
 * on the same port (svc-lab-download.c), told apart by the first byte.
 *
 * Runs in the forked child.  Trusts nothing the client sends: the request is
 * read into a fixed buffer under the total deadline, decoded by
 * common/proto-file.c, its path checked lexically and then opened only
 * beneath the root (fileroot.c).  Data leaves with sendfile(2); the file is
 * fstat()ed again afterwards so a file that changed or shrank mid-transfer
 * is reported as an error, never as success. */
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
#include "digest.h"
#include "fileroot.h"
#include "log.h"
#include "proto.h"
#include "service.h"
#include "svc-file.h"
#include "util.h"
#include "wire.h"

static const char *check_root(const char *v)
{
        if (v[0] != '/')
                return "must be an absolute path";
        return NULL;
}

static const char *check_lab_file(const char *v)
{
        const char *problem = NULL;

        if (file_path_check((const uint8_t *) v, strlen(v), false, false, &problem) < 0)
                return problem;
        return NULL;
}

static const struct config_key file_keys[] = {
        { .name = "root", .type = CONFIG_KEY_STRING, .min = 1, .max = 4096, .required = true,
          .offset = offsetof(struct file_options, root), .check = check_root,
          .doc = "directory served; nothing outside it can be reached (required)" },
        { .name = "lab_file", .type = CONFIG_KEY_STRING, .min = 1, .max = NL_PATH_MAX,
          .offset = offsetof(struct file_options, lab_file), .check = check_lab_file,
          .doc = "file under root that the lab's broken-download client gets on this listener "
                 "(unset: lab clients are refused)" },
        { .name = "hide_dotfiles", .type = CONFIG_KEY_BOOL,
          .offset = offsetof(struct file_options, hide_dotfiles), .default_int = 1,
          .doc = "names starting with a dot are neither listed nor served" },
        { .name = "resolve", .type = CONFIG_KEY_ENUM, .choices = "auto|walk",
          .offset = offsetof(struct file_options, resolve), .default_str = "auto",
          .doc = "auto: openat2(RESOLVE_BENEATH), walking the path when the kernel lacks it; "
                 "walk: always walk one component at a time, refusing every symlink" },
        {}
};

static const char *file_options_check(void *options, char *buf, size_t size)
{
        struct file_options *o = options;
        struct stat st;

        if (!o->root)
                return NULL; /* reported as a missing required key */
        if (fileroot_resolve_from_string(o->resolve, &o->resolve_mode) < 0)
                return "resolve: must be \"auto\" or \"walk\"";
        if (stat(o->root, &st) < 0) {
                (void) xsnprintf(buf, size, "root: %s: %s", o->root, strerror(errno));
                return buf;
        }
        if (!S_ISDIR(st.st_mode)) {
                (void) xsnprintf(buf, size, "root: %s: not a directory", o->root);
                return buf;
        }
        return NULL;
}

/* One file request on a connection: what is logged at the end. */
struct file_session {
        struct conn *c;
        const struct file_options *o;
        struct request_log entry;
        char detail[320];
};

static void session_result(struct file_session *s, const char *result, int priority,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void session_result(struct file_session *s, const char *result, int priority,
                           const char *fmt, ...)
{
        s->entry.result = result;
        s->entry.priority = priority;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                (void) vsnprintf(s->detail, sizeof s->detail, fmt, ap); /* a cut detail is fine */
                va_end(ap);
                s->entry.detail = s->detail;
        }
}

/* Send a frame with a status and error text (or an OK body). */
static int send_frame(struct conn *c, uint8_t type, unsigned status, const void *body, size_t len)
{
        uint8_t buf[NL_HEADER_SIZE + NL_ENTRIES_MAX];
        int n = nl_frame_encode(buf, sizeof buf, type, (uint8_t) status, body, len);

        if (n < 0)
                return n;
        return conn_write_all(c, buf, (size_t) n);
}

/* Refuse the request with status and the detail text (already in s->detail)
 * in a FILE_INFO frame, and record it. */
static int refuse(struct file_session *s, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int refuse(struct file_session *s, unsigned status, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(s->detail, sizeof s->detail, fmt, ap);
        va_end(ap);
        s->entry.detail = s->detail;
        s->entry.result = nl_status_name(status);
        s->entry.priority = LOG_NOTICE;
        return send_frame(s->c, NL_TYPE_FILE_INFO, status, s->detail, strlen(s->detail));
}

/* Map a fileroot_open() failure to the client's status and text. */
static int refuse_open(struct file_session *s, int err, const char *what)
{
        switch (err) {
        case -ENOENT:
        case -ENOTDIR:
                return refuse(s, NL_STATUS_NOT_FOUND, "%s: no such file or directory", what);
        case -EXDEV:
                return refuse(s, NL_STATUS_NOT_PERMITTED, "%s: the path leads outside the root", what);
        case -ELOOP:
                return refuse(s, NL_STATUS_NOT_PERMITTED,
                              "%s: symbolic links are not followed here", what);
        case -EPERM:
                return refuse(s, NL_STATUS_NOT_PERMITTED, "%s", what);
        case -EACCES:
                return refuse(s, NL_STATUS_NOT_PERMITTED, "%s: permission denied", what);
        case -EAGAIN:
                return refuse(s, NL_STATUS_BUSY,
                              "%s: the directory is being renamed, try again", what);
        case -ENAMETOOLONG:
                return refuse(s, NL_STATUS_TOO_LONG, "%s: name too long", what);
        default:
                (void) refuse(s, NL_STATUS_INTERNAL, "%s: cannot open: %s", what, strerror(-err));
                s->entry.priority = LOG_ERR;
                return err;
        }
}

static uint8_t kind_of(mode_t mode)
{
        if (S_ISREG(mode))
                return FILE_KIND_REGULAR;
        if (S_ISDIR(mode))
                return FILE_KIND_DIRECTORY;
        if (S_ISLNK(mode))
                return FILE_KIND_SYMLINK;
        return FILE_KIND_OTHER;
}

static void info_from_stat(const struct stat *st, struct file_info *info)
{
        *info = (struct file_info) {
                .kind = kind_of(st->st_mode),
                .size = S_ISREG(st->st_mode) && st->st_size > 0 ? (uint64_t) st->st_size : 0,
                .mtime_sec = (int64_t) st->st_mtim.tv_sec,
                .mtime_nsec = (uint32_t) st->st_mtim.tv_nsec,
        };
        fileroot_validator(st, info->validator);
}

static int send_info(struct conn *c, const struct file_info *info)
{
        uint8_t body[NL_INFO_SIZE];
        int n = file_info_encode(body, sizeof body, info);

        if (n < 0)
                return n;
        return send_frame(c, NL_TYPE_FILE_INFO, NL_STATUS_OK, body, (size_t) n);
}

/* Open the request's path beneath the root.  Return: fd, or negative errno
 * after answering the client. */
static int open_path(struct file_session *s, const struct file_request *req, enum fileroot_want want,
                     struct stat *st)
{
        _cleanup_close_ int root_fd = -1;
        int fd;

        root_fd = fileroot_open_root(s->o->root);
        if (root_fd < 0) {
                /* The admin's problem, not the client's: say little to the
                 * client, everything to the log. */
                (void) refuse(s, NL_STATUS_INTERNAL, "the file root is not available");
                session_result(s, "internal-error", LOG_ERR, "root %s: %s", s->o->root,
                               strerror(-root_fd));
                return root_fd;
        }
        fd = fileroot_open(root_fd, req->path, req->path_len, s->o->resolve_mode, want, st);
        if (fd < 0) {
                const char *what = want == FILEROOT_WANT_DIRECTORY ? "not a directory"
                                   : want == FILEROOT_WANT_FILE    ? "not a regular file"
                                                                   : "not a file or directory";
                int r = refuse_open(s, fd, fd == -EPERM ? what : "cannot open");
                return r < 0 ? r : fd;
        }
        return fd;
}

static int serve_get(struct file_session *s, const struct file_request *req)
{
        struct conn *c = s->c;
        _cleanup_close_ int fd = -1;
        struct stat st, after;
        struct file_info info;
        uint64_t sent = 0;
        int r;

        fd = open_path(s, req, FILEROOT_WANT_FILE, &st);
        if (fd < 0)
                return fd;

        info_from_stat(&st, &info);
        if (req->has_validator && memcmp(req->validator, info.validator, NL_VALIDATOR_SIZE) != 0)
                return refuse(s, NL_STATUS_CHANGED,
                              "the file changed on the server since the partial download "
                              "(now %llu bytes)", (unsigned long long) info.size);
        if (req->offset > info.size)
                return refuse(s, NL_STATUS_RANGE,
                              "offset %llu is past the end of the file (%llu bytes)",
                              (unsigned long long) req->offset, (unsigned long long) info.size);
        if (req->tail_len > 0) {
                uint8_t tail[NL_DIGEST_SIZE];

                r = digest_fd_range(fd, req->offset - req->tail_len, req->tail_len, tail);
                if (r == -ENODATA)
                        return refuse(s, NL_STATUS_CHANGED, "the file shrank while it was being checked");
                if (r < 0) {
                        (void) refuse(s, NL_STATUS_INTERNAL, "reading the file failed: %s", strerror(-r));
                        s->entry.priority = LOG_ERR;
                        return r;
                }
                if (memcmp(tail, req->tail_hash, NL_DIGEST_SIZE) != 0)
                        return refuse(s, NL_STATUS_MISMATCH,
                                      "the %u bytes before offset %llu differ from the server's",
                                      req->tail_len, (unsigned long long) req->offset);
        }

        info.offset = req->offset;
        info.length = info.size - req->offset;
        if (req->flags & FILE_GET_DIGEST)
                info.flags |= FILE_INFO_DIGEST_FOLLOWS;

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
                session_result(s, "changed", LOG_WARNING,
                               "the file shrank during the transfer: %llu of %llu bytes sent",
                               (unsigned long long) sent, (unsigned long long) info.length);
                return r;
        }
        if (r < 0)
                goto io_failed;

        /* Same file, same contents as when we started?  Checked after the
         * data, and again after hashing, which takes time of its own. */
        uint8_t validator[NL_VALIDATOR_SIZE], digest[NL_DIGEST_SIZE];
        bool changed = false;

        if (fstat(fd, &after) < 0)
                return log_error_errno(errno, "fstat");
        fileroot_validator(&after, validator);
        changed = memcmp(validator, info.validator, NL_VALIDATOR_SIZE) != 0;
        if (!changed && (req->flags & FILE_GET_DIGEST)) {
                r = digest_fd_range(fd, 0, info.size, digest);
                if (r == -ENODATA)
                        changed = true;
                else if (r < 0) {
                        (void) send_frame(c, NL_TYPE_FILE_END, NL_STATUS_INTERNAL, "hashing the file failed",
                                          strlen("hashing the file failed"));
                        session_result(s, "internal-error", LOG_ERR, "hashing failed: %s", strerror(-r));
                        return r;
                }
                if (!changed && fstat(fd, &after) == 0) {
                        fileroot_validator(&after, validator);
                        changed = memcmp(validator, info.validator, NL_VALIDATOR_SIZE) != 0;
                }
        }
        if (changed) {
                static const char text[] = "the file changed on the server during the transfer";
                (void) send_frame(c, NL_TYPE_FILE_END, NL_STATUS_CHANGED, text, strlen(text));
                session_result(s, "changed", LOG_WARNING, "%s (%llu bytes sent)", text,
                               (unsigned long long) sent);
                return -ESTALE;
        }

        uint8_t body[1 + NL_DIGEST_SIZE];
        int n = file_end_encode(body, sizeof body, (req->flags & FILE_GET_DIGEST) ? digest : NULL);
        if (n < 0)
                return n;
        r = send_frame(c, NL_TYPE_FILE_END, NL_STATUS_OK, body, (size_t) n);
        if (r < 0)
                goto io_failed;
        session_result(s, "ok", LOG_INFO, NULL);
        return 0;

io_failed:
        session_result(s, r == -ETIMEDOUT ? "timeout" : "send-failed", LOG_NOTICE,
                       "%llu of %llu bytes sent: %s", (unsigned long long) sent,
                       (unsigned long long) info.length,
                       r == -ETIMEDOUT ? "the client stopped reading" : strerror(-r));
        return r;
}

static int serve_stat(struct file_session *s, const struct file_request *req)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        struct file_info info;

        fd = open_path(s, req, FILEROOT_WANT_ANY, &st);
        if (fd < 0)
                return fd;
        info_from_stat(&st, &info);
        int r = send_info(s->c, &info);
        session_result(s, r < 0 ? "send-failed" : "ok", r < 0 ? LOG_NOTICE : LOG_INFO, NULL);
        return r;
}

static int serve_list(struct file_session *s, const struct file_request *req)
{
        uint8_t body[NL_ENTRIES_MAX];
        struct wire_writer w;
        struct stat st;
        struct file_info info;
        uint64_t n_entries = 0;
        DIR *dir = NULL;
        int fd, r;

        fd = open_path(s, req, FILEROOT_WANT_DIRECTORY, &st);
        if (fd < 0)
                return fd;
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                (void) close(fd);
                (void) refuse(s, NL_STATUS_INTERNAL, "cannot read the directory");
                return r;
        }

        info_from_stat(&st, &info);
        r = send_info(s->c, &info);
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
                        .kind = kind_of(est.st_mode),
                        .size = S_ISREG(est.st_mode) && est.st_size > 0 ? (uint64_t) est.st_size : 0,
                        .mtime_sec = (int64_t) est.st_mtim.tv_sec,
                        .name = name,
                        .name_len = len,
                };
                if (file_entry_put(&w, &e) == -ENOBUFS) {
                        r = send_frame(s->c, NL_TYPE_FILE_ENTRIES, NL_STATUS_OK, body, w.pos);
                        if (r < 0)
                                goto finish;
                        wire_writer_init(&w, body, sizeof body);
                        (void) file_entry_put(&w, &e); /* fits: one entry is < 300 bytes */
                }
                n_entries++;
        }
        if (r < 0) {
                static const char text[] = "reading the directory failed";
                (void) send_frame(s->c, NL_TYPE_FILE_END, NL_STATUS_INTERNAL, text, strlen(text));
                session_result(s, "internal-error", LOG_ERR, "readdir: %s", strerror(-r));
                goto done;
        }
        if (w.pos > 0) {
                r = send_frame(s->c, NL_TYPE_FILE_ENTRIES, NL_STATUS_OK, body, w.pos);
                if (r < 0)
                        goto finish;
        }
        uint8_t end[1];
        int n = file_end_encode(end, sizeof end, NULL);
        r = n < 0 ? n : send_frame(s->c, NL_TYPE_FILE_END, NL_STATUS_OK, end, (size_t) n);

finish:
        if (r < 0)
                session_result(s, r == -ETIMEDOUT ? "timeout" : "send-failed", LOG_NOTICE,
                               "sending the listing failed: %s", strerror(-r));
        else
                session_result(s, "ok", LOG_INFO, "%llu entries", (unsigned long long) n_entries);
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

static int serve_netlab(struct file_session *s, uint8_t *buf, size_t size, size_t n)
{
        struct nl_header h;
        struct file_request req;
        int r;

        /* The header, refusing a wrong magic as soon as it shows. */
        for (;;) {
                r = nl_header_decode(buf, n, &h);
                if (r != -EAGAIN)
                        break;
                r = read_at_least(s->c, buf, size, &n, n + 1);
                if (r < 0)
                        goto read_failed;
        }
        if (r == -EPROTONOSUPPORT)
                return refuse(s, NL_STATUS_UNSUPPORTED,
                              "unsupported protocol version %u (this server speaks version %u)",
                              h.version, NL_VERSION);
        if (r < 0)
                return refuse(s, NL_STATUS_BAD_REQUEST, "malformed frame header");
        if (h.status != 0)
                return refuse(s, NL_STATUS_BAD_REQUEST, "status must be 0 in a request");
        if (h.type != NL_TYPE_FILE_GET && h.type != NL_TYPE_FILE_STAT && h.type != NL_TYPE_FILE_LIST)
                return refuse(s, NL_STATUS_UNSUPPORTED,
                              "frame type 0x%02x is not a file request (this is a file listener)", h.type);
        if (h.length > NL_FILE_REQUEST_MAX)
                return refuse(s, NL_STATUS_TOO_LONG, "request of %u bytes: more than the %u allowed",
                              h.length, NL_FILE_REQUEST_MAX);

        r = read_at_least(s->c, buf, size, &n, NL_HEADER_SIZE + h.length);
        if (r < 0)
                goto read_failed;

        r = file_request_decode(h.type, buf + NL_HEADER_SIZE, h.length, &req);
        if (r < 0)
                return refuse(s, nl_status_from_errno(r), "%s", req.problem ? req.problem : "bad request");

        /* From here on the path is named in the log: raw bytes checked as
         * printable UTF-8 first, escaped on stderr. */
        const char *problem = NULL;
        bool allow_empty = h.type == NL_TYPE_FILE_LIST || h.type == NL_TYPE_FILE_STAT;
        r = file_path_check(req.path, req.path_len, allow_empty, s->o->hide_dotfiles, &problem);
        if (r == 0 || r == -ENOENT) {
                s->entry.file = req.path_len ? req.path : (const uint8_t *) ".";
                s->entry.file_len = req.path_len ? req.path_len : 1;
        }
        if (h.type == NL_TYPE_FILE_GET) {
                s->entry.has_offset = true;
                s->entry.offset = req.offset;
        }
        if (r == -ENOENT)
                return refuse(s, NL_STATUS_NOT_FOUND, "cannot open: no such file or directory");
        if (r < 0) {
                int k = refuse(s, nl_status_from_errno(r), "%s", problem);
                /* The log (not the client, who knows) gets the path, escaped. */
                size_t len = strlen(s->detail);
                char esc[200];
                text_escape(esc, sizeof esc, req.path, req.path_len);
                (void) xsnprintf(s->detail + len, sizeof s->detail - len, ": \"%s\"", esc);
                return k;
        }

        /* The request is in: a download may now take as long as it
         * progresses.  The total deadline bounded receiving the request
         * (slow-header clients); the idle timeout bounds every step of the
         * transfer. */
        s->c->deadline_usec = UINT64_MAX;

        switch (h.type) {
        case NL_TYPE_FILE_GET:
                return serve_get(s, &req);
        case NL_TYPE_FILE_STAT:
                return serve_stat(s, &req);
        default:
                return serve_list(s, &req);
        }

read_failed:
        if (r == -ETIMEDOUT)
                return refuse(s, NL_STATUS_TIMEOUT, "the request did not arrive in time");
        if (r == -EPIPE)
                /* Half-closed inside the request: answer anyway, the client
                 * may still be reading. */
                return refuse(s, NL_STATUS_BAD_REQUEST, "%s",
                              n < NL_HEADER_SIZE ? "connection closed inside the frame header"
                                                 : "connection closed before the whole request arrived");
        session_result(s, "io-error", LOG_NOTICE, "reading the request failed: %s", strerror(-r));
        return r;
}

static int svc_file_serve(struct conn *c)
{
        const struct file_options *o = c->listener->options;
        uint8_t buf[NL_HEADER_SIZE + NL_FILE_REQUEST_MAX];
        struct file_session s = {
                .c = c,
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
                r = serve_netlab(&s, buf, sizeof buf, n);
        else if (r == 0 && buf[0] >= '0' && buf[0] <= '9') {
                if (o->lab_file)
                        return svc_lab_download_serve(c, o, buf, n); /* logs on its own */
                /* The lab client writes every byte it receives into its
                 * file, so it gets no error text: a close, and the log. */
                session_result(&s, "not-permitted", LOG_NOTICE,
                               "a lab download request, but this listener has no lab_file");
        } else if (r == 0) {
                static const char text[] = "error: not a netlab file request\n";
                (void) conn_write_all(c, text, strlen(text));
                session_result(&s, "bad-request", LOG_NOTICE, "not a netlab file request");
        } else if (r == -EPIPE) {
                session_result(&s, "no-request", LOG_INFO, "client closed without sending a request");
                r = 0;
        } else if (r == -ETIMEDOUT) {
                /* Nothing arrived, so the form is unknown: a line, as the
                 * message service does (a lab client never gets here: it
                 * sends at once). */
                static const char text[] = "error: no request arrived in time\n";
                (void) conn_write_all(c, text, strlen(text));
                session_result(&s, "timeout", LOG_NOTICE, "no request arrived in time");
        } else {
                session_result(&s, "io-error", LOG_NOTICE, "reading the request failed: %s", strerror(-r));
        }

        if (!s.entry.result)
                session_result(&s, r < 0 ? "io-error" : "ok", r < 0 ? LOG_NOTICE : LOG_INFO, NULL);
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
        .keys = file_keys,
        .options_size = sizeof(struct file_options),
        .options_check = file_options_check,
        .serve_stream = svc_file_serve,
        .refuse_stream = svc_file_refuse,
        .refuse_wants_first_byte = true,
};
