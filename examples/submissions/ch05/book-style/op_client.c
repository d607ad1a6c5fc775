/* The book's op_client.c (chapter 5), made correct (FIX): it checks what scanf() read,
 * reads the 4-byte result until it is whole, and stops on end of input. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 1024
#define RLT_SIZE 4
#define OPSZ 4
void error_handling(char *message);

int main(int argc, char *argv[])
{
    int sock;
    char opmsg[BUF_SIZE];
    int result, opnd_cnt, i, got = 0, n;
    struct sockaddr_in serv_adr;

    if (argc != 3) {
        printf("Usage : %s <IP> <port>\n", argv[0]);
        exit(1);
    }
    sock = socket(PF_INET, SOCK_STREAM, 0);
    if (sock == -1)
        error_handling("socket() error");
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
    serv_adr.sin_port = htons(atoi(argv[2]));
    if (connect(sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("connect() error!");

    fputs("Operand count: ", stdout);
    if (scanf("%d", &opnd_cnt) != 1 || opnd_cnt < 1 || opnd_cnt > 100) /* FIX */
        error_handling("invalid operand count");
    opmsg[0] = (char)opnd_cnt;
    for (i = 0; i < opnd_cnt; i++) {
        printf("Operand %d: ", i + 1);
        if (scanf("%d", (int *)&opmsg[i * OPSZ + 1]) != 1) /* FIX */
            error_handling("invalid operand");
    }
    fgetc(stdin);
    fputs("Operator: ", stdout);
    if (scanf(" %c", &opmsg[opnd_cnt * OPSZ + 1]) != 1) /* FIX */
        error_handling("invalid operator");
    write(sock, opmsg, opnd_cnt * OPSZ + 2);
    while (got < RLT_SIZE) { /* FIX: the result may come in pieces too */
        n = read(sock, (char *)&result + got, RLT_SIZE - got);
        if (n <= 0)
            error_handling("read() error: the server closed without a result");
        got += n;
    }
    printf("Operation result: %d \n", result);
    close(sock);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
