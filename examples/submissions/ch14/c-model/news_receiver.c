/* news_receiver.c -- the book's multicast receiver (ch14), and, built with -DBROADCAST,
 * its broadcast receiver (news_receiver_brd.c), as the book writes them: bind the port
 * on every address, join the group (multicast only), print every datagram. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define BUF_SIZE 1024
void error_handling(char *message);

int main(int argc, char *argv[])
{
	int recv_sock;
	int str_len;
	char buf[BUF_SIZE];
	struct sockaddr_in adr;
#ifdef BROADCAST
	if (argc != 2) {
		printf("Usage : %s  <PORT>\n", argv[0]);
		exit(1);
	}
	char *port = argv[1];
#else
	struct ip_mreq join_adr;
	if (argc != 3) {
		printf("Usage : %s <GroupIP> <PORT>\n", argv[0]);
		exit(1);
	}
	char *port = argv[2];
#endif

	recv_sock = socket(PF_INET, SOCK_DGRAM, 0);
	memset(&adr, 0, sizeof(adr));
	adr.sin_family = AF_INET;
	adr.sin_addr.s_addr = htonl(INADDR_ANY);
	adr.sin_port = htons(atoi(port));

	if (bind(recv_sock, (struct sockaddr *)&adr, sizeof(adr)) == -1)
		error_handling("bind() error");

#ifndef BROADCAST
	join_adr.imr_multiaddr.s_addr = inet_addr(argv[1]);
	join_adr.imr_interface.s_addr = htonl(INADDR_ANY);

	if (setsockopt(recv_sock, IPPROTO_IP,
		IP_ADD_MEMBERSHIP, (void *)&join_adr, sizeof(join_adr)) == -1)
		error_handling("setsockopt(IP_ADD_MEMBERSHIP) error");
#endif

	while (1) {
		str_len = recvfrom(recv_sock, buf, BUF_SIZE - 1, 0, NULL, 0);
		if (str_len < 0)
			break;
		buf[str_len] = 0;
		fputs(buf, stdout);
		fflush(stdout);
	}
	close(recv_sock);
	return 0;
}

void error_handling(char *message)
{
	perror(message);
	exit(1);
}
