/* test-proto-file.c: the file service's wire formats (common/proto-file.c).
 *
 * file_path_check() against a table of hostile paths, each with its exact
 * return and problem text; file requests decoded at every truncation point
 * and with every malformed field, and encoded and decoded back; FILE_INFO,
 * FILE_END and LIST entries the same way.  Decoders are fed exactly-sized
 * heap copies, so ASan sees any read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "test-util.h"
#include "util.h"
#include "wire.h"

/* Bytes of a string literal, which may hold NULs. */
#define B(s) (const uint8_t *) (s), sizeof(s) - 1

static const char untouched[] = "(untouched)";

/* ---- file_path_check ---- */

#define P_LONG "path too long"
#define P_EMPTY "empty path"
#define P_ABS "absolute path (paths are relative to the root)"
#define P_NUL "NUL byte in path"
#define P_CTRL "control character in path"
#define P_UTF8 "path is not valid UTF-8"
#define P_EMPTY_COMP "empty path component (\"//\" or a trailing \"/\")"
#define P_COMP_LONG "path component longer than 255 bytes"
#define P_DOT "\".\" or \"..\" in path"
#define P_HIDDEN "hidden file"

struct path_case {
        const uint8_t *path;
        size_t len;
        bool allow_empty, hide_dotfiles;
        int r;
        const char *problem; /* NULL: untouched */
};

#define OK(p) { B(p), false, false, 0, NULL }
#define OK_HIDE(p) { B(p), false, true, 0, NULL }
#define BAD(p, text) { B(p), false, false, -EBADMSG, text }
#define BAD_HIDE(p, r, text) { B(p), false, true, r, text }

static const struct path_case path_cases[] = {
        /* Plain names, and names that only look dangerous: nothing is decoded. */
        OK("a"),
        OK("dir/file.txt"),
        OK("a/b/c/d/e/f/g/h"),
        OK("%2e%2e/x"),
        OK("%2e%2e%2fetc%2fpasswd"),
        OK("..%2f"),
        OK("..%2fetc%2fpasswd"),
        OK("%00"),
        OK("..\\..\\x"),
        OK("..\\"),
        OK("C:\\Windows"),
        OK("..."),
        OK("..../x"),
        OK("a..b"),
        OK("..a"),
        OK("a."),
        OK("~root"),
        OK("$HOME/x"),
        OK("*?[]"),
        OK("a b"),
        OK(" "),
        OK("-rf"),
        OK("\xc3\xa9t\xc3\xa9.txt"),               /* "été.txt" */
        OK("\xe6\x97\xa5\xe6\x9c\xac/\xe8\xaa\x9e"), /* CJK */
        OK("\xf0\x9f\x98\x80"),                   /* U+1F600, 4 bytes */
        OK("\xf4\x8f\xbf\xbf"),                   /* U+10FFFF, the last scalar */
        OK("\xef\xbf\xbd"),                       /* U+FFFD */
        OK("\xe2\x80\xae"),                       /* U+202E right-to-left override: text */
        OK(".hidden"),
        OK("dir/.hidden"),
        OK("dir/.git/config"),
        OK_HIDE("visible/also.visible"),
        OK_HIDE("a./b"),

        /* Dotfiles when hidden: "not found", checked component by component. */
        BAD_HIDE(".hidden", -ENOENT, P_HIDDEN),
        BAD_HIDE("dir/.hidden", -ENOENT, P_HIDDEN),
        BAD_HIDE(".git/config", -ENOENT, P_HIDDEN),
        BAD_HIDE("...", -ENOENT, P_HIDDEN),
        BAD_HIDE(".hidden//x", -ENOENT, P_HIDDEN),       /* first component decides */
        BAD_HIDE("a//.hidden", -EBADMSG, P_EMPTY_COMP),
        BAD_HIDE("..", -EBADMSG, P_DOT),                  /* traversal beats hiding */
        BAD_HIDE(".", -EBADMSG, P_DOT),
        BAD_HIDE("dir/../.hidden", -EBADMSG, P_DOT),

        /* Traversal and non-canonical forms: refused, never normalised. */
        BAD(".", P_DOT),
        BAD("..", P_DOT),
        BAD("../x", P_DOT),
        BAD("../../../../etc/passwd", P_DOT),
        BAD("a/../../b", P_DOT),
        BAD("a/../b", P_DOT),
        BAD("a/..", P_DOT),
        BAD("./x", P_DOT),
        BAD("a/./b", P_DOT),
        BAD("a/.", P_DOT),
        BAD("a//b", P_EMPTY_COMP),
        BAD("a/", P_EMPTY_COMP),
        BAD("a/b/", P_EMPTY_COMP),
        BAD("a///", P_EMPTY_COMP),
        BAD("/", P_ABS),
        BAD("/etc/passwd", P_ABS),
        BAD("//x", P_ABS),
        BAD("/../x", P_ABS),
        BAD("/\x01", P_ABS),                      /* absolute is seen first */

        /* NUL and control bytes, C0 to DEL, TAB included. */
        BAD("a\0b", P_NUL),
        BAD("\0", P_NUL),
        BAD("a\0", P_NUL),
        BAD("ok.txt\0/../../etc/passwd", P_NUL),
        BAD("a\x01", P_CTRL),
        BAD("a\tb", P_CTRL),
        BAD("\n", P_CTRL),
        BAD("a\r\nb", P_CTRL),
        BAD("\x1b[31mred", P_CTRL),
        BAD("x\x1f", P_CTRL),
        BAD("\x7f", P_CTRL),
        BAD("dir/\x08\x08\x08x", P_CTRL),
        BAD("\x01\0", P_CTRL),                    /* the first bad byte decides */
        BAD("../\x01", P_CTRL),                   /* bytes before components */

        /* Not UTF-8 text: overlong forms, surrogates, out of range, C1. */
        BAD("\xc0\xae\xc0\xae/x", P_UTF8),        /* overlong "..": never decoded */
        BAD("\xc0\xaf", P_UTF8),                  /* overlong '/' */
        BAD("\xc1\xbf", P_UTF8),
        BAD("\xe0\x80\xae", P_UTF8),              /* 3-byte overlong '.' */
        BAD("\xf0\x80\x80\xaf", P_UTF8),          /* 4-byte overlong '/' */
        BAD("\xed\xa0\x80", P_UTF8),              /* U+D800 */
        BAD("\xed\xbf\xbf", P_UTF8),              /* U+DFFF */
        BAD("\xed\xa0\xbd\xed\xb8\x80", P_UTF8),  /* a surrogate pair, CESU-8 style */
        BAD("\xf4\x90\x80\x80", P_UTF8),          /* U+110000 */
        BAD("\xf8\x88\x80\x80\x80", P_UTF8),      /* 5-byte form */
        BAD("\xff", P_UTF8),
        BAD("\xfe\xff", P_UTF8),
        BAD("\x80", P_UTF8),                      /* lone continuation */
        BAD("a\xe6\x97", P_UTF8),                 /* cut at the end */
        BAD("\xe6\x97/x", P_UTF8),                /* cut before a '/' */
        BAD("\xc3", P_UTF8),
        BAD("\xc2\x80", P_UTF8),                  /* U+0080, a C1 control */
        BAD("\xc2\x85", P_UTF8),                  /* U+0085 NEL */
        BAD("\xc2\x9b", P_UTF8),                  /* U+009B CSI */
        BAD("latin1-\xe9t\xe9", P_UTF8),
        BAD("../\xff", P_UTF8),                   /* bytes before components */

        /* The empty path is the root, only where allowed. */
        { B(""), false, false, -EBADMSG, P_EMPTY },
        { B(""), false, true, -EBADMSG, P_EMPTY },
        { B(""), true, false, 0, NULL },
        { B(""), true, true, 0, NULL },
        { B("a"), true, false, 0, NULL },
        { B(".."), true, false, -EBADMSG, P_DOT },
};

