/* cmd-fetch.c: `netlabctl fetch`: download a file from a file service, and
 * resume it without ever handing back a corrupt file (BRIEF.md, "Resume that
 * never corrupts").
 *
 * netlab form: one FILE_GET; FILE_INFO; exactly `length` raw bytes; FILE_END
 * (docs/PROTOCOL.md, section 8), over TCP or, with --udp, over netlab's
 * reliable UDP transfer (section 11: the same FILE_GET in a REQUEST, the
 * FILE_INFO in ACCEPT, the FILE_END in END; cli/xfer-recv.c).  Only `struct
 * transport` differs: the request, the checks of FILE_INFO, the local files,
 * the end, --verify and the report are shared.  --lab form: the lab's 2- or
 * 12-byte preamble, then the bytes until the server closes (section 9).
 *
 * Local state: the data goes to OUT.netlab-part, and what the server said
 * about the file (its validator) to OUT.netlab-meta, written atomically before
 * the first data byte.  Only a complete (and, with --verify, checked) file is
 * renamed to OUT.  Anything that stops a transfer keeps both files so that
 * --resume can continue: it sends the offset, the validator and a hash of the
 * last bytes it holds, and the server refuses a resume that would corrupt.
 *
 * Data path over TCP: splice(2) socket -> pipe -> file, so the bytes never
 * enter user space; --discard drops them in the kernel with recv(MSG_TRUNC).
 * Over UDP: pwritev() of runs of blocks straight from the receive buffers.  Waits
 * wake for batches (SO_RCVLOWAT), not for every segment.  The server
 * is not trusted: FILE_INFO is checked against the request, no more than
 * `length` bytes are read as data, and every wait is bounded by the timeout
 * ("no progress for this long"). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cli.h"
#include "digest.h"
#include "proto.h"
#include "util.h"

#define PART_SUFFIX ".netlab-part"
#define META_SUFFIX ".netlab-meta"
#define META_TMP_SUFFIX ".netlab-meta.tmp"
#define NEW_SUFFIX ".netlab-new"          /* the part on its way to replace OUT */
#define META_MAX 16384u                   /* a meta file is ~200 bytes plus the path */
#define LAB_DEFAULT_OUT "source_file.txt" /* the lab sheet's name for the file served */
#define LAB_OFFSET_MAX 9999999999ull      /* the lab's 10-byte decimal field */
#define PIPE_WANT (1024u * 1024u)         /* splice pipe: 1 MiB, the default pipe-max-size */
#define COPY_BUF (1024u * 1024u)          /* when splice cannot be used */
#define DISCARD_CHUNK (4u * 1024u * 1024u)
#define RCVLOWAT (1024u * 1024u)          /* wake for at least this much (set_lowat()) */
#define WAIT_TICK_MS 100                  /* look for fewer bytes this often (wait_readable()) */
#define FETCH_RESTARTS_MAX 1              /* more would chase a file being written */

struct sink {
        int fd;        /* where the data goes; -1 for --discard */
        bool seekable; /* a regular file: write at pos */
        uint64_t pos;  /* offset in fd of the next byte (seekable only) */
        bool escape;   /* standard output is a terminal: escape what could drive it */
        bool copy;     /* splice is not possible: recv() + write() through buf */
        int pipe[2];
        size_t pipe_size;
        uint8_t *buf;
};

struct fetch {
        /* What was asked. */
        const char *path; /* on the server; NULL in lab mode without PATH */
        bool lab, resume, no_restart, verify, verify_explicit, discard;
        bool to_stdout; /* -o - */
        bool to_device; /* OUT is a character device or a FIFO: written directly */
        bool offset_given;
        uint64_t offset; /* --offset */

        /* Local names; empty with --discard and -o -. */
        char out[PATH_MAX], part[PATH_MAX], meta[PATH_MAX], meta_tmp[PATH_MAX];
        int part_fd;
        bool part_created; /* by this run: remove it again if the server refuses */

        /* The local data: the part holds bytes [start, start + local) of the file. */
        uint64_t start, local;
        bool has_validator;
        uint8_t validator[NL_VALIDATOR_SIZE];

        /* Results. */
        bool resumed, restarted;
        uint64_t req_offset; /* where the data of the last attempt started */
        uint64_t received;   /* data bytes of the last attempt */
        bool size_known;
        struct file_info info;
        bool has_digest;
        uint8_t digest[NL_DIGEST_SIZE];
        uint64_t start_usec;
        char keep[PATH_MAX + 128]; /* the "partial file kept" sentence, or "" */

        struct sink sink;
        struct progress progress;

        /* The transport of the netlab form. */
        bool udp;
        uint32_t block_size; /* --block-size; 0: what the path allows */
        uint32_t window;     /* --window; 0: the default */
        int sock;            /* TCP */
        uint8_t frame[NL_ERROR_TEXT_MAX];
        struct xfer_recv *xr; /* UDP */
        struct xfer_recv_params xparams;
        struct xfer_recv_report xrep;
        uint8_t get[NL_FILE_REQUEST_MAX];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
        interrupted = sig;
}

static void help(void)
{
        printf("Usage: %s fetch [OPTIONS] PATH\n"
               "       %s fetch --lab [OPTIONS] [PATH]\n"
               "\n"
               "Download PATH (relative to the server's root) from a file service into OUT,\n"
               "by default the last component of PATH in the current directory. The data\n"
               "goes to OUT.netlab-part (with OUT.netlab-meta beside it) and is renamed to OUT\n"
               "only when complete; an interrupted download can be continued with --resume.\n"
               "\n"
               "Options:\n"
               "  -o, --output=OUT       write to OUT (\"-\": standard output; an existing\n"
               "                         directory or a name ending in \"/\": the default\n"
               "                         name in it)\n"
               "  -C, --resume           continue OUT.netlab-part if there is one; if the\n"
               "                         server's file changed, start over (or see\n"
               "                         --no-restart)\n"
               "      --no-restart       with --resume: stop with exit status 9 instead of\n"
               "                         starting over, keeping the partial file\n"
               "      --offset=N         download only bytes N to the end into OUT\n"
               "      --verify           check the whole file's SHA-256 against the server's\n"
               "      --no-verify        do not, even if the INI file says verify = true\n"
               "      --discard          download and drop the data (no file; for link tests)\n"
               "  -l, --lab              speak the lab's broken-download format (no file names,\n"
               "                         no validator: the end of the data is when the server\n"
               "                         closes, and --resume is blind like curl -C -);\n"
               "                         OUT defaults to the last component of PATH, else\n"
               "                         " LAB_DEFAULT_OUT "\n"
               "      --no-lab           netlab's format even if the INI file says lab = true\n"
               "      --udp              transfer over UDP (netlab's reliable transfer: same\n"
               "                         files, resume and checks as over TCP)\n"
               "      --block-size=BYTES with --udp: the largest block to ask for, 512 to\n"
               "                         65464 (default: what the path's MTU allows)\n"
               "      --window=BLOCKS    with --udp: the most blocks in flight, 1 to 65536\n"
               "                         (default: 64 MiB worth of blocks)\n"
               COMMON_OPTIONS_HELP
               "\n"
               "The port defaults to [fetch] port in the INI file, else 5001. A progress bar is\n"
               "drawn on standard error when it is a terminal and --json is not given.\n"
               "Exit status: 0 done, 2 usage, 3 cannot connect, 4 refused by the server,\n"
               "5 server busy, 6 protocol error or connection lost, 7 timeout, 8 local file\n"
               "error, 9 the server's file changed (see --no-restart), 10 --verify found a\n"
               "different digest (see netlabctl(1)).\n",
               program_name, program_name);
}

/* ---- local files ---- */

static int hex_decode(const char *s, uint8_t *out, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int v = 0;
                for (int j = 0; j < 2; j++) {
                        char ch = s[2 * i + (size_t) j];
                        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                         : -1;
                        if (d < 0)
                                return -EINVAL;
                        v = v * 16 + d;
                }
                out[i] = (uint8_t) v;
        }
        return s[2 * n] == '\0' ? 0 : -EINVAL;
}

/* Read OUT.netlab-meta into f (start, validator).  A missing file is normal; a
 * file that cannot be used is reported and ignored: the resume then rests on
 * the tail hash alone, which the server checks all the same. */
