/* The book's echo_stdserv.c (chapter 15), made correct (FIX): it stops when fgets()
 * returns NULL (the book's while (!feof(readfp)) runs once more after the last line and
 * echoes it twice); the writer gets its own fd with dup(), so that the two fclose()s close
 * two fds, not one fd twice; SIGPIPE is ignored. It serves five clients and exits, as the
 * book's does. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 1024
void error_handling(char *message);

int main(int argc, char *argv[])
{
    int serv_sock, clnt_sock;
    char message[BUF_SIZE];
    int i;
    struct sockaddr_in serv_adr, clnt_adr;
    socklen_t clnt_adr_sz;
    FILE *readfp;
    FILE *writefp;

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

    if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("bind() error");
    if (listen(serv_sock, 5) == -1)
        error_handling("listen() error");
    clnt_adr_sz = sizeof(clnt_adr);

    for (i = 0; i < 5; i++) {
        clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_adr, &clnt_adr_sz);
        if (clnt_sock == -1)
            error_handling("accept() error");
        else
            printf("Connected client %d \n", i + 1);

        readfp = fdopen(clnt_sock, "r");
        writefp = fdopen(dup(clnt_sock), "w"); /* FIX: its own fd, closed by its own fclose() */
        while (fgets(message, BUF_SIZE, readfp) != NULL) { /* FIX: the book tests feof() first */
            fputs(message, writefp);
            fflush(writefp);
        }
        fclose(writefp);
        fclose(readfp);
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
