/* svc-file.c: the file service's options and request checks, shared by the
 * TCP service (svc-file-tcp.c) and the UDP transfers (svc-file-udp.c,
 * xfer-send.c); see svc-file.h.
 *
 * Runs in the forked child (and, for the options, in the config loader).
 * Trusts nothing in the request: the path is checked lexically, then opened
 * only beneath the root (fileroot.c); the resume conditions are checked
 * against the opened file's own fstat(); every refusal has one text here,
 * whichever transport carries it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "digest.h"
#include "fileroot.h"
#include "log.h"
#include "proto.h"
#include "svc-file.h"
#include "util.h"

/* ---- options ---- */

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

#define FILE_KEY_ROOT                                                                             \
        { .name = "root", .type = CONFIG_KEY_STRING, .min = 1, .max = 4096, .required = true,     \
          .offset = offsetof(struct file_options, root), .check = check_root,                     \
          .doc = "directory served; nothing outside it can be reached (required)" }
#define FILE_KEY_HIDE_DOTFILES                                                                    \
        { .name = "hide_dotfiles", .type = CONFIG_KEY_BOOL,                                       \
          .offset = offsetof(struct file_options, hide_dotfiles), .default_int = 1,               \
          .doc = "names starting with a dot are neither listed nor served" }
#define FILE_KEY_RESOLVE                                                                          \
        { .name = "resolve", .type = CONFIG_KEY_ENUM, .choices = "auto|walk",                     \
          .offset = offsetof(struct file_options, resolve), .default_str = "auto",                \
          .doc = "auto: openat2(RESOLVE_BENEATH), walking the path when the kernel lacks it; "    \
                 "walk: always walk one component at a time, refusing every symlink" }

const struct config_key file_tcp_keys[] = {
        FILE_KEY_ROOT,
        { .name = "lab_file", .type = CONFIG_KEY_STRING, .min = 1, .max = NL_PATH_MAX,
          .offset = offsetof(struct file_options, lab_file), .check = check_lab_file,
          .doc = "file under root that the lab's broken-download client gets on this listener "
                 "(unset: lab clients are refused)" },
        FILE_KEY_HIDE_DOTFILES,
        FILE_KEY_RESOLVE,
        {}
};

#define FILE_UDP_INT(field, lo, hi, def, text)                                                    \
        { .name = #field, .type = CONFIG_KEY_INT, .min = (lo), .max = (hi),                       \
          .offset = offsetof(struct file_options, field), .default_int = (def), .doc = (text) }

const struct config_key file_udp_keys[] = {
        FILE_KEY_ROOT,
        FILE_KEY_HIDE_DOTFILES,
        FILE_KEY_RESOLVE,
        FILE_UDP_INT(block_size_max, NL_XFER_BLOCK_MIN, NL_XFER_BLOCK_MAX, NL_XFER_BLOCK_MAX,
                     "udp: largest block (file bytes per datagram) a transfer uses; the path MTU "
                     "and the client may make it smaller"),
        FILE_UDP_INT(window_max, 16, NL_XFER_WINDOW_MAX, 4096,
                     "udp: most blocks a transfer has in flight (the client may ask for fewer)"),
        FILE_UDP_INT(max_transfers, 1, 65536, 64,
                     "udp: transfers running at once on this listener (limits.max_children "
                     "still applies)"),
        FILE_UDP_INT(max_transfers_per_source, 1, 65536, 4,
                     "udp: transfers running at once on this listener for one client address"),
        {}
};

const char *file_options_check(void *options, char *buf, size_t size)
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

/* ---- sessions ---- */

