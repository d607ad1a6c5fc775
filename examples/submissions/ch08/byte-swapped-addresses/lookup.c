/* Broken twin: the book's gethostbyname.c and gethostbyaddr.c, with one ch03 mistake:
 * each address is converted with ntohl() "to host order" before inet_ntoa(), which wants
 * network order. 127.0.0.1 comes out as 1.0.0.127. IPv4 only, as the book's. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char *argv[])
{
    struct hostent *host;
    struct in_addr addr;
    int i;

    if (argc == 2 && strncmp(argv[1], "--name=", 7) == 0) {
        host = gethostbyname(argv[1] + 7);
        if (!host) {
            fprintf(stderr, "no such host: %s\n", argv[1] + 7);
            return 1;
        }
        printf("Official name: %s \n", host->h_name);
        for (i = 0; host->h_aliases[i]; i++)
            printf("Aliases %d: %s \n", i + 1, host->h_aliases[i]);
        printf("Address type: %s \n", host->h_addrtype == AF_INET ? "AF_INET" : "AF_INET6");
        for (i = 0; host->h_addr_list[i]; i++) {
            addr = *(struct in_addr *)host->h_addr_list[i];
            addr.s_addr = ntohl(addr.s_addr); /* the mistake: inet_ntoa() wants network order */
            printf("IP addr %d: %s \n", i + 1, inet_ntoa(addr));
        }
        return 0;
    }
    if (argc == 2 && strncmp(argv[1], "--addr=", 7) == 0) {
        addr.s_addr = inet_addr(argv[1] + 7);
        if (addr.s_addr == INADDR_NONE) {
            fprintf(stderr, "invalid address \"%s\"\n", argv[1] + 7);
            return 1;
        }
        host = gethostbyaddr((char *)&addr, 4, AF_INET);
        if (!host) {
            fprintf(stderr, "no name for address %s\n", argv[1] + 7);
            return 1;
        }
        printf("Official name: %s \n", host->h_name);
        return 0;
    }
    fprintf(stderr, "Usage: %s --name=HOST | --addr=IP\n", argv[0]);
    return 2;
}
