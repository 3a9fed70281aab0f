/* proto-xfer.c: the datagrams of netlab's reliable transfer over UDP, version 1
 * (docs/PROTOCOL.md, section 11; the byte layouts are at the end of proto.h).
 *
 * Pure: no I/O, no allocation, no clock.  The decoder trusts nothing in the
 * datagram: REQUESTs come from anyone who can forge a source address, the
 * transfer's datagrams from a peer that may be confused or hostile.  Every
 * field is read through the bounded cursor, every length is compared with its
 * limit before anything is read past it, and nothing may follow a packet's
 * fields except a REQUEST's zero padding.  Bodies are borrowed, not decoded:
 * the REQUEST's FILE_GET body goes through file_request_decode() and the END's
 * FILE_END body through file_end_decode() at the caller, and texts are only
 * bounded here (callers escape them before showing them).  What is checked
 * here is only what one datagram can tell: whether an ACK fits the sender's
 * window or a DATA's seq the receiver's is xfer.c's business.
 *
 * The encoder refuses (-EINVAL) every packet the decoder would refuse, so
 * whatever we send decodes on the other side.  Both run the same field rules
 * (packet_check()). */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "wire.h"

#define REQUEST_FIXED 17u               /* REQUEST bytes besides cookie, body and padding */
#define RETRY_FIXED 9u
#define DATA_FIXED NL_XFER_DATA_HEADER
#define ACK_FIXED 21u
#define ACK_RANGE_SIZE 8u
#define END_FIXED 9u
#define DONE_SIZE 8u
#define ERROR_FIXED 13u

/* END with status OK carries a body nobody bounds here but the datagram. */
#define END_BODY_MAX (NL_UDP_PAYLOAD_MAX - END_FIXED)

/* On any refusal the packet keeps only its type and the problem, so callers
 * never see half-decoded fields. */
static int refuse(struct xfer_packet *p, int err, const char *problem)
{
        *p = (struct xfer_packet) { .type = p->type, .problem = problem };
        return err;
}

static int set_problem(const char **ret_problem, int err, const char *text)
{
        *ret_problem = text;
        return err;
}

/* The SACK rules: every range above cum, non-empty, strictly ascending and
 * separated from the one before (adjacent ranges must be sent merged, so one
 * set of blocks has exactly one encoding). */
static int ack_ranges_check(uint32_t cum, const struct xfer_range *ranges, unsigned n,
                            const char **ret_problem)
{
        for (unsigned i = 0; i < n; i++) {
                const struct xfer_range *c = &ranges[i];

                if (c->start <= cum)
                        return set_problem(ret_problem, -EBADMSG,
                                           "ACK range starts at or below cum");
                if (c->start >= c->end)
                        return set_problem(ret_problem, -EBADMSG, "ACK range is empty or reversed");
                if (i == 0)
                        continue;

                const struct xfer_range *prev = &ranges[i - 1];

                if (c->start < prev->start)
                        return set_problem(ret_problem, -EBADMSG,
                                           "ACK ranges not in ascending order");
                if (c->start < prev->end)
                        return set_problem(ret_problem, -EBADMSG, "ACK ranges overlap");
                if (c->start == prev->end)
                        return set_problem(ret_problem, -EBADMSG,
                                           "ACK ranges adjacent (not merged)");
        }
        return 0;
}

static bool block_size_ok(uint32_t b)
{
        return b >= NL_XFER_BLOCK_MIN && b <= NL_XFER_BLOCK_MAX;
}

static bool window_ok(uint32_t w)
{
        return w >= 1 && w <= NL_XFER_WINDOW_MAX;
}

/* The field rules shared by the decoder and the encoder: ids, ranges and
 * lengths of an otherwise complete packet.  FILE_INFO is checked apart
 * (file_info_decode()).
 * Return: 0; -EBADMSG or -E2BIG (a text over NL_ERROR_TEXT_MAX) with
 * *ret_problem set. */
