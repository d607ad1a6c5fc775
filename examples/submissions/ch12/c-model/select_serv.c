/* A model answer for chapter 12 in C: the book's echo_selectserv.c done right, and the
 * chat room, in one program. select() over the listening socket, every client and a
 * self-pipe for SIGINT/SIGTERM; every client socket non-blocking; output a client cannot
 * take yet waits in its outbox. Echo: a client whose outbox holds 256 KiB is not read
 * from until it reads. Chat: lines are framed by newline (at most 4096 bytes), each goes
 * to every member, and a member whose outbox passes 256 KiB is disconnected. A connection
 * whose fd select() cannot watch (FD_SETSIZE and up) is refused; out of fds (EMFILE),
 * accepting pauses instead of spinning. Usage: select_serv echo|chat <port> */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 4096
#define MAX_LINE 4096
#define OUTBOX_LIMIT (256 * 1024)

struct client {
    int used;
    char *out;
    size_t len, cap;
    char line[MAX_LINE + 1];
    size_t line_len;
    int eof; /* the client has half-closed: echo what is queued, then close */
};

static struct client clients[FD_SETSIZE];
static int stop_pipe[2];
static int chat;
/* Out of fds: accepting is paused until a client leaves or this moment has passed. */
static int accept_paused;
static struct timespec paused_until;

static void on_stop(int sig)
{
    int saved = errno;
    (void)sig;
    write(stop_pipe[1], "!", 1);
    errno = saved;
}

static void push(struct client *c, const char *p, size_t n)
{
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->out = realloc(c->out, c->cap);
    }
    memcpy(c->out + c->len, p, n);
    c->len += n;
}

static void drop(int fd, const char *why)
{
    if (why)
        fprintf(stderr, "client %d: %s; disconnected\n", fd, why);
    close(fd);
    accept_paused = 0; /* an fd is free: accepting may be tried again */
    free(clients[fd].out);
    memset(&clients[fd], 0, sizeof(clients[fd]));
    printf("closed client: %d\n", fd);
    fflush(stdout);
}

/* Writes what the socket takes now. -1: the client is gone. */
static int flush(int fd)
{
    struct client *c = &clients[fd];
    while (c->len > 0) {
        ssize_t n = write(fd, c->out, c->len);
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        memmove(c->out, c->out + n, c->len - n);
        c->len -= n;
    }
    return 0;
}

static void broadcast(const char *line, size_t n)
{
    for (int fd = 0; fd < FD_SETSIZE; fd++) {
        if (!clients[fd].used)
            continue;
        if (clients[fd].len + n > OUTBOX_LIMIT)
            drop(fd, "not reading: its outbox is full");
        else
            push(&clients[fd], line, n);
    }
}

/* Milliseconds from now until t (0 when it has passed). */
static long ms_until(const struct timespec *t)
{
    struct timespec now;
    long ms;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? ms : 0;
}

