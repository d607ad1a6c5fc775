/* A model answer for chapter 17 in C: the book's echo_epollserv.c, done right.
 * Level-triggered epoll; every client socket non-blocking; what a client cannot take yet
 * waits in its own outbox (EPOLLOUT is watched only while it is not empty), and the
 * server stops reading a client whose outbox holds 256 KiB. The open-file limit is
 * raised to the hard limit. SIGINT/SIGTERM arrive through a signalfd, so the loop can
 * never miss them. Out of fds (EMFILE), accepting pauses instead of spinning.
 * Usage: echo_epollserv <port> */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 4096
#define OUTBOX_LIMIT (256 * 1024)
#define EPOLL_SIZE 256

struct client {
    char *out;
    size_t len, cap;
    int in, outw; /* what the interest set holds now */
    int eof;      /* the client has half-closed: echo what is queued, then close */
};

static struct client *clients[1 << 16];
static int epfd;
/* Out of fds: the listening socket is not watched until a client leaves (or 250 ms). */
static int serv, accept_paused;

static void watch_listener(int on)
{
    struct epoll_event ev = {0};
    ev.events = on ? EPOLLIN : 0;
    ev.data.fd = serv;
    epoll_ctl(epfd, EPOLL_CTL_MOD, serv, &ev);
    accept_paused = !on;
}

static void set_interest(int fd, struct client *c, int op)
{
    struct epoll_event ev = {0};
    /* EPOLLRDHUP only while reading: after end of stream it would be reported forever. */
    ev.events = (c->in ? EPOLLIN | EPOLLRDHUP : 0) | (c->outw ? EPOLLOUT : 0);
    ev.data.fd = fd;
    epoll_ctl(epfd, op, fd, &ev);
}

static void drop(int fd)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(clients[fd]->out);
    free(clients[fd]);
    clients[fd] = NULL;
    if (accept_paused) /* an fd is free: accept again */
        watch_listener(1);
}

/* Writes what the socket takes now. -1: the client is gone. */
static int flush(int fd, struct client *c)
{
    while (c->len > 0) {
        ssize_t n = write(fd, c->out, c->len);
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        memmove(c->out, c->out + n, c->len - n);
        c->len -= n;
    }
    return 0;
}

int main(int argc, char *argv[])
{
    struct sockaddr_in adr;
    struct rlimit rl;
    struct epoll_event ev, events[EPOLL_SIZE];
    sigset_t stop;
    int sfd, i, n, out_of_fds = 0;
    char buf[BUF_SIZE];

    if (argc != 2) {
        printf("Usage : %s <port>\n", argv[0]);
        exit(1);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    sfd = signalfd(-1, &stop, SFD_CLOEXEC);

    serv = socket(PF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    memset(&adr, 0, sizeof(adr));
    adr.sin_family = AF_INET;
    adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    adr.sin_port = htons(atoi(argv[1]));
    if (bind(serv, (struct sockaddr *)&adr, sizeof(adr)) == -1 || listen(serv, 128) == -1) {
        perror("bind/listen");
        exit(1);
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.fd = serv;
    epoll_ctl(epfd, EPOLL_CTL_ADD, serv, &ev);
    ev.data.fd = sfd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);

    for (;;) {
        n = epoll_wait(epfd, events, EPOLL_SIZE, accept_paused ? 250 : -1);
        if (n == 0 && accept_paused) { /* 250 ms passed: try again (ENFILE) */
            watch_listener(1);
            continue;
        }
        if (n == -1) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            exit(1);
        }
        for (i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            struct client *c;
            if (fd == sfd)
                goto stop;
            if (fd == serv) {
                int cl = accept4(serv, NULL, NULL, SOCK_NONBLOCK);
                if (cl == -1 && (errno == EMFILE || errno == ENFILE)) {
                    /* FIX: no fd free. The connection waits in the listen queue, and
                     * level-triggered epoll reports the listening socket again at once:
                     * going straight back would spin at 100% CPU. Stop watching it until
                     * a client leaves (drop()) or 250 ms pass. */
                    if (!out_of_fds)
                        fprintf(stderr, "accept: %s: not accepting until a client leaves\n",
                                strerror(errno));
                    out_of_fds = 1;
                    watch_listener(0);
                    continue;
                }
                if (cl == -1 || cl >= (int)(sizeof(clients) / sizeof(clients[0]))) {
                    if (cl >= 0)
                        close(cl);
                    continue;
                }
                out_of_fds = 0;
                clients[cl] = calloc(1, sizeof(struct client));
                clients[cl]->in = 1;
                set_interest(cl, clients[cl], EPOLL_CTL_ADD);
                continue;
            }
            c = clients[fd];
            if (!c)
                continue;
            if (c->in && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))) {
                ssize_t got = read(fd, buf, BUF_SIZE);
                if (got < 0 && errno != EAGAIN && errno != EINTR) {
                    drop(fd);
                    continue;
                }
                /* FIX: end of stream is not the end of the echo: what is queued still
                 * goes out before the close (the book closes at once and loses it). */
                if (got == 0)
                    c->eof = 1;
                if (got > 0) {
                    if (c->len + got > c->cap) {
                        c->cap = (c->len + got) * 2;
                        c->out = realloc(c->out, c->cap);
                    }
                    memcpy(c->out + c->len, buf, got);
                    c->len += got;
                }
            }
            if (flush(fd, c) == -1 || (c->eof && c->len == 0)) {
                drop(fd);
                continue;
            }
            {
                int want_out = c->len > 0, want_in = !c->eof && c->len < OUTBOX_LIMIT;
                if (want_out != c->outw || want_in != c->in) {
                    c->outw = want_out;
                    c->in = want_in;
                    set_interest(fd, c, EPOLL_CTL_MOD);
                }
            }
        }
    }
stop:
    for (i = 0; i < (int)(sizeof(clients) / sizeof(clients[0])); i++)
        if (clients[i])
            drop(i);
    close(serv);
    return 0;
}
