/* svc-file.h: what the file service's halves share.
 *
 * The file service runs over TCP (svc-file-tcp.c, with the lab download of
 * svc-lab-download.c on the same port) and over UDP (svc-file-udp.c in the
 * supervisor, xfer-send.c in each transfer's child).  Both transports read
 * the same listener options and run the same request checks (svc-file.c):
 * the lexical path check, the open beneath the root, the resume conditions
 * (validator, offset, tail hash) and the after-the-data check that the file
 * did not change, with the same refusal texts.  A check records its outcome
 * in a struct file_session (the client's status and text, the log entry);
 * the transport sends the refusal in its own form (a FILE_INFO or FILE_END
 * frame over TCP, an ERROR or END datagram over UDP). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "config.h"
#include "fileroot.h"
#include "log.h"
#include "proto.h"

struct conn;

struct file_options {
        char *root;             /* absolute path of the directory served */
        char *lab_file;         /* tcp: relative to root; NULL: no lab download on this listener */
        bool hide_dotfiles;     /* names starting with '.' are neither listed nor served */
        char *resolve;          /* "auto" or "walk" (fileroot.h) */
        enum fileroot_resolve resolve_mode; /* derived from resolve */

        /* udp only (svc-file-udp.c): */
        int64_t block_size_max;           /* bytes of file data per datagram, at most */
        int64_t window_max;               /* blocks in flight, at most */
        int64_t max_transfers;            /* running at once on this listener */
        int64_t max_transfers_per_source; /* ... for one client address */
};

/* The listener keys of each transport (the shared ones appear in both). */
extern const struct config_key file_tcp_keys[];
extern const struct config_key file_udp_keys[];

/* struct service's options_check for both transports: resolve mode, root is
 * an existing directory.  Return: NULL, or the problem (static or in buf). */
const char *file_options_check(void *options, char *buf, size_t size);

/* One file request: its log entry and, if refused, what the client gets. */
struct file_session {
        const struct file_options *o;
        struct request_log entry;  /* listener, service, remote: set by the transport */
        unsigned status;           /* a refusal to send: != NL_STATUS_OK */
        char text[320];            /* ... with this text (also the detail, at first) */
        char detail[384];          /* for the log: may say more than the client is told */
};

/* Record a refusal: status and text for the client, the same text as the
 * log's detail, result = the status's name, priority NOTICE. */
void file_session_refuse(struct file_session *s, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Set the log result, priority and (if fmt) detail; the client's status and
 * text stay as they are. */
void file_session_result(struct file_session *s, const char *result, int priority, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Check a decoded request's path lexically (with the listener's
 * hide_dotfiles) and name it (and a GET's offset) in the log entry once it
 * is known to be printable.  Return: 0; negative errno with a refusal
 * recorded (the log's detail names the path, escaped; the client's text
 * does not: the client knows it). */
int file_session_check_path(struct file_session *s, const struct file_request *req);

/* Open the request's path beneath the root as want asks.  Return: the fd
 * (caller closes) with *st filled; negative errno with a refusal recorded
 * (status INTERNAL for the admin's problems, then also logged at LOG_ERR). */
int file_session_open(struct file_session *s, const struct file_request *req, enum fileroot_want want,
                      struct stat *st);

/* FILE_INFO fields of st (kind, size, mtime, validator; offset and length 0). */
void file_info_from_stat(const struct stat *st, struct file_info *info);
/* enum file_kind of a mode. */
uint8_t file_kind_of(mode_t mode);

/* A GET up to its data: open the file, check the resume conditions (the
 * validator names this file, the offset is not past its end, the tail hash
 * matches the bytes before the offset) and fill *info for FILE_INFO/ACCEPT
 * (offset, length = size - offset, FILE_INFO_DIGEST_FOLLOWS if asked).
 * Return: the file's fd (caller closes); negative errno with a refusal
 * recorded (changed, range, mismatch, not found, ...; INTERNAL on a read
 * error). */
int file_get_prepare(struct file_session *s, const struct file_request *req, struct file_info *info);

/* A GET after its data: is the file still the one info describes (fstat
 * validator), and if the digest was asked, its SHA-256 (checked again after
 * hashing, which takes time of its own)?  sent: data bytes that left, for
 * the log.  Return: 0 with digest filled when asked (FILE_GET_DIGEST);
 * -ESTALE with a CHANGED refusal recorded (result "changed"); another
 * negative errno with an INTERNAL refusal recorded. */
int file_get_verify(struct file_session *s, int fd, const struct file_request *req,
                    const struct file_info *info, uint64_t sent, uint8_t digest[NL_DIGEST_SIZE]);

/* The file ended before `length` bytes were read: it shrank during the
 * transfer.  Records result "changed" and a detail with the counts; the
 * client's text is the CHANGED refusal's (for a transport that can still
 * tell it). */
void file_session_shrank(struct file_session *s, uint64_t sent, uint64_t length);

/* Serve a lab-format download (BRIEF.md) on c, given the bytes already read.
 * Runs in the child; logs the request.  Return: 0 or negative errno. */
int svc_lab_download_serve(struct conn *c, const struct file_options *o, const uint8_t *first,
                           size_t n_first);

/* End a connection after a download: the client has all it asked for, so a
 * plain close is right, but give it a moment to read the tail (svc-file-tcp.c). */
#define FILE_LINGER_USEC (2u * 1000000u)