static int packet_check(const struct xfer_packet *p, const char **ret_problem)
{
        switch (p->type) {
        case NL_XFER_REQUEST:
                if (p->client_id == 0)
                        return set_problem(ret_problem, -EBADMSG, "REQUEST with client_id 0");
                if (!block_size_ok(p->block_size))
                        return set_problem(ret_problem, -EBADMSG,
                                           "REQUEST block size outside 512..65464");
                if (!window_ok(p->window))
                        return set_problem(ret_problem, -EBADMSG,
                                           "REQUEST window outside 1..65536");
                if (p->cookie_len > NL_XFER_COOKIE_MAX)
                        return set_problem(ret_problem, -EBADMSG,
                                           "REQUEST cookie longer than 32 bytes");
                if (p->body_len > NL_FILE_REQUEST_MAX)
                        return set_problem(ret_problem, -EBADMSG,
                                           "REQUEST body longer than 8192 bytes");
                return 0;

        case NL_XFER_RETRY:
                if (p->client_id == 0)
                        return set_problem(ret_problem, -EBADMSG, "RETRY with client_id 0");
                if (p->cookie_len == 0)
                        return set_problem(ret_problem, -EBADMSG, "RETRY without a cookie");
                if (p->cookie_len > NL_XFER_COOKIE_MAX)
                        return set_problem(ret_problem, -EBADMSG,
                                           "RETRY cookie longer than 32 bytes");
                return 0;

        case NL_XFER_ACCEPT:
                if (p->client_id == 0)
                        return set_problem(ret_problem, -EBADMSG, "ACCEPT with client_id 0");
                if (p->transfer_id == 0)
                        return set_problem(ret_problem, -EBADMSG, "ACCEPT with transfer_id 0");
                if (!block_size_ok(p->block_size))
                        return set_problem(ret_problem, -EBADMSG,
                                           "ACCEPT block size outside 512..65464");
                if (!window_ok(p->window))
                        return set_problem(ret_problem, -EBADMSG, "ACCEPT window outside 1..65536");
                return 0;

        case NL_XFER_DATA:
                if (p->transfer_id == 0)
                        return set_problem(ret_problem, -EBADMSG, "DATA with transfer_id 0");
                if (p->payload_len == 0)
                        return set_problem(ret_problem, -EBADMSG, "DATA without payload");
                if (p->payload_len > NL_XFER_BLOCK_MAX)
                        return set_problem(ret_problem, -EBADMSG,
                                           "DATA payload longer than 65464 bytes");
                return 0;

        case NL_XFER_ACK:
                if (p->transfer_id == 0)
                        return set_problem(ret_problem, -EBADMSG, "ACK with transfer_id 0");
                if (p->n_ranges > NL_XFER_SACK_MAX)
                        return set_problem(ret_problem, -EBADMSG, "ACK with more than 32 ranges");
                return ack_ranges_check(p->cum, p->ranges, p->n_ranges, ret_problem);

        case NL_XFER_END:
                if (p->transfer_id == 0)
                        return set_problem(ret_problem, -EBADMSG, "END with transfer_id 0");
                if (p->status != NL_STATUS_OK && p->body_len > NL_ERROR_TEXT_MAX)
                        return set_problem(ret_problem, -E2BIG, "END text longer than 1024 bytes");
                if (p->body_len > END_BODY_MAX)
                        return set_problem(ret_problem, -EBADMSG, "END longer than a UDP datagram");
                return 0;

        case NL_XFER_DONE:
                if (p->transfer_id == 0)
                        return set_problem(ret_problem, -EBADMSG, "DONE with transfer_id 0");
                return 0;

        case NL_XFER_ERROR:
                /* client_id 0 only from a transfer that has its own id: a
                 * child aborting after ACCEPT is identified by transfer_id. */
                if (p->client_id == 0 && p->transfer_id == 0)
                        return set_problem(ret_problem, -EBADMSG,
                                           "ERROR with neither client_id nor transfer_id");
                if (p->status == NL_STATUS_OK)
                        return set_problem(ret_problem, -EBADMSG, "ERROR with status OK");
                if (p->body_len > NL_ERROR_TEXT_MAX)
                        return set_problem(ret_problem, -E2BIG,
                                           "ERROR text longer than 1024 bytes");
                return 0;

        default:
                return set_problem(ret_problem, -EBADMSG, "unknown transfer packet type");
        }
}

/* ---- decoding ---- */

