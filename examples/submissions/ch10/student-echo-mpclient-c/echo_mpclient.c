/* echo_mpclient.c -- the book's ch10 echo_mpclient.c: fork(); the child
 * writes what is typed (write_routine), the parent prints what comes back
 * (read_routine) -- one "Message from server: " per read(), as the book does.
 * Fixes: fgets() == NULL (end of input) ends the writer with shutdown(SHUT_WR)
 * just like "q"; read() == -1 ends the reader; the buffer is NUL-terminated
 * inside its bounds; the parent waits for the writer before exiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define BUF_SIZE 1024
void error_handling(char *message);
void read_routine(int sock, char *buf);
void write_routine(int sock, char *buf);

int main(int argc, char *argv[])
{
	int sock;
	pid_t pid;
	char buf[BUF_SIZE];
	struct sockaddr_in serv_adr;

	if (argc != 3) {
		printf("Usage : %s <IP> <port>\n", argv[0]);
		exit(1);
	}

	sock = socket(PF_INET, SOCK_STREAM, 0);
	memset(&serv_adr, 0, sizeof(serv_adr));
	serv_adr.sin_family = AF_INET;
	serv_adr.sin_addr.s_addr = inet_addr(argv[1]);
	serv_adr.sin_port = htons(atoi(argv[2]));

	if (connect(sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
		error_handling("connect() error!");

	pid = fork();
	if (pid == 0) {
		write_routine(sock, buf);
		close(sock);
		return 0;
	}
	read_routine(sock, buf);
	close(sock);
	waitpid(pid, NULL, 0);
	return 0;
}

void read_routine(int sock, char *buf)
{
	while (1) {
		int str_len = read(sock, buf, BUF_SIZE - 1);
		if (str_len <= 0)
			return;
		buf[str_len] = 0;
		printf("Message from server: %s", buf);
		fflush(stdout);
	}
}

void write_routine(int sock, char *buf)
{
	while (1) {
		if (fgets(buf, BUF_SIZE, stdin) == NULL ||
		    !strcmp(buf, "q\n") || !strcmp(buf, "Q\n")) {
			shutdown(sock, SHUT_WR);
			return;
		}
		write(sock, buf, strlen(buf));
	}
}

void error_handling(char *message)
{
	fputs(message, stderr);
	fputc('\n', stderr);
	exit(1);
}
