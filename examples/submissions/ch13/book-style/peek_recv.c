/* The book's peek_recv.c (chapter 13), made correct (FIX): the peek loop ends when the
 * client closes without sending (recv() returns 0, which the book's loop ignores, spinning
 * for ever) and on errors other than EAGAIN; between tries it waits a little instead of
 * spinning at full CPU (a real program would do its other work there); buf keeps room for
 * its terminating 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 30
void error_handling(char *message);

int main(int argc, char *argv[])
{
    int acpt_sock, recv_sock;
    struct sockaddr_in acpt_adr, recv_adr;
    int str_len, waited = 0;
    socklen_t recv_adr_sz;
    char buf[BUF_SIZE];

    if (argc != 2) {
        printf("Usage : %s <port>\n", argv[0]);
        exit(1);
    }
    acpt_sock = socket(PF_INET, SOCK_STREAM, 0);
    memset(&acpt_adr, 0, sizeof(acpt_adr));
    acpt_adr.sin_family = AF_INET;
    acpt_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    acpt_adr.sin_port = htons(atoi(argv[1]));

    if (bind(acpt_sock, (struct sockaddr *)&acpt_adr, sizeof(acpt_adr)) == -1)
        error_handling("bind() error");
    listen(acpt_sock, 5);

    recv_adr_sz = sizeof(recv_adr);
    recv_sock = accept(acpt_sock, (struct sockaddr *)&recv_adr, &recv_adr_sz);

    while (1) {
        str_len = recv(recv_sock, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);
        if (str_len > 0)
            break;
        if (str_len == 0) { /* FIX: end of stream; the book loops for ever here */
            puts("The client closed the connection without sending anything");
            close(recv_sock);
            close(acpt_sock);
            return 0;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) /* FIX */
            error_handling("recv() error");
        if (!waited) {
            puts("Nothing to read yet: the program can do other work meanwhile");
            fflush(stdout);
            waited = 1;
        }
        usleep(10000); /* FIX: the book tries again at once, at full CPU */
    }

    buf[str_len] = 0;
    printf("Buffering %d bytes: %s \n", str_len, buf);
    fflush(stdout);

    str_len = recv(recv_sock, buf, sizeof(buf) - 1, 0);
    if (str_len < 0) /* FIX */
        str_len = 0;
    buf[str_len] = 0;
    printf("Read again: %s \n", buf);
    close(acpt_sock);
    close(recv_sock);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
