/*
 * plainecho: the peer of the UDP echo benchmark.
 *
 * "plainecho PORT" is what a competent plain UDP echo server looks like: one
 * thread, one socket bound to 127.0.0.1:PORT, and a blocking recvfrom/sendto
 * loop with a 65536-byte buffer (larger than any UDP payload, so nothing is
 * truncated). It prints "ready" on stdout once bound and exits 0 on SIGTERM.
 *
 * No tricks (no batching, no busy polling, no extra threads) and no handicaps
 * (no logging, no limits, no per-datagram work beyond the two syscalls): what
 * netlabd does beyond this is what the benchmark prices. It never parses what
 * it receives; it only sends it back to the sender's address.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 65536

static volatile sig_atomic_t stop;

static void on_sigterm(int sig) {
        (void) sig;
        stop = 1;
}

int main(int argc, char *argv[]) {
        /* No SA_RESTART: SIGTERM interrupts the blocking recvfrom with EINTR. */
        struct sigaction sa = { .sa_handler = on_sigterm };
        struct sockaddr_in sin = { .sin_family = AF_INET };
        static char buf[BUF_SIZE];
        char *end = NULL;
        long port;
        int fd = -1;

        if (argc != 2) {
                fprintf(stderr, "usage: plainecho PORT\n");
                return 2;
        }
        errno = 0;
        port = strtol(argv[1], &end, 10);
        if (argv[1][0] < '0' || argv[1][0] > '9' || errno != 0 || *end != '\0' || port < 1 ||
            port > 65535) {
                fprintf(stderr, "plainecho: PORT \"%s\" is not a number in 1-65535\n", argv[1]);
                return 2;
        }
        sin.sin_port = htons((uint16_t) port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        if (sigemptyset(&sa.sa_mask) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
            sigaction(SIGINT, &sa, NULL) < 0) {
                perror("plainecho: sigaction");
                return 1;
        }
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
        if (fd < 0) {
                perror("plainecho: socket");
                return 1;
        }
        if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0) {
                fprintf(stderr, "plainecho: bind 127.0.0.1:%ld: %s\n", port, strerror(errno));
                return 1;
        }
        if (printf("ready\n") < 0 || fflush(stdout) != 0) {
                perror("plainecho: stdout");
                return 1;
        }

        while (!stop) {
                struct sockaddr_storage peer;
                socklen_t peer_len = sizeof(peer);
                ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *) &peer, &peer_len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("plainecho: recvfrom");
                        return 1;
                }
                /*
                 * A failed send (a full socket buffer at the client, an ICMP
                 * error from an earlier reply) loses one reply, as it would for
                 * any UDP server; the client counts it. Keep serving.
                 */
                (void) sendto(fd, buf, (size_t) n, 0, (struct sockaddr *) &peer, peer_len);
        }
        (void) close(fd);
        return 0;
}