static int decode_request(struct wire_reader *r, size_t n, struct xfer_packet *p)
{
        uint8_t cookie_len;
        uint16_t body_len;

        /* Refused unread: the listener must not spend work on oversize junk. */
        if (n > NL_XFER_REQUEST_MAX)
                return refuse(p, -E2BIG, "REQUEST longer than 9216 bytes");

        if (wire_get_u32be(r, &p->client_id) < 0 || wire_get_u16be(r, &p->block_size) < 0 ||
            wire_get_u32be(r, &p->window) < 0 || wire_get_u8(r, &cookie_len) < 0)
                return refuse(p, -EBADMSG, "truncated REQUEST");
        if (cookie_len > NL_XFER_COOKIE_MAX)
                return refuse(p, -EBADMSG, "REQUEST cookie longer than 32 bytes");
        if (wire_get_view(r, cookie_len, &p->cookie) < 0 || wire_get_u16be(r, &body_len) < 0)
                return refuse(p, -EBADMSG, "truncated REQUEST");
        p->cookie_len = cookie_len;
        if (body_len > NL_FILE_REQUEST_MAX)
                return refuse(p, -EBADMSG, "REQUEST body longer than 8192 bytes");
        if (wire_get_view(r, body_len, &p->body) < 0)
                return refuse(p, -EBADMSG, "truncated REQUEST");
        p->body_len = body_len;

        /* The padding is zeros so that it can carry nothing: a later version
         * may give it meaning. */
        while (wire_reader_remaining(r) > 0) {
                uint8_t b;

                if (wire_get_u8(r, &b) < 0 || b != 0)
                        return refuse(p, -EBADMSG, "REQUEST padding is not all zero");
        }
        /* RFC 9000, 8.1: a small request must not earn a bigger answer. */
        if (n < NL_XFER_REQUEST_MIN)
                return refuse(p, -EBADMSG, "REQUEST not padded to 1200 bytes");
        return 0;
}

static int decode_retry(struct wire_reader *r, struct xfer_packet *p)
{
        uint8_t cookie_len;

        if (wire_get_u32be(r, &p->client_id) < 0 || wire_get_u8(r, &cookie_len) < 0)
                return refuse(p, -EBADMSG, "truncated RETRY");
        if (cookie_len > NL_XFER_COOKIE_MAX)
                return refuse(p, -EBADMSG, "RETRY cookie longer than 32 bytes");
        if (wire_get_view(r, cookie_len, &p->cookie) < 0)
                return refuse(p, -EBADMSG, "truncated RETRY");
        p->cookie_len = cookie_len;
        if (wire_reader_remaining(r) != 0)
                return refuse(p, -EBADMSG, "trailing bytes after RETRY");
        return 0;
}

static int decode_accept(struct wire_reader *r, struct xfer_packet *p)
{
        const uint8_t *info;

        if (wire_get_u32be(r, &p->client_id) < 0 || wire_get_u32be(r, &p->transfer_id) < 0 ||
            wire_get_u16be(r, &p->block_size) < 0 || wire_get_u32be(r, &p->window) < 0 ||
            wire_get_u32be(r, &p->timestamp) < 0 || wire_get_view(r, NL_INFO_SIZE, &info) < 0)
                return refuse(p, -EBADMSG, "truncated ACCEPT");
        if (wire_reader_remaining(r) != 0)
                return refuse(p, -EBADMSG, "trailing bytes after ACCEPT");
        if (file_info_decode(info, NL_INFO_SIZE, &p->info) < 0)
                return refuse(p, -EBADMSG, "ACCEPT with an invalid FILE_INFO");
        return 0;
}

static int decode_data(struct wire_reader *r, struct xfer_packet *p)
{
        if (wire_get_u32be(r, &p->transfer_id) < 0 || wire_get_u32be(r, &p->seq) < 0 ||
            wire_get_u32be(r, &p->timestamp) < 0)
                return refuse(p, -EBADMSG, "truncated DATA");
        p->payload_len = wire_reader_remaining(r);
        if (wire_get_view(r, p->payload_len, &p->payload) < 0)
                return refuse(p, -EBADMSG, "truncated DATA"); /* cannot happen */
        return 0;
}

