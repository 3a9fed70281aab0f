/* lab_download_client.c: a client in the socket lab's "broken download"
 * wire format, written for netlab's tests (BRIEF.md, "Lab wire formats").
 *
 *   lab_download_client HOST PORT COMMAND [OFFSET] DEST
 *
 * COMMAND 0: the whole file; 1: from OFFSET; 2: from the size of DEST (the
 * partial file already there).  Like the lab's client it writes 2 bytes (the
 * digit and the NUL its sprintf leaves), then for 1 and 2 a 10-byte buffer
 * holding the decimal offset and a NUL, the rest of the buffer being whatever
 * was in it (here: a fixed non-zero filler, as an uninitialised buffer
 * would).  It sends no name, no size, no terminator beyond that, and never
 * half-closes.  Then it reads until end of file and appends every byte it
 * receives to DEST, as the lab's does.  On stdout: "received N bytes".
 * Exit: 0 at end of file, 1 on any error. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define OFFSET_FIELD 10
#define CHUNK 256

static int connect_to(const char *host, const char *port)
{
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res, *ai;
        int fd = -1, r;

        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0) {
                fprintf(stderr, "lab_download_client: %s: %s\n", host, gai_strerror(r));
                return -1;
        }
        for (ai = res; ai; ai = ai->ai_next) {
                fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
                if (fd < 0)
                        continue;
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                        break;
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
                perror("lab_download_client: connect");
        return fd;
}

static int write_all(int fd, const void *buf, size_t n)
{
        const char *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int main(int argc, char **argv)
{
        const char *dest;
        long long offset = 0;
        int command, sock;
        unsigned long long total = 0;
        FILE *out;

        if (argc != 5 && argc != 6) {
                fprintf(stderr, "usage: lab_download_client HOST PORT 0|1|2 [OFFSET] DEST\n");
                return 1;
        }
        command = atoi(argv[3]);
        if (command < 0 || command > 2 || (command == 1) != (argc == 6)) {
                fprintf(stderr, "lab_download_client: OFFSET goes with command 1, and only with it\n");
                return 1;
        }
        dest = argv[argc - 1];
        if (command == 1)
                offset = atoll(argv[4]);

        /* Append, as the lab does; for command 2 the offset is what is
         * already there. */
        out = fopen(dest, "ab");
        if (!out) {
                perror(dest);
                return 1;
        }
        if (command == 2) {
                struct stat st;
                if (fstat(fileno(out), &st) < 0) {
                        perror(dest);
                        return 1;
                }
                offset = (long long) st.st_size;
        }

        sock = connect_to(argv[1], argv[2]);
        if (sock < 0)
                return 1;

        char cmd[2];
        cmd[0] = (char) ('0' + command);
        cmd[1] = '\0';
        if (write_all(sock, cmd, sizeof cmd) < 0) {
                perror("lab_download_client: write");
                return 1;
        }
        if (command != 0) {
                char field[OFFSET_FIELD + 1];
                memset(field, 0x5a, sizeof field); /* "uninitialised" filler after the NUL */
                int k = snprintf(field, sizeof field, "%lld", offset);
                if (k < 0 || k > OFFSET_FIELD) {
                        fprintf(stderr, "lab_download_client: offset %lld does not fit in 10 bytes\n", offset);
                        return 1;
                }
                if (write_all(sock, field, OFFSET_FIELD) < 0) {
                        perror("lab_download_client: write");
                        return 1;
                }
        }

        for (;;) {
                char buf[CHUNK];
                ssize_t n = read(sock, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("lab_download_client: read");
                        return 1;
                }
                if (n == 0)
                        break;
                if (fwrite(buf, 1, (size_t) n, out) != (size_t) n) {
                        perror(dest);
                        return 1;
                }
                total += (unsigned long long) n;
        }
        close(sock);
        if (fclose(out) != 0) {
                perror(dest);
                return 1;
        }
        printf("received %llu bytes\n", total);
        return 0;
}