static void check_path(const uint8_t *path, size_t len, bool allow_empty, bool hide, int want_r,
                       const char *want_problem)
{
        char esc[96];
        const char *problem = untouched;
        _cleanup_free_ uint8_t *copy = test_dup_exact(path, len);

        TEST_CASE("path \"%s\" (%zu bytes)%s%s", test_escape(esc, sizeof esc, path, len), len,
                  allow_empty ? " allow_empty" : "", hide ? " hide_dotfiles" : "");
        CHECK_ERR(file_path_check(copy, len, allow_empty, hide, &problem), want_r);
        CHECK_STR(problem, want_problem ? want_problem : untouched);
}

static void test_path_table(void)
{
        for (size_t i = 0; i < ELEMENTSOF(path_cases); i++) {
                const struct path_case *c = &path_cases[i];

                check_path(c->path, c->len, c->allow_empty, c->hide_dotfiles, c->r, c->problem);
                /* Without hide_dotfiles nothing above depends on it, except
                 * the hidden-file refusals themselves. */
                if (c->hide_dotfiles && c->r != -ENOENT)
                        check_path(c->path, c->len, c->allow_empty, false, c->r, c->problem);
        }
}

/* Length limits: the path (4096) and each component (255). */
static void test_path_lengths(void)
{
        static uint8_t buf[NL_PATH_MAX + 2];

        memset(buf, 'n', sizeof buf);
        check_path(buf, NL_NAME_MAX, false, false, 0, NULL);
        check_path(buf, NL_NAME_MAX + 1, false, false, -EBADMSG, P_COMP_LONG);

        /* "d/" + 255 and "d/" + 256. */
        buf[1] = '/';
        check_path(buf, 2 + NL_NAME_MAX, false, false, 0, NULL);
        check_path(buf, 2 + NL_NAME_MAX + 1, false, false, -EBADMSG, P_COMP_LONG);

        /* 4096 and 4097 bytes of 200-byte components. */
        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (i % 201 == 200) ? '/' : 'p';
        check_path(buf, NL_PATH_MAX, false, false, 0, NULL);
        check_path(buf, NL_PATH_MAX + 1, false, false, -E2BIG, P_LONG);
        check_path(buf, NL_PATH_MAX + 1, true, true, -E2BIG, P_LONG);

        /* Too long is decided before anything else in it. */
        memset(buf, '\0', sizeof buf);
        check_path(buf, NL_PATH_MAX + 1, false, false, -E2BIG, P_LONG);
        buf[0] = '/';
        check_path(buf, NL_PATH_MAX + 1, false, false, -E2BIG, P_LONG);
        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = "../"[i % 3];
        check_path(buf, NL_PATH_MAX, false, false, -EBADMSG, P_DOT);
        check_path(buf, NL_PATH_MAX + 1, false, false, -E2BIG, P_LONG);
}

/* ---- file_request_decode / _encode ---- */

/* A GET with every field present:
 *   0  1 flags (DIGEST)        1  8 offset 65536          9  1 validator length 32
 *  10 32 validator (0xa0..)   42  4 tail_len 4096        46 32 tail hash (0xb0..)
 *  78  2 path length 5        80  5 "a/b.c"              85 */
#define V32(b)                                                                                    \
        b + 0, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11,     \
                b + 12, b + 13, b + 14, b + 15, b + 16, b + 17, b + 18, b + 19, b + 20, b + 21,   \
                b + 22, b + 23, b + 24, b + 25, b + 26, b + 27, b + 28, b + 29, b + 30, b + 31

static const uint8_t full_get[] = {
        FILE_GET_DIGEST,
        0, 0, 0, 0, 0, 1, 0, 0,
        32, V32(0xa0),
        0, 0, 0x10, 0,
        V32(0xb0),
        0, 5, 'a', '/', 'b', '.', 'c',
};

static const uint8_t validator_a0[] = { V32(0xa0) };
static const uint8_t hash_b0[] = { V32(0xb0) };

