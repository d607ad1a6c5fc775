/* The book's op_server.c (chapter 5), made correct (FIX): it stops reading at end of
 * stream instead of spinning, gives each request 3 seconds in all, checks the count and
 * the operator, and closes a bad request's connection without an answer. It serves 5
 * clients and exits, as the book's does. Operands are little-endian: this machine's
 * order, as the book assumes. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 1024
#define OPSZ 4
#define MAX_OPERANDS 100
void error_handling(char *message);

/* FIX: read exactly len bytes by the request's deadline; -1 on end of stream, error or
 * the deadline passed. SO_RCVTIMEO set once would bound each read() alone, and a client
 * sending a byte now and then would hold this one-client-at-a-time server for ever: so
 * before each read() the timeout is set to what is left of the whole request's time. */
static int read_full(int fd, char *buf, int len, const struct timespec *deadline)
{
    int got = 0, n;
    while (got < len) {
        struct timespec now;
        struct timeval left;
        long long us;
        clock_gettime(CLOCK_MONOTONIC, &now);
        us = (deadline->tv_sec - now.tv_sec) * 1000000LL
             + (deadline->tv_nsec - now.tv_nsec) / 1000;
        if (us <= 0)
            return -1; /* never a zero timeout: SO_RCVTIMEO 0 means none at all */
        left.tv_sec = us / 1000000;
        left.tv_usec = us % 1000000;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &left, sizeof(left));
        n = read(fd, buf + got, len - got);
        if (n <= 0)
            return -1;
        got += n;
    }
    return 0;
}

/* FIX: unsigned arithmetic wraps like a two's complement int, without undefined behaviour. */
static int calculate(int opnum, int opnds[], char op, int *result)
{
    unsigned int r = (unsigned int)opnds[0];
    int i;
    switch (op) {
    case '+': for (i = 1; i < opnum; i++) r += (unsigned int)opnds[i]; break;
    case '-': for (i = 1; i < opnum; i++) r -= (unsigned int)opnds[i]; break;
    case '*': for (i = 1; i < opnum; i++) r *= (unsigned int)opnds[i]; break;
    default: return -1; /* FIX: the book falls through and answers opnds[0] */
    }
    *result = (int)r;
    return 0;
}

int main(int argc, char *argv[])
{
    int serv_sock, clnt_sock;
    char opinfo[BUF_SIZE];
    int result, i;
    unsigned char opnd_cnt;
    struct sockaddr_in serv_adr, clnt_adr;
    socklen_t clnt_adr_sz;
    struct timespec deadline;

    if (argc != 2) {
        printf("Usage : %s <port>\n", argv[0]);
        exit(1);
    }
    signal(SIGPIPE, SIG_IGN); /* FIX */
    serv_sock = socket(PF_INET, SOCK_STREAM, 0);
    if (serv_sock == -1)
        error_handling("socket() error");
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    serv_adr.sin_port = htons(atoi(argv[1]));
    if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("bind() error");
    if (listen(serv_sock, 5) == -1)
        error_handling("listen() error");

    clnt_adr_sz = sizeof(clnt_adr);
    for (i = 0; i < 5; i++) {
        clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_adr, &clnt_adr_sz);
        if (clnt_sock == -1)
            error_handling("accept() error");
        clock_gettime(CLOCK_MONOTONIC, &deadline); /* FIX: 3 s for the whole request */
        deadline.tv_sec += 3;

        if (read_full(clnt_sock, (char *)&opnd_cnt, 1, &deadline) == -1
            || opnd_cnt == 0 || opnd_cnt > MAX_OPERANDS /* FIX */
            || read_full(clnt_sock, opinfo, opnd_cnt * OPSZ + 1, &deadline) == -1
            || calculate(opnd_cnt, (int *)opinfo, opinfo[opnd_cnt * OPSZ], &result) == -1) {
            fprintf(stderr, "bad request from client %d; closed it\n", i + 1);
            close(clnt_sock);
            continue;
        }
        write(clnt_sock, (char *)&result, sizeof(result));
        close(clnt_sock);
    }
    close(serv_sock);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
