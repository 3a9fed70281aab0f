/* fuzz-xfer.c: the UDP transfer's datagram codec (common/proto-xfer.c),
 * every packet type in both directions: REQUESTs from any source address,
 * ACK, DONE and ERROR from a client, RETRY, ACCEPT, DATA, END and ERROR from
 * a server the client does not trust.
 *
 * Input: byte 0 picks the direction of the check.
 *   decode first: the rest is a datagram.  Only the documented results; a
 *     refusal leaves nothing but the type and a problem; an accepted packet
 *     re-encodes to the very same bytes (a REQUEST to its bytes before the
 *     zero padding, padded to at least 1200), and its bodies go through the
 *     decoders the daemon and client use next (FILE_GET, FILE_END).
 *   encode first: the rest fills a struct xfer_packet field by field (long
 *     cookies, bodies and payloads borrow from a static buffer so every
 *     length limit can be crossed).  What the encoder accepts decodes back
 *     to equal fields; into a buffer one byte short it is -ENOBUFS and the
 *     buffer is untouched. */
#include <errno.h>

#include "fuzz.h"
#include "proto.h"

enum mode {
        MODE_DECODE,
        MODE_ENCODE,
        _MODE_MAX,
};

#define PACKET_MAX (NL_XFER_DATAGRAM_MAX + 64u)

/* Bytes that long fields point into: larger than any packet. */
static uint8_t filler[PACKET_MAX];

/* ---- field comparison ---- */

static bool same_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
        return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static bool same_info(const struct file_info *a, const struct file_info *b)
{
        return a->kind == b->kind && a->flags == b->flags && a->size == b->size &&
               a->offset == b->offset && a->length == b->length && a->mtime_sec == b->mtime_sec &&
               a->mtime_nsec == b->mtime_nsec && !memcmp(a->validator, b->validator, NL_VALIDATOR_SIZE);
}

/* Do a and b carry the same fields that their type has? */
static bool same_packet(const struct xfer_packet *a, const struct xfer_packet *b)
{
        if (a->type != b->type)
                return false;
        switch (a->type) {
        case NL_XFER_REQUEST:
                return a->client_id == b->client_id && a->block_size == b->block_size &&
                       a->window == b->window && same_bytes(a->cookie, a->cookie_len, b->cookie, b->cookie_len) &&
                       same_bytes(a->body, a->body_len, b->body, b->body_len);
        case NL_XFER_RETRY:
                return a->client_id == b->client_id &&
                       same_bytes(a->cookie, a->cookie_len, b->cookie, b->cookie_len);
        case NL_XFER_ACCEPT:
                return a->client_id == b->client_id && a->transfer_id == b->transfer_id &&
                       a->block_size == b->block_size && a->window == b->window &&
                       a->timestamp == b->timestamp && same_info(&a->info, &b->info);
        case NL_XFER_DATA:
                return a->transfer_id == b->transfer_id && a->seq == b->seq &&
                       a->timestamp == b->timestamp &&
                       same_bytes(a->payload, a->payload_len, b->payload, b->payload_len);
        case NL_XFER_ACK:
                if (a->transfer_id != b->transfer_id || a->cum != b->cum || a->echo != b->echo ||
                    a->rwnd != b->rwnd || a->n_ranges != b->n_ranges)
                        return false;
                for (unsigned i = 0; i < a->n_ranges; i++)
                        if (a->ranges[i].start != b->ranges[i].start || a->ranges[i].end != b->ranges[i].end)
                                return false;
                return true;
        case NL_XFER_END:
                return a->transfer_id == b->transfer_id && a->status == b->status &&
                       same_bytes(a->body, a->body_len, b->body, b->body_len);
        case NL_XFER_DONE:
                return a->transfer_id == b->transfer_id;
        case NL_XFER_ERROR:
                return a->client_id == b->client_id && a->transfer_id == b->transfer_id &&
                       a->status == b->status && same_bytes(a->body, a->body_len, b->body, b->body_len);
        default:
                return false;
        }
}

/* ---- decode first ---- */

static void check_refused(const struct xfer_packet *p, int r)
{
        fuzz_check(p->problem != NULL, "r=%d without a problem", r);
        fuzz_check(p->client_id == 0 && p->transfer_id == 0 && p->block_size == 0 && p->window == 0 &&
                           !p->cookie && p->cookie_len == 0 && !p->body && p->body_len == 0 &&
                           p->timestamp == 0 && p->seq == 0 && !p->payload && p->payload_len == 0 &&
                           p->cum == 0 && p->echo == 0 && p->rwnd == 0 && p->n_ranges == 0 &&
                           p->status == 0 && p->info.size == 0 && p->info.kind == 0,
                   "a refused packet (%d, %s) keeps fields", r, p->problem);
}

