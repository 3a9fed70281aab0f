/* proto-file.c: the file service's frames and the request path rules.
 *
 * Pure: no I/O.  Every decoder reads the frame body through the bounded
 * cursor, refuses unknown flags and trailing bytes, and borrows strings from
 * the body (length-delimited, never NUL-terminated) for the caller to check. */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "util.h"
#include "wire.h"

int file_path_check(const uint8_t *path, size_t n, bool allow_empty, bool hide_dotfiles,
                    const char **ret_problem)
{
        const char *problem = NULL;
        size_t start = 0;

        if (n > NL_PATH_MAX) {
                *ret_problem = "path too long";
                return -E2BIG;
        }
        if (n == 0) {
                if (allow_empty)
                        return 0;
                *ret_problem = "empty path";
                return -EBADMSG;
        }
        if (path[0] == '/') {
                *ret_problem = "absolute path (paths are relative to the root)";
                return -EBADMSG;
        }
        for (size_t i = 0; i < n; i++) {
                if (path[i] == 0) {
                        *ret_problem = "NUL byte in path";
                        return -EBADMSG;
                }
                if (path[i] < 0x20 || path[i] == 0x7f) {
                        *ret_problem = "control character in path";
                        return -EBADMSG;
                }
        }
        if (text_check(path, n, NULL) < 0) {
                *ret_problem = "path is not valid UTF-8";
                return -EBADMSG;
        }

        /* Walk the components; "a//b", "a/./b", "a/../b" and a trailing "/"
         * are refused, not normalised: a name means exactly one file. */
        for (size_t i = 0; i <= n; i++) {
                if (i < n && path[i] != '/')
                        continue;

                size_t len = i - start;
                const uint8_t *c = path + start;

                if (len == 0)
                        problem = "empty path component (\"//\" or a trailing \"/\")";
                else if (len > NL_NAME_MAX)
                        problem = "path component longer than 255 bytes";
                else if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
                        problem = "\".\" or \"..\" in path";
                else if (hide_dotfiles && c[0] == '.') {
                        *ret_problem = "hidden file";
                        return -ENOENT;
                }
                if (problem) {
                        *ret_problem = problem;
                        return -EBADMSG;
                }
                start = i + 1;
        }
        return 0;
}

static int bad(struct file_request *req, const char *problem)
{
        req->problem = problem;
        return -EBADMSG;
}

int file_request_decode(uint8_t type, const uint8_t *body, size_t n, struct file_request *ret)
{
        struct wire_reader r;
        uint16_t path_len = 0;
        uint8_t validator_len = 0;

        *ret = (struct file_request) { .type = type };
        if (type != NL_TYPE_FILE_GET && type != NL_TYPE_FILE_STAT && type != NL_TYPE_FILE_LIST) {
                ret->problem = "not a file request";
                return -EOPNOTSUPP;
        }
        if (n > NL_FILE_REQUEST_MAX) {
                ret->problem = "request too long";
                return -E2BIG;
        }

        wire_reader_init(&r, body, n);
        if (type == NL_TYPE_FILE_GET) {
                if (wire_get_u8(&r, &ret->flags) < 0 || wire_get_u64be(&r, &ret->offset) < 0 ||
                    wire_get_u8(&r, &validator_len) < 0)
                        return bad(ret, "truncated GET request");
                if (ret->flags & ~_FILE_GET_FLAGS_ALL)
                        return bad(ret, "unknown GET flags");
                if (ret->offset > INT64_MAX)
                        return bad(ret, "offset out of range");
                if (validator_len != 0 && validator_len != NL_VALIDATOR_SIZE)
                        return bad(ret, "validator must be 0 or 32 bytes");
                if (validator_len > 0) {
                        if (wire_get_bytes(&r, ret->validator, NL_VALIDATOR_SIZE) < 0)
                                return bad(ret, "truncated validator");
                        ret->has_validator = true;
                }
                if (wire_get_u32be(&r, &ret->tail_len) < 0)
                        return bad(ret, "truncated GET request");
                if (ret->tail_len > NL_TAIL_MAX)
                        return bad(ret, "tail hash covers more than 1 MiB");
                if (ret->tail_len > ret->offset)
                        return bad(ret, "tail hash covers bytes before the start of the file");
                if (ret->tail_len > 0 && wire_get_bytes(&r, ret->tail_hash, NL_DIGEST_SIZE) < 0)
                        return bad(ret, "truncated tail hash");
        }

        if (wire_get_u16be(&r, &path_len) < 0)
                return bad(ret, "truncated path length");
        if (path_len > NL_PATH_MAX) {
                ret->problem = "path too long";
                return -E2BIG;
        }
        if (wire_get_view(&r, path_len, &ret->path) < 0)
                return bad(ret, "truncated path");
        ret->path_len = path_len;
        if (wire_reader_remaining(&r) != 0)
                return bad(ret, "trailing bytes after the request");
        return 0;
}