static int decode_ack(struct wire_reader *r, struct xfer_packet *p)
{
        uint8_t n_ranges;

        if (wire_get_u32be(r, &p->transfer_id) < 0 || wire_get_u32be(r, &p->cum) < 0 ||
            wire_get_u32be(r, &p->echo) < 0 || wire_get_u32be(r, &p->rwnd) < 0 ||
            wire_get_u8(r, &n_ranges) < 0)
                return refuse(p, -EBADMSG, "truncated ACK");
        /* Before reading any range: p->ranges holds NL_XFER_SACK_MAX. */
        if (n_ranges > NL_XFER_SACK_MAX)
                return refuse(p, -EBADMSG, "ACK with more than 32 ranges");
        if (wire_reader_remaining(r) < (size_t) n_ranges * ACK_RANGE_SIZE)
                return refuse(p, -EBADMSG, "truncated ACK");
        for (unsigned i = 0; i < n_ranges; i++)
                if (wire_get_u32be(r, &p->ranges[i].start) < 0 ||
                    wire_get_u32be(r, &p->ranges[i].end) < 0)
                        return refuse(p, -EBADMSG, "truncated ACK"); /* cannot happen */
        p->n_ranges = n_ranges;
        if (wire_reader_remaining(r) != 0)
                return refuse(p, -EBADMSG, "trailing bytes after ACK");
        return 0;
}

static int decode_end(struct wire_reader *r, struct xfer_packet *p)
{
        if (wire_get_u32be(r, &p->transfer_id) < 0 || wire_get_u8(r, &p->status) < 0)
                return refuse(p, -EBADMSG, "truncated END");
        p->body_len = wire_reader_remaining(r);
        if (wire_get_view(r, p->body_len, &p->body) < 0)
                return refuse(p, -EBADMSG, "truncated END"); /* cannot happen */
        return 0;
}

static int decode_done(struct wire_reader *r, struct xfer_packet *p)
{
        if (wire_get_u32be(r, &p->transfer_id) < 0)
                return refuse(p, -EBADMSG, "truncated DONE");
        if (wire_reader_remaining(r) != 0)
                return refuse(p, -EBADMSG, "trailing bytes after DONE");
        return 0;
}

static int decode_error(struct wire_reader *r, struct xfer_packet *p)
{
        if (wire_get_u32be(r, &p->client_id) < 0 || wire_get_u32be(r, &p->transfer_id) < 0 ||
            wire_get_u8(r, &p->status) < 0)
                return refuse(p, -EBADMSG, "truncated ERROR");
        p->body_len = wire_reader_remaining(r);
        if (wire_get_view(r, p->body_len, &p->body) < 0)
                return refuse(p, -EBADMSG, "truncated ERROR"); /* cannot happen */
        return 0;
}

int xfer_packet_decode(const uint8_t *buf, size_t n, struct xfer_packet *ret)
{
        struct wire_reader r;
        uint8_t magic0, magic1, version;
        const char *text = NULL;
        int k;

        *ret = (struct xfer_packet) {};
        wire_reader_init(&r, buf, n);
        if (wire_get_u8(&r, &magic0) < 0 || wire_get_u8(&r, &magic1) < 0 ||
            magic0 != NL_XFER_MAGIC_0 || magic1 != NL_XFER_MAGIC_1)
                return refuse(ret, -EBADMSG, "not a transfer datagram");
        if (wire_get_u8(&r, &version) < 0)
                return refuse(ret, -EBADMSG, "truncated header");
        if (version != NL_XFER_VERSION)
                return refuse(ret, -EPROTONOSUPPORT, "unsupported transfer version");
        if (wire_get_u8(&r, &ret->type) < 0)
                return refuse(ret, -EBADMSG, "truncated header");

        switch (ret->type) {
        case NL_XFER_REQUEST:
                k = decode_request(&r, n, ret);
                break;
        case NL_XFER_RETRY:
                k = decode_retry(&r, ret);
                break;
        case NL_XFER_ACCEPT:
                k = decode_accept(&r, ret);
                break;
        case NL_XFER_DATA:
                k = decode_data(&r, ret);
                break;
        case NL_XFER_ACK:
                k = decode_ack(&r, ret);
                break;
        case NL_XFER_END:
                k = decode_end(&r, ret);
                break;
        case NL_XFER_DONE:
                k = decode_done(&r, ret);
                break;
        case NL_XFER_ERROR:
                k = decode_error(&r, ret);
                break;
        default:
                return refuse(ret, -EBADMSG, "unknown transfer packet type");
        }
        if (k < 0)
                return k;

        k = packet_check(ret, &text);
        if (k < 0)
                return refuse(ret, k, text);
        return 0;
}

