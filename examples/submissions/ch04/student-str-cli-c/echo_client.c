/* echo client after Stevens' UNP str_cli(): readline() one byte at a time, and the
 * reply printed bare with fputs(), no label. Q or q quits, as the book's client does. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXLINE 4096

static ssize_t writen(int fd, const char *ptr, size_t n)
{
	size_t nleft = n;
	while (nleft > 0) {
		ssize_t nwritten = write(fd, ptr, nleft);
		if (nwritten <= 0) {
			if (nwritten < 0 && errno == EINTR)
				continue;
			return -1;
		}
		nleft -= nwritten;
		ptr += nwritten;
	}
	return n;
}

/* Stevens' slow readline: one read() per byte, stops after the newline. */
static ssize_t readline(int fd, char *ptr, size_t maxlen)
{
	size_t n;
	for (n = 1; n < maxlen; n++) {
		char c;
		ssize_t rc = read(fd, &c, 1);
		if (rc == 1) {
			*ptr++ = c;
			if (c == '\n')
				break;
		} else if (rc == 0) {
			*ptr = 0;
			return n - 1; /* EOF, n - 1 bytes read */
		} else {
			if (errno == EINTR) {
				n--;
				continue;
			}
			return -1;
		}
	}
	*ptr = 0;
	return n;
}

static void str_cli(FILE *fp, int sockfd)
{
	char sendline[MAXLINE], recvline[MAXLINE];

	while (fgets(sendline, MAXLINE, fp) != NULL) {
		if (!strcmp(sendline, "q\n") || !strcmp(sendline, "Q\n"))
			break;
		if (writen(sockfd, sendline, strlen(sendline)) < 0) {
			perror("write");
			exit(1);
		}
		ssize_t n = readline(sockfd, recvline, MAXLINE);
		if (n < 0) {
			perror("read");
			exit(1);
		}
		if (n == 0) {
			fprintf(stderr, "str_cli: server terminated prematurely\n");
			exit(1);
		}
		fputs(recvline, stdout);
	}
}

int main(int argc, char **argv)
{
	int sockfd;
	struct sockaddr_in servaddr;

	if (argc != 3) {
		fprintf(stderr, "usage: %s <IPaddress> <port>\n", argv[0]);
		exit(1);
	}
	sockfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&servaddr, 0, sizeof(servaddr));
	servaddr.sin_family = AF_INET;
	servaddr.sin_port = htons(atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &servaddr.sin_addr);
	if (connect(sockfd, (struct sockaddr *)&servaddr, sizeof(servaddr)) < 0) {
		perror("connect");
		exit(1);
	}
	str_cli(stdin, sockfd);
	close(sockfd);
	exit(0);
}