#define R_TRUNC_GET "truncated GET request"
#define R_TRUNC_VAL "truncated validator"
#define R_TRUNC_TAIL "truncated tail hash"
#define R_TRUNC_PLEN "truncated path length"
#define R_TRUNC_PATH "truncated path"
#define R_TRAILING "trailing bytes after the request"
#define R_FLAGS "unknown GET flags"
#define R_OFFSET "offset out of range"
#define R_VALLEN "validator must be 0 or 32 bytes"
#define R_TAIL_MAX "tail hash covers more than 1 MiB"
#define R_TAIL_OFF "tail hash covers bytes before the start of the file"
#define R_PATH_LONG "path too long"
#define R_REQ_LONG "request too long"
#define R_NOT_FILE "not a file request"

static int decode_exact(uint8_t type, const uint8_t *body, size_t n, struct file_request *req)
{
        _cleanup_free_ uint8_t *copy = test_dup_exact(body, n);
        int r = file_request_decode(type, copy, n, req);

        /* The path is borrowed from the body: point it back into the caller's. */
        if (r == 0 && req->path)
                req->path = body + (req->path - copy);
        return r;
}

static void test_request_full(void)
{
        struct file_request req;

        TEST_CASE("request: full GET");
        CHECK_ERR(decode_exact(NL_TYPE_FILE_GET, full_get, sizeof full_get, &req), 0);
        CHECK_U64(req.type, NL_TYPE_FILE_GET);
        CHECK_U64(req.flags, FILE_GET_DIGEST);
        CHECK_U64(req.offset, 65536);
        CHECK(req.has_validator);
        CHECK_MEM(req.validator, sizeof req.validator, validator_a0, sizeof validator_a0);
        CHECK_U64(req.tail_len, 4096);
        CHECK_MEM(req.tail_hash, sizeof req.tail_hash, hash_b0, sizeof hash_b0);
        CHECK_MEM(req.path, req.path_len, "a/b.c", 5);
        CHECK(req.problem == NULL);

        /* Every truncation point: malformed, and which field was cut. */
        for (size_t k = 0; k < sizeof full_get; k++) {
                const char *want = k < 10   ? R_TRUNC_GET
                                   : k < 42 ? R_TRUNC_VAL
                                   : k < 46 ? R_TRUNC_GET
                                   : k < 78 ? R_TRUNC_TAIL
                                   : k < 80 ? R_TRUNC_PLEN
                                            : R_TRUNC_PATH;

                TEST_CASE("request: full GET cut to %zu bytes", k);
                CHECK_ERR(decode_exact(NL_TYPE_FILE_GET, full_get, k, &req), -EBADMSG);
                CHECK_STR(req.problem, want);
        }

        TEST_CASE("request: full GET plus one byte");
        uint8_t more[sizeof full_get + 1];
        memcpy(more, full_get, sizeof full_get);
        more[sizeof full_get] = 0;
        CHECK_ERR(decode_exact(NL_TYPE_FILE_GET, more, sizeof more, &req), -EBADMSG);
        CHECK_STR(req.problem, R_TRAILING);

        /* The same body read as STAT or LIST is path-only: its first two
         * bytes are a path length that overruns it. */
        TEST_CASE("request: GET body as STAT");
        CHECK_ERR(decode_exact(NL_TYPE_FILE_STAT, full_get, sizeof full_get, &req), -EBADMSG);
        CHECK_STR(req.problem, R_TRUNC_PATH);
        CHECK_U64(req.type, NL_TYPE_FILE_STAT);
}

#define MIB (1u << 20)
#define OFF_TOO_BIG ((uint64_t) INT64_MAX + 1)

/* Build a GET body from its fields.  Return: its length. */
static size_t make_get(uint8_t *dst, size_t size, uint8_t flags, uint64_t offset, uint8_t vlen,
                       uint32_t tail_len, bool tail_hash, uint16_t path_len, const char *path)
{
        struct wire_writer w;
        uint8_t zeros[255] = {};

        wire_writer_init(&w, dst, size);
        if (wire_put_u8(&w, flags) < 0 || wire_put_u64be(&w, offset) < 0 ||
            wire_put_u8(&w, vlen) < 0 || wire_put_bytes(&w, zeros, vlen) < 0 ||
            wire_put_u32be(&w, tail_len) < 0 ||
            (tail_hash && wire_put_bytes(&w, zeros, NL_DIGEST_SIZE) < 0) ||
            wire_put_u16be(&w, path_len) < 0 || wire_put_bytes(&w, path, strlen(path)) < 0) {
                fprintf(stderr, "make_get: buffer too small\n");
                exit(EXIT_FAILURE);
        }
        return w.pos;
}

