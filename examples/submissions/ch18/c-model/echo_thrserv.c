/* A model answer for chapter 18 in C: a thread-per-client echo server (pthreads).
 * The main thread accepts; each client gets a detached thread with plain blocking
 * read()/write(). SIGPIPE is ignored so a vanished client ends only its own thread.
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
#include <unistd.h>

#define BUF_SIZE 4096

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
    return NULL;
}

int main(int argc, char *argv[])
{
    struct sockaddr_in adr;
    pthread_t t;
    int serv;

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
        int cl = accept(serv, NULL, NULL);
        if (cl == -1) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("accept");
            exit(1);
        }
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)cl) != 0) {
            close(cl);
            continue;
        }
        pthread_detach(t);
    }
}
