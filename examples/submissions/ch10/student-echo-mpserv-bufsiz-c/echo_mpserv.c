/* echo_mpserv.c -- the book's ch10 echo_mpserv.c (BUF_SIZE 30) with the same fixes as
 * our group's model answer (reaping loop, EINTR, graceful SIGTERM stop, SIGPIPE
 * ignored) -- but the child's read() was "improved" to read(clnt_sock, buf, BUFSIZ):
 * BUFSIZ is 8192 from <stdio.h>, buf is char[30]. Any message over 30 bytes
 * overflows the stack array in the child. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define BUF_SIZE 30
#define MAX_CHILD 4096

static volatile sig_atomic_t stop_flag = 0;
static pid_t children[MAX_CHILD];

void error_handling(char *message);

static void read_childproc(int sig)
{
	int saved = errno, status, i;
	pid_t pid;
	(void)sig;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < MAX_CHILD; i++)
			if (children[i] == pid) {
				children[i] = 0;
				break;
			}
	errno = saved;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

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
	int serv_sock, clnt_sock, str_len, option = 1, i;
	struct sockaddr_in serv_adr, clnt_adr;
	socklen_t adr_sz;
	pid_t pid;
	struct sigaction act;
	char buf[BUF_SIZE];

	if (argc != 2) {
		printf("Usage : %s <port>\n", argv[0]);
		exit(1);
	}

	memset(&act, 0, sizeof(act));
	act.sa_handler = read_childproc;
	sigemptyset(&act.sa_mask);
	act.sa_flags = SA_NOCLDSTOP;          /* no SA_RESTART: accept() returns EINTR */
	sigaction(SIGCHLD, &act, 0);

	act.sa_handler = on_stop;
	act.sa_flags = 0;
	sigaction(SIGTERM, &act, 0);
	sigaction(SIGINT, &act, 0);
	signal(SIGPIPE, SIG_IGN);

	serv_sock = socket(PF_INET, SOCK_STREAM, 0);
	setsockopt(serv_sock, SOL_SOCKET, SO_REUSEADDR, &option, sizeof(option));
	memset(&serv_adr, 0, sizeof(serv_adr));
	serv_adr.sin_family = AF_INET;
	serv_adr.sin_addr.s_addr = htonl(INADDR_ANY);
	serv_adr.sin_port = htons(atoi(argv[1]));

	if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
		error_handling("bind() error");
	if (listen(serv_sock, 128) == -1)
		error_handling("listen() error");

	while (!stop_flag) {
		adr_sz = sizeof(clnt_adr);
		clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_adr, &adr_sz);
		if (clnt_sock == -1) {
			if (errno == EINTR)
				continue;
			perror("accept() error");
			continue;
		}
		puts("new client connected...");
		fflush(stdout);

		pid = fork();
		if (pid == -1) {
			close(clnt_sock);
			continue;
		}
		if (pid == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			close(serv_sock);
			while ((str_len = read(clnt_sock, buf, BUFSIZ)) != 0) {
				if (str_len == -1) {
					if (errno == EINTR)
						continue;
					break;
				}
				if (write_all(clnt_sock, buf, str_len) == -1)
					break;
			}
			close(clnt_sock);
			puts("client disconnected...");
			_exit(0);
		}
		/* parent: remember the child (block SIGCHLD so the handler cannot race us) */
		{
			sigset_t set, old;
			sigemptyset(&set);
			sigaddset(&set, SIGCHLD);
			sigprocmask(SIG_BLOCK, &set, &old);
			for (i = 0; i < MAX_CHILD; i++)
				if (children[i] == 0) {
					children[i] = pid;
					break;
				}
			sigprocmask(SIG_SETMASK, &old, NULL);
		}
		close(clnt_sock);
	}

	/* stopping: no more accepts, end the children, reap every one */
	close(serv_sock);
	{
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGCHLD);
		sigprocmask(SIG_BLOCK, &set, NULL);   /* we reap here from now on */
	}
	for (i = 0; i < MAX_CHILD; i++)
		if (children[i] > 0)
			kill(children[i], SIGTERM);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	puts("server stopped");
	return 0;
}

void error_handling(char *message)
{
	fputs(message, stderr);
	fputc('\n', stderr);
	exit(1);
}