/* ---- encoding ---- */

static int put_header(struct wire_writer *w, uint8_t type)
{
        if (wire_put_u8(w, NL_XFER_MAGIC_0) < 0 || wire_put_u8(w, NL_XFER_MAGIC_1) < 0 ||
            wire_put_u8(w, NL_XFER_VERSION) < 0 || wire_put_u8(w, type) < 0)
                return -ENOBUFS;
        return 0;
}

/* The datagram size of a packet that passed packet_check(). */
static size_t packet_size(const struct xfer_packet *p)
{
        size_t n;

        switch (p->type) {
        case NL_XFER_REQUEST:
                n = REQUEST_FIXED + p->cookie_len + p->body_len;
                return n < NL_XFER_REQUEST_MIN ? NL_XFER_REQUEST_MIN : n;
        case NL_XFER_RETRY:
                return RETRY_FIXED + p->cookie_len;
        case NL_XFER_ACCEPT:
                return NL_XFER_ACCEPT_SIZE;
        case NL_XFER_DATA:
                return DATA_FIXED + p->payload_len;
        case NL_XFER_ACK:
                return ACK_FIXED + (size_t) p->n_ranges * ACK_RANGE_SIZE;
        case NL_XFER_END:
                return END_FIXED + p->body_len;
        case NL_XFER_DONE:
                return DONE_SIZE;
        case NL_XFER_ERROR:
                return ERROR_FIXED + p->body_len;
        default:
                return 0; /* refused by packet_check() */
        }
}

/* Write the fields after the header; buf was sized by packet_size(). */
static int put_fields(struct wire_writer *w, const struct xfer_packet *p,
                      const uint8_t info[NL_INFO_SIZE])
{
        static const uint8_t zeros[NL_XFER_REQUEST_MIN];

        switch (p->type) {
        case NL_XFER_REQUEST:
                if (wire_put_u32be(w, p->client_id) < 0 || wire_put_u16be(w, p->block_size) < 0 ||
                    wire_put_u32be(w, p->window) < 0 ||
                    wire_put_u8(w, (uint8_t) p->cookie_len) < 0 ||
                    wire_put_bytes(w, p->cookie, p->cookie_len) < 0 ||
                    wire_put_u16be(w, (uint16_t) p->body_len) < 0 ||
                    wire_put_bytes(w, p->body, p->body_len) < 0)
                        return -ENOBUFS;
                if (w->pos < NL_XFER_REQUEST_MIN &&
                    wire_put_bytes(w, zeros, NL_XFER_REQUEST_MIN - w->pos) < 0)
                        return -ENOBUFS;
                return 0;
        case NL_XFER_RETRY:
                if (wire_put_u32be(w, p->client_id) < 0 ||
                    wire_put_u8(w, (uint8_t) p->cookie_len) < 0 ||
                    wire_put_bytes(w, p->cookie, p->cookie_len) < 0)
                        return -ENOBUFS;
                return 0;
        case NL_XFER_ACCEPT:
                if (wire_put_u32be(w, p->client_id) < 0 || wire_put_u32be(w, p->transfer_id) < 0 ||
                    wire_put_u16be(w, p->block_size) < 0 || wire_put_u32be(w, p->window) < 0 ||
                    wire_put_u32be(w, p->timestamp) < 0 ||
                    wire_put_bytes(w, info, NL_INFO_SIZE) < 0)
                        return -ENOBUFS;
                return 0;
        case NL_XFER_DATA:
                if (wire_put_u32be(w, p->transfer_id) < 0 || wire_put_u32be(w, p->seq) < 0 ||
                    wire_put_u32be(w, p->timestamp) < 0 ||
                    wire_put_bytes(w, p->payload, p->payload_len) < 0)
                        return -ENOBUFS;
                return 0;
        case NL_XFER_ACK:
                if (wire_put_u32be(w, p->transfer_id) < 0 || wire_put_u32be(w, p->cum) < 0 ||
                    wire_put_u32be(w, p->echo) < 0 || wire_put_u32be(w, p->rwnd) < 0 ||
                    wire_put_u8(w, (uint8_t) p->n_ranges) < 0)
                        return -ENOBUFS;
                for (unsigned i = 0; i < p->n_ranges; i++)
                        if (wire_put_u32be(w, p->ranges[i].start) < 0 ||
                            wire_put_u32be(w, p->ranges[i].end) < 0)
                                return -ENOBUFS;
                return 0;
        case NL_XFER_END:
                if (wire_put_u32be(w, p->transfer_id) < 0 || wire_put_u8(w, p->status) < 0 ||
                    wire_put_bytes(w, p->body, p->body_len) < 0)
                        return -ENOBUFS;
                return 0;
        case NL_XFER_DONE:
                if (wire_put_u32be(w, p->transfer_id) < 0)
                        return -ENOBUFS;
                return 0;
        case NL_XFER_ERROR:
                if (wire_put_u32be(w, p->client_id) < 0 || wire_put_u32be(w, p->transfer_id) < 0 ||
                    wire_put_u8(w, p->status) < 0 || wire_put_bytes(w, p->body, p->body_len) < 0)
                        return -ENOBUFS;
                return 0;
        default:
                return -EINVAL;
        }
}

