/* What every C twin of the bench shares: the listening socket, write_all, the
 * process set-up, and the outbox of the non-blocking servers. Each twin makes the
 * same system calls as the Rust server it stands beside (same buffer size, same log
 * line per connection, same one read per readiness), so a difference in the bench is
 * overhead, not a different algorithm. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static inline void die(const char *what) {
    perror(what);
    exit(1);
}

/* Usage: NAME <port> [backlog]. Binds 127.0.0.1 only. */
static inline int parse_port(int argc, char **argv, int *backlog) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <port> [backlog]\n", argv[0]);
        exit(2);
    }
    *backlog = argc > 2 ? atoi(argv[2]) : 5;
    return atoi(argv[1]);
}

static inline struct sockaddr_in loopback(int port) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
}

/* stdout line-buffered, as Rust's stdout always is: one write() per log line, as the
 * Rust servers do. SIGPIPE ignored: a client gone mid-echo is EPIPE, not death. */
static inline void set_up_process(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
}

/* socket() and bind() to 127.0.0.1:port. */
static inline int bound_socket(int type, int port) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in addr = loopback(port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    return fd;
}

static inline int listen_on(int argc, char **argv) {
    int backlog;
    int port = parse_port(argc, argv, &backlog);
    set_up_process();
    int fd = bound_socket(SOCK_STREAM, port);
    if (listen(fd, backlog) < 0) die("listen");
    printf("listening on 127.0.0.1:%d\n", port);
    return fd;
}

/* accept() for the blocking servers: the client's fd, or -1 for "go round again"
 * (a signal, or a client that left before we took it). */
static inline int accept_client(int listener, struct sockaddr_in *peer) {
    socklen_t len = sizeof *peer;
    int client = accept(listener, (struct sockaddr *)peer, &len);
    if (client < 0 && errno != EINTR && errno != ECONNABORTED) die("accept");
    return client;
}

static inline int write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads and echoes one client until end of stream (the blocking servers). */
static inline void echo_blocking(int fd, char *buf, size_t size) {
    for (;;) {
        ssize_t n = read(fd, buf, size);
        if (n == 0) return;
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "error: client: read: %s\n", strerror(errno));
            return;
        }
        if (write_all(fd, buf, (size_t)n) < 0) {
            fprintf(stderr, "error: client: write: %s\n", strerror(errno));
            return;
        }
    }
}

static inline void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl");
}

/* Bytes read but not yet written back (the non-blocking servers). */
struct outbox {
    char *data;
    size_t len, cap;
};

#define OUTBOX_LIMIT (256 * 1024)

static inline void outbox_push(struct outbox *o, const char *p, size_t n) {
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->data = realloc(o->data, o->cap);
        if (!o->data) die("realloc");
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
}

/* Writes until empty or EAGAIN; -1 when the client is gone. */
static inline int outbox_flush(int fd, struct outbox *o) {
    size_t done = 0;
    while (done < o->len) {
        ssize_t w = write(fd, o->data + done, o->len - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return -1;
        }
        done += (size_t)w;
    }
    memmove(o->data, o->data + done, o->len - done);
    o->len -= done;
    return 0;
}

/* A self-pipe the SIGINT/SIGTERM handler writes to: the multiplexing servers watch it
 * like the Rust ones watch their StopPipe. */
static int stop_pipe[2];
static inline void on_stop(int sig) {
    (void)sig;
    int saved = errno;
    (void)!write(stop_pipe[1], "x", 1);
    errno = saved;
}
static inline int install_stop_pipe(void) {
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe2");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return stop_pipe[0];
}
