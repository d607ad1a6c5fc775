/* Broken twin: a server that serves its clients one at a time, without fork(): the
 * next client waits until the previous one leaves. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE 1024
static volatile sig_atomic_t stop_requested = 0;

static void read_childproc(int sig)
{
    int saved = errno; /* FIX */
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) /* FIX: one signal may stand for many children */
        ;
    errno = saved;
}

static void request_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void error_handling(char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    exit(1);
}

int main(int argc, char *argv[])
{
    int serv_sock, clnt_sock;
    struct sockaddr_in serv_adr, clnt_adr;
    pid_t pid;
    struct sigaction act;
    socklen_t adr_sz;
    ssize_t str_len;
    char buf[BUF_SIZE];

    if (argc != 2) {
        printf("Usage : %s <port>\n", argv[0]);
        exit(1);
    }
    memset(&act, 0, sizeof(act));
    act.sa_handler = read_childproc;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &act, 0);
    act.sa_handler = request_stop; /* FIX: stop cleanly */
    act.sa_flags = 0;
    sigaction(SIGTERM, &act, 0);
    sigaction(SIGINT, &act, 0);
    signal(SIGPIPE, SIG_IGN); /* FIX */

    serv_sock = socket(PF_INET, SOCK_STREAM, 0);
    memset(&serv_adr, 0, sizeof(serv_adr));
    serv_adr.sin_family = AF_INET;
    serv_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    serv_adr.sin_port = htons(atoi(argv[1]));
    if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
        error_handling("bind() error");
    if (listen(serv_sock, 128) == -1)
        error_handling("listen() error");

    while (!stop_requested) {
        adr_sz = sizeof(clnt_adr);
        clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_adr, &adr_sz);
        if (clnt_sock == -1) {
            if (errno == EINTR) /* FIX: a signal arrived; not an error */
                continue;
            error_handling("accept() error");
        }
        puts("new client connected...");
        fflush(stdout);
        pid = 0; /* the mistake: no fork(), the "parent" serves the client itself */
        if (pid == 0) {
            while ((str_len = read(clnt_sock, buf, BUF_SIZE)) > 0) /* FIX: > 0 */
                write(clnt_sock, buf, str_len);
            close(clnt_sock);
            puts("client disconnected...");
            continue;
        }
        close(clnt_sock);
    }
    close(serv_sock);
    /* FIX: end the children and reap every one before exiting. */
    signal(SIGTERM, SIG_IGN);
    kill(0, SIGTERM);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    return 0;
}
