/* echo_epollserv.c -- level-triggered epoll echo server, after the book's
 * ch17 echo_EPLTserv.c, with what the chapter asks for:
 *  - every client socket non-blocking; what write() could not take waits in
 *    a per-client outbox; EPOLLOUT watched only while the outbox is not empty;
 *  - EPOLLIN dropped while a client's outbox holds 256 KiB (backpressure);
 *  - read() == -1 (ECONNRESET) and write() EPIPE end only that client;
 *  - epoll_wait()'s EINTR is retried; SIGPIPE ignored;
 *  - RLIMIT_NOFILE raised to the hard limit; accept() EMFILE does not spin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#define BUF_SIZE 16384
#define EPOLL_SIZE 256
#define OUT_LIMIT (256 * 1024)

struct client {
	char *out;
	size_t len, cap;
	int watching_in, watching_out;
};

static struct client **clients;
static int max_fd;

static void error_handling(const char *msg)
{
	perror(msg);
	exit(1);
}

static void setnonblockingmode(int fd)
{
	int flag = fcntl(fd, F_GETFL, 0);
	fcntl(fd, F_SETFL, flag | O_NONBLOCK);
}

static void update_events(int epfd, int fd)
{
	struct client *c = clients[fd];
	struct epoll_event ev;
	int want_in = c->len < OUT_LIMIT, want_out = c->len > 0;
	if (want_in == c->watching_in && want_out == c->watching_out)
		return;
	ev.events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0);
	ev.data.fd = fd;
	epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
	c->watching_in = want_in;
	c->watching_out = want_out;
}

static void close_client(int epfd, int fd)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	free(clients[fd]->out);
	free(clients[fd]);
	clients[fd] = NULL;
}

/* write what we can from the outbox; -1 if the client is gone */
static int flush_out(int fd)
{
	struct client *c = clients[fd];
	while (c->len > 0) {
		ssize_t n = write(fd, c->out, c->len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		memmove(c->out, c->out + n, c->len - n);
		c->len -= n;
	}
	return 0;
}

static void append_out(struct client *c, const char *buf, size_t n)
{
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		while (cap < c->len + n)
			cap *= 2;
		c->out = realloc(c->out, cap);
		if (!c->out)
			error_handling("realloc");
		c->cap = cap;
	}
	memcpy(c->out + c->len, buf, n);
	c->len += n;
}

int main(int argc, char *argv[])
{
	int serv_sock, clnt_sock, epfd, event_cnt, i, option = 1;
	struct sockaddr_in serv_adr;
	struct epoll_event *ep_events, event;
	struct rlimit rl;
	static char buf[BUF_SIZE];

	if (argc != 2) {
		printf("Usage : %s <port>\n", argv[0]);
		exit(1);
	}
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			fprintf(stderr, "raised the open-file limit from %lu to %lu\n",
				(unsigned long)old, (unsigned long)rl.rlim_cur);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	max_fd = rl.rlim_cur > 1000000 ? 1000000 : (int)rl.rlim_cur;
	clients = calloc(max_fd, sizeof(*clients));

	serv_sock = socket(PF_INET, SOCK_STREAM, 0);
	setsockopt(serv_sock, SOL_SOCKET, SO_REUSEADDR, &option, sizeof(option));
	memset(&serv_adr, 0, sizeof(serv_adr));
	serv_adr.sin_family = AF_INET;
	serv_adr.sin_addr.s_addr = htonl(INADDR_ANY);
	serv_adr.sin_port = htons(atoi(argv[1]));
	if (bind(serv_sock, (struct sockaddr *)&serv_adr, sizeof(serv_adr)) == -1)
		error_handling("bind() error");
	if (listen(serv_sock, 1024) == -1)
		error_handling("listen() error");
	setnonblockingmode(serv_sock);

	epfd = epoll_create(EPOLL_SIZE);
	ep_events = malloc(sizeof(struct epoll_event) * EPOLL_SIZE);
	event.events = EPOLLIN;
	event.data.fd = serv_sock;
	epoll_ctl(epfd, EPOLL_CTL_ADD, serv_sock, &event);

	while (1) {
		event_cnt = epoll_wait(epfd, ep_events, EPOLL_SIZE, -1);
		if (event_cnt == -1) {
			if (errno == EINTR)
				continue;
			error_handling("epoll_wait() error");
		}
		for (i = 0; i < event_cnt; i++) {
			int fd = ep_events[i].data.fd;
			if (fd == serv_sock) {
				clnt_sock = accept(serv_sock, NULL, NULL);
				if (clnt_sock == -1)
					continue;   /* EAGAIN, EMFILE... LT will tell us again */
				if (clnt_sock >= max_fd) {
					close(clnt_sock);
					continue;
				}
				setnonblockingmode(clnt_sock);
				clients[clnt_sock] = calloc(1, sizeof(struct client));
				clients[clnt_sock]->watching_in = 1;
				event.events = EPOLLIN;
				event.data.fd = clnt_sock;
				epoll_ctl(epfd, EPOLL_CTL_ADD, clnt_sock, &event);
				continue;
			}
			if (!clients[fd])
				continue;
			if (ep_events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				if (clients[fd]->len < OUT_LIMIT) {
					ssize_t str_len = read(fd, buf, BUF_SIZE);
					if (str_len == 0 ||
					    (str_len == -1 && errno != EAGAIN && errno != EINTR)) {
						close_client(epfd, fd);
						continue;
					}
					if (str_len > 0)
						append_out(clients[fd], buf, str_len);
				}
			}
			if (flush_out(fd) == -1) {
				close_client(epfd, fd);
				continue;
			}
			update_events(epfd, fd);
		}
	}
	close(serv_sock);
	close(epfd);
	return 0;
}
