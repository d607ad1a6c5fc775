/* The bench's C twin of ch12's select() echo server: the sets rebuilt every round,
 * one read per readable client, unwritten echo kept in an outbox. */
#include "common.h"
#include <sys/select.h>

static struct outbox outboxes[FD_SETSIZE];
static char open_fd[FD_SETSIZE];

static void drop(int fd) {
    close(fd);
    open_fd[fd] = 0;
    outboxes[fd].len = 0;
    printf("closed client: %d\n", fd);
}

int main(int argc, char **argv) {
    int stop = install_stop_pipe();
    int listener = listen_on(argc, argv);
    set_nonblocking(listener);
    char buf[4096];
    for (;;) {
        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_SET(stop, &rd);
        FD_SET(listener, &rd);
        int max = stop > listener ? stop : listener;
        for (int fd = 0; fd < FD_SETSIZE; fd++) {
            if (!open_fd[fd]) continue;
            if (outboxes[fd].len < OUTBOX_LIMIT) FD_SET(fd, &rd);
            if (outboxes[fd].len > 0) FD_SET(fd, &wr);
            if (fd > max) max = fd;
        }
        if (select(max + 1, &rd, &wr, NULL, NULL) < 0) {
            if (errno == EINTR) continue;
            die("select");
        }
        if (FD_ISSET(stop, &rd)) break;
        if (FD_ISSET(listener, &rd)) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            int client = accept(listener, (struct sockaddr *)&peer, &len);
            if (client >= FD_SETSIZE) {
                fprintf(stderr, "error: fd %d is beyond FD_SETSIZE\n", client);
                close(client);
            } else if (client >= 0) {
                set_nonblocking(client);
                printf("connected client: %d\n", client);
                open_fd[client] = 1;
            } else if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR &&
                       errno != EMFILE && errno != ENFILE) {
                die("accept");
            }
        }
        for (int fd = 0; fd <= max; fd++) {
            if (!open_fd[fd] || !FD_ISSET(fd, &rd) || fd == listener) continue;
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                /* As ch12 does: say why a client was dropped. */
                fprintf(stderr, "client (fd %d): read: %s; disconnected\n", fd, strerror(errno));
                drop(fd);
                continue;
            }
            if (n == 0) {
                drop(fd);
                continue;
            }
            if (n > 0) outbox_push(&outboxes[fd], buf, (size_t)n);
        }
        for (int fd = 0; fd <= max; fd++) {
            if (open_fd[fd] && outboxes[fd].len > 0 && outbox_flush(fd, &outboxes[fd]) < 0)
                drop(fd);
        }
    }
    return 0;
}
