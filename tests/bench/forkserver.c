/*
 * forkserver: the ceiling of the message-service connection-rate benchmark.
 *
 * "forkserver PORT" is the smallest useful fork-per-connection TCP server, in
 * the shape of the lab's concurrent server: bind 127.0.0.1:PORT, listen, and
 * for each accepted connection fork a child that closes the listener, does one
 * recv of up to 64 bytes, sends one fixed reply and exits. The parent closes
 * the connected socket and reaps children from a SIGCHLD handler, as netlabd
 * does. It prints "ready" on stdout once it listens and runs until killed.
 *
 * No limits, no logging, no config: whatever netlabd does beyond this is what
 * the benchmark prices. It trusts nothing from the peer and never parses input.
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
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* About the size of netlabd's default reply to the bench message. */
#define REPLY "message received: netlab-bench-01\n"
#define RECV_MAX 64
#define IO_TIMEOUT_SEC 5
#define BACKLOG 128

static void on_sigchld(int sig) {
        int saved = errno;

        (void) sig;
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        errno = saved;
}

static void serve(int fd) {
        static const struct timeval tv = { .tv_sec = IO_TIMEOUT_SEC, .tv_usec = 0 };
        char buf[RECV_MAX];
        size_t sent = 0;
        ssize_t n;

        /* Bound the child's life: a silent client must not pin a process. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return;
        do
                n = recv(fd, buf, sizeof(buf), 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return;
        while (sent < sizeof(REPLY) - 1) {
                n = send(fd, REPLY + sent, sizeof(REPLY) - 1 - sent, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                sent += (size_t) n;
        }
}

int main(int argc, char *argv[]) {
        struct sockaddr_in sin = { .sin_family = AF_INET };
        struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
        static const int one = 1;
        char *end = NULL;
        long port;
        int lfd = -1;

        if (argc != 2) {
                fprintf(stderr, "usage: forkserver PORT\n");
                return 2;
        }
        errno = 0;
        port = strtol(argv[1], &end, 10);
        if (argv[1][0] < '0' || argv[1][0] > '9' || errno != 0 || *end != '\0' || port < 1 ||
            port > 65535) {
                fprintf(stderr, "forkserver: PORT \"%s\" is not a number in 1-65535\n", argv[1]);
                return 2;
        }
        sin.sin_port = htons((uint16_t) port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        if (sigemptyset(&sa.sa_mask) < 0 || sigaction(SIGCHLD, &sa, NULL) < 0) {
                perror("forkserver: sigaction");
                return 1;
        }
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        if (lfd < 0) {
                perror("forkserver: socket");
                return 1;
        }
        if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
                perror("forkserver: setsockopt");
                return 1;
        }
        if (bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) < 0) {
                fprintf(stderr, "forkserver: bind 127.0.0.1:%ld: %s\n", port, strerror(errno));
                return 1;
        }
        if (listen(lfd, BACKLOG) < 0) {
                perror("forkserver: listen");
                return 1;
        }
        if (printf("ready\n") < 0 || fflush(stdout) != 0) {
                perror("forkserver: stdout");
                return 1;
        }

        for (;;) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                pid_t pid;

                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        perror("forkserver: accept");
                        /* EMFILE and friends: back off instead of spinning. */
                        (void) nanosleep(&(struct timespec) { .tv_nsec = 10 * 1000 * 1000 }, NULL);
                        continue;
                }
                pid = fork();
                if (pid < 0) {
                        perror("forkserver: fork");
                        (void) close(cfd);
                        continue;
                }
                if (pid == 0) {
                        (void) close(lfd);
                        serve(cfd);
                        /* _exit closes cfd: the FIN that ends the client's read. */
                        _exit(0);
                }
                if (close(cfd) < 0)
                        perror("forkserver: close");
        }
}
