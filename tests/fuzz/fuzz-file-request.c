/* fuzz-file-request.c: the file service's frames (common/proto-file.c):
 * the request a TCP client (or a UDP REQUEST's body) sends to netlabd, the
 * path rules, and the answers netlabctl reads from a server it does not
 * trust (FILE_INFO, FILE_END, FILE_ENTRIES).
 *
 * Input: byte 0 picks the decoder; for a request, byte 1 the frame type
 * (GET, STAT, LIST or the raw byte); the rest is the frame body.  Checked:
 *   - only the documented results, a problem on every refused request;
 *   - a decoded request's path lies inside the body, and encoding the
 *     request gives back a frame whose header is right and whose body is
 *     the input byte for byte (the encoding is unique: no trailing bytes,
 *     a validator of 0 or 32 bytes, a tail hash only with a tail length);
 *   - file_path_check() results match independent checks (relative, no
 *     empty, "." or ".." component, no control byte), and hiding dotfiles
 *     never accepts what showing them refuses;
 *   - FILE_INFO, FILE_END and every FILE_ENTRIES entry re-encode to the
 *     bytes they were decoded from. */
#include <errno.h>

#include "fuzz.h"
#include "proto.h"
#include "util.h"
#include "wire.h"

enum mode {
        MODE_REQUEST,
        MODE_INFO,
        MODE_END,
        MODE_ENTRIES,
        _MODE_MAX,
};

static void check_path(const uint8_t *path, size_t n)
{
        const char *problem = NULL;
        int r[4];

        for (int i = 0; i < 4; i++) {
                bool allow_empty = i & 1, hide = i & 2;

                problem = NULL;
                r[i] = file_path_check(path, n, allow_empty, hide, &problem);
                fuzz_check(FUZZ_RC_IN(r[i], 0, -EBADMSG, -E2BIG, -ENOENT), "path r=%d", r[i]);
                fuzz_check(r[i] == 0 || problem != NULL, "path refused without a problem");
                fuzz_check(r[i] != -ENOENT || hide, "-ENOENT without hide_dotfiles");
        }
        /* Hiding dotfiles only ever refuses more. */
        fuzz_check(!(r[2] == 0 && r[0] != 0) && !(r[3] == 0 && r[1] != 0), "hide accepted more");
        if (n == 0) {
                fuzz_check(r[1] == 0 && r[0] == -EBADMSG, "empty path: %d %d", r[0], r[1]);
                return;
        }
        if (r[0] != 0)
                return;

        /* Accepted: check the rules independently. */
        fuzz_check(n <= NL_PATH_MAX && path[0] != '/' && path[n - 1] != '/', "bad ends");
        fuzz_check(text_check(path, n, NULL) == 0, "not text");
        for (size_t start = 0, i = 0; i <= n; i++) {
                if (i < n && path[i] != '/')
                        continue;
                size_t len = i - start;
                fuzz_check(len > 0 && len <= NL_NAME_MAX, "component length %zu", len);
                fuzz_check(!(len == 1 && path[start] == '.') &&
                                   !(len == 2 && path[start] == '.' && path[start + 1] == '.'),
                           "dot component accepted");
                if (r[2] == 0)
                        fuzz_check(path[start] != '.', "dotfile accepted with hide_dotfiles");
                start = i + 1;
        }
}

static void check_request(uint8_t type, const uint8_t *body, size_t n)
{
        struct file_request req;
        struct nl_header h;
        uint8_t *frame;
        size_t size = NL_HEADER_SIZE + NL_FILE_REQUEST_MAX;
        int r;

        r = file_request_decode(type, body, n, &req);
        fuzz_check(FUZZ_RC_IN(r, 0, -EBADMSG, -E2BIG, -EOPNOTSUPP), "r=%d", r);
        fuzz_check(req.type == type, "type not kept");
        if (r < 0) {
                fuzz_check(req.problem != NULL, "refused without a problem");
                if (r == -EOPNOTSUPP)
                        fuzz_check(type != NL_TYPE_FILE_GET && type != NL_TYPE_FILE_STAT &&
                                           type != NL_TYPE_FILE_LIST,
                                   "a file request type refused as unsupported");
                return;
        }

        fuzz_check(fuzz_inside(req.path, req.path_len, body, n), "path outside the body");
        fuzz_check(req.path_len <= NL_PATH_MAX, "path_len %zu", req.path_len);
        if (type == NL_TYPE_FILE_GET) {
                fuzz_check(!(req.flags & ~_FILE_GET_FLAGS_ALL) && req.offset <= INT64_MAX &&
                                   req.tail_len <= NL_TAIL_MAX && req.tail_len <= req.offset,
                           "GET fields out of range");
        }
        check_path(req.path, req.path_len);

        frame = malloc(size);
        fuzz_check(frame != NULL, "malloc");
        r = file_request_encode(frame, size, &req);
        fuzz_check(r == (int) (NL_HEADER_SIZE + n), "encode %d for a %zu-byte body", r, n);
        fuzz_check(nl_header_decode(frame, (size_t) r, &h) == 0 && h.type == type && h.status == 0 &&
                           h.length == n,
                   "encoded header");
        fuzz_check(memcmp(frame + NL_HEADER_SIZE, body, n) == 0, "re-encoded body differs");

        /* Too small a buffer: refused, never overrun (ASan watches). */
        uint8_t *tight = malloc((size_t) r - 1);
        fuzz_check(tight != NULL, "malloc");
        fuzz_check(file_request_encode(tight, (size_t) r - 1, &req) == -ENOBUFS, "short buffer");
        free(tight);
        free(frame);
}