static void meta_read(struct fetch *f)
{
        _cleanup_close_ int fd = open(f->meta, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        char buf[META_MAX + 1];
        const char *why = NULL;
        struct stat st;
        size_t n = 0;

        if (fd < 0) {
                if (errno != ENOENT)
                        fprintf(stderr, "%s: cannot read %s: %s; resuming on the tail hash alone\n",
                                program_name, f->meta, strerror(errno));
                return;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t) META_MAX) {
                fprintf(stderr, "%s: %s is not a netlab meta file, ignoring it\n", program_name,
                        f->meta);
                return;
        }
        while (n < META_MAX) {
                ssize_t k = read(fd, buf + n, META_MAX - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';

        uint64_t start = 0;
        bool has_validator = false, path_ok = false, header = false;
        uint8_t validator[NL_VALIDATOR_SIZE];
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line && !why;
             line = strtok_r(NULL, "\n", &save)) {
                if (!header) {
                        header = true;
                        if (strcmp(line, "netlab-partial 1") != 0)
                                why = "it does not start with \"netlab-partial 1\"";
                        continue;
                }
                char *value = strchr(line, ' ');
                if (!value)
                        continue;
                *value++ = '\0';
                if (strcmp(line, "path") == 0)
                        path_ok = f->path && strcmp(value, f->path) == 0;
                else if (strcmp(line, "start") == 0 &&
                         num_parse_u64(value, 0, INT64_MAX, &start) < 0)
                        why = "its start is not a number";
                else if (strcmp(line, "validator") == 0) {
                        if (strlen(value) != 2 * NL_VALIDATOR_SIZE ||
                            hex_decode(value, validator, NL_VALIDATOR_SIZE) < 0)
                                why = "its validator is not 64 hex digits";
                        else
                                has_validator = true;
                }
                /* Other keys (host, port, size, mtime) are for people reading it. */
        }
        if (!why && !header)
                why = "it is empty";
        if (!why && !path_ok)
                why = "it is about another file";
        if (why) {
                fprintf(stderr, "%s: ignoring %s: %s; resuming on the tail hash alone\n",
                        program_name, f->meta, why);
                return;
        }
        f->start = start;
        f->has_validator = has_validator;
        if (has_validator)
                memcpy(f->validator, validator, sizeof validator);
}

/* Write OUT.netlab-meta atomically (temporary name, then rename).
 * Return: 0 or negative errno (nothing left behind). */
static int meta_write(const struct fetch *f, const struct file_info *info)
{
        char hex[2 * NL_VALIDATOR_SIZE + 1], text[META_MAX];
        int n;

        for (size_t i = 0; i < NL_VALIDATOR_SIZE; i++)
                (void) xsnprintf(hex + 2 * i, 3, "%02x", info->validator[i]);
        n = xsnprintf(
                text, sizeof text,
                "netlab-partial 1\nhost %s\nport %u\npath %s\nstart %llu\nsize %llu\n"
                "mtime %lld.%09u\nvalidator %s\n",
                settings.host, settings.fetch_port, f->path, (unsigned long long) f->start,
                (unsigned long long) info->size, (long long) info->mtime_sec, info->mtime_nsec,
                hex);
        if (n < 0)
                return -ENAMETOOLONG;

        _cleanup_close_ int fd =
                open(f->meta_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        for (size_t done = 0; done < (size_t) n;) {
                ssize_t k = write(fd, text + done, (size_t) n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        (void) unlink(f->meta_tmp);
                        return r;
                }
                done += (size_t) k;
        }
        int r = close(TAKE_FD(fd)) < 0 ? -errno : 0;
        if (r == 0 && rename(f->meta_tmp, f->meta) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(f->meta_tmp);
        return r;
}

/* Open (creating if needed) and lock OUT.netlab-part.  Return: EXIT_OK or the
 * exit code (reported). */
static int part_open(struct fetch *f)
{
        int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
        struct stat st;

        /* O_EXCL first, to know whether this run created it. */
        f->part_fd = open(f->part, flags | O_CREAT | O_EXCL, 0666);
        if (f->part_fd >= 0)
                f->part_created = true;
        else if (errno == EEXIST)
                f->part_fd = open(f->part, flags);
        if (f->part_fd < 0 && errno == ELOOP)
                return fail("fetch", EXIT_LOCAL_IO, "local-io-error",
                            "%s is a symbolic link; refusing to write through it", f->part);
        if (f->part_fd < 0)
                return fail("fetch", EXIT_LOCAL_IO, "local-io-error", "cannot open %s: %s", f->part,
                            strerror(errno));
        if (fstat(f->part_fd, &st) < 0)
                return fail("fetch", EXIT_LOCAL_IO, "local-io-error", "cannot stat %s: %s", f->part,
                            strerror(errno));
        if (!S_ISREG(st.st_mode))
                return fail("fetch", EXIT_LOCAL_IO, "local-io-error", "%s is not a regular file",
                            f->part);
        /* Two netlabctl writing one partial file would interleave their data. */
        if (flock(f->part_fd, LOCK_EX | LOCK_NB) < 0)
                return fail("fetch", EXIT_LOCAL_IO, "local-io-error",
                            errno == EWOULDBLOCK ? "%s is in use by another netlabctl fetch"
                                                 : "cannot lock %s",
                            f->part);
        f->local = (uint64_t) st.st_size;
        return EXIT_OK;
}

/* After a refusal: remove a part file this run created (it holds nothing). */
static void part_forget_created(struct fetch *f)
{
        if (f->part_fd >= 0 && f->part_created && f->local == 0)
                (void) unlink(f->part);
}

/* Start the local data over: empty part, no validator. */
static int part_reset(struct fetch *f)
{
        struct stat st;

        f->local = 0;
        f->has_validator = false;
        if (f->part_fd < 0)
                return EXIT_OK;
        /* Only when there is something to drop: on ext4 a truncation to 0
         * makes close() start writeback of everything written since
         * (auto_da_alloc), which cost a third of a 1 GiB download's time. */
        if (fstat(f->part_fd, &st) == 0 && st.st_size == 0)
                return EXIT_OK;
        if (ftruncate(f->part_fd, 0) < 0)
                return fail("fetch", EXIT_LOCAL_IO, "local-io-error", "cannot truncate %s: %s",
                            f->part, strerror(errno));
        return EXIT_OK;
}

/* ---- the data path ---- */

/* from_memory: the data comes from user memory (UDP, through
 * sink_writev()): no pipe and no copy buffer. */
static int sink_init(struct sink *s, int fd, bool seekable, bool escape, bool from_memory)
{
        *s = (struct sink) { .fd = fd, .seekable = seekable, .escape = escape, .pipe = { -1, -1 } };
        if (fd < 0 || from_memory)
                return 0; /* --discard */

        /* The escaped form must pass through user space anyway. */
        if (!escape && pipe2(s->pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
                /* A bigger pipe means fewer, larger splices.  An unprivileged
                 * user over pipe-user-pages-soft gets EPERM: keep what we have. */
                if (fcntl(s->pipe[1], F_SETPIPE_SZ, PIPE_WANT) < 0)
                        (void) fcntl(s->pipe[1], F_SETPIPE_SZ, PIPE_WANT / 4);
                int sz = fcntl(s->pipe[1], F_GETPIPE_SZ);
                s->pipe_size = sz > 0 ? (size_t) sz : 65536u;
                return 0;
        }
        s->copy = true;
        s->buf = malloc(COPY_BUF);
        return s->buf ? 0 : -ENOMEM;
}

static void sink_done(struct sink *s)
{
        s->pipe[0] = safe_close(s->pipe[0]);
        s->pipe[1] = safe_close(s->pipe[1]);
        free(s->buf);
        s->buf = NULL;
}

/* Write iov (n_iov pieces, n_iov > 0, not all empty) to the output.
 * Return: 0 or negative errno. */
static int sink_writev(struct sink *s, struct iovec *iov, int n_iov)
{
        if (s->escape) {
                for (int i = 0; i < n_iov; i++) {
                        print_server_text(iov[i].iov_base, iov[i].iov_len, false);
                        if (ferror(stdout))
                                return -EIO;
                }
                return 0;
        }
        while (n_iov > 0) {
                ssize_t k = s->seekable ? pwritev(s->fd, iov, n_iov, (off_t) s->pos)
                                        : writev(s->fd, iov, n_iov);
                if (k < 0 && errno == EINTR && interrupted)
                        return -EINTR; /* ^C while a slow reader holds standard output */
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        /* A non-blocking standard output: wait for its reader. */
                        struct pollfd p = { .fd = s->fd, .events = POLLOUT };
                        (void) poll(&p, 1, -1);
                        continue;
                }
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;
                s->pos += (uint64_t) k;
                /* A short write (a full disk, a pipe): go on after it. */
                for (size_t left = (size_t) k; left > 0;) {
                        if (left >= iov->iov_len) {
                                left -= iov->iov_len;
                                iov++;
                                n_iov--;
                        } else {
                                iov->iov_base = (uint8_t *) iov->iov_base + left;
                                iov->iov_len -= left;
                                left = 0;
                        }
                }
        }
        return 0;
}

/* Write buf (n > 0 bytes) to the output.  Return: as sink_writev(). */
static int sink_write(struct sink *s, const uint8_t *buf, size_t n)
{
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = n };

        return sink_writev(s, &iov, 1);
}

/* Move n bytes from the pipe to the output.  If the output refuses splice
 * (a terminal, an O_APPEND file), copy them through a buffer instead and use
 * the copy path from then on.  Return: 0 or negative errno. */
static int sink_drain(struct sink *s, size_t n)
{
        while (n > 0) {
                loff_t off = (loff_t) s->pos;
                ssize_t k = splice(s->pipe[0], NULL, s->fd, s->seekable ? &off : NULL, n,
                                   SPLICE_F_MOVE | SPLICE_F_MORE);
                if (k > 0) {
                        n -= (size_t) k;
                        if (s->seekable)
                                s->pos = (uint64_t) off;
                        continue;
                }
                if (k == 0)
                        return -EIO;
                if (errno == EINTR && interrupted)
                        return -EINTR;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        struct pollfd p = { .fd = s->fd, .events = POLLOUT };
                        (void) poll(&p, 1, -1);
                        continue;
                }
                if (errno != EINVAL)
                        return -errno;

                s->copy = true;
                if (!s->buf && !(s->buf = malloc(COPY_BUF)))
                        return -ENOMEM;
                while (n > 0) {
                        ssize_t m = read(s->pipe[0], s->buf, n < COPY_BUF ? n : COPY_BUF);
                        if (m < 0 && errno == EINTR)
                                continue;
                        if (m <= 0)
                                return m < 0 ? -errno : -EIO;
                        int r = sink_write(s, s->buf, (size_t) m);
                        if (r < 0)
                                return r;
                        n -= (size_t) m;
                }
        }
        return 0;
}

enum transfer_end {
        TRANSFER_DONE,   /* all `want` bytes, or EOF when reading to the end */
        TRANSFER_EOF,    /* the connection ended early */
        TRANSFER_NET,    /* a receive error or timeout (errno in *ret_err) */
        TRANSFER_LOCAL,  /* a write error (errno in *ret_err) */
        TRANSFER_SIGNAL, /* interrupted by a signal */
        TRANSFER_GONE,   /* UDP: the server's transfer ended (port unreachable) */
};

/* Wait for data on the socket, for at most the timeout without any.  With
 * SO_RCVLOWAT set, poll() reports the socket only once that much is queued
 * (or at EOF), so it also wakes every WAIT_TICK_MS to look for fewer bytes
 * (SIOCINQ): on a slow link those are progress too.  Return: 0 ready,
 * -ETIMEDOUT, -EINTR (a signal we handle came), negative errno. */
static int wait_readable(int sock)
{
        struct pollfd p = { .fd = sock, .events = POLLIN };
        uint64_t until = mono_usec() + settings.timeout_ms * 1000u;

        for (;;) {
                if (interrupted)
                        return -EINTR;
                uint64_t now = mono_usec();
                if (now >= until)
                        return -ETIMEDOUT;
                uint64_t left_ms = (until - now + 999) / 1000;
                int r = poll(&p, 1, left_ms < WAIT_TICK_MS ? (int) left_ms : WAIT_TICK_MS);
                if (r > 0)
                        return 0;
                if (r < 0 && errno != EINTR)
                        return -errno;
                int queued = 0;
                if (r == 0 && ioctl(sock, SIOCINQ, &queued) == 0 && queued > 0)
                        return 0;
        }
}

/* Set the socket's SO_RCVLOWAT to what the next wait should wake for: a
 * batch of RCVLOWAT bytes, or what is left if that is less (the end never
 * waits for bytes that will not come).  Without it every arriving segment
 * wakes us for a few dozen KiB: --discard over loopback measured a median of
 * 34 Gbit/s without and 73 with.  Best effort: an old kernel just wakes more. */
static void set_lowat(int sock, uint64_t left, int *cur)
{
        int want = left < RCVLOWAT ? (int) left : (int) RCVLOWAT;

        if (want < 1)
                want = 1;
        if (want != *cur && setsockopt(sock, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0)
                *cur = want;
}

static enum transfer_end transfer_loop(struct fetch *f, int sock, uint64_t want, uint64_t base,
                                       uint64_t *got, int *lowat, int *ret_err)
{
        struct sink *s = &f->sink;

        while (*got < want) {
                uint64_t left = want - *got;
                ssize_t k;
                int r;

                if (interrupted)
                        return TRANSFER_SIGNAL;
                if (s->fd < 0) {
                        /* MSG_TRUNC on TCP: the kernel drops the bytes without
                         * copying them; the buffer is never touched.  (A
                         * blocking MSG_WAITALL loop makes fewer syscalls but
                         * measured a quarter slower on loopback.) */
                        k = recv(sock, NULL, left < DISCARD_CHUNK ? (size_t) left : DISCARD_CHUNK,
                                 MSG_TRUNC | MSG_DONTWAIT);
                } else if (!s->copy) {
                        k = splice(sock, NULL, s->pipe[1], NULL,
                                   left < s->pipe_size ? (size_t) left : s->pipe_size,
                                   SPLICE_F_MOVE | SPLICE_F_MORE | SPLICE_F_NONBLOCK);
                } else
                        k = recv(sock, s->buf, left < COPY_BUF ? (size_t) left : COPY_BUF,
                                 MSG_DONTWAIT);

                if (k == 0)
                        return want == UINT64_MAX ? TRANSFER_DONE : TRANSFER_EOF;
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK) {
                                *ret_err = errno;
                                return TRANSFER_NET;
                        }
                        /* The pipe is always drained, so EAGAIN from splice
                         * means the socket has nothing yet. */
                        set_lowat(sock, left, lowat);
                        r = wait_readable(sock);
                        if (r == -EINTR)
                                return TRANSFER_SIGNAL;
                        if (r < 0) {
                                *ret_err = -r;
                                return TRANSFER_NET;
                        }
                        continue;
                }

                if (s->fd >= 0) {
                        /* s->copy is what chose recv() or splice() above:
                         * only sink_drain() changes it. */
                        r = s->copy ? sink_write(s, s->buf, (size_t) k)
                                    : sink_drain(s, (size_t) k);
                        if (r == -EINTR)
                                return TRANSFER_SIGNAL;
                        if (r < 0) {
                                *ret_err = -r;
                                return TRANSFER_LOCAL;
                        }
                }
                *got += (uint64_t) k;
                progress_update(&f->progress, base + *got);
        }
        return TRANSFER_DONE;
}

