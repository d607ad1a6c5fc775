/* A model answer for chapter 18 in C: a thread-per-client echo server (pthreads).
 * The main thread accepts; each client gets a detached thread with plain blocking
 * read()/write(). SIGPIPE is ignored so a vanished client ends only its own thread.
 * Out of fds (EMFILE), the main thread waits for a client to leave instead of exiting.
 * Usage: echo_thrserv <port> */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 4096

/* Signalled each time a client's thread closes its fd: the accepting thread, out of
 * fds, waits on it. */
static pthread_mutex_t left_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t left = PTHREAD_COND_INITIALIZER;
static unsigned long leavers;

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[BUF_SIZE];
    ssize_t n;
    while ((n = read(fd, buf, BUF_SIZE)) > 0) {
        char *p = buf;
        while (n > 0) { /* write every byte */
            ssize_t w = write(fd, p, n);
            if (w < 0)
                goto done;
            p += w;
            n -= w;
        }
    }
done:
    close(fd);
    pthread_mutex_lock(&left_lock);
    leavers++;
    pthread_cond_signal(&left);
    pthread_mutex_unlock(&left_lock);
    return NULL;
}

/* Out of fds: waits until a client leaves (its fd is free again) or 250 ms pass (ENFILE
 * is freed by other processes, whom we do not hear). */
static void wait_for_a_leaver(unsigned long seen)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 250 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&left_lock);
    while (leavers == seen)
        if (pthread_cond_timedwait(&left, &left_lock, &until) != 0)
            break;
    pthread_mutex_unlock(&left_lock);
}

int main(int argc, char *argv[])
{
    struct sockaddr_in adr;
    pthread_t t;
    int serv, out_of_fds = 0;

    if (argc != 2) {
        printf("Usage : %s <port>\n", argv[0]);
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
    for (;;) {
        unsigned long seen;
        int cl;
        pthread_mutex_lock(&left_lock);
        seen = leavers;
        pthread_mutex_unlock(&left_lock);
        cl = accept(serv, NULL, NULL);
        if (cl == -1) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* FIX: no fd free is no reason to exit: the connection waits in the
                 * listen queue. Wait for a client to leave, then accept again. */
                if (!out_of_fds)
                    fprintf(stderr, "accept: %s: not accepting until a client leaves\n",
                            strerror(errno));
                out_of_fds = 1;
                wait_for_a_leaver(seen);
                continue;
            }
            perror("accept");
            exit(1);
        }
        out_of_fds = 0;
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)cl) != 0) {
            close(cl);
            continue;
        }
        pthread_detach(t);
    }
}
