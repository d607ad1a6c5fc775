/* The bench's C twin of ch10's echo server: a process per client, reaped on SIGCHLD. */
#include "common.h"
#include <sys/wait.h>

/* The handler reaps; the main loop reports, as ch10's Reaper does. */
static volatile sig_atomic_t reaped_count;
static pid_t reaped[4096];

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
        reaped[reaped_count % 4096] = pid;
        reaped_count++;
    }
    errno = saved;
}

int main(int argc, char **argv) {
    int listener = listen_on(argc, argv);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child; /* no SA_RESTART: accept() returns EINTR, and we report */
    sigaction(SIGCHLD, &sa, NULL);
    sig_atomic_t reported = 0;
    for (;;) {
        while (reported != reaped_count) {
            printf("removed proc id: %d\n", reaped[reported % 4096]);
            reported++;
        }
        struct sockaddr_in peer;
        int client = accept_client(listener, &peer);
        if (client < 0) continue;
        printf("new client connected... (%s:%d)\n", inet_ntoa(peer.sin_addr), ntohs(peer.sin_port));
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            close(listener);
            char buf[1024];
            echo_blocking(client, buf, sizeof buf);
            close(client);
            printf("client disconnected...\n");
            _exit(0);
        }
        close(client);
    }
}
