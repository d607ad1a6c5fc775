/* Broken twin: the book's uecho_client.c: recvfrom() with no timeout. One lost datagram,
 * or no server at all, and it waits forever. */
#include <arpa/inet.h>
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
    int sock, tries, str_len = -1;
    static char message[BUF_SIZE + 1];
    socklen_t adr_sz;
    struct sockaddr_in serv_adr, from_adr;
    struct timeval one_second = {1, 0};

    if (argc != 3) {
        printf("Usage : %s <IP> <port>\n", argv[0]);
        exit(1);
    }
    sock = socket(PF_INET, SOCK_DGRAM, 0);
    if (sock == -1)
        error_handling("socket() error");
    (void)one_second; /* the mistake: no SO_RCVTIMEO, so recvfrom() blocks forever */

    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
    serv_adr.sin_port = htons(atoi(argv[2]));

    while (1) {
        fputs("Insert message(q to quit): ", stdout);
        if (fgets(message, BUF_SIZE, stdin) == NULL) /* FIX */
            break;
        if (!strcmp(message, "q\n") || !strcmp(message, "Q\n"))
            break;

        for (tries = 0; tries < 3; tries++) {
            sendto(sock, message, strlen(message), 0, (struct sockaddr *)&serv_adr, sizeof(serv_adr));
            do {
                adr_sz = sizeof(from_adr);
                str_len = recvfrom(sock, message, BUF_SIZE, 0, (struct sockaddr *)&from_adr, &adr_sz);
            } while (str_len >= 0 && (from_adr.sin_port != serv_adr.sin_port
                                      || from_adr.sin_addr.s_addr != serv_adr.sin_addr.s_addr));
            if (str_len >= 0)
                break;
        }
        if (str_len < 0) {
            fprintf(stderr, "no reply from %s:%s after 3 tries\n", argv[1], argv[2]);
            exit(1);
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