int file_request_encode(uint8_t *dst, size_t size, const struct file_request *req)
{
        uint8_t body[NL_FILE_REQUEST_MAX];
        struct wire_writer w;

        if (req->type != NL_TYPE_FILE_GET && req->type != NL_TYPE_FILE_STAT &&
            req->type != NL_TYPE_FILE_LIST)
                return -EINVAL;
        if (req->path_len > NL_PATH_MAX || (req->path_len > 0 && !req->path))
                return -EINVAL;

        wire_writer_init(&w, body, sizeof body);
        if (req->type == NL_TYPE_FILE_GET) {
                if ((req->flags & ~_FILE_GET_FLAGS_ALL) || req->offset > INT64_MAX ||
                    req->tail_len > NL_TAIL_MAX || req->tail_len > req->offset)
                        return -EINVAL;
                if (wire_put_u8(&w, req->flags) < 0 || wire_put_u64be(&w, req->offset) < 0 ||
                    wire_put_u8(&w, req->has_validator ? NL_VALIDATOR_SIZE : 0) < 0 ||
                    (req->has_validator && wire_put_bytes(&w, req->validator, NL_VALIDATOR_SIZE) < 0) ||
                    wire_put_u32be(&w, req->tail_len) < 0 ||
                    (req->tail_len > 0 && wire_put_bytes(&w, req->tail_hash, NL_DIGEST_SIZE) < 0))
                        return -ENOBUFS;
        }
        if (wire_put_u16be(&w, (uint16_t) req->path_len) < 0 ||
            wire_put_bytes(&w, req->path, req->path_len) < 0)
                return -ENOBUFS;
        return nl_frame_encode(dst, size, req->type, 0, body, w.pos);
}

int file_info_encode(uint8_t *dst, size_t size, const struct file_info *info)
{
        struct wire_writer w;

        wire_writer_init(&w, dst, size);
        if (wire_put_u8(&w, info->kind) < 0 || wire_put_u8(&w, info->flags) < 0 ||
            wire_put_u64be(&w, info->size) < 0 || wire_put_u64be(&w, info->offset) < 0 ||
            wire_put_u64be(&w, info->length) < 0 ||
            wire_put_u64be(&w, (uint64_t) info->mtime_sec) < 0 ||
            wire_put_u32be(&w, info->mtime_nsec) < 0 ||
            wire_put_bytes(&w, info->validator, NL_VALIDATOR_SIZE) < 0)
                return -ENOBUFS;
        return (int) w.pos;
}

