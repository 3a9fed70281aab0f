/* proto.h: every netlab protocol constant in one place.
 *
 * Versions, frame types, status codes with their names and texts, and every
 * protocol limit.  docs/PROTOCOL.md describes the same bytes for humans; keep
 * the two in step. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Frame header (docs/PROTOCOL.md, "Frames"):
 *   0  3  magic 0x00 'N' 'L'   (a NUL first byte: lab text never contains one)
 *   3  1  version
 *   4  1  type
 *   5  1  status (0 in requests)
 *   6  2  reserved, must be 0
 *   8  4  body length, big-endian */
#define NL_MAGIC_0 0x00
#define NL_MAGIC_1 'N'
#define NL_MAGIC_2 'L'
#define NL_VERSION 1
#define NL_HEADER_SIZE 12

enum nl_type {
        NL_TYPE_MSG_SEND = 0x01,  /* client -> server: body = message text */
        NL_TYPE_MSG_REPLY = 0x02, /* server -> client: body = reply or error text */
};

enum nl_status {
        NL_STATUS_OK = 0,
        NL_STATUS_BAD_REQUEST = 1,
        NL_STATUS_TOO_LONG = 2,
        NL_STATUS_BUSY = 3,
        NL_STATUS_NOT_FOUND = 4,
        NL_STATUS_NOT_PERMITTED = 5,
        NL_STATUS_TIMEOUT = 6,
        NL_STATUS_UNSUPPORTED = 7,
        NL_STATUS_INTERNAL = 8,
        _NL_STATUS_MAX,
};

/* Message service limits. */
#define NL_MSG_MAX_DEFAULT 4096u       /* max_message default, bytes */
#define NL_MSG_MAX_LIMIT (1024u * 1024u) /* the largest max_message a config may set */
#define NL_REPLY_MAX (256u * 1024u)    /* largest reply body a server sends or a client accepts */
#define NL_ERROR_TEXT_MAX 1024u        /* largest error text in a frame body */

/* Short machine name of a status ("busy"), or "unknown". */
const char *nl_status_name(unsigned status);

/* Default human-readable text of a status ("server busy"), or "unknown status". */
const char *nl_status_text(unsigned status);

/* Map a negative errno returned by a parser or an I/O helper to the status the
 * peer should see: -EBADMSG -> BAD_REQUEST, -E2BIG -> TOO_LONG, -EBUSY -> BUSY,
 * -ENOENT -> NOT_FOUND, -EACCES/-EPERM -> NOT_PERMITTED, -ETIMEDOUT -> TIMEOUT,
 * -EPROTONOSUPPORT/-EOPNOTSUPP -> UNSUPPORTED; also 0 -> OK, -ENODATA ->
 * BAD_REQUEST, -EMSGSIZE -> TOO_LONG, -EAGAIN -> BUSY; anything else -> INTERNAL. */
enum nl_status nl_status_from_errno(int negative_errno);

struct nl_header {
        uint8_t version;
        uint8_t type;
        uint8_t status;
        uint32_t length;
};

/* Does the stream start like a netlab frame?  Needs only the first byte.
 * Return: true if buf[0] is the frame's first magic byte. */
bool nl_is_frame_start(const uint8_t *buf, size_t n);

/* Decode a frame header from the first bytes of buf.
 * Return: 0 with *ret filled; -EAGAIN if fewer than NL_HEADER_SIZE bytes are
 * present and those present are a valid prefix; -EBADMSG on a wrong magic or
 * non-zero reserved bytes; -EPROTONOSUPPORT if the version is not NL_VERSION
 * (*ret is filled anyway so the caller can name the version it saw). */
int nl_header_decode(const uint8_t *buf, size_t n, struct nl_header *ret);

/* Encode a whole frame (header + body) into dst.
 * Return: the frame size; -E2BIG if body_len does not fit the length field;
 * -ENOBUFS if dst is too small. */
int nl_frame_encode(uint8_t *dst, size_t dst_size, uint8_t type, uint8_t status,
                    const void *body, size_t body_len);

/* proto-message.c: the message service's request, in netlab or lab/text form. */

enum msg_format {
        MSG_FORMAT_NETLAB, /* starts with a frame header */
        MSG_FORMAT_TEXT,   /* anything else: the lab's bare text, or a line */
};

struct msg_request {
        enum msg_format format;
        size_t text_offset;  /* where the message text starts in the buffer */
        size_t text_len;     /* its length, without any terminator */
        bool newline;        /* text form: ended by LF (reply with LF too) */
        uint8_t version;     /* netlab form: version the client sent */
        const char *problem; /* on -EBADMSG/-E2BIG/-EPROTONOSUPPORT: what was wrong */
        size_t bad_offset;   /* on a charset problem: offset of the bad byte in the text */
};

/* Parse a message request from the bytes received so far.  Incremental: call
 * again with more bytes.  `end` says no more bytes will come (EOF, or the text
 * form's settle time passed).  `max` is the listener's max_message.
 * *req is always written (format, problem).
 * Return: 0 when a complete request is in buf; -EAGAIN if more bytes are
 * needed; -ENODATA if end is set and nothing was received; -EBADMSG for a
 * malformed request; -E2BIG if the message is longer than max;
 * -EPROTONOSUPPORT for an unknown frame version. */
int msg_request_parse(const uint8_t *buf, size_t n, bool end, size_t max, struct msg_request *req);
