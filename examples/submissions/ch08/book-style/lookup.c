/* A model answer for chapter 8 in C: the book's gethostbyname.c and gethostbyaddr.c done
 * with getaddrinfo() and getnameinfo(), which see IPv6 too and report their own errors.
 * Usage: lookup --name=HOST | lookup --addr=IP */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int forward(const char *host)
{
    struct addrinfo hints, *res, *p;
    char text[INET6_ADDRSTRLEN];
    int err, i = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC; /* IPv4 and IPv6: gethostbyname() sees IPv4 only */
    hints.ai_socktype = SOCK_STREAM; /* one entry per address, not one per socket type */
    hints.ai_flags = AI_CANONNAME;
    err = getaddrinfo(host, NULL, &hints, &res);
    if (err == EAI_NONAME) {
        fprintf(stderr, "no such host: %s\n", host);
        return 1;
    } else if (err != 0) {
        fprintf(stderr, "name resolution failed: %s: %s\n", host, gai_strerror(err));
        return 1;
    }
    printf("Official name: %s\n", res->ai_canonname ? res->ai_canonname : host);
    for (p = res; p != NULL; p = p->ai_next) {
        void *addr = p->ai_family == AF_INET
                         ? (void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
                         : (void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
        inet_ntop(p->ai_family, addr, text, sizeof(text));
        printf("IP addr %d: %s (%s)\n", ++i, text, p->ai_family == AF_INET ? "AF_INET" : "AF_INET6");
    }
    freeaddrinfo(res);
    return 0;
}

static int reverse(const char *ip)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char host[NI_MAXHOST];
    int err;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        len = sizeof(struct sockaddr_in6);
    } else {
        fprintf(stderr, "invalid address \"%s\"\n", ip);
        return 1;
    }
    err = getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0, NI_NAMEREQD);
    if (err != 0) {
        fprintf(stderr, "no name for address %s: %s\n", ip, gai_strerror(err));
        return 1;
    }
    printf("Official name: %s\n", host);
    return 0;
}

int main(int argc, char *argv[])
{
    if (argc == 2 && strncmp(argv[1], "--name=", 7) == 0)
        return forward(argv[1] + 7);
    if (argc == 2 && strncmp(argv[1], "--addr=", 7) == 0)
        return reverse(argv[1] + 7);
    fprintf(stderr, "Usage: %s --name=HOST | --addr=IP\n", argv[0]);
    return 2;
}
