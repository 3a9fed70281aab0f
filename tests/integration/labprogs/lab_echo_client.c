/* lab_echo_client.c: a UDP echo client written like the socket lab's (BRIEF.md,
 * "Lab wire formats": datagrams of up to 512 bytes, echoed verbatim), fresh
 * for the test suite.
 *
 * Usage: lab_echo_client HOST PORT
 *
 * Like the lab's client it uses one AF_INET UDP socket and a 512-byte buffer:
 * for each line of standard input it sendto()s the line without its newline,
 * measured with strlen() (so no terminator goes out), does ONE recvfrom() of
 * at most 512 bytes and puts() the reply.  Unlike the lab's code it reads
 * with fgets() instead of gets(), checks every call, gives up on a reply after
 * RECV_TIMEOUT_SECONDS (exit 3, so a dropped datagram cannot hang a test),
 * and an alarm bounds its lifetime.  Exit 0 at the end of standard input. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BUFSIZE 512
#define RECV_TIMEOUT_SECONDS 5
#define LIFETIME_SECONDS 60

int main(int argc, char **argv)
{
        struct sockaddr_in server;
        struct timeval tv = { .tv_sec = RECV_TIMEOUT_SECONDS };
        char line[BUFSIZE];
        char reply[BUFSIZE + 1]; /* + 1: room for the NUL puts() needs */
        char *end = NULL;
        long port;
        int sock;

        if (argc != 3) {
                fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
                return 2;
        }
        alarm(LIFETIME_SECONDS);

        port = strtol(argv[2], &end, 10);
        if (!end || *end != '\0' || port < 1 || port > 65535) {
                fprintf(stderr, "lab_echo_client: bad port \"%s\"\n", argv[2]);
                return 2;
        }

        memset(&server, 0, sizeof server);
        server.sin_family = AF_INET;
        server.sin_port = htons((unsigned short) port);
        if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
                fprintf(stderr, "lab_echo_client: bad IPv4 address \"%s\"\n", argv[1]);
                return 2;
        }

        sock = socket(AF_INET, SOCK_DGRAM, 0);
        if (sock < 0) {
                perror("lab_echo_client: socket");
                return 1;
        }
        if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
                perror("lab_echo_client: setsockopt");
                close(sock);
                return 1;
        }

        while (fgets(line, sizeof line, stdin)) {
                /* gets() would have dropped the newline: do the same. */
                line[strcspn(line, "\n")] = '\0';

                size_t len = strlen(line);
                ssize_t sent = sendto(sock, line, len, 0, (struct sockaddr *) &server, sizeof server);
                if (sent < 0 || (size_t) sent != len) {
                        perror("lab_echo_client: sendto");
                        close(sock);
                        return 1;
                }

                struct sockaddr_in from;
                socklen_t from_len = sizeof from;
                ssize_t got = recvfrom(sock, reply, BUFSIZE, 0, (struct sockaddr *) &from, &from_len);
                if (got < 0) {
                        int e = errno;
                        fprintf(stderr, "lab_echo_client: recvfrom: %s\n", strerror(e));
                        close(sock);
                        return e == EAGAIN || e == EWOULDBLOCK ? 3 : 1;
                }
                reply[got] = '\0';
                if (puts(reply) == EOF) {
                        close(sock);
                        return 1;
                }
                if (fflush(stdout) != 0) {
                        close(sock);
                        return 1;
                }
        }

        close(sock);
        return ferror(stdin) ? 1 : 0;
}
