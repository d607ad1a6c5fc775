/* The bench's C twin of ch04's iterative echo server: one client at a time. */
#include "common.h"

int main(int argc, char **argv) {
    int listener = listen_on(argc, argv);
    unsigned long served = 0;
    char buf[1024];
    for (;;) {
        struct sockaddr_in peer;
        int client = accept_client(listener, &peer);
        if (client < 0) continue;
        printf("Connected client %lu\n", ++served);
        echo_blocking(client, buf, sizeof buf);
        close(client);
    }
}