/* Receive up to want bytes (UINT64_MAX: until the server closes) from sock
 * into the sink, updating *got and the progress bar (at base + *got).  The
 * socket's SO_RCVLOWAT is back at 1 afterwards, for the frame that follows. */
static enum transfer_end transfer(struct fetch *f, int sock, uint64_t want, uint64_t base,
                                  uint64_t *got, int *ret_err)
{
        int lowat = 1;
        enum transfer_end end = transfer_loop(f, sock, want, base, got, &lowat, ret_err);

        if (lowat != 1) {
                int one = 1;
                if (setsockopt(sock, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one) < 0 &&
                    end == TRANSFER_DONE) {
                        *ret_err = errno;
                        end = TRANSFER_NET;
                }
        }
        return end;
}

/* ---- reporting ---- */

static void set_keep(struct fetch *f)
{
        if (f->part_fd >= 0)
                (void) xsnprintf(
                        f->keep, sizeof f->keep,
                        "; the partial file %s was kept: run again with --resume to continue",
                        f->part);
        else
                f->keep[0] = '\0';
}

/* Not on a pipe or with --json, nor when the data itself goes to a terminal. */
static bool want_bar(const struct fetch *f)
{
        return isatty(STDERR_FILENO) && !settings.json && !f->sink.escape;
}

static const char *output_name(const struct fetch *f)
{
        return f->discard ? "(discarded)" : f->to_stdout ? "(standard output)" : f->out;
}

/* "after X of Y bytes": how far a transfer that stops got. */
static void transfer_where(const struct fetch *f, char *where, size_t size)
{
        /* The part file may hold a little more than whole steps received
         * (a write cut short by a full disk): report what it holds. */
        uint64_t at = f->part_fd >= 0 ? f->start + f->sink.pos : f->req_offset + f->received;

        if (f->lab || !f->size_known)
                (void) xsnprintf(where, size, "after %llu bytes", (unsigned long long) at);
        else
                (void) xsnprintf(where, size, "after %llu of %llu bytes", (unsigned long long) at,
                                 (unsigned long long) f->info.size);
}

