/* fileroot.c: open files beneath a listener's root, and nothing else.
 *
 * Trusts nothing about the path: it came from a peer (or a config file) and
 * has passed only a lexical check.  The confinement is the kernel's, never
 * string surgery: openat2() with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
 * or, where openat2() is missing or the listener says resolve = "walk", a
 * walk one component at a time with O_NOFOLLOW that refuses every symlink.
 * Both resolvers first re-check the rules they rely on (no NUL, no '/' first,
 * no empty, "." or ".." component), so they refuse the same strings with the
 * same errors and a caller that forgot file_path_check() still cannot pass
 * ".." or a truncating NUL to the kernel.
 *
 * Everything is opened O_CLOEXEC, user-named files O_NONBLOCK | O_NOCTTY (a
 * FIFO cannot block us, a tty cannot become ours), then fstat()ed: the type
 * check and the validator both come from that one fstat() of the fd we
 * serve, so a rename between check and use changes nothing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fileroot.h"
#include "util.h"
#include "wire.h"

/* openat2() fails with EAGAIN when a rename anywhere on the system raced with
 * a ".." lookup under RESOLVE_BENEATH; the man page says to retry.  One try
 * and four retries, then the caller tells its client to try again. */
#define OPENAT2_TRIES 5

/* The flags for the file we hand out (final component). */
#define OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)

#define NSEC_PER_SEC UINT64_C(1000000000)

_Static_assert(NL_VALIDATOR_SIZE == 4 * sizeof(uint64_t), "the validator is four u64s");

/* Set once openat2() said ENOSYS: it will not appear later in this process. */
static bool openat2_missing;
static const char *last_resolver;

int fileroot_resolve_from_string(const char *s, enum fileroot_resolve *ret)
{
        if (!s)
                return -EINVAL;
        if (strcmp(s, "auto") == 0)
                *ret = FILEROOT_RESOLVE_AUTO;
        else if (strcmp(s, "walk") == 0)
                *ret = FILEROOT_RESOLVE_WALK;
        else
                return -EINVAL;
        return 0;
}

int fileroot_open_root(const char *root)
{
        if (!root)
                return -EINVAL;

        int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fd;
}

/* The lexical rules both resolvers rely on.  Return: 0; -ENAMETOOLONG for a
 * path of PATH_MAX bytes or more or a component over NL_NAME_MAX; -EXDEV for a
 * leading '/' or a "." or ".." component; -EINVAL for a NUL byte or an empty
 * component ("a//b", a trailing '/'). */
static int path_check(const uint8_t *path, size_t len)
{
        size_t start = 0;

        /* The kernel's PATH_MAX (4096) counts the NUL, so openat2() refuses a
         * path of NL_PATH_MAX bytes; the walk would not notice.  Refuse it
         * here so both resolvers agree. */
        if (len > NL_PATH_MAX || len >= PATH_MAX)
                return -ENAMETOOLONG;
        if (len == 0)
                return 0;
        if (path[0] == '/')
                return -EXDEV;

        for (size_t i = 0; i <= len; i++) {
                if (i < len && path[i] == '\0')
                        return -EINVAL; /* would silently cut the C string short */
                if (i < len && path[i] != '/')
                        continue;

                size_t n = i - start;
                if (n == 0)
                        return -EINVAL;
                if (n > NL_NAME_MAX)
                        return -ENAMETOOLONG;
                if (path[start] == '.' && (n == 1 || (n == 2 && path[start + 1] == '.')))
                        return -EXDEV;
                start = i + 1;
        }
        return 0;
}

static bool type_wanted(mode_t mode, enum fileroot_want want)
{
        switch (want) {
        case FILEROOT_WANT_FILE:
                return S_ISREG(mode);
        case FILEROOT_WANT_DIRECTORY:
                return S_ISDIR(mode);
        case FILEROOT_WANT_ANY:
                return S_ISREG(mode) || S_ISDIR(mode);
        }
        return false;
}

/* openat2() beneath dir_fd, retrying EAGAIN.  Return: the fd; negative errno. */
static int openat2_beneath(int dir_fd, const char *path, uint64_t flags)
{
        struct open_how how = {
                .flags = flags,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };

        for (unsigned i = 0; i < OPENAT2_TRIES; i++) {
                long fd = syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
                if (fd >= 0)
                        return (int) fd;
                if (errno != EAGAIN)
                        return -errno;
        }
        return -EAGAIN;
}

