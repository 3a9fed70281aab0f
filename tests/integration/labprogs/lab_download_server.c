/* lab_download_server.c: a server in the socket lab's "broken download" wire
 * format, written for netlab's tests (BRIEF.md, "Lab wire formats").
 *
 *   lab_download_server PORT FILE [CONNECTIONS]
 *
 * Listens on 127.0.0.1:PORT (0: any free port) and prints "ready PORT" once
 * it listens.  For each of CONNECTIONS connections (default 1), one after the
 * other like the lab's iterative server: reads the 2-byte command, and for
 * commands 1 and 2 the 10-byte offset, reading until it has them all (they
 * may come split), takes the offset with sscanf("%d") as the lab does, then
 * streams FILE from that offset in 256-byte pieces and closes.  No size, no
 * status, no error text ever: a bad request is just closed.  For each
 * connection it prints "command C offset N sent M" (C is '?' for a bad
 * command) and exits 0 after the last one. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OFFSET_FIELD 10
#define CHUNK 256

/* Read exactly n bytes.  Return: n; less at end of file; -1 on error. */
static ssize_t read_full(int fd, char *buf, size_t n)
{
        size_t got = 0;

        while (got < n) {
                ssize_t k = read(fd, buf + got, n - got);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        return (ssize_t) got;
}

static int write_all(int fd, const char *p, size_t n)
{
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

static void serve(int conn, const char *path)
{
        char command[2] = { 0 }, field[OFFSET_FIELD + 1] = { 0 };
        int offset = 0;
        long long sent = 0;
        FILE *in;

        if (read_full(conn, command, sizeof command) != sizeof command ||
            (command[0] != '0' && command[0] != '1' && command[0] != '2')) {
                printf("command ? offset 0 sent 0\n");
                return;
        }
        if (command[0] != '0') {
                if (read_full(conn, field, OFFSET_FIELD) != OFFSET_FIELD || sscanf(field, "%d", &offset) != 1) {
                        printf("command %c offset ? sent 0\n", command[0]);
                        return;
                }
        }

        in = fopen(path, "rb");
        if (!in) {
                perror(path);
                exit(1);
        }
        if (fseek(in, offset, SEEK_SET) == 0) {
                for (;;) {
                        char buf[CHUNK];
                        size_t n = fread(buf, 1, sizeof buf, in);
                        if (n > 0) {
                                if (write_all(conn, buf, n) < 0)
                                        break;
                                sent += (long long) n;
                        }
                        if (n < sizeof buf)
                                break;
                }
        }
        fclose(in);
        printf("command %c offset %d sent %lld\n", command[0], offset, sent);
}

int main(int argc, char **argv)
{
        struct sockaddr_in addr = { .sin_family = AF_INET };
        socklen_t len = sizeof addr;
        int listener, one = 1, count = 1;

        if (argc != 3 && argc != 4) {
                fprintf(stderr, "usage: lab_download_server PORT FILE [CONNECTIONS]\n");
                return 1;
        }
        if (argc == 4)
                count = atoi(argv[3]);
        setvbuf(stdout, NULL, _IOLBF, 0);

        listener = socket(AF_INET, SOCK_STREAM, 0);
        if (listener < 0) {
                perror("socket");
                return 1;
        }
        (void) setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons((unsigned short) atoi(argv[1]));
        if (bind(listener, (struct sockaddr *) &addr, sizeof addr) < 0 || listen(listener, 10) < 0 ||
            getsockname(listener, (struct sockaddr *) &addr, &len) < 0) {
                perror("bind/listen");
                return 1;
        }
        printf("ready %u\n", ntohs(addr.sin_port));

        for (int i = 0; i < count; i++) {
                int conn = accept(listener, NULL, NULL);
                if (conn < 0) {
                        if (errno == EINTR) {
                                i--;
                                continue;
                        }
                        perror("accept");
                        return 1;
                }
                serve(conn, argv[2]);
                close(conn);
        }
        close(listener);
        return 0;
}