/* Report how a transfer that did not finish ended. */
static int transfer_fail(struct fetch *f, enum transfer_end end, int err)
{
        char where[128];

        progress_clear(&f->progress);
        transfer_where(f, where, sizeof where);

        switch (end) {
        case TRANSFER_EOF:
                return fail("fetch", EXIT_PROTOCOL, "connection-lost", "the connection closed %s%s",
                            where, f->keep);
        case TRANSFER_GONE:
                return fail("fetch", EXIT_PROTOCOL, "connection-lost",
                            "the server's transfer ended %s (its port is unreachable)%s", where,
                            f->keep);
        case TRANSFER_NET:
                if (err == ETIMEDOUT)
                        return fail("fetch", EXIT_TIMEOUT, "timeout",
                                    "no data from the server for %llu s %s%s",
                                    (unsigned long long) settings.timeout_ms / 1000, where,
                                    f->keep);
                return fail("fetch", EXIT_PROTOCOL, "connection-lost",
                            "the connection failed %s: %s%s", where, strerror(err), f->keep);
        case TRANSFER_LOCAL:
                return fail("fetch", EXIT_LOCAL_IO, "local-io-error", "writing %s failed %s: %s%s",
                            f->part_fd >= 0 ? f->part : "to standard output", where, strerror(err),
                            f->keep);
        case TRANSFER_SIGNAL: {
                int sig = interrupted;
                (void) fail("fetch", 128 + sig, "interrupted", "interrupted %s%s", where, f->keep);
                (void) fflush(stdout);
                (void) signal(sig, SIG_DFL);
                (void) raise(sig);
                return 128 + sig;
        }
        case TRANSFER_DONE:
                break;
        }
        return EXIT_OK;
}

static void print_result(const struct fetch *f)
{
        uint64_t usec = mono_usec() - f->start_usec;
        double sec = (double) usec / 1e6;
        double rate = usec > 0 ? (double) f->received / sec : 0.0;
        char hex[2 * NL_DIGEST_SIZE + 1] = "";

        if (f->verify)
                digest_hex(f->digest, hex, sizeof hex);

        if (settings.json) {
                printf("{\"command\":\"fetch\",\"status\":\"ok\",\"exit_code\":0,"
                       "\"format\":\"%s\",\"server\":",
                       f->lab ? "lab" : "netlab");
                json_string(stdout, (const uint8_t *) settings.host, strlen(settings.host));
                printf(",\"port\":%u,\"path\":", settings.fetch_port);
                if (f->path)
                        json_string(stdout, (const uint8_t *) f->path, strlen(f->path));
                else
                        printf("null");
                printf(",\"output\":");
                if (f->discard)
                        printf("null");
                else
                        json_string(stdout, (const uint8_t *) (f->to_stdout ? "-" : f->out),
                                    strlen(f->to_stdout ? "-" : f->out));
                if (f->size_known)
                        printf(",\"size\":%llu", (unsigned long long) f->info.size);
                else
                        printf(",\"size\":null");
                printf(",\"offset\":%llu,\"bytes\":%llu,\"resumed\":%s,\"restarted\":%s,"
                       "\"duration_ms\":%.3f,\"rate_bytes_per_sec\":%.0f",
                       (unsigned long long) f->req_offset, (unsigned long long) f->received,
                       f->resumed ? "true" : "false", f->restarted ? "true" : "false",
                       (double) usec / 1000.0, rate);
                if (f->verify)
                        printf(",\"sha256\":\"%s\"", hex);
                if (f->udp)
                        printf(",\"transport\":\"udp\",\"block_size\":%u,\"window\":%u,"
                               "\"datagrams\":%llu,\"duplicates\":%llu,\"out_of_order\":%llu,"
                               "\"acks\":%llu,\"rwnd\":%u",
                               f->xrep.block_size, f->xrep.window,
                               (unsigned long long) f->xrep.n_datagrams,
                               (unsigned long long) f->xrep.n_duplicates,
                               (unsigned long long) f->xrep.n_out_of_order,
                               (unsigned long long) f->xrep.n_acks, f->xrep.rwnd);
                printf("}\n");
                return;
        }

        /* With -o - the data owns standard output; the line then goes to
         * a terminal on standard error, or nowhere. */
        if (f->to_stdout && !isatty(STDERR_FILENO))
                return;
        FILE *o = f->to_stdout ? stderr : stdout;
        fprintf(o, "fetched %s%s -> %s: %llu bytes in %.2f s (%.1f MB/s)", f->path ? f->path : "",
                f->lab ? (f->path ? " (lab format)" : "(lab format)") : "", output_name(f),
                (unsigned long long) f->received, sec, rate / 1e6);
        if (f->resumed)
                fprintf(o, ", resumed at %llu", (unsigned long long) f->req_offset);
        if (f->restarted)
                fprintf(o, ", started over");
        if (f->verify)
                fprintf(o, ", sha256 %s", hex);
        fputc('\n', o);
}

