/* svc-lab-download.c: the lab sheet's "broken download" (BRIEF.md, "Lab wire
 * formats") on a file listener that names a lab_file.
 *
 * Runs in the forked child, called by svc-file-tcp.c when the first byte is
 * an ASCII digit.  The preamble (2 bytes, then 10 for commands 1 and 2) is
 * parsed incrementally by common/proto-lab.c, so it may arrive split at any
 * byte, but it must be complete by the header deadline.  The lab client
 * writes every byte it receives into its destination file, so refusals get
 * no error text, only a close and a log entry: text would corrupt the
 * student's file.  An offset at or past the end sends
 * nothing and closes cleanly, as the lab server's fseek() past the end did. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "conn.h"
#include "fileroot.h"
#include "log.h"
#include "proto.h"
#include "svc-file.h"
#include "util.h"

int svc_lab_download_serve(struct conn *c, const struct file_options *o, const uint8_t *first,
                           size_t n_first)
{
        uint8_t buf[LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE];
        struct lab_download_request req = {};
        struct request_log entry = {
                .listener = c->listener->name,
                .service = "file",
                .remote_addr = c->remote_addr,
                .remote_port = c->remote_port,
                .file = (const uint8_t *) o->lab_file,
                .file_len = strlen(o->lab_file),
                .result = "ok",
                .priority = LOG_INFO,
        };
        char detail[256] = "", why[160];
        _cleanup_close_ int root_fd = -1, fd = -1;
        size_t n = n_first < sizeof buf ? n_first : sizeof buf;
        uint64_t sent = 0;
        struct stat st;
        int r;

        /* Bytes past the preamble (none from a lab client) are ignored. */
        memcpy(buf, first, n);
        for (;;) {
                r = lab_download_parse(buf, n, &req);
                if (r != -EAGAIN)
                        break;
                ssize_t k = conn_read(c, buf + n, sizeof buf - n);
                if (k <= 0) {
                        r = k == 0 ? -EPIPE : (int) k;
                        break;
                }
                n += (size_t) k;
        }

        if (r == -EBADMSG) {
                entry.result = "bad-request";
                entry.priority = LOG_NOTICE;
                (void) xsnprintf(detail, sizeof detail, "lab download refused: %s", req.problem);
                goto finish;
        }
        if (r < 0) {
                entry.result = r == -ETIMEDOUT ? "timeout" : "no-request";
                entry.priority = LOG_NOTICE;
                if (r == -ETIMEDOUT)
                        (void) xsnprintf(detail, sizeof detail, "the lab request did not arrive in time: %s",
                                         conn_timeout_text(c, why, sizeof why));
                else
                        (void) xsnprintf(detail, sizeof detail, "%s",
                                         r == -EPIPE ? "the client closed before its lab request was complete"
                                                     : "reading the lab request failed");
                goto finish;
        }
        entry.has_offset = true;
        entry.offset = req.offset;
        conn_header_done(c);
        c->deadline_usec = UINT64_MAX; /* the transfer is bounded by the idle timeout */

        root_fd = fileroot_open_root(o->root);
        if (root_fd >= 0)
                fd = fileroot_open(root_fd, (const uint8_t *) o->lab_file, strlen(o->lab_file),
                                   o->resolve_mode, FILEROOT_WANT_FILE, &st);
        if (root_fd < 0 || fd < 0) {
                r = root_fd < 0 ? root_fd : fd;
                entry.result = r == -ENOENT ? "not-found" : "not-permitted";
                entry.priority = LOG_ERR;
                (void) xsnprintf(detail, sizeof detail, "lab_file %s under root %s cannot be served: %s",
                                 o->lab_file, o->root, strerror(-r));
                goto finish;
        }

        uint64_t size = st.st_size > 0 ? (uint64_t) st.st_size : 0;
        if (req.offset >= size) {
                if (req.offset > size) {
                        entry.result = "range";
                        (void) xsnprintf(detail, sizeof detail,
                                         "offset %llu is past the end of the file (%llu bytes): nothing sent",
                                         (unsigned long long) req.offset, (unsigned long long) size);
                }
                r = 0;
                goto finish;
        }

        r = conn_sendfile(c, fd, req.offset, size - req.offset, &sent);
        if (r == -ENODATA) {
                entry.result = "changed";
                entry.priority = LOG_WARNING;
                (void) xsnprintf(detail, sizeof detail,
                                 "the file shrank during the transfer: %llu of %llu bytes sent",
                                 (unsigned long long) sent, (unsigned long long) (size - req.offset));
        } else if (r < 0) {
                entry.result = r == -ETIMEDOUT ? "timeout" : "send-failed";
                entry.priority = LOG_NOTICE;
                (void) xsnprintf(detail, sizeof detail, "%llu of %llu bytes sent: %s%s",
                                 (unsigned long long) sent, (unsigned long long) (size - req.offset),
                                 r == -ETIMEDOUT ? "the client stopped reading; " : "",
                                 r == -ETIMEDOUT ? conn_timeout_text(c, why, sizeof why) : strerror(-r));
        }

finish:
        entry.detail = detail[0] ? detail : NULL;
        conn_end_request(c, &entry, FILE_LINGER_USEC);
        return r < 0 ? r : 0;
}
