/* The book's oob_recv.c (chapter 13), made correct (FIX): the SIGURG handler reads the
 * urgent byte with recv(MSG_OOB) and prints it with write(), not printf(), which is not
 * async-signal-safe; errno is saved; the main loop ends on an error other than EINTR (the
 * book continues on every error, and loops for ever on a reset connection); buf keeps
 * room for its terminating 0; SA_RESTART, so that a SIGURG that lands while puts() writes
 * the last in-band bytes to the terminal does not make that write() fail with EINTR (stdio
 * then drops the line: "123" went missing once in a loaded CI run). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 30
void error_handling(char *message);
void urg_handler(int signo);

int acpt_sock;
int recv_sock;

int main(int argc, char *argv[])
{
    struct sockaddr_in recv_adr, serv_adr;
    int str_len;
    socklen_t serv_adr_sz;
    struct sigaction act;
    char buf[BUF_SIZE];

    if (argc != 2) {
        printf("Usage : %s <port>\n", argv[0]);
        exit(1);
    }
    act.sa_handler = urg_handler;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART; /* FIX: the book's 0 lets the signal cut a write() short */

    acpt_sock = socket(PF_INET, SOCK_STREAM, 0);
    memset(&recv_adr, 0, sizeof(recv_adr));
    recv_adr.sin_family = AF_INET;
    recv_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    recv_adr.sin_port = htons(atoi(argv[1]));

    if (bind(acpt_sock, (struct sockaddr *)&recv_adr, sizeof(recv_adr)) == -1)
        error_handling("bind() error");
    listen(acpt_sock, 5);

    serv_adr_sz = sizeof(serv_adr);
    recv_sock = accept(acpt_sock, (struct sockaddr *)&serv_adr, &serv_adr_sz);

    fcntl(recv_sock, F_SETOWN, getpid()); /* this process is told of urgent data */
    sigaction(SIGURG, &act, 0);

    while ((str_len = recv(recv_sock, buf, sizeof(buf) - 1, 0)) != 0) { /* FIX: room for the 0 */
        if (str_len == -1) {
            if (errno == EINTR) /* SIGURG interrupted the wait */
                continue;
            break; /* FIX: the book continues on every error */
        }
        buf[str_len] = 0;
        puts(buf);
        fflush(stdout);
    }
    close(recv_sock);
    close(acpt_sock);
    return 0;
}

void urg_handler(int signo)
{
    static const char label[] = "Urgent message: ";
    char buf[BUF_SIZE];
    char line[sizeof(label) + BUF_SIZE + 2];
    int saved = errno; /* FIX */
    int str_len;

    (void)signo;
    str_len = recv(recv_sock, buf, sizeof(buf) - 1, MSG_OOB);
    if (str_len > 0) {
        /* FIX: write() and memcpy() are async-signal-safe; the book's printf() is not */
        memcpy(line, label, sizeof(label) - 1);
        memcpy(line + sizeof(label) - 1, buf, str_len);
        memcpy(line + sizeof(label) - 1 + str_len, " \n", 2);
        write(1, line, sizeof(label) - 1 + str_len + 2);
    }
    errno = saved;
}

void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}
