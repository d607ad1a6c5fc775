/* lookup.c -- ch08: a name lookup and a reverse lookup in one program.
 *   ./lookup --name=HOST        forward, with getaddrinfo (AF_UNSPEC, like the chapter README)
 *   ./lookup --addr=A.B.C.D     reverse, the book's gethostbyaddr.c way:
 *                               addr.sin_addr.s_addr = inet_addr(argv[1]); gethostbyaddr(...)
 * Bug (on purpose, as the member wrote it): the address is never validated. inet_addr()
 * returns INADDR_NONE (255.255.255.255) for "1.2.3.256", and that is what gets looked up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <sys/socket.h>

void error_handling(char *message)
{
	fputs(message, stderr);
	fputc('\n', stderr);
	exit(1);
}

static int forward(const char *name)
{
	struct addrinfo hints, *res, *p;
	char buf[INET6_ADDRSTRLEN];
	int rc, i = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_CANONNAME;
	rc = getaddrinfo(name, NULL, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "getaddrinfo(%s) error: %s\n", name, gai_strerror(rc));
		return 1;
	}
	printf("Official name: %s \n", res->ai_canonname ? res->ai_canonname : name);
	for (p = res; p; p = p->ai_next) {
		const void *a = p->ai_family == AF_INET
			? (void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
			: (void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
		inet_ntop(p->ai_family, a, buf, sizeof(buf));
		printf("Address type: %s \n", p->ai_family == AF_INET ? "AF_INET" : "AF_INET6");
		printf("IP addr %d: %s \n", ++i, buf);
	}
	freeaddrinfo(res);
	return 0;
}

static int reverse(const char *text)
{
	struct hostent *host;
	struct sockaddr_in addr;
	int i;

	memset(&addr, 0, sizeof(addr));
	addr.sin_addr.s_addr = inet_addr(text);          /* never checked against INADDR_NONE */
	host = gethostbyaddr((char *)&addr.sin_addr, 4, AF_INET);
	if (!host)
		error_handling("gethost... error");

	printf("Official name: %s \n", host->h_name);
	for (i = 0; host->h_aliases[i]; i++)
		printf("Aliases %d: %s \n", i + 1, host->h_aliases[i]);
	printf("Address type: %s \n", (host->h_addrtype == AF_INET) ? "AF_INET" : "AF_INET6");
	for (i = 0; host->h_addr_list[i]; i++)
		printf("IP addr %d: %s \n", i + 1, inet_ntoa(*(struct in_addr *)host->h_addr_list[i]));
	return 0;
}

int main(int argc, char *argv[])
{
	if (argc != 2) {
		printf("Usage : %s --name=<host> | --addr=<IPv4>\n", argv[0]);
		exit(1);
	}
	if (!strncmp(argv[1], "--name=", 7))
		return forward(argv[1] + 7);
	if (!strncmp(argv[1], "--addr=", 7))
		return reverse(argv[1] + 7);
	error_handling("use --name= or --addr=");
	return 1;
}