static bool st_exists_regular(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Replace the existing OUT with the complete part as atomically as rename()
 * would, but without ext4's flush of all the new data that a rename over a
 * file triggers (auto_da_alloc), which can double the time of a big download.
 * We never fsync anyway, like curl and wget.  The part first moves to a side
 * name, so that a crash at any point leaves either the part, or OUT and a
 * stray OUT.netlab-new, never the old file under the partial name (where a
 * resume would build on it).  Return: 0; negative errno if the filesystem
 * cannot exchange (the caller then renames; the part is back in place). */
static int replace_by_exchange(struct fetch *f)
{
        char side[PATH_MAX];

        if (xsnprintf(side, sizeof side, "%s" NEW_SUFFIX, f->out) < 0)
                return -ENAMETOOLONG;
        (void) unlink(side); /* a stray one from a crash: renaming over it would flush */
        if (rename(f->part, side) < 0)
                return -errno;
        if (renameat2(AT_FDCWD, side, AT_FDCWD, f->out, RENAME_EXCHANGE) < 0) {
                int r = -errno;
                if (rename(side, f->part) < 0)
                        fprintf(stderr, "%s: cannot rename %s back to %s: %s\n", program_name, side,
                                f->part, strerror(errno));
                return r;
        }
        if (unlink(side) < 0) /* the old OUT */
                fprintf(stderr, "%s: cannot remove %s (the old %s): %s, ignoring\n", program_name,
                        side, f->out, strerror(errno));
        return 0;
}

/* Rename the complete part into place.  Return: EXIT_OK or the exit code. */
static int finish_file(struct fetch *f, uint64_t expect_size)
{
        struct stat st;

        if (f->part_fd < 0)
                return EXIT_OK;
        /* The lock is advisory: make sure nobody else wrote to the part. */
        if (expect_size != UINT64_MAX &&
            (fstat(f->part_fd, &st) < 0 || (uint64_t) st.st_size != expect_size))
                return fail(
                        "fetch", EXIT_LOCAL_IO, "local-io-error",
                        "%s does not have the %llu bytes just written (did something else "
                        "write to it?); run again without --resume",
                        f->part, (unsigned long long) expect_size);
        /* Only a regular file (or nothing) may be replaced: the checks in
         * cmd_fetch() ran before the transfer, and things change. */
        if (lstat(f->out, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
                return fail(
                        "fetch", EXIT_LOCAL_IO, "local-io-error",
                        "%s is no longer a regular file; not replacing it (the complete "
                        "download is in %s)",
                        f->out, f->part);
        /* The meta file goes first: from here on the part is complete, and
         * a part without meta is still proven by its tail hash on resume. */
        if (unlink(f->meta) < 0 && errno != ENOENT)
                fprintf(stderr, "%s: cannot remove %s: %s, ignoring\n", program_name, f->meta,
                        strerror(errno));
        if (st_exists_regular(f->out) && replace_by_exchange(f) == 0)
                return EXIT_OK;
        if (rename(f->part, f->out) < 0)
                return fail("fetch", EXIT_LOCAL_IO, "local-io-error",
                            "cannot rename %s to %s: %s (the complete download is in %s)", f->part,
                            f->out, strerror(errno), f->part);
        return EXIT_OK;
}

/* ---- netlab form ---- */

static const int caught_signals[] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction saved_actions[ELEMENTSOF(caught_signals)];
static bool signals_caught;

/* Install the handlers that let a transfer stop cleanly on ^C (clear the
 * bar, say how to resume), or put back what was there.  Only around the data
 * path (over UDP: the whole exchange, so that the server hears of it):
 * elsewhere every wait is bounded, and the default action leaves the files
 * resumable.  A signal the caller ignores (nohup, a background job) stays
 * ignored.  No SA_RESTART: a blocked poll() or write() must return.  Calls
 * that change nothing are no-ops. */
static void catch_signals(bool on)
{
        if (on == signals_caught)
                return;
        signals_caught = on;
        for (size_t i = 0; i < ELEMENTSOF(caught_signals); i++) {
                if (!on) {
                        (void) sigaction(caught_signals[i], &saved_actions[i], NULL);
                        continue;
                }
                struct sigaction sa = { .sa_handler = on_signal };
                (void) sigemptyset(&sa.sa_mask);
                if (sigaction(caught_signals[i], NULL, &saved_actions[i]) == 0 &&
                    saved_actions[i].sa_handler != SIG_IGN)
                        (void) sigaction(caught_signals[i], &sa, NULL);
        }
}

static const char *restart_reason(uint8_t status)
{
        switch (status) {
        case NL_STATUS_CHANGED:
                return "the file changed on the server";
        case NL_STATUS_MISMATCH:
                return "the partial file's last bytes differ from the server's file";
        default:
                return "the partial file is longer than the server's file";
        }
}

/* A status and its body (error text, or a FILE_END body), as the transport
 * received them. */
struct answer {
        uint8_t status;
        const uint8_t *body;
        size_t n;
};

static int answer_refused(const struct answer *a, const char *suffix)
{
        struct nl_header h = { .status = a->status, .length = (uint32_t) a->n };

        return file_client_refused("fetch", &h, a->body, a->n, suffix);
}

/* What differs between TCP and UDP.  Every function that returns an exit
 * code has reported it (fail()). */
struct transport {
        /* Send req and wait for the answer: with status OK, f->info holds
         * the decoded FILE_INFO (not yet checked); else *ret is the
         * refusal.  A failure before any answer forgets a part file this
         * run created.  Return: EXIT_OK or the exit code. */
        int (*open)(struct fetch *f, const struct file_request *req, struct answer *ret);
        /* FILE_INFO did not match the request: tell the server if it can
         * be told. */
        void (*abort)(struct fetch *f, const char *why);
        /* All f->info.length bytes into the sink.  Return: EXIT_OK or the
         * exit code. */
        int (*receive)(struct fetch *f);
        /* The end of the transfer (FILE_END).  Return: EXIT_OK with *ret,
         * or the exit code. */
        int (*end)(struct fetch *f, struct answer *ret);
        /* Release everything the attempt holds (idempotent). */
        void (*close)(struct fetch *f);
};

/* The FILE_GET of this attempt: from where the local data ends, with the
 * validator and a hash of the last bytes when resuming.  Return: EXIT_OK or
 * the exit code. */
static int request_build(struct fetch *f, struct file_request *req)
{
        *req = (struct file_request) {
                .type = NL_TYPE_FILE_GET,
                .flags = f->verify ? FILE_GET_DIGEST : 0,
                .offset = f->start + f->local,
                .path = (const uint8_t *) f->path,
                .path_len = strlen(f->path),
        };
        if (f->local > 0) {
                req->has_validator = f->has_validator;
                memcpy(req->validator, f->validator, sizeof req->validator);
                req->tail_len = f->local < NL_TAIL_DEFAULT ? (uint32_t) f->local : NL_TAIL_DEFAULT;
                int r = digest_fd_range(f->part_fd, f->local - req->tail_len, req->tail_len,
                                        req->tail_hash);
                if (r < 0)
                        return fail("fetch", EXIT_LOCAL_IO, "local-io-error", "cannot read %s: %s",
                                    f->part, strerror(-r));
        }
        return EXIT_OK;
}

/* The server refused the request.  A refused resume starts over (once)
 * unless --no-restart.  Return: -EAGAIN to start over (f already reset), or
 * the exit code. */
static int on_refused(struct fetch *f, int attempt, bool resuming, const struct answer *a)
{
        bool resume_refused = resuming && (a->status == NL_STATUS_CHANGED ||
                                           a->status == NL_STATUS_MISMATCH ||
                                           a->status == NL_STATUS_RANGE);
        int r;

        if (resume_refused && !f->no_restart && attempt < FETCH_RESTARTS_MAX) {
                fprintf(stderr, "%s: %s; starting over\n", program_name, restart_reason(a->status));
                f->restarted = true;
                r = part_reset(f);
                return r == EXIT_OK ? -EAGAIN : r;
        }
        if (resume_refused) {
                char suffix[PATH_MAX + 128];
                (void) xsnprintf(suffix, sizeof suffix,
                                 "; the partial file %s was kept (run without --resume to "
                                 "start over)",
                                 f->part);
                int code = answer_refused(a, suffix);
                /* range on a resume: the file shrank, so it changed too */
                return code == EXIT_REFUSED ? EXIT_CHANGED : code;
        }
        part_forget_created(f);
        return answer_refused(a, "");
}

/* Does FILE_INFO describe what was asked?  Return: EXIT_OK or the exit code. */
static int info_check(struct fetch *f, const struct transport *t, uint64_t req_offset)
{
        const struct file_info *info = &f->info;
        char why[512];

        if (info->kind == FILE_KIND_REGULAR && info->offset == req_offset &&
            info->length == info->size - info->offset)
                return EXIT_OK;
        (void) xsnprintf(why, sizeof why,
                         "the server's FILE_INFO does not match the request (kind %u, data from "
                         "byte %llu for a request from byte %llu, %llu bytes of a %llu-byte file)",
                         info->kind, (unsigned long long) info->offset,
                         (unsigned long long) req_offset, (unsigned long long) info->length,
                         (unsigned long long) info->size);
        t->abort(f, why);
        part_forget_created(f);
        return fail("fetch", EXIT_PROTOCOL, "protocol-error", "%s", why);
}

/* Before the first data byte: empty a part file a fresh download replaces,
 * write the meta file, start the bar.  Return: EXIT_OK or the exit code. */
static int data_prepare(struct fetch *f, bool resuming)
{
        int r;

        f->size_known = true;
        f->resumed = resuming;
        if (f->part_fd >= 0) {
                /* The meta file first: a crash from here on leaves a part
                 * that a resume can prove and continue. */
                if (!resuming && (r = part_reset(f)) != EXIT_OK)
                        return r;
                r = meta_write(f, &f->info);
                if (r < 0)
                        return fail("fetch", EXIT_LOCAL_IO, "local-io-error", "cannot write %s: %s",
                                    f->meta, strerror(-r));
        }
        f->sink.pos = f->local;
        set_keep(f);
        progress_init(&f->progress, want_bar(f), f->info.size, f->req_offset);
        return EXIT_OK;
}

/* The end of the transfer: its status, the digest check, the rename.
 * Return: EXIT_OK, -EAGAIN to start over (f already reset), or the exit
 * code. */
static int end_check(struct fetch *f, int attempt, const struct answer *a)
{
        int r;

        if (a->status == NL_STATUS_CHANGED) {
                /* Some of the bytes may come from the old file, some from the
                 * new: none can be trusted. */
                if (!f->no_restart && attempt < FETCH_RESTARTS_MAX && !f->to_stdout &&
                    !f->to_device) {
                        fprintf(stderr,
                                "%s: the file changed on the server during the transfer; "
                                "starting over\n",
                                program_name);
                        f->restarted = true;
                        r = part_reset(f);
                        return r == EXIT_OK ? -EAGAIN : r;
                }
                if (f->part_fd >= 0) {
                        (void) unlink(f->part);
                        (void) unlink(f->meta);
                }
                return answer_refused(a, f->part_fd >= 0
                                                 ? "; the data received cannot be trusted and was "
                                                   "removed"
                                                 : "; the data received cannot be trusted");
        }
        if (a->status != NL_STATUS_OK)
                return answer_refused(a, f->keep);
        if (file_end_decode(a->body, a->n, &f->has_digest, f->digest) < 0)
                return fail("fetch", EXIT_PROTOCOL, "protocol-error",
                            "the server sent a malformed FILE_END%s", f->keep);

        if (f->verify) {
                uint8_t mine[NL_DIGEST_SIZE];
                char want_hex[2 * NL_DIGEST_SIZE + 1], got_hex[2 * NL_DIGEST_SIZE + 1];

                if (!f->has_digest)
                        return fail("fetch", EXIT_PROTOCOL, "protocol-error",
                                    "the server did not send the digest --verify asked for%s",
                                    f->keep);
                progress_note(&f->progress, "verifying the SHA-256 of the whole file...");
                r = digest_fd_range(f->part_fd, 0, f->info.size, mine);
                progress_clear(&f->progress);
                if (r < 0)
                        return fail("fetch", EXIT_LOCAL_IO, "local-io-error",
                                    "cannot read %s to verify it: %s%s", f->part, strerror(-r),
                                    f->keep);
                if (memcmp(mine, f->digest, NL_DIGEST_SIZE) != 0) {
                        digest_hex(f->digest, want_hex, sizeof want_hex);
                        digest_hex(mine, got_hex, sizeof got_hex);
                        (void) unlink(f->part);
                        (void) unlink(f->meta);
                        return fail(
                                "fetch", EXIT_VERIFY, "verify-failed",
                                "the downloaded data is wrong: its SHA-256 is %s, the server's "
                                "file has %s; %s was removed (run again to download it afresh)",
                                got_hex, want_hex, f->part);
                }
        }
        return finish_file(f, f->info.size - f->start);
}

/* ---- TCP: one connection, FILE_INFO, the bytes, FILE_END ---- */

/* Sending the request over TCP failed (r < 0 from file_client_send() or
 * net_write_all(), the lab request too): forget a part file made for it.
 * Return: the exit code. */
static int request_send_failed(struct fetch *f, int r)
{
        part_forget_created(f);
        if (r == -ETIMEDOUT)
                return fail("fetch", EXIT_TIMEOUT, "timeout", "sending the request timed out");
        return fail("fetch", EXIT_CONNECT, "connection-error", "sending the request failed: %s",
                    strerror(-r));
}

static int tcp_open(struct fetch *f, const struct file_request *req, struct answer *ret)
{
        char err[512], problem[512];
        struct nl_header h;
        size_t n;
        int r;

        f->sock = net_connect_tcp(settings.host, settings.fetch_port, settings.timeout_ms, err,
                                  sizeof err);
        if (f->sock < 0) {
                part_forget_created(f);
                return fail("fetch", EXIT_CONNECT, "connect-failed", "%s", err);
        }
        r = file_client_send(f->sock, req);
        if (r < 0 && r != -EALREADY)
                return request_send_failed(f, r);

        r = file_client_read_frame(f->sock, "try --lab", f->frame, sizeof f->frame, NL_INFO_SIZE,
                                   &h, &n, problem, sizeof problem);
        if (r < 0) {
                part_forget_created(f);
                return file_client_fail("fetch", r, "an answer", problem, "");
        }
        if (h.type != NL_TYPE_FILE_INFO) {
                part_forget_created(f);
                return fail("fetch", EXIT_PROTOCOL, "protocol-error",
                            "the server answered with a frame of type 0x%02x instead of FILE_INFO",
                            h.type);
        }
        *ret = (struct answer) { .status = h.status, .body = f->frame, .n = n };
        if (h.status == NL_STATUS_OK && file_info_decode(f->frame, n, &f->info) < 0) {
                part_forget_created(f);
                return fail("fetch", EXIT_PROTOCOL, "protocol-error",
                            "the server sent a malformed FILE_INFO");
        }
        return EXIT_OK;
}

static void tcp_abort(struct fetch *f, const char *why)
{
        /* Closing the connection is all TCP can say. */
        (void) why;
        f->sock = safe_close(f->sock);
}

static int tcp_receive(struct fetch *f)
{
        int err_no = 0;
        enum transfer_end end =
                transfer(f, f->sock, f->info.length, f->req_offset, &f->received, &err_no);

        if (end == TRANSFER_DONE && interrupted)
                end = TRANSFER_SIGNAL;
        if (end != TRANSFER_DONE)
                return transfer_fail(f, end, err_no);
        if (f->sink.escape && fflush(stdout) != 0)
                return transfer_fail(f, TRANSFER_LOCAL, errno);
        return EXIT_OK;
}

static int tcp_end(struct fetch *f, struct answer *ret)
{
        char problem[512];
        struct nl_header h;
        size_t n;

        /* FILE_END: status, and with --verify the whole file's digest. */
        int r = file_client_read_frame(f->sock, NULL, f->frame, sizeof f->frame,
                                       1 + NL_DIGEST_SIZE, &h, &n, problem, sizeof problem);
        progress_clear(&f->progress);
        if (r < 0)
                return file_client_fail("fetch", r, "the end-of-transfer frame", problem, f->keep);
        if (h.type != NL_TYPE_FILE_END)
                return fail(
                        "fetch", EXIT_PROTOCOL, "protocol-error",
                        "the server sent a frame of type 0x%02x after the data instead of "
                        "FILE_END%s",
                        h.type, f->keep);
        *ret = (struct answer) { .status = h.status, .body = f->frame, .n = n };
        return EXIT_OK;
}

static void tcp_close(struct fetch *f)
{
        f->sock = safe_close(f->sock);
}

static const struct transport transport_tcp = {
        .open = tcp_open,
        .abort = tcp_abort,
        .receive = tcp_receive,
        .end = tcp_end,
        .close = tcp_close,
};

/* ---- UDP: netlab's reliable transfer (xfer-recv.c) ---- */

static int udp_deliver(void *userdata, struct iovec *iov, int n_iov, size_t n)
{
        struct fetch *f = userdata;

        if (iov) {
                int r = sink_writev(&f->sink, iov, n_iov);
                if (r < 0)
                        return r;
        }
        f->received += n;
        progress_update(&f->progress, f->req_offset + f->received);
        return 0;
}

/* A signal stopped the handshake: nothing was received, so die of it as
 * the default action would have (see catch_signals()). */
static int die_of_signal(struct fetch *f)
{
        int sig = interrupted;

        part_forget_created(f);
        catch_signals(false);
        (void) signal(sig, SIG_DFL);
        (void) raise(sig);
        return 128 + sig;
}

static int udp_open(struct fetch *f, const struct file_request *req, struct answer *ret)
{
        uint8_t frame[NL_HEADER_SIZE + NL_FILE_REQUEST_MAX];
        int n = file_request_encode(frame, sizeof frame, req);

        if (n < NL_HEADER_SIZE)
                return fail("fetch", EXIT_FAILURE_OTHER, "internal-error",
                            "cannot encode the request");
        /* The REQUEST carries the FILE_GET body exactly as over TCP. */
        memcpy(f->get, frame + NL_HEADER_SIZE, (size_t) n - NL_HEADER_SIZE);
        f->xparams = (struct xfer_recv_params) {
                .host = settings.host,
                .port = settings.fetch_port,
                .get = f->get,
                .get_len = (size_t) n - NL_HEADER_SIZE,
                .block_max = f->block_size,
                .window = f->window,
                .timeout_usec = settings.timeout_ms * 1000u,
                .discard = f->discard,
                .deliver = udp_deliver,
                .userdata = f,
                .interrupted = &interrupted,
        };
        if (xfer_recv_new(&f->xparams, &f->xrep, &f->xr) < 0)
                return fail("fetch", EXIT_FAILURE_OTHER, "internal-error", "out of memory");

        /* From the first REQUEST on: a ^C must reach the server. */
        catch_signals(true);
        int r = xfer_recv_handshake(f->xr, &f->info);
        switch (r) {
        case XFER_RECV_OK:
                *ret = (struct answer) { .status = NL_STATUS_OK };
                return EXIT_OK;
        case XFER_RECV_REFUSED:
                *ret = (struct answer) { .status = f->xrep.status, .body = f->xrep.text,
                                         .n = f->xrep.text_len };
                return EXIT_OK;
        case XFER_RECV_SIGNAL:
                return die_of_signal(f);
        default:
                break;
        }
        part_forget_created(f);
        switch (r) {
        case XFER_RECV_TIMEOUT:
                return fail("fetch", EXIT_TIMEOUT, "timeout", "%s", f->xrep.problem);
        case XFER_RECV_UNREACHABLE:
                return fail("fetch", EXIT_CONNECT, "connect-failed", "%s", f->xrep.problem);
        case XFER_RECV_PROTOCOL:
                return fail("fetch", EXIT_PROTOCOL, "protocol-error", "%s", f->xrep.problem);
        case XFER_RECV_NOMEM:
                return fail("fetch", EXIT_FAILURE_OTHER, "internal-error", "out of memory");
        default:
                return fail("fetch", EXIT_CONNECT, "connection-error",
                            "the request to %s port %u failed: %s", settings.host,
                            settings.fetch_port, strerror(f->xrep.err));
        }
}

static void udp_abort(struct fetch *f, const char *why)
{
        xfer_recv_abort(f->xr, NL_STATUS_BAD_REQUEST, why);
}

static int udp_receive(struct fetch *f)
{
        int r = xfer_recv_data(f->xr);

        if (r == XFER_RECV_OK && interrupted)
                r = XFER_RECV_SIGNAL;
        switch (r) {
        case XFER_RECV_OK:
                if (f->sink.escape && fflush(stdout) != 0)
                        return transfer_fail(f, TRANSFER_LOCAL, errno);
                return EXIT_OK;
        case XFER_RECV_REFUSED:
                progress_clear(&f->progress);
                if (f->xrep.status == NL_STATUS_TIMEOUT) {
                        /* The server gave up waiting for our ACKs (a lossy
                         * path): a timeout like ours, not a refusal. */
                        char esc[NL_ERROR_TEXT_MAX * 4 + 8], where[128];
                        (void) text_escape(esc, sizeof esc, f->xrep.text, f->xrep.text_len);
                        transfer_where(f, where, sizeof where);
                        return fail("fetch", EXIT_TIMEOUT, "timeout",
                                    "the server gave up (timeout): %s, %s%s", esc, where,
                                    f->keep);
                }
                return answer_refused(&(struct answer) { .status = f->xrep.status,
                                                         .body = f->xrep.text,
                                                         .n = f->xrep.text_len },
                                      f->keep);
        case XFER_RECV_TIMEOUT:
                return transfer_fail(f, TRANSFER_NET, ETIMEDOUT);
        case XFER_RECV_GONE:
                return transfer_fail(f, TRANSFER_GONE, 0);
        case XFER_RECV_PROTOCOL:
                progress_clear(&f->progress);
                return fail("fetch", EXIT_PROTOCOL, "protocol-error", "%s%s", f->xrep.problem,
                            f->keep);
        case XFER_RECV_LOCAL:
                return transfer_fail(f, TRANSFER_LOCAL, f->xrep.err);
        case XFER_RECV_SIGNAL:
                return transfer_fail(f, TRANSFER_SIGNAL, 0);
        case XFER_RECV_NOMEM:
                progress_clear(&f->progress);
                return fail("fetch", EXIT_FAILURE_OTHER, "internal-error", "out of memory%s",
                            f->keep);
        default:
                return transfer_fail(f, TRANSFER_NET, f->xrep.err);
        }
}

static int udp_end(struct fetch *f, struct answer *ret)
{
        /* xfer_recv_data() returned at the END (and answered it). */
        progress_clear(&f->progress);
        *ret = (struct answer) { .status = f->xrep.status, .body = f->xrep.text,
                                 .n = f->xrep.text_len };
        return EXIT_OK;
}

static void udp_close(struct fetch *f)
{
        if (f->xr)
                xfer_recv_linger(f->xr);
        f->xr = xfer_recv_free(f->xr);
        catch_signals(false);
}

static const struct transport transport_udp = {
        .open = udp_open,
        .abort = udp_abort,
        .receive = udp_receive,
        .end = udp_end,
        .close = udp_close,
};

/* One attempt: request, FILE_INFO, data, FILE_END, whatever the transport.
 * Return: EXIT_OK, -EAGAIN to start over (f already reset), or the exit code
 * (reported). */
static int fetch_netlab_attempt(struct fetch *f, const struct transport *t, int attempt)
{
        bool resuming = f->local > 0;
        struct file_request req;
        struct answer a;
        int r;

        r = request_build(f, &req);
        if (r != EXIT_OK)
                return r;
        f->req_offset = req.offset;
        f->received = 0;

        r = t->open(f, &req, &a);
        if (r != EXIT_OK)
                return r;
        if (a.status != NL_STATUS_OK)
                return on_refused(f, attempt, resuming, &a);
        r = info_check(f, t, req.offset);
        if (r != EXIT_OK)
                return r;
        r = data_prepare(f, resuming);
        if (r != EXIT_OK)
                return r;

        catch_signals(true);
        r = t->receive(f);
        if (r != EXIT_OK)
                return r;
        /* Past the data, the default actions leave the files resumable. */
        catch_signals(false);
        r = t->end(f, &a);
        if (r != EXIT_OK)
                return r;
        return end_check(f, attempt, &a);
}

static int fetch_netlab_once(struct fetch *f, int attempt)
{
        const struct transport *t = f->udp ? &transport_udp : &transport_tcp;
        int r = fetch_netlab_attempt(f, t, attempt);

        t->close(f);
        catch_signals(false);
        return r;
}

static int fetch_netlab(struct fetch *f)
{
        for (int attempt = 0;; attempt++) {
                int r = fetch_netlab_once(f, attempt);
                if (r == -EAGAIN)
                        continue;
                if (r == EXIT_OK)
                        print_result(f);
                return r;
        }
}

/* ---- lab form ---- */

static int fetch_lab(struct fetch *f)
{
        uint8_t pre[LAB_DOWNLOAD_COMMAND_SIZE + LAB_DOWNLOAD_OFFSET_SIZE];
        char command = '0';
        uint64_t offset = 0;
        char err[512];
        int r;

        if (f->offset_given) {
                command = '1';
                offset = f->offset;
        } else if (f->local > 0) {
                command = '2';
                offset = f->local;
        }
        if (offset > LAB_OFFSET_MAX) {
                part_forget_created(f);
                return fail("fetch", EXIT_USAGE, "usage",
                            "the lab format cannot express offset %llu (at most 10 digits)",
                            (unsigned long long) offset);
        }
        r = lab_download_encode(pre, sizeof pre, command, offset);
        if (r < 0)
                return fail("fetch", EXIT_FAILURE_OTHER, "internal-error",
                            "cannot encode the lab request");
        f->req_offset = offset;
        f->resumed = command == '2';

        _cleanup_close_ int sock = net_connect_tcp(settings.host, settings.fetch_port,
                                                   settings.timeout_ms, err, sizeof err);
        if (sock < 0) {
                part_forget_created(f);
                return fail("fetch", EXIT_CONNECT, "connect-failed", "%s", err);
        }
        int w = net_write_all(sock, pre, (size_t) r, settings.timeout_ms);
        if (w < 0 && w != -EALREADY)
                return request_send_failed(f, w);

        if (f->part_fd >= 0) {
                /* No validator in the lab format: a stale meta file would only
                 * mislead a later netlab-format resume. */
                if (unlink(f->meta) < 0 && errno != ENOENT)
                        fprintf(stderr, "%s: cannot remove %s: %s, ignoring\n", program_name,
                                f->meta, strerror(errno));
                if (!f->resumed && (r = part_reset(f)) != EXIT_OK)
                        return r;
        }
        f->sink.pos = f->local;
        set_keep(f);

        int err_no = 0;
        progress_init(&f->progress, want_bar(f), UINT64_MAX, offset);
        catch_signals(true);
        enum transfer_end end = transfer(f, sock, UINT64_MAX, offset, &f->received, &err_no);
        catch_signals(false);
        if (end == TRANSFER_DONE && interrupted)
                end = TRANSFER_SIGNAL;
        if (end != TRANSFER_DONE)
                return transfer_fail(f, end, err_no);
        progress_clear(&f->progress);
        if (f->sink.escape && fflush(stdout) != 0)
                return transfer_fail(f, TRANSFER_LOCAL, errno);
        if (f->received == 0)
                fprintf(stderr,
                        "%s: the server sent no data (in the lab format an empty file, an "
                        "offset at the end and a refusal look the same)\n",
                        program_name);

        r = finish_file(f, f->local + f->received);
        if (r != EXIT_OK)
                return r;
        print_result(f);
        return EXIT_OK;
}

/* ---- options ---- */

/* The last component of a path, or NULL for none. */
static const char *last_component(const char *p)
{
        const char *s = strrchr(p, '/');

        s = s ? s + 1 : p;
        return *s ? s : NULL;
}

/* Work out OUT and the names beside it.  Return: EXIT_OK or EXIT_USAGE. */
static int set_names(struct fetch *f, const char *out_arg)
{
        const char *base = f->path ? last_component(f->path) : LAB_DEFAULT_OUT;
        struct stat st;
        int r;

        if (!base)
                return usage_error("fetch: PATH \"%s\" names no file", f->path);
        if (!out_arg)
                r = xsnprintf(f->out, sizeof f->out, "%s", base);
        else if (out_arg[0] == '\0')
                return usage_error("fetch: --output: empty file name");
        else if (out_arg[strlen(out_arg) - 1] == '/' ||
                 (stat(out_arg, &st) == 0 && S_ISDIR(st.st_mode)))
                r = xsnprintf(f->out, sizeof f->out, "%s%s%s", out_arg,
                              out_arg[strlen(out_arg) - 1] == '/' ? "" : "/", base);
        else
                r = xsnprintf(f->out, sizeof f->out, "%s", out_arg);
        if (r < 0 || xsnprintf(f->part, sizeof f->part, "%s" PART_SUFFIX, f->out) < 0 ||
            xsnprintf(f->meta, sizeof f->meta, "%s" META_SUFFIX, f->out) < 0 ||
            xsnprintf(f->meta_tmp, sizeof f->meta_tmp, "%s" META_TMP_SUFFIX, f->out) < 0)
                return usage_error("fetch: --output: the file name is too long");
        return EXIT_OK;
}

int cmd_fetch(int argc, char **argv)
{
        enum {
                OPT_LAB = 'l',
                OPT_OUTPUT = 'o',
                OPT_RESUME = 'C',
                OPT_NO_LAB = OPT_FIRST_COMMAND_OPTION,
                OPT_NO_RESTART,
                OPT_OFFSET,
                OPT_VERIFY,
                OPT_NO_VERIFY,
                OPT_DISCARD,
                OPT_UDP,
                OPT_BLOCK_SIZE,
                OPT_WINDOW,
        };
        static const struct option options[] = {
                COMMON_LONG_OPTIONS,
                { "output", required_argument, NULL, OPT_OUTPUT },
                { "resume", no_argument, NULL, OPT_RESUME },
                { "no-restart", no_argument, NULL, OPT_NO_RESTART },
                { "offset", required_argument, NULL, OPT_OFFSET },
                { "verify", no_argument, NULL, OPT_VERIFY },
                { "no-verify", no_argument, NULL, OPT_NO_VERIFY },
                { "discard", no_argument, NULL, OPT_DISCARD },
                { "lab", no_argument, NULL, OPT_LAB },
                { "no-lab", no_argument, NULL, OPT_NO_LAB },
                { "udp", no_argument, NULL, OPT_UDP },
                { "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
                { "window", required_argument, NULL, OPT_WINDOW },
                {}
        };
        struct fetch f = {
                .lab = settings.fetch_lab,
                .verify = settings.fetch_verify,
                .part_fd = -1,
                .sink = { .fd = -1, .pipe = { -1, -1 } },
                .sock = -1,
        };
        const char *out_arg = NULL;
        const char *udp_only = NULL; /* an option that needs --udp */
        bool no_restart_given = false, lab_given = false;
        uint64_t v;
        int c;

        /* Options may follow PATH (getopt permutes; "--" ends them).  0,
         * not 1: glibc re-reads the ordering only then, and main() parsed
         * in "+" order. */
        optind = 0;
        while ((c = getopt_long(argc, argv, ":" COMMON_OPTIONS_SHORT "o:Cl", options, NULL)) >= 0) {
                int r = parse_common_option(c, optarg, &settings.fetch_port);
                if (r < 0)
                        return EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (c) {
                case OPT_HELP:
                        help();
                        return EXIT_OK;
                case OPT_OUTPUT:
                        out_arg = optarg;
                        break;
                case OPT_RESUME:
                        f.resume = true;
                        break;
                case OPT_NO_RESTART:
                        f.no_restart = no_restart_given = true;
                        break;
                case OPT_OFFSET:
                        if (num_parse_u64(optarg, 0, INT64_MAX, &f.offset) < 0)
                                return usage_error(
                                        "fetch: --offset: \"%s\" is not a byte offset from 0 "
                                        "to %lld",
                                        optarg, (long long) INT64_MAX);
                        f.offset_given = true;
                        break;
                case OPT_VERIFY:
                        f.verify = f.verify_explicit = true;
                        break;
                case OPT_NO_VERIFY:
                        f.verify = f.verify_explicit = false;
                        break;
                case OPT_DISCARD:
                        f.discard = true;
                        break;
                case OPT_LAB:
                        f.lab = lab_given = true;
                        break;
                case OPT_NO_LAB:
                        f.lab = lab_given = false;
                        break;
                case OPT_UDP:
                        f.udp = true;
                        break;
                case OPT_BLOCK_SIZE:
                        if (num_parse_u64(optarg, NL_XFER_BLOCK_MIN, NL_XFER_BLOCK_MAX, &v) < 0)
                                return usage_error(
                                        "fetch: --block-size: \"%s\" is not a block size from "
                                        "%u to %u bytes",
                                        optarg, NL_XFER_BLOCK_MIN, NL_XFER_BLOCK_MAX);
                        f.block_size = (uint32_t) v;
                        udp_only = "--block-size";
                        break;
                case OPT_WINDOW:
                        if (num_parse_u64(optarg, 1, NL_XFER_WINDOW_MAX, &v) < 0)
                                return usage_error(
                                        "fetch: --window: \"%s\" is not a number of blocks from "
                                        "1 to %u",
                                        optarg, NL_XFER_WINDOW_MAX);
                        f.window = (uint32_t) v;
                        udp_only = "--window";
                        break;
                case ':':
                        return usage_error("fetch: option %s needs a value", argv[optind - 1]);
                default:
                        return usage_error("fetch: unknown option %s (see 'fetch --help')",
                                           argv[optind - 1]);
                }
        }
        if (udp_only && !f.udp)
                return usage_error("fetch: %s only applies with --udp", udp_only);
        if (f.udp && f.lab) {
                /* lab = true from the INI file gives way to --udp. */
                if (lab_given)
                        return usage_error("fetch: --udp: the lab download has no UDP form");
                f.lab = false;
        }

        int n_args = argc - optind;
        if (n_args > 1 && f.resume && strcmp(argv[optind], "-") == 0)
                return usage_error(
                        "fetch: --resume (-C) takes no value: netlabctl's -C is curl's \"-C -\"");
        if (n_args > 1)
                return usage_error("fetch: more than one PATH given (see 'fetch --help')");
        if (n_args == 0 && !f.lab)
                return usage_error("fetch: no PATH given (see 'fetch --help')");
        f.path = n_args == 1 ? argv[optind] : NULL;
        if (f.path) {
                const char *problem = NULL;
                if (file_path_check((const uint8_t *) f.path, strlen(f.path), false, false,
                                    &problem) < 0)
                        return usage_error("fetch: PATH \"%s\": %s", f.path, problem);
        }

        /* Where the data goes: nowhere, standard output, a device or FIFO
         * named by OUT (written directly: "-o /dev/null" must never replace
         * the device with a file), or OUT through a partial file. */
        f.to_stdout = out_arg && strcmp(out_arg, "-") == 0;
        if (f.discard && out_arg)
                return usage_error("fetch: --discard and --output exclude each other");
        if (!f.discard && !f.to_stdout) {
                struct stat st;
                int r = set_names(&f, out_arg);
                if (r != EXIT_OK)
                        return r;
                if (stat(f.out, &st) == 0 && !S_ISREG(st.st_mode)) {
                        if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
                                return usage_error(
                                        "fetch: --output: %s exists and is neither a regular "
                                        "file, a character device nor a FIFO",
                                        f.out);
                        f.to_device = true;
                }
        }
        bool streaming = f.to_stdout || f.to_device;

        /* Combinations that cannot mean anything.  --verify from the INI file
         * is dropped quietly where it cannot apply; on the command line it is
         * an error. */
        if (f.offset_given && f.resume)
                return usage_error("fetch: --offset and --resume exclude each other");
        if (no_restart_given && !f.resume)
                return usage_error("fetch: --no-restart only applies with --resume");
        if (f.resume && (f.discard || streaming))
                return usage_error("fetch: --resume needs a regular output file (not %s)",
                                   f.discard     ? "--discard"
                                   : f.to_stdout ? "-o -"
                                                 : "a device or FIFO");
        if (f.verify && (f.discard || streaming || f.offset_given || f.lab)) {
                if (f.verify_explicit)
                        return usage_error(
                                "fetch: --verify needs %s",
                                f.lab ? "netlab's format (the lab format has no digest)"
                                : f.offset_given
                                        ? "the whole file (not --offset)"
                                        : "a regular output file (not --discard, -o - or a "
                                          "device)");
                f.verify = false;
        }
        if (f.to_stdout && settings.json)
                return usage_error(
                        "fetch: -o - puts the data on standard output, so --json cannot be used "
                        "(add --no-json)");
        if (f.lab && f.offset_given && f.offset > LAB_OFFSET_MAX)
                return usage_error(
                        "fetch: --offset: the lab format cannot express %llu (at most 10 digits)",
                        (unsigned long long) f.offset);

        f.start_usec = mono_usec();
        f.start = f.offset;

        _cleanup_close_ int device_fd = -1;
        int r;
        if (f.discard)
                r = sink_init(&f.sink, -1, false, false, f.udp);
        else if (f.to_stdout) {
                struct stat st;
                bool reg = fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode);
                /* A regular file behind stdout is written at its own position. */
                r = sink_init(&f.sink, STDOUT_FILENO, false, isatty(STDOUT_FILENO) && !reg,
                              f.udp);
        } else if (f.to_device) {
                /* O_NONBLOCK: a FIFO nobody reads fails now instead of hanging. */
                device_fd = open(f.out, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (device_fd < 0)
                        return fail("fetch", EXIT_LOCAL_IO, "local-io-error", "cannot open %s: %s",
                                    f.out,
                                    errno == ENXIO ? "it is a FIFO that nobody reads"
                                                   : strerror(errno));
                r = sink_init(&f.sink, device_fd, false, isatty(device_fd), f.udp);
        } else {
                if (f.lab && f.resume && access(f.part, F_OK) < 0 && errno == ENOENT) {
                        /* The lab client resumes its destination file itself;
                         * with no partial file, so does a lab-format --resume. */
                        struct stat st;
                        if (lstat(f.out, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
                                if (rename(f.out, f.part) < 0)
                                        return fail("fetch", EXIT_LOCAL_IO, "local-io-error",
                                                    "cannot rename %s to %s to resume it: %s",
                                                    f.out, f.part, strerror(errno));
                                fprintf(stderr,
                                        "%s: resuming %s (%llu bytes) blindly: the lab format "
                                        "has no validator\n",
                                        program_name, f.out, (unsigned long long) st.st_size);
                        }
                }
                r = part_open(&f);
                if (r != EXIT_OK) {
                        f.part_fd = safe_close(f.part_fd);
                        return r;
                }
                if (!f.resume)
                        f.local = 0; /* truncated once the server has said yes */
                else if (!f.lab) {
                        /* Even for an empty part: it may be an --offset
                         * download that had not started. */
                        meta_read(&f);
                        if (f.start > 0 && f.verify) {
                                if (f.verify_explicit) {
                                        f.part_fd = safe_close(f.part_fd);
                                        return usage_error(
                                                "fetch: --verify: %s holds the file from byte %llu "
                                                "(an --offset download), not the whole file",
                                                f.part, (unsigned long long) f.start);
                                }
                                f.verify = false;
                        }
                }
                r = sink_init(&f.sink, f.part_fd, true, false, f.udp);
        }
        if (r < 0) {
                f.part_fd = safe_close(f.part_fd);
                return fail("fetch", EXIT_FAILURE_OTHER, "internal-error", "out of memory");
        }

        r = f.lab ? fetch_lab(&f) : fetch_netlab(&f);
        sink_done(&f.sink);
        f.part_fd = safe_close(f.part_fd);
        return r;
}
