/* oob_recv.c - chapter 13: receive urgent (MSG_OOB) data.
 * The SIGURG handler only writes the signal number to a pipe (self-pipe);
 * the main loop select()s on the socket and the pipe and reads the urgent
 * byte itself with recv(MSG_OOB). Urgent data is ONE byte. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define BUF_SIZE 30
static int sig_pipe[2] = {-1, -1};

static void error_handling(const char *msg) { perror(msg); exit(1); }

static void urg_handler(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    (void)!write(sig_pipe[1], &b, 1);   /* async-signal-safe; pipe is non-blocking */
    errno = saved;
}

/* Try to take the urgent byte out of line. Returns 1 if one was printed. */
static int read_urgent(int sock)
{
    char buf[BUF_SIZE];
    ssize_t n;
    do n = recv(sock, buf, sizeof buf - 1, MSG_OOB | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        buf[n] = 0;
        printf("Urgent message: %s\n", buf);
        fflush(stdout);
        return 1;
    }
    /* EINVAL: no urgent byte pending (already read); EAGAIN: pointer seen, byte not here yet */
    if (n < 0 && errno != EINVAL && errno != EAGAIN && errno != EWOULDBLOCK)
        perror("recv(MSG_OOB)");
    return 0;
}

int main(int argc, char *argv[])
{
    if (argc != 2) { fprintf(stderr, "Usage: %s <port>\n", argv[0]); return 1; }

    if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) == -1) error_handling("pipe2");

    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = urg_handler;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART;
    if (sigaction(SIGURG, &act, NULL) == -1) error_handling("sigaction");

    int serv = socket(PF_INET, SOCK_STREAM, 0);
    if (serv == -1) error_handling("socket");
    int on = 1;
    setsockopt(serv, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = inet_addr("127.0.0.1");
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    if (bind(serv, (struct sockaddr *)&addr, sizeof addr) == -1) error_handling("bind");
    if (listen(serv, 5) == -1) error_handling("listen");

    struct sockaddr_in clnt;
    socklen_t clen = sizeof clnt;
    int sock;
    do sock = accept(serv, (struct sockaddr *)&clnt, &clen);
    while (sock == -1 && errno == EINTR);
    if (sock == -1) error_handling("accept");
    close(serv);

    /* make this process the socket's owner, or no SIGURG is ever sent */
    if (fcntl(sock, F_SETOWN, getpid()) == -1) error_handling("fcntl(F_SETOWN)");

    char buf[BUF_SIZE];
    for (;;) {
        fd_set rd, ex;
        FD_ZERO(&rd); FD_ZERO(&ex);
        FD_SET(sock, &rd); FD_SET(sig_pipe[0], &rd);
        FD_SET(sock, &ex);   /* also catches urgent data whose byte came after the signal */
        int maxfd = sock > sig_pipe[0] ? sock : sig_pipe[0];
        int r = select(maxfd + 1, &rd, NULL, &ex, NULL);
        if (r == -1) {
            if (errno == EINTR) continue;
            error_handling("select");
        }
        if (FD_ISSET(sig_pipe[0], &rd)) {
            unsigned char s[64];
            while (read(sig_pipe[0], s, sizeof s) > 0)
                ;
            read_urgent(sock);
        }
        if (FD_ISSET(sock, &ex))
            read_urgent(sock);
        if (FD_ISSET(sock, &rd)) {
            ssize_t n = recv(sock, buf, sizeof buf - 1, MSG_DONTWAIT);
            if (n == 0) break;                        /* client closed */
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
                perror("recv");                       /* e.g. reset: end, don't loop */
                break;
            }
            buf[n] = 0;
            puts(buf);
            fflush(stdout);
        }
    }
    close(sock);
    return 0;
}
