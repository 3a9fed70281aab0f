/* lab_client.c: a client that speaks the socket lab's message format byte for
 * byte (BRIEF.md, "Lab wire formats"), written fresh for the test suite.
 *
 * Usage: lab_client HOST PORT MESSAGE
 *
 * Like the lab's client it connects over TCP/IPv4, send()s the message with
 * strlen() (no terminator, no half-close), does ONE recv() of at most
 * BUFSIZE-1 bytes into a BUFSIZE-byte buffer, prints what arrived followed by
 * "\n", and closes.  Unlike the lab's code it reads the message from argv
 * instead of gets(), and it checks every call.  An alarm bounds its lifetime
 * so a hung test cannot leave it behind. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSIZE 32
#define LIFETIME_SECONDS 30

int main(int argc, char **argv)
{
        struct sockaddr_in server;
        char reply[BUFSIZE];
        char *end = NULL;
        long port;
        int sock;

        if (argc != 4) {
                fprintf(stderr, "usage: %s HOST PORT MESSAGE\n", argv[0]);
                return 2;
        }
        alarm(LIFETIME_SECONDS);

        port = strtol(argv[2], &end, 10);
        if (!end || *end != '\0' || port < 1 || port > 65535) {
                fprintf(stderr, "lab_client: bad port \"%s\"\n", argv[2]);
                return 2;
        }

        memset(&server, 0, sizeof server);
        server.sin_family = AF_INET;
        server.sin_port = htons((unsigned short) port);
        if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
                fprintf(stderr, "lab_client: bad IPv4 address \"%s\"\n", argv[1]);
                return 2;
        }

        sock = socket(PF_INET, SOCK_STREAM, IPPROTO_TCP);
        if (sock < 0) {
                perror("lab_client: socket");
                return 1;
        }
        if (connect(sock, (struct sockaddr *) &server, sizeof server) < 0) {
                perror("lab_client: connect");
                close(sock);
                return 1;
        }

        size_t len = strlen(argv[3]);
        ssize_t sent = send(sock, argv[3], len, 0);
        if (sent < 0 || (size_t) sent != len) {
                perror("lab_client: send");
                close(sock);
                return 1;
        }

        ssize_t got = recv(sock, reply, BUFSIZE - 1, 0);
        if (got < 0) {
                perror("lab_client: recv");
                close(sock);
                return 1;
        }

        /* What arrived, then a newline, as the lab's printf("%s\n") would do
         * for a reply without a NUL in it. */
        if (got > 0 && fwrite(reply, 1, (size_t) got, stdout) != (size_t) got)
                return 1;
        putchar('\n');
        if (fflush(stdout) != 0)
                return 1;

        close(sock);
        return 0;
}
