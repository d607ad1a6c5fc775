/* The book's file_client.c (chapter 7), made correct (FIX): it checks fopen() and takes
 * the output file as an optional argument (default receive.dat, as the book). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 30
void error_handling(char *message);

int main(int argc, char *argv[])
{
    int sd;
    FILE *fp;
    char buf[BUF_SIZE];
    int read_cnt;
    struct sockaddr_in serv_adr;

    if (argc != 3 && argc != 4) {
        printf("Usage: %s <IP> <port> [out]\n", argv[0]);
        exit(1);
    }
    fp = fopen(argc == 4 ? argv[3] : "receive.dat", "wb");
    if (fp == NULL) /* FIX */
        error_handling("fopen() error");
    sd = socket(PF_INET, SOCK_STREAM, 0);

    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
    serv_adr.sin_port = htons(atoi(argv[2]));
    if (connect(sd, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("connect() error");

    while ((read_cnt = read(sd, buf, BUF_SIZE)) > 0) /* FIX: > 0, not != 0 */
        fwrite((void *)buf, 1, read_cnt, fp);

    puts("Received file data");
    write(sd, "Thank you", 10);
    fclose(fp);
    close(sd);
    return 0;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
