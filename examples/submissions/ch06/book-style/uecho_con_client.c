/* The book's uecho_con_client.c (chapter 6), made correct (FIX): read()'s -1 is an
 * error, not a length; ECONNREFUSED means nothing is bound at the server's port. */
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
        if (str_len < 0) { /* FIX: the book stores message[-1] = 0 and prints garbage */
            if (errno == ECONNREFUSED)
                error_handling("connection refused: nothing is bound at the server's port");
            error_handling("no reply after 3 tries");
        }
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
