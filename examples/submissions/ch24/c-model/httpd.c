/* A model answer for chapter 24 in C: the workbook's hello server, done right.
 * HTTP/1.1: the head read until the blank line (at most 8 KiB: 431; within 5 s: 408),
 * an exact Content-Length, HEAD, 404/405/400, keep-alive and pipelining, a lingering
 * close for every response, files beneath --root opened with openat2(RESOLVE_BENEATH)
 * and O_NONBLOCK (a FIFO must not block open()), regular files only, streamed;
 * framing as RFC 9112 says (one Host in 1.1, Content-Lengths that agree, the query not
 * part of the path); a send timeout (a client that never reads is given up); and
 * --workers=N prefork workers accept()ing on one socket, the pool growing while all
 * are busy (up to MAX_WORKERS) and shrinking back when idle, as Apache's prefork does.
 * Usage: httpd <port> [--root=DIR] [--workers=N] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD 8192
#define HEAD_MS 5000
#define IDLE_MS 5000
#define MAX_BODY (1 << 20)
#define SEND_TIMEOUT_S 3
#define MAX_WORKERS 64

static const char PAGE[] = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Hello</title></head>"
                           "<body><h1>Hello, World!</h1></body></html>\n";
static int root_fd = -1;
static volatile sig_atomic_t stop_requested;

/* The scoreboard, shared by the parent and every worker (mmap MAP_SHARED): each
 * worker's slot says whether it is idle or busy, so the parent can keep one idle worker
 * ready for the next client while others are held by kept-alive connections. */
enum { FREE, IDLE, BUSY, LEAVING };
struct slot {
    pid_t pid;
    long started;
    volatile int state;
};
static struct slot *board;

static void on_stop(int sig) { (void)sig; stop_requested = 1; }
static void on_child(int sig) { (void)sig; }

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int readable_within(int fd, long ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return ms > 0 && poll(&p, 1, (int)ms) > 0;
}

/* Sends all n bytes (a head, or one chunk of a file) within SEND_TIMEOUT_S: one deadline
 * for the whole piece. (SO_SNDTIMEO would restart its clock at every write that takes a
 * little, so a client that reads a trickle now and then would hold the worker forever.) */
static int send_all(int fd, const char *p, size_t n)
{
    long deadline = now_ms() + SEND_TIMEOUT_S * 1000L;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd q = {fd, POLLOUT, 0};
                long left = deadline - now_ms();
                if (left <= 0 || poll(&q, 1, (int)left) <= 0)
                    return -1; /* the client takes nothing: let it go */
                continue;
            }
            return -1;
        }
        p += w;
        n -= w;
    }
    return 0;
}

static int respond(int fd, int status, const char *reason, const char *ctype, const char *body, size_t len,
                   int head_only, int keep, int allow)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n%s\r\n",
                     status, reason, ctype, len, keep ? "keep-alive" : "close", allow ? "Allow: GET, HEAD\r\n" : "");
    if (send_all(fd, head, n) < 0)
        return -1;
    return head_only ? 0 : send_all(fd, body, len);
}

static int error(int fd, int status, const char *reason, int head_only, int keep, int allow)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "<h1>%d %s</h1>\n", status, reason);
    return respond(fd, status, reason, "text/html; charset=utf-8", body, n, head_only, keep, allow);
}

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot)
        return "application/octet-stream";
    if (!strcasecmp(dot, ".html") || !strcasecmp(dot, ".htm"))
        return "text/html; charset=utf-8";
    if (!strcasecmp(dot, ".txt"))
        return "text/plain; charset=utf-8";
    if (!strcasecmp(dot, ".css"))
        return "text/css; charset=utf-8";
    if (!strcasecmp(dot, ".js"))
        return "text/javascript; charset=utf-8";
    if (!strcasecmp(dot, ".png"))
        return "image/png";
    return "application/octet-stream";
}