static void check_decode(const uint8_t *buf, size_t n)
{
        struct xfer_packet p, again;
        uint8_t *out;
        int r = xfer_packet_decode(buf, n, &p);
        bool magic = n >= 2 && buf[0] == NL_XFER_MAGIC_0 && buf[1] == NL_XFER_MAGIC_1;

        fuzz_check(FUZZ_RC_IN(r, 0, -EBADMSG, -EPROTONOSUPPORT, -E2BIG), "r=%d", r);
        fuzz_check(xfer_is_packet(buf, n) == magic, "xfer_is_packet");
        if (r == -EPROTONOSUPPORT)
                fuzz_check(magic && n >= 3 && buf[2] != NL_XFER_VERSION, "version refusal");
        if (r == -E2BIG)
                fuzz_check(p.type == NL_XFER_REQUEST || p.type == NL_XFER_END || p.type == NL_XFER_ERROR,
                           "-E2BIG for type %u", p.type);
        if (r < 0) {
                check_refused(&p, r);
                return;
        }
        fuzz_check(magic && n >= NL_XFER_HEADER_SIZE && buf[2] == NL_XFER_VERSION && buf[3] == p.type,
                   "accepted a bad header");
        fuzz_check(fuzz_inside(p.cookie, p.cookie_len, buf, n) && fuzz_inside(p.body, p.body_len, buf, n) &&
                           fuzz_inside(p.payload, p.payload_len, buf, n),
                   "a view outside the datagram");

        /* Re-encode: the same bytes. */
        out = malloc(PACKET_MAX);
        fuzz_check(out != NULL, "malloc");
        r = xfer_packet_encode(out, PACKET_MAX, &p);
        fuzz_check(r > 0, "an accepted packet (type %u) cannot be encoded: %d", p.type, r);
        if (p.type == NL_XFER_REQUEST) {
                fuzz_check((size_t) r <= n && r >= (int) NL_XFER_REQUEST_MIN, "REQUEST re-encoded to %d of %zu", r, n);
                for (size_t i = (size_t) r; i < n; i++)
                        fuzz_check(buf[i] == 0, "accepted non-zero padding at %zu", i);
        } else
                fuzz_check((size_t) r == n, "re-encoded to %d of %zu bytes", r, n);
        fuzz_check(memcmp(out, buf, (size_t) r) == 0, "re-encoded bytes differ");
        r = xfer_packet_decode(out, (size_t) r, &again);
        fuzz_check(r == 0 && same_packet(&p, &again), "re-encoded packet decodes differently: %d", r);

        if (p.type == NL_XFER_DATA) {
                uint8_t h[NL_XFER_DATA_HEADER];

                xfer_data_header_put(h, p.transfer_id, p.seq, p.timestamp);
                fuzz_check(memcmp(h, buf, sizeof h) == 0, "DATA header");
        }
        free(out);

        /* What the receiver does next with the bodies. */
        if (p.type == NL_XFER_REQUEST) {
                struct file_request req;

                r = file_request_decode(NL_TYPE_FILE_GET, p.body, p.body_len, &req);
                fuzz_check(FUZZ_RC_IN(r, 0, -EBADMSG, -E2BIG), "FILE_GET r=%d", r);
                if (r == 0)
                        fuzz_check(fuzz_inside(req.path, req.path_len, p.body, p.body_len), "path");
        }
        if (p.type == NL_XFER_END && p.status == NL_STATUS_OK) {
                uint8_t digest[NL_DIGEST_SIZE];
                bool has;

                r = file_end_decode(p.body, p.body_len, &has, digest);
                fuzz_check(FUZZ_RC_IN(r, 0, -EBADMSG), "FILE_END r=%d", r);
        }
}

/* ---- encode first ---- */

struct source {
        const uint8_t *data;
        size_t size, pos;
};

static uint8_t take_u8(struct source *s)
{
        return s->pos < s->size ? s->data[s->pos++] : 0;
}

/* Big-endian; one statement per take, as evaluation order matters. */
static uint16_t take_u16(struct source *s)
{
        uint16_t hi = take_u8(s);

        return (uint16_t) (hi << 8 | take_u8(s));
}

static uint32_t take_u32(struct source *s)
{
        uint32_t hi = take_u16(s);

        return hi << 16 | take_u16(s);
}

/* A length: mostly small, sometimes near the limits the codec checks. */
static size_t take_len(struct source *s)
{
        static const size_t edges[] = {
                0, 1, 31, 32, 33, 1023, 1024, 1025, 8192, 8193, NL_XFER_BLOCK_MAX,
                NL_XFER_BLOCK_MAX + 1, NL_UDP_PAYLOAD_MAX - 9, NL_UDP_PAYLOAD_MAX - 8,
        };
        uint8_t b = take_u8(s);

        if (b >= 0xf0)
                return edges[b % (sizeof edges / sizeof edges[0])];
        return b;
}

/* Bytes for a field of len bytes: from the input while it lasts, else the filler. */
static const uint8_t *take_bytes(struct source *s, size_t len)
{
        if (s->size - s->pos >= len) {
                const uint8_t *p = s->data + s->pos;

                s->pos += len;
                return p;
        }
        return filler;
}

/* An id: zero sometimes, to cross the "!= 0" rules. */
static uint32_t take_id(struct source *s)
{
        uint8_t b = take_u8(s);

        return b == 0 ? 0 : take_u32(s) | 1u;
}