static int open_openat2(int root_fd, const uint8_t *path, size_t len, enum fileroot_want want)
{
        char buf[NL_PATH_MAX + 1];
        uint64_t flags = OPEN_FLAGS | (want == FILEROOT_WANT_DIRECTORY ? O_DIRECTORY : 0);
        int r;

        /* path_check() bounded len and refused NUL bytes. */
        if (len == 0) {
                buf[0] = '.';
                len = 1;
        } else
                memcpy(buf, path, len);
        buf[len] = '\0';

        r = openat2_beneath(root_fd, buf, flags);
        if (r >= 0)
                return r;
        if (r == -ENXIO)
                return -EPERM; /* a socket (or a device without a driver): not a file */
        if (r != -ENOTDIR)
                return r;
        if (want != FILEROOT_WANT_DIRECTORY)
                return -ENOENT; /* a component before the last is not a directory */

        /* O_DIRECTORY makes a FIFO or device fail before it is opened for
         * real, but then ENOTDIR does not say which component was wrong.  Ask
         * again with O_PATH, which opens nothing: a last component that is
         * not a directory is the wrong type; one before it, not found. */
        _cleanup_close_ int probe = -1;
        struct stat st;

        r = openat2_beneath(root_fd, buf, O_PATH | O_CLOEXEC);
        if (r < 0)
                return r == -ENOTDIR ? -ENOENT : r;
        probe = r;
        if (fstat(probe, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EAGAIN; /* replaced by a directory meanwhile */
        return -EPERM;
}

/* Turn a failed openat() of comp beneath dir_fd in the walk into the
 * documented errors.  O_PATH | O_DIRECTORY | O_NOFOLLOW on a symlink (and
 * O_DIRECTORY | O_NOFOLLOW on the last component) fails with ENOTDIR, not
 * ELOOP, so look at what is there: callers must tell "symlink refused" from
 * "not found". */
static int walk_error(int dir_fd, const char *comp, int err, bool last)
{
        struct stat st;

        if (err == -ENXIO)
                return -EPERM;
        if (err != -ENOTDIR)
                return err;
        if (fstatat(dir_fd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -ENOENT; /* gone meanwhile, or dir_fd itself is odd */
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (last)
                return -EPERM; /* only O_DIRECTORY gets here: not a directory */
        return -ENOENT;
}

static int open_walk(int root_fd, const uint8_t *path, size_t len, enum fileroot_want want)
{
        int final_flags = OPEN_FLAGS | O_NOFOLLOW |
                          (want == FILEROOT_WANT_DIRECTORY ? O_DIRECTORY : 0);
        _cleanup_close_ int dir_fd = -1;
        int cur = root_fd; /* borrowed: root_fd, then dir_fd */
        char comp[NL_NAME_MAX + 1];
        size_t start = 0;

        if (len == 0) {
                int fd = openat(root_fd, ".", final_flags);
                if (fd < 0)
                        return walk_error(root_fd, ".", -errno, true);
                return fd;
        }

        for (;;) {
                size_t end = start;

                while (end < len && path[end] != '/')
                        end++;

                /* path_check() ran, but this loop is the confinement when
                 * openat2() is missing: refuse again rather than trust it. */
                size_t n = end - start;
                if (n == 0)
                        return -EINVAL;
                if (n > NL_NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, path + start, n);
                comp[n] = '\0';
                if (memchr(comp, '\0', n))
                        return -EINVAL;
                if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0)
                        return -EXDEV;

                bool last = end == len;
                int fd = openat(cur, comp,
                                last ? final_flags : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return walk_error(cur, comp, -errno, last);
                if (last)
                        return fd;

                dir_fd = safe_close(dir_fd); /* the parent: fd no longer needs it */
                dir_fd = fd;
                cur = dir_fd;
                start = end + 1;
        }
}

int fileroot_open(int root_fd, const uint8_t *path, size_t path_len, enum fileroot_resolve mode,
                  enum fileroot_want want, struct stat *ret_st)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        if (root_fd < 0 || (!path && path_len > 0) || !ret_st)
                return -EINVAL;
        if (mode != FILEROOT_RESOLVE_AUTO && mode != FILEROOT_RESOLVE_WALK)
                return -EINVAL;
        if (want != FILEROOT_WANT_FILE && want != FILEROOT_WANT_DIRECTORY &&
            want != FILEROOT_WANT_ANY)
                return -EINVAL;

        bool walk = mode == FILEROOT_RESOLVE_WALK || openat2_missing;
        last_resolver = walk ? "walk" : "openat2";
        r = path_check(path, path_len);
        if (r < 0)
                return r;

        if (!walk) {
                r = open_openat2(root_fd, path, path_len, want);
                if (r == -ENOSYS) {
                        /* Old kernel, or a seccomp filter that hides it. */
                        openat2_missing = true;
                        walk = true;
                        last_resolver = "walk";
                }
        }
        if (walk)
                r = open_walk(root_fd, path, path_len, want);
        if (r < 0)
                return r;
        fd = r;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!type_wanted(st.st_mode, want))
                return -EPERM;

        *ret_st = st;
        return TAKE_FD(fd);
}

/* Unsigned arithmetic: a pre-1970 time wraps, which is fine for an opaque
 * value that is only compared. */
static uint64_t timespec_ns(const struct timespec *ts)
{
        return (uint64_t) ts->tv_sec * NSEC_PER_SEC + (uint64_t) ts->tv_nsec;
}

void fileroot_validator(const struct stat *st, uint8_t out[NL_VALIDATOR_SIZE])
{
        struct wire_writer w;

        /* Four u64s fill the 32 bytes exactly (asserted above), so no put can
         * fail. */
        wire_writer_init(&w, out, NL_VALIDATOR_SIZE);
        (void) wire_put_u64be(&w, (uint64_t) st->st_ino);
        (void) wire_put_u64be(&w, (uint64_t) st->st_size);
        (void) wire_put_u64be(&w, timespec_ns(&st->st_mtim));
        (void) wire_put_u64be(&w, timespec_ns(&st->st_ctim));
}

const char *fileroot_last_resolver(void)
{
        if (!last_resolver)
                return openat2_missing ? "walk" : "openat2";
        return last_resolver;
}