static void test_request_fields(void)
{
        static const struct {
                const char *name;
                uint8_t flags;
                uint64_t offset;
                uint8_t vlen;
                uint32_t tail_len;
                bool tail_hash;
                int r;
                const char *problem;
        } cases[] = {
                { "minimal", 0, 0, 0, 0, false, 0, NULL },
                { "digest flag", FILE_GET_DIGEST, 0, 0, 0, false, 0, NULL },
                { "unknown flag 0x02", 0x02, 0, 0, 0, false, -EBADMSG, R_FLAGS },
                { "unknown flag 0x80", 0x80, 0, 0, 0, false, -EBADMSG, R_FLAGS },
                { "all flags", 0xff, 0, 0, 0, false, -EBADMSG, R_FLAGS },
                { "flags before offset", 0x02, UINT64_MAX, 5, 0, false, -EBADMSG, R_FLAGS },
                { "offset INT64_MAX", 0, INT64_MAX, 0, 0, false, 0, NULL },
                { "offset INT64_MAX + 1", 0, OFF_TOO_BIG, 0, 0, false, -EBADMSG, R_OFFSET },
                { "offset UINT64_MAX", 0, UINT64_MAX, 0, 0, false, -EBADMSG, R_OFFSET },
                { "validator 32", 0, 0, 32, 0, false, 0, NULL },
                { "validator 5", 0, 0, 5, 0, false, -EBADMSG, R_VALLEN },
                { "validator 1", 0, 0, 1, 0, false, -EBADMSG, R_VALLEN },
                { "validator 31", 0, 0, 31, 0, false, -EBADMSG, R_VALLEN },
                { "validator 33", 0, 0, 33, 0, false, -EBADMSG, R_VALLEN },
                { "validator 255", 0, 0, 255, 0, false, -EBADMSG, R_VALLEN },
                { "tail == offset", 0, 100, 0, 100, true, 0, NULL },
                { "tail > offset", 0, 10, 0, 11, true, -EBADMSG, R_TAIL_OFF },
                { "tail 1 at offset 0", 0, 0, 0, 1, true, -EBADMSG, R_TAIL_OFF },
                { "tail 1 MiB", 0, 2 * MIB, 0, MIB, true, 0, NULL },
                { "tail 1 MiB + 1", 0, 2 * MIB, 0, MIB + 1, true, -EBADMSG, R_TAIL_MAX },
                { "tail UINT32_MAX", 0, UINT64_C(1) << 40, 0, UINT32_MAX, true, -EBADMSG,
                  R_TAIL_MAX },
                { "tail over 1 MiB and offset", 0, 5, 0, MIB + 1, true, -EBADMSG, R_TAIL_MAX },
                { "tail without its hash", 0, 100, 0, 50, false, -EBADMSG, R_TRUNC_TAIL },
                { "validator with a tail", FILE_GET_DIGEST, 1000, 32, 1000, true, 0, NULL },
        };
        uint8_t body[512];
        struct file_request req;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t n = make_get(body, sizeof body, cases[i].flags, cases[i].offset,
                                    cases[i].vlen, cases[i].tail_len, cases[i].tail_hash, 3, "x/y");

                TEST_CASE("request field: %s", cases[i].name);
                CHECK_ERR(decode_exact(NL_TYPE_FILE_GET, body, n, &req), cases[i].r);
                CHECK_STR(req.problem, cases[i].problem);
                CHECK_U64(req.type, NL_TYPE_FILE_GET);
                if (cases[i].r == 0) {
                        CHECK_U64(req.flags, cases[i].flags);
                        CHECK_U64(req.offset, cases[i].offset);
                        CHECK_INT(req.has_validator, cases[i].vlen == 32);
                        CHECK_U64(req.tail_len, cases[i].tail_len);
                        CHECK_MEM(req.path, req.path_len, "x/y", 3);
                }
        }
}