static void check_info(const uint8_t *body, size_t n)
{
        struct file_info info;
        uint8_t out[NL_INFO_SIZE];
        int r = file_info_decode(body, n, &info);

        fuzz_check(FUZZ_RC_IN(r, 0, -EBADMSG), "r=%d", r);
        if (r < 0)
                return;
        fuzz_check(n == NL_INFO_SIZE && info.offset <= info.size &&
                           info.length <= info.size - info.offset && info.mtime_nsec < 1000000000u,
                   "FILE_INFO fields out of range");
        r = file_info_encode(out, sizeof out, &info);
        fuzz_check(r == (int) NL_INFO_SIZE && memcmp(out, body, n) == 0, "FILE_INFO re-encoded: %d", r);
        fuzz_check(file_info_encode(out, sizeof out - 1, &info) == -ENOBUFS, "short buffer");
}

static void check_end(const uint8_t *body, size_t n)
{
        uint8_t digest[NL_DIGEST_SIZE], out[1 + NL_DIGEST_SIZE];
        bool has = false;
        int r = file_end_decode(body, n, &has, digest);

        fuzz_check(FUZZ_RC_IN(r, 0, -EBADMSG), "r=%d", r);
        if (r < 0)
                return;
        r = file_end_encode(out, sizeof out, has ? digest : NULL);
        fuzz_check(r >= 0 && (size_t) r == n && memcmp(out, body, n) == 0, "FILE_END re-encoded: %d", r);
}

static void check_entries(const uint8_t *body, size_t n)
{
        struct wire_reader rd;
        struct wire_writer w;
        struct file_entry e;
        uint8_t *out = malloc(n > 0 ? n : 1);
        int r;

        fuzz_check(out != NULL, "malloc");
        memset(out, 0xa5, n);

        wire_reader_init(&rd, body, n);
        wire_writer_init(&w, out, n);
        for (;;) {
                size_t before = rd.pos;

                r = file_entry_next(&rd, &e);
                fuzz_check(FUZZ_RC_IN(r, 1, 0, -EBADMSG), "r=%d", r);
                if (r <= 0) {
                        fuzz_check(rd.pos == before, "the cursor moved on %d", r);
                        fuzz_check(r != 0 || before == n, "end before the end");
                        break;
                }
                fuzz_check(fuzz_inside(e.name, e.name_len, body, n) && e.name_len > 0 &&
                                   e.name_len <= NL_NAME_MAX && e.kind >= FILE_KIND_REGULAR &&
                                   e.kind <= FILE_KIND_OTHER,
                           "entry fields");
                fuzz_check(rd.pos == before + FILE_ENTRY_FIXED + e.name_len, "entry size");
                fuzz_check(file_entry_put(&w, &e) == 0, "entry re-encode");
                fuzz_check(w.pos == rd.pos && memcmp(out + before, body + before, w.pos - before) == 0,
                           "entry re-encoded differently");
        }
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const uint8_t types[] = { NL_TYPE_FILE_GET, NL_TYPE_FILE_STAT, NL_TYPE_FILE_LIST };
        uint8_t *body;
        size_t n;

        if (size < 2)
                return 0;
        n = size - 2;
        body = fuzz_dup(data + 2, n);
        switch (data[0] % _MODE_MAX) {
        case MODE_REQUEST: {
                /* Mostly the three request types, sometimes any byte. */
                uint8_t type = data[1] < 0xf0 ? types[data[1] % 3] : data[1];

                check_request(type, body, n);
                /* The same bytes straight as a path, too. */
                check_path(body, n);
                break;
        }
        case MODE_INFO:
                check_info(body, n);
                break;
        case MODE_END:
                check_end(body, n);
                break;
        case MODE_ENTRIES:
                check_entries(body, n);
                break;
        }
        free(body);
        return 0;
}
