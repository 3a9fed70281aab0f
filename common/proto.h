/* proto.h: every netlab protocol constant in one place.
 *
 * Versions, frame types, status codes with their names and texts, and every
 * protocol limit.  docs/PROTOCOL.md describes the same bytes for humans; keep
 * the two in step. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

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

        /* File service (docs/PROTOCOL.md, "File service"). */
        NL_TYPE_FILE_GET = 0x10,     /* client -> server: struct file_request */
        NL_TYPE_FILE_STAT = 0x11,    /* client -> server: path only */
        NL_TYPE_FILE_LIST = 0x12,    /* client -> server: path only ("" = the root) */
        NL_TYPE_FILE_INFO = 0x20,    /* server -> client: first answer to every file request */
        NL_TYPE_FILE_END = 0x21,     /* server -> client: last frame of a GET or LIST */
        NL_TYPE_FILE_ENTRIES = 0x22, /* server -> client: a batch of directory entries */
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
        NL_STATUS_CHANGED = 9,   /* resume: the file is not the one the validator names */
        NL_STATUS_MISMATCH = 10, /* resume: the client's bytes before the offset differ */
        NL_STATUS_RANGE = 11,    /* the offset is past the end of the file */
        NL_STATUS_CANCELLED = 12, /* UDP transfer: the peer gave up (ERROR) */
        _NL_STATUS_MAX,
};

/* Message service limits. */
#define NL_MSG_MAX_DEFAULT 4096u       /* max_message default, bytes */
#define NL_MSG_MAX_LIMIT (1024u * 1024u) /* the largest max_message a config may set */
#define NL_REPLY_MAX (256u * 1024u)    /* largest reply body a server sends or a client accepts */
#define NL_ERROR_TEXT_MAX 1024u        /* largest error text in a frame body */

/* File service limits. */
#define NL_PATH_MAX 4096u              /* longest path in a request, bytes */
#define NL_NAME_MAX 255u               /* longest path component, bytes */
#define NL_VALIDATOR_SIZE 32u          /* an opaque validator: compare, never parse */
#define NL_DIGEST_SIZE 32u             /* SHA-256 */
#define NL_TAIL_MAX (1024u * 1024u)    /* most bytes before the offset a tail hash may cover */
#define NL_TAIL_DEFAULT (64u * 1024u)  /* what netlabctl hashes */
#define NL_FILE_REQUEST_MAX 8192u      /* largest file request body */
#define NL_ENTRIES_MAX (64u * 1024u)   /* largest FILE_ENTRIES body */
#define NL_INFO_SIZE 70u               /* FILE_INFO body with status OK */

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

/* proto-file.c: the file service's frames (docs/PROTOCOL.md, "File service").
 * Every decoder takes the frame body exactly (the header already decoded) and
 * refuses trailing bytes. */

enum file_request_flag {
        FILE_GET_DIGEST = 1u << 0, /* send the whole-file SHA-256 in FILE_END */
        _FILE_GET_FLAGS_ALL = FILE_GET_DIGEST,
};

struct file_request {
        uint8_t type;               /* NL_TYPE_FILE_GET, _STAT or _LIST */
        uint8_t flags;              /* GET: enum file_request_flag */
        uint64_t offset;            /* GET: first byte wanted */
        bool has_validator;         /* GET: resume only if the file still matches */
        uint8_t validator[NL_VALIDATOR_SIZE];
        uint32_t tail_len;          /* GET: bytes before offset covered by tail_hash (0: none) */
        uint8_t tail_hash[NL_DIGEST_SIZE];
        const uint8_t *path;        /* borrowed from the body; not NUL-terminated */
        size_t path_len;
        const char *problem;        /* on -EBADMSG/-E2BIG: what was wrong (static) */
};

/* Decode a file request body of a frame of the given type.  *ret is always
 * written (problem).  Return: 0; -EBADMSG (malformed, unknown flags, tail_len
 * > offset or > NL_TAIL_MAX, a validator length other than 0 or 32, trailing
 * bytes, bad path); -E2BIG (path longer than NL_PATH_MAX);
 * -EOPNOTSUPP (type is not a file request). */