static void test_request_paths(void)
{
        static uint8_t body[NL_FILE_REQUEST_MAX + 2];
        struct file_request req;
        struct wire_writer w;

        /* STAT and LIST: u16 length, path. */
        static const struct {
                const char *name;
                uint8_t type;
                const uint8_t *body;
                size_t n;
                int r;
                const char *problem;
        } cases[] = {
                { "LIST root", NL_TYPE_FILE_LIST, B("\0\0"), 0, NULL },
                { "STAT x", NL_TYPE_FILE_STAT, B("\0\1x"), 0, NULL },
                { "STAT empty body", NL_TYPE_FILE_STAT, B(""), -EBADMSG, R_TRUNC_PLEN },
                { "STAT one byte", NL_TYPE_FILE_STAT, B("\0"), -EBADMSG, R_TRUNC_PLEN },
                { "STAT path cut", NL_TYPE_FILE_STAT, B("\0\3ab"), -EBADMSG, R_TRUNC_PATH },
                { "STAT trailing byte", NL_TYPE_FILE_STAT, B("\0\1xy"), -EBADMSG, R_TRAILING },
                { "LIST trailing NUL", NL_TYPE_FILE_LIST, B("\0\0\0"), -EBADMSG, R_TRAILING },
                { "STAT length 4097", NL_TYPE_FILE_STAT, B("\x10\x01"), -E2BIG, R_PATH_LONG },
                { "STAT length 65535", NL_TYPE_FILE_STAT, B("\xff\xff"), -E2BIG, R_PATH_LONG },
                /* Decoding does not judge the path: file_path_check() does. */
                { "STAT ../x decodes", NL_TYPE_FILE_STAT, B("\0\4../x"), 0, NULL },
                { "STAT NUL path decodes", NL_TYPE_FILE_STAT, B("\0\1\0"), 0, NULL },
                { "wrong type MSG_SEND", NL_TYPE_MSG_SEND, B("\0\1x"), -EOPNOTSUPP, R_NOT_FILE },
                { "wrong type FILE_INFO", NL_TYPE_FILE_INFO, B("\0\1x"), -EOPNOTSUPP, R_NOT_FILE },
                { "wrong type FILE_ENTRIES", NL_TYPE_FILE_ENTRIES, B(""), -EOPNOTSUPP, R_NOT_FILE },
                { "wrong type 0", 0, B(""), -EOPNOTSUPP, R_NOT_FILE },
                { "wrong type 0xff", 0xff, B("\0\0"), -EOPNOTSUPP, R_NOT_FILE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TEST_CASE("request: %s", cases[i].name);
                memset(&req, 0x5a, sizeof req);
                CHECK_ERR(decode_exact(cases[i].type, cases[i].body, cases[i].n, &req), cases[i].r);
                CHECK_STR(req.problem, cases[i].problem);
                CHECK_U64(req.type, cases[i].type);
                if (cases[i].r == 0)
                        CHECK_MEM(req.path, req.path_len, cases[i].body + 2, cases[i].n - 2);
        }

        /* A 4096-byte path is the longest; 4097 is too long even if the
         * bytes are there. */
        for (size_t len = NL_PATH_MAX; len <= NL_PATH_MAX + 1; len++) {
                wire_writer_init(&w, body, sizeof body);
                CHECK(wire_put_u16be(&w, (uint16_t) len) == 0);
                memset(body + 2, 'p', len);
                TEST_CASE("request: STAT path of %zu bytes", len);
                CHECK_ERR(decode_exact(NL_TYPE_FILE_STAT, body, 2 + len, &req),
                          len <= NL_PATH_MAX ? 0 : -E2BIG);
                CHECK_STR(req.problem, len <= NL_PATH_MAX ? NULL : R_PATH_LONG);
                if (len <= NL_PATH_MAX)
                        CHECK_U64(req.path_len, len);
        }

        /* Whole bodies over NL_FILE_REQUEST_MAX are refused unread. */
        memset(body, 0, sizeof body);
        for (size_t n = NL_FILE_REQUEST_MAX; n <= NL_FILE_REQUEST_MAX + 1; n++) {
                TEST_CASE("request: LIST body of %zu bytes", n);
                CHECK_ERR(decode_exact(NL_TYPE_FILE_LIST, body, n, &req),
                          n <= NL_FILE_REQUEST_MAX ? -EBADMSG : -E2BIG);
                CHECK_STR(req.problem, n <= NL_FILE_REQUEST_MAX ? R_TRAILING : R_REQ_LONG);
        }
}

/* Encode a request, then take the frame apart again. */
static void check_round_trip(const char *name, const struct file_request *in, size_t want_body)
{
        uint8_t frame[NL_HEADER_SIZE + NL_FILE_REQUEST_MAX];
        struct nl_header h;
        struct file_request out;

        TEST_CASE("encode round trip: %s", name);
        int n = file_request_encode(frame, sizeof frame, in);
        CHECK_ERR(n, (int) (NL_HEADER_SIZE + want_body));
        if (n < 0)
                return;
        CHECK_ERR(nl_header_decode(frame, (size_t) n, &h), 0);
        CHECK_U64(h.version, NL_VERSION);
        CHECK_U64(h.type, in->type);
        CHECK_U64(h.status, 0);
        CHECK_U64(h.length, want_body);
        size_t body_len = (size_t) n - NL_HEADER_SIZE;
        CHECK_ERR(decode_exact(in->type, frame + NL_HEADER_SIZE, body_len, &out), 0);
        CHECK_MEM(out.path, out.path_len, in->path, in->path_len);
        if (in->type == NL_TYPE_FILE_GET) {
                CHECK_U64(out.flags, in->flags);
                CHECK_U64(out.offset, in->offset);
                CHECK_INT(out.has_validator, in->has_validator);
                if (in->has_validator)
                        CHECK_MEM(out.validator, NL_VALIDATOR_SIZE, in->validator,
                                  NL_VALIDATOR_SIZE);
                CHECK_U64(out.tail_len, in->tail_len);
                if (in->tail_len)
                        CHECK_MEM(out.tail_hash, NL_DIGEST_SIZE, in->tail_hash, NL_DIGEST_SIZE);
        }

        /* One byte short: -ENOBUFS and nothing written. */
        TEST_CASE("encode: %s into %d bytes", name, n - 1);
        memset(frame, 0x5a, sizeof frame);
        CHECK_ERR(file_request_encode(frame, (size_t) n - 1, in), -ENOBUFS);
        CHECK_U64(frame[0], 0x5a);
}

#define U8(s) ((const uint8_t *) (s))

static void test_request_encode(void)
{
        static uint8_t long_path[NL_PATH_MAX + 1];
        struct file_request req;

        memset(long_path, 'p', sizeof long_path);

        req = (struct file_request) {
                .type = NL_TYPE_FILE_GET,
                .flags = FILE_GET_DIGEST,
                .offset = 65536,
                .has_validator = true,
                .tail_len = 4096,
                .path = U8("a/b.c"),
                .path_len = 5,
        };
        memcpy(req.validator, validator_a0, sizeof validator_a0);
        memcpy(req.tail_hash, hash_b0, sizeof hash_b0);
        check_round_trip("full GET", &req, sizeof full_get);

        /* And byte for byte what the table above says. */
        TEST_CASE("encode: full GET bytes");
        uint8_t frame[256];
        int n = file_request_encode(frame, sizeof frame, &req);
        if (CHECK(n == (int) (NL_HEADER_SIZE + sizeof full_get)))
                CHECK_MEM(frame + NL_HEADER_SIZE, sizeof full_get, full_get, sizeof full_get);

        req = (struct file_request) { .type = NL_TYPE_FILE_GET, .path = U8("x"), .path_len = 1 };
        check_round_trip("minimal GET", &req, 17);

        req = (struct file_request) {
                .type = NL_TYPE_FILE_GET, .offset = INT64_MAX, .path = U8("x"), .path_len = 1,
        };
        check_round_trip("GET at INT64_MAX", &req, 17);

        req = (struct file_request) { .type = NL_TYPE_FILE_STAT, .path = U8("dir/f"),
                                      .path_len = 5 };
        check_round_trip("STAT", &req, 7);

        TEST_CASE("encode: STAT bytes");
        static const uint8_t want_stat[] = {
                0, 'N', 'L', NL_VERSION, NL_TYPE_FILE_STAT, 0, 0, 0, 0, 0, 0, 7,
                0, 5, 'd', 'i', 'r', '/', 'f',
        };
        n = file_request_encode(frame, sizeof frame, &req);
        CHECK_MEM(frame, n > 0 ? (size_t) n : 0, want_stat, sizeof want_stat);

        /* STAT ignores the GET fields, however wrong. */
        req = (struct file_request) {
                .type = NL_TYPE_FILE_STAT,
                .flags = 0xff,
                .offset = UINT64_MAX,
                .tail_len = UINT32_MAX,
                .path = U8("f"),
                .path_len = 1,
        };
        check_round_trip("STAT with junk GET fields", &req, 3);

        req = (struct file_request) { .type = NL_TYPE_FILE_LIST };
        check_round_trip("LIST of the root, NULL path", &req, 2);

        req = (struct file_request) {
                .type = NL_TYPE_FILE_STAT, .path = long_path, .path_len = NL_PATH_MAX,
        };
        check_round_trip("STAT with a 4096-byte path", &req, 2 + NL_PATH_MAX);

        static const struct {
                const char *name;
                struct file_request req;
        } bad[] = {
                { "type MSG_SEND", { .type = NL_TYPE_MSG_SEND, .path = U8("x"), .path_len = 1 } },
                { "type FILE_INFO", { .type = NL_TYPE_FILE_INFO } },
                { "type 0", { .type = 0 } },
                { "path 4097 bytes",
                  { .type = NL_TYPE_FILE_STAT, .path = long_path, .path_len = NL_PATH_MAX + 1 } },
                { "NULL path with a length", { .type = NL_TYPE_FILE_STAT, .path_len = 1 } },
                { "GET unknown flag", { .type = NL_TYPE_FILE_GET, .flags = 0x02 } },
                { "GET offset INT64_MAX + 1", { .type = NL_TYPE_FILE_GET, .offset = OFF_TOO_BIG } },
                { "GET tail over 1 MiB",
                  { .type = NL_TYPE_FILE_GET, .offset = 2 * MIB, .tail_len = MIB + 1 } },
                { "GET tail past offset",
                  { .type = NL_TYPE_FILE_GET, .offset = 3, .tail_len = 4 } },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                TEST_CASE("encode: refuses %s", bad[i].name);
                memset(frame, 0x5a, sizeof frame);
                CHECK_ERR(file_request_encode(frame, sizeof frame, &bad[i].req), -EINVAL);
                CHECK_U64(frame[0], 0x5a);
        }
}

/* ---- FILE_INFO ---- */

static const struct file_info info_sample = {
        .kind = FILE_KIND_REGULAR,
        .flags = FILE_INFO_DIGEST_FOLLOWS,
        .size = 0x0102030405060708ull,
        .offset = 0x0000000000001000ull,
        .length = 0x0102030405050708ull,
        .mtime_sec = -2,
        .mtime_nsec = 999999999,
        .validator = { V32(0xc0) },
};

static const uint8_t info_bytes[NL_INFO_SIZE] = {
        FILE_KIND_REGULAR, FILE_INFO_DIGEST_FOLLOWS,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x05, 0x07, 0x08,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        0x3b, 0x9a, 0xc9, 0xff,
        V32(0xc0),
};

static bool info_equal(const struct file_info *a, const struct file_info *b)
{
        return a->kind == b->kind && a->flags == b->flags && a->size == b->size &&
               a->offset == b->offset && a->length == b->length && a->mtime_sec == b->mtime_sec &&
               a->mtime_nsec == b->mtime_nsec &&
               memcmp(a->validator, b->validator, NL_VALIDATOR_SIZE) == 0;
}

static int info_decode_exact(const uint8_t *body, size_t n, struct file_info *ret)
{
        _cleanup_free_ uint8_t *copy = test_dup_exact(body, n);

        return file_info_decode(copy, n, ret);
}

static void test_info(void)
{
        uint8_t buf[NL_INFO_SIZE + 8];
        struct file_info out;

        TEST_CASE("info: encode bytes");
        memset(buf, 0x5a, sizeof buf);
        CHECK_ERR(file_info_encode(buf, sizeof buf, &info_sample), (int) NL_INFO_SIZE);
        CHECK_MEM(buf, NL_INFO_SIZE, info_bytes, sizeof info_bytes);
        CHECK_U64(buf[NL_INFO_SIZE], 0x5a);

        TEST_CASE("info: decode");
        CHECK_ERR(info_decode_exact(info_bytes, sizeof info_bytes, &out), 0);
        CHECK(info_equal(&out, &info_sample));

        TEST_CASE("info: encode into 69 bytes");
        CHECK_ERR(file_info_encode(buf, NL_INFO_SIZE - 1, &info_sample), -ENOBUFS);

        /* Wrong sizes. */
        static const size_t sizes[] = {
                0, 1, NL_INFO_SIZE - 1, NL_INFO_SIZE + 1, NL_INFO_SIZE + 8,
        };
        memcpy(buf, info_bytes, sizeof info_bytes);
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                TEST_CASE("info: %zu bytes", sizes[i]);
                memset(&out, 0x5a, sizeof out);
                CHECK_ERR(info_decode_exact(buf, sizes[i], &out), -EBADMSG);
                CHECK_U64(out.size, 0x5a5a5a5a5a5a5a5aull);
        }

        /* One field at a time. */
        static const struct {
                const char *name;
                uint8_t kind, flags;
                uint64_t size, offset, length;
                uint32_t nsec;
                int r;
        } cases[] = {
                { "regular", FILE_KIND_REGULAR, 0, 10, 0, 10, 0, 0 },
                { "directory", FILE_KIND_DIRECTORY, 0, 0, 0, 0, 0, 0 },
                { "kind 0", 0, 0, 10, 0, 10, 0, -EBADMSG },
                { "kind symlink", FILE_KIND_SYMLINK, 0, 10, 0, 10, 0, -EBADMSG },
                { "kind other", FILE_KIND_OTHER, 0, 10, 0, 10, 0, -EBADMSG },
                { "kind 255", 255, 0, 10, 0, 10, 0, -EBADMSG },
                { "digest flag", FILE_KIND_REGULAR, FILE_INFO_DIGEST_FOLLOWS, 10, 0, 10, 0, 0 },
                { "unknown flag", FILE_KIND_REGULAR, 0x02, 10, 0, 10, 0, -EBADMSG },
                { "length = size - offset", FILE_KIND_REGULAR, 0, 10, 4, 6, 0, 0 },
                { "length > size - offset", FILE_KIND_REGULAR, 0, 10, 4, 7, 0, -EBADMSG },
                { "length < size - offset", FILE_KIND_REGULAR, 0, 10, 4, 5, 0, 0 },
                { "offset = size", FILE_KIND_REGULAR, 0, 10, 10, 0, 0, 0 },
                { "offset > size", FILE_KIND_REGULAR, 0, 10, 11, 0, 0, -EBADMSG },
                { "length > size, wraps", FILE_KIND_REGULAR, 0, 10, 0, UINT64_MAX, 0, -EBADMSG },
                { "max size", FILE_KIND_REGULAR, 0, UINT64_MAX, 0, UINT64_MAX, 0, 0 },
                { "nsec 999999999", FILE_KIND_REGULAR, 0, 10, 0, 10, 999999999, 0 },
                { "nsec 1e9", FILE_KIND_REGULAR, 0, 10, 0, 10, 1000000000, -EBADMSG },
                { "nsec UINT32_MAX", FILE_KIND_REGULAR, 0, 10, 0, 10, UINT32_MAX, -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct file_info in = info_sample;

                in.kind = cases[i].kind;
                in.flags = cases[i].flags;
                in.size = cases[i].size;
                in.offset = cases[i].offset;
                in.length = cases[i].length;
                in.mtime_nsec = cases[i].nsec;
                TEST_CASE("info: %s", cases[i].name);
                CHECK_ERR(file_info_encode(buf, sizeof buf, &in), (int) NL_INFO_SIZE);
                memset(&out, 0x5a, sizeof out);
                CHECK_ERR(info_decode_exact(buf, NL_INFO_SIZE, &out), cases[i].r);
                if (cases[i].r == 0)
                        CHECK(info_equal(&out, &in));
                else
                        CHECK_U64(out.size, 0x5a5a5a5a5a5a5a5aull);
        }
}

/* ---- FILE_END ---- */

static void test_end(void)
{
        static const uint8_t digest[] = { V32(0xd0) };
        uint8_t buf[64], got[NL_DIGEST_SIZE];
        bool has = false;

        TEST_CASE("end: encode without digest");
        memset(buf, 0x5a, sizeof buf);
        CHECK_ERR(file_end_encode(buf, sizeof buf, NULL), 1);
        CHECK_U64(buf[0], 0);
        CHECK_U64(buf[1], 0x5a);

        TEST_CASE("end: encode with digest");
        CHECK_ERR(file_end_encode(buf, sizeof buf, digest), 1 + NL_DIGEST_SIZE);
        CHECK_U64(buf[0], NL_DIGEST_SIZE);
        CHECK_MEM(buf + 1, NL_DIGEST_SIZE, digest, sizeof digest);

        TEST_CASE("end: encode too small");
        CHECK_ERR(file_end_encode(buf, 0, NULL), -ENOBUFS);
        CHECK_ERR(file_end_encode(buf, NL_DIGEST_SIZE, digest), -ENOBUFS);

        uint8_t with[1 + NL_DIGEST_SIZE + 1];
        with[0] = NL_DIGEST_SIZE;
        memcpy(with + 1, digest, sizeof digest);
        with[1 + NL_DIGEST_SIZE] = 0;

        static const struct {
                const char *name;
                const uint8_t *body;
                size_t n;
                int r;
                bool has;
        } cases[] = {
                { "no digest", B("\0"), 0, false },
                { "empty body", B(""), -EBADMSG, false },
                { "no digest, trailing byte", B("\0\0"), -EBADMSG, false },
                { "length 1", B("\1x"), -EBADMSG, false },
                { "length 31", B("\x1f"), -EBADMSG, false },
                { "length 33", B("\x21"), -EBADMSG, false },
                { "length 255", B("\xff"), -EBADMSG, false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *copy = test_dup_exact(cases[i].body, cases[i].n);

                TEST_CASE("end: %s", cases[i].name);
                has = !cases[i].has;
                memset(got, 0x5a, sizeof got);
                CHECK_ERR(file_end_decode(copy, cases[i].n, &has, got), cases[i].r);
                if (cases[i].r == 0)
                        CHECK_INT(has, cases[i].has);
                else
                        CHECK_INT(has, !cases[i].has);
                CHECK_U64(got[0], 0x5a);
        }

        /* With a digest: exact, each cut, and one byte more. */
        for (size_t n = 0; n <= sizeof with; n++) {
                _cleanup_free_ uint8_t *copy = test_dup_exact(with, n);
                bool ok = n == 1 + NL_DIGEST_SIZE;

                TEST_CASE("end: digest body of %zu bytes", n);
                has = false;
                memset(got, 0x5a, sizeof got);
                CHECK_ERR(file_end_decode(copy, n, &has, got), ok ? 0 : -EBADMSG);
                CHECK_INT(has, ok);
                if (ok)
                        CHECK_MEM(got, sizeof got, digest, sizeof digest);
                else
                        CHECK_U64(got[0], 0x5a); /* out-parameters only on success */
        }
}

/* ---- LIST entries ---- */

static void test_entries(void)
{
        static uint8_t name255[NL_NAME_MAX + 1];
        uint8_t buf[1024];
        struct wire_writer w;
        struct wire_reader r;
        struct file_entry e;

        memset(name255, 'e', sizeof name255);

        TEST_CASE("entry: put bytes");
        wire_writer_init(&w, buf, sizeof buf);
        struct file_entry abc = { .kind = FILE_KIND_REGULAR, .size = 0x0102030405060708ull,
                                  .mtime_sec = -1, .name = U8("abc"), .name_len = 3 };
        CHECK_ERR(file_entry_put(&w, &abc), 0);
        static const uint8_t want[] = { FILE_KIND_REGULAR, 1, 2, 3, 4, 5, 6, 7, 8,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0, 3, 'a', 'b', 'c' };
        CHECK_MEM(buf, w.pos, want, sizeof want);
        CHECK_U64(FILE_ENTRY_FIXED + 3, sizeof want);

        TEST_CASE("entry: put a list and read it back");
        struct file_entry list[] = {
                abc,
                { .kind = FILE_KIND_DIRECTORY, .name = U8("d"), .name_len = 1 },
                { .kind = FILE_KIND_SYMLINK, .size = 7, .mtime_sec = INT64_MAX, .name = name255,
                  .name_len = NL_NAME_MAX },
                { .kind = FILE_KIND_OTHER, .mtime_sec = INT64_MIN, .name = U8("\xc3\xa9"),
                  .name_len = 2 },
        };
        wire_writer_init(&w, buf, sizeof buf);
        for (size_t i = 0; i < ELEMENTSOF(list); i++)
                CHECK_ERR(file_entry_put(&w, &list[i]), 0);
        _cleanup_free_ uint8_t *body = test_dup_exact(buf, w.pos);
        wire_reader_init(&r, body, w.pos);
        for (size_t i = 0; i < ELEMENTSOF(list); i++) {
                if (!CHECK_ERR(file_entry_next(&r, &e), 1))
                        break;
                CHECK_U64(e.kind, list[i].kind);
                CHECK_U64(e.size, list[i].size);
                CHECK_INT(e.mtime_sec, list[i].mtime_sec);
                CHECK_MEM(e.name, e.name_len, list[i].name, list[i].name_len);
        }
        CHECK_ERR(file_entry_next(&r, &e), 0);
        CHECK_ERR(file_entry_next(&r, &e), 0);

        /* Names of 0 and 256 bytes are refused, nothing written. */
        static const size_t bad_lens[] = { 0, NL_NAME_MAX + 1, 65535, 65536 };
        for (size_t i = 0; i < ELEMENTSOF(bad_lens); i++) {
                struct file_entry b = {
                        .kind = FILE_KIND_REGULAR, .name = name255, .name_len = bad_lens[i],
                };

                TEST_CASE("entry: put a %zu-byte name", bad_lens[i]);
                wire_writer_init(&w, buf, sizeof buf);
                CHECK_ERR(file_entry_put(&w, &b), -EINVAL);
                CHECK_U64(w.pos, 0);
        }

        /* Exactly enough room, and one byte less. */
        TEST_CASE("entry: put into exactly its size");
        wire_writer_init(&w, buf, FILE_ENTRY_FIXED + 3);
        CHECK_ERR(file_entry_put(&w, &abc), 0);
        CHECK_U64(w.pos, FILE_ENTRY_FIXED + 3);
        CHECK_ERR(file_entry_put(&w, &abc), -ENOBUFS);
        for (size_t room = 0; room < FILE_ENTRY_FIXED + 3; room++) {
                TEST_CASE("entry: put into %zu bytes", room);
                memset(buf, 0x5a, sizeof buf);
                wire_writer_init(&w, buf, room);
                CHECK_ERR(file_entry_put(&w, &abc), -ENOBUFS);
                CHECK_U64(w.pos, 0);
                CHECK_U64(buf[0], 0x5a);
        }

        /* Every cut of one entry: malformed, and the reader does not move. */
        for (size_t k = 1; k < sizeof want; k++) {
                _cleanup_free_ uint8_t *cut = test_dup_exact(want, k);

                TEST_CASE("entry: next on %zu of %zu bytes", k, sizeof want);
                wire_reader_init(&r, cut, k);
                CHECK_ERR(file_entry_next(&r, &e), -EBADMSG);
                CHECK_U64(r.pos, 0);
        }

        /* A good entry, then a cut one: 1, then -EBADMSG at its start. */
        TEST_CASE("entry: good then cut");
        uint8_t two[sizeof want * 2];
        memcpy(two, want, sizeof want);
        memcpy(two + sizeof want, want, sizeof want);
        _cleanup_free_ uint8_t *two_cut = test_dup_exact(two, sizeof two - 1);
        wire_reader_init(&r, two_cut, sizeof two - 1);
        CHECK_ERR(file_entry_next(&r, &e), 1);
        CHECK_ERR(file_entry_next(&r, &e), -EBADMSG);
        CHECK_U64(r.pos, sizeof want);

        /* Bad fields on the wire. */
        static const struct {
                const char *name;
                uint8_t kind;
                uint16_t name_len;
                size_t have; /* name bytes present */
                int r;
        } cases[] = {
                { "kind 1", FILE_KIND_REGULAR, 3, 3, 1 },
                { "kind 4", FILE_KIND_OTHER, 3, 3, 1 },
                { "kind 0", 0, 3, 3, -EBADMSG },
                { "kind 5", 5, 3, 3, -EBADMSG },
                { "kind 255", 255, 3, 3, -EBADMSG },
                { "name 0 bytes", FILE_KIND_REGULAR, 0, 0, -EBADMSG },
                { "name 255 bytes", FILE_KIND_REGULAR, 255, 255, 1 },
                { "name 256 bytes", FILE_KIND_REGULAR, 256, 256, -EBADMSG },
                { "name length past the body", FILE_KIND_REGULAR, 10, 9, -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TEST_CASE("entry: %s", cases[i].name);
                wire_writer_init(&w, buf, sizeof buf);
                CHECK(wire_put_u8(&w, cases[i].kind) == 0 && wire_put_u64be(&w, 1) == 0 &&
                      wire_put_u64be(&w, 2) == 0 && wire_put_u16be(&w, cases[i].name_len) == 0 &&
                      wire_put_bytes(&w, name255, cases[i].have) == 0);
                _cleanup_free_ uint8_t *copy = test_dup_exact(buf, w.pos);
                wire_reader_init(&r, copy, w.pos);
                CHECK_ERR(file_entry_next(&r, &e), cases[i].r);
                CHECK_U64(r.pos, cases[i].r == 1 ? w.pos : 0);
        }
}

int main(void)
{
        test_path_table();
        test_path_lengths();
        test_request_full();
        test_request_fields();
        test_request_paths();
        test_request_encode();
        test_info();
        test_end();
        test_entries();
        return test_finish();
}