/* %XX decoding into out; -1 for a bad escape or a NUL byte. */
static int decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && in[i] != '?' && in[i] != '#'; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= len || !isxdigit((unsigned char)in[i + 1]) || !isxdigit((unsigned char)in[i + 2]))
                return -1;
            char hex[3] = {in[i + 1], in[i + 2], 0};
            c = (int)strtol(hex, NULL, 16);
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

static int serve_file(int fd, const char *target, size_t tlen, int head_only, int keep)
{
    char path[1024], head[512], chunk[65536];
    struct open_how how = {0};
    struct stat st;
    if (decode(target, tlen, path, sizeof(path)) < 0)
        return error(fd, 400, "Bad Request", head_only, keep, 0);
    const char *rel = path;
    while (*rel == '/')
        rel++;
    how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC; /* a FIFO's open() would wait for a writer */
    how.resolve = RESOLVE_BENEATH; /* the kernel refuses to leave the root: no string checks */
    int f = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
    if (f < 0)
        return error(fd, 404, "Not Found", head_only, keep, 0);
    if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return error(fd, 404, "Not Found", head_only, keep, 0);
    }
    /* Streamed a chunk at a time: a file of any size, in 64 KiB of memory. */
    int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %lld\r\nConnection: %s\r\n\r\n",
                     content_type(rel), (long long)st.st_size, keep ? "keep-alive" : "close");
    int r = send_all(fd, head, n);
    long long left = head_only ? 0 : st.st_size;
    while (r == 0 && left > 0) {
        ssize_t got = read(f, chunk, left < (long long)sizeof(chunk) ? left : (long long)sizeof(chunk));
        if (got <= 0) {
            r = -1; /* the file shrank: the length we sent is a lie, so close */
            break;
        }
        r = send_all(fd, chunk, got);
        left -= got;
    }
    close(f);
    return r;
}

/* The value of header `name` in the head [start, end), lower-cased into out. */
static void header(const char *head, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    out[0] = 0;
    for (const char *p = head; p < head + len;) {
        const char *eol = memmem(p, head + len - p, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (v < eol && *v == ' ')
                v++;
            size_t n = 0;
            while (v < eol && n + 1 < cap)
                out[n++] = (char)tolower((unsigned char)*v++);
            out[n] = 0;
            return;
        }
        p = eol + 2;
    }
}

/* How many header lines are named `name`. */
static int header_count(const char *head, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    int count = 0;
    for (const char *p = head; p < head + len;) {
        const char *eol = memmem(p, head + len - p, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) && p[nlen] == ':')
            count++;
        p = eol + 2;
    }
    return count;
}

/* The body's length from every Content-Length line: each value must be digits only,
 * and all must agree (RFC 9112 section 6.3); -1 otherwise, for a 400. Taking the first
 * and ignoring the rest lets a request hide in what another server calls the body. */
static long content_length(const char *head, size_t len)
{
    const char *name = "content-length";
    size_t nlen = strlen(name);
    long length = 0;
    int seen = 0;
    for (const char *p = head; p < head + len;) {
        const char *eol = memmem(p, head + len - p, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) && p[nlen] == ':') {
            const char *v = p + nlen + 1, *end = eol;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if (v == end || end - v > 9)
                return -1;
            long value = 0;
            for (; v < end; v++) {
                if (!isdigit((unsigned char)*v))
                    return -1; /* "+5", "5, 6", "0x10": not a length */
                value = value * 10 + (*v - '0');
            }
            if (seen && value != length)
                return -1;
            length = value;
            seen = 1;
        }
        p = eol + 2;
    }
    return length;
}

/* The token `token` in a comma-separated list (already lower-cased). */
static int has_token(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        if ((size_t)(last - p) == n && !strncmp(p, token, n))
            return 1;
        p = end;
    }
    return 0;
}

