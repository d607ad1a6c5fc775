/* The book's sep_serv2.c (chapter 16), made correct (FIX): it prints the client's reply
 * only when fgets() got one (the book prints its buffer whatever came), waits at most
 * 10 s for it, and ignores SIGPIPE. The half-close is the book's: the writer's stream gets
 * its own fd (dup), shutdown(SHUT_WR) sends end of stream, fclose() closes that copy,
 * and the reader's fd still receives. It serves one client and exits, as the book's. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BUF_SIZE 1024

int main(int argc, char *argv[])
{
    int serv_sock, clnt_sock;
    FILE *readfp;
    FILE *writefp;
    struct sockaddr_in serv_adr, clnt_adr;
    socklen_t clnt_adr_sz;
    struct timeval deadline = {10, 0};
    char buf[BUF_SIZE] = {0};

    if (argc != 2) {
        printf("Usage : %s <port>\n", argv[0]);
        exit(1);
    }
    signal(SIGPIPE, SIG_IGN); /* FIX */

    serv_sock = socket(PF_INET, SOCK_STREAM, 0);
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    serv_adr.sin_port = htons(atoi(argv[1]));

    if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1) {
        fputs("bind() error\n", stderr);
        exit(1);
    }
    listen(serv_sock, 5);
    clnt_adr_sz = sizeof(clnt_adr);
    clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_adr, &clnt_adr_sz);
    /* FIX: a client that never replies does not hold the server for ever */
    setsockopt(clnt_sock, SOL_SOCKET, SO_RCVTIMEO, &deadline, sizeof(deadline));

    readfp = fdopen(clnt_sock, "r");
    writefp = fdopen(dup(clnt_sock), "w");

    fputs("FROM SERVER: Hi~ client? \n", writefp);
    fputs("I love all of the world \n", writefp);
    fputs("You are awesome! \n", writefp);
    fflush(writefp);

    shutdown(fileno(writefp), SHUT_WR);
    fclose(writefp);

    if (fgets(buf, sizeof(buf), readfp) != NULL) /* FIX: print only what came */
        fputs(buf, stdout);
    fflush(stdout);
    fclose(readfp);
    close(serv_sock);
    return 0;
}