int file_request_decode(uint8_t type, const uint8_t *body, size_t n, struct file_request *ret);

/* Encode a whole request frame (header included) into dst.
 * Return: the frame size; -ENOBUFS; -EINVAL for a bad request. */
int file_request_encode(uint8_t *dst, size_t size, const struct file_request *req);

/* Check a request path lexically (extra defence; the open beneath the root is
 * the real confinement): relative, components separated by single '/', no
 * empty, "." or ".." component, no component longer than NL_NAME_MAX, no NUL
 * or control byte (< 0x20, 0x7f), valid UTF-8, at most NL_PATH_MAX bytes.
 * The empty path means the root itself and is allowed only if allow_empty.
 * With hide_dotfiles a component starting with '.' is refused too.
 * Nothing is decoded or normalised.
 * Return: 0; -EBADMSG with *ret_problem set (static text); -E2BIG if too long;
 * -ENOENT for a dotfile component when hide_dotfiles. */
int file_path_check(const uint8_t *path, size_t n, bool allow_empty, bool hide_dotfiles,
                    const char **ret_problem);

enum file_kind {
        FILE_KIND_REGULAR = 1,
        FILE_KIND_DIRECTORY = 2,
        FILE_KIND_SYMLINK = 3, /* LIST only: an entry that is a symbolic link */
        FILE_KIND_OTHER = 4,   /* LIST only: FIFO, socket, device */
};

/* FILE_INFO body when status is OK (NL_INFO_SIZE bytes); otherwise the body
 * is the error text. */
struct file_info {
        uint8_t kind;               /* enum file_kind */
        uint8_t flags;              /* FILE_INFO_DIGEST_FOLLOWS */
        uint64_t size;
        uint64_t offset;            /* GET: where the data starts */
        uint64_t length;            /* GET: bytes of data that follow this frame */
        int64_t mtime_sec;
        uint32_t mtime_nsec;
        uint8_t validator[NL_VALIDATOR_SIZE];
};

enum file_info_flag {
        FILE_INFO_DIGEST_FOLLOWS = 1u << 0, /* FILE_END will carry the digest */
};

int file_info_encode(uint8_t *dst, size_t size, const struct file_info *info);
/* Return: 0; -EBADMSG if n != NL_INFO_SIZE, a kind is unknown, length >
 * size - offset, or nsec >= 1e9. */
int file_info_decode(const uint8_t *body, size_t n, struct file_info *ret);

/* FILE_END body with status OK: u8 digest length (0 or 32), digest. */
int file_end_encode(uint8_t *dst, size_t size, const uint8_t *digest /* or NULL */);
/* Return: 0 with *ret_has_digest; -EBADMSG. */
int file_end_decode(const uint8_t *body, size_t n, bool *ret_has_digest,
                    uint8_t ret_digest[NL_DIGEST_SIZE]);

/* One LIST entry: u8 kind, u64 size, s64 mtime seconds, u16 name length, name. */
struct file_entry {
        uint8_t kind;
        uint64_t size;
        int64_t mtime_sec;
        const uint8_t *name;        /* borrowed; not NUL-terminated */
        size_t name_len;
};

#define FILE_ENTRY_FIXED 19u        /* bytes of an entry besides its name */

/* Append one entry to w.  Return: 0; -ENOBUFS (nothing written); -EINVAL if
 * the name is empty or longer than NL_NAME_MAX. */
int file_entry_put(struct wire_writer *w, const struct file_entry *e);
/* Read the next entry of a FILE_ENTRIES body.  Return: 1 with *ret filled;
 * 0 at the end of the body; -EBADMSG (truncated entry, empty or over-long
 * name, unknown kind). */
int file_entry_next(struct wire_reader *r, struct file_entry *ret);

/* proto-lab.c: the lab's broken-download preamble (BRIEF.md): an ASCII '0',
 * '1' or '2' and a NUL; for '1' and '2' then 10 bytes of decimal offset, ended
 * by a NUL unless all ten are digits, the bytes after the NUL unspecified. */

#define LAB_DOWNLOAD_COMMAND_SIZE 2u
#define LAB_DOWNLOAD_OFFSET_SIZE 10u