static void serve(int fd)
{
    static char buf[MAX_HEAD + MAX_HEAD];
    size_t have = 0;
    int first = 1;
    for (;;) {
        long started = now_ms(), limit = first ? HEAD_MS : IDLE_MS;
        int idle = !first && have == 0; /* waiting for a kept-alive connection's next request */
        char *end;
        first = 0;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have > MAX_HEAD) {
                error(fd, 431, "Request Header Fields Too Large", 0, 0, 0);
                return;
            }
            if (idle && have > 0) { /* a byte came: from now on, one deadline for the head */
                idle = 0;
                limit = HEAD_MS;
                started = now_ms();
            }
            if (!readable_within(fd, limit - (now_ms() - started))) {
                if (have > 0)
                    error(fd, 408, "Request Timeout", 0, 0, 0);
                return;
            }
            ssize_t n = read(fd, buf + have, sizeof(buf) - have);
            if (n <= 0)
                return;
            have += n;
        }
        size_t head_len = end + 4 - buf;
        char method[16], target[2048], version[16], value[64];
        char *line_end = memmem(buf, head_len, "\r\n", 2);
        char line[4096];
        size_t line_len = line_end - buf;
        if (line_len >= sizeof(line)) {
            error(fd, 431, "Request Header Fields Too Large", 0, 0, 0);
            return;
        }
        memcpy(line, buf, line_len);
        line[line_len] = 0;
        if (sscanf(line, "%15s %2047s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7)) {
            error(fd, 400, "Bad Request", 0, 0, 0);
            return;
        }
        int head_only = !strcmp(method, "HEAD");
        int hosts = header_count(buf, head_len, "host");
        /* HTTP/1.1 requires exactly one Host (RFC 9112 section 3.2). */
        if (hosts > 1 || (!strcmp(version, "HTTP/1.1") && hosts == 0)) {
            error(fd, 400, "Bad Request", 0, 0, 0);
            return;
        }
        header(buf, head_len, "connection", value, sizeof(value));
        int keep = !strcmp(version, "HTTP/1.1") ? !has_token(value, "close") : has_token(value, "keep-alive");
        long body = content_length(buf, head_len);
        if (body < 0) {
            error(fd, 400, "Bad Request", 0, 0, 0);
            return;
        }
        if (body > MAX_BODY) {
            error(fd, 413, "Content Too Large", head_only, 0, 0);
            return;
        }
        /* The body is read and ignored: the next request starts after it. */
        memmove(buf, buf + head_len, have - head_len);
        have -= head_len;
        while ((size_t)body > have) {
            char skip[16384];
            body -= have;
            have = 0;
            if (!readable_within(fd, HEAD_MS))
                return;
            ssize_t n = read(fd, skip, body < (long)sizeof(skip) ? body : (long)sizeof(skip));
            if (n <= 0)
                return;
            body -= n;
        }
        memmove(buf, buf + body, have - body);
        have -= body;
        int r;
        target[strcspn(target, "?#")] = 0; /* the query names no file */
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
            r = error(fd, 405, "Method Not Allowed", 0, keep, 1);
        else if (!strcmp(target, "/"))
            r = respond(fd, 200, "OK", "text/html; charset=utf-8", PAGE, sizeof(PAGE) - 1, head_only, keep, 0);
        else if (root_fd >= 0)
            r = serve_file(fd, target, strlen(target), head_only, keep);
        else
            r = error(fd, 404, "Not Found", head_only, keep, 0);
        if (r < 0 || !keep)
            return;
    }
}

/* shutdown(SHUT_WR), drain what the client still sends (2 s, 64 KiB), then close:
 * closing with unread data would send RST instead of FIN. */
static void linger_close(int fd)
{
    char drain[4096];
    long until = now_ms() + 2000;
    size_t total = 0;
    shutdown(fd, SHUT_WR);
    while (total < 65536 && readable_within(fd, until - now_ms())) {
        ssize_t n = read(fd, drain, sizeof(drain));
        if (n <= 0)
            break;
        total += n;
    }
    close(fd);
}

static int idle_workers(void)
{
    int n = 0;
    for (int i = 0; i < MAX_WORKERS; i++)
        n += board[i].state == IDLE;
    return n;
}

