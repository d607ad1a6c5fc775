/* echo_server.c -- the book's ch04 echo_server.c (iterative), with read looped
 * until 0 and every byte written back -- but this member never added
 * signal(SIGPIPE, SIG_IGN), so a client that closes early kills the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define BUF_SIZE 1024
void error_handling(char *message);

static int write_all(int fd, const char *buf, int len)
{
	int done = 0, n;
	while (done < len) {
		n = write(fd, buf + done, len - done);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += n;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	int serv_sock, clnt_sock;
	char message[BUF_SIZE];
	int str_len, option = 1;
	struct sockaddr_in serv_adr, clnt_adr;
	socklen_t clnt_adr_sz;

	if (argc != 2) {
		printf("Usage : %s <port>\n", argv[0]);
		exit(1);
	}
	/* (forgot signal(SIGPIPE, SIG_IGN)) */

	serv_sock = socket(PF_INET, SOCK_STREAM, 0);
	if (serv_sock == -1)
		error_handling("socket() error");
	setsockopt(serv_sock, SOL_SOCKET, SO_REUSEADDR, &option, sizeof(option));

	memset(&serv_adr, 0, sizeof(serv_adr));
	serv_adr.sin_family = AF_INET;
	serv_adr.sin_addr.s_addr = htonl(INADDR_ANY);
	serv_adr.sin_port = htons(atoi(argv[1]));

	if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
		error_handling("bind() error");
	if (listen(serv_sock, 5) == -1)
		error_handling("listen() error");

	clnt_adr_sz = sizeof(clnt_adr);
	for (int i = 1; ; i++) {
		clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_adr, &clnt_adr_sz);
		if (clnt_sock == -1) {
			perror("accept() error");
			continue;
		}
		printf("Connected client %d \n", i);
		fflush(stdout);

		while ((str_len = read(clnt_sock, message, BUF_SIZE)) != 0) {
			if (str_len == -1) {
				if (errno == EINTR)
					continue;
				break;          /* ECONNRESET etc.: this client is done */
			}
			if (write_all(clnt_sock, message, str_len) == -1)
				break;          /* EPIPE: client went away */
		}
		close(clnt_sock);
	}
	close(serv_sock);
	return 0;
}

void error_handling(char *message)
{
	fputs(message, stderr);
	fputc('\n', stderr);
	exit(1);
}
