/* The book's echo_storeserv.c (chapter 11), made correct (FIX): the file is an argument
 * (the book's echomsg.txt by default), opened and checked before anything else; the
 * writer saves every byte until end of file instead of ten read()s, closes the write end
 * it does not use (with it open, read() never returns 0), and ends at end of file, not on
 * a signal; each process closes the pipe ends it does not use; the children read into
 * their buffer's real size (the book reads BUFSIZ); SIGCHLD is reaped in a loop; SIGTERM
 * stops the server, which ends its children, closes its write end and waits for the
 * writer to save what is left. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE 100
static volatile sig_atomic_t stop_requested = 0;

static void read_childproc(int sig)
{
    int saved = errno;
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
    int fds[2];
    pid_t pid;
    struct sigaction act;
    socklen_t adr_sz;
    ssize_t str_len;
    char buf[BUF_SIZE];
    FILE *fp;

    if (argc != 2 && argc != 3) {
        printf("Usage : %s <port> [file]\n", argv[0]);
        exit(1);
    }
    fp = fopen(argc == 3 ? argv[2] : "echomsg.txt", "wb");
    if (fp == NULL) /* FIX: the book never checks */
        error_handling("fopen() error");

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

    /* FIX: the writer is forked before the listening socket exists, so it never holds it */
    pipe(fds);
    pid = fork();
    if (pid == 0) {
        char msgbuf[BUF_SIZE];
        ssize_t len;

        signal(SIGTERM, SIG_IGN); /* FIX: the writer ends at end of file, not on a signal */
        signal(SIGINT, SIG_IGN);
        close(fds[1]); /* FIX: with its own write end open, read() would never return 0 */
        while ((len = read(fds[0], msgbuf, BUF_SIZE)) != 0) { /* FIX: every byte, not ten reads */
            if (len == -1) {
                if (errno == EINTR)
                    continue;
                break;
            }
            fwrite((void *)msgbuf, 1, len, fp);
        }
        fclose(fp); /* writes out what fwrite() still holds */
        return 0;
    }
    fclose(fp);    /* only the writer writes the file */
    close(fds[0]); /* FIX: only the writer reads the pipe */

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
        pid = fork();
        if (pid == -1) {
            close(clnt_sock);
            continue;
        }
        if (pid == 0) {
            signal(SIGTERM, SIG_DFL); /* FIX: a child ends when the parent tells it to */
            signal(SIGINT, SIG_DFL);
            close(serv_sock);
            while ((str_len = read(clnt_sock, buf, BUF_SIZE)) > 0) { /* FIX: BUF_SIZE, not BUFSIZ */
                write(clnt_sock, buf, str_len);
                write(fds[1], buf, str_len);
            }
            close(clnt_sock);
            puts("client disconnected...");
            return 0;
        }
        close(clnt_sock);
    }
    close(serv_sock);
    /* FIX: end the children, close the last write end so that the writer reads end of
     * file, and wait for all of them, the writer included. */
    signal(SIGTERM, SIG_IGN);
    kill(0, SIGTERM);
    close(fds[1]);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    return 0;
}
