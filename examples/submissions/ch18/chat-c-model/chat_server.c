/* chat_server.c -- the book's thread chat server (ch18), with its bugs fixed:
 *  - the member's fd is passed to its thread by value, not as &clnt_sock (which the
 *    next accept() overwrites before the thread has read it);
 *  - a member who leaves is removed by shifting the rest of the array down from its
 *    own slot (the book's `while(i++<clnt_cnt-1)` starts one slot late and drops the
 *    member after it);
 *  - each member's unfinished line waits in its own buffer: only whole lines are
 *    relayed (the book relays whatever one read() returned);
 *  - a member who never reads cannot hold the room: every write to a member has one
 *    second (SO_SNDTIMEO for each call, and a deadline for the whole line, since a
 *    member that takes a few bytes now and then restarts SO_SNDTIMEO each call); a
 *    member who misses it is cut off (shutdown), and its own thread then leaves;
 *  - read() returning -1 ends the member too (the book loops on it forever), and
 *    SIGPIPE is ignored, so a member gone mid-write is EPIPE, not the room's death. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/time.h>

#define BUF_SIZE 4096
#define MAX_CLNT 256

void *handle_clnt(void *arg);
void send_msg(char *msg, int len);
void error_handling(char *msg);

int clnt_cnt = 0;
int clnt_socks[MAX_CLNT];
pthread_mutex_t mutx;

int main(int argc, char *argv[])
{
	int serv_sock, clnt_sock, option = 1;
	struct sockaddr_in serv_adr, clnt_adr;
	socklen_t clnt_adr_sz;
	pthread_t t_id;
	struct timeval tv = { 1, 0 };

	if (argc != 2) {
		printf("Usage : %s <port>\n", argv[0]);
		exit(1);
	}
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&mutx, NULL);
	serv_sock = socket(PF_INET, SOCK_STREAM, 0);
	setsockopt(serv_sock, SOL_SOCKET, SO_REUSEADDR, &option, sizeof(option));

	memset(&serv_adr, 0, sizeof(serv_adr));
	serv_adr.sin_family = AF_INET;
	serv_adr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	serv_adr.sin_port = htons(atoi(argv[1]));

	if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
		error_handling("bind() error");
	if (listen(serv_sock, 128) == -1)
		error_handling("listen() error");

	while (1) {
		clnt_adr_sz = sizeof(clnt_adr);
		clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_adr, &clnt_adr_sz);
		if (clnt_sock == -1)
			continue;
		setsockopt(clnt_sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

		pthread_mutex_lock(&mutx);
		if (clnt_cnt == MAX_CLNT) {
			pthread_mutex_unlock(&mutx);
			close(clnt_sock);
			continue;
		}
		clnt_socks[clnt_cnt++] = clnt_sock;
		pthread_mutex_unlock(&mutx);

		pthread_create(&t_id, NULL, handle_clnt, (void *)(long)clnt_sock);
		pthread_detach(t_id);
		printf("Connected client IP: %s \n", inet_ntoa(clnt_adr.sin_addr));
		fflush(stdout);
	}
	close(serv_sock);
	return 0;
}

void *handle_clnt(void *arg)
{
	int clnt_sock = (int)(long)arg;
	int str_len = 0, have = 0, i;
	char msg[BUF_SIZE];
	char *nl;

	while ((str_len = read(clnt_sock, msg + have, sizeof(msg) - have)) > 0) {
		have += str_len;
		/* relay every complete line */
		while ((nl = memchr(msg, '\n', have)) != NULL) {
			int len = nl - msg + 1;
			send_msg(msg, len);
			memmove(msg, msg + len, have - len);
			have -= len;
		}
		if (have == sizeof(msg))    /* a line longer than the buffer: drop the member */
			break;
	}

	pthread_mutex_lock(&mutx);
	for (i = 0; i < clnt_cnt; i++) {   /* remove the member who left */
		if (clnt_sock == clnt_socks[i]) {
			for (; i < clnt_cnt - 1; i++)
				clnt_socks[i] = clnt_socks[i + 1];
			clnt_cnt--;
			break;
		}
	}
	pthread_mutex_unlock(&mutx);
	close(clnt_sock);
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void send_msg(char *msg, int len)   /* send to all */
{
	int i;
	pthread_mutex_lock(&mutx);
	for (i = 0; i < clnt_cnt; i++) {
		int done = 0, n;
		double started = now();
		while (done < len) {
			if (now() - started >= 1.0)
				n = -1;   /* the whole line gets one second */
			else
				n = write(clnt_socks[i], msg + done, len - done);
			if (n <= 0) {
				if (n == -1 && errno == EINTR)
					continue;
				/* timed out (a member who does not read) or gone: cut it off */
				shutdown(clnt_socks[i], SHUT_RDWR);
				break;
			}
			done += n;
		}
	}
	pthread_mutex_unlock(&mutx);
}

void error_handling(char *msg)
{
	fputs(msg, stderr);
	fputc('\n', stderr);
	exit(1);
}
