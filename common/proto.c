/* proto.c: status names and texts, frame header codec.  Pure: no I/O. */
#include <errno.h>

#include "proto.h"
#include "util.h"
#include "wire.h"

static const struct {
        const char *name;
        const char *text;
} status_table[_NL_STATUS_MAX] = {
        [NL_STATUS_OK] = { "ok", "ok" },
        [NL_STATUS_BAD_REQUEST] = { "bad-request", "bad request" },
        [NL_STATUS_TOO_LONG] = { "too-long", "request too long" },
        [NL_STATUS_BUSY] = { "busy", "server busy, try again later" },
        [NL_STATUS_NOT_FOUND] = { "not-found", "not found" },
        [NL_STATUS_NOT_PERMITTED] = { "not-permitted", "not permitted" },
        [NL_STATUS_TIMEOUT] = { "timeout", "timed out" },
        [NL_STATUS_UNSUPPORTED] = { "unsupported", "unsupported protocol version or request" },
        [NL_STATUS_INTERNAL] = { "internal-error", "internal server error" },
        [NL_STATUS_CHANGED] = { "changed", "the file changed on the server" },
        [NL_STATUS_MISMATCH] = { "mismatch", "the local data before the offset differs from the server's" },
        [NL_STATUS_RANGE] = { "range", "offset past the end of the file" },
        [NL_STATUS_CANCELLED] = { "cancelled", "the transfer was cancelled" },
};

const char *nl_status_name(unsigned status)
{
        if (status >= _NL_STATUS_MAX)
                return "unknown";
        return status_table[status].name;
}

const char *nl_status_text(unsigned status)
{
        if (status >= _NL_STATUS_MAX)
                return "unknown status";
        return status_table[status].text;
}

enum nl_status nl_status_from_errno(int negative_errno)
{
        switch (negative_errno) {
        case 0:
                return NL_STATUS_OK;
        case -EBADMSG:
        case -ENODATA:
                return NL_STATUS_BAD_REQUEST;
        case -E2BIG:
        case -EMSGSIZE:
                return NL_STATUS_TOO_LONG;
        case -EBUSY:
        case -EAGAIN:
                return NL_STATUS_BUSY;
        case -ENOENT:
                return NL_STATUS_NOT_FOUND;
        case -EACCES:
        case -EPERM:
                return NL_STATUS_NOT_PERMITTED;
        case -ETIMEDOUT:
                return NL_STATUS_TIMEOUT;
        case -EPROTONOSUPPORT:
        case -EOPNOTSUPP:
                return NL_STATUS_UNSUPPORTED;
        default:
                return NL_STATUS_INTERNAL;
        }
}

bool nl_is_frame_start(const uint8_t *buf, size_t n)
{
        return n > 0 && buf[0] == NL_MAGIC_0;
}

int nl_header_decode(const uint8_t *buf, size_t n, struct nl_header *ret)
{
        static const uint8_t magic[3] = { NL_MAGIC_0, NL_MAGIC_1, NL_MAGIC_2 };
        struct wire_reader r;
        uint8_t m[3], version, type, status;
        uint16_t reserved;
        uint32_t length;

        /* Refuse a wrong magic as early as its first wrong byte. */
        for (size_t i = 0; i < n && i < sizeof magic; i++)
                if (buf[i] != magic[i])
                        return -EBADMSG;
        if (n < NL_HEADER_SIZE)
                return -EAGAIN;

        wire_reader_init(&r, buf, n);
        if (wire_get_bytes(&r, m, sizeof m) < 0 ||
            wire_get_u8(&r, &version) < 0 || wire_get_u8(&r, &type) < 0 ||
            wire_get_u8(&r, &status) < 0 || wire_get_u16be(&r, &reserved) < 0 ||
            wire_get_u32be(&r, &length) < 0)
                return -EBADMSG;

        /* A wrong version is reported with the header filled in, so the
         * caller can name the version it saw. */
        if (version == NL_VERSION && reserved != 0)
                return -EBADMSG;
        *ret = (struct nl_header) {
                .version = version,
                .type = type,
                .status = status,
                .length = length,
        };
        return version != NL_VERSION ? -EPROTONOSUPPORT : 0;
}

int nl_frame_encode(uint8_t *dst, size_t dst_size, uint8_t type, uint8_t status,
                    const void *body, size_t body_len)
{
        struct wire_writer w;

        if (body_len > UINT32_MAX)
                return -E2BIG;
        if (dst_size < NL_HEADER_SIZE || dst_size - NL_HEADER_SIZE < body_len)
                return -ENOBUFS;

        wire_writer_init(&w, dst, dst_size);
        if (wire_put_u8(&w, NL_MAGIC_0) < 0 || wire_put_u8(&w, NL_MAGIC_1) < 0 ||
            wire_put_u8(&w, NL_MAGIC_2) < 0 || wire_put_u8(&w, NL_VERSION) < 0 ||
            wire_put_u8(&w, type) < 0 || wire_put_u8(&w, status) < 0 ||
            wire_put_u16be(&w, 0) < 0 || wire_put_u32be(&w, (uint32_t) body_len) < 0 ||
            wire_put_bytes(&w, body, body_len) < 0)
                return -ENOBUFS;
        return (int) w.pos;
}