struct lab_download_request {
        char command;               /* '0', '1' or '2' */
        uint64_t offset;            /* 0 for '0' */
        size_t consumed;            /* 2 or 12 */
        const char *problem;        /* on -EBADMSG */
};

/* Parse the preamble from the bytes received so far; identical results at
 * every split point.  Return: 0 when complete; -EAGAIN for more; -EBADMSG
 * (unknown command, no NUL after it, empty, signed, non-numeric offset). */
int lab_download_parse(const uint8_t *buf, size_t n, struct lab_download_request *ret);

/* Encode a lab request into dst (2 or 12 bytes; the offset NUL-padded).
 * Return: bytes written; -EINVAL for a bad command or an offset over 10 digits;
 * -ENOBUFS. */
int lab_download_encode(uint8_t *dst, size_t size, char command, uint64_t offset);

/* proto-guess.c: the guess service's text protocol, version 1
 * (docs/PROTOCOL.md, section 10.2).  One line per datagram; everything after
 * the first LF or '#' is padding and never read. */

#define NL_UDP_PAYLOAD_MAX 65527u      /* largest UDP payload (IPv6; IPv4's is 65507) */
#define NL_GUESS_REQUEST_MAX 1024u     /* longest request datagram, padding included */
#define NL_GUESS_REPLY_MAX 512u        /* longest reply line, LF included */
#define NL_GUESS_PAD 176u              /* netlabctl pads requests to this: 3 * 176 >= 512 */
#define NL_GUESS_VALUE_MAX 128u        /* longest guess value */
#define NL_GUESS_NAME_MAX 100u         /* longest person name or alias (config) */
#define NL_GUESS_HINT_MAX 400u         /* longest hint (config) */
#define NL_GUESS_AMPLIFY 3u            /* a reply is at most 3x its request (RFC 9000, 8) */

enum guess_verb {
        GUESS_PLAY,  /* "play [nonce=H] ..." */
        GUESS_GUESS, /* "guess [id=H] VALUE" */
        GUESS_BARE,  /* any other line: a guess in the open round */
};

struct guess_request {
        enum guess_verb verb;
        bool has_nonce;             /* PLAY */
        uint32_t nonce;
        bool has_id;                /* GUESS */
        uint32_t id;
        const char *value;          /* GUESS, BARE: borrowed, not NUL-terminated */
        size_t value_len;
        const char *problem;        /* on error: the ERR text (static) */
};

/* Parse one request datagram.  *ret is always written (problem).
 * Return: 0; -E2BIG if over NL_GUESS_REQUEST_MAX; -EBADMSG if the line is not
 * text, is empty, or is a malformed play/guess (problem says which). */
int guess_request_parse(const uint8_t *buf, size_t n, struct guess_request *ret);

/* Format a request line ("play nonce=H" or "guess id=H VALUE"; has_id/has_nonce
 * optional) and pad it with " #...." then LF to at least pad_to bytes.
 * Return: the datagram size; -EINVAL (value empty, too long, or containing
 * '#', LF or control characters); -ENOBUFS. */
int guess_request_format(char *buf, size_t size, const struct guess_request *req, size_t pad_to);

enum guess_reply_kind {
        GUESS_REPLY_ROUND,
        GUESS_REPLY_WIN,
        GUESS_REPLY_LOSE,
        GUESS_REPLY_WRONG,
        GUESS_REPLY_ERR,
};

struct guess_reply {
        enum guess_reply_kind kind;
        bool has_id;
        uint32_t id;
        unsigned tries;             /* ROUND: tries allowed; WRONG: tries left */
        bool has_range;             /* ROUND, number mode */
        int64_t lo, hi;
        const char *text;           /* ROUND: hint; WIN/LOSE: answer; ERR: text (may be empty) */
        size_t text_len;            /* borrowed from the reply buffer */
        int direction;              /* WRONG: +1 "higher", -1 "lower", 0 neither */
        unsigned status;            /* ERR: the status code */
};

/* Format a reply line, LF included.  Return: its size; -ENOBUFS if it does not
 * fit size (nothing useful written); -EINVAL for a bad reply. */
int guess_reply_format(char *buf, size_t size, const struct guess_reply *r);