int file_info_decode(const uint8_t *body, size_t n, struct file_info *ret)
{
        struct wire_reader r;
        struct file_info info = {};
        uint64_t mtime;

        if (n != NL_INFO_SIZE)
                return -EBADMSG;
        wire_reader_init(&r, body, n);
        if (wire_get_u8(&r, &info.kind) < 0 || wire_get_u8(&r, &info.flags) < 0 ||
            wire_get_u64be(&r, &info.size) < 0 || wire_get_u64be(&r, &info.offset) < 0 ||
            wire_get_u64be(&r, &info.length) < 0 || wire_get_u64be(&r, &mtime) < 0 ||
            wire_get_u32be(&r, &info.mtime_nsec) < 0 ||
            wire_get_bytes(&r, info.validator, NL_VALIDATOR_SIZE) < 0)
                return -EBADMSG;
        info.mtime_sec = (int64_t) mtime;
        if (info.kind != FILE_KIND_REGULAR && info.kind != FILE_KIND_DIRECTORY)
                return -EBADMSG;
        if (info.flags & ~FILE_INFO_DIGEST_FOLLOWS)
                return -EBADMSG;
        if (info.offset > info.size || info.length > info.size - info.offset)
                return -EBADMSG;
        if (info.mtime_nsec >= 1000000000u)
                return -EBADMSG;
        *ret = info;
        return 0;
}

int file_end_encode(uint8_t *dst, size_t size, const uint8_t *digest)
{
        struct wire_writer w;

        wire_writer_init(&w, dst, size);
        if (wire_put_u8(&w, digest ? NL_DIGEST_SIZE : 0) < 0 ||
            (digest && wire_put_bytes(&w, digest, NL_DIGEST_SIZE) < 0))
                return -ENOBUFS;
        return (int) w.pos;
}

int file_end_decode(const uint8_t *body, size_t n, bool *ret_has_digest,
                    uint8_t ret_digest[NL_DIGEST_SIZE])
{
        struct wire_reader r;
        uint8_t len, digest[NL_DIGEST_SIZE];

        wire_reader_init(&r, body, n);
        if (wire_get_u8(&r, &len) < 0 || (len != 0 && len != NL_DIGEST_SIZE))
                return -EBADMSG;
        if (len > 0 && wire_get_bytes(&r, digest, NL_DIGEST_SIZE) < 0)
                return -EBADMSG;
        if (wire_reader_remaining(&r) != 0)
                return -EBADMSG;
        if (len > 0)
                memcpy(ret_digest, digest, NL_DIGEST_SIZE);
        *ret_has_digest = len > 0;
        return 0;
}

int file_entry_put(struct wire_writer *w, const struct file_entry *e)
{
        if (e->name_len == 0 || e->name_len > NL_NAME_MAX)
                return -EINVAL;
        if (w->size - w->pos < FILE_ENTRY_FIXED + e->name_len)
                return -ENOBUFS;
        if (wire_put_u8(w, e->kind) < 0 || wire_put_u64be(w, e->size) < 0 ||
            wire_put_u64be(w, (uint64_t) e->mtime_sec) < 0 ||
            wire_put_u16be(w, (uint16_t) e->name_len) < 0 ||
            wire_put_bytes(w, e->name, e->name_len) < 0)
                return -ENOBUFS; /* cannot happen after the size check */
        return 0;
}

int file_entry_next(struct wire_reader *r, struct file_entry *ret)
{
        struct wire_reader save = *r;
        struct file_entry e = {};
        uint64_t mtime;
        uint16_t len;

        if (wire_reader_remaining(r) == 0)
                return 0;
        if (wire_get_u8(r, &e.kind) < 0 || wire_get_u64be(r, &e.size) < 0 ||
            wire_get_u64be(r, &mtime) < 0 || wire_get_u16be(r, &len) < 0 ||
            len == 0 || len > NL_NAME_MAX || wire_get_view(r, len, &e.name) < 0 ||
            e.kind < FILE_KIND_REGULAR || e.kind > FILE_KIND_OTHER) {
                *r = save;
                return -EBADMSG;
        }
        e.mtime_sec = (int64_t) mtime;
        e.name_len = len;
        *ret = e;
        return 1;
}
