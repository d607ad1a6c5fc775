/* The book's echo_client.c of chapter 15, made correct (FIX): it stops at the end of input
 * and when the server closes (fgets() returns NULL in both; the book's loop ignores it
 * and goes round again); the writer gets its own fd with dup(), as in the server. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 1024
void error_handling(char *message);

int main(int argc, char *argv[])
{
    int sock;
    char message[BUF_SIZE];
    struct sockaddr_in serv_adr;
    FILE *readfp;
    FILE *writefp;

    if (argc != 3) {
        printf("Usage : %s <IP> <port>\n", argv[0]);
        exit(1);
    }
    sock = socket(PF_INET, SOCK_STREAM, 0);
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
    serv_adr.sin_port = htons(atoi(argv[2]));

    if (connect(sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("connect() error!");
    else
        puts("Connected...........");

    readfp = fdopen(sock, "r");
    writefp = fdopen(dup(sock), "w"); /* FIX: its own fd */
    while (1) {
        fputs("Input message(Q to quit): ", stdout);
        fflush(stdout);
        if (fgets(message, BUF_SIZE, stdin) == NULL) /* FIX: end of input */
            break;
        if (!strcmp(message, "q\n") || !strcmp(message, "Q\n"))
            break;

        fputs(message, writefp);
        fflush(writefp);
        if (fgets(message, BUF_SIZE, readfp) == NULL) { /* FIX: the server closed */
            puts("The server closed the connection");
            break;
        }
        printf("Message from server: %s", message);
    }
    fclose(writefp);
    fclose(readfp);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
