/* A model answer for chapter 12 in C: a chat client with select() over standard input
 * and the socket, so messages print while you type. Each line goes out as
 * "[NAME] line"; q, Q or end of input quits. Usage: chat_clnt <IP> <port> <name> */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 4096

int main(int argc, char *argv[])
{
    struct sockaddr_in adr;
    char buf[BUF_SIZE], typed[BUF_SIZE], msg[BUF_SIZE + 128];
    size_t typed_len = 0;
    int sock;

    if (argc != 4) {
        printf("Usage : %s <IP> <port> <name>\n", argv[0]);
        exit(1);
    }
    sock = socket(PF_INET, SOCK_STREAM, 0);
    memset(&adr, 0, sizeof(adr));
    adr.sin_family = AF_INET;
    adr.sin_addr.s_addr = inet_addr(argv[1]);
    adr.sin_port = htons(atoi(argv[2]));
    if (connect(sock, (struct sockaddr *)&adr, sizeof(adr)) == -1) {
        perror("connect");
        exit(1);
    }
    for (;;) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(0, &rd);
        FD_SET(sock, &rd);
        if (select(sock + 1, &rd, NULL, NULL, NULL) == -1)
            continue;
        if (FD_ISSET(sock, &rd)) {
            ssize_t n = read(sock, buf, BUF_SIZE);
            if (n <= 0) {
                fputs("the chat server closed the connection\n", stderr);
                exit(1);
            }
            fwrite(buf, 1, n, stdout);
            fflush(stdout);
        }
        if (FD_ISSET(0, &rd)) {
            /* read(0), not fgets(): select() cannot see what stdio has buffered. */
            ssize_t n = read(0, typed + typed_len, sizeof(typed) - 1 - typed_len);
            if (n <= 0)
                break;
            typed_len += n;
            char *nl;
            while ((nl = memchr(typed, '\n', typed_len)) != NULL) {
                size_t len = nl - typed;
                if (len == 1 && (typed[0] == 'q' || typed[0] == 'Q'))
                    goto done;
                int m = snprintf(msg, sizeof(msg), "[%s] %.*s\n", argv[3], (int)len, typed);
                write(sock, msg, m);
                memmove(typed, nl + 1, typed_len - len - 1);
                typed_len -= len + 1;
            }
            if (typed_len == sizeof(typed) - 1)
                typed_len = 0; /* an over-long line is dropped */
        }
    }
done:
    close(sock);
    return 0;
}
