/* peek_recv.c - chapter 13: look at waiting data with MSG_PEEK, then read it.
 * MSG_DONTWAIT so the peek never blocks; select() waits up to 100 ms between
 * tries instead of spinning; recv() == 0 (client closed) ends the program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define BUF_SIZE 30
static void error_handling(const char *msg) { perror(msg); exit(1); }

int main(int argc, char *argv[])
{
    if (argc != 2) { fprintf(stderr, "Usage: %s <port>\n", argv[0]); return 1; }

    int serv = socket(PF_INET, SOCK_STREAM, 0);
    if (serv == -1) error_handling("socket");
    int on = 1;
    setsockopt(serv, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    if (bind(serv, (struct sockaddr *)&addr, sizeof addr) == -1) error_handling("bind");
    if (listen(serv, 5) == -1) error_handling("listen");

    struct sockaddr_in clnt;
    socklen_t clen = sizeof clnt;
    int sock;
    do sock = accept(serv, (struct sockaddr *)&clnt, &clen);
    while (sock == -1 && errno == EINTR);
    if (sock == -1) error_handling("accept");
    close(serv);

    char buf[BUF_SIZE];
    ssize_t str_len;
    for (;;) {
        str_len = recv(sock, buf, sizeof buf - 1, MSG_PEEK | MSG_DONTWAIT);
        if (str_len > 0) break;
        if (str_len == 0) {
            printf("Client closed the connection without sending\n");
            fflush(stdout);
            close(sock);
            return 0;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            error_handling("recv(MSG_PEEK)");
        /* nothing yet: wait up to 100 ms for the socket (other work could go here) */
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(sock, &rd);
        struct timeval tv = {0, 100000};
        if (select(sock + 1, &rd, NULL, NULL, &tv) == -1 && errno != EINTR)
            error_handling("select");
    }

    buf[str_len] = 0;
    printf("Buffering %d bytes: %s\n", (int)str_len, buf);
    fflush(stdout);

    ssize_t n;
    do n = recv(sock, buf, sizeof buf - 1, 0);
    while (n == -1 && errno == EINTR);
    if (n == -1) error_handling("recv");
    buf[n] = 0;
    printf("Read again: %s\n", buf);
    fflush(stdout);

    close(sock);
    return 0;
}