int main(int argc, char *argv[])
{
    struct sockaddr_in adr;
    struct sigaction act;
    int serv, fd;
    int out_of_fds = 0, refusing = 0; /* an episode is logged once */
    char buf[BUF_SIZE];

    if (argc != 3 || (strcmp(argv[1], "echo") && strcmp(argv[1], "chat"))) {
        printf("Usage : %s echo|chat <port>\n", argv[0]);
        exit(1);
    }
    chat = !strcmp(argv[1], "chat");
    signal(SIGPIPE, SIG_IGN);
    pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK);
    memset(&act, 0, sizeof(act));
    act.sa_handler = on_stop;
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);

    serv = socket(PF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    memset(&adr, 0, sizeof(adr));
    adr.sin_family = AF_INET;
    adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    adr.sin_port = htons(atoi(argv[2]));
    if (bind(serv, (struct sockaddr *)&adr, sizeof(adr)) == -1 || listen(serv, 128) == -1) {
        perror("bind/listen");
        exit(1);
    }
    for (;;) {
        fd_set rd, wr;
        struct timeval pause;
        int maxfd = serv > stop_pipe[0] ? serv : stop_pipe[0];
        if (accept_paused && ms_until(&paused_until) == 0)
            accept_paused = 0;
        FD_ZERO(&rd); /* rebuilt every time: select() overwrites the sets */
        FD_ZERO(&wr);
        if (!accept_paused)
            FD_SET(serv, &rd);
        FD_SET(stop_pipe[0], &rd);
        for (fd = 0; fd < FD_SETSIZE; fd++) {
            if (!clients[fd].used)
                continue;
            if (!clients[fd].eof && (chat || clients[fd].len < OUTBOX_LIMIT))
                FD_SET(fd, &rd);
            if (clients[fd].len > 0)
                FD_SET(fd, &wr);
            if (fd > maxfd)
                maxfd = fd;
        }
        if (accept_paused) {
            long ms = ms_until(&paused_until);
            pause.tv_sec = ms / 1000;
            pause.tv_usec = (ms % 1000) * 1000;
        }
        if (select(maxfd + 1, &rd, &wr, NULL, accept_paused ? &pause : NULL) == -1) {
            if (errno == EINTR) /* Linux never restarts select() */
                continue;
            perror("select");
            exit(1);
        }
        if (FD_ISSET(stop_pipe[0], &rd))
            break;
        if (FD_ISSET(serv, &rd)) {
            int cl = accept4(serv, NULL, NULL, SOCK_NONBLOCK);
            if (cl == -1 && (errno == EMFILE || errno == ENFILE)) {
                /* FIX: no fd free. The connection waits in the listen queue, so the
                 * listening socket stays readable: going straight back to select()
                 * would wake at once and fail again, at 100% CPU. Stop watching it
                 * until a client leaves (drop()) or 250 ms pass (ENFILE is freed by
                 * other processes). */
                if (!out_of_fds)
                    fprintf(stderr, "accept: %s: not accepting until a client leaves\n",
                            strerror(errno));
                out_of_fds = 1;
                accept_paused = 1;
                clock_gettime(CLOCK_MONOTONIC, &paused_until);
                paused_until.tv_nsec += 250 * 1000000L;
                if (paused_until.tv_nsec >= 1000000000L) {
                    paused_until.tv_sec++;
                    paused_until.tv_nsec -= 1000000000L;
                }
            } else if (cl >= FD_SETSIZE) {
                /* FIX: select() cannot watch an fd of FD_SETSIZE (1024) or more: FD_SET
                 * would write past the end of the set, and clients[] has no room. */
                if (!refusing)
                    fprintf(stderr, "fd %d: select() can watch fds below FD_SETSIZE (%d) "
                            "only; refusing connections until one leaves\n", cl, FD_SETSIZE);
                refusing = 1;
                close(cl);
            } else if (cl >= 0) {
                out_of_fds = refusing = 0;
                clients[cl].used = 1;
                printf("connected client: %d\n", cl);
                fflush(stdout);
            }
        }
        for (fd = 0; fd < FD_SETSIZE; fd++) {
            ssize_t n;
            if (!clients[fd].used || !FD_ISSET(fd, &rd))
                continue;
            n = read(fd, buf, BUF_SIZE);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                drop(fd, NULL);
                continue;
            }
            /* FIX: end of stream is not the end of the echo: what is queued still goes
             * out before the close (the book closes at once and loses it). */
            if (n == 0) {
                clients[fd].eof = 1;
                if (clients[fd].len == 0)
                    drop(fd, NULL);
                continue;
            }
            if (n < 0)
                continue;
            if (!chat) {
                push(&clients[fd], buf, n);
                continue;
            }
            for (ssize_t i = 0; i < n; i++) {
                struct client *c = &clients[fd];
                if (c->line_len == MAX_LINE) {
                    drop(fd, "a line longer than 4096 bytes");
                    break;
                }
                c->line[c->line_len++] = buf[i];
                if (buf[i] == '\n') {
                    char line[MAX_LINE + 1];
                    size_t len = c->line_len;
                    memcpy(line, c->line, len);
                    c->line_len = 0;
                    broadcast(line, len);
                    if (!clients[fd].used)
                        break;
                }
            }
        }
        for (fd = 0; fd < FD_SETSIZE; fd++)
            if (clients[fd].used && clients[fd].len > 0
                && (flush(fd) == -1 || (clients[fd].eof && clients[fd].len == 0)))
                drop(fd, NULL);
    }
    for (fd = 0; fd < FD_SETSIZE; fd++)
        if (clients[fd].used)
            drop(fd, NULL);
    close(serv);
    return 0;
}
