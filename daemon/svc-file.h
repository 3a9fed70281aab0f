/* svc-file.h: what the file service's TCP halves share: the listener options
 * and the lab download entry point (svc-lab-download.c), called by
 * svc-file-tcp.c when a connection starts like the lab client. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fileroot.h"

struct conn;

struct file_options {
        char *root;             /* absolute path of the directory served */
        char *lab_file;         /* relative to root; NULL: no lab download on this listener */
        bool hide_dotfiles;     /* names starting with '.' are neither listed nor served */
        char *resolve;          /* "auto" or "walk" (fileroot.h) */
        enum fileroot_resolve resolve_mode; /* derived from resolve */
};

/* Serve a lab-format download (BRIEF.md) on c, given the bytes already read.
 * Runs in the child; logs the request.  Return: 0 or negative errno. */
int svc_lab_download_serve(struct conn *c, const struct file_options *o, const uint8_t *first,
                           size_t n_first);

/* End a connection after a download: the client has all it asked for, so a
 * plain close is right, but give it a moment to read the tail (svc-file-tcp.c). */
#define FILE_LINGER_USEC (2u * 1000000u)
