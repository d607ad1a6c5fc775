/* Broken twin: the book's uecho_con_client.c: read()'s -1 (ECONNREFUSED when no server
 * is bound) is used as a length, and the old buffer is printed as the reply. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BUF_SIZE 65507
void error_handling(char *message);

int main(int argc, char *argv[])
{
    int sock, str_len, tries;
    static char message[BUF_SIZE + 1];
    struct sockaddr_in serv_adr;
    struct timeval one_second = {1, 0};

    if (argc != 3) {
        printf("Usage : %s <IP> <port>\n", argv[0]);
        exit(1);
    }
    sock = socket(PF_INET, SOCK_DGRAM, 0);
    if (sock == -1)
        error_handling("socket() error");
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &one_second, sizeof(one_second)); /* FIX */

    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
    serv_adr.sin_port = htons(atoi(argv[2]));
    connect(sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr));

    while (1) {
        fputs("Insert message(q to quit): ", stdout);
        if (fgets(message, BUF_SIZE, stdin) == NULL) /* FIX */
            break;
        if (!strcmp(message, "q\n") || !strcmp(message, "Q\n"))
            break;
        for (tries = 0; tries < 3; tries++) {
            write(sock, message, strlen(message));
            str_len = read(sock, message, BUF_SIZE);
            if (str_len >= 0 || errno != EAGAIN)
                break;
        }
        if (str_len < 0) /* the mistake: the book goes on as if it were a length */
            str_len = strlen(message);
        message[str_len] = 0;
        printf("Message from server: %s", message);
    }
    close(sock);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