/* Parse a reply datagram (exactly one line, LF-terminated).  Text fields
 * point into buf.  Return: 0; -EBADMSG (unknown keyword, missing or malformed
 * field, not UTF-8, control characters, no LF, over NL_GUESS_REPLY_MAX). */
int guess_reply_parse(const uint8_t *buf, size_t n, struct guess_reply *ret);

/* Do two names match: equal after folding ASCII case and dropping spaces,
 * TABs, '.', '-' and '\''?  Names that reduce to nothing never match. */
bool guess_names_match(const char *a, size_t a_len, const char *b, size_t b_len);

/* Parse a number-mode guess: optional '-', decimal digits, no leading zeros,
 * within [-10^9, 10^9].  Return: 0; -EINVAL. */
int guess_number_parse(const char *s, size_t n, int64_t *ret);

/* proto-xfer.c: netlab's reliable transfer over UDP, version 1
 * (docs/PROTOCOL.md, section 11).  Every datagram starts with 4 bytes:
 *   0  1  0x00   (never the first byte of a guess or echo text line)
 *   1  1  'X'
 *   2  1  version (NL_XFER_VERSION)
 *   3  1  type (enum nl_xfer_type)
 * then the type's fields, big-endian, and nothing after them (except the
 * REQUEST's zero padding).  The layouts (offsets from the datagram start):
 *
 * REQUEST  C->S listener  4 u32 client_id (!= 0)  8 u16 block_max  10 u32 window
 *                         14 u8 cookie_len (0..NL_XFER_COOKIE_MAX)  15 cookie
 *                         u16 body_len (<= NL_FILE_REQUEST_MAX), body (a FILE_GET
 *                         body exactly as over TCP, section 8), then zero bytes
 *                         to at least NL_XFER_REQUEST_MIN, at most NL_XFER_REQUEST_MAX
 * RETRY    S->C listener  4 u32 client_id  8 u8 cookie_len (1..)  9 cookie
 * ACCEPT   S->C transfer  4 u32 client_id  8 u32 transfer_id (!= 0)  12 u16 block_size
 *                         14 u32 window  18 u32 timestamp  22 FILE_INFO body
 *                         (NL_INFO_SIZE bytes, file_info_decode())
 * DATA     S->C transfer  4 u32 transfer_id  8 u32 seq  12 u32 timestamp
 *                         16 payload (1..NL_XFER_BLOCK_MAX bytes)
 * ACK      C->S transfer  4 u32 transfer_id  8 u32 cum  12 u32 echo  16 u32 rwnd
 *                         20 u8 n_ranges (<= NL_XFER_SACK_MAX)
 *                         21 n_ranges x (u32 start, u32 end): start > cum,
 *                         start < end, ascending, prev.end < next.start
 * END      S->C transfer  4 u32 transfer_id  8 u8 status  9 body: status OK: a
 *                         FILE_END body (u8 digest length 0|32, digest); else
 *                         error text (<= NL_ERROR_TEXT_MAX)
 * DONE     C->S transfer  4 u32 transfer_id
 * ERROR    either way     4 u32 client_id  8 u32 transfer_id (0: none yet)
 *                         12 u8 status (!= OK)  13 text (<= NL_ERROR_TEXT_MAX)
 */

#define NL_XFER_MAGIC_0 0x00
#define NL_XFER_MAGIC_1 'X'
#define NL_XFER_VERSION 1
#define NL_XFER_HEADER_SIZE 4u
#define NL_XFER_REQUEST_MIN 1200u      /* REQUEST padding (RFC 9000, 14.1): 3x covers any refusal */
#define NL_XFER_REQUEST_MAX 9216u      /* largest REQUEST, padding included */
#define NL_XFER_AMPLIFY 3u             /* before validation: at most 3x the bytes received */
#define NL_XFER_COOKIE_MAX 32u
#define NL_XFER_BLOCK_MIN 512u         /* smallest block size either side may ask for */
#define NL_XFER_BLOCK_MAX 65464u       /* largest: 16 + 65464 fits an IPv4 UDP payload */
#define NL_XFER_BLOCK_SAFE 1200u       /* when the path MTU is unknown (RFC 9000, 14) */
#define NL_XFER_DATA_HEADER 16u        /* DATA bytes before the payload */
#define NL_XFER_WINDOW_MAX 65536u      /* largest window, in blocks */
#define NL_XFER_SACK_MAX 32u           /* ranges in one ACK */
#define NL_XFER_ACK_MAX (21u + 8u * NL_XFER_SACK_MAX)
#define NL_XFER_ACCEPT_SIZE (22u + NL_INFO_SIZE)
#define NL_XFER_DATAGRAM_MAX (NL_XFER_DATA_HEADER + NL_XFER_BLOCK_MAX)

