/* Broken twin: the book's echo_mpclient.c write routine as written: fgets()'s NULL at end
 * of input is not checked, so the writer sends the last line again, forever. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE 1024


static void write_routine(int sock, char *buf)
{
    while (1) {
        fgets(buf, BUF_SIZE, stdin); /* the mistake: NULL at end of input is not checked */
        if (!strcmp(buf, "q\n") || !strcmp(buf, "Q\n")) {
            shutdown(sock, SHUT_WR);
            return;
        }
        write(sock, buf, strlen(buf));
    }
}

int main(int argc, char *argv[])
{
    int sock;
    pid_t pid;
    char buf[BUF_SIZE];
    struct sockaddr_in serv_adr;

    if (argc != 3) {
        printf("Usage : %s <IP> <port>\n", argv[0]);
        exit(1);
    }
    sock = socket(PF_INET, SOCK_STREAM, 0);
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
    serv_adr.sin_port = htons(atoi(argv[2]));
    if (connect(sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1) {
        perror("connect");
        exit(1);
    }
    /* Lines from the reader are printed with the prefix by a small line buffer. */
    pid = fork();
    if (pid == 0) {
        write_routine(sock, buf);
        return 0;
    }
    {
        /* The reader: print each complete line as "Message from server: ...". */
        char line[BUF_SIZE * 4];
        size_t have = 0;
        int n;
        while ((n = read(sock, buf, BUF_SIZE)) > 0) {
            for (int i = 0; i < n; i++) {
                if (buf[i] == '\n' || have == sizeof(line) - 1) {
                    line[have] = 0;
                    printf("Message from server: %s\n", line);
                    have = 0;
                } else {
                    line[have++] = buf[i];
                }
            }
            fflush(stdout);
        }
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0); /* FIX: reap the writer */
    close(sock);
    return 0;
}