static void session_refusev(struct file_session *s, unsigned status, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
static void session_refusev(struct file_session *s, unsigned status, const char *fmt, va_list ap)
{
        (void) vsnprintf(s->text, sizeof s->text, fmt, ap); /* a cut text is fine */
        (void) xsnprintf(s->detail, sizeof s->detail, "%s", s->text);
        s->status = status;
        s->entry.detail = s->detail;
        s->entry.result = nl_status_name(status);
        s->entry.priority = LOG_NOTICE;
}

void file_session_refuse(struct file_session *s, unsigned status, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        session_refusev(s, status, fmt, ap);
        va_end(ap);
}

void file_session_result(struct file_session *s, const char *result, int priority, const char *fmt, ...)
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

int file_session_check_path(struct file_session *s, const struct file_request *req)
{
        /* From here on the path is named in the log: raw bytes checked as
         * printable UTF-8 first, escaped on stderr. */
        const char *problem = NULL;
        bool allow_empty = req->type == NL_TYPE_FILE_LIST || req->type == NL_TYPE_FILE_STAT;
        int r = file_path_check(req->path, req->path_len, allow_empty, s->o->hide_dotfiles, &problem);

        if (r == 0 || r == -ENOENT) {
                s->entry.file = req->path_len ? req->path : (const uint8_t *) ".";
                s->entry.file_len = req->path_len ? req->path_len : 1;
        }
        if (req->type == NL_TYPE_FILE_GET) {
                s->entry.has_offset = true;
                s->entry.offset = req->offset;
        }
        if (r == -ENOENT) {
                file_session_refuse(s, NL_STATUS_NOT_FOUND, "cannot open: no such file or directory");
                return r;
        }
        if (r < 0) {
                file_session_refuse(s, nl_status_from_errno(r), "%s", problem);
                /* The log (not the client, who knows) gets the path, escaped. */
                size_t len = strlen(s->detail);
                char esc[200];
                text_escape(esc, sizeof esc, req->path, req->path_len);
                (void) xsnprintf(s->detail + len, sizeof s->detail - len, ": \"%s\"", esc);
                return r;
        }
        return 0;
}

/* Map a fileroot_open() failure to the client's status and text. */
static void refuse_open(struct file_session *s, int err, const char *what)
{
        switch (err) {
        case -ENOENT:
        case -ENOTDIR:
                file_session_refuse(s, NL_STATUS_NOT_FOUND, "%s: no such file or directory", what);
                return;
        case -EXDEV:
                file_session_refuse(s, NL_STATUS_NOT_PERMITTED, "%s: the path leads outside the root", what);
                return;
        case -ELOOP:
                file_session_refuse(s, NL_STATUS_NOT_PERMITTED, "%s: symbolic links are not followed here",
                                    what);
                return;
        case -EPERM:
                file_session_refuse(s, NL_STATUS_NOT_PERMITTED, "%s", what);
                return;
        case -EACCES:
                file_session_refuse(s, NL_STATUS_NOT_PERMITTED, "%s: permission denied", what);
                return;
        case -EAGAIN:
                file_session_refuse(s, NL_STATUS_BUSY, "%s: the directory is being renamed, try again", what);
                return;
        case -ENAMETOOLONG:
                file_session_refuse(s, NL_STATUS_TOO_LONG, "%s: name too long", what);
                return;
        default:
                file_session_refuse(s, NL_STATUS_INTERNAL, "%s: cannot open: %s", what, strerror(-err));
                s->entry.priority = LOG_ERR;
                return;
        }
}

int file_session_open(struct file_session *s, const struct file_request *req, enum fileroot_want want,
                      struct stat *st)
{
        _cleanup_close_ int root_fd = -1;
        int fd;

        root_fd = fileroot_open_root(s->o->root);
        if (root_fd < 0) {
                /* The admin's problem, not the client's: say little to the
                 * client, everything to the log. */
                file_session_refuse(s, NL_STATUS_INTERNAL, "the file root is not available");
                file_session_result(s, "internal-error", LOG_ERR, "root %s: %s", s->o->root,
                                    strerror(-root_fd));
                return root_fd;
        }
        fd = fileroot_open(root_fd, req->path, req->path_len, s->o->resolve_mode, want, st);
        if (fd < 0) {
                const char *what = want == FILEROOT_WANT_DIRECTORY ? "not a directory"
                                   : want == FILEROOT_WANT_FILE    ? "not a regular file"
                                                                   : "not a file or directory";
                refuse_open(s, fd, fd == -EPERM ? what : "cannot open");
        }
        return fd;
}

uint8_t file_kind_of(mode_t mode)
{
        if (S_ISREG(mode))
                return FILE_KIND_REGULAR;
        if (S_ISDIR(mode))
                return FILE_KIND_DIRECTORY;
        if (S_ISLNK(mode))
                return FILE_KIND_SYMLINK;
        return FILE_KIND_OTHER;
}

void file_info_from_stat(const struct stat *st, struct file_info *info)
{
        *info = (struct file_info) {
                .kind = file_kind_of(st->st_mode),
                .size = S_ISREG(st->st_mode) && st->st_size > 0 ? (uint64_t) st->st_size : 0,
                .mtime_sec = (int64_t) st->st_mtim.tv_sec,
                .mtime_nsec = (uint32_t) st->st_mtim.tv_nsec,
        };
        fileroot_validator(st, info->validator);
}

int file_get_prepare(struct file_session *s, const struct file_request *req, struct file_info *info)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        fd = file_session_open(s, req, FILEROOT_WANT_FILE, &st);
        if (fd < 0)
                return fd;

        file_info_from_stat(&st, info);
        if (req->has_validator && memcmp(req->validator, info->validator, NL_VALIDATOR_SIZE) != 0) {
                file_session_refuse(s, NL_STATUS_CHANGED,
                                    "the file changed on the server since the partial download "
                                    "(now %llu bytes)", (unsigned long long) info->size);
                return -ESTALE;
        }
        if (req->offset > info->size) {
                file_session_refuse(s, NL_STATUS_RANGE, "offset %llu is past the end of the file (%llu bytes)",
                                    (unsigned long long) req->offset, (unsigned long long) info->size);
                return -ERANGE;
        }
        if (req->tail_len > 0) {
                uint8_t tail[NL_DIGEST_SIZE];

                r = digest_fd_range(fd, req->offset - req->tail_len, req->tail_len, tail);
                if (r == -ENODATA) {
                        file_session_refuse(s, NL_STATUS_CHANGED, "the file shrank while it was being checked");
                        return -ESTALE;
                }
                if (r < 0) {
                        file_session_refuse(s, NL_STATUS_INTERNAL, "reading the file failed: %s", strerror(-r));
                        s->entry.priority = LOG_ERR;
                        return r;
                }
                if (memcmp(tail, req->tail_hash, NL_DIGEST_SIZE) != 0) {
                        file_session_refuse(s, NL_STATUS_MISMATCH,
                                            "the %u bytes before offset %llu differ from the server's",
                                            req->tail_len, (unsigned long long) req->offset);
                        return -EBADMSG;
                }
        }

        info->offset = req->offset;
        info->length = info->size - req->offset;
        if (req->flags & FILE_GET_DIGEST)
                info->flags |= FILE_INFO_DIGEST_FOLLOWS;
        return TAKE_FD(fd);
}

