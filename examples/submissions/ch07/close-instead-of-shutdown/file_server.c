/* Broken twin: the book's file server with close() where the book has shutdown(). The
 * file arrives whole (end of stream marks its end either way), but close() ends both
 * directions: the client's Thank you hits a closed socket and is never read. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 30
void error_handling(char *message);

int main(int argc, char *argv[])
{
    int serv_sd, clnt_sd;
    FILE *fp;
    char buf[BUF_SIZE];
    int read_cnt;
    struct sockaddr_in serv_adr, clnt_adr;
    socklen_t clnt_adr_sz;

    if (argc != 3) {
        printf("Usage: %s <port> <file>\n", argv[0]);
        exit(1);
    }
    fp = fopen(argv[2], "rb");
    if (fp == NULL) /* FIX: the book never checks, and crashes at the first fread() */
        error_handling("fopen() error");
    signal(SIGPIPE, SIG_IGN); /* FIX */

    serv_sd = socket(PF_INET, SOCK_STREAM, 0);
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    serv_adr.sin_port = htons(atoi(argv[1]));
    if (bind(serv_sd, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("bind() error");
    listen(serv_sd, 5);

    clnt_adr_sz = sizeof(clnt_adr);
    clnt_sd = accept(serv_sd, (struct sockaddr *)&clnt_adr, &clnt_adr_sz);

    while (1) {
        read_cnt = fread((void *)buf, 1, BUF_SIZE, fp);
        if (read_cnt < BUF_SIZE) {
            write(clnt_sd, buf, read_cnt);
            break;
        }
        write(clnt_sd, buf, BUF_SIZE);
    }

    close(clnt_sd); /* the mistake: the book calls shutdown(clnt_sd, SHUT_WR) here */
    read_cnt = read(clnt_sd, buf, BUF_SIZE - 1); /* EBADF: the socket is gone */
    if (read_cnt < 0)
        read_cnt = 0;
    buf[read_cnt] = 0;
    if (read_cnt > 0)
        printf("Message from client: %s \n", buf);

    fclose(fp);
    close(serv_sd);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
