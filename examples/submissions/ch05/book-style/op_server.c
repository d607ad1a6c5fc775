/* The book's op_server.c (chapter 5), made correct (FIX): it stops reading at end of
 * stream instead of spinning, gives a stalled client 3 seconds, checks the count and
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
#include <unistd.h>

#define BUF_SIZE 1024
#define OPSZ 4
#define MAX_OPERANDS 100
void error_handling(char *message);

/* FIX: read exactly len bytes; -1 on end of stream, error or timeout. */
static int read_full(int fd, char *buf, int len)
{
    int got = 0, n;
    while (got < len) {
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
    struct timeval deadline = {3, 0};

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
        setsockopt(clnt_sock, SOL_SOCKET, SO_RCVTIMEO, &deadline, sizeof(deadline)); /* FIX */

        if (read_full(clnt_sock, (char *)&opnd_cnt, 1) == -1
            || opnd_cnt == 0 || opnd_cnt > MAX_OPERANDS /* FIX */
            || read_full(clnt_sock, opinfo, opnd_cnt * OPSZ + 1) == -1
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
