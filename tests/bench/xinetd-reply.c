/*
 * xinetd-reply: the message service xinetd runs per connection in the
 * connection-rate benchmark ("server =" of a "wait = no" stream service).
 *
 * xinetd forks, puts the connected socket on fds 0, 1 and 2, and execs this
 * program. It does what forkserver's child does: one read of up to 64 bytes
 * from fd 0, one fixed reply on fd 1, exit. Exiting closes the socket, which
 * ends the client's read. It never parses its input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <unistd.h>

/* The same reply as forkserver's, so every peer sends the same bytes. */
#define REPLY "message received: netlab-bench-01\n"
#define RECV_MAX 64
#define IO_TIMEOUT_SEC 5

int main(void) {
        char buf[RECV_MAX];
        size_t sent = 0;
        ssize_t n;

        /* The socket comes from xinetd with no timeout: bound this process's life. */
        alarm(IO_TIMEOUT_SEC);
        do
                n = read(0, buf, sizeof(buf));
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return 1;
        while (sent < sizeof(REPLY) - 1) {
                n = write(1, REPLY + sent, sizeof(REPLY) - 1 - sent);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                sent += (size_t) n;
        }
        return 0;
}
