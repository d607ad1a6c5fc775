/* writev_send.c - chapter 13: send "size N\n", N bytes and "end\n" with writev()
 * on a non-blocking socket, continuing from wherever each writev() stopped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

static void error_handling(const char *msg) { perror(msg); exit(1); }

int main(int argc, char *argv[])
{
    if (argc != 4) { fprintf(stderr, "Usage: %s <IP> <port> <size>\n", argv[0]); return 1; }
    char *end;
    errno = 0;
    unsigned long long size = strtoull(argv[3], &end, 10);
    if (errno || *end || argv[3][0] == '-') { fprintf(stderr, "bad size: %s\n", argv[3]); return 1; }

    signal(SIGPIPE, SIG_IGN);   /* a closed peer gives EPIPE, not death */

    int sock = socket(PF_INET, SOCK_STREAM, 0);
    if (sock == -1) error_handling("socket");
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "bad address: %s\n", argv[1]); return 1; }
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) == -1) error_handling("connect");

    int fl = fcntl(sock, F_GETFL);
    if (fl == -1 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) == -1) error_handling("fcntl(O_NONBLOCK)");

    char header[64];
    int hlen = snprintf(header, sizeof header, "size %llu\n", size);
    char *body = malloc(size ? size : 1);
    if (!body) error_handling("malloc");
    memset(body, 'x', size);
    char trailer[] = "end\n";

    struct iovec iov[3] = {
        { header, (size_t)hlen },
        { body, (size_t)size },
        { trailer, sizeof trailer - 1 },
    };
    struct iovec *cur = iov;
    int cnt = 3;

    while (cnt > 0) {
        ssize_t n = writev(sock, cur, cnt);
        if (n == -1) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = { sock, POLLOUT, 0 };
                if (poll(&p, 1, -1) == -1 && errno != EINTR) error_handling("poll");
                continue;
            }
            error_handling("writev");
        }
        /* skip what was written: whole buffers, then part of the next */
        size_t left = (size_t)n;
        while (cnt > 0 && left >= cur->iov_len) {
            left -= cur->iov_len;
            cur++; cnt--;
        }
        if (cnt > 0) {
            cur->iov_base = (char *)cur->iov_base + left;
            cur->iov_len -= left;
        }
        /* drop now-empty buffers (e.g. size 0) */
        while (cnt > 0 && cur->iov_len == 0) { cur++; cnt--; }
    }

    free(body);
    if (close(sock) == -1) error_handling("close");
    return 0;
}