static void build_packet(struct source *s, struct xfer_packet *p)
{
        uint8_t t = take_u8(s);

        *p = (struct xfer_packet) { .type = t < 0xf8 ? (uint8_t) (t % 8 + 1) : t };
        p->client_id = take_id(s);
        p->transfer_id = take_id(s);
        p->status = take_u8(s) % 16;
        uint8_t knobs = take_u8(s);

        /* Block size and window: in range unless a knob says otherwise. */
        p->block_size = knobs & 1 ? take_u16(s)
                                  : (uint16_t) (NL_XFER_BLOCK_MIN +
                                                take_u16(s) % (NL_XFER_BLOCK_MAX - NL_XFER_BLOCK_MIN + 1));
        p->window = knobs & 2 ? take_u32(s) : 1 + take_u32(s) % NL_XFER_WINDOW_MAX;
        p->timestamp = take_u32(s);
        p->seq = take_u32(s);

        p->cookie_len = take_len(s);
        p->cookie = take_bytes(s, p->cookie_len);
        p->body_len = take_len(s);
        p->body = take_bytes(s, p->body_len);
        p->payload_len = take_len(s);
        p->payload = take_bytes(s, p->payload_len);
        if (knobs & 4) {
                p->cookie = p->cookie_len ? NULL : p->cookie; /* a length without bytes */
                p->body = p->body_len ? NULL : p->body;
        }

        /* ACK: ranges built above cum, mostly valid. */
        p->cum = take_u32(s);
        p->cum >>= take_u8(s) % 32;
        p->echo = take_u32(s);
        p->rwnd = take_u32(s);
        p->n_ranges = take_u8(s) % (NL_XFER_SACK_MAX + 2);
        uint32_t at = p->cum;
        for (unsigned i = 0; i < p->n_ranges && i < NL_XFER_SACK_MAX; i++) {
                uint8_t gap = take_u8(s);
                uint8_t len = take_u8(s);

                if (knobs & 8) {
                        p->ranges[i].start = take_u32(s);
                        p->ranges[i].end = take_u32(s);
                        continue;
                }
                p->ranges[i].start = at + 1u + gap;
                p->ranges[i].end = p->ranges[i].start + 1u + len;
                at = p->ranges[i].end;
        }

        /* ACCEPT's FILE_INFO: consistent unless a knob says otherwise. */
        p->info.kind = knobs & 16 ? take_u8(s) : (uint8_t) (FILE_KIND_REGULAR + take_u8(s) % 2);
        p->info.flags = knobs & 16 ? take_u8(s) : take_u8(s) & FILE_INFO_DIGEST_FOLLOWS;
        p->info.size = take_u32(s);
        p->info.size <<= take_u8(s) % 32;
        p->info.offset = take_u32(s);
        p->info.length = take_u32(s);
        if (!(knobs & 16)) {
                p->info.offset = p->info.size ? p->info.offset % (p->info.size + 1) : 0;
                p->info.length = p->info.length % (p->info.size - p->info.offset + 1);
        }
        uint64_t mtime = take_u32(s);
        mtime = mtime << 32 | take_u32(s);
        p->info.mtime_sec = (int64_t) mtime;
        p->info.mtime_nsec = knobs & 16 ? take_u32(s) : take_u32(s) % 1000000000u;
        memcpy(p->info.validator, take_bytes(s, NL_VALIDATOR_SIZE), NL_VALIDATOR_SIZE);
}

static void check_encode(const uint8_t *data, size_t size)
{
        struct source s = { .data = data, .size = size };
        struct xfer_packet p, back;
        uint8_t *out = malloc(PACKET_MAX), *copy;
        int r, n;

        fuzz_check(out != NULL, "malloc");
        build_packet(&s, &p);
        n = xfer_packet_encode(out, PACKET_MAX, &p);
        fuzz_check(n > 0 || n == -EINVAL, "encode r=%d", n);
        if (n < 0) {
                free(out);
                return;
        }
        fuzz_check(n <= (int) NL_UDP_PAYLOAD_MAX, "a %d-byte datagram", n);

        copy = fuzz_dup(out, (size_t) n);
        r = xfer_packet_decode(copy, (size_t) n, &back);
        fuzz_check(r == 0, "encoded type %u does not decode: %d (%s)", p.type, r,
                   back.problem ? back.problem : "");
        fuzz_check(same_packet(&p, &back), "type %u decodes to other fields", p.type);
        free(copy);

        /* One byte short: refused, nothing written. */
        memset(out, 0x5a, (size_t) n);
        r = xfer_packet_encode(out, (size_t) n - 1, &p);
        fuzz_check(r == -ENOBUFS, "short buffer: %d", r);
        for (int i = 0; i < n; i++)
                fuzz_check(out[i] == 0x5a, "short buffer written at %d", i);
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *buf;

        if (size < 1)
                return 0;
        if (data[0] % _MODE_MAX == MODE_ENCODE) {
                check_encode(data + 1, size - 1);
                return 0;
        }
        buf = fuzz_dup(data + 1, size - 1);
        check_decode(buf, size - 1);
        free(buf);
        return 0;
}