/* Does every length the packet's type uses come with its bytes? */
static bool bytes_present(const struct xfer_packet *p)
{
        bool cookie = p->cookie_len == 0 || p->cookie;
        bool body = p->body_len == 0 || p->body;

        switch (p->type) {
        case NL_XFER_REQUEST:
                return cookie && body;
        case NL_XFER_RETRY:
                return cookie;
        case NL_XFER_DATA:
                return p->payload_len == 0 || p->payload;
        case NL_XFER_END:
        case NL_XFER_ERROR:
                return body;
        default:
                return true;
        }
}

int xfer_packet_encode(uint8_t *buf, size_t size, const struct xfer_packet *p)
{
        uint8_t info[NL_INFO_SIZE] = {};
        struct wire_writer w;
        const char *text;
        size_t n;

        if (packet_check(p, &text) < 0)
                return -EINVAL;
        if (!bytes_present(p))
                return -EINVAL;
        if (p->type == NL_XFER_ACCEPT) {
                struct file_info check;

                /* Exactly the bytes the peer's file_info_decode() will judge. */
                if (file_info_encode(info, sizeof info, &p->info) != (int) NL_INFO_SIZE ||
                    file_info_decode(info, sizeof info, &check) < 0)
                        return -EINVAL;
        }

        /* Sized before anything is written: on -ENOBUFS buf is untouched. */
        n = packet_size(p);
        if (size < n)
                return -ENOBUFS;
        wire_writer_init(&w, buf, n);
        if (put_header(&w, p->type) < 0 || put_fields(&w, p, info) < 0 || w.pos != n)
                return -ENOBUFS; /* cannot happen: n is what the fields take */
        return (int) n;
}

void xfer_data_header_put(uint8_t buf[NL_XFER_DATA_HEADER], uint32_t transfer_id, uint32_t seq,
                          uint32_t timestamp)
{
        struct wire_writer w;

        /* 16 bytes into a 16-byte buffer: none of these can fail. */
        wire_writer_init(&w, buf, NL_XFER_DATA_HEADER);
        (void) put_header(&w, NL_XFER_DATA);
        (void) wire_put_u32be(&w, transfer_id);
        (void) wire_put_u32be(&w, seq);
        (void) wire_put_u32be(&w, timestamp);
}

bool xfer_is_packet(const uint8_t *buf, size_t n)
{
        struct wire_reader r;
        uint8_t m0, m1;

        wire_reader_init(&r, buf, n);
        return wire_get_u8(&r, &m0) == 0 && wire_get_u8(&r, &m1) == 0 && m0 == NL_XFER_MAGIC_0 &&
               m1 == NL_XFER_MAGIC_1;
}