static void worker(int serv, int slot)
{
    struct sigaction act = {0};
    sigset_t none;
    act.sa_handler = on_stop; /* no SA_RESTART: accept() returns EINTR */
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    while (!stop_requested) {
        int cl = accept(serv, NULL, NULL);
        if (cl < 0)
            continue;
        /* Busy now; if no one is left idle, the parent forks another for the next client. */
        __sync_bool_compare_and_swap(&board[slot].state, IDLE, BUSY);
        if (idle_workers() == 0)
            kill(getppid(), SIGUSR1);
        serve(cl);
        linger_close(cl);
        __sync_bool_compare_and_swap(&board[slot].state, BUSY, IDLE);
    }
    _exit(0);
}

int main(int argc, char *argv[])
{
    struct sockaddr_in adr;
    struct sigaction act = {0};
    sigset_t waited, old;
    int serv, workers = 2;
    long last_shrink = now_ms();

    if (argc < 2) {
        printf("Usage : %s <port> [--root=DIR] [--workers=N]\n", argv[0]);
        exit(1);
    }
    for (int i = 2; i < argc; i++) {
        if (!strncmp(argv[i], "--root=", 7)) {
            root_fd = open(argv[i] + 7, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (root_fd < 0) {
                perror(argv[i] + 7);
                exit(1);
            }
        } else if (!strncmp(argv[i], "--workers=", 10)) {
            workers = atoi(argv[i] + 10);
        }
    }
    if (workers < 1)
        workers = 1;
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    board = mmap(NULL, MAX_WORKERS * sizeof(*board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (board == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    signal(SIGPIPE, SIG_IGN);
    serv = socket(PF_INET, SOCK_STREAM, 0);
    memset(&adr, 0, sizeof(adr));
    adr.sin_family = AF_INET;
    adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    adr.sin_port = htons(atoi(argv[1]));
    if (bind(serv, (struct sockaddr *)&adr, sizeof(adr)) == -1 || listen(serv, 128) == -1) {
        perror("bind/listen");
        exit(1);
    }
    act.sa_handler = on_stop;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    act.sa_handler = on_child;
    sigaction(SIGCHLD, &act, NULL);
    sigemptyset(&waited);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGINT);
    sigaddset(&waited, SIGCHLD);
    sigaddset(&waited, SIGUSR1);
    sigprocmask(SIG_BLOCK, &waited, &old);
    while (!stop_requested) {
        pid_t pid;
        while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
            for (int i = 0; i < MAX_WORKERS; i++)
                if (board[i].pid == pid)
                    board[i].state = FREE;
        int staying = 0, idle = 0;
        for (int i = 0; i < MAX_WORKERS; i++) {
            staying += board[i].state == IDLE || board[i].state == BUSY;
            idle += board[i].state == IDLE;
        }
        /* Grow: --workers at least, and one idle worker while the pool may grow. */
        for (int i = 0; i < MAX_WORKERS && (staying < workers || idle < 1); i++) {
            if (board[i].state != FREE)
                continue;
            board[i].state = IDLE;
            board[i].started = now_ms();
            pid = fork();
            if (pid == 0)
                worker(serv, i);
            if (pid < 0) {
                board[i].state = FREE;
                break;
            }
            board[i].pid = pid;
            staying++;
            idle++;
        }
        /* Shrink: one idle worker beyond --workers (and the spare) a second. */
        if (idle > 1 && staying > workers && now_ms() - last_shrink >= 1000) {
            for (int i = MAX_WORKERS - 1; i >= 0; i--)
                if (__sync_bool_compare_and_swap(&board[i].state, IDLE, LEAVING)) {
                    kill(board[i].pid, SIGTERM);
                    break;
                }
            last_shrink = now_ms();
        }
        /* Wait for a signal (a worker ended or is busy, or stop), or a second. */
        struct timespec second = {1, 0};
        int sig = sigtimedwait(&waited, NULL, &second);
        if (sig == SIGTERM || sig == SIGINT)
            stop_requested = 1;
    }
    kill(0, SIGTERM);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    close(serv);
    return 0;
}
