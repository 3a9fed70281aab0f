/* fileroot.h: open files beneath a listener's root, and nothing else.
 *
 * The lexical check (file_path_check() in proto.h) runs first as extra
 * defence; the confinement itself is the kernel's: openat2() with
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, or, where openat2() is missing
 * (ENOSYS: old kernels, some seccomp filters) or the config says
 * resolve = "walk", a walk one component at a time with O_NOFOLLOW.
 * Everything user-named is opened O_NONBLOCK and fstat()ed, and anything but
 * the wanted type is refused, so a FIFO or a device can neither block nor
 * leak. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "proto.h"

enum fileroot_resolve {
        FILEROOT_RESOLVE_AUTO, /* openat2(), falling back to the walk on ENOSYS */
        FILEROOT_RESOLVE_WALK, /* always the component walk (refuses every symlink) */
};

/* Parse the config's `resolve` value ("auto" or "walk").  Return: 0 or -EINVAL. */
int fileroot_resolve_from_string(const char *s, enum fileroot_resolve *ret);

/* Open the root directory itself: O_PATH | O_DIRECTORY | O_CLOEXEC.
 * Return: the fd (caller closes); negative errno of open(). */
int fileroot_open_root(const char *root);

enum fileroot_want {
        FILEROOT_WANT_FILE,      /* a regular file, opened O_RDONLY | O_NONBLOCK */
        FILEROOT_WANT_DIRECTORY, /* a directory, opened O_RDONLY | O_DIRECTORY */
        FILEROOT_WANT_ANY,       /* either of the two (STAT) */
};

/* Open path (path_len bytes, not NUL-terminated, already passed
 * file_path_check(); the empty path is the root itself) beneath root_fd and
 * fstat() the result into *ret_st.  openat2()'s EAGAIN (a concurrent rename
 * under the root) is retried a few times.  The path's shape is checked again
 * here, the same way for both modes (see below).  A symlink inside the root
 * that stays inside is followed by openat2() and refused by the walk.
 * Return: the fd (O_CLOEXEC, caller closes) with *ret_st filled;
 *   -ENOENT   nothing there (or a component is not a directory);
 *   -EXDEV    the path leads out of the root (symlink escape; also any "."
 *             or ".." component and a leading '/', refused before any lookup);
 *   -ELOOP    a symlink where none is allowed (walk mode, magic links, loops);
 *   -EPERM    not the wanted type (FIFO, device, socket, directory for a
 *             file, file for a directory);
 *   -EACCES   the daemon may not read it;
 *   -EAGAIN   still racing with renames after the retries;
 *   -ENAMETOOLONG  a component over NL_NAME_MAX, or a path of NL_PATH_MAX
 *             bytes or more (the kernel's PATH_MAX counts the NUL);
 *   -EINVAL   a NUL byte or an empty component in path, or a bad argument;
 *   or another negative errno of the kernel.  *ret_st is untouched on error. */
int fileroot_open(int root_fd, const uint8_t *path, size_t path_len, enum fileroot_resolve mode,
                  enum fileroot_want want, struct stat *ret_st);

/* The validator of a file: a digest-free, opaque 32 bytes built from the
 * inode, size, mtime and ctime of st (docs/PROTOCOL.md, "Validators").  Any
 * write, truncate, chmod-free replace or rename-over changes it. */
void fileroot_validator(const struct stat *st, uint8_t out[NL_VALIDATOR_SIZE]);

/* Which resolver the last fileroot_open() used: "openat2" or "walk" (for the
 * request log and tests); before the first call, the one AUTO would use.
 * Process-wide state: "walk" for AUTO once openat2() said ENOSYS. */
const char *fileroot_last_resolver(void);
