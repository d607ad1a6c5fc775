/* The bench's C twin of ch17's level-triggered epoll echo server: one read per
 * wakeup, an outbox, EPOLLOUT watched only while something waits to be written. */
#include "common.h"
#include <sys/epoll.h>
#include <sys/resource.h>

struct client {
    struct outbox outbox;
    int watching_out, watching_in;
};

static struct client *clients;

static unsigned interest(struct client *c) {
    return EPOLLRDHUP | (c->watching_in ? EPOLLIN : 0) | (c->watching_out ? EPOLLOUT : 0);
}

int main(int argc, char **argv) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    clients = calloc(limit.rlim_cur, sizeof *clients);
    if (!clients) die("calloc");
    int stop = install_stop_pipe();
    int listener = listen_on(argc, argv);
    set_nonblocking(listener);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    ev.data.fd = stop;
    epoll_ctl(ep, EPOLL_CTL_ADD, stop, &ev);
    struct epoll_event events[256];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            unsigned flags = events[i].events;
            if (fd == stop) return 0;
            if (fd == listener) {
                struct sockaddr_in peer;
                socklen_t len = sizeof peer;
                int client = accept(listener, (struct sockaddr *)&peer, &len);
                if (client < 0) continue;
                set_nonblocking(client);
                struct client *c = &clients[client];
                c->watching_in = 1;
                c->watching_out = 0;
                c->outbox.len = 0;
                struct epoll_event add = {.events = interest(c), .data.fd = client};
                epoll_ctl(ep, EPOLL_CTL_ADD, client, &add);
                printf("connected client: %d\n", client);
                continue;
            }
            struct client *c = &clients[fd];
            int gone = 0;
            if ((flags & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) && c->outbox.len < OUTBOX_LIMIT) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                    gone = 1;
                else if (r > 0)
                    outbox_push(&c->outbox, buf, (size_t)r);
            }
            if (!gone && outbox_flush(fd, &c->outbox) < 0) gone = 1;
            if (gone) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                printf("closed client: %d\n", fd);
                continue;
            }
            int want_out = c->outbox.len > 0, want_in = c->outbox.len < OUTBOX_LIMIT;
            if (want_out != c->watching_out || want_in != c->watching_in) {
                c->watching_out = want_out;
                c->watching_in = want_in;
                struct epoll_event mod = {.events = interest(c), .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &mod);
            }
        }
    }
}