enum nl_xfer_type {
        NL_XFER_REQUEST = 0x01,
        NL_XFER_RETRY = 0x02,
        NL_XFER_ACCEPT = 0x03,
        NL_XFER_DATA = 0x04,
        NL_XFER_ACK = 0x05,
        NL_XFER_END = 0x06,
        NL_XFER_DONE = 0x07,
        NL_XFER_ERROR = 0x08,
};

struct xfer_range {
        uint32_t start;                 /* first block of the range */
        uint32_t end;                   /* one past its last block */
};

/* One decoded datagram; which fields mean something depends on type (see
 * the layouts above).  Pointers borrow from the decoded buffer. */
struct xfer_packet {
        uint8_t type;                   /* enum nl_xfer_type */
        uint32_t client_id;             /* REQUEST RETRY ACCEPT ERROR */
        uint32_t transfer_id;           /* ACCEPT DATA ACK END DONE ERROR */

        uint16_t block_size;            /* REQUEST: the largest the client takes; ACCEPT: chosen */
        uint32_t window;                /* REQUEST: the client's most; ACCEPT: chosen (blocks) */
        const uint8_t *cookie;          /* REQUEST (may be empty), RETRY */
        size_t cookie_len;
        const uint8_t *body;            /* REQUEST: FILE_GET body; END: FILE_END body or text; ERROR: text */
        size_t body_len;

        uint32_t timestamp;             /* ACCEPT, DATA: the sender's clock (microseconds, wraps) */
        struct file_info info;          /* ACCEPT */

        uint32_t seq;                   /* DATA */
        const uint8_t *payload;         /* DATA */
        size_t payload_len;

        uint32_t cum;                   /* ACK: every block below cum has arrived */
        uint32_t echo;                  /* ACK: timestamp of the DATA (or ACCEPT) that prompted it */
        uint32_t rwnd;                  /* ACK: blocks the client can take from cum on */
        unsigned n_ranges;              /* ACK */
        struct xfer_range ranges[NL_XFER_SACK_MAX];

        uint8_t status;                 /* END, ERROR */
        const char *problem;            /* on decode errors: what was wrong (static) */
};

/* Decode one datagram.  *ret is always written (problem).
 * Return: 0; -EBADMSG (not a transfer datagram, wrong length for its type,
 * a field out of range, non-zero padding, a REQUEST shorter than
 * NL_XFER_REQUEST_MIN; problem says which); -EPROTONOSUPPORT (magic right,
 * version not NL_XFER_VERSION); -E2BIG (REQUEST over NL_XFER_REQUEST_MAX, or
 * a text over NL_ERROR_TEXT_MAX). */
int xfer_packet_decode(const uint8_t *buf, size_t n, struct xfer_packet *ret);

/* Encode p into buf.  DATA copies p->payload (use xfer_data_header_put() to
 * read file data straight into place instead).  REQUEST is padded with zeros
 * to NL_XFER_REQUEST_MIN.
 * Return: the datagram's size; -ENOBUFS if buf is too small; -EINVAL for a
 * packet the decoder would refuse. */
int xfer_packet_encode(uint8_t *buf, size_t size, const struct xfer_packet *p);

/* Write the NL_XFER_DATA_HEADER bytes of a DATA datagram into buf. */
void xfer_data_header_put(uint8_t buf[NL_XFER_DATA_HEADER], uint32_t transfer_id, uint32_t seq,
                          uint32_t timestamp);

/* Does buf start like a transfer datagram (first two bytes)? */
bool xfer_is_packet(const uint8_t *buf, size_t n);
