/* The bench's C twin of ch18's echo server: a thread per client. */
#include "common.h"
#include <pthread.h>

static void *serve(void *arg) {
    int client = (int)(long)arg;
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    char buf[4096];
    echo_blocking(client, buf, sizeof buf);
    close(client);
    printf("closed client\n");
    return NULL;
}

int main(int argc, char **argv) {
    int listener = listen_on(argc, argv);
    for (;;) {
        struct sockaddr_in peer;
        int client = accept_client(listener, &peer);
        if (client < 0) continue;
        printf("connected client: %s:%d\n", inet_ntoa(peer.sin_addr), ntohs(peer.sin_port));
        pthread_t thread;
        if (pthread_create(&thread, NULL, serve, (void *)(long)client) != 0) {
            fprintf(stderr, "error: pthread_create\n");
            close(client);
            continue;
        }
        pthread_detach(thread);
    }
}
