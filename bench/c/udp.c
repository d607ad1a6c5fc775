/* The bench's C twin of ch06's UDP echo server: recvfrom() a whole datagram (a buffer
 * for the largest), sendto() it back. */
#include "common.h"

int main(int argc, char **argv) {
    int unused;
    int port = parse_port(argc, argv, &unused);
    set_up_process();
    int fd = bound_socket(SOCK_DGRAM, port);
    printf("bound to 127.0.0.1:%d\n", port);
    static char buf[65507];
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("recvfrom");
        }
        if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len) < 0)
            fprintf(stderr, "error: reply: %s\n", strerror(errno));
    }
}