int file_get_verify(struct file_session *s, int fd, const struct file_request *req,
                    const struct file_info *info, uint64_t sent, uint8_t digest[NL_DIGEST_SIZE])
{
        static const char changed_text[] = "the file changed on the server during the transfer";
        uint8_t validator[NL_VALIDATOR_SIZE];
        struct stat after;
        bool changed;
        int r;

        /* Same file, same contents as when we started?  Checked after the
         * data, and again after hashing, which takes time of its own. */
        if (fstat(fd, &after) < 0) {
                r = -errno;
                file_session_refuse(s, NL_STATUS_INTERNAL, "checking the file failed");
                file_session_result(s, "internal-error", LOG_ERR, "fstat: %s", strerror(-r));
                return r;
        }
        fileroot_validator(&after, validator);
        changed = memcmp(validator, info->validator, NL_VALIDATOR_SIZE) != 0;
        if (!changed && (req->flags & FILE_GET_DIGEST)) {
                r = digest_fd_range(fd, 0, info->size, digest);
                if (r == -ENODATA)
                        changed = true;
                else if (r < 0) {
                        file_session_refuse(s, NL_STATUS_INTERNAL, "hashing the file failed");
                        file_session_result(s, "internal-error", LOG_ERR, "hashing failed: %s", strerror(-r));
                        return r;
                }
                if (!changed && fstat(fd, &after) == 0) {
                        fileroot_validator(&after, validator);
                        changed = memcmp(validator, info->validator, NL_VALIDATOR_SIZE) != 0;
                }
        }
        if (changed) {
                file_session_refuse(s, NL_STATUS_CHANGED, "%s", changed_text);
                file_session_result(s, "changed", LOG_WARNING, "%s (%llu bytes sent)", changed_text,
                                    (unsigned long long) sent);
                return -ESTALE;
        }
        return 0;
}

void file_session_shrank(struct file_session *s, uint64_t sent, uint64_t length)
{
        file_session_refuse(s, NL_STATUS_CHANGED, "the file changed on the server during the transfer");
        file_session_result(s, "changed", LOG_WARNING,
                            "the file shrank during the transfer: %llu of %llu bytes sent",
                            (unsigned long long) sent, (unsigned long long) length);
}
